//! Seed noise: how much a sweep's metric moves when only the random seed changes, against how
//! much it moves between configurations (`GET /api/v1/sweeps/{id}/noise`, `hyperdial noise`).
//!
//! The runs measured are *repeats*: runs queued with the configuration of another run of the
//! sweep and a new seed (`repeat_of` and `seed` set; `hyperdial repeat` queues them). A
//! configuration is the run its repeats name (a repeat of a repeat counts for the run at the
//! root). Its statistics are over its repeats that ended `finished` with a finite metric;
//! the repeated run itself is left out, because it was picked for scoring well and would bias
//! the mean (the winner's curse). The report holds:
//!
//! - per configuration: count, mean and sample standard deviation (n − 1) of its repeats;
//! - the **seed-noise level**: the pooled within-configuration standard deviation,
//!   √(Σ (nᵢ − 1) sᵢ² / Σ (nᵢ − 1)) over the configurations with at least 2 repeats;
//! - the **spread across configurations**: the sample standard deviation of the
//!   configuration means over every configuration of the sweep's finished runs (runs with
//!   equal parameters form one configuration; a repeated configuration counts once, with the
//!   mean of its repeats);
//! - their **ratio**, noise / spread: near 1 or above, differences between configurations of
//!   the sweep are mostly seed noise;
//! - whether the **best configuration is distinguishable from the runner-up** (the two best
//!   means among configurations with at least 2 repeats): Welch's two-sample t-test (B. L.
//!   Welch, "The generalization of 'Student's' problem when several different population
//!   variances are involved", Biometrika 34, 1947), two-sided, distinguishable when
//!   p < [`ALPHA`] = 0.05 (the conventional level, R. A. Fisher, *Statistical Methods for
//!   Research Workers*, 1925). Welch's test does not assume equal variances; the degrees of
//!   freedom are Welch–Satterthwaite's. The p-value comes from Student's t distribution
//!   through the regularized incomplete beta function, p = I_{df/(df+t²)}(df/2, 1/2),
//!   evaluated by its continued fraction (modified Lentz) with a Lanczos log-gamma.
//!
//! The budget's `stagnation: {min_delta: noise}` uses [`seed_noise`] of the same runs.

use std::collections::{BTreeMap, HashMap};

use hyperdial_space::Goal;
use hyperdial_store::{RunFilter, RunRow, RunState, Store};
use hyperdial_wire::api::{NoiseComparison, NoiseConfiguration, NoiseReport};
use serde_json::{Map, Value};

/// The significance level of the best-against-runner-up test.
pub const ALPHA: f64 = 0.05;

/// Runs read per page by [`sweep_runs`] and [`read_input`].
const PAGE: i64 = 1_000;

/// Every run of a sweep, read page by page.
pub async fn sweep_runs(store: &Store, sweep_id: &str) -> hyperdial_store::Result<Vec<RunRow>> {
    let mut out = Vec::new();
    loop {
        let filter = RunFilter {
            sweep: Some(sweep_id.to_string()),
            limit: Some(PAGE),
            offset: Some(out.len() as i64),
            ..Default::default()
        };
        let (page, total) = store.runs(&filter).await?;
        let n = page.len();
        out.extend(page);
        if n == 0 || out.len() as i64 >= total {
            return Ok(out);
        }
    }
}

/// Mean and sample standard deviation (n − 1) of `values`: `None` for an empty list, the
/// deviation `None` below 2 values.
pub fn mean_std(values: &[f64]) -> (Option<f64>, Option<f64>) {
    let n = values.len();
    if n == 0 {
        return (None, None);
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return (Some(mean), None);
    }
    let ss: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
    (Some(mean), Some((ss / (n - 1) as f64).sqrt()))
}

/// Welch's two-sample t-test: `(t, df, two-sided p)`, or `None` when a sample has fewer than
/// 2 values. Two samples without any spread give p = 0 when their means differ, else 1.
pub fn welch(a: &[f64], b: &[f64]) -> Option<(f64, f64, f64)> {
    let (Some(ma), Some(sa)) = mean_std(a) else {
        return None;
    };
    let (Some(mb), Some(sb)) = mean_std(b) else {
        return None;
    };
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (va, vb) = (sa * sa / na, sb * sb / nb);
    let se2 = va + vb;
    let diff = ma - mb;
    if se2 <= 0.0 {
        let df = na + nb - 2.0;
        return Some(if diff == 0.0 {
            (0.0, df, 1.0)
        } else {
            (diff.signum() * f64::INFINITY, df, 0.0)
        });
    }
    let t = diff / se2.sqrt();
    let df = se2 * se2 / (va * va / (na - 1.0) + vb * vb / (nb - 1.0));
    Some((t, df, student_t_two_sided(t, df)))
}

