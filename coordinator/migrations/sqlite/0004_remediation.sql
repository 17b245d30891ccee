-- How many hosts a sweep selected (so a running sweep's report can say how many are missing),
-- and how long each host's evaluation took.
ALTER TABLE sweeps ADD COLUMN hosts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sweep_hosts ADD COLUMN eval_micros INTEGER NOT NULL DEFAULT 0;

-- Remediation runs (dry runs too) and what each host did.
CREATE TABLE remediation_runs (
    id         TEXT PRIMARY KEY,
    rule       TEXT NOT NULL,
    pack       TEXT NOT NULL,
    selector   TEXT NOT NULL,
    apply      INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE remediation_hosts (
    run_id         TEXT NOT NULL REFERENCES remediation_runs(id),
    agent_id       TEXT NOT NULL,
    hostname       TEXT NOT NULL,
    status         TEXT NOT NULL,
    before_status  TEXT NOT NULL,
    after_status   TEXT NOT NULL,
    changes        TEXT NOT NULL,
    message        TEXT NOT NULL,
    -- Whether the agent changed the host (and so holds backups for a rollback).
    applied        INTEGER NOT NULL,
    rolled_back_at INTEGER,
    PRIMARY KEY (run_id, agent_id)
);
