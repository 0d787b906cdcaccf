//! `hyperdial importance SWEEP`: which parameters matter for the sweep's metric, from
//! `GET /api/v1/sweeps/{id}/importance` (a random forest over the runs, see the API docs).
//!
//! Read like `best` (a server, or the local store without one; see [`crate::source`]).
//! Prints a table of the parameters, most important first, with each importance and main
//! effect and their spread across the sub-forests (`± sd`), and the correlations; then how
//! many runs were used and whether the evidence suffices. When it does not (`too_few_runs`,
//! `no_signal`) the command says why and what to do: how many more runs the rule needs, and
//! the command that runs them (`hyperdial tune` on a local store, the `hyperdial agent` that
//! reaches the server as `sweep` prints it, or the Python client's trials); or counting the
//! sweep's stopped-early runs too (`--states`), when it has some. The correlations are still
//! shown. `--json` prints the API's answer as it is.
//!
//! Exit status: 0 with an answer (`enough`, or `no_signal`: the runs say the parameters do not
//! predict the metric); 1 when the runs are too few for importances (`too_few_runs`), so a
//! script can tell the table from no answer: the text form then writes the table of
//! correlations on standard output and why there are no importances, and what to do, on
//! standard error; `--json` still prints the answer on standard output; 2 for an error.

use std::process::ExitCode;

use anyhow::{Context, Result};
use comfy_table::{presets::UTF8_BORDERS_ONLY, CellAlignment, Table};
use hyperdial_wire::api::{AxisKind, Evidence, Goal, Importance};
use hyperdial_wire::RunState;

use super::manage::urlencode;
use crate::api::Api;
use crate::source::Source;

/// `hyperdial importance SWEEP`: `states` are the run states whose runs count (empty: the
/// server's default, `finished`); `via` is what the command read, for the commands it
/// suggests.
pub async fn run(
    api: &Api,
    via: &Source,
    sweep: &str,
    states: &[RunState],
    as_json: bool,
) -> Result<ExitCode> {
    let path = importance_path(sweep, states);
    let answer = api.get(&path).await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        let too_few = answer["evidence"] == "too_few_runs";
        return Ok(exit_status(too_few));
    }
    let imp: Importance = serde_json::from_value(answer)
        .context("the server's importance answer is not in the expected form")?;
    let advice = if imp.evidence == Evidence::Enough {
        Advice::default()
    } else {
        let info = api
            .get(&format!("/api/v1/sweeps/{}", urlencode(sweep)))
            .await
            .unwrap_or_default();
        advice(api, via, sweep, &info)
    };
    // The read options are repeated only in a suggested command (`flags` notes a token).
    let flags = if imp.evidence == Evidence::Enough {
        String::new()
    } else {
        via.flags()
    };
    let text = render(&imp, sweep, states, &flags, &advice);
    print!("{}", text.table);
    eprint!("{}", text.explanation);
    Ok(exit_status(imp.evidence == Evidence::TooFewRuns))
}

