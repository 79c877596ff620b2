//! A rule set in a manager's words: one line per rule ("华东 + 制造 → 华东销售组 · 轮询") and
//! what changed between two versions, rule by rule ("分配策略：轮询 → 按负载最少"). Both read
//! the documents as normalised JSON, so writing the same rules differently (`20` or `20.0`,
//! `"window": null` or no window, one row or an `all` of one row) changes nothing.

use std::collections::HashMap;

use engine::RuleSetSpec;
use engine::spec::RuleSpec;
use serde_json::{Map, Value};

use super::i18n::Tr;

/// Display names of the teams, pools and reps a rule set names, by id.
#[derive(Debug, Default)]
pub struct Names {
    pub teams: HashMap<String, String>,
    pub pools: HashMap<String, String>,
    pub reps: HashMap<String, String>,
}

/// One rule (or tagging, scoring or default part) that differs between two versions.
#[derive(Debug, PartialEq)]
pub struct Change {
    /// `+` added, `-` removed, `~` changed.
    pub sign: char,
    /// The rule's name (or id), or the part of the rule set.
    pub subject: String,
    /// For an added or removed rule its summary; for a changed one each change as
    /// "what: before → after".
    pub details: Vec<String>,
}

/// The document as JSON with the forms that mean the same made equal: no nulls, empty lists,
/// empty texts or `false` (the defaults), every number a float, and a group of one condition
/// replaced by that condition.
pub fn normalised(value: &Value) -> Value {
    match value {
        Value::Object(object) => {
            let mut out = Map::new();
            for (key, item) in object {
                let item = normalised(item);
                let empty = match &item {
                    Value::Null | Value::Bool(false) => true,
                    Value::Array(items) => items.is_empty(),
                    Value::String(text) => text.is_empty(),
                    Value::Object(map) => map.is_empty(),
                    _ => false,
                };
                if !empty {
                    out.insert(key.clone(), item);
                }
            }
            // `{"all": [x]}` and `{"any": [x]}` say x.
            if out.len() == 1
                && let Some(Value::Array(items)) = out.get("all").or_else(|| out.get("any"))
                && items.len() == 1
            {
                return items[0].clone();
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(normalised).collect()),
        Value::Number(number) => number
            .as_f64()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| value.clone(), Value::Number),
        other => other.clone(),
    }
}

fn rule_json(rule: &RuleSpec) -> Value {
    normalised(&serde_json::to_value(rule).unwrap_or_default())
}

/// A value as a person reads it: texts bare, whole numbers without `.0`, lists joined.
fn plain(value: &Value, t: &Tr) -> String {
    match value {
        // A known code (a priority, a status) in words; other texts (华东) as they are.
        Value::String(text) => match t.state(text) {
            same if same == text => t.label(text).to_owned(),
            word => word.to_owned(),
        },
        Value::Number(number) => match number.as_f64() {
            Some(float) if float.fract() == 0.0 && float.abs() < 1e15 => {
                format!("{}", float as i64)
            }
            _ => number.to_string(),
        },
        Value::Bool(true) => t.t("yes").to_owned(),
        Value::Bool(false) => t.t("no").to_owned(),
        Value::Array(items) => items
            .iter()
            .map(|item| plain(item, t))
            .collect::<Vec<_>>()
            .join(if t.is_zh() { "、" } else { ", " }),
        Value::Null => "—".to_owned(),
        Value::Object(_) => value.to_string(),
    }
}

