//! The progress display of `tune` and `agent`: run i of N, the current configuration, the
//! last metric and the best so far. A live bar on a terminal; plain lines otherwise (logs, CI).

use std::collections::HashMap;
use std::io::IsTerminal;

use hyperdial_agent::{Event, RunState};
use hyperdial_space::command::python_str;
use hyperdial_space::Goal;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

/// Tracks events from one or more agents and renders them.
pub struct Progress {
    bar: Option<ProgressBar>,
    metric: Option<(String, Goal)>,
    best: Option<(f64, i64)>,
    numbers: HashMap<String, i64>,
    done: u64,
    total: Option<u64>,
    /// Runs ended, by state.
    pub states: HashMap<RunState, u64>,
    /// Messages already shown (several agents report the same news).
    shown: std::collections::HashSet<String>,
    /// A summary saying how the sweep ended follows (`tune`), so the agents' "sweep is over"
    /// news is not shown.
    pub summary_follows: bool,
    /// The best shown is the sweep's, set with [`Progress::set_best`] from the server, not
    /// the best of the runs this process saw end.
    pub best_from_sweep: bool,
    /// The objectives of a multi-objective sweep (empty otherwise): each run's line shows
    /// every one of them, and no single best is shown.
    pub objectives: Vec<String>,
    /// The values each run in flight reported last, for the objectives of its end line.
    last: HashMap<String, serde_json::Map<String, Value>>,
    /// Say in a line when no run can start (`agent`: its log would otherwise fall silent
    /// while the sweep is paused); once per stretch of waiting, as the agent reports it.
    pub say_waiting: bool,
    /// The agents are shutting down (Ctrl-C): a run that ends `cancelled` now was
    /// interrupted, and the server queues it again for when the sweep resumes, so it does not
    /// advance the `[n/N]` count.
    pub interrupted: bool,
    /// Runs counted in `done`: a retry of one of them takes its place.
    counted: std::collections::HashSet<String>,
    /// Configurations of the sweep settled before this display began (a resumed sweep's
    /// runs that ended and are not queued again): the `[n/N]` count starts after them, so a
    /// resumed `run_cap: 6` sweep with 2 settled shows `[3/6]` at its next run.
    before: u64,
}

impl Progress {
    /// A display for runs of a sweep optimizing `metric`; `total` runs if known.
    pub fn new(
        metric: Option<(String, Goal)>,
        total: Option<u64>,
        already_best: Option<(f64, i64)>,
    ) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = match total {
                Some(n) => ProgressBar::new(n),
                None => ProgressBar::new_spinner(),
            };
            let template = if total.is_some() {
                "{spinner} [{pos}/{len}] {elapsed_precise} {msg}"
            } else {
                "{spinner} [{pos}] {elapsed_precise} {msg}"
            };
            bar.set_style(
                ProgressStyle::with_template(template)
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        Progress {
            bar,
            metric,
            best: already_best,
            numbers: HashMap::new(),
            done: 0,
            total,
            states: HashMap::new(),
            shown: std::collections::HashSet::new(),
            summary_follows: false,
            best_from_sweep: false,
            objectives: Vec::new(),
            last: HashMap::new(),
            say_waiting: false,
            interrupted: false,
            counted: std::collections::HashSet::new(),
            before: 0,
        }
    }

    /// Count from `before` configurations settled earlier (a resumed sweep's): `[n/N]` then
    /// counts the sweep's configurations, not only this display's runs.
    pub fn start_after(&mut self, before: u64) {
        self.before = before;
        if let Some(bar) = &self.bar {
            if let Some(n) = self.total {
                bar.set_length(before + n);
            }
            bar.set_position(before + self.done);
        }
    }

    /// The sweep's best run as (metric, number); `None` keeps the one shown.
    pub fn set_best(&mut self, best: Option<(f64, i64)>) {
        if best.is_some() {
            self.best = best;
        }
    }

    /// Print `text` as a line of its own (above the bar on a terminal), every time.
    pub fn note(&self, text: String) {
        self.line(text);
    }

