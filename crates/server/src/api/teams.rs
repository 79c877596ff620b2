//! Teams: list, create, get, patch (a JSON merge), delete.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::{Value, json};
use store::{AuditRow, Setting, TeamRow, Write};

use crate::AppState;
use crate::api::accounts::audit_row;
use crate::api::{
    IfMatch, Page, Versioned, check_id, document_view, etag, merge_patch, now_micros, page_by_id,
    rewrite, taken,
};
use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::extract::Body;
use crate::ops::Operation;
use crate::workspace::{TeamDocument, team_from_document};

fn view(row: &TeamRow) -> Value {
    document_view(
        &row.document,
        &row.id,
        row.created_at,
        row.updated_at,
        row.version,
    )
}

async fn save(
    app: &AppState,
    id: String,
    mut document: TeamDocument,
    created_at: i64,
    write: Write,
    audit: &AuditRow,
) -> ApiResult<Option<TeamRow>> {
    let rep_ids: Vec<String> = app
        .store
        .list_reps()
        .await?
        .into_iter()
        .map(|row| row.id)
        .collect();
    let mut team_ids: Vec<String> = app
        .store
        .list_teams()
        .await?
        .into_iter()
        .map(|row| row.id)
        .collect();
    team_ids.push(id.clone());
    let pools: Vec<String> = app
        .store
        .list_pools()
        .await?
        .into_iter()
        .map(|row| row.id)
        .collect();
    let team = team_from_document(&id, &document, &rep_ids, &team_ids, &pools)?;
    for (setting, value, field, code) in [
        (
            Setting::Calendars,
            &document.calendar,
            "calendar",
            "unknown_calendar",
        ),
        (
            Setting::SlaPolicies,
            &document.sla_policy,
            "sla_policy",
            "unknown_sla_policy",
        ),
    ] {
        if let Some(value) = value
            && app.store.get_setting(setting, value).await?.is_none()
        {
            return Err(ApiError::invalid(
                code,
                field,
                format!("no {field} has id {value:?}"),
            ));
        }
    }
    if let Some(policy) = &document.leave_policy
        && !["keep", "hand_back"].contains(&policy.as_str())
    {
        return Err(ApiError::invalid(
            "invalid_value",
            "leave_policy",
            "leave_policy is keep or hand_back",
        ));
    }
    if let Some(policy) = &document.batch_policy
        && !["arrival", "optimal"].contains(&policy.as_str())
    {
        return Err(ApiError::invalid(
            "invalid_value",
            "batch_policy",
            "batch_policy is arrival (one at a time) or optimal (as one optimised batch)",
        ));
    }
    document.id = Some(id.clone());
    let mut row = TeamRow {
        id,
        name: team.name.clone(),
        document: serde_json::to_string(&document).map_err(ApiError::internal)?,
        created_at,
        updated_at: now_micros(),
        version: 0,
    };
    let written = app.store.write_team(&mut row, write, audit).await?;
    Ok(written.then_some(row))
}

/// All teams, by id.
#[utoipa::path(get, path = "/api/v1/teams", tag = "teams", params(Page), responses((status = 200, description = "`{items, next_cursor}`")), security(("api_key" = [])))]
pub async fn list_teams(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(page): Query<Page>,
) -> ApiResult<Json<Value>> {
    caller.may(Operation::ListTeams)?;
    let (rows, next_cursor) = page_by_id(app.store.list_teams().await?, &page, |row| &row.id)?;
    Ok(Json(
        json!({"items": rows.iter().map(view).collect::<Vec<_>>(), "next_cursor": next_cursor}),
    ))
}

/// Create a team.
#[utoipa::path(post, path = "/api/v1/teams", tag = "teams", request_body = TeamDocument,
    responses((status = 201, description = "The team"), (status = 409, description = "The id is taken"), (status = 422, description = "Invalid value or unknown rep")),
    security(("api_key" = [])))]
