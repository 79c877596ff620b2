//! `leadroute import FILE.csv`: each row becomes a lead, validated and routed like an API lead,
//! with errors reported by line. Re-running is safe: a row's external id comes from the id
//! column, or from a hash of the row, so a second run finds duplicates, not new leads.
//! `--mode optimal` places the whole file as one batch (批量最优分配): the plan's summary first,
//! then, confirmed (or `--yes`), the same plan made against the workspace as it is then.
//! `--mode migrate` moves a CRM's leads in as they are: each row's owner (a rep's id, email or
//! name), status, created time and last follow-up are kept, nothing is routed, and unknown
//! owners are reported by line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use server::AppState;
use server::leads::LeadInput;
use server::routing::Created;

use crate::config::{Settings, StoreArgs};

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A CSV file with a header row.
    file: PathBuf,
    /// Map a column to a lead field: `--map 手机=phone`. Columns named like a field, like a
    /// declared custom field, or with the usual Chinese headers map themselves;
    /// `attributes.x` maps to a custom field.
    #[arg(long = "map", value_name = "COLUMN=FIELD")]
    map: Vec<String>,
    /// `arrival`: route row by row, in file order; `optimal`: place the file as one batch by
    /// value × fit under caps and the fairness band, after showing the plan; `migrate`: keep
    /// each row's owner, status, created time and last follow-up (columns `owner` / 负责人,
    /// `status` / 状态, `created_at` / 创建时间, `last_follow_up_at` / 最后跟进时间), unrouted.
    #[arg(long, default_value = "arrival")]
    mode: String,
    /// With `--mode optimal`: each rep within ± this share of their fair share (0.1), or
    /// `none`.
    #[arg(long)]
    band: Option<String>,
    /// With `--mode optimal`: apply the plan without asking.
    #[arg(long)]
    yes: bool,
    #[command(flatten)]
    store: StoreArgs,
}

fn band_value(band: Option<&str>) -> anyhow::Result<Option<serde_json::Value>> {
    Ok(match band {
        None => None,
        Some("none") => Some(serde_json::Value::from("none")),
        Some(text) => Some(serde_json::Value::from(
            text.parse::<f64>()
                .ok()
                .context("--band is a share from 0 to 1, or none")?,
        )),
    })
}

fn print_plan(plan: &serde_json::Value) {
    println!(
        "Plan: {} of {} leads placed by the optimiser ({} left to routing as usual; {} others routed as usual: known customers, pools).",
        plan["placed"],
        plan["optimised"],
        plan["unplaced"],
        plan["leads"].as_u64().unwrap_or(0) - plan["optimised"].as_u64().unwrap_or(0)
    );
    println!(
        "Expected value {} against {} one by one in file order ({:.1}% better) and {} for the best-fit greedy.",
        plan["objective"],
        plan["one_by_one_objective"],
        100.0 * plan["one_by_one_gap"].as_f64().unwrap_or(0.0),
        plan["greedy_objective"]
    );
    if let Some(reps) = plan["reps"].as_array() {
        for rep in reps {
            println!(
                "  {:<16} {:>5} leads  (band {}–{})",
                rep["rep_id"].as_str().unwrap_or(""),
                rep["leads"],
                rep["lower"],
                rep["upper"]
                    .as_u64()
                    .map_or("∞".to_owned(), |upper| upper.to_string())
            );
        }
    }
}

