// The "Seed noise" panel end to end, in headless Chromium driven by playwright-core. Started by
// run.sh after the other scripts, with the same running `hyperdial server` (HYPERDIAL_SERVER)
// and the binary (HYPERDIAL_BIN): a grid sweep whose metric is a parameter plus seeded noise
// runs to its end, `hyperdial repeat --top 2 --seeds 3` queues repeats, an agent runs them,
// and the sweep page shows the panel (2 configurations × 3 seeds, the ratio, the verdict) and
// the noise band on the best-so-far chart; a grid whose best value is a lucky draw shows the
// model's estimated best beside it. Prints one line per check and
// `e2e-noise: N passed, N failed`.
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { chromium } from "playwright-core";
import { assert, check, finish, screenshotOf } from "./checks.mjs";

const base = process.env.HYPERDIAL_SERVER;
const bin = process.env.HYPERDIAL_BIN;
const work = process.env.E2E_WORK;
const out = process.env.E2E_OUT;

const hd = (args) => execFileSync(bin, args, { cwd: work, env: process.env }).toString();

writeFileSync(
  `${work}/noisy.py`,
  [
    "import argparse, json, random",
    "p = argparse.ArgumentParser()",
    'p.add_argument("--a", type=float)',
    'p.add_argument("--seed", type=int, default=0)',
    "args, _ = p.parse_known_args()",
    "loss = args.a + 0.05 * random.Random(args.seed * 7919 + int(args.a * 10)).gauss(0.0, 1.0)",
    'print("hyperdial: " + json.dumps({"loss": loss}), flush=True)',
    "",
  ].join("\n"),
);
writeFileSync(
  `${work}/noise.yaml`,
  "name: e2e-noise\nprogram: noisy.py\nmethod: grid\nmetric: {name: loss, goal: minimize}\nparameters:\n  a: {values: [1.0, 1.02, 1.5, 2.0, 3.0]}\n  seed: {value: 0}\n",
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
  const sweepId = JSON.parse(hd(["sweep", "--json", "noise.yaml"])).id;
  hd(["agent", sweepId]);

  await check("noise: no panel before any repeat", async () => {
    await page.goto(`${base}/sweeps/${sweepId}`);
    await page.waitForSelector("#runs tbody tr[data-run]", { timeout: 10_000 });
    await page.waitForFunction(() => document.querySelector("#seed-noise")?.hasAttribute("hidden"), null, { timeout: 10_000 });
  });

  const said = hd(["repeat", sweepId, "--top", "2", "--seeds", "3"]);
  assert(said.includes("queued 6 runs"), said);
  hd(["agent", sweepId]);

  await check("noise: the panel shows 2 configurations × 3 seeds, the ratio and the verdict", async () => {
    await page.goto(`${base}/sweeps/${sweepId}`);
    await page.waitForSelector("#seed-noise:not([hidden]) tr[data-config]", { timeout: 10_000 });
    const rows = page.locator("#seed-noise tr[data-config]");
    assert((await rows.count()) === 2, `rows: ${await rows.count()}`);
    for (let i = 0; i < 2; i++) {
      const seeds = await rows.nth(i).locator("td").nth(3).innerText();
      assert(seeds.trim() === "3", `seeds: ${seeds}`);
      assert((await rows.nth(i).locator(".spread .dot").count()) === 1, "mean marker");
    }
    const ratio = await page.locator("[data-fact='ratio']").innerText();
    assert(Number(ratio) > 0, `ratio ${ratio}`);
    const report = await (await fetch(`${base}/api/v1/sweeps/${sweepId}/noise`)).json();
    const verdict = page.locator("#noise-verdict");
    assert(
      (await verdict.getAttribute("data-distinguishable")) === String(report.comparison.distinguishable),
      "verdict follows the report",
    );
    // 1.0 against 1.02, with seed noise 0.05: not distinguishable.
    assert(report.comparison.distinguishable === false, JSON.stringify(report.comparison));
    assert((await verdict.innerText()).includes("not distinguishable"), await verdict.innerText());
    await page.locator("#seed-noise").scrollIntoViewIfNeeded();
    await page.screenshot({ path: `${out}/seed-noise.png`, fullPage: false });
  });

  await check("noise: the best-so-far chart draws best ± seed noise", async () => {
    const report = await (await fetch(`${base}/api/v1/sweeps/${sweepId}/noise`)).json();
    const band = await page.locator("#best-chart").getAttribute("data-noise-band");
    assert(band, "band drawn");
    const [lo, hi] = band.split(",").map(Number);
    assert(Math.abs(hi - lo - 2 * report.seed_noise) < 1e-9, `band ${band} vs noise ${report.seed_noise}`);
    // The band is really painted (ECharts ignores a markArea whose component is not
    // registered): count the rows of canvas pixels in its colour, a third of the width or more.
    const painted = await page.locator("#best-chart canvas").first().evaluate((c) => {
      const { data, width, height } = c.getContext("2d").getImageData(0, 0, c.width, c.height);
      let rows = 0;
      for (let y = 0; y < height; y++) {
        let n = 0;
        for (let x = 0; x < width; x++) {
          const i = (y * width + x) * 4;
          const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
          // The chart's canvas is transparent: the band is a faint red (alpha about 15 of
          // 255), the best-so-far line the same red opaque.
          if (a >= 8 && a <= 22 && r - g > 100 && r - b > 100) n++;
        }
        if (n > width / 2) rows++;
      }
      return rows;
    });
    await page.locator("#best-chart").scrollIntoViewIfNeeded();
    await page.screenshot({ path: `${out}/seed-noise-band.png`, fullPage: false });
    assert(painted >= 1, `band rows painted: ${painted}`);
  });

  await check("noise: a repeat's run page links to the run it repeats", async () => {
    const runs = (await (await fetch(`${base}/api/v1/runs?sweep=${sweepId}&sort=number&limit=100`)).json()).runs;
    const repeat = runs.find((r) => r.repeat_of);
    const of = runs.find((r) => r.id === repeat.repeat_of);
    await page.goto(`${base}/runs/${repeat.id}`);
    const fact = page.locator("[data-fact='attempt']");
    await fact.waitFor({ timeout: 10_000 });
    assert((await fact.innerText()).includes(`repeat of #${of.number}`), await fact.innerText());
  });

  await check("noise: a lucky best value gets the model's estimated best beside it", async () => {
    // A grid over x (optimum at 12) with noise of about 0.2 on every run and one lucky draw
    // far from the optimum, at x = 6: the best value, not the best configuration.
    writeFileSync(
      `${work}/lucky.py`,
      [
        "import argparse, json",
        "p = argparse.ArgumentParser()",
        'p.add_argument("--x", type=int)',
        'p.add_argument("--rep", type=int)',
        "a, _ = p.parse_known_args()",
        "noise = ((a.x * 37 + a.rep * 11) % 7 - 3) * 0.1",
        "if 10 <= a.x <= 14:",
        "    noise = abs(noise) + 0.1",
        "if a.x == 6 and a.rep == 1:",
        "    noise = -0.95",
        'print("hyperdial: " + json.dumps({"loss": (a.x - 12) ** 2 / 40.0 + noise}), flush=True)',
        "",
      ].join("\n"),
    );
    const xs = Array.from({ length: 20 }, (_, i) => i).join(", ");
    writeFileSync(
      `${work}/lucky.yaml`,
      `name: e2e-lucky\nprogram: lucky.py\nmethod: grid\nmetric: {name: loss}\nparameters:\n  x: {values: [${xs}]}\n  rep: {values: [1, 2]}\n`,
    );
    const lucky = JSON.parse(hd(["sweep", "--json", "lucky.yaml"])).id;
    hd(["agent", lucky]);
    const e = await (await fetch(`${base}/api/v1/sweeps/${lucky}/estimate`)).json();
    assert(e.differs === true && e.run.params.x >= 10 && e.run.params.x <= 14, JSON.stringify(e));
    await page.goto(`${base}/sweeps/${lucky}`);
    const fact = page.locator("[data-fact='estimated best']");
    await fact.waitFor({ timeout: 10_000 });
    const shown = await fact.innerText();
    assert(shown.includes(`#${e.run.number}`), `shown: ${shown}, estimate #${e.run.number}`);
    assert((await fact.locator(`a[data-run='${e.run.id}']`).count()) === 1, "a link to the run");
    await screenshotOf(page.locator(".facts"), `${out}/estimated-best.png`);
  });

  await check("noise: no errors in the browser console", async () => {
    assert(errors.length === 0, errors.join(" | "));
  });
} finally {
  await browser.close();
}
console.log(`screenshots: ${out}/{seed-noise,seed-noise-band,estimated-best}.png`);
finish("e2e-noise");
