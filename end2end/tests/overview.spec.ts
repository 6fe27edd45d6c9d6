import { test, expect } from "@playwright/test";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { cli, ownConsole, signIn } from "./helpers";

const app = ownConsole("overview");

const demo = [
  { env: "dev", label: "Development", legacy: "10,000" },
  { env: "staging", label: "Staging", legacy: "100,000" },
  { env: "prod", label: "Production", legacy: "1,000,000" },
];

test("the overview shows every environment's real figures, server rendered", async ({ page }) => {
  await signIn(page, app.dataDir);
  await page.goto("/");
  await expect(page).toHaveTitle("Overview · STI Rollout Console");
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Rollout overview");
  for (const { env, label, legacy } of demo) {
    const panel = page.getByTestId(`env-${env}`);
    await expect(panel.getByRole("heading", { level: 2 })).toHaveText(label);
    await expect(panel.getByTestId(`legacy-${env}`)).toHaveText(legacy);
    await expect(panel.getByTestId(`flag-${env}`)).toHaveText("ENABLE_STI off");
    // this spec's own console: nothing has been backfilled anywhere
    await expect(panel.getByTestId(`school-${env}`)).toHaveText("0");
    await expect(panel.getByTestId(`self-study-${env}`)).toHaveText("0");
    await expect(panel.getByTestId(`coverage-${env}`)).toHaveText("0.0%");
    await expect(panel.getByTestId(`run-${env}`)).toHaveText("No backfill has run here yet");
    await expect(panel).toContainText(`SQLite · ${path.join(app.relativeDir, `${env}.db`)}`);
  }
  await expect(page.getByTestId("total-legacy")).toHaveText("1,110,000");
});

test("refresh refetches through a server function once the page is hydrated", async ({ page }) => {
  await signIn(page, app.dataDir);
  await page.goto("/");
  await expect(page.locator("body[data-hydrated=true]")).toBeAttached();
  await expect(page.getByTestId("legacy-dev")).toHaveText("10,000");

  // new legacy rows arrive behind the page's back, written by the CLI
  execFileSync(cli, ["--data-dir", app.dataDir, "seed", "--env", "dev", "--rows", "25", "--append"], {
    stdio: "pipe",
  });
  await expect(page.getByTestId("legacy-dev")).toHaveText("10,000");

  const serverCall = page.waitForRequest((r) => r.method() === "POST" && r.url().includes("/api/"));
  await page.getByTestId("refresh").click();
  await serverCall;
  await expect(page.getByTestId("legacy-dev")).toHaveText("10,025");
  await expect(page.getByTestId("total-legacy")).toHaveText("1,110,025");
  await expect(page.getByTestId("refresh")).toBeEnabled();
});

test("the overview fits a phone screen", async ({ page }) => {
  await page.setViewportSize({ width: 390, height: 844 });
  await signIn(page, app.dataDir);
  await page.goto("/");
  await expect(page.getByTestId("env-prod")).toBeVisible();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
});

test("health answers anyone; unknown pages are 404 once signed in", async ({ page, request }) => {
  const health = await request.get("/health");
  expect(health.status()).toBe(200);
  expect(await health.json()).toEqual({ status: "ok", control_database: "up" });
  const anonymous = await request.get("/no-such-page", { maxRedirects: 0 });
  expect(anonymous.status()).toBe(303);
  await signIn(page, app.dataDir);
  const missing = await page.goto("/no-such-page");
  expect(missing?.status()).toBe(404);
});


test("an admin sets the D-day and the timeline places every environment against it", async ({ page }) => {
  await signIn(page, app.dataDir);
  await page.goto("/");
  await expect(page.locator("body[data-hydrated=true]")).toBeAttached();
  await expect(page.getByTestId("gates")).toContainText("Staging live backfill:");
  const dDay = new Date(Date.now() + 10 * 86_400_000).toISOString().slice(0, 10);
  await page.getByTestId("d-day-input").fill(dDay);
  await page.getByTestId("d-day-reason").fill("planning meeting");
  await page.getByTestId("d-day-save").click();
  await expect(page.getByTestId("d-day")).toContainText(`(${dDay}), set by user:admin`);
  await expect(page.getByTestId("timeline-dev")).toContainText("D-7..D-5");
  await expect(page.getByTestId("timeline-prod")).toContainText("D-1..D+3");
  await expect(page.getByTestId("schedule-staging")).toHaveText("Upcoming");
  await expect(page.getByTestId("schedule-dev")).toHaveText(/^(Upcoming|On track|Done on time)$/);
});
