//! Retraining on a schedule (定期重训): every `every` the workspace's closed leads train a new
//! draft, as "train now" would. A draft replaces the active model only when someone publishes it
//! — or, when the manager switched auto-publish on, when its holdout AUC reaches the minimum
//! they set. One row holds the setting and when the next run is due; an instance takes a due
//! run by moving that time on from the value it read, so several instances train once.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use store::ModelScheduleRow;
use utoipa::ToSchema;

use super::TrainRequest;
use crate::api::accounts::audit_row;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::ops::Operation;

/// The AUC a scheduled model must reach to publish itself, unless the setting says otherwise.
pub const DEFAULT_MINIMUM_AUC: f64 = 0.75;

/// Scheduled retraining, as the manager sets it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleDocument {
    /// How often to retrain on the workspace's closed leads: `7d`, `1d`, `12h` (at least an
    /// hour). Left out or null: only on demand.
    #[serde(default)]
    pub every: Option<String>,
    /// Publish a scheduled model without waiting for a person when its holdout AUC reaches
    /// `minimum_auc`. Off by default: a new model waits as a draft.
    #[serde(default)]
    pub auto_publish: bool,
    /// The holdout AUC a model needs to publish itself (0.5–1; default 0.75).
    #[serde(default)]
    pub minimum_auc: Option<f64>,
    /// The zone arrival hour and weekday are read in (default `Asia/Shanghai`).
    #[serde(default)]
    pub time_zone: Option<String>,
}

impl ScheduleDocument {
    /// Checks the setting; the interval, when there is one.
    pub fn check(&self) -> Result<Option<Duration>, ApiError> {
        if let Some(minimum) = self.minimum_auc
            && !(0.5..=1.0).contains(&minimum)
        {
            return Err(ApiError::invalid(
                "invalid_value",
                "minimum_auc",
                "the minimum AUC is between 0.5 (a coin) and 1",
            ));
        }
        if let Some(zone) = &self.time_zone {
            engine::hours::parse_time_zone(zone)
                .map_err(|message| ApiError::invalid("invalid_time_zone", "time_zone", message))?;
        }
        let Some(every) = &self.every else {
            return Ok(None);
        };
        let every = engine::follow_up::parse_duration(every)
            .map_err(|message| ApiError::invalid("invalid_value", "every", message))?;
        if every < Duration::hours(1) {
            return Err(ApiError::invalid(
                "invalid_value",
                "every",
                "retrain at most once an hour",
            ));
        }
        Ok(Some(every))
    }

    pub fn minimum_auc(&self) -> f64 {
        self.minimum_auc.unwrap_or(DEFAULT_MINIMUM_AUC)
    }

    fn request(&self) -> TrainRequest {
        TrainRequest {
            time_zone: self.time_zone.clone(),
            ..TrainRequest::default()
        }
    }
}

fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn document(row: &ModelScheduleRow) -> ScheduleDocument {
    serde_json::from_str(&row.document).unwrap_or_default()
}

/// The setting and where it stands, as the API shows it.
pub fn view(row: &ModelScheduleRow) -> Value {
    let document = document(row);
    json!({
        "every": document.every,
        "auto_publish": document.auto_publish,
        "minimum_auc": document.minimum_auc(),
        "time_zone": document.time_zone,
        "next_at": row.next_at.map(crate::leads::time),
        "last_at": row.last_at.map(crate::leads::time),
        "last_result": row.last_result.as_deref().and_then(|text| serde_json::from_str::<Value>(text).ok()),
        "updated_by": row.updated_by,
        "updated_at": (row.updated_at > 0).then(|| crate::leads::time(row.updated_at)),
    })
}

pub async fn get(store: &store::Store, caller: &Caller) -> Result<ModelScheduleRow, ApiError> {
    caller.may(Operation::GetModelSchedule)?;
    Ok(store.model_schedule().await?)
}

/// Saves the setting, audited; the first run falls one interval from now.
pub async fn set(
    store: &store::Store,
    caller: &Caller,
    setting: &ScheduleDocument,
    now: DateTime<Utc>,
) -> Result<ModelScheduleRow, ApiError> {
    caller.may(Operation::SetModelSchedule)?;
    let every = setting.check()?;
    let mut row = store.model_schedule().await?;
    row.document = serde_json::to_string(setting).map_err(ApiError::internal)?;
    row.next_at = every.map(|every| micros(now + every));
    row.updated_by = Some(caller.actor());
    row.updated_at = micros(now);
    let audit = audit_row(
        caller,
        "model.schedule_set",
        "model_schedule",
        None,
        json!({"every": setting.every, "auto_publish": setting.auto_publish,
               "minimum_auc": setting.minimum_auc()}),
    );
    store.set_model_schedule(&row, &audit).await?;
    Ok(row)
}

/// Runs the scheduled training if one is due and this instance takes it: trains a draft, and
/// publishes it when auto-publish is on and its holdout AUC reaches the minimum. What it did
/// (also recorded as the schedule's `last_result`), or `None` when nothing was due.
pub async fn run_due(store: &store::Store, now: DateTime<Utc>) -> Result<Option<Value>, ApiError> {
    let row = store.model_schedule().await?;
    let setting = document(&row);
    let (Some(due), Ok(Some(every))) = (row.next_at, setting.check()) else {
        return Ok(None);
    };
    if due > micros(now) {
        return Ok(None);
    }
    // After a long stop the next run is one interval from now, not a burst of missed ones.
    let every = every.num_microseconds().unwrap_or(i64::MAX / 4);
    let next = if due.saturating_add(every) > micros(now) {
        due.saturating_add(every)
    } else {
        micros(now).saturating_add(every)
    };
    if !store.claim_model_schedule(due, next, micros(now)).await? {
        return Ok(None);
    }
    let result = train_and_maybe_publish(store, &setting).await;
    let result = match result {
        Ok(result) => result,
        Err(error) => json!({"error": {"code": error.code, "message": error.message}}),
    };
    store.record_model_schedule(&result.to_string()).await?;
    tracing::info!(result = %result, "scheduled model training");
    Ok(Some(result))
}

async fn train_and_maybe_publish(
    store: &store::Store,
    setting: &ScheduleDocument,
) -> Result<Value, ApiError> {
    let caller = Caller::system();
    let trained = super::train_now(store, &caller, &setting.request()).await?;
    if trained.status != "draft" {
        let error = trained
            .error
            .as_deref()
            .and_then(|text| serde_json::from_str::<Value>(text).ok());
        return Ok(json!({"version": trained.version, "status": trained.status, "error": error}));
    }
    let auc = trained
        .evaluation
        .as_deref()
        .and_then(|text| serde_json::from_str::<Value>(text).ok())
        .and_then(|evaluation| evaluation.pointer("/holdout/auc").and_then(Value::as_f64));
    let mut result = json!({"version": trained.version, "status": "draft", "auc": auc,
                            "published": false});
    if !setting.auto_publish {
        result["reason"] = json!("auto_publish_off");
        return Ok(result);
    }
    let minimum = setting.minimum_auc();
    if auc.is_none_or(|auc| auc < minimum) {
        result["reason"] = json!("below_minimum_auc");
        result["minimum_auc"] = json!(minimum);
        return Ok(result);
    }
    super::publish(store, &caller, trained.version).await?;
    result["status"] = json!("active");
    result["published"] = json!(true);
    Ok(result)
}
