//! The SQLite backend's metric writes and full series reads, on the one-hop path
//! ([`super::raw`]): a metric batch (or a group of them, see the metric writer in
//! `queries.rs`) is one transaction whose statements are prepared once and stepped once per
//! value on the locked connection, and a series is read by stepping its rows directly.
//!
//! Why not the `queries.rs` versions: through sqlx every statement is a round trip to the
//! connection's thread and every bound parameter is looked up by name, which SQLite does by a
//! linear scan of the statement's parameters. A multi-row insert of 250 points (1,000
//! parameters) therefore cost about half a million steps of those scans, most of the server's time
//! at high ingestion rates; and a read of 100,000 rows crossed threads 100,000 times. Here a
//! single-row insert is bound by position and stepped per value, and a read steps its rows
//! in place.
//!
//! The behaviour is that of [`crate::Storage::append_metrics`], [`crate::Storage::history`],
//! [`crate::Storage::history_columns`], [`crate::Storage::series`],
//! [`crate::Storage::series_after`] and [`crate::Storage::series_sample`] (the conformance
//! suite holds both backends to it): a point is upserted by (series, step) and counted once
//! however often it is sent; within a batch the last value of a (name, step) wins; NaN is
//! stored as NULL, infinities as themselves; the run's next step, summary (each name's value at
//! its highest step, NaN and infinities as `null`), best objective value and heartbeat are updated in the
//! same transaction. The best is kept incrementally over the values a batch leaves; when the
//! batch replaces a stored objective value equal to the best, the best is read again from the
//! series and the explicit summary ([`best_held`]), so it is always one the run still holds.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use hyperdial_wire::api::MetricValues;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{Map, Value};

use super::SqliteStorage;
use crate::dashboard::{merge_columns, HistoryColumns, SeriesPoint, SeriesSample};
use crate::{now_ms, Appended, HistoryPoint, Objective, Point, Result};

impl SqliteStorage {
    /// One metric batch in a transaction of its own ([`crate::Storage::append_metrics`]).
    pub(crate) async fn raw_append_metrics(
        &self,
        run_id: &str,
        points: &[Point],
        objective: Option<Objective<'_>>,
    ) -> Result<Option<Appended>> {
        self.write(|db| append_in(db, run_id, points, objective))
            .await
    }

