-- PostgreSQL form of the SQLite migration of the same name (INTEGER is BIGINT, AUTOINCREMENT an identity column).
-- Which hosts each sweep and remediation run selected, so that a run the coordinator could not
-- finish (it was stopped or killed) is settled at start-up with every host that never answered
-- listed as such.
CREATE TABLE run_targets (
    run_id   TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    hostname TEXT NOT NULL,
    PRIMARY KEY (run_id, agent_id)
);

-- 1 when the coordinator stopped before the sweep or run finished.
ALTER TABLE sweeps ADD COLUMN interrupted BIGINT NOT NULL DEFAULT 0;
ALTER TABLE remediation_runs ADD COLUMN finished_at BIGINT;
ALTER TABLE remediation_runs ADD COLUMN interrupted BIGINT NOT NULL DEFAULT 0;
-- Runs stored before this migration finished as they were recorded.
UPDATE remediation_runs SET finished_at = created_at;
