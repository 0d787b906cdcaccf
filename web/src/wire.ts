// The hyperdial API's types, generated from the Rust definitions (crates/wire).
// Do not edit: refresh with `UPDATE_WIRE=1 cargo test -p hyperdial-server --test generated`.

/** Any JSON value (configs, parameters, summaries). */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** The answer to `POST /api/v1/agents` (`201`). */
export interface AgentRegistered {
  /** The agent's id, to send with claims. */
  id: string;
}

/** One varying parameter of a sweep. */
export interface Axis {
  /** Dotted parameter name. */
  name: string;
  /** Its scale. */
  kind: AxisKind;
  /**
   * The listed values of a `values` parameter (on a `category` axis; a list of three or
   * more distinct numbers is drawn on a `linear` or `log` axis, as the search orders it);
   * `null` otherwise.
   */
  values: JsonValue[] | null;
  /** Smallest value of a bounded numeric parameter. */
  min: number | null;
  /** Largest value of a bounded numeric parameter. */
  max: number | null;
  /** The distribution's name in the config (`log_uniform_values`, ...). */
  distribution: string;
}

/**
 * How a parameter is drawn on an axis (and enters the importance model): a numeric `values`
 * list is `log` when geometric and `linear` otherwise, as the search encodes it.
 */
export type AxisKind = "linear" | "log" | "category";

/** The best run of a sweep so far. */
export interface BestRef {
  /** Run id. */
  run: string;
  /** Its number in the sweep. */
  number: number | null;
  /** Its sweep metric. */
  value: number | null;
}

/** Where a sweep with a `budget` stands. */
export interface BudgetStatus {
  /** Seconds of `wall_time` left (≥ 0); `null` without that limit. */
  wall_time_left_s: number | null;
  /** Run-hours left (≥ 0); `null` without that limit. */
  run_hours_left: number | null;
  /** Finished runs since the last improvement beyond `min_delta`. */
  runs_since_improvement: number;
  /** Seconds since the last improvement (since creation when none). */
  since_improvement_s: number;
  /**
   * When the first limit is expected to be reached, ms since the epoch: wall time exactly,
   * run-hours at the rate spent so far, stagnation as if nothing improves again at the
   * rate runs finished so far; `null` when it cannot be estimated yet or the sweep is
   * over.
   */
  estimated_end_ms: number | null;
  /** The limit that estimate reaches first. */
  first_limit: EndReason | null;
  /**
   * The smallest improvement that counts for `stagnation` now, in metric units: the
   * configured `min_delta`, or with `min_delta: noise` the measured seed noise (0 until
   * known); `null` without `stagnation`.
   */
  min_delta: number | null;
}

/** `POST /api/v1/sweeps/{id}/claim` (the body may be empty). */
export interface ClaimRequest {
  /** The claiming agent's id. */
  agent?: string | null;
  /**
   * Long poll: when nothing can start now, how long the server may hold the claim open,
   * in milliseconds, and answer as soon as a run can start or the sweep is over, instead
   * of answering `204` at once. At most 30000 (larger values are cut to it); absent or
   * `0`: no wait. A `204` after such a wait carries the header `x-hyperdial-waited-ms`.
   */
  wait_ms?: number | null;
  /**
   * End a run of this sweep first, as `POST /api/v1/runs/{id}/finish` would (an ask/tell
   * client telling its last trial and asking for the next in one request). The finish is
   * applied before the claim; when it is refused (unknown run, a run of another sweep, a
   * crashed run, a bad body) the request answers that error and claims nothing. Any
   * claim answer (`200`, `204`, `410`) means the finish was applied.
   */
  tell?: Tell | null;
  /**
   * Idempotency key: a name the client chose for this claim, fresh for each claim and the
   * same on every retry of it (1 to 64 characters, [`MAX_CLAIM_KEY_CHARS`], of `A-Z a-z
   * 0-9 - _ . :`; anything else is a `400`). The run a claim hands out is stored with its key, in
   * the same commit; a request whose key already claimed a run of this sweep answers that
   * run again (`200`, the same id, parameters and number) while it has not ended (its
   * `tell` was stored before or with that claim, and is not stored twice); once that run
   * has ended it answers `204` at once, without waiting (claim again with a new key). So a
   * claim whose answer was lost (a server killed after the commit, a dropped connection)
   * and is sent again gets its run, not a second one. Without a key every claim is new.
   */
  claim_key?: string | null;
}

/**
 * `PUT /api/v1/runs/{id}/config`: the script's own config (its defaults), nested, merged into
 * the run's; a sweep run's values stay on top.
 */
export type ConfigUpdate = Record<string, JsonValue>;

/**
 * `POST /api/v1/runs`: a run outside any sweep (`hyperdial run`, the Python client). The
 * run starts `running`.
 */
export interface CreateRun {
  /** Project; `default` when left out. */
  project?: string | null;
  /** Display name. */
  name?: string | null;
  /** The run's config, nested (a JSON object; at most 10,000 values once flattened). */
  config?: JsonValue;
  /** The command line (at most 10,000 items). */
  argv?: string[] | null;
  /** Host the run executes on. */
  host?: string | null;
  /** Git state of the working directory. */
  git?: GitInfo | null;
  /**
   * The run's id, chosen so that a later process can resume the run (W&B's
   * `wandb.init(id=...)`): 1 to 64 characters of `A-Z`, `a-z`, `0-9`, `_` and `-`. Left
   * out: the server picks one.
   */
  id?: string | null;
  /**
   * What to do when a run with `id` exists; needs `id`. Left out: as
   * [`Resume::Never`].
   */
  resume?: Resume | null;
  /**
   * When the run started, in ms since the Unix epoch, for a run recorded offline and
   * uploaded later (`hyperdial sync`): a new run is dated from it when it is earlier than
   * now (a time in the future is ignored). Left out: now. A resumed run keeps its start.
   */
  started_ms?: number | null;
}

