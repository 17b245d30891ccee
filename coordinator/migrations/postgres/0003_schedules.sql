-- PostgreSQL form of the SQLite migration of the same name (INTEGER is BIGINT, AUTOINCREMENT an identity column).
-- Scheduled sweeps. next_run_at is when the schedule is due next (Unix ms).
CREATE TABLE schedules (
    id          TEXT PRIMARY KEY,
    cron        TEXT NOT NULL,
    selector    TEXT NOT NULL,
    pack        TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    last_run_at BIGINT,
    last_sweep  TEXT,
    next_run_at BIGINT NOT NULL
);
