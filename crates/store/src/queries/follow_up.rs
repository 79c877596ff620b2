// Timers, the outbox, claims, outcome statistics and routing state (included per backend,
// as `config.rs`).

/// Deletes the rows whose `column` is one of `values`, a few hundred at a time.
async fn delete_where_in(
    conn: &mut Conn,
    table: &'static str,
    column: &'static str,
    values: &[String],
) -> sqlx::Result<()> {
    execute_where_in(conn, values, |query| {
        query.push(format!("DELETE FROM {table} WHERE {column}"));
    })
    .await
}

/// Runs the statement `head` starts, ending in `IN (values…)`, a few hundred values at a time.
async fn execute_where_in(
    conn: &mut Conn,
    values: &[String],
    head: impl Fn(&mut QueryBuilder<Db>),
) -> sqlx::Result<()> {
    for chunk in values.chunks(500) {
        let mut query: QueryBuilder<Db> = QueryBuilder::new("");
        head(&mut query);
        query.push(" IN (");
        let mut separated = query.separated(", ");
        for value in chunk {
            separated.push_bind(value.clone());
        }
        query.push(")");
        query.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// One statement per chunk of `size` rows, each written by `push`.
async fn execute_chunks<T>(
    conn: &mut Conn,
    rows: &[T],
    size: usize,
    push: fn(&mut QueryBuilder<Db>, &[T]),
) -> sqlx::Result<()> {
    for chunk in rows.chunks(size) {
        let mut query: QueryBuilder<Db> = QueryBuilder::new("");
        push(&mut query, chunk);
        query.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Drops every timer of these leads: their clocks are being set again.
pub(crate) async fn delete_timers_of(conn: &mut Conn, lead_ids: &[String]) -> sqlx::Result<()> {
    delete_where_in(conn, "timers", "lead_id", lead_ids).await
}

pub(crate) async fn delete_timers(conn: &mut Conn, ids: &[String]) -> sqlx::Result<()> {
    delete_where_in(conn, "timers", "id", ids).await
}

/// Notes that the SLA clock reminded or escalated about these leads at `at`: one narrow
/// statement per few hundred leads, not a rewrite of each.
pub(crate) async fn mark_sla_missed(
    conn: &mut Conn,
    leads: &[(String, String)],
    at: i64,
) -> sqlx::Result<()> {
    for chunk in leads.chunks(500) {
        let mut query: QueryBuilder<Db> = QueryBuilder::new("WITH missed (id, missed_by) AS (");
        query.push_values(chunk, |mut values, (id, missed_by)| {
            values.push_bind(id.clone()).push_bind(missed_by.clone());
        });
        query
            .push(") UPDATE leads SET sla_missed_at = ")
            .push_bind(at)
            .push(", missed_by = missed.missed_by FROM missed WHERE leads.id = missed.id");
        query.build().execute(&mut *conn).await?;
    }
    Ok(())
}

pub(crate) async fn insert_timers(conn: &mut Conn, rows: &[TimerRow]) -> sqlx::Result<()> {
    execute_chunks(conn, rows, TIMER_CHUNK, push_timers).await
}

const TIMER_CHUNK: usize = 500;

/// `INSERT INTO timers …` for `rows`.
fn push_timers(query: &mut QueryBuilder<Db>, rows: &[TimerRow]) {
    query.push("INSERT INTO timers (id, lead_id, kind, step, owner_id, due_at, created_at) ");
    query.push_values(rows, |mut values, row| {
        values
            .push_bind(row.id.clone())
            .push_bind(row.lead_id.clone())
            .push_bind(row.kind.clone())
            .push_bind(row.step)
            .push_bind(row.owner_id.clone())
            .push_bind(row.due_at)
            .push_bind(row.created_at);
    });
}

/// Due timers, earliest first. On PostgreSQL the rows are locked, skipping rows another
/// transaction holds, so two instances ticking at once never fire the same timer.
pub(crate) async fn due_timers(
    conn: &mut Conn,
    now: i64,
    limit: i64,
) -> sqlx::Result<Vec<TimerRow>> {
    let statement = if IS_POSTGRES {
        "SELECT * FROM timers WHERE due_at <= $1 ORDER BY due_at, id LIMIT $2 FOR UPDATE SKIP LOCKED"
    } else {
        "SELECT * FROM timers WHERE due_at <= $1 ORDER BY due_at, id LIMIT $2"
    };
    sqlx::query_as(statement)
        .bind(now)
        .bind(limit)
        .fetch_all(conn)
        .await
}

/// When the next timer falls due, if any: one index lookup, so an idle tick costs nothing.
pub(crate) async fn next_due(conn: &mut Conn) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar("SELECT MIN(due_at) FROM timers")
        .fetch_one(conn)
        .await
}

pub(crate) async fn timers_for(conn: &mut Conn, lead_id: &str) -> sqlx::Result<Vec<TimerRow>> {
    sqlx::query_as("SELECT * FROM timers WHERE lead_id = $1 ORDER BY due_at, id")
        .bind(lead_id.to_owned())
        .fetch_all(conn)
        .await
}

pub(crate) async fn insert_outbox(conn: &mut Conn, rows: &[OutboxRow]) -> sqlx::Result<()> {
    execute_chunks(conn, rows, OUTBOX_CHUNK, push_outbox).await
}

const OUTBOX_CHUNK: usize = 500;

/// `INSERT INTO outbox …` for `rows`.
fn push_outbox(query: &mut QueryBuilder<Db>, rows: &[OutboxRow]) {
    query.push(
        "INSERT INTO outbox (id, event, lead_id, rep_id, recipients, payload, created_at, status) ",
    );
    query.push_values(rows, |mut values, row| {
        values
            .push_bind(row.id.clone())
            .push_bind(row.event.clone())
            .push_bind(row.lead_id.clone())
            .push_bind(row.rep_id.clone())
            .push_bind(row.recipients.clone())
            .push_bind(row.payload.clone())
            .push_bind(row.created_at)
            .push_bind(row.status.clone());
    });
}

pub(crate) async fn list_outbox(
    conn: &mut Conn,
    filter: &EventFilter,
) -> sqlx::Result<Vec<OutboxRow>> {
    let mut query: QueryBuilder<Db> = QueryBuilder::new("SELECT * FROM outbox WHERE 1 = 1");
    if let Some(lead) = &filter.lead_id {
        query.push(" AND lead_id = ").push_bind(lead.clone());
    }
    if let Some(event) = &filter.event {
        query.push(" AND event = ").push_bind(event.clone());
    }
    if let Some(after) = &filter.after_id {
        query.push(" AND id > ").push_bind(after.clone());
    }
    query.push(" ORDER BY id LIMIT ").push_bind(filter.limit);
    query.build_query_as().fetch_all(conn).await
}

/// Claims the rep made since `since`.
pub(crate) async fn claims_since(conn: &mut Conn, rep_id: &str, since: i64) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM decisions WHERE kind = 'claim' AND owner_id = $1 AND created_at >= $2",
    )
    .bind(rep_id.to_owned())
    .bind(since)
    .fetch_one(conn)
    .await
}

pub(crate) async fn claim_block(
    conn: &mut Conn,
    lead_id: &str,
    rep_id: &str,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar("SELECT blocked_until FROM claim_blocks WHERE lead_id = $1 AND rep_id = $2")
        .bind(lead_id.to_owned())
        .bind(rep_id.to_owned())
        .fetch_optional(conn)
        .await
}

/// Records that these reps cannot claim these leads back before the given time:
/// `(lead_id, rep_id, until)`.
pub(crate) async fn upsert_claim_blocks(
    conn: &mut Conn,
    rows: &[(String, String, i64)],
) -> sqlx::Result<()> {
    for chunk in rows.chunks(500) {
        let mut query: QueryBuilder<Db> =
            QueryBuilder::new("INSERT INTO claim_blocks (lead_id, rep_id, blocked_until) ");
        query.push_values(chunk, |mut values, (lead, rep, until)| {
            values
                .push_bind(lead.clone())
                .push_bind(rep.clone())
                .push_bind(*until);
        });
        query.push(
            " ON CONFLICT (lead_id, rep_id) DO UPDATE SET blocked_until = excluded.blocked_until",
        );
        query.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// How an insert into `outcome_stats` adds to a row already there (`add_stats`,
/// `insert_routed`).
macro_rules! stats_on_conflict {
    () => {
        " ON CONFLICT (dimension, key) DO UPDATE SET
                 assigned = outcome_stats.assigned + excluded.assigned,
                 responded = outcome_stats.responded + excluded.responded,
                 response_secs = outcome_stats.response_secs + excluded.response_secs,
                 won = outcome_stats.won + excluded.won,
                 lost = outcome_stats.lost + excluded.lost,
                 invalid = outcome_stats.invalid + excluded.invalid,
                 amount = outcome_stats.amount + excluded.amount,
                 feedback_count = outcome_stats.feedback_count + excluded.feedback_count,
                 feedback_sum = outcome_stats.feedback_sum + excluded.feedback_sum"
    };
}

/// How an insert into `rep_state` replaces a rep's row (`upsert_rep_states`, `insert_routed`).
macro_rules! rep_state_on_conflict {
    () => {
        " ON CONFLICT (rep_id) DO UPDATE SET open_leads = excluded.open_leads,
                 day_start = excluded.day_start, day_count = excluded.day_count,
                 week_start = excluded.week_start, week_count = excluded.week_count,
                 month_start = excluded.month_start, month_count = excluded.month_count,
                 last_assigned_at = excluded.last_assigned_at"
    };
}

/// Adds to outcome statistics: `((dimension, key), delta)`.
pub(crate) async fn add_stats(
    conn: &mut Conn,
    rows: &[((String, String), StatsDelta)],
) -> sqlx::Result<()> {
    execute_chunks(conn, rows, STATS_CHUNK, push_stats).await
}

const STATS_CHUNK: usize = 300;

/// The upsert adding `rows` to outcome statistics.
fn push_stats(query: &mut QueryBuilder<Db>, rows: &[((String, String), StatsDelta)]) {
    query.push(
        "INSERT INTO outcome_stats (dimension, key, assigned, responded, response_secs, won, lost, invalid, amount, feedback_count, feedback_sum) ",
    );
    query.push_values(rows, |mut values, ((dimension, key), delta)| {
        values
            .push_bind(dimension.clone())
            .push_bind(key.clone())
            .push_bind(delta.assigned)
            .push_bind(delta.responded)
            .push_bind(delta.response_secs)
            .push_bind(delta.won)
            .push_bind(delta.lost)
            .push_bind(delta.invalid)
            .push_bind(delta.amount)
            .push_bind(delta.feedback_count)
            .push_bind(delta.feedback_sum);
    });
    query.push(stats_on_conflict!());
}

pub(crate) async fn list_stats(conn: &mut Conn, dimension: &str) -> sqlx::Result<Vec<StatsRow>> {
    sqlx::query_as("SELECT * FROM outcome_stats WHERE dimension = $1 ORDER BY key")
        .bind(dimension.to_owned())
        .fetch_all(conn)
        .await
}

pub(crate) async fn upsert_rep_states(conn: &mut Conn, rows: &[RepStateRow]) -> sqlx::Result<()> {
    execute_chunks(conn, rows, STATE_CHUNK, push_rep_states).await
}

const STATE_CHUNK: usize = 500;

/// The upsert replacing each rep's row of `rows`.
fn push_rep_states(query: &mut QueryBuilder<Db>, rows: &[RepStateRow]) {
    query.push(
        "INSERT INTO rep_state (rep_id, open_leads, day_start, day_count, week_start, week_count, month_start, month_count, last_assigned_at) ",
    );
    query.push_values(rows, |mut values, row| {
        values
            .push_bind(row.rep_id.clone())
            .push_bind(row.open_leads)
            .push_bind(row.day_start.clone())
            .push_bind(row.day_count)
            .push_bind(row.week_start.clone())
            .push_bind(row.week_count)
            .push_bind(row.month_start.clone())
            .push_bind(row.month_count)
            .push_bind(row.last_assigned_at);
    });
    query.push(rep_state_on_conflict!());
}

pub(crate) async fn upsert_rotations(conn: &mut Conn, rows: &[RotationRow]) -> sqlx::Result<()> {
    execute_chunks(conn, rows, STATE_CHUNK, push_rotations).await
}

/// The upsert replacing each rotation of `rows`.
fn push_rotations(query: &mut QueryBuilder<Db>, rows: &[RotationRow]) {
    query.push("INSERT INTO rotations (key, state) ");
    query.push_values(rows, |mut values, row| {
        values
            .push_bind(row.key.clone())
            .push_bind(row.state.clone());
    });
    query.push(" ON CONFLICT (key) DO UPDATE SET state = excluded.state");
}

/// Open leads per owner, counted from the leads themselves: the truth the counters follow.
pub(crate) async fn count_open_leads(conn: &mut Conn) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as(
        "SELECT owner_id, COUNT(*) FROM leads WHERE owner_id IS NOT NULL
             AND status IN ('new', 'assigned', 'contacted', 'qualified') GROUP BY owner_id",
    )
    .fetch_all(conn)
    .await
}

/// Outbox events not yet fanned out to channels, oldest first; locked on PostgreSQL, skipping
/// rows another instance holds.
pub(crate) async fn pending_events(conn: &mut Conn, limit: i64) -> sqlx::Result<Vec<OutboxRow>> {
    let statement = if IS_POSTGRES {
        "SELECT * FROM outbox WHERE status = 'pending' ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED"
    } else {
        "SELECT * FROM outbox WHERE status = 'pending' ORDER BY id LIMIT $1"
    };
    sqlx::query_as(statement).bind(limit).fetch_all(conn).await
}

pub(crate) async fn mark_dispatched(conn: &mut Conn, ids: &[String]) -> sqlx::Result<()> {
    for chunk in ids.chunks(500) {
        let mut query: QueryBuilder<Db> =
            QueryBuilder::new("UPDATE outbox SET status = 'dispatched' WHERE id IN (");
        let mut separated = query.separated(", ");
        for id in chunk {
            separated.push_bind(id.clone());
        }
        query.push(")");
        query.build().execute(&mut *conn).await?;
    }
    Ok(())
}

pub(crate) async fn insert_deliveries(conn: &mut Conn, rows: &[DeliveryRow]) -> sqlx::Result<()> {
    for chunk in rows.chunks(500) {
        let mut query: QueryBuilder<Db> = QueryBuilder::new(
            "INSERT INTO deliveries (id, event_id, channel_id, event, status, attempts, next_attempt_at, locked_until, last_error, created_at, sent_at, answer) ",
        );
        query.push_values(chunk, |mut values, row| {
            values
                .push_bind(row.id.clone())
                .push_bind(row.event_id.clone())
                .push_bind(row.channel_id.clone())
                .push_bind(row.event.clone())
                .push_bind(row.status.clone())
                .push_bind(row.attempts)
                .push_bind(row.next_attempt_at)
                .push_bind(row.locked_until)
                .push_bind(row.last_error.clone())
                .push_bind(row.created_at)
                .push_bind(row.sent_at)
                .push_bind(row.answer.clone());
        });
        query.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Takes due deliveries for one sender until `lease_until`. A sender that dies holding some
/// loses them when the lease runs out, and another sends them again: at least once.
pub(crate) async fn claim_deliveries(
    conn: &mut Conn,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> sqlx::Result<Vec<DeliveryRow>> {
    let statement = if IS_POSTGRES {
        "UPDATE deliveries SET locked_until = $2 WHERE id IN (
             SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= $1
                 AND (locked_until IS NULL OR locked_until <= $1)
             ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED)
         RETURNING *"
    } else {
        "UPDATE deliveries SET locked_until = $2 WHERE id IN (
             SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= $1
                 AND (locked_until IS NULL OR locked_until <= $1)
             ORDER BY next_attempt_at, id LIMIT $3)
         RETURNING *"
    };
    sqlx::query_as(statement)
        .bind(now)
        .bind(lease_until)
        .bind(limit)
        .fetch_all(conn)
        .await
}

/// Records how a delivery attempt went and lets go of it.
pub(crate) async fn finish_delivery(conn: &mut Conn, row: &DeliveryRow) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE deliveries SET status = $2, attempts = $3, next_attempt_at = $4, locked_until = NULL,
             last_error = $5, sent_at = $6, answer = $7
         WHERE id = $1",
    )
    .bind(row.id.clone())
    .bind(row.status.clone())
    .bind(row.attempts)
    .bind(row.next_attempt_at)
    .bind(row.last_error.clone())
    .bind(row.sent_at)
    .bind(row.answer.clone())
    .execute(conn)
    .await
    .map(drop)
}

/// Marks a channel as needing attention, with the event that says so, unless it already is;
/// true when this call marked it.
pub(crate) async fn set_channel_attention(
    conn: &mut Conn,
    row: &ChannelAttentionRow,
    event: &OutboxRow,
) -> sqlx::Result<bool> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let marked = sqlx::query(
        "INSERT INTO channel_attention (channel_id, reason, since) VALUES ($1, $2, $3)
         ON CONFLICT (channel_id) DO NOTHING",
    )
    .bind(row.channel_id.clone())
    .bind(row.reason.clone())
    .bind(row.since)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if marked {
        insert_outbox(&mut tx, std::slice::from_ref(event)).await?;
    }
    tx.commit().await?;
    Ok(marked)
}