/** `POST /api/v1/sweeps`: create a sweep from a config, or resume an unfinished one. */
export interface CreateSweep {
  /** The sweep config as written (YAML or JSON text); give it or `config`. */
  source?: string;
  /**
   * The sweep config as a JSON object, for a client that holds it as data (a dict) rather
   * than as text; give it or `source`. Its mistakes are reported by key path
   * (`parameters.lr.min`), without file, line or column: the caller wrote no text. The
   * sweep keeps it as `source`, written as indented JSON.
   */
  config?: Record<string, JsonValue> | null;
  /** Project; `default` when left out. */
  project?: string | null;
  /** The file the config came from, for messages. */
  file?: string | null;
  /**
   * Return the newest unfinished sweep of the same project and config instead of creating
   * one (answer `200` with `resumed: true`).
   */
  resume?: boolean;
  /** With `resume`: when no unfinished sweep matches, return the newest finished one. */
  resume_finished?: boolean;
  /** The sweep's random seed; drawn when left out. */
  seed?: number | null;
}

/** The answer to `POST /api/v1/sweeps`: the sweep (`201` created, `200` resumed). */
export interface CreatedSweep {
  /** Id. */
  id: string;
  /** Project name. */
  project: string;
  /** Display name (the config's `name`). */
  name: string | null;
  /** Where the sweep is in its life. */
  state: SweepState;
  /** Search method: `grid`, `random`, `sobol`, `tpe`, `bayes`. */
  method: string;
  /** The validated config (`null` if it no longer validates). */
  config: JsonValue;
  /** The config as written. */
  source: string;
  /** The file it came from. */
  file: string | null;
  /** The sweep's random seed. */
  seed: number;
  /** Created, ms since the epoch. */
  created_ms: number;
  /** Last changed, ms since the epoch. */
  updated_ms: number;
  /** The sweep metric, if the config names one. */
  metric: MetricRef | null;
  /** Runs by state. */
  counts: RunCounts;
  /** All runs, retries included. */
  total_runs: number;
  /** Runs that are retries of another run. */
  retries: number;
  /** Failed and crashed runs not retried yet. */
  retryable: number;
  /**
   * Reopened by a retry or a repeat after it finished: it runs its queued runs, then
   * finishes again.
   */
  retries_only: boolean;
  /** Time spent in runs, summed, in ms. */
  compute_ms: number;
  /** The best run with the metric so far. */
  best: BestRef | null;
  /** Markdown notes. */
  notes: string;
  /**
   * What ended the sweep on purpose (`stop`, `cancel`, a budget limit); `null` when it ran
   * out of runs, reached its target, or is not over.
   */
  end_reason: EndReason | null;
  /** Where the sweep stands against its `budget`; `null` without one. */
  budget: BudgetStatus | null;
  /**
   * How many runs the sweep makes before it ends by itself (W&B's `expected_run_count`):
   * the configurations of a finite space it runs each once, at most `run_cap`; `run_cap`
   * otherwise; `null` when nothing ends it (retries and repeats not counted).
   */
  expected_runs: number | null;
  /** Whether an existing sweep was returned instead of a new one. */
  resumed: boolean;
  /** Warnings about the config. */
  warnings: Diagnostic[];
}

/** What a run's clients reported they could not deliver. */
export interface DeliveryRecord {
  /** Points still missing (reported missing, not recovered). */
  missing: number;
  /** Points reported missing, in total. */
  reported_missing: number;
  /** Points recovered since. */
  recovered: number;
  /** Local files holding the missing points, as `host:path`. */
  files: string[];
}

/**
 * `POST /api/v1/runs/{id}/delivery`: metric points a client could not deliver, or
 * recovered later; the counts add up.
 */
export interface DeliveryRequest {
  /** Points that could not be delivered (kept in `files`, or dropped). */
  missing?: number;
  /** Points uploaded later (`hyperdial sync`). */
  recovered?: number;
  /**
   * Local files holding the missing points, as `host:path` (at most 16, each 1 to 4096
   * characters).
   */
  files?: string[];
}

/** One finding about a sweep config. */
export interface Diagnostic {
  /** Error or warning. */
  severity: Severity;
  /** Dotted key path of the offending value, e.g. `parameters.lr.min`; empty for the root. */
  path: string;
  /** Where in the source the offending key or value starts. */
  location: Location | null;
  /** What is wrong. */
  message: string;
  /** How to fix it; absent when there is no clear fix. */
  hint?: string | null;
}

/** The body of a successful answer that has nothing to say: `{}`. */
export type Empty = Record<string, JsonValue>;

/**
 * Why the server, not the run's agent or client, ended or changed a run, as one word (the
 * `end_cause` of a run; `null` for a run its reporter ended). Stored beside the run's `error`,
 * which says the same in words, and the only thing the server's decisions about such a run
 * read: a late end takes back a run crashed for `agent_silent` or `agent_gone` only, and a run
 * outside a sweep crashed for `run_silent` runs again when it is heard from. A client can
 * send any text as a run's error; a cause is set by the server alone.
 */
export type EndCause = "agent_silent" | "agent_gone" | "client_silent" | "run_silent" | "late_end_pending" | "retry_withdrawn" | "retry_superseded";

/** What ended a sweep on purpose. */
export type EndReason = "stop" | "cancel" | "wall_time" | "run_hours" | "stagnation" | "run_cap" | "exhausted" | "target";

