//! Follow-up settings: business calendars, SLA policies and pools. The three share one set of
//! handlers (list, create, get, patch as a JSON merge, delete), each kind saying how its
//! document is checked and what still uses it.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use store::{AuditRow, DocRow, LeadFilter, Setting, Write};

use crate::AppState;
use crate::api::accounts::audit_row;
use crate::api::{
    IfMatch, Page, Versioned, check_id, document_view, etag, merge_patch, now_micros, page_by_id,
    rewrite, taken,
};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::Body;
use crate::intake::IntakeSourceDocument;
use crate::notify::channel::ChannelDocument;
use crate::ops::Operation;
use crate::settings::{CalendarDocument, PoolDocument, SlaPolicyDocument};
use crate::workspace::{ConfigRows, OverflowDocument, TeamDocument};

/// The operations on one kind of settings document.
#[derive(Clone, Copy, Debug)]
pub struct SettingOperations {
    pub list: Operation,
    pub create: Operation,
    pub get: Operation,
    pub patch: Operation,
    pub delete: Operation,
}

/// A kind of settings document.
pub trait SettingKind: DeserializeOwned + Serialize + Send + 'static {
    const SETTING: Setting;
    /// The operations on this kind, each with its own role rule.
    const OPERATIONS: SettingOperations;
    /// `calendar`, `SLA policy`, `pool`.
    const NOUN: &'static str;
    /// Generated ids start with this.
    const PREFIX: &'static str;
    fn id_mut(&mut self) -> &mut Option<String>;
    fn name(&self) -> &str;
    /// Checks the document against the rest of the configuration.
    fn check(&self, id: &str, rows: &ConfigRows) -> Result<(), ApiError>;
    /// What still uses the setting, if anything: it cannot be deleted then.
    fn used_by(id: &str, rows: &ConfigRows) -> Option<String>;
    /// Removes what a view must not show (secrets).
    fn redact(_view: &mut Value) {}
    /// Fills what the server generates (tokens) before the document is checked and saved.
    fn prepare(&mut self) {}
    /// The secrets sealed before the document is stored, if the kind has any.
    fn secrets_mut(&mut self) -> Vec<&mut Option<String>> {
        Vec::new()
    }
}

fn teams(rows: &ConfigRows) -> impl Iterator<Item = (String, TeamDocument)> + '_ {
    rows.teams.iter().filter_map(|row| {
        Some((
            row.id.clone(),
            serde_json::from_str::<TeamDocument>(&row.document).ok()?,
        ))
    })
}

fn ids(rows: &[DocRow]) -> Vec<String> {
    rows.iter().map(|row| row.id.clone()).collect()
}

impl SettingKind for CalendarDocument {
    const OPERATIONS: SettingOperations = SettingOperations {
        list: Operation::ListCalendars,
        create: Operation::CreateCalendar,
        get: Operation::GetCalendar,
        patch: Operation::PatchCalendar,
        delete: Operation::DeleteCalendar,
    };
    const SETTING: Setting = Setting::Calendars;
    const NOUN: &'static str = "calendar";
    const PREFIX: &'static str = "cal";

    fn id_mut(&mut self) -> &mut Option<String> {
        &mut self.id
    }

    fn name(&self) -> &str {
        self.name()
    }

    fn check(&self, _id: &str, _rows: &ConfigRows) -> Result<(), ApiError> {
        self.to_engine().map(drop)
    }

    fn used_by(id: &str, rows: &ConfigRows) -> Option<String> {
        if let Some((team, _)) = teams(rows).find(|(_, team)| team.calendar.as_deref() == Some(id))
        {
            return Some(format!("team {team}"));
        }
        rows.sla_policies.iter().find_map(|row| {
            let policy: SlaPolicyDocument = serde_json::from_str(&row.document).ok()?;
            (policy.calendar.as_deref() == Some(id)).then(|| format!("SLA policy {}", row.id))
        })
    }
}

impl SettingKind for SlaPolicyDocument {
    const OPERATIONS: SettingOperations = SettingOperations {
        list: Operation::ListSlaPolicies,
        create: Operation::CreateSlaPolicy,
        get: Operation::GetSlaPolicy,
        patch: Operation::PatchSlaPolicy,
        delete: Operation::DeleteSlaPolicy,
    };
    const SETTING: Setting = Setting::SlaPolicies;
    const NOUN: &'static str = "SLA policy";
    const PREFIX: &'static str = "sla";

