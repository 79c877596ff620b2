// Leads, decisions, contacts (known customers), activities and feedback (included per
// backend, as `config.rs`).

pub(crate) async fn get_lead(conn: &mut Conn, id: &str) -> sqlx::Result<Option<LeadRow>> {
    sqlx::query_as("SELECT * FROM leads WHERE id = $1")
        .bind(id.to_owned())
        .fetch_optional(conn)
        .await
}

pub(crate) async fn list_leads(conn: &mut Conn, filter: &LeadFilter) -> sqlx::Result<Vec<LeadRow>> {
    let mut query = filtered_leads("SELECT * FROM leads l WHERE 1 = 1", filter);
    if filter.order == LeadOrder::Newest
        && let Some(before) = &filter.before_id
    {
        query.push(" AND id < ").push_bind(before.clone());
    }
    // Priorities by weight, not by name; unset sorts as normal.
    let by = match filter.order {
        LeadOrder::Newest => "id DESC",
        LeadOrder::Oldest => "id ASC",
        LeadOrder::Status => {
            "CASE status WHEN 'new' THEN 0 WHEN 'assigned' THEN 1 WHEN 'contacted' THEN 2
             WHEN 'qualified' THEN 3 WHEN 'won' THEN 4 WHEN 'lost' THEN 5 ELSE 6 END, id DESC"
        }
        LeadOrder::Owner => "owner_id IS NULL, owner_id, id DESC",
        LeadOrder::Source => "source IS NULL, source, id DESC",
        LeadOrder::Priority => {
            "CASE priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 WHEN 'low' THEN 3
             ELSE 2 END, id DESC"
        }
        LeadOrder::LastActivity => {
            "COALESCE(last_activity_at, assigned_at, created_at) ASC, id DESC"
        }
    };
    query
        .push(format!(" ORDER BY {by} LIMIT "))
        .push_bind(filter.limit);
    if filter.order != LeadOrder::Newest && filter.offset > 0 {
        query.push(" OFFSET ").push_bind(filter.offset);
    }
    query.build_query_as().fetch_all(conn).await
}

/// How many leads a filter matches (its order, cursor and limit aside).
pub(crate) async fn count_leads(conn: &mut Conn, filter: &LeadFilter) -> sqlx::Result<i64> {
    filtered_leads("SELECT COUNT(*) FROM leads l WHERE 1 = 1", filter)
        .build_query_scalar()
        .fetch_one(conn)
        .await
}

