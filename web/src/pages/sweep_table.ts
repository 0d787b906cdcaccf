// The columns of a sweep's runs table, for triage: each column renders a cell, gives the text
// a CSV download writes, and may be hidden with the column chooser (the hidden columns are kept
// in localStorage, by column key, so a chosen set follows the user from sweep to sweep).
//
// Columns beyond parameters and metrics:
// - *failure*: why a failed or crashed run failed (the run's `error`; not headed "error",
//   which is a common objective name);
// - *stop reason*: for a run stopped early, the rule, rung, value and threshold from its
//   `stop_info`; for other stopped runs, their `stop_reason`;
// - *predicted* (bayes sweeps): the model's prediction, mean ± standard deviation, stored in
//   the run's `suggestion.diagnostics` when the model suggested it, beside the metric it got.

import { duration, h, num, value, when } from "../util";
import type { Run } from "../wire";

type Cell = Node | string;

/** One column of the runs table. */
export interface Column {
  /** Stable key: `number`, `state`, `metric`, `params.NAME`, `summary.NAME`, ... */
  key: string;
  /** Header text. */
  label: string;
  /** The runs API's sort field, or `null` when the column cannot be sorted. */
  sort: string | null;
  /** Header tooltip. */
  title?: string;
  /** The cell's class (`num` for numbers, `text` for truncated text). */
  cls?: string;
  /** The cell's content. */
  cell: (r: Run) => Cell | Cell[];
  /** The cell as plain text (CSV, tooltips). */
  text: (r: Run) => string;
}

const HIDDEN_KEY = "hyperdial.columns.hidden";

/** Column keys the user hid (read from localStorage; empty when unavailable). */
export function hiddenColumns(): Set<string> {
  try {
    const v = JSON.parse(localStorage.getItem(HIDDEN_KEY) ?? "[]");
    return new Set(Array.isArray(v) ? v.filter((x) => typeof x === "string") : []);
  } catch {
    return new Set();
  }
}

/** Keep the hidden column keys. */
export function saveHiddenColumns(hidden: Set<string>): void {
  try {
    localStorage.setItem(HIDDEN_KEY, JSON.stringify([...hidden].sort()));
  } catch {
    /* private mode: the choice lasts for the page */
  }
}

/** An object's field, when the value is an object. */
const field = (v: unknown, k: string): unknown => (v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>)[k] : undefined);
const finite = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);

/** The model's prediction for a run, from `suggestion.diagnostics` (`mean`, `std`, metric
 * units), when a model suggested it; `null` for initial-design and non-model suggestions. */
export function prediction(r: Pick<Run, "suggestion">): { mean: number; sd: number } | null {
  const d = field(r.suggestion, "diagnostics");
  const mean = finite(field(d, "mean"));
  const sd = finite(field(d, "std"));
  return mean === null ? null : { mean, sd: sd ?? 0 };
}

/** A stop decision in words, from a run's `stop_info` (`rule`, `rung`, `value`, `threshold`,
 * `metric`, `step_key`), e.g. "hyperband at band 4: loss 0.91, threshold 0.73"; `null` when
 * the run holds none. */
export function stopText(info: unknown): string | null {
  const rule = field(info, "rule");
  const rung = finite(field(info, "rung"));
  const v = finite(field(info, "value"));
  const threshold = finite(field(info, "threshold"));
  if (typeof rule !== "string" || rung === null || v === null || threshold === null) return null;
  const metric = typeof field(info, "metric") === "string" ? (field(info, "metric") as string) : "metric";
  const key = field(info, "step_key");
  const at = rule === "hyperband" ? `band ${num(rung)}` : typeof key === "string" ? `${key} ${num(rung)}` : `step ${num(rung)}`;
  return `${rule} at ${at}: ${metric} ${num(v)}, threshold ${num(threshold)}`;
}

/** The error column's text: why a failed or crashed run failed. */
export function errorText(r: Run): string {
  if (r.state !== "failed" && r.state !== "crashed") return "";
  return r.error ?? (r.exit_code !== null ? `exit status ${r.exit_code}` : "");
}

/** The stop reason column's text. */
export function stopReasonText(r: Run): string {
  if (r.state === "stopped_early") return stopText(r.stop_info) ?? r.stop_reason ?? "stopped early";
  if (r.state === "cancelled") return r.stop_reason ?? "cancelled";
  return r.stop_requested ? (r.stop_reason ?? "stop requested") : "";
}

const runtimeMs = (r: Run): number | null => (r.started_ms ? (r.finished_ms ?? r.heartbeat_ms ?? r.started_ms) - r.started_ms : null);

/** Text cell truncated by CSS, its full text in the tooltip. */
const textCell = (t: string): Cell => (t ? h("span.trunc", { title: t }, t) : h("span.muted", null, "—"));

/** The choosable columns of a sweep's table, in order. `extra` cells (badges beside the
 * state) come from the page. */
