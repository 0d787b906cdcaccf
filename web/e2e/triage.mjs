// The dashboard's triage tools, learning curves with early-termination rungs, lineage and
// budget panels, and an accessibility and layout audit, in headless Chromium. Started by
// run.sh after dashboard.mjs, whose sweeps it reuses (`e2e-dashboard`: 14 runs by real
// agents; `e2e-analysis`: 40 finished, 6 stopped early and 1 failed run); it adds one sweep
// driven through the API (`e2e-triage`: bayes with hyperband and a budget, so runs carry a
// model prediction and a real stop decision) and one refined from it (`e2e-triage-fine`,
// ended by its stagnation budget).
import { readFileSync } from "node:fs";
import { chromium } from "playwright-core";
import { assert, check, finish } from "./checks.mjs";

const base = process.env.HYPERDIAL_SERVER;
const out = process.env.E2E_OUT;

const api = async (method, path, body) => {
  const r = await fetch(base + path, {
    method,
    headers: { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
};

/** A CSV document (RFC 4180) as rows of fields. */
function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (field += '"'), i++;
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") row.push(field), (field = "");
    else if (c === "\n") row.push(field.replace(/\r$/, "")), rows.push(row), (row = []), (field = "");
    else field += c;
  }
  if (field || row.length) row.push(field), rows.push(row);
  return rows;
}

// Every visible text on the page against its background, by the WCAG 2 contrast ratio: 4.5
// for text, 3 for large text (24 px, or 18.66 px bold). The background is the stack of the
// element's and its ancestors' background colours, blended; opacity is carried into the
// text colour. Disabled controls are exempt (WCAG 1.4.3); text drawn on chart canvases is
// not in the DOM and is not measured here.
function contrastAudit() {
  const parse = (c) => {
    const m = /rgba?\(([^)]+)\)/.exec(c);
    if (!m) return null;
    const p = m[1].split(/[\s,/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const blend = (top, under) => [0, 1, 2].map((i) => top[i] * top[3] + under[i] * (1 - top[3])).concat(1);
  const lum = (c) => {
    const f = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
  };
  const ratio = (a, b) => {
    const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05);
  };
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) {
        layers.push(c);
        if (c[3] >= 1) break;
      }
    }
    let bg = [255, 255, 255, 1];
    for (let i = layers.length - 1; i >= 0; i--) bg = blend(layers[i], bg);
    return bg;
  };
  const failures = [];
  const seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  let checked = 0;
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || seen.has(el) || !n.textContent.trim()) continue;
    seen.add(el);
    if (el.closest("[disabled], [aria-disabled='true'], .sr-only, option, script, style")) continue;
    const rect = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    if (rect.width <= 1 || rect.height <= 1 || style.visibility === "hidden") continue;
    if (el.closest("details:not([open])") && !el.closest("summary")) continue;
    let opacity = 1;
    for (let e = el; e; e = e.parentElement) opacity *= Number(getComputedStyle(e).opacity);
    if (opacity === 0) continue;
    const fg = parse(style.color);
    const bg = background(el);
    const text = blend([fg[0], fg[1], fg[2], fg[3] * opacity], bg);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    const r = ratio(text, bg);
    checked++;
    if (r < (large ? 3 : 4.5)) failures.push(`${el.tagName.toLowerCase()}${el.className ? "." + String(el.className).split(" ").join(".") : ""} "${n.textContent.trim().slice(0, 30)}" ${r.toFixed(2)} (${style.color} on rgb(${bg.slice(0, 3).map(Math.round)}))`);
  }
  return { checked, failures };
}

// Form controls without an accessible name (label, aria-label, aria-labelledby, title, or a
// button's text).
function unlabelled() {
  const missing = [];
  for (const el of document.querySelectorAll("input, select, textarea, button, summary")) {
    const rect = el.getBoundingClientRect();
    if (el.type === "hidden" || rect.width === 0) continue;
    const named =
      el.getAttribute("aria-label") ||
      el.getAttribute("aria-labelledby") ||
      el.getAttribute("title") ||
      (el.id && document.querySelector(`label[for='${CSS.escape(el.id)}']`)) ||
      el.closest("label") ||
      ((el.tagName === "BUTTON" || el.tagName === "SUMMARY") && el.textContent.trim());
    if (!named) missing.push(el.outerHTML.slice(0, 80));
  }
  return missing;
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const context = await browser.newContext({ viewport: { width: 1400, height: 1000 }, acceptDownloads: true });
const page = await context.newPage();
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));
page.on("console", (m) => m.type() === "error" && errors.push(m.text()));