/** The body of every error answer (4xx and 5xx). */
export interface ErrorBody {
  /** What went wrong and how to fix it. */
  error: string;
  /** Storage faults, bugs and the refusals a client acts on: which one. */
  code?: ErrorCode | null;
  /** With [`ErrorCode::RunCrashed`]: the run's state. */
  state?: RunState | null;
  /** `413` only: the largest request body accepted, in bytes. */
  limit_bytes?: number | null;
  /** An invalid sweep config only: every finding, errors and warnings. */
  diagnostics?: Diagnostic[] | null;
}

/**
 * What kind of failure an error answer is, in its `code`: storage faults, server bugs, and
 * the refusals a client acts on.
 */
export type ErrorCode = "disk_full" | "read_only" | "io_error" | "busy" | "corrupt" | "unavailable" | "run_crashed" | "run_active" | "storage";

/**
 * `GET /api/v1/sweeps/{id}/estimate`: the model's estimate of the sweep's best
 * configuration among the runs that have a result, so that under a noisy metric the best
 * run a user is told of is not a lucky draw. A Gaussian process (the one `method: bayes`
 * fits, with fitted noise) is fitted to the results; the estimate is the run whose
 * configuration has the best posterior mean, when the model is confident it beats the run
 * with the best value (else that run). Values are in the metric's units.
 */
export interface EstimateAnswer {
  /** The run estimated best. */
  run: Run;
  /** The posterior mean of the metric at its configuration. */
  mean: number;
  /**
   * The posterior standard deviation of that mean (uncertainty about the
   * configuration's true value).
   */
  sd: number;
  /**
   * The fitted standard deviation of one run's value about its configuration's mean
   * (the metric's noise), near the estimate.
   */
  noise_sd: number;
  /** The id of the run with the best observed metric (`GET /api/v1/sweeps/{id}/best`). */
  observed_best: string;
  /** The posterior mean at that run's configuration. */
  observed_best_mean: number;
  /**
   * Whether the estimate is another run than the observed best: only when the model gives
   * its configuration a probability of at least 0.75 of being better than that run's.
   */
  differs: boolean;
  /** That probability, when `differs`; else `null`. */
  p_better: number | null;
  /**
   * How many results the model was fitted to (runs `finished` or `stopped_early` with
   * the metric; at most the best [`MAX_ESTIMATE_RESULTS`] by value).
   */
  results: number;
}

/** One point of a `metrics` event, with the step the server gave it. */
export interface EventPoint {
  /** Step. */
  step: number;
  /** Values by name (`null` for NaN). */
  values: Record<string, JsonValue>;
}

/** Whether an importance answer has enough evidence to rank parameters. */
export type Evidence = "enough" | "too_few_runs" | "no_signal";

/** `GET /api/v1/sweeps/{id}/export?format=json`: every run, one row each. */
export interface Export {
  /** Sweep id. */
  sweep: string;
  /** The runs. */
  runs: ExportRow[];
}

/** One run in `GET /api/v1/sweeps/{id}/export?format=json`. */
export interface ExportRow {
  /** Run id. */
  id: string;
  /** Its number in the sweep. */
  number: number | null;
  /** Its state. */
  state: RunState;
  /** Its display name (`wandb.run.name`, `init(name=...)`), if any. */
  name: string | null;
  /** Its sweep metric. */
  metric: number | null;
  /** Parameters by dotted name. */
  params: Record<string, JsonValue>;
  /**
   * The rest of the run's config by dotted name: what the script set itself (its defaults
   * to `init`, `config.update`), beside the sweep's parameters (the CSV's `config.*`
   * columns).
   */
  config: Record<string, JsonValue>;
  /** Summary values by name. */
  summary: Record<string, JsonValue>;
  /** Exit code of its process. */
  exit_code: number | null;
  /**
   * Why the run ended as it did (the CSV's `error` column): the error of a failed or crashed
   * run, the reason it was stopped early, or that it was cancelled; `null` for a finished
   * run.
   */
  error: string | null;
  /** Host it ran on. */
  host: string | null;
  /** Started, ms since the epoch. */
  started_ms: number | null;
  /** Ended, ms since the epoch. */
  finished_ms: number | null;
  /** Run time in seconds. */
  duration_s: number | null;
  /** The run it retries. */
  retry_of: string | null;
  /** Attempt number of its configuration, from 1. */
  attempt: number;
}

/**
 * `POST /api/v1/runs/{id}/finish` (the body may be empty). Without `state`, exit code 0
 * means `finished` and anything else `failed`; the server decides (a NaN sweep metric fails
 * the run, a stop it asked for wins unless the process completed first).
 */
export interface FinishRequest {
  /**
   * The process's exit code, a 32-bit signed integer as every operating system's is
   * (Windows' unsigned codes as their two's-complement `i32`, as Rust's
   * `ExitStatus::code` gives them); left out when it was killed by a signal or never
   * started. A code outside that range is a 400.
   */
  exit_code?: number | null;
  /** The state to end in (a terminal state). */
  state?: RunState | null;
  /** What went wrong, shown next to the run. */
  error?: string | null;
  /**
   * Values told with the end (what an ask/tell client reports), as one metric point at
   * the run's next step, read as [`MetricPoint::values`] are: stored in the same
   * transaction as the end, so one request does what a metric batch and a finish did.
   * A told sweep metric that is `null` (NaN) fails a run that would have finished.
   * Empty or left out: nothing is logged.
   */
  values?: Record<string, JsonValue>;
  /**
   * When the run ended (ms since the Unix epoch, the sender's clock), for an end delivered
   * late (retried through an outage, or kept in a file while the server was away): the
   * run's end time becomes this when it is more than 2 s before the server's own end time
   * (so a clock a second or two off never moves an end delivered at once) and not before the
   * run started. Left out: now.
   */
  ended_ms?: number | null;
}

