//! The admin's pages for people and data shape: users and API keys, and the custom fields leads
//! and reps may carry — acting through the API's own handlers.

use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::admin::{AdminQuery, admin_viewer};
use super::forms::Fields;
use super::{Frame, Viewer, back, notice_text, posted, render};
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::Body;

/// A user as the accounts page shows them.
struct UserLine {
    id: String,
    username: String,
    display_name: String,
    role: String,
    /// The rep's name, the teams' names.
    rep: String,
    teams: String,
    active: bool,
    created: String,
}

/// An API key as the accounts page shows it.
struct KeyLine {
    id: String,
    name: String,
    role: String,
    prefix: String,
    created: String,
    revoked: String,
}

#[derive(Template)]
#[template(path = "accounts.html")]
struct AccountsPage {
    frame: Frame,
    users: Vec<UserLine>,
    keys: Vec<KeyLine>,
    new_key: String,
    /// For the new-user form: reps and teams by name.
    reps: Vec<(String, String)>,
    teams: Vec<(String, String)>,
}

/// An API time (RFC 3339) in the viewer's zone.
fn local_time(viewer: &Viewer, value: &Value) -> String {
    value
        .as_str()
        .and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok())
        .map(|at| viewer.local(at.timestamp_micros()))
        .unwrap_or_default()
}

/// Users and API keys.
pub async fn accounts(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<AdminQuery>,
) -> Response {
    let viewer = match admin_viewer(&app, &headers).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    accounts_page(&app, &viewer, query.notice.as_deref(), String::new()).await
}

async fn accounts_page(
    app: &AppState,
    viewer: &Viewer,
    notice: Option<&str>,
    new_key: String,
) -> Response {
    let result: ApiResult<AccountsPage> = async {
        let users =
            crate::api::accounts::list_users(State(app.clone()), Extension(viewer.caller.clone()))
                .await?
                .0;
        let keys =
            crate::api::accounts::list_keys(State(app.clone()), Extension(viewer.caller.clone()))
                .await?
                .0;
        let t = viewer.t;
        let mut reps: Vec<(String, String)> = app
            .store
            .list_reps()
            .await?
            .into_iter()
            .map(|row| (row.id, row.name))
            .collect();
        reps.sort_by(|a, b| a.1.cmp(&b.1));
        let teams = crate::reports::teams_in_reach(app, &viewer.caller).await?;
        let name_of = |list: &[(String, String)], id: &str| {
            list.iter()
                .find(|(key, _)| key == id)
                .map_or_else(|| id.to_owned(), |(_, name)| name.clone())
        };
        let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
        let users = users["items"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|user| UserLine {
                id: text(&user["id"]),
                username: text(&user["username"]),
                display_name: text(&user["display_name"]),
                role: t.t(&format!("role_{}", text(&user["role"]))).to_owned(),
                rep: user["rep_id"]
                    .as_str()
                    .map(|rep| name_of(&reps, rep))
                    .unwrap_or_default(),
                teams: user["teams"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|team| name_of(&teams, team))
                    .collect::<Vec<_>>()
                    .join("、"),
                active: user["active"].as_bool().unwrap_or(false),
                created: local_time(viewer, &user["created_at"]),
            })
            .collect();
        let keys = keys["items"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|key| KeyLine {
                id: text(&key["id"]),
                name: text(&key["name"]),
                role: t.t(&format!("role_{}", text(&key["role"]))).to_owned(),
                prefix: text(&key["prefix"]),
                created: local_time(viewer, &key["created_at"]),
                revoked: local_time(viewer, &key["revoked_at"]),
            })
            .collect();
        Ok(AccountsPage {
            frame: viewer.frame(t.t("accounts"), "admin", notice_text(&t, notice)),
            users,
            keys,
            new_key,
            reps,
            teams,
        })
    }
    .await;
    match result {
        Ok(page) => render(page),
        Err(error) => error.into_response(),
    }
}

