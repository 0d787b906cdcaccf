-- Why the server ended or changed a run, as a word (`EndCause` in the wire crate):
-- `agent_silent`, `agent_gone`, `client_silent`, `run_silent`, `late_end_pending`,
-- `retry_withdrawn`, `retry_superseded`; NULL for a run its agent or client ended. The
-- server's decisions about such runs read this column, never the `error` text, which a
-- client can set to anything. Runs ended before this migration get their cause from the
-- error text the server wrote then.
ALTER TABLE runs ADD COLUMN end_cause TEXT;
UPDATE runs SET end_cause = 'agent_silent'
  WHERE state = 'crashed' AND error = 'the agent stopped reporting';
UPDATE runs SET end_cause = 'agent_gone'
  WHERE state = 'crashed' AND error = 'its agent process is gone (this machine)';
UPDATE runs SET end_cause = 'client_silent'
  WHERE state = 'crashed'
    AND error LIKE 'no heartbeat or tell for % s (the client that asked for this trial stopped)';
UPDATE runs SET end_cause = 'run_silent'
  WHERE state = 'crashed' AND sweep_id IS NULL
    AND error = 'the process tracking this run stopped reporting (no heartbeat, metrics or output for the run timeout)';
UPDATE runs SET end_cause = 'late_end_pending'
  WHERE state = 'running'
    AND error = 'its end arrived after it was marked crashed and is being uploaded';
UPDATE runs SET end_cause = 'retry_withdrawn'
  WHERE state = 'cancelled'
    AND error = 'withdrawn before it started: the run it retried delivered its end late, after all';
UPDATE runs SET end_cause = 'retry_superseded'
  WHERE repeat_of IS NOT NULL AND seed IS NULL;
