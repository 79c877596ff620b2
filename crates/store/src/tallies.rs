//! The dashboard's counts kept as leads are written (`lead_tallies`, migration 0024): what each
//! lead adds, the triggers that append every change of a lead to `lead_tally_deltas`, and the
//! fold that moves the deltas into the tallies. The families (`families`): by status (`s`),
//! owner (`o`), source (`c`) and rule (`r`), per UTC hour the lead came in, and the deals won
//! by owner per UTC hour they closed (`w`, the leaderboard); all but `s` also per UTC day. And
//! one without hours (`n`, hour 0): each owner's open leads now. The triggers are the one
//! writer, so every surface that writes a lead (routing, a patch, an import, an erasure) is
//! counted alike. Every statement here is built from the constants in this file, nothing a
//! user sent.
//!
//! `ensure_*` builds the triggers and counts only where the triggers are missing. A change to
//! what a tally counts must therefore rename the triggers (`TRIGGERS`), so that the next start
//! rebuilds both.

use std::sync::atomic::AtomicUsize;

use sqlx::{PgPool, SqlitePool};

/// A tally's hour: `created_at` in whole UTC hours.
pub(crate) const HOUR: i64 = 3_600_000_000;

impl crate::DashboardWindow {
    /// The whole UTC hours of the window its tallies answer for, `[first, end)` (the rest of
    /// it, part of an hour at either end, is read from the leads): none when its days do not
    /// begin on an hour (the half- and quarter-hour zones, where an hour would straddle two of
    /// its days) or it is one rep's (the tallies are per team, not per rep).
    pub fn tallied_hours(&self) -> Option<(i64, i64)> {
        if self.owner.is_some() || self.day_offset % HOUR != 0 || self.from + self.day_offset < 0 {
            return None;
        }
        let first = (self.from + HOUR - 1).div_euclid(HOUR);
        let end = self.to.div_euclid(HOUR);
        (first < end).then_some((first, end))
    }
}

/// The columns of both tables after their key.
const MEASURES: &str =
    "leads, held, pooled, clocked, missed, reclaims, responded, won, amount, touched";

const COLUMNS: &str = "kind, hour, team_id, key, leads, held, pooled, clocked, missed, reclaims, responded, won, amount, touched";

/// The statuses of a lead someone still works on (as `queries/dashboard.rs`).
const OPEN: &str = "('new', 'assigned', 'contacted', 'qualified')";

/// When the open lead `r` was last touched: its last follow-up, else its assignment, else its
/// arrival (as the dashboard's open figures read it, and `leads_touched` holds it).
pub(crate) fn touched(r: &str) -> String {
    format!("COALESCE({r}.last_activity_at, {r}.assigned_at, {r}.created_at)")
}

/// The lead columns a tally reads: a change to any other column changes no count (the last
/// touch counts to the second, so a follow-up changes the `n` family's `touched`).
const READ: [&str; 15] = [
    "created_at",
    "closed_at",
    "team_id",
    "owner_id",
    "status",
    "source",
    "rule_id",
    "held",
    "hops",
    "amount",
    "pool_id",
    "assigned_at",
    "sla_missed_at",
    "first_response_at",
    "last_activity_at",
];

/// The columns of which only whether they are set counts.
const SET_OR_NOT: [&str; 2] = ["pool_id", "first_response_at"];

