// The Pareto view of a multi-objective sweep, on the sweep page.
//
// A sweep whose config names several objectives (`metrics:`) has a front: the runs no other
// run beats in every objective. `GET /api/v1/sweeps/{id}/front` sorts the ended runs into
// non-dominated layers (rank 0 is the front). This card shows them as a 2-D scatter of two
// objectives the user picks: the front's runs highlighted and joined by the step line that
// bounds what they dominate in the chosen plane, the other runs faded. With three or more
// objectives a parallel-coordinates chart gets one axis per objective, the front's runs
// highlighted. Hovering a point or line shows the run and all its objective values; a click
// opens the run. For a sweep with one objective the card stays hidden.
//
// The chosen pair lives in the URL's query (`fx`, `fy`: objective names) so a reload shows
// the same view.

import { get } from "../api";
import { chart, Chart } from "../charts";
import { navigate } from "../main";
import { clear, h, num, throttle } from "../util";
import type { FrontRun, ParetoFront } from "../wire";

/** Colours: the front stands out, the dominated runs recede. */
const FRONT = "#e5553a";
const DOMINATED = "#6f8fc9";

/** Whether `a` is no worse than `b` in both chosen objectives and better in one. `better[k]`
 * tells whether a smaller value of objective k is better. */
function dominates2(a: number[], b: number[], better: boolean[]): boolean {
  let strict = false;
  for (let k = 0; k < a.length; k++) {
    const ak = better[k] ? a[k]! : -a[k]!;
    const bk = better[k] ? b[k]! : -b[k]!;
    if (ak > bk) return false;
    if (ak < bk) strict = true;
  }
  return strict;
}

/** The step line bounding what the runs dominate in the plane of objectives `x` and `y`: the
 * runs non-dominated in those two, sorted by x, with a corner between each pair at the worse
 * value of each coordinate. */
