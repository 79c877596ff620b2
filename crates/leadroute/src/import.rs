//! `leadroute import FILE.csv`: each row becomes a lead, validated and routed like an API lead,
//! with errors reported by line. Re-running is safe: a row's external id comes from the id
//! column, or from a hash of the row, so a second run finds duplicates, not new leads.

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
    #[command(flatten)]
    store: StoreArgs,
}

pub async fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
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
    let mut errors: Vec<String> = Vec::new();
    for chunk in records.chunks(500) {
        let mut batch = Vec::new();
        let mut lines = Vec::new();
        for (line, record) in chunk {
            let parsed = record
                .as_ref()
                .map_err(|error| error.to_string())
                .and_then(|record| {
                    let bytes =
                        serde_json::to_vec(&server::table::row_to_json(record, &columns, &numbers))
                            .map_err(|error| error.to_string())?;
                    server::extract::parse::<LeadInput>(&bytes)
                        .and_then(|lead| lead.normalised())
                        .map_err(|error| {
                            format!(
                                "{} ({}): {}",
                                error.field.unwrap_or_default(),
                                error.code,
                                error.message
                            )
                        })
                });
            match parsed {
                Ok(lead) => {
                    batch.push(lead);
                    lines.push(*line);
                }
                Err(message) => {
                    failed += 1;
                    errors.push(format!("line {line}: {message}"));
                }
            }
        }
        let results = state
            .router
            .create(batch, "import")
            .await
            .map_err(|error| anyhow::anyhow!(error.message))?;
        for (line, result) in lines.into_iter().zip(results) {
            match result {
                Ok(Created::New { .. }) => created += 1,
                Ok(Created::Duplicate { .. }) => duplicates += 1,
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
        progress.inc(chunk.len() as u64);
    }
    progress.finish_and_clear();
    for error in &errors {
        eprintln!("{}: {error}", args.file.display());
    }
    println!(
        "{}: {created} created, {duplicates} already imported, {failed} rejected",
        args.file.display()
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
