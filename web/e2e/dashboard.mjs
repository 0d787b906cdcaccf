// The dashboard end to end, in headless Chromium driven by playwright-core. Started by run.sh,
// which provides a running `hyperdial server` (HYPERDIAL_SERVER) and the binary (HYPERDIAL_BIN).
import { spawn, execFileSync } from "node:child_process";
import { chromium } from "playwright-core";

const base = process.env.HYPERDIAL_SERVER;
const bin = process.env.HYPERDIAL_BIN;
const work = process.env.E2E_WORK;
const out = process.env.E2E_OUT;
const results = [];
const agents = [];

async function check(name, fn) {
  const started = Date.now();
  try {
    await fn();
    results.push([name, true]);
    console.log(`PASS ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    results.push([name, false]);
    console.log(`FAIL ${name}: ${e && e.message ? e.message.split("\n")[0] : e}`);
  }
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));
page.on("console", (m) => m.type() === "error" && errors.push(m.text()));

let sweepId = "";
try {
  await check("sweeps page renders (empty)", async () => {
    await page.goto(base + "/");
    await page.waitForSelector("h1:has-text('Sweeps')");
    await page.waitForSelector("#live.on", { timeout: 10_000 });
  });

  sweepId = JSON.parse(execFileSync(bin, ["sweep", "--json", "sweep.yaml"], { cwd: work, env: process.env }).toString()).id;
  assert(sweepId, "sweep created");

  await check("a new sweep appears on the sweeps page live", async () => {
    await page.waitForSelector(`tr[data-sweep='${sweepId}']`, { timeout: 10_000 });
  });

  await check("sweep page renders before any run", async () => {
    await page.click(`a[href='/sweeps/${sweepId}']`);
    await page.waitForSelector("h1:has-text('e2e-dashboard')");
    await page.waitForSelector("#live.on", { timeout: 10_000 });
    assert((await page.locator("#runs tbody tr[data-run]").count()) === 0, "no runs yet");
  });

  for (let i = 0; i < 2; i++) {
    const a = spawn(bin, ["agent", sweepId], { cwd: work, env: process.env, stdio: "ignore" });
    agents.push(a);
  }

  await check("runs appear live without a reload", async () => {
    const url = page.url();
    await page.waitForSelector("#runs tbody tr[data-run]", { timeout: 30_000 });
    assert(page.url() === url, "no navigation");
    await page.waitForFunction(() => Number(document.querySelector("#run-count")?.getAttribute("data-total")) >= 3, null, { timeout: 30_000 });
  });

  await check("metric points stream into the learning curves", async () => {
    await page.waitForFunction(() => document.querySelector("#curve-key option") !== null, null, { timeout: 30_000 });
  });

  // Let the sweep finish (14 runs with 2 agents).
  await page.waitForFunction(
    () => document.querySelector("[data-fact='runs']")?.textContent?.includes("14 finished"),
    null,
    { timeout: 90_000 },
  );

  await check("importance is shown", async () => {
    await page.waitForSelector("#importance table.imp tr[data-param]", { timeout: 30_000 });
    const names = await page.locator("#importance tr[data-param]").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-param")));
    assert(names.length === 3 && names.includes("lr") && names.includes("opt"), `params ${names}`);
    const text = await page.locator("#importance").innerText();
    assert(/Random forest/.test(text), text);
  });

  await page.screenshot({ path: `${out}/sweep.png`, fullPage: true });

  await check("brushing a parallel-coordinates axis filters the runs table", async () => {
    const total = Number(await page.locator("#run-count").getAttribute("data-total"));
    const box = await page.locator("#parallel").boundingBox();
    // The metric axis is the last one: the parallel grid spans left 50 … right 110 px.
    const x = box.x + box.width - 110;
    const top = box.y + 40;
    const bottom = box.y + box.height - 30;
    await page.mouse.move(x, bottom - 2);
    await page.mouse.down();
    await page.mouse.move(x, (top + bottom) / 2, { steps: 8 });
    await page.mouse.move(x, top + (bottom - top) * 0.55, { steps: 4 });
    await page.mouse.up();
    await page.waitForSelector("#clear-brush", { timeout: 5_000 });
    await page.waitForFunction((t) => Number(document.querySelector("#run-count")?.getAttribute("data-total")) < t, total, { timeout: 5_000 });
    const filtered = Number(await page.locator("#run-count").getAttribute("data-total"));
    assert(filtered >= 1 && filtered < total, `filtered ${filtered} of ${total}`);
    await page.screenshot({ path: `${out}/sweep-brushed.png`, fullPage: false, clip: { x: 0, y: box.y - 60, width: 1400, height: 900 } });
    await page.click("#clear-brush");
    await page.waitForFunction((t) => Number(document.querySelector("#run-count")?.getAttribute("data-total")) === t, total, { timeout: 5_000 });
  });

  await check("the runs table sorts by the metric", async () => {
    await page.click("th[data-sort='metric']");
    await page.waitForSelector("th[data-sort='metric'].on");
    const values = await page.locator("#runs tbody tr[data-run] td:nth-child(4)").allInnerTexts();
    const nums = values.map(Number);
    assert(nums.every((v, i) => i === 0 || nums[i - 1] <= v), `sorted ${nums}`);
  });

  await check("notes survive a reload", async () => {
    const note = `Learned: lr near 3e-3 wins, **sgd** hurts (${Date.now()})`;
    await page.fill("#notes-input", note);
    await page.click("#notes-save");
    await page.waitForSelector("#notes-status:has-text('saved')");
    await page.reload();
    await page.waitForFunction(() => (document.querySelector("#notes-input")?.value || "").startsWith("Learned:"), null, { timeout: 10_000 });
    const html = await page.locator("#notes-view").innerHTML();
    assert(html.includes("<strong>sgd</strong>"), html);
  });

  await check("the config is shown as YAML", async () => {
    const text = await page.locator("#config").innerText();
    assert(text.includes("log_uniform_values"), text);
  });

  await check("run page shows config, summary, metric charts, output and command", async () => {
    await page.click("#runs tbody tr[data-run] a");
    await page.waitForSelector("#run-info");
    await page.waitForSelector("#run-charts [data-metric='loss'] canvas", { timeout: 10_000 });
    await page.waitForSelector("#run-charts [data-metric='acc'] canvas");
    const output = await page.locator("#run-output").innerText();
    assert(output.includes("hyperdial: loss="), output.slice(0, 200));
    const info = await page.locator("#run-info").innerText();
    assert(info.includes("finished") && /exit status\s*0/i.test(info), info);
    assert((await page.locator("#run-summary").innerText()).includes("loss"), "summary");
    await page.screenshot({ path: `${out}/run.png`, fullPage: true });
  });

  await check("sweeps page lists the sweep with counts, best and controls", async () => {
    await page.goto(base + "/");
    const row = page.locator(`tr[data-sweep='${sweepId}']`);
    await row.waitFor();
    const text = await row.innerText();
    assert(text.includes("14") && text.includes("finished"), text);
    await page.screenshot({ path: `${out}/sweeps.png`, fullPage: true });
  });

  await check("no errors in the browser console", async () => {
    assert(errors.length === 0, errors.join(" | "));
  });
} finally {
  for (const a of agents) a.kill("SIGTERM");
  await browser.close();
}
const passed = results.filter((r) => r[1]).length;
const failed = results.length - passed;
console.log(`screenshots: ${out}/{sweeps,sweep,sweep-brushed,run}.png`);
console.log(`e2e: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
