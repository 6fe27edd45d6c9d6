import { test, expect } from "@playwright/test";
import { ownConsole, signIn } from "./helpers";

const app = ownConsole("login");

test("an anonymous visitor is sent to sign in, and can sign out again", async ({ page }) => {
  await page.goto("/");
  await expect(page).toHaveURL(/\/login\?next=%2F$/);
  await page.getByLabel("User name").fill("admin");
  await page.getByLabel("Password").fill("not the password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByTestId("login-error")).toHaveText("Wrong user name or password.");
  await signIn(page, app.dataDir);
  await page.getByTestId("sign-out").click();
  await expect(page).toHaveURL(/\/login$/);
  await page.goto("/");
  await expect(page).toHaveURL(/\/login\?next=%2F$/);
});

