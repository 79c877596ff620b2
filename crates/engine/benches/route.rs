//! Routing speed: one lead through a 200-rule set to a team of 1,000 reps, beside the floor of
//! just scanning the 1,000 rep records; compiling a 1,000-rule set; building the explanation.
//! Run with `cargo bench -p engine --bench route`.

use std::hint::black_box;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc, Weekday};
use criterion::{Criterion, criterion_group, criterion_main};
use engine::hours::{TimeRange, WeeklyHours};
use engine::model::{Encoding, FeatureSpec, Level, ModelSpec, WinModel};
use engine::rep::{Caps, RepStats};
use engine::state::Tally;
use engine::{
    DecisionRecord, FieldCatalogue, Known, Language, Lead, Rep, RepState, Roster, RouteRequest,
    RoutingState, RuleSetSpec, Team, compile, route,
};
use serde_json::json;

/// The allocator the service runs on (`leadroute`'s `main.rs`), so routing is measured as it
/// runs there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const REGIONS: [&str; 7] = ["华东", "华南", "华北", "华中", "西南", "西北", "东北"];
const INDUSTRIES: [&str; 6] = ["制造", "互联网", "金融", "教育", "医疗", "零售"];

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-24T02:00:00Z")
        .expect("time")
        .with_timezone(&Utc)
}

/// 1,000 reps in three time zones, most with office hours and caps, two regions and two
/// industries each, and a busy day behind them.
fn org() -> (Roster, RoutingState) {
    let hours = WeeklyHours::uniform(
        &[
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
        ],
        &[TimeRange::parse("09:00-18:00").expect("range")],
    );
    let zones = [
        chrono_tz::Asia::Shanghai,
        chrono_tz::Asia::Hong_Kong,
        chrono_tz::Asia::Singapore,
    ];
    let reps: Vec<Rep> = (0..1000)
        .map(|index| {
            let mut rep = Rep::new(format!("rep-{index:04}"), format!("销售{index}"));
            rep.regions = vec![REGIONS[index % 7].into(), REGIONS[(index + 3) % 7].into()];
            rep.industries = vec![
                INDUSTRIES[index % 6].into(),
                INDUSTRIES[(index + 1) % 6].into(),
            ];
            rep.level = (index % 5) as u8 + 1;
            rep.time_zone = zones[index % 3];
            if index % 4 != 0 {
                rep.hours = Some(hours.clone());
            }
            rep.caps = Caps {
                max_open: Some(200),
                max_per_day: Some(40),
                max_per_week: Some(150),
                ..Caps::default()
            };
            rep
        })
        .collect();
    let team = Team::new("big", "全国").with_members(reps.iter().map(|rep| rep.id.to_string()));
    let roster = Roster::new(reps, vec![team]).expect("roster");
    let mut state = RoutingState::new(&roster);
    let today = NaiveDate::from_ymd_opt(2026, 11, 24).expect("date");
    let week = NaiveDate::from_ymd_opt(2026, 11, 23).expect("date");
    let month = NaiveDate::from_ymd_opt(2026, 11, 1).expect("date");
    for (index, rep) in roster.reps().to_vec().iter().enumerate() {
        let count = (index % 17) as u32;
        state.set_rep(
            &roster,
            &rep.id,
            RepState {
                open_leads: count * 3,
                day: Tally {
                    period_start: Some(today),
                    count,
                },
                week: Tally {
                    period_start: Some(week),
                    count: count * 3,
                },
                month: Tally {
                    period_start: Some(month),
                    count: count * 10,
                },
                last_assigned_at: Some(now() - chrono::Duration::minutes(index as i64)),
                stats: RepStats {
                    closed: 50 + (index % 30) as u32,
                    won: (index % 13) as u32,
                    response_secs: Some(600 + (index % 50) as u32 * 60),
                    feedback: Some((index % 10) as f64 / 10.0),
                },
            },
        );
    }
    (roster, state)
}

/// `rules` rules; the first `rules - 1` look for regions no lead has, the last catches the
/// lead, so routing evaluates every condition. The last rule requires a matching industry.
fn rule_set(rules: usize, strategy: serde_json::Value) -> RuleSetSpec {
    let mut list: Vec<serde_json::Value> = (0..rules - 1)
        .map(|index| {
            json!({
                "id": format!("rule-{index}"),
                "when": {"all": [
                    {"field": "region", "op": "equals", "value": format!("区域{index}")},
                    {"field": "budget", "op": "gte", "value": index * 1000},
                    {"field": "tags", "op": "not_contains", "value": "测试"}
                ]},
                "target": {"team": "big"}
            })
        })
        .collect();
    list.push(json!({
        "id": "catch-all",
        "when": {"any": [
            {"field": "region", "op": "in", "value": REGIONS},
            {"field": "industry", "op": "exists"}
        ]},
        "target": {"team": "big"},
        "strategy": strategy,
        "requires": [{"field": "rep.industries", "op": "contains", "ref": "industry"}],
        "prefers": [{"field": "rep.regions", "op": "contains", "ref": "region"}]
    }));
    serde_json::from_value(json!({
        "rules": list,
        "tagging": [{"id": "big", "when": {"field": "company_size", "op": "gte", "value": 1000}, "add_tags": ["大客户"]}],
        "scoring": {"rules": [{"id": "budget", "when": {"field": "budget", "op": "gte", "value": 100000}, "points": 40}],
                    "tiers": [{"min_score": 60, "priority": "high"}]}
    }))
    .expect("spec")
}

