//! Condition rows and trees over a lead, checked through one helper.

use engine::field::{CustomField, LeadView};
use engine::value::{FieldType, Value};
use engine::{FieldCatalogue, Lead, Roster, compile};
use serde_json::json;

use crate::support::{POOLS, at};

fn catalogue() -> FieldCatalogue {
    FieldCatalogue::new(
        vec![
            CustomField {
                name: "seats".into(),
                field_type: FieldType::Number,
            },
            CustomField {
                name: "trial".into(),
                field_type: FieldType::Bool,
            },
        ],
        Vec::new(),
    )
    .expect("catalogue")
}

fn sample() -> Lead {
    let mut lead = Lead {
        company: Some("上海精密机械有限公司".into()),
        region: Some("华东".into()),
        industry: Some("制造".into()),
        city: Some("苏州".into()),
        company_size: Some(350.0),
        budget: Some(200_000.0),
        source: Some("巨量引擎".into()),
        tags: vec!["展会".into(), "高潜力".into()],
        created_at: Some(at("2026-11-24T02:00:00Z")),
        ..Lead::default()
    };
    lead.contact.phone = Some("+8613800138000".into());
    lead.attributes.insert("seats".into(), Value::Number(40.0));
    lead.attributes.insert("trial".into(), Value::Bool(true));
    lead
}

/// Compiles `condition` as a rule's `when` and checks whether the sample lead matches it.
fn check(condition: serde_json::Value, expected: bool) {
    let roster = Roster::default();
    let catalogue = catalogue();
    let spec = serde_json::from_value(json!({
        "rules": [{"id": "r", "when": condition, "target": {"pool": "公海"}}]
    }))
    .expect("spec");
    let pools: Vec<String> = POOLS.iter().map(|pool| (*pool).to_owned()).collect();
    let rules = compile(
        &spec,
        engine::Known {
            catalogue: &catalogue,
            roster: &roster,
            pools: &pools,
            sla_policies: &[],
        },
        1,
    )
    .unwrap_or_else(|errors| panic!("{condition}: {errors:?}"));
    let lead = sample();
    let view = LeadView::new(&lead, &catalogue);
    let when = rules.rules[0].when.as_ref().expect("condition");
    assert_eq!(when.matches(&view), expected, "{condition}");
}

#[test]
fn text_operators_compare_exactly() {
    check(
        json!({"field": "region", "op": "equals", "value": "华东"}),
        true,
    );
    check(
        json!({"field": "region", "op": "not_equals", "value": "华东"}),
        false,
    );
    check(
        json!({"field": "region", "op": "in", "value": ["华南", "华东"]}),
        true,
    );
    check(
        json!({"field": "region", "op": "not_in", "value": ["华南", "华北"]}),
        true,
    );
    check(
        json!({"field": "company", "op": "contains", "value": "精密"}),
        true,
    );
    check(
        json!({"field": "company", "op": "contains_any", "value": ["软件", "机械"]}),
        true,
    );
    check(
        json!({"field": "company", "op": "starts_with", "value": "上海"}),
        true,
    );
    check(
        json!({"field": "company", "op": "ends_with", "value": "有限公司"}),
        true,
    );
    check(
        json!({"field": "company", "op": "matches", "value": "^上海.+公司$"}),
        true,
    );
    check(
        json!({"field": "phone", "op": "starts_with", "value": "+86138"}),
        true,
    );
}

#[test]
fn a_missing_value_fails_positive_tests_and_passes_negated_ones() {
    check(
        json!({"field": "title", "op": "equals", "value": "CEO"}),
        false,
    );
    check(
        json!({"field": "title", "op": "not_equals", "value": "CEO"}),
        true,
    );
    check(json!({"field": "title", "op": "missing"}), true);
    check(json!({"field": "title", "op": "exists"}), false);
    check(json!({"field": "budget", "op": "exists"}), true);
}

#[test]
fn list_fields_test_membership() {
    check(
        json!({"field": "tags", "op": "contains", "value": "展会"}),
        true,
    );
    check(
        json!({"field": "tags", "op": "not_contains", "value": "测试"}),
        true,
    );
    check(
        json!({"field": "tags", "op": "contains_any", "value": ["大客户", "高潜力"]}),
        true,
    );
    check(
        json!({"field": "tags", "op": "contains_any", "value": ["大客户"]}),
        false,
    );
}

#[test]
fn numbers_and_times_compare_and_range() {
    check(
        json!({"field": "company_size", "op": "gte", "value": 350}),
        true,
    );
    check(
        json!({"field": "company_size", "op": "gt", "value": 350}),
        false,
    );
    check(
        json!({"field": "budget", "op": "between", "value": [100000, 500000]}),
        true,
    );
    check(
        json!({"field": "budget", "op": "lt", "value": 100000}),
        false,
    );
    check(
        json!({"field": "created_at", "op": "gte", "value": "2026-11-24"}),
        true,
    );
    check(
        json!({"field": "created_at", "op": "between", "value": ["2026-11-01", "2026-11-30T23:59:59+08:00"]}),
        true,
    );
    check(
        json!({"field": "attributes.seats", "op": "in", "value": [20, 40]}),
        true,
    );
    check(
        json!({"field": "attributes.trial", "op": "equals", "value": true}),
        true,
    );
}

#[test]
fn groups_combine_rows() {
    check(
        json!({"all": [
            {"field": "region", "op": "equals", "value": "华东"},
            {"any": [
                {"field": "industry", "op": "equals", "value": "金融"},
                {"field": "budget", "op": "gte", "value": 100000}
            ]},
            {"not": {"field": "tags", "op": "contains", "value": "测试"}}
        ]}),
        true,
    );
    check(
        json!({"any": [
            {"field": "region", "op": "equals", "value": "华南"},
            {"field": "industry", "op": "equals", "value": "金融"}
        ]}),
        false,
    );
    check(
        json!({"not": {"field": "region", "op": "equals", "value": "华东"}}),
        false,
    );
}
