//! The `budget` block (hyperdial addition): when a sweep has spent enough.
//!
//! A sweep with a budget ends (state `finished`, with the reason recorded) at the first claim
//! after any of its limits is reached: `wall_time` since it was created, `run_hours` of run
//! time summed over its runs, or `stagnation`: no improvement of the best metric value by more
//! than `min_delta` over the last `runs` runs to finish, or over the last `fraction` of the
//! time elapsed since the sweep was created. Runs in flight finish; queued ones are cancelled.
//! The decision itself is [`Budget::spent`], a pure function of what the sweep has done.
//!
//! `min_delta: noise` ([`MinDelta::SeedNoise`]) takes the sweep's measured seed noise (the
//! pooled standard deviation of its repeats, `hyperdial repeat`) as the smallest improvement
//! that counts, once it is known ([`Spending::seed_noise`]); until then it is 0.

use serde::Serialize;

use crate::model::Goal;

/// A sweep's limits. At least one is set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Budget {
    /// Seconds from the sweep's creation after which it ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wall_time_s: Option<f64>,
    /// Hours of run time (summed over its runs) after which it ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_hours: Option<f64>,
    /// End when the best value stops improving.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stagnation: Option<Stagnation>,
}

/// No improvement beyond `min_delta` in the last `runs` finished runs, or in the last
/// `fraction` of the elapsed time (either, when both are set).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stagnation {
    /// Finished runs without an improvement that end the sweep.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runs: Option<u64>,
    /// Fraction of the elapsed time (0 < fraction < 1) without an improvement that ends it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fraction: Option<f64>,
    /// An improvement counts only when it is larger than this (default 0).
    pub min_delta: MinDelta,
}

/// The smallest improvement that counts for `stagnation`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MinDelta {
    /// This much, in metric units (≥ 0).
    Value(f64),
    /// The sweep's measured seed noise once known, else 0 (`min_delta: noise`).
    SeedNoise,
}

impl Default for MinDelta {
    fn default() -> Self {
        MinDelta::Value(0.0)
    }
}

impl MinDelta {
    /// The delta in metric units, given the measured seed noise.
    pub fn resolve(self, seed_noise: Option<f64>) -> f64 {
        match self {
            MinDelta::Value(d) => d,
            MinDelta::SeedNoise => seed_noise.filter(|n| n.is_finite()).unwrap_or(0.0),
        }
    }
}

impl Serialize for MinDelta {
    /// A number, or the word `noise`.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            MinDelta::Value(d) => s.serialize_f64(*d),
            MinDelta::SeedNoise => s.serialize_str("noise"),
        }
    }
}

/// Why a budget ended a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Spent {
    /// `wall_time` passed.
    WallTime,
    /// `run_hours` of run time were used.
    RunHours,
    /// The best value stopped improving.
    Stagnation,
}

impl Spent {
    /// The reason's name, as the sweep records it.
    pub fn as_str(self) -> &'static str {
        match self {
            Spent::WallTime => "wall_time",
            Spent::RunHours => "run_hours",
            Spent::Stagnation => "stagnation",
        }
    }
}

/// A finished run with the metric, as the budget sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Finished {
    /// When it finished, ms since the epoch.
    pub finished_ms: i64,
    /// Its metric value.
    pub value: f64,
}

/// What a sweep has done so far, for [`Budget::spent`] and [`Budget::progress`].
#[derive(Debug, Clone, PartialEq)]
pub struct Spending<'a> {
    /// Now, ms since the epoch.
    pub now_ms: i64,
    /// When the sweep was created.
    pub created_ms: i64,
    /// Run time summed over its runs, ms.
    pub compute_ms: i64,
    /// Its finished runs with a metric value, in any order (not read when `walk` is given
    /// and fits).
    pub finished: &'a [Finished],
    /// The walk over the finished runs, when the caller keeps one ([`Walk::push`] as runs
    /// finish): used instead of walking `finished` when its goal and `min_delta` are the
    /// ones the budget resolves now, so a check costs the same at 10 and at 100,000 runs.
    pub walk: Option<&'a Walk>,
    /// The metric's goal.
    pub goal: Goal,
    /// The sweep's measured seed noise in metric units, when known (`min_delta: noise`).
    pub seed_noise: Option<f64>,
}

