-- The index on `repeat_of` holds repeats only. A run that repeats nothing (every run but the
-- ones `hyperdial repeat` queued) has `repeat_of` NULL, and no query looks runs up by a NULL
-- `repeat_of`; as a full index it still took an entry for each of them, one more b-tree
-- written by every run inserted (an ask/tell trial's commit wrote that page for nothing). A
-- lookup `repeat_of = ?` implies `repeat_of IS NOT NULL`, so it can use the partial index as it
-- used the full one.
DROP INDEX runs_by_repeat_of;
CREATE INDEX runs_by_repeat_of ON runs (repeat_of) WHERE repeat_of IS NOT NULL;
