//! Leadroute's storage, and the only crate with SQL. One `Store` in front of embedded SQLite (a
//! file in the data directory) or PostgreSQL (for several server instances), chosen by the
//! database URL. Both run the same SQL, written once in `queries/`.

mod rows;
mod state;
mod tallies;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions as _, Connection as _, PgPool, SqlitePool};

pub use rows::*;
pub use sqlx::Error as DbError;
pub use state::{rep_state_from_row, rep_state_row, rotation_from_row, rotation_row};

mod sqlite {
    pub(crate) type Db = sqlx::Sqlite;
    const IS_POSTGRES: bool = false;
    include!("queries/config.rs");
    include!("queries/accounts.rs");
    include!("queries/leads.rs");
    include!("queries/follow_up.rs");
    include!("queries/dashboard.rs");
    include!("queries/simulations.rs");
    include!("queries/models.rs");
    include!("bulk_values.rs");
}

mod postgres {
    pub(crate) type Db = sqlx::Postgres;
    const IS_POSTGRES: bool = true;
    include!("queries/config.rs");
    include!("queries/accounts.rs");
    include!("queries/leads.rs");
    include!("queries/follow_up.rs");
    include!("queries/dashboard.rs");
    include!("queries/simulations.rs");
    include!("queries/models.rs");
    include!("bulk_unnest.rs");
}

/// The database, embedded or shared.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite {
        pool: SqlitePool,
        /// One connection for the routing transactions, which write almost everything: its
        /// page cache stays valid from one batch to the next, where a connection that another
        /// one wrote behind has to drop its cache and read the pages again.
        writer: SqlitePool,
        /// How many are waiting for `writer` besides the routing worker, which keeps the
        /// connection between its batches and lets it go when this is not zero (see
        /// [`Store::writer_wanted`]).
        waiting: Arc<AtomicUsize>,
        /// The database's write-ahead log, which `writer` commits to without waiting for the
        /// disk ([`Unsynced`]); none for a database in memory.
        log: Option<WalFile>,
    },
    Postgres(PgPool),
}

/// Runs one query function on whichever backend the store has, on a pooled connection.
/// The PostgreSQL channel key revocations are announced on.
const KEYS_CHANNEL: &str = "leadroute_keys";

/// Notices that keys were revoked on some instance.
#[derive(Debug)]
pub struct KeysListener(sqlx::postgres::PgListener);

impl KeysListener {
    /// The next notice (or a reconnection, which may have missed some).
    pub async fn next(&mut self) -> sqlx::Result<()> {
        self.0.try_recv().await.map(drop)
    }
}

/// The schema's migrations, compiled in.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The migrations a database has had applied.
const APPLIED: &str = "SELECT version FROM _sqlx_migrations";

/// The versions `APPLIED` found: none when there is no bookkeeping table yet.
fn applied(found: sqlx::Result<Vec<i64>>) -> anyhow::Result<Vec<i64>> {
    match found {
        Ok(versions) => Ok(versions),
        Err(sqlx::Error::Database(error))
            if error.message().contains("no such table")
                || error.code().as_deref() == Some("42P01") =>
        {
            Ok(Vec::new())
        }
        Err(error) => Err(error.into()),
    }
}

/// Refuses `applied` when it holds a migration this code lacks: a newer release migrated it.
fn known(applied: Vec<i64>) -> anyhow::Result<()> {
    let known: Vec<i64> = MIGRATOR.iter().map(|migration| migration.version).collect();
    if let Some(newer) = applied.into_iter().find(|version| !known.contains(version)) {
        anyhow::bail!(
            "the database has migration {newer}, which this Leadroute does not know (it knows up \
             to {}): a newer release migrated it; run that release or newer",
            known.iter().max().copied().unwrap_or(0)
        );
    }
    Ok(())
}

macro_rules! on_pool {
    ($store:expr, $function:ident ( $($argument:expr),* )) => {
        match $store {
            Store::Sqlite { pool, .. } => {
                let mut connection = pool.acquire().await?;
                sqlite::$function(&mut connection, $($argument),*).await
            }
            Store::Postgres(pool) => {
                let mut connection = pool.acquire().await?;
                postgres::$function(&mut connection, $($argument),*).await
            }
        }
    };
}

/// Sets a written document's version; whether it was written.
fn stamp(slot: &mut i64, version: Option<i64>) -> bool {
    if let Some(version) = version {
        *slot = version;
    }
    version.is_some()
}

/// The same inside a routing transaction.
macro_rules! on_tx {
    ($tx:expr, $function:ident ( $($argument:expr),* )) => {
        match &mut $tx.inner {
            Transaction::Sqlite(tx) => sqlite::$function(tx, $($argument),*).await,
            Transaction::Postgres(tx) => postgres::$function(tx, $($argument),*).await,
        }
    };
}

