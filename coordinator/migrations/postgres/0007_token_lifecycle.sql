-- PostgreSQL form of the SQLite migration of the same name (INTEGER is BIGINT, AUTOINCREMENT an identity column).
-- Operator token lifecycle: when each was last used (at most once a minute) and revocation.
ALTER TABLE operator_tokens ADD COLUMN last_used_at BIGINT;
ALTER TABLE operator_tokens ADD COLUMN revoked_at BIGINT;