/// Creates a user, deactivates or reactivates one, resets a password, creates or revokes a key.
pub async fn accounts_submit(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (viewer, fields) = match posted(admin_viewer(&app, &headers).await, &body) {
        Ok(posted) => posted,
        Err(response) => return *response,
    };
    let get = |key: &str| fields.get(key).cloned().unwrap_or_default();
    let state = || State(app.clone());
    let caller = || Extension(viewer.caller.clone());
    let outcome: ApiResult<()> = match get("action").as_str() {
        "create_user" => {
            let input = crate::api::accounts::UserInput {
                id: None,
                username: get("username"),
                display_name: Some(get("display_name")).filter(|name| !name.is_empty()),
                role: get("role"),
                rep_id: Some(get("rep_id")).filter(|rep| !rep.is_empty()),
                // Ticked teams (`team_<id>`), or a comma-separated list.
                teams: fields
                    .keys()
                    .filter_map(|key| key.strip_prefix("team_"))
                    .map(str::to_owned)
                    .chain(
                        get("teams")
                            .split(',')
                            .map(str::trim)
                            .filter(|team| !team.is_empty())
                            .map(str::to_owned),
                    )
                    .collect(),
                password: get("password"),
            };
            crate::api::accounts::create_user(state(), caller(), Body(input))
                .await
                .map(drop)
        }
        "activate" | "deactivate" => {
            let patch = crate::api::accounts::UserPatch {
                active: Some(get("action") == "activate"),
                ..Default::default()
            };
            crate::api::accounts::patch_user(
                state(),
                caller(),
                Path(get("id")),
                crate::api::IfMatch(None),
                Body(patch),
            )
            .await
            .map(drop)
        }
        "reset_password" => crate::api::accounts::reset_password(
            state(),
            caller(),
            Path(get("id")),
            Body(crate::api::accounts::PasswordReset {
                password: get("password"),
            }),
        )
        .await
        .map(drop),
        "create_key" => {
            let input = crate::api::accounts::KeyInput {
                name: get("name"),
                role: get("role"),
            };
            match crate::api::accounts::create_key(state(), caller(), Body(input)).await {
                // The key is shown on this page, once.
                Ok((_, created)) => {
                    let key = created.0["key"].as_str().unwrap_or_default().to_owned();
                    return accounts_page(&app, &viewer, Some("ok"), key).await;
                }
                Err(error) => Err(error),
            }
        }
        "revoke_key" => crate::api::accounts::revoke_key(state(), caller(), Path(get("id")))
            .await
            .map(drop),
        _ => Ok(()),
    };
    back("/admin/accounts", outcome)
}

#[derive(Template)]
#[template(path = "fields.html")]
struct FieldsPage {
    frame: Frame,
    /// Custom fields: `(entity, name, type, path)`.
    fields: Vec<(String, String, String, String)>,
    builtin: Vec<String>,
    kinds: Vec<&'static str>,
}

/// The custom fields leads and reps may carry, declared and removed here.
pub async fn fields(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<AdminQuery>,
) -> Response {
    let viewer = match admin_viewer(&app, &headers).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let listed =
        match crate::api::fields::list_fields(State(app.clone()), Extension(viewer.caller.clone()))
            .await
        {
            Ok(listed) => listed.0,
            Err(error) => return error.into_response(),
        };
    let items = listed["items"].as_array().cloned().unwrap_or_default();
    let string = |item: &Value, key: &str| item[key].as_str().unwrap_or_default().to_owned();
    render(FieldsPage {
        frame: viewer.frame(
            viewer.t.t("custom_fields"),
            "admin",
            notice_text(&viewer.t, query.notice.as_deref()),
        ),
        fields: items
            .iter()
            .filter(|item| item["custom"] == Value::Bool(true))
            .map(|item| {
                (
                    string(item, "entity"),
                    string(item, "name"),
                    string(item, "type"),
                    string(item, "path"),
                )
            })
            .collect(),
        builtin: items
            .iter()
            .filter(|item| item["custom"] == Value::Bool(false))
            .map(|item| string(item, "path"))
            .collect(),
        kinds: vec!["text", "number", "bool", "time", "list"],
    })
}

pub async fn fields_submit(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (viewer, fields) = match posted(admin_viewer(&app, &headers).await, &body) {
        Ok(posted) => posted,
        Err(response) => return *response,
    };
    let fields = Fields(&fields);
    let outcome = match fields.get("action").as_str() {
        "create" => crate::api::fields::create_field(
            State(app.clone()),
            Extension(viewer.caller.clone()),
            Body(crate::api::fields::NewField {
                entity: fields.get("entity"),
                name: fields.get("name"),
                field_type: fields.get("type"),
            }),
        )
        .await
        .map(drop),
        "delete" => crate::api::fields::delete_field(
            State(app.clone()),
            Extension(viewer.caller.clone()),
            Path((fields.get("entity"), fields.get("name"))),
        )
        .await
        .map(drop),
        _ => Ok(()),
    };
    back("/admin/fields", outcome)
}