/// The rows one lead adds to the tallies, times `sign`: the lead is `r` (a trigger's `NEW` or
/// `OLD`, or an alias in `from`), `filter` limits which leads count. The same arithmetic as the
/// dashboard's pass over the leads (`queries/dashboard.rs`), per family.
fn families(r: &str, sign: i64, from: &str, filter: Option<&str>) -> String {
    let only = |condition: &str| match filter {
        Some(filter) => format!("WHERE ({filter}) AND {condition}"),
        None => format!("WHERE {condition}"),
    };
    let all = filter.map_or(String::new(), |filter| format!("WHERE {filter}"));
    let flag = |condition: String| format!("{sign} * (CASE WHEN {condition} THEN 1 ELSE 0 END)");
    let key = format!("{r}.created_at / {HOUR}, COALESCE({r}.team_id, '')");
    let won = flag(format!("{r}.status = 'won'"));
    let nothing = "0, 0, 0, 0, 0, 0";
    let zero = "CAST(0 AS DOUBLE PRECISION)";
    format!(
        "SELECT 's' AS kind, {r}.created_at / {HOUR} AS hour, COALESCE({r}.team_id, '') AS team_id,
             {r}.status AS key, {sign} AS leads, {held} AS held, {pooled} AS pooled,
             {clocked} AS clocked, {missed} AS missed, {sign} * {r}.hops AS reclaims,
             {responded} AS responded, 0 AS won, {zero} AS amount, 0 AS touched {from} {all}
         UNION ALL
         SELECT 'o', {key}, {r}.owner_id, {sign}, {nothing}, {won},
             {sign} * (CASE WHEN {r}.status = 'won' THEN COALESCE({r}.amount, 0) ELSE 0 END), 0
             {from} {owned}
         UNION ALL
         SELECT 'c', {key}, {r}.source, {sign}, {nothing}, {won}, {zero}, 0 {from} {sourced}
         UNION ALL
         SELECT 'r', {key}, {r}.rule_id, {sign}, {nothing}, {won}, {zero}, 0 {from} {ruled}
         UNION ALL
         SELECT 'w', {r}.closed_at / {HOUR}, COALESCE({r}.team_id, ''), {r}.owner_id, {sign},
             {nothing}, {sign}, {sign} * COALESCE({r}.amount, 0), 0 {from} {closed}
         UNION ALL
         SELECT 'n', 0, COALESCE({r}.team_id, ''), {r}.owner_id, {sign}, 0, 0, 0, {overdue}, 0,
             0, 0, {zero}, {sign} * ({touched} / 1000000) {from} {open}",
        touched = touched(r),
        held = flag(format!("{r}.held")),
        pooled = flag(format!("{r}.owner_id IS NULL AND {r}.pool_id IS NOT NULL")),
        clocked = flag(format!("{r}.assigned_at IS NOT NULL")),
        missed = flag(format!(
            "{r}.assigned_at IS NOT NULL AND ({r}.sla_missed_at IS NOT NULL OR {r}.hops > 0)"
        )),
        responded = flag(format!(
            "{r}.first_response_at IS NOT NULL OR {r}.last_activity_at IS NOT NULL"
        )),
        owned = only(&format!("{r}.owner_id IS NOT NULL")),
        sourced = only(&format!(
            "{r}.source IS NOT NULL AND {r}.status IN ('won', 'lost')"
        )),
        ruled = only(&format!(
            "{r}.rule_id IS NOT NULL AND {r}.status IN ('won', 'lost')"
        )),
        closed = only(&format!(
            "{r}.status = 'won' AND {r}.owner_id IS NOT NULL AND {r}.closed_at IS NOT NULL"
        )),
        overdue = flag(format!(
            "{r}.first_response_at IS NULL AND {r}.sla_missed_at >= {r}.assigned_at"
        )),
        open = only(&format!(
            "{r}.owner_id IS NOT NULL AND {r}.status IN {OPEN}"
        )),
    )
}

