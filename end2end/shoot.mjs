// Takes screenshots of a running console: node end2end/shoot.mjs URL USER PASSWORD OUT_DIR PATH...
// Used to look at pages while building them and for docs/screenshots; not part of the tests.
// SHOOT_SELECTOR=css takes only that element of each page (e.g. '[data-testid=notifications]').
import { chromium } from "@playwright/test";
import { execSync } from "node:child_process";

const [base, user, password, out, ...paths] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: execSync("command -v chromium").toString().trim(),
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
for (const [name, viewport] of [["laptop", { width: 1366, height: 900 }], ["phone", { width: 390, height: 844 }]]) {
  const page = await browser.newPage({ viewport });
  page.on("console", (m) => m.type() === "error" && console.error("console:", m.text()));
  await page.goto(`${base}/login`);
  await page.getByLabel("User name").fill(user);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}/`);
  for (const p of paths) {
    await page.goto(`${base}${p}`);
    await page.waitForTimeout(Number(process.env.SHOOT_WAIT ?? 1500));
    const file = `${out}/${p.replaceAll("/", "_") || "root"}-${name}.png`;
    const selector = process.env.SHOOT_SELECTOR;
    if (selector) await page.locator(selector).screenshot({ path: file });
    else await page.screenshot({ path: file, fullPage: true });
    console.log(file);
  }
  await page.close();
}
await browser.close();
