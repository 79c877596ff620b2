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

/// The rows a routing transaction adds, in one statement and one round trip: each kind is a
/// data-modifying `WITH` part over arrays (the text is the same whatever the batch holds, so
/// the server plans it once), and the routing version moves in the statement's own `UPDATE`
/// when `bump`, which returns it. Before, these were up to nine statements, most of them
/// multi-row `VALUES` whose text changed with the number of rows: a round trip each, and a
/// parse and plan whenever the count was new. The foreign keys (a decision's lead) are checked
/// at the end of the statement, when every part has run.
pub(crate) async fn insert_routed(
    conn: &mut Conn,
    routed: &Routed<'_>,
) -> sqlx::Result<Option<i64>> {
    let Routed {
        leads,
        decisions,
        timers,
        outbox,
        stats,
        rep_states,
        rotations,
        contacts,
        customer_keys,
        bump,
    } = *routed;
    let lead = |get: fn(&LeadRow) -> Option<String>| leads.iter().map(get).collect::<Vec<_>>();
    let decision =
        |get: fn(&DecisionRow) -> Option<String>| decisions.iter().map(get).collect::<Vec<_>>();
    let timer = |get: fn(&TimerRow) -> Option<String>| timers.iter().map(get).collect::<Vec<_>>();
    let event = |get: fn(&OutboxRow) -> Option<String>| outbox.iter().map(get).collect::<Vec<_>>();
    let delta = |get: fn(&StatsDelta) -> i64| stats.iter().map(|(_, d)| get(d)).collect::<Vec<_>>();
    let state =
        |get: fn(&RepStateRow) -> Option<String>| rep_states.iter().map(get).collect::<Vec<_>>();
    let count = |get: fn(&RepStateRow) -> i64| rep_states.iter().map(get).collect::<Vec<_>>();
    sqlx::query_scalar(concat!(
        "WITH new_leads AS (
             INSERT INTO leads (id, external_id, document, status, owner_id, team_id, pool_id, held, source, phone, email, tags, score, priority, created_at, updated_at, assigned_at, rule_id, sla_policy, win_probability, first_response_at, last_activity_at, closed_at)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bool[],
                                  $9::text[], $10::text[], $11::text[], $12::text[], $13::float8[], $14::text[], $15::int8[], $16::int8[],
                                  $17::int8[], $18::text[], $19::text[], $20::float8[], $21::int8[], $22::int8[], $23::int8[])
         ), new_decisions AS (
             INSERT INTO decisions (id, lead_id, kind, actor, reason, rule_set_version, outcome, owner_id, record, created_at, explanation)
             SELECT * FROM UNNEST($24::text[], $25::text[], $26::text[], $27::text[], $28::text[], $29::int8[], $30::text[],
                                  $31::text[], $32::text[], $33::int8[], $34::text[])
         ), new_timers AS (
             INSERT INTO timers (id, lead_id, kind, step, owner_id, due_at, created_at)
             SELECT * FROM UNNEST($35::text[], $36::text[], $37::text[], $38::int8[], $39::text[], $40::int8[], $41::int8[])
         ), new_events AS (
             INSERT INTO outbox (id, event, lead_id, rep_id, recipients, payload, created_at, status)
             SELECT * FROM UNNEST($42::text[], $43::text[], $44::text[], $45::text[], $46::text[], $47::text[], $48::int8[], $49::text[])
         ), added_stats AS (
             INSERT INTO outcome_stats (dimension, key, assigned, responded, response_secs, won, lost, invalid, amount, feedback_count, feedback_sum)
             SELECT * FROM UNNEST($50::text[], $51::text[], $52::int8[], $53::int8[], $54::int8[], $55::int8[], $56::int8[], $57::int8[],
                                  $58::float8[], $59::int8[], $60::float8[])
",
        stats_on_conflict!(),
        "
         ), saved_states AS (
             INSERT INTO rep_state (rep_id, open_leads, day_start, day_count, week_start, week_count, month_start, month_count, last_assigned_at)
             SELECT * FROM UNNEST($61::text[], $62::int8[], $63::text[], $64::int8[], $65::text[], $66::int8[], $67::text[], $68::int8[], $69::int8[])
",
        rep_state_on_conflict!(),
        "
         ), saved_rotations AS (
             INSERT INTO rotations (key, state) SELECT * FROM UNNEST($70::text[], $71::text[])
             ON CONFLICT (key) DO UPDATE SET state = excluded.state
         ), saved_contacts AS (
             INSERT INTO contacts (kind, value, owner_id, updated_at)
             SELECT * FROM UNNEST($72::text[], $73::text[], $74::text[], $75::int8[])
             ON CONFLICT (kind, value) DO UPDATE SET owner_id = excluded.owner_id,
                 updated_at = excluded.updated_at
         ), new_keys AS (
             INSERT INTO customer_keys (kind, value, lead_id, created_at)
             SELECT * FROM UNNEST($76::text[], $77::text[], $78::text[], $79::int8[])
             ON CONFLICT DO NOTHING
         )
         UPDATE workspace SET routing_version = routing_version + 1 WHERE id = 1 AND $80
         RETURNING routing_version"
    ))
    .bind(lead(|row| Some(row.id.clone())))
    .bind(lead(|row| row.external_id.clone()))
    .bind(lead(|row| Some(row.document.clone())))
    .bind(lead(|row| Some(row.status.clone())))
    .bind(lead(|row| row.owner_id.clone()))
    .bind(lead(|row| row.team_id.clone()))
    .bind(lead(|row| row.pool_id.clone()))
    .bind(leads.iter().map(|row| row.held).collect::<Vec<_>>())
    .bind(lead(|row| row.source.clone()))
    .bind(lead(|row| row.phone.clone()))
    .bind(lead(|row| row.email.clone()))
    .bind(lead(|row| Some(row.tags.clone())))
    .bind(leads.iter().map(|row| row.score).collect::<Vec<_>>())
    .bind(lead(|row| row.priority.clone()))
    .bind(leads.iter().map(|row| row.created_at).collect::<Vec<_>>())
    .bind(leads.iter().map(|row| row.updated_at).collect::<Vec<_>>())
    .bind(leads.iter().map(|row| row.assigned_at).collect::<Vec<_>>())
    .bind(lead(|row| row.rule_id.clone()))
    .bind(lead(|row| row.sla_policy.clone()))
    .bind(leads.iter().map(|row| row.win_probability).collect::<Vec<_>>())
    .bind(leads.iter().map(|row| row.first_response_at).collect::<Vec<_>>())
    .bind(leads.iter().map(|row| row.last_activity_at).collect::<Vec<_>>())
    .bind(leads.iter().map(|row| row.closed_at).collect::<Vec<_>>())
    .bind(decision(|row| Some(row.id.clone())))
    .bind(decision(|row| Some(row.lead_id.clone())))
    .bind(decision(|row| Some(row.kind.clone())))
    .bind(decision(|row| Some(row.actor.clone())))
    .bind(decision(|row| row.reason.clone()))
    .bind(decisions.iter().map(|row| row.rule_set_version).collect::<Vec<_>>())
    .bind(decision(|row| Some(row.outcome.clone())))
    .bind(decision(|row| row.owner_id.clone()))
    .bind(decision(|row| Some(row.record.clone())))
    .bind(decisions.iter().map(|row| row.created_at).collect::<Vec<_>>())
    .bind(decision(|row| Some(row.explanation.clone())))
    .bind(timer(|row| Some(row.id.clone())))
    .bind(timer(|row| Some(row.lead_id.clone())))
    .bind(timer(|row| Some(row.kind.clone())))
    .bind(timers.iter().map(|row| row.step).collect::<Vec<_>>())
    .bind(timer(|row| row.owner_id.clone()))
    .bind(timers.iter().map(|row| row.due_at).collect::<Vec<_>>())
    .bind(timers.iter().map(|row| row.created_at).collect::<Vec<_>>())
    .bind(event(|row| Some(row.id.clone())))
    .bind(event(|row| Some(row.event.clone())))
    .bind(event(|row| row.lead_id.clone()))
    .bind(event(|row| row.rep_id.clone()))
    .bind(event(|row| Some(row.recipients.clone())))
    .bind(event(|row| Some(row.payload.clone())))
    .bind(outbox.iter().map(|row| row.created_at).collect::<Vec<_>>())
    .bind(event(|row| Some(row.status.clone())))
    .bind(stats.iter().map(|((dimension, _), _)| dimension.as_str()).collect::<Vec<_>>())
    .bind(stats.iter().map(|((_, key), _)| key.as_str()).collect::<Vec<_>>())
    .bind(delta(|d| d.assigned))
    .bind(delta(|d| d.responded))
    .bind(delta(|d| d.response_secs))
    .bind(delta(|d| d.won))
    .bind(delta(|d| d.lost))
    .bind(delta(|d| d.invalid))
    .bind(stats.iter().map(|(_, d)| d.amount).collect::<Vec<_>>())
    .bind(delta(|d| d.feedback_count))
    .bind(stats.iter().map(|(_, d)| d.feedback_sum).collect::<Vec<_>>())
    .bind(state(|row| Some(row.rep_id.clone())))
    .bind(count(|row| row.open_leads))
    .bind(state(|row| row.day_start.clone()))
    .bind(count(|row| row.day_count))
    .bind(state(|row| row.week_start.clone()))
    .bind(count(|row| row.week_count))
    .bind(state(|row| row.month_start.clone()))
    .bind(count(|row| row.month_count))
    .bind(rep_states.iter().map(|row| row.last_assigned_at).collect::<Vec<_>>())
    .bind(rotations.iter().map(|row| row.key.as_str()).collect::<Vec<_>>())
    .bind(rotations.iter().map(|row| row.state.as_str()).collect::<Vec<_>>())
    .bind(contacts.iter().map(|(kind, ..)| kind.as_str()).collect::<Vec<_>>())
    .bind(contacts.iter().map(|(_, value, ..)| value.as_str()).collect::<Vec<_>>())
    .bind(contacts.iter().map(|(_, _, owner, _)| owner.as_str()).collect::<Vec<_>>())
    .bind(contacts.iter().map(|(.., at)| *at).collect::<Vec<_>>())
    .bind(customer_keys.iter().map(|row| row.kind.as_str()).collect::<Vec<_>>())
    .bind(customer_keys.iter().map(|row| row.value.as_str()).collect::<Vec<_>>())
    .bind(customer_keys.iter().map(|row| row.lead_id.as_str()).collect::<Vec<_>>())
    .bind(customer_keys.iter().map(|row| row.created_at).collect::<Vec<_>>())
    .bind(bump)
    .fetch_optional(conn)
    .await
}

