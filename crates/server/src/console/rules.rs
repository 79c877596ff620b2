//! The rule editor: ordered rules moved up and down, a condition builder (an all / any group of
//! field–operator–value rows, or its negation), target and strategy, requirements, tagging and
//! scoring; validation messages at the row they concern; a dry run on a sample lead; a diff
//! against the active version; publishing with a confirmation, and rolling back to an earlier
//! version. Everything works as plain forms; the server keeps the draft in the form itself.

use std::collections::HashMap;

use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use engine::spec::{ConditionSpec, FallbackSpec, RuleSpec, StrategySpec, TargetSpec, WindowSpec};
use engine::{CompileError, RuleSetSpec};
use serde::Deserialize;
use serde_json::{Value, json};

use super::rule_changes::{self, Change, Names};
use super::{Frame, Viewer, back, notice_text, posted, render, viewer};
use crate::AppState;
use crate::auth::Role;
use crate::error::ApiError;
use crate::extract::Body;

/// The operators a condition row may use.
const OPS: [&str; 17] = [
    "equals",
    "not_equals",
    "in",
    "not_in",
    "contains",
    "not_contains",
    "contains_any",
    "starts_with",
    "ends_with",
    "matches",
    "gt",
    "gte",
    "lt",
    "lte",
    "between",
    "exists",
    "missing",
];

pub(super) const STRATEGIES: [&str; 7] = [
    "",
    "round_robin",
    "weighted_round_robin",
    "least_loaded",
    "longest_idle",
    "fair_share",
    "best_match",
];

/// One condition row as the form shows it.
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub field: String,
    pub op: String,
    /// The value; in a rep row, the lead field compared with (empty: `literal` instead).
    pub value: String,
    /// In a rep row: a value of its own, such as `3` for `rep.level gte`.
    pub literal: String,
    pub error: String,
}

/// A group of rows inside a rule's condition: all or any of them, optionally negated.
#[derive(Debug, Clone, Default)]
pub struct Group {
    /// `all` or `any`.
    pub group: String,
    pub negate: bool,
    pub rows: Vec<Row>,
}

/// One rule as the form shows it.
#[derive(Debug, Clone, Default)]
pub struct RuleForm {
    pub id: String,
    pub name: String,
    /// `all` or `any`.
    pub group: String,
    pub negate: bool,
    pub rows: Vec<Row>,
    /// Groups beside the rows, one level deep: `region = 华东 and (size > 1000 or VIP)`.
    pub subgroups: Vec<Group>,
    /// A condition the builder cannot show (groups in groups), kept as JSON.
    pub when_json: String,
    /// `team:<id>` or `pool:<id>`.
    pub target: String,
    pub strategy: String,
    /// The whole strategy when it has settings the form does not show (a fair-share window, a
    /// best-match weighting), kept while its type stays the one chosen.
    pub strategy_json: String,
    pub affinity: bool,
    /// Rep conditions every candidate must meet: `rep field`, `op`, lead field (`ref`).
    pub requires: Vec<Row>,
    /// Rep conditions tried first, dropped from the last one until someone is eligible.
    pub prefers: Vec<Row>,
    /// The window: weekdays ticked (`mon`…), hours `HH:MM-HH:MM`, first and last day, zone.
    pub days: Vec<String>,
    pub window_hours: String,
    pub window_from: String,
    pub window_until: String,
    pub window_zone: String,
    /// `in_hours`, `any_time`, or empty for the team's policy.
    pub hours: String,
    /// Fallback steps in order: `next_rule`, `overflow`, `hold`, `team:<id>`, `pool:<id>`, or
    /// `json:<step>` for one the form cannot show; the form adds an empty slot to fill.
    pub fallback: Vec<String>,
    pub sla_policy: String,
    /// Anything else about the rule, as JSON; fields set in the form win over it.
    pub rest: String,
    pub error: String,
}

fn value_text(value: &Option<Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", "),
        Some(other) => other.to_string(),
    }
}

fn row_of(condition: &ConditionSpec) -> Option<Row> {
    Some(Row {
        field: condition.field.clone()?,
        op: condition.op.clone()?,
        value: value_text(&condition.value),
        ..Row::default()
    })
}

/// A condition the builder shows as a group: all / any of rows, possibly negated; a negated
/// single row is a negated group of one.
fn group_of(condition: &ConditionSpec) -> Option<Group> {
    let (negate, inner) = match &condition.not {
        Some(inner) => (true, inner.as_ref()),
        None => (false, condition),
    };
    let (group, children) = match (&inner.all, &inner.any) {
        (Some(children), _) => ("all", children),
        (None, Some(children)) => ("any", children),
        _ if negate => {
            return Some(Group {
                group: "all".into(),
                negate,
                rows: vec![row_of(inner)?],
            });
        }
        _ => return None,
    };
    Some(Group {
        group: group.into(),
        negate,
        rows: children.iter().map(row_of).collect::<Option<Vec<_>>>()?,
    })
}

/// A rep row: compared with a lead field (`ref`) or with a value of its own.
fn rep_row_of(condition: &ConditionSpec) -> Option<Row> {
    Some(Row {
        field: condition.field.clone()?,
        op: condition.op.clone()?,
        value: condition.reference.clone().unwrap_or_default(),
        literal: value_text(&condition.value),
        error: String::new(),
    })
}

impl RuleForm {
    /// Whether the rule sets a window, an hours policy or an SLA policy (the form shows them open).
    pub fn has_timing(&self) -> bool {
        self.has_window() || !(self.hours.is_empty() && self.sla_policy.is_empty())
    }

    fn has_window(&self) -> bool {
        !(self.days.is_empty()
            && self.window_hours.is_empty()
            && self.window_from.is_empty()
            && self.window_until.is_empty()
            && self.window_zone.is_empty())
    }

    pub fn has_day(&self, day: &str) -> bool {
        self.days.iter().any(|ticked| ticked == day)
    }