    fn line(&self, text: String) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => outln!("{text}"),
        }
    }

    fn counter(&self) -> String {
        let done = self.before + self.done;
        match self.total {
            Some(n) => format!("[{done}/{}]", self.before + n),
            None => format!("[{done}]"),
        }
    }

    fn best_text(&self) -> String {
        if !self.objectives.is_empty() {
            return String::new();
        }
        match (&self.metric, self.best) {
            (Some((name, _)), Some((v, n))) => format!("best {name} {} (run #{n})", fmt(v)),
            _ => String::new(),
        }
    }

    /// `error 0.12 latency_ms 31` from the values run `run` reported last (objectives it has
    /// not reported are left out).
    fn objective_text(&self, run: &str) -> String {
        let Some(last) = self.last.get(run) else {
            return String::new();
        };
        self.objectives
            .iter()
            .filter_map(|name| {
                let v = last.get(name)?;
                Some(match v.as_f64() {
                    Some(x) => format!("{name} {}", fmt(x)),
                    None => format!("{name} {}", python_str(v)),
                })
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Render one event.
    pub fn event(&mut self, event: Event) {
        match event {
            Event::Claimed {
                run,
                number,
                params,
                retry_of,
            } => {
                self.numbers.insert(run, number);
                // A retry takes the place of the attempt it repeats in the `[n/N]` count.
                let retried = retry_of.as_ref().map(|r| {
                    if self.counted.remove(r) {
                        self.done -= 1;
                    }
                    match self.numbers.get(r) {
                        Some(n) => format!(" (retry of #{n})"),
                        // Ended before this process started (`tune --retry`).
                        None => format!(" (retry of run {r})"),
                    }
                });
                let text = format!(
                    "run #{number} started{}: {}",
                    retried.unwrap_or_default(),
                    short_params(&params)
                );
                if let Some(bar) = &self.bar {
                    bar.set_message(format!("{text}  {}", self.best_text()));
                } else {
                    self.line(text);
                }
            }
            Event::Metric { run, step, values } => {
                if !self.objectives.is_empty() {
                    let last = self.last.entry(run.clone()).or_default();
                    last.extend(values.clone());
                    if let Some(bar) = &self.bar {
                        let n = self.numbers.get(&run).copied().unwrap_or(0);
                        bar.set_message(format!(
                            "run #{n} step {step}: {}",
                            self.objective_text(&run)
                        ));
                    }
                } else if let (Some(bar), Some((name, _))) = (&self.bar, &self.metric) {
                    if let Some(v) = values.get(name) {
                        let n = self.numbers.get(&run).copied().unwrap_or(0);
                        bar.set_message(format!(
                            "run #{n} step {step}: {name} {}  {}",
                            python_str(v),
                            self.best_text()
                        ));
                    }
                }
            }
            Event::Finished {
                run,
                state,
                metric,
                exit_code,
                error,
            } => {
                let interrupted = self.interrupted && state == RunState::Cancelled;
                if interrupted {
                    let n = self.numbers.get(&run).copied().unwrap_or(0);
                    self.last.remove(&run);
                    self.line(format!(
                        "{} run #{n} interrupted: it runs again when the sweep resumes",
                        self.counter()
                    ));
                    return;
                }
                self.done += 1;
                self.counted.insert(run.clone());
                // Retries of attempts that ended elsewhere can add runs beyond the expected
                // total.
                if self.total.is_some_and(|t| self.done > t) {
                    self.total = Some(self.done);
                    if let Some(bar) = &self.bar {
                        bar.set_length(self.before + self.done);
                    }
                }
                *self.states.entry(state).or_default() += 1;
                let n = self.numbers.get(&run).copied().unwrap_or(0);
                // The sweep's best run is chosen among results only (`RunState::is_result`).
                let metric = metric.filter(|_| state.is_result());
                if let (false, Some((_, goal)), Some(v)) =
                    (self.best_from_sweep, &self.metric, metric)
                {
                    if self.best.is_none_or(|(b, _)| goal.better(v, b)) {
                        self.best = Some((v, n));
                    }
                }
                let value = match (&self.metric, metric) {
                    _ if !self.objectives.is_empty() => {
                        let shown = self.objective_text(&run);
                        self.last.remove(&run);
                        if shown.is_empty() {
                            shown
                        } else {
                            format!(" {shown}")
                        }
                    }
                    (Some((name, _)), Some(v)) => format!(" {name} {}", fmt(v)),
                    _ => String::new(),
                };
                let code = match (state, exit_code, error) {
                    (RunState::Failed, _, Some(e)) => format!(" ({e})"),
                    // Preempted (`mark_preempting()`), stopped with its sweep: say which.
                    (RunState::Cancelled, _, Some(e)) if !e.is_empty() => format!(" ({e})"),
                    (RunState::Failed, Some(c), None) => format!(" (exit code {c})"),
                    _ => String::new(),
                };
                let text = format!(
                    "{} run #{n} {state}{value}{code}  {}",
                    self.counter(),
                    self.best_text()
                )
                .trim_end()
                .to_string();
                self.line(text);
                if let Some(bar) = &self.bar {
                    bar.set_position(self.before + self.done);
                }
            }
            Event::Waiting => {
                if self.say_waiting {
                    self.line(
                        "waiting: no run can start now (the sweep is paused, or its last runs are in flight elsewhere)"
                            .to_string(),
                    );
                }
                if let Some(bar) = &self.bar {
                    bar.set_message(format!("waiting for runs in flight…  {}", self.best_text()));
                }
            }
            Event::Message(m) => {
                if self.shown.insert(m.clone()) {
                    self.line(m);
                }
            }
            // `tune` says how the sweep ended in its own summary.
            Event::SweepOver { sweep, state } if !self.summary_follows => {
                let m = format!("sweep {sweep} is {state}: no more runs");
                if self.shown.insert(m.clone()) {
                    self.line(m);
                }
            }
            Event::SweepOver { .. } => {}
        }
    }

    /// Remove the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// A metric value in a progress line ([`super::number::metric`]).
fn fmt(v: f64) -> String {
    super::number::metric(v)
}

/// A parameter value with `digits` significant digits when it is a float
/// ([`super::number::general`]), else as the run's command receives it.
fn value_with(v: &Value, digits: usize) -> String {
    match v.as_f64() {
        Some(x) if v.is_f64() => super::number::general(x, digits),
        _ => python_str(v),
    }
}

/// A parameter value in a table column: floats to [`super::number::DIGITS`] significant
/// digits.
pub fn table_value(v: &Value) -> String {
    value_with(v, super::number::DIGITS)
}

/// A value shortened for one-line displays: floats to [`super::number::SHORT_DIGITS`]
/// significant digits.
pub fn compact(v: &Value) -> String {
    value_with(v, super::number::SHORT_DIGITS)
}

/// `lr=0.0123 hidden=16 …`, values shortened for one line.
pub fn short_params(params: &Value) -> String {
    params
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", compact(v)))
        .collect::<Vec<_>>()
        .join(" ")
}
