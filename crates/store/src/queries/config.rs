// The SQL of every store operation, written once and compiled for each backend: the files of
// this folder are included by `sqlite` and `postgres` in `lib.rs`, which define `Db` and
// `IS_POSTGRES`. This one: the workspace's versions and lock, reps, teams, settings documents,
// custom fields and rule sets.

use sqlx::QueryBuilder;

use crate::rows::*;

type Conn = <Db as sqlx::Database>::Connection;
pub(crate) type Tx<'c> = sqlx::Transaction<'c, Db>;

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

/// Moves the routing version (another instance's cached state is stale), returning it.
const BUMP_ROUTING: &str = "UPDATE workspace SET routing_version = routing_version + 1 WHERE id = 1 RETURNING routing_version";

pub(crate) async fn bump_routing(conn: &mut Conn) -> sqlx::Result<i64> {
    sqlx::query_scalar(BUMP_ROUTING).fetch_one(conn).await
}

/// Begins a routing transaction, serialised across instances: SQLite takes the write lock
/// with `BEGIN IMMEDIATE`; PostgreSQL takes a transaction-scoped advisory lock in the same
/// simple query as its `BEGIN`, one round trip for both. What the transaction reads comes
/// after, in statements whose snapshots are taken once the lock is held.
///
/// On PostgreSQL its commit does not wait for the log to reach the disk (`synchronous_commit
/// = off`): the lock goes to the next routing transaction while the disk takes this one, and
/// the answers wait for a flush (`Unsynced::durable`). SQLite's writer connection commits so
/// throughout (`synchronous = NORMAL`).
pub(crate) async fn begin_routing(
    conn: &mut sqlx::pool::PoolConnection<Db>,
) -> sqlx::Result<Tx<'_>> {
    let begin = if IS_POSTGRES {
        "BEGIN; SET LOCAL synchronous_commit = off; SELECT pg_advisory_xact_lock(727374)"
    } else {
        "BEGIN IMMEDIATE"
    };
    sqlx::Connection::begin_with(&mut **conn, begin).await
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

/// Deletes a rep who holds no open lead, with its audit row. Run under the routing lock, so no
/// lead can be routed to them between the count and the delete. `None` when there is no such
/// rep, else the open leads they hold (0: deleted).
pub(crate) async fn delete_idle_rep(
    conn: &mut Conn,
    id: &str,
    audit: &AuditRow,
) -> sqlx::Result<Option<i64>> {
    let open: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM leads WHERE owner_id = $1
             AND status IN ('new', 'assigned', 'contacted', 'qualified')",
    )
    .bind(id.to_owned())
    .fetch_one(&mut *conn)
    .await?;
    if open > 0 {
        return Ok(Some(open));
    }
    let deleted = sqlx::query("DELETE FROM reps WHERE id = $1")
        .bind(id.to_owned())
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if deleted == 0 {
        return Ok(None);
    }
    bump_config(&mut *conn).await?;
    insert_audit(conn, audit).await?;
    Ok(Some(0))
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
    created_by: Option<&str>,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO rule_sets (version, name, document, status, created_at, created_by)
         SELECT COALESCE(MAX(version), 0) + 1, $1, $2, 'draft', $3, $4 FROM rule_sets
         RETURNING version",
    )
    .bind(name.map(str::to_owned))
    .bind(document.to_owned())
    .bind(now)
    .bind(created_by.map(str::to_owned))
    .fetch_one(conn)
    .await
}

/// Makes a version the active one and retires the previous.
pub(crate) async fn publish_rule_set(
    conn: &mut Conn,
    version: i64,
    now: i64,
) -> sqlx::Result<Option<i64>> {
    // The workspace row first: it serialises publications, so the version read as active below
    // is the one this publication replaces (on PostgreSQL a concurrent one would otherwise
    // miss the version published meanwhile and leave two active).
    bump_config(&mut *conn).await?;
    let previous: Option<i64> = sqlx::query_scalar(
        "SELECT version FROM rule_sets WHERE status = 'published' ORDER BY version DESC LIMIT 1",
    )
    .fetch_optional(&mut *conn)
    .await?;
    sqlx::query("UPDATE rule_sets SET status = 'retired' WHERE status = 'published'")
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE rule_sets SET status = 'published', published_at = $2 WHERE version = $1")
        .bind(version)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(previous)
}

pub(crate) async fn workspace_setting(
    conn: &mut Conn,
    name: &str,
) -> sqlx::Result<Option<WorkspaceSettingRow>> {
    sqlx::query_as("SELECT * FROM workspace_settings WHERE name = $1")
        .bind(name.to_owned())
        .fetch_optional(conn)
        .await
}

/// Writes a workspace setting if its stored version is still `expected` (0: not stored yet),
/// with its audit row; the new version, or `None` when another write came first.
pub(crate) async fn write_workspace_setting(
    conn: &mut Conn,
    row: &WorkspaceSettingRow,
    expected: i64,
    audit: &AuditRow,
) -> sqlx::Result<Option<i64>> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let version: Option<i64> = if expected == 0 {
        sqlx::query_scalar(
            "INSERT INTO workspace_settings (name, document, version, updated_by, updated_at)
             VALUES ($1, $2, 1, $3, $4) ON CONFLICT DO NOTHING RETURNING version",
        )
        .bind(row.name.clone())
        .bind(row.document.clone())
        .bind(row.updated_by.clone())
        .bind(row.updated_at)
        .fetch_optional(&mut *tx)
        .await?
    } else {
        sqlx::query_scalar(
            "UPDATE workspace_settings SET document = $2, version = version + 1, updated_by = $3,
                 updated_at = $4
             WHERE name = $1 AND version = $5 RETURNING version",
        )
        .bind(row.name.clone())
        .bind(row.document.clone())
        .bind(row.updated_by.clone())
        .bind(row.updated_at)
        .bind(expected)
        .fetch_optional(&mut *tx)
        .await?
    };
    if version.is_some() {
        bump_config(&mut tx).await?;
        insert_audit(&mut tx, audit).await?;
    }
    tx.commit().await?;
    Ok(version)
}

/// Stores an internal workspace marker (no audit, no configuration change).
pub(crate) async fn put_workspace_setting(
    conn: &mut Conn,
    row: &WorkspaceSettingRow,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO workspace_settings (name, document, version, updated_by, updated_at)
         VALUES ($1, $2, 1, $3, $4)
         ON CONFLICT (name) DO UPDATE SET document = excluded.document,
             version = workspace_settings.version + 1, updated_at = excluded.updated_at",
    )
    .bind(row.name.clone())
    .bind(row.document.clone())
    .bind(row.updated_by.clone())
    .bind(row.updated_at)
    .execute(conn)
    .await
    .map(drop)
}
