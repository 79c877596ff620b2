//! Scenarios users of other routers run into, end to end through `route`.

use chrono::Duration;
use engine::rep::RepStatus;
use engine::team::{Overflow, TeamPolicy};
use engine::{Lead, Outcome, RepId};
use serde_json::json;

use crate::support::{
    World, at, caps, lead, lead_in, leave, office_hours, org, rep, team, tuesday_morning,
};

fn owner(decision: &engine::Decision) -> Option<&str> {
    decision.owner().map(RepId::as_str)
}

#[test]
fn rotation_continues_after_earlier_leads_are_closed() {
    let mut world = World::new(
        vec![rep("a", "A"), rep("b", "B"), rep("c", "C")],
        vec![team("t", &["a", "b", "c"])],
        json!({"rules": [{"id": "all", "target": {"team": "t"}}]}),
    );
    assert_eq!(
        world.owners(&lead(), tuesday_morning(), 4),
        ["a", "b", "c", "a"]
    );
    world.close_leads_of("a", 2);
    world.close_leads_of("b", 1);
    assert_eq!(world.owners(&lead(), tuesday_morning(), 3), ["b", "c", "a"]);
}

#[test]
fn rotation_survives_the_last_rep_leaving_the_team() {
    let rules = json!({"rules": [{"id": "all", "target": {"team": "t"}}]});
    let mut world = World::new(
        vec![rep("a", "A"), rep("b", "B"), rep("c", "C")],
        vec![team("t", &["a", "b", "c"])],
        rules.clone(),
    );
    assert_eq!(world.owners(&lead(), tuesday_morning(), 2), ["a", "b"]);
    let rotation = world.state.rotation("teams:t").cloned().expect("rotation");
    let mut smaller = World::new(
        vec![rep("a", "A"), rep("c", "C")],
        vec![team("t", &["a", "c"])],
        rules,
    );
    smaller.state.set_rotation("teams:t".into(), rotation);
    assert_eq!(
        smaller.owners(&lead(), tuesday_morning(), 3),
        ["c", "a", "c"]
    );
}

#[test]
fn reps_on_leave_or_paused_are_skipped() {
    let mut on_leave = rep("b", "B");
    on_leave.leaves = vec![leave("2026-11-20", "2026-12-01")];
    let mut paused = rep("c", "C");
    paused.status = RepStatus::Paused;
    let mut world = World::new(
        vec![rep("a", "A"), on_leave, paused, rep("d", "D")],
        vec![team("t", &["a", "b", "c", "d"])],
        json!({"rules": [{"id": "all", "target": {"team": "t"}}]}),
    );
    assert_eq!(
        world.owners(&lead(), tuesday_morning(), 4),
        ["a", "d", "a", "d"]
    );
    // After the leave, b is back in the rotation, which continues after d.
    assert_eq!(
        world.owners(&lead(), at("2026-12-02T02:00:00Z"), 3),
        ["a", "b", "d"]
    );
}

#[test]
fn a_rep_back_from_two_weeks_of_leave_is_not_flooded_under_capped_catch_up() {
    let mut back = rep("d", "D");
    back.leaves = vec![leave("2026-11-02", "2026-11-15")];
    let mut world = World::new(
        vec![rep("a", "A"), rep("b", "B"), rep("c", "C"), back],
        vec![team("t", &["a", "b", "c", "d"])],
        json!({"rules": [{"id": "all", "target": {"team": "t"},
            "strategy": {"type": "fair_share", "window": "month", "catch_up": {"capped": 3}}}]}),
    );
    // Two weeks of 9 leads a day while d is away: a, b and c get 42 each.
    for day in 2..16 {
        let morning = at(&format!("2026-11-{day:02}T01:00:00Z"));
        let counts = world.route_many(&lead(), morning, 9);
        assert!(!counts.contains_key("d"));
    }
    // d is back: of the next 16 leads, d gets 3 to catch up plus a quarter of the rest.
    let owners = world.owners(&lead(), at("2026-11-16T01:00:00Z"), 16);
    let for_d = owners.iter().filter(|owner| *owner == "d").count();
    assert!((6..=7).contains(&for_d), "{owners:?}");
    assert_eq!(owners[..3], ["d", "d", "d"], "{owners:?}");
    assert_ne!(owners[3], "d", "{owners:?}");

    // Under "full" catch-up the same history floods d.
    world.rules = crate::support::compile_json(
        &world.roster,
        json!({"rules": [{"id": "all", "target": {"team": "t"},
            "strategy": {"type": "fair_share", "window": "month", "catch_up": "full"}}]}),
    );
    let owners = world.owners(&lead(), at("2026-11-17T01:00:00Z"), 16);
    assert!(owners.iter().all(|owner| owner == "d"), "{owners:?}");
}

