//! Rule sets: drafts are compiled when saved, publishing makes one active, published versions
//! never change.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use engine::{CompileError, Known, RuleSetSpec};
use serde_json::{Value, json};
use store::RuleSetRow;

use crate::AppState;
use crate::api::accounts::audit_row;
use crate::api::now_micros;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, parse};
use crate::leads::time;
use crate::ops::Operation;
use crate::workspace::{ConfigRows, Workspace, build_workspace};

/// The stored configuration, with `change` made to it, as rule sets compile against it.
async fn workspace(app: &AppState, change: impl FnOnce(&mut ConfigRows)) -> ApiResult<Workspace> {
    let mut rows = ConfigRows::load(&app.store).await?;
    change(&mut rows);
    rows.active = None;
    Ok(build_workspace(&rows))
}

/// Rules one rule set may hold.
pub const MAX_RULES: usize = 1_000;

/// Compiles at once at most: compiling a large document takes a core for a while, so it runs
/// off the async threads, and only this many at a time, so health checks and intake go on.
static COMPILING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// The document's errors against the workspace, compiled on a blocking thread.
async fn compile(workspace: Workspace, spec: &RuleSetSpec) -> ApiResult<Vec<CompileError>> {
    if spec.rules.len() > MAX_RULES {
        return Err(ApiError::invalid(
            "too_many_rules",
            "rules",
            format!("a rule set has at most {MAX_RULES} rules"),
        ));
    }
    let _permit = COMPILING.acquire().await.map_err(ApiError::internal)?;
    let spec = spec.clone();
    tokio::task::spawn_blocking(move || {
        let known = Known {
            catalogue: &workspace.catalogue,
            roster: &workspace.roster,
            pools: &workspace.pools,
            sla_policies: &workspace.sla_policy_ids,
        };
        engine::compile(&spec, known, 0).err().unwrap_or_default()
    })
    .await
    .map_err(ApiError::internal)
}

/// The errors a document would have were the configuration changed (a team or a custom field
/// gone): what deleting something would break.
pub async fn compile_with(
    app: &AppState,
    spec: &RuleSetSpec,
    change: impl FnOnce(&mut ConfigRows),
) -> ApiResult<Vec<CompileError>> {
    compile(workspace(app, change).await?, spec).await
}

fn errors_json(errors: &[CompileError]) -> Value {
    json!(errors
        .iter()
        .map(|error| json!({"code": error.code, "rule": error.rule, "field": error.path, "message": error.message}))
        .collect::<Vec<_>>())
}

/// A 422 naming the first problem, with all of them in `details`.
fn invalid(errors: &[CompileError]) -> axum::response::Response {
    let first = &errors[0];
    let body = json!({"error": {
        "code": "invalid_rule_set",
        "message": format!("{} problem(s); the first: {first}", errors.len()),
        "field": first.path,
        "details": errors_json(errors),
    }});
    (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
}

use axum::response::IntoResponse;

fn view(row: &RuleSetRow, with_document: bool) -> Value {
    let mut view = json!({
        "id": row.version,
        "version": row.version,
        "name": row.name,
        "status": row.status,
        "active": row.status == "published",
        "created_at": time(row.created_at),
        "published_at": row.published_at.map(time),
        "created_by": row.created_by,
    });
    if with_document {
        view["document"] = serde_json::from_str(&row.document).unwrap_or(Value::Null);
    }
    view
}

/// All versions, newest first, the active one marked.
#[utoipa::path(get, path = "/api/v1/rule-sets", tag = "rules", responses((status = 200, description = "`{items, next_cursor}`")), security(("api_key" = [])))]
pub async fn list_rule_sets(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Value>> {
    caller.may(Operation::ListRuleSets)?;
    let rows = app.store.list_rule_sets().await?;
    Ok(Json(
        json!({"items": rows.iter().map(|row| view(row, false)).collect::<Vec<_>>(), "next_cursor": null}),
    ))
}

/// Save a draft from a rule-set document (see docs/rules.md); it is compiled first.
#[utoipa::path(post, path = "/api/v1/rule-sets", tag = "rules", request_body(content = Object, description = "A rule-set document"),
    responses((status = 201, description = "The draft"), (status = 422, description = "`invalid_rule_set`, every error in `details` with rule and path")),
    security(("api_key" = [])))]
