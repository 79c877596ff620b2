// The dashboard's figures, aggregated by the database rather than by reading every lead: a
// busy workspace's month is millions of rows (included per backend, as `config.rs`).

/// The statuses of a lead someone still works on.
const OPEN_STATUSES: &str = "('new', 'assigned', 'contacted', 'qualified')";

/// The events that say a lead's first-response clock ran out under its owner (per rep, from the
/// outbox: `sla_missed_at` says only when, not under whom).
const SLA_EVENTS: &str = "('lead.sla_reminder', 'lead.sla_escalated')";

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

pub(crate) async fn dashboard(
    conn: &mut Conn,
    window: &DashboardWindow,
) -> sqlx::Result<Dashboard> {
    // One pass over the window's leads, grouped by owner, status, day, source and rule: the
    // totals, the days, the funnel, each owner's share and wins, and conversion by source and
    // by rule all come out of it.
    let groups: Vec<WindowGroup> = window_query(
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
    .fetch_all(&mut *conn)
    .await?;
    let mut figures = Dashboard::default();
    let mut days: std::collections::BTreeMap<i64, i64> = std::collections::BTreeMap::new();
    let mut funnel: std::collections::BTreeMap<String, (i64, i64)> =
        std::collections::BTreeMap::new();
    let mut owners: std::collections::BTreeMap<String, OwnerFigures> =
        std::collections::BTreeMap::new();
    for group in &groups {
        figures.leads_in += group.leads;
        figures.held += group.held;
        figures.pooled += group.pooled;
        figures.clocked += group.clocked;
        figures.missed += group.missed;
        figures.reclaims += group.reclaims;
        *days.entry(group.day).or_default() += group.leads;
        let stage = funnel.entry(group.status.clone()).or_default();
        stage.0 += group.leads;
        stage.1 += group.responded;
        if let Some(owner) = &group.owner_id {
            figures.assigned += group.leads;
            let row = owners.entry(owner.clone()).or_insert_with(|| OwnerFigures {
                owner_id: owner.clone(),
                assigned: 0,
                won: 0,
                amount: 0.0,
            });
            row.assigned += group.leads;
            if group.status == "won" {
                row.won += group.leads;
                row.amount += group.amount;
            }
        }
    }
    figures.days = days
        .into_iter()
        .map(|(day, count)| DayCount { day, count })
        .collect();
    figures.funnel = funnel
        .into_iter()
        .map(|(status, (leads, responded))| StatusCount {
            status,
            leads,
            responded,
        })
        .collect();
    figures.by_owner = owners.into_values().collect();
    let mut responses: Vec<Response> = window_query(
        &format!(
            "SELECT l.owner_id AS owner_id, {} AS day,
                 CAST((l.first_response_at - l.assigned_at) / 1000000 AS BIGINT) AS secs
             FROM leads l
             WHERE l.first_response_at IS NOT NULL AND l.assigned_at IS NOT NULL
                 AND l.first_response_at >= l.assigned_at AND",
            day_expression(window)
        ),
        window,
        "",
    )
    .build_query_as()
    .fetch_all(&mut *conn)
    .await?;
    responses.sort_unstable_by_key(|response| response.secs);
    figures.responses = responses;
    // Conversion by source and by rule: the closed groups.
    let conversion = |key: fn(&WindowGroup) -> &Option<String>| {
        let mut by: std::collections::BTreeMap<String, (i64, i64)> =
            std::collections::BTreeMap::new();
        for group in groups
            .iter()
            .filter(|group| group.status == "won" || group.status == "lost")
        {
            if let Some(name) = key(group) {
                let entry = by.entry(name.clone()).or_default();
                if group.status == "won" {
                    entry.0 += group.leads;
                }
                entry.1 += group.leads;
            }
        }
        by.into_iter()
            .map(|(name, (won, closed))| Conversion { name, won, closed })
            .collect::<Vec<_>>()
    };
    figures.by_source = conversion(|group| &group.source);
    figures.by_rule = conversion(|group| &group.rule_id);
    // The leaderboard counts the deals won in the window, whenever their leads came in.
    figures.leaderboard = column_window(
        "SELECT l.owner_id AS owner_id, COUNT(*) AS assigned, COUNT(*) AS won,
             CAST(COALESCE(SUM(COALESCE(l.amount, 0)), 0) AS DOUBLE PRECISION) AS amount
         FROM leads l WHERE l.status = 'won' AND l.owner_id IS NOT NULL AND",
        "l.closed_at",
        window,
        "GROUP BY l.owner_id",
    )
    .build_query_as()
    .fetch_all(&mut *conn)
    .await?;
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
    let handled: Vec<KeyCount> = given
        .into_iter()
        .map(|(key, count)| KeyCount { key, count })
        .collect();
    // From the reminders and escalations (`outbox_sla`) to their leads: a lead's clock runs out
    // after it came in, so only the events since the window's start can be about its leads.
    // (`CROSS JOIN` keeps the outbox the outer loop on SQLite; PostgreSQL plans it as a join.)
    let mut missed_by: QueryBuilder<Db> = QueryBuilder::new(format!(
        "SELECT o.rep_id AS key, COUNT(DISTINCT o.lead_id) AS count
         FROM outbox o CROSS JOIN leads l
         WHERE l.id = o.lead_id AND o.event IN {SLA_EVENTS} AND o.rep_id IS NOT NULL
             AND o.created_at >= "
    ));
    missed_by.push_bind(window.from).push(" AND");
    push_window(&mut missed_by, "l.created_at", window);
    missed_by.push(" GROUP BY o.rep_id");
    let missed_by: Vec<KeyCount> = missed_by.build_query_as().fetch_all(&mut *conn).await?;
    let activities: Vec<KeyCount> = window_query(
        "SELECT a.rep_id AS key, COUNT(*) AS count
         FROM activities a JOIN leads l ON l.id = a.lead_id
         WHERE a.rep_id IS NOT NULL AND a.kind <> 'inquiry' AND",
        window,
        "GROUP BY a.rep_id",
    )
    .build_query_as()
    .fetch_all(&mut *conn)
    .await?;
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
    figures.open = open_figures(conn, window).await?;
    figures.handled = handled;
    figures.missed_by = missed_by;
    figures.activities = activities;
    figures.feedback = feedback;
    Ok(figures)
}

/// Each rep's open leads now, whenever they came in: how many, overdue, untouched since
/// `idle_before`, and the days since each was last touched, summed.
async fn open_figures(conn: &mut Conn, window: &DashboardWindow) -> sqlx::Result<Vec<OpenFigures>> {
    let mut query: QueryBuilder<Db> = QueryBuilder::new(
        "SELECT l.owner_id AS owner_id, COUNT(*) AS open, COALESCE(SUM(CASE WHEN",
    );
    push_overdue(&mut query, window.now);
    query.push(" THEN 1 ELSE 0 END), 0) AS overdue, COALESCE(SUM(CASE WHEN");
    push_idle(&mut query, window.idle_before);
    query.push(" THEN 1 ELSE 0 END), 0) AS untouched, CAST(COALESCE(SUM(");
    query.push_bind(window.now);
    query.push(
        " - COALESCE(l.last_activity_at, l.assigned_at, l.created_at)), 0) AS DOUBLE PRECISION)
             / 86400000000.0 AS idle_days
         FROM leads l WHERE l.owner_id IS NOT NULL",
    );
    query.push(format!(" AND l.status IN {OPEN_STATUSES}"));
    if let Some(team) = &window.team {
        query.push(" AND l.team_id = ").push_bind(team.clone());
    }
    if let Some(owner) = &window.owner {
        query.push(" AND l.owner_id = ").push_bind(owner.clone());
    }
    query.push(" GROUP BY l.owner_id");
    query.build_query_as().fetch_all(conn).await
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
