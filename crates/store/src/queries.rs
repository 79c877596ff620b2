// The SQL of every store operation, written once and compiled for each backend: this file is
// included by `sqlite.rs` and `postgres.rs`, which define `Db` and `IS_POSTGRES`.

use sqlx::QueryBuilder;

use crate::rows::*;

type Conn = <Db as sqlx::Database>::Connection;
pub(crate) type Tx = sqlx::Transaction<'static, Db>;

pub(crate) async fn versions(conn: &mut Conn) -> sqlx::Result<(i64, i64)> {
    sqlx::query_as("SELECT config_version, routing_version FROM workspace WHERE id = 1")
        .fetch_one(conn)
        .await
}

pub(crate) async fn bump_config(conn: &mut Conn) -> sqlx::Result<()> {
    sqlx::query("UPDATE workspace SET config_version = config_version + 1 WHERE id = 1")
        .execute(conn)
        .await
        .map(drop)
}

pub(crate) async fn bump_routing(conn: &mut Conn) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "UPDATE workspace SET routing_version = routing_version + 1 WHERE id = 1 RETURNING routing_version",
    )
    .fetch_one(conn)
    .await
}

/// Serialises routing across instances. SQLite already holds the write lock from
/// `BEGIN IMMEDIATE`; PostgreSQL takes a transaction-scoped advisory lock.
pub(crate) async fn lock_routing(conn: &mut Conn) -> sqlx::Result<()> {
    if IS_POSTGRES {
        sqlx::query("SELECT pg_advisory_xact_lock(727374)")
            .execute(conn)
            .await
            .map(drop)
    } else {
        Ok(())
    }
}

pub(crate) async fn list_reps(conn: &mut Conn) -> sqlx::Result<Vec<RepRow>> {
    sqlx::query_as("SELECT * FROM reps ORDER BY id")
        .fetch_all(conn)
        .await
}

pub(crate) async fn get_rep(conn: &mut Conn, id: &str) -> sqlx::Result<Option<RepRow>> {
    sqlx::query_as("SELECT * FROM reps WHERE id = $1")
        .bind(id.to_owned())
        .fetch_optional(conn)
        .await
}

pub(crate) async fn upsert_rep(conn: &mut Conn, row: &RepRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO reps (id, name, status, document, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, status = excluded.status,
             document = excluded.document, updated_at = excluded.updated_at, version = reps.version + 1",
    )
    .bind(row.id.clone())
    .bind(row.name.clone())
    .bind(row.status.clone())
    .bind(row.document.clone())
    .bind(row.created_at)
    .bind(row.updated_at)
    .execute(&mut *conn)
    .await?;
    bump_config(conn).await
}

/// Writes a rep under [`Write`]; the new version, or `None` when the id was taken or the
/// version moved.
pub(crate) async fn write_rep(
    conn: &mut Conn,
    row: &RepRow,
    write: Write,
    audit: &AuditRow,
) -> sqlx::Result<Option<i64>> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let statement = match write {
        Write::Create => {
            "INSERT INTO reps (id, name, status, document, created_at, updated_at, version)
             VALUES ($1, $2, $3, $4, $5, $6, 1) ON CONFLICT DO NOTHING RETURNING version"
        }
        Write::Replace { .. } => {
            "UPDATE reps SET name = $2, status = $3, document = $4, updated_at = $6, version = version + 1
             WHERE id = $1 AND version = $7 AND $5 = $5 RETURNING version"
        }
    };
    let version = sqlx::query_scalar(statement)
        .bind(row.id.clone())
        .bind(row.name.clone())
        .bind(row.status.clone())
        .bind(row.document.clone())
        .bind(row.created_at)
        .bind(row.updated_at)
        .bind(expected(write))
        .fetch_optional(&mut *tx)
        .await?;
    if version.is_some() {
        bump_config(&mut tx).await?;
        insert_audit(&mut tx, audit).await?;
    }
    tx.commit().await?;
    Ok(version)
}

/// The version a replacement expects (a create binds an unused value).
fn expected(write: Write) -> i64 {
    match write {
        Write::Create => 0,
        Write::Replace { version } => version,
    }
}

