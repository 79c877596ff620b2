-- When the SLA clock last reminded or escalated about a lead (the tick writes it with the
-- event), so the dashboard counts missed and overdue leads in its pass over the leads instead
-- of probing the outbox once per lead. Filled in from the outbox for the leads already there.
ALTER TABLE leads ADD COLUMN sla_missed_at BIGINT;
UPDATE leads SET sla_missed_at = (
    SELECT MAX(o.created_at) FROM outbox o
    WHERE o.lead_id = leads.id AND o.event IN ('lead.sla_reminder', 'lead.sla_escalated'))
WHERE id IN (
    SELECT lead_id FROM outbox
    WHERE lead_id IS NOT NULL AND event IN ('lead.sla_reminder', 'lead.sla_escalated'));