/// Records the digest a channel gets at `slot` with its events, in one transaction; false when
/// it was already sent (by this or another instance), and then nothing is written.
pub(crate) async fn record_digest(
    conn: &mut Conn,
    channel_id: &str,
    slot: i64,
    now: i64,
    events: &[OutboxRow],
) -> sqlx::Result<bool> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let fresh = sqlx::query(
        "INSERT INTO digest_runs (channel_id, slot, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (channel_id, slot) DO NOTHING",
    )
    .bind(channel_id.to_owned())
    .bind(slot)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if fresh {
        insert_outbox(&mut tx, events).await?;
    }
    tx.commit().await?;
    Ok(fresh)
}

/// Clears a channel's attention mark and makes its waiting deliveries due at `now`.
pub(crate) async fn clear_channel_attention(
    conn: &mut Conn,
    channel_id: &str,
    now: i64,
) -> sqlx::Result<()> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let cleared = sqlx::query("DELETE FROM channel_attention WHERE channel_id = $1")
        .bind(channel_id.to_owned())
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if cleared > 0 {
        sqlx::query(
            "UPDATE deliveries SET next_attempt_at = $2
             WHERE channel_id = $1 AND status = 'pending' AND next_attempt_at > $2",
        )
        .bind(channel_id.to_owned())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

pub(crate) async fn channel_attention(conn: &mut Conn) -> sqlx::Result<Vec<ChannelAttentionRow>> {
    sqlx::query_as("SELECT * FROM channel_attention ORDER BY channel_id")
        .fetch_all(conn)
        .await
}

pub(crate) async fn get_delivery(conn: &mut Conn, id: &str) -> sqlx::Result<Option<DeliveryRow>> {
    sqlx::query_as("SELECT * FROM deliveries WHERE id = $1")
        .bind(id.to_owned())
        .fetch_optional(conn)
        .await
}

pub(crate) async fn list_deliveries(
    conn: &mut Conn,
    filter: &DeliveryFilter,
) -> sqlx::Result<Vec<DeliveryRow>> {
    let mut query: QueryBuilder<Db> = QueryBuilder::new("SELECT * FROM deliveries WHERE 1 = 1");
    if let Some(status) = &filter.status {
        query.push(" AND status = ").push_bind(status.clone());
    }
    if let Some(channel) = &filter.channel_id {
        query.push(" AND channel_id = ").push_bind(channel.clone());
    }
    if let Some(event) = &filter.event_id {
        query.push(" AND event_id = ").push_bind(event.clone());
    }
    if let Some(before) = &filter.before_id {
        query.push(" AND id < ").push_bind(before.clone());
    }
    query
        .push(" ORDER BY id DESC LIMIT ")
        .push_bind(filter.limit);
    query.build_query_as().fetch_all(conn).await
}

pub(crate) async fn get_event(conn: &mut Conn, id: &str) -> sqlx::Result<Option<OutboxRow>> {
    sqlx::query_as("SELECT * FROM outbox WHERE id = $1")
        .bind(id.to_owned())
        .fetch_optional(conn)
        .await
}

/// Takes one send from the channel's allowance in the fixed window starting at `window_start`;
/// false when the window's `limit` is spent. One statement, so instances cannot both take the
/// last send.
pub(crate) async fn reserve_send(
    conn: &mut Conn,
    channel_id: &str,
    window_secs: i64,
    window_start: i64,
    limit: i64,
) -> sqlx::Result<bool> {
    let taken: Option<i64> = sqlx::query_scalar(
        "INSERT INTO rate_windows (channel_id, window_secs, window_start, sent) VALUES ($1, $2, $3, 1)
         ON CONFLICT (channel_id, window_secs) DO UPDATE SET
             sent = CASE WHEN rate_windows.window_start = excluded.window_start
                         THEN rate_windows.sent + 1 ELSE 1 END,
             window_start = excluded.window_start
         WHERE rate_windows.window_start <> excluded.window_start OR rate_windows.sent < $4
         RETURNING sent",
    )
    .bind(channel_id.to_owned())
    .bind(window_secs)
    .bind(window_start)
    .bind(limit)
    .fetch_optional(conn)
    .await?;
    Ok(taken.is_some())
}

pub(crate) async fn insert_intake_log(conn: &mut Conn, row: &IntakeLogRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO intake_log (id, source_id, delivery_id, outcome, reason, lead_id, received_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(row.id.clone())
    .bind(row.source_id.clone())
    .bind(row.delivery_id.clone())
    .bind(row.outcome.clone())
    .bind(row.reason.clone())
    .bind(row.lead_id.clone())
    .bind(row.received_at)
    .execute(conn)
    .await
    .map(drop)
}

/// A source's log, newest first.
pub(crate) async fn intake_log(
    conn: &mut Conn,
    source_id: &str,
    before_id: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<IntakeLogRow>> {
    let mut query: QueryBuilder<Db> =
        QueryBuilder::new("SELECT * FROM intake_log WHERE source_id = ");
    query.push_bind(source_id.to_owned());
    if let Some(before) = before_id {
        query.push(" AND id < ").push_bind(before.to_owned());
    }
    query.push(" ORDER BY id DESC LIMIT ").push_bind(limit);
    query.build_query_as().fetch_all(conn).await
}
