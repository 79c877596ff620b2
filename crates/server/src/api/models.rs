//! Learned conversion models (线索评分模型): train one on the workspace's closed leads (or a CSV,
//! to try it out), read its evaluation, publish it — or an earlier version again, which is the
//! rollback. Training checks at once (too few outcomes, a file without its outcome column are
//! 422) and then runs as a job. See docs/scoring.md.

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::Body;
use crate::model::schedule::ScheduleDocument;
use crate::model::{self, TrainRequest};
use crate::ops::Operation;

/// The body limit of a training request: an inline CSV and the rest.
pub const BODY_LIMIT: usize = model::file::MAX_FILE_BYTES + 1024 * 1024;

/// Reads the request: JSON checked like every body, except a file's content, which may be
/// long; its cells become features and are never stored or logged.
pub fn read_request(headers: &HeaderMap, bytes: &[u8]) -> ApiResult<TrainRequest> {
    crate::extract::require_json(headers)?;
    if bytes.is_empty() {
        return Ok(TrainRequest::default());
    }
    let mut value: Value = crate::extract::parse_checked(bytes)?;
    let content = value
        .pointer_mut("/file/content")
        .map(|content| std::mem::replace(content, Value::from("")));
    crate::text::check_json(value.to_string().as_bytes())?;
    if let Some(content) = &content
        && content.as_str().is_some_and(|text| text.contains('\0'))
    {
        return Err(ApiError::invalid(
            "invalid_text",
            "file.content",
            "the file holds a NUL character",
        ));
    }
    if let (Some(content), Some(slot)) = (content, value.pointer_mut("/file/content")) {
        *slot = content;
    }
    crate::extract::parse_checked(value.to_string().as_bytes())
}

/// Train a model: on the workspace's won and lost leads (at least 200, 40 of each), or on a
/// CSV with an outcome column. Answers at once with the model `training`; its evaluation
/// follows.
#[utoipa::path(post, path = "/api/v1/models", tag = "models", request_body = TrainRequest,
    responses((status = 202, description = "The model, training"), (status = 422, description = "`not_enough_outcomes`, `unknown_column`, `one_outcome`, `invalid_outcome`")),
    security(("api_key" = [])))]
pub async fn train_model(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.may(Operation::TrainModel)?;
    let request = read_request(&headers, &body)?;
    let row = model::start(&app.store, &caller, &request).await?;
    Ok((StatusCode::ACCEPTED, Json(model::view(&row, false))))
}

/// Models, newest first, with their evaluations.
#[utoipa::path(get, path = "/api/v1/models", tag = "models",
    responses((status = 200, description = "`{items}`")), security(("api_key" = [])))]
pub async fn list_models(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Value>> {
    caller.may(Operation::ListModels)?;
    let rows = app.store.list_models(50).await?;
    let items: Vec<Value> = rows.iter().map(|row| model::view(row, false)).collect();
    Ok(Json(json!({"items": items, "next_cursor": null})))
}

/// A model: its status, evaluation and (`model`) its weights.
#[utoipa::path(get, path = "/api/v1/models/{id}", tag = "models", params(("id" = i64, Path, description = "The model's version")),
    responses((status = 200, description = "The model"), (status = 404, description = "No such model")),
    security(("api_key" = [])))]
pub async fn get_model(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(version): Path<i64>,
) -> ApiResult<Json<Value>> {
    caller.may(Operation::GetModel)?;
    let row = app
        .store
        .get_model(version)
        .await?
        .ok_or_else(|| ApiError::not_found("model"))?;
    Ok(Json(model::view(&row, true)))
}

/// Publish a trained model: every lead routed from now on gets its `win_probability`.
/// Publishing an earlier version is the rollback. Audited.
#[utoipa::path(post, path = "/api/v1/models/{id}/publish", tag = "models", params(("id" = i64, Path, description = "The model's version")),
    responses((status = 200, description = "The model, active"), (status = 404, description = "No such model"),
        (status = 409, description = "`model_training`, `model_failed`, `not_publishable` (trained on a file)")),
    security(("api_key" = [])))]
pub async fn publish_model(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(version): Path<i64>,
) -> ApiResult<Json<Value>> {
    let row = model::publish(&app.store, &caller, version).await?;
    app.router.sweep_soon();
    Ok(Json(model::view(&row, false)))
}

/// The retraining schedule: how often, whether a new model publishes itself and above which
/// AUC, when the next run is due and what the last one gave.
#[utoipa::path(get, path = "/api/v1/models/schedule", tag = "models",
    responses((status = 200, description = "The schedule")), security(("api_key" = [])))]
pub async fn get_model_schedule(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Value>> {
    let row = model::schedule::get(&app.store, &caller).await?;
    Ok(Json(model::schedule::view(&row)))
}

/// Set the retraining schedule (`every`: `7d`; null for on demand only). With `auto_publish` a
/// scheduled model whose holdout AUC reaches `minimum_auc` replaces the active one; otherwise
/// it waits as a draft. Audited.
#[utoipa::path(put, path = "/api/v1/models/schedule", tag = "models", request_body = ScheduleDocument,
    responses((status = 200, description = "The schedule"), (status = 422, description = "`invalid_value`, `invalid_time_zone`")),
    security(("api_key" = [])))]
pub async fn set_model_schedule(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Body(setting): Body<ScheduleDocument>,
) -> ApiResult<Json<Value>> {
    caller.may(Operation::SetModelSchedule)?;
    let row = model::schedule::set(&app.store, &caller, &setting, chrono::Utc::now()).await?;
    Ok(Json(model::schedule::view(&row)))
}
