//! The learned conversion model (线索评分模型): examples from the workspace's closed leads (or,
//! for trying it out, a CSV), training as a job, and versions published like rule sets — a
//! draft with its evaluation until someone publishes it; publishing an earlier version is the
//! rollback. The active model lives in the routing snapshot (`Workspace::model`) and scores
//! every lead routed.

pub mod file;
pub mod schedule;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use engine::FieldCatalogue;
use engine::model::{FeatureSource, learnable_features, raw_value};
use engine::value::FieldType;
use learn::{Kind, Split, Table};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use store::ModelRow;
use utoipa::ToSchema;

use crate::api::accounts::audit_row;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::leads::LeadInput;
use crate::ops::Operation;

/// A training asked for.
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainRequest {
    /// Train on a CSV instead of the workspace's closed leads (to try the model out; such a
    /// model cannot be published).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<TrainFile>,
    /// `time` (train on older, test on the newest fifth; the default) or `stratified` (a
    /// random 30% of each outcome).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
    /// The zone arrival hour and weekday are read in (default `Asia/Shanghai`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainFile {
    /// The CSV text.
    pub content: String,
    /// The column that says won or lost.
    pub outcome: String,
    /// Columns to leave out: ids, and whatever is known only after follow-up.
    #[serde(default)]
    pub drop: Vec<String>,
}

/// Examples and how to split them, checked before a job starts.
#[derive(Debug)]
pub struct Prepared {
    pub table: Table,
    pub options: learn::Options,
    pub source: &'static str,
}

/// The workspace's closed leads (won or lost) as examples: their fields as they arrived, read
/// through the same `raw_value` as scoring reads them.
pub async fn workspace_table(
    store: &store::Store,
    catalogue: &FieldCatalogue,
    zone: Tz,
) -> Result<Table, ApiError> {
    let features = learnable_features(catalogue);
    let kinds: Vec<Kind> = features
        .iter()
        .map(|(name, source)| match source {
            FeatureSource::Field(_) => match catalogue.lead_field(name).map(|(_, t)| t) {
                Some(FieldType::Number) => Kind::Number,
                Some(FieldType::List) => Kind::Set,
                _ => Kind::Category,
            },
            _ => Kind::Category,
        })
        .collect();
    let mut table = Table::new(
        features
            .iter()
            .zip(&kinds)
            .map(|((name, _), kind)| (name.clone(), *kind)),
    );
    let mut after = None;
    loop {
        let rows = store.closed_leads(after.clone(), 5000).await?;
        let Some(last) = rows.last() else { break };
        after = Some((last.created_at, last.id.clone()));
        for row in &rows {
            let Ok(mut input) = serde_json::from_str::<LeadInput>(row.intake_document()) else {
                continue;
            };
            input.attributes =
                engine::field::readable_attributes(catalogue.lead_custom(), &input.attributes);
            let arrived =
                DateTime::<Utc>::from_timestamp_micros(row.created_at).unwrap_or_default();
            let Ok(lead) = input.to_engine(catalogue, arrived) else {
                continue;
            };
            let view = engine::field::LeadView::new(&lead, catalogue);
            table.push(
                features
                    .iter()
                    .map(|(_, source)| raw_value(*source, &view, arrived, zone)),
                row.status == "won",
                row.created_at,
            );
        }
    }
    Ok(table)
}

/// Checks a request and reads its examples: the file's, or the workspace's closed leads.
pub async fn prepare(store: &store::Store, request: &TrainRequest) -> Result<Prepared, ApiError> {
    if request.file.is_some() {
        return prepare_file(request);
    }
    let (time_zone, zone) = zone(request)?;
    let rows = crate::workspace::ConfigRows::load(store).await?;
    let catalogue = crate::workspace::catalogue_from_rows(&rows.fields);
    let table = workspace_table(store, &catalogue, zone).await?;
    finish_prepare(table, "workspace", true, request, time_zone)
}

/// Checks a request that carries a file and reads it; no workspace is involved.
pub fn prepare_file(request: &TrainRequest) -> Result<Prepared, ApiError> {
    let (time_zone, _) = zone(request)?;
    let Some(file) = &request.file else {
        return Err(ApiError::invalid(
            "missing_file",
            "file",
            "no file to train on",
        ));
    };
    let read =
        file::read_csv(file.content.as_bytes(), &file.outcome, &file.drop).map_err(|error| {
            match error.field.clone() {
                Some(field) => error.with_field(format!("file.{field}")),
                None => error,
            }
        })?;
    finish_prepare(read.table, "file", read.timed, request, time_zone)
}

