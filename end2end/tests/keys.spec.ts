import { test, expect } from "@playwright/test";
import { execFileSync } from "node:child_process";
import { cli, ownConsole, signIn, signInAs } from "./helpers";

const app = ownConsole("keys");

test("an admin sees and revokes API keys; a viewer neither sees nor reaches them", async ({ page, browser }) => {
  execFileSync(cli, ["--data-dir", app.dataDir, "apikey", "create", "--env", "prod", "--scope", "read"], { stdio: "pipe" });
  execFileSync(cli, ["--data-dir", app.dataDir, "user", "add", "--username", "stakeholder", "--role", "viewer"], {
    input: "a viewer's passphrase\n",
    stdio: ["pipe", "pipe", "pipe"],
  });

  await signIn(page, app.dataDir);
  await expect(page.getByTestId("whoami")).toHaveText("admin · admin");
  await page.getByTestId("nav-keys").click();
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("API keys");
  await expect(page.getByTestId("key-1")).toContainText("prod");
  await expect(page.getByTestId("revoke-1")).toBeVisible();

  const viewerContext = await browser.newContext();
  const viewer = await viewerContext.newPage();
  await signInAs(viewer, "stakeholder", "a viewer's passphrase");
  await expect(viewer.getByTestId("whoami")).toHaveText("stakeholder · viewer");
  await expect(viewer.getByTestId("nav-keys")).toHaveCount(0);
  const direct = await viewer.request.post("/api/revoke_api_key", { form: { id: "1" }, headers: { "x-sti-console": "1" } });
  expect(direct.status()).toBe(403);
  await viewerContext.close();

  await expect(page.locator("body[data-hydrated=true]")).toBeAttached();
  await page.getByTestId("revoke-1").click();
  await expect(page.getByTestId("key-1")).toContainText("revoked");
});
