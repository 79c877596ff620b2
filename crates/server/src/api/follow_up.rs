//! Follow-up on a lead: activities, customer feedback, its pending clocks; and the workspace's
//! event log (the outbox) and outcome statistics.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use store::{ActivityRow, EventFilter, FeedbackRow, OutboxRow, StatsRow};
use utoipa::IntoParams;

use crate::AppState;
use crate::api::{Page, access};
use crate::auth::Caller;
use crate::auth::{Role, forbidden};
use crate::error::{ApiError, ApiResult};
use crate::extract::Body;
use crate::leads::time;
use crate::ops::Operation;
use crate::routing::{ActivityInput, FeedbackInput, LeadOp};

/// What an arrival attached to a lead brought (`inquiry`): the key that recognised the
/// customer, its source and campaign, and the names of the fields it carried — not their
/// values, which may be contact details.
fn arrival_view(detail: Option<&str>) -> Value {
    let Some(detail) = detail.and_then(|text| serde_json::from_str::<Value>(text).ok()) else {
        return Value::Null;
    };
    let arrival = &detail["arrival"];
    let fields: Vec<&String> = arrival
        .as_object()
        .map(|object| {
            object
                .iter()
                .filter(|(_, value)| {
                    !value.is_null() && *value != &json!([]) && *value != &json!({})
                })
                .map(|(name, _)| name)
                .collect()
        })
        .unwrap_or_default();
    json!({
        "key": detail["key"],
        "source": arrival["source"],
        "campaign": arrival["campaign"],
        "fields": fields,
    })
}

fn activity_view(row: &ActivityRow) -> Value {
    json!({
        "arrival": arrival_view(row.detail.as_deref()),
        "id": row.id,
        "lead_id": row.lead_id,
        "rep_id": row.rep_id,
        "actor": row.actor,
        "kind": row.kind,
        "outcome": row.outcome,
        "note": row.note,
        "next_follow_up_at": row.next_follow_up_at.map(time),
        "first_response": row.response_secs.is_some(),
        "response_secs": row.response_secs,
        "created_at": time(row.created_at),
    })
}

fn feedback_view(row: &FeedbackRow) -> Value {
    json!({
        "id": row.id,
        "lead_id": row.lead_id,
        "rep_id": row.rep_id,
        "kind": row.kind,
        "score": row.score,
        "comment": row.comment,
        "actor": row.actor,
        "created_at": time(row.created_at),
    })
}

/// Log a follow-up. The owner's first activity after an assignment is the first response and
/// stops the first-response clock; `next_follow_up_at` sets a callback reminder.
#[utoipa::path(post, path = "/api/v1/leads/{id}/activities", tag = "follow-up", params(("id" = String, Path)), request_body = ActivityInput,
    responses((status = 201, description = "`{activity, lead}`"), (status = 404, description = "No such lead"), (status = 422, description = "Invalid value")),
    security(("api_key" = [])))]
pub async fn log_activity(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Body(mut input): Body<ActivityInput>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.may(Operation::LogActivity)?;
    access::lead(&app, &caller, &id).await?;
    match caller.role {
        // A rep logs their own follow-ups.
        Role::Rep => {
            if input.rep_id.is_some() && input.rep_id != caller.rep_id {
                return Err(forbidden("a rep logs their own follow-ups"));
            }
            input.rep_id = caller.rep_id.clone();
        }
        Role::Manager => {
            if let Some(rep) = &input.rep_id {
                access::rep_in_reach(&app, &caller, rep).await?;
            }
        }
        _ => {}
    }
    let changed = app
        .router
        .change(&id, LeadOp::Activity(input), &caller.actor())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "activity": changed.activity.as_ref().map(activity_view),
            "lead": access::view(&caller, &changed.lead),
        })),
    ))
}

/// The lead's follow-ups, newest first.
#[utoipa::path(get, path = "/api/v1/leads/{id}/activities", tag = "follow-up", params(("id" = String, Path)),
    responses((status = 200, description = "`{items}`")), security(("api_key" = [])))]
pub async fn list_activities(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.may(Operation::ListActivities)?;
    access::lead(&app, &caller, &id).await?;
    let rows = app.store.activities_for(&id).await?;
    Ok(Json(
        json!({"items": rows.iter().map(activity_view).collect::<Vec<_>>(), "next_cursor": null}),
    ))
}

/// Record customer feedback (NPS 0–10 or satisfaction 1–5). Survey tools may use an
/// integration key.
#[utoipa::path(post, path = "/api/v1/leads/{id}/feedback", tag = "follow-up", params(("id" = String, Path)), request_body = FeedbackInput,
    responses((status = 201, description = "The feedback"), (status = 422, description = "Score out of range")),
    security(("api_key" = [])))]
pub async fn record_feedback(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Body(input): Body<FeedbackInput>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.may(Operation::RecordFeedback)?;
    // A survey tool's integration key posts feedback for leads it cannot read.
    if caller.role != Role::Integration {
        access::lead(&app, &caller, &id).await?;
    }
    let changed = app
        .router
        .change(&id, LeadOp::Feedback(input), &caller.actor())
        .await?;
    let mut view = changed
        .feedback
        .as_ref()
        .map(feedback_view)
        .unwrap_or(Value::Null);
    if caller.role == Role::Integration
        && let Some(view) = view.as_object_mut()
    {
        // A survey tool learns nothing of who owns the customer.
        view.remove("rep_id");
    }
    Ok((StatusCode::CREATED, Json(view)))
}

