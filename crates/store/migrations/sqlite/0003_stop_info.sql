-- Why an early-termination rule stopped a run: rule, rung, value and threshold (JSON).
ALTER TABLE runs ADD COLUMN stop_info TEXT;