pub async fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let mode = server::batch::mode(
        Some(args.mode.as_str()),
        band_value(args.band.as_deref())?.as_ref(),
    )
    .map_err(|error| anyhow::anyhow!("{}: {}", error.field.unwrap_or_default(), error.message))?;
    let store = Settings::from_store_args(&args.store)?.open_store().await?;
    let state = AppState::new(store);
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(&args.file)
        .with_context(|| format!("opening {}", args.file.display()))?;
    let (custom, numbers) = server::table::custom_columns(&state.store.list_custom_fields().await?);
    let columns = server::table::mapping(reader.headers()?, &args.map, &custom)?;
    if !columns.iter().any(Option::is_some) {
        anyhow::bail!(
            "no column maps to a lead field; name columns like the fields or use --map COLUMN=FIELD"
        );
    }
    // Each row with the line it starts on: a bad row's error carries its position; failing
    // that, it is the line after the row before.
    let mut last_line = 1;
    let records: Vec<(u64, csv::Result<csv::StringRecord>)> = reader
        .records()
        .map(|record| {
            let position = match &record {
                Ok(record) => record.position(),
                Err(error) => error.position(),
            };
            last_line = position.map_or(last_line + 1, csv::Position::line);
            (last_line, record)
        })
        .collect();
    let progress = ProgressBar::new(records.len() as u64);
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} rows {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (mut created, mut duplicates, mut failed) = (0usize, 0usize, 0usize);
    let mut attached = 0usize;
    let mut errors: Vec<String> = Vec::new();
    let migrating = mode == server::batch::Mode::Migrate;
    let owners = if migrating {
        server::batch::Owners::new(&state.store.list_reps().await?)
    } else {
        server::batch::Owners::default()
    };
    let mut chunks: Vec<(Vec<LeadInput>, Vec<u64>)> = Vec::new();
    let mut kept_rows: Vec<Vec<server::routing::Kept>> = Vec::new();
    for chunk in records.chunks(500) {
        let mut batch = Vec::new();
        let mut lines = Vec::new();
        let mut kept = Vec::new();
        for (line, record) in chunk {
            let described = |error: server::error::ApiError| {
                format!(
                    "{} ({}): {}",
                    error.field.unwrap_or_default(),
                    error.code,
                    error.message
                )
            };
            let parsed = record
                .as_ref()
                .map_err(|error| error.to_string())
                .and_then(|record| {
                    let serde_json::Value::Object(mut document) =
                        server::table::row_to_json(record, &columns, &numbers)
                    else {
                        return Err("not a row".to_owned());
                    };
                    if migrating {
                        return server::batch::migrated(document, &owners)
                            .map(|(lead, keeps)| (lead, Some(keeps)))
                            .map_err(described);
                    }
                    // Only a migration reads these columns.
                    for field in server::batch::MIGRATION_FIELDS {
                        document.remove(field);
                    }
                    let bytes = serde_json::to_vec(&document).map_err(|error| error.to_string())?;
                    server::extract::parse::<LeadInput>(&bytes)
                        .and_then(|lead| lead.normalised())
                        .map(|lead| (lead, None))
                        .map_err(described)
                });
            match parsed {
                Ok((lead, keeps)) => {
                    batch.push(lead);
                    lines.push(*line);
                    kept.extend(keeps);
                }
                Err(message) => {
                    failed += 1;
                    errors.push(format!("line {line}: {message}"));
                }
            }
        }
        chunks.push((batch, lines));
        kept_rows.push(kept);
    }
    if let server::batch::Mode::Optimal(settings) = mode {
        // The whole file is one batch.
        let (batch, lines): (Vec<LeadInput>, Vec<u64>) = chunks
            .drain(..)
            .flat_map(|(batch, lines)| batch.into_iter().zip(lines))
            .unzip();
        let (_, summary) = state
            .router
            .create_planned(batch.clone(), "import", settings, true)
            .await
            .map_err(|error| anyhow::anyhow!(error.message))?;
        print_plan(&server::batch::summary_view(&summary));
        if !args.yes && !confirmed()? {
            println!("Nothing imported. Run again with --yes to apply the plan.");
            return Ok(ExitCode::SUCCESS);
        }
        chunks.push((batch, lines));
    }
    let mut kept_rows = kept_rows.into_iter();
    for (batch, lines) in chunks {
        let size = batch.len() as u64;
        let results = match mode {
            server::batch::Mode::Arrival => state.router.create(batch, "import").await,
            server::batch::Mode::Migrate => {
                let kept = kept_rows.next().unwrap_or_default();
                state.router.migrate(batch, kept, "import").await
            }
            server::batch::Mode::Optimal(settings) => state
                .router
                .create_planned(batch, "import", settings, false)
                .await
                .map(|(results, _)| results),
        }
        .map_err(|error| anyhow::anyhow!(error.message))?;
        for (line, result) in lines.into_iter().zip(results) {
            match result {
                Ok(Created::New { .. } | Created::Planned { .. }) => created += 1,
                Ok(Created::Duplicate { .. }) => duplicates += 1,
                Ok(Created::Attached { .. }) => attached += 1,
                Err(error) => {
                    failed += 1;
                    errors.push(format!(
                        "line {line}: {} ({}): {}",
                        error.field.unwrap_or_default(),
                        error.code,
                        error.message
                    ));
                }
            }
        }
        progress.inc(size);
    }
    progress.finish_and_clear();
    for error in &errors {
        eprintln!("{}: {error}", args.file.display());
    }
    println!(
        "{}: {created} {}, {duplicates} already imported, {failed} rejected{}",
        args.file.display(),
        if migrating {
            "moved in with their owners (not routed)"
        } else {
            "created"
        },
        if attached > 0 {
            format!(", {attached} attached to a known customer's lead (查重)")
        } else {
            String::new()
        }
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Asks on the terminal whether to apply the plan; no terminal, no.
fn confirmed() -> anyhow::Result<bool> {
    use std::io::{BufRead as _, IsTerminal as _, Write as _};
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    print!("Apply this plan? [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
