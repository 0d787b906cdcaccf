-- Change marks (see SQLite's 0009): every run carries the id of the transaction that last
-- changed what a search strategy can see of it (inserted, or its state, metric, summaries,
-- error, configuration or retry link changed). Transaction ids are not handed out in commit
-- order, so a reader keeps as its mark the oldest transaction still running when it looked
-- (`pg_snapshot_xmin`), minus one: every transaction not visible to it then has an id above
-- that mark, and is read on the next refresh.
ALTER TABLE runs ADD COLUMN change_mark BIGINT NOT NULL DEFAULT 0;
CREATE INDEX runs_by_sweep_change ON runs (sweep_id, change_mark);

CREATE FUNCTION runs_set_change_mark() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.change_mark := pg_current_xact_id()::text::bigint;
    RETURN NEW;
END
$$;

CREATE TRIGGER runs_mark_insert BEFORE INSERT ON runs
    FOR EACH ROW EXECUTE FUNCTION runs_set_change_mark();

CREATE TRIGGER runs_mark_update
    BEFORE UPDATE OF state, metric, summary, user_summary, error, params, grid_index, retry_of, attempt, number
    ON runs
    FOR EACH ROW EXECUTE FUNCTION runs_set_change_mark();
