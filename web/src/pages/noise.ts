// The sweep page's "Seed noise" panel (GET /api/v1/sweeps/{id}/noise): per repeated
// configuration the mean ± standard deviation across seeds, the pooled seed noise against the
// spread across configurations and their ratio, and whether the best configuration is
// distinguishable from the runner-up (Welch's t-test, p < 0.05). The panel stays hidden until
// the sweep has repeats (`hyperdial repeat`). Also what the other cards take from the report:
// a noise band for the best-so-far chart and the "below seed noise" mark of importance rows.

import { api } from "../api";
import { clear, h, num } from "../util";
import type { NoiseReport } from "../wire";

/** The panel element and how to (re)load it; `load` answers the report (null on failure). */
export interface NoisePanel {
  el: HTMLElement;
  load: () => Promise<NoiseReport | null>;
}

const params = (p: Record<string, unknown>) =>
  Object.entries(p)
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(", ");

/** The panel of sweep `id`: hidden until some configuration has repeats. */
export function noisePanel(id: string): NoisePanel {
  const body = h("div#seed-noise-body");
  const el = h(
    "section.card#seed-noise",
    { "data-testid": "seed-noise", hidden: true },
    h("h2", null, "Seed noise"),
    body,
  );
  const render = (r: NoiseReport) => {
    el.hidden = r.configurations.length === 0;
    if (el.hidden) return;
    // Every configuration's mean ± std on one common scale.
    const ends = r.configurations.flatMap((c) => (c.mean === null ? [] : [c.mean - (c.std ?? 0), c.mean + (c.std ?? 0)]));
    const lo = Math.min(...ends);
    const hi = Math.max(...ends);
    const at = (v: number) => (hi > lo ? ((v - lo) / (hi - lo)) * 100 : 50);
    const rows = r.configurations.map((c) =>
      h(
        "tr",
        { "data-config": c.run },
        h("td", null, h("a", { href: `/runs/${c.run}`, "data-link": true }, c.number === null ? c.run : `#${c.number}`)),
        h("td.small", null, params(c.params)),
        h("td.num", null, c.mean === null ? "—" : `${num(c.mean)} ± ${num(c.std)}`),
        h("td.num", null, `${c.count}${c.pending ? ` (+${c.pending} to run)` : ""}`),
        h(
          "td.barcell",
          { title: `mean ${num(c.mean)}, ± one standard deviation across ${c.count} seeds` },
          c.mean === null
            ? h("span.muted", null, "—")
            : h(
                "div.spread",
                null,
                h("div.whisker", {
                  style: `left:${at(c.mean - (c.std ?? 0)).toFixed(1)}%;width:${Math.max(0.5, at(c.mean + (c.std ?? 0)) - at(c.mean - (c.std ?? 0))).toFixed(1)}%`,
                }),
                h("div.dot", { style: `left:${at(c.mean).toFixed(1)}%` }),
              ),
        ),
      ),
    );
    const cmp = r.comparison;
    const verdict = cmp
      ? h(
          "p#noise-verdict",
          { class: cmp.distinguishable ? "verdict yes" : "verdict no", "data-distinguishable": String(cmp.distinguishable) },
          cmp.distinguishable
            ? `The best configuration is distinguishable from the runner-up: Welch's t-test p = ${num(cmp.p_value)} < ${cmp.alpha}.`
            : `The best configuration is not distinguishable from the runner-up: Welch's t-test p = ${num(cmp.p_value)} ≥ ${cmp.alpha}; their difference (${num(cmp.difference)}) may be seed noise.`,
        )
      : h("p.muted#noise-verdict", null, "Best against runner-up: needs two configurations with two finished repeats each.");
    clear(
      body,
      h(
        "div.facts#noise-facts",
        null,
        h("div.fact", null, h("span.k", null, "seed noise"), h("span.v", { "data-fact": "seed-noise" }, num(r.seed_noise))),
        h("div.fact", null, h("span.k", null, "spread across configurations"), h("span.v", { "data-fact": "spread" }, num(r.spread))),
        h("div.fact", null, h("span.k", null, "noise / spread"), h("span.v", { "data-fact": "ratio" }, r.ratio === null ? "—" : num(r.ratio))),
      ),
      verdict,
      h(
        "table.grid.noise",
        null,
        h("thead", null, h("tr", null, h("th", null, "configuration"), h("th", null, "parameters"), h("th", null, `${r.metric ?? "metric"} mean ± std`), h("th", null, "seeds"), h("th", null, "spread across seeds"))),
        h("tbody", null, rows),
      ),
      h(
        "p.muted.small",
        null,
        `Statistics of each configuration's repeats (the run repeated is left out: it was picked for scoring well). Seed noise: pooled standard deviation within configurations (${r.seed_noise_df} degrees of freedom). Spread: standard deviation of the means of the ${r.spread_configurations} configurations of the finished runs. Near 1 or above, differences between configurations are mostly seed noise.`,
      ),
    );
  };
  const load = async () => {
    const r = await api.noise(id).catch(() => null);
    if (r) render(r);
    return r;
  };
  return { el, load };
}

/** The noise band for the best-so-far chart: `best ± seed noise`, or null when unknown. */
export function noiseBand(r: NoiseReport | null, best: number | null): { lo: number; hi: number } | null {
  if (!r || r.seed_noise === null || best === null) return null;
  return { lo: best - r.seed_noise, hi: best + r.seed_noise };
}

/**
 * Whether an importance row's effect is below the seed noise: its main effect (a share of the
 * predicted metric's variance) times the spread across configurations, as a standard deviation
 * in metric units (√(share) × spread), is smaller than the seed noise.
 */
export function belowNoise(mainEffect: number | null, r: NoiseReport | null): boolean {
  if (!r || mainEffect === null || r.seed_noise === null || r.spread === null) return false;
  return Math.sqrt(Math.max(0, mainEffect)) * r.spread < r.seed_noise;
}
