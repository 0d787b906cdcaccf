// The compare view, `/compare?runs=ID,ID,...`: the chosen runs side by side. The config table
// lists every key of their configs (nested keys dotted) with the keys whose values differ
// highlighted (and a switch to show only those); the results rows give state, metric, the
// bayes model's prediction, runtime and why a run stopped; the chart overlays one metric of
// every run (downsampled histories), each run in its own colour.

import { api, ApiError } from "../api";
import { chart, curveColour } from "../charts";
import { clear, duration, h, num, stateBadge, value } from "../util";
import type { Run } from "../wire";
import { errorText, prediction, stopReasonText } from "./sweep_table";

/** Most runs one comparison shows. */
export const MAX_COMPARE = 12;

/** A nested config as dotted keys (`optimizer.lr`); lists and scalars are leaves. */
export function flatten(v: unknown, prefix = "", out: Map<string, unknown> = new Map()): Map<string, unknown> {
  if (v && typeof v === "object" && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) flatten(x, prefix ? `${prefix}.${k}` : k, out);
  } else if (prefix) out.set(prefix, v);
  return out;
}

/** Whether a key's values differ among the runs (a key absent from a run differs from any
 * value). */
export function differs(values: unknown[]): boolean {
  const first = JSON.stringify(values[0] ?? null);
  return values.some((v) => JSON.stringify(v ?? null) !== first);
}

