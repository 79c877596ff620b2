//! Notification channels' test send, and the delivery log with dead-letter retry.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use store::{DeliveryFilter, DeliveryRow, Setting};
use utoipa::IntoParams;

use crate::AppState;
use crate::api::Page;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::leads::time;
use crate::notify::channel::ChannelDocument;
use crate::ops::Operation;
use axum::Extension;

#[derive(Debug, Deserialize, IntoParams)]
pub struct TestQuery {
    /// Rep ids to address (comma-separated): mentioned in robots, mailed by email channels.
    pub to: Option<String>,
}

/// Send a test message to the channel now; the answer says whether the platform took it.
#[utoipa::path(post, path = "/api/v1/channels/{id}/test", tag = "channels", params(("id" = String, Path), TestQuery),
    responses((status = 200, description = "`{ok: true, answer}`: a CRM connector says what it checked"), (status = 502, description = "The platform refused or could not be reached: `error` says why")),
    security(("api_key" = [])))]
pub async fn test_channel(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(query): Query<TestQuery>,
) -> ApiResult<Json<Value>> {
    caller.may(Operation::TestChannel)?;
    let row = app
        .store
        .get_setting(Setting::Channels, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("channel"))?;
    let channel: ChannelDocument = app
        .notifier
        .readable(serde_json::from_str(&row.document).map_err(ApiError::internal)?);
    let to: Vec<String> = query
        .to
        .as_deref()
        .map(|list| list.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    match app.notifier.test(&channel, &to).await {
        Ok(answer) => Ok(Json(json!({"ok": true, "answer": answer}))),
        Err(message) => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "channel_failed",
            format!("the test message was not delivered: {message}"),
        )),
    }
}

fn delivery_view(row: &DeliveryRow) -> Value {
    json!({
        "id": row.id,
        "event_id": row.event_id,
        "channel_id": row.channel_id,
        "event": row.event,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": (row.status == "pending").then(|| time(row.next_attempt_at)),
        "last_error": row.last_error,
        "answer": row.answer,
        "created_at": time(row.created_at),
        "sent_at": row.sent_at.map(time),
    })
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct DeliveryQuery {
    /// `pending`, `sent` or `dead`.
    pub status: Option<String>,
    pub channel_id: Option<String>,
    pub event_id: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// The delivery log, newest first: status, attempts, last error, next attempt.
#[utoipa::path(get, path = "/api/v1/deliveries", tag = "channels", params(DeliveryQuery),
    responses((status = 200, description = "`{items, next_cursor}`")), security(("api_key" = [])))]
pub async fn list_deliveries(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<DeliveryQuery>,
) -> ApiResult<Json<Value>> {
    caller.may(Operation::ListDeliveries)?;
    let limit = Page {
        limit: query.limit,
        cursor: None,
    }
    .limit()?;
    let filter = DeliveryFilter {
        status: query.status,
        channel_id: query.channel_id,
        event_id: query.event_id,
        before_id: query.cursor,
        limit: limit + 1,
    };
    let mut rows = app.store.list_deliveries(&filter).await?;
    let next_cursor = crate::api::cut(&mut rows, limit, |row| &row.id);
    Ok(Json(
        json!({"items": rows.iter().map(delivery_view).collect::<Vec<_>>(), "next_cursor": next_cursor}),
    ))
}

/// Send a dead-lettered delivery again, from a fresh count of attempts.
#[utoipa::path(post, path = "/api/v1/deliveries/{id}/retry", tag = "channels", params(("id" = String, Path)),
    responses((status = 200, description = "The delivery, pending again"), (status = 409, description = "Not dead-lettered")),
    security(("api_key" = [])))]
pub async fn retry_delivery(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.may(Operation::RetryDelivery)?;
    let mut row = app
        .store
        .get_delivery(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("delivery"))?;
    if row.status != "dead" {
        return Err(ApiError::conflict(
            "not_dead",
            format!(
                "the delivery is {}; only dead letters are retried",
                row.status
            ),
        ));
    }
    row.status = "pending".into();
    row.attempts = 0;
    row.next_attempt_at = chrono::Utc::now().timestamp_micros();
    app.store.finish_delivery(&row).await?;
    Ok(Json(delivery_view(&row)))
}
