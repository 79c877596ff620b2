//! The field catalogue: the built-in lead and rep fields, and the custom ones a workspace
//! declares (`attributes.<name>` on leads, `rep.attributes.<name>` on reps) so intake accepts
//! them and rules can test them.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use engine::field::{LEAD_FIELDS, REP_FIELDS, valid_custom_name};
use engine::value::FieldType;
use serde::Deserialize;
use serde_json::{Value, json};
use store::CustomFieldRow;
use utoipa::ToSchema;

use crate::AppState;
use crate::api::accounts::audit;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::Body;
use crate::ops::Operation;

/// A custom field to declare.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewField {
    /// `lead` or `rep`.
    pub entity: String,
    /// 1 to 64 letters, digits or underscores; used as `attributes.<name>`.
    pub name: String,
    /// `text`, `number`, `bool`, `time` or `list`.
    #[serde(rename = "type")]
    pub field_type: String,
}

fn custom_view(row: &CustomFieldRow) -> Value {
    let path = match row.entity.as_str() {
        "rep" => format!("rep.attributes.{}", row.name),
        _ => format!("attributes.{}", row.name),
    };
    json!({"entity": row.entity, "name": row.name, "type": row.field_type, "path": path, "custom": true})
}

/// Every field rules can test: built-in first, then the custom ones, each with the path a
/// condition names it by.
#[utoipa::path(get, path = "/api/v1/fields", tag = "fields",
    responses((status = 200, description = "`{items}`: entity, name, type, path, custom")), security(("api_key" = [])))]
pub async fn list_fields(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Value>> {
    caller.may(Operation::ListFields)?;
    let builtin = LEAD_FIELDS
        .iter()
        .map(|(name, _, kind)| ("lead", (*name).to_owned(), *kind, (*name).to_owned()))
        .chain(
            REP_FIELDS
                .iter()
                .map(|(name, _, kind)| ("rep", (*name).to_owned(), *kind, format!("rep.{name}"))),
        )
        .map(|(entity, name, kind, path)| {
            json!({"entity": entity, "name": name, "type": kind.name(), "path": path, "custom": false})
        });
    let custom = app.store.list_custom_fields().await?;
    let items: Vec<Value> = builtin.chain(custom.iter().map(custom_view)).collect();
    Ok(Json(json!({"items": items, "next_cursor": null})))
}

/// Declare a custom field. Its type cannot change later: delete it and declare it again.
#[utoipa::path(post, path = "/api/v1/fields", tag = "fields", request_body = NewField,
    responses((status = 201, description = "Declared"), (status = 409, description = "Already declared"),
        (status = 422, description = "Bad entity, name or type")), security(("api_key" = [])))]
pub async fn create_field(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Body(field): Body<NewField>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.may(Operation::CreateField)?;
    if !matches!(field.entity.as_str(), "lead" | "rep") {
        return Err(ApiError::invalid(
            "invalid_value",
            "entity",
            "entity is `lead` or `rep`",
        ));
    }
    if !valid_custom_name(&field.name) {
        return Err(ApiError::invalid(
            "invalid_value",
            "name",
            "a field name is 1 to 64 letters, digits or underscores",
        ));
    }
    if FieldType::parse(&field.field_type).is_none() {
        return Err(ApiError::invalid(
            "invalid_value",
            "type",
            "type is text, number, bool, time or list",
        ));
    }
    let row = CustomFieldRow {
        entity: field.entity,
        name: field.name,
        field_type: field.field_type,
    };
    if !app.store.insert_custom_field(&row).await? {
        return Err(ApiError::conflict(
            "already_exists",
            format!(
                "the {} field {:?} is already declared",
                row.entity, row.name
            ),
        )
        .with_field("name"));
    }
    let view = custom_view(&row);
    audit(
        &app,
        &caller,
        "field.created",
        "field",
        view["path"].as_str(),
        json!({"type": row.field_type}),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Remove a custom field. Refused while the active rule set tests it; values stored on leads
/// and reps stay, unread, and come back if the field is declared again with the same type.
#[utoipa::path(delete, path = "/api/v1/fields/{entity}/{name}", tag = "fields",
    params(("entity" = String, Path), ("name" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 404, description = "No such custom field"),
        (status = 409, description = "The active rule set uses it")), security(("api_key" = [])))]
pub async fn delete_field(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((entity, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    caller.may(Operation::DeleteField)?;
    let declared = app.store.list_custom_fields().await?;
    if !declared
        .iter()
        .any(|row| row.entity == entity && row.name == name)
    {
        return Err(ApiError::not_found("field"));
    }
    if let Some(active) = app.store.active_rule_set().await? {
        let spec = engine::RuleSetSpec::from_json(&active.document).map_err(ApiError::internal)?;
        let errors = crate::api::rule_sets::compile_with(&app, &spec, |rows| {
            rows.fields
                .retain(|row| !(row.entity == entity && row.name == name));
        })
        .await?;
        if let Some(error) = errors.iter().find(|error| error.code == "unknown_field") {
            return Err(ApiError::conflict(
                "in_use",
                format!(
                    "the active rule set (version {}) uses this field in rule {:?}",
                    active.version, error.rule
                ),
            ));
        }
    }
    app.store.delete_custom_field(&entity, &name).await?;
    audit(
        &app,
        &caller,
        "field.deleted",
        "field",
        Some(&format!("{entity}.{name}")),
        json!({}),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
