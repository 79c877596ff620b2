-- What the dashboard reads beside its tallies (0024), from indexes that hold just that.
--
-- The first responses of a window's leads: one entry per answered lead, holding every column
-- read of it (a month's were a table lookup each, hundreds of thousands). Its condition is
-- the query's, word for word.
CREATE INDEX leads_responses ON leads (created_at, team_id, owner_id, assigned_at, first_response_at)
    WHERE first_response_at IS NOT NULL;
-- The follow-ups logged since a window began, which are those on its leads: found from these
-- rather than by probing every lead of the window for its activities.
CREATE INDEX activities_window ON activities (created_at, lead_id, rep_id, kind)
    WHERE rep_id IS NOT NULL AND kind <> 'inquiry';
-- The feedback recorded in a window (it was a scan of all feedback ever).
CREATE INDEX feedback_created ON feedback (created_at);
