-- PostgreSQL form of the SQLite migration of the same name (INTEGER is BIGINT, AUTOINCREMENT an identity column).
-- Agents known to this coordinator. `state` is online, offline or revoked.
CREATE TABLE agents (
    id               TEXT PRIMARY KEY,
    hostname         TEXT NOT NULL,
    labels           TEXT NOT NULL DEFAULT '{}',
    state            TEXT NOT NULL,
    os               TEXT NOT NULL DEFAULT '',
    kernel           TEXT NOT NULL DEFAULT '',
    arch             TEXT NOT NULL DEFAULT '',
    version          TEXT NOT NULL DEFAULT '',
    capabilities     TEXT NOT NULL DEFAULT '[]',
    address          TEXT NOT NULL DEFAULT '',
    cert_fingerprint TEXT NOT NULL,
    enrolled_at      BIGINT NOT NULL,
    last_seen        BIGINT NOT NULL DEFAULT 0,
    revoked_at       BIGINT
);

-- Join tokens: only the sha256 of the secret is kept.
CREATE TABLE join_tokens (
    id         TEXT PRIMARY KEY,
    hash       TEXT NOT NULL UNIQUE,
    labels     TEXT NOT NULL DEFAULT '{}',
    expires_at BIGINT NOT NULL,
    uses_left  BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Operator bearer tokens: only the sha256 of the secret is kept.
CREATE TABLE operator_tokens (
    id         TEXT PRIMARY KEY,
    hash       TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    expires_at BIGINT,
    created_at BIGINT NOT NULL
);

-- Audit trail; each row's hash covers the previous row's hash, so edits and deletions show.
CREATE TABLE audit (
    seq       BIGINT PRIMARY KEY,
    time      BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    arguments TEXT NOT NULL,
    result    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
