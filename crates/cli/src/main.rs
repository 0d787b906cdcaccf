//! `hyperdial`: hyperparameter sweeps and experiment tracking in one binary.
//!
//! Each subcommand lives in its own module under `commands/` and is a thin layer over the
//! library crates; this file only parses the command line and dispatches.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;

/// Hyperparameter sweeps and experiment tracking, self-hosted, in one binary.
#[derive(Debug, Parser)]
#[command(name = "hyperdial", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a sweep file (YAML or JSON, W&B Sweeps compatible) and print what it describes.
    ///
    /// Prints the method, metric, every parameter with its distribution, the grid size,
    /// the early-termination rule and the argv of one sampled run; or every error found,
    /// with file, line, column and key path. Exits 1 when the file is invalid.
    Validate {
        /// The sweep file.
        file: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        /// Seed for the sampled example configuration.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate { file, json, seed } => commands::validate::run(&file, json, seed),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
