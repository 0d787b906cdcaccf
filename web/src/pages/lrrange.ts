// The run page's view of an LR range test: loss (raw and smoothed) against the learning rate
// on a log axis, the suggested learning rate and the divergence point marked, and the `lr`
// block to paste into a sweep.
//
// A run is an LR range test when its summary holds `lr_range_test` (an object), which the
// Python client's `hyperdial.lr_range_test` stores when the test ends (docs/python.md, "LR
// range test"): its settings, `suggested_lr`, `min_loss_lr`, `steepest_lr`, `divergence_lr`
// and `stop`. The points are the run's `lr`, `loss` and `loss_smoothed` series, paired by step.
// The marked values are the stored ones; `hyperdial lr-find RUN` computes the same from the
// series.
import { api } from "../api";
import { chart, Chart } from "../charts";
import type { Run } from "../wire";
import { clear, h, num } from "../util";

/** What the client stores under `summary.lr_range_test` (numbers may be null). */
interface Stored {
  min_lr?: number;
  max_lr?: number;
  steps?: number;
  points?: number;
  stop?: string | null;
  rule?: string;
  suggested_lr?: number | null;
  min_loss_lr?: number | null;
  steepest_lr?: number | null;
  divergence_lr?: number | null;
  reason?: string | null;
}

/** The run's stored LR range test, or null when the run is not one. */
export function lrRangeOf(run: Pick<Run, "summary">): Stored | null {
  const v = (run.summary as Record<string, unknown> | null | undefined)?.lr_range_test;
  return v && typeof v === "object" && !Array.isArray(v) ? (v as Stored) : null;
}

/** The sweep bounds around a suggestion, as `hyperdial lr-find` prints them: a third of it to
 * three times it, the top capped at the divergence point when that is lower. */
export function sweepBounds(suggested: number, divergence: number | null | undefined): [number, number] {
  let top = suggested * 3;
  if (divergence != null && divergence < top && divergence > suggested) top = divergence;
  return [suggested / 3, top];
}

/** 3 significant digits, written as YAML reads a float. */
function yamlNumber(x: number): string {
  const m = Math.floor(Math.log10(Math.abs(x)));
  if (m < -4 || m >= 6) return x.toExponential(2).replace("e+", "e");
  const t = x.toFixed(Math.max(0, 2 - m));
  if (!t.includes(".")) return t + ".0";
  return t.replace(/0+$/, "").replace(/\.$/, ".0");
}

/** The points of the test, by step: [lr, loss, smoothed loss] with lr > 0. */
function pair(hist: { series: Record<string, { step: number[]; value: (number | null)[] }> }): [number, number | null, number | null][] {
  const by = (key: string) => {
    const m = new Map<number, number | null>();
    const s = hist.series[key];
    s?.step.forEach((x, i) => m.set(x, s.value[i]));
    return m;
  };
  const loss = by("loss");
  const smoothed = by("loss_smoothed");
  const lr = hist.series["lr"] ?? { step: [], value: [] };
  const out: [number, number | null, number | null][] = [];
  lr.step.forEach((step, i) => {
    const x = lr.value[i];
    if (typeof x === "number" && x > 0) out.push([x, loss.get(step) ?? null, smoothed.get(step) ?? null]);
  });
  return out;
}

/** Show the LR range test of `run` in `slot` (emptied when the run is not one). Draws once per
 * stored outcome; later calls with the same outcome do nothing. */