fn zone(request: &TrainRequest) -> Result<(String, Tz), ApiError> {
    let time_zone = request
        .time_zone
        .clone()
        .unwrap_or_else(|| "Asia/Shanghai".to_owned());
    let zone = engine::hours::parse_time_zone(&time_zone)
        .map_err(|message| ApiError::invalid("invalid_time_zone", "time_zone", message))?;
    Ok((time_zone, zone))
}

fn finish_prepare(
    table: Table,
    source: &'static str,
    timed: bool,
    request: &TrainRequest,
    time_zone: String,
) -> Result<Prepared, ApiError> {
    let split = match request.split.as_deref() {
        None if timed => Split::Time { test: 0.2 },
        None => Split::Stratified { test: 0.3 },
        Some("time") => Split::Time { test: 0.2 },
        Some("stratified") => Split::Stratified { test: 0.3 },
        Some(_) => {
            return Err(ApiError::invalid(
                "invalid_split",
                "split",
                "split is time or stratified",
            ));
        }
    };
    let options = learn::Options {
        split,
        time_zone,
        ..learn::Options::default()
    };
    check_enough(&table, &options)?;
    Ok(Prepared {
        table,
        options,
        source,
    })
}

fn check_enough(table: &Table, options: &learn::Options) -> Result<(), ApiError> {
    let closed = table.examples.len();
    let won = table.won();
    let minimum = options.minimum;
    if closed < minimum.closed || won < minimum.each || closed - won < minimum.each {
        let error = learn::TrainError::NotEnough {
            closed,
            won,
            lost: closed - won,
            minimum,
        };
        return Err(ApiError::invalid(
            "not_enough_outcomes",
            "outcome",
            error.to_string(),
        ));
    }
    Ok(())
}

/// Trains on prepared examples (a core's worth of work: call it off the async threads).
pub fn train(prepared: &Prepared) -> Result<learn::Trained, ApiError> {
    learn::train(&prepared.table, &prepared.options).map_err(|error| match error {
        learn::TrainError::NotEnough { .. } => {
            ApiError::invalid("not_enough_outcomes", "outcome", error.to_string())
        }
        learn::TrainError::NoFeatures => {
            ApiError::invalid("no_features", "file", error.to_string())
        }
    })
}

fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

/// Stores a model as `training` under the next version.
async fn insert_training(
    store: &store::Store,
    caller: &Caller,
    request: &TrainRequest,
    source: &str,
) -> Result<ModelRow, ApiError> {
    let at = now_micros();
    let mut row = ModelRow {
        status: "training".into(),
        source: source.into(),
        created_by: caller.actor(),
        created_at: at,
        updated_at: at,
        request: crate::extract::stored_request(request),
        ..ModelRow::default()
    };
    row.version = store.insert_model(&row).await?;
    Ok(row)
}

/// One training at a time per instance.
static TRAINING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// Checks the caller and the request, reads the examples and starts training in the
/// background; the model as stored (`training`).
pub async fn start(
    store: &store::Store,
    caller: &Caller,
    request: &TrainRequest,
) -> Result<ModelRow, ApiError> {
    caller.may(Operation::TrainModel)?;
    let prepared = prepare(store, request).await?;
    let row = insert_training(store, caller, request, prepared.source).await?;
    let (store, version) = (store.clone(), row.version);
    tokio::spawn(async move {
        let Ok(permit) = TRAINING.acquire().await else {
            return;
        };
        let result = tokio::task::spawn_blocking(move || train(&prepared))
            .await
            .unwrap_or_else(|error| Err(ApiError::internal(error)));
        drop(permit);
        finish(&store, version, result).await;
    });
    Ok(row)
}

/// Trains in the caller's task and stores the result: the CLI's and the schedule's way.
pub async fn train_now(
    store: &store::Store,
    caller: &Caller,
    request: &TrainRequest,
) -> Result<ModelRow, ApiError> {
    caller.may(Operation::TrainModel)?;
    let prepared = prepare(store, request).await?;
    let row = insert_training(store, caller, request, prepared.source).await?;
    let permit = TRAINING.acquire().await.map_err(ApiError::internal)?;
    let result = tokio::task::spawn_blocking(move || train(&prepared))
        .await
        .unwrap_or_else(|error| Err(ApiError::internal(error)));
    drop(permit);
    finish(store, row.version, result).await;
    store
        .get_model(row.version)
        .await?
        .ok_or_else(|| ApiError::internal("the model vanished"))
}

