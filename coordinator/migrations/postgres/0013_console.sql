-- PostgreSQL form of the SQLite migration of the same name (INTEGER is BIGINT, AUTOINCREMENT an identity column).
-- The console lists the newest sweeps and charts their scores.
CREATE INDEX sweeps_started ON sweeps (started_at);