/// `head` with the filter's conditions.
fn filtered_leads(head: &str, filter: &LeadFilter) -> QueryBuilder<Db> {
    let mut query: QueryBuilder<Db> = QueryBuilder::new(head);
    if let Some(owner) = &filter.owner_id {
        query.push(" AND owner_id = ").push_bind(owner.clone());
    }
    if let Some(team) = &filter.team_id {
        query.push(" AND team_id = ").push_bind(team.clone());
    }
    if let Some(status) = &filter.status {
        query.push(" AND status = ").push_bind(status.clone());
    }
    if let Some(source) = &filter.source {
        query.push(" AND source = ").push_bind(source.clone());
    }
    if let Some(tag) = &filter.tag {
        let needle = serde_json::to_string(tag).unwrap_or_default();
        query
            .push(" AND tags LIKE ")
            .push_bind(format!("%{}%", escape_like(&needle)));
        query.push(" ESCAPE '\\'");
    }
    if let Some(from) = filter.created_from {
        query.push(" AND created_at >= ").push_bind(from);
    }
    if let Some(to) = filter.created_to {
        query.push(" AND created_at < ").push_bind(to);
    }
    if let Some(q) = &filter.q {
        query
            .push(" AND document LIKE ")
            .push_bind(format!("%{}%", escape_like(q)));
        query.push(" ESCAPE '\\'");
    }
    if let Some((teams, owners)) = &filter.visible {
        query.push(" AND (owner_id IS NULL");
        for (column, values) in [("team_id", teams), ("owner_id", owners)] {
            if values.is_empty() {
                continue;
            }
            query.push(format!(" OR {column} IN ("));
            let mut separated = query.separated(", ");
            for value in values {
                separated.push_bind(value.clone());
            }
            query.push(")");
        }
        query.push(")");
    }
    if filter.held {
        query.push(" AND held = TRUE");
    }
    if let Some(priority) = &filter.priority {
        // A lead without a priority is a normal one.
        query.push(" AND (priority = ").push_bind(priority.clone());
        if priority == "normal" {
            query.push(" OR priority IS NULL");
        }
        query.push(")");
    }
    if filter.open {
        query.push(format!(" AND status IN {OPEN_STATUSES}"));
    }
    if let Some(now) = filter.overdue_at {
        query.push(" AND");
        push_overdue(&mut query, now);
    }
    if let Some(before) = filter.idle_before {
        query.push(" AND");
        push_idle(&mut query, before);
    }
    if filter.sla_missed {
        query.push(" AND assigned_at IS NOT NULL AND");
        push_sla_missed(&mut query);
    }
    if filter.responded {
        query.push(" AND (first_response_at IS NOT NULL OR last_activity_at IS NOT NULL)");
    }
    if filter.owned {
        query.push(" AND owner_id IS NOT NULL");
    }
    // Given to the rep at some point: they own it, or they are among its earlier owners (the
    // dashboard counts the same).
    if let Some(rep) = &filter.handled_by {
        let needle = serde_json::to_string(rep).unwrap_or_default();
        query
            .push(" AND (owner_id = ")
            .push_bind(rep.clone())
            .push(" OR previous_owners LIKE ")
            .push_bind(format!("%{}%", escape_like(&needle)))
            .push(" ESCAPE '\\')");
    }
    if let Some(from) = filter.closed_from {
        query.push(" AND closed_at >= ").push_bind(from);
    }
    if let Some(to) = filter.closed_to {
        query.push(" AND closed_at < ").push_bind(to);
    }
    if let Some(pools) = &filter.pools {
        query.push(" AND owner_id IS NULL AND pool_id IN (");
        let mut separated = query.separated(", ");
        separated.push_bind(String::new());
        for pool in pools {
            separated.push_bind(pool.clone());
        }
        query.push(")");
    }
    query
}

fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

pub(crate) async fn decisions_for(
    conn: &mut Conn,
    lead_id: &str,
) -> sqlx::Result<Vec<DecisionRow>> {
    sqlx::query_as("SELECT * FROM decisions WHERE lead_id = $1 ORDER BY created_at DESC, id DESC")
        .bind(lead_id.to_owned())
        .fetch_all(conn)
        .await
}

pub(crate) async fn load_rep_states(conn: &mut Conn) -> sqlx::Result<Vec<RepStateRow>> {
    sqlx::query_as("SELECT * FROM rep_state")
        .fetch_all(conn)
        .await
}

pub(crate) async fn load_rotations(conn: &mut Conn) -> sqlx::Result<Vec<RotationRow>> {
    sqlx::query_as("SELECT * FROM rotations")
        .fetch_all(conn)
        .await
}

/// Records who owns each contact now: `(kind, value, owner_id, at)`.
pub(crate) async fn upsert_contacts(
    conn: &mut Conn,
    rows: &[(String, String, String, i64)],
) -> sqlx::Result<()> {
    execute_chunks(conn, rows, CONTACT_CHUNK, push_contacts).await
}

const CONTACT_CHUNK: usize = 500;

/// The upsert of `rows` into `contacts`.
fn push_contacts(query: &mut QueryBuilder<Db>, rows: &[(String, String, String, i64)]) {
    query.push("INSERT INTO contacts (kind, value, owner_id, updated_at) ");
    query.push_values(rows, |mut values, (kind, value, owner, at)| {
        values
            .push_bind(kind.clone())
            .push_bind(value.clone())
            .push_bind(owner.clone())
            .push_bind(*at);
    });
    query.push(
        " ON CONFLICT (kind, value) DO UPDATE SET owner_id = excluded.owner_id,
             updated_at = excluded.updated_at",
    );
}

