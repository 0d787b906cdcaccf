//! What early termination reads: the learning curves of a sweep (queries in `queries.rs`).

use hyperdial_wire::RunState;

use crate::CurvePoint;

/// The metric points of one run relevant to an early-termination rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RunCurve {
    /// Run id.
    pub run_id: String,
    /// Position in the sweep.
    pub number: i64,
    /// Life-cycle state.
    pub state: RunState,
    /// Whether a stop was already requested.
    pub stop_requested: bool,
    /// `(step, objective value, time_ms, step-key value)` in step order; the objective is
    /// `None` when NaN, the step key `None` when not logged at that step.
    pub points: Vec<CurvePoint>,
}

/// Fold metric rows `(step, name, value, time_ms)` of one run, in step order, into curve
/// points: the objective's value and time, and the step key's value, per step.
pub(crate) fn fold_point(
    points: &mut Vec<CurvePoint>,
    (step, name, value, time): (i64, &str, Option<f64>, i64),
    objective: &str,
    step_key: Option<&str>,
) {
    // Rows of one step arrive together (ordered by step): merge objective and key.
    if points.last().map(|p| p.0) != Some(step) {
        points.push((step, None, time, None));
    }
    let point = points.last_mut().expect("pushed above");
    if name == objective {
        point.1 = value;
        point.2 = time;
    }
    if step_key == Some(name) {
        point.3 = value;
    }
}
