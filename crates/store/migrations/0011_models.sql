-- Learned conversion models (线索评分模型): each training is a version, a draft until published.
CREATE TABLE models (
    version BIGINT PRIMARY KEY,
    -- training, draft, active, retired or failed
    status TEXT NOT NULL,
    -- workspace or file
    source TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    request TEXT NOT NULL,
    spec TEXT,
    evaluation TEXT,
    error TEXT,
    published_at BIGINT
);

-- The probability the active model gave a lead when it was routed.
ALTER TABLE leads ADD COLUMN win_probability DOUBLE PRECISION;
-- The lead as it arrived, kept once a change rewrites `document` (NULL: `document` is it), so
-- training and replay read what was known at intake.
ALTER TABLE leads ADD COLUMN intake TEXT;
