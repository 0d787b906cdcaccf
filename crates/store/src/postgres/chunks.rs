//! PostgreSQL's metric points, stored in chunks per series (`migrations/postgres/0012`).
//!
//! A row per point costs PostgreSQL about 92 bytes per value (tuple header, line pointer, the
//! data and an index entry); here a row of `metric_chunks`, keyed by (series, first step), holds
//! up to [`CHUNK_POINTS`] points of one series as three arrays (`steps`, `vals`, `times`), so
//! that overhead is paid once per chunk: about 27 bytes per value in all. 78 points keep a full
//! chunk under PostgreSQL's 2 kB TOAST threshold: a chunk stays inline in its heap tuple (no
//! compression, no TOAST table), so an append rewrites at most one 2 kB tuple and a read takes
//! an element without detoasting anything, and four full chunks fill a page.
//!
//! Invariants, which every write keeps: the chunks of a series never overlap; each holds its
//! steps ascending and distinct; `first_step` and `last_step` are its lowest and highest step;
//! `vals` holds NULL for NaN (as the row layout did). The series' count of points and highest
//! step stay in `metric_series`, exact.
//!
//! The behaviour is unchanged from the row layout, as the conformance suite defines it:
//!
//! - **Writes.** A batch's points of one series, ascending by step and distinct, are split at
//!   the series' highest step. Points above it are new: they fill the series' last chunk up to
//!   [`CHUNK_POINTS`] (`steps || $new`, one statement for every series of the batch; the last
//!   chunk's first step and size come with the series' row, [`SERIES_TAIL`]) and the rest
//!   become new chunks (one insert for all). A batch of a few points is thus one update, the
//!   same number of statements as a row upsert. Points at or below it (a resent batch, or a
//!   step logged out of order) are merged into the chunks that hold or would hold them: those
//!   chunks are read, merged in memory (a step already stored takes the new value and time and
//!   is not counted again; a missing one is inserted in order and counted), split into even
//!   pieces of at most [`CHUNK_POINTS`] when they grow past it, deleted and written back.
//! - **Concurrency.** Every write of a series' chunks happens inside a metric batch's
//!   transaction, which first takes the row lock of the series' run (`SELECT … FOR UPDATE` in
//!   `append_points_in`) and holds it to commit; the migration is the only other writer. So
//!   batches of one run (several agents' retries, a resend) apply one after the other, each
//!   seeing the chunks the previous one committed, and an append to the last chunk cannot lose a
//!   concurrent writer's points. Locking the run rather than the chunk row costs nothing extra
//!   (the run's row lock was already needed for its next step and summary) and also covers the
//!   inserts of new chunks, which a row lock on an existing chunk would not. Batches of
//!   different runs touch different series and never wait on each other. Insert-only chunks
//!   merged later would avoid rewriting the last chunk, but every read would then have to merge
//!   overlapping chunks and drop superseded values; with chunks this small a rewrite is cheap.
//! - **Durability.** Unchanged: a batch is answered after the commit of the transaction that
//!   holds it.
//! - **Reads.** A whole series is its chunks in key order, concatenated (they do not overlap),
//!   so no sort; a tail (`series_after`) starts at the chunk holding the given step. The
//!   downsampled read seeks once per returned position: the chunk at or after the position's
//!   step (two seeks in the key), then the element in it (by offset when the chunk's steps are
//!   consecutive, by a scan of its at most 78 steps otherwise), so its cost follows the points
//!   it returns, not the series' length. Each chunk also keeps the lowest, highest and last
//!   (by step) of its finite values (`vmin`, `vmax`, `vlast`, NULL without one; migration
//!   0013), set by the same statement that writes the chunk: an insert computes them from its
//!   points, an append widens the extremes and takes the appended points' last finite value,
//!   and a merge (which may replace a chunk's lowest or highest value) rewrites the chunk
//!   through an insert, so they are computed afresh. The explicit summary's best value and the
//!   spans imputation reads aggregate those ([`METRIC_EXTREMES`], a row per chunk): their cost
//!   follows a series' chunks, not its points. Other aggregates over points (the dashboard's
//!   curves) read [`METRIC_POINTS`], the chunks unnested.

use std::sync::Arc;

use sqlx::postgres::{PgConnection, PgPool, PgRow};
use sqlx::Row;

