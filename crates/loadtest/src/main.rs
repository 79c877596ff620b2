//! Load harness for lead intake. Starts `leadroute serve` on a fresh database (SQLite in a temporary
//! directory, or PostgreSQL), then measures in one run: the floor of a trivial endpoint with the
//! same client, the floor of a raw batched insert of the same rows, sustained intake of
//! validated, routed, durable leads over `POST /api/v1/leads`, intake at a fixed rate, and
//! batch intake. Prints a Markdown table with medians and ratios.
//!
//! `cargo build --release -p leadroute -p loadtest && target/release/loadtest` (add
//! `--database-url postgres://…` for PostgreSQL).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use serde_json::{Value, json};
use server::auth::{Role, new_key};
use store::{DecisionRow, LeadRow, OutboxRow, Store, TimerRow};

#[derive(Debug, Parser)]
struct Args {
    /// PostgreSQL URL of a server to create a fresh database on; SQLite when left out.
    #[arg(long)]
    database_url: Option<String>,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Leads per second for the fixed-rate run.
    #[arg(long, default_value_t = 2000)]
    rate: u64,
    /// Repetitions of each measurement; the table shows medians.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// The `leadroute` binary to serve with; by default the one beside this harness.
    #[arg(long)]
    server: Option<std::path::PathBuf>,
    /// Load generator for the closed-loop runs: `wrk` (Debian's package, a C client that leaves
    /// the server most of the CPU) or `reqwest` (this process). Defaults to wrk when installed.
    #[arg(long)]
    client: Option<String>,
    /// Turn duplicate checking (查重) on for phone, email and company before measuring: every
    /// lead is then looked up by its customer keys.
    #[arg(long)]
    duplicates: bool,
}

/// Runs wrk for `seconds` with `connections`, optionally with a Lua script, and reads its
/// throughput and latency percentiles.
fn wrk(
    url: &str,
    script: Option<&str>,
    connections: usize,
    seconds: u64,
    per_request: u64,
) -> anyhow::Result<Measured> {
    let mut command = std::process::Command::new("wrk");
    command.args([
        "-t1",
        "--latency",
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
    ]);
    let file;
    if let Some(script) = script {
        file = std::env::temp_dir().join(format!(
            "leadroute-load-{}.lua",
            uuid::Uuid::now_v7().simple()
        ));
        std::fs::write(&file, script)?;
        command.arg("-s").arg(&file);
    }
    let output = command.arg(url).output().context("running wrk")?;
    let text = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(output.status.success(), "wrk failed: {text}");
    anyhow::ensure!(
        !text.contains("Non-2xx"),
        "the server refused requests:\n{text}"
    );
    let duration = |value: &str| -> Option<f64> {
        let number: f64 = value
            .trim_end_matches(|c: char| c.is_alphabetic())
            .parse()
            .ok()?;
        Some(
            match value.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.') {
                "us" => number / 1000.0,
                "ms" => number,
                "s" => number * 1000.0,
                _ => return None,
            },
        )
    };
    let field = |prefix: &str| {
        text.lines().find_map(|line| {
            line.trim()
                .strip_prefix(prefix)
                .map(|rest| rest.trim().to_owned())
        })
    };
    let per_second: f64 = field("Requests/sec:")
        .and_then(|value| value.parse().ok())
        .context("wrk printed no rate")?;
    Ok(Measured {
        per_second: per_second * per_request as f64,
        p50_ms: field("50%")
            .and_then(|value| duration(&value))
            .unwrap_or(0.0),
        p99_ms: field("99%")
            .and_then(|value| duration(&value))
            .unwrap_or(0.0),
        cpu_us: None,
        machine: None,
    })
}

/// Scripts made so far: each numbers its phones from its own block, so no two measurements
/// send the same customer (with duplicate checking on, a repeated phone is a touch on the
/// earlier lead, not a new one).
static SCRIPTS: AtomicU64 = AtomicU64::new(0);

