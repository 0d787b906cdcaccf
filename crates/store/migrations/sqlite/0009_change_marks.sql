-- Change marks: every run carries the mark of its last change that a search strategy can see
-- (inserted, or its state, metric, summaries, error, configuration or retry link changed), so
-- a server keeps each sweep's history in memory and refreshes it from only the runs that
-- changed since it last looked (`Storage::trials_changed`), instead of reading every run of
-- the sweep on each claim. Heartbeats, output, argv and config merges leave the mark alone.
--
-- On SQLite the mark is one database-wide counter, bumped by the triggers below inside the
-- writing transaction; the single writer commits in counter order, so a reader that first
-- reads the counter and then the runs marked after its last mark misses nothing.
CREATE TABLE run_changes (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    mark BIGINT NOT NULL
);
INSERT INTO run_changes (id, mark) VALUES (1, 0);
ALTER TABLE runs ADD COLUMN change_mark BIGINT NOT NULL DEFAULT 0;
CREATE INDEX runs_by_sweep_change ON runs (sweep_id, change_mark);

CREATE TRIGGER runs_mark_insert AFTER INSERT ON runs
BEGIN
    UPDATE run_changes SET mark = mark + 1;
    UPDATE runs SET change_mark = (SELECT mark FROM run_changes) WHERE id = NEW.id;
END;

CREATE TRIGGER runs_mark_update
AFTER UPDATE OF state, metric, summary, user_summary, error, params, grid_index, retry_of, attempt, number
ON runs
BEGIN
    UPDATE run_changes SET mark = mark + 1;
    UPDATE runs SET change_mark = (SELECT mark FROM run_changes) WHERE id = NEW.id;
END;