/// A condition tree (normalised) in short words: equality shows the value alone ("华东"),
/// other rows "预算 大于等于 100000"; `all` joins with " + ", `any` with " / ".
pub fn condition(value: &Value, t: &Tr) -> String {
    let group = |items: &Value, separator: &str| -> String {
        let parts: Vec<String> = items
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|item| {
                        let text = condition(item, t);
                        let nested = item.get("all").is_some() || item.get("any").is_some();
                        if nested { format!("({text})") } else { text }
                    })
                    .collect()
            })
            .unwrap_or_default();
        parts.join(separator)
    };
    if let Some(items) = value.get("all") {
        return group(items, " + ");
    }
    if let Some(items) = value.get("any") {
        return group(items, " / ");
    }
    if let Some(inner) = value.get("not") {
        return format!("{} ({})", t.t("not"), condition(inner, t));
    }
    let field = value.get("field").and_then(Value::as_str).unwrap_or("");
    let op = value.get("op").and_then(Value::as_str).unwrap_or("");
    let shown_field = t.label(field.strip_prefix("rep.").unwrap_or(field));
    let operand = match (value.get("value"), value.get("ref")) {
        (Some(literal), _) => plain(literal, t),
        (None, Some(Value::String(reference))) => {
            let reference = reference.strip_prefix("lead.").unwrap_or(reference);
            format!("{} {}", t.t("lead_s"), t.label(reference))
        }
        _ => String::new(),
    };
    match op {
        "equals" | "in" if !field.starts_with("rep.") => operand,
        "exists" | "missing" => format!("{shown_field} {}", t.label(op)),
        _ => format!("{shown_field} {} {operand}", t.label(op)),
    }
}

fn target(value: &Value, t: &Tr, names: &Names) -> String {
    let named = |map: &HashMap<String, String>, id: &Value| {
        let id = id.as_str().unwrap_or("");
        map.get(id).cloned().unwrap_or_else(|| id.to_owned())
    };
    let list = |map: &HashMap<String, String>, ids: &Value| {
        ids.as_array()
            .map(|ids| {
                ids.iter()
                    .map(|id| named(map, id))
                    .collect::<Vec<_>>()
                    .join(if t.is_zh() { "、" } else { ", " })
            })
            .unwrap_or_default()
    };
    if let Some(team) = value.get("team") {
        named(&names.teams, team)
    } else if let Some(teams) = value.get("teams") {
        list(&names.teams, teams)
    } else if let Some(reps) = value.get("reps") {
        list(&names.reps, reps)
    } else if let Some(pool) = value.get("pool") {
        // Pools are named as such ("公海", "华东公海").
        named(&names.pools, pool)
    } else if value.get("existing_owner").is_some() || value == "existing_owner" {
        t.t("existing_owner").to_owned()
    } else if let Some(field) = value.get("owner_field").and_then(Value::as_str) {
        format!("{} {}", t.t("owner_field"), t.label(field))
    } else {
        plain(value, t)
    }
}

fn strategy(value: &Value, t: &Tr) -> String {
    let name = value.get("type").and_then(Value::as_str).unwrap_or("");
    let mut settings: Vec<String> = value
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(key, _)| *key != "type")
        .map(|(key, setting)| format!("{} {}", t.label(key), plain_or_json(setting, t)))
        .collect();
    settings.sort();
    // Strategy names are words of the catalogue (轮询), not field labels.
    let name = match t.t(name) {
        "?" => name,
        word => word,
    };
    if settings.is_empty() {
        name.to_owned()
    } else {
        format!("{name} ({})", settings.join(", "))
    }
}

fn plain_or_json(value: &Value, t: &Tr) -> String {
    match value {
        Value::Object(_) => value.to_string(),
        _ => plain(value, t),
    }
}

/// One rule in a line: "华东 + 制造 → 华东销售组 · 轮询".
pub fn summary(rule: &RuleSpec, t: &Tr, names: &Names) -> String {
    summary_of(&rule_json(rule), t, names)
}

fn summary_of(rule: &Value, t: &Tr, names: &Names) -> String {
    let when = rule
        .get("when")
        .map_or_else(|| t.t("every_lead").to_owned(), |when| condition(when, t));
    let mut line = format!(
        "{when} → {}",
        target(rule.get("target").unwrap_or(&Value::Null), t, names)
    );
    if let Some(chosen) = rule.get("strategy") {
        line.push_str(" · ");
        line.push_str(&strategy(chosen, t));
    }
    line
}

