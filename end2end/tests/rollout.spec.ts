import { test, expect, type Page } from "@playwright/test";
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { cli, ownConsole, repo, signIn, open, userPage } from "./helpers";

// The whole rollout of the demo data, dev → staging → prod, through the browser, by the three
// kinds of user it takes: an operator runs it, a stakeholder (viewer) signs off, an admin watches
// the overview and signs what only an admin may. It runs its own console on its own data folder,
// so the other specs' runs, flags and sign-offs do not leak into it.
const app = ownConsole("rollout");
const data = app.dataDir;
// the overview at three moments; docs/screenshots/ holds the copies taken for the docs
const shots = process.env.ROLLOUT_SCREENSHOTS ?? path.join(repo, "target/e2e-screenshots");

test.beforeAll(async () => {
  mkdirSync(shots, { recursive: true });
  for (const [username, role, password] of [
    ["ops", "operator", "runs the rollout"],
    ["stakeholder", "viewer", "signs it off"],
  ]) {
    execFileSync(cli, ["--data-dir", data, "user", "add", "--username", username, "--role", role], {
      input: `${password}\n`,
      stdio: ["pipe", "pipe", "pipe"],
    });
  }
});

/** Dry-run, live backfill to 100% without a reload, verification: one environment's data. */
async function backfill(page: Page, env: string, chunk: string, pause: string) {
  await open(page, `/env/${env}`);
  await expect(page.getByTestId("gate")).toHaveCount(0);
  await page.getByTestId("chunk").fill(chunk);
  await page.getByTestId("dry-run").click();
  await expect(page.getByTestId("dry-run-report")).toBeVisible();
  await expect(page.getByTestId("phase-dry-run")).toContainText("done");
  await page.getByTestId("pause").fill(pause);
  await page.getByTestId("start").click();
  if (env === "prod") {
    await expect(page.getByTestId("confirm-yes")).toBeDisabled();
    await page.getByTestId("confirm-name").fill("prod");
  }
  await page.getByTestId("confirm-yes").click();
  // a small environment may be done before this looks: the run's heading is what is certain
  await expect(page.getByRole("heading", { name: /^Backfill #\d+$/ })).toBeVisible();
}

async function verifyAndFlag(page: Page, env: string) {
  await expect(page.getByTestId("progress")).toHaveText("100.0%", { timeout: 120_000 });
  await expect(page.getByTestId("run-state")).toHaveText("completed");
  await expect(page.getByTestId("phase-backfill")).toContainText("done");
  // the operator follows the page's next step: its one primary button does it
  await expect(page.getByTestId("next-step-line")).toHaveText(`Next: verify ${env}`);
  await page.getByTestId("next-action").click();
  await expect(page.getByTestId("verification")).toContainText("matches", { timeout: 60_000 });
  await expect(page.getByTestId("phase-verify")).toContainText("done");
  await expect(page.getByTestId("next-step-line")).toHaveText(`Next: turn ENABLE_STI on in ${env}`);
  await page.getByTestId("next-action").click();
  await page.getByTestId("flag-reason").fill(`${env} verified`);
  if (env === "prod") {
    await expect(page.getByTestId("flag-confirm-yes")).toBeDisabled();
    await page.getByTestId("flag-confirm-name").fill("prod");
  }
  await page.getByTestId("flag-confirm-yes").click();
  await expect(page.getByTestId("flag-state")).toHaveText("on");
  await expect(page.getByTestId("phase-flag-on")).toContainText("done");
  await expect(page.getByTestId("phase-sign-off")).toContainText("active");
}

/** Fills in and sends the sign form of item `id` in `env` (on its page or on My sign-offs). */
async function fill(page: Page, env: string, id: number) {
  await page.getByTestId(`sign-open-${env}-${id}`).click();
  await page.getByTestId(`sign-state-${env}-${id}`).selectOption("pass");
  await page.getByTestId(`sign-comment-${env}-${id}`).fill(`checked in ${env}`);
  await page.getByTestId(`sign-${env}-${id}`).click();
}

/** Signs a stakeholder's items `ids` in `env` from their "My sign-offs" page. */
async function signMine(page: Page, env: string, ids: number[], who: string) {
  await open(page, "/signoffs");
  for (const id of ids) {
    await fill(page, env, id);
    await expect(page.getByTestId(`mine-${env}-${id}`)).toContainText(`pass by user:${who}`);
    // signed: its form is gone
    await expect(page.getByTestId(`sign-open-${env}-${id}`)).toHaveCount(0);
  }
}

/** Signs checklist items `ids` in `env` as whoever `page` is signed in as. */
async function sign(page: Page, env: string, ids: number[], who: string) {
  await open(page, `/env/${env}`);
  for (const id of ids) {
    await fill(page, env, id);
    await expect(page.getByTestId(`check-${id}`)).toContainText(`pass by user:${who}`);
  }
}

const OPERATOR_ITEMS = [1, 2, 3, 4, 5];
const VIEWER_ITEMS = [6, 7, 9];
const ADMIN_ITEMS = [8];

test("the demo data is rolled out from dev to prod through the browser, gates, sign-offs and audit log included", async ({
  page: admin,
  browser,
}) => {
  test.setTimeout(420_000);
  await signIn(admin, data);
  const ops = await userPage(browser, "ops", "runs the rollout");
  const stakeholder = await userPage(browser, "stakeholder", "signs it off");

  await test.step("the plan: a D-day six days out, every phase pending, the gates closed", async () => {
    await open(admin, "/");
    const dDay = new Date(Date.now() + 6 * 86_400_000).toISOString().slice(0, 10);
    await admin.getByTestId("d-day-input").fill(dDay);
    await admin.getByTestId("d-day-reason").fill("rollout planned with the team");
    await admin.getByTestId("d-day-save").click();
    await expect(admin.getByTestId("d-day")).toContainText(`(${dDay}), set by user:admin`);
    await expect(admin.getByTestId("schedule-dev")).toHaveText(/On track|At risk/);
    await expect(admin.getByTestId("phases-prod")).not.toContainText("done");
    await expect(admin.getByTestId("gate-backfill-staging")).toContainText("closed: dev must be verified first");
    await admin.screenshot({ path: path.join(shots, "overview-1-planned.png"), fullPage: true });
  });

  await test.step("dev: an operator dry-runs, backfills, verifies and turns ENABLE_STI on", async () => {
    await backfill(ops, "dev", "1000", "0");
    await verifyAndFlag(ops, "dev");
  });

  await test.step("staging: the same, once dev's gate opened", async () => {
    await backfill(ops, "staging", "5000", "0");
    await verifyAndFlag(ops, "staging");
  });

  await test.step("prod is refused while staging's checklist is not signed — in the page and on the server", async () => {
    await open(ops, "/env/prod");
    await expect(ops.getByTestId("gate")).toContainText("staging must be signed off on its checklist first");
    await expect(ops.getByTestId("start")).toBeDisabled();
    await expect(ops.getByTestId("gate-override")).toHaveCount(0);
    const direct = await ops.request.post("/api/start_run", {
      form: { env: "prod", kind: "backfill", chunk_size: "5000", pause_ms: "0", confirm: "prod" },
      headers: { "x-sti-console": "1" },
    });
    expect(direct.status()).toBe(409);
    expect(await direct.text()).toContain("staging must be signed off on its checklist first");
    await expect(ops.getByTestId("no-run")).toBeVisible();
  });

  await test.step("staging's checklist: the operator, the stakeholder and the admin each sign their items", async () => {
    await sign(ops, "staging", OPERATOR_ITEMS, "ops");
    // a viewer may sign the items a viewer owns, and sees no form for the others
    await open(stakeholder, "/env/staging");
    await expect(stakeholder.getByTestId("sign-open-staging-1")).toHaveCount(0);
    await expect(stakeholder.getByTestId("flag-toggle")).toHaveCount(0);
    await signMine(stakeholder, "staging", VIEWER_ITEMS, "stakeholder");
    await sign(admin, "staging", ADMIN_ITEMS, "admin");
    await expect(admin.getByTestId("checklist-tally")).toHaveText("9 of 9 signed — 9 pass");
    await expect(admin.getByTestId("phase-sign-off")).toContainText("done");
    await expect(admin.getByTestId("phase-done")).toContainText("done");
  });

  await test.step("prod: the gate opens; the overview follows the backfill live", async () => {
    // paced, so the overview can be seen mid-run
    await backfill(ops, "prod", "5000", "60");
    await open(admin, "/");
    await expect(admin.getByTestId("run-prod")).toContainText(/running backfill #\d+ · \d/, { timeout: 20_000 });
    await expect(admin.getByTestId("phases-staging")).not.toContainText(/pending|active/);
    // prod's gate opened and it is backfilling: the gate no longer holds anyone back, so it is not listed
    await expect(admin.getByTestId("gate-backfill-prod")).toHaveCount(0);
    await expect(admin.getByTestId("next-prod")).toContainText(/Wait: backfill run #\d+ is running/);
    await admin.screenshot({ path: path.join(shots, "overview-2-prod-backfilling.png"), fullPage: true });
    await verifyAndFlag(ops, "prod");
    await expect(ops.getByTestId("flag-history")).toContainText("prod verified");
  });

  await test.step("prod's and dev's checklists signed: every environment done, and the overview says so", async () => {
    for (const env of ["prod", "dev"]) {
      await sign(ops, env, OPERATOR_ITEMS, "ops");
      await signMine(stakeholder, env, VIEWER_ITEMS, "stakeholder");
      await sign(admin, env, ADMIN_ITEMS, "admin");
      await expect(admin.getByTestId("phase-done")).toContainText("done");
    }
    await open(admin, "/");
    for (const env of ["dev", "staging", "prod"]) {
      await expect(admin.getByTestId(`flag-${env}`)).toHaveText("ENABLE_STI on");
      await expect(admin.getByTestId(`phases-${env}`)).not.toContainText(/pending|active|blocked/);
      await expect(admin.getByTestId(`next-${env}`)).toContainText(`Done: ${env} is rolled out and signed off`);
    }
    await expect(admin.getByTestId("no-gates")).toBeVisible();
    await expect(admin.getByTestId("coverage-prod")).not.toHaveText("0.0%");
    await admin.screenshot({ path: path.join(shots, "overview-3-done.png"), fullPage: true });
  });

  await test.step("the audit log shows all of it: who ran, verified, flipped and signed what", async () => {
    await open(admin, "/audit?env=prod");
    const entries = admin.getByTestId("audit-entries");
    for (const action of ["dry_run", "run.start", "verify", "flag.set", "checklist.sign"]) {
      await expect(entries).toContainText(action);
    }
    await expect(entries).toContainText("user:ops");
    await expect(entries).toContainText("prod verified");
    await admin.getByTestId("audit-actor").fill("stakeholder");
    await admin.getByTestId("audit-action").fill("checklist.sign");
    await admin.getByTestId("audit-apply").click();
    await expect(admin.getByTestId("audit-total")).toHaveText("3 entries");
    await expect(admin.getByTestId("audit-csv")).toHaveAttribute("href", /actor=stakeholder/);
    await admin.goto("/audit?action=timeline.d_day");
    await expect(admin.getByTestId("audit-entries")).toContainText("rollout planned with the team");
  });
});
