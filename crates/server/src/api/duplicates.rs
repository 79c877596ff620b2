//! Duplicates (查重): the workspace's policy, the pairs flagged for review, merging two leads of
//! one customer and dismissing a pair.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use store::WorkspaceSettingRow;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::api::accounts::audit_row;
use crate::api::{access, cut, now_micros};
use crate::auth::Caller;
use crate::customer::{DuplicatePolicyDocument, POLICY_SETTING};
use crate::error::{ApiError, ApiResult};
use crate::extract::Body;
use crate::leads::time;
use crate::ops::Operation;
use crate::routing::LeadOp;

fn policy_view(row: Option<&WorkspaceSettingRow>) -> Value {
    let document: DuplicatePolicyDocument = row
        .and_then(|row| serde_json::from_str(&row.document).ok())
        .unwrap_or_default();
    let policy = document.to_policy().unwrap_or_default();
    let mut view = json!(document);
    view["enabled"] = json!(policy.enabled());
    view["window"] = json!(document.window.unwrap_or_else(|| "90d".into()));
    view["version"] = json!(row.map_or(0, |row| row.version));
    view["updated_at"] = json!(row.map(|row| time(row.updated_at)));
    view["updated_by"] = json!(row.and_then(|row| row.updated_by.clone()));
    view
}

/// The duplicate policy (查重): which keys recognise a customer and what a match does. Off
/// (no keys) until an admin sets it.
#[utoipa::path(get, path = "/api/v1/settings/duplicates", tag = "duplicates",
    responses((status = 200, description = "The policy with `enabled` and `version`")), security(("api_key" = [])))]
pub async fn get_duplicate_policy(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Value>> {
    caller.may(Operation::GetDuplicatePolicy)?;
    let row = app.store.workspace_setting(POLICY_SETTING).await?;
    Ok(Json(policy_view(row.as_ref())))
}

/// Set the duplicate policy. Takes effect for the next arrival on every instance. Audited.
#[utoipa::path(put, path = "/api/v1/settings/duplicates", tag = "duplicates", request_body = DuplicatePolicyDocument,
    responses((status = 200, description = "The policy"), (status = 422, description = "`invalid_value` with the field"),
              (status = 409, description = "Changed by someone else meanwhile")),
    security(("api_key" = [])))]
pub async fn set_duplicate_policy(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Body(document): Body<DuplicatePolicyDocument>,
) -> ApiResult<Json<Value>> {
    caller.may(Operation::SetDuplicatePolicy)?;
    document.to_policy()?;
    let stored = app.store.workspace_setting(POLICY_SETTING).await?;
    let row = WorkspaceSettingRow {
        name: POLICY_SETTING.into(),
        document: serde_json::to_string(&document).map_err(ApiError::internal)?,
        version: 0,
        updated_by: Some(caller.actor()),
        updated_at: now_micros(),
    };
    let audit = audit_row(
        &caller,
        "settings.duplicates_set",
        "setting",
        Some(POLICY_SETTING),
        json!(document),
    );
    let expected = stored.as_ref().map_or(0, |row| row.version);
    let Some(version) = app
        .store
        .write_workspace_setting(&row, expected, &audit)
        .await?
    else {
        return Err(ApiError::conflict(
            "version_conflict",
            "the policy changed meanwhile; read it again",
        ));
    };
    Ok(Json(policy_view(Some(&WorkspaceSettingRow {
        version,
        ..row
    }))))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PairQuery {
    /// `open` (default), `merged` or `dismissed`.
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// A flagged pair with both leads as the caller may see them.
#[derive(Debug, Serialize)]
pub struct PairView {
    pub id: String,
    pub key: String,
    pub status: String,
    pub created_at: String,
    pub resolved_at: Option<String>,
    pub resolved_by: Option<String>,
    /// The later arrival.
    pub lead: Value,
    /// The lead it matched.
    pub other: Value,
}

/// Pairs flagged as possible duplicates (policy `flag`), oldest first; only pairs whose two
/// leads the caller may both see.
#[utoipa::path(get, path = "/api/v1/duplicates", tag = "duplicates", params(PairQuery),
    responses((status = 200, description = "`{items, next_cursor}`")), security(("api_key" = [])))]
