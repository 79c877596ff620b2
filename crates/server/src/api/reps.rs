//! Reps: list, create, get, patch (a JSON merge), delete.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::{Value, json};
use store::{AuditRow, RepRow, Write};

use crate::AppState;
use crate::api::accounts::audit_row;
use crate::api::{
    IfMatch, Page, Versioned, access, check_id, document_view, etag, merge_patch, now_micros,
    page_by_id, rewrite, taken,
};
use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::extract::Body;
use crate::ops::Operation;
use crate::workspace::{RepDocument, catalogue_from_rows, rep_from_document};

fn view(row: &RepRow) -> Value {
    let mut view = document_view(
        &row.document,
        &row.id,
        row.created_at,
        row.updated_at,
        row.version,
    );
    view["status"] = json!(row.status);
    view
}

/// Checks and writes a rep under `write`; `None` when the write lost (the id was taken, or
/// another write came first).
async fn save(
    app: &AppState,
    id: String,
    mut document: RepDocument,
    created_at: i64,
    write: Write,
    audit: &AuditRow,
) -> ApiResult<Option<RepRow>> {
    let catalogue = catalogue_from_rows(&app.store.list_custom_fields().await?);
    let rep = rep_from_document(&id, &document, &catalogue)?;
    document.id = Some(id.clone());
    document.status = Some(rep.status.as_str().to_owned());
    let mut row = RepRow {
        id,
        name: rep.name.clone(),
        status: rep.status.as_str().to_owned(),
        document: serde_json::to_string(&document).map_err(ApiError::internal)?,
        created_at,
        updated_at: now_micros(),
        version: 0,
    };
    let written = app.store.write_rep(&mut row, write, audit).await?;
    Ok(written.then_some(row))
}

/// Changes a stored rep: reads it, applies `change` to its document, writes it back if nobody
/// wrote in between, and otherwise starts again from the newer version (or answers `412` when
/// the caller named the version it read). Each change so alters only what it names.
async fn change(
    app: &AppState,
    id: &str,
    if_match: IfMatch,
    audit: &AuditRow,
    change: impl Fn(&RepRow) -> ApiResult<RepDocument>,
) -> ApiResult<RepRow> {
    let change = &change;
    rewrite(if_match, || async move {
        let row = app
            .store
            .get_rep(id)
            .await?
            .ok_or_else(|| ApiError::not_found("rep"))?;
        if_match.check(row.version)?;
        let document = change(&row)?;
        let write = Write::Replace {
            version: row.version,
        };
        save(app, id.to_owned(), document, row.created_at, write, audit).await
    })
    .await
}

/// All reps, by id.
#[utoipa::path(get, path = "/api/v1/reps", tag = "reps", params(Page), responses((status = 200, description = "`{items, next_cursor}`")), security(("api_key" = [])))]
pub async fn list_reps(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(page): Query<Page>,
) -> ApiResult<Json<Value>> {
    caller.may(Operation::ListReps)?;
    let (rows, next_cursor) = page_by_id(app.store.list_reps().await?, &page, |row| &row.id)?;
    Ok(Json(
        json!({"items": rows.iter().map(view).collect::<Vec<_>>(), "next_cursor": next_cursor}),
    ))
}

/// Create a rep.
#[utoipa::path(post, path = "/api/v1/reps", tag = "reps", request_body = RepDocument,
    responses((status = 201, description = "The rep"), (status = 409, description = "The id is taken"), (status = 422, description = "Invalid value")),
    security(("api_key" = [])))]
pub async fn create_rep(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Body(document): Body<RepDocument>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.may(Operation::CreateRep)?;
    let id = match &document.id {
        Some(id) => {
            check_id(id, "id")?;
            id.clone()
        }
        None => format!("rep_{}", uuid::Uuid::now_v7().simple()),
    };
    let audit = audit_row(&caller, "rep.created", "rep", Some(&id), json!({}));
    let row = save(
        &app,
        id.clone(),
        document,
        now_micros(),
        Write::Create,
        &audit,
    )
    .await?
    .ok_or_else(|| taken("rep", &id))?;
    app.router.sweep_soon();
    Ok((StatusCode::CREATED, Json(view(&row))))
}

/// One rep.
#[utoipa::path(get, path = "/api/v1/reps/{id}", tag = "reps", params(("id" = String, Path)), responses((status = 200, description = "The rep"), (status = 404, description = "No such rep")), security(("api_key" = [])))]
pub async fn get_rep(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Versioned> {
    caller.may(Operation::GetRep)?;
    if caller.role == Role::Rep {
        access::rep_in_reach(&app, &caller, &id).await?;
    }
    let row = app
        .store
        .get_rep(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("rep"))?;
    Ok((etag(row.version), Json(view(&row))))
}

/// Change some of a rep's fields; `null` clears one.
#[utoipa::path(patch, path = "/api/v1/reps/{id}", tag = "reps", params(("id" = String, Path)), request_body(content = Object, description = "Fields of the rep to replace"),
    responses((status = 200, description = "The rep")), security(("api_key" = [])))]