/** A run on a sweep's front or on a later layer of it. */
export interface FrontRun {
  /** Run id. */
  run_id: string;
  /** Its number in the sweep. */
  number: number;
  /**
   * Its value of each objective, in the order of [`ParetoFront::objectives`], in metric
   * units as logged (not negated for `maximize`); always finite.
   */
  values: number[];
  /**
   * Its non-dominated layer: 0 on the front (no other run is at least as good in every
   * objective and better in one), 1 on the front of the rest, and so on.
   */
  rank: number;
}

/** The git state of a run's working directory, as sent with a request. */
export interface GitInfo {
  /** The commit checked out (40 hex digits). */
  commit?: string | null;
  /** Whether tracked files had uncommitted changes. */
  dirty?: boolean | null;
}

/** Whether a sweep's metric is to be made small or large. */
export type Goal = "minimize" | "maximize";

/**
 * The answer to `POST /api/v1/runs/{id}/heartbeat`. Read leniently (a missing field is
 * "go on"), since any answer to a heartbeat means the run is alive.
 */
export interface HeartbeatAnswer {
  /** The run must stop. */
  stop: boolean;
  /** Why: `early_terminated`, `cancelled`, ... */
  reason: string | null;
}

/** The first event of a subscription. */
export interface Hello {
  /** The sweep subscribed to; `null` for all. */
  sweep: string | null;
}

/**
 * `GET /api/v1/runs/{id}/history/columns?keys=a,b&after_step=S&limit=N`: a run's whole
 * history, or one page of it, as columns: entry `i` of `time_ms` and of every column belongs
 * to step `steps[i]`.
 */
export interface HistoryColumns {
  /** Run id. */
  run: string;
  /** Its sweep. */
  sweep: string | null;
  /** Every metric name the run logged, sorted. */
  keys: string[];
  /**
   * The metrics asked for in `keys` that the run never logged, in the order asked (empty
   * when every one is known, and without `keys`): their series are empty. A misspelt
   * name shows here rather than as a history without points.
   */
  unknown_keys: string[];
  /**
   * The steps at which at least one of the metrics answered has a value, ascending (above
   * `after_step` when it was given).
   */
  steps: number[];
  /** Latest wall time of each step's values, ms since the epoch. */
  time_ms: number[];
  /**
   * One list per metric, by name, in the order asked (by name without `keys`): the value
   * at each step, `null` where the metric has no value at that step or the value logged
   * was not a finite number (those steps are listed in `non_finite`).
   */
  columns: Record<string, (number | null)[]>;
  /**
   * For each metric that logged NaN or an infinity among these steps, the indexes (into
   * `steps`) where it did; every other `null` of a column is a step without a value.
   */
  non_finite: Record<string, number[]>;
  /**
   * Most steps this answer could hold: the answer's cap of values divided by its number of
   * columns, or the smaller `limit` asked for.
   */
  limit: number;
  /** Whether steps above the last one were left out. */
  truncated: boolean;
  /**
   * When `truncated`, the `after_step` that asks for the next page (the last step of this
   * one); `null` when this answer reaches the run's last step.
   */
  next_after_step: number | null;
}

/** One step of a run's metric history. */
export interface HistoryPoint {
  /** Step. */
  step: number;
  /** Latest wall time of the step's values, ms since the epoch. */
  time_ms: number;
  /** Values by name (`null` for NaN). */
  values: Record<string, JsonValue>;
}

/** `GET /api/v1/sweeps/{id}/importance`. */
export interface Importance {
  /** `random_forest`. */
  method: string;
  /** Trees in the forest (all sub-forests together). */
  trees: number;
  /** Sub-forests the trees are split into, for the standard deviations. */
  sub_forests: number;
  /** The run states whose runs were used (default `finished` only). */
  states: RunState[];
  /** Runs in those states with the metric. */
  runs: number;
  /** Runs the forest was grown on. */
  forest_runs: number;
  /** Fewest runs for importances to be given. */
  min_runs: number;
  /** Whether importances are given, and if not why. */
  evidence: Evidence;
  /** The metric's goal. */
  goal: Goal;
  /** Out-of-bag R² of the forest. */
  oob_r2: number | null;
  /** Parameters, most important first. */
  params: ParamImportance[];
  /** The metric's name. */
  metric: string | null;
  /** Time the computation took, in ms. */
  compute_ms: number;
  /** Whether the answer came from the cache. */
  cached: boolean;
}

/** A position in a source text, 1-based. */
export interface Location {
  /** Line, from 1. */
  line: number;
  /** Column in characters, from 1. */
  column: number;
}

/** One step's metric values, as posted to `POST /api/v1/runs/{id}/metrics`. */
export interface MetricPoint {
  /**
   * The step (0 to 2^53 − 1); left out: the run's next step, counted by the server. Points sent with
   * a step are idempotent (one value per run, metric and step).
   */
  step?: number | null;
  /** When the values were reported, ms since the epoch; left out: when they arrive. */
  time_ms?: number | null;
  /**
   * Metric name (1 to 256 bytes) → number, `null` for a non-finite value; `true`/`false`
   * are read as 1/0. At most 10,000 values.
   */
  values: Record<string, JsonValue>;
}

/** The sweep metric and its goal. */
export interface MetricRef {
  /** The metric's name as logged. */
  name: string;
  /** Whether smaller or larger is better. */
  goal: Goal | null;
}

/** The answer to `POST /api/v1/runs/{id}/metrics`. */
export interface MetricsAnswer {
  /** Values stored. */
  accepted: number;
  /** The run must stop (early termination, or it was cancelled). */
  stop: boolean;
  /** Why it must stop. */
  reason: string | null;
}

