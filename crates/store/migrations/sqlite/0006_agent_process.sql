-- The agent's process key (`linux:BOOT_ID:PID_NAMESPACE:PID:START_TIME`), so that a server on
-- the same machine can tell for certain that the agent is gone and crash its runs at once.
ALTER TABLE agents ADD COLUMN process_key TEXT;
