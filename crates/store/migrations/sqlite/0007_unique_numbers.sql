-- The locking contract's backstops (see docs/ARCHITECTURE.md, "Storage"): a run number is
-- taken once per sweep, and a run is retried at most once (a retry of a retry is the next
-- attempt). Correctness no longer rests on a single writer: the schema refuses a second run
-- with a taken number, and queueing a retry twice inserts nothing the second time.
--
-- Databases written before these indexes cannot hold such duplicates in practice (one writer
-- did everything), but the upgrade copes if they do rather than refuse to start:
-- 1. a run whose (sweep, number) an earlier run already has is renumbered after the sweep's
--    last number, in the order the runs were created, and the sweep's next number follows;
-- 2. of several retries of one run, the earliest keeps `retry_of`; the later ones become
--    plain runs of the sweep (their configuration and attempt number stay).
CREATE TEMP TABLE renumbered AS
    SELECT r.id AS id,
           (SELECT MAX(x.number) FROM runs x WHERE x.sweep_id = r.sweep_id)
             + ROW_NUMBER() OVER (PARTITION BY r.sweep_id ORDER BY r.created_ms, r.id) AS number
    FROM runs r
    WHERE r.sweep_id IS NOT NULL AND r.number IS NOT NULL
      AND EXISTS (SELECT 1 FROM runs o WHERE o.sweep_id = r.sweep_id AND o.number = r.number
                  AND (o.created_ms < r.created_ms OR (o.created_ms = r.created_ms AND o.id < r.id)));
UPDATE runs SET number = (SELECT n.number FROM renumbered n WHERE n.id = runs.id)
    WHERE id IN (SELECT id FROM renumbered);
UPDATE sweeps SET next_number = (SELECT MAX(r.number) + 1 FROM runs r WHERE r.sweep_id = sweeps.id)
    WHERE next_number <= (SELECT MAX(r.number) FROM runs r WHERE r.sweep_id = sweeps.id);
DROP TABLE renumbered;

UPDATE runs SET retry_of = NULL
    WHERE retry_of IS NOT NULL
      AND EXISTS (SELECT 1 FROM runs o WHERE o.retry_of = runs.retry_of
                  AND (o.created_ms < runs.created_ms OR (o.created_ms = runs.created_ms AND o.id < runs.id)));

CREATE UNIQUE INDEX runs_unique_number ON runs (sweep_id, number);
CREATE UNIQUE INDEX runs_unique_retry ON runs (retry_of) WHERE retry_of IS NOT NULL;
DROP INDEX runs_by_sweep;
DROP INDEX runs_by_retry_of;
