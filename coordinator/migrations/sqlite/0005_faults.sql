-- Faults as the agents report them (their state is the agents' truth; this is the last word the
-- coordinator heard). One row per fault id.
CREATE TABLE faults (
    fault_id         TEXT PRIMARY KEY,
    agent_id         TEXT NOT NULL,
    hostname         TEXT NOT NULL,
    kind             TEXT NOT NULL,
    state            TEXT NOT NULL,
    detail           TEXT NOT NULL,
    started_at       INTEGER NOT NULL,
    ends_at          INTEGER NOT NULL,
    reverted_at      INTEGER NOT NULL,
    reverted_by      TEXT NOT NULL,
    requested_by     TEXT NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX faults_agent ON faults (agent_id, state);
