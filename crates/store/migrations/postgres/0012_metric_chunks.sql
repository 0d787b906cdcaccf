-- Metric points stored in chunks per series (PostgreSQL only; SQLite keeps one row per point
-- in a table without rowid, which costs it about 25 bytes per value already). A row per point
-- costs PostgreSQL about 92 bytes per value (a 24-byte tuple header, a 4-byte line pointer,
-- 32 bytes of data, and an index entry of about 32 bytes); a chunk holds up to 78 consecutive
-- points of one series as three arrays (steps, values, times), so that overhead is paid once
-- per 78 points: about 27 bytes per value in all.
--
-- A chunk is keyed by (series, first_step); `last_step` is its highest step. The chunks of a
-- series never overlap, each holds its steps ascending and distinct, and `vals` has NULL for
-- NaN, as before. 78 points keep a full row under 2 kB, so it stays inline (no TOAST: a read or
-- an append touches one heap tuple) and four full rows fill an 8 kB page.
--
-- Existing points are moved over in one statement: numbered per series in step order, cut into
-- runs of 78, each run aggregated into one chunk. The per-series bookkeeping in
-- `metric_series` (points, last_step) is unchanged.
CREATE TABLE metric_chunks (
    series     BIGINT NOT NULL,
    first_step BIGINT NOT NULL,
    last_step  BIGINT NOT NULL,
    steps      BIGINT[] NOT NULL,
    vals       DOUBLE PRECISION[] NOT NULL,
    times      BIGINT[] NOT NULL,
    PRIMARY KEY (series, first_step)
);

INSERT INTO metric_chunks (series, first_step, last_step, steps, vals, times)
    SELECT series, MIN(step), MAX(step),
           array_agg(step ORDER BY step), array_agg(value ORDER BY step), array_agg(time_ms ORDER BY step)
    FROM (SELECT series, step, value, time_ms,
                 (ROW_NUMBER() OVER (PARTITION BY series ORDER BY step) - 1) / 78 AS chunk
          FROM metric_points) numbered
    GROUP BY series, chunk
    ORDER BY series, MIN(step);

DROP TABLE metric_points;
