//! Settings pages: reps, teams, calendars, SLA policies, pools, notification channels (with a
//! test send) and intake sources, each edited as a form (`forms.rs`) or as its whole document,
//! for admins — and for managers, their teams and their teams' reps. Every change goes through
//! the API handler for it, so validation, access, audit and secrets behave as over the API.

use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::forms::{
    CalendarForm, ChannelForm, Choices, Fields, PoolForm, RepForm, SLA_ACTIONS, STATUSES, SlaForm,
    SourceForm, TeamForm, calendar_document, channel_document, pool_document, rep_patch,
    sla_document, source_document, team_document,
};
use super::logs::{Recent, channel_deliveries, source_receipts};
use super::{Frame, Viewer, back, notice_text, posted, render, viewer};
use crate::AppState;
use crate::api::settings::{calendars, channels, intake_sources, pools, sla_policies};
use crate::api::{IfMatch, Page};
use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, parse};

/// The kinds of documents the admin pages edit: `(path, title key, example for a new one)`.
const KINDS: [(&str, &str, &str); 7] = [
    (
        "reps",
        "reps",
        r#"{"id": "new-rep", "name": "新销售", "regions": ["华东"], "industries": ["制造"], "weight": 1,
 "caps": {"max_open": 100, "max_per_day": 30}, "time_zone": "Asia/Shanghai",
 "working_hours": {"mon": ["09:00-18:00"], "tue": ["09:00-18:00"], "wed": ["09:00-18:00"], "thu": ["09:00-18:00"], "fri": ["09:00-18:00"]},
 "leaves": [], "contact": {"email": "rep@example.com", "locale": "zh"}}"#,
    ),
    (
        "teams",
        "teams",
        r#"{"id": "new-team", "name": "新团队", "members": [], "default_strategy": {"type": "round_robin"}, "hours_policy": "in_hours"}"#,
    ),
    (
        "calendars",
        "calendars",
        r#"{"id": "office", "name": "办公时间", "time_zone": "Asia/Shanghai", "hours": {"mon": ["09:00-18:00"], "tue": ["09:00-18:00"], "wed": ["09:00-18:00"], "thu": ["09:00-18:00"], "fri": ["09:00-18:00"]}, "holidays": [], "makeup_days": []}"#,
    ),
    (
        "sla-policies",
        "sla_policies",
        r#"{"id": "fast", "name": "快速响应", "steps": [{"after": "30m", "action": "remind"}, {"after": "2h", "action": "escalate"}, {"after": "4h", "action": "reclaim"}], "hop_limit": 2}"#,
    ),
    (
        "pools",
        "pools",
        r#"{"id": "east-pool", "name": "华东公海", "teams": [], "claims_per_day": 5, "cooldown": "7d", "touch_within": "24h"}"#,
    ),
    (
        "channels",
        "channels",
        r#"{"id": "team-wecom", "name": "销售群", "kind": "wecom", "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…", "events": ["lead.assigned"]}"#,
    ),
    (
        "intake-sources",
        "intake_sources",
        r#"{"id": "site-form", "name": "官网表单", "auth": "token", "mapping": {"name": "姓名", "phone": "手机"}, "defaults": {"source": "官网"}}"#,
    ),
];

pub(super) async fn admin_viewer(app: &AppState, headers: &HeaderMap) -> Result<Viewer, Response> {
    let viewer = viewer(app, headers).await?;
    if viewer.caller.role == Role::Admin {
        Ok(viewer)
    } else {
        Err(Redirect::to("/").into_response())
    }
}

/// The kinds a manager edits: their teams and their teams' reps, through the API's own checks.
const MANAGER_KINDS: [&str; 2] = ["reps", "teams"];

