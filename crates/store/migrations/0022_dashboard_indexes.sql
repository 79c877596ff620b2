-- The dashboard's figures that do not need every lead of the window, read from indexes that
-- hold only the leads they are about (each was a pass over the window's leads, a million rows
-- in a busy month).
--
-- Each rep's open leads now: how many, overdue, untouched. The index holds every column those
-- figures read, so they come from it alone; its condition is the query's, word for word.
CREATE INDEX leads_open ON leads (
    owner_id, team_id, status, last_activity_at, assigned_at, created_at, callback_at,
    first_response_at, sla_missed_at
) WHERE owner_id IS NOT NULL AND status IN ('new', 'assigned', 'contacted', 'qualified');
-- The leads that changed hands (a reclaim, a reassignment, a release): most never do.
CREATE INDEX leads_changed ON leads (created_at) WHERE previous_owners <> '[]';
-- The SLA clock's reminders and escalations, by when they fired: the leads whose clock ran
-- out under each rep are found from these, not by probing the outbox for every lead.
CREATE INDEX outbox_sla ON outbox (created_at, lead_id, rep_id)
    WHERE event IN ('lead.sla_reminder', 'lead.sla_escalated');
