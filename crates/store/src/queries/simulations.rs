// History for replay, and simulation jobs (included per backend, as `config.rs`).

/// Leads that arrived in `[from, to)`, in arrival order, after `after` (`created_at`, `id`).
pub(crate) async fn leads_in_arrival_order(
    conn: &mut Conn,
    from: i64,
    to: i64,
    after: Option<(i64, String)>,
    limit: i64,
) -> sqlx::Result<Vec<LeadRow>> {
    let (at, id) = after.unwrap_or((i64::MIN, String::new()));
    sqlx::query_as(
        "SELECT * FROM leads WHERE created_at >= $1 AND created_at < $2
         AND (created_at > $3 OR (created_at = $3 AND id > $4))
         ORDER BY created_at, id LIMIT $5",
    )
    .bind(from)
    .bind(to)
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(conn)
    .await
}

pub(crate) async fn count_leads_arrived(conn: &mut Conn, from: i64, to: i64) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM leads WHERE created_at >= $1 AND created_at < $2")
        .bind(from)
        .bind(to)
        .fetch_one(conn)
        .await
}

/// Every recorded change of a rep's availability before `until`, oldest first.
pub(crate) async fn rep_status_changes(conn: &mut Conn, until: i64) -> sqlx::Result<Vec<AuditRow>> {
    sqlx::query_as(
        "SELECT * FROM audit_log WHERE target_kind = 'rep'
         AND action IN ('rep.status_changed', 'rep.changed') AND at < $1
         ORDER BY at, id",
    )
    .bind(until)
    .fetch_all(conn)
    .await
}

pub(crate) async fn insert_simulation(conn: &mut Conn, row: &SimulationRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO simulations (id, created_by, created_at, updated_at, status, done, total,
         cancel_requested, request, report, error)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(row.id.clone())
    .bind(row.created_by.clone())
    .bind(row.created_at)
    .bind(row.updated_at)
    .bind(row.status.clone())
    .bind(row.done)
    .bind(row.total)
    .bind(row.cancel_requested)
    .bind(row.request.clone())
    .bind(row.report.clone())
    .bind(row.error.clone())
    .execute(conn)
    .await
    .map(|_| ())
}

pub(crate) async fn get_simulation(
    conn: &mut Conn,
    id: &str,
) -> sqlx::Result<Option<SimulationRow>> {
    sqlx::query_as("SELECT * FROM simulations WHERE id = $1")
        .bind(id.to_owned())
        .fetch_optional(conn)
        .await
}

/// The newest simulations, without their reports.
pub(crate) async fn list_simulations(
    conn: &mut Conn,
    limit: i64,
) -> sqlx::Result<Vec<SimulationRow>> {
    sqlx::query_as(
        "SELECT id, created_by, created_at, updated_at, status, done, total, cancel_requested,
         request, NULL AS report, error FROM simulations ORDER BY created_at DESC, id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Records progress of a running simulation; whether a cancel was asked for.
pub(crate) async fn simulation_progress(
    conn: &mut Conn,
    id: &str,
    status: &str,
    done: i64,
    total: i64,
    at: i64,
) -> sqlx::Result<bool> {
    let cancel: Option<bool> = sqlx::query_scalar(
        "UPDATE simulations SET status = $2, done = $3, total = $4, updated_at = $5
         WHERE id = $1 AND status IN ('queued', 'running') RETURNING cancel_requested",
    )
    .bind(id.to_owned())
    .bind(status.to_owned())
    .bind(done)
    .bind(total)
    .bind(at)
    .fetch_optional(conn)
    .await?;
    Ok(cancel.unwrap_or(true))
}

/// Ends a simulation: `done` with its report, `failed` with an error, or `cancelled` —
/// which it is whenever a cancel was asked for, so a cancel that was answered always holds.
pub(crate) async fn finish_simulation(
    conn: &mut Conn,
    id: &str,
    status: &str,
    report: Option<&str>,
    error: Option<&str>,
    at: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE simulations SET
         status = CASE WHEN cancel_requested THEN 'cancelled' ELSE $2 END,
         report = CASE WHEN cancel_requested THEN NULL ELSE $3 END,
         error = $4, updated_at = $5
         WHERE id = $1 AND status IN ('queued', 'running')",
    )
    .bind(id.to_owned())
    .bind(status.to_owned())
    .bind(report.map(str::to_owned))
    .bind(error.map(str::to_owned))
    .bind(at)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Asks a queued or running simulation to stop; whether it was still going.
pub(crate) async fn cancel_simulation(conn: &mut Conn, id: &str, at: i64) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "UPDATE simulations SET cancel_requested = TRUE, updated_at = $2
         WHERE id = $1 AND status IN ('queued', 'running')",
    )
    .bind(id.to_owned())
    .bind(at)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() > 0)
}
