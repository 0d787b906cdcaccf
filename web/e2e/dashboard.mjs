// The dashboard end to end, in headless Chromium driven by playwright-core. Started by run.sh,
// which provides a running `hyperdial server` (HYPERDIAL_SERVER) and the binary (HYPERDIAL_BIN).
import { spawn, execFileSync } from "node:child_process";
import { chromium } from "playwright-core";
import { assert, check, finish } from "./checks.mjs";

const base = process.env.HYPERDIAL_SERVER;
const bin = process.env.HYPERDIAL_BIN;
const work = process.env.E2E_WORK;
const out = process.env.E2E_OUT;
const agents = [];

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
    const empty = await page.locator("#empty-sweep pre.command").innerText({ timeout: 10_000 });
    assert(empty.includes(`hyperdial agent ${sweepId}`), `agent command: ${empty}`);
    assert((await page.title()).includes("e2e-dashboard"), `title ${await page.title()}`);
    await page.screenshot({ path: `${out}/sweep-empty.png`, fullPage: false });
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
    // The table follows live events at most every 5 s: wait until it holds all 14 runs.
    await page.waitForFunction(() => Number(document.querySelector("#run-count")?.getAttribute("data-total")) === 14, null, { timeout: 30_000 });
    const total = Number(await page.locator("#run-count").getAttribute("data-total"));
    await page.locator("#parallel").scrollIntoViewIfNeeded();
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
    // Every run again (more than before when the live sweep added runs meanwhile).
    await page.waitForFunction((t) => Number(document.querySelector("#run-count")?.getAttribute("data-total")) >= t, total, { timeout: 10_000 });
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

  // What the run records say beyond the metric: a delivery record (points an agent could not
  // send), a retry (attempt 2, queued: the sweep's agents are gone) and the git state.
  const api = async (method, path, body) => {
    const r = await fetch(base + path, {
      method,
      headers: { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : null };
  };
  // The sweep's agents have left (it finished); stop them anyway so none takes the retry.
  for (const a of agents) a.kill("SIGTERM");
  const runs = (await api("GET", `/api/v1/runs?sweep=${sweepId}&sort=number&limit=100`)).body.runs;
  const [lost, synced, retried] = runs;
  await api("POST", `/api/v1/runs/${lost.id}/delivery`, { missing: 3, files: ["e2e-box:/spill/lost.agent.jsonl"] });
  await api("POST", `/api/v1/runs/${synced.id}/delivery`, { missing: 2, files: ["e2e-box:/spill/synced.agent.jsonl"] });
  await api("POST", `/api/v1/runs/${synced.id}/delivery`, { recovered: 2 });
  const retry = (await api("POST", `/api/v1/sweeps/${sweepId}/retry`, { runs: [retried.id] })).body.retried[0].retry;
  assert(retry && retry.attempt === 2 && retry.state === "queued", `retry ${JSON.stringify(retry)}`);

  await check("the runs table labels missing and recovered points, attempts and retries", async () => {
    await page.goto(`${base}/sweeps/${sweepId}`);
    const row = (id) => page.locator(`#runs tbody tr[data-run='${id}']`);
    await row(retry.id).waitFor({ timeout: 10_000 });
    const lostText = await row(lost.id).innerText();
    assert(lostText.includes("3 metric points missing: run hyperdial sync on e2e-box"), lostText);
    const syncedText = await row(synced.id).innerText();
    assert(syncedText.includes("2 metric points recovered by hyperdial sync"), syncedText);
    assert((await row(synced.id).locator("[data-delivery='missing']").count()) === 0, "no warning once recovered");
    const retryText = await row(retry.id).innerText();
    assert(retryText.includes("queued") && retryText.includes(`attempt 2 · retry of #${retried.number}`), retryText);
    const earlier = await row(retried.id).innerText();
    assert(earlier.includes(`retried as #${retry.number}`), earlier);
    const plain = await row(runs[3].id).innerText();
    assert(!/attempt|missing|recovered/.test(plain), plain);
    await page.screenshot({ path: `${out}/sweep-labels.png`, fullPage: true });
  });

  await check("the run page says what is missing and where to sync it", async () => {
    await page.goto(`${base}/runs/${lost.id}`);
    await page.waitForSelector("#run-labels [data-delivery='missing']");
    const label = await page.locator("#run-labels").innerText();
    assert(label.includes("3 metric points missing: run hyperdial sync on e2e-box"), label);
    const info = await page.locator("#run-info").innerText();
    assert(info.includes("e2e-box:/spill/lost.agent.jsonl"), info);
    await page.screenshot({ path: `${out}/run-missing.png`, fullPage: true });
  });

  await check("a retry's run page links to the attempt it retries, and back", async () => {
    await page.goto(`${base}/runs/${retry.id}`);
    const attempt = page.locator("[data-fact='attempt']");
    await attempt.waitFor({ timeout: 10_000 });
    assert((await attempt.innerText()).includes(`2 · retry of #${retried.number}`), await attempt.innerText());
    assert((await page.locator(".title-row .badge").innerText()) === "queued", "queued badge");
    await attempt.locator("a").click();
    await page.waitForFunction((id) => location.pathname === `/runs/${id}`, retried.id);
    await page.waitForFunction((n) => document.querySelector("[data-fact='attempt']")?.textContent?.includes(`retried as #${n}`), retry.number, { timeout: 10_000 });
  });

  await check("the run page shows the git commit, short, and a dirty work tree", async () => {
    const commit = "0123456789abcdef0123456789abcdef01234567";
    const run = (await api("POST", "/api/v1/runs", { name: "e2e-git", git: { commit, dirty: true } })).body;
    await page.goto(`${base}/runs/${run.id}`);
    const fact = page.locator("[data-fact='git commit']");
    await fact.waitFor();
    const text = await fact.innerText();
    assert(text.includes("0123456789") && !text.includes(commit) && /dirty/.test(text), text);
  });

  await check("a sweep action the server refuses shows its message; an ended sweep offers none", async () => {
    // Keep the page stale (no live events) so it still offers `pause` after the sweep ended
    // (pausing an ended sweep is refused; stopping one changes nothing and is not).
    await page.route("**/api/v1/events*", (route) => route.abort());
    const before = errors.length;
    await page.goto(`${base}/sweeps/${sweepId}`);
    await page.waitForSelector(".title-row button.a-pause:not([disabled])");
    await api("POST", `/api/v1/sweeps/${sweepId}/cancel`);
    await page.click(".title-row button.a-pause");
    await page.waitForFunction(() => document.querySelector("#action-error")?.textContent, null, { timeout: 10_000 });
    const shown = await page.locator("#action-error").innerText();
    const refused = await api("POST", `/api/v1/sweeps/${sweepId}/pause`);
    assert(refused.status === 409 && shown.includes(refused.body.error), `${shown} / ${JSON.stringify(refused)}`);
    await page.unroute("**/api/v1/events*");
    // The refused request and the blocked event stream are expected network errors.
    errors.splice(before);
    await page.goto(base + "/");
    const row = page.locator(`tr[data-sweep='${sweepId}']`);
    await row.waitFor();
    for (const a of ["pause", "stop", "cancel"]) {
      assert(await row.locator(`button[data-action='${a}']`).isDisabled(), `${a} disabled on a cancelled sweep`);
    }
  });

  // Honest analysis: a sweep whose metric is U-shaped in `u`, unmoved by `flat`, with runs
  // stopped early at a truncated (much worse) value.
  const analysisSweep = (await api("POST", "/api/v1/sweeps", {
    source: "name: e2e-analysis\nprogram: t.py\nmethod: random\nmetric: {name: loss, goal: minimize}\nparameters:\n  u: {min: 0.0, max: 1.0}\n  flat: {min: 0.0, max: 1.0}\n",
    seed: 3,
  })).body.id;
  const ended = async (n, state, loss) => {
    for (let i = 0; i < n; i++) {
      const run = (await api("POST", `/api/v1/sweeps/${analysisSweep}/claim`, {})).body.run;
      await api("POST", `/api/v1/runs/${run.id}/metrics`, { points: [{ step: 0, values: { loss: loss(run.params) } }] });
      await api("POST", `/api/v1/runs/${run.id}/finish`, state === "finished" ? { exit_code: 0 } : { state });
    }
  };
  await ended(40, "finished", (p) => 4 * (p.u - 0.5) ** 2 + 0.3);
  await ended(6, "stopped_early", (p) => 3 + p.flat * 0.3);

  await check("analysis: finished runs only by default, U-shape found, rank colours", async () => {
    await page.goto(`${base}/sweeps/${analysisSweep}`);
    await page.waitForSelector("#importance table.imp[data-evidence='enough'] tr[data-param]", { timeout: 30_000 });
    assert((await page.locator("#analysis-state").inputValue()) === "finished", "finished by default");
    assert((await page.locator("#colour-mode").inputValue()) === "rank", "rank colours by default");
    const note = await page.locator("#analysis-note").innerText();
    assert(note.startsWith("40 runs finished"), note);
    const first = await page.locator("#importance tr[data-param]").first().getAttribute("data-param");
    assert(first === "u", `most important ${first}`);
    const uRow = await page.locator("#importance tr[data-param='u']").innerText();
    assert(/±/.test(uRow), `uncertainty shown: ${uRow}`);
    // The main effect of u is large although its correlation is near 0.
    const main = await page.locator("#importance tr[data-param='u'] td:nth-child(3)").innerText();
    assert(Number(main.match(/(\d+)%/)?.[1]) > 60, `main effect ${main}`);
    // Stopped-early runs are not drawn: the metric axis ends below their 3.0.
    const drawn = await page.locator("#parallel").getAttribute("data-rows");
    assert(drawn === "40", `parallel rows ${drawn}`);
    await page.screenshot({ path: `${out}/analysis.png`, fullPage: true });
  });

  await check("analysis: the state filter drives the importance, with a not-enough-evidence state", async () => {
    await page.selectOption("#analysis-state", "stopped_early");
    await page.waitForSelector("#no-evidence[data-evidence='too_few_runs']", { timeout: 10_000 });
    const text = await page.locator("#no-evidence").innerText();
    assert(text.includes("6 stopped early runs") && text.includes("at least 10"), text);
    assert((await page.locator("#importance .bar").count()) === 0, "no bars without evidence");
    assert((await page.locator("#analysis-note").innerText()).startsWith("6 runs stopped early"), "note follows");
    await page.selectOption("#colour-mode", "log");
    await page.screenshot({ path: `${out}/analysis-stopped.png`, fullPage: false });
    await page.selectOption("#analysis-state", "finished");
    await page.waitForSelector("#importance table.imp[data-evidence='enough']", { timeout: 10_000 });
  });

  await check("learning curves: one-value runs are drawn, x can be another metric", async () => {
    await page.goto(`${base}/sweeps/${analysisSweep}`);
    await page.waitForFunction(() => Number(document.querySelector("#curves")?.getAttribute("data-series")) === 5, null, { timeout: 15_000 });
    const counts = (await page.locator("#curves").getAttribute("data-points")).split(",").map(Number);
    assert(counts.length === 5 && counts.every((n) => n === 1), `points per curve ${counts}`);
    const xs = await page.locator("#curve-x option").evaluateAll((o) => o.map((x) => x.value));
    assert(xs.includes("step") && xs.includes("time") && xs.includes("loss"), `x choices ${xs}`);
    await page.locator("#curves").scrollIntoViewIfNeeded();
    await page.screenshot({ path: `${out}/curves.png`, fullPage: false });
  });

  await check("edges: unknown ids show a not-found state, not a skeleton", async () => {
    const before = errors.length;
    await page.goto(`${base}/sweeps/no-such-sweep`);
    await page.waitForSelector("#not-found:has-text('Sweep not found')", { timeout: 10_000 });
    assert((await page.title()).startsWith("Sweep not found"), await page.title());
    assert(!(await page.locator("body").innerText()).includes("Computing"), "no Computing…");
    await page.screenshot({ path: `${out}/not-found.png`, fullPage: false });
    await page.goto(`${base}/runs/no-such-run`);
    await page.waitForSelector("#not-found:has-text('Run not found')", { timeout: 10_000 });
    // The 404 answers are the expected network errors.
    errors.splice(before);
  });

  await check("edges: the URL holds the view state and survives Back", async () => {
    await page.goto(`${base}/sweeps/${analysisSweep}`);
    await page.waitForSelector("#runs tbody tr[data-run]");
    await page.selectOption("#analysis-state", "stopped_early");
    await page.selectOption("#colour-mode", "linear");
    await page.selectOption("#state-filter", "finished");
    await page.waitForFunction(() => location.search.includes("state=finished"));
    // Sort by the metric from the keyboard. The filter above redraws the table; a key press
    // that lands on the header being replaced is lost, so press again until the sort shows
    // (the sort cycles, so a late first press is met again on a later round).
    for (let round = 0; ; round++) {
      await page.focus("th[data-sort='metric'] button");
      await page.keyboard.press("Enter");
      try {
        await page.waitForSelector("th[data-sort='metric'][aria-sort='ascending']", { timeout: 3_000 });
        break;
      } catch (err) {
        if (round >= 5) throw err;
      }
    }
    const row = page.locator("#runs tbody tr[data-run]:has(input[type=checkbox]:not(:checked))").first();
    const ticked = await row.getAttribute("data-run");
    const box = row.locator("input[type=checkbox]");
    assert(((await box.getAttribute("aria-label")) ?? "").includes("learning curves"), "labelled checkbox");
    await box.check();
    await page.waitForFunction(() => location.search.includes("runs="));
    const url = page.url();
    assert(/analysis=stopped_early/.test(url) && /colour=linear/.test(url) && /sort=metric/.test(url), url);
    await page.goto(`${base}/`);
    await page.waitForSelector(`tr[data-sweep='${analysisSweep}']`);
    await page.goBack();
    await page.waitForSelector("th[data-sort='metric'][aria-sort='ascending']", { timeout: 10_000 });
    assert(page.url() === url, `${page.url()} vs ${url}`);
    assert((await page.locator("#analysis-state").inputValue()) === "stopped_early", "analysis kept");
    assert((await page.locator("#colour-mode").inputValue()) === "linear", "colour kept");
    assert((await page.locator("#state-filter").inputValue()) === "finished", "table filter kept");
    assert(await page.locator(`#runs tbody tr[data-run='${ticked}'] input[type=checkbox]`).isChecked(), "ticked run kept");
    await page.screenshot({ path: `${out}/view-state.png`, fullPage: false });
  });

  await check("edges: early stopping is not failure; a failed run shows its last output lines", async () => {
    const stopped = (await api("GET", `/api/v1/runs?sweep=${analysisSweep}&state=stopped_early&limit=1`)).body.runs[0];
    await page.goto(`${base}/runs/${stopped.id}`);
    const state = await page.locator("[data-fact='state']").innerText({ timeout: 10_000 });
    assert(/stopped early/.test(state) && /not a failure/.test(state), state);
    assert((await page.locator("[data-fact='error']").count()) === 0, "no error row");
    const failed = (await api("POST", `/api/v1/sweeps/${analysisSweep}/claim`, {})).body.run;
    const trace = "Traceback (most recent call last):\n  File \"train.py\", line 9, in <module>\nValueError: lr must be positive\n";
    await api("POST", `/api/v1/runs/${failed.id}/output`, { stream: "stderr", text: "epoch 1\n".repeat(50) + trace });
    await api("POST", `/api/v1/runs/${failed.id}/finish`, { exit_code: 1 });
    await page.goto(`${base}/runs/${failed.id}`);
    await page.waitForSelector("#run-tail pre", { timeout: 10_000 });
    const tail = await page.locator("#run-tail").innerText();
    assert(tail.includes("ValueError: lr must be positive") && tail.includes("Last 20 lines"), tail);
    assert((await page.locator("[data-fact='state']").innerText()).includes("exited with status 1"), "exit status in words");
    assert((await page.title()).startsWith("Run #"), await page.title());
    await page.screenshot({ path: `${out}/run-failed.png`, fullPage: false });
  });

  await check("no errors in the browser console", async () => {
    assert(errors.length === 0, errors.join(" | "));
  });
} finally {
  for (const a of agents) a.kill("SIGTERM");
  await browser.close();
}
console.log(`screenshots: ${out}/{sweeps,sweep,sweep-brushed,sweep-labels,run,run-missing,analysis,analysis-stopped,sweep-empty,not-found,run-failed,curves,view-state}.png`);
finish("e2e");