/// wrk scripts sending unique leads (unique external ids and phones), one per request or a
/// hundred.
fn wrk_script(key: &str, batch: bool) -> String {
    let prefix = uuid::Uuid::now_v7().simple().to_string();
    let block = (SCRIPTS.fetch_add(1, Ordering::Relaxed) % 40) * 2_500_000;
    let lead = r#"string.format('{"external_id":"wrk-%s-%d","name":"压测客户","phone":"138%08d","province":"江苏省","industry":"制造","source":"巨量引擎","budget":200000}', prefix, counter, (block + counter) % 100000000)"#;
    let (path, body) = if batch {
        (
            "/api/v1/leads/batch",
            format!(
                "local items = {{}}\n  for i = 1, 100 do\n    counter = counter + 1\n    items[i] = {lead}\n  end\n  local body = '{{\"leads\":[' .. table.concat(items, ',') .. ']}}'"
            ),
        )
    } else {
        (
            "/api/v1/leads",
            format!("counter = counter + 1\n  local body = {lead}"),
        )
    };
    format!(
        "counter = 0\nblock = {block}\nprefix = \"{prefix}\"\nrequest = function()\n  {body}\n  return wrk.format(\"POST\", \"{path}\", {{[\"Content-Type\"]=\"application/json\", [\"Authorization\"]=\"Bearer {key}\"}}, body)\nend\n"
    )
}

struct Measured {
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// The server's CPU time (all threads, user and system) per request or lead, in µs: on a
    /// shared machine a steadier figure than the rate, which moves with what else runs.
    cpu_us: Option<f64>,
    /// How the whole machine's CPU time went while it ran (`/proc/stat`): what to read the
    /// other figures against on a shared machine.
    machine: Option<MachineShare>,
}

/// Shares of the machine's CPU time over a measurement, all CPUs together.
#[derive(Clone, Copy)]
struct MachineShare {
    /// Nobody's: some CPU was left over (the server waited on something else than CPU).
    idle: f64,
    /// Taken by the host for other guests: the machine was smaller than it looked.
    stolen: f64,
}

/// The machine's CPU time so far, in ticks, from `/proc/stat`: (idle and waiting for IO,
/// stolen, total). Linux; `None` elsewhere.
fn machine_ticks() -> Option<(f64, f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    // user nice system idle iowait irq softirq steal (guest time is inside user already).
    let ticks: Vec<f64> = (line.split_whitespace().skip(1).take(8))
        .map(|field| field.parse().ok())
        .collect::<Option<_>>()?;
    let [_, _, _, idle, iowait, _, _, steal] = ticks[..] else {
        return None;
    };
    Some((idle + iowait, steal, ticks.iter().sum()))
}

impl MachineShare {
    fn between(before: (f64, f64, f64), after: (f64, f64, f64)) -> Option<MachineShare> {
        let total = after.2 - before.2;
        (total > 0.0).then(|| MachineShare {
            idle: (after.0 - before.0) / total,
            stolen: (after.1 - before.1) / total,
        })
    }
}

/// The CPU time a process has used so far, in seconds, from `/proc` (Linux; `None` elsewhere).
fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces: utime and
    // stime are the 14th and 15th fields, in ticks of USER_HZ (100 on Linux).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Runs a measurement and sets its server CPU per item: `items_per_second` × `seconds` items.
async fn with_cpu(
    pid: Option<u32>,
    seconds: u64,
    measure: impl std::future::Future<Output = anyhow::Result<Measured>>,
) -> anyhow::Result<Measured> {
    let before = cpu_seconds(pid);
    let machine = machine_ticks();
    let mut measured = measure.await?;
    let items = measured.per_second * seconds as f64;
    measured.cpu_us = match (before, cpu_seconds(pid)) {
        (Some(before), Some(after)) if items > 0.0 => Some((after - before) * 1e6 / items),
        _ => None,
    };
    measured.machine = match (machine, machine_ticks()) {
        (Some(before), Some(after)) => MachineShare::between(before, after),
        _ => None,
    };
    Ok(measured)
}

