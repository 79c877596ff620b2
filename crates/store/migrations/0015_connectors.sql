-- What the receiving platform answered a delivery (a CRM's record id, or its error), for the
-- delivery log. Never the lead's fields.
ALTER TABLE deliveries ADD COLUMN answer TEXT;

-- Channels whose credentials the platform refused (a CRM answering 401): their deliveries wait,
-- neither sent nor dead-lettered, until an admin changes the channel.
CREATE TABLE channel_attention (
    channel_id TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    since BIGINT NOT NULL
);