pub(crate) async fn delete_rep(conn: &mut Conn, id: &str, audit: &AuditRow) -> sqlx::Result<bool> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let deleted = sqlx::query("DELETE FROM reps WHERE id = $1")
        .bind(id.to_owned())
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if deleted > 0 {
        bump_config(&mut tx).await?;
        insert_audit(&mut tx, audit).await?;
    }
    tx.commit().await?;
    Ok(deleted > 0)
}

pub(crate) async fn list_teams(conn: &mut Conn) -> sqlx::Result<Vec<TeamRow>> {
    sqlx::query_as("SELECT * FROM teams ORDER BY id")
        .fetch_all(conn)
        .await
}

pub(crate) async fn get_team(conn: &mut Conn, id: &str) -> sqlx::Result<Option<TeamRow>> {
    sqlx::query_as("SELECT * FROM teams WHERE id = $1")
        .bind(id.to_owned())
        .fetch_optional(conn)
        .await
}

pub(crate) async fn upsert_team(conn: &mut Conn, row: &TeamRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO teams (id, name, document, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, document = excluded.document,
             updated_at = excluded.updated_at, version = teams.version + 1",
    )
    .bind(row.id.clone())
    .bind(row.name.clone())
    .bind(row.document.clone())
    .bind(row.created_at)
    .bind(row.updated_at)
    .execute(&mut *conn)
    .await?;
    bump_config(conn).await
}

/// Writes a team under [`Write`], as [`write_rep`].
pub(crate) async fn write_team(
    conn: &mut Conn,
    row: &TeamRow,
    write: Write,
    audit: &AuditRow,
) -> sqlx::Result<Option<i64>> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let statement = match write {
        Write::Create => {
            "INSERT INTO teams (id, name, document, created_at, updated_at, version)
             VALUES ($1, $2, $3, $4, $5, 1) ON CONFLICT DO NOTHING RETURNING version"
        }
        Write::Replace { .. } => {
            "UPDATE teams SET name = $2, document = $3, updated_at = $5, version = version + 1
             WHERE id = $1 AND version = $6 AND $4 = $4 RETURNING version"
        }
    };
    let version = sqlx::query_scalar(statement)
        .bind(row.id.clone())
        .bind(row.name.clone())
        .bind(row.document.clone())
        .bind(row.created_at)
        .bind(row.updated_at)
        .bind(expected(write))
        .fetch_optional(&mut *tx)
        .await?;
    if version.is_some() {
        bump_config(&mut tx).await?;
        insert_audit(&mut tx, audit).await?;
    }
    tx.commit().await?;
    Ok(version)
}

pub(crate) async fn delete_team(conn: &mut Conn, id: &str, audit: &AuditRow) -> sqlx::Result<bool> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let deleted = sqlx::query("DELETE FROM teams WHERE id = $1")
        .bind(id.to_owned())
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if deleted > 0 {
        bump_config(&mut tx).await?;
        insert_audit(&mut tx, audit).await?;
    }
    tx.commit().await?;
    Ok(deleted > 0)
}

pub(crate) async fn list_pools(conn: &mut Conn) -> sqlx::Result<Vec<PoolRow>> {
    list_settings(conn, Setting::Pools).await
}

pub(crate) async fn list_settings(conn: &mut Conn, setting: Setting) -> sqlx::Result<Vec<DocRow>> {
    let statement = format!(
        "SELECT id, name, document, created_at, updated_at, version FROM {} ORDER BY id",
        setting.table()
    );
    sqlx::query_as(sqlx::AssertSqlSafe(statement))
        .fetch_all(conn)
        .await
}

pub(crate) async fn get_setting(
    conn: &mut Conn,
    setting: Setting,
    id: &str,
) -> sqlx::Result<Option<DocRow>> {
    let statement = format!(
        "SELECT id, name, document, created_at, updated_at, version FROM {} WHERE id = $1",
        setting.table()
    );
    sqlx::query_as(sqlx::AssertSqlSafe(statement))
        .bind(id.to_owned())
        .fetch_optional(conn)
        .await
}

