-- Retries: a run queued again with the same configuration records the run it retries
-- (`retry_of`) and its attempt number (1 for a configuration's first run). A retried run is
-- superseded by its retry: the search and `run_cap` count the configuration once.
ALTER TABLE runs ADD COLUMN retry_of TEXT;
ALTER TABLE runs ADD COLUMN attempt BIGINT NOT NULL DEFAULT 1;
CREATE INDEX runs_by_retry_of ON runs (retry_of);
-- A finished sweep reopened by `hyperdial retry` hands out its queued retries, then finishes
-- again without asking the search for new runs.
ALTER TABLE sweeps ADD COLUMN retries_only BOOLEAN NOT NULL DEFAULT FALSE;