/** A `metrics` event: a batch was stored. */
export interface MetricsEvent {
  /** The run after the batch. */
  run: RunBrief;
  /** The batch's newest points (at most 100). */
  points: EventPoint[];
  /** Whether older points of the batch were left out. */
  truncated: boolean;
}

/** `POST /api/v1/runs/{id}/metrics`: a batch of points (at most 100,000). */
export interface MetricsRequest {
  /** The points, in order. */
  points: MetricPoint[];
}

/** Best configuration against the runner-up: Welch's two-sample t-test on their repeats. */
export interface NoiseComparison {
  /** The best configuration (by mean), as its repeated run's id. */
  best: string;
  /** The runner-up. */
  runner_up: string;
  /** Best mean minus runner-up mean, in metric units. */
  difference: number;
  /** Welch's t statistic. */
  t: number;
  /** Welch–Satterthwaite degrees of freedom. */
  df: number;
  /** Two-sided p-value. */
  p_value: number;
  /** The threshold: distinguishable when `p_value` is below it. */
  alpha: number;
  /** Whether the best configuration is distinguishable from the runner-up. */
  distinguishable: boolean;
}

/** One configuration of a sweep's seed-noise report: its repeats' metric values. */
export interface NoiseConfiguration {
  /** The run whose configuration was repeated. */
  run: string;
  /** Its number in the sweep. */
  number: number | null;
  /** Its parameters by dotted name (the seed parameter, if any, as that run had it). */
  params: Record<string, JsonValue>;
  /** The metric of that run (not in the statistics below: it was picked for scoring well). */
  original: number | null;
  /** Repeats of it that ended `finished` with a finite metric. */
  count: number;
  /** Their seeds, in run order. */
  seeds: number[];
  /** Their metric values, in run order. */
  values: number[];
  /** Mean of `values`; `null` when there are none. */
  mean: number | null;
  /** Sample standard deviation of `values` (n − 1); `null` below 2 values. */
  std: number | null;
  /** Repeats still queued or running. */
  pending: number;
}

/**
 * `GET /api/v1/sweeps/{id}/noise`: how much the metric moves when only the seed changes,
 * against how much it moves between configurations.
 */
export interface NoiseReport {
  /** Sweep id. */
  sweep: string;
  /** The sweep metric's name; `null` when the sweep has none. */
  metric: string | null;
  /** Its goal. */
  goal: Goal;
  /** The repeated configurations, best mean first (those without finished repeats last). */
  configurations: NoiseConfiguration[];
  /**
   * The seed-noise level: the pooled within-configuration standard deviation of the
   * repeats, in metric units; `null` until some configuration has 2 finished repeats.
   */
  seed_noise: number | null;
  /** Its degrees of freedom: Σ (count − 1) over the configurations. */
  seed_noise_df: number;
  /**
   * The spread across configurations: the standard deviation of the configuration means
   * of the sweep's finished runs (a repeated configuration counts once, with the mean of
   * its repeats); `null` below 2 configurations.
   */
  spread: number | null;
  /** How many configurations `spread` is over. */
  spread_configurations: number;
  /** `seed_noise / spread`; `null` when either is unknown or the spread is 0. */
  ratio: number | null;
  /** Best against runner-up; `null` until two configurations have 2 finished repeats each. */
  comparison: NoiseComparison | null;
}

/** The answer to `PUT /api/v1/sweeps/{id}/notes` (also the payload of its `sweep` event). */
export interface Notes {
  /** Sweep id. */
  id: string;
  /** Markdown. */
  notes: string;
}

/** `PUT /api/v1/sweeps/{id}/notes`: the sweep's new markdown notes (at most 64 KiB). */
export interface NotesRequest {
  /** Markdown. */
  notes: string;
}

/** One objective of a sweep, in the config's order. */
export interface ObjectiveSpec {
  /** The metric's name as logged. */
  name: string;
  /** Whether smaller or larger is better. */
  goal: Goal;
}

/** `POST /api/v1/runs/{id}/output`: captured output to append. */
export interface OutputRequest {
  /** The stream it came from. */
  stream: OutputStream;
  /** The text. */
  text: string;
}

/** Which output stream of a process a text came from. */
export type OutputStream = "stdout" | "stderr";

/**
 * `GET /api/v1/runs/{id}/history/packed?keys=a,b&after_step=S&limit=N`: the same as
 * [`HistoryColumns`], with every list packed as binary numbers in base64 (RFC 4648, with
 * padding): a client decodes it without parsing a decimal number per value, several times
 * faster than the JSON lists.
 */
export interface PackedHistory {
  /** Run id. */
  run: string;
  /** Its sweep. */
  sweep: string | null;
  /** Every metric name the run logged, sorted. */
  keys: string[];
  /**
   * The metrics asked for in `keys` that the run never logged, in the order asked (empty
   * when every one is known, and without `keys`): their series are empty. A misspelt
   * name shows here rather than as a history without points.
   */
  unknown_keys: string[];
  /** Number of steps in this answer (the length of every unpacked list). */
  count: number;
  /**
   * The steps, as in [`HistoryColumns`]: signed 64-bit integers, little-endian, 8 bytes
   * each, in base64.
   */
  steps: string;
  /** Wall times, ms since the epoch: signed 64-bit integers, little-endian, in base64. */
  time_ms: string;
  /**
   * One column per metric, by name, in the order asked (by name without `keys`): IEEE 754
   * binary64 values, little-endian, 8 bytes per step, in base64. A step where the metric
   * has no value, or where the value logged was not finite, is a NaN (those listed in
   * `non_finite`; every other NaN is a gap).
   */
  columns: Record<string, string>;
  /**
   * As in [`HistoryColumns`]: for each metric that logged NaN or an infinity among these
   * steps, the indexes where it did.
   */
  non_finite: Record<string, number[]>;
  /** Most steps this answer could hold. */
  limit: number;
  /** Whether steps above the last one were left out. */
  truncated: boolean;
  /** When `truncated`, the `after_step` that asks for the next page; else `null`. */
  next_after_step: number | null;
}

