//! What early termination reads and writes: the learning curves of a sweep and stop requests.

use serde_json::Value;
use sqlx::Row;

use crate::{Result, Store};

/// The metric points of one run relevant to an early-termination rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RunCurve {
    /// Run id.
    pub run_id: String,
    /// Position in the sweep.
    pub number: i64,
    /// Life-cycle state.
    pub state: String,
    /// Whether a stop was already requested.
    pub stop_requested: bool,
    /// `(step, objective value, time_ms, step-key value)` in step order; the objective is
    /// `None` when NaN, the step key `None` when not logged at that step.
    pub points: Vec<(i64, Option<f64>, i64, Option<f64>)>,
}

impl Store {
    /// Every run of a sweep with its `objective` points (and `step_key` values, if named).
    pub async fn curves(
        &self,
        sweep_id: &str,
        objective: &str,
        step_key: Option<&str>,
    ) -> Result<Vec<RunCurve>> {
        let rows = sqlx::query(
            "SELECT r.id, r.number, r.state, r.stop_requested, m.step, m.name, m.value, m.time_ms \
             FROM runs r LEFT JOIN metrics m ON m.run_id = r.id AND (m.name = $2 OR m.name = $3) \
             WHERE r.sweep_id = $1 ORDER BY r.number, r.id, m.step",
        )
        .bind(sweep_id)
        .bind(objective)
        .bind(step_key.unwrap_or(objective))
        .fetch_all(&self.reader)
        .await?;
        let mut out: Vec<RunCurve> = Vec::new();
        for r in rows {
            let id: String = r.try_get("id")?;
            if out.last().map(|c| c.run_id.as_str()) != Some(id.as_str()) {
                out.push(RunCurve {
                    run_id: id,
                    number: r.try_get::<Option<i64>, _>("number")?.unwrap_or(0),
                    state: r.try_get("state")?,
                    stop_requested: r.try_get("stop_requested")?,
                    points: Vec::new(),
                });
            }
            let Some(name) = r.try_get::<Option<String>, _>("name")? else {
                continue;
            };
            let step: i64 = r.try_get("step")?;
            let value: Option<f64> = r.try_get("value")?;
            let time: i64 = r.try_get("time_ms")?;
            let curve = out.last_mut().expect("pushed above");
            // Rows of one step arrive together (ordered by step): merge objective and key.
            let same_step = curve.points.last().is_some_and(|p| p.0 == step);
            if !same_step {
                curve.points.push((step, None, time, None));
            }
            let point = curve.points.last_mut().expect("pushed above");
            if name == objective {
                point.1 = value;
                point.2 = time;
            }
            if step_key == Some(name.as_str()) {
                point.3 = value;
            }
        }
        Ok(out)
    }

    /// The curve of one run (as in [`Store::curves`]).
    pub async fn run_curve(
        &self,
        run_id: &str,
        objective: &str,
        step_key: Option<&str>,
    ) -> Result<Vec<(i64, Option<f64>, i64, Option<f64>)>> {
        let rows = sqlx::query(
            "SELECT step, name, value, time_ms FROM metrics WHERE run_id = $1 AND (name = $2 OR name = $3) ORDER BY step",
        )
        .bind(run_id)
        .bind(objective)
        .bind(step_key.unwrap_or(objective))
        .fetch_all(&self.reader)
        .await?;
        let mut points: Vec<(i64, Option<f64>, i64, Option<f64>)> = Vec::new();
        for r in rows {
            let step: i64 = r.try_get("step")?;
            let name: String = r.try_get("name")?;
            let value: Option<f64> = r.try_get("value")?;
            let time: i64 = r.try_get("time_ms")?;
            if points.last().map(|p| p.0) != Some(step) {
                points.push((step, None, time, None));
            }
            let point = points.last_mut().expect("pushed above");
            if name == objective {
                point.1 = value;
                point.2 = time;
            }
            if step_key == Some(name.as_str()) {
                point.3 = value;
            }
        }
        Ok(points)
    }

    /// `(run id, number, state, stop requested)` of every run of a sweep.
    pub async fn run_states(&self, sweep_id: &str) -> Result<Vec<(String, i64, String, bool)>> {
        let rows = sqlx::query("SELECT id, number, state, stop_requested FROM runs WHERE sweep_id = $1 ORDER BY number, id")
            .bind(sweep_id)
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("id")?,
                    r.try_get::<Option<i64>, _>("number")?.unwrap_or(0),
                    r.try_get("state")?,
                    r.try_get("stop_requested")?,
                ))
            })
            .collect()
    }

    /// Ask a running run to stop, recording why. Returns whether this call made the request.
    pub async fn request_stop(&self, run_id: &str, reason: &str, info: &Value) -> Result<bool> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE runs SET stop_requested = TRUE, stop_reason = $2, stop_info = $3 \
             WHERE id = $1 AND state = 'running' AND NOT stop_requested",
        )
        .bind(run_id)
        .bind(reason)
        .bind(info.to_string())
        .execute(&mut *tx.tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }
}
