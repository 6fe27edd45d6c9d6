import { test, expect, type Page } from "@playwright/test";
import { ownConsole, signIn } from "./helpers";

// What the first and a repeat visit of an environment page cost on the wire: bytes as the
// browser received them (compressed, headers included), counted by Chromium's network log, and
// the time until the islands are hydrated. The figures are printed for docs/benchmarks.md.
const FIRST_VISIT_BUDGET = 450 * 1024;
const REPEAT_VISIT_BUDGET = 30 * 1024;

const app = ownConsole("load");

/** Loads `path` and returns the bytes received until the page is hydrated and idle, and the time to hydration. */
async function measure(page: Page, path: string): Promise<{ bytes: number; ms: number; requests: number }> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  let bytes = 0;
  let requests = 0;
  cdp.on("Network.loadingFinished", (event) => {
    bytes += event.encodedDataLength;
    requests += 1;
  });
  const start = Date.now();
  await page.goto(path);
  await expect(page.locator("body[data-hydrated=true]")).toBeAttached();
  const ms = Date.now() - start;
  await page.waitForLoadState("networkidle");
  await cdp.detach();
  return { bytes, ms, requests };
}

test("the first visit of /env/prod stays under 450 KB on the wire and a repeat visit under 30 KB", async ({
  page,
  browser,
}) => {
  await signIn(page, app.dataDir);
  // a browser that has the session but has never loaded an asset
  const fresh = await browser.newContext({ storageState: await page.context().storageState() });
  const visitor = await fresh.newPage();
  const first = await measure(visitor, `${app.url}/env/prod`);
  const repeat = await measure(visitor, `${app.url}/env/prod`);
  console.log(
    `load /env/prod: first visit ${(first.bytes / 1024).toFixed(1)} KB in ${first.requests} requests, hydrated after ${first.ms} ms; ` +
      `repeat visit ${(repeat.bytes / 1024).toFixed(1)} KB in ${repeat.requests} requests, hydrated after ${repeat.ms} ms`,
  );
  await fresh.close();
  expect(first.bytes, "first visit, bytes received").toBeLessThanOrEqual(FIRST_VISIT_BUDGET);
  expect(repeat.bytes, "repeat visit, bytes received").toBeLessThanOrEqual(REPEAT_VISIT_BUDGET);
});