impl Spending<'_> {
    /// The walk over the finished runs for `min_delta`: the caller's when it fits, else one
    /// made from `finished` (sorted, O(n log n)).
    fn walk(&self, min_delta: f64) -> Walk {
        match self.walk {
            Some(w) if w.goal == self.goal && w.min_delta.to_bits() == min_delta.to_bits() => {
                w.clone()
            }
            _ => Walk::of(self.finished, self.goal, min_delta),
        }
    }
}

/// The stagnation walk: the finished runs taken in the order they finished, each compared
/// with the best value before it. A run *improves* when it beats that best by more than
/// `min_delta` (the first run always does); the walk keeps how many runs it has taken, the
/// best value, and the last improving run's position and finish time. Runs are taken in
/// order of finish time, then value (ascending), so equal times give one order whatever
/// order they are read in.
///
/// Kept as runs finish ([`Walk::push`], O(1) each), it answers a budget check without a
/// pass over every finished run; [`Walk::of`] makes it from a list at once.
#[derive(Debug, Clone, PartialEq)]
pub struct Walk {
    /// The metric's goal.
    pub goal: Goal,
    /// The improvement that counts, in metric units.
    pub min_delta: f64,
    /// Runs taken.
    pub runs: u64,
    /// The best value so far.
    pub best: Option<f64>,
    /// The last improving run: its position (0-based) and finish time.
    pub last: Option<(u64, i64)>,
}

impl Walk {
    /// A walk that has taken no run yet.
    pub fn new(goal: Goal, min_delta: f64) -> Walk {
        Walk {
            goal,
            min_delta,
            runs: 0,
            best: None,
            last: None,
        }
    }

    /// The walk over `finished` (any order): sorted by finish time, then value.
    pub fn of(finished: &[Finished], goal: Goal, min_delta: f64) -> Walk {
        let mut runs: Vec<Finished> = finished.to_vec();
        runs.sort_by(|a, b| Walk::order(a).cmp(&Walk::order(b)));
        let mut walk = Walk::new(goal, min_delta);
        for r in runs {
            walk.push(r);
        }
        walk
    }

    /// Where `run` sorts in the walk: its finish time, then its value in IEEE total order
    /// (as an integer key, so a caller can keep runs sorted the same way).
    pub fn order(run: &Finished) -> (i64, u64) {
        let bits = run.value.to_bits();
        let key = if bits >> 63 == 1 {
            !bits
        } else {
            bits | 1 << 63
        };
        (run.finished_ms, key)
    }

    /// Take the next run. It must sort at or after every run taken so far
    /// ([`Walk::order`]); a caller that learns of a run out of order makes the walk again.
    pub fn push(&mut self, run: Finished) {
        let improves = match self.best {
            None => true,
            Some(b) => match self.goal {
                Goal::Minimize => run.value < b - self.min_delta,
                Goal::Maximize => run.value > b + self.min_delta,
            },
        };
        if improves {
            self.last = Some((self.runs, run.finished_ms));
        }
        if self.best.is_none_or(|b| self.goal.better(run.value, b)) {
            self.best = Some(run.value);
        }
        self.runs += 1;
    }

    /// Runs taken after the last improving one (0 before any run), and when that one
    /// finished.
    pub fn since_improvement(&self) -> (u64, Option<i64>) {
        match self.last {
            Some((i, t)) => (self.runs - 1 - i, Some(t)),
            None => (0, None),
        }
    }
}

/// Where a sweep stands against its budget.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Progress {
    /// Seconds of wall time left (≥ 0), when `wall_time` is set.
    pub wall_time_left_s: Option<f64>,
    /// Run-hours left (≥ 0), when `run_hours` is set.
    pub run_hours_left: Option<f64>,
    /// Finished runs since the last improvement beyond `min_delta` (all of them when none
    /// improved yet).
    pub runs_since_improvement: u64,
    /// Seconds since the last improvement (since creation when none).
    pub since_improvement_s: f64,
    /// When the first limit is expected to be reached, ms since the epoch: wall time exactly,
    /// run-hours at the rate spent so far, stagnation as if nothing improves again (at the
    /// rate runs finished so far); `None` when nothing can be estimated yet.
    pub estimated_end_ms: Option<i64>,
    /// The limit that is reached first by that estimate.
    pub first_limit: Option<Spent>,
    /// The smallest improvement that counts for `stagnation` now, in metric units
    /// ([`MinDelta::resolve`]); `None` without `stagnation`.
    pub min_delta: Option<f64>,
}