/// Who may open a settings page of this kind: admins any, managers their reps and teams.
async fn settings_viewer(
    app: &AppState,
    headers: &HeaderMap,
    kind: &str,
) -> Result<Viewer, Response> {
    let viewer = viewer(app, headers).await?;
    match viewer.caller.role {
        Role::Admin => Ok(viewer),
        Role::Manager if MANAGER_KINDS.contains(&kind) => Ok(viewer),
        _ => Err(Redirect::to("/").into_response()),
    }
}

/// What of a kind's list the viewer may see: a manager their teams and their members.
async fn in_reach(
    app: &AppState,
    viewer: &Viewer,
    kind: &str,
    items: &mut Vec<Value>,
) -> ApiResult<()> {
    if viewer.caller.role != Role::Manager {
        return Ok(());
    }
    let reach: Vec<String> = match kind {
        "reps" => crate::api::access::members(app, &viewer.caller.teams).await?,
        _ => viewer.caller.teams.clone(),
    };
    items.retain(|item| {
        item["id"]
            .as_str()
            .is_some_and(|id| reach.iter().any(|one| one == id))
    });
    Ok(())
}

fn kind(path: &str) -> Option<(&'static str, &'static str, &'static str)> {
    KINDS.iter().find(|(name, _, _)| *name == path).copied()
}

/// The version a form was drawn from (its hidden `version` field), so that saving it over a
/// newer version is refused rather than undoing someone else's change.
pub(super) fn if_match(fields: &std::collections::HashMap<String, String>) -> IfMatch {
    IfMatch(
        fields
            .get("version")
            .and_then(|version| version.parse().ok()),
    )
}

/// Every document of a kind, as the API lists them (secrets hidden).
pub(super) async fn list(app: &AppState, caller: &Caller, kind: &str) -> ApiResult<Vec<Value>> {
    let page = || {
        Query(Page {
            limit: Some(500),
            cursor: None,
        })
    };
    let state = || State(app.clone());
    let caller = || Extension(caller.clone());
    let listed = match kind {
        "reps" => crate::api::reps::list_reps(state(), caller(), page()).await?,
        "teams" => crate::api::teams::list_teams(state(), caller(), page()).await?,
        "calendars" => calendars::list(state(), caller(), page()).await?,
        "sla-policies" => sla_policies::list(state(), caller(), page()).await?,
        "pools" => pools::list(state(), caller(), page()).await?,
        "channels" => channels::list(state(), caller(), page()).await?,
        _ => intake_sources::list(state(), caller(), page()).await?,
    };
    Ok(listed.0["items"].as_array().cloned().unwrap_or_default())
}

/// Creates or changes a document through the API handler for its kind.
async fn save(
    app: &AppState,
    viewer: &Viewer,
    kind: &str,
    id: Option<String>,
    text: &str,
) -> ApiResult<String> {
    let document: Map<String, Value> = serde_json::from_str(text).map_err(|error| {
        ApiError::invalid(
            "invalid_json",
            "document",
            format!("not a JSON object: {error}"),
        )
    })?;
    save_document(app, viewer, kind, id, document).await
}

