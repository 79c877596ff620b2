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
    let targets = target_names(&app).await;
    let t = viewer.t;
    render(AuditPage {
        frame: viewer.frame(t.t("audit"), "admin", String::new()),
        rows: rows
            .into_iter()
            .map(|row| {
                let on = match &row.target_id {
                    Some(id) => format!(
                        "{} {}",
                        kind_word(&t, &row.target_kind),
                        target_name(&targets, &row.target_kind, id)
                    ),
                    None => kind_word(&t, &row.target_kind),
                };
                (
                    viewer.local(row.at),
                    super::actor_name(&actors, &row.actor, &t),
                    action_words(&t, &row.action),
                    on,
                    detail_words(&t, &row.detail),
                )
            })
            .collect(),
        older,
    })
}

/// A kind of object in words (`rule_set` → 分配规则); an unknown kind as it is.
fn kind_word(t: &super::i18n::Tr, kind: &str) -> String {
    match t.t(&format!("kind_{kind}")) {
        "?" => kind.to_owned(),
        word => word.to_owned(),
    }
}

/// An audit action (`rule_set.rolled_back`) in words: 分配规则 · 回滚.
fn action_words(t: &super::i18n::Tr, action: &str) -> String {
    let (kind, verb) = action.rsplit_once('.').unwrap_or(("", action));
    let verb = match t.t(&format!("verb_{verb}")) {
        "?" => verb.to_owned(),
        word => word.to_owned(),
    };
    if kind.is_empty() {
        verb
    } else {
        format!("{} · {verb}", kind_word(t, kind))
    }
}

/// Names of the objects audit lines point at: `(kind, id)` → name.
async fn target_names(app: &AppState) -> std::collections::HashMap<(String, String), String> {
    let mut names = std::collections::HashMap::new();
    for rep in app.store.list_reps().await.unwrap_or_default() {
        names.insert(("rep".to_owned(), rep.id), rep.name);
    }
    for team in app.store.list_teams().await.unwrap_or_default() {
        names.insert(("team".to_owned(), team.id), team.name);
    }
    for user in app.store.list_users().await.unwrap_or_default() {
        let name = if user.display_name.is_empty() {
            user.username
        } else {
            user.display_name
        };
        names.insert(("user".to_owned(), user.id), name);
    }
    for key in app.store.list_api_keys().await.unwrap_or_default() {
        names.insert(("key".to_owned(), key.id), key.name);
    }
    for setting in store::Setting::ALL {
        for row in app.store.list_settings(setting).await.unwrap_or_default() {
            names.insert((setting.name().to_owned(), row.id), row.name);
        }
    }
    names
}

fn target_name(
    names: &std::collections::HashMap<(String, String), String>,
    kind: &str,
    id: &str,
) -> String {
    match (names.get(&(kind.to_owned(), id.to_owned())), kind) {
        (Some(name), _) => name.clone(),
        (None, "rule_set" | "model") => format!("v{id}"),
        _ => id.to_owned(),
    }
}

/// An audit line's detail (a JSON object) as `name: value` pairs with field names in words;
/// versions as `v3`.
fn detail_words(t: &super::i18n::Tr, detail: &str) -> String {
    let Ok(serde_json::Value::Object(fields)) = serde_json::from_str::<serde_json::Value>(detail)
    else {
        return String::new();
    };
    fields
        .iter()
        .filter(|(_, value)| !value.is_null())
        .map(|(name, value)| {
            let value = match value {
                // A changed part of a document: which of its fields, by name.
                serde_json::Value::Object(inner) => inner
                    .keys()
                    .map(|key| t.label(key).to_owned())
                    .collect::<Vec<_>>()
                    .join("、"),
                serde_json::Value::String(text) => t.state(text).to_owned(),
                serde_json::Value::Number(number)
                    if ["version", "previous"].contains(&name.as_str()) =>
                {
                    format!("v{number}")
                }
                serde_json::Value::Array(items) => items
                    .iter()
                    .map(|item| match item {
                        serde_json::Value::String(text) => t.label(text).to_owned(),
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join("、"),
                other => other.to_string(),
            };
            let name = match t.t(&format!("detail_{name}")) {
                "?" => t.label(name).to_owned(),
                word => word.to_owned(),
            };
            format!("{name}: {value}")
        })
        .collect::<Vec<_>>()
        .join(" · ")
}
