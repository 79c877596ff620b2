//! What happened lately, for the admin: a channel's deliveries (dead letters sent again), an
//! intake source's receipts with the reason of each refusal, and the audit log.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::admin::admin_viewer;
use super::{Frame, Viewer, render};
use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// A table of what happened lately, newest first.
#[derive(Debug, Default)]
pub(super) struct Recent {
    /// Title key.
    pub(super) title: &'static str,
    /// Column title keys.
    pub(super) columns: Vec<&'static str>,
    /// Cells, and the id of a dead-lettered delivery that may be retried.
    pub(super) rows: Vec<(Vec<String>, Option<String>)>,
}

/// How many recent deliveries or receipts a page shows.
pub(super) const RECENT: i64 = 50;

/// A channel's latest deliveries: when, event, status, attempts, next attempt, last error.
pub(super) async fn channel_deliveries(
    app: &AppState,
    viewer: &Viewer,
    channel: &str,
) -> ApiResult<Recent> {
    let rows = app
        .store
        .list_deliveries(&store::DeliveryFilter {
            status: None,
            channel_id: Some(channel.to_owned()),
            event_id: None,
            before_id: None,
            limit: RECENT,
        })
        .await?;
    Ok(Recent {
        title: "recent_deliveries",
        columns: vec![
            "created",
            "event",
            "status",
            "attempts",
            "next_attempt",
            "last_error",
        ],
        rows: rows
            .into_iter()
            .map(|row| {
                let retry = (row.status == "dead").then(|| row.id.clone());
                (
                    vec![
                        viewer.local(row.created_at),
                        viewer.t.t(&row.event).to_owned(),
                        viewer.t.t(&format!("delivery_{}", row.status)).to_owned(),
                        row.attempts.to_string(),
                        if row.status == "pending" {
                            viewer.local(row.next_attempt_at)
                        } else {
                            String::new()
                        },
                        row.last_error.unwrap_or_default(),
                    ],
                    retry,
                )
            })
            .collect(),
    })
}

/// A source's latest receipts: when, outcome, reason, delivery id, lead.
pub(super) async fn source_receipts(
    app: &AppState,
    viewer: &Viewer,
    source: &str,
) -> ApiResult<Recent> {
    let rows = app.store.intake_log(source, None, RECENT).await?;
    Ok(Recent {
        title: "recent_receipts",
        columns: vec!["received", "outcome", "reason", "delivery", "lead"],
        rows: rows
            .into_iter()
            .map(|row| {
                (
                    vec![
                        viewer.local(row.received_at),
                        viewer.t.t(&format!("intake_{}", row.outcome)).to_owned(),
                        row.reason.unwrap_or_default(),
                        row.delivery_id.unwrap_or_default(),
                        row.lead_id.unwrap_or_default(),
                    ],
                    None,
                )
            })
            .collect(),
    })
}

#[derive(Template)]
#[template(path = "audit.html")]
pub(super) struct AuditPage {
    pub(super) frame: Frame,
    /// `(when, who, what, on, change)`.
    pub(super) rows: Vec<(String, String, String, String, String)>,
    /// The cursor of the next, older page.
    pub(super) older: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    before: Option<String>,
}

/// The audit log, newest first, a hundred at a time.
pub async fn audit(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<AuditQuery>,
) -> Response {
    let viewer = match admin_viewer(&app, &headers).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    const PAGE: usize = 100;
    let mut rows = match app
        .store
        .list_audit(query.before.as_deref(), PAGE as i64 + 1)
        .await
    {
        Ok(rows) => rows,
        Err(error) => return ApiError::from(error).into_response(),
    };
    let older = crate::api::cut(&mut rows, PAGE as i64, |row| &row.id);
    let actors = super::actor_names(&app).await;
    render(AuditPage {
        frame: viewer.frame(viewer.t.t("audit"), "admin", String::new()),
        rows: rows
            .into_iter()
            .map(|row| {
                let on = match row.target_id {
                    Some(id) => format!("{} {id}", row.target_kind),
                    None => row.target_kind,
                };
                let detail = if row.detail == "{}" {
                    String::new()
                } else {
                    row.detail
                };
                (
                    viewer.local(row.at),
                    super::actor_name(&actors, &row.actor, &viewer.t),
                    row.action,
                    on,
                    detail,
                )
            })
            .collect(),
        older,
    })
}
