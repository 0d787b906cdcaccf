import { api, ApiError, subscribe } from "../api";
import { chart, Chart, palette } from "../charts";
import { navigate } from "../main";
import { clear, configYaml, deliveryLabels, duration, h, markdown, num, smooth, stateBadge, throttle, value, when } from "../util";
import type { EventPoint, Run, RunBrief, Sweep, SweepPoints as Points } from "../wire";
import { RUN_STATES } from "../wire";
import { sweepActions } from "./sweeps";
import { frontView } from "./front";

const label = (v: unknown): string => (typeof v === "string" ? v : JSON.stringify(v));
const PAGE = 50;

/** The analysis filter: which ended runs every chart and the importance read. Runs stopped
 * early or failed report a truncated metric, so mixing them with finished runs would teach the
 * charts how long runs lasted rather than how good their parameters were. */
export const ANALYSIS = {
  finished: { label: "finished", states: ["finished"] },
  stopped_early: { label: "stopped early", states: ["stopped_early"] },
  failed: { label: "failed", states: ["failed", "crashed"] },
} as const;
export type Analysis = keyof typeof ANALYSIS;

/** How the parallel coordinates colour a run by its metric: by rank among the shown runs
 * (outliers cannot squeeze the others into one colour), or by value on a linear or log scale. */
export type ColourMode = "rank" | "linear" | "log";

/** The colour value of each metric in `ms` under `mode`, and the range of those values. Rank
 * gives the mid-rank quantile in [0, 1] (ties share it); log takes log10 of the distance above
 * the smallest value plus 1 % of the spread, so non-positive metrics work too. */
export function colourValues(ms: number[], mode: ColourMode): { values: number[]; lo: number; hi: number } {
  if (!ms.length) return { values: [], lo: 0, hi: 1 };
  let lo = Infinity;
  let hi = -Infinity;
  for (const m of ms) {
    if (m < lo) lo = m;
    if (m > hi) hi = m;
  }
  if (mode === "rank") {
    const order = ms.map((m, i) => [m, i] as const).sort((a, b) => a[0] - b[0]);
    const out = new Array<number>(ms.length);
    let k = 0;
    while (k < order.length) {
      let end = k;
      while (end + 1 < order.length && order[end + 1][0] === order[k][0]) end++;
      const q = ms.length === 1 ? 0.5 : (k + end) / 2 / (ms.length - 1);
      for (let j = k; j <= end; j++) out[order[j][1]] = q;
      k = end + 1;
    }
    return { values: out, lo: 0, hi: 1 };
  }
  if (mode === "log") {
    const eps = (hi - lo) * 0.01 || 1e-12;
    const values = ms.map((m) => Math.log10(m - lo + eps));
    return { values, lo: Math.log10(eps), hi: Math.log10(hi - lo + eps) };
  }
  return { values: ms, lo, hi: hi === lo ? lo + 1 : hi };
}