/// P(|T| ≥ |t|) for Student's t with `df` degrees of freedom.
pub fn student_t_two_sided(t: f64, df: f64) -> f64 {
    if t.is_infinite() {
        return 0.0;
    }
    let x = df / (df + t * t);
    incomplete_beta(x, df / 2.0, 0.5).clamp(0.0, 1.0)
}

/// The regularized incomplete beta function I_x(a, b), for 0 ≤ x ≤ 1 and a, b > 0.
fn incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    let front = ln_front.exp();
    // The continued fraction converges fast for x < (a + 1) / (a + b + 2); use the symmetry
    // I_x(a, b) = 1 − I_{1−x}(b, a) otherwise.
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_fraction(x, a, b) / a
    } else {
        1.0 - front * beta_fraction(1.0 - x, b, a) / b
    }
}

/// The continued fraction of the incomplete beta function, by the modified Lentz method.
fn beta_fraction(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    const EPS: f64 = 1e-15;
    let guard = |v: f64| if v.abs() < TINY { TINY } else { v };
    let mut c = 1.0;
    let mut d = 1.0 / guard(1.0 - (a + b) * x / (a + 1.0));
    let mut f = d;
    for m in 1..=500 {
        let m = f64::from(m);
        // Even step: d_{2m} = m (b − m) x / ((a + 2m − 1)(a + 2m)).
        let num = m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m));
        d = 1.0 / guard(1.0 + num * d);
        c = guard(1.0 + num / c);
        f *= d * c;
        // Odd step: d_{2m+1} = −(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1)).
        let num = -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0));
        d = 1.0 / guard(1.0 + num * d);
        c = guard(1.0 + num / c);
        let delta = d * c;
        f *= delta;
        if (delta - 1.0).abs() < EPS {
            break;
        }
    }
    f
}

/// ln Γ(x) for x > 0 (Lanczos approximation, g = 7, 9 terms; relative error below 1e-13).
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 − x) = π / sin(πx).
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = C[0];
    for (i, c) in C.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// One run kept as evidence by a reader of a sweep's runs (importances, `hyperdial refine`):
/// its id, the run it repeats (`hyperdial repeat`), and its value.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// The run's id.
    pub id: &'a str,
    /// The run it repeats with another seed, if any.
    pub repeat_of: Option<&'a str>,
    /// Its value (finite).
    pub value: f64,
}

/// One configuration of [`per_configuration`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Configuration {
    /// Index (into the observations) of the run that stands for the configuration: the run
    /// repeated when it is among them, else its first repeat.
    pub index: usize,
    /// The mean of its repeats when it has some among the observations, else its own value.
    pub value: f64,
    /// How many of its repeats are among the observations (0: not repeated).
    pub repeats: usize,
}

/// The observations as one per configuration, in the order of their first run: a run
/// repeated with other seeds and its repeats are one configuration, valued at the mean of the
/// repeats, with the repeated run left out of that mean as the noise report leaves it out (it
/// was picked for scoring well: the winner's curse). Without this, a configuration repeated
/// 5 times weighs 6 times as much as any other and takes 6 places in a ranking. A repeat
/// stands for its configuration when the run it repeats is not among the observations (it
/// failed, say). The one rule of importances and `hyperdial refine`.
pub fn per_configuration(observed: &[Observed<'_>]) -> Vec<Configuration> {
    let mut repeats: HashMap<&str, (f64, usize)> = HashMap::new();
    for o in observed {
        if let Some(of) = o.repeat_of {
            let e = repeats.entry(of).or_insert((0.0, 0));
            e.0 += o.value;
            e.1 += 1;
        }
    }
    let ids: std::collections::HashSet<&str> = observed.iter().map(|o| o.id).collect();
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (index, o) in observed.iter().enumerate() {
        // A repeat of a run that is here: that run stands for the configuration.
        if o.repeat_of.is_some_and(|of| ids.contains(of)) {
            continue;
        }
        let key = o.repeat_of.unwrap_or(o.id);
        if !seen.insert(key) {
            continue;
        }
        let (value, count) = match repeats.get(key) {
            Some(&(sum, n)) => (sum / n as f64, n),
            None => (o.value, 0),
        };
        out.push(Configuration {
            index,
            value,
            repeats: count,
        });
    }
    out
}

/// A finite metric of a run that ended `finished`.
fn finished_value(r: &RunRow) -> Option<f64> {
    (r.state == RunState::Finished)
        .then_some(r.metric)
        .flatten()
        .filter(|v| v.is_finite())
}

/// The run at the root of a repeat chain (a repeat of a repeat counts for the first run).
fn root<'a>(by_id: &HashMap<&'a str, &'a RunRow>, mut id: &'a str) -> &'a str {
    for _ in 0..64 {
        match by_id.get(id).and_then(|r| r.repeat_of.as_deref()) {
            Some(next) if by_id.contains_key(next) => id = next,
            _ => break,
        }
    }
    id
}

