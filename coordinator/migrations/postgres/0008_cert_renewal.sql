-- PostgreSQL form of the SQLite migration of the same name (INTEGER is BIGINT, AUTOINCREMENT an identity column).
-- Agent certificate renewal: when the current certificate expires, and the previous one's
-- fingerprint, still accepted until the agent is seen with the new one (so an agent that crashed
-- before saving its renewed certificate is not locked out).
ALTER TABLE agents ADD COLUMN cert_expires_at BIGINT;
ALTER TABLE agents ADD COLUMN prev_fingerprint TEXT;
