//! Invariants over random rosters and lead sequences: never an ineligible rep, no cap
//! exceeded, exact rotations, fair share converging, and determinism.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use engine::hours::LocalNow;
use engine::rep::{Caps, RepStatus};
use engine::{Lead, Rep, RepId, RouteRequest, route};
use proptest::prelude::*;
use serde_json::json;

use crate::support::{World, at, leave, office_hours, rep, team, weighted_team};

#[derive(Clone, Debug)]
struct RepSetup {
    status: RepStatus,
    on_leave: bool,
    office_hours: bool,
    max_open: Option<u32>,
    max_per_day: Option<u32>,
    max_per_week: Option<u32>,
    berlin: bool,
}

fn rep_setup() -> impl Strategy<Value = RepSetup> {
    (
        prop_oneof![
            6 => Just(RepStatus::Active),
            1 => Just(RepStatus::Paused),
            1 => Just(RepStatus::OnLeave),
            1 => Just(RepStatus::Inactive)
        ],
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.5),
        prop::option::of(1u32..8),
        prop::option::of(1u32..4),
        prop::option::of(2u32..10),
        prop::bool::weighted(0.3),
    )
        .prop_map(
            |(status, on_leave, office_hours, max_open, max_per_day, max_per_week, berlin)| {
                RepSetup {
                    status,
                    on_leave,
                    office_hours,
                    max_open,
                    max_per_day,
                    max_per_week,
                    berlin,
                }
            },
        )
}

fn build_rep(index: usize, setup: &RepSetup) -> Rep {
    let mut built = rep(&format!("r{index}"), &format!("Rep {index}"));
    built.status = setup.status;
    if setup.on_leave {
        built.leaves = vec![leave("2026-11-25", "2026-11-27")];
    }
    if setup.office_hours {
        built.hours = Some(office_hours());
    }
    if setup.berlin {
        built.time_zone = chrono_tz::Europe::Berlin;
    }
    built.caps = Caps {
        max_open: setup.max_open,
        max_per_day: setup.max_per_day,
        max_per_week: setup.max_per_week,
        ..Caps::default()
    };
    built
}

const STRATEGIES: &[&str] = &[
    r#"{"type": "round_robin"}"#,
    r#"{"type": "weighted_round_robin"}"#,
    r#"{"type": "least_loaded"}"#,
    r#"{"type": "longest_idle"}"#,
    r#"{"type": "fair_share", "window": "week"}"#,
    r#"{"type": "best_match"}"#,
];

/// The test's own bookkeeping of what each rep was given, to check caps independently of the
/// engine's state.
#[derive(Default)]
struct Ledger {
    open: HashMap<String, u32>,
    per_day: HashMap<(String, chrono::NaiveDate), u32>,
    per_week: HashMap<(String, chrono::NaiveDate), u32>,
}

