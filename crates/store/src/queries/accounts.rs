// API keys, users, sessions and the audit log (included per backend, as `config.rs`).

pub(crate) async fn insert_api_key(conn: &mut Conn, row: &ApiKeyRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO api_keys (id, name, prefix, hash, role, created_at, user_id) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(row.id.clone())
    .bind(row.name.clone())
    .bind(row.prefix.clone())
    .bind(row.hash.clone())
    .bind(row.role.clone())
    .bind(row.created_at)
    .bind(row.user_id.clone())
    .execute(conn)
    .await
    .map(drop)
}

pub(crate) async fn list_api_keys(conn: &mut Conn) -> sqlx::Result<Vec<ApiKeyRow>> {
    sqlx::query_as("SELECT * FROM api_keys ORDER BY created_at, id")
        .fetch_all(conn)
        .await
}

pub(crate) async fn get_api_key(conn: &mut Conn, id: &str) -> sqlx::Result<Option<ApiKeyRow>> {
    sqlx::query_as("SELECT * FROM api_keys WHERE id = $1")
        .bind(id.to_owned())
        .fetch_optional(conn)
        .await
}

/// Revokes a key; false when it was unknown or revoked already.
pub(crate) async fn revoke_api_key(conn: &mut Conn, id: &str, at: i64) -> sqlx::Result<bool> {
    let done =
        sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id.to_owned())
            .bind(at)
            .execute(conn)
            .await?
            .rows_affected();
    Ok(done > 0)
}

/// Revokes every key a user made (the user was deactivated).
pub(crate) async fn revoke_user_keys(conn: &mut Conn, user_id: &str, at: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL")
        .bind(user_id.to_owned())
        .bind(at)
        .execute(conn)
        .await
        .map(drop)
}

pub(crate) async fn list_users(conn: &mut Conn) -> sqlx::Result<Vec<UserRow>> {
    sqlx::query_as("SELECT * FROM users ORDER BY username")
        .fetch_all(conn)
        .await
}

pub(crate) async fn get_user(conn: &mut Conn, id: &str) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as("SELECT * FROM users WHERE id = $1")
        .bind(id.to_owned())
        .fetch_optional(conn)
        .await
}

pub(crate) async fn user_by_name(conn: &mut Conn, username: &str) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as("SELECT * FROM users WHERE username = $1")
        .bind(username.to_owned())
        .fetch_optional(conn)
        .await
}

/// Writes a user under [`Write`]: `None` when the id or the username is taken, or the
/// version moved. A replacement leaves the sign-in failure count and lock alone: those belong
/// to sign-in's own atomic updates.
pub(crate) async fn write_user(
    conn: &mut Conn,
    row: &UserRow,
    write: Write,
    audit: &AuditRow,
) -> sqlx::Result<Option<i64>> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let version: Option<i64> = match write {
        Write::Create => {
            sqlx::query_scalar(
                "INSERT INTO users (id, username, display_name, role, rep_id, teams, password_hash, active, failed_logins, locked_until, created_at, updated_at, version)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, NULL, $9, $10, 1)
                 ON CONFLICT DO NOTHING RETURNING version",
            )
            .bind(row.id.clone())
            .bind(row.username.clone())
            .bind(row.display_name.clone())
            .bind(row.role.clone())
            .bind(row.rep_id.clone())
            .bind(row.teams.clone())
            .bind(row.password_hash.clone())
            .bind(row.active)
            .bind(row.created_at)
            .bind(row.updated_at)
            .fetch_optional(&mut *tx)
            .await?
        }
        Write::Replace { version } => {
            sqlx::query_scalar(
                "UPDATE users SET username = $2, display_name = $3, role = $4, rep_id = $5, teams = $6,
                     password_hash = $7, active = $8, updated_at = $9, version = version + 1
                 WHERE id = $1 AND version = $10 RETURNING version",
            )
            .bind(row.id.clone())
            .bind(row.username.clone())
            .bind(row.display_name.clone())
            .bind(row.role.clone())
            .bind(row.rep_id.clone())
            .bind(row.teams.clone())
            .bind(row.password_hash.clone())
            .bind(row.active)
            .bind(row.updated_at)
            .bind(version)
            .fetch_optional(&mut *tx)
            .await?
        }
    };
    if version.is_some() {
        insert_audit(&mut tx, audit).await?;
    }
    tx.commit().await?;
    Ok(version)
}