    fn from_spec(rule: &RuleSpec) -> RuleForm {
        let strategy = rule
            .strategy
            .as_ref()
            .and_then(|strategy| serde_json::to_value(strategy).ok());
        let mut form = RuleForm {
            id: rule.id.clone(),
            name: rule.name.clone().unwrap_or_default(),
            group: "all".into(),
            affinity: rule.owner_affinity,
            strategy: strategy
                .as_ref()
                .and_then(|value| value.get("type")?.as_str().map(str::to_owned))
                .unwrap_or_default(),
            strategy_json: strategy
                .as_ref()
                .filter(|value| value.as_object().is_some_and(|object| object.len() > 1))
                .map(Value::to_string)
                .unwrap_or_default(),
            target: match &rule.target {
                TargetSpec::Team(team) => format!("team:{team}"),
                TargetSpec::Teams(teams) if teams.len() == 1 => format!("team:{}", teams[0]),
                TargetSpec::Pool(pool) => format!("pool:{pool}"),
                other => format!("json:{}", serde_json::to_string(other).unwrap_or_default()),
            },
            requires: rule.requires.iter().filter_map(rep_row_of).collect(),
            prefers: rule.prefers.iter().filter_map(rep_row_of).collect(),
            ..RuleForm::default()
        };
        // The builder shows one group of rows, possibly negated; anything deeper stays JSON.
        let (negate, inner) = match &rule.when {
            Some(ConditionSpec {
                not: Some(inner), ..
            }) => (true, Some(inner.as_ref())),
            other => (false, other.as_ref()),
        };
        form.negate = negate;
        match inner {
            None => {}
            Some(condition) => {
                let (group, children) = match (&condition.all, &condition.any) {
                    (Some(children), _) => ("all", Some(children)),
                    (None, Some(children)) => ("any", Some(children)),
                    _ => ("all", None),
                };
                // Rows, and groups of rows beside them; anything deeper is JSON.
                let parts: Option<(Vec<Row>, Vec<Group>)> = match children {
                    Some(children) => {
                        let mut rows = Vec::new();
                        let mut groups = Vec::new();
                        children
                            .iter()
                            .all(|child| match row_of(child) {
                                Some(row) => {
                                    rows.push(row);
                                    true
                                }
                                None => group_of(child).map(|group| groups.push(group)).is_some(),
                            })
                            .then_some((rows, groups))
                    }
                    None => row_of(condition).map(|row| (vec![row], Vec::new())),
                };
                match parts {
                    Some((rows, groups)) => {
                        form.group = group.into();
                        form.rows = rows;
                        form.subgroups = groups;
                    }
                    None => {
                        form.negate = false;
                        form.when_json = serde_json::to_string(&rule.when).unwrap_or_default();
                    }
                }
            }
        }
        if let Some(window) = &rule.window {
            form.days = window.weekdays.clone();
            form.window_hours = window.hours.clone().unwrap_or_default();
            form.window_from = window.from.clone().unwrap_or_default();
            form.window_until = window.until.clone().unwrap_or_default();
            form.window_zone = window.time_zone.clone().unwrap_or_default();
        }
        form.hours = rule.hours.clone().unwrap_or_default();
        form.fallback = rule.fallback.iter().map(fallback_text).collect();
        form.sla_policy = rule.sla_policy.clone().unwrap_or_default();
        let mut rest = serde_json::to_value(rule).unwrap_or_else(|_| json!({}));
        if let Some(object) = rest.as_object_mut() {
            for key in [
                "id",
                "name",
                "when",
                "target",
                "strategy",
                "owner_affinity",
                "requires",
                "prefers",
                "window",
                "hours",
                "fallback",
                "sla_policy",
            ] {
                object.remove(key);
            }
            object.retain(|_, value| {
                !(value.is_null() || value == &json!([]) || value == &json!(false))
            });
        }
        form.rest = if rest.as_object().is_some_and(|object| object.is_empty()) {
            String::new()
        } else {
            rest.to_string()
        };
        form
    }
}

/// A fallback step as the form's choice names it.
fn fallback_text(step: &FallbackSpec) -> String {
    match step {
        FallbackSpec::NextRule => "next_rule".into(),
        FallbackSpec::Overflow => "overflow".into(),
        FallbackSpec::Hold => "hold".into(),
        FallbackSpec::Team(team) => format!("team:{team}"),
        FallbackSpec::Pool(pool) => format!("pool:{pool}"),
        other => format!("json:{}", serde_json::to_string(other).unwrap_or_default()),
    }
}

/// A fallback step from the form's choice; `None` for an empty slot.
fn fallback_step(text: &str) -> Result<Option<FallbackSpec>, String> {
    Ok(Some(match text.split_once(':') {
        _ if text.is_empty() => return Ok(None),
        None if text == "next_rule" => FallbackSpec::NextRule,
        None if text == "overflow" => FallbackSpec::Overflow,
        None if text == "hold" => FallbackSpec::Hold,
        Some(("team", team)) => FallbackSpec::Team(team.to_owned()),
        Some(("pool", pool)) => FallbackSpec::Pool(pool.to_owned()),
        Some(("json", json)) => serde_json::from_str(json).map_err(|error| error.to_string())?,
        _ => return Err(format!("unknown fallback step {text:?}")),
    }))
}

/// `all` (or `any`) of the children, negated when asked; "not all of one row" is `not` of the
/// row, as people write it.
fn grouped(group: &str, negate: bool, mut children: Vec<ConditionSpec>) -> ConditionSpec {
    if negate && group == "all" && children.len() == 1 {
        return ConditionSpec {
            not: children.pop().map(Box::new),
            ..ConditionSpec::default()
        };
    }
    let group = if group == "any" {
        ConditionSpec {
            any: Some(children),
            ..ConditionSpec::default()
        }
    } else {
        ConditionSpec {
            all: Some(children),
            ..ConditionSpec::default()
        }
    };
    if negate {
        ConditionSpec {
            not: Some(Box::new(group)),
            ..ConditionSpec::default()
        }
    } else {
        group
    }
}

/// Parses a row's value as the operator and field type want it.
fn parse_value(op: &str, number: bool, text: &str) -> Option<Value> {
    let text = text.trim();
    let item = |part: &str| -> Value {
        let part = part.trim();
        match (number, part.parse::<i64>(), part.parse::<f64>()) {
            (true, Ok(value), _) => json!(value),
            (true, _, Ok(value)) => json!(value),
            _ => json!(part),
        }
    };
    match op {
        "exists" | "missing" => None,
        "in" | "not_in" | "contains_any" | "between" => Some(Value::Array(
            text.split([',', '，'])
                .filter(|part| !part.trim().is_empty())
                .map(item)
                .collect(),
        )),
        _ => Some(item(text)),
    }
}

/// Whether a field holds numbers: a built-in lead or rep field, or a custom one in `custom`.
fn number_field(name: &str, custom: &[String]) -> bool {
    use engine::value::FieldType::Number;
    let rep = name.strip_prefix("rep.");
    engine::field::LEAD_FIELDS
        .iter()
        .any(|(field, _, kind)| *field == name && *kind == Number)
        || engine::field::REP_FIELDS
            .iter()
            .any(|(field, _, kind)| rep == Some(*field) && *kind == Number)
        || custom.iter().any(|field| field == name)
}

/// The workspace's custom number fields as conditions name them: `attributes.x`,
/// `rep.attributes.x`.
async fn custom_numbers(app: &AppState) -> Vec<String> {
    let custom = app.store.list_custom_fields().await.unwrap_or_default();
    custom
        .iter()
        .filter(|row| row.field_type == "number")
        .map(|row| match row.entity.as_str() {
            "rep" => format!("rep.attributes.{}", row.name),
            _ => format!("attributes.{}", row.name),
        })
        .collect()
}

/// The editor's state, read back from its form.
#[derive(Debug, Default, Clone)]
struct Draft {
    name: String,
    rules: Vec<RuleForm>,
    /// Tagging rules, each one condition row and the tags it adds.
    tags: Vec<Line>,
    /// Scoring rules, each one condition row and its points.
    scores: Vec<Line>,
    /// The score every lead starts from.
    base: String,
    /// Score tiers: `80 urgent, 60 high`.
    tiers: String,
    /// The custom fields that hold numbers (not part of the form): their values are numbers.
    numbers: Vec<String>,
    /// The default fallback — and tagging and scoring too when their conditions are deeper
    /// than one row each — as JSON.
    advanced: String,
    sample: String,
    /// Why this version: the change note saved with it (each version has its own).
    note: String,
    /// The saved draft version the editor was opened on: publishing it unchanged publishes
    /// that version instead of saving a copy of it.
    based_on: Option<i64>,
}

/// A tagging or scoring rule as a line of the form: one condition row and what it adds.
#[derive(Debug, Clone, Default)]
pub struct Line {
    pub id: String,
    pub row: Row,
    /// Tags (comma-separated) or points.
    pub adds: String,
}

impl Line {
    fn of(id: &str, when: &Option<ConditionSpec>, adds: String) -> Option<Line> {
        let row = match when {
            None => Row::default(),
            Some(condition) => row_of(condition)?,
        };
        Some(Line {
            id: id.to_owned(),
            row,
            adds,
        })
    }

