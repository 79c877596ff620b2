-- A lead stores only its next timer; the ones after it are recomputed from the lead's plan
-- when it fires (each rung was a row before: three writes per routed lead on the default
-- ladder). Keep each lead's earliest timer, and make "one per lead" the index's promise.
DELETE FROM timers WHERE id IN (
    SELECT id FROM (
        SELECT id, ROW_NUMBER() OVER (PARTITION BY lead_id ORDER BY due_at, id) AS place
        FROM timers
    ) ranked
    WHERE place > 1
);
DROP INDEX timers_lead;
CREATE UNIQUE INDEX timers_lead ON timers (lead_id);