export function comparePage(el: HTMLElement): (() => void)[] {
  const ids = (new URLSearchParams(location.search).get("runs") ?? "").split(",").filter(Boolean).slice(0, MAX_COMPARE);
  document.title = "Compare runs · hyperdial";
  const head = h("div.sweep-head");
  const onlyDiff = h("input#only-diff", { type: "checkbox" }) as HTMLInputElement;
  const configTable = h("table.grid.compare#compare-config");
  const resultTable = h("table.grid.compare#compare-results");
  const metricSelect = h("select#compare-metric") as HTMLSelectElement;
  const chartEl = h("div.chart#compare-chart");
  clear(
    el,
    head,
    h("section.card.flush", null, h("div.card-head.pad", null, h("h2", null, "Results")), h("div.scroll", null, resultTable)),
    h(
      "section.card",
      null,
      h("div.card-head", null, h("h2", null, "Metrics"), h("label.inline", null, "metric ", metricSelect)),
      chartEl,
    ),
    h(
      "section.card.flush",
      null,
      h(
        "div.card-head.pad",
        null,
        h("h2", null, "Config"),
        h("label.inline", null, onlyDiff, "only keys that differ"),
        h("span.muted.small#diff-count"),
      ),
      h("div.scroll", null, configTable),
    ),
  );
  if (ids.length < 2) {
    clear(head, h("h1", null, "Compare runs"), h("p.muted", null, "Tick two or more runs in a sweep's runs table, then press Compare."));
    return [];
  }
  const c = chart(chartEl);
  let runs: Run[] = [];
  const label = (r: Run) => `#${r.number ?? r.id}`;

  const renderConfig = () => {
    const flat = runs.map((r) => flatten(r.config ?? {}));
    const keys = [...new Set(flat.flatMap((f) => [...f.keys()]))].sort();
    const rows = keys.map((k) => ({ k, values: flat.map((f) => f.get(k)), diff: differs(flat.map((f) => f.get(k))) }));
    const n = rows.filter((r) => r.diff).length;
    document.getElementById("diff-count")!.textContent = `${n} of ${keys.length} keys differ`;
    clear(
      configTable,
      h("thead", null, h("tr", null, h("th", { scope: "col" }, "key"), runs.map((r, i) => h("th", { scope: "col" }, h("span.swatch", { style: `background:${curveColour(i)}` }), h("a", { href: `/runs/${r.id}`, "data-link": true }, label(r)))))),
      h(
        "tbody",
        null,
        rows
          .filter((r) => r.diff || !onlyDiff.checked)
          .map((r) =>
            h(
              "tr",
              { class: r.diff ? "differs" : undefined, "data-key": r.k, "data-differs": r.diff ? "true" : "false" },
              h("th", { scope: "row" }, r.k, r.diff ? h("span.sr-only", null, " (differs)") : null),
              r.values.map((v) => h("td.num", null, v === undefined ? h("span.muted", null, "absent") : value(v))),
            ),
          ),
      ),
    );
  };
  onlyDiff.addEventListener("change", renderConfig);

  const renderResults = () => {
    const row = (k: string, cell: (r: Run) => Node | string) => h("tr", { "data-key": k }, h("th", { scope: "row" }, k), runs.map((r) => h("td", null, cell(r))));
    clear(
      resultTable,
      h("thead", null, h("tr", null, h("th", { scope: "col" }, "run"), runs.map((r, i) => h("th", { scope: "col" }, h("span.swatch", { style: `background:${curveColour(i)}` }), h("a", { href: `/runs/${r.id}`, "data-link": true }, label(r)))))),
      h(
        "tbody",
        null,
        row("sweep", (r) => (r.sweep ? h("a", { href: `/sweeps/${r.sweep}`, "data-link": true }, r.sweep) : "—")),
        row("state", (r) => stateBadge(r.state)),
        row("metric", (r) => num(r.metric)),
        runs.some((r) => prediction(r)) ? row("predicted", (r) => (prediction(r) ? `${num(prediction(r)!.mean)} ± ${num(prediction(r)!.sd)}` : "—")) : null,
        row("runtime", (r) => duration(r.started_ms ? (r.finished_ms ?? r.heartbeat_ms ?? r.started_ms) - r.started_ms : null)),
        row("steps", (r) => String(r.steps ?? 0)),
        runs.some((r) => errorText(r)) ? row("error", (r) => errorText(r) || "—") : null,
        runs.some((r) => stopReasonText(r)) ? row("stop reason", (r) => stopReasonText(r) || "—") : null,
      ),
    );
  };

  const histories = new Map<string, { step: number[]; value: (number | null)[] }>();
  let keys: string[] = [];
  // Read the chosen metric of every run (the first logged metric when none is chosen yet),
  // and offer every metric any of the runs logged.
  const loadCurves = async (): Promise<void> => {
    const key = metricSelect.value;
    await Promise.all(
      runs.map(async (r) => {
        const hist = await api.history(r.id, `${key ? `keys=${encodeURIComponent(key)}&` : ""}max_points=500`).catch(() => null);
        if (!hist) return;
        keys = [...new Set([...keys, ...hist.keys])].sort();
        const s = hist.series[key] ?? { step: [], value: [] };
        histories.set(r.id, { step: s.step, value: s.value });
      }),
    );
    const offered = [...metricSelect.options].map((o) => o.value);
    if (keys.some((k) => !offered.includes(k))) {
      clear(metricSelect, [...new Set([...(key ? [key] : []), ...keys])].map((k) => h("option", { value: k, selected: k === key }, k)));
      if (!key && metricSelect.value) return loadCurves();
    }
    renderCurves();
  };
  const renderCurves = () => {
    const series = runs.map((r, i) => {
      const s = histories.get(r.id) ?? { step: [], value: [] };
      const cut = r.state !== "finished" && r.state !== "running";
      return {
        type: "line",
        name: label(r),
        color: curveColour(i),
        symbol: s.step.length < 40 ? "circle" : "none",
        lineStyle: { width: 1.8, type: cut ? "dashed" : "solid" },
        data: s.step.map((x, k) => [x, s.value[k]]),
      };
    });
    chartEl.dataset.series = String(series.filter((s) => s.data.length).length);
    c.setOption(
      {
        animation: false,
        grid: { left: 16, right: 24, top: 36, bottom: 36, containLabel: true },
        legend: { top: 0, type: "scroll" },
        tooltip: { trigger: "axis", valueFormatter: (v: number) => num(v) },
        xAxis: { type: "value", name: "step", nameLocation: "middle", nameGap: 24, axisLabel: { hideOverlap: true } },
        yAxis: { type: "value", scale: true, name: metricSelect.value, axisLabel: { hideOverlap: true, formatter: (v: number) => num(v) } },
        dataZoom: [{ type: "inside", xAxisIndex: 0 }],
        series,
      },
      true,
    );
  };
  metricSelect.addEventListener("change", () => loadCurves());

  (async () => {
    runs = (await Promise.all(ids.map((id) => api.run(id).catch((e) => (e instanceof ApiError && e.status === 404 ? null : Promise.reject(e)))))).filter((r): r is Run => r !== null);
    const sweeps = [...new Set(runs.map((r) => r.sweep).filter(Boolean))] as string[];
    clear(
      head,
      h(
        "div.crumbs",
        null,
        h("a", { href: "/", "data-link": true }, "Sweeps"),
        sweeps.length === 1 ? [" / ", h("a", { href: `/sweeps/${sweeps[0]}`, "data-link": true }, sweeps[0])] : null,
      ),
      h("h1", null, `Compare ${runs.length} runs`),
      runs.length < ids.length ? h("p.muted", null, `${ids.length - runs.length} of the runs asked for were not found.`) : null,
    );
    // Start the chart on the sweep metric when the runs share one.
    if (sweeps.length === 1) {
      const s = await api.sweep(sweeps[0]).catch(() => null);
      if (s?.metric) clear(metricSelect, h("option", { value: s.metric.name, selected: true }, s.metric.name));
    }
    renderResults();
    renderConfig();
    await loadCurves();
  })().catch((e) => clear(head, h("p.error", null, (e as Error).message)));
  return [];
}
