-- Leadroute schema. Times are microseconds since the Unix epoch (BIGINT), dates are
-- YYYY-MM-DD text and documents are JSON text, so the same SQL runs on SQLite and PostgreSQL.

CREATE TABLE workspace (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    -- Bumped by every change to reps, teams, pools or rule sets: cached rosters reload.
    config_version BIGINT NOT NULL,
    -- Bumped by every commit that changes routing state: cached state reloads.
    routing_version BIGINT NOT NULL
);
INSERT INTO workspace (id, config_version, routing_version) VALUES (1, 1, 1);

CREATE TABLE pools (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
INSERT INTO pools (id, name, created_at) VALUES ('public', '公海', 0);

CREATE TABLE custom_fields (
    entity TEXT NOT NULL,
    name TEXT NOT NULL,
    field_type TEXT NOT NULL,
    PRIMARY KEY (entity, name)
);

CREATE TABLE reps (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    document TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE teams (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    document TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE rule_sets (
    version BIGINT PRIMARY KEY,
    name TEXT,
    document TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    published_at BIGINT
);

CREATE TABLE leads (
    id TEXT PRIMARY KEY,
    external_id TEXT UNIQUE,
    document TEXT NOT NULL,
    status TEXT NOT NULL,
    owner_id TEXT,
    team_id TEXT,
    pool_id TEXT,
    held BOOLEAN NOT NULL,
    source TEXT,
    phone TEXT,
    email TEXT,
    tags TEXT NOT NULL,
    score DOUBLE PRECISION,
    priority TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX leads_owner ON leads (owner_id, status);
CREATE INDEX leads_created ON leads (created_at);
CREATE INDEX leads_phone ON leads (phone);
CREATE INDEX leads_email ON leads (email);

CREATE TABLE decisions (
    id TEXT PRIMARY KEY,
    lead_id TEXT NOT NULL REFERENCES leads (id),
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT,
    rule_set_version BIGINT,
    outcome TEXT NOT NULL,
    owner_id TEXT,
    record TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX decisions_lead ON decisions (lead_id, created_at);

CREATE TABLE rep_state (
    rep_id TEXT PRIMARY KEY,
    open_leads BIGINT NOT NULL,
    day_start TEXT,
    day_count BIGINT NOT NULL,
    week_start TEXT,
    week_count BIGINT NOT NULL,
    month_start TEXT,
    month_count BIGINT NOT NULL,
    last_assigned_at BIGINT
);

CREATE TABLE rotations (
    key TEXT PRIMARY KEY,
    state TEXT NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