pub async fn list_duplicates(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<PairQuery>,
) -> ApiResult<Json<Value>> {
    caller.may(Operation::ListDuplicates)?;
    let status = query.status.as_deref().unwrap_or("open");
    if !matches!(status, "open" | "merged" | "dismissed") {
        return Err(ApiError::invalid(
            "invalid_value",
            "status",
            "status is open, merged or dismissed",
        ));
    }
    let limit = crate::api::Page {
        limit: query.limit,
        cursor: None,
    }
    .limit()?;
    let mut rows = app
        .store
        .list_duplicate_pairs(status, query.cursor.as_deref(), limit + 1)
        .await?;
    let next_cursor = cut(&mut rows, limit, |row| &row.id);
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        let (Ok(lead), Ok(other)) = (
            access::lead(&app, &caller, &row.lead_id).await,
            access::lead(&app, &caller, &row.other_id).await,
        ) else {
            continue;
        };
        items.push(PairView {
            id: row.id,
            key: row.key_kind,
            status: row.status,
            created_at: time(row.created_at),
            resolved_at: row.resolved_at.map(time),
            resolved_by: row.resolved_by,
            lead: json!(access::view(&caller, &lead)),
            other: json!(access::view(&caller, &other)),
        });
    }
    Ok(Json(json!({"items": items, "next_cursor": next_cursor})))
}

/// Dismiss a flagged pair: the two leads are different customers after all. Audited.
#[utoipa::path(post, path = "/api/v1/duplicates/{id}/dismiss", tag = "duplicates", params(("id" = String, Path)),
    responses((status = 200, description = "`{id, status}`"), (status = 409, description = "`pair_resolved`")),
    security(("api_key" = [])))]
pub async fn dismiss_duplicate(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.may(Operation::DismissDuplicate)?;
    let pair = app
        .store
        .get_duplicate_pair(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("duplicate pair"))?;
    access::lead(&app, &caller, &pair.lead_id).await?;
    access::lead(&app, &caller, &pair.other_id).await?;
    let audit = audit_row(
        &caller,
        "duplicate.dismissed",
        "duplicate_pair",
        Some(&id),
        json!({"lead": pair.lead_id, "other": pair.other_id}),
    );
    if !app
        .store
        .dismiss_duplicate_pair(&id, &caller.actor(), now_micros(), &audit)
        .await?
    {
        return Err(ApiError::conflict(
            "pair_resolved",
            format!("the pair was {} already", pair.status),
        ));
    }
    Ok(Json(json!({"id": id, "status": "dismissed"})))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeInput {
    /// The lead merged into this one; it is closed and points here.
    pub other_id: String,
    /// Lead fields to take from the other lead (`email`, `company`…); the rest stay this
    /// lead's.
    #[serde(default)]
    pub fields: Vec<String>,
    /// The flagged pair this merge resolves.
    #[serde(default)]
    pub pair_id: Option<String>,
}

/// Merge another lead of the same customer into this one: fields chosen per side, the other
/// closed (`invalid`, `merged_into`), its activities and feedback moved here, decisions kept,
/// audited. Managers and admins, over leads they can both see.
#[utoipa::path(post, path = "/api/v1/leads/{id}/merge", tag = "duplicates", params(("id" = String, Path)), request_body = MergeInput,
    responses((status = 200, description = "`{lead, decision}`"), (status = 409, description = "`lead_closed`, `already_merged`")),
    security(("api_key" = [])))]
pub async fn merge_leads(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Body(input): Body<MergeInput>,
) -> ApiResult<Json<Value>> {
    caller.may(Operation::MergeLeads)?;
    if input.fields.len() > crate::leads::INPUT_FIELDS.len() {
        return Err(ApiError::invalid(
            "invalid_value",
            "fields",
            "too many fields",
        ));
    }
    access::lead(&app, &caller, &id).await?;
    access::lead(&app, &caller, &input.other_id)
        .await
        .map_err(|error| error.with_field("other_id"))?;
    let changed = app
        .router
        .change(
            &id,
            LeadOp::Merge {
                other_id: input.other_id,
                fields: input.fields,
                pair_id: input.pair_id,
            },
            &caller.actor(),
        )
        .await?;
    Ok(Json(access::changed(&caller, &changed)))
}
