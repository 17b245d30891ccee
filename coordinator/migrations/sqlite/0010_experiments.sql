-- Chaos experiment runs and game days, their timelines, and every fault a run injected (written
-- before the command is sent, so a coordinator killed mid-run still knows what to revert).
CREATE TABLE chaos_runs (
    id               TEXT PRIMARY KEY,
    kind             TEXT NOT NULL,              -- experiment | gameday
    name             TEXT NOT NULL,
    state            TEXT NOT NULL,              -- running | waiting_approval | finished
    verdict          TEXT NOT NULL DEFAULT '',
    reason           TEXT NOT NULL DEFAULT '',
    created_by       TEXT NOT NULL,
    started_at       INTEGER NOT NULL,
    finished_at      INTEGER NOT NULL DEFAULT 0,
    recovery_ms      INTEGER NOT NULL DEFAULT -1,
    halt_latency_ms  INTEGER NOT NULL DEFAULT -1,
    gameday_id       TEXT NOT NULL DEFAULT '',
    stage            TEXT NOT NULL DEFAULT '',
    spec             TEXT NOT NULL,
    plan             TEXT NOT NULL DEFAULT '[]', -- JSON list of strings
    targets          TEXT NOT NULL DEFAULT '[]', -- JSON list of RunTarget
    probes           TEXT NOT NULL DEFAULT '[]'  -- JSON list of ProbeSummary
);
CREATE INDEX chaos_runs_started ON chaos_runs (started_at);
CREATE INDEX chaos_runs_gameday ON chaos_runs (gameday_id);

CREATE TABLE chaos_events (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id           TEXT NOT NULL,
    at               INTEGER NOT NULL,
    kind             TEXT NOT NULL,
    hostname         TEXT NOT NULL,
    detail           TEXT NOT NULL,
    actor            TEXT NOT NULL
);
CREATE INDEX chaos_events_run ON chaos_events (run_id, seq);

CREATE TABLE chaos_run_faults (
    fault_id         TEXT PRIMARY KEY,
    run_id           TEXT NOT NULL,
    agent_id         TEXT NOT NULL,
    hostname         TEXT NOT NULL,
    kind             TEXT NOT NULL,
    step             INTEGER NOT NULL,
    state            TEXT NOT NULL,              -- pending | active | reverted | revert_failed | refused | failed | unknown
    detail           TEXT NOT NULL,
    settled          INTEGER NOT NULL DEFAULT 0  -- 1 once the agent confirmed it is not (or no longer) applied
);
CREATE INDEX chaos_run_faults_run ON chaos_run_faults (run_id);
CREATE INDEX chaos_run_faults_unsettled ON chaos_run_faults (agent_id, settled);