async fn finish(store: &store::Store, version: i64, result: Result<learn::Trained, ApiError>) {
    let mut row = ModelRow {
        version,
        updated_at: now_micros(),
        ..ModelRow::default()
    };
    match result {
        Ok(trained) => {
            row.status = "draft".into();
            row.spec = serde_json::to_string(&trained.spec).ok();
            row.evaluation = serde_json::to_string(&trained.evaluation).ok();
        }
        Err(error) => {
            row.status = "failed".into();
            row.error = Some(json!({"code": error.code, "message": error.message}).to_string());
        }
    }
    if let Err(error) = store.finish_model(&row).await {
        tracing::error!(%error, version, "could not record a model's training");
    }
}

/// A training not finished after this long died with its instance.
const STALE_AFTER_MICROS: i64 = 30 * 60 * 1_000_000;

/// The status as people should read it: a training whose instance died is `interrupted`.
pub fn status(row: &ModelRow) -> &str {
    if row.status == "training" && now_micros() - row.updated_at > STALE_AFTER_MICROS {
        "interrupted"
    } else {
        &row.status
    }
}

/// A model as the API shows it; `weights` adds the stored model itself.
pub fn view(row: &ModelRow, weights: bool) -> Value {
    let parse = |text: &Option<String>| {
        text.as_deref()
            .and_then(|text| serde_json::from_str::<Value>(text).ok())
    };
    let mut value = json!({
        "version": row.version,
        "status": status(row),
        "source": row.source,
        "created_by": row.created_by,
        "created_at": crate::leads::time(row.created_at),
        "finished_at": (row.status != "training").then(|| crate::leads::time(row.updated_at)),
        "published_at": row.published_at.map(crate::leads::time),
        "request": serde_json::from_str::<Value>(&row.request).unwrap_or(Value::Null),
        "evaluation": parse(&row.evaluation),
        "error": parse(&row.error),
    });
    if weights {
        value["model"] = parse(&row.spec).unwrap_or(Value::Null);
    }
    value
}

/// Publishes a trained model (or an earlier one again: the rollback), audited. Routing reloads
/// and scores every lead with it from the next one on.
pub async fn publish(
    store: &store::Store,
    caller: &Caller,
    version: i64,
) -> Result<ModelRow, ApiError> {
    caller.may(Operation::PublishModel)?;
    let row = store
        .get_model(version)
        .await?
        .ok_or_else(|| ApiError::not_found("model"))?;
    match row.status.as_str() {
        "active" => return Ok(row),
        "draft" | "retired" => {}
        "training" => {
            return Err(ApiError::conflict(
                "model_training",
                "the model is still training",
            ));
        }
        _ => {
            return Err(ApiError::conflict(
                "model_failed",
                "a model whose training failed cannot be published",
            ));
        }
    }
    if row.source != "workspace" {
        return Err(ApiError::conflict(
            "not_publishable",
            "a model trained on a file is for trying out; train on the workspace's leads to publish",
        ));
    }
    // The document must still read: a model published is a model that scores.
    let spec: engine::ModelSpec =
        serde_json::from_str(row.spec.as_deref().unwrap_or("")).map_err(ApiError::internal)?;
    let rows = crate::workspace::ConfigRows::load(store).await?;
    let catalogue = crate::workspace::catalogue_from_rows(&rows.fields);
    engine::WinModel::compile(&spec, &catalogue, version)
        .map_err(|error| ApiError::invalid("invalid_model", error.path, error.message))?;
    store
        .publish_model(version, now_micros(), |previous| {
            let action = if previous.is_some_and(|previous| previous > version) {
                "model.rolled_back"
            } else {
                "model.published"
            };
            audit_row(
                caller,
                action,
                "model",
                Some(&version.to_string()),
                json!({"previous": previous, "version": version}),
            )
        })
        .await?;
    store
        .get_model(version)
        .await?
        .ok_or_else(|| ApiError::internal("the model vanished"))
}

/// Which models a caller may see: the reach of `ListModels`.
pub fn may_list(caller: &Caller) -> Result<(), ApiError> {
    caller.may(Operation::ListModels)
}
