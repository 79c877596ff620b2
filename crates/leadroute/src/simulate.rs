//! `leadroute simulate`: replay history through a draft before publishing it, with a progress
//! bar and a summary on the terminal; the whole report as JSON (`--out`) and per-rep figures as
//! CSV (`--csv`). The same checks and replay as `POST /api/v1/simulations`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use server::simulate::history::FileFormat;
use server::simulate::report::{PolicyReport, Report};
use server::simulate::{Control, PolicyInput, RosterChanges, SimulationInput, Stopped};

use crate::config::{Settings, StoreArgs};

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// The policy to try: a rule-set version, `active`, or a rule-set file (JSON or TOML).
    #[arg(long)]
    b: String,
    /// The baseline, as --b; the active rule set when left out.
    #[arg(long, default_value = "active")]
    a: String,
    /// Roster changes for B (JSON: `{"reps": {"id": {…} | null}, "teams": {…}}`).
    #[arg(long, value_name = "FILE")]
    changes: Option<PathBuf>,
    /// Roster changes for A, as --changes.
    #[arg(long, value_name = "FILE")]
    changes_a: Option<PathBuf>,
    /// How B places leads that arrived at the same instant (an import): `one_by_one` or
    /// `optimal` (as one optimised batch).
    #[arg(long, default_value = "one_by_one")]
    arrivals: String,
    /// Replay the last this many days of the workspace's leads (default 30).
    #[arg(long, conflicts_with_all = ["from", "history"])]
    days: Option<u32>,
    /// The window's start, RFC 3339.
    #[arg(long, conflicts_with = "history")]
    from: Option<String>,
    /// The window's end, RFC 3339 (now when left out).
    #[arg(long, conflicts_with = "history")]
    to: Option<String>,
    /// Replay a file instead: CSV (mapped like `leadroute import`) or JSON Lines (.jsonl).
    #[arg(long = "file", value_name = "FILE")]
    history: Option<PathBuf>,
    /// Map a CSV column to a lead field: `--map 手机=phone`.
    #[arg(long = "map", value_name = "COLUMN=FIELD")]
    map: Vec<String>,
    /// The zone of file times without an offset.
    #[arg(long, default_value = "Asia/Shanghai")]
    time_zone: String,
    /// The lead field conversion is estimated per.
    #[arg(long, default_value = "source")]
    segment_by: String,
    /// `recorded` (reps' status as the audit log has it) or `configured` (as now).
    #[arg(long, default_value = "recorded")]
    availability: String,
    /// Moved leads to show with both explanations.
    #[arg(long, default_value_t = 20)]
    sample: u32,
    /// The first-response target SLA misses count against, minutes.
    #[arg(long, default_value_t = 30.0)]
    sla_minutes: f64,
    /// Write the whole report here, as JSON.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write per-rep figures of both policies here, as CSV.
    #[arg(long)]
    csv: Option<PathBuf>,
    #[command(flatten)]
    store: StoreArgs,
}

/// A rule set named on the command line: a version, `active`, or a file.
fn rule_set(text: &str) -> anyhow::Result<Value> {
    if text == "active" {
        return Ok(Value::from("active"));
    }
    if let Ok(version) = text.parse::<u32>() {
        return Ok(Value::from(version));
    }
    let path = Path::new(text);
    let content = std::fs::read_to_string(path).with_context(|| format!("reading {text}"))?;
    let spec = if path
        .extension()
        .is_some_and(|extension| extension == "toml")
    {
        engine::RuleSetSpec::from_toml(&content)
    } else {
        engine::RuleSetSpec::from_json(&content)
    }
    .map_err(|error| anyhow::anyhow!("{text}: {error}"))?;
    Ok(serde_json::to_value(spec)?)
}

fn changes(path: Option<&PathBuf>) -> anyhow::Result<Option<RosterChanges>> {
    path.map(|path| {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{}: expected {{\"reps\": …, \"teams\": …}}", path.display()))
    })
    .transpose()
}

