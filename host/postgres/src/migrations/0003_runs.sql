-- Agent runs and the approvals queue, as a home's runs.db keeps them: one row a run
-- (status, usage, and the lease of the node driving it), each step with its memo and
-- observation, each tool call of a step, and the approvals people decide on. Times are
-- milliseconds since the Unix epoch; a lease is compared with the database's clock,
-- so nodes whose clocks differ agree on when it runs out. JSON values are kept as
-- text, exactly as SQLite keeps them.
CREATE TABLE runs (
    id          TEXT PRIMARY KEY,
    agent       TEXT NOT NULL,
    principal   TEXT NOT NULL,
    roles       TEXT NOT NULL,
    task        TEXT NOT NULL,
    status      TEXT NOT NULL,
    result      TEXT,
    error       TEXT,
    steps       BIGINT NOT NULL DEFAULT 0,
    tokens      BIGINT NOT NULL DEFAULT 0,
    cost        DOUBLE PRECISION NOT NULL DEFAULT 0,
    active_ms   BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    finished_at BIGINT,
    owner       TEXT,
    lease_until BIGINT
);
CREATE INDEX runs_status ON runs (status);
CREATE TABLE run_steps (
    run         TEXT NOT NULL,
    n           BIGINT NOT NULL,
    action      TEXT NOT NULL,
    memo        TEXT NOT NULL,
    observation TEXT,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT,
    PRIMARY KEY (run, n)
);
CREATE TABLE run_calls (
    run       TEXT NOT NULL,
    step      BIGINT NOT NULL,
    idx       BIGINT NOT NULL,
    id        TEXT NOT NULL,
    tool      TEXT NOT NULL,
    arguments TEXT NOT NULL,
    state     TEXT NOT NULL,
    outcome   TEXT,
    PRIMARY KEY (run, step, idx)
);
CREATE TABLE run_approvals (
    id         TEXT PRIMARY KEY,
    run        TEXT NOT NULL,
    step       BIGINT NOT NULL,
    call       BIGINT,
    agent      TEXT NOT NULL,
    principal  TEXT NOT NULL,
    tool       TEXT,
    arguments  TEXT,
    question   TEXT,
    schema     TEXT,
    policies   TEXT NOT NULL,
    status     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    decided_by TEXT,
    decided_at BIGINT,
    reason     TEXT,
    edited     TEXT,
    answer     TEXT
);
CREATE INDEX run_approvals_status ON run_approvals (status);
CREATE INDEX run_approvals_run ON run_approvals (run, step, call);