/** One parameter's importance for the sweep metric. */
export interface ParamImportance {
  /** Dotted parameter name. */
  name: string;
  /** Its scale. */
  kind: AxisKind;
  /** Share of the forest's impurity decrease (0 to 1); `null` unless `evidence` is `enough`. */
  importance: number | null;
  /**
   * Standard deviation of that share across the sub-forests (each grown on its own bootstrap
   * samples); `null` with `importance`.
   */
  importance_sd: number | null;
  /**
   * Main effect: the share of the forest's prediction variance explained by this parameter
   * alone (0 to 1; a fANOVA-style first-order term, which sees U-shaped effects that a
   * correlation misses); `null` unless `evidence` is `enough`.
   */
  main_effect: number | null;
  /** Standard deviation of the main effect across the sub-forests. */
  main_effect_sd: number | null;
  /** Pearson correlation with the metric; `null` for categories or too few runs. */
  pearson: number | null;
  /** Spearman rank correlation with the metric. */
  spearman: number | null;
}

/**
 * `GET /api/v1/sweeps/{id}/front`: the sweep's runs sorted into non-dominated layers.
 *
 * Only runs that ended `finished` or `stopped_early` with a finite value of every objective
 * are listed, sorted by rank, then by number. A single-objective sweep has one objective;
 * its front is the best run (every run tied for the best value).
 */
export interface ParetoFront {
  /** The objectives, in the config's order. */
  objectives: ObjectiveSpec[];
  /** The runs, by rank, then number. */
  runs: FrontRun[];
}

/** The runs of a sweep, column by column (entry `i` of every list is run `i`). */
export interface PointColumns {
  /** Run ids. */
  id: string[];
  /** Run numbers. */
  number: (number | null)[];
  /** Run states. */
  state: RunState[];
  /** Sweep metric values. */
  metric: (number | null)[];
  /** Created, ms since the epoch. */
  created_ms: number[];
  /** Ended, ms since the epoch. */
  finished_ms: (number | null)[];
  /** Run time in ms. */
  runtime_ms: (number | null)[];
  /** Parameter name → its value in every run (`null` where a run lacks it). */
  params: Record<string, JsonValue[]>;
}

/**
 * One run to queue: the configuration of run `repeat_of` (a run of the same sweep) with
 * `params` laid over it, given `seed`.
 */
export interface QueueRun {
  /** The run whose configuration this one repeats. */
  repeat_of: string;
  /**
   * Parameters by dotted name laid over that run's (each must be a parameter of the
   * sweep); typically the seed parameter set to `seed`. Empty: the same parameters.
   */
  params?: Record<string, JsonValue>;
  /** The seed; the agent sets `HYPERDIAL_SEED` to it for the run's process. */
  seed: number;
}

/**
 * `POST /api/v1/sweeps/{id}/runs`: queue runs with given parameters and seeds (at most
 * [`MAX_QUEUED_RUNS`]). Agents claim queued runs before the search suggests new ones; a
 * finished sweep runs again until they are done.
 */
export interface QueueRunsRequest {
  /** The runs, queued in this order. */
  runs: QueueRun[];
}

/** The answer to `POST /api/v1/sweeps/{id}/runs`. */
export interface QueuedRuns {
  /** The runs queued (state `queued`), in the order asked. */
  runs: Run[];
  /** The sweep afterwards. */
  sweep: Sweep;
}

/** `POST /api/v1/agents`: register an agent. */
export interface RegisterAgent {
  /** The sweep it works for. */
  sweep?: string | null;
  /** Its host name. */
  host?: string | null;
  /** Its process id. */
  pid?: number | null;
  /**
   * Its process key (`linux:BOOT_ID:PID_NS:PID:START_TIME`), so a server on the same
   * machine can tell at once when the process is gone.
   */
  process?: string | null;
}

/**
 * How `POST /api/v1/runs` treats an `id` that is taken (W&B's `resume` argument of
 * `wandb.init`). A resumed run is reopened (`running`, its end cleared) with its history,
 * summary and config kept, answered `200` with the header `x-hyperdial-resumed: true`; a
 * created one is answered `201`. Only a run outside any sweep can be resumed.
 */
export type Resume = "never" | "allow" | "must";

/** Sent instead of the events a slow subscriber missed: reload what is shown. */
export interface Resync {
  /** Events missed. */
  missed: number;
}

/** A retry queued. */
export interface Retried {
  /** The run retried (the latest attempt of its configuration). */
  run: string;
  /** The queued retry. */
  retry: Run;
}

/** The answer to `POST /api/v1/sweeps/{id}/retry`. */
export interface RetryAnswer {
  /** Retries queued. */
  retried: Retried[];
  /** Runs not retried, with the reason. */
  skipped: Skipped[];
  /** The sweep afterwards. */
  sweep: Sweep;
}

/**
 * `POST /api/v1/sweeps/{id}/retry`; both lists empty (or no body): the failed and crashed
 * runs.
 */
export interface RetryRequest {
  /** Retry the latest attempts in these states (terminal states only). */
  states?: RunState[];
  /** Retry these runs (or their latest attempts); at most 10,000. */
  runs?: string[];
}