pub async fn create_team(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Body(document): Body<TeamDocument>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.may(Operation::CreateTeam)?;
    let id = match &document.id {
        Some(id) => {
            check_id(id, "id")?;
            id.clone()
        }
        None => format!("team_{}", uuid::Uuid::now_v7().simple()),
    };
    let audit = audit_row(&caller, "team.created", "team", Some(&id), json!({}));
    let row = save(
        &app,
        id.clone(),
        document,
        now_micros(),
        Write::Create,
        &audit,
    )
    .await?
    .ok_or_else(|| taken("team", &id))?;
    app.router.sweep_soon();
    Ok((StatusCode::CREATED, Json(view(&row))))
}

/// One team.
#[utoipa::path(get, path = "/api/v1/teams/{id}", tag = "teams", params(("id" = String, Path)), responses((status = 200, description = "The team"), (status = 404, description = "No such team")), security(("api_key" = [])))]
pub async fn get_team(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Versioned> {
    caller.may(Operation::GetTeam)?;
    let row = app
        .store
        .get_team(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("team"))?;
    Ok((etag(row.version), Json(view(&row))))
}

/// Change some of a team's fields; `null` clears one.
#[utoipa::path(patch, path = "/api/v1/teams/{id}", tag = "teams", params(("id" = String, Path)), request_body(content = Object, description = "Fields of the team to replace"),
    responses((status = 200, description = "The team")), security(("api_key" = [])))]
pub async fn patch_team(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    if_match: IfMatch,
    Body(patch): Body<serde_json::Map<String, Value>>,
) -> ApiResult<Versioned> {
    caller.may(Operation::PatchTeam)?;
    if caller.role == Role::Manager && !caller.teams.contains(&id) {
        return Err(ApiError::not_found("team"));
    }
    let audit = audit_row(
        &caller,
        "team.changed",
        "team",
        Some(&id),
        Value::Object(patch.clone()),
    );
    let (app, caller, id, patch, audit) = (&app, &caller, &id, &patch, &audit);
    let row = rewrite(if_match, || async move {
        let row = app
            .store
            .get_team(id)
            .await?
            .ok_or_else(|| ApiError::not_found("team"))?;
        if_match.check(row.version)?;
        let document: TeamDocument = merge_patch(&row.document, patch.clone(), &["id"])?;
        if caller.role == Role::Manager {
            // A manager reaches the leads of their teams' reps: letting them add anyone would
            // let them reach any rep's leads. New members and the manager come from their teams.
            let reach = crate::api::access::members(app, &caller.teams).await?;
            let outside = document
                .members
                .iter()
                .map(|member| &member.rep_id)
                .chain(document.manager_id.iter())
                .find(|rep| !reach.contains(rep));
            if let Some(rep) = outside {
                return Err(crate::auth::forbidden(&format!(
                    "rep {rep:?} is not in your teams; an admin adds reps from elsewhere"
                )));
            }
        }
        let write = Write::Replace {
            version: row.version,
        };
        save(app, id.clone(), document, row.created_at, write, audit).await
    })
    .await?;
    app.router.sweep_soon();
    Ok((etag(row.version), Json(view(&row))))
}

/// Delete a team. Rule sets that name it stop compiling until changed, so the published one is
/// checked first.
#[utoipa::path(delete, path = "/api/v1/teams/{id}", tag = "teams", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 409, description = "The active rule set routes to it")), security(("api_key" = [])))]
pub async fn delete_team(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.may(Operation::DeleteTeam)?;
    app.store
        .get_team(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("team"))?;
    if let Some(active) = app.store.active_rule_set().await? {
        let spec = engine::RuleSetSpec::from_json(&active.document).map_err(ApiError::internal)?;
        let errors = crate::api::rule_sets::compile_with(&app, &spec, |rows| {
            rows.teams.retain(|team| team.id != id);
        })
        .await?;
        if errors.iter().any(|error| error.code == "unknown_team") {
            return Err(ApiError::conflict(
                "team_in_use",
                format!(
                    "the active rule set (version {}) routes to this team",
                    active.version
                ),
            ));
        }
    }
    let audit = audit_row(&caller, "team.deleted", "team", Some(&id), json!({}));
    app.store.delete_team(&id, &audit).await?;
    Ok(StatusCode::NO_CONTENT)
}
