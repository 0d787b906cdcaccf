// Two panels of a sweep's header: its lineage and its budget.
//
// Lineage: the sweep this one was refined from (`parent:` in its config), the sweeps whose
// runs its search starts from (`prior_runs:`), and the sweeps that name this one as their
// parent or among their prior runs (found in the list of sweeps), each a link.
//
// Budget: what is left of each limit of the config's `budget:` block, the runs and time since
// the last improvement, the estimated end and which limit reaches it first (`Sweep.budget`),
// and, once the sweep is over, what ended it (`Sweep.end_reason`).

import { duration, h, num, when } from "../util";
import type { EndReason, Sweep } from "../wire";

const obj = (v: unknown): Record<string, unknown> => (v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

/** The parent and prior-run sweeps a sweep's config names. */
export function lineageOf(s: Pick<Sweep, "config">): { parent: string | null; priors: string[] } {
  const c = obj(s.config);
  const parent = typeof c.parent === "string" ? c.parent : null;
  const priors = Array.isArray(c.prior_runs) ? c.prior_runs.filter((x): x is string => typeof x === "string") : [];
  return { parent, priors };
}

/** The sweeps of `all` refined from `id` (their `parent`) or starting from its runs (their
 * `prior_runs`), newest first as listed. */
export function childrenOf(id: string, all: Sweep[]): { sweep: Sweep; refined: boolean }[] {
  const out: { sweep: Sweep; refined: boolean }[] = [];
  for (const s of all) {
    if (s.id === id) continue;
    const l = lineageOf(s);
    if (l.parent === id || l.priors.includes(id)) out.push({ sweep: s, refined: l.parent === id });
  }
  return out;
}

const link = (id: string, all: Sweep[]) => {
  const s = all.find((x) => x.id === id);
  return h("a", { href: `/sweeps/${encodeURIComponent(id)}`, "data-link": true, "data-sweep-link": id }, s?.name ? `${s.name} (${id})` : id);
};

/** The lineage panel, or `null` when the sweep has neither parent, priors nor children. */
export function lineagePanel(s: Sweep, all: Sweep[]): HTMLElement | null {
  const { parent, priors } = lineageOf(s);
  const kids = childrenOf(s.id, all);
  const otherPriors = priors.filter((p) => p !== parent);
  if (!parent && !otherPriors.length && !kids.length) return null;
  const list = (items: Node[]) => h("span.links", null, items.flatMap((n, i) => (i ? [", ", n] : [n])));
  return h(
    "div.panel#lineage",
    { "aria-label": "lineage" },
    h("h2", null, "Lineage"),
    h(
      "dl.kv",
      null,
      parent ? [h("dt", null, "refined from"), h("dd", { "data-lineage": "parent" }, link(parent, all))] : null,
      otherPriors.length ? [h("dt", null, "starts from the runs of"), h("dd", { "data-lineage": "priors" }, list(otherPriors.map((p) => link(p, all))))] : null,
      kids.length
        ? [
            h("dt", null, "followed by"),
            h(
              "dd",
              { "data-lineage": "children" },
              list(kids.map((k) => h("span", null, link(k.sweep.id, all), h("span.muted.small", null, k.refined ? " (refined)" : " (prior runs)")))),
            ),
          ]
        : null,
    ),
  );
}

/** What ended a sweep, in words. */
export function endReasonText(r: EndReason, s: Pick<Sweep, "config">): string {
  const b = obj(obj(s.config).budget);
  const st = obj(b.stagnation);
  switch (r) {
    case "stop":
      return "stopped by a user (runs in flight finished)";
    case "cancel":
      return "cancelled by a user";
    case "wall_time":
      return `its wall-time budget${typeof b.wall_time_s === "number" ? ` of ${duration(b.wall_time_s * 1000)}` : ""} ran out`;
    case "run_hours":
      return `its run-hours budget${typeof b.run_hours === "number" ? ` of ${num(b.run_hours)} h` : ""} was used`;
    case "stagnation": {
      const parts = [typeof st.runs === "number" ? `in ${st.runs} finished runs` : null, typeof st.fraction === "number" ? `in the last ${Math.round(st.fraction * 100)} % of its time` : null].filter(Boolean);
      return `the best value stopped improving${typeof st.min_delta === "number" && st.min_delta > 0 ? ` by more than ${num(st.min_delta)}` : ""}${parts.length ? ` ${parts.join(" or ")}` : ""} (stagnation)`;
    }
    case "run_cap":
      return `its run_cap${typeof obj(s.config).run_cap === "number" ? ` of ${obj(s.config).run_cap}` : ""} runs ended (run_cap)`;
    case "exhausted":
      return "every configuration of its search space ran (exhausted)";
    case "target":
      return "a run reached metric.target (target)";
  }
}

const limitWords: Record<EndReason, string> = { stop: "a stop", cancel: "a cancel", wall_time: "wall time", run_hours: "run-hours", stagnation: "stagnation", run_cap: "run_cap", exhausted: "an exhausted space", target: "the target" };

/** The budget panel: `null` when the sweep has no budget and no end reason. */
export function budgetPanel(s: Sweep, now = Date.now()): HTMLElement | null {
  const b = s.budget;
  const cfg = obj(obj(s.config).budget);
  const st = obj(cfg.stagnation);
  if (!b && !s.end_reason) return null;
  const over = s.state === "finished" || s.state === "cancelled";
  const row = (k: string, v: Node | string, key: string) => [h("dt", null, k), h("dd", { "data-budget": key }, v)];
  return h(
    "div.panel#budget",
    { "aria-label": "budget" },
    h("h2", null, "Budget"),
    h(
      "dl.kv",
      null,
      s.end_reason ? row("ended because", endReasonText(s.end_reason, s), "end_reason") : null,
      b && b.wall_time_left_s !== null
        ? row("wall time left", `${duration(b.wall_time_left_s * 1000)}${typeof cfg.wall_time_s === "number" ? ` of ${duration(cfg.wall_time_s * 1000)}` : ""}`, "wall_time")
        : null,
      b && b.run_hours_left !== null ? row("run-hours left", `${num(Number(b.run_hours_left.toFixed(3)))} h${typeof cfg.run_hours === "number" ? ` of ${num(cfg.run_hours)} h` : ""}`, "run_hours") : null,
      b && (cfg.stagnation || b.runs_since_improvement)
        ? row(
            "since the last improvement",
            `${b.runs_since_improvement} run${b.runs_since_improvement === 1 ? "" : "s"}${typeof st.runs === "number" ? ` of ${st.runs}` : ""} · ${duration(b.since_improvement_s * 1000)}`,
            "stagnation",
          )
        : null,
      b && !over
        ? row(
            "estimated end",
            b.estimated_end_ms
              ? `${when(b.estimated_end_ms)} (in ${duration(Math.max(0, b.estimated_end_ms - now))}, by ${b.first_limit ? limitWords[b.first_limit] : "its budget"})`
              : "not yet known (too few finished runs)",
            "estimated_end",
          )
        : null,
    ),
  );
}
