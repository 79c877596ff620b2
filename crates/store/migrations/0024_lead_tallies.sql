-- The dashboard's counts over a window's leads, kept as the leads are written instead of
-- counted from a million rows at every look. Each lead adds to four families of counts per
-- hour it came in (by UTC hour of `created_at`, per team, `''` for none):
--
-- - `s`, by status: the leads, held, pooled, clocked, missed, reclaimed and answered;
-- - `o`, by owner: the leads they own now, won, and the amount won;
-- - `c`, by source, and `r`, by rule: the closed leads (won or lost), and won.
--
-- Triggers on `leads` (created with the backend's own syntax by `Store::migrate`, with the
-- counts of the leads already there) append every change as signed rows to
-- `lead_tally_deltas`; a background fold moves them into `lead_tallies`. Readers sum both, so
-- a count is exact whether or not the fold has run.
CREATE TABLE lead_tallies (
    kind TEXT NOT NULL,
    hour BIGINT NOT NULL,
    team_id TEXT NOT NULL,
    key TEXT NOT NULL,
    leads BIGINT NOT NULL,
    held BIGINT NOT NULL,
    pooled BIGINT NOT NULL,
    clocked BIGINT NOT NULL,
    missed BIGINT NOT NULL,
    reclaims BIGINT NOT NULL,
    responded BIGINT NOT NULL,
    won BIGINT NOT NULL,
    amount DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (kind, team_id, hour, key)
);
CREATE TABLE lead_tally_deltas (
    kind TEXT NOT NULL,
    hour BIGINT NOT NULL,
    team_id TEXT NOT NULL,
    key TEXT NOT NULL,
    leads BIGINT NOT NULL,
    held BIGINT NOT NULL,
    pooled BIGINT NOT NULL,
    clocked BIGINT NOT NULL,
    missed BIGINT NOT NULL,
    reclaims BIGINT NOT NULL,
    responded BIGINT NOT NULL,
    won BIGINT NOT NULL,
    amount DOUBLE PRECISION NOT NULL
);
