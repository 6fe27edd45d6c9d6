import { test, expect } from "@playwright/test";
import { ownConsole, signIn } from "./helpers";

const app = ownConsole("security");

// The console sends a Content-Security-Policy that allows no inline script without the page's
// nonce and no inline style: every page must still hydrate under it, with no violation reported.
test("every page hydrates under the content security policy, with no violation", async ({ page }) => {
  const violations: string[] = [];
  page.on("console", (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) violations.push(message.text());
  });
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (event) => {
      console.error(`Refused to load: ${event.violatedDirective} ${event.blockedURI}`);
    });
  });
  await signIn(page, app.dataDir);
  for (const path of ["/", "/env/dev", "/env/prod", "/audit", "/keys"]) {
    const response = await page.goto(path);
    expect(response?.headers()["content-security-policy"], path).toContain("'nonce-");
    expect(response?.headers()["x-frame-options"], path).toBe("DENY");
    await expect(page.locator("body[data-hydrated=true]"), path).toBeAttached();
  }
  expect(violations).toEqual([]);
});
