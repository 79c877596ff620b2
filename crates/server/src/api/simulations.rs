//! Simulations (规则回放): replay history through a draft before publishing it. Starting one
//! checks it at once (an unknown version or rep, an empty window, a bad file are 4xx); the
//! replay then runs as a job whose progress and report are read here. Admins and managers;
//! managers see only their teams' reps in a report.

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::ops::Operation;
use crate::simulate::{SimulationInput, jobs};

/// The body limit of a simulation request: an inline history file and the rest.
pub const BODY_LIMIT: usize = crate::simulate::MAX_FILE_BYTES + 1024 * 1024;

/// Reads the request: JSON whose text is checked like every body, except a history file's
/// content, which may be long and is checked row by row as it replays: a row with a control
/// character is a bad row, reported by line.
pub fn read_input(headers: &HeaderMap, bytes: &[u8]) -> ApiResult<SimulationInput> {
    crate::extract::require_json(headers)?;
    let mut value: Value = crate::extract::parse_checked(bytes)?;
    let content = value
        .pointer_mut("/file/content")
        .map(|content| std::mem::replace(content, Value::from("")));
    crate::text::check_json(value.to_string().as_bytes())?;
    if let (Some(content), Some(slot)) = (content, value.pointer_mut("/file/content")) {
        *slot = content;
    }
    crate::extract::parse_checked(value.to_string().as_bytes())
}

/// Start a simulation: history (a window of the workspace's leads, or a file) replayed
/// through policy A (the active rule set when left out) and policy B. See docs/simulate.md.
#[utoipa::path(post, path = "/api/v1/simulations", tag = "simulations", request_body = SimulationInput,
    responses((status = 202, description = "The job, queued"), (status = 422, description = "An unknown rule-set version or rep, an empty window, a bad file")),
    security(("api_key" = [])))]
pub async fn create_simulation(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.may(Operation::CreateSimulation)?;
    let input = read_input(&headers, &body)?;
    let row = jobs::start(&app.store, &caller, &input).await?;
    Ok((StatusCode::ACCEPTED, Json(jobs::view(&row, None))))
}

/// Recent simulations, newest first, without their reports.
#[utoipa::path(get, path = "/api/v1/simulations", tag = "simulations",
    responses((status = 200, description = "`{items}`")), security(("api_key" = [])))]
pub async fn list_simulations(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Value>> {
    caller.may(Operation::ListSimulations)?;
    let rows = app.store.list_simulations(50).await?;
    let items: Vec<Value> = rows.iter().map(|row| jobs::view(row, None)).collect();
    Ok(Json(json!({"items": items, "next_cursor": null})))
}

/// A simulation: its progress (`done` of `total` leads) and, once done, its report.
#[utoipa::path(get, path = "/api/v1/simulations/{id}", tag = "simulations", params(("id" = String, Path)),
    responses((status = 200, description = "The job, with `report` once `status` is `done`"), (status = 404, description = "No such simulation")),
    security(("api_key" = [])))]
pub async fn get_simulation(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.may(Operation::GetSimulation)?;
    let row = app
        .store
        .get_simulation(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("simulation"))?;
    let visible = jobs::visible(&app, &caller).await?;
    Ok(Json(jobs::view(&row, visible.as_deref())))
}

/// Stop a queued or running simulation.
#[utoipa::path(post, path = "/api/v1/simulations/{id}/cancel", tag = "simulations", params(("id" = String, Path)),
    responses((status = 202, description = "The job, asked to stop"), (status = 409, description = "`finished`: it already ended")),
    security(("api_key" = [])))]
pub async fn cancel_simulation(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.may(Operation::CancelSimulation)?;
    let row = app
        .store
        .get_simulation(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("simulation"))?;
    if !app
        .store
        .cancel_simulation(&id, chrono::Utc::now().timestamp_micros())
        .await?
    {
        return Err(ApiError::conflict(
            "finished",
            format!("the simulation already ended: {}", row.status),
        ));
    }
    let row = app.store.get_simulation(&id).await?.unwrap_or(row);
    Ok((StatusCode::ACCEPTED, Json(jobs::view(&row, None))))
}