#[test]
fn preferred_matches_are_served_before_the_widened_pool() {
    let (reps, teams) = org();
    let mut world = World::new(
        reps,
        teams,
        json!({"rules": [{"id": "all", "target": {"team": "national"},
            "prefers": [{"field": "rep.regions", "op": "contains", "ref": "region"},
                        {"field": "rep.industries", "op": "contains", "ref": "industry"}]}]}),
    );
    // Only 张伟 covers both 华东 and 制造.
    let decision = world.route(&lead_in("华东", "制造"), tuesday_morning());
    assert_eq!(owner(&decision), Some("r01"));
    assert_eq!(decision.attempts[0].preferences, Some((2, 2)));
    // Nobody covers 华西 + 制造: widen to industry-less matches… then to region only fails
    // too, so everyone is a candidate and rotation continues after r01.
    let decision = world.route(&lead_in("华西", "金融"), tuesday_morning());
    assert_eq!(decision.attempts[0].preferences, Some((0, 2)));
    assert_eq!(owner(&decision), Some("r02"));
    // 华东 with an industry nobody there covers: the region preference alone holds.
    let decision = world.route(&lead_in("华东", "金融"), tuesday_morning());
    assert_eq!(decision.attempts[0].preferences, Some((1, 2)));
    assert!(matches!(owner(&decision), Some("r01" | "r02")));
}

#[test]
fn the_higher_rule_wins_when_two_match() {
    let (reps, teams) = org();
    let mut world = World::new(
        reps,
        teams,
        json!({"rules": [
            {"id": "vip", "when": {"field": "budget", "op": "gte", "value": 1000000}, "target": {"reps": ["r04"]}},
            {"id": "east", "when": {"field": "region", "op": "equals", "value": "华东"}, "target": {"team": "east"}}
        ]}),
    );
    let mut vip = lead_in("华东", "制造");
    vip.budget = Some(2_000_000.0);
    assert_eq!(owner(&world.route(&vip, tuesday_morning())), Some("r04"));
    assert_eq!(
        owner(&world.route(&lead_in("华东", "制造"), tuesday_morning())),
        Some("r01")
    );
}

#[test]
fn weekday_and_hour_windows_choose_the_rule() {
    let (reps, teams) = org();
    let mut world = World::new(
        reps,
        teams,
        json!({"rules": [
            {"id": "office", "window": {"weekdays": ["mon", "tue", "wed", "thu", "fri"], "hours": "09:00-18:00"}, "target": {"team": "east"}},
            {"id": "night", "window": {"hours": "18:00-09:00"}, "target": {"team": "south"}},
            {"id": "weekend", "target": {"reps": ["r04"]}}
        ]}),
    );
    // Tuesday 10:00 Shanghai.
    assert_eq!(owner(&world.route(&lead(), tuesday_morning())), Some("r01"));
    // Tuesday 20:00 and Wednesday 03:00 Shanghai.
    assert_eq!(
        owner(&world.route(&lead(), at("2026-11-24T12:00:00Z"))),
        Some("r03")
    );
    assert_eq!(
        owner(&world.route(&lead(), at("2026-11-24T19:00:00Z"))),
        Some("r03")
    );
    // Saturday 11:00 Shanghai.
    assert_eq!(
        owner(&world.route(&lead(), at("2026-11-28T03:00:00Z"))),
        Some("r04")
    );
}

#[test]
fn a_known_customers_lead_goes_to_its_owner_unless_the_owner_is_on_leave() {
    let (mut reps, teams) = org();
    let rules =
        json!({"rules": [{"id": "east", "target": {"team": "east"}, "owner_affinity": true}]});
    let mut returning = lead_in("华东", "制造");
    returning.known_owner = Some(RepId::new("r02"));
    let mut world = World::new(reps.clone(), teams.clone(), rules.clone());
    for _ in 0..3 {
        let decision = world.route(&returning, tuesday_morning());
        assert_eq!(owner(&decision), Some("r02"));
        assert_eq!(decision.attempts[0].step, engine::decision::Step::Affinity);
    }
    reps[1].leaves = vec![leave("2026-11-23", "2026-11-27")];
    let mut world = World::new(reps, teams, rules);
    let decision = world.route(&returning, tuesday_morning());
    assert_eq!(owner(&decision), Some("r01"));
    assert_eq!(decision.attempts.len(), 2);
}

#[test]
fn caps_exclude_reps_until_the_next_period_in_their_time_zone() {
    let mut capped = rep("a", "A");
    capped.caps.max_per_day = Some(2);
    let mut world = World::new(
        vec![capped, rep("b", "B")],
        vec![team("t", &["a", "b"])],
        json!({"rules": [{"id": "all", "target": {"team": "t"}}]}),
    );
    assert_eq!(
        world.owners(&lead(), tuesday_morning(), 6),
        ["a", "b", "a", "b", "b", "b"]
    );
    // 23:59 Tuesday in Shanghai is still the same day; 00:01 Wednesday is a new one.
    assert_eq!(world.owners(&lead(), at("2026-11-24T15:59:00Z"), 1), ["b"]);
    assert_eq!(
        world.owners(&lead(), at("2026-11-24T16:01:00Z"), 2),
        ["a", "b"]
    );
}

