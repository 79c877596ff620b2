// The dashboard's figures, aggregated by the database rather than by reading every lead: a
// busy workspace's month is millions of rows (included per backend, as `config.rs`).

/// The statuses of a lead someone still works on.
const OPEN_STATUSES: &str = "('new', 'assigned', 'contacted', 'qualified')";

/// An open, owned lead is overdue when its promised callback has passed, or when its SLA clock
/// reminded or escalated since it was assigned and nobody has answered yet.
fn push_overdue(query: &mut QueryBuilder<Db>, now: i64) {
    query.push(format!(
        " (l.owner_id IS NOT NULL AND l.status IN {OPEN_STATUSES} AND (l.callback_at < "
    ));
    query.push_bind(now);
    query.push(" OR (l.first_response_at IS NULL AND l.sla_missed_at >= l.assigned_at)))");
}

/// An open, owned lead nobody has touched (nor been assigned) since `before`.
fn push_idle(query: &mut QueryBuilder<Db>, before: i64) {
    query.push(format!(
        " (l.owner_id IS NOT NULL AND l.status IN {OPEN_STATUSES}
             AND COALESCE(l.last_activity_at, l.assigned_at, l.created_at) < "
    ));
    query.push_bind(before);
    query.push(")");
}

/// A lead whose first response came late under some owner: a rung fired, or it was reclaimed.
const SLA_MISSED: &str = "(l.sla_missed_at IS NOT NULL OR l.hops > 0)";

fn push_sla_missed(query: &mut QueryBuilder<Db>) {
    query.push(format!(" {SLA_MISSED}"));
}

/// `SELECT …` over the leads created in the window, of its team: `head` ends where the window's
/// conditions go (after `WHERE` or `AND`), `tail` follows them.
fn window_query(head: &str, window: &DashboardWindow, tail: &str) -> QueryBuilder<Db> {
    column_window(head, "l.created_at", window, tail)
}

/// The same over another time column (`l.closed_at`: the deals closed in the window).
fn column_window(
    head: &str,
    column: &str,
    window: &DashboardWindow,
    tail: &str,
) -> QueryBuilder<Db> {
    let mut query: QueryBuilder<Db> = QueryBuilder::new(head);
    push_window(&mut query, column, window);
    query.push(" ");
    query.push(tail);
    query
}

/// The window's conditions on `column`, its team and its rep.
fn push_window(query: &mut QueryBuilder<Db>, column: &str, window: &DashboardWindow) {
    query.push(format!(" {column} >= ")).push_bind(window.from);
    query.push(format!(" AND {column} < ")).push_bind(window.to);
    if let Some(team) = &window.team {
        query.push(" AND l.team_id = ").push_bind(team.clone());
    }
    if let Some(owner) = &window.owner {
        query.push(" AND l.owner_id = ").push_bind(owner.clone());
    }
}

/// The day a lead came in, in the viewer's zone, as days since the epoch.
fn day_expression(window: &DashboardWindow) -> String {
    format!(
        "CAST((l.created_at + {}) / 86400000000 AS BIGINT)",
        window.day_offset
    )
}

/// The window's leads counted by status, day, owner, source and rule, as the dashboard's
/// figures need them, kept zero-free: a tally a lead left reads zero, a pass over the leads
/// never shows it.
#[derive(Default)]
struct Counts {
    figures: Dashboard,
    days: std::collections::BTreeMap<i64, i64>,
    /// Leads and answered leads, by status.
    funnel: std::collections::BTreeMap<String, (i64, i64)>,
    owners: std::collections::BTreeMap<String, OwnerFigures>,
    /// Won and closed, by source and by rule.
    sources: std::collections::BTreeMap<String, (i64, i64)>,
    rules: std::collections::BTreeMap<String, (i64, i64)>,
    /// The deals won in the window (by when they closed), by owner.
    leaders: std::collections::BTreeMap<String, OwnerFigures>,
}

