-- Simulations (规则回放): a replay of history through two policies runs as a job; its request,
-- progress and report are kept here so any instance can answer for it, and a cancel reaches
-- the instance running it.
CREATE TABLE simulations (
    id TEXT PRIMARY KEY,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    -- queued, running, done, failed or cancelled
    status TEXT NOT NULL,
    done BIGINT NOT NULL DEFAULT 0,
    total BIGINT NOT NULL DEFAULT 0,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    request TEXT NOT NULL,
    -- JSON, once done
    report TEXT,
    error TEXT
);
CREATE INDEX simulations_created ON simulations (created_at);
-- Replay reads leads in arrival order.
CREATE INDEX leads_arrival ON leads (created_at, id);