impl Store {
    /// Opens `sqlite://…` or `postgres://…`, creating an SQLite file if needed. Does not migrate.
    pub async fn connect(url: &str) -> anyhow::Result<Store> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url)
                .context("reading the PostgreSQL URL")?
                .disable_statement_logging();
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .context("connecting to PostgreSQL")?;
            return Ok(Store::Postgres(pool));
        }
        let options = SqliteConnectOptions::from_str(url)
            .context("reading the SQLite URL")?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // An acknowledged lead must survive power loss, not only a crash.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // Checkpoints run from `checkpoint`, off the path of the routing commits: an
            // automatic one inside a commit stalls every request waiting on it.
            .pragma("wal_autocheckpoint", "0")
            .disable_statement_logging();
        // A file on this machine does not drop connections: skip the ping before each use, a
        // round trip to the connection's thread that waits for a CPU under load.
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await
            .with_context(|| format!("opening SQLite database {url}"))?;
        // The writer keeps its statement journals in memory: a routing batch's statements each
        // journal the pages they change within the transaction, and past 64 KiB SQLite moved
        // that journal to a temporary file, a file created and written on the commit path (5–7%
        // of the writer's time in a profile of closed-loop intake). Its temporary tables and
        // sorts are the fold's, a few thousand rows at a time; the readers, whose sorts can be
        // a month of leads, keep theirs on disk.
        //
        // Its commits do not wait for the disk (`synchronous = NORMAL`): a routing transaction
        // commits with `commit_unsynced`, and whoever answers for it waits for the log to be
        // flushed ([`Unsynced::durable`]) while the next batch goes ahead on this connection.
        // In write-ahead-log mode a commit that the power took may be lost, but never half of
        // one, nor one without those before it.
        let writer_options = options
            .pragma("temp_store", "memory")
            .synchronous(SqliteSynchronous::Normal);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            // A routing transaction waits for the one before it as long as SQLite's write lock
            // would make it wait (`busy_timeout`), not the pool's default 30 s.
            .acquire_timeout(Duration::from_secs(10))
            .test_before_acquire(false)
            .connect_with(writer_options)
            .await
            .with_context(|| format!("opening SQLite database {url}"))?;
        // Where SQLite itself has the database file (none for one in memory).
        let file: String =
            sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
                .fetch_one(&writer)
                .await?;
        let log = (!file.is_empty()).then(|| WalFile(Arc::from(wal_path(Path::new(&file)))));
        Ok(Store::Sqlite {
            pool,
            writer,
            waiting: Arc::default(),
            log,
        })
    }

    /// The SQLite database of a data directory, created if missing.
    pub async fn open_data_dir(data_dir: &Path) -> anyhow::Result<Store> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating data directory {}", data_dir.display()))?;
        let path = data_dir.join("leadroute.db");
        Store::connect(&format!("sqlite://{}", path.display())).await
    }

    /// Applies the migrations. Both backends run the same files, as they run the same SQL;
    /// a change that needs different SQL per backend would split the folder.
    /// A database a newer Leadroute migrated is refused, with that reason.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            Store::Sqlite { pool, writer, .. } => {
                // Checked and migrated on one connection. Another that had read the schema
                // before a migration changed it would prepare its next statement against the
                // old schema: sqlx keeps the columns it saw then, SQLite steps the statement
                // prepared again, and the row is wider than its columns (sqlx's thread panics).
                let mut connection = pool.acquire().await?;
                known(applied(
                    sqlx::query_scalar(APPLIED)
                        .fetch_all(&mut *connection)
                        .await,
                )?)?;
                MIGRATOR.run(&mut *connection).await?;
                drop(connection);
                tallies::ensure_sqlite(writer).await?;
            }
            Store::Postgres(pool) => {
                self.migrate_check().await?;
                MIGRATOR.run(pool).await?;
                tallies::ensure_postgres(pool).await?;
            }
        }
        Ok(())
    }

    /// Applies the migrations up to and including `last` only, without the tallies' triggers:
    /// how a test starts from the database an earlier release left.
    #[doc(hidden)]
    pub async fn migrate_to(&self, last: i64) -> anyhow::Result<()> {
        match self {
            Store::Sqlite { pool, .. } => MIGRATOR.run_to(last, pool).await?,
            Store::Postgres(pool) => MIGRATOR.run_to(last, pool).await?,
        }
        Ok(())
    }

    /// Moves the dashboard's counts that leads changed since the last fold into its tallies
    /// (readers add the ones not folded yet, so this only keeps them few); how many tallies
    /// changed. One instance at a time folds; the others skip.
    pub async fn fold_tallies(&self) -> sqlx::Result<u64> {
        match self {
            Store::Sqlite {
                writer, waiting, ..
            } => tallies::fold_sqlite(writer, waiting).await,
            Store::Postgres(pool) => tallies::fold_postgres(pool).await,
        }
    }

    /// Refuses a database a newer Leadroute migrated (it has migrations this code lacks).
    pub async fn migrate_check(&self) -> anyhow::Result<()> {
        known(self.applied_migrations().await?)
    }

    /// Writes a consistent copy of the SQLite database to `path` while it serves (`VACUUM
    /// INTO`: one read transaction, so the copy holds exactly what was committed when it
    /// began). PostgreSQL is backed up with its own tools.
    pub async fn backup_to(&self, path: &Path) -> anyhow::Result<()> {
        match self {
            Store::Sqlite { pool, .. } => {
                sqlx::query("VACUUM INTO ?")
                    .bind(path.display().to_string())
                    .execute(pool)
                    .await
                    .with_context(|| format!("writing the backup {}", path.display()))?;
                Ok(())
            }
            Store::Postgres(_) => {
                anyhow::bail!("a PostgreSQL workspace is backed up with pg_dump")
            }
        }
    }

    /// Tells every instance that keys were revoked, so each forgets the keys it verified
    /// (PostgreSQL `NOTIFY`; one SQLite file has one instance, which forgets by itself).
    pub async fn notify_keys_changed(&self) -> sqlx::Result<()> {
        if let Store::Postgres(pool) = self {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(KEYS_CHANNEL)
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    /// Waits for the next notice that keys were revoked anywhere; `None` on SQLite, where no
    /// other instance can send one. A lost connection counts as a notice: what it missed is
    /// unknown.
    pub async fn keys_listener(&self) -> sqlx::Result<Option<KeysListener>> {
        let Store::Postgres(pool) = self else {
            return Ok(None);
        };
        let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
        listener.listen(KEYS_CHANNEL).await?;
        Ok(Some(KeysListener(listener)))
    }

    /// The database's clock, microseconds since the epoch (PostgreSQL; `None` on SQLite, which
    /// has the process's own clock).
    pub async fn database_now(&self) -> sqlx::Result<Option<i64>> {
        match self {
            Store::Sqlite { .. } => Ok(None),
            Store::Postgres(pool) => sqlx::query_scalar(
                "SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT",
            )
            .fetch_one(pool)
            .await
            .map(Some),
        }
    }

    /// Takes one request from a shared token bucket (PostgreSQL): refilled at `per_second` up
    /// to `burst`, in one atomic statement, so every instance draws from the same bucket.
    /// Whether a token was taken, and the tokens left. `None` on SQLite, whose one instance
    /// keeps its buckets in memory.
    pub async fn take_token(
        &self,
        key: &str,
        per_second: f64,
        burst: f64,
        now: i64,
    ) -> sqlx::Result<Option<(bool, f64)>> {
        let Store::Postgres(pool) = self else {
            return Ok(None);
        };
        let (granted, tokens): (bool, f64) = sqlx::query_as(
            "INSERT INTO rate_buckets AS bucket (key, tokens, at, granted)
             VALUES ($1, $2 - 1, $3, TRUE)
             ON CONFLICT (key) DO UPDATE SET
               granted = LEAST($2, bucket.tokens + ($3 - bucket.at) / 1000000.0 * $4) >= 1,
               tokens = LEAST($2, bucket.tokens + ($3 - bucket.at) / 1000000.0 * $4)
                        - CASE WHEN LEAST($2, bucket.tokens + ($3 - bucket.at) / 1000000.0 * $4)
                                    >= 1 THEN 1 ELSE 0 END,
               at = $3
             RETURNING bucket.granted, bucket.tokens",
        )
        .bind(key)
        .bind(burst)
        .bind(now)
        .bind(per_second)
        .fetch_one(pool)
        .await?;
        Ok(Some((granted, tokens)))
    }

    /// Whether the workspace holds any lead (a restore goes only into one that does not).
    pub async fn has_leads(&self) -> anyhow::Result<bool> {
        let filter = LeadFilter {
            limit: 1,
            ..LeadFilter::default()
        };
        Ok(!self.list_leads(&filter).await?.is_empty())
    }

    /// The migrations `migrate` would apply, `(version, description)`, in order.
    pub async fn pending_migrations(&self) -> anyhow::Result<Vec<(i64, String)>> {
        let applied = self.applied_migrations().await?;
        Ok(MIGRATOR
            .iter()
            .filter(|migration| !applied.contains(&migration.version))
            .map(|migration| (migration.version, migration.description.to_string()))
            .collect())
    }

    /// The versions applied so far (none on a database never migrated).
    async fn applied_migrations(&self) -> anyhow::Result<Vec<i64>> {
        applied(match self {
            Store::Sqlite { pool, .. } => sqlx::query_scalar(APPLIED).fetch_all(pool).await,
            Store::Postgres(pool) => sqlx::query_scalar(APPLIED).fetch_all(pool).await,
        })
    }

    /// Moves committed pages from SQLite's write-ahead log into the database file without
    /// blocking writers; the service calls it every second. A no-op on PostgreSQL.
    pub async fn checkpoint(&self) -> anyhow::Result<()> {
        if let Store::Sqlite { pool, .. } = self {
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    /// Does what PostgreSQL's autovacuum does after a bulk load: refreshes the planner's
    /// statistics and the visibility map (which index-only scans need). For benchmarks that
    /// load a million rows at once on servers running with autovacuum off, as the test servers
    /// here do. A no-op on SQLite, where the service keeps no statistics.
    pub async fn vacuum_analyze(&self) -> anyhow::Result<()> {
        if let Store::Postgres(pool) = self {
            sqlx::query("VACUUM (ANALYZE)").execute(pool).await?;
        }
        Ok(())
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite { .. } => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    pub async fn ping(&self) -> anyhow::Result<()> {
        match self {
            Store::Sqlite { pool, .. } => pool.acquire().await?.ping().await?,
            Store::Postgres(pool) => pool.acquire().await?.ping().await?,
        }
        Ok(())
    }

    pub async fn close(&self) {
        match self {
            Store::Sqlite { pool, writer, .. } => {
                writer.close().await;
                pool.close().await;
            }
            Store::Postgres(pool) => pool.close().await,
        }
    }

    /// Whether `close` was called: background tasks stop then.
    pub fn is_closed(&self) -> bool {
        match self {
            Store::Sqlite { pool, .. } => pool.is_closed(),
            Store::Postgres(pool) => pool.is_closed(),
        }
    }

    /// `(config_version, routing_version)`.
    pub async fn versions(&self) -> sqlx::Result<(i64, i64)> {
        on_pool!(self, versions())
    }

    pub async fn list_reps(&self) -> sqlx::Result<Vec<RepRow>> {
        on_pool!(self, list_reps())
    }

    pub async fn get_rep(&self, id: &str) -> sqlx::Result<Option<RepRow>> {
        on_pool!(self, get_rep(id))
    }

    pub async fn upsert_rep(&self, row: &RepRow) -> sqlx::Result<()> {
        on_pool!(self, upsert_rep(row))
    }

    /// Creates or replaces a rep under [`Write`], its audit row in the same transaction: `false`
    /// when the id was taken or another write came first; else `row` has its new version.
    pub async fn write_rep(
        &self,
        row: &mut RepRow,
        write: Write,
        audit: &AuditRow,
    ) -> sqlx::Result<bool> {
        let version = on_pool!(self, write_rep(row, write, audit))?;
        Ok(stamp(&mut row.version, version))
    }

    pub async fn list_teams(&self) -> sqlx::Result<Vec<TeamRow>> {
        on_pool!(self, list_teams())
    }

    pub async fn get_team(&self, id: &str) -> sqlx::Result<Option<TeamRow>> {
        on_pool!(self, get_team(id))
    }

    pub async fn upsert_team(&self, row: &TeamRow) -> sqlx::Result<()> {
        on_pool!(self, upsert_team(row))
    }

    /// Creates or replaces a team under [`Write`], as [`Store::write_rep`].
    pub async fn write_team(
        &self,
        row: &mut TeamRow,
        write: Write,
        audit: &AuditRow,
    ) -> sqlx::Result<bool> {
        let version = on_pool!(self, write_team(row, write, audit))?;
        Ok(stamp(&mut row.version, version))
    }

    /// Deletes a team with its audit row, in one transaction.
    pub async fn delete_team(&self, id: &str, audit: &AuditRow) -> sqlx::Result<bool> {
        on_pool!(self, delete_team(id, audit))
    }

    pub async fn list_pools(&self) -> sqlx::Result<Vec<PoolRow>> {
        on_pool!(self, list_pools())
    }

    pub async fn list_custom_fields(&self) -> sqlx::Result<Vec<CustomFieldRow>> {
        on_pool!(self, list_custom_fields())
    }

    /// Declares a custom field; false when one of that entity and name exists.
    pub async fn insert_custom_field(&self, row: &CustomFieldRow) -> sqlx::Result<bool> {
        on_pool!(self, insert_custom_field(row))
    }

    pub async fn delete_custom_field(&self, entity: &str, name: &str) -> sqlx::Result<bool> {
        on_pool!(self, delete_custom_field(entity, name))
    }

    /// Calendars, SLA policies or pools, by id.
    pub async fn list_settings(&self, setting: Setting) -> sqlx::Result<Vec<DocRow>> {
        on_pool!(self, list_settings(setting))
    }

    pub async fn get_setting(&self, setting: Setting, id: &str) -> sqlx::Result<Option<DocRow>> {
        on_pool!(self, get_setting(setting, id))
    }

    pub async fn upsert_setting(&self, setting: Setting, row: &DocRow) -> sqlx::Result<()> {
        on_pool!(self, upsert_setting(setting, row))
    }

    /// Creates or replaces a settings document under [`Write`], as [`Store::write_rep`].
    pub async fn write_setting(
        &self,
        setting: Setting,
        row: &mut DocRow,
        write: Write,
        audit: &AuditRow,
    ) -> sqlx::Result<bool> {
        let version = on_pool!(self, write_setting(setting, row, write, audit))?;
        Ok(stamp(&mut row.version, version))
    }

    /// Deletes a settings document with its audit row, in one transaction.
    pub async fn delete_setting(
        &self,
        setting: Setting,
        id: &str,
        audit: &AuditRow,
    ) -> sqlx::Result<bool> {
        on_pool!(self, delete_setting(setting, id, audit))
    }

    pub async fn activities_for(&self, lead_id: &str) -> sqlx::Result<Vec<ActivityRow>> {
        on_pool!(self, activities_for(lead_id))
    }

    pub async fn feedback_for(&self, lead_id: &str) -> sqlx::Result<Vec<FeedbackRow>> {
        on_pool!(self, feedback_for(lead_id))
    }

    pub async fn timers_for(&self, lead_id: &str) -> sqlx::Result<Vec<TimerRow>> {
        on_pool!(self, timers_for(lead_id))
    }

    /// When the next timer falls due, if any.
    pub async fn next_due(&self) -> sqlx::Result<Option<i64>> {
        on_pool!(self, next_due())
    }

    /// Queue sizes for `/metrics`.
    pub async fn workload(&self, now: i64) -> sqlx::Result<Workload> {
        on_pool!(self, workload(now))
    }

    /// Dead deliveries per channel, for `/metrics`.
    pub async fn dead_letters(&self) -> sqlx::Result<Vec<(String, i64)>> {
        on_pool!(self, dead_letters())
    }

    /// The connection pool: connections open and idle.
    pub fn pool_state(&self) -> (u32, usize) {
        match self {
            Store::Sqlite { pool, .. } => (pool.size(), pool.num_idle()),
            Store::Postgres(pool) => (pool.size(), pool.num_idle()),
        }
    }

    /// The outbox: events in the order they were written.
    pub async fn list_outbox(&self, filter: &EventFilter) -> sqlx::Result<Vec<OutboxRow>> {
        on_pool!(self, list_outbox(filter))
    }

    /// Claims the rep made since `since` (micros).
    pub async fn claims_since(&self, rep_id: &str, since: i64) -> sqlx::Result<i64> {
        on_pool!(self, claims_since(rep_id, since))
    }

    /// Fans pending outbox events out: `plan` says which deliveries each event makes; the
    /// deliveries are written and the events marked dispatched in one transaction. Returns how
    /// many events it took.
    pub async fn dispatch(
        &self,
        limit: i64,
        plan: impl Fn(&OutboxRow) -> Vec<DeliveryRow>,
    ) -> sqlx::Result<usize> {
        macro_rules! run {
            ($module:ident, $tx:expr) => {{
                let mut tx = $tx;
                let events = $module::pending_events(&mut tx, limit).await?;
                if events.is_empty() {
                    return Ok(0);
                }
                let deliveries: Vec<DeliveryRow> = events.iter().flat_map(&plan).collect();
                $module::insert_deliveries(&mut tx, &deliveries).await?;
                let ids: Vec<String> = events.iter().map(|event| event.id.clone()).collect();
                $module::mark_dispatched(&mut tx, &ids).await?;
                tx.commit().await?;
                Ok(events.len())
            }};
        }
        match self {
            Store::Sqlite { pool, .. } => run!(sqlite, pool.begin_with("BEGIN IMMEDIATE").await?),
            Store::Postgres(pool) => run!(postgres, pool.begin().await?),
        }
    }

    /// Due deliveries, held for this sender until `lease_until`.
    pub async fn claim_deliveries(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> sqlx::Result<Vec<DeliveryRow>> {
        on_pool!(self, claim_deliveries(now, lease_until, limit))
    }

    pub async fn finish_delivery(&self, row: &DeliveryRow) -> sqlx::Result<()> {
        on_pool!(self, finish_delivery(row))
    }

    /// Marks a channel as needing attention and queues the event that says so, unless it is
    /// already marked; true when this call marked it.
    pub async fn set_channel_attention(
        &self,
        row: &ChannelAttentionRow,
        event: &OutboxRow,
    ) -> sqlx::Result<bool> {
        on_pool!(self, set_channel_attention(row, event))
    }

    /// Clears the mark and makes the channel's waiting deliveries due at `now`.
    pub async fn clear_channel_attention(&self, channel_id: &str, now: i64) -> sqlx::Result<()> {
        on_pool!(self, clear_channel_attention(channel_id, now))
    }

    pub async fn channel_attention(&self) -> sqlx::Result<Vec<ChannelAttentionRow>> {
        on_pool!(self, channel_attention())
    }

    pub async fn get_delivery(&self, id: &str) -> sqlx::Result<Option<DeliveryRow>> {
        on_pool!(self, get_delivery(id))
    }

    pub async fn list_deliveries(&self, filter: &DeliveryFilter) -> sqlx::Result<Vec<DeliveryRow>> {
        on_pool!(self, list_deliveries(filter))
    }

    pub async fn get_event(&self, id: &str) -> sqlx::Result<Option<OutboxRow>> {
        on_pool!(self, get_event(id))
    }

    /// Takes one send from a channel's allowance in a fixed window; false when it is spent.
    pub async fn reserve_send(
        &self,
        channel_id: &str,
        window_secs: i64,
        window_start: i64,
        limit: i64,
    ) -> sqlx::Result<bool> {
        on_pool!(
            self,
            reserve_send(channel_id, window_secs, window_start, limit)
        )
    }

    pub async fn insert_intake_log(&self, row: &IntakeLogRow) -> sqlx::Result<()> {
        on_pool!(self, insert_intake_log(row))
    }

    /// A source's log, newest first.
    pub async fn intake_log(
        &self,
        source_id: &str,
        before_id: Option<&str>,
        limit: i64,
    ) -> sqlx::Result<Vec<IntakeLogRow>> {
        on_pool!(self, intake_log(source_id, before_id, limit))
    }

    /// Records the digest a channel gets at `slot` with its outbox events; false (and nothing
    /// written) when it was already sent.
    pub async fn record_digest(
        &self,
        channel_id: &str,
        slot: i64,
        now: i64,
        events: &[OutboxRow],
    ) -> sqlx::Result<bool> {
        on_pool!(self, record_digest(channel_id, slot, now, events))
    }

    /// The dashboard's figures for the leads of a window.
    pub async fn dashboard(&self, window: &DashboardWindow) -> sqlx::Result<Dashboard> {
        on_pool!(self, dashboard(window))
    }

    /// The same counted from the leads alone, never from the tallies kept as they are written:
    /// what those are checked against (tests, benchmarks).
    pub async fn dashboard_from_leads(&self, window: &DashboardWindow) -> sqlx::Result<Dashboard> {
        on_pool!(self, dashboard_from_leads(window))
    }

    /// A period's headline figures (leads in, SLA, conversion, mean first response).
    pub async fn period_figures(&self, window: &DashboardWindow) -> sqlx::Result<PeriodFigures> {
        on_pool!(self, period_figures(window))
    }

    pub async fn list_stats(&self, dimension: &str) -> sqlx::Result<Vec<StatsRow>> {
        on_pool!(self, list_stats(dimension))
    }

    pub async fn list_rule_sets(&self) -> sqlx::Result<Vec<RuleSetRow>> {
        on_pool!(self, list_rule_sets())
    }

    pub async fn get_rule_set(&self, version: i64) -> sqlx::Result<Option<RuleSetRow>> {
        on_pool!(self, get_rule_set(version))
    }

    pub async fn active_rule_set(&self) -> sqlx::Result<Option<RuleSetRow>> {
        on_pool!(self, active_rule_set())
    }

    /// Stores a model under the next version, which it returns.
    pub async fn insert_model(&self, row: &ModelRow) -> sqlx::Result<i64> {
        let mut attempt = 0;
        loop {
            match on_pool!(self, insert_model(row)) {
                // Another instance took the version meanwhile: take the next.
                Err(sqlx::Error::Database(error)) if error.is_unique_violation() && attempt < 5 => {
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    pub async fn get_model(&self, version: i64) -> sqlx::Result<Option<ModelRow>> {
        on_pool!(self, get_model(version))
    }

    pub async fn list_models(&self, limit: i64) -> sqlx::Result<Vec<ModelRow>> {
        on_pool!(self, list_models(limit))
    }

    pub async fn active_model(&self) -> sqlx::Result<Option<ModelRow>> {
        on_pool!(self, active_model())
    }

    pub async fn finish_model(&self, row: &ModelRow) -> sqlx::Result<bool> {
        on_pool!(self, finish_model(row))
    }

    /// The model's retraining schedule.
    pub async fn model_schedule(&self) -> sqlx::Result<ModelScheduleRow> {
        on_pool!(self, model_schedule())
    }

    /// Saves the schedule setting with its audit row, in one transaction.
    pub async fn set_model_schedule(
        &self,
        row: &ModelScheduleRow,
        audit: &AuditRow,
    ) -> sqlx::Result<()> {
        match self {
            Store::Sqlite { pool, .. } => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                sqlite::set_model_schedule(&mut tx, row).await?;
                sqlite::insert_audit(&mut tx, audit).await?;
                tx.commit().await
            }
            Store::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                postgres::set_model_schedule(&mut tx, row).await?;
                postgres::insert_audit(&mut tx, audit).await?;
                tx.commit().await
            }
        }
    }

    /// Takes the scheduled training due at `due`, moving the schedule on to `next`; whether
    /// this caller got it.
    pub async fn claim_model_schedule(&self, due: i64, next: i64, now: i64) -> sqlx::Result<bool> {
        on_pool!(self, claim_model_schedule(due, next, now))
    }

    /// Records what the last scheduled training gave (JSON).
    pub async fn record_model_schedule(&self, result: &str) -> sqlx::Result<()> {
        on_pool!(self, record_model_schedule(result))
    }

    /// Closed leads in arrival order, a page at a time.
    pub async fn closed_leads(
        &self,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> sqlx::Result<Vec<LeadRow>> {
        on_pool!(self, closed_leads(after, limit))
    }

    /// Makes a model active with its audit row, in one transaction; the version it replaced.
    pub async fn publish_model(
        &self,
        version: i64,
        now: i64,
        audit: impl FnOnce(Option<i64>) -> AuditRow,
    ) -> sqlx::Result<Option<i64>> {
        match self {
            Store::Sqlite { pool, .. } => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let previous = sqlite::publish_model(&mut tx, version, now).await?;
                sqlite::insert_audit(&mut tx, &audit(previous)).await?;
                tx.commit().await?;
                Ok(previous)
            }
            Store::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let previous = postgres::publish_model(&mut tx, version, now).await?;
                postgres::insert_audit(&mut tx, &audit(previous)).await?;
                tx.commit().await?;
                Ok(previous)
            }
        }
    }

    /// Saves a draft under the next version, with who saved it; returns the version.
    pub async fn insert_rule_set(
        &self,
        name: Option<&str>,
        document: &str,
        now: i64,
        created_by: Option<&str>,
    ) -> sqlx::Result<i64> {
        on_pool!(self, insert_rule_set(name, document, now, created_by))
    }

    /// Makes a version the active one and retires the one before, whose version is returned;
    /// `audit` turns that into the audit row written in the same transaction.
    pub async fn publish_rule_set(
        &self,
        version: i64,
        now: i64,
        audit: impl FnOnce(Option<i64>) -> Option<AuditRow>,
    ) -> sqlx::Result<Option<i64>> {
        match self {
            Store::Sqlite { pool, .. } => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let previous = sqlite::publish_rule_set(&mut tx, version, now).await?;
                if let Some(row) = audit(previous) {
                    sqlite::insert_audit(&mut tx, &row).await?;
                }
                tx.commit().await?;
                Ok(previous)
            }
            Store::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let previous = postgres::publish_rule_set(&mut tx, version, now).await?;
                if let Some(row) = audit(previous) {
                    postgres::insert_audit(&mut tx, &row).await?;
                }
                tx.commit().await?;
                Ok(previous)
            }
        }
    }

    pub async fn insert_api_key(&self, row: &ApiKeyRow) -> sqlx::Result<()> {
        on_pool!(self, insert_api_key(row))
    }

    pub async fn list_api_keys(&self) -> sqlx::Result<Vec<ApiKeyRow>> {
        on_pool!(self, list_api_keys())
    }

    pub async fn get_api_key(&self, id: &str) -> sqlx::Result<Option<ApiKeyRow>> {
        on_pool!(self, get_api_key(id))
    }

    pub async fn revoke_api_key(&self, id: &str, at: i64) -> sqlx::Result<bool> {
        on_pool!(self, revoke_api_key(id, at))
    }

    pub async fn revoke_user_keys(&self, user_id: &str, at: i64) -> sqlx::Result<()> {
        on_pool!(self, revoke_user_keys(user_id, at))
    }

    pub async fn list_users(&self) -> sqlx::Result<Vec<UserRow>> {
        on_pool!(self, list_users())
    }

    pub async fn get_user(&self, id: &str) -> sqlx::Result<Option<UserRow>> {
        on_pool!(self, get_user(id))
    }

    pub async fn user_by_name(&self, username: &str) -> sqlx::Result<Option<UserRow>> {
        on_pool!(self, user_by_name(username))
    }

    pub async fn upsert_user(&self, row: &UserRow) -> sqlx::Result<()> {
        on_pool!(self, upsert_user(row))
    }

    /// Creates or replaces a user under [`Write`], as [`Store::write_rep`] (a taken username
    /// counts as a taken id).
    pub async fn write_user(
        &self,
        row: &mut UserRow,
        write: Write,
        audit: &AuditRow,
    ) -> sqlx::Result<bool> {
        let version = on_pool!(self, write_user(row, write, audit))?;
        Ok(stamp(&mut row.version, version))
    }

    /// Counts a failed login and locks the account at `limit`; the row after.
    pub async fn record_failed_login(
        &self,
        user_id: &str,
        now: i64,
        limit: i64,
        lock_micros: i64,
    ) -> sqlx::Result<Option<UserRow>> {
        on_pool!(self, record_failed_login(user_id, now, limit, lock_micros))
    }

    pub async fn reset_failed_logins(&self, user_id: &str) -> sqlx::Result<()> {
        on_pool!(self, reset_failed_logins(user_id))
    }

    pub async fn insert_session(&self, row: &SessionRow) -> sqlx::Result<()> {
        on_pool!(self, insert_session(row))
    }

    pub async fn get_session(&self, id_hash: &str) -> sqlx::Result<Option<SessionRow>> {
        on_pool!(self, get_session(id_hash))
    }

    pub async fn touch_session(&self, id_hash: &str, at: i64) -> sqlx::Result<()> {
        on_pool!(self, touch_session(id_hash, at))
    }

    pub async fn delete_session(&self, id_hash: &str) -> sqlx::Result<()> {
        on_pool!(self, delete_session(id_hash))
    }

    pub async fn delete_user_sessions(&self, user_id: &str) -> sqlx::Result<()> {
        on_pool!(self, delete_user_sessions(user_id))
    }

    /// Leads that arrived in `[from, to)` in arrival order, a page after `after`.
    pub async fn leads_in_arrival_order(
        &self,
        from: i64,
        to: i64,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> sqlx::Result<Vec<LeadRow>> {
        on_pool!(self, leads_in_arrival_order(from, to, after, limit))
    }

    pub async fn count_leads_arrived(&self, from: i64, to: i64) -> sqlx::Result<i64> {
        on_pool!(self, count_leads_arrived(from, to))
    }

    /// The audit log's changes of rep availability before `until`, oldest first.
    pub async fn rep_status_changes(&self, until: i64) -> sqlx::Result<Vec<AuditRow>> {
        on_pool!(self, rep_status_changes(until))
    }

    pub async fn insert_simulation(&self, row: &SimulationRow) -> sqlx::Result<()> {
        on_pool!(self, insert_simulation(row))
    }

    pub async fn get_simulation(&self, id: &str) -> sqlx::Result<Option<SimulationRow>> {
        on_pool!(self, get_simulation(id))
    }

    pub async fn list_simulations(&self, limit: i64) -> sqlx::Result<Vec<SimulationRow>> {
        on_pool!(self, list_simulations(limit))
    }

    /// Records a running simulation's progress; whether it should stop (cancelled, or gone).
    pub async fn simulation_progress(
        &self,
        id: &str,
        status: &str,
        done: i64,
        total: i64,
        at: i64,
    ) -> sqlx::Result<bool> {
        on_pool!(self, simulation_progress(id, status, done, total, at))
    }

    pub async fn finish_simulation(
        &self,
        id: &str,
        status: &str,
        report: Option<&str>,
        error: Option<&str>,
        at: i64,
    ) -> sqlx::Result<()> {
        on_pool!(self, finish_simulation(id, status, report, error, at))
    }

    pub async fn cancel_simulation(&self, id: &str, at: i64) -> sqlx::Result<bool> {
        on_pool!(self, cancel_simulation(id, at))
    }

    pub async fn insert_audit(&self, row: &AuditRow) -> sqlx::Result<()> {
        on_pool!(self, insert_audit(row))
    }

    /// Who did `actions` to objects of `kind`, newest first: `(target id, actor)`.
    pub async fn audit_actors(
        &self,
        kind: &str,
        actions: &[&str],
    ) -> sqlx::Result<Vec<(String, String)>> {
        on_pool!(self, audit_actors(kind, actions))
    }

    pub async fn list_audit(
        &self,
        before_id: Option<&str>,
        limit: i64,
    ) -> sqlx::Result<Vec<AuditRow>> {
        on_pool!(self, list_audit(before_id, limit))
    }

    pub async fn find_api_key(&self, hash: &str) -> sqlx::Result<Option<ApiKeyRow>> {
        on_pool!(self, find_api_key(hash))
    }

    pub async fn workspace_setting(&self, name: &str) -> sqlx::Result<Option<WorkspaceSettingRow>> {
        on_pool!(self, workspace_setting(name))
    }

    /// Writes a workspace setting if its stored version is still `expected` (0: none stored),
    /// with its audit row, and moves the configuration version; the new version, or `None`
    /// when another write came first.
    pub async fn write_workspace_setting(
        &self,
        row: &WorkspaceSettingRow,
        expected: i64,
        audit: &AuditRow,
    ) -> sqlx::Result<Option<i64>> {
        on_pool!(self, write_workspace_setting(row, expected, audit))
    }

    /// Stores an internal marker (no audit, the configuration does not move).
    pub async fn put_workspace_setting(&self, row: &WorkspaceSettingRow) -> sqlx::Result<()> {
        on_pool!(self, put_workspace_setting(row))
    }

    /// Leads after `after` in id order.
    pub async fn leads_after(&self, after: &str, limit: i64) -> sqlx::Result<Vec<LeadRow>> {
        on_pool!(self, leads_after(after, limit))
    }

    pub async fn insert_customer_keys(&self, rows: &[CustomerKeyRow]) -> sqlx::Result<()> {
        on_pool!(self, insert_customer_keys(rows))
    }

    /// Leads recorded under any of these keys, newest first, at most `limit` rows.
    pub async fn leads_by_customer_keys(
        &self,
        keys: &[(String, String)],
        limit: i64,
    ) -> sqlx::Result<Vec<CustomerKeyRow>> {
        on_pool!(self, leads_by_customer_keys(keys, limit))
    }

    pub async fn leads_by_ids(&self, ids: &[String]) -> sqlx::Result<Vec<LeadRow>> {
        on_pool!(self, leads_by_ids(ids))
    }

    pub async fn list_duplicate_pairs(
        &self,
        status: &str,
        after: Option<&str>,
        limit: i64,
    ) -> sqlx::Result<Vec<DuplicatePairRow>> {
        on_pool!(self, list_duplicate_pairs(status, after, limit))
    }

    pub async fn get_duplicate_pair(&self, id: &str) -> sqlx::Result<Option<DuplicatePairRow>> {
        on_pool!(self, get_duplicate_pair(id))
    }

    /// Dismisses an open pair with its audit row; whether it was still open.
    pub async fn dismiss_duplicate_pair(
        &self,
        id: &str,
        by: &str,
        at: i64,
        audit: &AuditRow,
    ) -> sqlx::Result<bool> {
        on_pool!(self, dismiss_duplicate_pair(id, by, at, audit))
    }

    pub async fn get_lead(&self, id: &str) -> sqlx::Result<Option<LeadRow>> {
        on_pool!(self, get_lead(id))
    }

    /// How many leads a filter matches.
    pub async fn count_leads(&self, filter: &LeadFilter) -> sqlx::Result<i64> {
        on_pool!(self, count_leads(filter))
    }

    pub async fn list_leads(&self, filter: &LeadFilter) -> sqlx::Result<Vec<LeadRow>> {
        on_pool!(self, list_leads(filter))
    }

    pub async fn decisions_for(&self, lead_id: &str) -> sqlx::Result<Vec<DecisionRow>> {
        on_pool!(self, decisions_for(lead_id))
    }

    pub async fn load_rep_states(&self) -> sqlx::Result<Vec<RepStateRow>> {
        on_pool!(self, load_rep_states())
    }

    pub async fn count_open_leads(&self) -> sqlx::Result<Vec<(String, i64)>> {
        on_pool!(self, count_open_leads())
    }

    /// A connection for routing transactions ([`RoutingConnection::begin`]): on SQLite the one
    /// writer connection, on PostgreSQL one of the pool's. On SQLite the routing worker waits
    /// for it while another holds it: drop it after the commit.
    pub async fn routing_connection(&self) -> sqlx::Result<RoutingConnection> {
        let inner = match self {
            Store::Sqlite {
                writer, waiting, ..
            } => Connection::Sqlite(acquire_writer(writer, waiting).await?),
            Store::Postgres(pool) => Connection::Postgres(pool.acquire().await?),
        };
        let flush = match self {
            Store::Sqlite { log, .. } => log.clone().map(Flush::Log),
            Store::Postgres(pool) => Some(Flush::Commit(pool.clone())),
        };
        Ok(RoutingConnection { inner, flush })
    }

    /// Whether the routing worker may route its next batch while the last one writes: its
    /// reads of the customers then go to a reader connection, which sees every commit but not
    /// the batch being written, and the routing connection's [`RoutingTx::data_version`]
    /// tells afterwards whether anyone else committed meanwhile. Only an SQLite file: a
    /// database in memory has no readers beside the writer, and on PostgreSQL other instances
    /// write.
    pub fn reads_ahead(&self) -> bool {
        matches!(self, Store::Sqlite { log: Some(_), .. })
    }

    /// [`RoutingTx::recognise`] on a reader connection, outside any routing transaction
    /// ([`Store::reads_ahead`]).
    pub async fn recognise(&self, wanted: &Recognise<'_>) -> sqlx::Result<Recognised> {
        on_pool!(self, recognise(wanted))
    }

    /// Whether someone waits for SQLite's one writer connection (the tallies' fold, a rep's
    /// deletion): the routing worker, which keeps it from batch to batch, lets it go then.
    /// Always `false` on PostgreSQL, whose pool has a connection for each.
    pub fn writer_wanted(&self) -> bool {
        match self {
            Store::Sqlite { waiting, .. } => waiting.load(Ordering::SeqCst) > 0,
            Store::Postgres(_) => false,
        }
    }
}

/// Takes SQLite's writer connection, counted in `waiting` while it waits.
pub(crate) async fn acquire_writer(
    writer: &SqlitePool,
    waiting: &AtomicUsize,
) -> sqlx::Result<sqlx::pool::PoolConnection<sqlx::Sqlite>> {
    /// Counts one wait, until dropped (also when the wait is given up half-way).
    struct Waiting<'a>(&'a AtomicUsize);
    impl Drop for Waiting<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
    waiting.fetch_add(1, Ordering::SeqCst);
    let _waiting = Waiting(waiting);
    writer.acquire().await
}

/// The connection routing transactions run on. The routing worker keeps it from one batch to
/// the next while jobs keep coming and nobody else waits for it ([`Store::writer_wanted`]): a
/// connection handed back to the pool is first pinged on its own thread, and the next batch
/// would wait for that hand-over, a few hundred microseconds under load. Dropping it gives it
/// back (after a rollback, if a transaction was left open).
#[derive(Debug)]
pub struct RoutingConnection {
    inner: Connection,
    flush: Option<Flush>,
}

#[derive(Debug)]
enum Connection {
    Sqlite(sqlx::pool::PoolConnection<sqlx::Sqlite>),
    Postgres(sqlx::pool::PoolConnection<sqlx::Postgres>),
}

impl RoutingConnection {
    /// Starts the one kind of transaction that changes routing state. Only one runs at a time
    /// across every instance: SQLite's write lock, PostgreSQL's advisory lock.
    pub async fn begin(&mut self) -> sqlx::Result<RoutingTx<'_>> {
        let inner = match &mut self.inner {
            Connection::Sqlite(conn) => Transaction::Sqlite(sqlite::begin_routing(conn).await?),
            Connection::Postgres(conn) => {
                Transaction::Postgres(postgres::begin_routing(conn).await?)
            }
        };
        Ok(RoutingTx {
            inner,
            flush: self.flush.clone(),
        })
    }
}

/// SQLite's write-ahead log, `<database>-wal`, which the routing transactions' answers wait
/// for ([`Unsynced`]).
#[derive(Clone, Debug)]
pub struct WalFile(Arc<Path>);

/// The log file of the database file `database`.
fn wal_path(database: &Path) -> std::path::PathBuf {
    let mut path = database.as_os_str().to_owned();
    path.push("-wal");
    path.into()
}

impl WalFile {
    /// Flushes the log to disk: every commit written to it so far, by any connection, is then
    /// durable. The log is there while any connection to the database is open, and the pools
    /// keep theirs for minutes after a commit; a log that is not there is an error, not a
    /// flush skipped.
    async fn sync(&self) -> std::io::Result<()> {
        let path = Arc::clone(&self.0);
        let synced = tokio::task::spawn_blocking(move || {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&*path)?
                .sync_data()
        });
        synced.await.map_err(std::io::Error::other)?
    }
}

/// How the routing transactions' commits, which do not wait for the disk, are made durable.
#[derive(Clone, Debug)]
enum Flush {
    /// SQLite: the write-ahead log is flushed to disk.
    Log(WalFile),
    /// PostgreSQL: a commit that waits for the disk follows them. PostgreSQL writes its log in
    /// order, so once that commit is on disk, every commit before it is too.
    Commit(PgPool),
}

/// What the commit that makes the routing transactions durable writes: a commit that wrote
/// nothing would not wait for the disk.
const FLUSH_COMMIT: &str = "INSERT INTO flushes (id, flushes) VALUES (1, 1) \
    ON CONFLICT (id) DO UPDATE SET flushes = flushes.flushes + 1";

impl Flush {
    async fn flush(&self) -> sqlx::Result<()> {
        match self {
            Flush::Log(log) => Ok(log.sync().await?),
            // It waits for the disk as every commit does, unless the server was told otherwise
            // (`synchronous_commit`): then the routing commits are as durable as the rest.
            Flush::Commit(pool) => {
                let written = sqlx::query(FLUSH_COMMIT)
                    .execute(pool)
                    .await?
                    .rows_affected();
                if written != 1 {
                    return Err(sqlx::Error::Protocol(format!(
                        "the flushing commit wrote {written} rows, not 1"
                    )));
                }
                Ok(())
            }
        }
    }
}

/// A committed routing transaction that may not be on disk yet (neither SQLite's writer nor
/// PostgreSQL's routing transactions wait for the disk): visible to every reader, but not to
/// be acknowledged before [`durable`](Unsynced::durable).
#[derive(Debug)]
#[must_use = "a commit is acknowledged only once durable"]
pub struct Unsynced {
    flush: Option<Flush>,
}

impl Unsynced {
    /// Waits until this commit, and every commit before it, survives a power loss: one flush
    /// answers for all the commits before it, so a caller with several waits for the last one
    /// only.
    pub async fn durable(&self) -> sqlx::Result<()> {
        match &self.flush {
            Some(flush) => flush.flush().await,
            None => Ok(()),
        }
    }

    /// Whether the commit is durable already (an SQLite database in memory): nothing for
    /// `durable` to wait for.
    pub fn is_durable(&self) -> bool {
        self.flush.is_none()
    }
}

#[derive(Debug)]
enum Transaction<'c> {
    Sqlite(sqlite::Tx<'c>),
    Postgres(postgres::Tx<'c>),
}

/// A transaction holding the routing lock: read state, write leads, decisions and state
/// changes, commit together.
#[derive(Debug)]
pub struct RoutingTx<'c> {
    inner: Transaction<'c>,
    flush: Option<Flush>,
}

impl RoutingTx<'_> {
    pub async fn versions(&mut self) -> sqlx::Result<(i64, i64)> {
        on_tx!(self, versions())
    }

    /// SQLite's `data_version` of the routing connection: it changes when any other
    /// connection commits, and only then. Two routing transactions on one connection that read
    /// the same value had no commit by anyone else between them ([`Store::reads_ahead`]).
    /// `None` on PostgreSQL, where other instances write.
    pub async fn data_version(&mut self) -> sqlx::Result<Option<i64>> {
        match &mut self.inner {
            Transaction::Sqlite(tx) => sqlx::query_scalar("PRAGMA data_version")
                .fetch_one(&mut **tx)
                .await
                .map(Some),
            Transaction::Postgres(_) => Ok(None),
        }
    }

    pub async fn list_reps(&mut self) -> sqlx::Result<Vec<RepRow>> {
        on_tx!(self, list_reps())
    }

    pub async fn list_teams(&mut self) -> sqlx::Result<Vec<TeamRow>> {
        on_tx!(self, list_teams())
    }

    pub async fn list_pools(&mut self) -> sqlx::Result<Vec<PoolRow>> {
        on_tx!(self, list_pools())
    }

    pub async fn list_custom_fields(&mut self) -> sqlx::Result<Vec<CustomFieldRow>> {
        on_tx!(self, list_custom_fields())
    }

    pub async fn active_rule_set(&mut self) -> sqlx::Result<Option<RuleSetRow>> {
        on_tx!(self, active_rule_set())
    }

    pub async fn active_model(&mut self) -> sqlx::Result<Option<ModelRow>> {
        on_tx!(self, active_model())
    }

    pub async fn list_settings(&mut self, setting: Setting) -> sqlx::Result<Vec<DocRow>> {
        on_tx!(self, list_settings(setting))
    }

    pub async fn list_stats(&mut self, dimension: &str) -> sqlx::Result<Vec<StatsRow>> {
        on_tx!(self, list_stats(dimension))
    }

    /// A rep's leads nobody has worked yet.
    pub async fn untouched_leads(&mut self, owner: &str, limit: i64) -> sqlx::Result<Vec<LeadRow>> {
        on_tx!(self, untouched_leads(owner, limit))
    }

    pub async fn leads_by_ids(&mut self, ids: &[String]) -> sqlx::Result<Vec<LeadRow>> {
        on_tx!(self, leads_by_ids(ids))
    }

    pub async fn insert_activity(&mut self, row: &ActivityRow) -> sqlx::Result<()> {
        on_tx!(self, insert_activity(row))
    }

    pub async fn insert_feedback(&mut self, row: &FeedbackRow) -> sqlx::Result<()> {
        on_tx!(self, insert_feedback(row))
    }

    /// Drops every timer of these leads before their clocks are set again.
    pub async fn delete_timers_of(&mut self, lead_ids: &[String]) -> sqlx::Result<()> {
        on_tx!(self, delete_timers_of(lead_ids))
    }

    pub async fn delete_timers(&mut self, ids: &[String]) -> sqlx::Result<()> {
        on_tx!(self, delete_timers(ids))
    }

    /// Notes that the SLA clock reminded or escalated about these leads at `at`: each
    /// `(lead id, missed_by)`, the lead's reps missed under so far (`LeadRow::missed_by`).
    pub async fn mark_sla_missed(
        &mut self,
        leads: &[(String, String)],
        at: i64,
    ) -> sqlx::Result<()> {
        on_tx!(self, mark_sla_missed(leads, at))
    }

    pub async fn insert_timers(&mut self, rows: &[TimerRow]) -> sqlx::Result<()> {
        on_tx!(self, insert_timers(rows))
    }

    /// Due timers, earliest first, locked (PostgreSQL skips rows another instance holds).
    pub async fn due_timers(&mut self, now: i64, limit: i64) -> sqlx::Result<Vec<TimerRow>> {
        on_tx!(self, due_timers(now, limit))
    }

    pub async fn insert_outbox(&mut self, rows: &[OutboxRow]) -> sqlx::Result<()> {
        on_tx!(self, insert_outbox(rows))
    }

    /// Claims the rep made since `since` (micros).
    pub async fn claims_since(&mut self, rep_id: &str, since: i64) -> sqlx::Result<i64> {
        on_tx!(self, claims_since(rep_id, since))
    }

    /// Until when the rep may not claim the lead back, if they had it.
    pub async fn claim_block(&mut self, lead_id: &str, rep_id: &str) -> sqlx::Result<Option<i64>> {
        on_tx!(self, claim_block(lead_id, rep_id))
    }

    /// `(lead_id, rep_id, until)`, one row per pair.
    pub async fn upsert_claim_blocks(
        &mut self,
        rows: &[(String, String, i64)],
    ) -> sqlx::Result<()> {
        on_tx!(self, upsert_claim_blocks(rows))
    }

    /// `((dimension, key), delta)`, one row per key.
    pub async fn add_stats(&mut self, rows: &[((String, String), StatsDelta)]) -> sqlx::Result<()> {
        on_tx!(self, add_stats(rows))
    }

    pub async fn load_rep_states(&mut self) -> sqlx::Result<Vec<RepStateRow>> {
        on_tx!(self, load_rep_states())
    }

    pub async fn load_rotations(&mut self) -> sqlx::Result<Vec<RotationRow>> {
        on_tx!(self, load_rotations())
    }

    pub async fn workspace_setting(
        &mut self,
        name: &str,
    ) -> sqlx::Result<Option<WorkspaceSettingRow>> {
        on_tx!(self, workspace_setting(name))
    }

    pub async fn insert_customer_keys(&mut self, rows: &[CustomerKeyRow]) -> sqlx::Result<()> {
        on_tx!(self, insert_customer_keys(rows))
    }

    /// Leads recorded under any of these keys, newest first, at most `limit` rows.
    pub async fn leads_by_customer_keys(
        &mut self,
        keys: &[(String, String)],
        limit: i64,
    ) -> sqlx::Result<Vec<CustomerKeyRow>> {
        on_tx!(self, leads_by_customer_keys(keys, limit))
    }

    pub async fn insert_duplicate_pairs(&mut self, rows: &[DuplicatePairRow]) -> sqlx::Result<()> {
        on_tx!(self, insert_duplicate_pairs(rows))
    }

    pub async fn get_duplicate_pair(&mut self, id: &str) -> sqlx::Result<Option<DuplicatePairRow>> {
        on_tx!(self, get_duplicate_pair(id))
    }

    /// Closes an open pair as `merged` or `dismissed`; whether it was still open.
    pub async fn resolve_duplicate_pair(
        &mut self,
        id: &str,
        status: &str,
        by: &str,
        at: i64,
    ) -> sqlx::Result<bool> {
        on_tx!(self, resolve_duplicate_pair(id, status, by, at))
    }

    /// Moves a merged lead's activities and feedback to the lead it was merged into and closes
    /// the open pairs between the two.
    pub async fn move_lead_history(
        &mut self,
        from: &str,
        to: &str,
        by: &str,
        at: i64,
    ) -> sqlx::Result<()> {
        on_tx!(self, move_lead_history(from, to, by, at))
    }

    pub async fn get_lead(&mut self, id: &str) -> sqlx::Result<Option<LeadRow>> {
        on_tx!(self, get_lead(id))
    }

    /// The owners of phones and emails, the leads recorded under customer keys (newest first,
    /// at most `limit`) and the leads stored under external ids, in one statement.
    pub async fn recognise(&mut self, wanted: &Recognise<'_>) -> sqlx::Result<Recognised> {
        on_tx!(self, recognise(wanted))
    }

    /// Records the owners of contacts: `(kind, value, owner_id, at)`.
    pub async fn upsert_contacts(
        &mut self,
        rows: &[(String, String, String, i64)],
    ) -> sqlx::Result<()> {
        on_tx!(self, upsert_contacts(rows))
    }

    /// The hold queue: held leads, most urgent first, then oldest.
    pub async fn held_leads(&mut self, limit: i64) -> sqlx::Result<Vec<LeadRow>> {
        on_tx!(self, held_leads(limit))
    }

    pub async fn insert_leads(&mut self, rows: &[LeadRow]) -> sqlx::Result<()> {
        on_tx!(self, insert_leads(rows))
    }

    /// Deletes a rep who holds no open lead, with its audit row: `None` when there is no such
    /// rep, else the open leads they hold (0: deleted). Under the routing lock, so no lead is
    /// routed to them in between.
    pub async fn delete_idle_rep(
        &mut self,
        id: &str,
        audit: &AuditRow,
    ) -> sqlx::Result<Option<i64>> {
        on_tx!(self, delete_idle_rep(id, audit))
    }

    /// Audit rows of the changes people made by hand in this transaction.
    pub async fn insert_audit(&mut self, rows: &[AuditRow]) -> sqlx::Result<()> {
        for row in rows {
            on_tx!(self, insert_audit(row))?;
        }
        Ok(())
    }

    pub async fn insert_decisions(&mut self, rows: &[DecisionRow]) -> sqlx::Result<()> {
        on_tx!(self, insert_decisions(rows))
    }

    pub async fn update_lead(&mut self, row: &LeadRow) -> sqlx::Result<()> {
        on_tx!(self, update_lead(row))
    }

    pub async fn upsert_rep_states(&mut self, rows: &[RepStateRow]) -> sqlx::Result<()> {
        on_tx!(self, upsert_rep_states(rows))
    }

    pub async fn upsert_rotations(&mut self, rows: &[RotationRow]) -> sqlx::Result<()> {
        on_tx!(self, upsert_rotations(rows))
    }

    /// The rows the transaction adds (`Routed`), together; the new routing version when the
    /// state moved.
    pub async fn insert_routed(&mut self, routed: &Routed<'_>) -> sqlx::Result<Option<i64>> {
        on_tx!(self, insert_routed(routed))
    }

    /// Marks routing state as changed, so other instances reload it; returns the new version.
    pub async fn bump_routing(&mut self) -> sqlx::Result<i64> {
        on_tx!(self, bump_routing())
    }

    /// Commits and waits until the commit is durable.
    pub async fn commit(self) -> sqlx::Result<()> {
        self.commit_unsynced().await?.durable().await
    }

    /// Commits without waiting for the disk; see [`Unsynced`].
    pub async fn commit_unsynced(self) -> sqlx::Result<Unsynced> {
        match self.inner {
            Transaction::Sqlite(tx) => tx.commit().await?,
            Transaction::Postgres(tx) => tx.commit().await?,
        }
        Ok(Unsynced { flush: self.flush })
    }
}

/// Creates an empty PostgreSQL database next to the one `admin_url` names and returns its URL:
/// each test run gets its own.
pub async fn create_postgres_database(admin_url: &str, name: &str) -> anyhow::Result<String> {
    let options = PgConnectOptions::from_str(admin_url)?;
    let mut connection = sqlx::PgConnection::connect_with(&options).await?;
    let statement = format!("CREATE DATABASE \"{}\"", name.replace('"', ""));
    sqlx::query(sqlx::AssertSqlSafe(statement))
        .execute(&mut connection)
        .await?;
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url, |(base, _)| base);
    Ok(format!("{base}/{name}"))
}