export function stepLine(points: [number, number][], minimize: [boolean, boolean]): [number, number][] {
  const front = points.filter((p, i) => !points.some((q, j) => j !== i && dominates2(q, p, minimize)));
  const seen = new Set<string>();
  const uniq = front.filter((p) => {
    const k = `${p[0]},${p[1]}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
  uniq.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const worse = (u: number, v: number, min: boolean) => (min ? Math.max(u, v) : Math.min(u, v));
  const line: [number, number][] = [];
  uniq.forEach((p, i) => {
    if (i > 0) {
      const q = uniq[i - 1]!;
      line.push([worse(q[0], p[0], minimize[0]), worse(q[1], p[1], minimize[1])]);
    }
    line.push(p);
  });
  return line;
}

/** The card and its refresh (throttled; call it when runs end). */
/** `onLoad` gets each front read (`null` when there is none). */
export function frontView(sweepId: string, onLoad?: (front: ParetoFront | null) => void): { el: HTMLElement; refresh: () => void } {
  const q0 = new URLSearchParams(location.search);
  const pick = { x: q0.get("fx") ?? "", y: q0.get("fy") ?? "" };
  let front: ParetoFront | null = null;

  const xSel = h("select#front-x", { "aria-label": "objective on the x axis" }) as HTMLSelectElement;
  const ySel = h("select#front-y", { "aria-label": "objective on the y axis" }) as HTMLSelectElement;
  const note = h("span.muted.small#front-note");
  const scatterEl = h("div.chart.tall#front-scatter");
  const parallelEl = h("div.chart#front-parallel", { style: "display:none" });
  const el = h(
    "section.card#front",
    { style: "display:none", "data-testid": "front" },
    h(
      "div.card-head",
      null,
      h("h2", null, "Pareto front"),
      h("label.inline", null, "x ", xSel),
      h("label.inline", null, "y ", ySel),
      note,
    ),
    h("p.muted.small", null, "Runs no other run beats in every objective are the front (highlighted, joined by the line that bounds what they dominate in this plane); the others are faded. Click a run to open it."),
    scatterEl,
    parallelEl,
  );
  // The tooltip is hidden before the page changes, so it does not outlive its chart.
  const open = (c: Chart) => (p: any) => {
    const run = p?.data?.run;
    if (typeof run !== "string" || !run) return;
    c.dispatchAction({ type: "hideTip" });
    navigate(`/runs/${run}`);
  };
  // Each chart is made when its box is first shown: a chart made in a hidden box lays out its
  // axes for a zero size.
  let scatterChart: Chart | null = null;
  let parallelChart: Chart | null = null;
  const made = (box: HTMLElement): Chart => {
    const c = chart(box);
    c.on("click", open(c));
    return c;
  };

  const saveView = () => {
    const q = new URLSearchParams(location.search);
    q.set("fx", pick.x);
    q.set("fy", pick.y);
    const url = `${location.pathname}?${q.toString()}`;
    if (url !== location.pathname + location.search) history.replaceState(null, "", url);
  };
  const describe = (r: FrontRun) => {
    const f = front!;
    const rows = f.objectives.map((o, k) => `${o.name} = ${num(r.values[k])}`).join("<br>");
    const where = r.rank === 0 ? "on the front" : `dominated (layer ${r.rank})`;
    return `<span class="front-tip">run #${r.number} <code>${r.run_id}</code><br>${where}<br>${rows}</span>`;
  };

  const renderScatter = () => {
    const f = front!;
    const names = f.objectives.map((o) => o.name);
    const xi = names.indexOf(pick.x);
    const yi = names.indexOf(pick.y);
    const minimize: [boolean, boolean] = [f.objectives[xi]!.goal !== "maximize", f.objectives[yi]!.goal !== "maximize"];
    const point = (r: FrontRun) => ({ value: [r.values[xi], r.values[yi]], run: r.run_id, r });
    const onFront = f.runs.filter((r) => r.rank === 0);
    const rest = f.runs.filter((r) => r.rank > 0);
    const line = stepLine(
      f.runs.map((r) => [r.values[xi]!, r.values[yi]!]),
      minimize,
    );
    const goal = (k: number) => (f.objectives[k]!.goal === "maximize" ? "↑ better" : "↓ better");
    scatterChart ??= made(scatterEl);
    scatterChart.setOption(
      {
        animation: false,
        grid: { left: 70, right: 30, top: 30, bottom: 50 },
        legend: { top: 0, data: ["front", "dominated"] },
        tooltip: { trigger: "item", formatter: (p: any) => (p.data?.r ? describe(p.data.r) : "") },
        xAxis: { type: "value", scale: true, name: `${pick.x} (${goal(xi).replace("↓", "←").replace("↑", "→")})`, nameLocation: "middle", nameGap: 30, axisLabel: { formatter: (v: number) => num(v) } },
        yAxis: { type: "value", scale: true, name: `${pick.y} (${goal(yi)})`, axisLabel: { formatter: (v: number) => num(v) } },
        series: [
          { name: "front step", type: "line", data: line, symbol: "none", silent: true, lineStyle: { color: FRONT, width: 1.5 }, z: 1 },
          { name: "dominated", type: "scatter", data: rest.map(point), symbolSize: 6, itemStyle: { color: DOMINATED, opacity: 0.45 }, z: 2 },
          { name: "front", type: "scatter", data: onFront.map(point), symbolSize: 10, itemStyle: { color: FRONT, opacity: 1, borderColor: "#fff", borderWidth: 1 }, z: 3 },
        ],
      },
      true,
    );
  };

  const renderParallel = () => {
    const f = front!;
    if (f.objectives.length < 3) {
      parallelEl.style.display = "none";
      return;
    }
    parallelEl.style.display = "";
    parallelChart ??= made(parallelEl);
    const row = (r: FrontRun) => ({ value: [...r.values], run: r.run_id, r });
    parallelChart.setOption(
      {
        animation: false,
        parallel: { left: 60, right: 60, top: 40, bottom: 30 },
        parallelAxis: f.objectives.map((o, k) => ({
          dim: k,
          name: `${o.name} (${o.goal === "maximize" ? "max" : "min"})`,
          type: "value",
          scale: true,
          inverse: o.goal === "maximize",
          nameLocation: o.goal === "maximize" ? "start" : "end",
          axisLabel: { formatter: (v: number) => num(v) },
        })),
        tooltip: { trigger: "item", formatter: (p: any) => (p.data?.r ? describe(p.data.r) : "") },
        series: [
          { type: "parallel", data: f.runs.filter((r) => r.rank > 0).map(row), lineStyle: { color: DOMINATED, width: 1, opacity: 0.25 } },
          { type: "parallel", data: f.runs.filter((r) => r.rank === 0).map(row), lineStyle: { color: FRONT, width: 2, opacity: 0.9 } },
        ],
      },
      true,
    );
  };

  const render = () => {
    const f = front;
    if (!f || f.objectives.length < 2) {
      el.style.display = "none";
      return;
    }
    el.style.display = "";
    const names = f.objectives.map((o) => o.name);
    if (!names.includes(pick.x)) pick.x = names[0]!;
    if (!names.includes(pick.y) || pick.y === pick.x) pick.y = names.find((n) => n !== pick.x)!;
    for (const [sel, v] of [
      [xSel, pick.x],
      [ySel, pick.y],
    ] as const) {
      if (sel.options.length !== names.length || [...sel.options].some((o, k) => o.value !== names[k])) {
        clear(sel, names.map((n) => h("option", { value: n }, n)));
      }
      sel.value = v;
    }
    const n = f.runs.filter((r) => r.rank === 0).length;
    note.textContent = `${n} of ${f.runs.length} ended run${f.runs.length === 1 ? "" : "s"} on the front`;
    el.dataset.front = String(n);
    el.dataset.runs = String(f.runs.length);
    if (f.runs.length) {
      renderScatter();
      renderParallel();
    }
  };

  // Picking the other axis's objective swaps the two.
  const onPick = (axis: "x" | "y") => () => {
    const prev = { ...pick };
    pick.x = xSel.value;
    pick.y = ySel.value;
    if (pick.x === pick.y) {
      if (axis === "x") pick.y = prev.x;
      else pick.x = prev.y;
    }
    saveView();
    render();
  };
  xSel.addEventListener("change", onPick("x"));
  ySel.addEventListener("change", onPick("y"));

  const load = async () => {
    try {
      front = await get<ParetoFront>(`/api/v1/sweeps/${encodeURIComponent(sweepId)}/front`);
    } catch {
      front = null; // a server without the route, or a sweep that went away: no card
    }
    render();
    onLoad?.(front);
  };
  load();
  return { el, refresh: throttle(() => void load(), 3000) };
}