use super::{SeriesPoints, SeriesState};
use crate::dashboard::{SeriesPoint, SeriesSample};
use crate::{HistoryPoint, Result};

/// Most points of a chunk. A full chunk's tuple (24-byte header, three 8-byte keys, three
/// arrays of 24 header bytes plus 8 bytes a point, a null bitmap when a value is NaN, three
/// 8-byte extremes) is at most 2,024 bytes (`pg_column_size` of a row with a NaN: 2,024;
/// without: 2,016): under the 2,032 bytes above which PostgreSQL compresses or moves values
/// out of line, and four to an 8 kB page.
pub(super) const CHUNK_POINTS: usize = 78;

/// A batch's series `s` with the first step and size of its last chunk (one seek each).
pub(super) const SERIES_TAIL: &str = ", t.first_step AS tail_first, CAST(cardinality(t.steps) AS BIGINT) AS tail_points \
     FROM metric_series s LEFT JOIN LATERAL \
     (SELECT first_step, steps FROM metric_chunks WHERE series = s.id ORDER BY first_step DESC LIMIT 1) t ON TRUE";

/// The metric points as rows `(series, step, value, time_ms)`: every chunk unnested.
pub(super) const METRIC_POINTS: &str = "(SELECT c.series AS series, u.step AS step, u.value AS value, u.time_ms AS time_ms \
     FROM metric_chunks c CROSS JOIN LATERAL UNNEST(c.steps, c.vals, c.times) AS u(step, value, time_ms))";

/// The lowest, highest and last (by step) finite `value` of a group of points `u(step, value)`,
/// as the select list's last three columns (`, lo, hi, last`): what a chunk keeps in `vmin`,
/// `vmax` and `vlast` (`migrations/postgres/0013`); NULL without a finite value.
const FINITE_SUMMARY: &str = ", MIN(value) FILTER (WHERE value BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308) AS lo, \
     MAX(value) FILTER (WHERE value BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308) AS hi, \
     (array_agg(value ORDER BY step DESC) FILTER (WHERE value BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308))[1]";

/// Per chunk with a finite value, `(series, lo, hi, at, last)`: its lowest and highest finite
/// value, its first step and its last finite value. The best value and the spans aggregate
/// these (one row a chunk) rather than the points.
pub(super) const METRIC_EXTREMES: &str =
    "(SELECT series, vmin AS lo, vmax AS hi, first_step AS at, vlast AS last \
     FROM metric_chunks WHERE vmin IS NOT NULL)";

/// The points of one chunk, ascending by step.
#[derive(Debug, Default)]
struct Chunk {
    steps: Vec<i64>,
    vals: Vec<Option<f64>>,
    times: Vec<i64>,
}

impl Chunk {
    fn from_row(row: &PgRow) -> Result<Chunk> {
        let chunk = Chunk {
            steps: row.try_get("steps")?,
            vals: row.try_get("vals")?,
            times: row.try_get("times")?,
        };
        if chunk.vals.len() != chunk.steps.len() || chunk.times.len() != chunk.steps.len() {
            return Err(sqlx::Error::ColumnDecode {
                index: "vals".into(),
                source: "a metric chunk's arrays differ in length".into(),
            }
            .into());
        }
        Ok(chunk)
    }

    fn points(&self) -> impl Iterator<Item = (i64, Option<f64>, i64)> + '_ {
        (0..self.steps.len()).map(|i| (self.steps[i], self.vals[i], self.times[i]))
    }
}

/// Rows `(series, first step of the chunk, step, value, time_ms)` bound as five arrays, for
/// the statements that aggregate them into chunks.
#[derive(Debug, Default)]
struct Flat {
    series: Vec<i64>,
    first: Vec<i64>,
    steps: Vec<i64>,
    vals: Vec<Option<f64>>,
    times: Vec<i64>,
}

impl Flat {
    fn push(&mut self, series: i64, first: i64, (step, value, time): (i64, Option<f64>, i64)) {
        self.series.push(series);
        self.first.push(first);
        self.steps.push(step);
        self.vals.push(value);
        self.times.push(time);
    }

