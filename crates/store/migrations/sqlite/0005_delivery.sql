-- Metric points a client could not deliver (spilled to a local file or dropped) and what
-- `hyperdial sync` brought back later: {"missing": N, "recovered": M, "files": [...]} as
-- JSON, NULL while nothing was reported missing.
ALTER TABLE runs ADD COLUMN delivery TEXT;