/// Held leads, most urgent first, then oldest.
pub(crate) async fn held_leads(conn: &mut Conn, limit: i64) -> sqlx::Result<Vec<LeadRow>> {
    sqlx::query_as(
        "SELECT * FROM leads WHERE held = TRUE
         ORDER BY CASE priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 WHEN 'low' THEN 3 ELSE 2 END, created_at, id
         LIMIT $1",
    )
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Rewrites a lead's columns after a reroute, assignment, claim, activity or patch.
pub(crate) async fn update_lead(conn: &mut Conn, row: &LeadRow) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE leads SET document = $2, status = $3, owner_id = $4, team_id = $5, pool_id = $6,
             held = $7, source = $8, phone = $9, email = $10, tags = $11, score = $12, priority = $13,
             updated_at = $14, assigned_at = $15, first_response_at = $16, last_activity_at = $17,
             callback_at = $18, claimed_at = $19, protected_until = $20, hops = $21,
             previous_owners = $22, rule_id = $23, sla_policy = $24, last_pool = $25,
             closed_at = $26, amount = $27, lost_reason = $28, win_probability = $29, intake = $30,
             merged_into = $31, sla_missed_at = $32
         WHERE id = $1",
    )
    .bind(row.id.clone())
    .bind(row.document.clone())
    .bind(row.status.clone())
    .bind(row.owner_id.clone())
    .bind(row.team_id.clone())
    .bind(row.pool_id.clone())
    .bind(row.held)
    .bind(row.source.clone())
    .bind(row.phone.clone())
    .bind(row.email.clone())
    .bind(row.tags.clone())
    .bind(row.score)
    .bind(row.priority.clone())
    .bind(row.updated_at)
    .bind(row.assigned_at)
    .bind(row.first_response_at)
    .bind(row.last_activity_at)
    .bind(row.callback_at)
    .bind(row.claimed_at)
    .bind(row.protected_until)
    .bind(row.hops)
    .bind(row.previous_owners.clone())
    .bind(row.rule_id.clone())
    .bind(row.sla_policy.clone())
    .bind(row.last_pool.clone())
    .bind(row.closed_at)
    .bind(row.amount)
    .bind(row.lost_reason.clone())
    .bind(row.win_probability)
    .bind(row.intake.clone())
    .bind(row.merged_into.clone())
    .bind(row.sla_missed_at)
    .execute(conn)
    .await
    .map(drop)
}

/// A rep's leads that nobody has worked yet: assigned, no activity.
pub(crate) async fn untouched_leads(
    conn: &mut Conn,
    owner: &str,
    limit: i64,
) -> sqlx::Result<Vec<LeadRow>> {
    sqlx::query_as(
        "SELECT * FROM leads WHERE owner_id = $1 AND status = 'assigned'
             AND first_response_at IS NULL AND last_activity_at IS NULL
         ORDER BY created_at, id LIMIT $2",
    )
    .bind(owner.to_owned())
    .bind(limit)
    .fetch_all(conn)
    .await
}