pub(crate) async fn upsert_user(conn: &mut Conn, row: &UserRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO users (id, username, display_name, role, rep_id, teams, password_hash, active, failed_logins, locked_until, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (id) DO UPDATE SET username = excluded.username, display_name = excluded.display_name,
             role = excluded.role, rep_id = excluded.rep_id, teams = excluded.teams,
             password_hash = excluded.password_hash, active = excluded.active,
             failed_logins = excluded.failed_logins, locked_until = excluded.locked_until,
             updated_at = excluded.updated_at, version = users.version + 1",
    )
    .bind(row.id.clone())
    .bind(row.username.clone())
    .bind(row.display_name.clone())
    .bind(row.role.clone())
    .bind(row.rep_id.clone())
    .bind(row.teams.clone())
    .bind(row.password_hash.clone())
    .bind(row.active)
    .bind(row.failed_logins)
    .bind(row.locked_until)
    .bind(row.created_at)
    .bind(row.updated_at)
    .execute(conn)
    .await
    .map(drop)
}

/// Counts a failed login in one statement, so instances cannot lose each other's counts, and
/// locks the account for `lock_micros` when the count reaches `limit`. Returns the row after.
pub(crate) async fn record_failed_login(
    conn: &mut Conn,
    user_id: &str,
    now: i64,
    limit: i64,
    lock_micros: i64,
) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(
        "UPDATE users SET failed_logins = failed_logins + 1,
             locked_until = CASE WHEN failed_logins + 1 >= $3 THEN $2 + $4 ELSE locked_until END
         WHERE id = $1 RETURNING *",
    )
    .bind(user_id.to_owned())
    .bind(now)
    .bind(limit)
    .bind(lock_micros)
    .fetch_optional(conn)
    .await
}

pub(crate) async fn reset_failed_logins(conn: &mut Conn, user_id: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1")
        .bind(user_id.to_owned())
        .execute(conn)
        .await
        .map(drop)
}

pub(crate) async fn insert_session(conn: &mut Conn, row: &SessionRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, last_seen_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(row.id_hash.clone())
    .bind(row.user_id.clone())
    .bind(row.csrf_token.clone())
    .bind(row.created_at)
    .bind(row.last_seen_at)
    .bind(row.expires_at)
    .execute(conn)
    .await
    .map(drop)
}

pub(crate) async fn get_session(
    conn: &mut Conn,
    id_hash: &str,
) -> sqlx::Result<Option<SessionRow>> {
    sqlx::query_as("SELECT * FROM sessions WHERE id_hash = $1")
        .bind(id_hash.to_owned())
        .fetch_optional(conn)
        .await
}

pub(crate) async fn touch_session(conn: &mut Conn, id_hash: &str, at: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id_hash = $1")
        .bind(id_hash.to_owned())
        .bind(at)
        .execute(conn)
        .await
        .map(drop)
}

pub(crate) async fn delete_session(conn: &mut Conn, id_hash: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
        .bind(id_hash.to_owned())
        .execute(conn)
        .await
        .map(drop)
}

pub(crate) async fn delete_user_sessions(conn: &mut Conn, user_id: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(user_id.to_owned())
        .execute(conn)
        .await
        .map(drop)
}

pub(crate) async fn insert_audit(conn: &mut Conn, row: &AuditRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (id, at, actor, action, target_kind, target_id, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(row.id.clone())
    .bind(row.at)
    .bind(row.actor.clone())
    .bind(row.action.clone())
    .bind(row.target_kind.clone())
    .bind(row.target_id.clone())
    .bind(row.detail.clone())
    .execute(conn)
    .await
    .map(drop)
}

/// The audit log, newest first.
pub(crate) async fn list_audit(
    conn: &mut Conn,
    before_id: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<AuditRow>> {
    let mut query: QueryBuilder<Db> = QueryBuilder::new("SELECT * FROM audit_log WHERE 1 = 1");
    if let Some(before) = before_id {
        query.push(" AND id < ").push_bind(before.to_owned());
    }
    query.push(" ORDER BY id DESC LIMIT ").push_bind(limit);
    query.build_query_as().fetch_all(conn).await
}

/// Who did `actions` to objects of `kind`, newest first: `(target id, actor)`.
pub(crate) async fn audit_actors(
    conn: &mut Conn,
    kind: &str,
    actions: &[&str],
) -> sqlx::Result<Vec<(String, String)>> {
    let mut query: QueryBuilder<Db> = QueryBuilder::new(
        "SELECT target_id, actor FROM audit_log WHERE target_id IS NOT NULL AND target_kind = ",
    );
    query.push_bind(kind.to_owned()).push(" AND action IN (");
    let mut separated = query.separated(", ");
    for action in actions {
        separated.push_bind((*action).to_owned());
    }
    query.push(") ORDER BY id DESC");
    query.build_query_as().fetch_all(conn).await
}

pub(crate) async fn find_api_key(conn: &mut Conn, hash: &str) -> sqlx::Result<Option<ApiKeyRow>> {
    sqlx::query_as("SELECT * FROM api_keys WHERE hash = $1 AND revoked_at IS NULL")
        .bind(hash.to_owned())
        .fetch_optional(conn)
        .await
}
