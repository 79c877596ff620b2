// Statements whose best form is SQLite's own: bulk inserts as multi-row VALUES statements, and
// lookups by lists of values. Included beside `queries/`; `bulk_unnest.rs` is PostgreSQL's.

/// Inserts leads with multi-row statements, a few hundred rows at a time.
pub(crate) async fn insert_leads(conn: &mut Conn, rows: &[LeadRow]) -> sqlx::Result<()> {
    execute_chunks(conn, rows, LEAD_CHUNK, push_leads).await
}

/// Rows per statement: each statement may bind 32,766 values at most.
const LEAD_CHUNK: usize = 180;
const DECISION_CHUNK: usize = 400;

fn push_leads(query: &mut QueryBuilder<Db>, rows: &[LeadRow]) {
    query.push(
        "INSERT INTO leads (id, external_id, document, status, owner_id, team_id, pool_id, held, source, phone, email, tags, score, priority, created_at, updated_at, assigned_at, rule_id, sla_policy, win_probability, first_response_at, last_activity_at, closed_at) ",
    );
    query.push_values(rows, |mut values, row| {
        values
            .push_bind(row.id.clone())
            .push_bind(row.external_id.clone())
            .push_bind(row.document.clone())
            .push_bind(row.status.clone())
            .push_bind(row.owner_id.clone())
            .push_bind(row.team_id.clone())
            .push_bind(row.pool_id.clone())
            .push_bind(row.held)
            .push_bind(row.source.clone())
            .push_bind(row.phone.clone())
            .push_bind(row.email.clone())
            .push_bind(row.tags.clone())
            .push_bind(row.score)
            .push_bind(row.priority.clone())
            .push_bind(row.created_at)
            .push_bind(row.updated_at)
            .push_bind(row.assigned_at)
            .push_bind(row.rule_id.clone())
            .push_bind(row.sla_policy.clone())
            .push_bind(row.win_probability)
            // Set only for leads moved in from another CRM with their own history.
            .push_bind(row.first_response_at)
            .push_bind(row.last_activity_at)
            .push_bind(row.closed_at);
    });
}

pub(crate) async fn insert_decisions(conn: &mut Conn, rows: &[DecisionRow]) -> sqlx::Result<()> {
    execute_chunks(conn, rows, DECISION_CHUNK, push_decisions).await
}

fn push_decisions(query: &mut QueryBuilder<Db>, rows: &[DecisionRow]) {
    query.push(
        "INSERT INTO decisions (id, lead_id, kind, actor, reason, rule_set_version, outcome, owner_id, record, created_at, explanation) ",
    );
    query.push_values(rows, |mut values, row| {
        values
            .push_bind(row.id.clone())
            .push_bind(row.lead_id.clone())
            .push_bind(row.kind.clone())
            .push_bind(row.actor.clone())
            .push_bind(row.reason.clone())
            .push_bind(row.rule_set_version)
            .push_bind(row.outcome.clone())
            .push_bind(row.owner_id.clone())
            .push_bind(row.record.clone())
            .push_bind(row.created_at)
            .push_bind(row.explanation.clone());
    });
}

/// The rows a routing transaction adds, in one round trip: the statements of every kind in one
/// query, which the connection's thread runs one after another (sqlx numbers the `?`
/// parameters across them). Each statement is a hand-off between the async runtime and that
/// thread, and under load a hand-off waits for a CPU: sent one by one, the statements made the
/// write phase of a batch of a few leads twice as long. The new routing version when `bump`.
pub(crate) async fn insert_routed(
    conn: &mut Conn,
    routed: &Routed<'_>,
) -> sqlx::Result<Option<i64>> {
    let mut query: QueryBuilder<Db> = QueryBuilder::new("");
    push_chunks(&mut query, routed.leads, LEAD_CHUNK, push_leads);
    push_chunks(&mut query, routed.decisions, DECISION_CHUNK, push_decisions);
    push_chunks(&mut query, routed.timers, TIMER_CHUNK, push_timers);
    push_chunks(&mut query, routed.outbox, OUTBOX_CHUNK, push_outbox);
    push_chunks(&mut query, routed.stats, STATS_CHUNK, push_stats);
    push_chunks(&mut query, routed.rep_states, STATE_CHUNK, push_rep_states);
    push_chunks(&mut query, routed.rotations, STATE_CHUNK, push_rotations);
    push_chunks(&mut query, routed.contacts, CONTACT_CHUNK, push_contacts);
    push_chunks(
        &mut query,
        routed.customer_keys,
        KEY_CHUNK,
        push_customer_keys,
    );
    if routed.bump {
        // Last, so the only row the query returns is the new version.
        next_statement(&mut query);
        query.push(BUMP_ROUTING);
    }
    if query.sql().as_str().is_empty() {
        return Ok(None);
    }
    let versions: Vec<i64> = query.build_query_scalar().fetch_all(conn).await?;
    Ok(versions.last().copied())
}