/// What the routing worker knows of the leads arriving in one transaction, in one round trip:
/// the owners of these phones and emails (`contacts`, for owner affinity), for the duplicate
/// policy the leads recorded under these customer keys (newest first, at most `limit`), and
/// the leads already stored under these external ids.
///
/// One prepared statement serves every batch. Each key is looked up on its own (`LATERAL`,
/// in primary-key order with a limit; the limit also keeps the planner from turning the
/// subquery into a join), so the only sensible plan is a probe of an index per key: the
/// generic plan PostgreSQL caches while the tables are nearly empty stays right as they grow,
/// with or without ANALYZE. (The `IN` lists this replaced were planned for every call, and
/// on a table growing faster than its statistics a list of a few hundred external ids was
/// planned as a scan of every lead: 4–11 ms a batch in the load test.) Within one key the
/// newest leads come first by id (ids are time-ordered), so a key with more than `limit`
/// leads is matched on its newest.
pub(crate) async fn recognise(conn: &mut Conn, wanted: &Recognise<'_>) -> sqlx::Result<Recognised> {
    let Recognise {
        phones,
        emails,
        keys,
        limit,
        external_ids,
        versions,
    } = *wanted;
    let empty = phones.is_empty() && emails.is_empty() && keys.is_empty();
    if empty && external_ids.is_empty() && !versions {
        return Ok(Recognised::default());
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
         SELECT 'external', '', wanted.value, found.id, CAST(0 AS BIGINT)
         FROM UNNEST($6::text[]) AS wanted (value)
         CROSS JOIN LATERAL (SELECT id FROM leads
             WHERE leads.external_id = wanted.value LIMIT 1) AS found
         UNION ALL
         SELECT * FROM (
             SELECT 'key', wanted.kind, wanted.value, found.lead_id, found.created_at
             FROM UNNEST($3::text[], $4::text[]) AS wanted (kind, value)
             CROSS JOIN LATERAL (SELECT lead_id, created_at FROM customer_keys
                 WHERE customer_keys.kind = wanted.kind AND customer_keys.value = wanted.value
                 ORDER BY kind DESC, value DESC, lead_id DESC LIMIT $5) AS found
             ORDER BY found.created_at DESC LIMIT $5) AS recorded
         UNION ALL
         SELECT source, '', '', '', version FROM (
             SELECT 'config' AS source, config_version AS version FROM workspace WHERE id = 1
             UNION ALL
             SELECT 'routing', routing_version FROM workspace WHERE id = 1) AS versions
         WHERE $7",
    )
    .bind(contact_kinds)
    .bind(contact_values)
    .bind(key_kinds)
    .bind(key_values)
    .bind(limit)
    .bind(external_ids)
    .bind(versions)
    .fetch_all(conn)
    .await?;
    Ok(recognised(rows))
}

/// Leads by id, in any order, in one prepared statement for any number of ids: a probe of the
/// primary key per id (`LATERAL … LIMIT 1`, as in `recognise`), whatever the table's
/// statistics say. An `IN` list was a new statement for each length, and on a table growing
/// faster than its statistics a list of a few hundred could be planned as a scan of every lead.
pub(crate) async fn leads_by_ids(conn: &mut Conn, ids: &[String]) -> sqlx::Result<Vec<LeadRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    // Each lead once, as an `IN` list answers.
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    sqlx::query_as(
        "SELECT found.* FROM UNNEST($1::text[]) AS wanted (id)
         CROSS JOIN LATERAL (SELECT * FROM leads WHERE leads.id = wanted.id LIMIT 1) AS found",
    )
    .bind(ids)
    .fetch_all(conn)
    .await
}