    fn condition(&self, numbers: &[String]) -> Option<ConditionSpec> {
        (!self.row.field.is_empty()).then(|| ConditionSpec {
            field: Some(self.row.field.clone()),
            op: Some(self.row.op.clone()),
            value: parse_value(
                &self.row.op,
                number_field(&self.row.field, numbers),
                &self.row.value,
            ),
            ..ConditionSpec::default()
        })
    }
}

/// Score tiers the editor shows as rows.
const TIER_ROWS: usize = 3;

impl Draft {
    /// The tiers as rows of `(minimum score, priority)`, padded with empty rows to
    /// [`TIER_ROWS`].
    fn tier_rows(&self) -> Vec<(String, String)> {
        let mut rows: Vec<(String, String)> = self
            .tiers
            .split([',', '，'])
            .map(str::trim)
            .filter(|tier| !tier.is_empty())
            .map(|tier| match tier.split_once(' ') {
                Some((score, priority)) => (score.trim().to_owned(), priority.trim().to_owned()),
                None => (tier.to_owned(), String::new()),
            })
            .collect();
        while rows.len() < TIER_ROWS {
            rows.push((String::new(), String::new()));
        }
        rows
    }
}

fn field(fields: &HashMap<String, String>, key: &str) -> String {
    fields.get(key).cloned().unwrap_or_default()
}

impl Draft {
    fn from_spec(spec: &RuleSetSpec) -> Draft {
        let tags: Option<Vec<Line>> = spec
            .tagging
            .iter()
            .map(|rule| Line::of(&rule.id, &rule.when, rule.add_tags.join(", ")))
            .collect();
        let scoring = spec.scoring.clone().unwrap_or_default();
        let scores: Option<Vec<Line>> = scoring
            .rules
            .iter()
            .map(|rule| Line::of(&rule.id, &rule.when, rule.points.to_string()))
            .collect();
        // Conditions deeper than a row stay JSON, with the rest of tagging and scoring.
        let structured = tags.is_some() && scores.is_some();
        let mut advanced = json!({"default": spec.default});
        if !structured {
            advanced["tagging"] = json!(spec.tagging);
            advanced["scoring"] = json!(spec.scoring);
        }
        Draft {
            name: spec.name.clone().unwrap_or_default(),
            rules: spec.rules.iter().map(RuleForm::from_spec).collect(),
            tags: tags.filter(|_| structured).unwrap_or_default(),
            scores: scores.filter(|_| structured).unwrap_or_default(),
            base: if structured && scoring.base != 0.0 {
                scoring.base.to_string()
            } else {
                String::new()
            },
            tiers: if structured {
                scoring
                    .tiers
                    .iter()
                    .map(|tier| format!("{} {}", tier.min_score, tier.priority))
                    .collect::<Vec<_>>()
                    .join(", ")
            } else {
                String::new()
            },
            advanced: serde_json::to_string_pretty(&advanced).unwrap_or_default(),
            sample: serde_json::to_string_pretty(&json!({"name": "王总", "province": "浙江省", "industry": "制造", "company_size": 500}))
                .unwrap_or_default(),
            numbers: Vec::new(),
            note: String::new(),
            based_on: None,
        }
    }

