// Statements whose best form is PostgreSQL's own: bulk inserts and lookups that unnest arrays,
// so the server parses and plans the same text whatever the batch size. Included beside
// `queries/`; `bulk_values.rs` is SQLite's.

/// Inserts leads, any number in one statement.
pub(crate) async fn insert_leads(conn: &mut Conn, rows: &[LeadRow]) -> sqlx::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let column = |get: fn(&LeadRow) -> Option<String>| rows.iter().map(get).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO leads (id, external_id, document, status, owner_id, team_id, pool_id, held, source, phone, email, tags, score, priority, created_at, updated_at, assigned_at, rule_id, sla_policy, win_probability, first_response_at, last_activity_at, closed_at)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bool[],
                              $9::text[], $10::text[], $11::text[], $12::text[], $13::float8[], $14::text[], $15::int8[], $16::int8[],
                              $17::int8[], $18::text[], $19::text[], $20::float8[], $21::int8[], $22::int8[], $23::int8[])",
    )
    .bind(column(|row| Some(row.id.clone())))
    .bind(column(|row| row.external_id.clone()))
    .bind(column(|row| Some(row.document.clone())))
    .bind(column(|row| Some(row.status.clone())))
    .bind(column(|row| row.owner_id.clone()))
    .bind(column(|row| row.team_id.clone()))
    .bind(column(|row| row.pool_id.clone()))
    .bind(rows.iter().map(|row| row.held).collect::<Vec<_>>())
    .bind(column(|row| row.source.clone()))
    .bind(column(|row| row.phone.clone()))
    .bind(column(|row| row.email.clone()))
    .bind(column(|row| Some(row.tags.clone())))
    .bind(rows.iter().map(|row| row.score).collect::<Vec<_>>())
    .bind(column(|row| row.priority.clone()))
    .bind(rows.iter().map(|row| row.created_at).collect::<Vec<_>>())
    .bind(rows.iter().map(|row| row.updated_at).collect::<Vec<_>>())
    .bind(rows.iter().map(|row| row.assigned_at).collect::<Vec<_>>())
    .bind(column(|row| row.rule_id.clone()))
    .bind(column(|row| row.sla_policy.clone()))
    .bind(rows.iter().map(|row| row.win_probability).collect::<Vec<_>>())
    // Set only for leads moved in from another CRM with their own history.
    .bind(rows.iter().map(|row| row.first_response_at).collect::<Vec<_>>())
    .bind(rows.iter().map(|row| row.last_activity_at).collect::<Vec<_>>())
    .bind(rows.iter().map(|row| row.closed_at).collect::<Vec<_>>())
    .execute(conn)
    .await
    .map(drop)
}

/// Inserts decisions, any number in one statement.
pub(crate) async fn insert_decisions(conn: &mut Conn, rows: &[DecisionRow]) -> sqlx::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let column = |get: fn(&DecisionRow) -> Option<String>| rows.iter().map(get).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO decisions (id, lead_id, kind, actor, reason, rule_set_version, outcome, owner_id, record, created_at, explanation)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::text[],
                              $8::text[], $9::text[], $10::int8[], $11::text[])",
    )
    .bind(column(|row| Some(row.id.clone())))
    .bind(column(|row| Some(row.lead_id.clone())))
    .bind(column(|row| Some(row.kind.clone())))
    .bind(column(|row| Some(row.actor.clone())))
    .bind(column(|row| row.reason.clone()))
    .bind(rows.iter().map(|row| row.rule_set_version).collect::<Vec<_>>())
    .bind(column(|row| Some(row.outcome.clone())))
    .bind(column(|row| row.owner_id.clone()))
    .bind(column(|row| Some(row.record.clone())))
    .bind(rows.iter().map(|row| row.created_at).collect::<Vec<_>>())
    .bind(column(|row| Some(row.explanation.clone())))
    .execute(conn)
    .await
    .map(drop)
}

/// What the routing worker knows of the customers arriving in one transaction, in one round
/// trip: the owners of these phones and emails (`contacts`, for owner affinity) and, for the
/// duplicate policy, the leads recorded under these customer keys, newest first, at most
/// `limit`.
///
/// One prepared statement serves every batch. Each key is looked up on its own (`LATERAL`,
/// in primary-key order with a limit; the limit also keeps the planner from turning the
/// subquery into a join), so the only sensible plan is a probe of the primary key per key:
/// the generic plan PostgreSQL caches while the tables are nearly empty stays right as they
/// grow, with or without ANALYZE. (The `IN` lists this replaced had to be planned for every
/// call: a cached plan made on small tables scanned them whole once they were large.) Within
/// one key the newest leads come first by id (ids are time-ordered), so a key with more than
/// `limit` leads is matched on its newest.
pub(crate) async fn recognise(
    conn: &mut Conn,
    phones: &[String],
    emails: &[String],
    keys: &[(String, String)],
    limit: i64,
) -> sqlx::Result<(Vec<(String, String, String)>, Vec<CustomerKeyRow>)> {
    if phones.is_empty() && emails.is_empty() && keys.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let contact_kinds: Vec<&str> = (phones.iter().map(|_| "phone"))
        .chain(emails.iter().map(|_| "email"))
        .collect();
    let contact_values: Vec<&str> = phones.iter().chain(emails).map(String::as_str).collect();
    let key_kinds: Vec<&str> = keys.iter().map(|(kind, _)| kind.as_str()).collect();
    let key_values: Vec<&str> = keys.iter().map(|(_, value)| value.as_str()).collect();
    let rows: Vec<(String, String, String, String, i64)> = sqlx::query_as(
        "SELECT 'contact', wanted.kind, wanted.value, found.owner_id, CAST(0 AS BIGINT)
         FROM UNNEST($1::text[], $2::text[]) AS wanted (kind, value)
         CROSS JOIN LATERAL (SELECT owner_id FROM contacts
             WHERE contacts.kind = wanted.kind AND contacts.value = wanted.value LIMIT 1) AS found
         UNION ALL
         SELECT * FROM (
             SELECT 'key', wanted.kind, wanted.value, found.lead_id, found.created_at
             FROM UNNEST($3::text[], $4::text[]) AS wanted (kind, value)
             CROSS JOIN LATERAL (SELECT lead_id, created_at FROM customer_keys
                 WHERE customer_keys.kind = wanted.kind AND customer_keys.value = wanted.value
                 ORDER BY kind DESC, value DESC, lead_id DESC LIMIT $5) AS found
             ORDER BY found.created_at DESC LIMIT $5) AS recorded",
    )
    .bind(contact_kinds)
    .bind(contact_values)
    .bind(key_kinds)
    .bind(key_values)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(recognised(rows))
}
