//! `leadroute model`: train the conversion model on the workspace's closed leads, read its
//! evaluation, publish it. `evaluate --csv` tries the model on a file without touching any
//! workspace. The same checks and training as `POST /api/v1/models`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use learn::Evaluation;
use server::auth::{Caller, Role};
use server::error::ApiError;
use server::model::{TrainFile, TrainRequest};

use crate::config::{Settings, StoreArgs};

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Train on the workspace's won and lost leads and keep the model as a draft.
    Train {
        #[command(flatten)]
        options: TrainArgs,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Train and print the evaluation without keeping anything: on the workspace, or on a CSV
    /// (`--csv`, which needs no workspace at all).
    Evaluate {
        /// A CSV with an outcome column.
        #[arg(long, value_name = "FILE")]
        csv: Option<PathBuf>,
        /// The CSV's outcome column (won: 1 / true / yes / won / 成交; lost: 0 / false / …).
        #[arg(long, requires = "csv")]
        outcome: Option<String>,
        /// CSV columns to leave out, comma-separated: ids, and whatever is known only after
        /// follow-up (it would leak the outcome).
        #[arg(long, value_delimiter = ',', requires = "csv")]
        drop: Vec<String>,
        #[command(flatten)]
        options: TrainArgs,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Make a trained model active (an earlier version: roll back to it).
    Publish {
        version: i64,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// The models, newest first.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Show or set scheduled retraining (with no options: show it). The running service trains
    /// when a run falls due.
    Schedule {
        /// How often to retrain: `7d`, `1d`, `12h`.
        #[arg(long, conflicts_with = "off")]
        every: Option<String>,
        /// Retrain only on demand.
        #[arg(long)]
        off: bool,
        /// Publish a scheduled model by itself when its holdout AUC reaches the minimum.
        #[arg(long)]
        auto_publish: bool,
        /// The AUC a model needs to publish itself (default 0.75).
        #[arg(long)]
        minimum_auc: Option<f64>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// `time` (train on older, test on the newest fifth) or `stratified` (a random 30% of
    /// each outcome); `time` when the examples have arrival times.
    #[arg(long)]
    split: Option<String>,
    /// The zone arrival hour and weekday are read in.
    #[arg(long, default_value = "Asia/Shanghai")]
    time_zone: String,
    /// Print the evaluation as JSON.
    #[arg(long)]
    json: bool,
}

/// The command line acts as an administrator (`user:cli`): whoever runs it holds the database.
pub(crate) fn operator() -> Caller {
    Caller {
        role: Role::Admin,
        key_id: None,
        user_id: Some("cli".into()),
        rep_id: None,
        teams: Vec::new(),
    }
}

fn fail(error: &ApiError) -> ExitCode {
    eprintln!(
        "error: {} ({}{})",
        error.message,
        error.code,
        error
            .field
            .as_ref()
            .map(|field| format!(", {field}"))
            .unwrap_or_default()
    );
    ExitCode::FAILURE
}

pub async fn run(command: ModelCommand) -> anyhow::Result<ExitCode> {
    match command {
        ModelCommand::Evaluate {
            csv,
            outcome,
            drop,
            options,
            store,
        } => {
            let prepared = match csv {
                // A file needs no workspace: nothing is opened, nothing is written.
                Some(path) => {
                    let content = std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    let request = TrainRequest {
                        file: Some(TrainFile {
                            content,
                            outcome: outcome.context("--outcome names the CSV's outcome column")?,
                            drop,
                        }),
                        ..request(&options)
                    };
                    server::model::prepare_file(&request)
                }
                None => {
                    let store = Settings::from_store_args(&store)?.open_store().await?;
                    server::model::prepare(&store, &request(&options)).await
                }
            };
            let prepared = match prepared {
                Ok(prepared) => prepared,
                Err(error) => return Ok(fail(&error)),
            };
            let started = std::time::Instant::now();
            match tokio::task::spawn_blocking(move || server::model::train(&prepared)).await? {
                Ok(trained) => {
                    print_evaluation(&trained.evaluation, options.json, started.elapsed());
                    Ok(ExitCode::SUCCESS)
                }
                Err(error) => Ok(fail(&error)),
            }
        }
        ModelCommand::Train { options, store } => {
            let store = Settings::from_store_args(&store)?.open_store().await?;
            let started = std::time::Instant::now();
            let row = match server::model::train_now(&store, &operator(), &request(&options)).await
            {
                Ok(row) => row,
                Err(error) => return Ok(fail(&error)),
            };
            if let Some(evaluation) = row
                .evaluation
                .as_deref()
                .and_then(|text| serde_json::from_str::<Evaluation>(text).ok())
            {
                print_evaluation(&evaluation, options.json, started.elapsed());
            }
            if row.status == "draft" {
                println!(
                    "Model {} is a draft: `leadroute model publish {}` makes it score every new lead.",
                    row.version, row.version
                );
                Ok(ExitCode::SUCCESS)
            } else {
                println!(
                    "Model {} {}: {}",
                    row.version,
                    row.status,
                    row.error.unwrap_or_default()
                );
                Ok(ExitCode::FAILURE)
            }
        }
        ModelCommand::Publish { version, store } => {
            let store = Settings::from_store_args(&store)?.open_store().await?;
            match server::model::publish(&store, &operator(), version).await {
                Ok(row) => {
                    println!("Model {} is active.", row.version);
                    Ok(ExitCode::SUCCESS)
                }
                Err(error) => Ok(fail(&error)),
            }
        }
        ModelCommand::List { store } => {
            let store = Settings::from_store_args(&store)?.open_store().await?;
            println!(
                "{:>7}  {:<12} {:<9} {:>6} {:>8}  created",
                "version", "status", "source", "AUC", "examples"
            );
            for row in store.list_models(50).await? {
                let evaluation = row
                    .evaluation
                    .as_deref()
                    .and_then(|text| serde_json::from_str::<Evaluation>(text).ok());
                println!(
                    "{:>7}  {:<12} {:<9} {:>6} {:>8}  {}",
                    row.version,
                    server::model::status(&row),
                    row.source,
                    evaluation
                        .as_ref()
                        .map_or("-".to_owned(), |e| format!("{:.3}", e.holdout.auc)),
                    evaluation
                        .as_ref()
                        .map_or("-".to_owned(), |e| e.examples.to_string()),
                    server::leads::time(row.created_at)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ModelCommand::Schedule {
            every,
            off,
            auto_publish,
            minimum_auc,
            store,
        } => {
            let store = Settings::from_store_args(&store)?.open_store().await?;
            schedule(every, off, auto_publish, minimum_auc, &store).await
        }
    }
}

async fn schedule(
    every: Option<String>,
    off: bool,
    auto_publish: bool,
    minimum_auc: Option<f64>,
    store: &store::Store,
) -> anyhow::Result<ExitCode> {
    use server::model::schedule::{self, ScheduleDocument};
    let row = if every.is_none() && !off {
        match schedule::get(store, &operator()).await {
            Ok(row) => row,
            Err(error) => return Ok(fail(&error)),
        }
    } else {
        let setting = ScheduleDocument {
            every,
            auto_publish,
            minimum_auc,
            time_zone: None,
        };
        match schedule::set(store, &operator(), &setting, chrono::Utc::now()).await {
            Ok(row) => row,
            Err(error) => return Ok(fail(&error)),
        }
    };
    let view = schedule::view(&row);
    match view["every"].as_str() {
        None => println!("Retraining: only on demand (`leadroute model train`)."),
        Some(every) => {
            println!(
                "Retraining every {every}; next at {}.",
                view["next_at"].as_str().unwrap_or("-")
            );
            if view["auto_publish"] == true {
                println!(
                    "A new model publishes itself when its holdout AUC reaches {}.",
                    view["minimum_auc"]
                );
            } else {
                println!("A new model waits as a draft until someone publishes it.");
            }
        }
    }
    if !view["last_result"].is_null() {
        println!(
            "Last run ({}): {}",
            view["last_at"].as_str().unwrap_or("-"),
            view["last_result"]
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn request(options: &TrainArgs) -> TrainRequest {
    TrainRequest {
        file: None,
        split: options.split.clone(),
        time_zone: Some(options.time_zone.clone()),
    }
}

fn print_evaluation(evaluation: &Evaluation, json: bool, took: std::time::Duration) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(evaluation).unwrap_or_default()
        );
        return;
    }
    let holdout = &evaluation.holdout;
    let split = match evaluation.split {
        learn::Split::Time { .. } => "time-ordered: trained on the older, tested on the newest",
        learn::Split::Stratified { .. } => "stratified random",
    };
    println!(
        "Logistic regression on {} closed leads ({} won, {} lost), trained in {:.1} s",
        evaluation.examples,
        evaluation.won,
        evaluation.lost,
        took.as_secs_f64()
    );
    println!(
        "Holdout ({split}): {} trained, {} tested",
        evaluation.train, evaluation.test
    );
    println!(
        "  AUC {:.3}   log loss {:.3} (win rate alone {:.3})   Brier {:.3} (alone {:.3})   top-decile lift {:.2}×",
        holdout.auc,
        holdout.log_loss,
        holdout.baseline_log_loss,
        holdout.brier,
        holdout.baseline_brier,
        holdout.lift_top_decile
    );
    let cv = &evaluation.cross_validation;
    println!(
        "{}-fold cross-validation: AUC {:.3} ± {:.3}, log loss {:.3}; regularisation λ = {} (lowest log loss of {})",
        cv.folds,
        cv.auc_mean,
        cv.auc_sd,
        cv.log_loss_mean,
        evaluation.lambda,
        evaluation
            .lambdas
            .iter()
            .map(|tried| format!("{} → {:.4}", tried.lambda, tried.log_loss))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("Calibration (predicted → observed win rate, by tenth):");
    for bin in &holdout.calibration {
        println!(
            "  {:>5.1}% → {:>5.1}%  ({} leads)",
            bin.predicted * 100.0,
            bin.observed * 100.0,
            bin.count
        );
    }
    println!("Fields by how much they move the odds:");
    for field in evaluation.fields.iter().take(10) {
        println!(
            "  {:<40} {:>6.2}  ({} levels)",
            field.field, field.spread, field.levels
        );
    }
    println!("Strongest levels (weight in log-odds):");
    for level in evaluation.top_levels.iter().take(10) {
        println!(
            "  {:+.2}  {} = {}  ({} leads)",
            level.weight, level.field, level.value, level.count
        );
    }
}