/// Writes a settings document under [`Write`], as [`write_rep`].
pub(crate) async fn write_setting(
    conn: &mut Conn,
    setting: Setting,
    row: &DocRow,
    write: Write,
    audit: &AuditRow,
) -> sqlx::Result<Option<i64>> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let statement = match write {
        Write::Create => format!(
            "INSERT INTO {} (id, name, document, created_at, updated_at, version)
             VALUES ($1, $2, $3, $4, $5, 1) ON CONFLICT DO NOTHING RETURNING version",
            setting.table()
        ),
        Write::Replace { .. } => format!(
            "UPDATE {} SET name = $2, document = $3, updated_at = $5, version = version + 1
             WHERE id = $1 AND version = $6 AND $4 = $4 RETURNING version",
            setting.table()
        ),
    };
    let version = sqlx::query_scalar(sqlx::AssertSqlSafe(statement))
        .bind(row.id.clone())
        .bind(row.name.clone())
        .bind(row.document.clone())
        .bind(row.created_at)
        .bind(row.updated_at)
        .bind(expected(write))
        .fetch_optional(&mut *tx)
        .await?;
    if version.is_some() {
        bump_config(&mut tx).await?;
        insert_audit(&mut tx, audit).await?;
    }
    tx.commit().await?;
    Ok(version)
}

pub(crate) async fn upsert_setting(
    conn: &mut Conn,
    setting: Setting,
    row: &DocRow,
) -> sqlx::Result<()> {
    let statement = format!(
        "INSERT INTO {table} (id, name, document, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, document = excluded.document,
             updated_at = excluded.updated_at, version = {table}.version + 1",
        table = setting.table()
    );
    sqlx::query(sqlx::AssertSqlSafe(statement))
        .bind(row.id.clone())
        .bind(row.name.clone())
        .bind(row.document.clone())
        .bind(row.created_at)
        .bind(row.updated_at)
        .execute(&mut *conn)
        .await?;
    bump_config(conn).await
}

pub(crate) async fn delete_setting(
    conn: &mut Conn,
    setting: Setting,
    id: &str,
    audit: &AuditRow,
) -> sqlx::Result<bool> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let statement = format!("DELETE FROM {} WHERE id = $1", setting.table());
    let deleted = sqlx::query(sqlx::AssertSqlSafe(statement))
        .bind(id.to_owned())
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if deleted > 0 {
        bump_config(&mut tx).await?;
        insert_audit(&mut tx, audit).await?;
    }
    tx.commit().await?;
    Ok(deleted > 0)
}

pub(crate) async fn list_custom_fields(conn: &mut Conn) -> sqlx::Result<Vec<CustomFieldRow>> {
    sqlx::query_as("SELECT * FROM custom_fields ORDER BY entity, name")
        .fetch_all(conn)
        .await
}

/// Declares a custom field; false when the entity already has a field of that name.
pub(crate) async fn insert_custom_field(
    conn: &mut Conn,
    row: &CustomFieldRow,
) -> sqlx::Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO custom_fields (entity, name, field_type) VALUES ($1, $2, $3)
         ON CONFLICT (entity, name) DO NOTHING",
    )
    .bind(row.entity.clone())
    .bind(row.name.clone())
    .bind(row.field_type.clone())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    bump_config(conn).await?;
    Ok(inserted > 0)
}

pub(crate) async fn delete_custom_field(
    conn: &mut Conn,
    entity: &str,
    name: &str,
) -> sqlx::Result<bool> {
    let deleted = sqlx::query("DELETE FROM custom_fields WHERE entity = $1 AND name = $2")
        .bind(entity.to_owned())
        .bind(name.to_owned())
        .execute(&mut *conn)
        .await?
        .rows_affected();
    bump_config(conn).await?;
    Ok(deleted > 0)
}

pub(crate) async fn list_rule_sets(conn: &mut Conn) -> sqlx::Result<Vec<RuleSetRow>> {
    sqlx::query_as("SELECT * FROM rule_sets ORDER BY version DESC")
        .fetch_all(conn)
        .await
}