pub(crate) async fn insert_activity(conn: &mut Conn, row: &ActivityRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO activities (id, lead_id, rep_id, actor, kind, outcome, note, next_follow_up_at, response_secs, created_at, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(row.id.clone())
    .bind(row.lead_id.clone())
    .bind(row.rep_id.clone())
    .bind(row.actor.clone())
    .bind(row.kind.clone())
    .bind(row.outcome.clone())
    .bind(row.note.clone())
    .bind(row.next_follow_up_at)
    .bind(row.response_secs)
    .bind(row.created_at)
    .bind(row.detail.clone())
    .execute(conn)
    .await
    .map(drop)
}

pub(crate) async fn activities_for(
    conn: &mut Conn,
    lead_id: &str,
) -> sqlx::Result<Vec<ActivityRow>> {
    sqlx::query_as("SELECT * FROM activities WHERE lead_id = $1 ORDER BY created_at DESC, id DESC")
        .bind(lead_id.to_owned())
        .fetch_all(conn)
        .await
}

pub(crate) async fn insert_feedback(conn: &mut Conn, row: &FeedbackRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO feedback (id, lead_id, rep_id, kind, score, comment, actor, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(row.id.clone())
    .bind(row.lead_id.clone())
    .bind(row.rep_id.clone())
    .bind(row.kind.clone())
    .bind(row.score)
    .bind(row.comment.clone())
    .bind(row.actor.clone())
    .bind(row.created_at)
    .execute(conn)
    .await
    .map(drop)
}

pub(crate) async fn feedback_for(conn: &mut Conn, lead_id: &str) -> sqlx::Result<Vec<FeedbackRow>> {
    sqlx::query_as("SELECT * FROM feedback WHERE lead_id = $1 ORDER BY created_at DESC, id DESC")
        .bind(lead_id.to_owned())
        .fetch_all(conn)
        .await
}

/// What `/metrics` reads at each scrape: leads held, leads waiting in pools, timers due at
/// `now`, deliveries waiting to be sent.
pub(crate) async fn workload(conn: &mut Conn, now: i64) -> sqlx::Result<Workload> {
    sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM leads WHERE held) AS held,
                (SELECT COUNT(*) FROM leads WHERE pool_id IS NOT NULL AND owner_id IS NULL) AS pooled,
                (SELECT COUNT(*) FROM timers WHERE due_at <= $1) AS timers_due,
                (SELECT COUNT(*) FROM deliveries WHERE status = 'pending') AS deliveries_pending",
    )
    .bind(now)
    .fetch_one(&mut *conn)
    .await
}

/// Deliveries given up on, per channel.
pub(crate) async fn dead_letters(conn: &mut Conn) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as(
        "SELECT channel_id, COUNT(*) FROM deliveries WHERE status = 'dead' GROUP BY channel_id
         ORDER BY channel_id",
    )
    .fetch_all(conn)
    .await
}

/// Records the keys new leads are recognised by (`CustomerKeyRow`); a key already recorded for
/// the lead is left as it is.
pub(crate) async fn insert_customer_keys(
    conn: &mut Conn,
    rows: &[CustomerKeyRow],
) -> sqlx::Result<()> {
    execute_chunks(conn, rows, KEY_CHUNK, push_customer_keys).await
}

const KEY_CHUNK: usize = 500;

/// The insert of `rows` into `customer_keys`, leaving a key already recorded for its lead.
fn push_customer_keys(query: &mut QueryBuilder<Db>, rows: &[CustomerKeyRow]) {
    query.push("INSERT INTO customer_keys (kind, value, lead_id, created_at) ");
    query.push_values(rows, |mut values, row| {
        values
            .push_bind(row.kind.clone())
            .push_bind(row.value.clone())
            .push_bind(row.lead_id.clone())
            .push_bind(row.created_at);
    });
    query.push(" ON CONFLICT DO NOTHING");
}

/// The leads recorded under any of these `(kind, value)` keys, newest first, at most `limit`.
pub(crate) async fn leads_by_customer_keys(
    conn: &mut Conn,
    keys: &[(String, String)],
    limit: i64,
) -> sqlx::Result<Vec<CustomerKeyRow>> {
    let wanted = Recognise {
        keys,
        limit,
        ..Recognise::default()
    };
    Ok(recognise(conn, &wanted).await?.recorded)
}

/// Sorts the rows of `recognise` (in `bulk_values.rs` / `bulk_unnest.rs`: each backend has
/// its own best statement), `(source, kind, value, id, created_at)`, by their source; the
/// `config` and `routing` rows carry a version in `created_at`.
fn recognised(rows: Vec<(String, String, String, String, i64)>) -> Recognised {
    let mut found = Recognised::default();
    let (mut config, mut routing) = (None, None);
    for (source, kind, value, id, created_at) in rows {
        match source.as_str() {
            "contact" => found.owners.push((kind, value, id)),
            "external" => found.external.push((value, id)),
            "config" => config = Some(created_at),
            "routing" => routing = Some(created_at),
            _ => found.recorded.push(CustomerKeyRow {
                kind,
                value,
                lead_id: id,
                created_at,
            }),
        }
    }
    found.versions = config.zip(routing);
    found
}

