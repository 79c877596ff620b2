//! Rule-set documents with mistakes: every error names the rule and the path, all at once.

use engine::{FieldCatalogue, Known, Roster, RuleSetSpec, compile};
use serde_json::json;

use crate::support::{POOLS, org};

/// Compiles a document against the test org and renders its errors one per line.
fn errors(document: serde_json::Value) -> String {
    let (reps, teams) = org();
    let roster = Roster::new(reps, teams).expect("roster");
    let spec: RuleSetSpec = serde_json::from_value(document).expect("document shape");
    let pools: Vec<String> = POOLS.iter().map(|pool| (*pool).to_owned()).collect();
    match compile(
        &spec,
        Known {
            catalogue: &FieldCatalogue::default(),
            roster: &roster,
            pools: &pools,
            sla_policies: &[],
        },
        1,
    ) {
        Ok(_) => "ok".to_owned(),
        Err(errors) => errors
            .iter()
            .map(|error| format!("[{}] {}", error.code, error))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

#[test]
fn references_to_unknown_teams_reps_pools_and_fields_are_located() {
    insta::assert_snapshot!(errors(json!({
        "rules": [
            {"id": "east", "when": {"field": "regoin", "op": "equals", "value": "华东"}, "target": {"team": "east"}},
            {"id": "west", "target": {"team": "west"}},
            {"id": "named", "target": {"reps": ["r01", "r99"]}},
            {"id": "pool", "target": {"pool": "海"}},
            {"id": "east", "target": {"team": "east"}, "fallback": [{"team": "nowhere"}]}
        ]
    })));
}

#[test]
fn operators_values_and_types_are_checked_against_the_catalogue() {
    insta::assert_snapshot!(errors(json!({
        "rules": [
            {"id": "a", "target": {"team": "east"}, "when": {"all": [
                {"field": "budget", "op": "contains", "value": "x"},
                {"field": "region", "op": "eq", "value": "华东"},
                {"field": "company_size", "op": "between", "value": [500, 10]},
                {"field": "company", "op": "matches", "value": "(unclosed"},
                {"field": "region", "op": "in", "value": "华东"},
                {"field": "rep.level", "op": "gte", "value": 2},
                {"field": "region", "op": "exists", "value": "x"},
                {"any": []}
            ]}},
            {"id": "b", "target": {"team": "east"},
             "requires": [{"field": "rep.industries", "op": "contains", "ref": "lead.budget"}, {"field": "rep.skills", "op": "exists"}],
             "window": {"weekdays": ["mon", "funday"], "hours": "9-18", "time_zone": "Mars/Olympus"},
             "strategy": {"type": "fair_share", "window": "year"}}
        ]
    })));
}

#[test]
fn values_of_the_wrong_type_are_refused_not_dropped() {
    // Each of these once compiled with its condition silently left out, so the rule matched
    // more than it said.
    assert_eq!(
        errors(json!({
            "rules": [{"id": "a", "target": {"team": "east"}, "when": {"all": [
                {"field": "budget", "op": "gte", "value": "一千"},
                {"field": "budget", "op": "in", "value": [1, "两"]},
                {"field": "created_at", "op": "gte", "value": "yesterday"},
                {"field": "tags", "op": "contains", "value": 5},
                {"field": "company_size", "op": "between", "value": [1]}
            ]}}]
        })),
        [
            "[invalid_value] rules[0].when.all[0].value (rule a): gte on a number field needs a number",
            "[invalid_value] rules[0].when.all[1].value (rule a): in on a number field needs a list of numbers",
            "[invalid_value] rules[0].when.all[2].value (rule a): gte on a time field needs an RFC 3339 time",
            "[invalid_value] rules[0].when.all[3].value (rule a): contains on a list field needs a text",
            "[invalid_value] rules[0].when.all[4].value (rule a): between on a number field needs [low, high], two numbers",
        ]
        .join("\n")
    );
}

#[test]
fn a_valid_document_compiles() {
    assert_eq!(
        errors(json!({
            "rules": [{"id": "all", "target": {"team": "national"}, "strategy": {"type": "best_match"},
                       "requires": [{"field": "rep.regions", "op": "contains", "ref": "region"}]}],
            "tagging": [{"id": "big", "when": {"field": "company_size", "op": "gte", "value": 1000}, "add_tags": ["大客户"]}],
            "scoring": {"rules": [{"id": "budget", "when": {"field": "budget", "op": "gte", "value": 100000}, "points": 40}],
                        "tiers": [{"min_score": 60, "priority": "high"}]},
            "default": [{"pool": "公海"}]
        })),
        "ok"
    );
}

#[test]
fn unknown_keys_in_a_document_are_refused_with_their_location() {
    let error = RuleSetSpec::from_json(
        r#"{"rules": [{"id": "a", "target": {"team": "east"}, "stratgy": {}}]}"#,
    )
    .expect_err("unknown key");
    assert!(error.contains("unknown field `stratgy`"), "{error}");
    assert!(error.contains("line 1"), "{error}");
    let error =
        RuleSetSpec::from_toml("[[rules]]\nid = \"a\"\ntarget = { team = \"east\" }\nwhen = 3\n")
            .expect_err("bad type");
    assert!(error.contains("when"), "{error}");
}