/** A run, as `GET /api/v1/runs/{id}` and most run answers give it. */
export interface Run {
  /** Id. */
  id: string;
  /** Its sweep; `null` for a run outside any sweep. */
  sweep: string | null;
  /** Project name. */
  project: string;
  /** Its number in the sweep, from 1. */
  number: number | null;
  /** Display name. */
  name: string | null;
  /** Where the run is in its life. */
  state: RunState;
  /** Config, nested. */
  config: JsonValue;
  /** Parameters by dotted name. */
  params: Record<string, JsonValue>;
  /** How the configuration was chosen (strategy, seed, grid index, diagnostics). */
  suggestion: JsonValue;
  /** Agent running it. */
  agent: string | null;
  /** Host it runs on. */
  host: string | null;
  /** The command line. */
  argv: string[] | null;
  /** Exit code of its process. */
  exit_code: number | null;
  /** Why it failed, crashed or was stopped, in words. */
  error: string | null;
  /**
   * Why the server ended or changed it, when it did (its agent or client went silent, a
   * late end, a retry that gave way); `null` for a run its reporter ended. Read this, not
   * `error`, to tell such runs apart.
   */
  end_cause: EndCause | null;
  /** The sweep metric (the best value of its history and summary). */
  metric: number | null;
  /** Last value of every metric, overlaid by summary values set explicitly. */
  summary: Record<string, JsonValue>;
  /** Steps recorded (the next automatic step). */
  steps: number;
  /** Created, ms since the epoch. */
  created_ms: number;
  /** Started, ms since the epoch. */
  started_ms: number | null;
  /** Last sign of life, ms since the epoch. */
  heartbeat_ms: number | null;
  /** Ended, ms since the epoch. */
  finished_ms: number | null;
  /** Git state of its working directory. */
  git: RunGit;
  /** Asked to stop. */
  stop_requested: boolean;
  /** Why: `early_terminated`, `cancelled`, ... */
  stop_reason: string | null;
  /** Details of an early-termination stop (rule, rung, value, threshold); `null` otherwise. */
  stop_info: JsonValue;
  /** The run it retries. */
  retry_of: string | null;
  /** Attempt number of its configuration: 1 for a first run, 2 for its first retry, ... */
  attempt: number;
  /** Metric points reported undelivered; `null` when none were. */
  delivery: DeliveryRecord | null;
  /**
   * The run whose configuration this one repeats: with another seed (`hyperdial repeat`),
   * or as a retry that gave way when that run delivered its end late (its error says so);
   * `null` for other runs.
   */
  repeat_of: string | null;
  /**
   * The seed a repeat was given (also in `HYPERDIAL_SEED` for its process); `null` for
   * other runs.
   */
  seed: number | null;
  /**
   * Its metric history, step by step: only in `GET /api/v1/runs/{id}` (absent with
   * `?history=false`).
   */
  history?: HistoryPoint[] | null;
}

/** An answer holding one run: a claim (`200`), `GET /api/v1/sweeps/{id}/best`. */
export interface RunAnswer {
  /** The run. */
  run: Run;
}

/** The compact run of `run_created`, `run_updated`, `run_finished` and `metrics` events. */
export interface RunBrief {
  /** Id. */
  id: string;
  /** Its sweep. */
  sweep: string | null;
  /** Its number in the sweep. */
  number: number | null;
  /** Display name. */
  name: string | null;
  /** Its state. */
  state: RunState;
  /** Parameters by dotted name. */
  params: Record<string, JsonValue>;
  /** The sweep metric. */
  metric: number | null;
  /** Last value of every metric, overlaid by explicit summary values. */
  summary: Record<string, JsonValue>;
  /** Steps recorded. */
  steps: number;
  /** Host it runs on. */
  host: string | null;
  /** Exit code of its process. */
  exit_code: number | null;
  /** Created, ms since the epoch. */
  created_ms: number;
  /** Started, ms since the epoch. */
  started_ms: number | null;
  /** Last sign of life, ms since the epoch. */
  heartbeat_ms: number | null;
  /** Ended, ms since the epoch. */
  finished_ms: number | null;
}

/** How many runs of a sweep are in each state (every state is present, `0` when none). */
export interface RunCounts {
  /** Runs waiting for an agent. */
  queued: number;
  /** Runs in progress. */
  running: number;
  /** Runs that exited 0. */
  finished: number;
  /** Runs that exited non-zero. */
  failed: number;
  /** Runs whose agent or process went away. */
  crashed: number;
  /** Runs stopped by the early-termination rule. */
  stopped_early: number;
  /** Runs cancelled. */
  cancelled: number;
}

/** A run's git state in answers. */
export interface RunGit {
  /** The commit checked out. */
  commit: string | null;
  /** Whether tracked files had uncommitted changes. */
  dirty: boolean | null;
}

/** `GET /api/v1/runs/{id}/history?keys=a,b&max_points=N`. */
export interface RunHistory {
  /** Run id. */
  run: string;
  /** Its sweep. */
  sweep: string | null;
  /** Every metric name the run logged. */
  keys: string[];
  /**
   * The metrics asked for in `keys` that the run never logged, in the order asked (empty
   * when every one is known, and without `keys`): their series are empty. A misspelt
   * name shows here rather than as a history without points.
   */
  unknown_keys: string[];
  /** Most points per series in this answer. */
  max_points: number;
  /** The series asked for, by metric name (each a [`Series`]). */
  series: Record<string, Series>;
}

/**
 * `PUT /api/v1/runs/{id}/name`: the name the script gave its run (`hyperdial.init(name=…)`
 * under an agent or `hyperdial run`, which created the run before the script named it).
 */
export interface RunName {
  /** The run's name; empty clears it. */
  name: string;
}

