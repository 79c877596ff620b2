//! Fixtures: a small sales org, rule sets from JSON, and a world that routes leads and applies
//! the decisions' state changes the way the store does.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc, Weekday};
use engine::hours::{TimeRange, WeeklyHours};
use engine::rep::{Caps, Leave};
use engine::team::Member;
use engine::{
    Decision, FieldCatalogue, Known, Lead, Rep, RepId, Roster, RouteRequest, RoutingState, RuleSet,
    RuleSetSpec, Team, compile, route,
};

pub fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("test time")
        .with_timezone(&Utc)
}

pub fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("test date")
}

/// Tuesday 2026-11-24, 10:00 in Shanghai.
pub fn tuesday_morning() -> DateTime<Utc> {
    at("2026-11-24T02:00:00Z")
}

pub fn rep(id: &str, name: &str) -> Rep {
    Rep::new(id, name)
}

pub fn office_hours() -> WeeklyHours {
    WeeklyHours::uniform(
        &[
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
        ],
        &[TimeRange::parse("09:00-18:00").expect("range")],
    )
}

pub fn leave(first: &str, last: &str) -> Leave {
    Leave {
        first_day: day(first),
        last_day: day(last),
    }
}

pub fn caps() -> Caps {
    Caps::default()
}

pub fn team(id: &str, members: &[&str]) -> Team {
    Team::new(id, format!("{id} team")).with_members(members.iter().copied())
}

pub fn weighted_team(id: &str, members: &[(&str, f64)]) -> Team {
    let mut team = Team::new(id, format!("{id} team"));
    team.members = members
        .iter()
        .map(|(rep, weight)| Member {
            rep: RepId::new(*rep),
            weight: Some(*weight),
        })
        .collect();
    team
}

/// The org most scenarios use: East (张伟 manufacturing, 李娜 internet), South (王芳
/// manufacturing), and a national team of all four.
pub fn org() -> (Vec<Rep>, Vec<Team>) {
    let mut zhang = rep("r01", "张伟");
    zhang.regions = vec!["华东".into()];
    zhang.industries = vec!["制造".into()];
    zhang.level = 3;
    let mut li = rep("r02", "李娜");
    li.regions = vec!["华东".into()];
    li.industries = vec!["互联网".into()];
    let mut wang = rep("r03", "王芳");
    wang.regions = vec!["华南".into()];
    wang.industries = vec!["制造".into()];
    let mut liu = rep("r04", "刘洋");
    liu.regions = vec!["华北".into()];
    liu.industries = vec!["金融".into()];
    let reps = vec![zhang, li, wang, liu];
    let teams = vec![
        team("east", &["r01", "r02"]),
        team("south", &["r03"]),
        team("national", &["r01", "r02", "r03", "r04"]),
    ];
    (reps, teams)
}

pub const POOLS: &[&str] = &["公海"];

pub fn compile_json(roster: &Roster, json: serde_json::Value) -> RuleSet {
    compile_with(roster, &FieldCatalogue::default(), json)
}

pub fn compile_with(
    roster: &Roster,
    catalogue: &FieldCatalogue,
    json: serde_json::Value,
) -> RuleSet {
    let spec: RuleSetSpec = serde_json::from_value(json).expect("rule-set document");
    let pools: Vec<String> = POOLS.iter().map(|pool| (*pool).to_owned()).collect();
    compile(
        &spec,
        Known {
            catalogue,
            roster,
            pools: &pools,
            sla_policies: &[],
        },
        1,
    )
    .unwrap_or_else(|errors| panic!("rule set does not compile: {errors:?}"))
}

/// A roster, a rule set and the state, routing leads as the service would.
pub struct World {
    pub roster: Roster,
    pub rules: RuleSet,
    pub state: RoutingState,
    /// The published conversion model, when the test gives one.
    pub model: Option<engine::model::WinModel>,
}

impl World {
    pub fn new(reps: Vec<Rep>, teams: Vec<Team>, rules: serde_json::Value) -> World {
        let roster = Roster::new(reps, teams).expect("roster");
        let rules = compile_json(&roster, rules);
        let state = RoutingState::new(&roster);
        World {
            roster,
            rules,
            state,
            model: None,
        }
    }

    /// Routes and applies the state changes.
    pub fn route(&mut self, lead: &Lead, now: DateTime<Utc>) -> Decision {
        self.route_excluding(lead, now, &[])
    }

    pub fn route_excluding(
        &mut self,
        lead: &Lead,
        now: DateTime<Utc>,
        exclude: &[RepId],
    ) -> Decision {
        let decision = route(
            &self.rules,
            &self.roster,
            &self.state,
            &RouteRequest {
                lead,
                now,
                exclude,
                model: self.model.as_ref(),
                keep_candidates: false,
            },
        );
        self.state.apply(&self.roster, &decision.changes);
        decision
    }

    /// Routes `count` copies of the lead, a minute apart, and counts leads per owner
    /// (`-` for leads nobody got).
    pub fn route_many(
        &mut self,
        lead: &Lead,
        start: DateTime<Utc>,
        count: usize,
    ) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for index in 0..count {
            let now = start + chrono::Duration::minutes(index as i64);
            let decision = self.route(lead, now);
            let owner = decision.owner().map_or("-".to_owned(), |id| id.to_string());
            *counts.entry(owner).or_default() += 1;
        }
        counts
    }

    /// The owners of a sequence of leads, in order.
    pub fn owners(&mut self, lead: &Lead, start: DateTime<Utc>, count: usize) -> Vec<String> {
        (0..count)
            .map(|index| {
                let now = start + chrono::Duration::minutes(index as i64);
                self.route(lead, now)
                    .owner()
                    .map_or("-".to_owned(), |id| id.to_string())
            })
            .collect()
    }

    pub fn close_leads_of(&mut self, rep: &str, count: usize) {
        for _ in 0..count {
            self.state.release(&self.roster, &RepId::new(rep));
        }
    }
}

pub fn lead() -> Lead {
    Lead::default()
}

pub fn lead_in(region: &str, industry: &str) -> Lead {
    Lead {
        region: Some(region.to_owned()),
        industry: Some(industry.to_owned()),
        ..Lead::default()
    }
}
