//! How a sweep's `budget` is shown: the end reason beside the state in `hyperdial sweeps`,
//! and `hyperdial budget SWEEP`, which prints what is left of each limit and when the sweep
//! is expected to end (from the API's `budget` of the sweep).

use std::process::ExitCode;

use anyhow::Result;
use serde_json::Value;

use super::manage::urlencode;
use crate::api::Api;

/// A sweep's state with what ended it, e.g. `finished (stagnation)`, `finished (stop)`; a
/// reason that only repeats the state (`cancelled` by `cancel`) is left out.
pub fn state_word(sweep: &Value) -> String {
    let state = sweep["state"].as_str().unwrap_or("").to_string();
    match sweep["end_reason"].as_str() {
        // A sweep running again (its retries) is not over, whatever it ended by before.
        _ if matches!(state.as_str(), "running" | "paused") => state,
        Some("cancel") if state == "cancelled" => state,
        Some(reason) => format!("{state} ({reason})"),
        None => state,
    }
}

/// Why an ended sweep ended, in words.
pub fn end_why(sweep: &Value) -> &'static str {
    match sweep["end_reason"].as_str() {
        Some("stagnation") => "its best value stopped improving (budget stagnation)",
        Some("wall_time") => "its wall-time budget ran out",
        Some("run_hours") => "its run-hours budget was used",
        Some("stop") => "stopped by hand (`hyperdial stop`)",
        Some("cancel") => "cancelled by hand (`hyperdial cancel`)",
        _ if sweep["state"] == "cancelled" => "cancelled by hand (`hyperdial cancel`)",
        _ => "no budget limit ended it: its space, run_cap or metric target is done",
    }
}

/// Seconds as `1h 05m`, `4m 10s` or `12s`.
/// Run-hours with their significant digits (a budget of 0.01 h is not "0.00 left"), and the
/// run time they make below an hour: `0.00306 (11s of run time)`.
fn run_hours(hours: f64) -> String {
    let shown = super::number::general(hours, 3);
    if hours > 0.0 && hours < 1.0 {
        format!("{shown} ({} of run time)", duration(hours * 3600.0))
    } else {
        shown
    }
}

fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// The lines `hyperdial budget` prints for a sweep (the API's view of it).
pub fn lines(sweep: &Value) -> Vec<String> {
    let mut out = vec![format!(
        "sweep {}: {}",
        sweep["id"].as_str().unwrap_or("?"),
        state_word(sweep)
    )];
    let b = &sweep["budget"];
    if b.is_null() {
        out.push("no budget: the sweep ends on run_cap, its metric target, once a finite space has run, or by hand".into());
        return out;
    }
    let limits = &sweep["config"]["budget"];
    // An ended sweep spends nothing more: say what ended it rather than what would be left.
    let ended = !matches!(sweep["state"].as_str(), Some("running" | "paused"));
    if ended {
        out.push(format!("ended: {}", end_why(sweep)));
    }
    if let (Some(left), Some(total)) = (
        b["wall_time_left_s"].as_f64(),
        limits["wall_time_s"].as_f64(),
    ) {
        out.push(if ended {
            format!("wall time:   limit {}", duration(total))
        } else {
            format!(
                "wall time:   {} left of {}",
                duration(left),
                duration(total)
            )
        });
    }
    if let (Some(left), Some(total)) = (b["run_hours_left"].as_f64(), limits["run_hours"].as_f64())
    {
        out.push(if ended {
            format!(
                "run-hours:   {} used of {total}",
                run_hours((total - left).max(0.0))
            )
        } else {
            format!("run-hours:   {} left of {total}", run_hours(left))
        });
    }
    let st = &limits["stagnation"];
    if !st.is_null() {
        let mut rule = Vec::new();
        if let Some(n) = st["runs"].as_u64() {
            rule.push(format!("{n} runs"));
        }
        if let Some(f) = st["fraction"].as_f64() {
            rule.push(format!("{:.0} % of the elapsed time", f * 100.0));
        }
        out.push(format!(
            "stagnation:  {} runs and {} since the last improvement beyond {} (ends after {})",
            b["runs_since_improvement"],
            duration(b["since_improvement_s"].as_f64().unwrap_or(0.0)),
            match &st["min_delta"] {
                Value::String(w) if w == "noise" => match b["min_delta"].as_f64() {
                    Some(n) if n > 0.0 => {
                        format!("the measured seed noise ({})", super::number::metric(n))
                    }
                    _ => "the seed noise (not measured yet: 0)".to_string(),
                },
                other => other.to_string(),
            },
            rule.join(" or ")
        ));
    }
    match (b["estimated_end_ms"].as_i64(), b["first_limit"].as_str()) {
        (Some(at), Some(limit)) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0);
            out.push(format!(
                "estimated end: in {} ({limit})",
                duration((at - now) as f64 / 1e3)
            ));
        }
        _ if sweep["state"] == "running" || sweep["state"] == "paused" => {
            out.push("estimated end: not known yet (no run has finished)".into())
        }
        _ => {}
    }
    out
}

/// `hyperdial budget SWEEP`, asking `api` (a server, or the local store served in this
/// process, see [`crate::source`]).
pub async fn run(api: &Api, sweep: &str) -> Result<ExitCode> {
    let v = api
        .get(&format!("/api/v1/sweeps/{}", urlencode(sweep)))
        .await?;
    for line in lines(&v) {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_state_word_names_what_ended_the_sweep_unless_it_repeats_the_state() {
        let word =
            |state: &str, reason: Value| state_word(&json!({"state": state, "end_reason": reason}));
        assert_eq!(
            word("finished", json!("stagnation")),
            "finished (stagnation)"
        );
        assert_eq!(word("finished", json!("stop")), "finished (stop)");
        assert_eq!(word("cancelled", json!("cancel")), "cancelled");
        assert_eq!(word("running", Value::Null), "running");
        // Reopened for its retries by a version that kept the old reason.
        assert_eq!(word("running", json!("run_cap")), "running");
    }

    #[test]
    fn small_run_hours_keep_their_digits() {
        assert_eq!(run_hours(0.00306), "0.00306 (11s of run time)");
        assert_eq!(run_hours(0.5), "0.5 (30m 00s of run time)");
        assert_eq!(run_hours(12.75), "12.8");
        assert_eq!(run_hours(0.0), "0");
    }
}
