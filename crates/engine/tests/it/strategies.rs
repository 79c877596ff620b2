//! Each strategy on a small team, through one helper that routes a sequence of leads.

use std::collections::BTreeMap;

use engine::RepId;
use engine::rep::RepStats;
use serde_json::json;

use crate::support::{World, lead, lead_in, org, rep, team, tuesday_morning, weighted_team};

fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs
        .iter()
        .map(|(id, count)| ((*id).to_owned(), *count))
        .collect()
}

/// Routes `leads` leads through a team of the given reps under `strategy`.
fn check(reps: &[&str], strategy: serde_json::Value, leads: usize, expected: &[(&str, usize)]) {
    let mut world = World::new(
        reps.iter().map(|id| rep(id, id)).collect(),
        vec![team("t", reps)],
        json!({"rules": [{"id": "all", "target": {"team": "t"}, "strategy": strategy}]}),
    );
    assert_eq!(
        world.route_many(&lead(), tuesday_morning(), leads),
        counts(expected),
        "{strategy}"
    );
}

#[test]
fn round_robin_rotates_in_rep_order_and_wraps() {
    let mut world = World::new(
        vec![rep("a", "A"), rep("b", "B"), rep("c", "C")],
        vec![team("t", &["c", "a", "b"])],
        json!({"rules": [{"id": "all", "target": {"team": "t"}}]}),
    );
    assert_eq!(
        world.owners(&lead(), tuesday_morning(), 7),
        ["a", "b", "c", "a", "b", "c", "a"]
    );
}

#[test]
fn every_strategy_spreads_evenly_over_equal_reps() {
    for strategy in [
        json!({"type": "round_robin"}),
        json!({"type": "weighted_round_robin"}),
        json!({"type": "least_loaded"}),
        json!({"type": "least_loaded", "measure": "free_capacity"}),
        json!({"type": "longest_idle"}),
        json!({"type": "fair_share", "window": "day"}),
        json!({"type": "best_match"}),
    ] {
        check(
            &["a", "b", "c"],
            strategy,
            30,
            &[("a", 10), ("b", 10), ("c", 10)],
        );
    }
}

#[test]
fn weighted_round_robin_gives_exact_shares_interleaved() {
    let mut world = World::new(
        vec![rep("a", "A"), rep("b", "B")],
        vec![weighted_team("t", &[("a", 1.0), ("b", 2.0)])],
        json!({"rules": [{"id": "all", "target": {"team": "t"}, "strategy": {"type": "weighted_round_robin"}}]}),
    );
    assert_eq!(
        world.owners(&lead(), tuesday_morning(), 6),
        ["b", "a", "b", "b", "a", "b"]
    );
}

#[test]
fn fair_share_follows_weights() {
    let mut world = World::new(
        vec![rep("a", "A"), rep("b", "B"), rep("c", "C")],
        vec![weighted_team("t", &[("a", 1.0), ("b", 3.0), ("c", 6.0)])],
        json!({"rules": [{"id": "all", "target": {"team": "t"}, "strategy": {"type": "fair_share", "window": "month", "catch_up": "full"}}]}),
    );
    assert_eq!(
        world.route_many(&lead(), tuesday_morning(), 100),
        counts(&[("a", 10), ("b", 30), ("c", 60)])
    );
}

#[test]
fn performance_weighting_favours_the_better_converter_within_bounds() {
    let mut world = World::new(
        vec![rep("a", "A"), rep("b", "B")],
        vec![team("t", &["a", "b"])],
        json!({"rules": [{"id": "all", "target": {"team": "t"},
            "strategy": {"type": "weighted_round_robin", "performance": {"conversion": 1, "floor": 0.5, "ceiling": 2}}}]}),
    );
    let strong = RepStats {
        closed: 100,
        won: 40,
        ..RepStats::default()
    };
    let weak = RepStats {
        closed: 100,
        won: 10,
        ..RepStats::default()
    };
    world
        .state
        .rep_mut(&world.roster, &RepId::new("a"))
        .expect("a")
        .stats = strong;
    world
        .state
        .rep_mut(&world.roster, &RepId::new("b"))
        .expect("b")
        .stats = weak;
    let counts = world.route_many(&lead(), tuesday_morning(), 300);
    // Smoothed rates 0.382 and 0.118 against a mean of 0.25 give factors 1.53 and 0.5 (the
    // floor): about 3 leads to 1.
    assert_eq!(counts["a"], 227, "{counts:?}");
    assert_eq!(counts["b"], 73, "{counts:?}");
}

#[test]
fn least_loaded_counts_open_leads() {
    let mut world = World::new(
        vec![rep("a", "A"), rep("b", "B"), rep("c", "C")],
        vec![team("t", &["a", "b", "c"])],
        json!({"rules": [{"id": "all", "target": {"team": "t"}, "strategy": {"type": "least_loaded"}}]}),
    );
    assert_eq!(
        world.route_many(&lead(), tuesday_morning(), 30),
        counts(&[("a", 10), ("b", 10), ("c", 10)])
    );
    world.close_leads_of("b", 5);
    assert_eq!(
        world.owners(&lead(), tuesday_morning() + chrono::Duration::hours(1), 5),
        ["b"; 5]
    );
}

