-- Known customers: the owner of the latest owned lead for each phone and email, kept as leads
-- are assigned, so owner affinity reads one row per contact however many leads share it.
CREATE TABLE contacts (
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (kind, value)
);
INSERT INTO contacts (kind, value, owner_id, updated_at)
    SELECT 'phone', phone, owner_id, MAX(created_at) FROM leads
    WHERE phone IS NOT NULL AND owner_id IS NOT NULL GROUP BY phone, owner_id
    ON CONFLICT (kind, value) DO NOTHING;
INSERT INTO contacts (kind, value, owner_id, updated_at)
    SELECT 'email', email, owner_id, MAX(created_at) FROM leads
    WHERE email IS NOT NULL AND owner_id IS NOT NULL GROUP BY email, owner_id
    ON CONFLICT (kind, value) DO NOTHING;