    fn id_mut(&mut self) -> &mut Option<String> {
        &mut self.id
    }

    fn name(&self) -> &str {
        self.name()
    }

    fn check(&self, _id: &str, rows: &ConfigRows) -> Result<(), ApiError> {
        self.to_engine(&ids(&rows.calendars)).map(drop)
    }

    fn used_by(id: &str, rows: &ConfigRows) -> Option<String> {
        if let Some((team, _)) =
            teams(rows).find(|(_, team)| team.sla_policy.as_deref() == Some(id))
        {
            return Some(format!("team {team}"));
        }
        let active = rows.active.as_ref()?;
        let spec = engine::RuleSetSpec::from_json(&active.document).ok()?;
        spec.rules
            .iter()
            .find(|rule| rule.sla_policy.as_deref() == Some(id))
            .map(|rule| format!("rule {} of the active rule set", rule.id))
    }
}

impl SettingKind for PoolDocument {
    const OPERATIONS: SettingOperations = SettingOperations {
        list: Operation::ListPools,
        create: Operation::CreatePool,
        get: Operation::GetPool,
        patch: Operation::PatchPool,
        delete: Operation::DeletePool,
    };
    const SETTING: Setting = Setting::Pools;
    const NOUN: &'static str = "pool";
    const PREFIX: &'static str = "pool";

    fn id_mut(&mut self) -> &mut Option<String> {
        &mut self.id
    }

    fn name(&self) -> &str {
        self.name()
    }

    fn check(&self, id: &str, rows: &ConfigRows) -> Result<(), ApiError> {
        self.to_engine(id, &ids_of_reps(rows), &ids_of_teams(rows))
            .map(drop)
    }

    fn used_by(id: &str, rows: &ConfigRows) -> Option<String> {
        if let Some((team, _)) = teams(rows).find(
            |(_, team)| matches!(&team.overflow, Some(OverflowDocument::Pool(pool)) if pool == id),
        ) {
            return Some(format!("team {team} (overflow)"));
        }
        // The active rule set may route to it: it must still compile without the pool.
        let active = rows.active.as_ref()?;
        let spec = engine::RuleSetSpec::from_json(&active.document).ok()?;
        let mut without = rows.clone();
        without.pools.retain(|pool| pool.id != id);
        without.active = None;
        let workspace = crate::workspace::build_workspace(&without);
        let known = engine::Known {
            catalogue: &workspace.catalogue,
            roster: &workspace.roster,
            pools: &workspace.pools,
            sla_policies: &workspace.sla_policy_ids,
        };
        let errors = engine::compile(&spec, known, 0).err()?;
        errors
            .iter()
            .any(|error| error.code == "unknown_pool")
            .then(|| format!("the active rule set (version {})", active.version))
    }
}

impl SettingKind for ChannelDocument {
    const OPERATIONS: SettingOperations = SettingOperations {
        list: Operation::ListChannels,
        create: Operation::CreateChannel,
        get: Operation::GetChannel,
        patch: Operation::PatchChannel,
        delete: Operation::DeleteChannel,
    };
    const SETTING: Setting = Setting::Channels;
    const NOUN: &'static str = "channel";
    const PREFIX: &'static str = "ch";

    fn id_mut(&mut self) -> &mut Option<String> {
        &mut self.id
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn check(&self, _id: &str, rows: &ConfigRows) -> Result<(), ApiError> {
        self.check(&ids_of_teams(rows))
    }

    fn used_by(_id: &str, _rows: &ConfigRows) -> Option<String> {
        None
    }

    fn redact(view: &mut Value) {
        hide_secrets(view, &["secret", "token"]);
    }

    fn secrets_mut(&mut self) -> Vec<&mut Option<String>> {
        vec![&mut self.secret, &mut self.token]
    }
}

/// Hides the secret fields, saying only whether each is set (`secret_set`, ...).
fn hide_secrets(view: &mut Value, fields: &[&str]) {
    if let Some(object) = view.as_object_mut() {
        for field in fields {
            let set = object
                .remove(*field)
                .is_some_and(|secret| secret.as_str().is_some_and(|secret| !secret.is_empty()));
            if set || *field == "secret" {
                object.insert(format!("{field}_set"), json!(set));
            }
        }
    }
}

impl SettingKind for IntakeSourceDocument {
    const OPERATIONS: SettingOperations = SettingOperations {
        list: Operation::ListIntakeSources,
        create: Operation::CreateIntakeSource,
        get: Operation::GetIntakeSource,
        patch: Operation::PatchIntakeSource,
        delete: Operation::DeleteIntakeSource,
    };
    const SETTING: Setting = Setting::IntakeSources;
    const NOUN: &'static str = "intake source";
    const PREFIX: &'static str = "src";

