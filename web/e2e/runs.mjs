// The runs page and `hyperdial ui` end to end, in headless Chromium driven by playwright-core.
// Started by run.sh after dashboard.mjs, with the same running `hyperdial server`
// (HYPERDIAL_SERVER) on E2E_WORK/db.sqlite and the binary (HYPERDIAL_BIN). Prints one line per
// check and `e2e-runs: N passed, N failed`.
import { spawn, execFileSync } from "node:child_process";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";
import { assert, check, finish } from "./checks.mjs";

const base = process.env.HYPERDIAL_SERVER;
const bin = process.env.HYPERDIAL_BIN;
const work = process.env.E2E_WORK;
const out = process.env.E2E_OUT;

async function api(method, path, body) {
  const r = await fetch(base + path, {
    method,
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, body: await r.json().catch(() => null) };
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));
page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
let ui = null;

try {
  // A run outside any sweep, as `hyperdial run` makes it.
  execFileSync(bin, ["run", "--project", "e2e-solo", "--name", "solo-run", "--", "python3", "-c", 'print(\'hyperdial: {"loss": 0.25}\')'], { cwd: work, env: process.env, stdio: "ignore" });
  const solo = (await api("GET", "/api/v1/runs?project=e2e-solo")).body.runs[0];

  await check("the nav link opens the runs page; a run outside any sweep is listed first", async () => {
    await page.goto(base + "/");
    await page.click("nav a[href='/runs']");
    await page.waitForSelector("h1:has-text('Runs')");
    await page.waitForSelector(`#all-runs tr[data-run='${solo.id}']`);
    const first = page.locator("#all-runs tbody tr").first();
    assert((await first.getAttribute("data-run")) === solo.id, "newest first");
    const text = await first.innerText();
    assert(text.includes("solo-run") && text.includes("e2e-solo") && text.includes("—") && text.includes("loss=0.25"), text);
    assert((await page.title()).startsWith("Runs"), await page.title());
    await page.screenshot({ path: `${out}/runs.png`, fullPage: true });
  });

  await check("sweep runs are listed too, linked to their sweep", async () => {
    const sweepRuns = (await api("GET", "/api/v1/runs?sort=created_ms&order=desc&limit=100")).body.runs.filter((r) => r.sweep);
    assert(sweepRuns.length > 0, "the sweep of dashboard.mjs has runs");
    const row = page.locator(`#all-runs tr[data-run='${sweepRuns[0].id}']`);
    await row.waitFor();
    assert((await row.locator(`a[href='/sweeps/${sweepRuns[0].sweep}']`).count()) === 1, "sweep link");
  });

  await check("project filter, paging and the URL keep the view", async () => {
    for (let i = 0; i < 55; i++) await api("POST", "/api/v1/runs", { project: "e2e-paging", name: `p${i}` });
    await page.fill("#runs-project", "e2e-paging");
    await page.press("#runs-project", "Enter");
    await page.waitForFunction(() => document.querySelector("#runs-summary")?.textContent === "Runs 1–50 of 55");
    assert((await page.locator("#all-runs tbody tr").count()) === 50, "50 a page");
    assert(new URL(page.url()).searchParams.get("project") === "e2e-paging", page.url());
    assert(await page.locator("#runs-prev").isDisabled(), "no newer page");
    await page.click("#runs-next");
    await page.waitForFunction(() => document.querySelector("#runs-summary")?.textContent === "Runs 51–55 of 55");
    assert((await page.locator("#all-runs tbody tr").count()) === 5, "5 on page 2");
    assert(await page.locator("#runs-next").isDisabled(), "no older page");
    await page.reload();
    await page.waitForFunction(() => document.querySelector("#runs-summary")?.textContent === "Runs 51–55 of 55");
    assert((await page.inputValue("#runs-project")) === "e2e-paging", "filter kept on reload");
    await page.screenshot({ path: `${out}/runs-paged.png`, fullPage: true });
  });

  await check("a new run appears live on the runs page", async () => {
    await page.goto(base + "/runs?project=e2e-live");
    await page.waitForSelector("#runs-summary:has-text('No runs match.')");
    const made = (await api("POST", "/api/v1/runs", { project: "e2e-live", name: "live-run" })).body;
    await page.waitForSelector(`#all-runs tr[data-run='${made.id}']`, { timeout: 10_000 });
  });

  await check("hyperdial ui serves the same store beside the server", async () => {
    ui = spawn(bin, ["ui", "--db", `${work}/db.sqlite`, "--port", "0"], { cwd: work, env: process.env, stdio: ["ignore", "pipe", "ignore"] });
    const lines = createInterface({ input: ui.stdout });
    const url = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("ui printed no dashboard URL")), 20_000);
      lines.on("line", (l) => {
        const m = /^dashboard: (\S+?)\/?$/.exec(l);
        if (m) (clearTimeout(timer), resolve(m[1]));
      });
    });
    assert(url !== base, "a server of its own");
    await page.goto(`${url}/runs?project=e2e-solo`);
    await page.waitForSelector(`#all-runs tr[data-run='${solo.id}']`);
    await page.screenshot({ path: `${out}/ui-runs.png`, fullPage: true });
    // Leave the page first: its live event stream would be cut by the stop, and the browser
    // reports a cut stream as a console error.
    await page.goto("about:blank");
    const exited = new Promise((resolve) => ui.on("exit", (code) => resolve(code)));
    ui.kill("SIGINT");
    assert((await exited) === 0, "ui exits 0 on SIGINT");
    ui = null;
  });

  await check("no errors in the browser console (runs page)", async () => {
    assert(errors.length === 0, errors.join(" | "));
  });
} finally {
  if (ui) ui.kill("SIGKILL");
  await browser.close();
}
console.log(`screenshots: ${out}/{runs,runs-paged,ui-runs}.png`);
finish("e2e-runs");
