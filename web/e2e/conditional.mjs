// Parallel coordinates of a sweep with conditional parameters, end to end in headless Chromium
// driven by playwright-core. Started by run.sh with the same running `hyperdial server`
// (HYPERDIAL_SERVER) and the binary (HYPERDIAL_BIN): a random sweep where `momentum` exists
// only with `optimizer: sgd` runs to its end, and the sweep page draws the adam runs at the
// `momentum` axis's "(absent)" slot below its range, not across the axis at some value. Prints one
// line per check and `e2e-conditional: N passed, N failed`.
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { chromium } from "playwright-core";
import { assert, check, finish } from "./checks.mjs";

const base = process.env.HYPERDIAL_SERVER;
const bin = process.env.HYPERDIAL_BIN;
const work = process.env.E2E_WORK;
const out = process.env.E2E_OUT;

const hd = (args) => execFileSync(bin, args, { cwd: work, env: process.env }).toString();

writeFileSync(
  `${work}/cond.py`,
  [
    "import json, os",
    'cfg = json.load(open(os.environ["HYPERDIAL_CONFIG"]))',
    'loss = cfg["lr"] + (cfg.get("momentum", 0.5) if cfg["optimizer"] == "sgd" else 0.3)',
    'print("hyperdial: " + json.dumps({"loss": loss}), flush=True)',
    "",
  ].join("\n"),
);
writeFileSync(
  `${work}/cond.yaml`,
  "name: e2e-conditional\nprogram: cond.py\ncommand: [python3, \"${program}\"]\nmethod: random\nrun_cap: 16\nmetric: {name: loss, goal: minimize}\nparameters:\n  optimizer: {values: [sgd, adam]}\n  momentum: {min: 0.1, max: 0.9, when: {optimizer: sgd}}\n  lr: {min: 0.0, max: 1.0}\n",
);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 1400 } });
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));
page.on("console", (m) => m.type() === "error" && errors.push(m.text()));

try {
  const sweepId = JSON.parse(hd(["sweep", "--json", "cond.yaml"])).id;
  hd(["agent", sweepId]);
  const { runs } = await (await fetch(`${base}/api/v1/runs?sweep=${sweepId}&limit=100`)).json();
  const adam = runs.filter((r) => r.params.optimizer === "adam").length;

  await check("conditional: an absent momentum is drawn at the axis's '(absent)' slot below its range", async () => {
    assert(adam > 0 && adam < runs.length, `${adam} adam runs of ${runs.length}`);
    await page.goto(`${base}/sweeps/${sweepId}`);
    await page.waitForSelector(`#parallel[data-rows='${runs.length}']`, { timeout: 15_000 });
    const absent = await page.locator("#parallel").getAttribute("data-absent");
    const slots = Object.fromEntries((absent ?? "").split("|").filter(Boolean).map((s) => s.split("=")));
    assert("momentum" in slots, `absent slots: ${absent}`);
    assert(Number(slots.momentum) < 0.1, `momentum's slot ${slots.momentum} is inside its range`);
    assert(!("lr" in slots) && !("optimizer" in slots), `only momentum has a slot: ${absent}`);
    await page.locator("#parallel").scrollIntoViewIfNeeded();
    await page.screenshot({ path: `${out}/parallel-conditional.png`, fullPage: false });
  });

  await check("conditional: no errors in the browser console", async () => {
    assert(errors.length === 0, errors.join(" | "));
  });
} finally {
  await browser.close();
}
console.log(`screenshots: ${out}/parallel-conditional.png`);
finish("e2e-conditional");
