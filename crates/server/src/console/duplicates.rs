//! 查重 in the console: the workspace's duplicate policy (a form for admins) and the pairs
//! flagged for review, side by side, each with "merge" (fields chosen per side) and "not the
//! same customer". Every action goes through the API's handler with the viewer's caller.

use std::collections::HashMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::Value;

use super::{Frame, Tr, back, notice_text, posted, render, rep_names, viewer};
use crate::AppState;
use crate::customer::{DuplicatePolicyDocument, KeyKind, OnMatch};
use crate::error::ApiError;
use crate::extract::Body;
use crate::ops::Operation;

/// The lead fields shown side by side and offered for a merge.
const FIELDS: [&str; 9] = [
    "name", "phone", "email", "wechat", "company", "title", "source", "campaign", "product",
];

struct Side {
    id: String,
    owner: String,
    status: String,
    created: String,
}

struct FieldRow {
    name: String,
    label: String,
    kept: String,
    other: String,
    differs: bool,
}

struct PairRow {
    id: String,
    key: String,
    created: String,
    /// The earlier lead, which a merge keeps.
    keep: Side,
    /// The later arrival, merged into it.
    merge: Side,
    fields: Vec<FieldRow>,
}

struct PolicyShown {
    keys: Vec<(String, String, bool)>,
    on_match: Vec<(String, String, bool)>,
    window: String,
    restart_sla: bool,
    protect_holders: bool,
    summary: String,
}

#[derive(Template)]
#[template(path = "duplicates.html")]
struct DuplicatesPage {
    frame: Frame,
    can_set: bool,
    can_merge: bool,
    policy: PolicyShown,
    pairs: Vec<PairRow>,
}

#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    notice: Option<String>,
}

fn on_match_word(on_match: OnMatch) -> &'static str {
    match on_match {
        OnMatch::Attach => "dup_attach",
        OnMatch::RouteToOwner => "dup_route_to_owner",
        OnMatch::Flag => "dup_flag",
    }
}

