-- Repeats: a run queued with given parameters and a seed, to measure how much the metric moves
-- when only the seed changes (`hyperdial repeat`). `repeat_of` is the run whose configuration
-- it repeats; `seed` the seed it was given (the agent passes it in the seed parameter and in
-- HYPERDIAL_SEED). Both are NULL for every other run.
ALTER TABLE runs ADD COLUMN repeat_of TEXT;
ALTER TABLE runs ADD COLUMN seed BIGINT;
CREATE INDEX runs_by_repeat_of ON runs (repeat_of);
