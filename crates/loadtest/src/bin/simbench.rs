//! Benchmark of the simulator: a generated history of a million leads replayed through two
//! 20-rule policies over 50 reps (five teams, office hours for most, daily caps), beside the
//! engine's own cost of routing the same leads once (`Workspace::route` alone) and the floor of
//! generating them, measured in the same run. Peak memory is read from the kernel.
//!
//! `cargo build --release -p loadtest && target/release/simbench` (`--leads 1000000` is the
//! default; `--runs` repeats the replay and the table shows medians).

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use clap::Parser;
use serde_json::{Value, json};
use server::leads::LeadInput;
use server::simulate::history::{FileFormat, HistoryLead, Item};
use server::simulate::{Control, PolicyInput, SimulationInput};
use store::{AuditRow, RepRow, Store, TeamRow, Write};

/// The allocator `leadroute` runs with, so the replay is measured as users run it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, default_value_t = 1_000_000)]
    leads: usize,
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

const REGIONS: [&str; 7] = ["华东", "华南", "华北", "华中", "西南", "西北", "东北"];
const INDUSTRIES: [&str; 5] = ["制造", "互联网", "金融", "教育", "医疗"];
const SOURCES: [&str; 4] = ["巨量引擎", "百度", "官网", "展会"];

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Lead `index` of the generated history: one every 30 seconds from 2026-01-05 (a Monday).
fn lead(index: usize) -> HistoryLead {
    let start = DateTime::parse_from_rfc3339("2026-01-05T00:00:00Z")
        .expect("time")
        .with_timezone(&Utc);
    let arrived_at = start + Duration::seconds(30 * index as i64);
    let mix = index.wrapping_mul(2_654_435_761) >> 7;
    let owner = format!("rep-{:02}", mix % 50);
    HistoryLead {
        line: index as u64 + 1,
        id: None,
        input: LeadInput {
            company: Some(format!("客户{}", index % 10_000)),
            region: Some(REGIONS[mix % 7].into()),
            industry: Some(INDUSTRIES[(mix / 7) % 5].into()),
            source: Some(SOURCES[(mix / 35) % 4].into()),
            budget: Some(((mix / 140) % 100) as f64 * 1000.0),
            ..LeadInput::default()
        },
        arrived_at,
        closed_at: Some(arrived_at + Duration::days(3)),
        owner: Some(owner),
        won: Some(mix.is_multiple_of(29)),
        amount: Some(10_000.0),
        response_secs: Some((mix % 3600) as f64),
    }
}

/// 50 reps in five teams of ten; most work 09:00–18:00 on weekdays; daily caps of 100.
async fn workspace(store: &Store) -> anyhow::Result<()> {
    let audit = || AuditRow::new("bench".into(), "seed", "rep", None, &json!({}), 0);
    for index in 0..50 {
        let mut document = json!({
            "name": format!("销售{index}"),
            "regions": [REGIONS[index % 7], REGIONS[(index + 3) % 7]],
            "industries": [INDUSTRIES[index % 5]],
            "weight": 1 + index % 3,
            "caps": {"max_per_day": 100, "max_open": 600},
        });
        if index % 5 != 0 {
            document["working_hours"] = json!({"mon": ["09:00-18:00"], "tue": ["09:00-18:00"],
                "wed": ["09:00-18:00"], "thu": ["09:00-18:00"], "fri": ["09:00-18:00"]});
        }
        let mut row = RepRow {
            id: format!("rep-{index:02}"),
            name: format!("销售{index}"),
            status: "active".into(),
            document: document.to_string(),
            ..RepRow::default()
        };
        store.write_rep(&mut row, Write::Create, &audit()).await?;
    }
    for team in 0..5 {
        let members: Vec<Value> = (0..10)
            .map(|member| json!({"rep_id": format!("rep-{:02}", team * 10 + member)}))
            .collect();
        let mut row = TeamRow {
            id: format!("team-{team}"),
            name: format!("Team {team}"),
            document:
                json!({"name": format!("Team {team}"), "members": members, "away_fallback": true})
                    .to_string(),
            ..TeamRow::default()
        };
        store.write_team(&mut row, Write::Create, &audit()).await?;
    }
    Ok(())
}