    /// `points` (ascending) as new chunks of `series` of at most [`CHUNK_POINTS`] each, evenly
    /// sized.
    /// The first step and size of the last chunk made, if any.
    fn chunks_of(&mut self, series: i64, points: &[(i64, Option<f64>, i64)]) -> Option<(i64, i64)> {
        if points.is_empty() {
            return None;
        }
        let pieces = points.len().div_ceil(CHUNK_POINTS);
        let size = points.len().div_ceil(pieces);
        let mut last = None;
        for piece in points.chunks(size) {
            for p in piece {
                self.push(series, piece[0].0, *p);
            }
            last = Some((piece[0].0, piece.len() as i64));
        }
        last
    }

    fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Insert the chunks these rows make (one per (series, first step)).
    async fn insert(self, conn: &mut PgConnection) -> Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        sqlx::query(
            &format!(
                "INSERT INTO metric_chunks (series, first_step, last_step, steps, vals, times, vmin, vmax, vlast) \
                 SELECT series, fst, MAX(step), array_agg(step ORDER BY step), array_agg(value ORDER BY step), \
                 array_agg(t_ms ORDER BY step){FINITE_SUMMARY} \
                 FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::DOUBLE PRECISION[], $5::BIGINT[]) \
                 AS u(series, fst, step, value, t_ms) GROUP BY series, fst"
            ),
        )
        .bind(self.series)
        .bind(self.first)
        .bind(self.steps)
        .bind(self.vals)
        .bind(self.times)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Append these rows to the existing chunks (series, first step) they name.
    async fn append(self, conn: &mut PgConnection) -> Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        sqlx::query(
            // The appended points all lie above the chunk's: their last finite value, when they
            // have one, is the chunk's last; LEAST and GREATEST skip a NULL side.
            &format!(
                "UPDATE metric_chunks c SET steps = c.steps || a.steps, vals = c.vals || a.vals, \
                 times = c.times || a.times, last_step = a.last, vmin = LEAST(c.vmin, a.lo), \
                 vmax = GREATEST(c.vmax, a.hi), vlast = COALESCE(a.fin, c.vlast) \
                 FROM (SELECT series, fst, MAX(step) AS last, array_agg(step ORDER BY step) AS steps, \
                       array_agg(value ORDER BY step) AS vals, array_agg(t_ms ORDER BY step) AS times\
                       {FINITE_SUMMARY} AS fin \
                       FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::DOUBLE PRECISION[], $5::BIGINT[]) \
                       AS u(series, fst, step, value, t_ms) GROUP BY series, fst) a \
                 WHERE c.series = a.series AND c.first_step = a.fst"
            ),
        )
        .bind(self.series)
        .bind(self.first)
        .bind(self.steps)
        .bind(self.vals)
        .bind(self.times)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

/// Write a metric batch's points, series by series, inside the run's write transaction (see
/// the module documentation); each series' `points` and `highest` are brought up to date. The
/// points written (all of them).
pub(super) async fn write_points(
    conn: &mut PgConnection,
    writes: &mut [SeriesPoints],
) -> Result<u64> {
    let mut written = 0u64;
    // Points at or below a series' highest step: merged into the chunks holding their range.
    let mut rewritten = Flat::default();
    for w in writes.iter_mut() {
        written += w.points.len() as u64;
        let split = w.points.partition_point(|p| p.0 <= w.state.last_step);
        if split > 0 {
            let old = &w.points[..split];
            let fresh = merge_old(conn, &mut w.state, old, &mut rewritten, &mut w.replaced).await?;
            w.state.points += fresh;
        }
    }
    rewritten.insert(conn).await?;
    // Points above it: onto the series' last chunk while it has room, then new chunks.
    let mut appended = Flat::default();
    let mut created = Flat::default();
    for w in writes.iter_mut() {
        let split = w.points.partition_point(|p| p.0 <= w.state.last_step);
        let new = &w.points[split..];
        let Some(highest) = new.last().map(|p| p.0) else {
            continue;
        };
        let id = w.state.id;
        let mut rest = new;
        if let Some((first, n)) = w.state.tail {
            let room = CHUNK_POINTS
                .saturating_sub(n.max(0) as usize)
                .min(rest.len());
            for p in &rest[..room] {
                appended.push(id, first, *p);
            }
            rest = &rest[room..];
        }
        if let Some(tail) = created.chunks_of(id, rest) {
            w.state.tail = Some(tail);
        }
        w.state.points += new.len() as i64;
        w.state.highest = w.state.highest.max(highest);
    }
    appended.append(conn).await?;
    created.insert(conn).await?;
    Ok(written)
}

/// Merge `old` (ascending, distinct, none above the series' highest step) into the chunks of
/// the series that hold or would hold them: those chunks are deleted and their merged points
/// pushed to `out` as new chunks (the series' `tail` follows when its last chunk is among
/// them). How many of `old` were not stored yet; the finite stored values they replace with a
/// different one are pushed to `replaced`.
async fn merge_old(
    conn: &mut PgConnection,
    state: &mut SeriesState,
    old: &[(i64, Option<f64>, i64)],
    out: &mut Flat,
    replaced: &mut Vec<f64>,
) -> Result<i64> {
    let series = state.id;
    let (lo, hi) = (old[0].0, old[old.len() - 1].0);
    // The chunk holding `lo` (the last starting at or before it) and every later one starting
    // at or before `hi`; when no chunk starts at or before `lo`, those from `lo` on.
    let rows = sqlx::query(
        "SELECT first_step, steps, vals, times FROM metric_chunks WHERE series = $1 AND first_step <= $2 \
         AND first_step >= COALESCE((SELECT MAX(first_step) FROM metric_chunks WHERE series = $1 AND first_step <= $3), $3) \
         ORDER BY first_step",
    )
    .bind(series)
    .bind(hi)
    .bind(lo)
    .fetch_all(&mut *conn)
    .await?;
    if rows.is_empty() {
        // Below every chunk of the series (or it has none).
        let last = out.chunks_of(series, old);
        if state.tail.is_none() {
            state.tail = last;
        }
        return Ok(old.len() as i64);
    }
    let firsts: Vec<i64> = rows
        .iter()
        .map(|r| r.try_get("first_step"))
        .collect::<std::result::Result<_, _>>()?;
    let mut fresh = 0i64;
    let mut dropped: Vec<i64> = Vec::new();
    let mut rest = old;
    for (i, row) in rows.iter().enumerate() {
        // The points before the next chunk's first step go to this one (to the first chunk,
        // also those below it).
        let take = match firsts.get(i + 1) {
            Some(next) => rest.partition_point(|p| p.0 < *next),
            None => rest.len(),
        };
        let (mine, later) = rest.split_at(take);
        rest = later;
        if mine.is_empty() {
            continue;
        }
        let chunk = Chunk::from_row(row)?;
        let mut merged: Vec<(i64, Option<f64>, i64)> =
            Vec::with_capacity(chunk.steps.len() + mine.len());
        let mut stored = chunk.points().peekable();
        let mut incoming = mine.iter().copied().peekable();
        loop {
            match (stored.peek(), incoming.peek()) {
                (Some(a), Some(b)) if a.0 < b.0 => merged.push(stored.next().expect("peeked")),
                (Some(a), Some(b)) if a.0 == b.0 => {
                    if let Some(was) = a.1.filter(|v| v.is_finite() && Some(*v) != b.1) {
                        replaced.push(was);
                    }
                    stored.next();
                    merged.push(incoming.next().expect("peeked"));
                }
                (_, Some(_)) => {
                    fresh += 1;
                    merged.push(incoming.next().expect("peeked"));
                }
                (Some(_), None) => merged.push(stored.next().expect("peeked")),
                (None, None) => break,
            }
        }
        dropped.push(firsts[i]);
        let last = out.chunks_of(series, &merged);
        if state.tail.is_none_or(|(first, _)| first == firsts[i]) {
            state.tail = last;
        }
    }
    sqlx::query("DELETE FROM metric_chunks WHERE series = $1 AND first_step = ANY($2)")
        .bind(series)
        .bind(&dropped)
        .execute(&mut *conn)
        .await?;
    Ok(fresh)
}

/// The chunks of a run's series `name` as points, ascending; only those above `after` when
/// given.
pub(super) async fn series(
    pool: &PgPool,
    run_id: &str,
    name: &str,
    after: Option<i64>,
) -> Result<Vec<SeriesPoint>> {
    let rows = match after {
        None => {
            sqlx::query(
                "SELECT c.steps, c.vals, c.times FROM metric_series s JOIN metric_chunks c ON c.series = s.id \
                 WHERE s.run_id = $1 AND s.name = $2 ORDER BY c.first_step",
            )
            .bind(run_id)
            .bind(name)
            .fetch_all(pool)
            .await?
        }
        Some(after) => {
            sqlx::query(
                "SELECT c.steps, c.vals, c.times FROM metric_series s JOIN metric_chunks c ON c.series = s.id \
                 WHERE s.run_id = $1 AND s.name = $2 AND c.first_step >= COALESCE(\
                 (SELECT MAX(first_step) FROM metric_chunks WHERE series = s.id AND first_step <= $3), $3) \
                 ORDER BY c.first_step",
            )
            .bind(run_id)
            .bind(name)
            .bind(after)
            .fetch_all(pool)
            .await?
        }
    };
    let after = after.unwrap_or(i64::MIN);
    let mut out = Vec::new();
    for row in &rows {
        let chunk = Chunk::from_row(row)?;
        out.extend(
            chunk
                .points()
                .filter(|p| p.0 > after)
                .map(|(step, value, time_ms)| SeriesPoint {
                    step,
                    value,
                    time_ms,
                }),
        );
    }
    Ok(out)
}

/// The points of a run's series named `a` or `b` as `(step, name, value, time_ms)`, by step
/// (by name within a step).
pub(super) async fn curve_rows(
    pool: &PgPool,
    run_id: &str,
    a: &str,
    b: &str,
) -> Result<Vec<(i64, String, Option<f64>, i64)>> {
    let rows = sqlx::query(
        "SELECT s.name, c.steps, c.vals, c.times FROM metric_series s JOIN metric_chunks c ON c.series = s.id \
         WHERE s.run_id = $1 AND (s.name = $2 OR s.name = $3) ORDER BY s.name, c.first_step",
    )
    .bind(run_id)
    .bind(a)
    .bind(b)
    .fetch_all(pool)
    .await?;
    let mut out = Vec::new();
    for row in &rows {
        let name: String = row.try_get("name")?;
        let chunk = Chunk::from_row(row)?;
        out.extend(chunk.points().map(|(s, v, t)| (s, name.clone(), v, t)));
    }
    // Each series is ascending already: a stable sort merges them, names in order within a step.
    out.sort_by_key(|p| p.0);
    Ok(out)
}

/// Every series of a run merged by step (names in order within a step).
pub(super) async fn history(pool: &PgPool, run_id: &str) -> Result<Vec<HistoryPoint>> {
    let rows = sqlx::query(
        "SELECT s.name, c.steps, c.vals, c.times FROM metric_series s JOIN metric_chunks c ON c.series = s.id \
         WHERE s.run_id = $1 ORDER BY s.name, c.first_step",
    )
    .bind(run_id)
    .fetch_all(pool)
    .await?;
    // Each name once, shared by every step that has it.
    let mut names: Vec<Arc<str>> = Vec::new();
    let mut flat: Vec<(i64, u32, Option<f64>, i64)> = Vec::new();
    for row in &rows {
        let name: String = row.try_get("name")?;
        if names.last().map(|n| &**n) != Some(name.as_str()) {
            names.push(name.as_str().into());
        }
        let k = (names.len() - 1) as u32;
        let chunk = Chunk::from_row(row)?;
        flat.extend(chunk.points().map(|(s, v, t)| (s, k, v, t)));
    }
    // Each series is ascending already: a stable sort merges them, names in order within a step.
    flat.sort_by_key(|p| p.0);
    let mut out: Vec<HistoryPoint> = Vec::new();
    for (step, k, value, time_ms) in flat {
        if out.last().map(|p| p.step) != Some(step) {
            out.push(HistoryPoint {
                step,
                time_ms,
                values: Default::default(),
            });
        }
        let last = out.last_mut().expect("pushed above");
        last.time_ms = last.time_ms.max(time_ms);
        last.values.0.push((names[k as usize].clone(), value));
    }
    Ok(out)
}

/// The value at a series' highest step; `None` when it has no point.
pub(super) async fn last_value(
    pool: &PgPool,
    run_id: &str,
    name: &str,
) -> Result<Option<Option<f64>>> {
    let row = sqlx::query(
        "SELECT c.vals[cardinality(c.vals)] AS value FROM metric_series s JOIN metric_chunks c ON c.series = s.id \
         WHERE s.run_id = $1 AND s.name = $2 ORDER BY c.first_step DESC LIMIT 1",
    )
    .bind(run_id)
    .bind(name)
    .fetch_optional(pool)
    .await?;
    Ok(match row {
        Some(r) => Some(r.try_get("value")?),
        None => None,
    })
}

/// [`crate::Storage::series_sample`]: the whole series when it holds at most `max_points`
/// (at least 2), else the first point at or after each of `max_points` steps evenly spaced
/// from the series' lowest to its highest step (a position in a gap takes the point after the
/// gap; positions sharing a point give it once). One read transaction, so the count and the
/// points agree.
pub(super) async fn sample(
    pool: &PgPool,
    run_id: &str,
    name: &str,
    max_points: usize,
) -> Result<SeriesSample> {
    let max_points = max_points.max(2) as i64;
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let Some(found) = sqlx::query(
        "SELECT s.id, s.points, s.last_step, \
         (SELECT first_step FROM metric_chunks WHERE series = s.id ORDER BY first_step LIMIT 1) AS first \
         FROM metric_series s WHERE s.run_id = $1 AND s.name = $2",
    )
    .bind(run_id)
    .bind(name)
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(SeriesSample::default());
    };
    let id: i64 = found.try_get("id")?;
    let total: i64 = found.try_get("points")?;
    let last: i64 = found.try_get("last_step")?;
    let Some(first) = found.try_get::<Option<i64>, _>("first")? else {
        return Ok(SeriesSample::default());
    };
    if total <= max_points {
        let rows = sqlx::query(
            "SELECT steps, vals, times FROM metric_chunks WHERE series = $1 ORDER BY first_step",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        let mut points = Vec::with_capacity(total.max(0) as usize);
        for row in &rows {
            let chunk = Chunk::from_row(row)?;
            points.extend(chunk.points().map(|(step, value, time_ms)| SeriesPoint {
                step,
                value,
                time_ms,
            }));
        }
        return Ok(SeriesSample {
            total: points.len() as u64,
            points,
        });
    }
    // Position i's step: first + i * (last - first) / (n - 1), rounded down.
    let span = (last - first) as i128;
    let targets: Vec<i64> = (0..max_points as i128)
        .map(|i| first + (i * span / (max_points as i128 - 1)) as i64)
        .collect();
    // Per position: the chunk holding its step (the last starting at or before it, if it ends
    // at or after it), else the next chunk; then the element: by offset in a chunk of
    // consecutive steps, by a scan of its steps otherwise, the first one after a gap.
    let rows = sqlx::query(
        "SELECT x.i, x.steps[x.k] AS step, x.vals[x.k] AS value, x.times[x.k] AS time_ms FROM ( \
           SELECT t.i, c.steps, c.vals, c.times, \
             CASE WHEN c.first_step >= t.step THEN 1 \
                  WHEN c.last_step - c.first_step + 1 = cardinality(c.steps) THEN CAST(t.step - c.first_step + 1 AS INT) \
                  ELSE (SELECT CAST(MIN(u.o) AS INT) FROM UNNEST(c.steps) WITH ORDINALITY AS u(s, o) WHERE u.s >= t.step) \
             END AS k \
           FROM UNNEST($2::BIGINT[]) WITH ORDINALITY AS t(step, i) \
           CROSS JOIN LATERAL ( \
             SELECT * FROM ( \
               (SELECT 0 AS o, a.* FROM (SELECT first_step, last_step, steps, vals, times FROM metric_chunks \
                  WHERE series = $1 AND first_step <= t.step ORDER BY first_step DESC LIMIT 1) a \
                WHERE a.last_step >= t.step) \
               UNION ALL \
               (SELECT 1 AS o, first_step, last_step, steps, vals, times FROM metric_chunks \
                  WHERE series = $1 AND first_step > t.step ORDER BY first_step LIMIT 1) \
             ) y ORDER BY y.o LIMIT 1 \
           ) c \
         ) x ORDER BY x.i",
    )
    .bind(id)
    .bind(&targets)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let mut points: Vec<SeriesPoint> = Vec::with_capacity(rows.len());
    for r in &rows {
        let Some(step) = r.try_get::<Option<i64>, _>("step")? else {
            continue;
        };
        if points.last().is_some_and(|p| p.step == step) {
            continue;
        }
        points.push(SeriesPoint {
            step,
            value: r.try_get("value")?,
            time_ms: r.try_get::<Option<i64>, _>("time_ms")?.unwrap_or(0),
        });
    }
    Ok(SeriesSample {
        points,
        total: total as u64,
    })
}