export function sweepPage(el: HTMLElement, id: string): (() => void)[] {
  let sweep: Sweep | null = null;
  let pts: Points | null = null;
  const selected = new Set<string>();
  let userSelected = false;
  const table = { sort: "number", desc: false, offset: 0, state: "", brush: [] as string[] };
  // x: "step", "time" (seconds since the run's first point) or another metric's name.
  const curves = { key: "", x: "step", smoothing: 0.6, keys: [] as string[] };
  let bestMode: "number" | "time" = "number";
  // The view state lives in the URL's query, so a reload or Back shows the same view.
  const q0 = new URLSearchParams(location.search);
  let analysis: Analysis = (q0.get("analysis") as Analysis) in ANALYSIS ? (q0.get("analysis") as Analysis) : "finished";
  let colourMode: ColourMode = (["rank", "linear", "log"] as const).find((m) => m === q0.get("colour")) ?? "rank";
  if (q0.get("sort")) table.sort = q0.get("sort")!;
  table.desc = q0.get("order") === "desc";
  table.state = q0.get("state") ?? "";
  table.brush = q0.getAll("brush");
  table.offset = Math.max(0, Number(q0.get("offset")) || 0);
  if (q0.get("runs")) {
    userSelected = true;
    q0.get("runs")!.split(",").filter(Boolean).forEach((r) => selected.add(r));
  }
  const saveView = () => {
    const q = new URLSearchParams();
    if (analysis !== "finished") q.set("analysis", analysis);
    if (colourMode !== "rank") q.set("colour", colourMode);
    if (table.sort !== "number") q.set("sort", table.sort);
    if (table.desc) q.set("order", "desc");
    if (table.state) q.set("state", table.state);
    if (table.offset) q.set("offset", String(table.offset));
    for (const b of table.brush) q.append("brush", b);
    if (userSelected) q.set("runs", [...selected].join(","));
    for (const [k, v] of new URLSearchParams(location.search)) if (k === "fx" || k === "fy") q.set(k, v); // front.ts
    const qs = q.toString();
    const url = location.pathname + (qs ? `?${qs}` : "");
    if (url !== location.pathname + location.search) history.replaceState(null, "", url);
  };

  // ---- layout ----
  const header = h("div.sweep-head");
  const bestEl = h("div.chart#best-chart");
  const importanceEl = h("div#importance", { "data-testid": "importance" }, h("p.muted", null, "Computing…"));
  const parallelEl = h("div.chart.tall#parallel");
  const brushNote = h("span.muted#brush-note");
  const scatterEl = h("div.scatters#scatters");
  const curveEl = h("div.chart#curves");
  const curveKey = h("select#curve-key") as HTMLSelectElement;
  const curveX = h("select#curve-x", null, h("option", { value: "step" }, "step"), h("option", { value: "time" }, "time")) as HTMLSelectElement;
  const smoothing = h("input#smoothing", { type: "range", min: "0", max: "0.99", step: "0.01", value: "0.6" }) as HTMLInputElement;
  const smoothLabel = h("span.muted", null, "0.60");
  const tableHead = h("thead");
  const tableBody = h("tbody");
  const pager = h("div.pager#pager");
  const stateSelect = h(
    "select#state-filter",
    null,
    h("option", { value: "" }, "all states"),
    RUN_STATES.map((s) => h("option", { value: s }, s.replace("_", " "))),
  ) as HTMLSelectElement;
  const analysisSelect = h(
    "select#analysis-state",
    { "aria-label": "runs the charts and the importance use" },
    (Object.keys(ANALYSIS) as Analysis[]).map((k) => h("option", { value: k }, ANALYSIS[k].label)),
  ) as HTMLSelectElement;
  const analysisNote = h("span.muted.small#analysis-note");
  const colourSelect = h(
    "select#colour-mode",
    { "aria-label": "colour runs by" },
    h("option", { value: "rank" }, "rank"),
    h("option", { value: "linear" }, "value (linear)"),
    h("option", { value: "log" }, "value (log)"),
  ) as HTMLSelectElement;
  analysisSelect.value = analysis;
  colourSelect.value = colourMode;
  const emptyEl = h("div#empty-sweep");
  const notesInput = h("textarea#notes-input", { rows: "8", placeholder: "What did this sweep teach you? What to try next? (Markdown)", "data-testid": "notes-input" }) as HTMLTextAreaElement;
  const notesView = h("div.md#notes-view", { "data-testid": "notes-view" });
  const notesStatus = h("span.muted#notes-status");
  const configEl = h("pre.config#config");
  const bestToggle = h(
    "span.toggle",
    null,
    h("button.btn.small.on", { onclick: (e: Event) => setBest("number", e) }, "by run"),
    h("button.btn.small", { onclick: (e: Event) => setBest("time", e) }, "by time"),
  );

  const front = frontView(id);
  clear(
    el,
    header,
    emptyEl,
    front.el,
    h(
      "div.analysis-bar",
      null,
      h("label.inline", null, "Charts and importance use runs that ", analysisSelect),
      analysisNote,
    ),
    h(
      "div.row",
      null,
      h("section.card.wide", null, h("div.card-head", null, h("h2", null, "Best so far"), bestToggle), bestEl),
      h("section.card.side", null, h("h2", null, "Parameter importance"), importanceEl),
    ),
    h(
      "section.card",
      null,
      h("div.card-head", null, h("h2", null, "Parallel coordinates"), h("label.inline", null, "colour by ", colourSelect), brushNote),
      h("p.muted.small", null, "Drag along an axis to select a range; the runs table below follows the selection."),
      parallelEl,
    ),
    h("section.card", null, h("h2", null, "Parameters against the metric"), scatterEl),
    h(
      "section.card",
      null,
      h(
        "div.card-head",
        null,
        h("h2", null, "Learning curves"),
        h("label.inline", null, "metric ", curveKey),
        h("label.inline", null, "x ", curveX),
        h("label.inline", null, "smoothing ", smoothing, smoothLabel),
      ),
      h("p.muted.small", null, "The best runs, or the ones ticked in the table."),
      curveEl,
    ),
    h(
      "section.card.flush",
      null,
      h("div.card-head.pad", null, h("h2", null, "Runs"), h("label.inline", null, stateSelect), pager),
      h("div.scroll", null, h("table.grid#runs", null, tableHead, tableBody)),
    ),
    h(
      "div.row",
      null,
      h(
        "section.card.half",
        null,
        h("div.card-head", null, h("h2", null, "Notes"), notesStatus),
        notesView,
        notesInput,
        h("div", null, h("button.btn#notes-save", { onclick: () => saveNotes(), "data-testid": "notes-save" }, "Save notes")),
      ),
      h("section.card.half", null, h("h2", null, "Config"), configEl),
    ),
  );

  stateSelect.value = table.state;
  const bestChart = chart(bestEl);
  const parallelChart = chart(parallelEl);
  const curveChart = chart(curveEl);
  let scatterCharts: Chart[] = [];

  // ---- header ----
  const renderHeader = () => {
    const s = sweep;
    if (!s) return;
    const c = s.counts;
    clear(
      header,
      h("div.crumbs", null, h("a", { href: "/", "data-link": true }, "Sweeps"), " / ", s.project),
      h(
        "div.title-row",
        null,
        h("h1", null, s.name || s.id),
        stateBadge(s.state),
        sweepActions(s, () => loadSweep().catch(() => {}), (msg) => (actionError.textContent = msg)),
      ),
      actionError,
      h(
        "div.facts",
        null,
        fact("id", s.id),
        fact("method", s.method),
        fact("metric", s.metric ? `${s.metric.name} (${s.metric.goal ?? "minimize"})` : "—"),
        fact("best", s.best ? num(s.best.value) : "—"),
        s.retries ? fact("retries", `${s.retries}`) : null,
        fact("runs", `${s.total_runs}`, h("span.muted", null, ` ${Object.entries(c).filter(([, n]) => n).map(([k, n]) => `${n} ${k.replace("_", " ")}`).join(" · ")}`)),
        fact("compute", duration(s.compute_ms)),
        fact("created", when(s.created_ms)),
      ),
    );
  };
  const actionError = h("p.action-error#action-error", { role: "alert" });
  const fact = (k: string, v: string, ...rest: Node[]) => h("div.fact", null, h("span.k", null, k), h("span.v", { "data-fact": k }, v, ...rest));

  const loadSweep = async () => {
    const s = await api.sweep(id);
    sweep = s;
    document.title = `${s.name || s.id} · sweep · hyperdial`;
    renderHeader();
    if (document.activeElement !== notesInput && notesInput.value === (notesInput.dataset.saved ?? "")) {
      notesInput.value = s.notes || "";
      notesInput.dataset.saved = s.notes || "";
      notesView.innerHTML = markdown(s.notes || "");
    }
    configEl.textContent = configYaml(s.source || "");
  };

  const saveNotes = async () => {
    notesStatus.textContent = "saving…";
    try {
      const r = await api.putNotes(id, { notes: notesInput.value });
      notesInput.dataset.saved = r.notes;
      notesView.innerHTML = markdown(r.notes);
      notesStatus.textContent = "saved";
    } catch (e) {
      notesStatus.textContent = (e as Error).message;
    }
  };
  notesInput.addEventListener("input", () => {
    notesView.innerHTML = markdown(notesInput.value);
    notesStatus.textContent = notesInput.value === notesInput.dataset.saved ? "" : "unsaved";
  });

  // ---- charts from points ----
  const maximize = () => pts?.metric?.goal === "maximize";
  const withMetric = (): number[] => {
    if (!pts) return [];
    const states: readonly string[] = ANALYSIS[analysis].states;
    const out: number[] = [];
    pts.runs.metric.forEach((m, i) => {
      if (m !== null && m !== undefined && states.includes(pts!.runs.state[i])) out.push(i);
    });
    return out;
  };

  const renderBest = () => {
    if (!pts) return;
    const idx = withMetric();
    const byTime = bestMode === "time";
    const xOf = (i: number) => (byTime ? pts!.runs.finished_ms[i] ?? pts!.runs.created_ms[i] : pts!.runs.number[i]);
    const order = [...idx].sort((a, b) => (xOf(a) ?? 0) - (xOf(b) ?? 0));
    let best: number | null = null;
    const frontier: [number, number][] = [];
    for (const i of order) {
      const m = pts.runs.metric[i]!;
      if (best === null || (maximize() ? m > best : m < best)) best = m;
      frontier.push([xOf(i)!, best]);
    }
    bestChart.setOption(
      {
        animation: false,
        grid: { left: 60, right: 20, top: 20, bottom: 40 },
        tooltip: { trigger: "item", formatter: (p: any) => (p.seriesIndex === 0 ? `run #${p.data[2]}<br>${num(p.data[1])}` : `best ${num(p.data[1])}`) },
        xAxis: { type: byTime ? "time" : "value", name: byTime ? "" : "run", nameLocation: "middle", nameGap: 26, scale: true },
        yAxis: { type: "value", scale: true, name: pts.metric?.name ?? "metric", axisLabel: { formatter: (v: number) => num(v) } },
        series: [
          {
            type: "scatter",
            symbolSize: idx.length > 2000 ? 3 : 6,
            large: idx.length > 2000,
            itemStyle: { color: "#8aa4d6" },
            data: order.map((i) => [xOf(i), pts!.runs.metric[i], pts!.runs.number[i], pts!.runs.id[i]]),
          },
          { type: "line", step: "end", symbol: "none", lineStyle: { color: "#e5553a", width: 2 }, data: frontier },
        ],
      },
      true,
    );
  };
  bestChart.on("click", (p: any) => {
    if (p.seriesIndex === 0 && p.data?.[3]) navigate(`/runs/${p.data[3]}`);
  });
  const setBest = (mode: "number" | "time", e: Event) => {
    bestMode = mode;
    bestToggle.querySelectorAll("button").forEach((b) => b.classList.toggle("on", b === e.target));
    renderBest();
  };

  let parallelBuilt = false;
  // Each row: the parameters, the metric, the run id, then the colour value (see ColourMode).
  const parallelData = () => {
    const idx = withMetric();
    const colour = colourValues(idx.map((i) => pts!.runs.metric[i]!), colourMode);
    const rows = idx.map((i, k) => [
      ...pts!.axes.map((a) => {
        const v = pts!.runs.params[a.name]?.[i];
        return a.kind === "category" ? label(v) : v;
      }),
      pts!.runs.metric[i],
      pts!.runs.id[i],
      colour.values[k],
    ]);
    return { rows, lo: colour.lo, hi: colour.hi };
  };
  const colors = () => (maximize() ? ["#d94e3f", "#f2c14e", "#2f6fde"] : ["#2f6fde", "#f2c14e", "#d94e3f"]);
  const renderParallel = () => {
    if (!pts) return;
    const { rows: data, lo, hi } = parallelData();
    parallelEl.dataset.rows = String(data.length);
    if (parallelBuilt) {
      parallelChart.setOption({ visualMap: [{ min: lo, max: hi }], series: [{ data }] });
      return;
    }
    parallelBuilt = true;
    const dims = pts.axes.map((a, i) => {
      const cats = a.kind === "category" ? (a.values ?? []).map(label) : undefined;
      return {
        dim: i,
        name: a.name,
        type: a.kind === "log" ? "log" : a.kind === "category" ? "category" : "value",
        data: cats,
        scale: a.kind === "linear",
        axisLabel: a.kind === "category" ? {} : { formatter: (v: number) => num(v) },
      };
    });
    dims.push({
      dim: pts.axes.length,
      name: pts.metric?.name ?? "metric",
      type: "value",
      data: undefined,
      scale: true,
      axisLabel: { formatter: (v: number) => num(v) },
    });
    parallelChart.setOption(
      {
        animation: false,
        parallel: {
          left: 50,
          right: 110,
          top: 40,
          bottom: 30,
          parallelAxisDefault: {
            nameLocation: "end",
            nameGap: 14,
            nameTextStyle: { fontSize: 12, fontWeight: "bold" },
            areaSelectStyle: { width: 18, opacity: 0.35 },
          },
        },
        parallelAxis: dims,
        visualMap: [
          {
            type: "continuous",
            dimension: pts.axes.length + 2,
            min: lo,
            max: hi,
            right: 10,
            top: "middle",
            calculable: false,
            inRange: { color: colors() },
            text: [
              `${maximize() ? "better" : "worse"}${colourMode === "rank" ? " (rank)" : ""}`,
              maximize() ? "worse" : "better",
            ],
            textStyle: { fontSize: 11 },
          },
        ],
        series: [
          {
            type: "parallel",
            lineStyle: { width: 1, opacity: 0.55 },
            inactiveOpacity: 0.04,
            activeOpacity: 1,
            progressive: 1000,
            smooth: false,
            data,
          },
        ],
      },
      true,
    );
  };
  parallelChart.on("axisareaselected", () => {
    if (!pts) return;
    const model = (parallelChart as any).getModel();
    const filters: string[] = [];
    const names = [...pts.axes.map((a) => a.name), "metric"];
    names.forEach((name, i) => {
      const axis = model.getComponent("parallelAxis", i);
      const intervals: [number, number][] = axis?.activeIntervals ?? [];
      if (!intervals.length) return;
      const lo = Math.min(...intervals.map((v) => v[0]));
      const hi = Math.max(...intervals.map((v) => v[1]));
      const a = pts!.axes[i];
      if (!a) filters.push(`range=metric:${lo}:${hi}`);
      else if (a.kind === "category") {
        const cats = (a.values ?? []).map(label).filter((_, k) => intervals.some(([x, y]) => k >= x - 1e-9 && k <= y + 1e-9));
        filters.push(`in=params.${name}:${cats.join("|")}`);
      } else filters.push(`range=params.${name}:${lo}:${hi}`);
    });
    table.brush = filters;
    table.offset = 0;
    loadTable();
  });

  const renderScatters = () => {
    if (!pts) return;
    if (scatterCharts.length !== pts.axes.length) {
      for (const c of scatterCharts) c.dispose();
      clear(scatterEl);
      scatterCharts = pts.axes.map(() => {
        const box = h("div.chart.small");
        scatterEl.append(box);
        const c = chart(box);
        c.on("click", (p: any) => p.data?.[2] && navigate(`/runs/${p.data[2]}`));
        return c;
      });
      if (!pts.axes.length) scatterEl.append(h("p.muted", null, "This sweep has no varying parameters."));
    }
    const idx = withMetric();
    pts.axes.forEach((a, k) => {
      const data = idx.map((i) => {
        const v = pts!.runs.params[a.name]?.[i];
        return [a.kind === "category" ? label(v) : v, pts!.runs.metric[i], pts!.runs.id[i]];
      });
      scatterCharts[k].setOption(
        {
          animation: false,
          title: { text: a.name, left: "center", textStyle: { fontSize: 12 } },
          grid: { left: 56, right: 12, top: 28, bottom: 30 },
          tooltip: { trigger: "item", formatter: (p: any) => `${a.name} = ${value(p.data[0])}<br>${num(p.data[1])}` },
          xAxis: {
            type: a.kind === "log" ? "log" : a.kind === "category" ? "category" : "value",
            data: a.kind === "category" ? (a.values ?? []).map(label) : undefined,
            scale: true,
            axisLabel: a.kind === "category" ? {} : { formatter: (v: number) => num(v) },
          },
          yAxis: { type: "value", scale: true, axisLabel: { formatter: (v: number) => num(v) } },
          series: [{ type: "scatter", symbolSize: idx.length > 2000 ? 3 : 5, large: idx.length > 2000, itemStyle: { color: "#2f6fde", opacity: 0.6 }, data }],
        },
        true,
      );
    });
  };

  // Column index of each run in `pts`, so live events update the columns in place.
  const index = new Map<string, number>();
  const loadPoints = async () => {
    pts = await api.points(id);
    index.clear();
    pts.runs.id.forEach((r, i) => index.set(r, i));
    if (!curves.key && pts.metric) curves.key = pts.metric.name;
    measuredRender();
  };
  // Apply a run event to the columns: a new run is appended, a known one updated. Answers
  // whether the run is, or was, one the charts show (only then must they be drawn again).
  const applyRun = (r: RunBrief): boolean => {
    if (!pts) return false;
    const states: readonly string[] = ANALYSIS[analysis].states;
    const c = pts.runs;
    let k = index.get(r.id);
    const was = k !== undefined && c.metric[k] !== null && states.includes(c.state[k]);
    if (k === undefined) {
      k = c.id.length;
      index.set(r.id, k);
      c.id.push(r.id);
      c.number.push(r.number);
      c.state.push(r.state);
      c.metric.push(r.metric);
      c.created_ms.push(r.created_ms);
      c.finished_ms.push(r.finished_ms);
      c.runtime_ms.push(r.started_ms && r.finished_ms ? r.finished_ms - r.started_ms : null);
      for (const a of pts.axes) (c.params[a.name] ??= []).push(r.params?.[a.name] ?? null);
      pts.count = c.id.length;
    } else {
      c.state[k] = r.state;
      c.metric[k] = r.metric;
      c.finished_ms[k] = r.finished_ms;
      c.runtime_ms[k] = r.started_ms && r.finished_ms ? r.finished_ms - r.started_ms : null;
    }
    const is = r.metric !== null && states.includes(r.state);
    return was || is;
  };
  const renderEmpty = () => {
    if (!pts || pts.count > 0 || (sweep && sweep.state !== "running" && sweep.state !== "paused")) return clear(emptyEl);
    clear(
      emptyEl,
      h(
        "section.card.empty-sweep",
        null,
        h("h2", null, "No runs yet"),
        h("p", null, "Runs appear here live as agents claim them. Start an agent on any machine that can reach this server:"),
        h("pre.command", null, `HYPERDIAL_SERVER=${location.origin} hyperdial agent ${id}`),
        h("p.muted.small", null, "Add --token (or HYPERDIAL_TOKEN) when the server has one. The sweep's program runs in the agent's working directory."),
      ),
    );
  };
  const renderCharts = () => {
    renderEmpty();
    if (!pts) return;
    renderBest();
    renderParallel();
    renderScatters();
    analysisChanged();
    if (!userSelected) {
      // The best runs so far among those the charts show and those still running.
      const states: readonly string[] = [...ANALYSIS[analysis].states, "running"];
      const idx: number[] = [];
      pts.runs.metric.forEach((m, i) => {
        if (m !== null && states.includes(pts!.runs.state[i])) idx.push(i);
      });
      idx.sort((a, b) => (pts!.runs.metric[a]! - pts!.runs.metric[b]!) * (maximize() ? -1 : 1));
      const top = idx.slice(0, 5).map((i) => pts!.runs.id[i]);
      if (top.join() !== [...selected].join()) {
        selected.clear();
        top.forEach((r) => selected.add(r));
        loadCurves();
      }
    }
  };

  // ---- importance ----
  const pct = (v: number) => `${(v * 100).toFixed(0)}%`;
  // A bar with a whisker of ± one standard deviation across the sub-forests.
  const bar = (v: number | null, sd: number | null, what: string) =>
    v === null
      ? h("span.muted", null, "—")
      : h(
          "div.bar",
          { title: `${what} ${pct(v)} ± ${pct(sd ?? 0)} (standard deviation across sub-forests)` },
          h("div.fill", { style: `width:${Math.round(v * 100)}%` }),
          sd
            ? h("div.whisker", {
                style: `left:${Math.max(0, (v - sd) * 100).toFixed(1)}%;width:${((Math.min(1, v + sd) - Math.max(0, v - sd)) * 100).toFixed(1)}%`,
              })
            : null,
          h("span", null, `${pct(v)}${sd ? ` ±${(sd * 100).toFixed(0)}` : ""}`),
        );
  const loadImportance = async () => {
    const asked = analysis;
    const imp = await api.importance(id, ANALYSIS[asked].states.join(","));
    if (asked !== analysis) return;
    if (!imp.params?.length) {
      clear(importanceEl, h("p.muted", null, "No varying parameters."));
      return;
    }
    const which = ANALYSIS[asked].label;
    const evidence =
      imp.evidence === "too_few_runs"
        ? `Not enough evidence: ${imp.runs} ${which} run${imp.runs === 1 ? "" : "s"} with ${imp.metric ?? "the metric"}; importance needs at least ${imp.min_runs}.`
        : imp.evidence === "no_signal"
          ? `Not enough evidence: the parameters do not predict ${imp.metric ?? "the metric"} better than its mean (out-of-bag R² ${imp.oob_r2 === null ? "not measurable" : num(Number(imp.oob_r2.toFixed(2)))} ≤ 0), so no ranking is shown.`
          : null;
    const rows = imp.params.map((p) => {
      const corr = p.pearson;
      return h(
        "tr",
        { "data-param": p.name },
        h("td", null, p.name, p.kind !== "linear" ? h("span.muted.small", null, ` ${p.kind}`) : null),
        h("td.barcell", null, bar(p.importance, p.importance_sd, "importance")),
        h("td.barcell", null, bar(p.main_effect, p.main_effect_sd, "main effect")),
        h(
          "td.barcell",
          { title: `Pearson ${num(corr)} · Spearman ${num(p.spearman)}` },
          corr === null
            ? h("span.muted", null, "—")
            : h(
                "div.corr",
                null,
                h("div", { class: corr >= 0 ? "pos" : "neg", style: `width:${Math.abs(corr) * 50}%;${corr >= 0 ? "left:50%" : `right:50%`}` }),
                h("span", null, num(Number(corr.toFixed(2)))),
              ),
        ),
      );
    });
    clear(
      importanceEl,
      evidence ? h("p.evidence#no-evidence", { "data-evidence": imp.evidence, role: "status" }, evidence) : null,
      h(
        "table.imp",
        { "data-evidence": imp.evidence },
        h("thead", null, h("tr", null, h("th", null, "parameter"), h("th", { title: "share of the forest's split gains" }, "importance"), h("th", { title: "share of the predicted metric's variance this parameter explains alone (sees U-shapes)" }, "main effect"), h("th", null, "correlation"))),
        h("tbody", null, rows),
      ),
      h(
        "p.muted.small",
        null,
        `From ${imp.runs} ${which} run${imp.runs === 1 ? "" : "s"}. Random forest of ${imp.trees} trees (${imp.sub_forests} sub-forests; ± is the spread across them) on ${imp.forest_runs} runs${imp.oob_r2 !== null ? `, out-of-bag R² ${num(Number(imp.oob_r2.toFixed(2)))}` : ""}. Main effect: variance of the forest's partial dependence, as fANOVA. Correlation: Pearson with ${imp.metric ?? "the metric"} (log-scale parameters as log).`,
      ),
    );
  };

  // ---- learning curves ----
  // Per run: the y series, its wall times, and (when x is another metric) x by step.
  const histories = new Map<string, { keys: string[]; step: number[]; value: (number | null)[]; time: number[]; xs?: Map<number, number | null> }>();
  const loadCurves = async () => {
    const runs = [...selected];
    const key = curves.key;
    const xKey = curves.x !== "step" && curves.x !== "time" ? curves.x : null;
    await Promise.all(
      runs.map(async (r) => {
        const keys = xKey && xKey !== key ? `${key},${xKey}` : key;
        const hist = await api.history(r, `keys=${encodeURIComponent(keys)}&max_points=500`).catch(() => null);
        if (!hist) return;
        const s = hist.series[key] ?? { step: [], value: [], time_ms: [] };
        const entry: { keys: string[]; step: number[]; value: (number | null)[]; time: number[]; xs?: Map<number, number | null> } = {
          keys: hist.keys,
          step: s.step,
          value: s.value,
          time: s.time_ms ?? [],
        };
        if (xKey) {
          const xsr = hist.series[xKey] ?? { step: [], value: [] };
          entry.xs = new Map(xsr.step.map((st: number, i: number) => [st, xsr.value[i]]));
        }
        histories.set(r, entry);
      }),
    );
    const keys = new Set<string>();
    for (const r of runs) histories.get(r)?.keys.forEach((k) => keys.add(k));
    const list = [...keys].sort();
    if (list.join() !== curves.keys.join()) {
      curves.keys = list;
      clear(curveKey, list.map((k) => h("option", { value: k, selected: k === curves.key }, k)));
      clear(
        curveX,
        h("option", { value: "step", selected: curves.x === "step" }, "step"),
        h("option", { value: "time", selected: curves.x === "time" }, "time (s)"),
        list.map((k) => h("option", { value: k, selected: k === curves.x }, k)),
      );
    }
    renderCurves();
  };
  // Colours that do not repeat among the runs shown: the palette, then hues spread by the
  // golden angle.
  const curveColour = (k: number) => (k < palette.length ? palette[k] : `hsl(${Math.round((k * 137.508) % 360)}, 62%, 45%)`);
  const renderCurves = () => {
    const at = (r: string) => (pts ? (index.get(r) ?? -1) : -1);
    const numberOf = (r: string) => (at(r) >= 0 ? pts!.runs.number[at(r)] : null);
    const stateOf = (r: string) => (at(r) >= 0 ? pts!.runs.state[at(r)] : null);
    const series = [...selected].map((r, k) => {
      const hist = histories.get(r);
      const ys = smooth(hist?.value ?? [], curves.smoothing);
      const steps = hist?.step ?? [];
      const t0 = hist?.time?.[0] ?? 0;
      const xOf = (i: number): number | null =>
        curves.x === "step" ? steps[i] : curves.x === "time" ? ((hist?.time?.[i] ?? t0) - t0) / 1000 : (hist?.xs?.get(steps[i]) ?? null) as number | null;
      const data = steps.map((_, i) => [xOf(i), ys[i]]).filter((d) => d[0] !== null);
      const st = stateOf(r);
      // Runs that did not finish are faded and dashed: their curves end where they were cut.
      const cut = st === "stopped_early" || st === "failed" || st === "crashed" || st === "cancelled";
      return {
        type: "line",
        name: `#${numberOf(r) ?? r}${cut ? ` (${(st ?? "").replace("_", " ")})` : ""}`,
        // Markers for short series, so a run with one value is not blank.
        symbol: data.length < 40 ? "circle" : "none",
        symbolSize: 6,
        lineStyle: { width: 1.6, type: cut ? "dashed" : "solid", opacity: cut ? 0.45 : 1 },
        itemStyle: { opacity: cut ? 0.45 : 1 },
        color: curveColour(k),
        data,
      };
    });
    curveEl.dataset.series = String(series.length);
    curveEl.dataset.points = series.map((x) => x.data.length).join(",");
    curveChart.setOption(
      {
        animation: false,
        grid: { left: 64, right: 24, top: 36, bottom: 44, containLabel: true },
        legend: { top: 0, type: "scroll" },
        tooltip: { trigger: curves.x === "step" ? "axis" : "item", valueFormatter: (v: number) => num(v) },
        xAxis: { type: "value", name: curves.x === "time" ? "time (s)" : curves.x, nameLocation: "middle", nameGap: 28, scale: curves.x !== "step", axisLabel: { hideOverlap: true, formatter: (v: number) => num(v) } },
        yAxis: { type: "value", scale: true, name: curves.key, axisLabel: { hideOverlap: true, formatter: (v: number) => num(v) } },
        dataZoom: [{ type: "inside", xAxisIndex: 0 }],
        series,
      },
      true,
    );
  };
  curveX.addEventListener("change", () => {
    curves.x = curveX.value;
    loadCurves();
  });
  curveKey.addEventListener("change", () => {
    curves.key = curveKey.value;
    loadCurves();
  });
  smoothing.addEventListener("input", () => {
    curves.smoothing = Number(smoothing.value);
    smoothLabel.textContent = curves.smoothing.toFixed(2);
    renderCurves();
  });

  // ---- runs table ----
  const runRef = (rid: string, shown: Run[]) => {
    const k = pts ? pts.runs.id.indexOf(rid) : -1;
    const n = shown.find((x) => x.id === rid)?.number ?? (k >= 0 ? pts!.runs.number[k] : null);
    return h("a", { href: `/runs/${rid}`, "data-link": true }, n !== null && n !== undefined ? `#${n}` : rid);
  };
  // "attempt 2 · retry of #3" for a retry; "retried as #9" for an earlier attempt whose retry is
  // on the same page.
  const attemptLabel = (r: Run, shown: Run[]) => {
    const next = shown.find((x) => x.retry_of === r.id);
    if ((r.attempt ?? 1) <= 1 && !r.retry_of && !next) return null;
    return h(
      "span.attempt",
      { "data-attempt": r.attempt ?? 1 },
      (r.attempt ?? 1) > 1 || r.retry_of ? `attempt ${r.attempt ?? 1}` : null,
      r.retry_of ? [" · retry of ", runRef(r.retry_of, shown)] : null,
      next ? [(r.attempt ?? 1) > 1 ? " · " : "", "retried as ", runRef(next.id, shown)] : null,
    );
  };
  let summaryKeys: string[] = [];
  const loadTable = async () => {
    saveView();
    const q = new URLSearchParams({ sweep: id, sort: table.sort, order: table.desc ? "desc" : "asc", offset: String(table.offset), limit: String(PAGE) });
    if (table.state) q.set("state", table.state);
    let qs = q.toString();
    for (const f of table.brush) {
      const at = f.indexOf("=");
      qs += `&${f.slice(0, at)}=${encodeURIComponent(f.slice(at + 1))}`;
    }
    const page = await api.runs(qs);
    const params = pts?.axes.map((a) => a.name) ?? Object.keys(page.runs[0]?.params ?? {});
    if (!summaryKeys.length || page.runs.length) {
      const ks = new Set<string>();
      for (const r of page.runs) Object.keys(r.summary ?? {}).forEach((k) => ks.add(k));
      const metricName = pts?.metric?.name;
      const next = [...ks].filter((k) => k !== metricName && !k.startsWith("_")).sort().slice(0, 6);
      if (next.length) summaryKeys = next;
    }
    const col = (label: string, field: string | null) => {
      const on = field && table.sort === field;
      const sortBy = () => {
        if (!field) return;
        table.desc = table.sort === field ? !table.desc : field === "metric" ? maximize() : false;
        table.sort = field;
        table.offset = 0;
        loadTable().then(() => (tableHead.querySelector(`th[data-sort='${CSS.escape(field)}']`) as HTMLElement | null)?.focus());
      };
      return h(
        "th",
        {
          class: field ? "sortable" + (on ? " on" : "") : "",
          "data-sort": field ?? undefined,
          tabindex: field ? "0" : undefined,
          "aria-sort": on ? (table.desc ? "descending" : "ascending") : field ? "none" : undefined,
          onclick: field ? sortBy : undefined,
          onkeydown: field
            ? (e: KeyboardEvent) => {
                if (e.key === "Enter" || e.key === " ") {
                  e.preventDefault();
                  sortBy();
                }
              }
            : undefined,
        },
        label,
        on ? (table.desc ? " ↓" : " ↑") : "",
      );
    };
    clear(
      tableHead,
      h(
        "tr",
        null,
        h("th", { title: "show in learning curves" }, h("span", { "aria-hidden": "true" }, "📈"), h("span.sr-only", null, "in curves")),
        col("#", "number"),
        col("state", "state"),
        col(pts?.metric?.name ?? "metric", "metric"),
        params.map((p) => col(p, `params.${p}`)),
        summaryKeys.map((k) => col(k, `summary.${k}`)),
        col("runtime", "runtime_ms"),
        col("finished", "finished_ms"),
      ),
    );
    clear(
      tableBody,
      page.runs.map((r) =>
        h(
          "tr",
          { "data-run": r.id },
          h(
            "td",
            null,
            h("input", {
              type: "checkbox",
              "aria-label": `show run #${r.number ?? r.id} in the learning curves`,
              checked: selected.has(r.id),
              onchange: (e: Event) => {
                userSelected = true;
                if ((e.target as HTMLInputElement).checked) selected.add(r.id);
                else selected.delete(r.id);
                saveView();
                loadCurves();
              },
            }),
          ),
          h("td", null, h("a", { href: `/runs/${r.id}`, "data-link": true }, `#${r.number ?? "?"}`)),
          h("td", null, h("span.labels", null, stateBadge(r.state), attemptLabel(r, page.runs), deliveryLabels(r))),
          h("td.num", null, num(r.metric)),
          params.map((p) => h("td.num", null, value(r.params?.[p]))),
          summaryKeys.map((k) => h("td.num", null, value(r.summary?.[k]))),
          h("td.num", null, duration(r.started_ms ? (r.finished_ms ?? r.heartbeat_ms ?? r.started_ms) - r.started_ms : null)),
          h("td", null, when(r.finished_ms)),
        ),
      ),
    );
    if (!page.runs.length) tableBody.append(h("tr", null, h("td.empty", { colspan: "99" }, "No runs match.")));
    const end = Math.min(table.offset + PAGE, page.total);
    clear(
      pager,
      h("span.muted#run-count", { "data-total": page.total }, page.total ? `${table.offset + 1}–${end} of ${page.total}` : "0 runs"),
      h("button.btn.small", { disabled: table.offset === 0, onclick: () => ((table.offset = Math.max(0, table.offset - PAGE)), loadTable()) }, "‹ prev"),
      h("button.btn.small", { disabled: end >= page.total, onclick: () => ((table.offset += PAGE), loadTable()) }, "next ›"),
    );
    clear(
      brushNote,
      table.brush.length
        ? h(
            "span",
            null,
            `selection: ${page.total} run${page.total === 1 ? "" : "s"} `,
            h(
              "button.btn.small#clear-brush",
              {
                onclick: () => {
                  table.brush = [];
                  parallelBuilt = false;
                  renderParallel();
                  loadTable();
                },
              },
              "clear",
            ),
          )
        : "",
    );
  };
  const analysisChanged = () => {
    const n = pts ? withMetric().length : 0;
    analysisNote.textContent = pts ? `${n} run${n === 1 ? "" : "s"} ${ANALYSIS[analysis].label} with ${pts.metric?.name ?? "the metric"}` : "";
  };
  analysisSelect.addEventListener("change", () => {
    analysis = analysisSelect.value as Analysis;
    saveView();
    parallelBuilt = false;
    renderBest();
    renderParallel();
    renderScatters();
    analysisChanged();
    clear(importanceEl, h("p.muted", null, "Computing…"));
    loadImportance().catch(() => {});
  });
  colourSelect.addEventListener("change", () => {
    colourMode = colourSelect.value as ColourMode;
    saveView();
    parallelBuilt = false;
    renderParallel();
  });
  // A run's visible row, updated in place from an event (its metric, state and runtime).
  const patchRow = (r: RunBrief) => {
    const row = tableBody.querySelector(`tr[data-run='${CSS.escape(r.id)}']`);
    if (!row) return;
    const cells = row.children;
    const metricCell = cells[3];
    if (metricCell) metricCell.textContent = num(r.metric);
    const badge = cells[2]?.querySelector(".badge");
    if (badge && badge.textContent !== r.state) badge.replaceWith(stateBadge(r.state));
  };
  stateSelect.addEventListener("change", () => {
    table.state = stateSelect.value;
    table.offset = 0;
    loadTable();
  });

  // ---- load and live ----
  // Events carry what changed, and the page applies it in place: a run event updates the
  // points columns (and the charts only when a run they show changed), a metrics event its
  // table row and, for a run in the learning curves, its curve. Reads that events cannot
  // replace (the sweep's counts, the table page's order, the importance) are throttled; a
  // `resync` (events were missed) reloads everything.
  const fail = (e: Error) => {
    if (e instanceof ApiError && e.status === 404) {
      document.title = "Sweep not found · hyperdial";
      unsub();
      clear(
        el,
        h(
          "div.not-found#not-found",
          { role: "status" },
          h("h1", null, "Sweep not found"),
          h("p", null, "No sweep has the id ", h("code", null, id), " on this server. It may be on another server or database, or the id may be mistyped."),
          h("p", null, h("a", { href: "/", "data-link": true }, "All sweeps")),
        ),
      );
    } else clear(header, h("p.error", null, e.message));
  };
  loadSweep()
    .then(() => Promise.all([loadPoints(), loadTable(), loadImportance()]))
    .catch(fail);
  const refreshAll = throttle(() => {
    loadSweep().catch(() => {});
    loadPoints().then(loadTable).catch(() => {});
  }, 1000);
  const refreshSweep = throttle(() => loadSweep().catch(() => {}), 5000);
  // Redraws of the charts are paced by what they cost: at least 3 s apart, and at least twenty
  // times the last draw's duration (until ECharts reports the progressive parallel coordinates
  // finished), so redraws take about a twentieth of the main thread at most, however many runs
  // the sweep has (the measured duration misses some of the work, hence the margin).
  let chartCost = 0;
  let lastCharts = 0;
  let chartTimer: number | null = null;
  // Draw the charts and measure the cost (until the parallel coordinates report finished).
  const measuredRender = (then: () => void = () => {}) => {
    const started = performance.now();
    let sync = 0;
    let settled = false;
    const once = (timedOut: boolean) => {
      if (settled) return;
      settled = true;
      parallelChart.off("finished", finished);
      chartCost = timedOut ? sync : performance.now() - started;
      lastCharts = Date.now();
      then();
    };
    const finished = () => once(false);
    parallelChart.on("finished", finished);
    renderCharts();
    sync = performance.now() - started;
    // Without a finished event (nothing to draw), the synchronous part is the cost.
    window.setTimeout(() => once(true), 10_000);
  };
  const refreshCharts = () => {
    if (chartTimer !== null) return;
    const gap = Math.max(3000, 20 * chartCost);
    chartTimer = window.setTimeout(() => measuredRender(() => (chartTimer = null)), Math.max(0, lastCharts + gap - Date.now()));
  };
  const refreshImportance = throttle(() => loadImportance().catch(() => {}), 10000);
  const refreshCurves = throttle(() => loadCurves().catch(() => {}), 1500);
  const redrawCurves = throttle(renderCurves, 1500);
  const refreshTable = throttle(() => loadTable().catch(() => {}), 5000);
  // Append a metrics event's points to a shown curve; answers false when the event left
  // points out (the curve then fetches what it lacks).
  const appendCurve = (rid: string, points: EventPoint[], truncated: boolean): boolean => {
    const hist = histories.get(rid);
    if (!hist || truncated) return false;
    const last = hist.step.length ? hist.step[hist.step.length - 1] : -Infinity;
    for (const p of points) {
      const v = p.values[curves.key];
      if (p.step > last && (typeof v === "number" || v === null)) {
        hist.step.push(p.step);
        hist.value.push(v);
        hist.time.push(Date.now());
        if (hist.xs) {
          const x = p.values[curves.x];
          hist.xs.set(p.step, typeof x === "number" ? x : null);
        }
      }
    }
    return true;
  };
  const unsub = subscribe(id, (kind, data) => {
    if (kind === "resync") {
      refreshAll();
      refreshImportance();
      front.refresh();
      return;
    }
    if (kind === "sweep") {
      loadSweep().catch(() => {});
      return;
    }
    if (kind === "run_created" || kind === "run_updated" || kind === "run_finished") {
      if (applyRun(data)) refreshCharts();
      if (kind === "run_created") renderEmpty();
      if (kind !== "run_updated") {
        refreshSweep();
        refreshTable();
      } else patchRow(data);
      if (kind === "run_finished") {
        refreshImportance();
        front.refresh();
      }
      return;
    }
    if (kind === "metrics") {
      applyRun(data.run);
      patchRow(data.run);
      if (selected.has(data.run.id)) {
        if (appendCurve(data.run.id, data.points, data.truncated)) redrawCurves();
        else refreshCurves();
      }
    }
  });
  return [unsub];
}