#[test]
fn the_holding_cap_counts_open_leads() {
    let mut capped = rep("a", "A");
    capped.caps = engine::rep::Caps {
        max_open: Some(1),
        ..caps()
    };
    let mut world = World::new(
        vec![capped],
        vec![team("t", &["a"])],
        json!({"rules": [{"id": "all", "target": {"team": "t"}, "fallback": [{"pool": "公海"}]}]}),
    );
    assert_eq!(owner(&world.route(&lead(), tuesday_morning())), Some("a"));
    let decision = world.route(&lead(), tuesday_morning());
    assert_eq!(
        decision.outcome,
        Outcome::Pooled {
            pool: "公海".into()
        }
    );
    world.close_leads_of("a", 1);
    assert_eq!(owner(&world.route(&lead(), tuesday_morning())), Some("a"));
}

#[test]
fn nobody_eligible_overflows_then_holds_and_never_drops_the_lead() {
    let (mut reps, mut teams) = org();
    reps[0].status = RepStatus::Paused;
    reps[1].status = RepStatus::Inactive;
    teams[0].overflow = Some(Overflow::Team("south".into()));
    let mut world = World::new(
        reps.clone(),
        teams.clone(),
        json!({"rules": [{"id": "east", "target": {"team": "east"}}]}),
    );
    assert_eq!(owner(&world.route(&lead(), tuesday_morning())), Some("r03"));
    reps[2].status = RepStatus::OnLeave;
    let mut world = World::new(
        reps,
        teams,
        json!({"rules": [{"id": "east", "target": {"team": "east"}}]}),
    );
    let decision = world.route(&lead(), tuesday_morning());
    assert_eq!(decision.outcome, Outcome::Held);
    assert!(decision.changes.is_empty());
}

#[test]
fn next_rule_falls_through_and_unmatched_leads_take_the_default() {
    let (mut reps, teams) = org();
    reps[0].status = RepStatus::Paused;
    reps[1].status = RepStatus::Paused;
    let mut world = World::new(
        reps,
        teams,
        json!({"rules": [
            {"id": "east", "when": {"field": "region", "op": "equals", "value": "华东"}, "target": {"team": "east"}, "fallback": ["next_rule"]},
            {"id": "manufacturing", "when": {"field": "industry", "op": "equals", "value": "制造"}, "target": {"team": "south"}}
        ], "default": [{"pool": "公海"}]}),
    );
    assert_eq!(
        owner(&world.route(&lead_in("华东", "制造"), tuesday_morning())),
        Some("r03")
    );
    let decision = world.route(&lead_in("华东", "金融"), tuesday_morning());
    assert_eq!(
        decision.outcome,
        Outcome::Pooled {
            pool: "公海".into()
        }
    );
}

#[test]
fn working_hours_apply_in_the_reps_own_time_zone_with_an_away_fallback() {
    let mut shanghai = rep("a", "A");
    shanghai.hours = Some(office_hours());
    let mut berlin = rep("b", "B");
    berlin.hours = Some(office_hours());
    berlin.time_zone = chrono_tz::Europe::Berlin;
    let mut teams = vec![team("t", &["a", "b"])];
    let mut world = World::new(
        vec![shanghai.clone(), berlin.clone()],
        teams.clone(),
        json!({"rules": [{"id": "all", "target": {"team": "t"}}]}),
    );
    // 10:00 Shanghai is 03:00 Berlin; 17:00 Berlin is midnight in Shanghai.
    assert_eq!(world.owners(&lead(), tuesday_morning(), 2), ["a", "a"]);
    assert_eq!(
        world.owners(&lead(), at("2026-11-24T16:00:00Z"), 2),
        ["b", "b"]
    );
    // Nobody in hours at 03:00 Shanghai / 20:00 Berlin: held, unless the team allows away reps.
    let night = at("2026-11-24T19:00:00Z");
    assert_eq!(world.route(&lead(), night).outcome, Outcome::Held);
    teams[0].policy = TeamPolicy {
        away_fallback: true,
        ..TeamPolicy::default()
    };
    let mut world = World::new(
        vec![shanghai, berlin],
        teams,
        json!({"rules": [{"id": "all", "target": {"team": "t"}}]}),
    );
    let decision = world.route(&lead(), night);
    assert!(decision.attempts[0].away_fallback);
    assert!(decision.owner().is_some());
}

