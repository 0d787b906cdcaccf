-- Idempotent claims: the key a client named its claim with (`claim_key` of
-- `POST /api/v1/sweeps/{id}/claim`), stored with the run that claim handed out, in the same
-- transaction (the insert of a new run, or the update that hands out a queued one). A claim
-- sent again with the same key (its answer was lost) finds the run through the index below,
-- one seek, and answers it again instead of handing out a second run. NULL for runs claimed
-- without a key, manual runs, and queued retries and repeats until they are claimed.
--
-- Unique per sweep, where set: two claims with one key (a retry racing its first attempt)
-- cannot both store a run; the second finds the first's run instead.
ALTER TABLE runs ADD COLUMN claim_key TEXT;
CREATE UNIQUE INDEX runs_by_claim_key ON runs (sweep_id, claim_key) WHERE claim_key IS NOT NULL;
