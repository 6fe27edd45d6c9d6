import { test, expect } from "@playwright/test";
import { ownConsole, signIn } from "./helpers";

const app = ownConsole("audit");

test("the audit log lists every change, filters it and exports it", async ({ page }) => {
  await signIn(page, app.dataDir);
  await page.getByTestId("nav-audit").click();
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Audit log");
  await expect(page.locator("body[data-hydrated=true]")).toBeAttached();
  await expect(page.getByTestId("audit-entries")).toContainText("login");
  await page.getByTestId("audit-action").fill("login");
  await page.getByTestId("audit-apply").click();
  await expect(page.getByTestId("audit-entries").locator("tbody tr").first()).toContainText("user:admin");
  await expect(page.getByTestId("audit-csv")).toHaveAttribute("href", /action=login/);
  const csv = await page.request.get((await page.getByTestId("audit-csv").getAttribute("href"))!);
  expect(csv.status()).toBe(200);
  expect((await csv.text()).split("\n")[0]).toBe("id,at,time_utc,actor,action,environment,before,after,reason");
});
