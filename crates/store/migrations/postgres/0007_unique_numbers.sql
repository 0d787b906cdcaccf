-- The locking contract's backstops (see docs/ARCHITECTURE.md, "Storage"): a run number is
-- taken once per sweep, and a run is retried at most once (a retry of a retry is the next
-- attempt). Mirrors SQLite's 0007; a PostgreSQL database starts at 0001 with no data, so
-- nothing needs renumbering here.
CREATE UNIQUE INDEX runs_unique_number ON runs (sweep_id, number);
CREATE UNIQUE INDEX runs_unique_retry ON runs (retry_of) WHERE retry_of IS NOT NULL;
DROP INDEX runs_by_sweep;
DROP INDEX runs_by_retry_of;
