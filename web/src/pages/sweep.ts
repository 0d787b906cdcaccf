import { api, ApiError, subscribe } from "../api";
import { chart, Chart, curveColour, fitText } from "../charts";
import { navigate } from "../main";
import { clear, configYaml, deliveryLabels, duration, h, markdown, num, smooth, stateBadge, throttle, value, when } from "../util";
import type { Axis, EstimateAnswer, EventPoint, Run, RunBrief, Sweep, SweepPoints as Points } from "../wire";
import { RUN_STATES } from "../wire";
import { sweepActions } from "./sweeps";
import { budgetPanel, lineagePanel } from "./sweep_lineage";
import { rungLabel, rungStep, spread, StopMark, stopMark, xAtStep } from "../curves";
import { Column, columnChooser, download, hiddenColumns, sweepColumns, toCsv } from "./sweep_table";
import { belowNoise, noiseBand, noisePanel } from "./noise";
import type { NoiseReport } from "../wire";
import { frontView } from "./front";

const label = (v: unknown): string => (typeof v === "string" ? v : JSON.stringify(v));
const PAGE = 50;
/** Most runs the learning curves draw behind the highlighted ones ("all runs"). */
const ALL_CAP = 300;
/** Points per background run (the history API downsamples to this). */
const ALL_POINTS = 100;

/** The analysis filter: which ended runs every chart and the importance read. Runs stopped
 * early or failed report a truncated metric, so mixing them with finished runs would teach the
 * charts how long runs lasted rather than how good their parameters were. */
export const ANALYSIS = {
  finished: { label: "finished", states: ["finished"] },
  stopped_early: { label: "stopped early", states: ["stopped_early"] },
  failed: { label: "failed", states: ["failed", "crashed"] },
} as const;
export type Analysis = keyof typeof ANALYSIS;