export function showLrRange(slot: HTMLElement, run: Run): void {
  const stored = lrRangeOf(run);
  if (!stored) {
    if (slot.childElementCount) clear(slot);
    slot.dataset.drawn = "";
    return;
  }
  const key = JSON.stringify(stored);
  if (slot.dataset.drawn === key) return;
  slot.dataset.drawn = key;
  const facts = h("div.facts.grid2#lr-range-facts");
  const box = h("div.chart#lr-range-chart", { style: "height:340px" });
  const block = h("pre.config#lr-range-block");
  clear(
    slot,
    h(
      "section.card#lr-range",
      null,
      h("h2", null, "LR range test"),
      facts,
      box,
      h("h3", null, "For a sweep's parameters (hyperdial lr-find prints the same)"),
      block,
    ),
  );
  const row = (k: string, v: string) => h("div.fact", null, h("span.k", null, k), h("span.v", { "data-fact": k }, v));
  const s = stored.suggested_lr ?? null;
  clear(
    facts,
    row("suggested lr", s != null ? `${num(s)} (a tenth of the minimum-loss lr)` : `none: ${stored.reason ?? "too few points"}`),
    row("minimum loss at lr", num(stored.min_loss_lr)),
    row("steepest descent at lr", num(stored.steepest_lr)),
    row("diverged at lr", stored.divergence_lr != null ? num(stored.divergence_lr) : "— (did not diverge)"),
    row("steps", `${stored.points ?? "?"} of ${stored.steps ?? "?"} (${stored.stop ?? "?"})`),
    row("range", `${num(stored.min_lr)} to ${num(stored.max_lr)}`),
  );
  if (s != null) {
    const [lo, hi] = sweepBounds(s, stored.divergence_lr);
    block.textContent = `lr:\n  distribution: log_uniform_values\n  min: ${yamlNumber(lo)}\n  max: ${yamlNumber(hi)}\n`;
  } else block.textContent = "(no suggestion)";
  let c: Chart | null = null;
  api
    .history(run.id, "keys=lr,loss,loss_smoothed&max_points=100000")
    .then((hist) => {
      const pts = pair(hist);
      if (!pts.length) return clear(box, h("p.muted", null, "No lr and loss points logged."));
      c = chart(box);
      const marks: { name: string; xAxis: number; lineStyle: { color: string; type: "dashed" | "solid" }; label: { formatter: string } }[] = [];
      if (s != null) marks.push({ name: "suggested", xAxis: s, lineStyle: { color: "#23a26d", type: "solid" }, label: { formatter: `suggested ${num(s)}` } });
      if (stored.divergence_lr != null)
        marks.push({ name: "diverged", xAxis: stored.divergence_lr, lineStyle: { color: "#e5553a", type: "dashed" }, label: { formatter: `diverged ${num(stored.divergence_lr)}` } });
      // The top of the y range follows the smoothed loss, so the raw loss's blow-up does not
      // squash the curve; the bottom shows every raw point.
      const isNum = (v: number | null): v is number => typeof v === "number" && Number.isFinite(v);
      const smoothedValues = pts.map((p) => p[2]).filter(isNum);
      const low = Math.min(...smoothedValues, ...pts.map((p) => p[1]).filter(isNum));
      const high = Math.max(...smoothedValues);
      c.setOption({
        animation: false,
        grid: { left: 60, right: 24, top: 36, bottom: 44 },
        legend: { top: 4, data: ["loss", "smoothed loss"] },
        tooltip: { trigger: "axis", valueFormatter: (v: number) => num(v) },
        xAxis: { type: "log", name: "learning rate (log scale)", nameLocation: "middle", nameGap: 26, min: "dataMin", max: "dataMax", axisLabel: { formatter: (v: number) => num(v) } },
        yAxis: { type: "value", name: "loss", min: Math.max(0, low - 0.1 * (high - low)), max: high + 0.1 * (high - low), axisLabel: { showMaxLabel: false, formatter: (v: number) => num(v) } },
        series: [
          { name: "loss", type: "line", symbol: "none", data: pts.map((p) => [p[0], p[1]]), lineStyle: { width: 1, opacity: 0.45 }, color: "#2f6fde" },
          {
            name: "smoothed loss",
            type: "line",
            symbol: "none",
            data: pts.map((p) => [p[0], p[2]]),
            lineStyle: { width: 2.2 },
            color: "#9b59b6",
            markLine: { symbol: "none", silent: true, data: marks, label: { position: "insideEndTop" } },
          },
        ],
      });
      // What the chart was given, for the end-to-end check (web/e2e/lrrange.mjs).
      const given = c.getOption() as { xAxis: { type: string }[]; series: { markLine?: { data: { name: string; xAxis: number }[] } }[] };
      box.dataset.points = String(pts.length);
      box.dataset.xAxis = given.xAxis[0].type;
      box.dataset.marks = JSON.stringify(given.series.flatMap((x) => x.markLine?.data ?? []).map((m) => [m.name, m.xAxis]));
    })
    .catch((e) => clear(box, h("p.error", null, `Cannot read the run's history: ${e.message}`)));
}
