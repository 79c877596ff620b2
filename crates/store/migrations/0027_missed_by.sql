-- Under whom each lead's first-response clock ran out: the reps its SLA clock reminded or
-- escalated about it while they owned it, as a JSON array like `previous_owners`. The
-- dashboard's missed count per rep reads it from the few leads that have one, where it
-- joined every reminder and escalation in the outbox to the window's leads (a hash join over
-- a month of leads on PostgreSQL).
ALTER TABLE leads ADD COLUMN missed_by TEXT NOT NULL DEFAULT '[]';
-- The leads missed so far, from the events the clock wrote: each rep once per lead (the
-- first event of each pair). Rep ids are letters, digits, - _ and . (`api::check_id`), which
-- need no escaping in JSON.
UPDATE leads SET missed_by = (
    SELECT '[' || string_agg('"' || o.rep_id || '"', ',') || ']'
    FROM outbox o
    WHERE o.lead_id = leads.id AND o.rep_id IS NOT NULL
        AND o.event IN ('lead.sla_reminder', 'lead.sla_escalated')
        AND NOT EXISTS (
            SELECT 1 FROM outbox p
            WHERE p.lead_id = o.lead_id AND p.rep_id = o.rep_id AND p.id < o.id
                AND p.event IN ('lead.sla_reminder', 'lead.sla_escalated')
        )
)
WHERE id IN (
    SELECT lead_id FROM outbox
    WHERE rep_id IS NOT NULL AND event IN ('lead.sla_reminder', 'lead.sla_escalated')
);
CREATE INDEX leads_missed ON leads (created_at) WHERE missed_by <> '[]';
-- Only that count read this.
DROP INDEX outbox_sla;
