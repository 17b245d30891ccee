-- PostgreSQL form of the SQLite migration of the same name (INTEGER is BIGINT, AUTOINCREMENT an identity column).
-- Faults as the agents report them (their state is the agents' truth; this is the last word the
-- coordinator heard). One row per fault id.
CREATE TABLE faults (
    fault_id         TEXT PRIMARY KEY,
    agent_id         TEXT NOT NULL,
    hostname         TEXT NOT NULL,
    kind             TEXT NOT NULL,
    state            TEXT NOT NULL,
    detail           TEXT NOT NULL,
    started_at       BIGINT NOT NULL,
    ends_at          BIGINT NOT NULL,
    reverted_at      BIGINT NOT NULL,
    reverted_by      TEXT NOT NULL,
    requested_by     TEXT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX faults_agent ON faults (agent_id, state);
