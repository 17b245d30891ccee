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
    enrolled_at      INTEGER NOT NULL,
    last_seen        INTEGER NOT NULL DEFAULT 0,
    revoked_at       INTEGER
);

-- Join tokens: only the sha256 of the secret is kept.
CREATE TABLE join_tokens (
    id         TEXT PRIMARY KEY,
    hash       TEXT NOT NULL UNIQUE,
    labels     TEXT NOT NULL DEFAULT '{}',
    expires_at INTEGER NOT NULL,
    uses_left  INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- Operator bearer tokens: only the sha256 of the secret is kept.
CREATE TABLE operator_tokens (
    id         TEXT PRIMARY KEY,
    hash       TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    expires_at INTEGER,
    created_at INTEGER NOT NULL
);

-- Audit trail; each row's hash covers the previous row's hash, so edits and deletions show.
CREATE TABLE audit (
    seq       INTEGER PRIMARY KEY,
    time      INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    arguments TEXT NOT NULL,
    result    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
