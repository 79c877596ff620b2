-- Every mutable document carries a version: a write names the version it read and changes
-- nothing when another write came first (optimistic concurrency, `If-Match`).
ALTER TABLE reps ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE teams ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE calendars ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE sla_policies ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE pools ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE channels ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE intake_sources ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE users ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
