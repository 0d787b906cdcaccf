-- Metric points laid out for how they are read: always one series (a run's metric) at a
-- time, by step. The (run, name) pair is interned once in `metric_series`, whose small
-- integer id keys the points; the points table has no rowid, so each point is stored once,
-- in the primary key's b-tree, ordered by (series, step), instead of once in the table and
-- again in the index of (run_id, name, step). About 25 bytes per value instead of 69.
--
-- `points` (how many steps the series holds) and `last_step` (its highest step) are kept up
-- to date by every metric batch, so a history read knows the size and the step range of a
-- series without counting, and a batch knows which of its steps may already exist.
CREATE TABLE metric_series (
    id        INTEGER PRIMARY KEY,
    run_id    TEXT NOT NULL,
    name      TEXT NOT NULL,
    points    BIGINT NOT NULL DEFAULT 0,
    last_step BIGINT NOT NULL DEFAULT -1,
    UNIQUE (run_id, name)
);

CREATE TABLE metric_points (
    series   INTEGER NOT NULL,
    step     INTEGER NOT NULL,
    value    REAL,
    time_ms  INTEGER NOT NULL,
    PRIMARY KEY (series, step)
) WITHOUT ROWID;

INSERT INTO metric_series (run_id, name, points, last_step)
    SELECT run_id, name, COUNT(*), MAX(step) FROM metrics GROUP BY run_id, name ORDER BY run_id, name;

INSERT INTO metric_points (series, step, value, time_ms)
    SELECT s.id, m.step, m.value, m.time_ms
    FROM metrics m JOIN metric_series s ON s.run_id = m.run_id AND s.name = m.name
    ORDER BY s.id, m.step;

DROP TABLE metrics;