    fn id_mut(&mut self) -> &mut Option<String> {
        &mut self.id
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn check(&self, _id: &str, _rows: &ConfigRows) -> Result<(), ApiError> {
        self.check()
    }

    fn used_by(_id: &str, _rows: &ConfigRows) -> Option<String> {
        None
    }

    fn redact(view: &mut Value) {
        hide_secrets(view, &["secret", "access_token"]);
    }

    fn prepare(&mut self) {
        IntakeSourceDocument::prepare(self);
    }

    fn secrets_mut(&mut self) -> Vec<&mut Option<String>> {
        vec![&mut self.secret, &mut self.access_token]
    }
}

fn ids_of_reps(rows: &ConfigRows) -> Vec<String> {
    rows.reps.iter().map(|row| row.id.clone()).collect()
}

fn ids_of_teams(rows: &ConfigRows) -> Vec<String> {
    rows.teams.iter().map(|row| row.id.clone()).collect()
}

fn view<T: SettingKind>(row: &DocRow) -> Value {
    let mut view = document_view(
        &row.document,
        &row.id,
        row.created_at,
        row.updated_at,
        row.version,
    );
    view["name"] = json!(row.name);
    T::redact(&mut view);
    view
}

fn not_found<T: SettingKind>() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no such {}", T::NOUN),
    )
}

async fn save<T: SettingKind>(
    app: &AppState,
    id: String,
    mut document: T,
    created_at: i64,
    write: Write,
    audit: &AuditRow,
) -> ApiResult<Option<DocRow>> {
    let rows = ConfigRows::load(&app.store).await?;
    document.prepare();
    document.check(&id, &rows)?;
    for secret in document.secrets_mut().into_iter().flatten() {
        *secret = app.sealer.seal(secret);
    }
    *document.id_mut() = Some(id.clone());
    let name = document.name().trim().to_owned();
    crate::text::check_name(&name, "name")?;
    let mut row = DocRow {
        id,
        name,
        document: serde_json::to_string(&document).map_err(ApiError::internal)?,
        created_at,
        updated_at: now_micros(),
        version: 0,
    };
    let written = app
        .store
        .write_setting(T::SETTING, &mut row, write, audit)
        .await?;
    Ok(written.then_some(row))
}

pub async fn list<T: SettingKind>(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(page): Query<Page>,
) -> ApiResult<Json<Value>> {
    caller.may(T::OPERATIONS.list)?;
    let rows = app.store.list_settings(T::SETTING).await?;
    let (rows, next_cursor) = page_by_id(rows, &page, |row| &row.id)?;
    let mut items: Vec<Value> = rows.iter().map(view::<T>).collect();
    attention::<T>(&app, &mut items).await?;
    Ok(Json(json!({"items": items, "next_cursor": next_cursor})))
}

pub async fn create<T: SettingKind>(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Body(mut document): Body<T>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.may(T::OPERATIONS.create)?;
    let id = match document.id_mut().clone() {
        Some(id) => {
            check_id(&id, "id")?;
            id
        }
        None => format!("{}_{}", T::PREFIX, uuid::Uuid::now_v7().simple()),
    };
    let audit = audit_row(
        &caller,
        &format!("{}.created", T::SETTING.name()),
        T::SETTING.name(),
        Some(&id),
        json!({}),
    );
    let row = save(
        &app,
        id.clone(),
        document,
        now_micros(),
        Write::Create,
        &audit,
    )
    .await?
    .ok_or_else(|| taken(T::NOUN, &id))?;
    app.router.sweep_soon();
    Ok((StatusCode::CREATED, Json(view::<T>(&row))))
}

