-- Scheduled sweeps. next_run_at is when the schedule is due next (Unix ms).
CREATE TABLE schedules (
    id          TEXT PRIMARY KEY,
    cron        TEXT NOT NULL,
    selector    TEXT NOT NULL,
    pack        TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    last_run_at INTEGER,
    last_sweep  TEXT,
    next_run_at INTEGER NOT NULL
);
