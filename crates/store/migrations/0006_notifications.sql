-- Notifications: channels (settings documents, secrets included and never shown again), and
-- one delivery per event and channel, sent at least once with backoff, then dead-lettered.

CREATE TABLE channels (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    document TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Outbox rows not yet fanned out to channels.
CREATE INDEX outbox_pending ON outbox (id) WHERE status = 'pending';

CREATE TABLE deliveries (
    -- The delivery id receivers de-duplicate on.
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    event TEXT NOT NULL,
    -- pending, sent or dead.
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    -- A sender holds the delivery until then; a crashed sender's lease runs out.
    locked_until BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    sent_at BIGINT
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_event ON deliveries (event_id);
CREATE INDEX deliveries_channel ON deliveries (channel_id, created_at);

-- Sends per channel in the current fixed window, for each platform's published rate limits.
CREATE TABLE rate_windows (
    channel_id TEXT NOT NULL,
    window_secs BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    sent BIGINT NOT NULL,
    PRIMARY KEY (channel_id, window_secs)
);

-- Intake sources: form tools and ad platforms posting leads (settings documents), and a log
-- of what each delivery became — accepted, duplicate or rejected with the reason. The payload
-- itself is not kept.
CREATE TABLE intake_sources (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    document TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE intake_log (
    id TEXT PRIMARY KEY,
    source_id TEXT NOT NULL,
    delivery_id TEXT,
    -- accepted, duplicate or rejected.
    outcome TEXT NOT NULL,
    reason TEXT,
    lead_id TEXT,
    received_at BIGINT NOT NULL
);
CREATE INDEX intake_log_source ON intake_log (source_id, received_at);