    fn from_form(fields: &HashMap<String, String>) -> Draft {
        let count: usize = field(fields, "rules").parse().unwrap_or(0).min(500);
        let rows = |prefix: &str, third: &str| {
            let count: usize = field(fields, &format!("{prefix}_count"))
                .parse()
                .unwrap_or(0)
                .min(100);
            (0..count)
                .map(|j| Row {
                    field: field(fields, &format!("{prefix}{j}_field")),
                    op: field(fields, &format!("{prefix}{j}_op")),
                    value: field(fields, &format!("{prefix}{j}_{third}")),
                    literal: field(fields, &format!("{prefix}{j}_literal")),
                    error: String::new(),
                })
                .collect::<Vec<_>>()
        };
        let rules = (0..count)
            .map(|i| RuleForm {
                id: field(fields, &format!("r{i}_id")).trim().to_owned(),
                name: field(fields, &format!("r{i}_name")).trim().to_owned(),
                group: if field(fields, &format!("r{i}_group")) == "any" {
                    "any".into()
                } else {
                    "all".into()
                },
                negate: fields.contains_key(&format!("r{i}_negate")),
                rows: rows(&format!("r{i}_c"), "value"),
                subgroups: (0..field(fields, &format!("r{i}_g_count"))
                    .parse::<usize>()
                    .unwrap_or(0)
                    .min(20))
                    .map(|k| Group {
                        group: if field(fields, &format!("r{i}_g{k}_group")) == "any" {
                            "any".into()
                        } else {
                            "all".into()
                        },
                        negate: fields.contains_key(&format!("r{i}_g{k}_negate")),
                        rows: rows(&format!("r{i}_g{k}_c"), "value"),
                    })
                    .collect(),
                when_json: field(fields, &format!("r{i}_when_json")),
                target: field(fields, &format!("r{i}_target")),
                strategy: field(fields, &format!("r{i}_strategy")),
                strategy_json: field(fields, &format!("r{i}_strategy_json")),
                affinity: fields.contains_key(&format!("r{i}_affinity")),
                requires: rows(&format!("r{i}_q"), "ref"),
                prefers: rows(&format!("r{i}_p"), "ref"),
                days: ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
                    .into_iter()
                    .filter(|day| fields.contains_key(&format!("r{i}_day_{day}")))
                    .map(str::to_owned)
                    .collect(),
                window_hours: field(fields, &format!("r{i}_whours")).trim().to_owned(),
                window_from: field(fields, &format!("r{i}_wfrom")).trim().to_owned(),
                window_until: field(fields, &format!("r{i}_wuntil")).trim().to_owned(),
                window_zone: field(fields, &format!("r{i}_wzone")).trim().to_owned(),
                hours: field(fields, &format!("r{i}_hours")),
                fallback: (0..field(fields, &format!("r{i}_fb_count"))
                    .parse::<usize>()
                    .unwrap_or(0)
                    .min(20))
                    .map(|k| field(fields, &format!("r{i}_fb{k}")))
                    .filter(|step| !step.is_empty())
                    .collect(),
                sla_policy: field(fields, &format!("r{i}_sla")),
                rest: field(fields, &format!("r{i}_rest")),
                error: String::new(),
            })
            .collect();
        let lines = |prefix: &str| {
            let count: usize = field(fields, &format!("{prefix}_count"))
                .parse()
                .unwrap_or(0)
                .min(200);
            (0..count)
                .map(|k| Line {
                    id: field(fields, &format!("{prefix}{k}_id")).trim().to_owned(),
                    row: Row {
                        field: field(fields, &format!("{prefix}{k}_field")),
                        op: field(fields, &format!("{prefix}{k}_op")),
                        value: field(fields, &format!("{prefix}{k}_value")),
                        ..Row::default()
                    },
                    adds: field(fields, &format!("{prefix}{k}_adds")),
                })
                .collect::<Vec<_>>()
        };
        Draft {
            name: field(fields, "name"),
            rules,
            tags: lines("t"),
            scores: lines("s"),
            base: field(fields, "base"),
            // Tier rows (a score and a priority each), or the one-line form `80 urgent, 60 high`.
            tiers: match field(fields, "tier_count").parse::<usize>() {
                Ok(count) => (0..count.min(TIER_ROWS))
                    .filter_map(|n| {
                        let score = field(fields, &format!("tier{n}_score"));
                        let priority = field(fields, &format!("tier{n}_priority"));
                        (!score.trim().is_empty()).then(|| format!("{} {priority}", score.trim()))
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                Err(_) => field(fields, "tiers"),
            },
            advanced: field(fields, "advanced"),
            sample: field(fields, "sample"),
            based_on: field(fields, "based_on").parse().ok(),
            note: field(fields, "note"),
            numbers: Vec::new(),
        }
    }

    /// The rule-set document, or the first thing that stops it being one.
    fn to_spec(&self) -> Result<RuleSetSpec, String> {
        let mut rules = Vec::with_capacity(self.rules.len());
        for (index, rule) in self.rules.iter().enumerate() {
            let mut spec: RuleSpec = if rule.rest.trim().is_empty() {
                RuleSpec::default()
            } else {
                let mut value: Value = serde_json::from_str(&rule.rest)
                    .map_err(|error| format!("rules[{index}]: {error}"))?;
                if let Some(object) = value.as_object_mut() {
                    object.insert("id".into(), json!(rule.id));
                    object.insert("target".into(), json!({"team": ""}));
                }
                serde_json::from_value(value).map_err(|error| format!("rules[{index}]: {error}"))?
            };
            spec.id = rule.id.clone();
            spec.name = (!rule.name.is_empty()).then(|| rule.name.clone());
            spec.owner_affinity = rule.affinity;
            let optional = |text: &str| (!text.is_empty()).then(|| text.to_owned());
            if rule.has_window() {
                spec.window = Some(WindowSpec {
                    weekdays: rule.days.clone(),
                    hours: optional(&rule.window_hours),
                    from: optional(&rule.window_from),
                    until: optional(&rule.window_until),
                    time_zone: optional(&rule.window_zone),
                });
            }
            if !rule.hours.is_empty() {
                spec.hours = Some(rule.hours.clone());
            }
            let fallback: Vec<FallbackSpec> = rule
                .fallback
                .iter()
                .map(|step| fallback_step(step))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|error| format!("rules[{index}].fallback: {error}"))?
                .into_iter()
                .flatten()
                .collect();
            if !fallback.is_empty() {
                spec.fallback = fallback;
            }
            if !rule.sla_policy.is_empty() {
                spec.sla_policy = Some(rule.sla_policy.clone());
            }
            let specs = |rows: &[Row]| -> Vec<ConditionSpec> {
                rows.iter()
                    .filter(|row| !row.field.is_empty())
                    .map(|row| ConditionSpec {
                        field: Some(row.field.clone()),
                        op: Some(row.op.clone()),
                        value: parse_value(
                            &row.op,
                            number_field(&row.field, &self.numbers),
                            &row.value,
                        ),
                        ..ConditionSpec::default()
                    })
                    .collect()
            };
            // The rows first, then each group that has rows (the order the form shows).
            let mut children = specs(&rule.rows);
            children.extend(rule.subgroups.iter().filter_map(|group| {
                let rows = specs(&group.rows);
                (!rows.is_empty()).then(|| grouped(&group.group, group.negate, rows))
            }));
            spec.when = if !rule.when_json.trim().is_empty() {
                serde_json::from_str(&rule.when_json)
                    .map_err(|error| format!("rules[{index}].when: {error}"))?
            } else if children.is_empty() {
                None
            } else {
                Some(grouped(&rule.group, rule.negate, children))
            };
            spec.target = match rule.target.split_once(':') {
                Some(("team", team)) => TargetSpec::Team(team.to_owned()),
                Some(("pool", pool)) => TargetSpec::Pool(pool.to_owned()),
                Some(("json", text)) => serde_json::from_str(text)
                    .map_err(|error| format!("rules[{index}].target: {error}"))?,
                _ => TargetSpec::Team(String::new()),
            };
            spec.strategy = if rule.strategy.is_empty() {
                None
            } else {
                // The settings the form kept travel on while the type is unchanged.
                let kept = serde_json::from_str::<Value>(&rule.strategy_json)
                    .ok()
                    .filter(|kept| kept["type"].as_str() == Some(rule.strategy.as_str()));
                Some(
                    serde_json::from_value::<StrategySpec>(
                        kept.unwrap_or_else(|| json!({"type": rule.strategy})),
                    )
                    .map_err(|error| format!("rules[{index}].strategy: {error}"))?,
                )
            };
            let rep_rows = |rows: &[Row]| -> Vec<ConditionSpec> {
                rows.iter()
                    .filter(|row| !row.field.is_empty())
                    .map(|row| {
                        let number = number_field(&row.field, &self.numbers);
                        ConditionSpec {
                            field: Some(row.field.clone()),
                            op: Some(row.op.clone()),
                            reference: (!row.value.is_empty()).then(|| row.value.clone()),
                            value: if row.value.is_empty() {
                                parse_value(&row.op, number, &row.literal)
                            } else {
                                None
                            },
                            ..ConditionSpec::default()
                        }
                    })
                    .collect()
            };
            spec.requires = rep_rows(&rule.requires);
            spec.prefers = rep_rows(&rule.prefers);
            rules.push(spec);
        }
        let advanced: Value = if self.advanced.trim().is_empty() {
            json!({})
        } else {
            serde_json::from_str(&self.advanced).map_err(|error| format!("advanced: {error}"))?
        };
        let mut document = advanced;
        let tagging: Vec<Value> = self
            .tags
            .iter()
            .filter(|line| !line.id.is_empty())
            .map(|line| {
                json!({"id": line.id, "when": line.condition(&self.numbers), "add_tags": line.adds
                    .split([',', '，'])
                    .map(str::trim)
                    .filter(|tag| !tag.is_empty())
                    .collect::<Vec<_>>()})
            })
            .collect();
        let mut score_rules = Vec::new();
        for line in self.scores.iter().filter(|line| !line.id.is_empty()) {
            let points: f64 = line
                .adds
                .trim()
                .parse()
                .map_err(|_| format!("scoring {}: points are a number", line.id))?;
            score_rules.push(
                json!({"id": line.id, "when": line.condition(&self.numbers), "points": points}),
            );
        }
        let mut tiers = Vec::new();
        for tier in self
            .tiers
            .split([',', '，'])
            .map(str::trim)
            .filter(|tier| !tier.is_empty())
        {
            let (score, priority) = tier
                .split_once(' ')
                .ok_or_else(|| format!("tier {tier:?}: write the score, a space, the priority"))?;
            let score: f64 = score
                .trim()
                .parse()
                .map_err(|_| format!("tier {tier:?}: the score is a number"))?;
            tiers.push(json!({"min_score": score, "priority": priority.trim()}));
        }
        let base = self.base.trim();
        if let Some(object) = document.as_object_mut() {
            if !tagging.is_empty() {
                object.insert("tagging".into(), json!(tagging));
            }
            if !score_rules.is_empty() || !tiers.is_empty() || !base.is_empty() {
                let base: f64 = if base.is_empty() {
                    0.0
                } else {
                    base.parse()
                        .map_err(|_| "the base score is a number".to_owned())?
                };
                object.insert(
                    "scoring".into(),
                    json!({"base": base, "rules": score_rules, "tiers": tiers}),
                );
            }
            object.retain(|_, value| !value.is_null());
            object.insert(
                "rules".into(),
                serde_json::to_value(&rules).map_err(|error| error.to_string())?,
            );
            if !self.name.trim().is_empty() {
                object.insert("name".into(), json!(self.name.trim()));
            }
            if !self.note.trim().is_empty() {
                object.insert("note".into(), json!(self.note.trim()));
            }
        }
        serde_json::from_value(document).map_err(|error| error.to_string())
    }

    /// Puts each compile error at the row or rule it concerns, as the catalogue's sentence for
    /// its code in the viewer's language followed by the precise message.
    fn place(&mut self, errors: &[CompileError], t: &super::i18n::Tr) -> Vec<String> {
        let mut general = Vec::new();
        for error in errors {
            // A rule without a target yet (a new one) is asked for one, not told about a team
            // with an empty id.
            let code = if error.code == "unknown_team" && error.message.contains("\"\"") {
                "target_missing"
            } else {
                error.code
            };
            let text = match t.error(code) {
                Some(sentence) if code == "target_missing" => sentence.to_owned(),
                Some(sentence) => format!("{sentence}: {}", error.message),
                None => format!("{} ({})", error.message, error.code),
            };
            let index = error
                .path
                .strip_prefix("rules[")
                .and_then(|rest| rest.split(']').next())
                .and_then(|number| number.parse::<usize>().ok());
            let Some(rule) = index.and_then(|index| self.rules.get_mut(index)) else {
                general.push(format!("{}: {text}", error.path));
                continue;
            };
            // `rules[i].when.all[j]…` or `rules[i].when.not.any[j]…`: row j.
            let row = error
                .path
                .split(['[', ']'])
                .collect::<Vec<_>>()
                .windows(2)
                .find(|pair| pair[0].ends_with(".all") || pair[0].ends_with(".any"))
                .and_then(|pair| pair[1].parse::<usize>().ok());
            let within = |list: &str| {
                error
                    .path
                    .split_once(&format!(".{list}["))
                    .and_then(|(_, rest)| rest.split(']').next()?.parse::<usize>().ok())
            };
            let (requirement, preference) = (within("requires"), within("prefers"));
            // Past the rows come the groups, in order: `…all[n].any[j]…` is row j of group
            // n - rows.
            let in_group = row
                .and_then(|row| row.checked_sub(rule.rows.len()))
                .filter(|group| *group < rule.subgroups.len())
                .and_then(|group| {
                    let inner = error
                        .path
                        .split(['[', ']'])
                        .collect::<Vec<_>>()
                        .windows(2)
                        .filter(|pair| pair[0].ends_with(".all") || pair[0].ends_with(".any"))
                        .nth(1)
                        .and_then(|pair| pair[1].parse::<usize>().ok())?;
                    Some((group, inner))
                });
            if let Some((group, inner)) = in_group
                && let Some(row) = rule.subgroups[group].rows.get_mut(inner)
            {
                row.error = text;
                continue;
            }
            match (row, requirement, preference) {
                (Some(row), _, _) if rule.rows.get(row).is_some() => rule.rows[row].error = text,
                (_, Some(row), _) if rule.requires.get(row).is_some() => {
                    rule.requires[row].error = text
                }
                (_, _, Some(row)) if rule.prefers.get(row).is_some() => {
                    rule.prefers[row].error = text
                }
                _ => {
                    if !rule.error.is_empty() {
                        rule.error.push_str("; ");
                    }
                    rule.error.push_str(&text);
                }
            }
        }
        general
    }
}

/// A line of the version list.
pub struct VersionLine {
    pub version: i64,
    pub name: String,
    pub status: String,
    pub at: String,
    /// The change note saved with it.
    pub note: String,
    /// Who last published it, when it was.
    pub by: String,
    /// Who saved it.
    pub author: String,
}

#[derive(Template)]
#[template(path = "rules.html")]
struct RulesPage {
    frame: Frame,
    versions: Vec<VersionLine>,
    /// Recent simulations: id, status, when.
    simulations: Vec<(String, String, String)>,
}

pub(super) async fn allowed_viewer(
    app: &AppState,
    headers: &HeaderMap,
) -> Result<Viewer, Response> {
    let viewer = viewer(app, headers).await?;
    if matches!(viewer.caller.role, Role::Admin | Role::Manager) {
        Ok(viewer)
    } else {
        Err(Redirect::to("/me").into_response())
    }
}

#[derive(Debug, Deserialize)]
pub struct VersionQuery {
    pub(super) version: Option<i64>,
    pub(super) notice: Option<String>,
}

/// Every version, the active one marked, with rollback.
pub async fn versions(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<VersionQuery>,
) -> Response {
    let viewer = match allowed_viewer(&app, &headers).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let rows = match app.store.list_rule_sets().await {
        Ok(rows) => rows,
        Err(error) => return ApiError::from(error).into_response(),
    };
    // Who last published each version, from the audit log (newest first).
    let actors = super::actor_names(&app).await;
    let mut publishers: HashMap<i64, String> = HashMap::new();
    let published = app
        .store
        .audit_actors("rule_set", &["rule_set.published", "rule_set.rolled_back"])
        .await
        .unwrap_or_default();
    for (version, actor) in published {
        if let Ok(version) = version.parse() {
            publishers
                .entry(version)
                .or_insert_with(|| super::actor_name(&actors, &actor, &viewer.t));
        }
    }
    let simulations = app
        .store
        .list_simulations(10)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|row| {
            let status = crate::simulate::jobs::status(&row).to_owned();
            (
                row.id,
                viewer.t.t(&format!("sim_{status}")).to_owned(),
                viewer.local(row.created_at),
            )
        })
        .collect();
    render(RulesPage {
        simulations,
        frame: viewer.frame(
            viewer.t.t("rules"),
            "rules",
            notice_text(&viewer.t, query.notice.as_deref()),
        ),
        versions: rows
            .into_iter()
            .map(|row| VersionLine {
                note: RuleSetSpec::from_json(&row.document)
                    .ok()
                    .and_then(|spec| spec.note)
                    .unwrap_or_default(),
                by: publishers.get(&row.version).cloned().unwrap_or_default(),
                author: row
                    .created_by
                    .as_deref()
                    .map(|actor| super::actor_name(&actors, actor, &viewer.t))
                    .unwrap_or_default(),
                version: row.version,
                name: row.name.unwrap_or_default(),
                status: row.status,
                at: viewer.local(row.published_at.unwrap_or(row.created_at)),
            })
            .collect(),
    })
}