#[test]
fn longest_idle_serves_the_rep_waiting_longest() {
    let mut world = World::new(
        vec![rep("a", "A"), rep("b", "B"), rep("c", "C")],
        vec![team("t", &["a", "b", "c"])],
        json!({"rules": [{"id": "all", "target": {"team": "t"}, "strategy": {"type": "longest_idle"}}]}),
    );
    world
        .state
        .rep_mut(&world.roster, &RepId::new("a"))
        .expect("a")
        .last_assigned_at = Some(tuesday_morning());
    world
        .state
        .rep_mut(&world.roster, &RepId::new("c"))
        .expect("c")
        .last_assigned_at = Some(tuesday_morning() - chrono::Duration::hours(3));
    assert_eq!(world.owners(&lead(), tuesday_morning(), 3), ["b", "c", "a"]);
}

#[test]
fn best_match_prefers_the_rep_who_covers_the_lead() {
    let (reps, teams) = org();
    let mut world = World::new(
        reps,
        teams,
        json!({"rules": [{"id": "all", "target": {"team": "national"}, "strategy": {"type": "best_match"}}]}),
    );
    let decision = world.route(&lead_in("华南", "制造"), tuesday_morning());
    assert_eq!(decision.owner().map(RepId::as_str), Some("r03"));
    let decision = world.route(&lead_in("华东", "制造"), tuesday_morning());
    assert_eq!(decision.owner().map(RepId::as_str), Some("r01"));
}

#[test]
fn best_match_sends_promising_leads_to_the_strongest_closer() {
    let mut world = World::new(
        vec![rep("a", "A"), rep("b", "B")],
        vec![team("t", &["a", "b"])],
        json!({"rules": [{"id": "all", "target": {"team": "t"}, "strategy": {"type": "best_match",
            "weights": {"conversion": 0.1, "load": 0.3, "win_probability": 0.5}}}]}),
    );
    for (id, won) in [("a", 40), ("b", 10)] {
        let rep = world
            .state
            .rep_mut(&world.roster, &RepId::new(id))
            .expect("rep");
        rep.stats = RepStats {
            closed: 100,
            won,
            ..RepStats::default()
        };
    }
    world
        .state
        .rep_mut(&world.roster, &RepId::new("a"))
        .expect("a")
        .open_leads = 10;
    // A model with only an intercept gives every lead the same probability.
    let catalogue = world.rules.catalogue.clone();
    let model_with = |intercept: f64| {
        let spec = engine::model::ModelSpec {
            intercept,
            time_zone: "Asia/Shanghai".into(),
            features: Vec::new(),
        };
        engine::model::WinModel::compile(&spec, &catalogue, 1).expect("model")
    };
    // Unscored, the busy strong closer loses to the free weaker one on load; a lead likely to
    // close (90%) goes to the strong closer, an unlikely one (10%) still to the free rep.
    let unscored = world.route(&lead(), tuesday_morning());
    assert_eq!(unscored.owner().map(RepId::as_str), Some("b"));
    assert!(
        !unscored.attempts[0].leading[0]
            .parts
            .iter()
            .any(|(name, _)| *name == "win_probability")
    );
    world.close_leads_of("b", 1);
    world.model = Some(model_with(2.2));
    let promising = world.route(&lead(), tuesday_morning());
    assert_eq!(promising.owner().map(RepId::as_str), Some("a"));
    let parts = &promising.attempts[0].leading[0].parts;
    assert!(
        parts
            .iter()
            .any(|(name, value)| *name == "win_probability" && *value > 0.8)
    );
    world.close_leads_of("a", 1);
    world.model = Some(model_with(-2.2));
    let unlikely = world.route(&lead(), tuesday_morning());
    assert_eq!(unlikely.owner().map(RepId::as_str), Some("b"));
}

#[test]
fn best_match_breaks_ties_by_fair_share_then_idle_time() {
    let mut world = World::new(
        vec![rep("a", "A"), rep("b", "B")],
        vec![team("t", &["a", "b"])],
        json!({"rules": [{"id": "all", "target": {"team": "t"}, "strategy": {"type": "best_match", "weights": {"load": 0}}}]}),
    );
    let first = world.route(&lead(), tuesday_morning());
    assert_eq!(
        first.attempts[0].tie_break,
        Some(engine::strategy::TieBreak::RepOrder)
    );
    let second = world.route(&lead(), tuesday_morning());
    assert_eq!(second.owner().map(RepId::as_str), Some("b"));
    assert_eq!(
        second.attempts[0].tie_break,
        Some(engine::strategy::TieBreak::FairShare)
    );
}