/// What a test database's name starts with; a UUIDv7 follows, whose first twelve hex digits
/// are the milliseconds since 1970 when it was made.
const TEST_DATABASE: &str = "leadroute_test_";

/// How old a test database is before the next test run drops it: no test runs this long.
const TEST_DATABASE_AGE: Duration = Duration::from_secs(3600);

/// At most this many stale test databases are dropped per new one, so no test waits long.
const TEST_DATABASE_SWEEP: usize = 16;

/// Creates a database for a test (`leadroute_test_<UUIDv7>`) and returns its URL, after dropping
/// up to `TEST_DATABASE_SWEEP` test databases older than `TEST_DATABASE_AGE`. A test's
/// database lives as long as its last query, so the tests do not drop their own. Without the
/// sweep, every run left its few hundred on the shared server.
pub async fn create_test_database(admin_url: &str) -> anyhow::Result<String> {
    let options = PgConnectOptions::from_str(admin_url)?;
    let mut connection = sqlx::PgConnection::connect_with(&options).await?;
    // Tidying up after earlier runs: a stale database that cannot be dropped now is no reason
    // for this test to fail, and the next test tries again.
    let _ = sweep_test_databases(&mut connection).await;
    drop(connection);
    let name = format!("{TEST_DATABASE}{}", uuid::Uuid::now_v7().simple());
    create_postgres_database(admin_url, &name).await
}