/// Appends one statement per chunk of `size` rows, each written by `push`, to `query`.
fn push_chunks<T>(
    query: &mut QueryBuilder<Db>,
    rows: &[T],
    size: usize,
    push: fn(&mut QueryBuilder<Db>, &[T]),
) {
    for chunk in rows.chunks(size) {
        next_statement(query);
        push(query, chunk);
    }
}

/// Ends the statement `query` holds, if any, so another can follow.
fn next_statement(query: &mut QueryBuilder<Db>) {
    if !query.sql().as_str().is_empty() {
        query.push(";\n");
    }
}

/// What the routing worker knows of the leads arriving in one transaction, in one round trip:
/// the owners of these phones and emails (`contacts`, for owner affinity), for the duplicate
/// policy the leads recorded under these customer keys (newest first, at most `limit`), and
/// the leads already stored under these external ids; when asked, the workspace's versions.
pub(crate) async fn recognise(conn: &mut Conn, wanted: &Recognise<'_>) -> sqlx::Result<Recognised> {
    let Recognise {
        phones,
        emails,
        keys,
        limit,
        external_ids,
        versions,
    } = *wanted;
    let mut query: QueryBuilder<Db> = QueryBuilder::new("");
    // `column IN (…)` for each list, joined by `OR`. Each list is padded to a power of two
    // (repeating its last value, which changes nothing) so a few statement shapes serve every
    // batch from the statement cache.
    let any_list = |query: &mut QueryBuilder<Db>, column: &str, lists: &[(&str, Vec<&str>)]| {
        for (index, (kind, values)) in lists.iter().enumerate() {
            if index > 0 {
                query.push(" OR ");
            }
            query.push("(");
            if !kind.is_empty() {
                query
                    .push("kind = ")
                    .push_bind(kind.to_string())
                    .push(" AND ");
            }
            query.push(format!("{column} IN ("));
            let padded = values.len().next_power_of_two();
            let mut separated = query.separated(", ");
            for index in 0..padded {
                separated.push_bind(values[index.min(values.len() - 1)].to_string());
            }
            query.push("))");
        }
    };
    let union = |query: &mut QueryBuilder<Db>| {
        if !query.sql().as_str().is_empty() {
            query.push(" UNION ALL ");
        }
    };
    if !(phones.is_empty() && emails.is_empty()) {
        query.push(
            "SELECT 'contact' AS source, kind, value, owner_id AS id, CAST(0 AS BIGINT) AS created_at \
             FROM contacts WHERE ",
        );
        let lists: Vec<(&str, Vec<&str>)> = [("phone", phones), ("email", emails)]
            .into_iter()
            .filter(|(_, values)| !values.is_empty())
            .map(|(kind, values)| (kind, values.iter().map(String::as_str).collect()))
            .collect();
        any_list(&mut query, "value", &lists);
    }
    if !external_ids.is_empty() {
        union(&mut query);
        query.push("SELECT 'external', '', external_id, id, CAST(0 AS BIGINT) FROM leads WHERE ");
        let values = external_ids.iter().map(String::as_str).collect();
        any_list(&mut query, "external_id", &[("", values)]);
    }
    if !keys.is_empty() {
        union(&mut query);
        query.push(
            "SELECT * FROM (SELECT 'key' AS source, kind, value, lead_id AS id, created_at \
             FROM customer_keys WHERE ",
        );
        let mut by_kind: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for (kind, value) in keys {
            by_kind.entry(kind).or_default().push(value);
        }
        let lists: Vec<(&str, Vec<&str>)> = by_kind.into_iter().collect();
        any_list(&mut query, "value", &lists);
        query
            .push(" ORDER BY created_at DESC LIMIT ")
            .push_bind(limit)
            .push(") AS recorded");
    }
    if versions {
        union(&mut query);
        query.push(VERSIONS_ROWS);
    }
    if query.sql().as_str().is_empty() {
        return Ok(Recognised::default());
    }
    let rows: Vec<(String, String, String, String, i64)> =
        query.build_query_as().fetch_all(conn).await?;
    Ok(recognised(rows))
}

/// The versions as `recognise` reads them with the rest: rows `(source, '', '', '', version)`.
const VERSIONS_ROWS: &str = "SELECT 'config', '', '', '', config_version FROM workspace WHERE id = 1 \
     UNION ALL SELECT 'routing', '', '', '', routing_version FROM workspace WHERE id = 1";

/// Leads by id, in any order: an `IN` list per 500 ids.
pub(crate) async fn leads_by_ids(conn: &mut Conn, ids: &[String]) -> sqlx::Result<Vec<LeadRow>> {
    let mut rows = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let mut query: QueryBuilder<Db> = QueryBuilder::new("SELECT * FROM leads WHERE id IN (");
        let mut separated = query.separated(", ");
        for id in chunk {
            separated.push_bind(id.clone());
        }
        query.push(")");
        rows.extend(
            query
                .build_query_as::<LeadRow>()
                .fetch_all(&mut *conn)
                .await?,
        );
    }
    Ok(rows)
}