#[derive(Template)]
#[template(path = "rule_editor.html")]
struct EditorPage {
    frame: Frame,
    draft: Draft,
    fields: Vec<String>,
    rep_fields: Vec<String>,
    ops: Vec<&'static str>,
    strategies: Vec<&'static str>,
    targets: Vec<(String, String)>,
    /// `(value, label)`: the steps a fallback slot offers.
    fallbacks: Vec<(String, String)>,
    sla_policies: Vec<String>,
    weekdays: Vec<&'static str>,
    errors: Vec<String>,
    valid: bool,
    /// Each rule in a line, in the draft's order (empty while the draft does not read).
    summaries: Vec<String>,
    /// Per rule: why it can never route a lead (shadowed, contradictory), or empty.
    warnings: Vec<String>,
    /// What the draft changes against the active version, rule by rule.
    changes: Vec<Change>,
    dry_run: String,
    /// Recent leads to dry-run the draft on: `(id, label)`.
    recent: Vec<(String, String)>,
    /// Known values of a field, offered beside its value box: `(field, [(value, label)])`.
    value_lists: Vec<(String, Vec<(String, String)>)>,
}

/// The values a condition on a field is usually written with, labelled: priorities and
/// statuses by their words, and the regions, industries, sources and tags this workspace uses.
async fn value_lists(
    app: &AppState,
    t: &super::i18n::Tr,
    draft: &Draft,
) -> Vec<(String, Vec<(String, String)>)> {
    let coded = |codes: &[&str]| -> Vec<(String, String)> {
        codes
            .iter()
            .map(|code| ((*code).to_owned(), t.state(code).to_owned()))
            .collect()
    };
    let plain = |mut values: Vec<String>| -> Vec<(String, String)> {
        values.sort();
        values.dedup();
        values.retain(|value| !value.is_empty());
        values
            .into_iter()
            .map(|value| (value.clone(), value))
            .collect()
    };
    let reps = app.store.list_reps().await.unwrap_or_default();
    let (mut regions, mut industries) = (Vec::new(), Vec::new());
    for rep in &reps {
        let document: crate::workspace::RepDocument =
            serde_json::from_str(&rep.document).unwrap_or_default();
        regions.extend(document.regions);
        industries.extend(document.industries);
    }
    regions.extend(
        ["华东", "华南", "华北", "华中", "西南", "西北", "东北"]
            .iter()
            .map(|region| (*region).to_owned()),
    );
    let sources: Vec<String> = app
        .store
        .list_stats("source")
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|row| row.key)
        .collect();
    let tags: Vec<String> = draft
        .tags
        .iter()
        .flat_map(|line| {
            line.adds
                .split([',', '，'])
                .map(|tag| tag.trim().to_owned())
        })
        .collect();
    vec![
        (
            "priority".to_owned(),
            coded(&["urgent", "high", "normal", "low"]),
        ),
        (
            "status".to_owned(),
            coded(&engine::LeadStatus::ALL.map(engine::LeadStatus::as_str)),
        ),
        ("region".to_owned(), plain(regions)),
        ("industry".to_owned(), plain(industries)),
        ("source".to_owned(), plain(sources)),
        ("tags".to_owned(), plain(tags)),
    ]
}