export function sweepColumns(opts: {
  metric: string | null;
  params: string[];
  summaryKeys: string[];
  bayes: boolean;
  stateCell: (r: Run) => Cell | Cell[];
}): Column[] {
  const cols: Column[] = [
    { key: "state", label: "state", sort: "state", cell: opts.stateCell, text: (r) => r.state },
    { key: "metric", label: opts.metric ?? "metric", sort: "metric", cls: "num", cell: (r) => num(r.metric), text: (r) => (r.metric === null ? "" : String(r.metric)) },
  ];
  if (opts.bayes) {
    cols.push({
      key: "predicted",
      label: "predicted",
      sort: null,
      cls: "num",
      title: "the model's prediction when it suggested the run: mean ± one standard deviation",
      cell: (r) => {
        const p = prediction(r);
        if (!p) return h("span.muted", { title: "not suggested by the model (initial design)" }, "—");
        // How far the result landed from the prediction, in standard deviations.
        const z = r.metric !== null && p.sd > 0 ? (r.metric - p.mean) / p.sd : null;
        return h("span", { "data-z": z === null ? undefined : z.toFixed(2), title: z === null ? undefined : `result ${num(r.metric)} is ${z >= 0 ? "+" : ""}${z.toFixed(1)} sd from the prediction` }, `${num(p.mean)} ± ${num(p.sd)}`);
      },
      text: (r) => {
        const p = prediction(r);
        return p ? csvText(`${p.mean} ± ${p.sd}`) : "";
      },
    });
  }
  for (const p of opts.params)
    cols.push({ key: `params.${p}`, label: p, sort: `params.${p}`, cls: "num", cell: (r) => value(r.params?.[p]), text: (r) => csvValue(r.params?.[p]) });
  for (const k of opts.summaryKeys)
    cols.push({ key: `summary.${k}`, label: k, sort: `summary.${k}`, cls: "num", cell: (r) => value(r.summary?.[k]), text: (r) => csvValue(r.summary?.[k]) });
  cols.push(
    { key: "error", label: "failure", sort: null, cls: "text", title: "why a failed or crashed run failed", cell: (r) => textCell(errorText(r)), text: (r) => csvText(errorText(r)) },
    { key: "stop", label: "stop reason", sort: null, cls: "text", title: "the early-termination decision (rule, rung, value, threshold), or why the run was stopped", cell: (r) => textCell(stopReasonText(r)), text: (r) => csvText(stopReasonText(r)) },
    { key: "runtime", label: "runtime", sort: "runtime_ms", cls: "num", cell: (r) => duration(runtimeMs(r)), text: (r) => (runtimeMs(r) === null ? "" : String(runtimeMs(r)! / 1000)) },
    { key: "finished", label: "finished", sort: "finished_ms", cell: (r) => when(r.finished_ms), text: (r) => (r.finished_ms ? new Date(r.finished_ms).toISOString() : "") },
  );
  return cols;
}

function csvValue(v: unknown): string {
  if (v === null || v === undefined) return "";
  return typeof v === "string" ? csvText(v) : typeof v === "number" ? String(v) : JSON.stringify(v);
}

/** A text cell kept from being run as a formula by a spreadsheet: text starting with `=`,
 * `+`, `-`, `@`, a tab or a carriage return gets a leading `'` (OWASP's advice against CSV
 * injection), as the server's CSV export does. Numbers are not text cells. */
export function csvText(s: string): string {
  return /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
}

/** One CSV field (RFC 4180): quoted when it holds a comma, quote or line break. */
export function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** A CSV document: a header line of the columns' labels, then a line per run (CRLF). The
 * run number and id come first, so a row can always be traced back to its run. */
export function toCsv(cols: Column[], runs: Run[]): string {
  const lines = [["run", "id", ...cols.map((c) => c.label)].map(csvField).join(",")];
  for (const r of runs) lines.push([r.number === null ? "" : String(r.number), r.id, ...cols.map((c) => c.text(r))].map(csvField).join(","));
  return lines.join("\r\n") + "\r\n";
}

/** Offer `text` as a download named `name`. */
export function download(name: string, text: string, type = "text/csv;charset=utf-8"): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h("a", { href: url, download: name, style: "display:none" });
  document.body.append(a);
  a.click();
  a.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** The column chooser: a disclosure with a labelled checkbox per column; `changed` runs after
 * each toggle, with the hidden set already saved. */
export function columnChooser(cols: Column[], hidden: Set<string>, changed: () => void): HTMLElement {
  const title = () => {
    const n = cols.filter((c) => hidden.has(c.key)).length;
    return `Columns${n ? ` (${n} hidden)` : ""}`;
  };
  const summary = h("summary.btn.small", null, title());
  return h(
    "details.chooser#column-chooser",
    null,
    summary,
    h(
      "div.chooser-list",
      { role: "group", "aria-label": "columns shown in the runs table" },
      cols.map((c) =>
        h(
          "label",
          null,
          h("input", {
            type: "checkbox",
            "data-col": c.key,
            checked: !hidden.has(c.key),
            onchange: (e: Event) => {
              if ((e.target as HTMLInputElement).checked) hidden.delete(c.key);
              else hidden.add(c.key);
              saveHiddenColumns(hidden);
              summary.textContent = title();
              changed();
            },
          }),
          ` ${c.label}`,
        ),
      ),
    ),
  );
}