fn cpu_cell(measured: &Measured) -> String {
    measured
        .cpu_us
        .map_or_else(String::new, |cpu| format!("{cpu:.0}"))
}

fn percentile(sorted: &[u64], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index] as f64 / 1000.0
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn median_of(runs: &[Measured]) -> Measured {
    Measured {
        per_second: median(runs.iter().map(|run| run.per_second).collect()),
        p50_ms: median(runs.iter().map(|run| run.p50_ms).collect()),
        p99_ms: median(runs.iter().map(|run| run.p99_ms).collect()),
        cpu_us: runs
            .iter()
            .map(|run| run.cpu_us)
            .collect::<Option<Vec<f64>>>()
            .map(median),
        machine: runs
            .iter()
            .map(|run| run.machine)
            .collect::<Option<Vec<MachineShare>>>()
            .map(|shares| MachineShare {
                idle: median(shares.iter().map(|share| share.idle).collect()),
                stolen: median(shares.iter().map(|share| share.stolen).collect()),
            }),
    }
}

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// A lead body, written directly so the client spends little CPU on it.
fn lead() -> String {
    let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    format!(
        r#"{{"external_id":"load-{n}","name":"压测客户","phone":"139{:08}","province":"江苏省","industry":"制造","source":"巨量引擎","budget":200000}}"#,
        n % 100_000_000
    )
}

/// Closed loop: `clients` tasks send back to back for `seconds`.
async fn closed_loop(
    client: &reqwest::Client,
    clients: usize,
    seconds: u64,
    request: Arc<dyn Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync>,
    per_request: u64,
) -> anyhow::Result<Measured> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let client = client.clone();
            let request = Arc::clone(&request);
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let response = request(&client).send().await?;
                    let status = response.status();
                    let body = response.bytes().await?;
                    anyhow::ensure!(
                        status.is_success(),
                        "status {status}: {}",
                        String::from_utf8_lossy(&body)
                    );
                    latencies.push(sent.elapsed().as_micros() as u64);
                }
                Ok::<_, anyhow::Error>(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    Ok(Measured {
        per_second: latencies.len() as f64 * per_request as f64 / elapsed,
        p50_ms: percentile(&latencies, 0.5),
        p99_ms: percentile(&latencies, 0.99),
        cpu_us: None,
        machine: None,
    })
}

