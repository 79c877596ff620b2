-- 查重 / 撞单: the keys a customer is recognised by, one row per lead and key (phone in E.164,
-- email case-folded, WeChat id, normalised company name, company with contact name). Written
-- for every new lead, whether duplicate checking is on or not, so turning it on later finds
-- the history. Leads from before this migration are indexed by the server when it starts.
CREATE TABLE customer_keys (
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    lead_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (kind, value, lead_id)
);
CREATE INDEX customer_keys_lead ON customer_keys (lead_id);

-- Arrivals flagged as possible duplicates of an existing lead, for a manager to review.
CREATE TABLE duplicate_pairs (
    id TEXT PRIMARY KEY,
    -- The later arrival, and the lead it matched.
    lead_id TEXT NOT NULL,
    other_id TEXT NOT NULL,
    -- Which key matched (never the value: it is the customer's phone or email).
    key_kind TEXT NOT NULL,
    -- open, merged or dismissed.
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    resolved_at BIGINT,
    resolved_by TEXT
);
CREATE INDEX duplicate_pairs_status ON duplicate_pairs (status, id);

-- Workspace-wide settings documents that exist once (the duplicate policy), versioned.
CREATE TABLE workspace_settings (
    name TEXT PRIMARY KEY,
    document TEXT NOT NULL,
    version BIGINT NOT NULL,
    updated_by TEXT,
    updated_at BIGINT NOT NULL
);

-- A merged lead stays readable, closed, pointing at the lead it was merged into.
ALTER TABLE leads ADD COLUMN merged_into TEXT;
-- What an arrival attached to an existing lead brought (source and fields), as JSON.
ALTER TABLE activities ADD COLUMN detail TEXT;