/// Groups of repeats by the run they repeat, in the order of that run's number.
fn repeat_groups(runs: &[RunRow]) -> Vec<(&RunRow, Vec<&RunRow>)> {
    let by_id: HashMap<&str, &RunRow> = runs.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut groups: BTreeMap<(i64, &str), Vec<&RunRow>> = BTreeMap::new();
    for r in runs {
        let Some(of) = r.repeat_of.as_deref() else {
            continue;
        };
        let top = root(&by_id, of);
        let Some(original) = by_id.get(top) else {
            continue;
        };
        groups
            .entry((original.number.unwrap_or(i64::MAX), top))
            .or_default()
            .push(r);
    }
    groups
        .into_iter()
        .map(|((_, id), mut reps)| {
            reps.sort_by_key(|r| (r.number.unwrap_or(i64::MAX), r.created_ms));
            (by_id[id], reps)
        })
        .collect()
}

/// The sum of squared deviations from their mean of `values` and its degrees of freedom
/// (n − 1), for 2 values or more: one configuration's share of the pooled deviation.
fn squares(values: &[f64]) -> Option<(f64, u64)> {
    if values.len() < 2 {
        return None;
    }
    let (Some(m), _) = mean_std(values) else {
        return None;
    };
    Some((
        values.iter().map(|v| (v - m).powi(2)).sum::<f64>(),
        values.len() as u64 - 1,
    ))
}

/// Pooled within-configuration standard deviation over `groups` with at least 2 values, and
/// its degrees of freedom.
fn pooled(groups: &[Vec<f64>]) -> (Option<f64>, u64) {
    let mut ss = 0.0;
    let mut df = 0u64;
    for (s, d) in groups.iter().filter_map(|g| squares(g)) {
        ss += s;
        df += d;
    }
    if df == 0 {
        (None, 0)
    } else {
        (Some((ss / df as f64).sqrt()), df)
    }
}

/// The seed-noise level of a sweep's runs (see the module docs): `None` until some
/// configuration has 2 finished repeats. It holds every run in memory: the claim keeps the
/// same figure run by run ([`NoiseTally`]) and the report reads runs page by page
/// ([`read_input`]); this is the reference they are tested against.
pub fn seed_noise(runs: &[RunRow]) -> Option<f64> {
    let groups: Vec<Vec<f64>> = repeat_groups(runs)
        .into_iter()
        .map(|(_, reps)| reps.iter().filter_map(|r| finished_value(r)).collect())
        .collect();
    pooled(&groups).0
}

/// Where a repeat sorts in its configuration: number (none last), creation, id.
pub type RepeatOrder = (i64, i64, String);

/// One configuration's finished repeats in a [`NoiseTally`].
#[derive(Debug, Default)]
struct TallyGroup {
    values: BTreeMap<RepeatOrder, f64>,
    /// Its share of the pooled sums ([`squares`]), as last added.
    share: Option<(f64, u64)>,
}

/// The seed-noise level kept up to date one repeat at a time: what a claim's history holds
/// for a `stagnation: {min_delta: noise}` budget, so a claim costs the runs that changed
/// rather than a read of every run.
///
/// It holds each configuration's finished repeats with a finite metric (the values
/// [`seed_noise`] pools) and the pooled sums: a change of one repeat recomputes its
/// configuration's sum of squares from that configuration's values (in the order a full read
/// takes them, so the share is the same to the bit) and moves the totals by the difference.
/// The totals are compensated sums (Neumaier's variant of Kahan summation), so adding and
/// removing shares leaves an error of the order of the rounding of the current total rather
/// than of everything ever added; [`NoiseTally::level`] agrees with [`seed_noise`] to a
/// relative 1e-12 or so, not to the bit (the full read sums the shares in another order).
#[derive(Debug, Default)]
pub struct NoiseTally {
    groups: HashMap<String, TallyGroup>,
    /// Each repeat counted: the configuration (its root run) and where it sorts.
    members: HashMap<String, (String, RepeatOrder)>,
    ss: f64,
    /// The compensation of `ss`.
    ss_err: f64,
    df: u64,
}

impl NoiseTally {
    /// Count repeat `run_id` for configuration `root` at `order` with `value` (its finite
    /// metric once `finished`), replacing what was counted for it before; `root` or `value`
    /// `None` leaves it out (not a repeat, a repeat of no run of the sweep, not finished).
    pub fn set(
        &mut self,
        run_id: &str,
        root: Option<&str>,
        order: RepeatOrder,
        value: Option<f64>,
    ) {
        if let Some((old_root, old_order)) = self.members.remove(run_id) {
            self.change(&old_root, |g| {
                g.values.remove(&old_order);
            });
        }
        if let (Some(root), Some(v)) = (root, value) {
            self.members
                .insert(run_id.to_string(), (root.to_string(), order.clone()));
            self.change(root, |g| {
                g.values.insert(order, v);
            });
        }
    }

