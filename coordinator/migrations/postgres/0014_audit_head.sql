-- PostgreSQL form of the SQLite migration of the same name (INTEGER is BIGINT, AUTOINCREMENT an identity column).
-- The newest audit entry's seq and hash, written in the same transaction as the entry: where
-- coordinators share one database (PostgreSQL) there is no shared data dir for a head file, so
-- `audit verify` compares the chain's end with this row. SQLite keeps its head file too.
CREATE TABLE audit_head (
    id   BIGINT PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) SELECT 1, seq, hash FROM audit ORDER BY seq DESC LIMIT 1;
