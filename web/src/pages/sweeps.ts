import { api, subscribe } from "../api";
import { clear, duration, h, num, stateBadge, throttle, when } from "../util";
import type { RunCounts, Sweep } from "../wire";
import { RUN_STATES } from "../wire";

// Running first: what is happening now leads.
const STATES = ["running", ...RUN_STATES.filter((s) => s !== "running")] as const;

function counts(c: RunCounts): HTMLElement {
  return h(
    "span.counts",
    null,
    STATES.filter((s) => c[s]).map((s) => h("span", { class: `count s-${s}`, title: s.replace("_", " ") }, String(c[s]))),
  );
}

/** Pause/resume, stop and cancel buttons for a sweep, each offered only where the server takes
 *  it: `stop` and `pause` on a running or paused sweep, `cancel` also on a `finished` sweep whose
 *  runs are still in flight (after `stop`). When the server refuses anyway (the sweep ended
 *  meanwhile: `409`), its message goes to `onError`; a success clears it. */
export function sweepActions(sweep: Sweep, reload: () => void, onError: (message: string) => void): HTMLElement {
  const act = async (action: "pause" | "resume" | "stop" | "cancel") => {
    if (action === "cancel" && !confirm(`Cancel sweep ${sweep.id}? Running runs are stopped.`)) return;
    try {
      await api.sweepAction(sweep.id, action);
      onError("");
    } catch (e) {
      onError(`${action} ${sweep.name || sweep.id}: ${(e as Error).message}`);
    }
    reload();
  };
  const btn = (action: "pause" | "resume" | "stop" | "cancel", enabled: boolean) =>
    h("button", { class: `btn small a-${action}`, disabled: !enabled, onclick: () => act(action), "data-action": action }, action);
  const s = sweep.state;
  const open = s === "running" || s === "paused";
  const inFlight = (sweep.counts?.running ?? 0) > 0;
  return h(
    "span.actions",
    null,
    s === "paused" ? btn("resume", true) : btn("pause", s === "running"),
    btn("stop", open),
    btn("cancel", open || (s === "finished" && inFlight)),
  );
}

export function sweepsPage(el: HTMLElement): (() => void)[] {
  document.title = "Sweeps · hyperdial";
  const body = h("tbody");
  const summary = h("p.muted");
  const actionError = h("p.action-error#action-error", { role: "alert" });
  clear(
    el,
    h("h1", null, "Sweeps"),
    summary,
    actionError,
    h(
      "div.card.flush",
      null,
      h(
        "div.scroll-x",
        null,
        h(
          "table.grid#sweeps",
          null,
          h(
            "thead",
            null,
            h("tr", null, ["Sweep", "State", "Method", "Runs", "Best", "Created", "Compute", ""].map((t) => h("th", { scope: "col" }, t))),
          ),
          body,
        ),
      ),
    ),
  );
  const load = async () => {
    const { sweeps } = await api.sweeps();
    summary.textContent = sweeps.length
      ? `${sweeps.length} sweep${sweeps.length === 1 ? "" : "s"}`
      : "No sweeps yet. Start one with `hyperdial tune sweep.yaml` or `hyperdial sweep sweep.yaml`.";
    clear(
      body,
      sweeps.map((s) =>
        h(
          "tr",
          { "data-sweep": s.id },
          h(
            "td",
            null,
            h("a", { href: `/sweeps/${s.id}`, "data-link": true }, s.name || s.id),
            h("div.muted.small", null, `${s.id} · ${s.project}`),
          ),
          h("td", { "data-state": s.state }, stateBadge(s.state), s.end_reason ? h("span.muted.small.end-reason", { title: "what ended the sweep" }, ` (${s.end_reason})`) : null),
          h("td", null, s.method),
          h("td", null, h("b", null, String(s.total_runs)), " ", counts(s.counts)),
          h(
            "td",
            null,
            s.best ? h("span", null, num(s.best.value), h("div.muted.small", null, `${s.metric?.name ?? ""} · run ${s.best.number ?? ""}`)) : "—",
          ),
          h("td", null, when(s.created_ms)),
          h("td", null, duration(s.compute_ms)),
          h("td", null, sweepActions(s, () => load().catch(() => {}), (msg) => (actionError.textContent = msg))),
        ),
      ),
    );
  };
  load().catch((e) => (summary.textContent = String(e.message)));
  const refresh = throttle(() => load().catch(() => {}), 1500);
  const unsub = subscribe(null, (...[kind]) => {
    if (kind === "sweep" || kind === "run_created" || kind === "run_finished" || kind === "resync") refresh();
  });
  const timer = window.setInterval(refresh, 30_000);
  return [unsub, () => clearInterval(timer)];
}
