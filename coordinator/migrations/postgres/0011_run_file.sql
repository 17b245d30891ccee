-- PostgreSQL form of the SQLite migration of the same name (INTEGER is BIGINT, AUTOINCREMENT an identity column).
-- The name of the file a run or game day was started from (for a game day's experiment: its path
-- as the plan writes it); `spec` keeps the file's text.
ALTER TABLE chaos_runs ADD COLUMN file TEXT NOT NULL DEFAULT '';
