-- The hold queue: held leads are swept by priority, then age.
CREATE INDEX leads_held ON leads (created_at) WHERE held = TRUE;