async fn editor(
    app: &AppState,
    viewer: &Viewer,
    mut draft: Draft,
    notice: String,
    refused: String,
    dry_run: String,
) -> Response {
    let teams = app.store.list_teams().await.unwrap_or_default();
    let pools = app
        .store
        .list_settings(store::Setting::Pools)
        .await
        .unwrap_or_default();
    let mut errors = Vec::new();
    let mut valid = false;
    let mut summaries = Vec::new();
    let mut warnings: Vec<String> = Vec::new();
    let mut changes = Vec::new();
    match draft.to_spec() {
        Err(message) => errors.push(message),
        Ok(spec) => {
            let compiled = compile(app, &spec).await;
            match compiled {
                Ok(found) => {
                    valid = found.is_empty();
                    errors = draft.place(&found, &viewer.t);
                }
                Err(error) => errors.push(error.message),
            }
            // Names for the summaries and the changes: teams, pools and reps by id.
            let names = Names {
                teams: (teams.iter())
                    .map(|row| (row.id.clone(), row.name.clone()))
                    .collect(),
                pools: (pools.iter())
                    .map(|row| (row.id.clone(), row.name.clone()))
                    .collect(),
                reps: (app.store.list_reps().await.unwrap_or_default())
                    .into_iter()
                    .map(|row| (row.id, row.name))
                    .collect(),
            };
            summaries = spec
                .rules
                .iter()
                .map(|rule| rule_changes::summary(rule, &viewer.t, &names))
                .collect();
            warnings = vec![String::new(); spec.rules.len()];
            for (index, warning) in rule_changes::never_matching(&spec, &viewer.t) {
                warnings[index] = warning;
            }
            let active = app
                .store
                .active_rule_set()
                .await
                .ok()
                .flatten()
                .and_then(|row| RuleSetSpec::from_json(&row.document).ok())
                .unwrap_or_default();
            changes = rule_changes::changes(&active, &spec, &viewer.t, &names);
        }
    }
    let mut targets: Vec<(String, String)> = teams
        .into_iter()
        .map(|row| (format!("team:{}", row.id), row.name))
        .collect();
    // A pool is marked as one unless its name already says so ("公海", "华东公海").
    let pool_word = viewer.t.t("pool");
    targets.extend(pools.into_iter().map(|row| {
        let label = if row.name.to_lowercase().contains(&pool_word.to_lowercase()) {
            row.name
        } else {
            format!("{} ({pool_word})", row.name)
        };
        (format!("pool:{}", row.id), label)
    }));
    let custom = app.store.list_custom_fields().await.unwrap_or_default();
    let mut fields: Vec<String> = engine::field::LEAD_FIELDS
        .iter()
        .map(|(name, _, _)| (*name).to_owned())
        .collect();
    fields.extend(
        custom
            .iter()
            .filter(|row| row.entity == "lead")
            .map(|row| format!("attributes.{}", row.name)),
    );
    let mut rep_fields: Vec<String> = engine::field::REP_FIELDS
        .iter()
        .map(|(name, _, _)| format!("rep.{name}"))
        .collect();
    rep_fields.extend(
        custom
            .iter()
            .filter(|row| row.entity == "rep")
            .map(|row| format!("rep.attributes.{}", row.name)),
    );
    let fallbacks: Vec<(String, String)> = [
        ("next_rule", "fb_next_rule"),
        ("overflow", "fb_overflow"),
        ("hold", "fb_hold"),
    ]
    .into_iter()
    .map(|(value, label)| (value.to_owned(), viewer.t.t(label).to_owned()))
    .chain(targets.iter().cloned())
    .collect();
    let sla_policies = app
        .store
        .list_settings(store::Setting::SlaPolicies)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|row| row.id)
        .collect();
    // A refused save or publish comes first, as an error.
    if !refused.is_empty() {
        errors.insert(0, refused);
    }
    render(EditorPage {
        frame: viewer.frame(viewer.t.t("rules"), "rules", notice),
        fields,
        rep_fields,
        ops: OPS.to_vec(),
        strategies: STRATEGIES.to_vec(),
        targets,
        fallbacks,
        sla_policies,
        weekdays: vec!["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        errors,
        valid,
        summaries,
        warnings,
        changes,
        recent: recent_leads(app, viewer).await,
        value_lists: value_lists(app, &viewer.t, &draft).await,
        dry_run,
        draft,
    })
}

async fn compile(app: &AppState, spec: &RuleSetSpec) -> Result<Vec<CompileError>, ApiError> {
    let mut rows = crate::workspace::ConfigRows::load(&app.store).await?;
    rows.active = None;
    let workspace = crate::workspace::build_workspace(&rows);
    let known = engine::Known {
        catalogue: &workspace.catalogue,
        roster: &workspace.roster,
        pools: &workspace.pools,
        sla_policies: &workspace.sla_policy_ids,
    };
    Ok(engine::compile(spec, known, 0).err().unwrap_or_default())
}

/// The editor on a version (the active one by default).
pub async fn edit(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<VersionQuery>,
) -> Response {
    let viewer = match allowed_viewer(&app, &headers).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let row = match query.version {
        Some(version) => app.store.get_rule_set(version).await,
        None => app.store.active_rule_set().await,
    }
    .ok()
    .flatten();
    let spec = (row.as_ref())
        .and_then(|row| RuleSetSpec::from_json(&row.document).ok())
        .unwrap_or_default();
    let mut draft = Draft::from_spec(&spec);
    draft.based_on = row
        .filter(|row| row.status == "draft")
        .map(|row| row.version);
    let notice = notice_text(&viewer.t, query.notice.as_deref());
    editor(&app, &viewer, draft, notice, String::new(), String::new()).await
}