pub async fn patch_rep(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    if_match: IfMatch,
    Body(patch): Body<serde_json::Map<String, Value>>,
) -> ApiResult<Versioned> {
    caller.may(Operation::PatchRep)?;
    access::rep_in_reach(&app, &caller, &id).await?;
    let described = Value::Object(patch.clone());
    let audit = audit_row(&caller, "rep.changed", "rep", Some(&id), described);
    let row = change(&app, &id, if_match, &audit, |row| {
        merge_patch(&row.document, patch.clone(), &["id"])
    })
    .await?;
    app.router.sweep_soon();
    Ok((etag(row.version), Json(view(&row))))
}

/// Delete a rep who holds no open leads; set `status: inactive` to retire one who does.
#[utoipa::path(delete, path = "/api/v1/reps/{id}", tag = "reps", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 409, description = "The rep holds open leads")), security(("api_key" = [])))]
pub async fn delete_rep(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.may(Operation::DeleteRep)?;
    let audit = audit_row(&caller, "rep.deleted", "rep", Some(&id), json!({}));
    // Under the routing lock: no lead can be routed to the rep between the count and the delete.
    let mut connection = app.store.routing_connection().await?;
    let mut tx = connection.begin().await?;
    match tx.delete_idle_rep(&id, &audit).await? {
        None => return Err(ApiError::not_found("rep")),
        Some(0) => tx.commit().await?,
        Some(open) => {
            return Err(ApiError::conflict(
                "rep_in_use",
                format!("the rep holds {open} open leads; reassign them or set status inactive"),
            ));
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, serde::Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusInput {
    /// `active`, `paused`, `on_leave` or `inactive`.
    pub status: String,
    /// With `on_leave`: the leave, added to the rep's leave periods.
    #[serde(default)]
    pub leave: Option<crate::workspace::LeaveDocument>,
}

/// Set a rep's availability. A rep becoming available releases held leads they can take; a rep
/// going on leave hands back untouched leads when a team of theirs says so (`leave_policy`).
#[utoipa::path(put, path = "/api/v1/reps/{id}/status", tag = "reps", params(("id" = String, Path)), request_body = StatusInput,
    responses((status = 200, description = "The rep"), (status = 422, description = "Unknown status or bad dates")), security(("api_key" = [])))]
pub async fn set_status(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    if_match: IfMatch,
    Body(input): Body<StatusInput>,
) -> ApiResult<Versioned> {
    caller.may(Operation::SetRepStatus)?;
    access::rep_in_reach(&app, &caller, &id).await?;
    let described = serde_json::to_value(&input).unwrap_or(Value::Null);
    let on_leave = input.status == "on_leave";
    let audit = audit_row(&caller, "rep.status_changed", "rep", Some(&id), described);
    let row = change(&app, &id, if_match, &audit, |row| {
        let mut document: RepDocument =
            serde_json::from_str(&row.document).map_err(ApiError::internal)?;
        // Leave with dates is a period: the rep stays active and the period itself keeps them
        // out (explained as "on leave until …") and ends on its last day. Without dates,
        // `on_leave` holds until someone changes it.
        document.status = Some(match (&input.leave, input.status.as_str()) {
            (Some(_), "on_leave") => "active".to_owned(),
            _ => input.status.clone(),
        });
        if let Some(leave) = &input.leave {
            document.leaves.push(leave.clone());
        }
        Ok(document)
    })
    .await?;
    if on_leave {
        // Under a team's `hand_back` policy, untouched leads go to someone else now.
        app.router.hand_back(&id).await?;
    }
    app.router.sweep_soon();
    Ok((etag(row.version), Json(view(&row))))
}

/// Marks a rep inactive (their user was deactivated): they stop receiving leads.
pub async fn deactivate(app: &AppState, caller: &Caller, id: &str) -> ApiResult<()> {
    if app.store.get_rep(id).await?.is_none() {
        return Ok(());
    }
    let detail = json!({"status": "inactive", "because": "user deactivated"});
    let audit = audit_row(caller, "rep.status_changed", "rep", Some(id), detail);
    change(app, id, IfMatch(None), &audit, |row| {
        let mut document: RepDocument =
            serde_json::from_str(&row.document).map_err(ApiError::internal)?;
        document.status = Some("inactive".into());
        Ok(document)
    })
    .await?;
    Ok(())
}