pub async fn create_rule_set(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Body(document): Body<Value>,
) -> ApiResult<axum::response::Response> {
    caller.may(Operation::CreateRuleSet)?;
    let bytes = serde_json::to_vec(&document).map_err(ApiError::internal)?;
    let spec: RuleSetSpec = parse(&bytes)?;
    let errors = compile(workspace(&app, |_| {}).await?, &spec).await?;
    if !errors.is_empty() {
        return Ok(invalid(&errors));
    }
    let text = serde_json::to_string(&spec).map_err(ApiError::internal)?;
    let version = app
        .store
        .insert_rule_set(
            spec.name.as_deref(),
            &text,
            now_micros(),
            Some(&caller.actor()),
        )
        .await?;
    let row = app
        .store
        .get_rule_set(version)
        .await?
        .ok_or_else(|| ApiError::internal("draft vanished"))?;
    Ok((StatusCode::CREATED, Json(view(&row, true))).into_response())
}

/// Check a document without saving it.
#[utoipa::path(post, path = "/api/v1/rule-sets/validate", tag = "rules", request_body(content = Object, description = "A rule-set document"),
    responses((status = 200, description = "`{valid, errors: [{code, rule, field, message}]}`")), security(("api_key" = [])))]
pub async fn validate_rule_set(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Body(document): Body<Value>,
) -> ApiResult<Json<Value>> {
    caller.may(Operation::ValidateRuleSet)?;
    let bytes = serde_json::to_vec(&document).map_err(ApiError::internal)?;
    let spec: RuleSetSpec = parse(&bytes)?;
    let errors = compile(workspace(&app, |_| {}).await?, &spec).await?;
    Ok(Json(
        json!({"valid": errors.is_empty(), "errors": errors_json(&errors)}),
    ))
}

/// One version with its document.
#[utoipa::path(get, path = "/api/v1/rule-sets/{id}", tag = "rules", params(("id" = i64, Path)), responses((status = 200, description = "The version"), (status = 404, description = "No such version")), security(("api_key" = [])))]
pub async fn get_rule_set(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(version): Path<i64>,
) -> ApiResult<Json<Value>> {
    caller.may(Operation::GetRuleSet)?;
    let row = app
        .store
        .get_rule_set(version)
        .await?
        .ok_or_else(|| ApiError::not_found("rule set"))?;
    Ok(Json(view(&row, true)))
}

/// Make a version the active one. It is compiled again against today's reps and teams.
#[utoipa::path(post, path = "/api/v1/rule-sets/{id}/publish", tag = "rules", params(("id" = i64, Path)),
    responses((status = 200, description = "The now active version"), (status = 422, description = "It no longer compiles")), security(("api_key" = [])))]
pub async fn publish_rule_set(
    State(app): State<AppState>,
    Extension(caller): Extension<crate::auth::Caller>,
    Path(version): Path<i64>,
) -> ApiResult<axum::response::Response> {
    caller.may(Operation::PublishRuleSet)?;
    let row = app
        .store
        .get_rule_set(version)
        .await?
        .ok_or_else(|| ApiError::not_found("rule set"))?;
    if row.status == "published" {
        return Ok(Json(view(&row, true)).into_response());
    }
    let spec = RuleSetSpec::from_json(&row.document).map_err(ApiError::internal)?;
    let errors = compile(workspace(&app, |_| {}).await?, &spec).await?;
    if !errors.is_empty() {
        return Ok(invalid(&errors));
    }
    app.store
        .publish_rule_set(version, now_micros(), |previous| {
            // Publishing an earlier version is how a rule set is rolled back.
            let action = if previous.is_some_and(|previous| previous > version) {
                "rule_set.rolled_back"
            } else {
                "rule_set.published"
            };
            let detail = serde_json::json!({"previous": previous, "version": version});
            Some(audit_row(
                &caller,
                action,
                "rule_set",
                Some(&version.to_string()),
                detail,
            ))
        })
        .await?;
    app.router.sweep_soon();
    let row = app
        .store
        .get_rule_set(version)
        .await?
        .ok_or_else(|| ApiError::internal("version vanished"))?;
    Ok(Json(view(&row, true)).into_response())
}
