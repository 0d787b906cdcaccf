// The Pareto view of a multi-objective sweep, end to end in headless Chromium driven by
// playwright-core. Started by run.sh after the other scripts, with the same running
// `hyperdial server` (HYPERDIAL_SERVER) and binary (HYPERDIAL_BIN). A real 2-objective grid
// sweep (front-sweep.yaml, front_train.py) runs under a real `hyperdial agent`; a 3-objective
// sweep is filled through the API. Prints one line per check and `e2e-front: N passed, N failed`.
import { spawn, execFileSync } from "node:child_process";
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

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The centre (page coordinates) of a front point on the scatter's canvas: a pixel of the
// front's colour whose neighbours 3 px away are that colour too (the step line is thinner),
// below the legend.
async function frontPoint(page) {
  return page.evaluate(() => {
    const canvas = document.querySelector("#front-scatter canvas");
    const rect = canvas.getBoundingClientRect();
    const ctx = canvas.getContext("2d");
    const { width, height, data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
    const ratio = canvas.width / rect.width;
    const red = (x, y) => {
      const i = 4 * (y * width + x);
      return Math.abs(data[i] - 0xe5) < 20 && Math.abs(data[i + 1] - 0x55) < 20 && Math.abs(data[i + 2] - 0x3a) < 20;
    };
    const d = Math.round(3 * ratio);
    for (let y = Math.round(40 * ratio); y < height - d; y++) {
      for (let x = d; x < width - d; x++) {
        if (red(x, y) && red(x + d, y) && red(x - d, y) && red(x, y + d) && red(x, y - d)) {
          return { x: rect.left + x / ratio, y: rect.top + y / ratio };
        }
      }
    }
    return null;
  });
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));
page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
let agent = null;

