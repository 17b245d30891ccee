-- PostgreSQL form of the SQLite migration of the same name (INTEGER is BIGINT).
-- Waivers: a failing check accepted on some hosts, with the reason, until a date. A sweep reports
-- a matching fail or error as `waived`; from expires_at (Unix ms) on it counts again.
CREATE TABLE waivers (
    id         TEXT PRIMARY KEY,
    rule       TEXT NOT NULL,
    -- Empty: the rule in any pack.
    pack       TEXT NOT NULL,
    -- Label selector (k=v,…); empty: every host.
    selector   TEXT NOT NULL,
    reason     TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
-- The waiver that turned a result into `waived` (JSON: id, reason, expires_at, created_by), kept
-- with the result so a report reads the same after the waiver is gone.
ALTER TABLE sweep_results ADD COLUMN waiver TEXT;