impl Counts {
    /// One group of a pass over the leads: the rows it adds to each family, as the tallies
    /// hold them.
    fn add_group(&mut self, group: &WindowGroup) {
        let won = if group.status == "won" {
            group.leads
        } else {
            0
        };
        let row = |kind: &str, key: &str| TallyRow {
            kind: kind.to_owned(),
            day: group.day,
            key: key.to_owned(),
            leads: group.leads,
            held: 0,
            pooled: 0,
            clocked: 0,
            missed: 0,
            reclaims: 0,
            responded: 0,
            won,
            amount: 0.0,
        };
        self.add_tally(&TallyRow {
            held: group.held,
            pooled: group.pooled,
            clocked: group.clocked,
            missed: group.missed,
            reclaims: group.reclaims,
            responded: group.responded,
            won: 0,
            ..row("s", &group.status)
        });
        if let Some(owner) = &group.owner_id {
            self.add_tally(&TallyRow {
                amount: group.amount,
                ..row("o", owner)
            });
        }
        if group.status == "won" || group.status == "lost" {
            for (kind, key) in [("c", &group.source), ("r", &group.rule_id)] {
                if let Some(key) = key {
                    self.add_tally(&row(kind, key));
                }
            }
        }
    }

    /// One family's tally (`TallyRow`).
    fn add_tally(&mut self, row: &TallyRow) {
        match row.kind.as_str() {
            "s" => {
                let figures = &mut self.figures;
                figures.leads_in += row.leads;
                figures.held += row.held;
                figures.pooled += row.pooled;
                figures.clocked += row.clocked;
                figures.missed += row.missed;
                figures.reclaims += row.reclaims;
                *self.days.entry(row.day).or_default() += row.leads;
                let stage = self.funnel.entry(row.key.clone()).or_default();
                stage.0 += row.leads;
                stage.1 += row.responded;
            }
            "o" | "w" => {
                let owners = if row.kind == "o" {
                    self.figures.assigned += row.leads;
                    &mut self.owners
                } else {
                    &mut self.leaders
                };
                let owner = owners
                    .entry(row.key.clone())
                    .or_insert_with(|| OwnerFigures {
                        owner_id: row.key.clone(),
                        assigned: 0,
                        won: 0,
                        amount: 0.0,
                    });
                owner.assigned += row.leads;
                owner.won += row.won;
                owner.amount += row.amount;
            }
            "c" | "r" => {
                let by = if row.kind == "c" {
                    &mut self.sources
                } else {
                    &mut self.rules
                };
                let entry = by.entry(row.key.clone()).or_default();
                entry.0 += row.won;
                entry.1 += row.leads;
            }
            _ => {}
        }
    }

    fn finish(self) -> Dashboard {
        let conversion = |by: std::collections::BTreeMap<String, (i64, i64)>| {
            by.into_iter()
                .filter(|(_, (_, closed))| *closed != 0)
                .map(|(name, (won, closed))| Conversion { name, won, closed })
                .collect()
        };
        Dashboard {
            days: self
                .days
                .into_iter()
                .filter(|(_, count)| *count != 0)
                .map(|(day, count)| DayCount { day, count })
                .collect(),
            funnel: self
                .funnel
                .into_iter()
                .filter(|(_, (leads, _))| *leads != 0)
                .map(|(status, (leads, responded))| StatusCount {
                    status,
                    leads,
                    responded,
                })
                .collect(),
            by_owner: self
                .owners
                .into_values()
                .filter(|owner| owner.assigned != 0)
                .collect(),
            leaderboard: self
                .leaders
                .into_values()
                .filter(|owner| owner.won != 0)
                .collect(),
            by_source: conversion(self.sources),
            by_rule: conversion(self.rules),
            ..self.figures
        }
    }
}