/// Creates (no id) or merge-patches a document through the API handler for its kind.
async fn save_document(
    app: &AppState,
    viewer: &Viewer,
    kind: &str,
    id: Option<String>,
    mut document: Map<String, Value>,
) -> ApiResult<String> {
    for key in ["created_at", "updated_at", "secret_set"] {
        document.remove(key);
    }
    // The version the page was drawn from: saving over a newer one is refused.
    let if_match = IfMatch(
        document
            .remove("version")
            .and_then(|version| version.as_i64()),
    );
    let state = || State(app.clone());
    let caller = || Extension(viewer.caller.clone());
    let bytes = serde_json::to_vec(&document).map_err(ApiError::internal)?;
    let answer: Value = match id {
        Some(id) => {
            document.remove("id");
            let path = Path(id);
            let body = Body(document);
            match kind {
                "reps" => {
                    crate::api::reps::patch_rep(state(), caller(), path, if_match, body)
                        .await?
                        .1
                        .0
                }
                "teams" => {
                    crate::api::teams::patch_team(state(), caller(), path, if_match, body)
                        .await?
                        .1
                        .0
                }
                "calendars" => {
                    calendars::patch(state(), caller(), path, if_match, body)
                        .await?
                        .1
                        .0
                }
                "sla-policies" => {
                    sla_policies::patch(state(), caller(), path, if_match, body)
                        .await?
                        .1
                        .0
                }
                "pools" => {
                    pools::patch(state(), caller(), path, if_match, body)
                        .await?
                        .1
                        .0
                }
                "channels" => {
                    channels::patch(state(), caller(), path, if_match, body)
                        .await?
                        .1
                        .0
                }
                _ => {
                    intake_sources::patch(state(), caller(), path, if_match, body)
                        .await?
                        .1
                        .0
                }
            }
        }
        None => match kind {
            "reps" => {
                crate::api::reps::create_rep(state(), caller(), Body(parse(&bytes)?))
                    .await?
                    .1
                    .0
            }
            "teams" => {
                crate::api::teams::create_team(state(), caller(), Body(parse(&bytes)?))
                    .await?
                    .1
                    .0
            }
            "calendars" => {
                calendars::create(state(), caller(), Body(parse(&bytes)?))
                    .await?
                    .1
                    .0
            }
            "sla-policies" => {
                sla_policies::create(state(), caller(), Body(parse(&bytes)?))
                    .await?
                    .1
                    .0
            }
            "pools" => {
                pools::create(state(), caller(), Body(parse(&bytes)?))
                    .await?
                    .1
                    .0
            }
            "channels" => {
                channels::create(state(), caller(), Body(parse(&bytes)?))
                    .await?
                    .1
                    .0
            }
            _ => {
                intake_sources::create(state(), caller(), Body(parse(&bytes)?))
                    .await?
                    .1
                    .0
            }
        },
    };
    Ok(answer["id"].as_str().unwrap_or_default().to_owned())
}

async fn delete(app: &AppState, viewer: &Viewer, kind: &str, id: String) -> ApiResult<()> {
    let state = State(app.clone());
    let caller = Extension(viewer.caller.clone());
    let path = Path(id);
    match kind {
        "reps" => crate::api::reps::delete_rep(state, caller, path).await?,
        "teams" => crate::api::teams::delete_team(state, caller, path).await?,
        "calendars" => calendars::delete(state, caller, path).await?,
        "sla-policies" => sla_policies::delete(state, caller, path).await?,
        "pools" => pools::delete(state, caller, path).await?,
        "channels" => channels::delete(state, caller, path).await?,
        _ => intake_sources::delete(state, caller, path).await?,
    };
    Ok(())
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    frame: Frame,
    /// On the reps tab: every rep with status, teams and load.
    roster: Vec<RosterLine>,
    kinds: Vec<(&'static str, &'static str)>,
    kind: String,
    items: Vec<(String, String)>,
    editing: String,
    /// The version the forms were drawn from, sent back so a save over a newer one is refused.
    editing_version: String,
    document: String,
    is_channel: bool,
    /// For a rep: the fields a manager changes most, as a form.
    rep: Option<RepForm>,
    statuses: Vec<&'static str>,
    /// For a calendar (new or existing): hours, holidays and make-up days as fields.
    calendar: Option<CalendarForm>,
    /// For an SLA policy (new or existing): the ladder as rows, cadence and hop limit.
    sla: Option<SlaForm>,
    /// For a team (new or existing): members and weights, manager, strategy, overflow, policies.
    team: Option<TeamForm>,
    /// For a pool (new or existing): who may claim, limits, protection.
    pool: Option<PoolForm>,
    /// For a channel (new or existing): kind, address, events, scope; SMTP and SMS settings.
    channel: Option<ChannelForm>,
    /// For an intake source (new or existing): how it authenticates, and a row per lead field.
    source: Option<SourceForm>,
    /// What happened lately: a channel's deliveries, a source's received deliveries.
    recent: Option<Recent>,
    /// What the team, pool and SLA policy forms choose from.
    choices: Choices,
    events: Vec<&'static str>,
    channel_kinds: Vec<&'static str>,
    actions: Vec<(&'static str, &'static str)>,
}

