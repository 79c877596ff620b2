-- Each rep's open leads now, kept with the dashboard's tallies (0024) instead of read from
-- every open lead at every look: the `n` family counts them per team and owner, with those
-- whose SLA clock ran out unanswered and the seconds of their last touch summed (`touched`,
-- for the days since). What depends on the moment of looking is read from the few leads it
-- is about: those touched since the idle cut-off, and those with a callback due.
ALTER TABLE lead_tallies ADD COLUMN touched BIGINT NOT NULL DEFAULT 0;
ALTER TABLE lead_tally_deltas ADD COLUMN touched BIGINT NOT NULL DEFAULT 0;
-- The open leads by when they were last touched (or assigned, or came in), and those with a
-- callback: each condition is the query's, word for word. They replace `leads_open` (0022),
-- which held every column of every open lead for the pass these tallies replace.
DROP INDEX leads_open;
CREATE INDEX leads_touched ON leads ((COALESCE(last_activity_at, assigned_at, created_at)), owner_id, team_id)
    WHERE owner_id IS NOT NULL AND status IN ('new', 'assigned', 'contacted', 'qualified');
CREATE INDEX leads_callbacks ON leads (callback_at, owner_id, team_id, first_response_at, sla_missed_at, assigned_at)
    WHERE callback_at IS NOT NULL AND owner_id IS NOT NULL
        AND status IN ('new', 'assigned', 'contacted', 'qualified');
