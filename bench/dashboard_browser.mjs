// The dashboard in headless Chromium (playwright-core from web/node_modules).
//
//   node bench/dashboard_browser.mjs BASE_URL SWEEP_ID            time to first render per page
//   node bench/dashboard_browser.mjs BASE_URL SWEEP_ID --live 60  a live sweep, measured
//
// --live S: with the sweep page open, this script plays 10 agents on the sweep for S seconds
// (each claims a run, posts one metric point a second for 10 s, finishes it: about 60 new runs
// and 600 metric batches a minute), and reports, scaled to one minute, the bytes the page
// received (as sent over the wire, so compressed when the server compressed; headers included)
// and the main thread's busy time (Chromium's TaskDuration) as a share of wall time. Then the
// same for the run page of a running run.
import { createRequire } from "node:module";
const require = createRequire(new URL("../web/package.json", import.meta.url));
const { chromium } = require("playwright-core");

const [base, sweep, flag, seconds] = process.argv.slice(2);
const live = flag === "--live" ? Number(seconds || 60) : 0;
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
if (live) {
  await measureLive();
} else {
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
}
await browser.close();

async function api(method, path, body) {
  const r = await fetch(base + path, {
    method,
    headers: { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return r.status === 204 ? null : r.json();
}

// Ten agents' worth of runs on the sweep until `until` (ms since the epoch).
async function agents(until, onRun) {
  const one = async (k) => {
    while (Date.now() < until) {
      const claim = await api("POST", `/api/v1/sweeps/${sweep}/claim`, {});
      const run = claim?.run;
      if (!run) return;
      onRun?.(run.id);
      for (let step = 0; step < 10 && Date.now() < until; step++) {
        await new Promise((r) => setTimeout(r, 1000));
        await api("POST", `/api/v1/runs/${run.id}/metrics`, { points: [{ step, values: { loss: 0.3 + 2 / (step + 1) + 0.01 * k, acc: step / 10 } }] });
      }
      await api("POST", `/api/v1/runs/${run.id}/finish`, { exit_code: 0 });
    }
  };
  await Promise.all(Array.from({ length: 10 }, (_, k) => one(k)));
}

// Bytes received and main-thread busy time while `drive` runs, scaled to a minute.
async function measure(name, drive) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Performance.enable");
  const finished = new Map();
  const streamed = new Map();
  cdp.on("Network.dataReceived", (e) => streamed.set(e.requestId, (streamed.get(e.requestId) ?? 0) + e.encodedDataLength));
  cdp.on("Network.loadingFinished", (e) => finished.set(e.requestId, e.encodedDataLength));
  const busy = async () => (await cdp.send("Performance.getMetrics")).metrics.find((m) => m.name === "TaskDuration").value;
  const t0 = Date.now();
  const b0 = await busy();
  await drive();
  const b1 = await busy();
  const wall = (Date.now() - t0) / 1000;
  let bytes = 0;
  for (const v of finished.values()) bytes += v;
  for (const [id, v] of streamed) if (!finished.has(id)) bytes += v;
  const perMin = 60 / wall;
  console.log(`| ${name} | ${wall.toFixed(0)} | ${((bytes * perMin) / 1e6).toFixed(2)} | ${(((b1 - b0) / wall) * 100).toFixed(1)} % | ${finished.size + [...streamed.keys()].filter((k) => !finished.has(k)).length} |`);
  await cdp.detach();
}

async function measureLive() {
  console.log("| page, live sweep | seconds | MB per minute | main thread busy | requests |");
  console.log("| --- | ---: | ---: | ---: | ---: |");
  await page.goto(`${base}/sweeps/${sweep}`);
  await page.waitForSelector("#scatters canvas", { timeout: 120_000 });
  await page.waitForSelector("#live.on", { timeout: 30_000 });
  await page.waitForTimeout(3000);
  await measure("sweep page", () => agents(Date.now() + live * 1000));
  // The run page of a run that has logged 50 000 steps and logs 10 more a second, while the
  // agents go on.
  const long = (await api("POST", `/api/v1/sweeps/${sweep}/claim`, {})).run.id;
  let step = 0;
  for (let b = 0; b < 5; b++) {
    const points = Array.from({ length: 10_000 }, () => ({ step: step++, values: { loss: 1 / (1 + step * 1e-3) } }));
    await api("POST", `/api/v1/runs/${long}/metrics`, { points });
  }
  const until = Date.now() + live * 1000 + 15_000;
  const driving = agents(until);
  const logging = (async () => {
    while (Date.now() < until) {
      await new Promise((r) => setTimeout(r, 1000));
      const points = Array.from({ length: 10 }, () => ({ step: step++, values: { loss: 1 / (1 + step * 1e-3) } }));
      await api("POST", `/api/v1/runs/${long}/metrics`, { points });
    }
    await api("POST", `/api/v1/runs/${long}/finish`, { exit_code: 0 });
  })();
  await page.goto(`${base}/runs/${long}`);
  await page.waitForSelector("#run-charts canvas", { timeout: 60_000 });
  await page.waitForSelector("#live.on", { timeout: 30_000 });
  await page.waitForTimeout(3000);
  await measure("run page (50 000 steps, 10 more a second)", () => new Promise((r) => setTimeout(r, live * 1000)));
  await logging;
  await driving;
}