/// Open loop: requests start on a schedule, latency counted from the scheduled start.
async fn fixed_rate(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    rate: u64,
    seconds: u64,
) -> anyhow::Result<Measured> {
    let total = rate * seconds;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for index in 0..total {
        let due = started + Duration::from_secs_f64(index as f64 / rate as f64);
        tokio::time::sleep_until(due.into()).await;
        let client = client.clone();
        let url = format!("{base}/api/v1/leads");
        let key = key.to_owned();
        tasks.push(tokio::spawn(async move {
            let response = client
                .post(url)
                .bearer_auth(key)
                .header("content-type", "application/json")
                .body(lead())
                .send()
                .await?;
            anyhow::ensure!(
                response.status().is_success(),
                "status {}",
                response.status()
            );
            response.bytes().await?;
            Ok::<_, anyhow::Error>(due.elapsed().as_micros() as u64)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.push(task.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    Ok(Measured {
        per_second: latencies.len() as f64 / elapsed,
        p50_ms: percentile(&latencies, 0.5),
        p99_ms: percentile(&latencies, 0.99),
        cpu_us: None,
        machine: None,
    })
}

/// A pause between write-heavy phases for the database to checkpoint.
async fn settle() {
    tokio::time::sleep(Duration::from_secs(3)).await;
}

/// The floor for writes: the rows intake writes for a lead (the lead and its decision, with a
/// real decision record) inserted directly, 100 leads to a transaction.
async fn raw_insert(store: &Store, seconds: u64, record: &str) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut rows_written = 0usize;
    while started.elapsed() < Duration::from_secs(seconds) {
        let now = 0;
        let rows: Vec<LeadRow> = (0..100)
            .map(|_| {
                let document: Value = serde_json::from_str(&lead()).unwrap_or_default();
                LeadRow {
                    id: uuid::Uuid::now_v7().to_string(),
                    external_id: document["external_id"].as_str().map(str::to_owned),
                    document: document.to_string(),
                    status: "assigned".into(),
                    owner_id: Some("r00".into()),
                    team_id: Some("t".into()),
                    pool_id: None,
                    held: false,
                    source: Some("巨量引擎".into()),
                    phone: document["phone"].as_str().map(str::to_owned),
                    email: None,
                    tags: "[]".into(),
                    score: None,
                    priority: None,
                    created_at: now,
                    updated_at: now,
                    assigned_at: Some(now),
                    previous_owners: "[]".into(),
                    ..LeadRow::default()
                }
            })
            .collect();
        let mut connection = store.routing_connection().await?;
        let mut tx = connection.begin().await?;
        let decisions: Vec<DecisionRow> = rows
            .iter()
            .map(|row| DecisionRow {
                id: uuid::Uuid::now_v7().to_string(),
                lead_id: row.id.clone(),
                kind: "route".into(),
                actor: "load".into(),
                reason: None,
                rule_set_version: Some(1),
                outcome: "assigned".into(),
                owner_id: row.owner_id.clone(),
                record: record.to_owned(),
                created_at: 0,
                explanation: "{}".into(),
            })
            .collect();
        // Routed intake also sets the lead's SLA clocks and writes its lead.assigned event.
        // The floor keeps the three timer rows per lead intake wrote when #18 set its targets
        // (one per rung of the default ladder); intake now stores only the next one, so the
        // other two get lead ids of their own to pass the one-timer-per-lead index.
        let timers: Vec<TimerRow> = rows
            .iter()
            .flat_map(|row| {
                (0..3).map(move |step| TimerRow {
                    id: uuid::Uuid::now_v7().to_string(),
                    lead_id: match step {
                        0 => row.id.clone(),
                        _ => format!("{}-{step}", row.id),
                    },
                    kind: "sla".into(),
                    step,
                    owner_id: row.owner_id.clone(),
                    due_at: i64::MAX - 1,
                    created_at: 0,
                })
            })
            .collect();
        let events: Vec<OutboxRow> = rows
            .iter()
            .map(|row| OutboxRow {
                id: uuid::Uuid::now_v7().to_string(),
                event: "lead.assigned".into(),
                lead_id: Some(row.id.clone()),
                rep_id: row.owner_id.clone(),
                recipients: "[\"r00\"]".into(),
                payload: "{}".into(),
                created_at: 0,
                status: "pending".into(),
            })
            .collect();
        tx.insert_leads(&rows).await?;
        tx.insert_decisions(&decisions).await?;
        tx.insert_timers(&timers).await?;
        tx.insert_outbox(&events).await?;
        tx.commit().await?;
        rows_written += rows.len();
    }
    Ok(rows_written as f64 / started.elapsed().as_secs_f64())
}

async fn setup(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    duplicates: bool,
) -> anyhow::Result<()> {
    let post = |path: &str, body: Value| {
        client
            .post(format!("{base}{path}"))
            .bearer_auth(key)
            .json(&body)
            .send()
    };
    let mut members = Vec::new();
    for index in 0..10 {
        let id = format!("r{index:02}");
        post("/api/v1/reps", json!({"id": id, "name": format!("销售{index}"), "industries": ["制造"], "regions": ["华东"]})).await?.error_for_status()?;
        members.push(json!({"rep_id": id}));
    }
    post(
        "/api/v1/teams",
        json!({"id": "t", "name": "华东", "members": members, "hours_policy": "any_time"}),
    )
    .await?
    .error_for_status()?;
    let draft: Value = post("/api/v1/rule-sets", json!({"rules": [
        {"id": "east", "when": {"field": "region", "op": "equals", "value": "华东"}, "target": {"team": "t"},
         "requires": [{"field": "rep.industries", "op": "contains", "ref": "industry"}]},
        {"id": "rest", "target": {"pool": "public"}}
    ]})).await?.error_for_status()?.json().await?;
    post(
        &format!("/api/v1/rule-sets/{}/publish", draft["version"]),
        json!({}),
    )
    .await?
    .error_for_status()?;
    if duplicates {
        client
            .put(format!("{base}/api/v1/settings/duplicates"))
            .bearer_auth(key)
            .json(&json!({"keys": ["phone", "email", "company"], "on_match": "attach"}))
            .send()
            .await?
            .error_for_status()?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // The measurement's own database (or data directory), removed when it is done.
    let name = format!("leadroute_load_{}", uuid::Uuid::now_v7().simple());
    let (store, place) = match &args.database_url {
        Some(admin) => {
            let url = store::create_postgres_database(admin, &name).await?;
            (
                Store::connect(&url).await?,
                vec!["--database-url".to_owned(), url],
            )
        }
        None => {
            let dir = std::env::temp_dir()
                .join(format!("leadroute-load-{}", uuid::Uuid::now_v7().simple()));
            let store = Store::open_data_dir(&dir).await?;
            (
                store,
                vec!["--data-dir".to_owned(), dir.display().to_string()],
            )
        }
    };
    store.migrate().await?;
    let (key, row) = new_key("load", Role::Admin, 0);
    store.insert_api_key(&row).await?;
    // The server runs as its own process, as in production, so the client does not share
    // its scheduler.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let binary = args.server.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|dir| dir.join("leadroute")))
            .unwrap_or_else(|| "leadroute".into())
    });
    let mut server = tokio::process::Command::new(&binary)
        .arg("serve")
        .args(&place)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        // Quiet unless asked: `LEADROUTE_LOG=server::routing=debug` shows each routing batch.
        .env(
            "LEADROUTE_LOG",
            std::env::var("LEADROUTE_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .build()?;
    let started = Instant::now();
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(30),
            "the server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    setup(&client, &base, &key, args.duplicates)
        .await
        .context("setting up the workspace")?;

    let healthz = {
        let base = base.clone();
        Arc::new(move |client: &reqwest::Client| client.get(format!("{base}/healthz")))
            as Arc<dyn Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync>
    };
    let intake = {
        let (base, key) = (base.clone(), key.clone());
        Arc::new(move |client: &reqwest::Client| {
            client
                .post(format!("{base}/api/v1/leads"))
                .bearer_auth(&key)
                .header("content-type", "application/json")
                .body(lead())
        }) as Arc<dyn Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync>
    };
    let batch = {
        let (base, key) = (base.clone(), key.clone());
        Arc::new(move |client: &reqwest::Client| {
            let leads: Vec<String> = (0..100).map(|_| lead()).collect();
            client
                .post(format!("{base}/api/v1/leads/batch"))
                .bearer_auth(&key)
                .header("content-type", "application/json")
                .body(format!(r#"{{"leads":[{}]}}"#, leads.join(",")))
        }) as Arc<dyn Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync>
    };

    let (mut trivial, mut single, mut rated, mut batched, mut raw) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // A real decision record, to give the raw insert floor rows of the right size.
    let sample: Value = client
        .post(format!("{base}/api/v1/leads"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(lead())
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let record = sample["decision"]["record"].to_string();
    let use_wrk = match args.client.as_deref() {
        Some("wrk") => true,
        Some("reqwest") => false,
        Some(other) => anyhow::bail!("unknown client {other:?}: wrk or reqwest"),
        None => std::process::Command::new("wrk")
            .arg("--version")
            .output()
            .is_ok(),
    };
    for run in 0..args.runs {
        eprintln!("run {} of {}", run + 1, args.runs);
        // The fixed-rate run comes right after the trivial one and each heavy write phase is
        // followed by a pause, so one phase's checkpoint does not land in the next's latency.
        let pid = server.id();
        let seconds = args.seconds;
        trivial.push(
            with_cpu(pid, seconds, async {
                if use_wrk {
                    wrk(&format!("{base}/healthz"), None, args.clients, seconds, 1)
                } else {
                    closed_loop(&client, args.clients, seconds, Arc::clone(&healthz), 1).await
                }
            })
            .await?,
        );
        rated.push(
            with_cpu(
                pid,
                seconds,
                fixed_rate(&client, &base, &key, args.rate, seconds),
            )
            .await?,
        );
        settle().await;
        single.push(
            with_cpu(pid, seconds, async {
                if use_wrk {
                    wrk(
                        &base,
                        Some(&wrk_script(&key, false)),
                        args.clients,
                        seconds,
                        1,
                    )
                } else {
                    closed_loop(&client, args.clients, seconds, Arc::clone(&intake), 1).await
                }
            })
            .await?,
        );
        settle().await;
        batched.push(
            with_cpu(pid, seconds, async {
                if use_wrk {
                    wrk(&base, Some(&wrk_script(&key, true)), 4, seconds, 100)
                } else {
                    closed_loop(&client, 4, seconds, Arc::clone(&batch), 100).await
                }
            })
            .await?,
        );
        settle().await;
        raw.push(raw_insert(&store, args.seconds, &record).await?);
        settle().await;
    }
    let (trivial, single, rated, batched, raw) = (
        median_of(&trivial),
        median_of(&single),
        median_of(&rated),
        median_of(&batched),
        median(raw),
    );
    println!(
        "backend: {}, client: {}, {} connections, {} s per measurement, median of {} runs{}\n",
        store.backend(),
        if use_wrk { "wrk" } else { "reqwest" },
        args.clients,
        args.seconds,
        args.runs,
        if args.duplicates {
            ", duplicate checking on (phone, email, company)"
        } else {
            ""
        }
    );
    println!(
        "| measurement | per second | p50 ms | p99 ms | ratio to floor | server CPU µs per request or lead |"
    );
    println!("|---|---:|---:|---:|---|---:|");
    println!(
        "| floor: GET /healthz, same client | {:.0} req | {:.2} | {:.2} | 1 | {} |",
        trivial.per_second,
        trivial.p50_ms,
        trivial.p99_ms,
        cpu_cell(&trivial)
    );
    println!(
        "| floor: raw insert of the same rows (lead, decision, 3 SLA timers, outbox event), 100 leads per transaction | {raw:.0} leads | | | 1 | |"
    );
    println!(
        "| POST /api/v1/leads, closed loop | {:.0} leads | {:.2} | {:.2} | {:.2} of healthz, {:.2} of raw insert | {} |",
        single.per_second,
        single.p50_ms,
        single.p99_ms,
        single.per_second / trivial.per_second,
        single.per_second / raw,
        cpu_cell(&single)
    );
    println!(
        "| POST /api/v1/leads at {} leads/s | {:.0} leads | {:.2} | {:.2} | | {} |",
        args.rate,
        rated.per_second,
        rated.p50_ms,
        rated.p99_ms,
        cpu_cell(&rated)
    );
    println!(
        "| POST /api/v1/leads/batch, 100 per request, 4 clients | {:.0} leads | {:.2} | {:.2} | {:.2} of raw insert | {} |",
        batched.per_second,
        batched.p50_ms,
        batched.p99_ms,
        batched.per_second / raw,
        cpu_cell(&batched)
    );
    let shares: Vec<String> = [
        ("healthz", &trivial),
        ("closed loop", &single),
        ("fixed rate", &rated),
        ("batch", &batched),
    ]
    .iter()
    .filter_map(|(name, measured)| {
        let share = measured.machine?;
        Some(format!(
            "{name} {:.0}% idle, {:.0}% stolen",
            share.idle * 100.0,
            share.stolen * 100.0
        ))
    })
    .collect();
    if !shares.is_empty() {
        println!(
            "\nthe machine's CPU while each ran (/proc/stat, medians): {}",
            shares.join("; ")
        );
    }
    let _ = server.kill().await;
    store.close().await;
    match &args.database_url {
        Some(admin) => store::drop_postgres_database(admin, &name).await?,
        None => {
            let _ = std::fs::remove_dir_all(&place[1]);
        }
    }
    Ok(())
}
