// The run page of an LR range test, in headless Chromium driven by playwright-core. Started by
// run.sh with a running `hyperdial server` (HYPERDIAL_SERVER) and the binary (HYPERDIAL_BIN):
// `hyperdial run` of examples/lr-range-test/find_lr.py, then its run page shows loss and
// smoothed loss against the learning rate on a log axis with the suggestion and the divergence
// marked, the stored numbers, and the same sweep block as `hyperdial lr-find`; a run that is
// not a range test has no such card. Prints one line per check and `e2e-lrrange: N passed,
// N failed`; the screenshot goes to E2E_OUT/lr-range-test.png.
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { assert, check, finish, screenshotOf } from "./checks.mjs";

const base = process.env.HYPERDIAL_SERVER;
const bin = process.env.HYPERDIAL_BIN;
const work = process.env.E2E_WORK;
const out = process.env.E2E_OUT;
const findLr = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "examples", "lr-range-test", "find_lr.py");

async function get(path) {
  const r = await fetch(base + path);
  return r.json();
}

/** The id of the newest run whose argv contains `word`. */
async function newestRun(word) {
  const { runs } = await get("/api/v1/runs?sort=created_ms&order=desc&limit=20");
  const run = runs.find((r) => (r.argv ?? []).some((a) => a.includes(word)));
  assert(run, `no run with ${word}`);
  return run.id;
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));
page.on("console", (m) => m.type() === "error" && errors.push(m.text()));

try {
  execFileSync(bin, ["run", "--", "python3", findLr, "--steps=150"], { cwd: work, env: process.env, stdio: "ignore" });
  const id = await newestRun("find_lr.py");
  const stored = (await get(`/api/v1/runs/${id}?history=false`)).summary.lr_range_test;

  await check("an LR range test's run page plots loss against lr on a log axis, suggestion and divergence marked", async () => {
    await page.goto(`${base}/runs/${id}`);
    await page.waitForSelector("#lr-range #lr-range-chart[data-points]");
    const box = page.locator("#lr-range-chart");
    assert((await box.getAttribute("data-points")) === String(stored.points), `points ${await box.getAttribute("data-points")} vs ${stored.points}`);
    assert((await box.getAttribute("data-x-axis")) === "log", "log x axis");
    const marks = JSON.parse(await box.getAttribute("data-marks"));
    assert(marks.length === 2, JSON.stringify(marks));
    assert(marks[0][0] === "suggested" && marks[0][1] === stored.suggested_lr, JSON.stringify(marks));
    assert(marks[1][0] === "diverged" && marks[1][1] === stored.divergence_lr, JSON.stringify(marks));
    assert((await box.locator("canvas").count()) > 0, "a canvas");
    const facts = (await page.locator("#lr-range-facts").innerText()).toLowerCase();
    assert(facts.includes("suggested lr") && facts.includes("diverged at lr") && facts.includes("minimum loss at lr"), facts);
    await screenshotOf(page.locator("#lr-range"), `${out}/lr-range-test.png`);
  });

  await check("the run carries the name the script gave init; the title and the Summary card show it", async () => {
    const run = await get(`/api/v1/runs/${id}?history=false`);
    assert(run.name === "lr-range-test", `name ${JSON.stringify(run.name)}`);
    await page.waitForFunction(() => document.title.includes("lr-range-test"), null, { timeout: 10_000 });
    assert((await page.locator("h1").innerText()).includes("lr-range-test"), await page.locator("h1").innerText());
  });

  await check("the Summary card's LR range record wraps inside the card", async () => {
    // The stored record stays inside the card: nothing in it runs past the card's right edge.
    const card = await page.locator("#run-summary").evaluate((t) => t.closest("section").getBoundingClientRect().right);
    const widest = await page.locator("#run-summary").evaluate((t) => Math.max(...[...t.querySelectorAll("td, td *")].map((e) => e.getBoundingClientRect().right)));
    assert(widest <= card + 0.5, `summary reaches ${widest} px, card ends at ${card} px`);
  });

  await check("the page's sweep block is the one hyperdial lr-find prints", async () => {
    const printed = execFileSync(bin, ["lr-find", id, "--server", base], { cwd: work, env: process.env }).toString();
    const block = printed.split("parameters:`\n")[1].split("\n").map((l) => l.slice(2)).join("\n");
    const shown = await page.locator("#lr-range-block").innerText();
    assert(shown.trim() === block.trim(), `page:\n${shown}\nlr-find:\n${block}`);
  });

  await check("a run that is not an LR range test has no LR range card", async () => {
    execFileSync(bin, ["run", "--", "python3", "-c", 'print(\'hyperdial: {"loss": 0.5, "plain_marker": 1}\')'], { cwd: work, env: process.env, stdio: "ignore" });
    const other = await newestRun("plain_marker");
    await page.goto(`${base}/runs/${other}`);
    await page.waitForSelector("#run-charts [data-metric='loss']");
    assert((await page.locator("#lr-range").count()) === 0, "no card");
  });

  await check("no errors in the browser console", async () => {
    assert(errors.length === 0, errors.join(" | "));
  });
} finally {
  await browser.close();
}
finish("e2e-lrrange");
