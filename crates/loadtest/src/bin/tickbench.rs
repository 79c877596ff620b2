//! Benchmark of the SLA clock's `tick`, on SQLite (or PostgreSQL with `--database-url`):
//!
//! - an idle tick with a million open leads, each with its first-response ladder pending
//!   (its next timer stored; the rungs after it are planned when it fires), and nothing due —
//!   against the floor of a bare round trip (`ping`) on the same pool;
//! - ten thousand due reminders fired, outbox rows written, timers deleted — against the floor
//!   of writing the same number of outbox rows and deleting as many timers in one raw
//!   transaction;
//! - the console dashboard's figures over a month holding all of those leads, spread over its
//!   30 days, a third of them answered, across four sources and five rules, and a quarter as
//!   many closed (won or lost) — against a GROUP BY over the open leads (`count_open_leads`);
//!   and the same figures counted from the leads instead of the tallies kept as they are
//!   written (`dashboard_from_leads`), which must agree.
//!
//! `cargo build --release -p loadtest && target/release/tickbench` (`--leads 1000000` is the
//! default; `--runs` repeats each measurement and the table shows medians).

use std::time::Instant;

use chrono::Utc;
use clap::Parser;
use store::{LeadRow, OutboxRow, Store, TimerRow};

#[derive(Debug, Parser)]
struct Args {
    /// PostgreSQL URL of a server to create a fresh database on; SQLite when left out.
    #[arg(long)]
    database_url: Option<String>,
    /// Open leads with pending timers, spread over the month the dashboard shows.
    #[arg(long, default_value_t = 1_000_000)]
    leads: usize,
    /// Closed leads (won or lost) in the same month, without timers.
    #[arg(long, default_value_t = 250_000)]
    closed: usize,
    /// Due reminders to fire.
    #[arg(long, default_value_t = 10_000)]
    due: usize,
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Measure the dashboard on PostgreSQL without first refreshing the planner's statistics
    /// and visibility map (as autovacuum, which the test servers here run without, would).
    #[arg(long)]
    no_vacuum: bool,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn id() -> String {
    uuid::Uuid::now_v7().to_string()
}

const DAY: i64 = 86_400_000_000;
const MONTH: i64 = 30 * DAY;

/// Where the dashboard's leads came from and the rules that routed them.
const SOURCES: [&str; 4] = ["巨量引擎", "百度", "官网", "展会"];
const RULES: [&str; 5] = ["r-east", "r-south", "r-north", "r-key", "r-rest"];

/// The `index`th lead, one of a hundred reps', assigned when it came in at `created` and not
/// answered yet.
fn lead(index: usize, created: i64) -> LeadRow {
    LeadRow {
        id: id(),
        document: r#"{"name":"客户","source":"巨量引擎"}"#.into(),
        status: "assigned".into(),
        owner_id: Some(format!("r{:02}", index % 100)),
        team_id: Some("t".into()),
        source: Some(SOURCES[index % SOURCES.len()].into()),
        tags: "[]".into(),
        created_at: created,
        updated_at: created,
        assigned_at: Some(created),
        previous_owners: "[]".into(),
        rule_id: Some(RULES[index % RULES.len()].into()),
        sla_policy: Some("default".into()),
        ..LeadRow::default()
    }
}

/// The month's `index`th open lead: every third was answered (contacted) between a second
/// and an hour after it was assigned.
fn month_lead(index: usize, count: usize, now: i64) -> LeadRow {
    let mut row = lead(index, spread(index, count, now));
    if index.is_multiple_of(3) {
        let response = row.created_at + ((index as i64 * 37) % 3600 + 1) * 1_000_000;
        row.status = "contacted".into();
        row.first_response_at = Some(response);
        row.last_activity_at = Some(response);
    }
    row
}

/// The `index`th of `count` leads spread evenly over the month before `now`.
fn spread(index: usize, count: usize, now: i64) -> i64 {
    now - MONTH + (index as i64 * MONTH) / count.max(1) as i64
}

/// The stored part of a lead's first-response ladder: its first rung, due at `due`. (A lead
/// stores only its next timer; firing it stores the next rung.)
fn ladder(row: &LeadRow, due: i64, now: i64) -> Vec<TimerRow> {
    (0..1)
        .map(|step| TimerRow {
            id: id(),
            lead_id: row.id.clone(),
            kind: "sla".into(),
            step,
            owner_id: row.owner_id.clone(),
            due_at: due + step * 3_600_000_000,
            created_at: now,
        })
        .collect()
}

/// Writes `count` leads (`make` gives the `index`th), each open one with its ladder, in
/// transactions of 5,000.
async fn seed(
    store: &Store,
    count: usize,
    due: i64,
    now: i64,
    make: impl Fn(usize) -> LeadRow,
) -> anyhow::Result<()> {
    let mut written = 0;
    while written < count {
        let size = (count - written).min(5000);
        let rows: Vec<LeadRow> = (written..written + size).map(&make).collect();
        let timers: Vec<TimerRow> = rows
            .iter()
            .filter(|row| row.closed_at.is_none())
            .flat_map(|row| ladder(row, due, now))
            .collect();
        let mut connection = store.routing_connection().await?;
        let mut tx = connection.begin().await?;
        tx.insert_leads(&rows).await?;
        tx.insert_timers(&timers).await?;
        tx.commit().await?;
        drop(connection);
        written += size;
    }
    Ok(())
}

/// The month's `index`th of `count` closed leads: a third won, the rest lost, each answered
/// ten minutes and closed two days after it came in (a month's leads are not all still open).
fn closed_lead(index: usize, count: usize, now: i64) -> LeadRow {
    let mut row = lead(index, spread(index, count, now));
    row.status = ["won", "lost", "lost"][index % 3].into();
    row.first_response_at = Some(row.created_at + 600_000_000);
    row.last_activity_at = row.first_response_at;
    row.closed_at = Some((row.created_at + 2 * DAY).min(now));
    row
}

async fn open(args: &Args) -> anyhow::Result<(Store, Option<tempfile::TempDir>)> {
    match &args.database_url {
        Some(admin) => {
            let name = format!("leadroute_tick_{}", uuid::Uuid::now_v7().simple());
            let url = store::create_postgres_database(admin, &name).await?;
            let store = Store::connect(&url).await?;
            store.migrate().await?;
            Ok((store, None))
        }
        None => {
            let dir = tempfile::tempdir()?;
            let store = Store::open_data_dir(dir.path()).await?;
            store.migrate().await?;
            Ok((store, Some(dir)))
        }
    }
}

async fn tick(
    router: &server::routing::Router,
    now: chrono::DateTime<Utc>,
) -> anyhow::Result<usize> {
    router
        .tick(now)
        .await
        .map_err(|error| anyhow::anyhow!("tick failed: {}", error.message))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (store, _dir) = open(&args).await?;
    let router = server::routing::Router::start(store.clone());
    let now = Utc::now();
    let micros = now.timestamp_micros();

    let seeding = Instant::now();
    seed(&store, args.leads, micros + DAY, micros, |index| {
        month_lead(index, args.leads, micros)
    })
    .await?;
    seed(&store, args.closed, micros + DAY, micros, |index| {
        closed_lead(index, args.closed, micros)
    })
    .await?;
    // What the service's fold (every two seconds) would have done while they came in.
    store.fold_tallies().await?;
    store.checkpoint().await?;
    eprintln!(
        "seeded {} open leads with {} pending timers and {} closed leads in {:.1} s",
        args.leads,
        args.leads,
        args.closed,
        seeding.elapsed().as_secs_f64()
    );

    // Idle: nothing due.
    let mut idle = Vec::new();
    let mut floor = Vec::new();
    for _ in 0..args.runs * 20 {
        let started = Instant::now();
        let fired = tick(&router, now).await?;
        idle.push(started.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(fired == 0, "nothing should be due");
        let started = Instant::now();
        store.ping().await?;
        floor.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let idle_ms = median(idle);
    let floor_ms = median(floor);

    // Due: `due` leads whose reminder fell due a second ago.
    let mut fire = Vec::new();
    let mut raw = Vec::new();
    for run in 0..args.runs {
        let offset = args.leads + run * args.due;
        // Unanswered, so that each due rung reminds.
        seed(&store, args.due, micros - 1_000_000, micros, |index| {
            lead(offset + index, micros)
        })
        .await?;
        store.checkpoint().await?;
        let started = Instant::now();
        let mut fired = 0;
        loop {
            let count = tick(&router, now).await?;
            if count == 0 {
                break;
            }
            fired += count;
        }
        fire.push(started.elapsed().as_secs_f64());
        anyhow::ensure!(fired == args.due, "fired {fired}, expected {}", args.due);

        // The floor: as many outbox rows and timer deletions, written raw in one transaction.
        let rows: Vec<OutboxRow> = (0..args.due)
            .map(|index| OutboxRow {
                id: id(),
                event: "lead.sla_reminder".into(),
                lead_id: Some(format!("floor-{run}-{index}")),
                rep_id: Some("r00".into()),
                recipients: r#"["r00"]"#.into(),
                payload: r#"{"step":1}"#.into(),
                created_at: micros,
                status: "pending".into(),
            })
            .collect();
        let doomed: Vec<String> = (0..args.due)
            .map(|index| format!("floor-{run}-{index}"))
            .collect();
        let started = Instant::now();
        let mut connection = store.routing_connection().await?;
        let mut tx = connection.begin().await?;
        tx.insert_outbox(&rows).await?;
        tx.delete_timers(&doomed).await?;
        tx.commit().await?;
        drop(connection);
        raw.push(started.elapsed().as_secs_f64());
    }
    let fire_s = median(fire);
    let raw_s = median(raw);

    // The dashboard over a month holding every lead, against a GROUP BY over the open leads;
    // on PostgreSQL after what autovacuum would have done by then (`--no-vacuum`: before).
    if !args.no_vacuum {
        store.vacuum_analyze().await?;
    }
    store.fold_tallies().await?;
    let mut board = Vec::new();
    let mut scanned = Vec::new();
    let mut grouped = Vec::new();
    let window = store::DashboardWindow {
        from: micros - MONTH,
        to: micros + 1,
        team: Some("t".into()),
        owner: None,
        day_offset: 8 * 3_600_000_000,
        now: micros,
        idle_before: micros - 3 * DAY,
    };
    for _ in 0..args.runs {
        let started = Instant::now();
        let figures = store.dashboard(&window).await?;
        board.push(started.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(
            figures.leads_in as usize == args.leads + args.closed + args.runs * args.due,
            "the dashboard counted {} leads",
            figures.leads_in
        );
        let started = Instant::now();
        let counted = store.dashboard_from_leads(&window).await?;
        scanned.push(started.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(
            counted.leads_in == figures.leads_in && counted.funnel == figures.funnel,
            "the tallies and the leads disagree"
        );
        let started = Instant::now();
        store.count_open_leads().await?;
        grouped.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let board_ms = median(board);
    let scanned_ms = median(scanned);
    let grouped_ms = median(grouped);

    println!(
        "| measurement ({}) | median | floor | ratio |",
        store.backend()
    );
    println!("|---|---|---|---|");
    println!(
        "| idle tick: {} open leads, {} pending timers, none due | {idle_ms:.3} ms | bare round trip {floor_ms:.3} ms | {:.1}× |",
        args.leads,
        args.leads,
        idle_ms / floor_ms
    );
    println!(
        "| {} due reminders fired, outbox rows written | {fire_s:.3} s | raw outbox insert + timer delete {raw_s:.3} s | {:.1}× |",
        args.due,
        fire_s / raw_s
    );
    println!(
        "| dashboard, 30 days, one team: {} leads ({} closed) | {board_ms:.0} ms | open leads grouped by owner {grouped_ms:.0} ms | {:.1}× |",
        args.leads + args.closed + args.runs * args.due,
        args.closed,
        board_ms / grouped_ms
    );
    println!(
        "| the same counted from the leads, not the tallies | {scanned_ms:.0} ms | open leads grouped by owner {grouped_ms:.0} ms | {:.1}× |",
        scanned_ms / grouped_ms
    );
    Ok(())
}
