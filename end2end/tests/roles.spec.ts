import { test, expect, type Page } from "@playwright/test";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { cli, ownConsole, repo, open, userPage } from "./helpers";

// Each role's main path on a console whose dev target is PostgreSQL (the blocking session is a
// PostgreSQL fact): an engineering manager reads where the rollout stands and what is next; an
// operator dry-runs, starts, meets a lock the application holds, pauses, resumes, verifies and
// turns the flag on; the on-call engineer reads the waiting box (how long, tries, give-up time,
// the session holding the table, the runbook). The stakeholder's path — signing from "My
// sign-offs" — is walked in rollout.spec.ts.

const admin = process.env.STI_TEST_PG_URL;
if (!admin && process.env.CI) throw new Error("STI_TEST_PG_URL must be set: scripts/test.sh starts PostgreSQL for the browser tests");
test.skip(!admin, "needs STI_TEST_PG_URL (a PostgreSQL superuser URL): scripts/test.sh sets it");

const database = `e2e_roles_${process.pid}`;
const targetUrl = () => `${admin!.slice(0, admin!.lastIndexOf("/"))}/${database}`;
const app = ownConsole("roles", {
  config: () => {
    execFileSync("psql", [admin!, "-qc", `drop database if exists ${database}`, "-c", `create database ${database}`], { stdio: "pipe" });
    // dev on PostgreSQL with demo rows; a short lock timeout and quick tries, so a held lock
    // shows as a wait within seconds
    return [
      "[environments]",
      `dev = "${targetUrl()}"`,
      "[demo_rows]",
      "dev = 20000",
      "[policy.dev.session]",
      "lock_timeout_ms = 300",
      "[policy.dev.retry]",
      "first_backoff_ms = 200",
      "max_backoff_ms = 1000",
      "",
    ].join("\n");
  },
});
const shots = process.env.ROLE_SCREENSHOTS ?? path.join(repo, "target/e2e-screenshots");

test.beforeAll(async () => {
  mkdirSync(shots, { recursive: true });
  const config = path.join(app.dataDir, "sti-rollout.toml");
  for (const [username, role, password] of [
    ["manager", "viewer", "reads the overview"],
    ["ops", "operator", "runs the rollout"],
    ["oncall", "operator", "woken at three"],
  ]) {
    execFileSync(cli, ["--config", config, "--data-dir", app.dataDir, "user", "add", "--username", username, "--role", role], {
      input: `${password}\n`,
      stdio: ["pipe", "pipe", "pipe"],
    });
  }
});

test.afterAll(() => {
  try {
    execFileSync("psql", [admin!, "-qc", `drop database if exists ${database} with (force)`], { stdio: "pipe" });
  } catch {
    // the cluster is stopped with its data after the run anyway
  }
});

/** The application, in a transaction left open after it locked the table the run writes. */
function applicationHoldingTheTable(): ChildProcess {
  const psql = spawn("psql", ["-q", targetUrl()], { stdio: ["pipe", "ignore", "ignore"] });
  psql.stdin!.write(
    [
      "set application_name = 'billing-app';",
      "begin;",
      "lock table school_projects in access exclusive mode;",
      "select 'Secret plan of Ana' as note, count(*) from school_projects;",
      "",
    ].join("\n"),
  );
  return psql;
}

test("the manager reads where each environment stands and what is next", async ({ browser }) => {
  const manager = await userPage(browser, "manager", "reads the overview", 1366);
  await open(manager, "/");
  for (const env of ["dev", "staging", "prod"]) {
    await expect(manager.getByTestId(`next-${env}`)).toContainText(`Next: dry-run ${env}`);
    await expect(manager.getByTestId(`run-${env}`)).toHaveText("No backfill has run here yet");
  }
  await expect(manager.getByTestId("env-dev")).toContainText("PostgreSQL");
  // a reader: no control anywhere
  await expect(manager.getByTestId("stop-all")).toHaveCount(0);
  await open(manager, "/env/dev");
  await expect(manager.getByTestId("next-step-line")).toHaveText("Next: dry-run dev");
  await expect(manager.getByTestId("next-action")).toHaveCount(0);
  await expect(manager.getByRole("heading", { name: "Controls" })).toHaveCount(0);
});

test("the operator meets a held lock, the on-call engineer reads the waiting box, the run ends verified and flagged", async ({ browser }) => {
  test.setTimeout(180_000);
  const ops = await userPage(browser, "ops", "runs the rollout", 1366);
  await open(ops, "/env/dev");
  // the next step is the one primary button: a dry-run first
  await expect(ops.getByTestId("next-step-line")).toHaveText("Next: dry-run dev");
  await ops.getByTestId("next-action").click();
  await expect(ops.getByTestId("dry-run-report")).toBeVisible();
  await expect(ops.getByTestId("next-step-line")).toHaveText("Next: start the live backfill in dev");
  await ops.getByTestId("chunk").fill("500");
  await ops.getByTestId("pause").fill("300");
  await ops.getByTestId("next-action").click();
  await ops.getByTestId("confirm-yes").click();
  await expect(ops.getByTestId("run-state")).toHaveText(/running|queued/);

  const application = applicationHoldingTheTable();
  try {
    await expect(ops.getByTestId("run-state")).toHaveText("waiting", { timeout: 20_000 });

    // the on-call engineer, on a phone, reads the box
    const oncall = await userPage(browser, "oncall", "woken at three", 390);
    await open(oncall, "/env/dev");
    const box = oncall.getByTestId("run-hold");
    await expect(box).toContainText("lock timeout");
    await expect(oncall.getByTestId("waiting-tries")).toHaveText(/^[1-9]\d*$/);
    await expect(oncall.getByTestId("waiting-gives-up")).toContainText("the run fails then and keeps what it copied");
    const blockers = oncall.getByTestId("blockers-table");
    await expect(blockers).toContainText("billing-app");
    await expect(blockers).toContainText("idle in transaction");
    await expect(blockers).toContainText("select ? as note, count(*) from school_projects");
    await expect(blockers).not.toContainText("Secret plan");
    await expect(oncall.getByTestId("runbook-link")).toHaveAttribute("href", "/runbook#a-run-that-waits");
    await box.screenshot({ path: path.join(shots, "environment-waiting-box-phone.png") });
    await ops.getByTestId("run-hold").screenshot({ path: path.join(shots, "environment-waiting-box-laptop.png") });

    // the on-call engineer pauses from the box; the operator's page follows
    await oncall.getByTestId("waiting-pause").click();
    await expect(ops.getByTestId("run-state")).toHaveText("paused", { timeout: 20_000 });
    // the box went with the wait; the runbook section it linked to is a page
    await open(oncall, "/runbook#a-run-that-waits");
    await expect(oncall.locator("#a-run-that-waits")).toBeInViewport();
  } finally {
    // the application commits and goes
    application.stdin!.end("commit;\n");
  }

  await expect(ops.getByTestId("next-step-line")).toContainText("resume");
  await ops.getByTestId("next-action").click();
  await expect(ops.getByTestId("run-state")).toHaveText("completed", { timeout: 60_000 });
  await expect(ops.getByTestId("next-step-line")).toHaveText("Next: verify dev");
  await ops.getByTestId("next-action").click();
  await expect(ops.getByTestId("verification")).toContainText("matches");
  await expect(ops.getByTestId("next-step-line")).toHaveText("Next: turn ENABLE_STI on in dev");
  await ops.getByTestId("next-action").click();
  await ops.getByTestId("flag-reason").fill("dev verified after the lock");
  await ops.getByTestId("flag-confirm-yes").click();
  await expect(ops.getByTestId("flag-state")).toHaveText("on");
});