try {
  const sweeps = (await api("GET", "/api/v1/sweeps")).body.sweeps;
  const dash = sweeps.find((s) => s.name === "e2e-dashboard");
  const analysis = sweeps.find((s) => s.name === "e2e-analysis");
  assert(dash && analysis, "the sweeps of dashboard.mjs exist");

  // A bayes sweep with hyperband, driven through the API: 14 runs of 8 steps; every fourth
  // run is much worse from its first step, so hyperband stops it at band 2 (its second value
  // is worse than the median of the others'). The last runs are the model's suggestions.
  const triage = (
    await api("POST", "/api/v1/sweeps", {
      source:
        "name: e2e-triage\nprogram: t.py\nmethod: bayes\nmetric: {name: loss, goal: minimize}\n" +
        "early_terminate: {type: hyperband, min_iter: 2, eta: 2}\n" +
        "budget: {wall_time: 2h, stagnation: {runs: 40}}\n" +
        "parameters:\n  x: {min: 0.0, max: 1.0}\n  y: {min: 0.0, max: 1.0}\n",
      seed: 5,
    })
  ).body.id;
  assert(triage, "triage sweep created");
  for (let i = 0; i < 14; i++) {
    const run = (await api("POST", `/api/v1/sweeps/${triage}/claim`, {})).body.run;
    const bad = i % 4 === 3 ? 3 : 0;
    let stop = false;
    for (let step = 0; step < 8 && !stop; step++) {
      const loss = (run.params.x - 0.3) ** 2 + 0.5 * (run.params.y - 0.6) ** 2 + 0.2 + bad + 1 / (step + 1);
      stop = (await api("POST", `/api/v1/runs/${run.id}/metrics`, { points: [{ step, values: { loss, epoch: step } }] })).body.stop;
    }
    await api("POST", `/api/v1/runs/${run.id}/finish`, stop ? { state: "stopped_early" } : { exit_code: 0 });
  }
  // A run that failed with a message.
  const failing = (await api("POST", `/api/v1/sweeps/${triage}/claim`, {})).body.run;
  await api("POST", `/api/v1/runs/${failing.id}/metrics`, { points: [{ step: 0, values: { loss: 2.5, epoch: 0 } }] });
  await api("POST", `/api/v1/runs/${failing.id}/finish`, { exit_code: 1, error: "CUDA out of memory: tried to allocate 2.00 GiB" });

  // Refined from it: starts from its runs, and ends on stagnation (no improvement in 3 runs).
  const fine = (
    await api("POST", "/api/v1/sweeps", {
      source:
        `name: e2e-triage-fine\nprogram: t.py\nmethod: bayes\nparent: ${triage}\nprior_runs: [${triage}]\n` +
        "metric: {name: loss, goal: minimize}\nbudget: {stagnation: {runs: 3}}\n" +
        "parameters:\n  x: {min: 0.1, max: 0.5}\n  y: {min: 0.4, max: 0.8}\n",
    })
  ).body.id;
  assert(fine, `fine sweep created`);
  for (const loss of [0.5, 0.9, 0.9, 0.9]) {
    const run = (await api("POST", `/api/v1/sweeps/${fine}/claim`, {})).body.run;
    await api("POST", `/api/v1/runs/${run.id}/metrics`, { points: [{ step: 0, values: { loss } }] });
    await api("POST", `/api/v1/runs/${run.id}/finish`, { exit_code: 0 });
  }
  const over = await api("POST", `/api/v1/sweeps/${fine}/claim`, {});
  assert(over.status === 410, `the stagnation budget ends the refined sweep: ${over.status}`);

  const stopped = (await api("GET", `/api/v1/runs?sweep=${triage}&state=stopped_early&limit=100`)).body;
  assert(stopped.total >= 2, `hyperband stopped runs: ${stopped.total}`);

  await check("triage: the column chooser hides a column, and the choice survives a reload", async () => {
    await page.goto(`${base}/sweeps/${dash.id}`);
    await page.waitForSelector("#runs th[data-col='params.opt']", { timeout: 15_000 });
    await page.click("#column-chooser summary");
    await page.locator("#column-chooser input[data-col='params.opt']").uncheck();
    assert((await page.locator("#runs th[data-col='params.opt']").count()) === 0, "opt column hidden");
    assert((await page.locator("#runs td[data-col='params.opt']").count()) === 0, "opt cells hidden");
    await page.screenshot({ path: `${out}/triage-columns.png`, fullPage: false });
    await page.reload();
    await page.waitForSelector("#runs th[data-col='params.lr']", { timeout: 15_000 });
    assert((await page.locator("#runs th[data-col='params.opt']").count()) === 0, "still hidden after a reload");
    await page.click("#column-chooser summary");
    await page.locator("#column-chooser input[data-col='params.opt']").check();
    await page.waitForSelector("#runs th[data-col='params.opt']");
  });

  await check("triage: error and stop-reason columns say why runs ended; bayes runs show the model's prediction", async () => {
    await page.goto(`${base}/sweeps/${triage}?state=stopped_early`);
    await page.waitForSelector("#runs tbody tr[data-run]", { timeout: 15_000 });
    const reasons = await page.locator("#runs td[data-col='stop']").allInnerTexts();
    assert(reasons.length === stopped.total && reasons.every((t) => /^hyperband at band \d+: loss [\d.]+, threshold [\d.]+$/.test(t)), `stop reasons ${reasons}`);
    await page.selectOption("#state-filter", "failed");
    await page.waitForFunction(() => document.querySelector("#run-count")?.getAttribute("data-total") === "1");
    const error = await page.locator("#runs td[data-col='error']").innerText();
    assert(error.includes("CUDA out of memory"), `error ${error}`);
    await page.selectOption("#state-filter", "");
    await page.waitForFunction(() => Number(document.querySelector("#run-count")?.getAttribute("data-total")) === 15);
    const predicted = await page.locator("#runs td[data-col='predicted']").allInnerTexts();
    const withModel = predicted.filter((t) => /^[\d.e-]+ ± [\d.e-]+$/.test(t));
    const runs = (await api("GET", `/api/v1/runs?sweep=${triage}&limit=100`)).body.runs;
    const modelRuns = runs.filter((r) => r.suggestion?.diagnostics?.mean !== undefined);
    assert(modelRuns.length >= 1 && withModel.length === modelRuns.length, `predictions shown ${withModel.length}, stored ${modelRuns.length}`);
    const r = modelRuns[0];
    const cell = await page.locator(`#runs tr[data-run='${r.id}'] td[data-col='predicted']`).innerText();
    assert(cell.startsWith(String(Number(r.suggestion.diagnostics.mean.toPrecision(4)))), `cell ${cell} vs ${r.suggestion.diagnostics.mean}`);
    await page.locator("#runs").scrollIntoViewIfNeeded();
    await page.screenshot({ path: `${out}/triage-reasons.png`, fullPage: false });
    // The run's own page says it too, and the stop decision in words.
    await page.goto(`${base}/runs/${r.id}`);
    const fact = await page.locator("[data-fact='model predicted']").innerText({ timeout: 10_000 });
    assert(fact.startsWith(cell), `run page: ${fact}`);
    await page.goto(`${base}/runs/${stopped.runs[0].id}`);
    const why = await page.locator("[data-fact='why stopped']").innerText({ timeout: 10_000 });
    assert(/^hyperband at band \d+: loss/.test(why), `why stopped: ${why}`);
  });

  await check("triage: the CSV download is the table as shown (filter, sort, columns, every page)", async () => {
    // The second page of the table is shown; the CSV holds every page.
    await page.goto(`${base}/sweeps/${analysis.id}?state=finished&sort=metric&order=desc&offset=20`);
    await page.waitForSelector("#runs tbody tr[data-run]", { timeout: 15_000 });
    await page.click("#column-chooser summary");
    await page.locator("#column-chooser input[data-col='finished']").uncheck();
    await page.click("#column-chooser summary");
    const shownHeads = await page.locator("#runs thead th[data-col]").evaluateAll((ths) => ths.map((t) => t.textContent.replace(/[↑↓]/g, "").trim()));
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#csv-download")]);
    const rows = parseCsv(readFileSync(await download.path(), "utf8"));
    const head = rows[0];
    assert(JSON.stringify(head) === JSON.stringify(["run", "id", ...shownHeads.slice(1)]), `header ${head} vs ${shownHeads}`);
    const body = rows.slice(1);
    const total = Number(await page.locator("#run-count").getAttribute("data-total"));
    const onPage = await page.locator("#runs tbody tr[data-run]").count();
    assert(total === 40 && onPage === 20 && body.length === 40, `rows ${body.length} of ${total} (${onPage} on the page)`);
    const m = head.indexOf("loss");
    const values = body.map((r) => Number(r[m]));
    assert(values.every((v, i) => i === 0 || values[i - 1] >= v), "sorted by the metric, descending");
    assert(!head.includes("finished"), "hidden column left out");
    await page.click("#column-chooser summary");
    await page.locator("#column-chooser input[data-col='finished']").check();
  });

  await check("triage: the compare view diffs the configs and overlays the metric of ticked runs", async () => {
    await page.goto(`${base}/sweeps/${dash.id}`);
    await page.waitForSelector("#runs tbody tr[data-run]", { timeout: 15_000 });
    // The page ticks the best runs itself once their points load, until the user changes a
    // box. Give its pick a while (a loaded machine may take longer), then change one box, so
    // no pick of the page can land between the unticking and the ticking below.
    await page
      .waitForSelector("#runs tbody tr[data-run] input[type=checkbox]:checked", { timeout: 15_000 })
      .catch(() => {});
    const boxes = page.locator("#runs tbody tr[data-run] input[type=checkbox]");
    await boxes.nth(0).setChecked(!(await boxes.nth(0).isChecked()));
    for (const b of await boxes.all()) if (await b.isChecked()) await b.uncheck();
    await boxes.nth(0).check();
    await boxes.nth(1).check();
    await boxes.nth(2).check();
    assert((await page.locator("#compare-link").innerText()) === "Compare 3 runs", await page.locator("#compare-link").innerText());
    await page.click("#compare-link");
    await page.waitForSelector("#compare-config tr[data-key='lr']", { timeout: 10_000 });
    assert((await page.locator("#compare-config tr[data-key='lr']").getAttribute("data-differs")) === "true", "lr differs");
    const keys = await page.locator("#compare-config tbody tr").evaluateAll((rows) => rows.map((r) => [r.dataset.key, r.dataset.differs, [...r.querySelectorAll("td")].map((t) => t.textContent)]));
    for (const [k, d, vals] of keys) assert((d === "true") === new Set(vals).size > 1, `${k}: ${d} ${vals}`);
    await page.waitForFunction(() => document.querySelector("#compare-chart")?.getAttribute("data-series") === "3", null, { timeout: 10_000 });
    assert((await page.locator("#compare-metric").inputValue()) === "loss", "the sweep metric first");
    await page.check("#only-diff");
    const shown = await page.locator("#compare-config tbody tr").count();
    assert(shown === keys.filter((k) => k[1] === "true").length, `only differing keys: ${shown}`);
    await page.screenshot({ path: `${out}/compare.png`, fullPage: true });
  });

  await check("curves: all runs behind the highlighted ones, with hyperband rungs and thresholds", async () => {
    await page.goto(`${base}/sweeps/${triage}?curves=all`);
    await page.waitForFunction(() => Number(document.querySelector("#curves")?.getAttribute("data-background")) > 0, null, { timeout: 15_000 });
    const c = await page.locator("#curves").evaluate((e) => ({ ...e.dataset }));
    const runs = 15;
    assert(Number(c.background) + Number(c.series) === runs, `background ${c.background} + highlighted ${c.series} of ${runs}`);
    assert(c.rungs.split(",").includes("band 2"), `rungs ${c.rungs}`);
    assert(Number(c.stopMarks) === stopped.total, `stop marks ${c.stopMarks} of ${stopped.total}`);
    assert(await page.locator("#curves-all").isChecked(), "all runs kept from the URL");
    await page.locator("#curves").scrollIntoViewIfNeeded();
    await page.screenshot({ path: `${out}/curves-rungs.png`, fullPage: false });
    // x as the logged epoch puts the rung at the same place (epoch = step here).
    await page.selectOption("#curve-x", "epoch");
    await page.waitForFunction(() => document.querySelector("#curves")?.getAttribute("data-rungs")?.includes("band 2"), null, { timeout: 10_000 });
  });

  await check("best so far: the frontier counts only finished and stopped-early runs", async () => {
    await page.goto(`${base}/sweeps/${analysis.id}`);
    await page.waitForFunction(() => (document.querySelector("#best-chart")?.getAttribute("data-best") ?? "") !== "", null, { timeout: 15_000 });
    const best = (await api("GET", `/api/v1/sweeps/${analysis.id}`)).body.best.value;
    assert(Number(await page.locator("#best-chart").getAttribute("data-best")) === best, "the sweep's best");
    // Failed runs are drawn when the filter asks for them, but never set the frontier.
    await page.selectOption("#analysis-state", "failed");
    await page.waitForFunction(() => document.querySelector("#best-chart")?.getAttribute("data-points") !== "40");
    assert((await page.locator("#best-chart").getAttribute("data-best")) === "", "no frontier from failed runs");
  });

  await check("lineage and budget: parent and child links, what is left, the end reason", async () => {
    await page.goto(`${base}/sweeps/${triage}`);
    await page.waitForSelector("#lineage [data-lineage='children'] a", { timeout: 15_000 });
    assert((await page.locator("#lineage [data-lineage='children'] a").getAttribute("data-sweep-link")) === fine, "child link");
    const wall = await page.locator("#budget [data-budget='wall_time']").innerText();
    assert(/^1h 5\dm of 2h 0m$/.test(wall), `wall time left ${wall}`);
    const end = await page.locator("#budget [data-budget='estimated_end']").innerText();
    assert(/\(in .+, by (wall time|stagnation)\)$/.test(end), `estimated end ${end}`);
    assert(/of 40/.test(await page.locator("#budget [data-budget='stagnation']").innerText()), "stagnation runs");
    await page.screenshot({ path: `${out}/lineage-budget.png`, fullPage: false, clip: { x: 0, y: 0, width: 1400, height: 420 } });
    await page.click("#lineage [data-lineage='children'] a");
    await page.waitForSelector("#lineage [data-lineage='parent'] a", { timeout: 10_000 });
    assert((await page.locator("#lineage [data-lineage='parent'] a").getAttribute("data-sweep-link")) === triage, "parent link");
    const reason = await page.locator("#budget [data-budget='end_reason']").innerText();
    assert(reason.includes("stopped improving") && reason.includes("in 3 finished runs"), `end reason ${reason}`);
    assert((await page.locator("#budget [data-budget='estimated_end']").count()) === 0, "no estimate once over");
    await page.screenshot({ path: `${out}/lineage-ended.png`, fullPage: false, clip: { x: 0, y: 0, width: 1400, height: 420 } });
  });

  // Each page, and what shows it has loaded.
  const pages = {
    sweeps: ["/", "#sweeps tbody tr"],
    sweep: [`/sweeps/${triage}`, "#runs tbody tr[data-run]"],
    analysis: [`/sweeps/${analysis.id}`, "#importance table.imp"],
    runs: ["/runs", "#all-runs tbody tr[data-run]"],
    run: [`/runs/${stopped.runs[0].id}`, "#run-charts canvas"],
    compare: [`/compare?runs=${stopped.runs.map((r) => r.id).join(",")}`, "#compare-config tbody tr"],
  };
  const open = async ([path, ready]) => {
    await page.goto(base + path);
    await page.waitForSelector(ready, { timeout: 15_000 });
    await page.waitForTimeout(300);
  };
  await check("accessibility: WCAG AA contrast of every visible text; every control has a name; sort headers are buttons", async () => {
    const report = [];
    let checked = 0;
    for (const [name, p] of Object.entries(pages)) {
      await open(p);
      const a = await page.evaluate(contrastAudit);
      checked += a.checked;
      for (const f of a.failures) report.push(`${name}: ${f}`);
      for (const m of await page.evaluate(unlabelled)) report.push(`${name}: unlabelled ${m}`);
    }
    console.log(`  contrast: ${checked} text elements on ${Object.keys(pages).length} pages, ${report.length} findings`);
    assert(report.length === 0, report.slice(0, 6).join(" | "));
    await open(pages.sweep);
    const sorts = await page.locator("#runs th.sortable").evaluateAll((ths) => ths.every((t) => t.querySelector("button") && t.getAttribute("aria-sort")));
    assert(sorts, "every sortable header holds a button and aria-sort");
    // Tab reaches a sort button; Enter sorts.
    await page.focus("#runs th[data-sort='number'] button");
    await page.keyboard.press("Tab");
    const focused = await page.evaluate(() => document.activeElement?.closest("th")?.dataset.sort);
    assert(focused === "state", `Tab moves to the next header: ${focused}`);
    await page.keyboard.press("Enter");
    await page.waitForSelector("#runs th[data-sort='state'][aria-sort='ascending']");
  });

  await check("layout at 800 px: no horizontal page scroll; wide tables scroll inside their box", async () => {
    await page.setViewportSize({ width: 800, height: 900 });
    for (const [name, p] of Object.entries(pages)) {
      await open(p);
      const w = await page.evaluate(() => ({ page: document.documentElement.scrollWidth, view: document.documentElement.clientWidth }));
      assert(w.page <= w.view, `${name}: page ${w.page} px wide in a ${w.view} px window`);
      if (name === "runs") await page.screenshot({ path: `${out}/runs-800.png`, fullPage: false });
    }
    await open(pages.sweep);
    const box = await page.locator("#runs").evaluate((t) => ({ table: t.scrollWidth, box: t.parentElement.clientWidth, overflow: getComputedStyle(t.parentElement).overflowX }));
    assert(box.overflow === "auto" && box.table > box.box, `the runs table scrolls in its box: ${JSON.stringify(box)}`);
    await page.screenshot({ path: `${out}/sweep-800.png`, fullPage: true });
    await page.setViewportSize({ width: 1400, height: 1000 });
  });

  await check("axis names fit: long parameter names are cut to the room between parallel axes", async () => {
    const long = (await api("POST", "/api/v1/sweeps", {
      source:
        "name: e2e-long-names\nprogram: t.py\nmethod: random\nmetric: {name: validation_cross_entropy_loss, goal: minimize}\nparameters:\n" +
        ["optimizer.learning_rate_warmup_fraction", "optimizer.weight_decay_coefficient", "model.transformer_hidden_dimension", "data.augmentation_probability", "schedule.cosine_restart_period_epochs"]
          .map((n) => `  ${n}: {min: 0.0, max: 1.0}\n`)
          .join(""),
    })).body.id;
    for (let i = 0; i < 3; i++) {
      const run = (await api("POST", `/api/v1/sweeps/${long}/claim`, {})).body.run;
      await api("POST", `/api/v1/runs/${run.id}/metrics`, { points: [{ step: 0, values: { validation_cross_entropy_loss: 1 + i } }] });
      await api("POST", `/api/v1/runs/${run.id}/finish`, { exit_code: 0 });
    }
    await page.setViewportSize({ width: 800, height: 900 });
    await page.goto(`${base}/sweeps/${long}`);
    await page.waitForFunction(() => document.querySelector("#parallel")?.getAttribute("data-rows") === "3", null, { timeout: 15_000 });
    const { names, room, widths } = await page.locator("#parallel").evaluate((el) => {
      const ctx = document.createElement("canvas").getContext("2d");
      ctx.font = "bold 12px sans-serif";
      const names = el.dataset.axisNames.split("|");
      return { names, room: Number(el.dataset.axisRoom), widths: names.map((n) => ctx.measureText(n).width) };
    });
    assert(names.length === 6 && names.some((n) => n.endsWith("…")), `names ${names}`);
    assert(widths.every((w) => w <= room), `widths ${widths.map(Math.round)} in ${room} px`);
    await page.locator("#parallel").scrollIntoViewIfNeeded();
    await page.screenshot({ path: `${out}/axis-names-800.png`, fullPage: false });
    await page.setViewportSize({ width: 1400, height: 1000 });
  });

  await check("no errors in the browser console", async () => {
    assert(errors.length === 0, errors.join(" | "));
  });
} finally {
  await browser.close();
}
console.log(`screenshots: ${out}/{triage-columns,triage-reasons,compare,curves-rungs,lineage-budget,lineage-ended,runs-800,sweep-800,axis-names-800}.png`);
finish("e2e-triage");