/// Every button of the editor posts here: edit the draft, check it, dry-run it, save or
/// publish it.
pub async fn submit(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (viewer, fields) = match posted(allowed_viewer(&app, &headers).await, &body) {
        Ok(posted) => posted,
        Err(response) => return *response,
    };
    let mut draft = Draft::from_form(&fields);
    draft.numbers = custom_numbers(&app).await;
    let action = field(&fields, "action");
    let index = |text: &str| text.parse::<usize>().ok();
    let mut parts = action.split(':');
    let (verb, first, second) = (
        parts.next().unwrap_or(""),
        parts.next().and_then(index),
        parts.next().and_then(index),
    );
    // A row inside a group has a third index.
    let third = parts.next().and_then(index);
    let mut dry_run = String::new();
    let mut refused = String::new();
    match (verb, first, second) {
        ("add_rule", _, _) => draft.rules.push(RuleForm {
            id: format!("rule-{}", draft.rules.len() + 1),
            group: "all".into(),
            rows: vec![Row {
                op: "equals".into(),
                ..Row::default()
            }],
            ..RuleForm::default()
        }),
        ("add_row", Some(i), _) if i < draft.rules.len() => draft.rules[i].rows.push(Row {
            op: "equals".into(),
            ..Row::default()
        }),
        ("add_requirement", Some(i), _) if i < draft.rules.len() => {
            draft.rules[i].requires.push(Row {
                field: "rep.industries".into(),
                op: "contains".into(),
                value: "industry".into(),
                ..Row::default()
            })
        }
        ("add_preference", Some(i), _) if i < draft.rules.len() => {
            draft.rules[i].prefers.push(Row {
                field: "rep.regions".into(),
                op: "contains".into(),
                value: "region".into(),
                ..Row::default()
            })
        }
        ("add_tag", _, _) => draft.tags.push(Line {
            id: format!("tag-{}", draft.tags.len() + 1),
            row: Row {
                op: "equals".into(),
                ..Row::default()
            },
            adds: String::new(),
        }),
        ("add_score", _, _) => draft.scores.push(Line {
            id: format!("score-{}", draft.scores.len() + 1),
            row: Row {
                op: "equals".into(),
                ..Row::default()
            },
            adds: "10".into(),
        }),
        ("remove_row", Some(i), Some(j))
            if i < draft.rules.len() && j < draft.rules[i].rows.len() =>
        {
            draft.rules[i].rows.remove(j);
        }
        ("add_group", Some(i), _) if i < draft.rules.len() => {
            draft.rules[i].subgroups.push(Group {
                group: "any".into(),
                negate: false,
                rows: vec![Row {
                    op: "equals".into(),
                    ..Row::default()
                }],
            })
        }
        ("add_group_row", Some(i), Some(k))
            if i < draft.rules.len() && k < draft.rules[i].subgroups.len() =>
        {
            draft.rules[i].subgroups[k].rows.push(Row {
                op: "equals".into(),
                ..Row::default()
            })
        }
        ("remove_group_row", Some(i), Some(k))
            if i < draft.rules.len() && k < draft.rules[i].subgroups.len() =>
        {
            let group = &mut draft.rules[i].subgroups[k];
            if let Some(j) = third.filter(|j| *j < group.rows.len()) {
                group.rows.remove(j);
            }
            // A group without rows is no group.
            if draft.rules[i].subgroups[k].rows.is_empty() {
                draft.rules[i].subgroups.remove(k);
            }
        }
        ("remove_rule", Some(i), _) if i < draft.rules.len() => {
            draft.rules.remove(i);
        }
        ("remove_tag", Some(k), _) if k < draft.tags.len() => {
            draft.tags.remove(k);
        }
        ("remove_score", Some(k), _) if k < draft.scores.len() => {
            draft.scores.remove(k);
        }
        ("up", Some(i), _) if i > 0 && i < draft.rules.len() => draft.rules.swap(i, i - 1),
        ("down", Some(i), _) if i + 1 < draft.rules.len() => draft.rules.swap(i, i + 1),
        ("dry_run", _, _) => dry_run = run_sample(&app, &viewer, &draft).await,
        // The same dry run on a stored lead: its document becomes the sample.
        ("dry_run_lead", _, _) => {
            match sample_of(&app, &viewer, field(&fields, "sample_lead").trim()).await {
                Ok(sample) => {
                    draft.sample = sample;
                    dry_run = run_sample(&app, &viewer, &draft).await;
                }
                Err(error) => {
                    refused = viewer.t.error(&error.code).map_or_else(
                        || format!("{}: {}", viewer.t.t("error"), error.message),
                        str::to_owned,
                    )
                }
            }
        }
        ("save" | "publish", _, _) => {
            let publish = verb == "publish";
            if publish && !fields.contains_key("confirm") {
                refused = viewer.t.t("confirm_needed").to_owned();
            } else if let Ok(spec) = draft.to_spec() {
                match save(&app, &viewer, &spec, draft.based_on, publish).await {
                    Ok(version) => {
                        let mut response = Redirect::to("/rules?notice=ok").into_response();
                        // The version saved, for scripts and tests.
                        if let Ok(value) = version.to_string().parse() {
                            response.headers_mut().insert("x-rule-set-version", value);
                        }
                        return response;
                    }
                    Err(error) => refused = format!("{}: {}", viewer.t.t("error"), error.message),
                }
            }
        }
        _ => {}
    }
    editor(&app, &viewer, draft, String::new(), refused, dry_run).await
}

/// Saves the draft through the API (compiled again there); publishes it when asked. A draft
/// published as it was saved (`based_on`, unchanged) is published itself, so no copy of it is
/// left behind as a draft.
async fn save(
    app: &AppState,
    viewer: &Viewer,
    spec: &RuleSetSpec,
    based_on: Option<i64>,
    publish: bool,
) -> Result<i64, ApiError> {
    let unchanged_draft = match based_on {
        Some(version) => app
            .store
            .get_rule_set(version)
            .await?
            .filter(|row| {
                row.status == "draft"
                    && RuleSetSpec::from_json(&row.document).is_ok_and(|stored| {
                        // A new note is a new version; no note keeps the draft's.
                        (spec.note.is_none() || spec.note == stored.note)
                            && rule_changes::changes(&stored, spec, &viewer.t, &Names::default())
                                .is_empty()
                    })
            })
            .map(|row| row.version),
        None => None,
    };
    let version = match unchanged_draft {
        Some(version) => version,
        None => create_draft(app, viewer, spec).await?,
    };
    if publish {
        crate::api::rule_sets::publish_rule_set(
            State(app.clone()),
            Extension(viewer.caller.clone()),
            Path(version),
        )
        .await?;
    }
    Ok(version)
}

/// Saves the draft as a new version through the API; its number from the API's answer (not
/// "the newest": someone else may have saved a draft at the same moment).
async fn create_draft(
    app: &AppState,
    viewer: &Viewer,
    spec: &RuleSetSpec,
) -> Result<i64, ApiError> {
    let document = serde_json::to_value(spec).map_err(ApiError::internal)?;
    let response = crate::api::rule_sets::create_rule_set(
        State(app.clone()),
        Extension(viewer.caller.clone()),
        Body(document),
    )
    .await?;
    if response.status() != axum::http::StatusCode::CREATED {
        return Err(ApiError::invalid(
            "invalid_rule_set",
            "rules",
            "the rule set does not compile",
        ));
    }
    let body = axum::body::to_bytes(response.into_body(), crate::BODY_LIMIT)
        .await
        .map_err(ApiError::internal)?;
    serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|answer| answer["version"].as_i64())
        .ok_or_else(|| ApiError::internal("the draft's version is missing"))
}