#[test]
fn hard_requirements_exclude_reps_and_a_missing_lead_value_does_not_constrain() {
    let (reps, teams) = org();
    let mut world = World::new(
        reps,
        teams,
        json!({"rules": [{"id": "skilled", "target": {"team": "national"},
            "requires": [{"field": "rep.industries", "op": "contains", "ref": "industry"},
                         {"field": "rep.level", "op": "gte", "value": 1}]}]}),
    );
    let owners: Vec<_> = (0..4)
        .map(|_| {
            owner(&world.route(&lead_in("华东", "制造"), tuesday_morning())).map(str::to_owned)
        })
        .collect();
    assert_eq!(
        owners,
        [
            Some("r01".into()),
            Some("r03".into()),
            Some("r01".into()),
            Some("r03".into())
        ]
    );
    let anyone = world.route(&Lead::default(), tuesday_morning());
    assert_eq!(anyone.attempts[0].excluded_count(), 0);
}

#[test]
fn a_rep_below_their_weekly_floor_is_preferred_until_it_is_met() {
    let mut junior = rep("c", "C");
    junior.caps.min_per_week = Some(3);
    let mut world = World::new(
        vec![rep("a", "A"), rep("b", "B"), junior],
        vec![team("t", &["a", "b", "c"])],
        json!({"rules": [{"id": "all", "target": {"team": "t"}}]}),
    );
    assert_eq!(
        world.owners(&lead(), tuesday_morning(), 6),
        ["c", "c", "c", "a", "b", "c"]
    );
}

#[test]
fn the_exclusion_list_keeps_previous_owners_out() {
    let mut world = World::new(
        vec![rep("a", "A"), rep("b", "B")],
        vec![team("t", &["a", "b"])],
        json!({"rules": [{"id": "all", "target": {"team": "t"}}]}),
    );
    for minute in 0..4 {
        let decision = world.route_excluding(
            &lead(),
            tuesday_morning() + Duration::minutes(minute),
            &[RepId::new("a")],
        );
        assert_eq!(owner(&decision), Some("b"));
    }
}

#[test]
fn an_owner_field_names_the_rep_directly() {
    let (reps, teams) = org();
    let mut world = World::new(
        reps,
        teams,
        json!({"rules": [{"id": "direct", "target": {"owner_field": "owner"}, "fallback": [{"team": "east"}]}]}),
    );
    let mut named = lead();
    named.owner = Some(RepId::new("r04"));
    assert_eq!(owner(&world.route(&named, tuesday_morning())), Some("r04"));
    assert_eq!(owner(&world.route(&lead(), tuesday_morning())), Some("r01"));
}

#[test]
fn tagging_and_scoring_feed_routing_conditions() {
    let (reps, teams) = org();
    let mut world = World::new(
        reps,
        teams,
        json!({
            "tagging": [{"id": "big", "when": {"field": "company_size", "op": "gte", "value": 1000}, "add_tags": ["大客户"]}],
            "scoring": {"base": 10, "rules": [
                {"id": "big", "when": {"field": "tags", "op": "contains", "value": "大客户"}, "points": 50},
                {"id": "budget", "when": {"field": "budget", "op": "gte", "value": 100000}, "points": 30}
            ], "tiers": [{"min_score": 80, "priority": "urgent"}, {"min_score": 50, "priority": "high"}]},
            "rules": [
                {"id": "urgent", "when": {"field": "priority", "op": "equals", "value": "urgent"}, "target": {"reps": ["r04"]}},
                {"id": "rest", "target": {"team": "east"}}
            ]
        }),
    );
    let big = Lead {
        company_size: Some(5000.0),
        budget: Some(500_000.0),
        ..lead()
    };
    let decision = world.route(&big, tuesday_morning());
    assert_eq!(decision.tags_added, ["大客户"]);
    assert_eq!(decision.score, Some(90.0));
    assert_eq!(decision.priority, Some(engine::Priority::Urgent));
    assert_eq!(owner(&decision), Some("r04"));
    let small = world.route(
        &Lead {
            company_size: Some(20.0),
            ..lead()
        },
        tuesday_morning(),
    );
    assert_eq!(small.score, Some(10.0));
    assert_eq!(owner(&small), Some("r01"));
}

#[test]
fn manual_assignment_respects_caps_but_not_hours() {
    let mut busy = rep("a", "A");
    busy.caps.max_open = Some(1);
    busy.hours = Some(office_hours());
    let world = World::new(vec![busy], vec![team("t", &["a"])], json!({"rules": []}));
    let night = at("2026-11-24T19:00:00Z");
    let changes = engine::assign_manually(&world.roster, &world.state, &RepId::new("a"), night)
        .expect("assign");
    let mut state = world.state.clone();
    state.apply(&world.roster, &changes);
    let refused = engine::assign_manually(&world.roster, &state, &RepId::new("a"), night);
    assert!(matches!(
        refused,
        Err(engine::route::ManualError::Ineligible(_))
    ));
}