/// Twenty rules over region, industry, source and budget, with the strategies mixed.
fn rules(shift: usize) -> Value {
    let strategies = [
        "round_robin",
        "weighted_round_robin",
        "least_loaded",
        "best_match",
        "fair_share",
    ];
    let mut rules = Vec::new();
    for index in 0..19 {
        let condition = match index % 3 {
            0 => json!({"field": "region", "op": "equals", "value": REGIONS[index % 7]}),
            1 => {
                json!({"all": [{"field": "industry", "op": "equals", "value": INDUSTRIES[index % 5]},
                                 {"field": "budget", "op": "gte", "value": 50_000}]})
            }
            _ => {
                json!({"field": "source", "op": "in", "value": [SOURCES[index % 4], SOURCES[(index + 1) % 4]]})
            }
        };
        rules.push(json!({
            "id": format!("rule-{index:02}"),
            "when": condition,
            "target": {"team": format!("team-{}", (index + shift) % 5)},
            "strategy": {"type": strategies[(index + shift) % 5]},
            "fallback": ["overflow", "hold"],
        }));
    }
    rules.push(json!({"id": "rest", "target": {"teams": ["team-0", "team-1", "team-2", "team-3", "team-4"]}}));
    json!({"rules": rules})
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let store = Store::open_data_dir(dir.path()).await?;
    store.migrate().await?;
    workspace(&store).await?;
    let version = store
        .insert_rule_set(None, &rules(0).to_string(), 0, None)
        .await?;
    store.publish_rule_set(version, 0, |_| None).await?;
    // A one-row file prepares the simulation; the generated history is what replays.
    let seed = format!(
        "{{\"company\": \"x\", \"arrived_at\": \"{}\"}}",
        lead(0).arrived_at.to_rfc3339()
    );
    let rows = server::workspace::ConfigRows::load(&store).await?;
    let input = SimulationInput {
        b: PolicyInput {
            rule_set: Some(rules(1)),
            ..PolicyInput::default()
        },
        ..SimulationInput::default()
    };
    let mut replay = Vec::new();
    let mut report = None;
    let prepare = || async {
        let file = server::simulate::read_history_file(
            &rows,
            FileFormat::Jsonl,
            seed.as_bytes(),
            &[],
            chrono_tz::Asia::Shanghai,
        )
        .map_err(|error| anyhow::anyhow!(error.message))?;
        server::simulate::prepare(&store, &input, Utc::now(), Some(file))
            .await
            .map_err(|error| anyhow::anyhow!(error.message))
    };
    for _ in 0..args.runs {
        let prepared = prepare().await?;
        let control = Arc::new(Control::default());
        let leads = args.leads;
        let started = Instant::now();
        let result = tokio::task::spawn_blocking(move || {
            server::simulate::run(
                &prepared,
                (0..leads).map(|index| Item::Ok(lead(index))),
                &control,
            )
        })
        .await?;
        replay.push(started.elapsed().as_secs_f64());
        report = Some(result.map_err(|_| anyhow::anyhow!("the replay stopped"))?);
    }
    let peak = peak_rss_mb();
    // The engine alone: the same leads routed once through policy B's workspace, state carried.
    let prepared = prepare().await?;
    let workspace = prepared
        .b
        .build_configured()
        .map_err(|error| anyhow::anyhow!(error.message))?;
    let sample = args.leads.min(200_000);
    let leads: Vec<HistoryLead> = (0..sample).map(lead).collect();
    let mut engine_runs = Vec::new();
    let mut floor_runs = Vec::new();
    for _ in 0..args.runs {
        let started = Instant::now();
        let mut count = 0usize;
        for index in 0..sample {
            count += std::hint::black_box(lead(index)).line as usize;
        }
        std::hint::black_box(count);
        floor_runs.push(started.elapsed().as_secs_f64() / sample as f64);
        let mut state = engine::RoutingState::new(&workspace.roster);
        let started = Instant::now();
        for history in &leads {
            let engine_lead = history
                .input
                .to_engine(&workspace.catalogue, history.arrived_at)
                .map_err(|error| anyhow::anyhow!(error.message))?;
            let decision = workspace.route(&state, &engine_lead, &[], history.arrived_at);
            state.apply(&workspace.roster, &decision.changes);
        }
        engine_runs.push(started.elapsed().as_secs_f64() / sample as f64);
    }
    let replay_secs = median(replay);
    let engine_us = median(engine_runs) * 1e6;
    let floor_us = median(floor_runs) * 1e6;
    let per_lead_us = replay_secs * 1e6 / args.leads as f64;
    let report = report.expect("a run");
    println!("| measurement | median | ratio |");
    println!("|---|---:|---:|");
    println!("| generate one lead (floor) | {floor_us:.2} µs | 1.0 |");
    println!(
        "| engine: route one lead, one policy | {engine_us:.2} µs | {:.1}× floor |",
        engine_us / floor_us
    );
    println!(
        "| replay {} leads through A and B | {replay_secs:.2} s ({per_lead_us:.2} µs/lead) | {:.2}× engine |",
        args.leads,
        per_lead_us / engine_us
    );
    println!("| peak memory | {peak:.0} MB | |");
    println!(
        "\nA: {} assigned, {} held; B: {} assigned, {} held; {} moved",
        report.a.assigned,
        report.a.held.held,
        report.b.assigned,
        report.b.held.held,
        report.moved.leads
    );
    Ok(())
}
