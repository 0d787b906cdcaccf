-- Why a sweep ended, when something ended it on purpose: `stop`, `cancel`, or a limit of its
-- `budget` (`wall_time`, `run_hours`, `stagnation`). NULL for sweeps that ran out of runs
-- (space exhausted, run_cap, retries done), reached the metric target, or are not over.
ALTER TABLE sweeps ADD COLUMN end_reason TEXT;