pub async fn get<T: SettingKind>(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Versioned> {
    caller.may(T::OPERATIONS.get)?;
    let row = app
        .store
        .get_setting(T::SETTING, &id)
        .await?
        .ok_or_else(not_found::<T>)?;
    let mut items = vec![view::<T>(&row)];
    attention::<T>(&app, &mut items).await?;
    Ok((etag(row.version), Json(items.swap_remove(0))))
}

/// Channels say whether their platform refused their credentials: `needs_attention` with the
/// reason and since when.
async fn attention<T: SettingKind>(app: &AppState, items: &mut [Value]) -> ApiResult<()> {
    if T::SETTING != Setting::Channels {
        return Ok(());
    }
    let marks = app.store.channel_attention().await?;
    for item in items {
        let mark = marks
            .iter()
            .find(|mark| item["id"].as_str() == Some(mark.channel_id.as_str()));
        item["needs_attention"] = match mark {
            Some(mark) => json!({"reason": mark.reason, "since": crate::leads::time(mark.since)}),
            None => Value::Null,
        };
    }
    Ok(())
}

pub async fn patch<T: SettingKind>(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    if_match: IfMatch,
    Body(patch): Body<serde_json::Map<String, Value>>,
) -> ApiResult<Versioned> {
    caller.may(T::OPERATIONS.patch)?;
    // What changed, with secrets hidden.
    let mut change = Value::Object(patch.clone());
    T::redact(&mut change);
    let audit = audit_row(
        &caller,
        &format!("{}.changed", T::SETTING.name()),
        T::SETTING.name(),
        Some(&id),
        change,
    );
    // Read, apply the patch, write if nobody wrote in between; otherwise again from the newer
    // version (or 412 when the caller named the version it read).
    let (app, id, patch, audit) = (&app, &id, &patch, &audit);
    let row = rewrite(if_match, || async move {
        let row = app
            .store
            .get_setting(T::SETTING, id)
            .await?
            .ok_or_else(not_found::<T>)?;
        if_match.check(row.version)?;
        let document: T = merge_patch(&row.document, patch.clone(), &["id"])?;
        let write = Write::Replace {
            version: row.version,
        };
        save(app, id.clone(), document, row.created_at, write, audit).await
    })
    .await?;
    if T::SETTING == Setting::Channels {
        // Changed credentials get another chance at once: the deliveries waiting on them are
        // due now.
        app.store.clear_channel_attention(id, now_micros()).await?;
    }
    Ok((etag(row.version), Json(view::<T>(&row))))
}

pub async fn delete<T: SettingKind>(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.may(T::OPERATIONS.delete)?;
    app.store
        .get_setting(T::SETTING, &id)
        .await?
        .ok_or_else(not_found::<T>)?;
    if id == "default" && T::SETTING != Setting::Pools {
        return Err(ApiError::conflict(
            "default_setting",
            format!(
                "the default {} is what everything else falls back to; change it instead",
                T::NOUN
            ),
        ));
    }
    let rows = ConfigRows::load(&app.store).await?;
    if let Some(user) = T::used_by(&id, &rows) {
        return Err(ApiError::conflict(
            "in_use",
            format!("{user} uses this {}", T::NOUN),
        ));
    }
    if T::SETTING == Setting::Pools {
        let waiting = app
            .store
            .list_leads(&LeadFilter {
                pools: Some(vec![id.clone()]),
                limit: 1,
                ..LeadFilter::default()
            })
            .await?;
        if !waiting.is_empty() {
            return Err(ApiError::conflict(
                "in_use",
                "leads are waiting in this pool",
            ));
        }
    }
    let audit = audit_row(
        &caller,
        &format!("{}.deleted", T::SETTING.name()),
        T::SETTING.name(),
        Some(&id),
        json!({}),
    );
    app.store.delete_setting(T::SETTING, &id, &audit).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Typed, documented handlers for one kind of setting.
macro_rules! setting_handlers {
    ($module:ident, $document:ty, $tag:literal, $collection:literal, $item:literal, [$list:literal, $create:literal, $get:literal, $patch:literal, $delete:literal]) => {
        pub mod $module {
            use axum::Json;
            use axum::extract::{Path, Query, State};
            use axum::http::StatusCode;
            use serde_json::Value;

            use crate::AppState;
            use crate::api::Page;
            use crate::error::ApiResult;
            use crate::extract::Body;

            #[allow(unused_imports)]
            use super::*;

            /// All of them, by id.
            #[utoipa::path(get, path = $collection, operation_id = $list, tag = $tag, params(Page),
                responses((status = 200, description = "`{items, next_cursor}`")), security(("api_key" = [])))]
            pub async fn list(
                app: State<AppState>,
                caller: axum::Extension<crate::auth::Caller>,
                page: Query<Page>,
            ) -> ApiResult<Json<Value>> {
                super::list::<$document>(app, caller, page).await
            }

            /// Create one; `id` is generated when left out.
            #[utoipa::path(post, path = $collection, operation_id = $create, tag = $tag, request_body = $document,
                responses((status = 201, description = "Created"), (status = 409, description = "The id is taken"), (status = 422, description = "Invalid value, with the field")),
                security(("api_key" = [])))]
            pub async fn create(
                app: State<AppState>,
                caller: axum::Extension<crate::auth::Caller>,
                body: Body<$document>,
            ) -> ApiResult<(StatusCode, Json<Value>)> {
                super::create::<$document>(app, caller, body).await
            }

            /// One, by id.
            #[utoipa::path(get, path = $item, operation_id = $get, tag = $tag, params(("id" = String, Path)),
                responses((status = 200, description = "Found"), (status = 404, description = "No such id")), security(("api_key" = [])))]
            pub async fn get(
                app: State<AppState>,
                caller: axum::Extension<crate::auth::Caller>,
                id: Path<String>,
            ) -> ApiResult<crate::api::Versioned> {
                super::get::<$document>(app, caller, id).await
            }

            /// Change some fields (a JSON merge patch; `null` clears one).
            #[utoipa::path(patch, path = $item, operation_id = $patch, tag = $tag, params(("id" = String, Path)), request_body(content = Object, description = "Fields to replace"),
                responses((status = 200, description = "Changed"), (status = 422, description = "Invalid value, with the field")), security(("api_key" = [])))]
            pub async fn patch(
                app: State<AppState>,
                caller: axum::Extension<crate::auth::Caller>,
                id: Path<String>,
                if_match: crate::api::IfMatch,
                body: Body<serde_json::Map<String, Value>>,
            ) -> ApiResult<crate::api::Versioned> {
                super::patch::<$document>(app, caller, id, if_match, body).await
            }

            /// Delete one that nothing uses.
            #[utoipa::path(delete, path = $item, operation_id = $delete, tag = $tag, params(("id" = String, Path)),
                responses((status = 204, description = "Deleted"), (status = 409, description = "Still in use, or the default")), security(("api_key" = [])))]
            pub async fn delete(
                app: State<AppState>,
                caller: axum::Extension<crate::auth::Caller>,
                id: Path<String>,
            ) -> ApiResult<StatusCode> {
                super::delete::<$document>(app, caller, id).await
            }
        }
    };
}