/// Drops up to `TEST_DATABASE_SWEEP` test databases older than `TEST_DATABASE_AGE`, one test at
/// a time (an advisory lock held by `connection`; the others skip).
async fn sweep_test_databases(connection: &mut sqlx::PgConnection) -> sqlx::Result<()> {
    let sweeping: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(727376)")
        .fetch_one(&mut *connection)
        .await?;
    if !sweeping {
        return Ok(());
    }
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT datname::text FROM pg_database WHERE starts_with(datname::text, $1)",
    )
    .bind(TEST_DATABASE)
    .fetch_all(&mut *connection)
    .await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let cutoff = now.saturating_sub(TEST_DATABASE_AGE).as_millis();
    let stale = names.iter().filter(|name| {
        let made = name
            .strip_prefix(TEST_DATABASE)
            .filter(|rest| rest.len() == 32 && rest.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|uuid| u128::from_str_radix(&uuid[..12], 16).ok());
        made.is_some_and(|made| made < cutoff)
    });
    for name in stale.take(TEST_DATABASE_SWEEP) {
        drop_database(connection, name).await?;
    }
    // The lock goes with the connection, also when a drop above failed.
    Ok(())
}

/// Drops a database made by `create_postgres_database` (a measurement's, when it is done).
pub async fn drop_postgres_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let options = PgConnectOptions::from_str(admin_url)?;
    let mut connection = sqlx::PgConnection::connect_with(&options).await?;
    drop_database(&mut connection, name).await?;
    Ok(())
}

/// `DROP DATABASE` on the admin `connection`, closing its other sessions.
async fn drop_database(connection: &mut sqlx::PgConnection, name: &str) -> sqlx::Result<()> {
    let statement = format!(
        "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
        name.replace('"', "")
    );
    sqlx::query(sqlx::AssertSqlSafe(statement))
        .execute(connection)
        .await
        .map(drop)
}
