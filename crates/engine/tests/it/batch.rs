//! Batch assignment through the engine: a trade show's cards placed by value and fit instead of
//! arrival order; caps, bands and floors hold; every lead gets a decision; known customers and
//! pooled leads keep routing's answer.

use chrono::Duration;
use engine::batch::{Batch, Settings, plan};
use engine::rep::{Caps, RepStats};
use engine::{Lead, Outcome, RepId, RoutingState};
use proptest::prelude::*;
use serde_json::json;

use crate::support::{World, rep, team, tuesday_morning};

fn batch_of(world: &World, now: chrono::DateTime<chrono::Utc>, settings: Settings) -> Batch<'_> {
    Batch {
        rules: &world.rules,
        roster: &world.roster,
        state: &world.state,
        now,
        model: None,
        settings,
        exclude: &[],
        history: None,
    }
}

fn stats(world: &mut World, id: &str, won: u32) {
    world
        .state
        .rep_mut(&world.roster, &RepId::new(id))
        .expect("rep")
        .stats = RepStats {
        closed: 100,
        won,
        ..RepStats::default()
    };
}

fn lead_scored(score: f64) -> Lead {
    Lead {
        score: Some(score),
        ..Lead::default()
    }
}

/// Two reps: `a` closes four in ten and can take two more today, `b` one in ten with room to
/// spare. Two small leads arrive before two large ones.
fn trade_show() -> (World, Vec<Lead>) {
    let mut strong = rep("a", "强");
    strong.caps = Caps {
        max_per_day: Some(2),
        ..Caps::default()
    };
    let mut world = World::new(
        vec![strong, rep("b", "弱")],
        vec![team("t", &["a", "b"])],
        json!({"rules": [{"id": "all", "target": {"team": "t"},
            "strategy": {"type": "best_match"}}]}),
    );
    stats(&mut world, "a", 40);
    stats(&mut world, "b", 10);
    let leads = vec![
        lead_scored(1.0),
        lead_scored(1.0),
        lead_scored(50.0),
        lead_scored(50.0),
    ];
    (world, leads)
}

#[test]
fn a_batch_gives_the_strong_closer_the_valuable_leads() {
    let (world, leads) = trade_show();
    let refs: Vec<&Lead> = leads.iter().collect();
    let settings = Settings {
        band: None,
        default_amount: 1.0,
    };
    let planned = plan(&batch_of(&world, tuesday_morning(), settings), &refs);
    let owners: Vec<Option<&str>> = planned
        .decisions
        .iter()
        .map(|decision| decision.owner().map(RepId::as_str))
        .collect();
    assert_eq!(owners, [Some("b"), Some("b"), Some("a"), Some("a")]);
    let summary = &planned.summary;
    assert_eq!((summary.optimised, summary.placed), (4, 4));
    // The figures docs/batch.md's worked example quotes.
    assert_eq!((summary.objective * 100.0).round(), 10059.0, "{summary:?}");
    assert_eq!((summary.one_by_one * 100.0).round(), 3141.0, "{summary:?}");
    assert_eq!(
        (summary.one_by_one_gap * 100.0).round(),
        69.0,
        "{summary:?}"
    );
    // Each decision says it was a batch, its value and who one-by-one routing would have chosen.
    let note = planned.decisions[0].batch.as_ref().expect("note");
    assert_eq!(note.one_by_one.as_ref().map(RepId::as_str), Some("a"));
    assert_eq!(note.best_fit.as_ref().map(RepId::as_str), Some("a"));
    let note = planned.decisions[3].batch.as_ref().expect("note");
    assert_eq!(note.value, 50.0);
    assert_eq!(note.remaining, Some(0));
    let record = engine::DecisionRecord::new(
        &planned.decisions[0],
        &world.rules,
        &world.roster,
        &leads[0],
    );
    let zh = record.explain(engine::Language::Zh);
    // Word for word as docs/batch.md quotes it.
    assert!(
        zh.ends_with("按批量最优分配分配给 弱。批量最优分配：线索价值 1，匹配度 0.29；最匹配的 强 的名额留给了更需要的线索；逐条分配会给 强。"),
        "{zh}"
    );
    assert!(zh.contains("最匹配的 强 的名额留给了更需要的线索"), "{zh}");
    assert!(zh.contains("逐条分配会给 强"), "{zh}");
    let en = record.explain(engine::Language::En);
    assert!(en.contains("Optimal batch: lead value 1"), "{en}");
}