/// The lead's customer feedback, newest first.
#[utoipa::path(get, path = "/api/v1/leads/{id}/feedback", tag = "follow-up", params(("id" = String, Path)),
    responses((status = 200, description = "`{items}`")), security(("api_key" = [])))]
pub async fn list_feedback(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.may(Operation::ListFeedback)?;
    access::lead(&app, &caller, &id).await?;
    let rows = app.store.feedback_for(&id).await?;
    Ok(Json(
        json!({"items": rows.iter().map(feedback_view).collect::<Vec<_>>(), "next_cursor": null}),
    ))
}

/// What is due on the lead: reminders, escalations, reclaims, recycling, in due order.
#[utoipa::path(get, path = "/api/v1/leads/{id}/timers", tag = "follow-up", params(("id" = String, Path)),
    responses((status = 200, description = "`{items: [{kind, step, due_at, owner_id}]}`")), security(("api_key" = [])))]
pub async fn list_timers(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.may(Operation::ListTimers)?;
    let lead = access::lead(&app, &caller, &id).await?;
    let policy = lead.sla_policy.clone();
    let rows = crate::routing::coming(&app.store, &lead).await?;
    let items: Vec<Value> = rows
        .iter()
        .map(|row| {
            json!({
                "kind": row.kind,
                "step": (row.kind == "sla").then_some(row.step + 1),
                "sla_policy": (row.kind == "sla").then(|| policy.clone()).flatten(),
                "due_at": time(row.due_at),
                "owner_id": row.owner_id,
            })
        })
        .collect();
    Ok(Json(json!({"items": items, "next_cursor": null})))
}

fn event_view(row: &OutboxRow) -> Value {
    json!({
        "id": row.id,
        "event": row.event,
        "lead_id": row.lead_id,
        "rep_id": row.rep_id,
        "recipients": serde_json::from_str::<Value>(&row.recipients).unwrap_or(Value::Null),
        "payload": serde_json::from_str::<Value>(&row.payload).unwrap_or(Value::Null),
        "status": row.status,
        "created_at": time(row.created_at),
    })
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct EventQuery {
    pub lead_id: Option<String>,
    /// `lead.assigned`, `lead.sla_reminder`, …
    pub event: Option<String>,
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The event log (outbox), oldest first: what notifications will deliver.
#[utoipa::path(get, path = "/api/v1/events", tag = "follow-up", params(EventQuery),
    responses((status = 200, description = "`{items, next_cursor}`")), security(("api_key" = [])))]
pub async fn list_events(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<EventQuery>,
) -> ApiResult<Json<Value>> {
    caller.may(Operation::ListEvents)?;
    let limit = Page {
        limit: query.limit,
        cursor: None,
    }
    .limit()?;
    let filter = EventFilter {
        lead_id: query.lead_id,
        event: query.event,
        after_id: query.cursor,
        limit: limit + 1,
    };
    let mut rows = app.store.list_outbox(&filter).await?;
    let next_cursor = crate::api::cut(&mut rows, limit, |row| &row.id);
    Ok(Json(
        json!({"items": rows.iter().map(event_view).collect::<Vec<_>>(), "next_cursor": next_cursor}),
    ))
}

fn stats_view(row: &StatsRow) -> Value {
    let closed = row.won + row.lost + row.invalid;
    json!({
        "key": row.key,
        "assigned": row.assigned,
        "responded": row.responded,
        "mean_response_secs": (row.responded > 0).then(|| row.response_secs / row.responded),
        "won": row.won,
        "lost": row.lost,
        "invalid": row.invalid,
        "amount": row.amount,
        "conversion": (closed > 0)
            .then(|| (row.won as f64 / closed as f64 * 1000.0).round() / 1000.0),
        "feedback_count": row.feedback_count,
        "feedback": (row.feedback_count > 0)
            .then(|| (row.feedback_sum / row.feedback_count as f64 * 1000.0).round() / 1000.0),
    })
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct StatsQuery {
    /// `rep` (default), `source`, `rule` or `segment` (smb, mid_market, enterprise, unknown).
    pub by: Option<String>,
}

/// Outcomes, first-response times and feedback by rep, source, rule or segment: what
/// performance weighting reads. Response times are means with each response capped at a day;
/// feedback is mapped to 0–1.
#[utoipa::path(get, path = "/api/v1/stats", tag = "follow-up", params(StatsQuery),
    responses((status = 200, description = "`{by, items}`")), security(("api_key" = [])))]
pub async fn stats(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<StatsQuery>,
) -> ApiResult<Json<Value>> {
    caller.may(Operation::GetStats)?;
    let by = query.by.unwrap_or_else(|| "rep".into());
    if !["rep", "source", "rule", "segment"].contains(&by.as_str()) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_value",
            "by is rep, source, rule or segment",
        )
        .with_field("by"));
    }
    let rows = app.store.list_stats(&by).await?;
    Ok(Json(
        json!({"by": by, "items": rows.iter().map(stats_view).collect::<Vec<_>>()}),
    ))
}