try {
  const sweepId = JSON.parse(execFileSync(bin, ["sweep", "--json", "front-sweep.yaml"], { cwd: work, env: process.env }).toString()).id;
  agent = spawn(bin, ["agent", sweepId], { cwd: work, env: process.env, stdio: "ignore" });
  let front = null;
  for (let i = 0; i < 600; i++) {
    const f = await api("GET", `/api/v1/sweeps/${sweepId}/front`);
    if (f.status === 200 && f.body.runs.length === 8) {
      front = f.body;
      break;
    }
    await sleep(200);
  }

  await check("front API: the grid's 8 runs, the 4 with b = 0 on the front", async () => {
    assert(front, "8 ended runs within 120 s");
    assert(front.objectives.map((o) => o.name).join(",") === "loss,size", JSON.stringify(front.objectives));
    const onFront = front.runs.filter((r) => r.rank === 0);
    assert(onFront.length === 4, `front of ${onFront.length}`);
    for (const r of onFront) assert(Math.abs(r.values[0] + r.values[1] - 1) < 1e-6, `front run ${JSON.stringify(r)}`);
  });

  await check("sweep page: scatter of the two objectives, front highlighted, dominated faded", async () => {
    await page.goto(`${base}/sweeps/${sweepId}`);
    await page.waitForSelector("#front[data-front='4'][data-runs='8']", { timeout: 15_000 });
    assert(await page.locator("#front").isVisible(), "card shown");
    assert((await page.locator("#front-x").inputValue()) === "loss", "x is the first objective");
    assert((await page.locator("#front-y").inputValue()) === "size", "y is the second");
    const note = await page.locator("#front-note").innerText();
    assert(note.startsWith("4 of 8 ended runs"), note);
    assert(!(await page.locator("#front-parallel").isVisible()), "no parallel chart for two objectives");
    await page.locator("#front").scrollIntoViewIfNeeded();
    await page.screenshot({ path: `${out}/front.png`, fullPage: false });
  });

  await check("the curves' best runs are the front's runs; the table's columns are told apart", async () => {
    const want = front.runs.filter((r) => r.rank === 0).map((r) => r.run_id).sort();
    await page.waitForFunction(
      (n) => (document.querySelector("#compare-link")?.getAttribute("href") ?? "").split("runs=")[1]?.split(",").length === n,
      want.length,
      { timeout: 10_000 },
    );
    const href = await page.locator("#compare-link").getAttribute("href");
    const got = decodeURIComponent(href.split("runs=")[1]).split(",").sort();
    assert(got.join() === want.join(), `curves show ${got} instead of the front ${want}`);
    const heads = (await page.locator("#runs thead th").allInnerTexts()).map((t) => t.trim()).filter(Boolean);
    assert(new Set(heads).size === heads.length, `repeated headings: ${heads}`);
    assert(heads.includes("failure") && !heads.includes("error"), `headings: ${heads}`);
  });

  await check("the sweeps list shows what ended the sweep", async () => {
    await page.goto(`${base}/`);
    const cell = page.locator(`tr[data-sweep='${sweepId}'] td[data-state]`);
    await cell.waitFor({ timeout: 10_000 });
    const text = (await cell.innerText()).replace(/\s+/g, " ").trim();
    assert(text === "finished (exhausted)", text);
    await page.goto(`${base}/sweeps/${sweepId}`);
    await page.waitForSelector("#front[data-front='4']", { timeout: 10_000 });
  });

  await check("hover shows the run, click opens it", async () => {
    const p = await frontPoint(page);
    assert(p, "a front point on the canvas");
    await page.mouse.move(p.x - 30, p.y - 30);
    await page.mouse.move(p.x, p.y, { steps: 5 });
    const tip = page.locator(".front-tip");
    await tip.waitFor({ timeout: 5_000 });
    const text = await tip.innerText();
    const m = /run #(\d+)/.exec(text);
    assert(m && /loss = /.test(text) && /size = /.test(text), text);
    const run = front.runs.find((r) => r.number === Number(m[1]));
    assert(run && run.rank === 0, `hovered run ${m[1]} is on the front`);
    await page.screenshot({ path: `${out}/front-hover.png`, fullPage: false });
    await page.mouse.click(p.x, p.y);
    await page.waitForURL(`**/runs/${run.run_id}`, { timeout: 10_000 });
    await page.goBack();
    await page.waitForSelector("#front[data-front='4']", { timeout: 10_000 });
  });

  await check("picking the other objective on x swaps the axes, kept in the URL", async () => {
    await page.selectOption("#front-x", "size");
    assert((await page.locator("#front-y").inputValue()) === "loss", "y became loss");
    assert(/fx=size/.test(page.url()) && /fy=loss/.test(page.url()), page.url());
    await page.reload();
    await page.waitForSelector("#front[data-front='4']", { timeout: 10_000 });
    assert((await page.locator("#front-x").inputValue()) === "size", "kept after reload");
  });

  await check("three objectives: parallel coordinates with one axis per objective", async () => {
    const created = await api("POST", "/api/v1/sweeps", {
      source:
        "name: e2e-front3\nprogram: t.py\nmethod: random\nmetrics:\n  - {name: err, goal: minimize}\n  - {name: ms, goal: minimize}\n  - {name: acc, goal: maximize}\nparameters:\n  u: {min: 0.0, max: 1.0}\n",
    });
    assert(created.status === 201, `create: ${created.status} ${JSON.stringify(created.body)}`);
    const id = created.body.id;
    for (let i = 0; i < 12; i++) {
      const run = (await api("POST", `/api/v1/sweeps/${id}/claim`, {})).body.run;
      const u = run.params.u;
      const values = { err: u, ms: (1 - u) ** 2 + (i % 3) * 0.2, acc: 1 - u * (i % 2) };
      await api("POST", `/api/v1/runs/${run.id}/metrics`, { points: [{ step: 0, values }] });
      await api("POST", `/api/v1/runs/${run.id}/finish`, { exit_code: 0 });
    }
    const f = (await api("GET", `/api/v1/sweeps/${id}/front`)).body;
    const n = f.runs.filter((r) => r.rank === 0).length;
    await page.goto(`${base}/sweeps/${id}`);
    await page.waitForSelector(`#front[data-front='${n}'][data-runs='12']`, { timeout: 15_000 });
    assert(await page.locator("#front-parallel canvas").isVisible(), "parallel chart shown");
    assert((await page.locator("#front-x option").count()) === 3, "three objectives to pick from");
    await page.locator("#front").scrollIntoViewIfNeeded();
    await page.screenshot({ path: `${out}/front-3.png`, fullPage: false });
  });

  await check("a single-objective sweep shows no Pareto card", async () => {
    const created = await api("POST", "/api/v1/sweeps", {
      source: "name: e2e-single\nprogram: t.py\nmethod: random\nmetric: {name: loss, goal: minimize}\nparameters:\n  u: {min: 0.0, max: 1.0}\n",
    });
    await page.goto(`${base}/sweeps/${created.body.id}`);
    await page.waitForSelector("h1:has-text('e2e-single')");
    await sleep(1000);
    assert(!(await page.locator("#front").isVisible()), "hidden");
  });

  await check("no errors in the browser console", async () => {
    assert(errors.length === 0, errors.join(" | "));
  });
} finally {
  if (agent) agent.kill("SIGTERM");
  await browser.close();
}
console.log(`screenshots: ${out}/{front,front-hover,front-3}.png`);
finish("e2e-front");