setting_handlers!(
    calendars,
    crate::settings::CalendarDocument,
    "calendars",
    "/api/v1/calendars",
    "/api/v1/calendars/{id}",
    [
        "list_calendars",
        "create_calendar",
        "get_calendar",
        "patch_calendar",
        "delete_calendar"
    ]
);
setting_handlers!(
    sla_policies,
    crate::settings::SlaPolicyDocument,
    "sla-policies",
    "/api/v1/sla-policies",
    "/api/v1/sla-policies/{id}",
    [
        "list_sla_policies",
        "create_sla_policy",
        "get_sla_policy",
        "patch_sla_policy",
        "delete_sla_policy"
    ]
);
setting_handlers!(
    pools,
    crate::settings::PoolDocument,
    "pools",
    "/api/v1/pools",
    "/api/v1/pools/{id}",
    [
        "list_pools",
        "create_pool",
        "get_pool",
        "patch_pool",
        "delete_pool"
    ]
);
setting_handlers!(
    channels,
    crate::notify::channel::ChannelDocument,
    "channels",
    "/api/v1/channels",
    "/api/v1/channels/{id}",
    [
        "list_channels",
        "create_channel",
        "get_channel",
        "patch_channel",
        "delete_channel"
    ]
);
setting_handlers!(
    intake_sources,
    crate::intake::IntakeSourceDocument,
    "intake",
    "/api/v1/intake-sources",
    "/api/v1/intake-sources/{id}",
    [
        "list_intake_sources",
        "create_intake_source",
        "get_intake_source",
        "patch_intake_source",
        "delete_intake_source"
    ]
);