fn policy_shown(t: &Tr, view: &Value) -> PolicyShown {
    let zh = t.is_zh();
    // The view adds `enabled`, `version` and who saved it to the document's own fields.
    let mut document = view.clone();
    if let Some(object) = document.as_object_mut() {
        for extra in ["enabled", "version", "updated_at", "updated_by"] {
            object.remove(extra);
        }
    }
    let document: DuplicatePolicyDocument = serde_json::from_value(document).unwrap_or_default();
    let keys = [
        KeyKind::Phone,
        KeyKind::Email,
        KeyKind::Wechat,
        KeyKind::Company,
        KeyKind::CompanyName,
    ]
    .into_iter()
    .map(|kind| {
        (
            kind.as_str().to_owned(),
            kind.label(zh).to_owned(),
            document.keys.contains(&kind),
        )
    })
    .collect();
    let on_match = [OnMatch::Attach, OnMatch::RouteToOwner, OnMatch::Flag]
        .into_iter()
        .map(|choice| {
            (
                serde_json::to_value(choice)
                    .ok()
                    .and_then(|value| value.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                t.t(on_match_word(choice)).to_owned(),
                choice == document.on_match,
            )
        })
        .collect();
    let summary = if document.keys.is_empty() {
        t.t("dup_off").to_owned()
    } else {
        let keys: Vec<&str> = document.keys.iter().map(|kind| kind.label(zh)).collect();
        format!(
            "{} → {}",
            keys.join(if zh { "、" } else { ", " }),
            t.t(on_match_word(document.on_match))
        )
    };
    PolicyShown {
        keys,
        on_match,
        window: document.window.clone().unwrap_or_else(|| "90d".into()),
        restart_sla: document.restart_sla,
        protect_holders: document.protect_holders,
        summary,
    }
}

fn side(lead: &Value, names: &HashMap<String, String>, t: &Tr) -> Side {
    let owner = lead["owner_id"]
        .as_str()
        .map(|id| names.get(id).cloned().unwrap_or_else(|| id.to_owned()))
        .or_else(|| lead["pool_id"].as_str().map(|_| t.t("pool").to_owned()))
        .unwrap_or_else(|| "—".into());
    let status = lead["status"].as_str().unwrap_or_default();
    Side {
        id: lead["id"].as_str().unwrap_or_default().to_owned(),
        owner,
        status: t.t(&format!("status_{status}")).to_owned(),
        created: lead["created_at"]
            .as_str()
            .and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok())
            .map(|at| at.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default(),
    }
}

fn text(lead: &Value, field: &str) -> String {
    match &lead[field] {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The policy and the open pairs.
pub async fn page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<PageQuery>,
) -> Response {
    let viewer = match viewer(&app, &headers).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    if let Err(error) = viewer.caller.may(Operation::ListDuplicates) {
        return error.into_response();
    }
    let t = viewer.t;
    let policy = match crate::api::duplicates::get_duplicate_policy(
        State(app.clone()),
        Extension(viewer.caller.clone()),
    )
    .await
    {
        Ok(Json(view)) => view,
        Err(error) => return error.into_response(),
    };
    let listing = match crate::api::duplicates::list_duplicates(
        State(app.clone()),
        Extension(viewer.caller.clone()),
        Query(crate::api::duplicates::PairQuery {
            limit: Some(100),
            ..Default::default()
        }),
    )
    .await
    {
        Ok(Json(listing)) => listing,
        Err(error) => return error.into_response(),
    };
    let names = match rep_names(&app).await {
        Ok(names) => names,
        Err(error) => return error.into_response(),
    };
    let zh = t.is_zh();
    let pairs = listing["items"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|pair| {
            let (keep, merge) = (&pair["other"], &pair["lead"]);
            PairRow {
                id: pair["id"].as_str().unwrap_or_default().to_owned(),
                key: pair["key"]
                    .as_str()
                    .and_then(KeyKind::parse)
                    .map_or_else(String::new, |kind| kind.label(zh).to_owned()),
                created: side(merge, &names, &t).created,
                keep: side(keep, &names, &t),
                merge: side(merge, &names, &t),
                fields: FIELDS
                    .iter()
                    .map(|field| {
                        let (kept, other) = (text(keep, field), text(merge, field));
                        FieldRow {
                            name: (*field).to_owned(),
                            label: t.t(&format!("field_{field}")).to_owned(),
                            differs: kept != other && !other.is_empty(),
                            kept,
                            other,
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    render(DuplicatesPage {
        frame: viewer.frame(
            t.t("dup_title"),
            "duplicates",
            notice_text(&t, query.notice.as_deref()),
        ),
        can_set: viewer.caller.may(Operation::SetDuplicatePolicy).is_ok(),
        can_merge: viewer.caller.may(Operation::MergeLeads).is_ok(),
        policy: policy_shown(&t, &policy),
        pairs,
    })
}

/// The policy form, as `PUT /api/v1/settings/duplicates`.
pub async fn set_policy(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (viewer, fields) = match posted(viewer(&app, &headers).await, &body) {
        Ok(posted) => posted,
        Err(response) => return *response,
    };
    let on_match = serde_json::from_value::<OnMatch>(Value::String(
        fields.get("on_match").cloned().unwrap_or_default(),
    ));
    let outcome = match on_match {
        Ok(on_match) => {
            let document = DuplicatePolicyDocument {
                keys: KeyKind::ALL
                    .into_iter()
                    .filter(|kind| fields.contains_key(&format!("key_{}", kind.as_str())))
                    .collect(),
                on_match,
                window: fields
                    .get("window")
                    .map(|window| window.trim().to_owned())
                    .filter(|window| !window.is_empty()),
                restart_sla: fields.contains_key("restart_sla"),
                protect_holders: fields.contains_key("protect_holders"),
            };
            crate::api::duplicates::set_duplicate_policy(
                State(app.clone()),
                Extension(viewer.caller),
                Body(document),
            )
            .await
            .map(drop)
        }
        Err(_) => Err(ApiError::invalid(
            "invalid_value",
            "on_match",
            "attach, route_to_owner or flag",
        )),
    };
    back("/duplicates", outcome)
}

/// "Merge": the later lead into the earlier, taking the fields ticked, as
/// `POST /api/v1/leads/{id}/merge`.
pub async fn merge(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(pair_id): Path<String>,
    body: Bytes,
) -> Response {
    let (viewer, fields) = match posted(viewer(&app, &headers).await, &body) {
        Ok(posted) => posted,
        Err(response) => return *response,
    };
    let outcome = async {
        let pair = app
            .store
            .get_duplicate_pair(&pair_id)
            .await?
            .ok_or_else(|| ApiError::not_found("duplicate pair"))?;
        let taken: Vec<String> = FIELDS
            .iter()
            .filter(|field| fields.contains_key(&format!("take_{field}")))
            .map(|field| (*field).to_owned())
            .collect();
        crate::api::duplicates::merge_leads(
            State(app.clone()),
            Extension(viewer.caller),
            Path(pair.other_id.clone()),
            Body(crate::api::duplicates::MergeInput {
                other_id: pair.lead_id.clone(),
                fields: taken,
                pair_id: Some(pair_id.clone()),
            }),
        )
        .await
        .map(drop)
    }
    .await;
    back("/duplicates", outcome)
}

/// "Not the same customer", as `POST /api/v1/duplicates/{id}/dismiss`.
pub async fn dismiss(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(pair_id): Path<String>,
    body: Bytes,
) -> Response {
    let (viewer, _) = match posted(viewer(&app, &headers).await, &body) {
        Ok(posted) => posted,
        Err(response) => return *response,
    };
    let outcome = crate::api::duplicates::dismiss_duplicate(
        State(app.clone()),
        Extension(viewer.caller),
        Path(pair_id),
    )
    .await
    .map(drop);
    back("/duplicates", outcome)
}