/// 1 when the runs are too few for importances (no answer), else 0.
fn exit_status(too_few_runs: bool) -> ExitCode {
    if too_few_runs {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// What the text form prints: `table` on standard output; `explanation` on standard error
/// (empty unless the runs are too few: then why there are no importances, and what to do).
struct Rendered {
    table: String,
    explanation: String,
}

/// The API path: `state=` only when states were asked for.
fn importance_path(sweep: &str, states: &[RunState]) -> String {
    let mut path = format!("/api/v1/sweeps/{}/importance", urlencode(sweep));
    if !states.is_empty() {
        let words: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
        path.push_str(&format!("?state={}", words.join(",")));
    }
    path
}

/// A share (0 to 1) with its spread: `0.624 ± 0.051`; `—` without one.
fn share(value: Option<f64>, sd: Option<f64>) -> String {
    match (value, sd) {
        (Some(v), Some(sd)) => format!("{v:.3} ± {sd:.3}"),
        (Some(v), None) => format!("{v:.3}"),
        _ => "—".to_string(),
    }
}

/// A correlation with two decimals (`-0.81`), `—` without one.
fn correlation(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_string(), |v| format!("{v:.2}"))
}

/// The states as the command line writes them: `finished,stopped_early`.
fn state_list(states: &[RunState]) -> String {
    states
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// What runs more of a sweep, for the advice when its runs are too few.
#[derive(Clone, Debug, PartialEq, Eq)]
enum RunsMore {
    /// `hyperdial tune` on the local store starts its program or command: the sweep's file
    /// (`FILE` when unknown) and the store's `--db`, if one was named.
    Tune {
        /// The sweep's file, as it was created from.
        file: String,
        /// ` --db DB`, or empty.
        db: String,
    },
    /// Agents start its program or command: the `hyperdial agent` command that reaches the
    /// server ([`super::manage::agent_command`], in backticks).
    Agents(String),
    /// It has neither program nor command: the Python client's trials are its runs.
    Client,
    /// It has ended (`finished` or `cancelled`): it hands out no more runs, so more runs are
    /// a new sweep of its file (`file`, `FILE` when unknown; `local`: on the local store).
    Ended {
        /// The sweep's final state.
        state: String,
        /// The sweep's file.
        file: String,
        /// Whether the sweep is in the local store (`tune --new`) rather than on a server.
        local: bool,
    },
}

/// What the advice for too few runs (or no signal) needs to know of the sweep.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Advice {
    /// What runs more of it.
    runs_more: RunsMore,
    /// Whether it has runs stopped early (only then is counting them suggested).
    stopped_early: bool,
    /// Its runs that ended `failed` or `crashed`: when the runs are too few, they are the
    /// first thing to look at (and `hyperdial retry` runs them again).
    failed: u64,
}

impl Default for Advice {
    fn default() -> Advice {
        Advice {
            runs_more: RunsMore::Tune {
                file: "FILE".into(),
                db: String::new(),
            },
            stopped_early: false,
            failed: 0,
        }
    }
}

/// The advice for sweep `sweep` (its answer `info`, `null` when it could not be read), read
/// through `api` as `via` says: the Python client for a sweep without program or command,
/// else `tune` on a local store or agents of the server; and whether it has stopped-early runs.
fn advice(api: &Api, via: &Source, sweep: &str, info: &serde_json::Value) -> Advice {
    let by_client = info.is_object()
        && info["config"]["program"].is_null()
        && info["config"]["command"].is_null();
    let file = || {
        info["file"]
            .as_str()
            .map(super::validate::shell_quote)
            .unwrap_or_else(|| "FILE".into())
    };
    let state = info["state"].as_str().unwrap_or_default();
    let runs_more = if matches!(state, "finished" | "cancelled") {
        RunsMore::Ended {
            state: state.to_string(),
            file: file(),
            local: api.is_local_store(),
        }
    } else if by_client {
        RunsMore::Client
    } else if api.is_local_store() {
        RunsMore::Tune {
            file: file(),
            db: if via.db.is_some() {
                via.flags()
            } else {
                String::new()
            },
        }
    } else {
        RunsMore::Agents(super::manage::agent_command(
            sweep,
            api.base(),
            &via.remote,
            false,
        ))
    };
    Advice {
        runs_more,
        stopped_early: info["counts"]["stopped_early"]
            .as_i64()
            .is_some_and(|n| n > 0),
        failed: ["failed", "crashed"]
            .iter()
            .filter_map(|s| info["counts"][s].as_u64())
            .sum(),
    }
}

/// The whole text the command prints for `imp` (each line ending in a newline); `flags`
/// are the read options to repeat in a suggested command ([`Source::flags`]); `advice`
/// says what to advise when the runs are too few.
fn render(
    imp: &Importance,
    sweep: &str,
    asked: &[RunState],
    flags: &str,
    advice: &Advice,
) -> Rendered {
    let mut out = String::new();
    let mut explanation = String::new();
    let metric = imp.metric.as_deref().unwrap_or("the metric");
    let states = state_list(&imp.states);
    let in_states = if imp.states == [RunState::Finished] {
        "finished runs".to_string()
    } else {
        format!("runs in states {states}")
    };
    let goal = match imp.goal {
        Goal::Minimize => "minimize",
        Goal::Maximize => "maximize",
    };
    out.push_str(&format!(
        "parameter importance for {metric} ({goal}) in sweep {sweep}: {} {in_states} with {metric}",
        imp.runs
    ));
    if imp.forest_runs != imp.runs && imp.forest_runs > 0 {
        out.push_str(&format!(
            " (the forest grown on an even subsample of {})",
            imp.forest_runs
        ));
    }
    out.push('\n');
    if !imp.params.is_empty() {
        let mut t = Table::new();
        t.load_preset(UTF8_BORDERS_ONLY);
        t.set_header([
            "parameter",
            "scale",
            "importance ± sd",
            "main effect ± sd",
            "pearson",
            "spearman",
        ]);
        for p in &imp.params {
            let scale = match p.kind {
                AxisKind::Linear => "linear",
                AxisKind::Log => "log",
                AxisKind::Category => "category",
            };
            t.add_row([
                p.name.clone(),
                scale.to_string(),
                share(p.importance, p.importance_sd),
                share(p.main_effect, p.main_effect_sd),
                correlation(p.pearson),
                correlation(p.spearman),
            ]);
        }
        for column in 2..6 {
            if let Some(c) = t.column_mut(column) {
                c.set_cell_alignment(CellAlignment::Right);
            }
        }
        out.push_str(&format!("{t}\n"));
    } else {
        out.push_str("no parameter varies in these runs\n");
    }
    let r2 = imp
        .oob_r2
        .map_or_else(|| "not measurable".to_string(), |r| format!("{r:.2}"));
    // Said only when the table shows one: too few runs (or no numeric parameter) leave none.
    let correlations = if imp
        .params
        .iter()
        .any(|p| p.pearson.is_some() || p.spearman.is_some())
    {
        " (correlations are still given, for numeric parameters)"
    } else {
        ""
    };
    match imp.evidence {
        Evidence::Enough => {
            out.push_str(&format!(
                "evidence: enough ({} runs, at least {} needed; out-of-bag R² {r2}). \
                 Importances are shares of the forest's fit (they sum to 1), ± their spread \
                 across {} sub-forests: two parameters whose importances differ by less than \
                 their spreads are not ranked by the data.\n",
                imp.runs, imp.min_runs, imp.sub_forests
            ));
        }
        Evidence::TooFewRuns => {
            explanation.push_str(&format!(
                "evidence: too_few_runs: {} {in_states} with {metric}, at least {} needed for \
                 importances{correlations}.\n",
                imp.runs, imp.min_runs
            ));
            explanation.push_str(&more_runs_hint(imp, sweep, asked, flags, advice));
        }
        Evidence::NoSignal => {
            out.push_str(&format!(
                "evidence: no_signal: the forest predicts {metric} no better than its mean \
                 (out-of-bag R² {r2}, {} runs), so any ranking of the parameters would be noise\
                 {correlations}.\n",
                imp.runs
            ));
            out.push_str(&more_runs_hint(imp, sweep, asked, flags, advice));
        }
    }
    Rendered {
        table: out,
        explanation,
    }
}

/// What to do when the evidence does not suffice: more runs (with too few, how many more the
/// rule needs: [`Importance::min_runs`] in all); and, when the sweep has stopped-early runs
/// that were left out, how to count them too.
fn more_runs_hint(
    imp: &Importance,
    sweep: &str,
    asked: &[RunState],
    flags: &str,
    advice: &Advice,
) -> String {
    let missing = imp.min_runs.saturating_sub(imp.runs);
    let metric = imp.metric.as_deref().unwrap_or("the metric");
    // `finished runs`, or `runs in states failed,crashed`, for `n` runs.
    let which_runs = |n: u64| {
        let runs = if n == 1 { "run" } else { "runs" };
        if imp.states == [RunState::Finished] {
            format!("finished {runs}")
        } else {
            format!("{runs} in states {}", state_list(&imp.states))
        }
    };
    let (how_many, count) = if imp.evidence == Evidence::TooFewRuns && missing > 0 {
        let which = which_runs(missing);
        (
            format!(
                "{missing} more {which} with {metric} (at least {} in all)",
                imp.min_runs
            ),
            missing.to_string(),
        )
    } else {
        ("more runs".to_string(), "N".to_string())
    };
    let mut hint = match &advice.runs_more {
        RunsMore::Tune { file, db } => format!(
            "  to get importances: {how_many}; run them with `hyperdial tune {file} --count \
             {count}{db}` (it resumes sweep {sweep})"
        ),
        RunsMore::Agents(agent) => {
            format!("  to get importances: {how_many}; start agents with {agent}")
        }
        RunsMore::Ended { state, file, local } if imp.evidence == Evidence::NoSignal => {
            let new = if *local {
                format!("`hyperdial tune {file} --new{flags}`")
            } else {
                format!("`hyperdial sweep {file}{flags}` and agents")
            };
            // Enough runs, no signal: more of the same count is not the fix.
            format!(
                "  what it means: over the ranges searched the parameters explain none of \
                 {metric}'s spread across {} runs: they matter little there, or the metric's \
                 noise hides what they do (`hyperdial repeat {sweep}{flags}`, then `hyperdial \
                 noise {sweep}{flags}`, measures that noise). Sweep {sweep} has ended ({state}); \
                 a new sweep of its file ({new}) with wider ranges or more runs may find a signal",
                imp.runs
            )
        }
        RunsMore::Ended { state, file, local } => {
            let new = if *local {
                format!("`hyperdial tune {file} --new{flags}`")
            } else {
                format!("`hyperdial sweep {file}{flags}` and agents")
            };
            // A new sweep's importances count its own runs only: all of them, not the missing.
            // Runs stopped early are left out unless counted, so a sweep with early
            // termination needs a `run_cap` above the count.
            let cap = if advice.stopped_early && !imp.states.contains(&RunState::StoppedEarly) {
                "well above that, since its early termination stops runs short and those are \
                 left out"
            } else {
                "of at least that (a grid, that many configurations)"
            };
            format!(
                "  to get importances: sweep {sweep} has ended ({state}) and runs no more \
                 trials; a new sweep of its file ({new}) needs at least {} {} of its own with \
                 {metric}: give it a `run_cap` {cap}",
                imp.min_runs,
                which_runs(imp.min_runs),
            )
        }
        RunsMore::Client => format!(
            "  to get importances: {how_many}; run more trials of the sweep from the Python \
             client (`Sweep.create(..., resume=True)`, then `sweep.optimize(objective, \
             n_trials={count})` or more ask/tell)"
        ),
    };
    if advice.failed > 0 && imp.evidence == Evidence::TooFewRuns {
        // Runs that failed count for nothing: why they failed comes before more runs.
        let runs = if advice.failed == 1 { "run" } else { "runs" };
        hint.push_str(&format!(
            "\n  {} of its {runs} failed or crashed: see why with `hyperdial runs {sweep} --state \
             failed{flags}` and `hyperdial output RUN{flags}`; once fixed, `hyperdial retry \
             {sweep}{flags}` runs them again",
            advice.failed
        ));
    }
    if advice.stopped_early && !imp.states.contains(&RunState::StoppedEarly) {
        let mut with: Vec<RunState> = if asked.is_empty() {
            imp.states.clone()
        } else {
            asked.to_vec()
        };
        with.push(RunState::StoppedEarly);
        let default = if asked.is_empty() {
            " (they are left out by default: a run stopped early reports a value that says how \
             long it ran more than how good its parameters were)"
        } else {
            ""
        };
        hint.push_str(&format!(
            ";\n  or count the sweep's runs stopped early too: `hyperdial importance {sweep} --states {}{flags}`{default}",
            state_list(&with)
        ));
    }
    hint.push('\n');
    hint
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyperdial_wire::api::ParamImportance;

    fn answer(evidence: Evidence, runs: u64, with_values: bool) -> Importance {
        let v = |x: f64| with_values.then_some(x);
        Importance {
            method: "random_forest".into(),
            trees: 100,
            sub_forests: 5,
            states: vec![RunState::Finished],
            runs,
            forest_runs: runs,
            min_runs: 10,
            evidence,
            goal: hyperdial_wire::api::Goal::Minimize,
            oob_r2: v(0.81),
            params: vec![ParamImportance {
                name: "lr".into(),
                kind: AxisKind::Log,
                importance: v(0.6238),
                importance_sd: v(0.0512),
                main_effect: v(0.55),
                main_effect_sd: v(0.04),
                pearson: Some(-0.812),
                spearman: Some(-0.79),
            }],
            metric: Some("val_loss".into()),
            compute_ms: 3,
            cached: false,
        }
    }

    /// What is printed on standard error for 4 finished runs of 10 needed, with `advice`.
    fn too_few(advice: &Advice) -> String {
        render(
            &answer(Evidence::TooFewRuns, 4, false),
            "s1",
            &[],
            "",
            advice,
        )
        .explanation
    }

    fn tune_advice(stopped_early: bool) -> Advice {
        Advice {
            runs_more: RunsMore::Tune {
                file: "sweep.yaml".into(),
                db: " --db x.db".into(),
            },
            stopped_early,
            failed: 0,
        }
    }

    #[test]
    fn the_table_carries_the_spread_and_the_evidence() {
        let rendered = render(
            &answer(Evidence::Enough, 24, true),
            "s1",
            &[],
            "",
            &Advice::default(),
        );
        assert_eq!(rendered.explanation, "");
        let text = rendered.table;
        assert!(text.contains("0.624 ± 0.051"), "{text}");
        assert!(text.contains("-0.81"), "{text}");
        assert!(text.contains("24 finished runs with val_loss"), "{text}");
        assert!(text.contains("evidence: enough"), "{text}");
    }

    #[test]
    fn too_few_runs_says_how_many_more_and_what_to_do() {
        let rendered = render(
            &answer(Evidence::TooFewRuns, 4, false),
            "s1",
            &[],
            " --db x.db",
            &tune_advice(true),
        );
        // The correlations on standard output, why there are no importances on standard error.
        assert!(rendered.table.contains("-0.81"), "{}", rendered.table);
        assert!(!rendered.table.contains("evidence"), "{}", rendered.table);
        assert!(
            rendered
                .explanation
                .contains("(correlations are still given, for numeric parameters)"),
            "{}",
            rendered.explanation
        );
        // Too few runs for a correlation either: the table shows none, and so says nothing of
        // them.
        let mut none = answer(Evidence::TooFewRuns, 2, false);
        none.params[0].pearson = None;
        none.params[0].spearman = None;
        let bare = render(&none, "s1", &[], "", &tune_advice(false)).explanation;
        assert!(!bare.contains("correlations"), "{bare}");
        let text = rendered.explanation;
        assert!(
            text.contains("evidence: too_few_runs: 4 finished runs"),
            "{text}"
        );
        assert!(text.contains("at least 10 needed"), "{text}");
        assert!(
            text.contains(
                "to get importances: 6 more finished runs with val_loss (at least 10 in all); \
                 run them with `hyperdial tune sweep.yaml --count 6 --db x.db`"
            ),
            "{text}"
        );
        assert!(
            text.contains("`hyperdial importance s1 --states finished,stopped_early --db x.db`"),
            "{text}"
        );
        assert!(text.contains("left out by default"), "{text}");
        assert_eq!(
            importance_path("s 1", &[RunState::Finished, RunState::StoppedEarly]),
            "/api/v1/sweeps/s%201/importance?state=finished,stopped_early"
        );
        assert_eq!(importance_path("s1", &[]), "/api/v1/sweeps/s1/importance");
        // One short of the rule: singular.
        let text = render(
            &answer(Evidence::TooFewRuns, 9, false),
            "s1",
            &[],
            "",
            &tune_advice(false),
        )
        .explanation;
        assert!(
            text.contains(": 1 more finished run with val_loss"),
            "{text}"
        );
    }

    #[test]
    fn counting_stopped_early_runs_is_suggested_only_when_the_sweep_has_some() {
        let text = too_few(&tune_advice(false));
        assert!(!text.contains("stopped_early"), "{text}");
        assert!(!text.contains("--states"), "{text}");
    }

    #[test]
    fn a_sweep_on_a_server_is_told_the_agent_command_that_reaches_it() {
        let advice = Advice {
            runs_more: RunsMore::Agents(
                "`hyperdial agent s1 --server https://sweeps.lan:8337`".into(),
            ),
            stopped_early: false,
            failed: 0,
        };
        let text = too_few(&advice);
        assert!(
            text.contains(
                "6 more finished runs with val_loss (at least 10 in all); start agents with \
                 `hyperdial agent s1 --server https://sweeps.lan:8337`"
            ),
            "{text}"
        );
        assert!(!text.contains("hyperdial tune"), "{text}");
    }

    #[test]
    fn a_sweep_of_the_python_client_is_told_to_run_more_trials_from_it() {
        let advice = Advice {
            runs_more: RunsMore::Client,
            stopped_early: false,
            failed: 0,
        };
        let text = too_few(&advice);
        assert!(
            text.contains("sweep.optimize(objective, n_trials=6)"),
            "{text}"
        );
        assert!(!text.contains("hyperdial agent"), "{text}");
        assert!(!text.contains("hyperdial tune"), "{text}");
    }

    /// The advice for a finished sweep of `sweep.yaml` on the local store.
    fn ended_advice() -> Advice {
        Advice {
            runs_more: RunsMore::Ended {
                state: "finished".into(),
                file: "sweep.yaml".into(),
                local: true,
            },
            stopped_early: false,
            failed: 0,
        }
    }

    #[test]
    fn an_ended_sweep_is_told_to_run_a_new_sweep_not_agents() {
        let advice = ended_advice();
        let text = too_few(&advice);
        assert!(
            text.contains(
                "sweep s1 has ended (finished) and runs no more trials; a new sweep of its \
                 file (`hyperdial tune sweep.yaml --new`) needs at least 10 finished runs of its \
                 own with val_loss"
            ),
            "{text}"
        );
        assert!(!text.contains("hyperdial agent"), "{text}");
        assert!(!text.contains("--count"), "{text}");
        assert!(
            text.contains("give it a `run_cap` of at least that"),
            "{text}"
        );
        // Its early termination stopped runs, which are left out: a cap of the count is short.
        let stopped = Advice {
            stopped_early: true,
            ..ended_advice()
        };
        let text = too_few(&stopped);
        assert!(
            text.contains(
                "give it a `run_cap` well above that, since its early termination stops runs \
                 short and those are left out"
            ),
            "{text}"
        );
    }

    /// Enough runs, no signal, sweep over: the runs are not too few, so no minimum is named;
    /// the hint says what no signal means and how to measure the noise.
    #[test]
    fn an_ended_sweep_without_signal_is_not_told_it_has_too_few_runs() {
        let advice = ended_advice();
        let text = render(
            &answer(Evidence::NoSignal, 20, true),
            "s1",
            &[],
            "",
            &advice,
        )
        .table;
        assert!(text.contains("evidence: no_signal"), "{text}");
        assert!(!text.contains("at least 10"), "{text}");
        assert!(!text.contains("run_cap"), "{text}");
        assert!(
            text.contains("explain none of val_loss's spread across 20 runs"),
            "{text}"
        );
        assert!(
            text.contains("`hyperdial repeat s1`, then `hyperdial noise s1`"),
            "{text}"
        );
    }

    /// Too few runs because runs failed: why they failed comes first, then `retry`.
    #[test]
    fn too_few_runs_with_failures_points_at_them_first() {
        let advice = Advice {
            failed: 5,
            ..tune_advice(false)
        };
        let text = too_few(&advice);
        assert!(
            text.contains(
                "5 of its runs failed or crashed: see why with `hyperdial runs s1 --state \
                 failed` and `hyperdial output RUN`; once fixed, `hyperdial retry s1` runs them \
                 again"
            ),
            "{text}"
        );
        assert!(!too_few(&tune_advice(false)).contains("failed or crashed"));
    }
}
