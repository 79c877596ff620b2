-- Accounts: users with argon2 password hashes, console sessions stored hashed (so every
-- instance shares them), login lock-out counted here (so it holds across instances), keys
-- owned by users, and the audit log.

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    -- admin, manager or rep.
    role TEXT NOT NULL,
    -- The rep record a rep user is (and a manager may be).
    rep_id TEXT,
    -- JSON array: the teams a manager manages.
    teams TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    active BOOLEAN NOT NULL,
    failed_logins BIGINT NOT NULL,
    locked_until BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE sessions (
    -- SHA-256 of the random session id the cookie holds.
    id_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

ALTER TABLE api_keys ADD COLUMN user_id TEXT;
ALTER TABLE api_keys ADD COLUMN last_used_at BIGINT;

CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    -- key:<id>, user:<id> or system.
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target_id TEXT,
    -- JSON: what changed.
    detail TEXT NOT NULL
);
CREATE INDEX audit_at ON audit_log (at);
