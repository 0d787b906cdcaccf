//! Finite spaces: `bayes` and `tpe` run each configuration once.
//!
//! When every searched dimension has finitely many values ([`Space::size`]: `values` lists,
//! categoricals, `int_uniform`, bounded `q_*`), a model-based strategy that proposes a
//! configuration already tried wastes a run: with a deterministic metric it learns nothing,
//! and even with a noisy one a new configuration is nearly always worth more while untried
//! ones remain. So, unless the sweep sets `allow_repeats: true`:
//!
//! - every run of the sweep, whatever its state (queued, running, finished, failed, crashed,
//!   stopped, cancelled), *takes* its configuration ([`Taken`]); a configuration that failed
//!   runs again only through `retry` or `hyperdial retry`, as in a grid;
//! - suggestions are drawn among the configurations not taken: the initial design walks on
//!   along the sweep's Sobol sequence past taken points, the model phases score only
//!   untried candidates (and, in a space of at most [`ENUMERATE_MAX`] configurations, every
//!   untried one), and when no candidate is left a uniformly random untried configuration
//!   is proposed ([`Taken::random_untried`]);
//! - once every configuration is taken the strategy answers [`crate::Ask::Exhausted`], and
//!   the controller ends the sweep as it ends a grid (after the runs in flight end).
//!
//! A space of more than [`ENUMERATE_MAX`] configurations is searched as before, with taken
//! candidates skipped; there a random untried configuration is found by rejection (at most
//! [`REJECTION_TRIES`] draws) and then, in spaces of at most [`SCAN_MAX`] configurations,
//! by scanning from a random index, so a duplicate is never proposed while one is free. Above
//! [`SCAN_MAX`] configurations, with fewer than one in a thousand free (a sweep of more than
//! a million runs), the last draw is proposed even if taken.

use std::collections::HashSet;

use hyperdial_space::SweepConfig;
use rand::Rng;

use crate::encode::{Point, Space};
use crate::Trial;

/// Spaces up to this many configurations are enumerated: the model scores every untried one.
pub const ENUMERATE_MAX: u128 = 2048;
/// Random draws tried before scanning for an untried configuration.
pub const REJECTION_TRIES: usize = 1024;
/// Spaces up to this many configurations are scanned when rejection fails.
pub const SCAN_MAX: u128 = 1 << 22;

/// The configurations a sweep's runs have taken, in a finite space.
#[derive(Debug, Clone)]
pub struct Taken {
    /// The number of configurations of the space.
    pub size: u128,
    keys: HashSet<String>,
}

impl Taken {
    /// The taken configurations of `trials`, when the rule applies: the space is finite and
    /// not empty, and the sweep does not set `allow_repeats`. Trials whose parameters are
    /// not in the space (the config changed) take nothing.
    pub fn new(config: &SweepConfig, space: &Space<'_>, trials: &[Trial]) -> Option<Self> {
        if config.allow_repeats || space.is_empty() {
            return None;
        }
        let size = space.size()?;
        let keys = trials
            .iter()
            .filter_map(|t| space.encode(&t.params))
            .map(|mut p| {
                space.snap(&mut p);
                space.key(&p)
            })
            .collect();
        Some(Taken { size, keys })
    }

    /// The number of distinct configurations taken.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no configuration is taken.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether every configuration is taken.
    pub fn exhausted(&self) -> bool {
        self.keys.len() as u128 >= self.size
    }

    /// Whether the (snapped) point's configuration is taken.
    pub fn contains(&self, space: &Space<'_>, point: &[f64]) -> bool {
        self.keys.contains(&space.key(point))
    }

    /// Every untried configuration, in enumeration order, when the space has at most
    /// [`ENUMERATE_MAX`] configurations.
    pub fn untried(&self, space: &Space<'_>) -> Option<Vec<Point>> {
        if self.size > ENUMERATE_MAX {
            return None;
        }
        Some(
            (0..self.size)
                .filter_map(|i| space.nth(i))
                .filter(|p| !self.contains(space, p))
                .collect(),
        )
    }