fn lead() -> Lead {
    Lead {
        region: Some("华东".into()),
        industry: Some("制造".into()),
        budget: Some(300_000.0),
        company_size: Some(2000.0),
        source: Some("巨量引擎".into()),
        ..Lead::default()
    }
}

fn benches(c: &mut Criterion) {
    let (roster, state) = org();
    let catalogue = FieldCatalogue::default();
    let known = Known {
        catalogue: &catalogue,
        roster: &roster,
        pools: &[],
        sla_policies: &[],
    };
    let lead = lead();

    let mut group = c.benchmark_group("route_200_rules_1000_reps");
    group.bench_function("floor_scan_1000_reps", |b| {
        b.iter(|| {
            let mut open = 0u64;
            for (index, rep) in roster.reps().iter().enumerate() {
                let rep_state = state.rep(index as u32);
                if rep.status == engine::RepStatus::Active && rep.caps.max_open.is_some() {
                    open += u64::from(rep_state.open_leads);
                }
            }
            black_box(open)
        })
    });
    for strategy in [
        json!({"type": "round_robin"}),
        json!({"type": "weighted_round_robin"}),
        json!({"type": "least_loaded"}),
        json!({"type": "fair_share", "window": "week"}),
        json!({"type": "best_match"}),
    ] {
        let name = strategy["type"].as_str().expect("name").to_owned();
        let rules = compile(&rule_set(200, strategy), known, 1).expect("compiles");
        let request = RouteRequest {
            model: None,
            lead: &lead,
            now: now(),
            exclude: &[],
            keep_candidates: false,
        };
        let decision = route(&rules, &roster, &state, &request);
        assert!(decision.owner().is_some(), "{name}: {:?}", decision.outcome);
        group.bench_function(&name, |b| {
            b.iter(|| black_box(route(&rules, &roster, &state, black_box(&request))))
        });
    }
    group.finish();

    // The learned model: fifteen fields of forty levels each, as a large workspace's would be.
    let model = WinModel::compile(&model_spec(), &catalogue_for_model(), 1).expect("model");
    let rules =
        compile(&rule_set(200, json!({"type": "round_robin"})), known, 1).expect("compiles");
    let scored = RouteRequest {
        model: Some(&model),
        lead: &lead,
        now: now(),
        exclude: &[],
        keep_candidates: false,
    };
    assert!(route(&rules, &roster, &state, &scored).win.is_some());
    c.bench_function("model/score", |b| {
        let view = engine::field::LeadView::new(&lead, &rules.catalogue);
        b.iter(|| black_box(model.score(black_box(&view), now())))
    });
    c.bench_function("model/route_round_robin_scored", |b| {
        b.iter(|| black_box(route(&rules, &roster, &state, black_box(&scored))))
    });

    let rules = compile(&rule_set(200, json!({"type": "best_match"})), known, 1).expect("compiles");
    let request = RouteRequest {
        model: None,
        lead: &lead,
        now: now(),
        exclude: &[],
        keep_candidates: false,
    };
    let decision = route(&rules, &roster, &state, &request);
    c.bench_function("explain/record_and_text", |b| {
        b.iter(|| {
            let record = DecisionRecord::new(&decision, &rules, &roster, &lead);
            black_box(record.explain(Language::Zh))
        })
    });

    let spec = rule_set(1000, json!({"type": "round_robin"}));
    c.bench_function("compile/1000_rules", |b| {
        b.iter(|| black_box(compile(&spec, known, 1).expect("compiles")))
    });
}

fn catalogue_for_model() -> engine::FieldCatalogue {
    engine::FieldCatalogue::default()
}

fn model_spec() -> ModelSpec {
    let category = |field: &str| FeatureSpec {
        field: field.to_owned(),
        encoding: Encoding::Category {
            levels: (0..40)
                .map(|index| Level {
                    value: format!("{field}-{index}"),
                    weight: f64::from(index) / 100.0 - 0.2,
                })
                .chain(["华东", "制造", "web", "上海"].map(|value| Level {
                    value: value.to_owned(),
                    weight: 0.3,
                }))
                .collect(),
            other: -0.1,
            missing: -0.2,
        },
    };
    let number = |field: &str| FeatureSpec {
        field: field.to_owned(),
        encoding: Encoding::Number {
            edges: (1..10).map(|index| f64::from(index) * 50.0).collect(),
            weights: (0..10)
                .map(|index| f64::from(index) / 20.0 - 0.25)
                .collect(),
            missing: 0.0,
        },
    };
    let mut features: Vec<FeatureSpec> = [
        "source",
        "campaign",
        "product",
        "demand",
        "country",
        "province",
        "city",
        "region",
        "industry",
        "urgency",
        "arrival_hour",
        "arrival_weekday",
    ]
    .into_iter()
    .map(category)
    .collect();
    features.push(number("company_size"));
    features.push(number("budget"));
    features.push(FeatureSpec {
        field: "tags".to_owned(),
        encoding: Encoding::Set {
            levels: (0..40)
                .map(|index| Level {
                    value: format!("tag-{index}"),
                    weight: 0.05,
                })
                .collect(),
        },
    });
    ModelSpec {
        intercept: -1.0,
        time_zone: "Asia/Shanghai".to_owned(),
        features,
    }
}

criterion_group! {
    name = engine;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = benches
}
criterion_main!(engine);
