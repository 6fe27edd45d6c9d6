import { expect, type Page } from "@playwright/test";
import { readFileSync } from "node:fs";
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

/** Signs in as the first administrator, whose password the first start wrote to the data folder. */
export async function signIn(page: Page) {
  await signInAs(page, "admin", readFileSync(path.join(dataDir, "initial-admin-password"), "utf8").trim());
}
