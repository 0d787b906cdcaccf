// Time to first render of the dashboard's pages in headless Chromium (playwright-core from
// web/node_modules). Usage: node bench/dashboard_browser.mjs BASE_URL SWEEP_ID
import { createRequire } from "node:module";
const require = createRequire(new URL("../web/package.json", import.meta.url));
const { chromium } = require("playwright-core");

const [base, sweep] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
async function time(name, url, selector, reps = 3) {
  const times = [];
  for (let i = 0; i < reps; i++) {
    const t = Date.now();
    await page.goto(url);
    await page.waitForSelector(selector, { timeout: 60_000 });
    times.push(Date.now() - t);
  }
  times.sort((a, b) => a - b);
  console.log(`| ${name} | ${times[0]} | ${times[Math.floor(times.length / 2)]} |`);
}
console.log("| page (until) | best (ms) | median of 3 (ms) |");
console.log("| --- | ---: | ---: |");
await time("sweeps list (table row)", `${base}/`, `tr[data-sweep='${sweep}']`);
await time("sweep page (runs table + header)", `${base}/sweeps/${sweep}`, "#runs tbody tr[data-run]");
await time("sweep page (importance shown)", `${base}/sweeps/${sweep}`, "#importance tr[data-param]");
await time("sweep page (parallel coordinates + scatters drawn)", `${base}/sweeps/${sweep}`, "#scatters canvas");
const firstRun = await page.locator("#runs tbody tr[data-run]").first().getAttribute("data-run");
await time("run page with 100k-step metric (chart drawn)", `${base}/runs/${firstRun}`, "#run-charts canvas");
await page.goto(`${base}/sweeps/${sweep}`);
await page.waitForSelector("#scatters canvas");
await page.waitForTimeout(1500);
await page.screenshot({ path: process.env.SHOT || "/tmp/dashboard-bench.png" });
await browser.close();
