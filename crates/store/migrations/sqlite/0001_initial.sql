-- hyperdial schema, SQLite flavour. Timestamps are integer milliseconds since the epoch;
-- JSON is stored as text. The PostgreSQL migration set mirrors these tables.

CREATE TABLE projects (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_ms  BIGINT NOT NULL
);

CREATE TABLE sweeps (
    id           TEXT PRIMARY KEY,
    project_id   INTEGER NOT NULL REFERENCES projects(id),
    name         TEXT,
    method       TEXT NOT NULL,
    state        TEXT NOT NULL,
    source       TEXT NOT NULL,
    source_file  TEXT,
    config_hash  TEXT NOT NULL,
    seed         BIGINT NOT NULL,
    next_number  BIGINT NOT NULL DEFAULT 1,
    metric_name  TEXT,
    goal         TEXT,
    notes        TEXT NOT NULL DEFAULT '',
    created_ms   BIGINT NOT NULL,
    updated_ms   BIGINT NOT NULL
);
CREATE INDEX sweeps_by_project ON sweeps (project_id, created_ms);
CREATE INDEX sweeps_by_hash ON sweeps (project_id, config_hash);

CREATE TABLE agents (
    id          TEXT PRIMARY KEY,
    sweep_id    TEXT REFERENCES sweeps(id),
    host        TEXT,
    pid         BIGINT,
    created_ms  BIGINT NOT NULL,
    seen_ms     BIGINT NOT NULL
);

CREATE TABLE runs (
    id              TEXT PRIMARY KEY,
    sweep_id        TEXT REFERENCES sweeps(id),
    project_id      INTEGER NOT NULL REFERENCES projects(id),
    number          BIGINT,
    name            TEXT,
    state           TEXT NOT NULL,
    params          TEXT NOT NULL,
    config          TEXT NOT NULL,
    suggestion      TEXT,
    grid_index      BIGINT,
    agent_id        TEXT,
    host            TEXT,
    argv            TEXT,
    exit_code       BIGINT,
    error           TEXT,
    metric          DOUBLE PRECISION,
    summary         TEXT NOT NULL DEFAULT '{}',
    user_summary    TEXT NOT NULL DEFAULT '{}',
    next_step       BIGINT NOT NULL DEFAULT 0,
    git_commit      TEXT,
    git_dirty       BOOLEAN,
    stop_requested  BOOLEAN NOT NULL DEFAULT FALSE,
    stop_reason     TEXT,
    created_ms      BIGINT NOT NULL,
    started_ms      BIGINT,
    heartbeat_ms    BIGINT,
    finished_ms     BIGINT
);
CREATE INDEX runs_by_sweep ON runs (sweep_id, number);
CREATE INDEX runs_by_project ON runs (project_id, created_ms);
CREATE INDEX runs_by_state ON runs (state, heartbeat_ms);

CREATE TABLE metrics (
    run_id   TEXT NOT NULL,
    name     TEXT NOT NULL,
    step     BIGINT NOT NULL,
    value    DOUBLE PRECISION,
    time_ms  BIGINT NOT NULL,
    PRIMARY KEY (run_id, name, step)
);

CREATE TABLE outputs (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id   TEXT NOT NULL,
    stream   TEXT NOT NULL,
    text     TEXT NOT NULL,
    time_ms  BIGINT NOT NULL
);
CREATE INDEX outputs_by_run ON outputs (run_id, id);