/// The window's leads grouped by owner, status, day, source and rule, read from the leads.
async fn window_groups(
    conn: &mut Conn,
    window: &DashboardWindow,
) -> sqlx::Result<Vec<WindowGroup>> {
    window_query(
        &format!(
            "SELECT l.owner_id AS owner_id, l.status AS status, {} AS day, l.source AS source,
                 l.rule_id AS rule_id, COUNT(*) AS leads,
                 COALESCE(SUM(CASE WHEN l.held THEN 1 ELSE 0 END), 0) AS held,
                 COALESCE(SUM(CASE WHEN l.owner_id IS NULL AND l.pool_id IS NOT NULL THEN 1 ELSE 0 END), 0) AS pooled,
                 COALESCE(SUM(CASE WHEN l.assigned_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS clocked,
                 COALESCE(SUM(CASE WHEN l.assigned_at IS NOT NULL AND {SLA_MISSED} THEN 1 ELSE 0 END), 0)
                     AS missed,
                 CAST(COALESCE(SUM(l.hops), 0) AS BIGINT) AS reclaims,
                 COALESCE(SUM(CASE WHEN l.first_response_at IS NOT NULL OR l.last_activity_at IS NOT NULL
                     THEN 1 ELSE 0 END), 0) AS responded,
                 CAST(COALESCE(SUM(CASE WHEN l.status = 'won' THEN COALESCE(l.amount, 0) ELSE 0 END), 0)
                     AS DOUBLE PRECISION) AS amount
             FROM leads l WHERE",
            day_expression(window),
        ),
        window,
        "GROUP BY l.owner_id, l.status, 3, l.source, l.rule_id",
    )
    .build_query_as()
    .fetch_all(conn)
    .await
}

/// Whether the tallies of the hour `end`, in which the window ends, count just the window's
/// part of it: when no lead came in or closed in the rest of that hour. A window ends now,
/// so the hour now is read from its tallies rather than from its leads (a burst of arrivals
/// can be tens of thousands), unless some lead is dated after the window. A lead written
/// between this look and the tallies' is counted as if it came in at the window's end.
async fn hour_is_done(conn: &mut Conn, window: &DashboardWindow, end: i64) -> sqlx::Result<bool> {
    let next = (end + 1) * crate::tallies::HOUR;
    if window.to == end * crate::tallies::HOUR {
        return Ok(false);
    }
    let mut query: QueryBuilder<Db> =
        QueryBuilder::new("SELECT EXISTS (SELECT 1 FROM leads WHERE created_at >= ");
    query
        .push_bind(window.to)
        .push(" AND created_at < ")
        .push_bind(next);
    query.push(") OR EXISTS (SELECT 1 FROM leads WHERE closed_at >= ");
    query
        .push_bind(window.to)
        .push(" AND closed_at < ")
        .push_bind(next);
    query.push(")");
    let later: bool = query.build_query_scalar().fetch_one(conn).await?;
    Ok(!later)
}

/// The deals won in the window (closed in it, whenever their leads came in), by owner, as the
/// tallies of the leaderboard's family (`w`) hold them, read from the leads.
async fn won_rows(conn: &mut Conn, window: &DashboardWindow) -> sqlx::Result<Vec<TallyRow>> {
    column_window(
        "SELECT 'w' AS kind, CAST(0 AS BIGINT) AS day, l.owner_id AS key, COUNT(*) AS leads,
             CAST(0 AS BIGINT) AS held, CAST(0 AS BIGINT) AS pooled, CAST(0 AS BIGINT) AS clocked,
             CAST(0 AS BIGINT) AS missed, CAST(0 AS BIGINT) AS reclaims,
             CAST(0 AS BIGINT) AS responded, COUNT(*) AS won,
             CAST(COALESCE(SUM(COALESCE(l.amount, 0)), 0) AS DOUBLE PRECISION) AS amount
         FROM leads l WHERE l.status = 'won' AND l.owner_id IS NOT NULL AND",
        "l.closed_at",
        window,
        "GROUP BY l.owner_id",
    )
    .build_query_as()
    .fetch_all(conn)
    .await
}

/// The tallies of the window's hours `[first, end)`, folded and not yet folded, summed per
/// family: the status family per day of the viewer's zone, the others over the whole window,
/// from the tallies of its whole UTC days and of its hours outside them.
async fn tally_rows(
    conn: &mut Conn,
    window: &DashboardWindow,
    (first, end): (i64, i64),
) -> sqlx::Result<Vec<TallyRow>> {
    use crate::tallies::DAY_HOURS;
    let mut query: QueryBuilder<Db> = QueryBuilder::new(format!(
        "SELECT t.kind AS kind,
             CASE WHEN t.kind = 's'
                 THEN CAST((t.hour * {hour} + {offset}) / 86400000000 AS BIGINT) ELSE 0 END AS day,
             t.key AS key, CAST(SUM(t.leads) AS BIGINT) AS leads,
             CAST(SUM(t.held) AS BIGINT) AS held, CAST(SUM(t.pooled) AS BIGINT) AS pooled,
             CAST(SUM(t.clocked) AS BIGINT) AS clocked, CAST(SUM(t.missed) AS BIGINT) AS missed,
             CAST(SUM(t.reclaims) AS BIGINT) AS reclaims,
             CAST(SUM(t.responded) AS BIGINT) AS responded, CAST(SUM(t.won) AS BIGINT) AS won,
             CAST(SUM(t.amount) AS DOUBLE PRECISION) AS amount
         FROM (",
        hour = crate::tallies::HOUR,
        offset = window.day_offset,
    ));
    // The whole UTC days `[days.0, days.1)`, in hours, if any.
    let days = (
        (first + DAY_HOURS - 1).div_euclid(DAY_HOURS) * DAY_HOURS,
        end.div_euclid(DAY_HOURS) * DAY_HOURS,
    );
    let mut parts = vec![("lead_tally_deltas", "'s', 'o', 'c', 'r', 'w'", first, end)];
    if first >= 0 && days.0 < days.1 {
        parts.extend([
            ("lead_tallies", "'s'", first, end),
            ("lead_tallies", "'o', 'c', 'r', 'w'", first, days.0),
            ("lead_tallies", "'O', 'C', 'R', 'W'", days.0, days.1),
            ("lead_tallies", "'o', 'c', 'r', 'w'", days.1, end),
        ]);
    } else {
        parts.push(("lead_tallies", "'s', 'o', 'c', 'r', 'w'", first, end));
    }
    let parts = parts.into_iter().filter(|(_, _, from, to)| from < to);
    for (index, (table, kinds, from, to)) in parts.enumerate() {
        if index > 0 {
            query.push(" UNION ALL ");
        }
        query.push(format!(
            "SELECT LOWER(kind) AS kind, hour, key, leads, held, pooled, clocked, missed,
                 reclaims, responded, won, amount
             FROM {table} WHERE kind IN ({kinds}) AND hour >= "
        ));
        query.push_bind(from).push(" AND hour < ").push_bind(to);
        if let Some(team) = &window.team {
            query.push(" AND team_id = ").push_bind(team.clone());
        }
    }
    query.push(") t GROUP BY t.kind, 2, t.key");
    query.build_query_as().fetch_all(conn).await
}

pub(crate) async fn dashboard(
    conn: &mut Conn,
    window: &DashboardWindow,
) -> sqlx::Result<Dashboard> {
    dashboard_with(conn, window, window.tallied_hours()).await
}

/// The same read from the leads alone, never the tallies: what the tallies are checked against.
pub(crate) async fn dashboard_from_leads(
    conn: &mut Conn,
    window: &DashboardWindow,
) -> sqlx::Result<Dashboard> {
    dashboard_with(conn, window, None).await
}

async fn dashboard_with(
    conn: &mut Conn,
    window: &DashboardWindow,
    tallied: Option<(i64, i64)>,
) -> sqlx::Result<Dashboard> {
    // The totals, the days, the funnel, each owner's share and wins, and conversion by source
    // and by rule: from the tallies of the window's whole hours, and a pass over the leads of
    // the part of an hour at either end (the hour now); or one pass over all of its leads.
    let mut counts = Counts::default();
    match tallied {
        Some((first, end)) => {
            let end = end + i64::from(hour_is_done(&mut *conn, window, end).await?);
            let edges = [
                (window.from, first * crate::tallies::HOUR),
                (end * crate::tallies::HOUR, window.to),
            ];
            for (from, to) in edges.into_iter().filter(|(from, to)| from < to) {
                let edge = DashboardWindow {
                    from,
                    to,
                    ..window.clone()
                };
                for group in window_groups(&mut *conn, &edge).await? {
                    counts.add_group(&group);
                }
                for row in won_rows(&mut *conn, &edge).await? {
                    counts.add_tally(&row);
                }
            }
            for row in tally_rows(&mut *conn, window, (first, end)).await? {
                counts.add_tally(&row);
            }
        }
        None => {
            for group in window_groups(&mut *conn, window).await? {
                counts.add_group(&group);
            }
            for row in won_rows(&mut *conn, window).await? {
                counts.add_tally(&row);
            }
        }
    }
    let mut figures = counts.finish();
    // The first responses, as three lists in one row — owners (by line; ids hold no line
    // breaks, `api::check_id`), days and seconds (by comma) — whose n-th items are one lead's:
    // one row through the driver instead of one per answered lead (a month's are hundreds of
    // thousands, and the SQLite driver hands each row from its thread to ours on its own), and
    // each list an aggregate of one plain column, which costs SQLite about half as much as
    // formatting a line per lead.
    let day = day_expression(window);
    let secs = "CAST((l.first_response_at - l.assigned_at) / 1000000 AS BIGINT)";
    let list = |expression: &str, separator: &str| {
        if IS_POSTGRES {
            format!("string_agg(CAST({expression} AS TEXT), {separator})")
        } else {
            format!("group_concat({expression}, {separator})")
        }
    };
    let line = if IS_POSTGRES { "E'\\n'" } else { "char(10)" };
    let lists: (Option<String>, Option<String>, Option<String>) = window_query(
        &format!(
            "SELECT {}, {}, {} FROM leads l
             WHERE l.first_response_at IS NOT NULL AND l.assigned_at IS NOT NULL
                 AND l.first_response_at >= l.assigned_at AND",
            list("COALESCE(l.owner_id, '')", line),
            list(&day, "','"),
            list(secs, "','"),
        ),
        window,
        "",
    )
    .build_query_as()
    .fetch_one(&mut *conn)
    .await?;
    let mut responses = responses(lists)
        .ok_or_else(|| sqlx::Error::Protocol("first responses the dashboard cannot read".into()))?;
    responses.sort_unstable_by_key(|response| response.secs);
    figures.responses = responses;
    // Each rep's share of the clock: the window's leads they were given (by routing, a claim,
    // a reclaim or by hand), and those whose clock ran out under them.
    // The leads each rep was given at some point: those they own now, and those that list them
    // among their earlier owners (a reclaim, a reassignment, a release) — read only for the
    // leads that changed hands.
    let changed: Vec<(Option<String>, String)> = window_query(
        "SELECT l.owner_id, l.previous_owners FROM leads l WHERE l.previous_owners <> '[]' AND",
        window,
        "",
    )
    .build_query_as()
    .fetch_all(&mut *conn)
    .await?;
    let mut given: std::collections::BTreeMap<String, i64> = figures
        .by_owner
        .iter()
        .map(|owner| (owner.owner_id.clone(), owner.assigned))
        .collect();
    for (owner, previous) in changed {
        let mut earlier: Vec<String> = serde_json::from_str(&previous).unwrap_or_default();
        earlier.sort();
        earlier.dedup();
        for rep in earlier {
            if owner.as_ref() != Some(&rep) {
                *given.entry(rep).or_default() += 1;
            }
        }
    }
    let handled = key_counts(given);
    // The leads whose clock ran out under each rep (`missed_by`), read only for the leads that
    // were missed at all (`leads_missed`).
    let missed: Vec<(String,)> = window_query(
        "SELECT l.missed_by FROM leads l WHERE l.missed_by <> '[]' AND",
        window,
        "",
    )
    .build_query_as()
    .fetch_all(&mut *conn)
    .await?;
    let mut missed_by: std::collections::BTreeMap<String, i64> = Default::default();
    for (reps,) in missed {
        for rep in serde_json::from_str::<Vec<String>>(&reps).unwrap_or_default() {
            *missed_by.entry(rep).or_default() += 1;
        }
    }
    let missed_by = key_counts(missed_by);
    // The follow-ups on the window's leads, found from the follow-ups logged since the window
    // began (one is logged on a lead that is there; `activities_window`), not by probing the
    // activities of every lead in the window, most of which have none yet.
    let mut activities: QueryBuilder<Db> = QueryBuilder::new(
        "SELECT a.rep_id AS key, COUNT(*) AS count
         FROM activities a CROSS JOIN leads l
         WHERE l.id = a.lead_id AND a.rep_id IS NOT NULL AND a.kind <> 'inquiry'
             AND a.created_at >= ",
    );
    activities.push_bind(window.from).push(" AND");
    push_window(&mut activities, "l.created_at", window);
    activities.push(" GROUP BY a.rep_id");
    let activities: Vec<KeyCount> = activities.build_query_as().fetch_all(&mut *conn).await?;
    // Feedback recorded in the window, for whichever lead it is about.
    let feedback: Vec<FeedbackFigures> = column_window(
        "SELECT COALESCE(f.rep_id, l.owner_id) AS rep_id, f.kind AS kind, COUNT(*) AS answers,
             CAST(COALESCE(SUM(f.score), 0) AS BIGINT) AS total,
             COALESCE(SUM(CASE WHEN f.score >= 9 THEN 1 ELSE 0 END), 0) AS promoters,
             COALESCE(SUM(CASE WHEN f.score <= 6 THEN 1 ELSE 0 END), 0) AS detractors
         FROM feedback f JOIN leads l ON l.id = f.lead_id WHERE",
        "f.created_at",
        window,
        "GROUP BY COALESCE(f.rep_id, l.owner_id), f.kind",
    )
    .build_query_as()
    .fetch_all(&mut *conn)
    .await?;
    figures.open = open_figures(conn, window, tallied.is_some()).await?;
    figures.handled = handled;
    figures.missed_by = missed_by;
    figures.activities = activities;
    figures.feedback = feedback;
    Ok(figures)
}

/// Counts per rep, in rep order.
fn key_counts(counts: std::collections::BTreeMap<String, i64>) -> Vec<KeyCount> {
    counts
        .into_iter()
        .map(|(key, count)| KeyCount { key, count })
        .collect()
}

/// The first responses from their three lists (owners, days, seconds), which must be as long
/// as each other; no answered lead in the window reads as three `NULL`s.
fn responses(
    (owners, days, secs): (Option<String>, Option<String>, Option<String>),
) -> Option<Vec<Response>> {
    let (Some(owners), Some(days), Some(secs)) = (owners, days, secs) else {
        return Some(Vec::new());
    };
    let mut owners = owners.split('\n');
    let mut days = days.split(',');
    let mut responses = Vec::new();
    for secs in secs.split(',') {
        let owner = owners.next()?;
        responses.push(Response {
            owner_id: (!owner.is_empty()).then(|| owner.to_owned()),
            day: days.next()?.parse().ok()?,
            secs: secs.parse().ok()?,
        });
    }
    (owners.next().is_none() && days.next().is_none()).then_some(responses)
}

/// Each rep's open leads now, whenever they came in: how many, overdue, untouched since
/// `idle_before`, and the days since each was last touched, summed (to the second; the days
/// are `now` less the last touch, both in whole seconds). From one pass over them, or
/// (`tallied`) from their tallies and the leads whose figures depend on the moment of
/// looking. Ordered by owner either way.
async fn open_figures(
    conn: &mut Conn,
    window: &DashboardWindow,
    tallied: bool,
) -> sqlx::Result<Vec<OpenFigures>> {
    let touched = crate::tallies::touched("l");
    let now_secs = window.now.div_euclid(1_000_000);
    let team = |query: &mut QueryBuilder<Db>, column: &str| {
        if let Some(team) = &window.team {
            query
                .push(format!(" AND {column} = "))
                .push_bind(team.clone());
        }
    };
    if !tallied {
        let mut query: QueryBuilder<Db> = QueryBuilder::new(
            "SELECT l.owner_id AS owner_id, COUNT(*) AS open, COALESCE(SUM(CASE WHEN",
        );
        push_overdue(&mut query, window.now);
        query.push(" THEN 1 ELSE 0 END), 0) AS overdue, COALESCE(SUM(CASE WHEN");
        push_idle(&mut query, window.idle_before);
        query.push(" THEN 1 ELSE 0 END), 0) AS untouched, CAST(COALESCE(SUM(");
        query.push_bind(now_secs);
        query.push(format!(
            " - {touched} / 1000000), 0) AS DOUBLE PRECISION) / 86400.0 AS idle_days
             FROM leads l WHERE l.owner_id IS NOT NULL AND l.status IN {OPEN_STATUSES}"
        ));
        team(&mut query, "l.team_id");
        if let Some(owner) = &window.owner {
            query.push(" AND l.owner_id = ").push_bind(owner.clone());
        }
        query.push(" GROUP BY l.owner_id");
        let mut open: Vec<OpenFigures> = query.build_query_as().fetch_all(conn).await?;
        open.sort_by(|a, b| a.owner_id.cmp(&b.owner_id));
        return Ok(open);
    }
    // How many each owner has open, how many of those ran out of SLA clock unanswered, and
    // the seconds of their last touches summed: the `n` tallies, folded and not.
    let mut query: QueryBuilder<Db> = QueryBuilder::new(
        "SELECT t.key, CAST(SUM(t.leads) AS BIGINT), CAST(SUM(t.missed) AS BIGINT),
             CAST(SUM(t.touched) AS BIGINT)
         FROM (",
    );
    for (index, table) in ["lead_tallies", "lead_tally_deltas"]
        .into_iter()
        .enumerate()
    {
        if index > 0 {
            query.push(" UNION ALL ");
        }
        query.push(format!(
            "SELECT key, leads, missed, touched FROM {table} WHERE kind = 'n'"
        ));
        team(&mut query, "team_id");
    }
    query.push(") t GROUP BY t.key");
    let tallies: Vec<(String, i64, i64, i64)> =
        query.build_query_as().fetch_all(&mut *conn).await?;
    // Touched since the idle cut-off: the rest are untouched. Read through `leads_touched`,
    // which holds the open leads only, and each backend is told so. SQLite, without
    // statistics, would rather walk `leads_owner` through every open lead; PostgreSQL,
    // misjudging how many leads the cut-off keeps, would scan every lead ever stored (200 ms
    // against 80 ms through the index, over the benchmark's month of 1,270,000).
    let from = if IS_POSTGRES {
        "leads l"
    } else {
        "leads l INDEXED BY leads_touched"
    };
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    if IS_POSTGRES {
        sqlx::query("SET LOCAL enable_seqscan = off")
            .execute(&mut *tx)
            .await?;
    }
    let touched_since = open_by_owner(
        &mut tx,
        window,
        from,
        "COUNT(*)",
        &format!("{touched} >="),
        window.idle_before,
    )
    .await?;
    tx.commit().await?;
    // A callback due makes a lead overdue too, unless its clock already had (`leads_callbacks`).
    let called_back = open_by_owner(
        &mut *conn,
        window,
        "leads l",
        "COALESCE(SUM(CASE
             WHEN l.first_response_at IS NULL AND l.sla_missed_at >= l.assigned_at THEN 0
             ELSE 1 END), 0)",
        "l.callback_at IS NOT NULL AND l.callback_at <",
        window.now,
    )
    .await?;
    let mut open: Vec<OpenFigures> = tallies
        .into_iter()
        .filter(|(_, open, _, _)| *open != 0)
        .map(|(owner_id, open, missed, touched)| OpenFigures {
            overdue: missed + called_back.get(&owner_id).copied().unwrap_or(0),
            untouched: open - touched_since.get(&owner_id).copied().unwrap_or(0),
            idle_days: (open * now_secs - touched) as f64 / 86400.0,
            owner_id,
            open,
        })
        .collect();
    open.sort_by(|a, b| a.owner_id.cmp(&b.owner_id));
    Ok(open)
}

/// `counted` per owner over the open leads (of the window's team) `from` reads for which
/// `condition`, a comparison missing its right side, holds against `bound`.
async fn open_by_owner(
    conn: &mut Conn,
    window: &DashboardWindow,
    from: &str,
    counted: &str,
    condition: &str,
    bound: i64,
) -> sqlx::Result<std::collections::HashMap<String, i64>> {
    let mut query: QueryBuilder<Db> = QueryBuilder::new(format!(
        "SELECT l.owner_id, {counted} FROM {from}
         WHERE l.owner_id IS NOT NULL AND l.status IN {OPEN_STATUSES} AND {condition} "
    ));
    query.push_bind(bound);
    if let Some(team) = &window.team {
        query.push(" AND l.team_id = ").push_bind(team.clone());
    }
    query.push(" GROUP BY l.owner_id");
    let counts: Vec<(String, i64)> = query.build_query_as().fetch_all(conn).await?;
    Ok(counts.into_iter().collect())
}

/// A period's headline figures in one pass: leads in, first-response clocks run and missed,
/// deals won and closed, the mean first response.
pub(crate) async fn period_figures(
    conn: &mut Conn,
    window: &DashboardWindow,
) -> sqlx::Result<PeriodFigures> {
    let mut query: QueryBuilder<Db> = QueryBuilder::new(
        "SELECT COUNT(*) AS leads_in,
             COALESCE(SUM(CASE WHEN l.assigned_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS clocked,
             COALESCE(SUM(CASE WHEN l.assigned_at IS NOT NULL AND",
    );
    push_sla_missed(&mut query);
    query.push(
        " THEN 1 ELSE 0 END), 0) AS missed,
             COALESCE(SUM(CASE WHEN l.status = 'won' THEN 1 ELSE 0 END), 0) AS won,
             COALESCE(SUM(CASE WHEN l.status IN ('won', 'lost') THEN 1 ELSE 0 END), 0) AS closed,
             AVG(CASE WHEN l.first_response_at >= l.assigned_at
                 THEN CAST(l.first_response_at - l.assigned_at AS DOUBLE PRECISION) / 1000000.0 END)
                 AS avg_response
         FROM leads l WHERE l.created_at >= ",
    );
    query.push_bind(window.from);
    query.push(" AND l.created_at < ").push_bind(window.to);
    if let Some(team) = &window.team {
        query.push(" AND l.team_id = ").push_bind(team.clone());
    }
    query.build_query_as().fetch_one(conn).await
}
