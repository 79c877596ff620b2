-- The dashboard's leaderboard: deals closed in a window.
CREATE INDEX leads_closed ON leads (closed_at) WHERE closed_at IS NOT NULL;