pub async fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let store = Settings::from_store_args(&args.store)?.open_store().await?;
    let input = SimulationInput {
        a: Some(PolicyInput {
            rule_set: Some(rule_set(&args.a)?),
            roster: changes(args.changes_a.as_ref())?,
            arrivals: None,
        }),
        b: PolicyInput {
            rule_set: Some(rule_set(&args.b)?),
            roster: changes(args.changes.as_ref())?,
            arrivals: Some(args.arrivals.clone()),
        },
        days: args.days,
        from: args.from.clone(),
        to: args.to.clone(),
        file: None,
        segment_by: Some(args.segment_by.clone()),
        availability: Some(args.availability.clone()),
        sample: Some(args.sample),
        sla_minutes: Some(args.sla_minutes),
    };
    let file = match &args.history {
        Some(path) => {
            let content =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let zone = engine::hours::parse_time_zone(&args.time_zone)
                .map_err(|message| anyhow::anyhow!("--time-zone: {message}"))?;
            let rows = server::workspace::ConfigRows::load(&store).await?;
            let format = FileFormat::of(&path.to_string_lossy());
            Some(
                server::simulate::read_history_file(&rows, format, &content, &args.map, zone)
                    .map_err(|error| anyhow::anyhow!("{}: {}", error.code, error.message))?,
            )
        }
        None => None,
    };
    let prepared = match server::simulate::prepare(&store, &input, chrono::Utc::now(), file).await {
        Ok(prepared) => prepared,
        Err(error) => {
            eprintln!(
                "error: {} ({}{})",
                error.message,
                error.code,
                error
                    .field
                    .map(|field| format!(", {field}"))
                    .unwrap_or_default()
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    let control = Arc::new(Control::default());
    let progress = ProgressBar::new(0);
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} leads {per_sec} {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let ticker = {
        let (control, progress) = (control.clone(), progress.clone());
        tokio::spawn(async move {
            loop {
                progress.set_length(control.total.load(Ordering::Relaxed));
                progress.set_position(control.done.load(Ordering::Relaxed));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    {
        // Ctrl-C cancels the replay.
        let control = control.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                control.cancelled.store(true, Ordering::Relaxed);
            }
        });
    }
    let result = server::simulate::simulate(&store, prepared, control.clone()).await;
    ticker.abort();
    progress.finish_and_clear();
    let report = match result {
        Ok(report) => report,
        Err(Stopped::Cancelled) => {
            eprintln!("cancelled");
            return Ok(ExitCode::FAILURE);
        }
        Err(Stopped::Failed(error)) => {
            eprintln!("error: {} ({})", error.message, error.code);
            return Ok(ExitCode::FAILURE);
        }
    };
    print!("{}", summary(&report));
    if let Some(path) = &args.out {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("Report: {}", path.display());
    }
    if let Some(path) = &args.csv {
        write_csv(path, &report)?;
        println!("Per rep: {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn label(policy: &PolicyReport) -> String {
    match policy.rule_set_version {
        Some(version) => format!("{} (v{version})", policy.label),
        None => format!("{} (file)", policy.label),
    }
}

/// `text` padded to `width` terminal columns, counting CJK characters as two.
fn pad(text: &str, width: usize) -> String {
    let columns: usize = text
        .chars()
        .map(|character| if u32::from(character) >= 0x2E80 { 2 } else { 1 })
        .sum();
    format!("{text}{}", " ".repeat(width.saturating_sub(columns)))
}

fn points(share: f64) -> String {
    format!("{:.1} pts", share * 100.0)
}

/// The report as a person reads it at a terminal.
pub fn summary(report: &Report) -> String {
    use std::fmt::Write as _;
    let (a, b) = (&report.a, &report.b);
    let mut out = String::new();
    let window = &report.window;
    let _ = writeln!(
        out,
        "Replayed {} leads ({} → {}){}",
        window.leads,
        window.first_arrival.as_deref().unwrap_or("-"),
        window.last_arrival.as_deref().unwrap_or("-"),
        if window.bad_rows > 0 {
            format!(
                ", {} rows skipped (see the report's window.errors)",
                window.bad_rows
            )
        } else {
            String::new()
        }
    );
    let mut row = |name: &str, left: String, right: String| {
        let _ = writeln!(out, "  {name:<24}{left:>22}{right:>22}");
    };
    row("", label(a), label(b));
    row("assigned", a.assigned.to_string(), b.assigned.to_string());
    row(
        "held (never placed)",
        format!("{} ({})", a.held.held, a.held.never_placed),
        format!("{} ({})", b.held.held, b.held.never_placed),
    );
    row("pooled", a.pooled.to_string(), b.pooled.to_string());
    row("cap hits", a.cap_hits.to_string(), b.cap_hits.to_string());
    row(
        "outside hours",
        a.outside_hours.to_string(),
        b.outside_hours.to_string(),
    );
    row(
        "Gini",
        format!("{:.3}", a.fairness.gini),
        format!("{:.3}", b.fairness.gini),
    );
    row(
        "max deviation",
        points(a.fairness.max_deviation),
        points(b.fairness.max_deviation),
    );
    if let Some(outcomes) = &report.outcomes {
        let number = |pointer: &str| {
            outcomes
                .pointer(pointer)
                .and_then(Value::as_f64)
                .unwrap_or_default()
        };
        row(
            "expected conversions",
            format!("{:.1}", number("/a/conversions")),
            format!("{:.1}", number("/b/conversions")),
        );
        let significant = outcomes
            .pointer("/difference/significant")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let _ = writeln!(
            out,
            "  B − A: {:+.1} conversions, 95% interval [{:.1}, {:.1}]: {}",
            number("/difference/conversions"),
            number("/difference/interval/0"),
            number("/difference/interval/1"),
            if significant {
                "significant"
            } else {
                "not significant"
            }
        );
    }
    if report.fidelity.compared > 0 {
        let _ = writeln!(
            out,
            "  A gives {} of {} leads the owner history recorded",
            report.fidelity.same_owner, report.fidelity.compared
        );
    }
    let _ = writeln!(
        out,
        "  {} leads ({:.1}%) would change owner",
        report.moved.leads,
        report.moved.share * 100.0
    );
    let _ = writeln!(
        out,
        "  {:<28}{:>22}{:>22}",
        "rep", "A leads / target", "B leads / target"
    );
    let mut ids: Vec<&str> = a
        .reps
        .iter()
        .chain(&b.reps)
        .map(|rep| rep.id.as_str())
        .collect();
    ids.sort();
    ids.dedup();
    for id in ids {
        let cell = |policy: &PolicyReport| {
            policy
                .reps
                .iter()
                .find(|rep| rep.id == id)
                .map_or("-".to_owned(), |rep| {
                    format!(
                        "{} / {:.0}",
                        rep.leads,
                        rep.target_share * policy.assigned as f64
                    )
                })
        };
        let name = a
            .reps
            .iter()
            .chain(&b.reps)
            .find(|rep| rep.id == id)
            .map(|rep| rep.name.as_str())
            .unwrap_or("");
        let _ = writeln!(
            out,
            "  {}{:>22}{:>22}",
            pad(&format!("{name} ({id})"), 28),
            cell(a),
            cell(b)
        );
    }
    for policy in [a, b] {
        for rule in &policy.rules {
            if rule.never_matched || rule.shadowed {
                let _ = writeln!(
                    out,
                    "  {}: rule {} {}",
                    policy.label,
                    rule.id,
                    if rule.never_matched {
                        "never matched"
                    } else {
                        "is shadowed by an earlier rule"
                    }
                );
            }
        }
    }
    out
}

fn write_csv(path: &Path, report: &Report) -> anyhow::Result<()> {
    let mut writer =
        csv::Writer::from_path(path).with_context(|| format!("writing {}", path.display()))?;
    writer.write_record([
        "policy",
        "rep_id",
        "name",
        "leads",
        "share",
        "target_share",
        "deviation",
        "cap_hits",
        "outside_hours",
    ])?;
    for policy in [&report.a, &report.b] {
        for rep in &policy.reps {
            writer.write_record([
                policy.label.clone(),
                rep.id.clone(),
                rep.name.clone(),
                rep.leads.to_string(),
                format!("{:.4}", rep.share),
                format!("{:.4}", rep.target_share),
                format!("{:.4}", rep.deviation),
                rep.cap_hits.to_string(),
                rep.outside_hours.to_string(),
            ])?;
        }
    }
    writer.flush()?;
    Ok(())
}
