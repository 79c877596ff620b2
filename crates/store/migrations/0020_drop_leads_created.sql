-- `leads_arrival (created_at, id)` answers every lookup `leads_created (created_at)` did, as
-- its leading column; keeping both cost every new lead one more index insert.
DROP INDEX IF EXISTS leads_created;
