-- The team digests sent: one row per channel and scheduled time, written with the digest's
-- outbox events, so two instances (or a restart) never send the same digest twice.
CREATE TABLE digest_runs (
    channel_id TEXT NOT NULL,
    slot BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (channel_id, slot)
);