/** Where a run is in its life: `queued` (a retry waiting for an agent), `running`, then one of the terminal states `finished` (exit 0), `failed` (exit non-zero), `crashed` (the agent, its host or the process went away), `stopped_early` (by the sweep's early-termination rule) or `cancelled`. */
export type RunState = "queued" | "running" | "finished" | "failed" | "crashed" | "stopped_early" | "cancelled";

/** `GET /api/v1/runs`: a sorted, filtered page of runs. */
export interface RunsPage {
  /** The runs of the page. */
  runs: Run[];
  /** How many runs match, in all pages. */
  total: number;
  /** Index of the page's first run among the matches. */
  offset: number;
  /** Most runs in a page. */
  limit: number;
}

/** One metric series of a run, downsampled (entry `i` of every list is point `i`). */
export interface Series {
  /** Steps. */
  step: number[];
  /** Values (`null` for NaN). */
  value: (number | null)[];
  /** Wall times, ms since the epoch. */
  time_ms: number[];
  /** Points of the whole series. */
  total: number;
  /** Whether points were left out. */
  downsampled: boolean;
}

/** How bad a finding is. */
export type Severity = "warning" | "error";

/** A run named or chosen that was not retried. */
export interface Skipped {
  /** Run id. */
  run: string;
  /** Why not. */
  reason: string;
}

/** `POST /api/v1/runs/{id}/started`: the argv a run's process was started with. */
export interface Started {
  /** The command line (at most 10,000 items). */
  argv: string[];
  /** The process id (informational). */
  pid?: number | null;
  /** Git state of the working directory. */
  git?: GitInfo | null;
}

/**
 * `PUT /api/v1/runs/{id}/summary`: summary values to set, by name (1 to 1024 bytes; at most
 * 10,000); they win over the last logged values.
 */
export type SummaryUpdate = Record<string, JsonValue>;

/** A sweep, as `GET /api/v1/sweeps/{id}` and every sweep action answer it. */
export interface Sweep {
  /** Id. */
  id: string;
  /** Project name. */
  project: string;
  /** Display name (the config's `name`). */
  name: string | null;
  /** Where the sweep is in its life. */
  state: SweepState;
  /** Search method: `grid`, `random`, `sobol`, `tpe`, `bayes`. */
  method: string;
  /** The validated config (`null` if it no longer validates). */
  config: JsonValue;
  /** The config as written. */
  source: string;
  /** The file it came from. */
  file: string | null;
  /** The sweep's random seed. */
  seed: number;
  /** Created, ms since the epoch. */
  created_ms: number;
  /** Last changed, ms since the epoch. */
  updated_ms: number;
  /** The sweep metric, if the config names one. */
  metric: MetricRef | null;
  /** Runs by state. */
  counts: RunCounts;
  /** All runs, retries included. */
  total_runs: number;
  /** Runs that are retries of another run. */
  retries: number;
  /** Failed and crashed runs not retried yet. */
  retryable: number;
  /**
   * Reopened by a retry or a repeat after it finished: it runs its queued runs, then
   * finishes again.
   */
  retries_only: boolean;
  /** Time spent in runs, summed, in ms. */
  compute_ms: number;
  /** The best run with the metric so far. */
  best: BestRef | null;
  /** Markdown notes. */
  notes: string;
  /**
   * What ended the sweep on purpose (`stop`, `cancel`, a budget limit); `null` when it ran
   * out of runs, reached its target, or is not over.
   */
  end_reason: EndReason | null;
  /** Where the sweep stands against its `budget`; `null` without one. */
  budget: BudgetStatus | null;
  /**
   * How many runs the sweep makes before it ends by itself (W&B's `expected_run_count`):
   * the configurations of a finite space it runs each once, at most `run_cap`; `run_cap`
   * otherwise; `null` when nothing ends it (retries and repeats not counted).
   */
  expected_runs: number | null;
}

/** `GET /api/v1/sweeps`: sweeps, newest first. */
export interface SweepList {
  /** The sweeps. */
  sweeps: Sweep[];
}

/** The `410` answer to a claim: the sweep is over and hands out no more runs. */
export interface SweepOver {
  /** `sweep ID is STATE`. */
  error: string;
  /** The sweep's state. */
  state: SweepState;
}

/** `GET /api/v1/sweeps/{id}/points`: every run's parameters, metric and times, for charts. */
export interface SweepPoints {
  /** Sweep id. */
  sweep: string;
  /** The sweep metric. */
  metric: MetricRef | null;
  /** The parameters that vary, in config order. */
  axes: Axis[];
  /** Number of runs. */
  count: number;
  /** The runs. */
  runs: PointColumns;
}

/** Where a sweep is in its life: `running` (handing out runs), `paused` (runs in flight go on, no new ones), `finished` (its space, run cap or target is done, or it was stopped) or `cancelled`. A finished sweep runs again to work off retries it owes. */
export type SweepState = "running" | "paused" | "finished" | "cancelled";

/** A run ended with a claim ([`ClaimRequest::tell`]). */
export interface Tell {
  /** The run's id (a run of the claimed sweep). */
  run: string;
  /** How it ends, as the finish route takes it. */
  finish: FinishRequest;
}

/** Every run state, in lifecycle order. */
export const RUN_STATES: readonly RunState[] = ["queued", "running", "finished", "failed", "crashed", "stopped_early", "cancelled"];

/** The states a run can end in. */
export const TERMINAL_RUN_STATES: readonly RunState[] = ["finished", "failed", "crashed", "stopped_early", "cancelled"];

/** Every sweep state, in lifecycle order. */
export const SWEEP_STATES: readonly SweepState[] = ["running", "paused", "finished", "cancelled"];
