//! Admin pages: reps (attributes, caps, weight, working hours, leave), teams, SLA policies,
//! calendars, pools, notification channels (with a test send) and intake sources, each edited as
//! its document with the API's own checks; users and API keys. Every change goes through the
//! API handler for it, so validation, audit and secrets behave exactly as over the API.

use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Frame, Viewer, back, notice_text, posted, render, viewer};
use crate::AppState;
use crate::api::Page;
use crate::api::settings::{calendars, channels, intake_sources, pools, sla_policies};
use crate::auth::Role;
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

async fn admin_viewer(app: &AppState, headers: &HeaderMap) -> Result<Viewer, Response> {
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

/// Every document of a kind, as the API lists them (secrets hidden).
async fn list(app: &AppState, kind: &str) -> ApiResult<Vec<Value>> {
    let page = || {
        Query(Page {
            limit: Some(500),
            cursor: None,
        })
    };
    let state = || State(app.clone());
    let listed = match kind {
        "reps" => crate::api::reps::list_reps(state(), page()).await?,
        "teams" => crate::api::teams::list_teams(state(), page()).await?,
        "calendars" => calendars::list(state(), page()).await?,
        "sla-policies" => sla_policies::list(state(), page()).await?,
        "pools" => pools::list(state(), page()).await?,
        "channels" => channels::list(state(), page()).await?,
        _ => intake_sources::list(state(), page()).await?,
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
                    crate::api::reps::patch_rep(state(), caller(), path, body)
                        .await?
                        .0
                }
                "teams" => {
                    crate::api::teams::patch_team(state(), caller(), path, body)
                        .await?
                        .0
                }
                "calendars" => calendars::patch(state(), caller(), path, body).await?.0,
                "sla-policies" => sla_policies::patch(state(), caller(), path, body).await?.0,
                "pools" => pools::patch(state(), caller(), path, body).await?.0,
                "channels" => channels::patch(state(), caller(), path, body).await?.0,
                _ => {
                    intake_sources::patch(state(), caller(), path, body)
                        .await?
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
    kinds: Vec<(&'static str, &'static str)>,
    kind: String,
    items: Vec<(String, String)>,
    editing: String,
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

/// A rep's everyday settings as form fields.
#[derive(Debug, Default)]
struct RepForm {
    name: String,
    status: String,
    weight: String,
    regions: String,
    industries: String,
    caps: Vec<(&'static str, String)>,
    time_zone: String,
    /// `(day, "09:00-12:00, 13:00-18:00")`.
    hours: Vec<(&'static str, String)>,
    /// One `YYYY-MM-DD..YYYY-MM-DD` per line.
    leaves: String,
    email: String,
    mobile: String,
}

const CAPS: [&str; 6] = [
    "max_open",
    "max_per_day",
    "max_per_week",
    "max_per_month",
    "min_per_week",
    "min_per_month",
];
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const STATUSES: [&str; 4] = ["active", "paused", "on_leave", "inactive"];

fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn joined(value: &Value) -> String {
    value
        .as_array()
        .map(|items| items.iter().map(text).collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}

impl RepForm {
    fn from_view(rep: &Value) -> RepForm {
        RepForm {
            name: text(&rep["name"]),
            status: text(&rep["status"]),
            weight: text(&rep["weight"]),
            regions: joined(&rep["regions"]),
            industries: joined(&rep["industries"]),
            caps: CAPS
                .iter()
                .map(|cap| (*cap, text(&rep["caps"][cap])))
                .collect(),
            time_zone: text(&rep["time_zone"]),
            hours: DAYS
                .iter()
                .map(|day| (*day, joined(&rep["working_hours"][day])))
                .collect(),
            leaves: rep["leaves"]
                .as_array()
                .map(|leaves| {
                    leaves
                        .iter()
                        .map(|leave| format!("{}..{}", text(&leave["from"]), text(&leave["until"])))
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default(),
            email: text(&rep["contact"]["email"]),
            mobile: text(&rep["contact"]["mobile"]),
        }
    }
}

/// The patch a rep form makes: lists are comma-separated, an empty cap or zone clears it.
fn rep_patch(fields: &Fields) -> Map<String, Value> {
    let mut patch = Map::new();
    patch.insert("name".into(), Value::String(fields.get("name")));
    patch.insert("status".into(), Value::String(fields.get("status")));
    patch.insert("weight".into(), fields.number("weight"));
    patch.insert("regions".into(), Value::Array(fields.list("regions")));
    patch.insert("industries".into(), Value::Array(fields.list("industries")));
    let caps: Map<String, Value> = CAPS
        .iter()
        .map(|cap| ((*cap).to_owned(), fields.number(&format!("cap_{cap}"))))
        .filter(|(_, value)| !value.is_null())
        .collect();
    patch.insert("caps".into(), Value::Object(caps));
    patch.insert("time_zone".into(), fields.optional("time_zone"));
    let hours = fields.week();
    patch.insert(
        "working_hours".into(),
        if hours.is_empty() {
            Value::Null
        } else {
            Value::Object(hours)
        },
    );
    let leaves: Vec<Value> = fields
        .get("leaves")
        .lines()
        .filter_map(|line| {
            let (from, until) = line.trim().split_once("..")?;
            Some(serde_json::json!({"from": from.trim(), "until": until.trim()}))
        })
        .collect();
    patch.insert("leaves".into(), Value::Array(leaves));
    let contact: Map<String, Value> = ["email", "mobile"]
        .into_iter()
        .filter_map(|key| {
            let value = fields.get(key);
            (!value.is_empty()).then(|| (key.to_owned(), Value::String(value)))
        })
        .collect();
    patch.insert(
        "contact".into(),
        if contact.is_empty() {
            Value::Null
        } else {
            Value::Object(contact)
        },
    );
    patch
}

/// A calendar as form fields; dates one per line or separated by commas or spaces.
#[derive(Debug, Default)]
struct CalendarForm {
    name: String,
    time_zone: String,
    hours: Vec<(&'static str, String)>,
    holidays: String,
    makeup_days: String,
    makeup_hours: String,
}

impl CalendarForm {
    fn from_view(calendar: &Value) -> CalendarForm {
        let dates = |key: &str| {
            calendar[key]
                .as_array()
                .map(|days| days.iter().map(text).collect::<Vec<_>>().join("\n"))
                .unwrap_or_default()
        };
        CalendarForm {
            name: text(&calendar["name"]),
            time_zone: text(&calendar["time_zone"]),
            hours: DAYS
                .iter()
                .map(|day| (*day, joined(&calendar["hours"][day])))
                .collect(),
            holidays: dates("holidays"),
            makeup_days: dates("makeup_days"),
            makeup_hours: joined(&calendar["makeup_hours"]),
        }
    }
}

/// An SLA policy as form fields: the ladder's rows (with room for new ones), cadence, hop limit.
#[derive(Debug, Default)]
struct SlaForm {
    name: String,
    calendar: String,
    hop_limit: String,
    /// `(after, action)`; blank rows are left out when saved.
    steps: Vec<(String, String)>,
    recycle_after: String,
    warn_before: String,
}

/// The ids (and names) the team and SLA policy forms offer.
#[derive(Debug, Default)]
struct Choices {
    /// `(id, name)`.
    reps: Vec<(String, String)>,
    calendars: Vec<String>,
    sla_policies: Vec<String>,
    /// `(value, label)`: `team:<id>` or `pool:<id>`.
    overflows: Vec<(String, String)>,
    strategies: Vec<&'static str>,
    /// `(id, name)`, for a pool's member scope.
    teams: Vec<(String, String)>,
}

impl Choices {
    async fn load(app: &AppState, kind: &str) -> ApiResult<Choices> {
        let ids = |items: Vec<Value>| -> Vec<(String, String)> {
            items
                .iter()
                .map(|item| (text(&item["id"]), text(&item["name"])))
                .collect()
        };
        let mut choices = Choices::default();
        if matches!(kind, "teams" | "sla-policies") {
            choices.calendars = ids(list(app, "calendars").await?)
                .into_iter()
                .map(|(id, _)| id)
                .collect();
        }
        if matches!(kind, "pools" | "channels") {
            choices.teams = ids(list(app, "teams").await?);
        }
        if kind == "teams" {
            choices.reps = ids(list(app, "reps").await?);
            choices.sla_policies = ids(list(app, "sla-policies").await?)
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            let teams = ids(list(app, "teams").await?);
            let pools = ids(list(app, "pools").await?);
            choices.overflows = teams
                .into_iter()
                .map(|(id, name)| (format!("team:{id}"), name))
                .chain(
                    pools
                        .into_iter()
                        .map(|(id, name)| (format!("pool:{id}"), name)),
                )
                .collect();
            choices.strategies = TEAM_STRATEGIES.to_vec();
        }
        Ok(choices)
    }
}

const TEAM_STRATEGIES: [&str; 6] = [
    "round_robin",
    "weighted_round_robin",
    "least_loaded",
    "longest_idle",
    "fair_share",
    "best_match",
];

/// A team as form fields.
#[derive(Debug, Default)]
struct TeamForm {
    name: String,
    manager_id: String,
    /// Rep id → the weight inside this team (empty: the rep's own).
    members: std::collections::BTreeMap<String, String>,
    strategy: String,
    /// The whole strategy when it has settings the form does not show, kept while its type
    /// stays the one chosen.
    strategy_json: String,
    /// `team:<id>`, `pool:<id>` or empty.
    overflow: String,
    hours_policy: String,
    away_fallback: bool,
    calendar: String,
    sla_policy: String,
    leave_policy: String,
}

impl TeamForm {
    fn from_view(team: &Value) -> TeamForm {
        let strategy = &team["default_strategy"];
        TeamForm {
            name: text(&team["name"]),
            manager_id: text(&team["manager_id"]),
            members: team["members"]
                .as_array()
                .map(|members| {
                    members
                        .iter()
                        .map(|member| (text(&member["rep_id"]), text(&member["weight"])))
                        .collect()
                })
                .unwrap_or_default(),
            strategy: text(&strategy["type"]),
            strategy_json: strategy
                .as_object()
                .filter(|object| object.len() > 1)
                .map(|_| strategy.to_string())
                .unwrap_or_default(),
            overflow: match team["overflow"]
                .as_object()
                .and_then(|object| object.iter().next())
            {
                Some((kind, id)) => format!("{kind}:{}", text(id)),
                None => String::new(),
            },
            hours_policy: text(&team["hours_policy"]),
            away_fallback: team["away_fallback"] == Value::Bool(true),
            calendar: text(&team["calendar"]),
            sla_policy: text(&team["sla_policy"]),
            leave_policy: text(&team["leave_policy"]),
        }
    }

    fn is_member(&self, rep: &str) -> bool {
        self.members.contains_key(rep)
    }

    fn weight_of(&self, rep: &str) -> &str {
        self.members.get(rep).map_or("", String::as_str)
    }
}

/// The team document a team form makes. Members are the ticked reps (`member_<id>`), each with
/// its weight (`weight_<id>`, empty for the rep's own), in the order the reps are listed.
fn team_document(fields: &Fields, reps: &[(String, String)]) -> Map<String, Value> {
    let members: Vec<Value> = reps
        .iter()
        .filter(|(id, _)| fields.0.contains_key(&format!("member_{id}")))
        .map(|(id, _)| {
            let mut member = Map::new();
            member.insert("rep_id".into(), Value::String(id.clone()));
            let weight = fields.number(&format!("weight_{id}"));
            if !weight.is_null() {
                member.insert("weight".into(), weight);
            }
            Value::Object(member)
        })
        .collect();
    let strategy = fields.get("strategy");
    let kept = serde_json::from_str::<Value>(&fields.get("strategy_json"))
        .ok()
        .filter(|kept| kept["type"].as_str() == Some(strategy.as_str()));
    let mut document = Map::new();
    document.insert("name".into(), Value::String(fields.get("name")));
    document.insert("members".into(), Value::Array(members));
    document.insert("manager_id".into(), fields.optional("manager_id"));
    document.insert(
        "default_strategy".into(),
        kept.unwrap_or_else(|| serde_json::json!({"type": strategy})),
    );
    document.insert(
        "overflow".into(),
        match fields.get("overflow").split_once(':') {
            Some((kind, id)) => serde_json::json!({ kind: id }),
            None => Value::Null,
        },
    );
    document.insert("hours_policy".into(), fields.optional("hours_policy"));
    document.insert(
        "away_fallback".into(),
        Value::Bool(fields.0.contains_key("away_fallback")),
    );
    document.insert("calendar".into(), fields.optional("calendar"));
    document.insert("sla_policy".into(), fields.optional("sla_policy"));
    document.insert("leave_policy".into(), fields.optional("leave_policy"));
    document
}

/// A pool as form fields.
#[derive(Debug, Default)]
struct PoolForm {
    name: String,
    teams: Vec<String>,
    /// Rep ids, comma-separated.
    reps: String,
    claims_per_day: String,
    cooldown: String,
    touch_within: String,
    protect_initial: String,
    protect_extend: String,
    protect_max: String,
}

impl PoolForm {
    fn from_view(pool: &Value) -> PoolForm {
        PoolForm {
            name: text(&pool["name"]),
            teams: pool["teams"]
                .as_array()
                .map(|teams| teams.iter().map(text).collect())
                .unwrap_or_default(),
            reps: joined(&pool["reps"]),
            claims_per_day: text(&pool["claims_per_day"]),
            cooldown: text(&pool["cooldown"]),
            touch_within: text(&pool["touch_within"]),
            protect_initial: text(&pool["protection"]["initial"]),
            protect_extend: text(&pool["protection"]["extend"]),
            protect_max: text(&pool["protection"]["max"]),
        }
    }

    fn has_team(&self, team: &str) -> bool {
        self.teams.iter().any(|id| id == team)
    }
}

fn pool_document(fields: &Fields, teams: &[(String, String)]) -> Map<String, Value> {
    let mut document = Map::new();
    document.insert("name".into(), Value::String(fields.get("name")));
    document.insert(
        "teams".into(),
        Value::Array(
            teams
                .iter()
                .filter(|(id, _)| fields.0.contains_key(&format!("team_{id}")))
                .map(|(id, _)| Value::String(id.clone()))
                .collect(),
        ),
    );
    document.insert("reps".into(), Value::Array(fields.list("reps")));
    document.insert("claims_per_day".into(), fields.number("claims_per_day"));
    document.insert("cooldown".into(), fields.optional("cooldown"));
    document.insert("touch_within".into(), fields.optional("touch_within"));
    let initial = fields.get("protect_initial");
    document.insert(
        "protection".into(),
        if initial.is_empty() {
            Value::Null
        } else {
            serde_json::json!({
                "initial": initial,
                "extend": fields.optional("protect_extend"),
                "max": fields.optional("protect_max"),
            })
        },
    );
    document
}

/// A channel as form fields. The secret is write-only: the form shows whether one is set, and
/// an empty secret field leaves it as it is.
#[derive(Debug, Default)]
struct ChannelForm {
    name: String,
    kind: String,
    url: String,
    secret_set: bool,
    events: Vec<String>,
    teams: Vec<String>,
    language: String,
    enabled: bool,
    max_attempts: String,
    per_minute: String,
    smtp_host: String,
    smtp_port: String,
    smtp_security: String,
    smtp_username: String,
    smtp_from: String,
    sms_key_id: String,
    sms_sign_name: String,
    sms_template: String,
    sms_app_id: String,
    sms_region: String,
}

impl ChannelForm {
    fn from_view(channel: &Value) -> ChannelForm {
        let strings = |key: &str| -> Vec<String> {
            channel[key]
                .as_array()
                .map(|items| items.iter().map(text).collect())
                .unwrap_or_default()
        };
        let smtp = &channel["smtp"];
        let sms = &channel["sms"];
        ChannelForm {
            name: text(&channel["name"]),
            kind: text(&channel["kind"]),
            url: text(&channel["url"]),
            secret_set: channel["secret_set"] == Value::Bool(true),
            events: strings("events"),
            teams: strings("teams"),
            language: text(&channel["language"]),
            enabled: channel["enabled"] != Value::Bool(false),
            max_attempts: text(&channel["max_attempts"]),
            per_minute: text(&channel["per_minute"]),
            smtp_host: text(&smtp["host"]),
            smtp_port: text(&smtp["port"]),
            smtp_security: text(&smtp["security"]),
            smtp_username: text(&smtp["username"]),
            smtp_from: text(&smtp["from"]),
            sms_key_id: text(&sms["access_key_id"]),
            sms_sign_name: text(&sms["sign_name"]),
            sms_template: text(&sms["template"]),
            sms_app_id: text(&sms["app_id"]),
            sms_region: text(&sms["region"]),
        }
    }

    fn wants(&self, event: &str) -> bool {
        self.events.iter().any(|wanted| wanted == event)
    }

    fn has_team(&self, team: &str) -> bool {
        self.teams.iter().any(|id| id == team)
    }
}

fn channel_document(fields: &Fields, teams: &[(String, String)]) -> Map<String, Value> {
    let kind = fields.get("kind");
    let ticked = |prefix: &str, values: &mut dyn Iterator<Item = String>| -> Value {
        Value::Array(
            values
                .filter(|value| fields.0.contains_key(&format!("{prefix}{value}")))
                .map(Value::String)
                .collect(),
        )
    };
    let mut document = Map::new();
    document.insert("name".into(), Value::String(fields.get("name")));
    document.insert("kind".into(), Value::String(kind.clone()));
    document.insert(
        "url".into(),
        if kind == "email" {
            Value::Null
        } else {
            fields.optional("url")
        },
    );
    let secret = fields.get("secret");
    if !secret.is_empty() {
        document.insert("secret".into(), Value::String(secret));
    }
    document.insert(
        "events".into(),
        ticked(
            "event_",
            &mut crate::notify::channel::EVENTS
                .iter()
                .map(|event| (*event).to_owned()),
        ),
    );
    document.insert(
        "teams".into(),
        ticked("team_", &mut teams.iter().map(|(id, _)| id.clone())),
    );
    document.insert("language".into(), fields.optional("language"));
    document.insert(
        "enabled".into(),
        Value::Bool(fields.0.contains_key("enabled")),
    );
    document.insert("max_attempts".into(), fields.number("max_attempts"));
    document.insert("per_minute".into(), fields.number("per_minute"));
    let section = |keys: &[(&str, &str)], number: &[&str]| -> Value {
        let object: Map<String, Value> = keys
            .iter()
            .map(|(key, field)| {
                let value = if number.contains(key) {
                    fields.number(field)
                } else {
                    fields.optional(field)
                };
                ((*key).to_owned(), value)
            })
            .filter(|(_, value)| !value.is_null())
            .collect();
        Value::Object(object)
    };
    document.insert(
        "smtp".into(),
        if kind == "email" {
            section(
                &[
                    ("host", "smtp_host"),
                    ("port", "smtp_port"),
                    ("security", "smtp_security"),
                    ("username", "smtp_username"),
                    ("from", "smtp_from"),
                ],
                &["port"],
            )
        } else {
            Value::Null
        },
    );
    document.insert(
        "sms".into(),
        if kind.ends_with("_sms") {
            section(
                &[
                    ("access_key_id", "sms_key_id"),
                    ("sign_name", "sms_sign_name"),
                    ("template", "sms_template"),
                    ("app_id", "sms_app_id"),
                    ("region", "sms_region"),
                ],
                &[],
            )
        } else {
            Value::Null
        },
    );
    document
}

/// An intake source as form fields: a row per lead field with where its value comes from, a
/// fixed value, and a value map (`北京市=华北`, one per line).
#[derive(Debug, Default)]
struct SourceForm {
    name: String,
    auth: String,
    secret_set: bool,
    redirect_to: String,
    /// `(lead field, path, default, value map lines)`.
    rows: Vec<(String, String, String, String)>,
    /// Where to post, with the token for a web form.
    address: String,
}

impl SourceForm {
    fn from_view(source: &Value, id: &str, custom: &[String]) -> SourceForm {
        // Every lead field intake takes, the custom ones, and whatever the source already maps.
        let mut fields: Vec<String> = crate::leads::INPUT_FIELDS
            .iter()
            .filter(|field| **field != "attributes")
            .map(|field| (*field).to_owned())
            .chain(custom.iter().cloned())
            .collect();
        for object in [&source["mapping"], &source["defaults"], &source["values"]] {
            for key in object
                .as_object()
                .into_iter()
                .flat_map(|object| object.keys())
            {
                if !fields.contains(key) {
                    fields.push(key.clone());
                }
            }
        }
        let rows = fields
            .into_iter()
            .map(|field| {
                let values = source["values"][&field]
                    .as_object()
                    .map(|map| {
                        map.iter()
                            .map(|(from, to)| format!("{from}={}", text(to)))
                            .collect::<Vec<_>>()
                            .join("\n")
                    })
                    .unwrap_or_default();
                let default = match &source["defaults"][&field] {
                    Value::Array(_) => joined(&source["defaults"][&field]),
                    other => text(other),
                };
                (
                    field.clone(),
                    text(&source["mapping"][&field]),
                    default,
                    values,
                )
            })
            .collect();
        let token = text(&source["token"]);
        let address = if id.is_empty() {
            String::new()
        } else if token.is_empty() {
            format!("/api/v1/intake/{id}")
        } else {
            format!("/api/v1/intake/{id}?token={token}")
        };
        SourceForm {
            name: text(&source["name"]),
            auth: text(&source["auth"]),
            secret_set: source["secret_set"] == Value::Bool(true),
            redirect_to: text(&source["redirect_to"]),
            rows,
            address,
        }
    }
}

/// The intake source document a source form makes: a row with a path is mapped; a default
/// stands for the field when the delivery has none (numbers as numbers, tags as a list).
fn source_document(fields: &Fields) -> Map<String, Value> {
    let count: usize = fields.get("rows").parse().unwrap_or(0).min(200);
    let mut mapping = Map::new();
    let mut defaults = Map::new();
    let mut values = Map::new();
    for row in 0..count {
        let field = fields.get(&format!("f{row}_field"));
        if field.is_empty() {
            continue;
        }
        let path = fields.get(&format!("f{row}_path"));
        if !path.is_empty() {
            mapping.insert(field.clone(), Value::String(path));
        }
        let default = fields.get(&format!("f{row}_default"));
        if !default.is_empty() {
            let numeric = engine::field::LEAD_FIELDS
                .iter()
                .any(|(name, _, kind)| *name == field && *kind == engine::value::FieldType::Number);
            let value = if field == "tags" {
                Value::Array(fields.list(&format!("f{row}_default")))
            } else if numeric {
                fields.number(&format!("f{row}_default"))
            } else {
                Value::String(default)
            };
            defaults.insert(field.clone(), value);
        }
        let map: Map<String, Value> = fields
            .get(&format!("f{row}_values"))
            .lines()
            .filter_map(|line| {
                let (from, to) = line.split_once('=')?;
                Some((from.trim().to_owned(), Value::String(to.trim().to_owned())))
            })
            .filter(|(from, _)| !from.is_empty())
            .collect();
        if !map.is_empty() {
            values.insert(field, Value::Object(map));
        }
    }
    let mut document = Map::new();
    document.insert("name".into(), Value::String(fields.get("name")));
    document.insert("auth".into(), Value::String(fields.get("auth")));
    let secret = fields.get("secret");
    if !secret.is_empty() {
        document.insert("secret".into(), Value::String(secret));
    }
    document.insert("mapping".into(), Value::Object(mapping));
    document.insert("defaults".into(), Value::Object(defaults));
    document.insert("values".into(), Value::Object(values));
    document.insert("redirect_to".into(), fields.optional("redirect_to"));
    document
}

/// A table of what happened lately, newest first.
#[derive(Debug, Default)]
struct Recent {
    /// Title key.
    title: &'static str,
    /// Column title keys.
    columns: Vec<&'static str>,
    /// Cells, and the id of a dead-lettered delivery that may be retried.
    rows: Vec<(Vec<String>, Option<String>)>,
}

/// How many recent deliveries or receipts a page shows.
const RECENT: i64 = 50;

/// A channel's latest deliveries: when, event, status, attempts, next attempt, last error.
async fn channel_deliveries(app: &AppState, viewer: &Viewer, channel: &str) -> ApiResult<Recent> {
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
async fn source_receipts(app: &AppState, viewer: &Viewer, source: &str) -> ApiResult<Recent> {
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

/// Blank ladder rows offered below the policy's own.
const SPARE_STEPS: usize = 2;
/// `(action, label key)`.
const SLA_ACTIONS: [(&str, &str); 4] = [
    ("remind", "remind"),
    ("escalate", "escalate"),
    ("reclaim", "reclaim"),
    ("pool", "to_pool"),
];

impl SlaForm {
    fn from_view(policy: &Value) -> SlaForm {
        let mut steps: Vec<(String, String)> = policy["steps"]
            .as_array()
            .map(|steps| {
                steps
                    .iter()
                    .map(|step| (text(&step["after"]), text(&step["action"])))
                    .collect()
            })
            .unwrap_or_default();
        steps.extend((0..SPARE_STEPS).map(|_| (String::new(), String::new())));
        SlaForm {
            name: text(&policy["name"]),
            calendar: text(&policy["calendar"]),
            hop_limit: text(&policy["hop_limit"]),
            steps,
            recycle_after: text(&policy["cadence"]["recycle_after"]),
            warn_before: text(&policy["cadence"]["warn_before"]),
        }
    }
}

/// A form's fields, trimmed.
struct Fields<'a>(&'a std::collections::HashMap<String, String>);

impl Fields<'_> {
    fn get(&self, key: &str) -> String {
        self.0
            .get(key)
            .map(|value| value.trim().to_owned())
            .unwrap_or_default()
    }

    /// A comma-separated list (ASCII or full-width commas).
    fn list(&self, key: &str) -> Vec<Value> {
        self.get(key)
            .split([',', '，'])
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| Value::String(item.to_owned()))
            .collect()
    }

    /// A number, or the text as written for the API to refuse by name; empty is null.
    fn number(&self, key: &str) -> Value {
        let text = self.get(key);
        if text.is_empty() {
            return Value::Null;
        }
        text.parse::<i64>()
            .map(Value::from)
            .or_else(|_| text.parse::<f64>().map(Value::from))
            .unwrap_or(Value::String(text))
    }

    fn optional(&self, key: &str) -> Value {
        let value = self.get(key);
        if value.is_empty() {
            Value::Null
        } else {
            Value::String(value)
        }
    }

    /// Hours per weekday from `hours_mon` … `hours_sun`; days left empty are closed.
    fn week(&self) -> Map<String, Value> {
        DAYS.iter()
            .filter_map(|day| {
                let ranges = self.list(&format!("hours_{day}"));
                (!ranges.is_empty()).then(|| ((*day).to_owned(), Value::Array(ranges)))
            })
            .collect()
    }
}

/// Dates written one per line or separated by commas or spaces; `2026-10-01..2026-10-08` stands
/// for every day from the first to the second (a holiday week is one line). A range that does
/// not parse is kept as written, so the API names it in its error.
fn dates(text: &str) -> Vec<Value> {
    let mut days = Vec::new();
    for item in text
        .split(|c: char| c == ',' || c == '，' || c.is_whitespace())
        .filter(|item| !item.is_empty())
    {
        let range = item.split_once("..").and_then(|(from, until)| {
            let from: chrono::NaiveDate = from.parse().ok()?;
            let until: chrono::NaiveDate = until.parse().ok()?;
            // A year at most: a typo in the year should not write ten thousand days.
            (from <= until && (until - from).num_days() <= 366).then_some((from, until))
        });
        match range {
            Some((from, until)) => days.extend(
                from.iter_days()
                    .take_while(|day| *day <= until)
                    .map(|day| Value::String(day.to_string())),
            ),
            None => days.push(Value::String(item.to_owned())),
        }
    }
    days
}

fn calendar_document(fields: &Fields) -> Map<String, Value> {
    let mut document = Map::new();
    document.insert("name".into(), Value::String(fields.get("name")));
    document.insert("time_zone".into(), Value::String(fields.get("time_zone")));
    document.insert("hours".into(), Value::Object(fields.week()));
    document.insert(
        "holidays".into(),
        Value::Array(dates(&fields.get("holidays"))),
    );
    document.insert(
        "makeup_days".into(),
        Value::Array(dates(&fields.get("makeup_days"))),
    );
    let makeup_hours = fields.list("makeup_hours");
    document.insert(
        "makeup_hours".into(),
        if makeup_hours.is_empty() {
            Value::Null
        } else {
            Value::Array(makeup_hours)
        },
    );
    document
}

fn sla_document(fields: &Fields) -> Map<String, Value> {
    let steps: Vec<Value> = (0..)
        .map_while(|row| {
            let after = fields.0.get(&format!("step_after_{row}"))?;
            let action = fields.get(&format!("step_action_{row}"));
            Some((after.trim().to_owned(), action))
        })
        .filter(|(after, _)| !after.is_empty())
        .map(|(after, action)| serde_json::json!({"after": after, "action": action}))
        .collect();
    let mut document = Map::new();
    document.insert("name".into(), Value::String(fields.get("name")));
    document.insert("calendar".into(), fields.optional("calendar"));
    document.insert("steps".into(), Value::Array(steps));
    document.insert("hop_limit".into(), fields.number("hop_limit"));
    let recycle_after = fields.get("recycle_after");
    document.insert(
        "cadence".into(),
        if recycle_after.is_empty() {
            Value::Null
        } else {
            serde_json::json!({
                "recycle_after": recycle_after,
                "warn_before": fields.optional("warn_before"),
            })
        },
    );
    document
}

#[derive(Debug, Deserialize)]
pub struct AdminQuery {
    id: Option<String>,
    notice: Option<String>,
}

/// The list of one kind and its editor (a new document, or `?id=` an existing one).
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
        let mut all = list(&app, name).await?;
        in_reach(&app, &viewer, name, &mut all).await?;
        let items = all
            .iter()
            .map(|item| {
                (
                    item["id"].as_str().unwrap_or_default().to_owned(),
                    item["name"].as_str().unwrap_or_default().to_owned(),
                )
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
        let rep = found.filter(|_| name == "reps").map(RepForm::from_view);
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
        let choices = Choices::load(&app, name).await?;
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
            frame: viewer.frame(
                viewer.t.t("admin"),
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
                return back(&page, Ok(()));
            };
            let outcome = crate::api::reps::patch_rep(
                State(app.clone()),
                Extension(viewer.caller.clone()),
                Path(id.clone()),
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
            let choices = match Choices::load(&app, name).await {
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

#[derive(Template)]
#[template(path = "accounts.html")]
struct AccountsPage {
    frame: Frame,
    users: Vec<Value>,
    keys: Vec<Value>,
    new_key: String,
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
        let users = crate::api::accounts::list_users(State(app.clone()))
            .await?
            .0;
        let keys = crate::api::accounts::list_keys(State(app.clone())).await?.0;
        Ok(AccountsPage {
            frame: viewer.frame(
                viewer.t.t("accounts"),
                "admin",
                notice_text(&viewer.t, notice),
            ),
            users: users["items"].as_array().cloned().unwrap_or_default(),
            keys: keys["items"].as_array().cloned().unwrap_or_default(),
            new_key,
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
                teams: get("teams")
                    .split(',')
                    .map(str::trim)
                    .filter(|team| !team.is_empty())
                    .map(str::to_owned)
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
            crate::api::accounts::patch_user(state(), caller(), Path(get("id")), Body(patch))
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
    let listed = match crate::api::fields::list_fields(State(app.clone())).await {
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

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    frame: Frame,
    /// `(when, who, what, on, change)`.
    rows: Vec<(String, String, String, String, String)>,
    /// The cursor of the next, older page.
    older: Option<String>,
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
    render(AuditPage {
        frame: viewer.frame(viewer.t.t("audit"), "admin", String::new()),
        rows: rows
            .into_iter()
            .map(|row| {
                let on = match row.target_id {
                    Some(id) => format!("{} {id}", row.target_kind),
                    None => row.target_kind,
                };
                let detail = if row.detail == "{}" {
                    String::new()
                } else {
                    row.detail
                };
                (viewer.local(row.at), row.actor, row.action, on, detail)
            })
            .collect(),
        older,
    })
}
