//! The settings forms: a rep's everyday fields, teams, calendars, SLA policies, pools, channels
//! and intake sources as form fields, each read from the document the API shows and turned back
//! into the document (or merge patch) the API takes. What a form cannot show stays in the
//! document and so is never lost.

use serde_json::{Map, Value};

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;

use super::admin::list;

/// A rep's everyday settings as form fields.
#[derive(Debug, Default)]
pub(super) struct RepForm {
    pub(super) name: String,
    pub(super) status: String,
    pub(super) weight: String,
    pub(super) regions: String,
    pub(super) industries: String,
    pub(super) caps: Vec<(&'static str, String)>,
    pub(super) time_zone: String,
    /// `(day, "09:00-12:00, 13:00-18:00")`.
    pub(super) hours: Vec<(&'static str, String)>,
    /// One `YYYY-MM-DD..YYYY-MM-DD` per line.
    pub(super) leaves: String,
    pub(super) email: String,
    pub(super) mobile: String,
}

pub(super) const CAPS: [&str; 6] = [
    "max_open",
    "max_per_day",
    "max_per_week",
    "max_per_month",
    "min_per_week",
    "min_per_month",
];
pub(super) const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
pub(super) const STATUSES: [&str; 4] = ["active", "paused", "on_leave", "inactive"];

pub(super) fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub(super) fn joined(value: &Value) -> String {
    value
        .as_array()
        .map(|items| items.iter().map(text).collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}

impl RepForm {
    pub(super) fn from_view(rep: &Value) -> RepForm {
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
pub(super) fn rep_patch(fields: &Fields) -> Map<String, Value> {
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
pub(super) struct CalendarForm {
    pub(super) name: String,
    pub(super) time_zone: String,
    pub(super) hours: Vec<(&'static str, String)>,
    pub(super) holidays: String,
    pub(super) makeup_days: String,
    pub(super) makeup_hours: String,
}

impl CalendarForm {
    pub(super) fn from_view(calendar: &Value) -> CalendarForm {
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
pub(super) struct SlaForm {
    pub(super) name: String,
    pub(super) calendar: String,
    pub(super) hop_limit: String,
    /// `(after, action)`; blank rows are left out when saved.
    pub(super) steps: Vec<(String, String)>,
    pub(super) recycle_after: String,
    pub(super) warn_before: String,
}

/// The ids (and names) the team and SLA policy forms offer.
#[derive(Debug, Default)]
pub(super) struct Choices {
    /// `(id, name)`.
    pub(super) reps: Vec<(String, String)>,
    pub(super) calendars: Vec<String>,
    pub(super) sla_policies: Vec<String>,
    /// `(value, label)`: `team:<id>` or `pool:<id>`.
    pub(super) overflows: Vec<(String, String)>,
    pub(super) strategies: Vec<&'static str>,
    /// `(id, name)`, for a pool's member scope.
    pub(super) teams: Vec<(String, String)>,
}

impl Choices {
    pub(super) async fn load(app: &AppState, caller: &Caller, kind: &str) -> ApiResult<Choices> {
        let ids = |items: Vec<Value>| -> Vec<(String, String)> {
            items
                .iter()
                .map(|item| (text(&item["id"]), text(&item["name"])))
                .collect()
        };
        let mut choices = Choices::default();
        if matches!(kind, "teams" | "sla-policies") {
            choices.calendars = ids(list(app, caller, "calendars").await?)
                .into_iter()
                .map(|(id, _)| id)
                .collect();
        }
        if matches!(kind, "pools" | "channels") {
            choices.teams = ids(list(app, caller, "teams").await?);
        }
        if kind == "teams" {
            choices.reps = ids(list(app, caller, "reps").await?);
            choices.sla_policies = ids(list(app, caller, "sla-policies").await?)
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            let teams = ids(list(app, caller, "teams").await?);
            let pools = ids(list(app, caller, "pools").await?);
            choices.overflows = teams
                .into_iter()
                .map(|(id, name)| (format!("team:{id}"), name))
                .chain(
                    pools
                        .into_iter()
                        .map(|(id, name)| (format!("pool:{id}"), name)),
                )
                .collect();
            // A team always has a strategy: the rule editor's list without "the team's".
            choices.strategies = super::rules::STRATEGIES[1..].to_vec();
        }
        Ok(choices)
    }
}

/// A team as form fields.
#[derive(Debug, Default)]
pub(super) struct TeamForm {
    pub(super) name: String,
    pub(super) manager_id: String,
    /// Rep id → the weight inside this team (empty: the rep's own).
    pub(super) members: std::collections::BTreeMap<String, String>,
    pub(super) strategy: String,
    /// The whole strategy when it has settings the form does not show, kept while its type
    /// stays the one chosen.
    pub(super) strategy_json: String,
    /// `team:<id>`, `pool:<id>` or empty.
    pub(super) overflow: String,
    pub(super) hours_policy: String,
    pub(super) away_fallback: bool,
    pub(super) calendar: String,
    pub(super) sla_policy: String,
    pub(super) leave_policy: String,
    pub(super) batch_policy: String,
}

impl TeamForm {
    pub(super) fn from_view(team: &Value) -> TeamForm {
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
            batch_policy: text(&team["batch_policy"]),
        }
    }

    pub(super) fn is_member(&self, rep: &str) -> bool {
        self.members.contains_key(rep)
    }

    pub(super) fn weight_of(&self, rep: &str) -> &str {
        self.members.get(rep).map_or("", String::as_str)
    }
}

/// The team document a team form makes. Members are the ticked reps (`member_<id>`), each with
/// its weight (`weight_<id>`, empty for the rep's own), in the order the reps are listed.
pub(super) fn team_document(fields: &Fields, reps: &[(String, String)]) -> Map<String, Value> {
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
    document.insert("batch_policy".into(), fields.optional("batch_policy"));
    document
}

/// A pool as form fields.
#[derive(Debug, Default)]
pub(super) struct PoolForm {
    pub(super) name: String,
    pub(super) teams: Vec<String>,
    /// Rep ids, comma-separated.
    pub(super) reps: String,
    pub(super) claims_per_day: String,
    pub(super) cooldown: String,
    pub(super) touch_within: String,
    pub(super) protect_initial: String,
    pub(super) protect_extend: String,
    pub(super) protect_max: String,
}

impl PoolForm {
    pub(super) fn from_view(pool: &Value) -> PoolForm {
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

    pub(super) fn has_team(&self, team: &str) -> bool {
        self.teams.iter().any(|id| id == team)
    }
}

pub(super) fn pool_document(fields: &Fields, teams: &[(String, String)]) -> Map<String, Value> {
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
pub(super) struct ChannelForm {
    pub(super) name: String,
    pub(super) kind: String,
    pub(super) url: String,
    pub(super) secret_set: bool,
    pub(super) events: Vec<String>,
    pub(super) teams: Vec<String>,
    pub(super) language: String,
    pub(super) enabled: bool,
    pub(super) max_attempts: String,
    pub(super) per_minute: String,
    pub(super) smtp_host: String,
    pub(super) smtp_port: String,
    pub(super) smtp_security: String,
    pub(super) smtp_username: String,
    pub(super) smtp_from: String,
    pub(super) sms_key_id: String,
    pub(super) sms_sign_name: String,
    pub(super) sms_template: String,
    pub(super) sms_app_id: String,
    pub(super) sms_region: String,
    pub(super) app_id: String,
    pub(super) agent_id: String,
    pub(super) id_type: String,
    pub(super) token_set: bool,
    /// The CRM settings as JSON, for connectors.
    pub(super) crm: String,
    /// Why the platform refused the credentials, when it did.
    pub(super) attention: String,
    /// The team digest: `day`, `week` or empty (off), its time and weekday.
    pub(super) digest_every: String,
    pub(super) digest_at: String,
    pub(super) digest_weekday: String,
}

impl ChannelForm {
    pub(super) fn from_view(channel: &Value) -> ChannelForm {
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
            app_id: text(&channel["app_id"]),
            agent_id: text(&channel["agent_id"]),
            id_type: text(&channel["id_type"]),
            token_set: channel["token_set"] == Value::Bool(true),
            crm: if channel["crm"].is_object() {
                serde_json::to_string_pretty(&channel["crm"]).unwrap_or_default()
            } else {
                String::new()
            },
            attention: text(&channel["needs_attention"]["reason"]),
            digest_every: text(&channel["digest"]["every"]),
            digest_at: text(&channel["digest"]["at"]),
            digest_weekday: text(&channel["digest"]["weekday"]),
        }
    }

    pub(super) fn wants(&self, event: &str) -> bool {
        self.events.iter().any(|wanted| wanted == event)
    }

    pub(super) fn has_team(&self, team: &str) -> bool {
        self.teams.iter().any(|id| id == team)
    }
}

pub(super) fn channel_document(fields: &Fields, teams: &[(String, String)]) -> Map<String, Value> {
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
    let token = fields.get("token");
    if !token.is_empty() {
        document.insert("token".into(), Value::String(token));
    }
    for field in ["app_id", "agent_id", "id_type"] {
        document.insert(field.into(), fields.optional(field));
    }
    let crm = fields.get("crm");
    document.insert(
        "crm".into(),
        if crm.trim().is_empty() {
            Value::Null
        } else {
            // Not JSON: sent as text, so the API names the field that is wrong.
            serde_json::from_str(&crm).unwrap_or(Value::String(crm))
        },
    );
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
    let every = fields.get("digest_every");
    document.insert(
        "digest".into(),
        if every.is_empty() {
            Value::Null
        } else {
            let mut digest = Map::new();
            digest.insert("every".into(), Value::String(every.clone()));
            digest.insert("at".into(), Value::String(fields.get("digest_at")));
            if every == "week" {
                digest.insert("weekday".into(), fields.optional("digest_weekday"));
            }
            Value::Object(digest)
        },
    );
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
pub(super) struct SourceForm {
    pub(super) name: String,
    pub(super) preset: String,
    pub(super) auth: String,
    pub(super) secret_set: bool,
    pub(super) verify_token: String,
    pub(super) access_token_set: bool,
    pub(super) graph_url: String,
    pub(super) redirect_to: String,
    /// `(lead field, path, default, value map lines)`.
    pub(super) rows: Vec<(String, String, String, String)>,
    /// Where to post, with the token for a web form.
    pub(super) address: String,
}

impl SourceForm {
    pub(super) fn from_view(source: &Value, id: &str, custom: &[String]) -> SourceForm {
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
            preset: text(&source["preset"]),
            auth: text(&source["auth"]),
            secret_set: source["secret_set"] == Value::Bool(true),
            verify_token: text(&source["verify_token"]),
            access_token_set: source["access_token_set"] == Value::Bool(true),
            graph_url: text(&source["graph_url"]),
            redirect_to: text(&source["redirect_to"]),
            rows,
            address,
        }
    }
}

/// The intake source document a source form makes: a row with a path is mapped; a default
/// stands for the field when the delivery has none (numbers as numbers, tags as a list).
pub(super) fn source_document(fields: &Fields) -> Map<String, Value> {
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
    // A preset decides how deliveries are checked.
    let preset = fields.optional("preset");
    let auth = if preset.is_null() {
        fields.get("auth")
    } else {
        String::new()
    };
    document.insert("preset".into(), preset);
    document.insert("auth".into(), Value::String(auth));
    for field in ["secret", "access_token"] {
        let secret = fields.get(field);
        if !secret.is_empty() {
            document.insert(field.into(), Value::String(secret));
        }
    }
    document.insert("verify_token".into(), fields.optional("verify_token"));
    document.insert("graph_url".into(), fields.optional("graph_url"));
    document.insert("mapping".into(), Value::Object(mapping));
    document.insert("defaults".into(), Value::Object(defaults));
    document.insert("values".into(), Value::Object(values));
    document.insert("redirect_to".into(), fields.optional("redirect_to"));
    document
}

/// Blank ladder rows offered below the policy's own.
pub(super) const SPARE_STEPS: usize = 2;
/// `(action, label key)`.
pub(super) const SLA_ACTIONS: [(&str, &str); 4] = [
    ("remind", "remind"),
    ("escalate", "escalate"),
    ("reclaim", "reclaim"),
    ("pool", "to_pool"),
];

impl SlaForm {
    pub(super) fn from_view(policy: &Value) -> SlaForm {
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
pub(super) struct Fields<'a>(pub(super) &'a std::collections::HashMap<String, String>);

impl Fields<'_> {
    pub(super) fn get(&self, key: &str) -> String {
        self.0
            .get(key)
            .map(|value| value.trim().to_owned())
            .unwrap_or_default()
    }

    /// A comma-separated list (ASCII or full-width commas).
    pub(super) fn list(&self, key: &str) -> Vec<Value> {
        self.get(key)
            .split([',', '，'])
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| Value::String(item.to_owned()))
            .collect()
    }

    /// A number, or the text as written for the API to refuse by name; empty is null.
    pub(super) fn number(&self, key: &str) -> Value {
        let text = self.get(key);
        if text.is_empty() {
            return Value::Null;
        }
        text.parse::<i64>()
            .map(Value::from)
            .or_else(|_| text.parse::<f64>().map(Value::from))
            .unwrap_or(Value::String(text))
    }

    pub(super) fn optional(&self, key: &str) -> Value {
        let value = self.get(key);
        if value.is_empty() {
            Value::Null
        } else {
            Value::String(value)
        }
    }

    /// Hours per weekday from `hours_mon` … `hours_sun`; days left empty are closed.
    pub(super) fn week(&self) -> Map<String, Value> {
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
pub(super) fn dates(text: &str) -> Vec<Value> {
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

pub(super) fn calendar_document(fields: &Fields) -> Map<String, Value> {
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

pub(super) fn sla_document(fields: &Fields) -> Map<String, Value> {
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