fn eligible_by_hand(rep: &Rep, ledger: &Ledger, now: DateTime<Utc>) -> Result<(), String> {
    let local = LocalNow::new(now, rep.time_zone);
    let id = rep.id.to_string();
    if rep.status != RepStatus::Active {
        return Err(format!("status {:?}", rep.status));
    }
    if rep
        .leaves
        .iter()
        .any(|leave| leave.first_day <= local.date && local.date <= leave.last_day)
    {
        return Err("on leave".into());
    }
    if rep
        .hours
        .as_ref()
        .is_some_and(|hours| !hours.contains(&local))
    {
        return Err("outside hours".into());
    }
    let open = ledger.open.get(&id).copied().unwrap_or(0);
    if rep.caps.max_open.is_some_and(|cap| open >= cap) {
        return Err(format!("holding {open}"));
    }
    let today = ledger
        .per_day
        .get(&(id.clone(), local.date))
        .copied()
        .unwrap_or(0);
    if rep.caps.max_per_day.is_some_and(|cap| today >= cap) {
        return Err(format!("today {today}"));
    }
    let week = ledger
        .per_week
        .get(&(id, local.week_start))
        .copied()
        .unwrap_or(0);
    if rep.caps.max_per_week.is_some_and(|cap| week >= cap) {
        return Err(format!("week {week}"));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn never_assigns_an_ineligible_rep_nor_exceeds_a_cap(
        setups in prop::collection::vec(rep_setup(), 1..8),
        strategy in 0..STRATEGIES.len(),
        steps in prop::collection::vec((0u32..600, prop::bool::weighted(0.2)), 1..120),
    ) {
        let reps: Vec<Rep> = setups.iter().enumerate().map(|(index, setup)| build_rep(index, setup)).collect();
        let ids: Vec<String> = reps.iter().map(|rep| rep.id.to_string()).collect();
        let members: Vec<&str> = ids.iter().map(String::as_str).collect();
        let strategy: serde_json::Value = serde_json::from_str(STRATEGIES[strategy]).expect("strategy");
        let mut world = World::new(
            reps.clone(),
            vec![team("t", &members)],
            json!({"rules": [{"id": "all", "target": {"team": "t"}, "strategy": strategy}]}),
        );
        let mut ledger = Ledger::default();
        let mut now = at("2026-11-23T00:00:00Z");
        for (minutes, close_one) in steps {
            now += Duration::minutes(i64::from(minutes));
            if close_one
                && let Some((id, open)) = ledger.open.iter_mut().find(|(_, open)| **open > 0) {
                    *open -= 1;
                    world.close_leads_of(id, 1);
                }
            let decision = world.route(&Lead::default(), now);
            match decision.owner() {
                Some(owner) => {
                    let rep = reps.iter().find(|rep| rep.id == *owner).expect("known rep");
                    prop_assert_eq!(eligible_by_hand(rep, &ledger, now), Ok(()), "{} at {}", owner, now);
                    let local = LocalNow::new(now, rep.time_zone);
                    *ledger.open.entry(owner.to_string()).or_default() += 1;
                    *ledger.per_day.entry((owner.to_string(), local.date)).or_default() += 1;
                    *ledger.per_week.entry((owner.to_string(), local.week_start)).or_default() += 1;
                }
                None => {
                    for rep in &reps {
                        prop_assert!(eligible_by_hand(rep, &ledger, now).is_err(), "{} was free at {}", rep.id, now);
                    }
                }
            }
        }
    }

    #[test]
    fn round_robin_is_exact_among_equal_reps(reps in 1usize..12, leads in 0usize..200) {
        let ids: Vec<String> = (0..reps).map(|index| format!("r{index:02}")).collect();
        let members: Vec<&str> = ids.iter().map(String::as_str).collect();
        let mut world = World::new(
            ids.iter().map(|id| rep(id, id)).collect(),
            vec![team("t", &members)],
            json!({"rules": [{"id": "all", "target": {"team": "t"}}]}),
        );
        let counts = world.route_many(&Lead::default(), at("2026-11-24T02:00:00Z"), leads);
        let max = ids.iter().map(|id| counts.get(id).copied().unwrap_or(0)).max().unwrap_or(0);
        let min = ids.iter().map(|id| counts.get(id).copied().unwrap_or(0)).min().unwrap_or(0);
        prop_assert!(max - min <= 1, "{:?}", counts);
    }

    #[test]
    fn weighted_round_robin_is_exact_over_whole_cycles(weights in prop::collection::vec(1u32..6, 1..6), cycles in 1usize..5) {
        let members: Vec<(String, f64)> = weights.iter().enumerate().map(|(index, weight)| (format!("r{index}"), f64::from(*weight))).collect();
        let borrowed: Vec<(&str, f64)> = members.iter().map(|(id, weight)| (id.as_str(), *weight)).collect();
        let mut world = World::new(
            members.iter().map(|(id, _)| rep(id, id)).collect(),
            vec![weighted_team("t", &borrowed)],
            json!({"rules": [{"id": "all", "target": {"team": "t"}, "strategy": {"type": "weighted_round_robin"}}]}),
        );
        let total: u32 = weights.iter().sum();
        let counts = world.route_many(&Lead::default(), at("2026-11-24T02:00:00Z"), total as usize * cycles);
        for (index, weight) in weights.iter().enumerate() {
            prop_assert_eq!(counts.get(&format!("r{index}")).copied().unwrap_or(0), *weight as usize * cycles);
        }
    }

    #[test]
    fn fair_share_converges_to_the_targets(weights in prop::collection::vec(1u32..10, 2..6), leads in 50usize..300) {
        let members: Vec<(String, f64)> = weights.iter().enumerate().map(|(index, weight)| (format!("r{index}"), f64::from(*weight))).collect();
        let borrowed: Vec<(&str, f64)> = members.iter().map(|(id, weight)| (id.as_str(), *weight)).collect();
        let mut world = World::new(
            members.iter().map(|(id, _)| rep(id, id)).collect(),
            vec![weighted_team("t", &borrowed)],
            json!({"rules": [{"id": "all", "target": {"team": "t"}, "strategy": {"type": "fair_share", "window": "month", "catch_up": "full"}}]}),
        );
        let counts = world.route_many(&Lead::default(), at("2026-11-24T02:00:00Z"), leads);
        let total: u32 = weights.iter().sum();
        for (index, weight) in weights.iter().enumerate() {
            let target = leads as f64 * f64::from(*weight) / f64::from(total);
            let got = counts.get(&format!("r{index}")).copied().unwrap_or(0) as f64;
            prop_assert!((got - target).abs() <= 1.0 + 1e-9, "r{} got {} for target {:.2}: {:?}", index, got, target, counts);
        }
    }

    #[test]
    fn the_same_inputs_give_the_same_decision(
        setups in prop::collection::vec(rep_setup(), 1..8),
        strategy in 0..STRATEGIES.len(),
        minutes in 0i64..20_000,
    ) {
        let reps: Vec<Rep> = setups.iter().enumerate().map(|(index, setup)| build_rep(index, setup)).collect();
        let ids: Vec<String> = reps.iter().map(|rep| rep.id.to_string()).collect();
        let members: Vec<&str> = ids.iter().map(String::as_str).collect();
        let strategy: serde_json::Value = serde_json::from_str(STRATEGIES[strategy]).expect("strategy");
        let mut world = World::new(
            reps,
            vec![team("t", &members)],
            json!({"rules": [{"id": "all", "target": {"team": "t"}, "strategy": strategy}]}),
        );
        let now = at("2026-11-23T00:00:00Z") + Duration::minutes(minutes);
        world.route_many(&Lead::default(), now, 5);
        let lead = Lead::default();
        let request = RouteRequest { lead: &lead, now, exclude: &[RepId::new("r0")], model: None, keep_candidates: false };
        let first = route(&world.rules, &world.roster, &world.state, &request);
        let second = route(&world.rules, &world.roster, &world.state.clone(), &request);
        prop_assert_eq!(first, second);
    }

    #[test]
    fn the_rule_index_skips_only_rules_that_cannot_match(
        shapes in prop::collection::vec((0usize..6, 0usize..4, 0usize..3), 1..12),
        region in 0usize..4,
        industry in 0usize..3,
    ) {
        const REGIONS: [&str; 3] = ["华东", "华南", "华北"];
        const INDUSTRIES: [&str; 2] = ["制造", "零售"];
        // Gated rows (equals, in, the first row of an all) and rules the index cannot gate.
        let rules: Vec<serde_json::Value> = shapes
            .iter()
            .enumerate()
            .map(|(index, (shape, r, i))| {
                let r = REGIONS[r % 3];
                let i = INDUSTRIES[i % 2];
                let when = match shape {
                    0 => json!({"field": "region", "op": "equals", "value": r}),
                    1 => json!({"field": "region", "op": "in", "value": [r, "华北"]}),
                    2 => json!({"all": [{"field": "region", "op": "equals", "value": r},
                                        {"field": "industry", "op": "equals", "value": i}]}),
                    3 => json!({"all": [{"field": "industry", "op": "in", "value": [i]},
                                        {"field": "region", "op": "not_equals", "value": r}]}),
                    4 => json!({"any": [{"field": "region", "op": "equals", "value": r},
                                        {"field": "industry", "op": "equals", "value": i}]}),
                    _ => json!({"field": "region", "op": "not_equals", "value": r}),
                };
                json!({"id": format!("r{index}"), "when": when, "target": {"team": "t"},
                       "fallback": ["next_rule"]})
            })
            .collect();
        let world = World::new(
            vec![rep("r0", "王芳")],
            vec![team("t", &["r0"])],
            json!({"rules": rules, "default": [{"pool": "公海"}]}),
        );
        let lead = Lead {
            region: [None, Some("华东"), Some("华南"), Some("华北")][region].map(str::to_owned),
            industry: [None, Some("制造"), Some("零售")][industry].map(str::to_owned),
            ..Lead::default()
        };
        let now = at("2026-11-23T02:00:00Z");
        let request = RouteRequest { lead: &lead, now, exclude: &[], model: None, keep_candidates: false };
        let indexed = route(&world.rules, &world.roster, &world.state, &request);
        let mut unindexed = world.rules.clone();
        unindexed.index = engine::RuleIndex::default();
        let evaluated = route(&unindexed, &world.roster, &world.state, &request);
        prop_assert_eq!(indexed, evaluated);
    }
    /// Requirements narrow a team as sets a word at a time; each rep turned away must still be
    /// turned away for the first reason a rep-by-rep check finds, in roster order, and only
    /// the team's members are considered. Preferences, as sets or read rep by rep, serve the
    /// best tier an eligible rep reaches.
    #[test]
    fn exclusions_name_the_first_reason_of_a_rep_by_rep_check(
        reps in prop::collection::vec(
            (rep_setup(), 0usize..4, 0usize..4, 1u8..6, prop::bool::weighted(0.8)),
            1..150,
        ),
        requirements in prop::collection::vec(0usize..4, 0..4),
        preferences in prop::collection::vec(0usize..4, 0..3),
        excluded in prop::collection::vec(0usize..150, 0..5),
        industry in 0usize..4,
    ) {
        const INDUSTRIES: [&str; 3] = ["制造", "零售", "金融"];
        let built: Vec<Rep> = reps
            .iter()
            .enumerate()
            .map(|(index, (setup, first, second, level, _))| {
                let mut built = build_rep(index, setup);
                built.industries = [first, second]
                    .iter()
                    .filter_map(|which| INDUSTRIES.get(**which))
                    .map(|industry| (*industry).to_owned())
                    .collect();
                built.level = *level;
                built
            })
            .collect();
        // Two requirements the roster answers as sets, and one read rep by rep.
        let conditions = [
            json!({"field": "rep.industries", "op": "contains", "ref": "industry"}),
            json!({"field": "rep.industries", "op": "exists"}),
            json!({"field": "rep.level", "op": "gte", "value": 3}),
            json!({"field": "rep.industries", "op": "not_contains", "value": "金融"}),
        ];
        let requires: Vec<serde_json::Value> =
            requirements.iter().map(|which| conditions[*which].clone()).collect();
        let prefers: Vec<serde_json::Value> =
            preferences.iter().map(|which| conditions[*which].clone()).collect();
        let ids: Vec<String> = built
            .iter()
            .zip(&reps)
            .filter(|(_, (.., in_team))| *in_team)
            .map(|(rep, _)| rep.id.to_string())
            .collect();
        let members: Vec<&str> = ids.iter().map(String::as_str).collect();
        let world = World::new(
            built.clone(),
            vec![team("t", &members)],
            json!({"rules": [{"id": "all", "target": {"team": "t"}, "requires": requires,
                              "prefers": prefers, "fallback": ["hold"]}]}),
        );
        let lead = Lead {
            industry: [None, Some("制造"), Some("零售"), Some("金融")][industry].map(str::to_owned),
            ..Lead::default()
        };
        let exclude: Vec<RepId> = excluded
            .iter()
            .filter(|index| **index < built.len())
            .map(|index| RepId::new(format!("r{index}")))
            .collect();
        let now = at("2026-11-24T02:00:00Z");
        let request = RouteRequest { lead: &lead, now, exclude: &exclude, model: None, keep_candidates: false };
        let decision = route(&world.rules, &world.roster, &world.state, &request);
        let attempt = &decision.attempts[0];
        // By hand, rep by rep in roster (id) order.
        let meets = |rep: &Rep, which: usize| match which {
            0 => lead.industry.as_ref().is_none_or(|wanted| rep.industries.contains(wanted)),
            1 => !rep.industries.is_empty(),
            2 => rep.level >= 3,
            _ => !rep.industries.iter().any(|industry| industry == "金融"),
        };
        let mut sorted = built.clone();
        sorted.sort_by(|left, right| left.id.cmp(&right.id));
        sorted.retain(|rep| ids.contains(&rep.id.to_string()));
        let mut expected: Vec<(String, String)> = Vec::new();
        let mut best_tier: Option<usize> = None;
        let tier = |rep: &Rep| preferences.iter().take_while(|which| meets(rep, **which)).count();
        for rep in &sorted {
            let reason = if exclude.contains(&rep.id) {
                Some("excluded".to_owned())
            } else if let Some(index) = requirements.iter().position(|which| !meets(rep, *which)) {
                Some(format!("requirement {index}"))
            } else {
                eligible_by_hand(rep, &Ledger::default(), now).err().map(|_| "unavailable".to_owned())
            };
            match reason {
                Some(reason) => expected.push((rep.id.to_string(), reason)),
                None => best_tier = best_tier.max(Some(tier(rep))),
            }
        }
        let found: Vec<(String, String)> = attempt
            .exclusions()
            .map(|(position, exclusion)| {
                let reason = match exclusion {
                    engine::eligibility::Exclusion::Excluded => "excluded".to_owned(),
                    engine::eligibility::Exclusion::Requirement { index } => format!("requirement {index}"),
                    _ => "unavailable".to_owned(),
                };
                (world.roster.rep(position).id.to_string(), reason)
            })
            .collect();
        prop_assert_eq!(&found, &expected);
        prop_assert_eq!(attempt.excluded_count() as usize, expected.len());
        prop_assert_eq!(attempt.considered as usize, ids.len());
        match (best_tier, attempt.winner) {
            (Some(best), Some(winner)) => {
                if !preferences.is_empty() {
                    prop_assert_eq!(attempt.preferences, Some((best as u16, preferences.len() as u16)));
                }
                prop_assert_eq!(tier(world.roster.rep(winner)), best);
            }
            (None, None) => {}
            (by_hand, winner) => prop_assert!(false, "eligible by hand {by_hand:?}, winner {winner:?}"),
        }
    }
}
