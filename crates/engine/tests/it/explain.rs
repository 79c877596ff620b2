//! Decision records and their explanations, as snapshots in both languages.

use engine::rep::{Caps, RepStatus};
use engine::{DecisionRecord, Language, RepId};
use serde_json::json;

use crate::support::{World, lead_in, leave, org, tuesday_morning};

fn explained_world() -> World {
    let (mut reps, teams) = org();
    reps[0].caps = Caps {
        max_per_day: Some(5),
        ..Caps::default()
    };
    reps[1].leaves = vec![leave("2026-11-20", "2026-12-01")];
    reps[1].industries.push("制造".into());
    reps[3].status = RepStatus::Paused;
    reps[3].industries.push("制造".into());
    let mut world = World::new(
        reps,
        teams,
        json!({"rules": [
            {"id": "vip", "name": "VIP 给高绩效", "when": {"field": "budget", "op": "gte", "value": 1000000}, "target": {"reps": ["r04"]}},
            {"id": "national", "name": "全国制造业", "target": {"team": "national"}, "strategy": {"type": "best_match"},
             "requires": [{"field": "rep.industries", "op": "contains", "ref": "industry"}]}
        ]}),
    );
    for _ in 0..5 {
        let mut state = *world.state.rep(0);
        state.day.add_one(crate::support::day("2026-11-24"));
        world
            .state
            .set_rep(&world.roster, &RepId::new("r01"), state);
    }
    world
}

#[test]
fn a_decision_explains_rules_exclusions_and_the_winner() {
    let mut world = explained_world();
    let mut lead = lead_in("华东", "制造");
    lead.contact.phone = Some("+8613800138000".into());
    let decision = world.route(&lead, tuesday_morning());
    let record = DecisionRecord::new(&decision, &world.rules, &world.roster, &lead);
    insta::assert_snapshot!("explain_en", record.explain(Language::En));
    insta::assert_snapshot!("explain_zh", record.explain(Language::Zh));
    insta::assert_json_snapshot!("record", record, {".at" => "[at]"});
}

#[test]
fn a_held_lead_says_why_nobody_could_take_it() {
    let mut world = explained_world();
    let lead = lead_in("华北", "金融");
    let decision = world.route(&lead, tuesday_morning());
    let record = DecisionRecord::new(&decision, &world.rules, &world.roster, &lead);
    insta::assert_snapshot!("held_en", record.explain(Language::En));
    insta::assert_snapshot!("held_zh", record.explain(Language::Zh));
}

#[test]
fn personal_fields_are_hidden_in_explanations() {
    let (reps, teams) = org();
    let mut world = World::new(
        reps,
        teams,
        json!({"rules": [
            {"id": "staff", "when": {"field": "email", "op": "ends_with", "value": "@example.com"}, "target": {"team": "east"}},
            {"id": "rest", "target": {"team": "south"}}
        ]}),
    );
    let mut lead = lead_in("华东", "制造");
    lead.contact.email = Some("zhang.san@customer.cn".into());
    let decision = world.route(&lead, tuesday_morning());
    let record = DecisionRecord::new(&decision, &world.rules, &world.roster, &lead);
    let json = serde_json::to_string(&record).expect("json");
    assert!(!json.contains("zhang.san"), "{json}");
    assert!(record.explain(Language::En).contains("(hidden)"));
}

#[test]
fn large_teams_stay_compact() {
    let reps: Vec<_> = (0..1000)
        .map(|index| {
            let mut rep = crate::support::rep(&format!("r{index:04}"), &format!("Rep {index}"));
            if index % 2 == 0 {
                rep.status = RepStatus::Paused;
            }
            rep
        })
        .collect();
    let ids: Vec<String> = reps.iter().map(|rep| rep.id.to_string()).collect();
    let members: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut world = World::new(
        reps,
        vec![crate::support::team("big", &members)],
        json!({"rules": [{"id": "all", "target": {"team": "big"}, "strategy": {"type": "least_loaded"}}]}),
    );
    let lead = lead_in("华东", "制造");
    let decision = world.route(&lead, tuesday_morning());
    let record = DecisionRecord::new(&decision, &world.rules, &world.roster, &lead);
    let attempt = &record.attempts[0];
    assert_eq!(attempt.excluded.len(), 1);
    assert_eq!(attempt.excluded[0].count, 500);
    assert_eq!(attempt.excluded[0].reps.len(), 50);
    assert_eq!(attempt.leading.len(), 5);
    let text = record.explain(Language::En);
    assert!(
        text.contains("paused 500: Rep 0, Rep 2, Rep 4 and 497 more"),
        "{text}"
    );
}

/// Requirements narrow a team as sets; the record still lists each rep they turned away with
/// the condition it failed, grouped beside the reps who were unavailable, in roster order.
#[test]
fn reps_a_requirement_turns_away_are_listed_with_the_condition() {
    let reps: Vec<engine::Rep> = (0..6)
        .map(|index| {
            let mut rep = crate::support::rep(&format!("r{index}"), &format!("Rep {index}"));
            rep.industries = vec![if index % 3 == 0 { "零售" } else { "制造" }.into()];
            if index == 1 {
                rep.status = RepStatus::Paused;
            }
            rep
        })
        .collect();
    let members = ["r0", "r1", "r2", "r3", "r4", "r5"];
    let mut world = World::new(
        reps,
        vec![crate::support::team("t", &members)],
        json!({"rules": [{"id": "all", "target": {"team": "t"},
                          "requires": [{"field": "rep.industries", "op": "contains", "ref": "industry"}]}]}),
    );
    let lead = lead_in("华东", "制造");
    let decision = world.route(&lead, tuesday_morning());
    let record = DecisionRecord::new(&decision, &world.rules, &world.roster, &lead);
    let attempt = &record.attempts[0];
    let groups: Vec<(&str, u32, Vec<&str>)> = attempt
        .excluded
        .iter()
        .map(|group| {
            let ids = group.reps.iter().map(|rep| rep.id.as_str()).collect();
            (group.reason.as_str(), group.count, ids)
        })
        .collect();
    assert_eq!(
        groups,
        vec![
            ("requirement", 2, vec!["r0", "r3"]),
            ("paused", 1, vec!["r1"]),
        ]
    );
    assert_eq!(attempt.eligible, 3);
    assert!(
        attempt.excluded[0].reps[0].detail.contains("制造"),
        "{:?}",
        attempt.excluded[0].reps[0]
    );
}