    /// Several metric batches `(run id, points, objective)` in one transaction (group
    /// commit): each applied as [`append_in`] does alone, the batches taken in the order of
    /// their run ids (the order of arrival within a run), all committed together; the
    /// answers are in the order of `batches`.
    pub(crate) async fn raw_append_group(
        &self,
        batches: &[(&str, &[Point], Option<Objective<'_>>)],
    ) -> Result<Vec<Option<Appended>>> {
        let mut order: Vec<usize> = (0..batches.len()).collect();
        order.sort_by(|&a, &b| batches[a].0.cmp(batches[b].0));
        self.write(|db| {
            let mut answers = vec![None; batches.len()];
            for i in order {
                let (run_id, points, objective) = batches[i];
                answers[i] = append_in(db, run_id, points, objective)?;
            }
            Ok(answers)
        })
        .await
    }

    /// [`crate::Storage::history`]: every series of the run read by its key, merged by step.
    pub(crate) async fn raw_history(&self, run_id: &str) -> Result<Vec<HistoryPoint>> {
        self.read(|db| history_in(db, run_id)).await
    }

    /// [`crate::Storage::history_columns`]: each series read by its key from `after_step`
    /// on, at most `max_steps + 1` points, in one read transaction, then merged by step.
    pub(crate) async fn raw_history_columns(
        &self,
        run_id: &str,
        names: &[String],
        after_step: Option<i64>,
        max_steps: usize,
    ) -> Result<HistoryColumns> {
        let max_steps = max_steps.max(1);
        let limit = i64::try_from(max_steps).unwrap_or(i64::MAX - 1) + 1;
        let after = after_step.unwrap_or(i64::MIN);
        self.read(|db| {
            let mut find =
                db.prepare_cached("SELECT id FROM metric_series WHERE run_id = ?1 AND name = ?2")?;
            let mut read = db.prepare_cached(
                "SELECT step, value, time_ms FROM metric_points WHERE series = ?1 AND step > ?2 \
                 ORDER BY step LIMIT ?3",
            )?;
            let mut series = Vec::with_capacity(names.len());
            for name in names {
                let Some(id) = find
                    .query_row(params![run_id, name], |r| r.get::<_, i64>(0))
                    .optional()?
                else {
                    series.push(Vec::new());
                    continue;
                };
                let mut rows = read.query(params![id, after, limit])?;
                let mut points = Vec::new();
                while let Some(r) = rows.next()? {
                    points.push(SeriesPoint {
                        step: r.get(0)?,
                        value: r.get(1)?,
                        time_ms: r.get(2)?,
                    });
                }
                series.push(points);
            }
            Ok(merge_columns(&series, max_steps))
        })
        .await
    }

    /// [`crate::Storage::series`] and [`crate::Storage::series_after`]: the points of one
    /// series above `after_step` (every point with `None`), by step.
    pub(crate) async fn raw_series(
        &self,
        run_id: &str,
        name: &str,
        after_step: Option<i64>,
    ) -> Result<Vec<SeriesPoint>> {
        self.read(|db| {
            let mut find =
                db.prepare_cached("SELECT id FROM metric_series WHERE run_id = ?1 AND name = ?2")?;
            let Some(id) = find
                .query_row(params![run_id, name], |r| r.get::<_, i64>(0))
                .optional()?
            else {
                return Ok(Vec::new());
            };
            points_of(db, id, after_step.unwrap_or(i64::MIN), usize::MAX)
        })
        .await
    }

    /// [`crate::Storage::series_sample`]: the whole series when it holds at most
    /// `max_points` (at least 2), else `max_points` points evenly spaced by step, each found
    /// by one seek in the key (series, step). One read transaction, so the count and the
    /// points agree.
    pub(crate) async fn raw_series_sample(
        &self,
        run_id: &str,
        name: &str,
        max_points: usize,
    ) -> Result<SeriesSample> {
        let max_points = max_points.max(2) as i64;
        self.read(|db| {
            let mut find = db.prepare_cached(
                "SELECT id, points, last_step FROM metric_series WHERE run_id = ?1 AND name = ?2",
            )?;
            let Some((id, total, last)) = find
                .query_row(params![run_id, name], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })
                .optional()?
            else {
                return Ok(SeriesSample::default());
            };
            if total <= max_points {
                let points = points_of(db, id, i64::MIN, total.max(0) as usize)?;
                return Ok(SeriesSample {
                    total: points.len() as u64,
                    points,
                });
            }
            // Two seeks: the series' highest step is kept with it, its lowest is the key's first.
            let mut lowest = db.prepare_cached(
                "SELECT step FROM metric_points WHERE series = ?1 ORDER BY step LIMIT 1",
            )?;
            let Some(first) = lowest
                .query_row(params![id], |r| r.get::<_, i64>(0))
                .optional()?
            else {
                return Ok(SeriesSample::default());
            };
            // Position i's point is the first at or after first + i * (last - first) / (n - 1).
            let mut seek = db.prepare_cached(
                "SELECT step, value, time_ms FROM metric_points WHERE series = ?1 AND step >= ?2 \
                 ORDER BY step LIMIT 1",
            )?;
            let span = last - first;
            let mut points: Vec<SeriesPoint> = Vec::with_capacity(max_points as usize);
            for i in 0..max_points {
                let at = first + ((i as i128 * span as i128) / (max_points - 1) as i128) as i64;
                if points.last().is_some_and(|p| p.step >= at) {
                    continue;
                }
                let found = seek
                    .query_row(params![id, at], |r| {
                        Ok(SeriesPoint {
                            step: r.get(0)?,
                            value: r.get(1)?,
                            time_ms: r.get(2)?,
                        })
                    })
                    .optional()?;
                match found {
                    Some(p) if points.last().is_some_and(|q| q.step == p.step) => {}
                    Some(p) => points.push(p),
                    None => break,
                }
            }
            Ok(SeriesSample {
                points,
                total: total as u64,
            })
        })
        .await
    }
}

/// The points of series `id` whose step is above `after`, by step (`capacity`: how many are
/// expected, a hint).
fn points_of(db: &Connection, id: i64, after: i64, capacity: usize) -> Result<Vec<SeriesPoint>> {
    let mut stmt = db.prepare_cached(
        "SELECT step, value, time_ms FROM metric_points WHERE series = ?1 AND step > ?2 ORDER BY step",
    )?;
    let mut rows = stmt.query(params![id, after])?;
    let mut points = Vec::with_capacity(capacity.min(1 << 20));
    while let Some(r) = rows.next()? {
        points.push(SeriesPoint {
            step: r.get(0)?,
            value: r.get(1)?,
            time_ms: r.get(2)?,
        });
    }
    Ok(points)
}

/// Every point of run `run_id`, grouped by step (by name within a step): each series is read
/// in its key's order and the series are merged by step, so nothing is sorted.
fn history_in(db: &Connection, run_id: &str) -> Result<Vec<HistoryPoint>> {
    let mut list =
        db.prepare_cached("SELECT id, name FROM metric_series WHERE run_id = ?1 ORDER BY name")?;
    let series: Vec<(i64, Arc<str>)> = list
        .query_map(params![run_id], |r| {
            Ok((r.get(0)?, r.get::<_, String>(1)?.as_str().into()))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let read: Vec<Vec<SeriesPoint>> = series
        .iter()
        .map(|(id, _)| points_of(db, *id, i64::MIN, 0))
        .collect::<Result<_>>()?;
    let mut next = vec![0usize; read.len()];
    // (step, series index) of each series' next point; the least comes out first.
    let mut heads: BinaryHeap<Reverse<(i64, usize)>> = read
        .iter()
        .enumerate()
        .filter_map(|(k, points)| points.first().map(|p| Reverse((p.step, k))))
        .collect();
    let mut out: Vec<HistoryPoint> = Vec::new();
    while let Some(Reverse((step, k))) = heads.pop() {
        let point = &read[k][next[k]];
        next[k] += 1;
        if let Some(p) = read[k].get(next[k]) {
            heads.push(Reverse((p.step, k)));
        }
        if out.last().map(|p| p.step) != Some(step) {
            out.push(HistoryPoint {
                step,
                time_ms: point.time_ms,
                values: MetricValues(Vec::with_capacity(read.len().min(64))),
            });
        }
        let last = out.last_mut().expect("pushed above");
        last.time_ms = last.time_ms.max(point.time_ms);
        last.values.0.push((series[k].1.clone(), point.value));
    }
    Ok(out)
}

/// A metric name of a batch and what the batch does to its series.
struct Named<'a> {
    name: &'a str,
    /// The series' id (0 until looked up).
    id: i64,
    /// Steps the series holds, and its highest step, as found.
    points: i64,
    last_step: i64,
    /// The same after the batch.
    now_points: i64,
    highest: i64,
    /// The name's highest step in the batch, and its value there (the last one sent for
    /// that step): the summary's value unless the series already holds a higher step.
    batch_step: i64,
    last: Option<f64>,
}

/// One value to write: index into the batch's names, step, value, time.
type Row = (u32, i64, Option<f64>, i64);

/// Apply one metric batch inside the open write transaction on `db` (see
/// [`crate::Storage::append_metrics`]): its points, then the run's row; `None` for an unknown
/// run.
pub(crate) fn append_in(
    db: &Connection,
    run_id: &str,
    points: &[Point],
    objective: Option<Objective<'_>>,
) -> Result<Option<Appended>> {
    let Some((appended, batch)) =
        append_points_in(db, run_id, points, objective, crate::AppendTo::AnyRun)?
    else {
        return Ok(None);
    };
    db.prepare_cached(
        "UPDATE runs SET next_step = ?2, summary = ?3, metric = ?4, heartbeat_ms = ?5 WHERE id = ?1",
    )?
    .execute(params![
        run_id,
        batch.next_step,
        batch.summary,
        batch.metric,
        batch.now
    ])?;
    Ok(Some(appended))
}

/// What a metric batch leaves to write on its run's row: by [`append_in`], or with the run's
/// end when a finish stores told values (`hot.rs`).
#[derive(Debug)]
pub(super) struct RunBatch {
    /// The run's next step.
    pub(super) next_step: i64,
    /// The summary (last value of each metric), as JSON text.
    pub(super) summary: String,
    /// The run's best objective value.
    pub(super) metric: Option<f64>,
    /// The batch's time (the run's heartbeat).
    pub(super) now: i64,
}

/// The run's best objective value from what it holds now: the best finite value of its series
/// `series` and of its explicit summary's value (as `set_user_summary` keeps it), read in the
/// write transaction on `db`. Only after a batch replaced the stored value that was the best.
fn best_held(
    db: &Connection,
    run_id: &str,
    series: i64,
    obj: Objective<'_>,
) -> Result<Option<f64>> {
    let aggregate = if obj.maximize { "MAX" } else { "MIN" };
    let logged: Option<f64> = db
        .prepare_cached(&format!(
            "SELECT {aggregate}(value) FROM metric_points WHERE series = ?1 \
             AND value BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308"
        ))?
        .query_row(params![series], |r| r.get(0))?;
    let summary: String = db
        .prepare_cached("SELECT user_summary FROM runs WHERE id = ?1")?
        .query_row(params![run_id], |r| r.get(0))?;
    let summary: Map<String, Value> = serde_json::from_str(&summary).unwrap_or_default();
    let reported = summary.get(obj.name).and_then(crate::finite_number);
    Ok(reported
        .into_iter()
        .fold(logged, |best, v| obj.best_after(best, obj.name, Some(v))))
}

/// The points of one metric batch, written inside the open write transaction on `db` (series
/// created, points upserted, series counts kept exact), and what the batch leaves to write on
/// the run's row ([`RunBatch`]); `None` for an unknown run.
pub(super) fn append_points_in(
    db: &Connection,
    run_id: &str,
    points: &[Point],
    objective: Option<Objective<'_>>,
    to: crate::AppendTo,
) -> Result<Option<(Appended, RunBatch)>> {
    let mut run = db.prepare_cached(
        "SELECT next_step, summary, metric, stop_requested, stop_reason, state FROM runs WHERE id = ?1",
    )?;
    let Some((mut next_step, summary, mut metric, stop, reason, state)) = run
        .query_row(params![run_id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<f64>>(2)?,
                r.get::<_, bool>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, String>(5)?,
            ))
        })
        .optional()?
    else {
        return Ok(None);
    };
    if to == crate::AppendTo::OpenRun
        && !matches!(
            state.parse::<crate::RunState>(),
            Ok(crate::RunState::Running | crate::RunState::Queued)
        )
    {
        return Ok(None);
    }
    let now = now_ms();
    // The batch's names in order of first appearance; a point usually names the same metrics
    // in the same order as the one before it, so each value first tries the name at its
    // position in the previous point before the map.
    let mut names: Vec<Named<'_>> = Vec::new();
    let mut index: HashMap<&str, u32> = HashMap::new();
    let mut previous: Vec<u32> = Vec::new();
    let mut rows: Vec<Row> = Vec::with_capacity(points.iter().map(|p| p.values.len()).sum());
    for p in points {
        let step = p.step.unwrap_or(next_step);
        next_step = next_step.max(step + 1);
        let time = p.time_ms.unwrap_or(now);
        for (j, (name, value)) in p.values.iter().enumerate() {
            let k = match previous.get(j) {
                Some(&k) if names[k as usize].name == name.as_str() => k,
                _ => {
                    let k = *index.entry(name.as_str()).or_insert_with(|| {
                        names.push(Named {
                            name: name.as_str(),
                            id: 0,
                            points: 0,
                            last_step: -1,
                            now_points: 0,
                            highest: -1,
                            batch_step: i64::MIN,
                            last: None,
                        });
                        (names.len() - 1) as u32
                    });
                    if j < previous.len() {
                        previous[j] = k;
                    } else {
                        previous.push(k);
                    }
                    k
                }
            };
            let n = &mut names[k as usize];
            if step >= n.batch_step {
                (n.batch_step, n.last) = (step, *value);
            }
            rows.push((k, step, *value, time));
        }
    }
    // The run's series, created where missing (inside the write transaction, so no other
    // batch creates them meanwhile).
    let mut find = db.prepare_cached(
        "SELECT id, points, last_step FROM metric_series WHERE run_id = ?1 AND name = ?2",
    )?;
    let mut create = db.prepare_cached(
        "INSERT INTO metric_series (run_id, name, points, last_step) VALUES (?1, ?2, 0, -1) RETURNING id",
    )?;
    for n in &mut names {
        let found = find
            .query_row(params![run_id, n.name], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .optional()?;
        (n.id, n.points, n.last_step) = match found {
            Some(found) => found,
            None => (
                create.query_row(params![run_id, n.name], |r| r.get::<_, i64>(0))?,
                0,
                -1,
            ),
        };
        (n.now_points, n.highest) = (n.points, n.last_step);
    }
    // In key order, so the b-tree takes them as appends; a stable sort keeps a (name, step)
    // sent twice in the batch's order, so its last value is the one left.
    rows.sort_by_key(|r| (names[r.0 as usize].id, r.1));
    // The objective's best over the values the batch leaves (a value the same batch replaced
    // at its step never counts), from the run's best before it.
    let goal = objective.and_then(|obj| {
        let k = names.iter().position(|n| n.name == obj.name)?;
        Some((obj, k as u32))
    });
    if let Some((obj, goal_k)) = goal {
        for (i, &(k, step, value, _)) in rows.iter().enumerate() {
            let replaced_here = rows.get(i + 1).is_some_and(|r| (r.0, r.1) == (k, step));
            if k == goal_k && !replaced_here {
                metric = obj.best_after(metric, obj.name, value);
            }
        }
    }
    let mut insert = db.prepare_cached(
        "INSERT INTO metric_points (series, step, value, time_ms) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (series, step) DO NOTHING",
    )?;
    let mut update = db.prepare_cached(
        "UPDATE metric_points SET value = ?3, time_ms = ?4 WHERE series = ?1 AND step = ?2",
    )?;
    let mut accepted = 0usize;
    // Whether the batch replaced a stored objective value equal to the run's best: the best
    // may then be gone from the history, and is computed again below.
    let mut best_replaced = false;
    for &(k, step, value, time) in &rows {
        let n = &mut names[k as usize];
        if insert.execute(params![n.id, step, value, time])? == 1 {
            n.now_points += 1;
            n.highest = n.highest.max(step);
            accepted += 1;
        } else {
            // Already stored (a resent batch, or twice in this one): overwritten, not counted
            // again in the series.
            if goal.is_some_and(|(_, goal_k)| goal_k == k) && !best_replaced {
                let old: Option<f64> = db
                    .prepare_cached(
                        "SELECT value FROM metric_points WHERE series = ?1 AND step = ?2",
                    )?
                    .query_row(params![n.id, step], |r| r.get(0))?;
                best_replaced = old.is_some() && old == metric && old != value;
            }
            accepted += update.execute(params![n.id, step, value, time])?;
        }
    }
    if let (true, Some((obj, goal_k))) = (best_replaced, goal) {
        metric = best_held(db, run_id, names[goal_k as usize].id, obj)?;
    }
    let mut keep =
        db.prepare_cached("UPDATE metric_series SET points = ?2, last_step = ?3 WHERE id = ?1")?;
    let mut summary: Map<String, Value> = serde_json::from_str(&summary).unwrap_or_default();
    for n in &names {
        if (n.now_points, n.highest) != (n.points, n.last_step) {
            keep.execute(params![n.id, n.now_points, n.highest])?;
        }
        crate::summary::take_newest(&mut summary, n.name, n.batch_step, n.last, n.last_step);
    }
    Ok(Some((
        Appended {
            accepted,
            stop,
            reason,
            metric,
        },
        RunBatch {
            next_step,
            summary: Value::Object(summary).to_string(),
            metric,
            now,
        },
    )))
}