/** The run states that can hold a sweep's best value (as the server's best-run rule). */
export const BEST_STATES: readonly string[] = ["finished", "stopped_early"];

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
  // The front's runs (rank 0) of a sweep with several objectives: the curves' best runs.
  let frontIds: string[] | null = null;
  const table = { sort: "number", desc: false, offset: 0, state: "", brush: [] as string[] };
  // x: "step", "time" (seconds since the run's first point) or another metric's name.
  const curves = { key: "", x: "step", smoothing: 0.6, keys: [] as string[], all: false };
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
  curves.all = q0.get("curves") === "all";
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
    if (curves.all) q.set("curves", "all");
    for (const [k, v] of new URLSearchParams(location.search)) if (k === "fx" || k === "fy") q.set(k, v); // front.ts
    const qs = q.toString();
    const url = location.pathname + (qs ? `?${qs}` : "");
    if (url !== location.pathname + location.search) history.replaceState(null, "", url);
  };

  // ---- layout ----
  const header = h("div.sweep-head");
  const bestEl = h("div.chart#best-chart");
  const importanceEl = h("div#importance", { "data-testid": "importance" }, h("p.muted", null, "Computing…"));
  // Seed noise (pages/noise.ts): a panel, a band on the best-so-far chart, marks on importance.
  const noiseView = noisePanel(id);
  let noise: NoiseReport | null = null;
  const parallelEl = h("div.chart.tall#parallel");
  const brushNote = h("span.muted#brush-note");
  const scatterEl = h("div.scatters#scatters");
  const curveEl = h("div.chart#curves");
  const curveKey = h("select#curve-key") as HTMLSelectElement;
  const curveX = h("select#curve-x", null, h("option", { value: "step" }, "step"), h("option", { value: "time" }, "time")) as HTMLSelectElement;
  const smoothing = h("input#smoothing", { type: "range", min: "0", max: "0.99", step: "0.01", value: "0.6" }) as HTMLInputElement;
  const smoothLabel = h("span.muted", null, "0.60");
  const curvesAll = h("input#curves-all", { type: "checkbox" }) as HTMLInputElement;
  const curveNote = h("p.muted.small#curve-note");
  const tableHead = h("thead");
  const tableBody = h("tbody");
  const pager = h("div.pager#pager");
  const chooserSlot = h("span.chooser-slot");
  const csvButton = h("button.btn.small#csv-download", { type: "button", title: "the runs as shown: filter, selection, sort and columns; every page", onclick: () => downloadCsv() }, "Download CSV") as HTMLButtonElement;
  const compareLink = h("a.btn.small#compare-link", { "data-link": true, href: "#", onclick: (e: Event) => selected.size < 2 && e.preventDefault() }, "Compare");
  // The compare view of the ticked runs (or the best runs the curves show).
  const updateCompare = () => {
    const runs = [...selected];
    compareLink.setAttribute("href", `/compare?runs=${runs.map(encodeURIComponent).join(",")}`);
    compareLink.textContent = `Compare ${runs.length} run${runs.length === 1 ? "" : "s"}`;
    compareLink.classList.toggle("disabled", runs.length < 2);
    compareLink.setAttribute("aria-disabled", String(runs.length < 2));
    compareLink.title = runs.length < 2 ? "tick two or more runs to compare them" : "config differences and overlaid metrics of the ticked runs";
  };
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
  const notesInput = h("textarea#notes-input", { rows: "8", "aria-label": "notes (Markdown)", placeholder: "What did this sweep teach you? What to try next? (Markdown)", "data-testid": "notes-input" }) as HTMLTextAreaElement;
  const notesView = h("div.md#notes-view", { "data-testid": "notes-view" });
  const notesStatus = h("span.muted#notes-status");
  const configEl = h("pre.config#config");
  const bestToggle = h(
    "span.toggle",
    null,
    h("button.btn.small.on", { onclick: (e: Event) => setBest("number", e) }, "by run"),
    h("button.btn.small", { onclick: (e: Event) => setBest("time", e) }, "by time"),
  );

  const front = frontView(id, (f) => {
    frontIds = f && f.objectives.length > 1 ? f.runs.filter((r) => r.rank === 0).map((r) => r.run_id) : null;
    pickBest();
  });
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
    noiseView.el,
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
        h("label.inline", null, curvesAll, "all runs"),
      ),
      curveNote,
      curveEl,
    ),
    h(
      "section.card.flush",
      null,
      h("div.card-head.pad", null, h("h2", null, "Runs"), h("label.inline", null, "state ", stateSelect), chooserSlot, csvButton, compareLink, pager),
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
        estimateFact(),
        s.retries ? fact("retries", `${s.retries}`) : null,
        fact("runs", `${s.total_runs}`, h("span.muted", null, ` ${Object.entries(c).filter(([, n]) => n).map(([k, n]) => `${n} ${k.replace("_", " ")}`).join(" · ")}`)),
        fact("compute", duration(s.compute_ms)),
        fact("created", when(s.created_ms)),
      ),
      h("div.panels", null, lineagePanel(s, allSweeps), budgetPanel(s)),
    );
  };
  // Every sweep, to find the ones refined from this one or starting from its runs.
  let allSweeps: Sweep[] = [];
  const loadLineage = async () => {
    allSweeps = (await api.sweeps()).sweeps;
    renderHeader();
  };
  // The model's estimate of the best configuration, shown when it is another run than the
  // best (a noisy metric's best value is a lucky draw as often as the best configuration).
  let estimate: EstimateAnswer | null = null;
  const estimateFact = () => {
    if (!estimate || !estimate.differs) return null;
    const e = estimate;
    const el = fact(
      "estimated best",
      "",
      h("a", { href: `/runs/${e.run.id}`, "data-link": true, "data-run": e.run.id }, `#${e.run.number}`),
      document.createTextNode(` ${num(e.mean)} ± ${num(e.sd)}`),
      h("span.muted", null, ` (runs vary by about ${num(e.noise_sd)})`),
    );
    el.title =
      `The model's estimate of the best configuration among ${e.results} results: the run whose configuration ` +
      `has the best posterior mean. The best value is one draw of a noisy metric; at its configuration the model ` +
      `predicts ${num(e.observed_best_mean)}, and it gives this configuration a ` +
      `${Math.round(100 * (e.p_better ?? 0))}% chance of being the better one. hyperdial best SWEEP --estimate prints this run.`;
    return el;
  };
  const loadEstimate = async () => {
    // Asked only when there can be one: a best run (none for several objectives) and at
    // least 5 results (the server's minimum; it answers 404 below it).
    const results = sweep ? sweep.counts.finished + sweep.counts.stopped_early : 0;
    if (!sweep || !sweep.best || results < 5) return;
    estimate = await api.estimate(id).catch(() => null);
    renderHeader();
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
    // The frontier follows the sweep's rule for its best run: only runs that ended finished
    // or stopped early count; failed, crashed and cancelled runs (and running ones) never
    // set it, whatever the filter shows.
    let best: number | null = null;
    const frontier: [number, number][] = [];
    for (const i of order) {
      if (!BEST_STATES.includes(pts.runs.state[i])) continue;
      const m = pts.runs.metric[i]!;
      if (best === null || (maximize() ? m > best : m < best)) best = m;
      frontier.push([xOf(i)!, best]);
    }
    bestEl.dataset.best = best === null ? "" : String(best);
    bestEl.dataset.points = String(order.length);
    const band = noiseBand(noise, best);
    if (band) bestEl.dataset.noiseBand = `${band.lo},${band.hi}`;
    else delete bestEl.dataset.noiseBand;
    bestChart.setOption(
      {
        animation: false,
        grid: { left: 12, right: 20, top: 30, bottom: 28, containLabel: true },
        tooltip: { trigger: "item", formatter: (p: any) => (p.seriesIndex === 0 ? `run #${p.data[2]}<br>${num(p.data[1])}` : `best ${num(p.data[1])}`) },
        xAxis: { type: byTime ? "time" : "value", name: byTime ? "" : "run", nameLocation: "middle", nameGap: 26, scale: true, axisLabel: { hideOverlap: true } },
        yAxis: { type: "value", scale: true, name: pts.metric?.name ?? "metric", nameTextStyle: { align: "left" }, axisLabel: { hideOverlap: true, formatter: (v: number) => num(v) } },
        series: [
          {
            type: "scatter",
            symbolSize: idx.length > 2000 ? 3 : 6,
            large: idx.length > 2000,
            itemStyle: { color: "#8aa4d6" },
            data: order.map((i) => [xOf(i), pts!.runs.metric[i], pts!.runs.number[i], pts!.runs.id[i]]),
          },
          {
            type: "line",
            step: "end",
            symbol: "none",
            lineStyle: { color: "#e5553a", width: 2 },
            data: frontier,
            markArea: band
              ? { silent: true, itemStyle: { color: "rgba(229, 85, 58, 0.12)" }, label: { show: true, position: "insideTopRight", formatter: "best ± seed noise" }, data: [[{ yAxis: band.lo }, { yAxis: band.hi }]] }
              : undefined,
          },
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
  /** Where an absent (inactive conditional) parameter is drawn on each axis that has one: a
   * slot below the axis's smallest value labelled "(absent)" (`ABSENT`, the first category of
   * a categorical axis). ECharts' parallel series needs a value on every axis, and a line
   * that skipped the axis would still cross it at some value. */
  let absentAt: (number | string | null)[] = [];
  const ABSENT = "(absent)";
  const absentSlot = (a: Axis, present: number[]): number | string => {
    if (a.kind === "category") return ABSENT;
    const lo = a.min ?? Math.min(...present);
    const hi = a.max ?? Math.max(...present);
    if (a.kind === "log" && lo > 0 && hi > 0) return hi > lo ? lo / Math.pow(hi / lo, 0.25) : lo / 10;
    return hi > lo ? lo - 0.25 * (hi - lo) : lo - 1;
  };
  /** The ticks of an axis with an absent slot: the slot, then round values up to the
   * largest value (powers of ten on a log axis). */
  const slotTicks = (a: Axis, slot: number): number[] => {
    const col = (pts?.runs.params[a.name] ?? []).filter((v): v is number => typeof v === "number" && Number.isFinite(v));
    const lo = a.min ?? (col.length ? Math.min(...col) : slot);
    const hi = a.max ?? (col.length ? Math.max(...col) : slot);
    // Just inside the axis: ECharts leaves out a label on its very end.
    const ticks = [a.kind === "log" ? slot * (1 + 1e-9) : slot + Math.abs(hi - lo || 1) * 1e-9];
    if (a.kind === "log" && lo > 0) {
      for (let e = Math.ceil(Math.log10(lo)); e <= Math.floor(Math.log10(hi)); e++) ticks.push(10 ** e);
      if (ticks.length === 1) ticks.push(lo, hi);
      return ticks;
    }
    const raw = (hi - lo) / 4 || 1;
    const mag = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((m) => m >= raw) ?? raw;
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
    return ticks;
  };
  const absentSlots = (idx: number[]): (number | string | null)[] =>
    pts!.axes.map((a) => {
      const col = pts!.runs.params[a.name] ?? [];
      const vals = idx.map((i) => col[i]);
      if (!vals.some((v) => v === null || v === undefined)) return null;
      const present = vals.filter((v): v is number => typeof v === "number" && Number.isFinite(v));
      if (a.kind !== "category" && !present.length && (a.min === null || a.max === null)) return 0;
      return absentSlot(a, present);
    });
  // Each row: the parameters, the metric, the run id, then the colour value (see ColourMode).
  const parallelData = () => {
    const idx = withMetric();
    const colour = colourValues(idx.map((i) => pts!.runs.metric[i]!), colourMode);
    const slots = absentSlots(idx);
    const rows = idx.map((i, k) => [
      ...pts!.axes.map((a, j) => {
        const v = pts!.runs.params[a.name]?.[i];
        // An inactive (conditional) parameter is absent: drawn at its axis's "(absent)" slot.
        if (v === null || v === undefined) return slots[j];
        return a.kind === "category" ? label(v) : v;
      }),
      pts!.runs.metric[i],
      pts!.runs.id[i],
      colour.values[k],
    ]);
    return { rows, lo: colour.lo, hi: colour.hi, slots };
  };
  const colors = () => (maximize() ? ["#d94e3f", "#f2c14e", "#2f6fde"] : ["#2f6fde", "#f2c14e", "#d94e3f"]);
  const renderParallel = () => {
    if (!pts) return;
    const { rows: data, lo, hi, slots } = parallelData();
    parallelEl.dataset.rows = String(data.length);
    parallelEl.dataset.absent = pts.axes
      .map((a, j) => (slots[j] === null ? null : `${a.name}=${slots[j]}`))
      .filter(Boolean)
      .join("|");
    // An axis that gained (or lost) its absent slot is laid out again.
    if (slots.join() !== absentAt.join()) parallelBuilt = false;
    absentAt = slots;
    if (parallelBuilt) {
      parallelChart.setOption({ visualMap: [{ min: lo, max: hi }], series: [{ data }] });
      return;
    }
    parallelBuilt = true;
    // Axis names are cut to the room between axes, so neighbours never collide; the full name
    // shows as the chart's tooltip when the pointer is on it.
    const room = Math.floor(Math.max(24, (parallelEl.clientWidth - 50 - 110) / Math.max(1, pts.axes.length) - 10));
    const names = [...pts.axes.map((a) => a.name), pts.metric?.name ?? "metric"].map((n) => fitText(n, room));
    parallelEl.dataset.axisNames = names.join("|");
    parallelEl.dataset.axisRoom = String(room);
    const dims = pts.axes.map((a, i) => {
      const slot = slots[i];
      const cats = a.kind === "category" ? [...(slot === null ? [] : [ABSENT]), ...(a.values ?? []).map(label)] : undefined;
      const isSlot = (v: number) => typeof slot === "number" && Math.abs(v - slot) <= 1e-6 * Math.max(1e-300, Math.abs(slot), Math.abs((a.max ?? slot) - (a.min ?? slot)));
      return {
        dim: i,
        name: names[i],
        type: a.kind === "log" ? "log" : a.kind === "category" ? "category" : "value",
        data: cats,
        scale: a.kind === "linear",
        // The absent slot is the axis's lowest point, labelled "(absent)" (the ticks are
        // given, as ECharts labels only its own round values).
        min: typeof slot === "number" ? slot : undefined,
        axisTick: typeof slot === "number" ? { customValues: slotTicks(a, slot) } : undefined,
        axisLabel:
          a.kind === "category"
            ? { overflow: "truncate", width: Math.max(40, room), hideOverlap: true }
            : { hideOverlap: true, showMinLabel: true, customValues: typeof slot === "number" ? slotTicks(a, slot) : undefined, formatter: (v: number) => (isSlot(v) ? ABSENT : num(v)) },
        triggerEvent: true,
      };
    });
    dims.push({
      dim: pts.axes.length,
      name: names[pts.axes.length],
      type: "value",
      data: undefined,
      scale: true,
      axisLabel: { hideOverlap: true, formatter: (v: number) => num(v) },
      triggerEvent: true,
    } as any);
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
  // The full name of a cut axis name, as the tooltip of the chart's box.
  parallelChart.on("mouseover", (p: any) => {
    if (p.componentType === "parallelAxis" && p.targetType === "axisName" && pts) {
      const full = [...pts.axes.map((a) => a.name), pts.metric?.name ?? "metric"][p.componentIndex];
      if (full) parallelEl.title = full;
    }
  });
  parallelChart.on("mouseout", () => parallelEl.removeAttribute("title"));
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
        // The axis's categories begin with the absent slot when it has one (not a filter value).
        const shown = [...(absentAt[i] === null || absentAt[i] === undefined ? [] : [ABSENT]), ...(a.values ?? []).map(label)];
        const cats = shown.filter((c, k) => c !== ABSENT && intervals.some(([x, y]) => k >= x - 1e-9 && k <= y + 1e-9));
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
      const data = idx.flatMap((i) => {
        const v = pts!.runs.params[a.name]?.[i];
        // A run in which the parameter was inactive has no point on this chart.
        if (v === null || v === undefined) return [];
        return [[a.kind === "category" ? label(v) : v, pts!.runs.metric[i], pts!.runs.id[i]]];
      });
      scatterCharts[k].setOption(
        {
          animation: false,
          title: { text: a.name, left: "center", textStyle: { fontSize: 12 } },
          grid: { left: 8, right: 14, top: 28, bottom: 6, containLabel: true },
          tooltip: { trigger: "item", formatter: (p: any) => `${a.name} = ${value(p.data[0])}<br>${num(p.data[1])}` },
          xAxis: {
            type: a.kind === "log" ? "log" : a.kind === "category" ? "category" : "value",
            data: a.kind === "category" ? (a.values ?? []).map(label) : undefined,
            scale: true,
            // Labels never collide (overlapping ones are hidden) and long categories are cut.
            axisLabel: a.kind === "category" ? { hideOverlap: true, overflow: "truncate", width: 72, interval: "auto" } : { hideOverlap: true, formatter: (v: number) => num(v) },
          },
          yAxis: { type: "value", scale: true, axisLabel: { hideOverlap: true, formatter: (v: number) => num(v) } },
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
    pickBest();
  };
  /** The runs the curves show unless some are ticked: with several objectives the runs on
   * the Pareto front (rank 0, as the front card reads them), else the best by the metric. */
  const pickBest = () => {
    if (userSelected || !pts) return;
    let top: string[];
    if (frontIds) {
      top = frontIds.slice(0, 8);
    } else {
      // The best runs so far among those the charts show and those still running.
      const states: readonly string[] = [...ANALYSIS[analysis].states, "running"];
      const idx: number[] = [];
      pts.runs.metric.forEach((m, i) => {
        if (m !== null && states.includes(pts!.runs.state[i])) idx.push(i);
      });
      idx.sort((a, b) => (pts!.runs.metric[a]! - pts!.runs.metric[b]!) * (maximize() ? -1 : 1));
      top = idx.slice(0, 5).map((i) => pts!.runs.id[i]);
    }
    if (top.join() !== [...selected].join()) {
      selected.clear();
      top.forEach((r) => selected.add(r));
      // The table may have been drawn before this pick: its boxes show the pick too, so
      // what the user unticks is what the compare view and the curves drop.
      tableBody.querySelectorAll<HTMLInputElement>("tr[data-run] input[type=checkbox]").forEach((box) => {
        box.checked = selected.has(box.closest("tr")?.dataset.run ?? "");
      });
      updateCompare();
      loadCurves();
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
        h(
          "td",
          null,
          p.name,
          p.kind !== "linear" ? h("span.muted.small", null, ` ${p.kind}`) : null,
          belowNoise(p.main_effect, noise) ? h("span.below-noise", { title: "its main effect, in metric units (√share × spread across configurations), is below the measured seed noise" }, " below seed noise") : null,
        ),
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
  // Per run: the y series (downsampled by the history API), its wall times, and (when x is
  // another metric) x by step; `prog`: the early-termination rule's step key by step.
  type Hist = {
    keys: string[];
    step: number[];
    value: (number | null)[];
    time: number[];
    total: number;
    downsampled: boolean;
    xs?: Map<number, number | null>;
    prog?: Map<number, number | null>;
  };
  const histories = new Map<string, Hist>();
  // Every run of the sweep behind the highlighted ones ("all runs"), at fewer points each.
  const background = new Map<string, Hist>();
  // The stop decisions of runs stopped early (from their `stop_info`), by run id.
  const stops = new Map<string, StopMark>();
  // The early-termination rule's step key, when it has one (asha, median).
  const ruleStepKey = (): string | null => {
    const et = (sweep?.config as any)?.early_terminate;
    return et && et.type !== "hyperband" && typeof et.step_key === "string" ? et.step_key : null;
  };
  const readHistory = async (r: string, maxPoints: number): Promise<Hist | null> => {
    const key = curves.key;
    const xKey = curves.x !== "step" && curves.x !== "time" ? curves.x : null;
    const progKey = ruleStepKey();
    const keys = [...new Set([key, xKey, progKey].filter((k): k is string => !!k))].join(",");
    const hist = await api.history(r, `keys=${encodeURIComponent(keys)}&max_points=${maxPoints}`).catch(() => null);
    if (!hist) return null;
    const s = hist.series[key] ?? { step: [], value: [], time_ms: [], total: 0, downsampled: false };
    const byStep = (k: string) => {
      const xsr = hist.series[k] ?? { step: [], value: [] };
      return new Map<number, number | null>(xsr.step.map((st: number, i: number) => [st, xsr.value[i]]));
    };
    return {
      keys: hist.keys,
      step: s.step,
      value: s.value,
      time: s.time_ms ?? [],
      total: s.total ?? s.step.length,
      downsampled: !!s.downsampled,
      xs: xKey ? byStep(xKey) : undefined,
      prog: progKey ? byStep(progKey) : undefined,
    };
  };
  // Read again only after a run ended (a stop decision is recorded when a run is flagged, and
  // the run ends stopped_early soon after).
  let stopsStale = true;
  const loadStops = async () => {
    if (!(sweep?.config as any)?.early_terminate || !stopsStale) return;
    stopsStale = false;
    const page = await api.runs(new URLSearchParams({ sweep: id, state: "stopped_early", limit: "5000" }).toString());
    stops.clear();
    for (const r of page.runs) {
      const m = stopMark(r.stop_info);
      if (m) stops.set(r.id, m);
    }
  };
  let backgroundFor = "";
  const loadBackground = async () => {
    if (!curves.all || !pts) return;
    const want = `${curves.key}|${curves.x}`;
    if (want !== backgroundFor) background.clear();
    backgroundFor = want;
    const ids = spread(pts.runs.id.filter((r, i) => pts!.runs.state[i] !== "queued" && !background.has(r)), ALL_CAP - background.size);
    // A few requests at a time, so a large sweep does not flood the server.
    let next = 0;
    await Promise.all(
      Array.from({ length: 6 }, async () => {
        while (next < ids.length) {
          const r = ids[next++];
          const hist = await readHistory(r, ALL_POINTS);
          if (hist && want === backgroundFor) background.set(r, hist);
        }
      }),
    );
  };
  const loadCurves = async () => {
    const runs = [...selected];
    await Promise.all([
      ...runs.map(async (r) => {
        const hist = await readHistory(r, 500);
        if (hist) histories.set(r, hist);
      }),
      loadStops().catch(() => {}),
      loadBackground().catch(() => {}),
    ]);
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
  const renderCurves = () => {
    const at = (r: string) => (pts ? (index.get(r) ?? -1) : -1);
    const numberOf = (r: string) => (at(r) >= 0 ? pts!.runs.number[at(r)] : null);
    const stateOf = (r: string) => (at(r) >= 0 ? pts!.runs.state[at(r)] : null);
    // x of each point of a run's curve, and the run's stop mark placed on it.
    const xsOf = (hist: Hist | undefined, smoothed: boolean) => {
      const ys = smoothed ? smooth(hist?.value ?? [], curves.smoothing) : (hist?.value ?? []);
      const steps = hist?.step ?? [];
      const t0 = hist?.time?.[0] ?? 0;
      const xs = steps.map((st, i) =>
        curves.x === "step" ? st : curves.x === "time" ? ((hist?.time?.[i] ?? t0) - t0) / 1000 : ((hist?.xs?.get(st) ?? null) as number | null),
      );
      return { xs, ys, steps };
    };
    const markOf = (r: string, hist: Hist | undefined) => {
      const m = stops.get(r);
      if (!m || !hist) return null;
      const prog = hist.prog ? hist.step.map((st) => hist.prog!.get(st) ?? null) : undefined;
      const st = rungStep(m, hist, prog);
      if (st === null) return null;
      const { xs, steps } = xsOf(hist, false);
      const x = xAtStep(st, steps, curves.x === "step" ? null : xs);
      return x === null ? null : { x, mark: m };
    };
    const cutState = (st: string | null) => st === "stopped_early" || st === "failed" || st === "crashed" || st === "cancelled";
    const marks: { x: number; mark: StopMark; colour: string; run: string }[] = [];
    const series: any[] = [...selected].map((r, k) => {
      const hist = histories.get(r);
      const { xs, ys } = xsOf(hist, true);
      const data = xs.map((x, i) => [x, ys[i]]).filter((d) => d[0] !== null);
      const st = stateOf(r);
      // Runs that did not finish are faded and dashed: their curves end where they were cut.
      const cut = cutState(st);
      const mk = markOf(r, hist);
      if (mk) marks.push({ ...mk, colour: curveColour(k), run: `#${numberOf(r) ?? r}` });
      return {
        type: "line",
        name: `#${numberOf(r) ?? r}${cut ? ` (${(st ?? "").replace("_", " ")})` : ""}`,
        // Markers for short series, so a run with one value is not blank.
        symbol: data.length < 40 ? "circle" : "none",
        symbolSize: 6,
        z: 3,
        lineStyle: { width: 1.8, type: cut ? "dashed" : "solid", opacity: cut ? 0.5 : 1 },
        itemStyle: { opacity: cut ? 0.5 : 1 },
        color: curveColour(k),
        data,
      };
    });
    // Every other run, thin and grey; stopped and failed ones fainter and dashed.
    let shownBackground = 0;
    if (curves.all) {
      for (const [r, hist] of background) {
        if (selected.has(r)) continue;
        const { xs, ys } = xsOf(hist, true);
        const data = xs.map((x, i) => [x, ys[i]]).filter((d) => d[0] !== null);
        if (!data.length) continue;
        shownBackground++;
        const cut = cutState(stateOf(r));
        const mk = markOf(r, hist);
        if (mk) marks.push({ ...mk, colour: "#8a93a6", run: `#${numberOf(r) ?? r}` });
        series.push({
          type: "line",
          name: `#${numberOf(r) ?? r}`,
          silent: true,
          z: 1,
          symbol: data.length === 1 ? "circle" : "none",
          symbolSize: 3,
          lineStyle: { width: 1, color: cut ? "#b5bccb" : "#8a93a6", type: cut ? "dashed" : "solid", opacity: cut ? 0.35 : 0.55 },
          itemStyle: { color: "#8a93a6", opacity: 0.5 },
          tooltip: { show: false },
          data,
        });
      }
    }
    // The rule's rungs (vertical lines at the x where runs were judged) and, for each run it
    // stopped, a mark at the threshold the run failed to reach.
    const rungs = new Map<string, { x: number; label: string }>();
    for (const m of marks) {
      const lab = rungLabel(m.mark);
      const key = `${lab}@${Number(m.x.toPrecision(6))}`;
      if (!rungs.has(key)) rungs.set(key, { x: m.x, label: lab });
    }
    if (marks.length) {
      series.push({
        type: "scatter",
        name: "stopped here",
        z: 5,
        symbol: "triangle",
        symbolSize: 11,
        data: marks.map((m) => ({
          value: [m.x, m.mark.threshold],
          itemStyle: { color: m.colour, borderColor: "#1d2330", borderWidth: 1 },
          run: m.run,
          text: `${m.run} stopped by ${m.mark.rule} at ${rungLabel(m.mark)}: ${num(m.mark.value)}, threshold ${num(m.mark.threshold)}`,
        })),
        tooltip: { trigger: "item", formatter: (p: any) => p.data.text },
        markLine: {
          silent: true,
          symbol: "none",
          lineStyle: { color: "#5d6678", type: "dashed", width: 1.2 },
          label: { formatter: (p: any) => p.name, position: "insideEndTop", color: "#3d4555", fontSize: 11 },
          data: [...rungs.values()].map((g) => ({ xAxis: g.x, name: g.label })),
        },
      });
    }
    const highlighted = [...selected].length;
    curveEl.dataset.series = String(highlighted);
    curveEl.dataset.points = [...selected].map((_, k) => series[k].data.length).join(",");
    curveEl.dataset.background = String(shownBackground);
    curveEl.dataset.rungs = [...rungs.values()].map((g) => g.label).join(",");
    curveEl.dataset.stopMarks = String(marks.length);
    clear(
      curveNote,
      curves.all && pts
        ? `Highlighted: ${highlighted} run${highlighted === 1 ? "" : "s"}; behind them ${shownBackground} other run${shownBackground === 1 ? "" : "s"} at up to ${ALL_POINTS} points each${pts.count > ALL_CAP ? ` (${ALL_CAP} of ${pts.count}, spread over the sweep)` : ""}. `
        : `The best runs, or the ones ticked in the table. `,
      marks.length ? `Dashed vertical lines: the early-termination rung where runs were judged; triangles: the threshold a stopped run missed.` : "",
    );
    curveChart.setOption(
      {
        animation: false,
        grid: { left: 16, right: 24, top: 36, bottom: 40, containLabel: true },
        legend: { top: 0, type: "scroll", data: series.slice(0, highlighted).map((x) => x.name) },
        tooltip: { trigger: curves.x === "step" ? "axis" : "item", valueFormatter: (v: number) => num(v) },
        xAxis: { type: "value", name: curves.x === "time" ? "time (s)" : curves.x, nameLocation: "middle", nameGap: 26, scale: curves.x !== "step", axisLabel: { hideOverlap: true, formatter: (v: number) => num(v) } },
        yAxis: { type: "value", scale: true, name: curves.key, nameTextStyle: { align: "left" }, axisLabel: { hideOverlap: true, formatter: (v: number) => num(v) } },
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
  curvesAll.checked = curves.all;
  curvesAll.addEventListener("change", () => {
    curves.all = curvesAll.checked;
    saveView();
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
  // The table's columns (see sweep_table.ts): the tick and the run number are always shown,
  // the rest can be hidden with the column chooser.
  const hiddenCols = hiddenColumns();
  const tableColumns = (runs: Run[]): Column[] => {
    const params = pts?.axes.map((a) => a.name) ?? Object.keys(runs[0]?.params ?? {});
    return sweepColumns({
      metric: pts?.metric?.name ?? sweep?.metric?.name ?? null,
      params,
      summaryKeys,
      bayes: sweep?.method === "bayes",
      stateCell: (r) => h("span.labels", null, stateBadge(r.state), attemptLabel(r, runs), deliveryLabels(r)),
    });
  };
  const runsQuery = (offset: number, limit: number) => {
    const q = new URLSearchParams({ sweep: id, sort: table.sort, order: table.desc ? "desc" : "asc", offset: String(offset), limit: String(limit) });
    if (table.state) q.set("state", table.state);
    let qs = q.toString();
    for (const f of table.brush) {
      const at = f.indexOf("=");
      qs += `&${f.slice(0, at)}=${encodeURIComponent(f.slice(at + 1))}`;
    }
    return qs;
  };
  // The table as shown (filter, selection, sort and chosen columns), every page of it.
  const downloadCsv = async () => {
    csvButton.disabled = true;
    try {
      const all = await api.runs(runsQuery(0, 100_000));
      const cols = tableColumns(all.runs).filter((c) => !hiddenCols.has(c.key));
      download(`${(sweep?.name || id).replace(/[^\w.-]+/g, "_")}-runs.csv`, toCsv(cols, all.runs));
    } catch (e) {
      actionError.textContent = `CSV: ${(e as Error).message}`;
    } finally {
      csvButton.disabled = false;
    }
  };
  const loadTable = async () => {
    saveView();
    const page = await api.runs(runsQuery(table.offset, PAGE));
    if (!summaryKeys.length || page.runs.length) {
      const ks = new Set<string>();
      for (const r of page.runs) Object.keys(r.summary ?? {}).forEach((k) => ks.add(k));
      const metricName = pts?.metric?.name ?? sweep?.metric?.name;
      const next = [...ks].filter((k) => k !== metricName && !k.startsWith("_")).sort().slice(0, 6);
      if (next.length) summaryKeys = next;
    }
    const allCols = tableColumns(page.runs);
    const cols = allCols.filter((c) => !hiddenCols.has(c.key));
    const wasOpen = (chooserSlot.firstElementChild as HTMLDetailsElement | null)?.open ?? false;
    const chooser = columnChooser(allCols, hiddenCols, () => renderTable(page));
    (chooser as HTMLDetailsElement).open = wasOpen;
    clear(chooserSlot, chooser);
    renderTable(page, cols);
    updateCompare();
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
  const renderTable = (page: { runs: Run[] }, cols: Column[] = tableColumns(page.runs).filter((c) => !hiddenCols.has(c.key))) => {
    const headCol = (label: string, field: string | null, key: string, title?: string) => {
      const on = field && table.sort === field;
      const sortBy = () => {
        if (!field) return;
        table.desc = table.sort === field ? !table.desc : field === "metric" ? maximize() : false;
        table.sort = field;
        table.offset = 0;
        loadTable().then(() => (tableHead.querySelector(`th[data-sort='${CSS.escape(field)}'] button`) as HTMLElement | null)?.focus());
      };
      // A sortable header is a button inside the th: reachable with Tab, pressed with Enter
      // or Space; the th's aria-sort says the order.
      return h(
        "th",
        {
          scope: "col",
          class: field ? "sortable" + (on ? " on" : "") : "",
          "data-sort": field ?? undefined,
          "data-col": key,
          title,
          "aria-sort": on ? (table.desc ? "descending" : "ascending") : field ? "none" : undefined,
        },
        field ? h("button.th-sort", { type: "button", onclick: sortBy }, label, h("span", { "aria-hidden": "true" }, on ? (table.desc ? " ↓" : " ↑") : "")) : label,
      );
    };
    clear(
      tableHead,
      h(
        "tr",
        null,
        h("th", { scope: "col", title: "show in learning curves" }, h("span", { "aria-hidden": "true" }, "📈"), h("span.sr-only", null, "in curves")),
        headCol("#", "number", "number"),
        cols.map((c) => headCol(c.label, c.sort, c.key, c.title)),
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
                updateCompare();
                loadCurves();
              },
            }),
          ),
          h("td", { "data-col": "number" }, h("a", { href: `/runs/${r.id}`, "data-link": true }, `#${r.number ?? "?"}`)),
          cols.map((c) => h("td", { class: c.cls, "data-col": c.key }, c.cell(r))),
        ),
      ),
    );
    if (!page.runs.length) tableBody.append(h("tr", null, h("td.empty", { colspan: "99" }, "No runs match.")));
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
    const metricCell = row.querySelector("td[data-col='metric']");
    if (metricCell) metricCell.textContent = num(r.metric);
    const badge = row.querySelector("td[data-col='state'] .badge");
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
  const loadNoise = async () => {
    noise = await noiseView.load();
    renderBest();
  };
  loadSweep()
    .then(() => Promise.all([loadPoints(), loadTable(), loadNoise().then(loadImportance), loadLineage().catch(() => {}), loadEstimate()]))
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
  const refreshImportance = throttle(() => loadNoise().then(loadImportance).then(loadEstimate).catch(() => {}), 10000);
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
      stopsStale = true;
      background.clear();
      refreshAll();
      refreshImportance();
      refreshCurves();
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
        // An ended run's whole curve, and a stopped run's rung, for the curves.
        if (curves.all || (sweep?.config as any)?.early_terminate) {
          background.delete(data.id);
          stopsStale = true;
          refreshCurves();
        }
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