/// Whether an update changed anything a tally reads (`distinct` is the backend's "is distinct
/// from": `IS NOT` on SQLite).
fn changed(old: &str, new: &str, distinct: &str) -> String {
    READ.iter()
        .map(|column| {
            if SET_OR_NOT.contains(column) {
                format!("({old}.{column} IS NULL) <> ({new}.{column} IS NULL)")
            } else {
                format!("{old}.{column} {distinct} {new}.{column}")
            }
        })
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// The family rows of `select`, summed per tally (PostgreSQL sums a bigint as numeric).
fn summed(select: &str) -> String {
    format!(
        "SELECT kind, hour, team_id, key, CAST(SUM(leads) AS BIGINT) AS leads,
             CAST(SUM(held) AS BIGINT) AS held, CAST(SUM(pooled) AS BIGINT) AS pooled,
             CAST(SUM(clocked) AS BIGINT) AS clocked, CAST(SUM(missed) AS BIGINT) AS missed,
             CAST(SUM(reclaims) AS BIGINT) AS reclaims,
             CAST(SUM(responded) AS BIGINT) AS responded, CAST(SUM(won) AS BIGINT) AS won,
             SUM(amount) AS amount, CAST(SUM(touched) AS BIGINT) AS touched
         FROM ({select}) f WHERE true GROUP BY kind, hour, team_id, key"
    )
}

/// The hours of a day: the families that need no day of their own (by owner, source, rule and
/// deals won) are kept per UTC hour and again per UTC day, so that a month reads 30 rows of a
/// rep's instead of 720. A day's tally has the family's kind in capitals (`O`, `C`, `R`, `W`)
/// and its first hour as `hour`.
pub(crate) const DAY_HOURS: i64 = 24;

/// The day rows of the families that have days, summed from the hour rows in `hours`.
fn days_of(hours: &str) -> String {
    summed(&format!(
        "SELECT UPPER(kind) AS kind, hour - hour % {DAY_HOURS} AS hour, team_id, key, {MEASURES}
         FROM {hours} WHERE kind IN ('o', 'c', 'r', 'w') AND hour >= 0"
    ))
}

/// Every lead's counts, for the tallies of the leads there were before the triggers: by hour,
/// then the days from the hours.
fn backfill() -> [String; 2] {
    [
        format!(
            "INSERT INTO lead_tallies ({COLUMNS}) {}",
            summed(&families("l", 1, "FROM leads l", None))
        ),
        format!(
            "INSERT INTO lead_tallies ({COLUMNS}) {}",
            days_of("lead_tallies")
        ),
    ]
}

/// Adds the deltas `select` reads to the tallies of their hours and days: summed per hour
/// once, and the days from those sums. `with` names common tables `select` reads.
fn upsert(with: &str, select: &str) -> String {
    let set = MEASURES
        .split(", ")
        .map(|column| format!("{column} = lead_tallies.{column} + excluded.{column}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "WITH {with} hours AS MATERIALIZED ({})
         INSERT INTO lead_tallies ({COLUMNS})
         SELECT {COLUMNS} FROM hours WHERE true UNION ALL {}
         ON CONFLICT (kind, team_id, hour, key) DO UPDATE SET {set}",
        summed(select),
        days_of("hours")
    )
}

/// The triggers on `leads` that keep the tallies (on PostgreSQL, each runs the function of its
/// name): insert, update, delete. Their names carry what they count: a change to it (such as
/// the daily tallies, `_2`) renames them, so that the next start finds them missing and
/// rebuilds the triggers and the counts. `ensure_*` drops every other `leads_tally_` trigger.
const TRIGGERS: [&str; 3] = [
    "leads_tally_2_insert",
    "leads_tally_2_update",
    "leads_tally_2_delete",
];

/// Whether the tally triggers there, by name, are all and only `TRIGGERS`; the names are read
/// from the catalogue, and only plain names of ours come back to be dropped.
fn complete(present: &mut Vec<String>) -> bool {
    present.retain(|name| {
        name.starts_with("leads_tally_")
            && name
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_')
    });
    present.sort();
    let mut wanted = TRIGGERS.map(str::to_owned).to_vec();
    wanted.sort();
    *present == wanted
}

/// Creates SQLite's triggers (row by row: `UPDATE OF` the columns read, when one of them
/// changed) and counts the leads already there, in one transaction, once.
pub(crate) async fn ensure_sqlite(pool: &SqlitePool) -> sqlx::Result<()> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let mut present: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'leads_tally_%'",
    )
    .fetch_all(&mut *tx)
    .await?;
    if complete(&mut present) {
        return tx.commit().await;
    }
    let insert = format!("INSERT INTO lead_tally_deltas ({COLUMNS})");
    let [on_insert, on_update, on_delete] = TRIGGERS;
    let statements = present
        .iter()
        .map(|name| format!("DROP TRIGGER {name}"))
        .chain([
            "DELETE FROM lead_tally_deltas".to_owned(),
            "DELETE FROM lead_tallies".to_owned(),
            format!(
                "CREATE TRIGGER {on_insert} AFTER INSERT ON leads BEGIN
                     {insert} {}; END",
                families("NEW", 1, "", None)
            ),
            format!(
                "CREATE TRIGGER {on_delete} AFTER DELETE ON leads BEGIN
                     {insert} {}; END",
                families("OLD", -1, "", None)
            ),
            format!(
                "CREATE TRIGGER {on_update} AFTER UPDATE OF {} ON leads WHEN {} BEGIN
                     {insert} {} UNION ALL {}; END",
                READ.join(", "),
                changed("OLD", "NEW", "IS NOT"),
                families("OLD", -1, "", None),
                families("NEW", 1, "", None)
            ),
        ])
        .chain(backfill());
    for statement in statements {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

/// The key of the advisory lock that lets one instance at a time create the triggers or fold.
const LOCK: i64 = 727_375;

/// Creates PostgreSQL's triggers (per statement, over its transition tables, so a batch of a
/// thousand leads appends its sums once) and counts the leads already there, in one
/// transaction, once: creating a trigger locks out writers to `leads` until the count is in.
pub(crate) async fn ensure_postgres(pool: &PgPool) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(LOCK)
        .execute(&mut *tx)
        .await?;
    let mut present: Vec<String> = sqlx::query_scalar(
        "SELECT tgname::text FROM pg_trigger
         WHERE tgname LIKE 'leads_tally_%' AND NOT tgisinternal",
    )
    .fetch_all(&mut *tx)
    .await?;
    if complete(&mut present) {
        return tx.commit().await;
    }
    let append = |body: String| {
        format!(
            "INSERT INTO lead_tally_deltas ({COLUMNS}) {}",
            summed(&body)
        )
    };
    let function = |name: &str, body: String| {
        format!(
            "CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $body$
             BEGIN {body}; RETURN NULL; END $body$"
        )
    };
    let both = "FROM old_rows o JOIN new_rows n ON n.id = o.id";
    let moved = changed("o", "n", "IS DISTINCT FROM");
    let [on_insert, on_update, on_delete] = TRIGGERS;
    let statements = present
        .iter()
        .flat_map(|name| {
            [
                format!("DROP TRIGGER {name} ON leads"),
                format!("DROP FUNCTION IF EXISTS {name}()"),
            ]
        })
        .chain([
            "DELETE FROM lead_tally_deltas".to_owned(),
            "DELETE FROM lead_tallies".to_owned(),
            function(on_insert, append(families("n", 1, "FROM new_rows n", None))),
            function(
                on_delete,
                append(families("o", -1, "FROM old_rows o", None)),
            ),
            function(
                on_update,
                append(format!(
                    "{} UNION ALL {}",
                    families("o", -1, both, Some(&moved)),
                    families("n", 1, both, Some(&moved))
                )),
            ),
            format!(
                "CREATE TRIGGER {on_insert} AFTER INSERT ON leads REFERENCING NEW TABLE AS new_rows
                     FOR EACH STATEMENT EXECUTE FUNCTION {on_insert}()"
            ),
            format!(
                "CREATE TRIGGER {on_delete} AFTER DELETE ON leads REFERENCING OLD TABLE AS old_rows
                     FOR EACH STATEMENT EXECUTE FUNCTION {on_delete}()"
            ),
            format!(
                "CREATE TRIGGER {on_update} AFTER UPDATE ON leads
                     REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
                     FOR EACH STATEMENT EXECUTE FUNCTION {on_update}()"
            ),
        ])
        .chain(backfill());
    for statement in statements {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

/// How many deltas one of SQLite's fold transactions moves at most: the fold writes on the
/// routing's one connection, so a burst of deltas is moved a few milliseconds at a time
/// rather than in one pause that intake waits behind.
const FOLD_CHUNK: i64 = 4_000;

/// Moves SQLite's deltas into the tallies (on the writer, oldest first, `FOLD_CHUNK` per write
/// transaction); how many tallies it changed. It takes the writer once per chunk, counted in
/// `waiting`, so the routing worker lets the connection go for each.
pub(crate) async fn fold_sqlite(writer: &SqlitePool, waiting: &AtomicUsize) -> sqlx::Result<u64> {
    let mut folded = 0;
    loop {
        let mut conn = crate::acquire_writer(writer, waiting).await?;
        let any: Option<i64> = sqlx::query_scalar("SELECT 1 FROM lead_tally_deltas LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?;
        if any.is_none() {
            return Ok(folded);
        }
        let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?;
        let (cut, count): (Option<i64>, i64) = sqlx::query_as(
            "SELECT MAX(rowid), COUNT(*) FROM
                 (SELECT rowid FROM lead_tally_deltas ORDER BY rowid LIMIT $1)",
        )
        .bind(FOLD_CHUNK)
        .fetch_one(&mut *tx)
        .await?;
        let Some(cut) = cut else {
            return tx.commit().await.map(|()| folded);
        };
        folded += sqlx::query(sqlx::AssertSqlSafe(upsert(
            "",
            &format!("SELECT {COLUMNS} FROM lead_tally_deltas WHERE rowid <= $1"),
        )))
        .bind(cut)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("DELETE FROM lead_tally_deltas WHERE rowid <= $1")
            .bind(cut)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if count < FOLD_CHUNK {
            return Ok(folded);
        }
    }
}

/// The same on PostgreSQL: the deltas deleted are the ones added, in one statement, by one
/// instance at a time (the others skip this round); writers keep appending meanwhile.
pub(crate) async fn fold_postgres(pool: &PgPool) -> sqlx::Result<u64> {
    let mut tx = pool.begin().await?;
    let ours: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(LOCK)
        .fetch_one(&mut *tx)
        .await?;
    if !ours {
        return Ok(0);
    }
    let folded = sqlx::query(sqlx::AssertSqlSafe(upsert(
        &format!("moved AS (DELETE FROM lead_tally_deltas RETURNING {COLUMNS}),"),
        &format!("SELECT {COLUMNS} FROM moved"),
    )))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(folded)
}