/// One key of a rule, before or after, in words.
fn part(key: &str, value: Option<&Value>, t: &Tr, names: &Names) -> String {
    let Some(value) = value else {
        return "—".to_owned();
    };
    match key {
        "when" => condition(value, t),
        "target" => target(value, t, names),
        "strategy" => strategy(value, t),
        "requires" | "prefers" => value
            .as_array()
            .map(|rows| {
                rows.iter()
                    .map(|row| condition(row, t))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default(),
        _ => plain_or_json(value, t),
    }
}

/// The word for a key of a rule.
fn key_label(key: &str, t: &Tr) -> &'static str {
    match key {
        "name" => t.t("name"),
        "when" => t.t("when"),
        "target" => t.t("target"),
        "strategy" => t.t("strategy"),
        "owner_affinity" => t.t("affinity"),
        "requires" => t.t("requires_short"),
        "prefers" => t.t("prefers_short"),
        "window" => t.t("window_short"),
        "hours" => t.t("hours_policy"),
        "fallback" => t.t("fallback_short"),
        "sla_policy" => t.t("sla_policy"),
        "position" => t.t("position"),
        _ => t.t("other"),
    }
}

fn colon(t: &Tr) -> &'static str {
    if t.is_zh() { "：" } else { ": " }
}

/// What differs between two keyed objects, key by key, in words.
fn differences(old: &Value, new: &Value, t: &Tr, names: &Names) -> Vec<String> {
    let mut keys: Vec<&String> = old
        .as_object()
        .into_iter()
        .flatten()
        .chain(new.as_object().into_iter().flatten())
        .map(|(key, _)| key)
        .filter(|key| key.as_str() != "id")
        .collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|key| old.get(key.as_str()) != new.get(key.as_str()))
        .map(|key| {
            format!(
                "{}{}{} → {}",
                key_label(key, t),
                colon(t),
                part(key, old.get(key.as_str()), t, names),
                part(key, new.get(key.as_str()), t, names)
            )
        })
        .collect()
}

/// What changed from `old` to `new`: rules added, removed and changed (matched by id, in the
/// new order), a rule moved among the others, then tagging, scoring, the default steps and
/// the name. Empty when the two say the same.
pub fn changes(old: &RuleSetSpec, new: &RuleSetSpec, t: &Tr, names: &Names) -> Vec<Change> {
    let old_rules: Vec<Value> = old.rules.iter().map(rule_json).collect();
    let new_rules: Vec<Value> = new.rules.iter().map(rule_json).collect();
    let id = |rule: &Value| {
        rule.get("id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let subject = |rule: &Value| {
        rule.get("name")
            .and_then(Value::as_str)
            .map_or_else(|| id(rule), str::to_owned)
    };
    let old_ids: Vec<String> = old_rules.iter().map(id).collect();
    let new_ids: Vec<String> = new_rules.iter().map(id).collect();
    // A rule moved when its place among the rules both versions have changed.
    let kept_old: Vec<&String> = old_ids.iter().filter(|id| new_ids.contains(id)).collect();
    let kept_new: Vec<&String> = new_ids.iter().filter(|id| old_ids.contains(id)).collect();
    let mut out = Vec::new();
    for rule in &new_rules {
        let rule_id = id(rule);
        match old_ids.iter().position(|old_id| *old_id == rule_id) {
            None => out.push(Change {
                sign: '+',
                subject: subject(rule),
                details: vec![summary_of(rule, t, names)],
            }),
            Some(index) => {
                let mut details = differences(&old_rules[index], rule, t, names);
                let before = kept_old.iter().position(|id| **id == rule_id);
                let after = kept_new.iter().position(|id| **id == rule_id);
                if before != after
                    && let (Some(before), Some(after)) = (before, after)
                {
                    details.push(format!(
                        "{}{}{} → {}",
                        t.t("position"),
                        colon(t),
                        before + 1,
                        after + 1
                    ));
                }
                if !details.is_empty() {
                    out.push(Change {
                        sign: '~',
                        subject: subject(rule),
                        details,
                    });
                }
            }
        }
    }
    for (index, rule) in old_rules.iter().enumerate() {
        if !new_ids.contains(&old_ids[index]) {
            out.push(Change {
                sign: '-',
                subject: subject(rule),
                details: vec![summary_of(rule, t, names)],
            });
        }
    }
    // The other parts, each as a whole.
    let whole = |spec: &RuleSetSpec| {
        let mut value = normalised(&serde_json::to_value(spec).unwrap_or_default());
        // Rules are compared one by one above; the note says why, it is not a change.
        if let Some(object) = value.as_object_mut() {
            object.remove("rules");
            object.remove("note");
        }
        value
    };
    let (old_rest, new_rest) = (whole(old), whole(new));
    for (key, word) in [
        ("tagging", "tagging"),
        ("scoring", "scoring"),
        ("default", "fb_default_short"),
        ("name", "name"),
    ] {
        let (before, after) = (old_rest.get(key), new_rest.get(key));
        if before != after {
            out.push(Change {
                sign: '~',
                subject: t.t(word).to_owned(),
                details: vec![format!(
                    "{} → {}",
                    before.map_or_else(|| "—".to_owned(), |value| plain_or_json(value, t)),
                    after.map_or_else(|| "—".to_owned(), |value| plain_or_json(value, t))
                )],
            });
        }
    }
    out
}

/// Rules that can never route a lead, with why, by position: a rule after one that takes every
/// lead and never passes it on (no condition, no window, no `next_rule` step), or a rule whose
/// `all` asks one field for values no lead can have at once (`region = 华东` and
/// `region = 华南`).
pub fn never_matching(spec: &RuleSetSpec, t: &Tr) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut catch_all: Option<&RuleSpec> = None;
    for (index, rule) in spec.rules.iter().enumerate() {
        if let Some(earlier) = catch_all {
            let name = earlier.name.as_deref().unwrap_or(&earlier.id);
            out.push((
                index,
                if t.is_zh() {
                    format!("永远不会用到：规则「{name}」接收所有线索，且不会转到下一条规则")
                } else {
                    format!("Never reached: rule “{name}” takes every lead and never passes one on")
                },
            ));
            continue;
        }
        if let Some(field) = rule.when.as_ref().and_then(contradiction) {
            out.push((
                index,
                if t.is_zh() {
                    format!(
                        "永远不会命中：条件要求「{}」同时取不同的值",
                        t.label(&field)
                    )
                } else {
                    format!(
                        "Never matches: the condition asks {} for different values at once",
                        t.label(&field)
                    )
                },
            ));
        }
        if rule.when.is_none()
            && rule.window.is_none()
            && !rule
                .fallback
                .contains(&engine::spec::FallbackSpec::NextRule)
        {
            catch_all = Some(rule);
        }
    }
    out
}

