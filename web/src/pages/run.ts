import { api, ApiError, subscribe } from "../api";
import type { EventPoint } from "../wire";
import { chart, Chart } from "../charts";
import type { Run } from "../wire";
import { showLrRange } from "./lrrange";
import { prediction, stopText } from "./sweep_table";
import { clear, codeText, deliveryLabels, deliveryText, duration, h, num, stateBadge, throttle, toYaml, value, when } from "../util";

export function runPage(el: HTMLElement, id: string): (() => void)[] {
  const header = h("div.sweep-head");
  const info = h("div.facts.grid2#run-info");
  const configEl = h("pre.config#run-config");
  const summaryEl = h("table.kv#run-summary");
  const chartsEl = h("div.scatters#run-charts");
  const lrRangeEl = h("div#lr-range-slot");
  const outputEl = h("pre.output#run-output");
  const tailEl = h("div#run-tail");
  clear(
    el,
    header,
    h("section.card", null, h("h2", null, "Run"), info, tailEl),
    h("div.row", null, h("section.card.half", null, h("h2", null, "Config"), configEl), h("section.card.half", null, h("h2", null, "Summary"), summaryEl)),
    lrRangeEl,
    h("section.card", null, h("h2", null, "Metrics"), chartsEl),
    h("section.card", null, h("h2", null, "Output"), outputEl),
  );
  const charts = new Map<string, Chart>();
  let run: Run | null = null;
  // Numbers of the run this one retries and of the run that retries it, looked up once.
  const related: {
    retryOf?: { id: string; number: number | null };
    retriedBy?: { id: string; number: number | null };
    repeatOf?: { id: string; number: number | null };
  } = {};

  // The state in words that tell early stopping (the sweep's rule working) from failure.
  const stateWords = (r: Run): string => {
    switch (r.state) {
      case "stopped_early":
        return "stopped early by the sweep's early-termination rule (not a failure)";
      case "failed":
        return r.exit_code !== null ? `failed: the command exited with status ${r.exit_code}` : "failed";
      case "crashed":
        return "crashed: the agent or its host went away, or a signal killed the command";
      case "cancelled":
        return "cancelled by a user or a stopping agent";
      default:
        return r.state.replace("_", " ");
    }
  };
  // For a failed or crashed run, the last lines of its output, where the traceback is.
  const renderTail = (text: string) => {
    if (!run || (run.state !== "failed" && run.state !== "crashed")) return clear(tailEl);
    const lines = text.replace(/\s+$/, "").split("\n");
    const tail = lines.slice(-20).join("\n");
    clear(
      tailEl,
      tail
        ? h("div.failure", null, h("h3", null, `Last ${Math.min(20, lines.length)} lines of output`), h("pre.output.tail", null, tail))
        : h("p.muted", null, "The run printed nothing."),
    );
  };

  const runLink = (r: { id: string; number: number | null }) =>
    h("a", { href: `/runs/${r.id}`, "data-link": true }, r.number !== null && r.number !== undefined ? `#${r.number}` : r.id);

  const loadRelated = async (r: Run) => {
    if (r.retry_of && related.retryOf?.id !== r.retry_of) {
      const prev = await api.run(r.retry_of).catch(() => null);
      related.retryOf = { id: r.retry_of, number: prev?.number ?? null };
    }
    if (r.repeat_of && related.repeatOf?.id !== r.repeat_of) {
      const of = await api.run(r.repeat_of).catch(() => null);
      related.repeatOf = { id: r.repeat_of, number: of?.number ?? null };
    }
    // A retry is created after the run it retries has ended: look among the sweep's later runs.
    if (r.sweep && r.finished_ms && !related.retriedBy) {
      const q = new URLSearchParams({ sweep: r.sweep, range: `created_ms:${r.finished_ms - 1000}:`, sort: "created_ms", limit: "1000" });
      const page = await api.runs(q.toString()).catch(() => null);
      const next = (page?.runs ?? []).find((x) => x.retry_of === r.id);
      if (next) related.retriedBy = { id: next.id, number: next.number ?? null };
    }
  };

  const loadRun = async () => {
    const r = await api.run(id);
    await loadRelated(r);
    run = r;
    document.title = `Run ${r.number !== null ? `#${r.number} ` : ""}${r.name ?? r.id} · hyperdial`;
    const delivery = deliveryText(r);
    clear(
      header,
      h(
        "div.crumbs",
        null,
        h("a", { href: "/", "data-link": true }, "Sweeps"),
        r.sweep ? [" / ", h("a", { href: `/sweeps/${r.sweep}`, "data-link": true }, r.sweep)] : null,
      ),
      h("div.title-row", null, h("h1", null, `Run ${r.number !== null ? `#${r.number}` : ""} ${r.name ?? ""}`), stateBadge(r.state), h("span.muted", null, r.id)),
      h("div.labels#run-labels", null, deliveryLabels(r)),
    );
    const runtime = r.started_ms ? (r.finished_ms ?? r.heartbeat_ms ?? r.started_ms) - r.started_ms : null;
    const row = (k: string, v: Node | string) => h("div.fact", null, h("span.k", null, k), h("span.v", { "data-fact": k }, v));
    clear(
      info,
      row("state", stateWords(r)),
      (r.attempt ?? 1) > 1 || r.retry_of || related.retriedBy || related.repeatOf
        ? row(
            "attempt",
            h(
              "span",
              null,
              String(r.attempt ?? 1),
              related.retryOf ? [" · retry of ", runLink(related.retryOf)] : null,
              related.retriedBy ? [" · retried as ", runLink(related.retriedBy)] : null,
              related.repeatOf ? [" · repeat of ", runLink(related.repeatOf)] : null,
            ),
          )
        : null,
      delivery.missing || delivery.recovered
        ? row(
            "delivery",
            h(
              "span",
              null,
              delivery.missing ? h("div", null, codeText(delivery.missing)) : null,
              delivery.recovered ? h("div", null, codeText(delivery.recovered)) : null,
              (r.delivery?.files ?? []).map((f: string) => h("div.muted.small", null, h("code", null, f))),
            ),
          )
        : null,
      row("metric", num(r.metric)),
      // A bayes run: what the model predicted when it suggested the configuration.
      prediction(r)
        ? row("model predicted", `${num(prediction(r)!.mean)} ± ${num(prediction(r)!.sd)} (mean ± sd when suggested)`)
        : null,
      row("exit status", r.exit_code === null ? "—" : String(r.exit_code)),
      r.error && r.state !== "stopped_early" ? row("error", r.error) : null,
      r.stop_reason ? row(r.state === "stopped_early" ? "why stopped" : "stop reason", stopText(r.stop_info) ?? r.stop_reason) : null,
      row("host", r.host ?? "—"),
      row("agent", r.agent ?? "—"),
      row("command", h("code", null, Array.isArray(r.argv) ? r.argv.join(" ") : "—")),
      row(
        "git commit",
        r.git?.commit
          ? h("span", null, h("code", { title: r.git.commit }, String(r.git.commit).slice(0, 10)), r.git.dirty ? h("span.badge.warn", { style: "margin-left:6px" }, "dirty: uncommitted changes") : null)
          : "—",
      ),
      row("created", when(r.created_ms)),
      row("started", when(r.started_ms)),
      row("finished", when(r.finished_ms)),
      row("runtime", duration(runtime)),
      row("steps", String(r.steps ?? 0)),
    );
    showLrRange(lrRangeEl, r);
    configEl.textContent = toYaml(r.config ?? {}).replace(/^\n/, "") || "{}";
    clear(
      summaryEl,
      Object.entries(r.summary ?? {})
        .sort(([a], [b]) => a.localeCompare(b))
        // A structured value (an LR range test's record, say) wraps and scrolls inside the card.
        .map(([k, v]) => h("tr", null, h("td", null, k), v !== null && typeof v === "object" ? h("td", null, h("pre.summary-json", null, JSON.stringify(v, null, 1))) : h("td.num", null, value(v)))),
    );
  };

  // The series shown, by metric: a downsampled read at first, then the points live events
  // bring (or, when an event left some out, a read of the points after the last step shown).
  const shown = new Map<string, { step: number[]; value: (number | null)[] }>();
  const lastStep = () => {
    let last = -1;
    for (const s of shown.values()) if (s.step.length) last = Math.max(last, s.step[s.step.length - 1]);
    return last;
  };
  const draw = (key: string) => {
    const s = shown.get(key)!;
    let c = charts.get(key);
    if (!c) {
      const box = h("div.chart.small", { "data-metric": key });
      chartsEl.querySelector("p.muted")?.remove();
      chartsEl.append(box);
      c = chart(box);
      charts.set(key, c);
    }
    c.setOption(
      {
        animation: false,
        title: { text: key, left: "center", textStyle: { fontSize: 12 } },
        grid: { left: 8, right: 14, top: 28, bottom: 22, containLabel: true },
        tooltip: { trigger: "axis", valueFormatter: (v: number) => num(v) },
        xAxis: { type: "value", name: "step", nameLocation: "middle", nameGap: 26, min: "dataMin", max: "dataMax", axisLabel: { hideOverlap: true } },
        yAxis: { type: "value", scale: true, axisLabel: { hideOverlap: true, formatter: (v: number) => num(v) } },
        series: [{ type: "line", symbol: s.step.length < 40 ? "circle" : "none", data: s.step.map((x: number, i: number) => [x, s.value[i]]), lineStyle: { width: 1.6 }, color: "#2f6fde" }],
      },
      true,
    );
  };
  /** Read the history: all of it (downsampled) without `after`, else the points past `after`. */
  const loadCharts = async (after?: number) => {
    const hist = await api.history(id, after === undefined ? "max_points=1000" : `max_points=1000&after_step=${after}`);
    if (after === undefined) shown.clear();
    for (const key of hist.keys) {
      const s = hist.series[key] ?? { step: [], value: [] };
      const into = shown.get(key);
      if (!into) shown.set(key, { step: [...s.step], value: [...s.value] });
      else {
        const last = into.step.length ? into.step[into.step.length - 1] : -Infinity;
        s.step.forEach((x: number, i: number) => {
          if (x > last) {
            into.step.push(x);
            into.value.push(s.value[i]);
          }
        });
      }
      draw(key);
    }
    if (!hist.keys.length && !shown.size) clear(chartsEl, h("p.muted", null, "No metrics logged yet."));
  };
  /** Append a metrics event's points; false when the event left points out. */
  const appendPoints = (points: EventPoint[], truncated: boolean): boolean => {
    if (truncated || !shown.size) return false;
    const changed = new Set<string>();
    for (const p of points) {
      for (const [key, v] of Object.entries(p.values)) {
        if (typeof v !== "number" && v !== null) continue;
        let s = shown.get(key);
        if (!s) shown.set(key, (s = { step: [], value: [] }));
        if (s.step.length && p.step <= s.step[s.step.length - 1]) continue;
        s.step.push(p.step);
        s.value.push(v);
        changed.add(key);
      }
    }
    for (const key of changed) pending.add(key);
    return true;
  };
  const pending = new Set<string>();
  const redraw = throttle(() => {
    for (const key of pending) draw(key);
    pending.clear();
  }, 1000);

  const loadOutput = async () => {
    const text = await api.output(id);
    renderTail(text);
    const atBottom = outputEl.scrollTop + outputEl.clientHeight >= outputEl.scrollHeight - 4;
    outputEl.textContent = text.length > 200_000 ? "…" + text.slice(-200_000) : text || "(no output captured)";
    if (atBottom) outputEl.scrollTop = outputEl.scrollHeight;
  };

  loadRun()
    .then(() => Promise.all([loadCharts(), loadOutput()]))
    .catch((e) => {
      if (e instanceof ApiError && e.status === 404) {
        document.title = "Run not found · hyperdial";
        clearInterval(wait);
        clear(
          el,
          h(
            "div.not-found#not-found",
            { role: "status" },
            h("h1", null, "Run not found"),
            h("p", null, "No run has the id ", h("code", null, id), " on this server. It may be on another server or database, or the id may be mistyped."),
            h("p", null, h("a", { href: "/", "data-link": true }, "All sweeps")),
          ),
        );
      } else clear(header, h("p.error", null, e.message));
    });
  // Live: a metrics event's points are drawn as they come; the run's facts and its output
  // are read again at most every 3 s; a full history read only after a resync or when the
  // run ends (to replace the live points by the downsampled history).
  const refreshRun = throttle(() => loadRun().catch(() => {}), 3000);
  const refreshOutput = throttle(() => loadOutput().catch(() => {}), 3000);
  const refreshNew = throttle(() => loadCharts(lastStep()).catch(() => {}), 1500);
  const refreshAll = throttle(() => {
    loadRun().catch(() => {});
    loadCharts().catch(() => {});
    loadOutput().catch(() => {});
  }, 1500);
  let unsub = () => {};
  // Subscribe once the run's sweep is known.
  const wait = window.setInterval(() => {
    if (!run) return;
    clearInterval(wait);
    unsub = subscribe(run.sweep ?? null, (kind, data) => {
      if (kind === "resync") return refreshAll();
      const rid = kind === "metrics" ? data.run.id : "id" in data ? data.id : null;
      if (rid !== id) return;
      if (kind === "metrics") {
        if (appendPoints(data.points, data.truncated)) redraw();
        else refreshNew();
        refreshRun();
        refreshOutput();
      } else if (kind === "run_finished") refreshAll();
      else refreshRun();
    });
  }, 100);
  return [() => unsub(), () => clearInterval(wait)];
}
