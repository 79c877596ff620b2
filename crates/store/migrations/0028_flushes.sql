-- PostgreSQL: a routing transaction commits without waiting for the disk, and its answers
-- wait for a later commit that does (`store::Unsynced::durable`). That commit writes this
-- table's one row: the log is flushed in order, so every commit before it is on disk too.
-- Unused on SQLite, whose answers wait for its own log to be flushed.
CREATE TABLE flushes (
    id INTEGER PRIMARY KEY,
    flushes BIGINT NOT NULL
);
