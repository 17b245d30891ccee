-- PostgreSQL form of the SQLite migration of the same name (INTEGER is BIGINT, AUTOINCREMENT an identity column).
-- Compliance sweeps and every result they produced (kept: history and drift read them).
CREATE TABLE sweeps (
    id          TEXT PRIMARY KEY,
    pack        TEXT NOT NULL,
    selector    TEXT NOT NULL,
    actor       TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT
);

CREATE TABLE sweep_hosts (
    sweep_id    TEXT NOT NULL REFERENCES sweeps(id),
    agent_id    TEXT NOT NULL,
    hostname    TEXT NOT NULL,
    status      TEXT NOT NULL,
    message     TEXT NOT NULL,
    collect_ms  BIGINT NOT NULL,
    PRIMARY KEY (sweep_id, agent_id)
);

CREATE TABLE sweep_results (
    sweep_id  TEXT NOT NULL REFERENCES sweeps(id),
    agent_id  TEXT NOT NULL,
    rule      TEXT NOT NULL,
    status    TEXT NOT NULL,
    severity  TEXT NOT NULL,
    evidence  TEXT NOT NULL,
    micros    BIGINT NOT NULL,
    PRIMARY KEY (sweep_id, agent_id, rule)
);
CREATE INDEX sweep_results_agent ON sweep_results (agent_id, rule);

-- The latest facts of each agent, so packs can be evaluated again without a new sweep.
CREATE TABLE facts (
    agent_id     TEXT PRIMARY KEY,
    collected_at BIGINT NOT NULL,
    sweep_id     TEXT NOT NULL,
    json         TEXT NOT NULL
);