#[test]
fn the_band_keeps_shares_fair_and_the_rest_is_routed_as_usual() {
    let mut world = World::new(
        vec![rep("a", "A"), rep("b", "B"), rep("c", "C")],
        vec![team("t", &["a", "b", "c"])],
        json!({"rules": [{"id": "all", "target": {"team": "t"}, "fallback": [{"pool": "公海"}]}]}),
    );
    stats(&mut world, "a", 60);
    stats(&mut world, "b", 10);
    stats(&mut world, "c", 10);
    let leads: Vec<Lead> = (0..30)
        .map(|index| lead_scored(f64::from(index + 1)))
        .collect();
    let refs: Vec<&Lead> = leads.iter().collect();
    let settings = Settings {
        band: Some(0.1),
        default_amount: 1.0,
    };
    let planned = plan(&batch_of(&world, tuesday_morning(), settings), &refs);
    let summary = &planned.summary;
    // Each is eligible for a third of thirty: 9 to 11 leads each, however much better `a` is.
    for rep in &summary.reps {
        assert_eq!((rep.lower, rep.upper), (9, 11), "{rep:?}");
        assert!((9..=11).contains(&rep.leads), "{rep:?}");
    }
    // `a` takes its ceiling, of the most valuable leads.
    let a = summary
        .reps
        .iter()
        .find(|rep| rep.rep.as_str() == "a")
        .expect("a");
    assert_eq!(a.leads, 11);
    let a_values: Vec<f64> = planned
        .decisions
        .iter()
        .filter(|decision| decision.owner().map(RepId::as_str) == Some("a"))
        .filter_map(|decision| decision.batch.as_ref().map(|note| note.value))
        .collect();
    assert!(a_values.iter().all(|value| *value >= 20.0), "{a_values:?}");
    assert_eq!(summary.placed, 30);
}

/// Two reps who close as often overall, one at large companies, the other at small ones: with
/// their records per segment, each gets the leads of the segment they close.
#[test]
fn the_fit_follows_each_reps_record_on_the_leads_segment() {
    let mut world = World::new(
        vec![rep("a", "A"), rep("b", "B")],
        vec![team("t", &["a", "b"])],
        json!({"rules": [{"id": "all", "target": {"team": "t"}}]}),
    );
    stats(&mut world, "a", 20);
    stats(&mut world, "b", 20);
    let position = |id: &str| world.roster.position(&RepId::new(id)).expect("rep");
    let history: engine::batch::SegmentHistory = [
        ((position("a"), "enterprise".to_owned()), (18, 40)),
        ((position("a"), "smb".to_owned()), (2, 60)),
        ((position("b"), "enterprise".to_owned()), (2, 40)),
        ((position("b"), "smb".to_owned()), (18, 60)),
    ]
    .into_iter()
    .collect();
    let sized = |size: f64| Lead {
        company_size: Some(size),
        ..Lead::default()
    };
    let leads = [sized(20.0), sized(5000.0), sized(30.0), sized(8000.0)];
    let refs: Vec<&Lead> = leads.iter().collect();
    let mut batch = batch_of(&world, tuesday_morning(), Settings::default());
    batch.history = Some(&history);
    let owners: Vec<Option<String>> = plan(&batch, &refs)
        .decisions
        .iter()
        .map(|decision| decision.owner().map(ToString::to_string))
        .collect();
    let expected: Vec<Option<String>> = ["b", "a", "b", "a"]
        .iter()
        .map(|id| Some((*id).to_owned()))
        .collect();
    assert_eq!(owners, expected);
}