pub(crate) async fn get_rule_set(
    conn: &mut Conn,
    version: i64,
) -> sqlx::Result<Option<RuleSetRow>> {
    sqlx::query_as("SELECT * FROM rule_sets WHERE version = $1")
        .bind(version)
        .fetch_optional(conn)
        .await
}

pub(crate) async fn active_rule_set(conn: &mut Conn) -> sqlx::Result<Option<RuleSetRow>> {
    sqlx::query_as("SELECT * FROM rule_sets WHERE status = 'published'")
        .fetch_optional(conn)
        .await
}

/// Inserts a draft and returns its version: one more than the highest so far. One statement,
/// so two drafts saved at once cannot take the same number.
pub(crate) async fn insert_rule_set(
    conn: &mut Conn,
    name: Option<&str>,
    document: &str,
    now: i64,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO rule_sets (version, name, document, status, created_at)
         SELECT COALESCE(MAX(version), 0) + 1, $1, $2, 'draft', $3 FROM rule_sets
         RETURNING version",
    )
    .bind(name.map(str::to_owned))
    .bind(document.to_owned())
    .bind(now)
    .fetch_one(conn)
    .await
}

/// Makes a version the active one and retires the previous.
pub(crate) async fn publish_rule_set(conn: &mut Conn, version: i64, now: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE rule_sets SET status = 'retired' WHERE status = 'published'")
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE rule_sets SET status = 'published', published_at = $2 WHERE version = $1")
        .bind(version)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    bump_config(conn).await
}

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

pub(crate) async fn find_api_key(conn: &mut Conn, hash: &str) -> sqlx::Result<Option<ApiKeyRow>> {
    sqlx::query_as("SELECT * FROM api_keys WHERE hash = $1 AND revoked_at IS NULL")
        .bind(hash.to_owned())
        .fetch_optional(conn)
        .await
}

pub(crate) async fn get_lead(conn: &mut Conn, id: &str) -> sqlx::Result<Option<LeadRow>> {
    sqlx::query_as("SELECT * FROM leads WHERE id = $1")
        .bind(id.to_owned())
        .fetch_optional(conn)
        .await
}

