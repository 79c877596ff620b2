-- Follow-up: activities, SLA clocks as timer rows, the pool's claims, outcomes and the outbox.

-- Where each lead's current ownership stands, and how it ended.
ALTER TABLE leads ADD COLUMN assigned_at BIGINT;
ALTER TABLE leads ADD COLUMN first_response_at BIGINT;
ALTER TABLE leads ADD COLUMN last_activity_at BIGINT;
ALTER TABLE leads ADD COLUMN callback_at BIGINT;
ALTER TABLE leads ADD COLUMN claimed_at BIGINT;
ALTER TABLE leads ADD COLUMN protected_until BIGINT;
-- Reclaims so far, and every earlier owner (JSON array): a reclaim never goes back to one.
ALTER TABLE leads ADD COLUMN hops BIGINT NOT NULL DEFAULT 0;
ALTER TABLE leads ADD COLUMN previous_owners TEXT NOT NULL DEFAULT '[]';
ALTER TABLE leads ADD COLUMN rule_id TEXT;
ALTER TABLE leads ADD COLUMN sla_policy TEXT;
-- The pool the lead last waited in: where a release or recycle sends it back.
ALTER TABLE leads ADD COLUMN last_pool TEXT;
ALTER TABLE leads ADD COLUMN closed_at BIGINT;
ALTER TABLE leads ADD COLUMN amount DOUBLE PRECISION;
ALTER TABLE leads ADD COLUMN lost_reason TEXT;
UPDATE leads SET assigned_at = updated_at WHERE owner_id IS NOT NULL;
CREATE INDEX leads_pool ON leads (pool_id, created_at) WHERE pool_id IS NOT NULL;

CREATE TABLE activities (
    id TEXT PRIMARY KEY,
    lead_id TEXT NOT NULL REFERENCES leads (id),
    rep_id TEXT,
    actor TEXT NOT NULL,
    kind TEXT NOT NULL,
    outcome TEXT,
    note TEXT,
    next_follow_up_at BIGINT,
    -- Set on the owner's first activity after an assignment: seconds since the assignment.
    response_secs BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX activities_lead ON activities (lead_id, created_at);

CREATE TABLE feedback (
    id TEXT PRIMARY KEY,
    lead_id TEXT NOT NULL REFERENCES leads (id),
    rep_id TEXT,
    kind TEXT NOT NULL,
    score BIGINT NOT NULL,
    comment TEXT,
    actor TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX feedback_lead ON feedback (lead_id);

-- Outcomes, response times and feedback per rep, source, rule and segment.
CREATE TABLE outcome_stats (
    dimension TEXT NOT NULL,
    key TEXT NOT NULL,
    assigned BIGINT NOT NULL DEFAULT 0,
    responded BIGINT NOT NULL DEFAULT 0,
    -- Sum of first-response seconds, each capped at one day.
    response_secs BIGINT NOT NULL DEFAULT 0,
    won BIGINT NOT NULL DEFAULT 0,
    lost BIGINT NOT NULL DEFAULT 0,
    invalid BIGINT NOT NULL DEFAULT 0,
    amount DOUBLE PRECISION NOT NULL DEFAULT 0,
    feedback_count BIGINT NOT NULL DEFAULT 0,
    -- Sum of feedback mapped to 0..1.
    feedback_sum DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (dimension, key)
);

CREATE TABLE calendars (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    document TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
INSERT INTO calendars (id, name, document, created_at, updated_at) VALUES ('default', 'Office hours',
    '{"id":"default","name":"Office hours","time_zone":"Asia/Shanghai","hours":{"mon":["09:00-18:00"],"tue":["09:00-18:00"],"wed":["09:00-18:00"],"thu":["09:00-18:00"],"fri":["09:00-18:00"]}}',
    0, 0);

CREATE TABLE sla_policies (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    document TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
INSERT INTO sla_policies (id, name, document, created_at, updated_at) VALUES ('default', 'Standard',
    '{"id":"default","name":"Standard","steps":[{"after":"1h","action":"remind"},{"after":"24h","action":"escalate"},{"after":"48h","action":"reclaim"}],"hop_limit":3}',
    0, 0);

ALTER TABLE pools ADD COLUMN document TEXT NOT NULL DEFAULT '{}';
ALTER TABLE pools ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
UPDATE pools SET document = '{"id":"public","name":"公海"}' WHERE id = 'public';

-- Due work, one row per clock. Written with the change that causes it; `tick` fires due rows in
-- due order and deletes them in the same transaction.
CREATE TABLE timers (
    id TEXT PRIMARY KEY,
    lead_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    step BIGINT NOT NULL,
    -- The owner the timer was set for: a timer outliving its owner does nothing.
    owner_id TEXT,
    due_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX timers_due ON timers (due_at);
CREATE INDEX timers_lead ON timers (lead_id);

-- A rep who had a lead cannot claim it back before `blocked_until`.
CREATE TABLE claim_blocks (
    lead_id TEXT NOT NULL,
    rep_id TEXT NOT NULL,
    blocked_until BIGINT NOT NULL,
    PRIMARY KEY (lead_id, rep_id)
);

-- Claims per rep, for the daily limit.
CREATE INDEX decisions_claims ON decisions (owner_id, created_at) WHERE kind = 'claim';

-- Events for notifications, written in the same transaction as the change; delivered by the
-- notifications capability.
CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    event TEXT NOT NULL,
    lead_id TEXT,
    rep_id TEXT,
    -- Who should hear: JSON array of rep ids (owner, manager).
    recipients TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending'
);
CREATE INDEX outbox_created ON outbox (created_at);
CREATE INDEX outbox_lead ON outbox (lead_id);