#[test]
fn known_customers_and_pooled_leads_keep_routings_answer() {
    let mut world = World::new(
        vec![rep("a", "A"), rep("b", "B")],
        vec![team("t", &["a", "b"])],
        json!({"rules": [
            {"id": "pool", "when": {"field": "source", "op": "equals", "value": "广告"}, "target": {"pool": "公海"}},
            {"id": "all", "target": {"team": "t"}, "owner_affinity": true}]}),
    );
    stats(&mut world, "a", 50);
    let returning = Lead {
        known_owner: Some(RepId::new("b")),
        score: Some(100.0),
        ..Lead::default()
    };
    let advert = Lead {
        source: Some("广告".into()),
        ..Lead::default()
    };
    let leads = [returning, advert, lead_scored(5.0)];
    let refs: Vec<&Lead> = leads.iter().collect();
    let planned = plan(
        &batch_of(&world, tuesday_morning(), Settings::default()),
        &refs,
    );
    assert_eq!(planned.decisions[0].owner().map(RepId::as_str), Some("b"));
    assert!(planned.decisions[0].batch.is_none());
    assert!(matches!(
        planned.decisions[1].outcome,
        Outcome::Pooled { .. }
    ));
    assert!(planned.decisions[2].batch.is_some());
    assert_eq!(planned.summary.optimised, 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(120))]

    /// Whatever the caps, band and leads: every lead has exactly one decision; applying the
    /// plan's changes breaks no cap; the optimised placements stay within each rep's bounds;
    /// and without floors the plan is worth at least the arrival-order greedy.
    #[test]
    fn plans_respect_caps_bands_and_never_drop_a_lead(
        caps in proptest::collection::vec((proptest::option::of(0u32..4), proptest::option::of(0u32..6)), 4),
        scores in proptest::collection::vec(0.0f64..100.0, 1..20),
        band in proptest::option::of(0.0f64..0.5),
        busy in proptest::collection::vec(0u32..3, 4),
    ) {
        let ids = ["a", "b", "c", "d"];
        let reps = ids
            .iter()
            .zip(&caps)
            .map(|(id, (daily, open))| {
                let mut rep = rep(id, id);
                rep.caps = Caps { max_per_day: *daily, max_open: *open, ..Caps::default() };
                rep
            })
            .collect();
        let mut world = World::new(
            reps,
            vec![team("t", &["a", "b"]), team("u", &["b", "c", "d"])],
            json!({"rules": [
                {"id": "big", "when": {"field": "score", "op": "gte", "value": 50}, "target": {"team": "t"},
                 "fallback": [{"team": "u"}]},
                {"id": "all", "target": {"team": "u"}, "fallback": [{"pool": "公海"}]}]}),
        );
        for (index, id) in ids.iter().enumerate() {
            world.state.rep_mut(&world.roster, &RepId::new(*id)).expect("rep").open_leads = busy[index];
            world.state.rep_mut(&world.roster, &RepId::new(*id)).expect("rep").stats =
                RepStats { closed: 20, won: 2 + index as u32 * 3, ..RepStats::default() };
        }
        let leads: Vec<Lead> = scores.iter().map(|score| lead_scored(*score)).collect();
        let refs: Vec<&Lead> = leads.iter().collect();
        let now = tuesday_morning() + Duration::minutes(1);
        let planned = plan(&batch_of(&world, now, Settings { band, default_amount: 1.0 }), &refs);
        prop_assert_eq!(planned.decisions.len(), leads.len());
        let mut state: RoutingState = world.state.clone();
        for decision in &planned.decisions {
            state.apply(&world.roster, &decision.changes);
        }
        for (index, id) in ids.iter().enumerate() {
            let position = world.roster.position(&RepId::new(*id)).expect("rep");
            let after = state.rep(position);
            let (daily, open) = caps[index];
            let took = after.open_leads - busy[index];
            if let Some(open) = open {
                prop_assert!(after.open_leads <= open.max(busy[index]), "{id}: {after:?}");
            }
            if let Some(daily) = daily {
                prop_assert!(took <= daily, "{id} took {took} over {daily}");
            }
        }
        for rep in &planned.summary.reps {
            prop_assert!(rep.leads <= rep.upper, "{rep:?}");
        }
        let summary = &planned.summary;
        prop_assert_eq!(summary.placed + summary.unplaced, summary.optimised);
        // Floors come first; without any, the plan is worth at least the greedy.
        if summary.lower_asked == 0 {
            prop_assert!(summary.objective + 1e-6 >= summary.greedy * (1.0 - 1e-6), "{summary:?}");
        }
    }
}
