// Learned conversion models (included per backend, as `config.rs`).

/// Inserts a model under the next version; a concurrent insert that took it makes this fail
/// with a unique violation, which the caller retries.
pub(crate) async fn insert_model(conn: &mut Conn, row: &ModelRow) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO models (version, status, source, created_by, created_at, updated_at, request,
         spec, evaluation, error, published_at)
         SELECT COALESCE(MAX(version), 0) + 1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 FROM models
         RETURNING version",
    )
    .bind(row.status.clone())
    .bind(row.source.clone())
    .bind(row.created_by.clone())
    .bind(row.created_at)
    .bind(row.updated_at)
    .bind(row.request.clone())
    .bind(row.spec.clone())
    .bind(row.evaluation.clone())
    .bind(row.error.clone())
    .bind(row.published_at)
    .fetch_one(conn)
    .await
}

pub(crate) async fn get_model(conn: &mut Conn, version: i64) -> sqlx::Result<Option<ModelRow>> {
    sqlx::query_as("SELECT * FROM models WHERE version = $1")
        .bind(version)
        .fetch_optional(conn)
        .await
}

/// The newest models first, without their weights.
pub(crate) async fn list_models(conn: &mut Conn, limit: i64) -> sqlx::Result<Vec<ModelRow>> {
    sqlx::query_as(
        "SELECT version, status, source, created_by, created_at, updated_at, request,
         NULL AS spec, evaluation, error, published_at
         FROM models ORDER BY version DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(conn)
    .await
}

pub(crate) async fn active_model(conn: &mut Conn) -> sqlx::Result<Option<ModelRow>> {
    sqlx::query_as("SELECT * FROM models WHERE status = 'active' ORDER BY version DESC LIMIT 1")
        .fetch_optional(conn)
        .await
}

/// Records a training's result; only a model still training is changed.
pub(crate) async fn finish_model(conn: &mut Conn, row: &ModelRow) -> sqlx::Result<bool> {
    sqlx::query(
        "UPDATE models SET status = $2, spec = $3, evaluation = $4, error = $5, updated_at = $6
         WHERE version = $1 AND status = 'training'",
    )
    .bind(row.version)
    .bind(row.status.clone())
    .bind(row.spec.clone())
    .bind(row.evaluation.clone())
    .bind(row.error.clone())
    .bind(row.updated_at)
    .execute(conn)
    .await
    .map(|done| done.rows_affected() == 1)
}

/// Makes a trained model the active one; the one it replaces, if any. The workspace row
/// first, as for rule sets: publications happen one after another, and routing reloads.
pub(crate) async fn publish_model(
    conn: &mut Conn,
    version: i64,
    now: i64,
) -> sqlx::Result<Option<i64>> {
    bump_config(&mut *conn).await?;
    let previous: Option<i64> = sqlx::query_scalar(
        "SELECT version FROM models WHERE status = 'active' ORDER BY version DESC LIMIT 1",
    )
    .fetch_optional(&mut *conn)
    .await?;
    sqlx::query("UPDATE models SET status = 'retired' WHERE status = 'active'")
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE models SET status = 'active', published_at = $2 WHERE version = $1")
        .bind(version)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(previous)
}

/// Closed leads (won or lost) in arrival order, after `after` (`created_at`, `id`).
pub(crate) async fn closed_leads(
    conn: &mut Conn,
    after: Option<(i64, String)>,
    limit: i64,
) -> sqlx::Result<Vec<LeadRow>> {
    let (at, id) = after.unwrap_or((i64::MIN, String::new()));
    sqlx::query_as(
        "SELECT * FROM leads WHERE status IN ('won', 'lost')
         AND (created_at > $1 OR (created_at = $1 AND id > $2))
         ORDER BY created_at, id LIMIT $3",
    )
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(conn)
    .await
}

pub(crate) async fn model_schedule(conn: &mut Conn) -> sqlx::Result<ModelScheduleRow> {
    sqlx::query_as(
        "SELECT document, next_at, last_at, last_result, updated_by, updated_at
         FROM model_schedule WHERE id = 1",
    )
    .fetch_one(conn)
    .await
}

pub(crate) async fn set_model_schedule(
    conn: &mut Conn,
    row: &ModelScheduleRow,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE model_schedule SET document = $1, next_at = $2, updated_by = $3, updated_at = $4
         WHERE id = 1",
    )
    .bind(row.document.clone())
    .bind(row.next_at)
    .bind(row.updated_by.clone())
    .bind(row.updated_at)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Takes the scheduled run due at `due` by moving the schedule to `next`; whether this caller
/// got it (another instance, or a changed setting, may have moved it first).
pub(crate) async fn claim_model_schedule(
    conn: &mut Conn,
    due: i64,
    next: i64,
    now: i64,
) -> sqlx::Result<bool> {
    sqlx::query(
        "UPDATE model_schedule SET next_at = $2, last_at = $3, last_result = NULL
         WHERE id = 1 AND next_at = $1",
    )
    .bind(due)
    .bind(next)
    .bind(now)
    .execute(conn)
    .await
    .map(|done| done.rows_affected() == 1)
}

pub(crate) async fn record_model_schedule(conn: &mut Conn, result: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE model_schedule SET last_result = $1 WHERE id = 1")
        .bind(result.to_owned())
        .execute(conn)
        .await
        .map(|_| ())
}
