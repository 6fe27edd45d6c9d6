import { test, expect, type Browser, type Page } from "@playwright/test";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import path from "node:path";

export const repo = path.resolve(__dirname, "../..");
export const cli = path.join(repo, "target/release/sti-rollout");

/** A console of the spec's own: its data folder, its address once started. */
export interface Console {
  /** The data folder as the console was given it, relative to the repository. */
  relativeDir: string;
  /** The same, absolute: for the CLI. */
  dataDir: string;
  url: string;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Gives the spec file that calls it a console of its own on a fresh data folder
 * (`target/e2e-<name>`, demo data seeded at the first start) and a free port, started before
 * its tests and stopped after them, and points the tests' relative URLs at it: no spec sees
 * another's runs, flags, users or sign-offs, so each passes alone and in any order.
 */
export function ownConsole(name: string, options: { config?: () => string } = {}): Console {
  const relativeDir = `target/e2e-${name}`;
  const app: Console = { relativeDir, dataDir: path.join(repo, relativeDir), url: "" };
  let server: ChildProcess | undefined;
  test.beforeAll(async () => {
    test.setTimeout(240_000);
    rmSync(app.dataDir, { recursive: true, force: true });
    const port = await freePort();
    // a config file of the spec's own (its text made when the console starts), or the defaults
    const config: string[] = [];
    if (options.config) {
      mkdirSync(app.dataDir, { recursive: true });
      const file = path.join(app.dataDir, "sti-rollout.toml");
      writeFileSync(file, options.config());
      config.push("--config", file);
    }
    server = spawn(cli, [...config, "--data-dir", relativeDir, "serve", "--addr", `127.0.0.1:${port}`], {
      cwd: repo,
      stdio: "ignore",
    });
    app.url = `http://127.0.0.1:${port}`;
    // the first start seeds the demo data (1.11M rows) before it answers
    const deadline = Date.now() + 200_000;
    for (;;) {
      const up = await fetch(`${app.url}/health`).then((r) => r.ok, () => false);
      if (up) break;
      if (Date.now() > deadline || server.exitCode !== null) throw new Error(`the ${name} console did not start`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  });
  test.afterAll(() => {
    server?.kill("SIGTERM");
  });
  test.use({ baseURL: async ({}, use) => use(app.url) });
  return app;
}

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
export async function signIn(page: Page, dir: string) {
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

/** A page of its own (a fresh context) signed in as `username`; `width` sets a viewport 900 high. */
export async function userPage(browser: Browser, username: string, password: string, width?: number): Promise<Page> {
  const context = await browser.newContext(width ? { viewport: { width, height: 900 } } : {});
  const page = await context.newPage();
  await signInAs(page, username, password);
  return page;
}

/** Opens `where` and waits for the page to be hydrated (and live, for an environment page). */
export async function open(page: Page, where: string) {
  await page.goto(where);
  await expect(page.locator("body[data-hydrated=true]")).toBeAttached();
  if (where.startsWith("/env/")) await expect(page.getByTestId("live")).toHaveText("live");
}
