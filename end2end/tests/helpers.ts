import { expect, type Page } from "@playwright/test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

export const repo = path.resolve(__dirname, "../..");
export const cli = path.join(repo, "target/release/sti-rollout");
export const dataDir = path.join(repo, "target/e2e-data");

export async function signInAs(page: Page, username: string, password: string) {
  await page.goto("/login");
  await page.getByLabel("User name").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Rollout overview");
}

/**
 * Signs in as the first administrator. The first time, with the password the first start wrote
 * to the data folder: the console then asks for a new one, which is kept here for the next time,
 * and deletes that file. `dir` is the data folder of the console the page talks to.
 */
export async function signIn(page: Page, dir = dataDir) {
  const chosenPassword = path.join(dir, "e2e-admin-password");
  if (existsSync(chosenPassword)) {
    await signInAs(page, "admin", readFileSync(chosenPassword, "utf8").trim());
    return;
  }
  const initial = path.join(dir, "initial-admin-password");
  const generated = readFileSync(initial, "utf8").trim();
  await page.goto("/login");
  await page.getByLabel("User name").fill("admin");
  await page.getByLabel("Password").fill(generated);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Choose a new password");
  const chosen = `e2e admin passphrase ${Date.now()}`;
  await page.getByLabel("Current password").fill(generated);
  await page.getByLabel("New password", { exact: true }).fill(chosen);
  await page.getByLabel("New password again").fill(chosen);
  await page.getByTestId("change-password").click();
  await expect(page.getByTestId("password-changed")).toBeVisible();
  writeFileSync(chosenPassword, chosen);
  expect(existsSync(initial)).toBe(false);
  await page.goto("/");
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Rollout overview");
}