/// `seconds` as the largest whole unit that writes it exactly (`2h`, `90m`, `45s`), else
/// in seconds: a duration as a sweep file writes it (`wall_time`, `run_time_limit`).
pub fn seconds_text(seconds: f64) -> String {
    for (unit, size) in [("d", 86_400.0), ("h", 3_600.0), ("m", 60.0)] {
        let n = seconds / size;
        if n >= 1.0 && n.fract() == 0.0 {
            return format!("{n}{unit}");
        }
    }
    format!("{seconds}s")
}

impl Budget {
    /// The limits in words, for a summary (`wall time 2h, 10 run-hours, stagnation: 20 runs
    /// without an improvement`); `none` when no limit is set.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = self.wall_time_s {
            parts.push(format!("wall time {}", seconds_text(s)));
        }
        if let Some(h) = self.run_hours {
            parts.push(format!("{h} run-hours"));
        }
        if let Some(st) = &self.stagnation {
            let mut when = Vec::new();
            if let Some(n) = st.runs {
                when.push(format!("{n} finished runs"));
            }
            if let Some(f) = st.fraction {
                when.push(format!("{}% of the elapsed time", f * 100.0));
            }
            let delta = match st.min_delta {
                MinDelta::Value(d) if d > 0.0 => format!(" (improvements above {d})"),
                MinDelta::Value(_) => String::new(),
                MinDelta::SeedNoise => " (improvements above the seed noise)".to_string(),
            };
            parts.push(format!(
                "stagnation: no improvement in {}{delta}",
                when.join(" or ")
            ));
        }
        if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(", ")
        }
    }

    /// Which limit, if any, is reached (checked in the order wall time, run-hours,
    /// stagnation).
    pub fn spent(&self, s: &Spending) -> Option<Spent> {
        let elapsed_ms = (s.now_ms - s.created_ms).max(0) as f64;
        if let Some(w) = self.wall_time_s {
            if elapsed_ms >= w * 1e3 {
                return Some(Spent::WallTime);
            }
        }
        if let Some(h) = self.run_hours {
            if s.compute_ms as f64 >= h * 3.6e6 {
                return Some(Spent::RunHours);
            }
        }
        if let Some(st) = &self.stagnation {
            let walk = s.walk(st.min_delta.resolve(s.seed_noise));
            let (since_runs, last_ms) = walk.since_improvement();
            if walk.runs == 0 {
                return None;
            }
            if st.runs.is_some_and(|n| since_runs >= n) {
                return Some(Spent::Stagnation);
            }
            if let Some(f) = st.fraction {
                let since = (s.now_ms - last_ms.unwrap_or(s.created_ms)) as f64;
                if since >= f * elapsed_ms && last_ms.is_some() {
                    return Some(Spent::Stagnation);
                }
            }
        }
        None
    }

    /// Where the sweep stands: what is left and when it is expected to end.
    pub fn progress(&self, s: &Spending) -> Progress {
        let elapsed_ms = (s.now_ms - s.created_ms).max(0) as f64;
        let walk = match &self.stagnation {
            Some(st) => s.walk(st.min_delta.resolve(s.seed_noise)),
            None => s.walk(0.0),
        };
        let (since_runs, last_ms) = walk.since_improvement();
        let mut ends: Vec<(f64, Spent)> = Vec::new();
        let wall_left = self.wall_time_s.map(|w| (w - elapsed_ms / 1e3).max(0.0));
        if let Some(w) = self.wall_time_s {
            ends.push((s.created_ms as f64 + w * 1e3, Spent::WallTime));
        }
        let hours_left = self
            .run_hours
            .map(|h| (h - s.compute_ms as f64 / 3.6e6).max(0.0));
        if let (Some(left), true) = (hours_left, s.compute_ms > 0 && elapsed_ms > 0.0) {
            // Run time accrues at compute_ms per elapsed ms (the agents' parallelism).
            let rate = s.compute_ms as f64 / elapsed_ms;
            ends.push((s.now_ms as f64 + left * 3.6e6 / rate, Spent::RunHours));
        }
        if let Some(st) = &self.stagnation {
            if let Some(n) = st.runs {
                if walk.runs > 0 && elapsed_ms > 0.0 {
                    let per_run = elapsed_ms / walk.runs as f64;
                    let more = n.saturating_sub(since_runs) as f64;
                    ends.push((s.now_ms as f64 + more * per_run, Spent::Stagnation));
                }
            }
            if let (Some(f), Some(last)) = (st.fraction, last_ms) {
                // now - last >= f (now - created)  ⇔  now >= (last - f created) / (1 - f)
                let at = (last as f64 - f * s.created_ms as f64) / (1.0 - f);
                ends.push((at.max(s.now_ms as f64), Spent::Stagnation));
            }
        }
        let first = ends.into_iter().min_by(|a, b| a.0.total_cmp(&b.0));
        Progress {
            wall_time_left_s: wall_left,
            run_hours_left: hours_left,
            runs_since_improvement: since_runs,
            since_improvement_s: (s.now_ms - last_ms.unwrap_or(s.created_ms)).max(0) as f64 / 1e3,
            estimated_end_ms: first.map(|(t, _)| t.round() as i64),
            first_limit: first.map(|(_, why)| why),
            min_delta: self
                .stagnation
                .as_ref()
                .map(|st| st.min_delta.resolve(s.seed_noise)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_is_described_in_words_with_its_units() {
        let b = Budget {
            wall_time_s: Some(7_200.0),
            run_hours: Some(1.5),
            stagnation: Some(Stagnation {
                runs: Some(20),
                fraction: Some(0.25),
                min_delta: MinDelta::Value(0.01),
            }),
        };
        assert_eq!(
            b.describe(),
            "wall time 2h, 1.5 run-hours, stagnation: no improvement in 20 finished runs or \
             25% of the elapsed time (improvements above 0.01)"
        );
        let w = |s: f64| Budget {
            wall_time_s: Some(s),
            run_hours: None,
            stagnation: None,
        };
        assert_eq!(w(5_400.0).describe(), "wall time 90m");
        assert_eq!(w(86_400.0).describe(), "wall time 1d");
        assert_eq!(w(45.5).describe(), "wall time 45.5s");
        assert_eq!(
            Budget {
                wall_time_s: None,
                run_hours: None,
                stagnation: None
            }
            .describe(),
            "none"
        );
    }

    fn spending(finished: &[Finished], now_ms: i64, compute_ms: i64) -> Spending<'_> {
        Spending {
            now_ms,
            created_ms: 0,
            compute_ms,
            finished,
            walk: None,
            goal: Goal::Minimize,
            seed_noise: None,
        }
    }

    fn run(t: i64, v: f64) -> Finished {
        Finished {
            finished_ms: t,
            value: v,
        }
    }

    #[test]
    fn wall_time_and_run_hours() {
        let b = Budget {
            wall_time_s: Some(60.0),
            run_hours: Some(1.0),
            stagnation: None,
        };
        assert_eq!(b.spent(&spending(&[], 59_999, 0)), None);
        assert_eq!(b.spent(&spending(&[], 60_000, 0)), Some(Spent::WallTime));
        assert_eq!(
            b.spent(&spending(&[], 1_000, 3_600_000)),
            Some(Spent::RunHours)
        );
        // 30 s in, 0.25 h used: run time accrues 30× faster than wall time, so the hour is
        // used at 30 s + 0.75 h / 30 = 120 s; the wall time (60 s) comes first.
        let p = b.progress(&spending(&[], 30_000, 900_000));
        assert_eq!(p.wall_time_left_s, Some(30.0));
        assert_eq!(p.run_hours_left, Some(0.75));
        assert_eq!(p.estimated_end_ms, Some(60_000));
        assert_eq!(p.first_limit, Some(Spent::WallTime));
    }

    #[test]
    fn stagnation_counts_runs_since_an_improvement_beyond_min_delta() {
        let b = Budget {
            wall_time_s: None,
            run_hours: None,
            stagnation: Some(Stagnation {
                runs: Some(3),
                fraction: None,
                min_delta: MinDelta::Value(0.01),
            }),
        };
        // 1.0, then 0.5 (improves), then three runs within 0.01 of 0.5.
        let runs = [
            run(10, 1.0),
            run(20, 0.5),
            run(30, 0.495),
            run(40, 0.6),
            run(50, 0.499),
        ];
        assert_eq!(b.spent(&spending(&runs[..4], 45, 0)), None);
        assert_eq!(b.spent(&spending(&runs, 55, 0)), Some(Spent::Stagnation));
        let p = b.progress(&spending(&runs[..4], 45, 0));
        assert_eq!(p.runs_since_improvement, 2);
        assert_eq!(p.first_limit, Some(Spent::Stagnation));
        // An improvement beyond min_delta resets the count (order is by finish time).
        let mut better = runs.to_vec();
        better.push(run(35, 0.3));
        assert_eq!(b.spent(&spending(&better, 55, 0)), None);
    }

    #[test]
    fn a_walk_kept_run_by_run_is_the_walk_of_the_whole_list() {
        // A fixed pseudo-random sequence with repeated times and values.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let runs: Vec<Finished> = (0..400)
            .map(|_| run((next() % 200) as i64, (next() % 50) as f64 / 10.0 - 2.0))
            .collect();
        for goal in [Goal::Minimize, Goal::Maximize] {
            for min_delta in [0.0, 0.25, 1.0] {
                let whole = Walk::of(&runs, goal, min_delta);
                let mut sorted = runs.clone();
                sorted.sort_by_key(Walk::order);
                let mut kept = Walk::new(goal, min_delta);
                for (i, r) in sorted.iter().enumerate() {
                    kept.push(*r);
                    assert_eq!(kept, Walk::of(&sorted[..=i], goal, min_delta));
                }
                assert_eq!(kept, whole);
                // Read in another order, the list walks the same.
                let mut reversed = runs.clone();
                reversed.reverse();
                assert_eq!(Walk::of(&reversed, goal, min_delta), whole);
            }
        }
        assert_eq!(
            Walk::new(Goal::Minimize, 0.0).since_improvement(),
            (0, None)
        );
    }

    #[test]
    fn a_kept_walk_answers_as_the_list_does_and_one_that_does_not_fit_is_not_used() {
        let b = Budget {
            wall_time_s: None,
            run_hours: None,
            stagnation: Some(Stagnation {
                runs: Some(2),
                fraction: None,
                min_delta: MinDelta::Value(0.01),
            }),
        };
        let runs = [run(10, 1.0), run(20, 0.5), run(30, 0.499), run(40, 0.6)];
        let walk = Walk::of(&runs, Goal::Minimize, 0.01);
        let listed = spending(&runs, 45, 0);
        let kept = Spending {
            finished: &[],
            walk: Some(&walk),
            ..listed.clone()
        };
        assert_eq!(b.spent(&kept), Some(Spent::Stagnation));
        assert_eq!(b.spent(&kept), b.spent(&listed));
        assert_eq!(b.progress(&kept), b.progress(&listed));
        // A walk made for another min_delta is not used: the (empty) list is walked.
        let other = Walk::of(&runs, Goal::Minimize, 0.5);
        let stale = Spending {
            finished: &[],
            walk: Some(&other),
            ..listed
        };
        assert_eq!(b.spent(&stale), None);
    }

    #[test]
    fn min_delta_noise_takes_the_measured_seed_noise_once_known() {
        let b = Budget {
            wall_time_s: None,
            run_hours: None,
            stagnation: Some(Stagnation {
                runs: Some(2),
                fraction: None,
                min_delta: MinDelta::SeedNoise,
            }),
        };
        // Each run improves by 0.05: progress without a noise level, stagnation when the
        // seeds alone move the metric by 0.1.
        let runs = [run(10, 1.0), run(20, 0.95), run(30, 0.9)];
        assert_eq!(b.spent(&spending(&runs, 40, 0)), None);
        let mut noisy = spending(&runs, 40, 0);
        noisy.seed_noise = Some(0.1);
        assert_eq!(b.spent(&noisy), Some(Spent::Stagnation));
        assert_eq!(b.progress(&noisy).runs_since_improvement, 2);
        assert_eq!(MinDelta::Value(0.5).resolve(Some(0.1)), 0.5);
        assert_eq!(serde_json::to_value(MinDelta::SeedNoise).unwrap(), "noise");
    }

    #[test]
    fn stagnation_over_a_fraction_of_the_elapsed_time() {
        let b = Budget {
            wall_time_s: None,
            run_hours: None,
            stagnation: Some(Stagnation {
                runs: None,
                fraction: Some(0.5),
                min_delta: MinDelta::Value(0.0),
            }),
        };
        let runs = [run(100, 1.0), run(400, 0.5), run(700, 0.6)];
        // Last improvement at 400: stagnant once now − 400 ≥ 0.5 now, i.e. now ≥ 800.
        assert_eq!(b.spent(&spending(&runs, 799, 0)), None);
        assert_eq!(b.spent(&spending(&runs, 800, 0)), Some(Spent::Stagnation));
        assert_eq!(
            b.progress(&spending(&runs, 700, 0)).estimated_end_ms,
            Some(800)
        );
        // No run yet: nothing to judge.
        assert_eq!(b.spent(&spending(&[], 10_000, 0)), None);
    }
}