/// Leads after `after` in id order, for indexing leads stored before customer keys existed.
pub(crate) async fn leads_after(
    conn: &mut Conn,
    after: &str,
    limit: i64,
) -> sqlx::Result<Vec<LeadRow>> {
    sqlx::query_as("SELECT * FROM leads WHERE id > $1 ORDER BY id LIMIT $2")
        .bind(after.to_owned())
        .bind(limit)
        .fetch_all(conn)
        .await
}

pub(crate) async fn insert_duplicate_pairs(
    conn: &mut Conn,
    rows: &[DuplicatePairRow],
) -> sqlx::Result<()> {
    for row in rows {
        sqlx::query(
            "INSERT INTO duplicate_pairs (id, lead_id, other_id, key_kind, status, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(row.id.clone())
        .bind(row.lead_id.clone())
        .bind(row.other_id.clone())
        .bind(row.key_kind.clone())
        .bind(row.status.clone())
        .bind(row.created_at)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Pairs in a status, by id (creation order), after the cursor.
pub(crate) async fn list_duplicate_pairs(
    conn: &mut Conn,
    status: &str,
    after: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<DuplicatePairRow>> {
    sqlx::query_as(
        "SELECT * FROM duplicate_pairs WHERE status = $1 AND id > $2 ORDER BY id LIMIT $3",
    )
    .bind(status.to_owned())
    .bind(after.unwrap_or("").to_owned())
    .bind(limit)
    .fetch_all(conn)
    .await
}

pub(crate) async fn get_duplicate_pair(
    conn: &mut Conn,
    id: &str,
) -> sqlx::Result<Option<DuplicatePairRow>> {
    sqlx::query_as("SELECT * FROM duplicate_pairs WHERE id = $1")
        .bind(id.to_owned())
        .fetch_optional(conn)
        .await
}

/// Closes an open pair as `merged` or `dismissed`; whether it was still open.
pub(crate) async fn resolve_duplicate_pair(
    conn: &mut Conn,
    id: &str,
    status: &str,
    by: &str,
    at: i64,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "UPDATE duplicate_pairs SET status = $2, resolved_by = $3, resolved_at = $4
         WHERE id = $1 AND status = 'open'",
    )
    .bind(id.to_owned())
    .bind(status.to_owned())
    .bind(by.to_owned())
    .bind(at)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Moves a merged lead's activities and feedback to the lead it was merged into, and closes
/// every other open pair between the two.
pub(crate) async fn move_lead_history(
    conn: &mut Conn,
    from: &str,
    to: &str,
    by: &str,
    at: i64,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE activities SET lead_id = $2 WHERE lead_id = $1")
        .bind(from.to_owned())
        .bind(to.to_owned())
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE feedback SET lead_id = $2 WHERE lead_id = $1")
        .bind(from.to_owned())
        .bind(to.to_owned())
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "UPDATE duplicate_pairs SET status = 'merged', resolved_by = $3, resolved_at = $4
         WHERE status = 'open' AND ((lead_id = $1 AND other_id = $2) OR (lead_id = $2 AND other_id = $1))",
    )
    .bind(from.to_owned())
    .bind(to.to_owned())
    .bind(by.to_owned())
    .bind(at)
    .execute(&mut *conn)
    .await
    .map(drop)
}

/// Dismisses an open pair with its audit row; whether it was still open.
pub(crate) async fn dismiss_duplicate_pair(
    conn: &mut Conn,
    id: &str,
    by: &str,
    at: i64,
    audit: &AuditRow,
) -> sqlx::Result<bool> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let dismissed = resolve_duplicate_pair(&mut tx, id, "dismissed", by, at).await?;
    if dismissed {
        insert_audit(&mut tx, audit).await?;
    }
    tx.commit().await?;
    Ok(dismissed)
}