/// The field an `all` asks for values no lead can have at once, if any: its `equals` and `in`
/// rows on that field have no value in common.
fn contradiction(when: &engine::spec::ConditionSpec) -> Option<String> {
    let value = normalised(&serde_json::to_value(when).ok()?);
    let rows = value.get("all")?.as_array()?;
    let mut allowed: HashMap<&str, Vec<&Value>> = HashMap::new();
    for row in rows {
        let (Some(field), Some(op), Some(operand)) = (
            row.get("field").and_then(Value::as_str),
            row.get("op").and_then(Value::as_str),
            row.get("value"),
        ) else {
            continue;
        };
        let values: Vec<&Value> = match op {
            "equals" => vec![operand],
            "in" => operand.as_array()?.iter().collect(),
            _ => continue,
        };
        match allowed.get_mut(field) {
            None => {
                allowed.insert(field, values);
            }
            Some(kept) => {
                kept.retain(|value| values.contains(value));
                if kept.is_empty() {
                    return Some(field.to_owned());
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::i18n::Lang;
    use serde_json::json;

    fn spec(value: Value) -> RuleSetSpec {
        serde_json::from_value(value).expect("spec")
    }

    fn names() -> Names {
        Names {
            teams: [("east".to_owned(), "华东销售组".to_owned())].into(),
            pools: [("public".to_owned(), "公海".to_owned())].into(),
            reps: HashMap::new(),
        }
    }

    #[test]
    fn a_rule_reads_as_one_line() {
        let zh = Tr { lang: Lang::Zh };
        let rule: RuleSpec = serde_json::from_value(json!({
            "id": "east", "name": "华东制造",
            "when": {"all": [
                {"field": "region", "op": "equals", "value": "华东"},
                {"field": "industry", "op": "in", "value": ["制造", "零售"]},
                {"field": "budget", "op": "gte", "value": 100000}
            ]},
            "target": {"team": "east"},
            "strategy": {"type": "round_robin"}
        }))
        .expect("rule");
        assert_eq!(
            summary(&rule, &zh, &names()),
            "华东 + 制造、零售 + 预算 大于等于 100000 → 华东销售组 · 轮询"
        );
        let en = Tr { lang: Lang::En };
        let rest: RuleSpec =
            serde_json::from_value(json!({"id": "rest", "target": {"pool": "public"}}))
                .expect("rule");
        assert_eq!(summary(&rest, &en, &names()), "Every lead → 公海");
        let vip: RuleSpec = serde_json::from_value(json!({"id": "vip",
            "when": {"field": "priority", "op": "equals", "value": "urgent"},
            "target": {"team": "east"}}))
        .expect("rule");
        assert_eq!(summary(&vip, &zh, &names()), "紧急 → 华东销售组");
    }

    #[test]
    fn the_same_rules_written_differently_change_nothing() {
        let zh = Tr { lang: Lang::Zh };
        let old = spec(json!({"rules": [{"id": "east",
            "when": {"field": "region", "op": "equals", "value": "华东"},
            "target": {"team": "east"}, "strategy": {"type": "fair_share", "window": "week", "catch_up": {"capped": 20}}}]}));
        let new = spec(
            json!({"rules": [{"id": "east", "window": null, "requires": [], "owner_affinity": false,
            "when": {"all": [{"field": "region", "op": "equals", "value": "华东"}]},
            "target": {"team": "east"}, "strategy": {"type": "fair_share", "window": "week", "catch_up": {"capped": 20}}}],
            "tagging": []}),
        );
        assert_eq!(changes(&old, &new, &zh, &names()), Vec::new());
    }

    #[test]
    fn changes_are_listed_per_rule_in_words() {
        let zh = Tr { lang: Lang::Zh };
        let old = spec(json!({"rules": [
            {"id": "east", "name": "华东", "when": {"field": "region", "op": "equals", "value": "华东"},
             "target": {"team": "east"}, "strategy": {"type": "round_robin"}},
            {"id": "vip", "target": {"team": "east"}},
            {"id": "rest", "target": {"pool": "public"}}
        ]}));
        let new = spec(json!({"rules": [
            {"id": "vip", "target": {"team": "east"}},
            {"id": "east", "name": "华东", "when": {"field": "region", "op": "in", "value": ["华东", "华南"]},
             "target": {"team": "east"}, "strategy": {"type": "least_loaded"}},
            {"id": "new", "name": "新规则", "target": {"team": "east"}}
        ]}));
        let found = changes(&old, &new, &zh, &names());
        assert_eq!(
            found,
            vec![
                Change {
                    sign: '~',
                    subject: "vip".into(),
                    details: vec!["顺序：2 → 1".into()],
                },
                Change {
                    sign: '~',
                    subject: "华东".into(),
                    details: vec![
                        "分配策略：轮询 → 最少负载".into(),
                        "条件：华东 → 华东、华南".into(),
                        "顺序：1 → 2".into(),
                    ],
                },
                Change {
                    sign: '+',
                    subject: "新规则".into(),
                    details: vec!["所有线索 → 华东销售组".into()],
                },
                Change {
                    sign: '-',
                    subject: "rest".into(),
                    details: vec!["所有线索 → 公海".into()],
                },
            ]
        );
    }

    #[test]
    fn rules_that_can_never_route_are_found() {
        let zh = Tr { lang: Lang::Zh };
        let spec = spec(json!({"rules": [
            {"id": "both", "when": {"all": [
                {"field": "region", "op": "equals", "value": "华东"},
                {"field": "region", "op": "in", "value": ["华南", "西南"]}]},
             "target": {"team": "east"}},
            {"id": "fine", "when": {"all": [
                {"field": "region", "op": "in", "value": ["华东", "华南"]},
                {"field": "region", "op": "equals", "value": "华南"}]},
             "target": {"team": "east"}},
            {"id": "passes_on", "target": {"team": "east"}, "fallback": ["next_rule"]},
            {"id": "all", "name": "兜底", "target": {"team": "east"}},
            {"id": "late", "target": {"pool": "public"}}
        ]}));
        let found = never_matching(&spec, &zh);
        assert_eq!(
            found,
            vec![
                (0, "永远不会命中：条件要求「区域」同时取不同的值".to_owned()),
                (
                    4,
                    "永远不会用到：规则「兜底」接收所有线索，且不会转到下一条规则".to_owned()
                ),
            ]
        );
    }
}
