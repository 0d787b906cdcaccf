//! `hyperdial space FILE`: the configurations a sweep file describes, one JSON object per
//! line, for checking hyperdial's reading of a file against another implementation (the
//! differential suite in `conformance/wandb` compares it with W&B's `sweeps`).
//!
//! - `--grid` lists every grid point in order (at most `--limit`).
//! - `--sample N --seed S` draws N configurations at random, each parameter from its
//!   distribution exactly as random search draws it (one ChaCha8 stream seeded by S).
//!
//! Each line is `{"params": {dotted name: value}, "config": nested object, "argv": [...]}`,
//! `argv` being the command the agent would run (`${args_json_file}` is `args.json`), or
//! `"argv_error"` when it cannot be built, and `sweep_param_yaml` the file the agent names in
//! `WANDB_SWEEP_PARAM_PATH` for runs that use the `wandb` module. Hidden from `--help`; documented in
//! `docs/config.md`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use hyperdial_space::{command, grid, SweepConfig};
use rand::SeedableRng;
use serde_json::{json, Map, Value};

/// What to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// Every grid point, in order, at most this many.
    Grid {
        /// Largest number of points printed.
        limit: u64,
    },
    /// This many random configurations from one seeded stream.
    Sample {
        /// Number of configurations.
        count: u64,
        /// Seed of the stream.
        seed: u64,
    },
}

/// Run the command: exit 0 after printing, 1 for an invalid file (errors on stderr).
pub fn run(file: &Path, listing: Listing) -> Result<ExitCode> {
    let validated = match hyperdial_space::parse_file(file) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{}", e.render());
            return Ok(ExitCode::from(1));
        }
    };
    let config = &validated.config;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match listing {
        Listing::Grid { limit } => {
            let points = grid::iter(&config.parameters).context("no grid")?;
            for point in points.take(usize::try_from(limit).unwrap_or(usize::MAX)) {
                writeln!(out, "{}", line(config, point))?;
            }
        }
        Listing::Sample { count, seed } => {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            for _ in 0..count {
                let point = config
                    .parameters
                    .iter()
                    .map(|p| (p.name.clone(), p.distribution.sample(&mut rng)))
                    .collect();
                // As random search does: parameters whose `when` fails are left out.
                let point = hyperdial_space::condition::retain_active(&config.parameters, point);
                writeln!(out, "{}", line(config, point))?;
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// One output line for a configuration.
fn line(config: &SweepConfig, point: Vec<(String, Value)>) -> Value {
    let params: Map<String, Value> = point.into_iter().collect();
    let args = command::args_for(config, &params);
    let nested: Value = serde_json::from_str(&command::args_json(&args)).unwrap_or(Value::Null);
    let env = |name: &str| std::env::var(name).ok();
    let param_file = command::sweep_param_yaml(&args);
    match command::expand_config(config, &args, Some(Path::new("args.json")), &env) {
        Ok(argv) => {
            json!({"params": params, "config": nested, "argv": argv, "sweep_param_yaml": param_file})
        }
        Err(e) => json!({"params": params, "config": nested, "argv_error": e.to_string(),
                         "sweep_param_yaml": param_file}),
    }
}