    /// Apply `edit` to configuration `root` and move the totals by its new share.
    fn change(&mut self, root: &str, edit: impl FnOnce(&mut TallyGroup)) {
        let g = self.groups.entry(root.to_string()).or_default();
        edit(g);
        let values: Vec<f64> = g.values.values().copied().collect();
        let share = squares(&values);
        let old = std::mem::replace(&mut g.share, share);
        if g.values.is_empty() {
            self.groups.remove(root);
        }
        if let Some((s, d)) = old {
            self.add(-s);
            self.df -= d;
        }
        if let Some((s, d)) = share {
            self.add(s);
            self.df += d;
        }
        if self.df == 0 {
            (self.ss, self.ss_err) = (0.0, 0.0);
        }
    }

    /// Neumaier's compensated addition to the sum of squares.
    fn add(&mut self, x: f64) {
        let t = self.ss + x;
        self.ss_err += if self.ss.abs() >= x.abs() {
            (self.ss - t) + x
        } else {
            (x - t) + self.ss
        };
        self.ss = t;
    }

    /// The pooled within-configuration standard deviation (as [`seed_noise`]); `None` until
    /// some configuration has 2 finished repeats.
    pub fn level(&self) -> Option<f64> {
        (self.df > 0).then(|| ((self.ss + self.ss_err).max(0.0) / self.df as f64).sqrt())
    }

    /// The degrees of freedom of [`NoiseTally::level`].
    pub fn df(&self) -> u64 {
        self.df
    }
}

fn params_key(params: &Value) -> String {
    // serde_json's maps are sorted by key, so equal parameters give equal text.
    params.to_string()
}

/// What the report keeps of a repeat.
#[derive(Debug, Clone)]
struct Repeat {
    id: String,
    repeat_of: String,
    number: Option<i64>,
    created_ms: i64,
    state: RunState,
    metric: Option<f64>,
    seed: Option<i64>,
    params: Value,
}

impl Repeat {
    fn value(&self) -> Option<f64> {
        (self.state == RunState::Finished)
            .then_some(self.metric)
            .flatten()
            .filter(|v| v.is_finite())
    }
}

/// A configuration's run as the report shows it.
#[derive(Debug, Clone)]
struct Original {
    id: String,
    number: Option<i64>,
    params: Value,
    metric: Option<f64>,
}

impl Original {
    fn of(r: &RunRow) -> Original {
        Original {
            id: r.id.clone(),
            number: r.number,
            params: r.params.clone(),
            metric: r.metric,
        }
    }
}

/// A sweep's runs as the seed-noise report needs them, taken in one run at a time so the
/// runs can be read page by page ([`read_input`]): the repeats (a few fields each), the sum
/// and count of the finished metrics of each other configuration (by parameters), and the
/// runs the repeats name, looked up once each afterwards. Its size grows with the repeats
/// and the distinct configurations, not with the runs' summaries, configs or histories.
#[derive(Debug, Default)]
pub struct NoiseInput {
    /// Repeats in the order taken in.
    repeats: Vec<Repeat>,
    /// Index of each repeat in `repeats`.
    repeat_index: HashMap<String, usize>,
    /// Finished runs that are not repeats by parameters: sum and count of their metrics.
    by_params: HashMap<String, (f64, u64)>,
    /// Runs named by repeats that are not repeats: `None` when not a run of the sweep.
    originals: HashMap<String, Option<Original>>,
}

impl NoiseInput {
    /// The input of all of `runs` (every run of one sweep).
    pub fn of_runs(runs: &[RunRow]) -> NoiseInput {
        let mut input = NoiseInput::default();
        for r in runs {
            input.push(r);
        }
        let by_id: HashMap<&str, &RunRow> = runs.iter().map(|r| (r.id.as_str(), r)).collect();
        for id in input.unresolved() {
            let found = by_id.get(id.as_str()).map(|r| Original::of(r));
            input.originals.insert(id, found);
        }
        input
    }

    /// Take in one run of the sweep (each once, in run order).
    pub fn push(&mut self, r: &RunRow) {
        match &r.repeat_of {
            Some(of) => {
                self.repeat_index.insert(r.id.clone(), self.repeats.len());
                self.repeats.push(Repeat {
                    id: r.id.clone(),
                    repeat_of: of.clone(),
                    number: r.number,
                    created_ms: r.created_ms,
                    state: r.state,
                    metric: r.metric,
                    seed: r.seed,
                    params: r.params.clone(),
                });
            }
            None => {
                if let Some(v) = finished_value(r) {
                    let e = self
                        .by_params
                        .entry(params_key(&r.params))
                        .or_insert((-0.0, 0));
                    e.0 += v;
                    e.1 += 1;
                }
            }
        }
    }