    /// A uniformly random untried configuration (see the module docs for the limits);
    /// `None` only when every configuration is taken.
    pub fn random_untried<R: Rng>(&self, space: &Space<'_>, rng: &mut R) -> Option<Point> {
        if self.exhausted() {
            return None;
        }
        let size64 = u64::try_from(self.size).unwrap_or(u64::MAX);
        let draw = |rng: &mut R| u128::from(rng.random_range(0..size64));
        let mut last = None;
        for _ in 0..REJECTION_TRIES {
            let p = space.nth(draw(rng))?;
            if !self.contains(space, &p) {
                return Some(p);
            }
            last = Some(p);
        }
        if self.size <= SCAN_MAX {
            let start = draw(rng);
            return (0..self.size)
                .map(|k| (start + k) % self.size)
                .filter_map(|i| space.nth(i))
                .find(|p| !self.contains(space, p));
        }
        last
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn config(text: &str) -> SweepConfig {
        hyperdial_space::parse_str(text, "t.yaml").unwrap().config
    }

    #[test]
    fn sizes_and_enumeration_cover_every_configuration_once() {
        let c = config(
            "method: bayes\nmetric: {name: m}\nparameters:\n  a: {values: [16, 32, 64, 128]}\n  b: {values: [x, y, z]}\n  c: {distribution: int_uniform, min: 1, max: 2}\n  d: {distribution: q_log_uniform_values, min: 1, max: 100, q: 10}\n  e: {value: 7}\n",
        );
        let space = Space::new(&c);
        assert_eq!(space.size(), Some(4 * 3 * 2 * 10));
        let keys: HashSet<String> = (0..240)
            .map(|i| space.key(&space.nth(i).unwrap()))
            .collect();
        assert_eq!(keys.len(), 240);
        assert!(space.nth(240).is_none());
        // Enumerated points are their own snapped form and encode back to themselves.
        for i in [0, 17, 239] {
            let p = space.nth(i).unwrap();
            let params = space.decode(&p).into_iter().collect();
            assert_eq!(space.encode(&params).unwrap(), p);
        }
    }

    #[test]
    fn continuous_spaces_are_not_finite_and_huge_ones_saturate() {
        let c = config("method: bayes\nmetric: {name: m}\nparameters: {a: {min: 0.0, max: 1.0}, b: {values: [1, 2, 3]}}\n");
        assert_eq!(Space::new(&c).size(), None);
        let big = "method: bayes\nmetric: {name: m}\nparameters: {a: {distribution: int_uniform, min: -9223372036854775808, max: 9223372036854775807}, b: {distribution: int_uniform, min: -9223372036854775808, max: 9223372036854775807}}\n";
        assert_eq!(Space::new(&config(big)).size(), Some(u128::MAX));
    }

    #[test]
    fn random_untried_finds_the_last_free_configuration() {
        let c = config("method: tpe\nmetric: {name: m}\nparameters: {a: {values: [1, 2, 3, 4, 5]}, b: {values: [p, q]}}\n");
        let space = Space::new(&c);
        let all: Vec<Point> = (0..10).map(|i| space.nth(i).unwrap()).collect();
        let trials: Vec<Trial> = all[..9]
            .iter()
            .map(|p| Trial {
                params: space.decode(p).into_iter().collect(),
                ..Default::default()
            })
            .collect();
        let taken = Taken::new(&c, &space, &trials).unwrap();
        assert_eq!(taken.len(), 9);
        assert!(!taken.exhausted());
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let p = taken.random_untried(&space, &mut rng).unwrap();
        assert_eq!(space.key(&p), space.key(&all[9]));
        assert_eq!(taken.untried(&space).unwrap(), vec![all[9].clone()]);
        let mut all_trials = trials;
        all_trials.push(Trial {
            params: space.decode(&all[9]).into_iter().collect(),
            ..Default::default()
        });
        let taken = Taken::new(&c, &space, &all_trials).unwrap();
        assert!(taken.exhausted());
        assert!(taken.random_untried(&space, &mut rng).is_none());
    }

    #[test]
    fn allow_repeats_turns_the_rule_off() {
        let c = config("method: tpe\nmetric: {name: m}\nallow_repeats: true\nparameters: {a: {values: [1, 2, 3]}}\n");
        let space = Space::new(&c);
        assert!(Taken::new(&c, &space, &[]).is_none());
    }
}
