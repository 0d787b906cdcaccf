-- Indexes for the dashboard at scale (10 000 runs, 1 000 000 metric points per sweep):
-- sorting a sweep's runs by metric or end time, and counting them by state, without a scan
-- of every run in the database. Metric series are already served by the metrics primary key
-- (run_id, name, step).
CREATE INDEX runs_by_sweep_metric ON runs (sweep_id, metric);
CREATE INDEX runs_by_sweep_finished ON runs (sweep_id, finished_ms);
CREATE INDEX runs_by_sweep_state ON runs (sweep_id, state);
