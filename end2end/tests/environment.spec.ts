import { test, expect, type Page } from "@playwright/test";
import { execFileSync } from "node:child_process";
import { cli, ownConsole, signIn, signInAs } from "./helpers";

const app = ownConsole("environment");

async function openEnvironment(page: Page, env: string) {
  await page.goto(`/env/${env}`);
  await expect(page.locator("body[data-hydrated=true]")).toBeAttached();
  await expect(page.getByTestId("live")).toHaveText("live");
}

test("an operator dry-runs dev, backfills it live to 100%, verifies and rolls back", async ({ page }) => {
  await signIn(page, app.dataDir);
  await page.getByTestId("open-dev").click();
  await expect(page).toHaveURL(/\/env\/dev$/);
  await openEnvironment(page, "dev");
  await expect(page.getByTestId("no-run")).toBeVisible();

  await page.getByTestId("dry-run").click();
  await expect(page.getByTestId("would-reject")).toHaveText("50");
  await expect(page.getByTestId("would-create")).toHaveText("9,950");

  // the embedded targets are SQLite: a second worker is refused with a sentence beside the form,
  // before any confirmation, and so is a chunk size of 0
  await page.getByTestId("workers").fill("2");
  await expect(page.getByTestId("start-invalid")).toContainText("This target is SQLite");
  await expect(page.getByTestId("start")).toBeDisabled();
  await page.getByTestId("workers").fill("1");
  await page.getByTestId("chunk").fill("0");
  await expect(page.getByTestId("start-invalid")).toContainText("Chunk size must be between 1 and");
  await expect(page.getByTestId("dry-run")).toBeDisabled();
  await expect(page.getByTestId("no-run")).toBeVisible();

  await page.getByTestId("chunk").fill("250");
  await page.getByTestId("pause").fill("50");
  await page.getByTestId("start").click();
  await page.getByTestId("confirm-yes").click();
  // pushed, never reloaded: the same document goes from running to 100%
  await page.evaluate(() => ((window as any).__sameDocument = true));
  await expect(page.getByTestId("run-state")).toHaveText(/running|queued/);
  await expect(page.getByTestId("progress")).toHaveText("100.0%", { timeout: 30_000 });
  await expect(page.getByTestId("run-state")).toHaveText("completed");
  await expect(page.getByTestId("school")).not.toHaveText("0");
  await expect(page.getByTestId("rejected")).toHaveText("50");
  await expect(page.getByTestId("chart-rows").locator("svg")).toBeVisible();
  await expect(page.getByTestId("chart-throughput").locator("svg")).toBeVisible();
  expect(await page.evaluate(() => (window as any).__sameDocument)).toBe(true);
  await expect(page.getByTestId("history")).toContainText("user:admin");
  await expect(page.getByTestId("dead-letters-page")).toContainText("50 rows");
  // rejected rows: paged and filtered in place
  const rejected = page.locator("section[aria-labelledby=dead-heading]");
  await expect(rejected.getByTestId("dead-letters-page")).toHaveText("page 1 of 4 · 50 rows");
  await rejected.getByRole("button", { name: "Next" }).click();
  await expect(rejected.getByTestId("dead-letters-page")).toHaveText("page 2 of 4 · 50 rows");
  await rejected.getByTestId("reason-filter").selectOption("ambiguous");
  await expect(rejected.getByTestId("dead-letters-page")).toHaveText("page 1 of 1 · 10 rows");
  await expect(rejected.getByTestId("dead-letters").locator("tbody tr")).toHaveCount(10);
  await expect(rejected.getByTestId("dead-letters")).not.toContainText("unknown_pace");
  await expect(rejected.getByTestId("dead-letters-csv")).toHaveAttribute("href", "/env/dev/dead-letters.csv?reason=ambiguous");

  // turning the flag on before verifying is refused: the sentence stands beside the form, which
  // stays open with what was typed
  await page.getByTestId("flag-toggle").click();
  await page.getByTestId("flag-reason").fill("too early");
  await page.getByTestId("flag-confirm-yes").click();
  await expect(page.getByTestId("flag-refused")).toContainText("verif");
  await expect(page.getByTestId("flag-reason")).toHaveValue("too early");
  await page.getByTestId("flag-confirm-no").click();
  await expect(page.getByTestId("flag-refused")).toHaveCount(0);

  await page.getByTestId("verify").click();
  await expect(page.getByTestId("verification")).toContainText("matches");
  await expect(page.getByTestId("phase-verify")).toContainText("done");

  // the flag: on once verified, with its history; a checklist item signed; off again
  await page.getByTestId("flag-toggle").click();
  await page.getByTestId("flag-reason").fill("dev verified");
  await page.getByTestId("flag-confirm-yes").click();
  await expect(page.getByTestId("flag-state")).toHaveText("on");
  await expect(page.getByTestId("phase-flag-on")).toContainText("done");
  await expect(page.getByTestId("phase-sign-off")).toContainText("active");
  await expect(page.getByTestId("flag-history")).toContainText("dev verified");
  await page.getByTestId("sign-open-dev-1").click();
  // nothing is chosen for the signer: Sign waits for a state
  await expect(page.getByTestId("sign-dev-1")).toBeDisabled();
  await page.getByTestId("sign-state-dev-1").selectOption("pass");
  await page.getByTestId("sign-dev-1").click();
  await expect(page.getByTestId("check-1")).toContainText("pass by user:admin");
  await expect(page.getByTestId("checklist-tally")).toHaveText("1 of 9 signed — 1 pass · 8 pending");
  // the signed item's form closed with the sign-off; a refused one stays open, the reason beside it
  await expect(page.getByTestId("sign-state-dev-1")).toBeHidden();
  await page.getByTestId("sign-open-dev-2").click();
  await page.getByTestId("sign-state-dev-2").selectOption("fail");
  await page.getByTestId("sign-dev-2").click();
  await expect(page.getByTestId("sign-error-dev-2")).toHaveText("say why the item is fail");
  await expect(page.getByTestId("sign-comment-dev-2")).toBeVisible();
  await page.getByTestId("sign-comment-dev-2").fill("contract tests red on the flag path");
  await page.getByTestId("sign-dev-2").click();
  await expect(page.getByTestId("checklist-tally")).toHaveText("1 of 9 signed — 1 pass · 1 fail · 7 pending");
  await page.getByTestId("flag-toggle").click();
  await page.getByTestId("flag-reason").fill("rehearsing the rollback");
  await page.getByTestId("flag-confirm-yes").click();
  await expect(page.getByTestId("flag-state")).toHaveText("off");
  await expect(page.getByTestId("phase-flag-on")).toContainText("turned off");

  await page.getByTestId("plan-rollback").click();
  await expect(page.getByTestId("rollback-plan")).toContainText("Would delete 9,950 rows");
  await page.getByTestId("start-rollback").click();
  await page.getByTestId("confirm-yes").click();
  await expect(page.getByRole("heading", { name: /^Rollback #/ })).toBeVisible({ timeout: 30_000 });
  await expect(page.getByTestId("run-state")).toHaveText("completed", { timeout: 30_000 });
});

test("an operator pauses, resumes and emergency-stops a long prod run, typing prod to confirm", async ({ page }) => {
  await signIn(page, app.dataDir);
  await openEnvironment(page, "prod");
  await page.getByTestId("chunk").fill("1000");
  await page.getByTestId("pause").fill("200");
  // prod's gate is closed (staging is not verified): an admin overrides it with a reason
  await expect(page.getByTestId("gate")).toContainText("staging must be verified first");
  await expect(page.getByTestId("start")).toBeDisabled();
  await page.getByTestId("gate-override").fill("rehearsal on demo data");
  await page.getByTestId("start").click();
  await expect(page.getByTestId("confirm-yes")).toBeDisabled();
  await page.getByTestId("confirm-name").fill("prod");
  await page.getByTestId("confirm-yes").click();
  await expect(page.getByTestId("run-state")).toHaveText("running");

  await page.getByTestId("pause-run").click();
  await expect(page.getByTestId("run-state")).toHaveText("paused");
  const keys = await page.getByTestId("keys").textContent();
  await page.waitForTimeout(1_000);
  await expect(page.getByTestId("keys")).toHaveText(keys!);
  await page.getByTestId("resume-run").click();
  await expect(page.getByTestId("run-state")).toHaveText("running");
  await expect(page.getByTestId("keys")).not.toHaveText(keys!);

  await page.getByTestId("emergency-stop").click();
  await page.getByTestId("stop-reason").fill("error rate up in prod");
  await page.getByTestId("confirm-name").fill("prod");
  await page.getByTestId("confirm-yes").click();
  await expect(page.getByTestId("flash")).toContainText("prod: ENABLE_STI off");
  await expect(page.getByTestId("run-state")).toHaveText("cancelled");
  await expect(page.getByTestId("flag")).toHaveText("ENABLE_STI off");
});

test("a viewer sees the environment page without any control, and cannot post one", async ({ browser }) => {
  execFileSync(cli, ["--data-dir", app.dataDir, "user", "add", "--username", "watcher", "--role", "viewer"], {
    input: "only looking, thanks\n",
    stdio: ["pipe", "pipe", "pipe"],
  });
  const context = await browser.newContext();
  const page = await context.newPage();
  await signInAs(page, "watcher", "only looking, thanks");
  await openEnvironment(page, "staging");
  await expect(page.getByRole("heading", { name: "Staging environment" })).toBeVisible();
  await expect(page.getByRole("heading", { name: "Run history" })).toBeVisible();
  await expect(page.getByRole("heading", { name: "Controls" })).toHaveCount(0);
  await expect(page.getByTestId("emergency-stop")).toHaveCount(0);
  await expect(page.getByTestId("flag-toggle")).toHaveCount(0);
  // a viewer signs the checklist items a viewer owns, and nothing else
  await expect(page.getByTestId("sign-open-staging-9")).toBeVisible();
  await expect(page.getByTestId("sign-open-staging-1")).toHaveCount(0);
  const direct = await page.request.post("/api/start_run", {
    form: { env: "staging", kind: "backfill", chunk_size: "100", pause_ms: "0", confirm: "" },
    headers: { "x-sti-console": "1" },
  });
  expect(direct.status()).toBe(403);
  await context.close();
});

test("the environment page fits a phone screen", async ({ page }) => {
  await page.setViewportSize({ width: 390, height: 844 });
  await signIn(page, app.dataDir);
  await openEnvironment(page, "dev");
  await expect(page.getByRole("heading", { name: "Run history" })).toBeVisible();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
});

test("an operator sees the controls but not the admin's pages", async ({ browser }) => {
  execFileSync(cli, ["--data-dir", app.dataDir, "user", "add", "--username", "oncall", "--role", "operator"], {
    input: "operating the rollout\n",
    stdio: ["pipe", "pipe", "pipe"],
  });
  const context = await browser.newContext();
  const page = await context.newPage();
  await signInAs(page, "oncall", "operating the rollout");
  await expect(page.getByTestId("whoami")).toHaveText("oncall · operator");
  await expect(page.getByTestId("nav-keys")).toHaveCount(0);
  await expect(page.getByTestId("stop-all")).toBeVisible();
  await openEnvironment(page, "staging");
  await expect(page.getByRole("heading", { name: "Controls" })).toBeVisible();
  await expect(page.getByTestId("gate")).toContainText("dev must be verified first");
  await expect(page.getByTestId("start")).toBeDisabled();
  await expect(page.getByTestId("gate-override")).toHaveCount(0);
  const keys = await page.request.post("/api/list_api_keys", { headers: { "x-sti-console": "1" } });
  expect(keys.status()).toBe(403);
  await context.close();
});
