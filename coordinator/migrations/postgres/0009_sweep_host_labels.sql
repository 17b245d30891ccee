-- PostgreSQL form of the SQLite migration of the same name (INTEGER is BIGINT, AUTOINCREMENT an identity column).
-- Each swept host's labels at the time of the sweep: reports and --group-by name hosts the way
-- operators group them, as they were then.
ALTER TABLE sweep_hosts ADD COLUMN labels TEXT NOT NULL DEFAULT '{}';