#[derive(Debug, Deserialize)]
pub struct AdminQuery {
    pub(super) id: Option<String>,
    pub(super) notice: Option<String>,
}

/// The list of one kind and its editor (a new document, or `?id=` an existing one).
/// One line of the rep list: who, status, teams, and the load against the caps.
pub struct RosterLine {
    pub id: String,
    pub name: String,
    pub status: String,
    pub teams: String,
    /// Open leads (保有量) and the holding cap, if any.
    pub open: i64,
    pub max_open: String,
    pub max_per_day: String,
}

/// The reps on the page with their teams and open leads.
async fn roster_rows(
    app: &AppState,
    viewer: &Viewer,
    reps: &[Value],
) -> ApiResult<Vec<RosterLine>> {
    let teams = app.store.list_teams().await?;
    // Open leads as routing keeps them (保有量), not a count over every lead.
    let open: std::collections::HashMap<String, i64> = (app.store.load_rep_states().await?)
        .into_iter()
        .map(|state| (state.rep_id, state.open_leads))
        .collect();
    let cap = |rep: &Value, key: &str| {
        rep["caps"][key]
            .as_u64()
            .map_or_else(|| "—".to_owned(), |cap| cap.to_string())
    };
    // Each team's members read once, not once per rep.
    let memberships: Vec<(String, std::collections::HashSet<String>)> = teams
        .iter()
        .map(|team| {
            let document: Value = serde_json::from_str(&team.document).unwrap_or_default();
            let members = (document["members"].as_array().into_iter().flatten())
                .filter_map(|member| member["rep_id"].as_str().map(str::to_owned))
                .collect();
            (team.name.clone(), members)
        })
        .collect();
    let mut lines: Vec<RosterLine> = reps
        .iter()
        .map(|rep| {
            let id = rep["id"].as_str().unwrap_or_default().to_owned();
            let member_of: Vec<String> = memberships
                .iter()
                .filter(|(_, members)| members.contains(&id))
                .map(|(name, _)| name.clone())
                .collect();
            RosterLine {
                name: rep["name"].as_str().unwrap_or_default().to_owned(),
                status: viewer
                    .t
                    .t(rep["status"].as_str().unwrap_or("active"))
                    .to_owned(),
                teams: member_of.join(if viewer.t.is_zh() { "、" } else { ", " }),
                open: open.get(&id).copied().unwrap_or(0),
                max_open: cap(rep, "max_open"),
                max_per_day: cap(rep, "max_per_day"),
                id,
            }
        })
        .collect();
    lines.sort_by(|left, right| left.name.cmp(&right.name));
    Ok(lines)
}

