// Statements whose best form is SQLite's own: bulk inserts as multi-row VALUES statements, and
// lookups by lists of values. Included beside `queries/`; `bulk_unnest.rs` is PostgreSQL's.

/// Inserts leads with multi-row statements, a few hundred rows at a time.
pub(crate) async fn insert_leads(conn: &mut Conn, rows: &[LeadRow]) -> sqlx::Result<()> {
    for chunk in rows.chunks(180) {
        let mut query: QueryBuilder<Db> = QueryBuilder::new(
            "INSERT INTO leads (id, external_id, document, status, owner_id, team_id, pool_id, held, source, phone, email, tags, score, priority, created_at, updated_at, assigned_at, rule_id, sla_policy, win_probability, first_response_at, last_activity_at, closed_at) ",
        );
        query.push_values(chunk, |mut values, row| {
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
        query.build().execute(&mut *conn).await?;
    }
    Ok(())
}

pub(crate) async fn insert_decisions(conn: &mut Conn, rows: &[DecisionRow]) -> sqlx::Result<()> {
    for chunk in rows.chunks(400) {
        let mut query: QueryBuilder<Db> = QueryBuilder::new(
            "INSERT INTO decisions (id, lead_id, kind, actor, reason, rule_set_version, outcome, owner_id, record, created_at, explanation) ",
        );
        query.push_values(chunk, |mut values, row| {
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
        query.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// The rows a routing transaction adds, one kind after another (on SQLite a statement is a
/// hand-off to the connection's thread, not a network round trip). The new routing version
/// when `bump`.
pub(crate) async fn insert_routed(
    conn: &mut Conn,
    routed: &Routed<'_>,
) -> sqlx::Result<Option<i64>> {
    insert_leads(&mut *conn, routed.leads).await?;
    insert_decisions(&mut *conn, routed.decisions).await?;
    insert_timers(&mut *conn, routed.timers).await?;
    insert_outbox(&mut *conn, routed.outbox).await?;
    add_stats(&mut *conn, routed.stats).await?;
    upsert_rep_states(&mut *conn, routed.rep_states).await?;
    upsert_rotations(&mut *conn, routed.rotations).await?;
    upsert_contacts(&mut *conn, routed.contacts).await?;
    Ok(match routed.bump {
        true => Some(bump_routing(conn).await?),
        false => None,
    })
}

/// What the routing worker knows of the customers arriving in one transaction, in one round
/// trip: the owners of these phones and emails (`contacts`, for owner affinity) and, for the
/// duplicate policy, the leads recorded under these customer keys, newest first, at most
/// `limit`.
pub(crate) async fn recognise(
    conn: &mut Conn,
    phones: &[String],
    emails: &[String],
    keys: &[(String, String)],
    limit: i64,
) -> sqlx::Result<(Vec<(String, String, String)>, Vec<CustomerKeyRow>)> {
    let contacts = !(phones.is_empty() && emails.is_empty());
    if !contacts && keys.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let mut query: QueryBuilder<Db> = QueryBuilder::new("");
    let any_list = |query: &mut QueryBuilder<Db>, lists: &[(&str, Vec<&str>)]| {
        for (index, (kind, values)) in lists.iter().enumerate() {
            if index > 0 {
                query.push(" OR ");
            }
            query
                .push("(kind = ")
                .push_bind(kind.to_string())
                .push(" AND value IN (");
            // Each list is padded to a power of two (repeating its last value, which changes
            // nothing) so a few statement shapes serve every batch from the statement cache.
            let padded = values.len().next_power_of_two();
            let mut separated = query.separated(", ");
            for index in 0..padded {
                separated.push_bind(values[index.min(values.len() - 1)].to_string());
            }
            query.push("))");
        }
    };
    if contacts {
        query.push(
            "SELECT 'contact' AS source, kind, value, owner_id AS id, CAST(0 AS BIGINT) AS created_at \
             FROM contacts WHERE ",
        );
        let lists: Vec<(&str, Vec<&str>)> = [("phone", phones), ("email", emails)]
            .into_iter()
            .filter(|(_, values)| !values.is_empty())
            .map(|(kind, values)| (kind, values.iter().map(String::as_str).collect()))
            .collect();
        any_list(&mut query, &lists);
    }
    if !keys.is_empty() {
        if contacts {
            query.push(" UNION ALL ");
        }
        query.push(
            "SELECT * FROM (SELECT 'key' AS source, kind, value, lead_id AS id, created_at \
             FROM customer_keys WHERE ",
        );
        let mut by_kind: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for (kind, value) in keys {
            by_kind.entry(kind).or_default().push(value);
        }
        let lists: Vec<(&str, Vec<&str>)> = by_kind.into_iter().collect();
        any_list(&mut query, &lists);
        query
            .push(" ORDER BY created_at DESC LIMIT ")
            .push_bind(limit)
            .push(") AS recorded");
    }
    let rows: Vec<(String, String, String, String, i64)> =
        query.build_query_as().fetch_all(conn).await?;
    Ok(recognised(rows))
}
