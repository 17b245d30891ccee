-- PostgreSQL form of the SQLite migration of the same name (INTEGER is BIGINT, BLOB is BYTEA).
-- Coordinators sharing this database, each with the time it last said it was alive. A coordinator
-- whose row is stale is dead: another one marks its agents offline and settles its sweeps, remediation
-- runs and experiment runs.
CREATE TABLE coordinators (
    id         TEXT PRIMARY KEY,
    hostname   TEXT NOT NULL,
    pid        BIGINT NOT NULL,
    address    TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL
);
-- Which coordinator holds an agent's session, and which one runs a sweep, remediation run or
-- experiment run. NULL: a coordinator from before this migration (settled as dead).
ALTER TABLE agents ADD COLUMN coordinator_id TEXT;
ALTER TABLE sweeps ADD COLUMN coordinator_id TEXT;
ALTER TABLE remediation_runs ADD COLUMN coordinator_id TEXT;
ALTER TABLE chaos_runs ADD COLUMN coordinator_id TEXT;
-- Commands for agents whose session another coordinator holds: the origin inserts one, the holder
-- runs it on the session and writes the result; the origin reads and deletes it.
CREATE TABLE relayed_commands (
    id          TEXT PRIMARY KEY,
    agent_id    TEXT NOT NULL,
    holder      TEXT NOT NULL,
    origin      TEXT NOT NULL,
    command     BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    claimed_at  BIGINT,
    done_at     BIGINT,
    result      BYTEA,
    error_kind  TEXT,
    error       TEXT
);
CREATE INDEX relayed_commands_holder ON relayed_commands (holder, claimed_at);
-- The deployment's CA: every coordinator sharing the database must hold the same one, or agents
-- enrolled by one would be strangers to the others.
CREATE TABLE deployment (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    ca_fingerprint TEXT NOT NULL
);
