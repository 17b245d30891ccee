-- Operator token lifecycle: when each was last used (at most once a minute) and revocation.
ALTER TABLE operator_tokens ADD COLUMN last_used_at INTEGER;
ALTER TABLE operator_tokens ADD COLUMN revoked_at INTEGER;