/// A stored lead the viewer may see, as a sample document (without its external id, which
/// would only say it is already here).
async fn sample_of(app: &AppState, viewer: &Viewer, id: &str) -> Result<String, ApiError> {
    viewer.caller.may(crate::ops::Operation::ExplainRoute)?;
    let row = crate::api::access::lead(app, &viewer.caller, id).await?;
    // As the API shows it to this viewer (contact details only where they may see them).
    let mut document = crate::api::access::view(&viewer.caller, &row).document;
    document.external_id = None;
    serde_json::to_string_pretty(&document).map_err(ApiError::internal)
}

/// The newest leads the viewer sees, to pick one for a dry run: `(id, label)`.
async fn recent_leads(app: &AppState, viewer: &Viewer) -> Vec<(String, String)> {
    let mut filter = store::LeadFilter {
        limit: 20,
        ..store::LeadFilter::default()
    };
    if crate::api::access::scope(app, &viewer.caller, &mut filter)
        .await
        .is_err()
    {
        return Vec::new();
    }
    app.store
        .list_leads(&filter)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|row| {
            let document: Value = serde_json::from_str(&row.document).unwrap_or_default();
            let text = |key: &str| document[key].as_str().unwrap_or("").to_owned();
            let who = [text("name"), text("company")]
                .into_iter()
                .filter(|part| !part.is_empty())
                .collect::<Vec<_>>()
                .join(" · ");
            let label = format!("{who} · {}", viewer.local(row.created_at));
            (row.id, label)
        })
        .collect()
}

/// Routes the sample lead under the draft, storing nothing: the decision's explanation.
async fn run_sample(app: &AppState, viewer: &Viewer, draft: &Draft) -> String {
    let spec = match draft.to_spec() {
        Ok(spec) => spec,
        Err(message) => return message,
    };
    let lead: crate::leads::LeadInput = match serde_json::from_str(&draft.sample) {
        Ok(lead) => lead,
        Err(error) => return format!("sample: {error}"),
    };
    let result: Result<String, ApiError> = async {
        viewer.caller.may(crate::ops::Operation::ExplainRoute)?;
        let lead = lead.normalised()?;
        let draft = store::RuleSetRow {
            version: 0,
            name: spec.name.clone(),
            document: serde_json::to_string(&spec).map_err(ApiError::internal)?,
            status: "draft".into(),
            created_at: 0,
            published_at: None,
            created_by: None,
        };
        // The same routing as the API's dry run and a real post: the worker's state.
        let crate::routing::Explained { record, .. } =
            app.router.explain(lead, Some(draft)).await??;
        Ok(record.explain(if viewer.t.is_zh() {
            engine::Language::Zh
        } else {
            engine::Language::En
        }))
    }
    .await;
    result.unwrap_or_else(|error| format!("{}: {}", error.code, error.message))
}

/// Publishes an earlier version again: the rollback.
pub async fn rollback(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(version): Path<i64>,
    body: Bytes,
) -> Response {
    let (viewer, fields) = match posted(allowed_viewer(&app, &headers).await, &body) {
        Ok(posted) => posted,
        Err(response) => return *response,
    };
    if !fields.contains_key("confirm") {
        return back(
            "/rules",
            Err(ApiError::conflict(
                "confirm_needed",
                "tick the confirmation",
            )),
        );
    }
    let outcome = crate::api::rule_sets::publish_rule_set(
        State(app.clone()),
        Extension(viewer.caller.clone()),
        Path(version),
    )
    .await
    .map(drop);
    back("/rules", outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_goes_through_the_form_and_back() {
        let spec = RuleSetSpec::from_json(
            r#"{"rules": [{"id": "big", "when": {"not": {"any": [
                {"field": "company_size", "op": "gte", "value": 1000},
                {"field": "region", "op": "in", "value": ["华东", "华北"]}]}},
                "target": {"team": "east"}, "strategy": {"type": "least_loaded"}, "owner_affinity": true,
                "requires": [{"field": "rep.industries", "op": "contains", "ref": "industry"},
                             {"field": "rep.level", "op": "gte", "value": 3}],
                "prefers": [{"field": "rep.regions", "op": "contains", "ref": "region"}],
                "fallback": [{"pool": "public"}]},
                {"id": "fair", "target": {"team": "east"},
                 "strategy": {"type": "fair_share", "window": "week", "catch_up": {"capped": 3}},
                 "window": {"weekdays": ["sat", "sun"], "hours": "18:00-09:00", "time_zone": "Asia/Shanghai"},
                 "hours": "any_time", "sla_policy": "fast",
                 "fallback": ["next_rule"]},
                {"id": "odd", "target": {"team": "east"}, "fallback": [{"reps": ["a", "b"]}, "hold"]},
                {"id": "nested", "target": {"team": "east"}, "when": {"all": [
                    {"field": "region", "op": "equals", "value": "华东"},
                    {"any": [{"field": "company_size", "op": "gte", "value": 1000},
                             {"field": "tags", "op": "contains", "value": "VIP"}]},
                    {"not": {"field": "source", "op": "equals", "value": "展会"}}]}}],
              "tagging": [{"id": "t", "when": {"field": "budget", "op": "gt", "value": 5}, "add_tags": ["x", "y"]}],
              "scoring": {"base": 20, "rules": [{"id": "big", "when": {"field": "company_size", "op": "gte", "value": 1000}, "points": 40}],
                          "tiers": [{"min_score": 80, "priority": "urgent"}, {"min_score": 60, "priority": "high"}]}}"#,
        )
        .expect("spec");
        let draft = Draft::from_spec(&spec);
        let rule = &draft.rules[0];
        assert!(rule.negate);
        assert_eq!(rule.group, "any");
        assert_eq!(rule.rows[1].value, "华东, 华北");
        assert_eq!(rule.target, "team:east");
        assert_eq!(rule.fallback, ["pool:public"]);
        assert!(rule.rest.is_empty(), "{}", rule.rest);
        let fair = &draft.rules[1];
        assert_eq!(
            (
                fair.days.join(","),
                fair.window_hours.as_str(),
                fair.hours.as_str()
            ),
            ("sat,sun".to_owned(), "18:00-09:00", "any_time")
        );
        assert_eq!(draft.rules[2].fallback[0], r#"json:{"reps":["a","b"]}"#);
        let nested = &draft.rules[3];
        assert!(
            nested.when_json.is_empty(),
            "a group beside rows is shown as one"
        );
        assert_eq!((nested.rows.len(), nested.subgroups.len()), (1, 2));
        assert_eq!(nested.subgroups[0].group, "any");
        assert!(nested.subgroups[1].negate);
        assert_eq!(rule.prefers[0].value, "region");
        assert_eq!(
            (
                rule.requires[1].value.as_str(),
                rule.requires[1].literal.as_str()
            ),
            ("", "3")
        );
        assert_eq!(draft.tags[0].adds, "x, y");
        assert_eq!(draft.scores[0].adds, "40");
        assert_eq!(draft.tiers, "80 urgent, 60 high");
        assert_eq!(draft.rules[1].strategy, "fair_share");
        let back = draft.to_spec().expect("spec again");
        assert_eq!(
            serde_json::to_value(&back).expect("json"),
            serde_json::to_value(&spec).expect("json")
        );
        // Another strategy chosen: the old one's settings do not ride along.
        let mut changed = draft.clone();
        changed.rules[1].strategy = "round_robin".into();
        let back = serde_json::to_value(changed.to_spec().expect("spec")).expect("json");
        assert_eq!(back["rules"][1]["strategy"], json!({"type": "round_robin"}));
    }
}