pub(crate) async fn list_leads(conn: &mut Conn, filter: &LeadFilter) -> sqlx::Result<Vec<LeadRow>> {
    let mut query: QueryBuilder<Db> = QueryBuilder::new("SELECT * FROM leads WHERE 1 = 1");
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
    if let Some(pools) = &filter.pools {
        query.push(" AND owner_id IS NULL AND pool_id IN (");
        let mut separated = query.separated(", ");
        separated.push_bind(String::new());
        for pool in pools {
            separated.push_bind(pool.clone());
        }
        query.push(")");
    }
    if let Some(before) = &filter.before_id {
        query.push(" AND id < ").push_bind(before.clone());
    }
    query
        .push(" ORDER BY id DESC LIMIT ")
        .push_bind(filter.limit);
    query.build_query_as().fetch_all(conn).await
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

pub(crate) async fn leads_by_external_ids(
    conn: &mut Conn,
    external_ids: &[String],
) -> sqlx::Result<Vec<LeadRow>> {
    if external_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut query: QueryBuilder<Db> =
        QueryBuilder::new("SELECT * FROM leads WHERE external_id IN (");
    let mut separated = query.separated(", ");
    for id in external_ids {
        separated.push_bind(id.clone());
    }
    query.push(")");
    query.build_query_as().fetch_all(conn).await
}

/// Known customers among these phones and emails: `(kind, value, owner_id)`, one row each.
pub(crate) async fn owners_by_contact(
    conn: &mut Conn,
    phones: &[String],
    emails: &[String],
) -> sqlx::Result<Vec<(String, String, String)>> {
    if phones.is_empty() && emails.is_empty() {
        return Ok(Vec::new());
    }
    let mut query: QueryBuilder<Db> =
        QueryBuilder::new("SELECT kind, value, owner_id FROM contacts WHERE ");
    let mut first = true;
    for (kind, values) in [("phone", phones), ("email", emails)] {
        if values.is_empty() {
            continue;
        }
        if !first {
            query.push(" OR ");
        }
        first = false;
        query
            .push("(kind = ")
            .push_bind(kind)
            .push(" AND value IN (");
        let mut separated = query.separated(", ");
        for value in values {
            separated.push_bind(value.clone());
        }
        query.push("))");
    }
    query.build_query_as().fetch_all(conn).await
}

/// Records who owns each contact now: `(kind, value, owner_id, at)`.
pub(crate) async fn upsert_contacts(
    conn: &mut Conn,
    rows: &[(String, String, String, i64)],
) -> sqlx::Result<()> {
    for chunk in rows.chunks(500) {
        let mut query: QueryBuilder<Db> =
            QueryBuilder::new("INSERT INTO contacts (kind, value, owner_id, updated_at) ");
        query.push_values(chunk, |mut values, (kind, value, owner, at)| {
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
        query.build().execute(&mut *conn).await?;
    }
    Ok(())
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
             closed_at = $26, amount = $27, lost_reason = $28
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

/// Leads by id, in any order.
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

pub(crate) async fn insert_activity(conn: &mut Conn, row: &ActivityRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO activities (id, lead_id, rep_id, actor, kind, outcome, note, next_follow_up_at, response_secs, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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

/// Deletes the rows whose `column` is one of `values`, a few hundred at a time.
async fn delete_where_in(
    conn: &mut Conn,
    table: &'static str,
    column: &'static str,
    values: &[String],
) -> sqlx::Result<()> {
    for chunk in values.chunks(500) {
        let mut query: QueryBuilder<Db> =
            QueryBuilder::new(format!("DELETE FROM {table} WHERE {column} IN ("));
        let mut separated = query.separated(", ");
        for value in chunk {
            separated.push_bind(value.clone());
        }
        query.push(")");
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

pub(crate) async fn insert_timers(conn: &mut Conn, rows: &[TimerRow]) -> sqlx::Result<()> {
    for chunk in rows.chunks(500) {
        let mut query: QueryBuilder<Db> = QueryBuilder::new(
            "INSERT INTO timers (id, lead_id, kind, step, owner_id, due_at, created_at) ",
        );
        query.push_values(chunk, |mut values, row| {
            values
                .push_bind(row.id.clone())
                .push_bind(row.lead_id.clone())
                .push_bind(row.kind.clone())
                .push_bind(row.step)
                .push_bind(row.owner_id.clone())
                .push_bind(row.due_at)
                .push_bind(row.created_at);
        });
        query.build().execute(&mut *conn).await?;
    }
    Ok(())
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
    for chunk in rows.chunks(500) {
        let mut query: QueryBuilder<Db> = QueryBuilder::new(
            "INSERT INTO outbox (id, event, lead_id, rep_id, recipients, payload, created_at, status) ",
        );
        query.push_values(chunk, |mut values, row| {
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
        query.build().execute(&mut *conn).await?;
    }
    Ok(())
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

/// Adds to outcome statistics: `((dimension, key), delta)`.
pub(crate) async fn add_stats(
    conn: &mut Conn,
    rows: &[((String, String), StatsDelta)],
) -> sqlx::Result<()> {
    for chunk in rows.chunks(300) {
        let mut query: QueryBuilder<Db> = QueryBuilder::new(
            "INSERT INTO outcome_stats (dimension, key, assigned, responded, response_secs, won, lost, invalid, amount, feedback_count, feedback_sum) ",
        );
        query.push_values(chunk, |mut values, ((dimension, key), delta)| {
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
        query.push(
            " ON CONFLICT (dimension, key) DO UPDATE SET
                 assigned = outcome_stats.assigned + excluded.assigned,
                 responded = outcome_stats.responded + excluded.responded,
                 response_secs = outcome_stats.response_secs + excluded.response_secs,
                 won = outcome_stats.won + excluded.won,
                 lost = outcome_stats.lost + excluded.lost,
                 invalid = outcome_stats.invalid + excluded.invalid,
                 amount = outcome_stats.amount + excluded.amount,
                 feedback_count = outcome_stats.feedback_count + excluded.feedback_count,
                 feedback_sum = outcome_stats.feedback_sum + excluded.feedback_sum",
        );
        query.build().execute(&mut *conn).await?;
    }
    Ok(())
}

pub(crate) async fn list_stats(conn: &mut Conn, dimension: &str) -> sqlx::Result<Vec<StatsRow>> {
    sqlx::query_as("SELECT * FROM outcome_stats WHERE dimension = $1 ORDER BY key")
        .bind(dimension.to_owned())
        .fetch_all(conn)
        .await
}

pub(crate) async fn upsert_rep_states(conn: &mut Conn, rows: &[RepStateRow]) -> sqlx::Result<()> {
    for chunk in rows.chunks(500) {
        let mut query: QueryBuilder<Db> = QueryBuilder::new(
            "INSERT INTO rep_state (rep_id, open_leads, day_start, day_count, week_start, week_count, month_start, month_count, last_assigned_at) ",
        );
        query.push_values(chunk, |mut values, row| {
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
        query.push(
            " ON CONFLICT (rep_id) DO UPDATE SET open_leads = excluded.open_leads,
                 day_start = excluded.day_start, day_count = excluded.day_count,
                 week_start = excluded.week_start, week_count = excluded.week_count,
                 month_start = excluded.month_start, month_count = excluded.month_count,
                 last_assigned_at = excluded.last_assigned_at",
        );
        query.build().execute(&mut *conn).await?;
    }
    Ok(())
}

pub(crate) async fn upsert_rotations(conn: &mut Conn, rows: &[RotationRow]) -> sqlx::Result<()> {
    for chunk in rows.chunks(500) {
        let mut query: QueryBuilder<Db> = QueryBuilder::new("INSERT INTO rotations (key, state) ");
        query.push_values(chunk, |mut values, row| {
            values
                .push_bind(row.key.clone())
                .push_bind(row.state.clone());
        });
        query.push(" ON CONFLICT (key) DO UPDATE SET state = excluded.state");
        query.build().execute(&mut *conn).await?;
    }
    Ok(())
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
            "INSERT INTO deliveries (id, event_id, channel_id, event, status, attempts, next_attempt_at, locked_until, last_error, created_at, sent_at) ",
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
                .push_bind(row.sent_at);
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
             last_error = $5, sent_at = $6
         WHERE id = $1",
    )
    .bind(row.id.clone())
    .bind(row.status.clone())
    .bind(row.attempts)
    .bind(row.next_attempt_at)
    .bind(row.last_error.clone())
    .bind(row.sent_at)
    .execute(conn)
    .await
    .map(drop)
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

/// A dashboard query over the leads created in `[from, to)`, of one team when given: `head`
/// is what comes before the conditions (ending in `WHERE` or `AND`), `tail` what follows them.
fn dashboard_query(
    head: &str,
    from: i64,
    to: i64,
    team: Option<&str>,
    tail: &str,
) -> QueryBuilder<Db> {
    window_query(head, "created_at", from, to, team, tail)
}

/// The same over another time column (`closed_at`: the deals closed in the window).
fn window_query(
    head: &str,
    column: &str,
    from: i64,
    to: i64,
    team: Option<&str>,
    tail: &str,
) -> QueryBuilder<Db> {
    let mut query: QueryBuilder<Db> = QueryBuilder::new(head);
    query.push(format!(" l.{column} >= ")).push_bind(from);
    query.push(format!(" AND l.{column} < ")).push_bind(to);
    if let Some(team) = team {
        query.push(" AND l.team_id = ").push_bind(team.to_owned());
    }
    query.push(" ");
    query.push(tail);
    query
}

/// The dashboard's figures, aggregated here rather than by reading every lead: a busy
/// workspace's month is millions of rows.
pub(crate) async fn dashboard(
    conn: &mut Conn,
    from: i64,
    to: i64,
    team: Option<&str>,
) -> sqlx::Result<Dashboard> {
    let totals: DashboardTotals = dashboard_query(
        "SELECT COUNT(*) AS leads_in,
             COALESCE(SUM(CASE WHEN l.owner_id IS NOT NULL THEN 1 ELSE 0 END), 0) AS assigned,
             COALESCE(SUM(CASE WHEN l.held THEN 1 ELSE 0 END), 0) AS held,
             COALESCE(SUM(CASE WHEN l.owner_id IS NULL AND l.pool_id IS NOT NULL THEN 1 ELSE 0 END), 0) AS pooled,
             COALESCE(SUM(CASE WHEN l.assigned_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS clocked
         FROM leads l WHERE",
        from,
        to,
        team,
        "",
    )
    .build_query_as()
    .fetch_one(&mut *conn)
    .await?;
    let missed: i64 = dashboard_query(
        "SELECT COUNT(*) FROM leads l WHERE l.assigned_at IS NOT NULL
             AND EXISTS (SELECT 1 FROM outbox o WHERE o.lead_id = l.id
                 AND o.event IN ('lead.sla_reminder', 'lead.sla_escalated', 'lead.reclaimed')) AND",
        from,
        to,
        team,
        "",
    )
    .build_query_scalar()
    .fetch_one(&mut *conn)
    .await?;
    let reclaims: i64 = dashboard_query(
        "SELECT COUNT(*) FROM decisions d JOIN leads l ON l.id = d.lead_id
         WHERE d.kind = 'reclaim' AND",
        from,
        to,
        team,
        "",
    )
    .build_query_scalar()
    .fetch_one(&mut *conn)
    .await?;
    let responses: Vec<i64> = dashboard_query(
        "SELECT (l.first_response_at - l.assigned_at) / 1000000 FROM leads l
         WHERE l.first_response_at IS NOT NULL AND l.assigned_at IS NOT NULL
             AND l.first_response_at >= l.assigned_at AND",
        from,
        to,
        team,
        "ORDER BY 1",
    )
    .build_query_scalar()
    .fetch_all(&mut *conn)
    .await?;
    let conversion = |column: &str| {
        format!(
            "SELECT l.{column} AS name,
                 COALESCE(SUM(CASE WHEN l.status = 'won' THEN 1 ELSE 0 END), 0) AS won,
                 COUNT(*) AS closed
             FROM leads l WHERE l.status IN ('won', 'lost') AND l.{column} IS NOT NULL AND"
        )
    };
    let mut by = Vec::with_capacity(2);
    for column in ["source", "rule_id"] {
        by.push(
            dashboard_query(
                &conversion(column),
                from,
                to,
                team,
                &format!("GROUP BY l.{column} ORDER BY l.{column}"),
            )
            .build_query_as::<Conversion>()
            .fetch_all(&mut *conn)
            .await?,
        );
    }
    let by_rule = by.pop().unwrap_or_default();
    let by_source = by.pop().unwrap_or_default();
    // The leaderboard counts the deals won in the window, whenever their leads came in.
    let leaderboard: Vec<OwnerFigures> = window_query(
        "SELECT l.owner_id AS owner_id, COUNT(*) AS assigned, COUNT(*) AS won,
             CAST(COALESCE(SUM(COALESCE(l.amount, 0)), 0) AS DOUBLE PRECISION) AS amount
         FROM leads l WHERE l.status = 'won' AND l.owner_id IS NOT NULL AND",
        "closed_at",
        from,
        to,
        team,
        "GROUP BY l.owner_id",
    )
    .build_query_as()
    .fetch_all(&mut *conn)
    .await?;
    let by_owner: Vec<OwnerFigures> = dashboard_query(
        "SELECT l.owner_id AS owner_id, COUNT(*) AS assigned,
             COALESCE(SUM(CASE WHEN l.status = 'won' THEN 1 ELSE 0 END), 0) AS won,
             CAST(COALESCE(SUM(CASE WHEN l.status = 'won' THEN COALESCE(l.amount, 0) ELSE 0 END), 0)
                 AS DOUBLE PRECISION) AS amount
         FROM leads l WHERE l.owner_id IS NOT NULL AND",
        from,
        to,
        team,
        "GROUP BY l.owner_id",
    )
    .build_query_as()
    .fetch_all(&mut *conn)
    .await?;
    Ok(Dashboard {
        leads_in: totals.leads_in,
        assigned: totals.assigned,
        held: totals.held,
        pooled: totals.pooled,
        clocked: totals.clocked,
        missed,
        reclaims,
        responses,
        by_source,
        by_rule,
        by_owner,
        leaderboard,
    })
}