    /// The runs named by repeats that are neither repeats nor looked up yet.
    fn unresolved(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .repeats
            .iter()
            .map(|r| &r.repeat_of)
            .filter(|id| !self.repeat_index.contains_key(*id) && !self.originals.contains_key(*id))
            .cloned()
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    fn exists(&self, id: &str) -> bool {
        self.repeat_index.contains_key(id) || matches!(self.originals.get(id), Some(Some(_)))
    }

    /// The run at the root of a repeat chain (as [`root`]); `None` when `of` is no run of
    /// the sweep.
    fn root<'a>(&'a self, mut id: &'a str) -> Option<&'a str> {
        if !self.exists(id) {
            return None;
        }
        for _ in 0..64 {
            match self
                .repeat_index
                .get(id)
                .map(|&i| self.repeats[i].repeat_of.as_str())
            {
                Some(next) if self.exists(next) => id = next,
                _ => break,
            }
        }
        Some(id)
    }

    fn original(&self, id: &str) -> Option<Original> {
        match self.repeat_index.get(id) {
            Some(&i) => {
                let r = &self.repeats[i];
                Some(Original {
                    id: r.id.clone(),
                    number: r.number,
                    params: r.params.clone(),
                    metric: r.metric,
                })
            }
            None => self.originals.get(id).cloned().flatten(),
        }
    }

    /// Groups of repeats by the run they repeat, in the order of that run's number (as
    /// [`repeat_groups`]).
    fn groups(&self) -> Vec<(Original, Vec<&Repeat>)> {
        let mut groups: BTreeMap<(i64, String), (Original, Vec<&Repeat>)> = BTreeMap::new();
        for r in &self.repeats {
            let Some(top) = self.root(&r.repeat_of) else {
                continue;
            };
            let Some(original) = self.original(top) else {
                continue;
            };
            groups
                .entry((original.number.unwrap_or(i64::MAX), top.to_string()))
                .or_insert_with(|| (original, Vec::new()))
                .1
                .push(r);
        }
        groups
            .into_values()
            .map(|(original, mut reps)| {
                reps.sort_by_key(|r| (r.number.unwrap_or(i64::MAX), r.created_ms));
                (original, reps)
            })
            .collect()
    }

    /// The seed-noise level of these runs: [`seed_noise`] of the same runs.
    pub fn seed_noise(&self) -> Option<f64> {
        let groups: Vec<Vec<f64>> = self
            .groups()
            .into_iter()
            .map(|(_, reps)| reps.iter().filter_map(|r| r.value()).collect())
            .collect();
        pooled(&groups).0
    }
}

/// The seed-noise input of sweep `sweep_id`, its runs read [`PAGE`] at a time (each page
/// dropped once taken in), then the runs its repeats name looked up one by one.
pub async fn read_input(store: &Store, sweep_id: &str) -> hyperdial_store::Result<NoiseInput> {
    read_input_in_pages(store, sweep_id, PAGE).await
}

/// [`read_input`] with pages of `page` runs (tests cross page boundaries with small ones).
pub(crate) async fn read_input_in_pages(
    store: &Store,
    sweep_id: &str,
    page: i64,
) -> hyperdial_store::Result<NoiseInput> {
    let mut input = NoiseInput::default();
    let mut offset = 0i64;
    loop {
        let filter = RunFilter {
            sweep: Some(sweep_id.to_string()),
            limit: Some(page),
            offset: Some(offset),
            ..Default::default()
        };
        let (page, total) = store.runs(&filter).await?;
        let n = page.len() as i64;
        for r in &page {
            input.push(r);
        }
        offset += n;
        if n == 0 || offset >= total {
            break;
        }
    }
    for id in input.unresolved() {
        let found = store
            .run(&id)
            .await?
            .filter(|r| r.sweep_id.as_deref() == Some(sweep_id))
            .map(|r| Original::of(&r));
        input.originals.insert(id, found);
    }
    Ok(input)
}

/// The seed-noise report of sweep `sweep_id` from all its runs (see the module docs);
/// `maximize` is the metric's goal.
pub fn report(
    sweep_id: &str,
    metric: Option<&str>,
    maximize: bool,
    runs: &[RunRow],
) -> NoiseReport {
    report_of(sweep_id, metric, maximize, &NoiseInput::of_runs(runs))
}

/// The seed-noise report of sweep `sweep_id` from its [`NoiseInput`] (see the module docs);
/// `maximize` is the metric's goal.
pub fn report_of(
    sweep_id: &str,
    metric: Option<&str>,
    maximize: bool,
    input: &NoiseInput,
) -> NoiseReport {
    let goal = if maximize {
        Goal::Maximize
    } else {
        Goal::Minimize
    };
    let groups = input.groups();
    let mut configurations: Vec<NoiseConfiguration> = groups
        .iter()
        .map(|(original, reps)| {
            let done: Vec<&Repeat> = reps
                .iter()
                .copied()
                .filter(|r| r.value().is_some())
                .collect();
            let values: Vec<f64> = done.iter().filter_map(|r| r.value()).collect();
            let (mean, std) = mean_std(&values);
            NoiseConfiguration {
                run: original.id.clone(),
                number: original.number,
                params: original
                    .params
                    .as_object()
                    .cloned()
                    .unwrap_or_else(Map::new),
                original: original.metric,
                count: values.len() as u64,
                seeds: done.iter().map(|r| r.seed.unwrap_or_default()).collect(),
                values,
                mean,
                std,
                pending: reps.iter().filter(|r| r.state.in_flight()).count() as u64,
            }
        })
        .collect();
    configurations.sort_by(|a, b| match (a.mean, b.mean) {
        (Some(x), Some(y)) if goal.better(x, y) => std::cmp::Ordering::Less,
        (Some(x), Some(y)) if goal.better(y, x) => std::cmp::Ordering::Greater,
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        _ => a.number.cmp(&b.number),
    });
    let value_groups: Vec<Vec<f64>> = configurations.iter().map(|c| c.values.clone()).collect();
    let (seed_noise, seed_noise_df) = pooled(&value_groups);

    // Configuration means over the sweep's finished runs; a repeated configuration's mean is
    // its repeats'.
    let mut by_params = input.by_params.clone();
    for (original, _) in &groups {
        let conf = configurations
            .iter()
            .find(|x| x.run == original.id)
            .expect("every group is a configuration");
        if !conf.values.is_empty() {
            let sum = conf.values.iter().fold(-0.0, |a, v| a + v);
            by_params.insert(
                params_key(&original.params),
                (sum, conf.values.len() as u64),
            );
        }
    }
    let means: Vec<f64> = by_params
        .values()
        .filter(|(_, n)| *n > 0)
        .map(|(sum, n)| sum / *n as f64)
        .collect();
    let spread = mean_std(&means).1;
    let ratio = match (seed_noise, spread) {
        (Some(n), Some(s)) if s > 0.0 => Some(n / s),
        _ => None,
    };

    let testable: Vec<&NoiseConfiguration> =
        configurations.iter().filter(|c| c.count >= 2).collect();
    let comparison = match testable.as_slice() {
        [best, runner_up, ..] => {
            welch(&best.values, &runner_up.values).map(|(t, df, p)| NoiseComparison {
                best: best.run.clone(),
                runner_up: runner_up.run.clone(),
                difference: best.mean.unwrap_or_default() - runner_up.mean.unwrap_or_default(),
                t: if t.is_finite() {
                    t
                } else {
                    t.signum() * f64::MAX
                },
                df,
                p_value: p,
                alpha: ALPHA,
                distinguishable: p < ALPHA,
            })
        }
        _ => None,
    };
    NoiseReport {
        sweep: sweep_id.to_string(),
        metric: metric.map(str::to_string),
        goal: if maximize {
            hyperdial_wire::api::Goal::Maximize
        } else {
            hyperdial_wire::api::Goal::Minimize
        },
        configurations,
        seed_noise,
        seed_noise_df,
        spread,
        spread_configurations: means.len() as u64,
        ratio,
        comparison,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_configuration_is_one_at_its_repeats_mean_without_the_run_repeated() {
        let o = |id, of, value| Observed {
            id,
            repeat_of: of,
            value,
        };
        let observed = [
            o("a", None, 0.10),
            o("b", None, 0.30),
            o("a1", Some("a"), 0.20),
            o("a2", Some("a"), 0.40),
            // The run repeated is not here (it failed): its first repeat stands for it.
            o("c1", Some("c"), 0.50),
            o("c2", Some("c"), 0.70),
        ];
        let got = per_configuration(&observed);
        let close = |x: f64, y: f64| (x - y).abs() < 1e-12;
        assert_eq!(got.len(), 3);
        assert_eq!((got[0].index, got[0].repeats), (0, 2));
        assert!(close(got[0].value, 0.30), "{got:?}");
        assert_eq!((got[1].index, got[1].repeats), (1, 0));
        assert!(close(got[1].value, 0.30));
        assert_eq!((got[2].index, got[2].repeats), (4, 2));
        assert!(close(got[2].value, 0.60));
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn student_t_matches_tables() {
        // Two-sided critical values of Student's t: p = 0.05 at these t for these df.
        for (t, df) in [(12.706, 1.0), (2.776, 4.0), (2.228, 10.0), (1.960, 1e6)] {
            let p = student_t_two_sided(t, df);
            assert!(close(p, 0.05, 2e-4), "t={t} df={df}: p={p}");
        }
        assert!(close(student_t_two_sided(0.0, 5.0), 1.0, 1e-12));
        // t = 1 with 1 df is the Cauchy distribution: P(|T| ≥ 1) = 1/2.
        assert!(close(student_t_two_sided(1.0, 1.0), 0.5, 1e-10));
        assert!(close(ln_gamma(5.0), 24f64.ln(), 1e-12));
        assert!(close(
            ln_gamma(0.5),
            std::f64::consts::PI.sqrt().ln(),
            1e-12
        ));
    }

    #[test]
    fn welch_on_known_samples() {
        let a = [1.0, 2.0, 3.0, 4.0];
        let b = [3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        let (t, df, p) = welch(&a, &b).unwrap();
        // Means 2.5 and 5.5, variances 5/3 and 3.5: t = −3 / √(5/12 + 7/12) = −3.
        assert!(close(t, -3.0, 1e-12));
        // df = 1 / ((5/12)²/3 + (7/12)²/5) = 7.89...
        assert!(close(
            df,
            1.0 / ((25.0 / 144.0) / 3.0 + (49.0 / 144.0) / 5.0),
            1e-9
        ));
        assert!(p > 0.01 && p < 0.05, "p={p}");
        assert!(welch(&[1.0], &b).is_none());
        assert_eq!(welch(&[1.0, 1.0], &[2.0, 2.0]).unwrap().2, 0.0);
        assert_eq!(welch(&[1.0, 1.0], &[1.0, 1.0]).unwrap().2, 1.0);
    }

    fn run(id: &str, number: i64, a: f64, metric: f64, of: Option<&str>, seed: i64) -> RunRow {
        RunRow {
            id: id.to_string(),
            sweep_id: Some("s".into()),
            project: "default".into(),
            number: Some(number),
            name: None,
            state: RunState::Finished,
            params: serde_json::json!({ "a": a }),
            config: Value::Null,
            suggestion: Value::Null,
            grid_index: None,
            agent_id: None,
            host: None,
            argv: Value::Null,
            exit_code: Some(0),
            error: None,
            end_cause: None,
            metric: Some(metric),
            summary: Map::new(),
            next_step: 1,
            git_commit: None,
            git_dirty: None,
            stop_requested: false,
            stop_reason: None,
            stop_info: Value::Null,
            created_ms: number,
            started_ms: None,
            heartbeat_ms: None,
            finished_ms: None,
            retry_of: None,
            attempt: 1,
            delivery: None,
            repeat_of: of.map(str::to_string),
            seed: of.map(|_| seed),
        }
    }

    #[test]
    fn report_pools_noise_and_compares_the_two_best() {
        let runs = vec![
            run("r1", 1, 1.0, 0.10, None, 0),
            run("r2", 2, 2.0, 0.50, None, 0),
            run("r3", 3, 3.0, 0.90, None, 0),
            run("r4", 4, 1.0, 0.20, Some("r1"), 1),
            run("r5", 5, 1.0, 0.22, Some("r1"), 2),
            run("r6", 6, 1.0, 0.24, Some("r1"), 3),
            run("r7", 7, 2.0, 0.50, Some("r2"), 1),
            run("r8", 8, 2.0, 0.54, Some("r2"), 2),
            run("r9", 9, 2.0, 0.58, Some("r9x"), 3),
            run("r10", 10, 2.0, 0.58, Some("r7"), 3),
        ];
        let rep = report("s", Some("loss"), false, &runs);
        assert_eq!(rep.configurations.len(), 2);
        let (c1, c2) = (&rep.configurations[0], &rep.configurations[1]);
        // The original's lucky 0.10 is not in the statistics; a repeat of a repeat counts
        // for the root; a repeat of an unknown run is left out.
        assert_eq!(
            (c1.run.as_str(), c1.count, c1.seeds.clone()),
            ("r1", 3, vec![1, 2, 3])
        );
        assert!(close(c1.mean.unwrap(), 0.22, 1e-12));
        assert!(close(c1.std.unwrap(), 0.02, 1e-12));
        assert_eq!((c2.run.as_str(), c2.count), ("r2", 3));
        assert!(close(c2.std.unwrap(), 0.04, 1e-12));
        // Pooled: √((2·0.02² + 2·0.04²) / 4).
        let noise = rep.seed_noise.unwrap();
        assert!(close(noise, ((0.0004 + 0.0016) / 2.0f64).sqrt(), 1e-12));
        assert_eq!(rep.seed_noise_df, 4);
        // Means 0.22, 0.54 and 0.90.
        let spread = mean_std(&[0.22, 0.54, 0.90]).1.unwrap();
        assert!(close(rep.spread.unwrap(), spread, 1e-12));
        assert_eq!(rep.spread_configurations, 3);
        assert!(close(rep.ratio.unwrap(), noise / spread, 1e-12));
        let cmp = rep.comparison.unwrap();
        assert_eq!((cmp.best.as_str(), cmp.runner_up.as_str()), ("r1", "r2"));
        assert!(cmp.distinguishable && cmp.p_value < 0.01);
        assert!(close(seed_noise(&runs).unwrap(), noise, 1e-12));
    }

    #[test]
    fn close_configurations_are_not_distinguishable() {
        let runs = vec![
            run("r1", 1, 1.0, 0.1, None, 0),
            run("r2", 2, 2.0, 0.1, None, 0),
            run("r3", 3, 1.0, 0.20, Some("r1"), 1),
            run("r4", 4, 1.0, 0.30, Some("r1"), 2),
            run("r5", 5, 2.0, 0.22, Some("r2"), 1),
            run("r6", 6, 2.0, 0.32, Some("r2"), 2),
        ];
        let rep = report("s", Some("loss"), false, &runs);
        let cmp = rep.comparison.unwrap();
        assert!(!cmp.distinguishable && cmp.p_value > 0.5, "{cmp:?}");
        // Maximize reverses the order.
        let rep = report("s", Some("acc"), true, &runs);
        assert_eq!(rep.configurations[0].run, "r2");
        // Without repeats: no noise, no ratio, no comparison.
        let rep = report("s", Some("loss"), false, &runs[..2]);
        assert!(rep.seed_noise.is_none() && rep.ratio.is_none() && rep.comparison.is_none());
        assert!(rep.configurations.is_empty());
    }

    /// A small deterministic generator (xorshift64) for the change sequence below.
    fn next(x: &mut u64) -> u64 {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x
    }

    #[test]
    fn the_tally_follows_every_change_as_a_full_read() {
        // Four configurations on very different scales (so that a share of 1e6 leaving the
        // totals must not swamp shares of 1e-4), 24 repeats of them, some repeats of repeats,
        // one of a run that is not in the sweep; 600 changes of one repeat at a time.
        let mut runs: Vec<RunRow> = (0..4)
            .map(|i| run(&format!("o{i}"), i, i as f64, 1.0, None, 0))
            .collect();
        for j in 0..24i64 {
            let of = match j {
                23 => "gone".to_string(),
                j if j >= 8 && j % 3 == 0 => format!("p{}", j - 8),
                j => format!("o{}", j % 4),
            };
            let mut r = run(&format!("p{j}"), 10 + j, 0.0, 0.0, Some(&of), j);
            r.state = RunState::Queued;
            r.metric = None;
            runs.push(r);
        }
        let mut tally = NoiseTally::default();
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        let (mut known, mut unknown) = (0, 0);
        for step in 0..600 {
            let k = 4 + (next(&mut x) % 24) as usize;
            let scale = 10f64.powi(3 * (k as i32 % 4) - 3);
            let noise = (next(&mut x) % 1000) as f64 / 1000.0;
            let r = &mut runs[k];
            (r.state, r.metric) = match next(&mut x) % 6 {
                0 => (RunState::Failed, None),
                1 => (RunState::Running, Some(scale)),
                2 => (RunState::Finished, Some(f64::NAN)),
                3 => (RunState::Crashed, Some(scale * (1.0 + noise))),
                _ => (RunState::Finished, Some(scale * (1.0 + noise))),
            };
            let by_id: HashMap<&str, &RunRow> = runs.iter().map(|r| (r.id.as_str(), r)).collect();
            let r = &runs[k];
            let of = r.repeat_of.as_deref().unwrap();
            let top = by_id.contains_key(of).then(|| root(&by_id, of));
            let order = (r.number.unwrap(), r.created_ms, r.id.clone());
            tally.set(&r.id, top, order, finished_value(r));
            let full = seed_noise(&runs);
            match (tally.level(), full) {
                (None, None) => unknown += 1,
                (Some(a), Some(b)) => {
                    known += 1;
                    assert!((a - b).abs() <= 1e-9 * b, "step {step}: {a} against {b}");
                }
                other => panic!("step {step}: {other:?}"),
            }
            // The paged input gives the same figure to the bit.
            assert_eq!(
                NoiseInput::of_runs(&runs).seed_noise().map(f64::to_bits),
                full.map(f64::to_bits),
                "step {step}"
            );
        }
        assert!(
            known > 100 && unknown > 0,
            "{known} known, {unknown} unknown"
        );
    }
}
