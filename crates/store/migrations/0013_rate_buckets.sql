-- Request-rate buckets shared by every instance on PostgreSQL (an integration key's, a
-- public intake source's): tokens left and when they were last counted. One SQLite file has
-- one instance, which keeps its buckets in memory.
CREATE TABLE rate_buckets (
    key TEXT PRIMARY KEY,
    tokens DOUBLE PRECISION NOT NULL,
    at BIGINT NOT NULL,
    -- Whether the last request drawn from the bucket got a token.
    granted BOOLEAN NOT NULL
);
