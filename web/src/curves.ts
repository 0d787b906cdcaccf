// Learning-curve helpers: where an early-termination rule judged a run, placed on the run's
// curve, and the background of every run of a sweep.
//
// A stopped run's `stop_info` holds the rule's `rung`, the run's `value` there and the
// `threshold` it needed (see `crates/search/src/stopping.rs`). The rung is counted in the
// rule's own progress:
// - with a `step_key` (asha and median), the value of that logged metric (e.g. `epoch`): the
//   run was judged at its first point whose step key reached the rung;
// - otherwise (hyperband always; asha and median without `step_key`), the number of values of
//   the metric logged so far: the run was judged at its `rung`-th value.
// `rungStep` turns that into the step of the judged point, which the chart then places on
// whatever x the user chose (step, time or another metric).

/** The fields of a run's `stop_info` the curves use. */
export interface StopMark {
  rule: string;
  rung: number;
  value: number;
  threshold: number;
  stepKey: string | null;
}

/** The stop decision in a run's `stop_info`, or `null` when it holds none. */
export function stopMark(info: unknown): StopMark | null {
  if (!info || typeof info !== "object" || Array.isArray(info)) return null;
  const o = info as Record<string, unknown>;
  const n = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : null);
  const rung = n(o.rung);
  const value = n(o.value);
  const threshold = n(o.threshold);
  if (typeof o.rule !== "string" || rung === null || value === null || threshold === null) return null;
  return { rule: o.rule, rung, value, threshold, stepKey: typeof o.step_key === "string" && o.rule !== "hyperband" ? o.step_key : null };
}

/** A run's series as the history API gives it (possibly downsampled). */
export interface CurveSeries {
  step: number[];
  value: (number | null)[];
  /** Points of the whole series. */
  total: number;
  /** Whether points were left out. */
  downsampled: boolean;
}

/**
 * The step at which the rule judged the run, on its metric series `s`; `progress` is the
 * step key's value at each of `s`'s points when the rule has a step key. `null` when the
 * series does not reach the rung.
 *
 * Count rungs on a downsampled series are placed by interpolating the step between the first
 * and last points (exact when the run logged the metric at evenly spaced steps).
 */
export function rungStep(mark: StopMark, s: CurveSeries, progress?: (number | null)[]): number | null {
  if (!s.step.length) return null;
  if (mark.stepKey) {
    if (!progress) return null;
    for (let i = 0; i < s.step.length; i++) {
      const p = progress[i];
      if (p !== null && p !== undefined && p >= mark.rung) return s.step[i];
    }
    return null;
  }
  const b = Math.round(mark.rung);
  if (b < 1) return null;
  if (!s.downsampled) {
    // The b-th finite value (the rules skip NaN, which the API sends as null).
    let seen = 0;
    for (let i = 0; i < s.step.length; i++) {
      if (s.value[i] === null) continue;
      if (++seen === b) return s.step[i];
    }
    return null;
  }
  if (b > s.total) return null;
  const first = s.step[0];
  const last = s.step[s.step.length - 1];
  return s.total <= 1 ? first : first + ((b - 1) / (s.total - 1)) * (last - first);
}

/** The x of `step` on a curve whose points are `steps` → `xs` (the value nearest at or after
 * the step, else the last one); the step itself when x is the step. */
export function xAtStep(step: number, steps: number[], xs: ((number | null)[]) | null): number | null {
  if (!xs) return step;
  for (let i = 0; i < steps.length; i++) if (steps[i] >= step) return xs[i] ?? null;
  return steps.length ? (xs[steps.length - 1] ?? null) : null;
}

/** The label of a rung line: "band 4" for hyperband, "epoch 3" with a step key, else
 * "rung 2". */
export function rungLabel(mark: StopMark): string {
  const r = Number.isInteger(mark.rung) ? String(mark.rung) : mark.rung.toPrecision(3);
  return mark.rule === "hyperband" ? `band ${r}` : mark.stepKey ? `${mark.stepKey} ${r}` : `rung ${r}`;
}

/** At most `cap` of `ids`, spread evenly over the list (every one when there are fewer). */
export function spread<T>(ids: T[], cap: number): T[] {
  if (ids.length <= cap) return ids;
  const out: T[] = [];
  for (let k = 0; k < cap; k++) out.push(ids[Math.floor((k * ids.length) / cap)]);
  return out;
}
