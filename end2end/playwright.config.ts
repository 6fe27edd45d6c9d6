import { defineConfig, devices } from "@playwright/test";

// Debian's Chromium, never a downloaded browser. These flags keep it off the network.
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

// No shared server: each spec starts a console of its own on a fresh data folder and a free
// port (tests/helpers.ts, ownConsole), so a spec passes alone and in any order.

export default defineConfig({
  testDir: "./tests",
  timeout: 60_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  forbidOnly: !!process.env.CI,
  reporter: [["list"]],
  use: { trace: "off" },
  projects: [
    {
      name: "chromium",
      use: {
        ...devices["Desktop Chrome"],
        launchOptions: {
          executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
          args: CHROMIUM_ARGS,
        },
      },
    },
  ],
});