pub async fn page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(kind_path): Path<String>,
    Query(query): Query<AdminQuery>,
) -> Response {
    let Some((name, title, example)) = kind(&kind_path) else {
        return Redirect::to("/admin/reps").into_response();
    };
    let viewer = match settings_viewer(&app, &headers, name).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let result: ApiResult<AdminPage> = async {
        let mut all = list(&app, &viewer.caller, name).await?;
        in_reach(&app, &viewer, name, &mut all).await?;
        let items = all
            .iter()
            .map(|item| {
                let name = item["name"].as_str().unwrap_or_default();
                // A channel whose platform refused its credentials says so in the list.
                let name = if item["needs_attention"].is_object() {
                    format!("⚠ {name}")
                } else {
                    name.to_owned()
                };
                (item["id"].as_str().unwrap_or_default().to_owned(), name)
            })
            .collect();
        // A manager creates nothing here: without a choice, the first of theirs is open.
        let wanted = query.id.clone().or_else(|| {
            (viewer.caller.role != Role::Admin)
                .then(|| {
                    all.first()
                        .and_then(|item| item["id"].as_str().map(str::to_owned))
                })
                .flatten()
        });
        let found = wanted.as_ref().and_then(|id| {
            all.iter()
                .find(|item| item["id"].as_str() == Some(id.as_str()))
        });
        // Reps have a form for a new one too; the JSON document stays the advanced way.
        let rep = (name == "reps").then(|| RepForm::from_view(found.unwrap_or(&Value::Null)));
        let roster = if name == "reps" {
            roster_rows(&app, &viewer, &all).await?
        } else {
            Vec::new()
        };
        let blank = Value::Null;
        let shown = found.unwrap_or(&blank);
        let calendar = (name == "calendars").then(|| CalendarForm::from_view(shown));
        let sla = (name == "sla-policies").then(|| SlaForm::from_view(shown));
        let team = (name == "teams").then(|| TeamForm::from_view(shown));
        let pool = (name == "pools").then(|| PoolForm::from_view(shown));
        let channel = (name == "channels").then(|| ChannelForm::from_view(shown));
        let recent = match (name, found.and_then(|item| item["id"].as_str())) {
            ("channels", Some(id)) => Some(channel_deliveries(&app, &viewer, id).await?),
            ("intake-sources", Some(id)) => Some(source_receipts(&app, &viewer, id).await?),
            _ => None,
        };
        let source = if name == "intake-sources" {
            let custom: Vec<String> = app
                .store
                .list_custom_fields()
                .await?
                .into_iter()
                .filter(|row| row.entity == "lead")
                .map(|row| format!("attributes.{}", row.name))
                .collect();
            Some(SourceForm::from_view(
                shown,
                found.and_then(|item| item["id"].as_str()).unwrap_or(""),
                &custom,
            ))
        } else {
            None
        };
        let choices = Choices::load(&app, &viewer.caller, name).await?;
        let editing_version = found
            .and_then(|item| item["version"].as_i64())
            .map(|version| version.to_string())
            .unwrap_or_default();
        let (editing, document) = match found {
            Some(item) => {
                let mut item = item.clone();
                if let Some(object) = item.as_object_mut() {
                    for key in ["created_at", "updated_at"] {
                        object.remove(key);
                    }
                }
                (
                    wanted.clone().unwrap_or_default(),
                    serde_json::to_string_pretty(&item).unwrap_or_default(),
                )
            }
            None => (String::new(), example.to_owned()),
        };
        Ok(AdminPage {
            roster,
            // Each tab has its own title: "销售 · 管理".
            frame: viewer.frame(
                &format!("{} · {}", viewer.t.t(title), viewer.t.t("admin")),
                "admin",
                notice_text(&viewer.t, query.notice.as_deref()),
            ),
            kinds: KINDS
                .iter()
                .filter(|(path, _, _)| {
                    viewer.caller.role == Role::Admin || MANAGER_KINDS.contains(path)
                })
                .map(|(path, title, _)| (*path, *title))
                .collect(),
            kind: name.to_owned(),
            items,
            editing,
            editing_version,
            document,
            is_channel: title == "channels",
            rep,
            statuses: STATUSES.to_vec(),
            calendar,
            sla,
            team,
            pool,
            channel,
            source,
            recent,
            choices,
            events: crate::notify::channel::EVENTS.to_vec(),
            channel_kinds: crate::notify::channel::KINDS.to_vec(),
            actions: SLA_ACTIONS.to_vec(),
        })
    }
    .await;
    match result {
        Ok(page) => render(page),
        Err(error) => error.into_response(),
    }
}

/// Saves, deletes or test-sends (channels) the document in the editor.
pub async fn submit(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(kind_path): Path<String>,
    body: Bytes,
) -> Response {
    let Some((name, _, _)) = kind(&kind_path) else {
        return Redirect::to("/admin/reps").into_response();
    };
    let (viewer, fields) = match posted(settings_viewer(&app, &headers, name).await, &body) {
        Ok(posted) => posted,
        Err(response) => return *response,
    };
    let id = fields.get("id").cloned().filter(|id| !id.is_empty());
    let page = format!("/admin/{name}");
    match fields.get("action").map(String::as_str) {
        Some("save_rep") => {
            let Some(id) = id else {
                // A new rep from the form: its id from the form, unset keys left out.
                let mut document = rep_patch(&Fields(&fields));
                document.insert(
                    "id".into(),
                    Value::String(fields.get("new_id").cloned().unwrap_or_default()),
                );
                document.retain(|_, value| !value.is_null());
                return match save_document(&app, &viewer, "reps", None, document).await {
                    Ok(saved) => back(&format!("{page}?id={saved}"), Ok(())),
                    Err(error) => back(&page, Err(error)),
                };
            };
            let outcome = crate::api::reps::patch_rep(
                State(app.clone()),
                Extension(viewer.caller.clone()),
                Path(id.clone()),
                if_match(&fields),
                Body(rep_patch(&Fields(&fields))),
            )
            .await
            .map(drop);
            back(&format!("{page}?id={id}"), outcome)
        }
        Some("save_form")
            if matches!(
                name,
                "calendars" | "sla-policies" | "teams" | "pools" | "channels" | "intake-sources"
            ) =>
        {
            let fields = Fields(&fields);
            let choices = match Choices::load(&app, &viewer.caller, name).await {
                Ok(choices) => choices,
                Err(error) => return back(&page, Err(error)),
            };
            let mut document = match name {
                "calendars" => calendar_document(&fields),
                "sla-policies" => sla_document(&fields),
                "pools" => pool_document(&fields, &choices.teams),
                "channels" => channel_document(&fields, &choices.teams),
                "intake-sources" => source_document(&fields),
                _ => team_document(&fields, &choices.reps),
            };
            if let Ok(version) = fields.get("version").parse::<i64>() {
                document.insert("version".into(), Value::from(version));
            }
            let id = match id {
                Some(id) => Some(id),
                None => {
                    // A new one: its id from the form; absent keys are simply not set.
                    document.insert("id".into(), Value::String(fields.get("new_id")));
                    document.retain(|_, value| !value.is_null());
                    None
                }
            };
            match save_document(&app, &viewer, name, id, document).await {
                Ok(saved) => back(&format!("{page}?id={saved}"), Ok(())),
                Err(error) => back(&page, Err(error)),
            }
        }
        Some("retry") => {
            let outcome = crate::api::notifications::retry_delivery(
                State(app.clone()),
                Extension(viewer.caller.clone()),
                Path(fields.get("delivery").cloned().unwrap_or_default()),
            )
            .await
            .map(drop);
            back(&format!("{page}?id={}", id.unwrap_or_default()), outcome)
        }
        Some("delete") => {
            let outcome = match id {
                Some(id) => delete(&app, &viewer, name, id).await,
                None => Ok(()),
            };
            back(&page, outcome)
        }
        Some("test") => {
            let outcome = match id {
                Some(id) => crate::api::notifications::test_channel(
                    State(app.clone()),
                    Extension(viewer.caller.clone()),
                    Path(id.clone()),
                    Query(crate::api::notifications::TestQuery { to: None }),
                )
                .await
                .map(drop),
                None => Ok(()),
            };
            back(&page, outcome)
        }
        _ => {
            let text = fields.get("document").cloned().unwrap_or_default();
            match save(&app, &viewer, name, id, &text).await {
                Ok(saved) => back(&format!("{page}?id={saved}"), Ok(())),
                Err(error) => back(&page, Err(error)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_is_a_json_object() {
        for (name, _, example) in KINDS {
            let value: Value =
                serde_json::from_str(example).unwrap_or_else(|error| panic!("{name}: {error}"));
            assert!(value.is_object(), "{name}");
            assert!(value["id"].is_string(), "{name}");
        }
    }
}
