//! The report of a replay: per policy, who got how many leads against the share their weight
//! implies, fairness, caps, hours, rules, held and pooled leads; between the policies, the leads
//! that moved and what the outcomes are expected to be.

use chrono::{DateTime, Utc};
use engine::roster::RepIndex;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::replay::{Side, Target};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Report {
    pub window: Window,
    pub a: PolicyReport,
    pub b: PolicyReport,
    pub moved: Moved,
    /// How closely policy A reproduces the owners history recorded: with A the rule set that
    /// was active and reps' availability as recorded, every lead should keep its owner.
    pub fidelity: Fidelity,
    /// Expected conversions and value, where history has outcomes.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub outcomes: Option<serde_json::Value>,
    /// Expected first response and SLA misses, where history has response times.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub response: Option<serde_json::Value>,
    /// What the replay assumed.
    pub assumptions: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Window {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    pub first_arrival: Option<String>,
    pub last_arrival: Option<String>,
    /// Leads replayed.
    pub leads: u64,
    /// Rows that could not be replayed; the first hundred are listed.
    pub bad_rows: u64,
    #[schema(value_type = Vec<Object>)]
    pub errors: Vec<serde_json::Value>,
    /// The zone days are counted in (per-day fairness).
    pub zone: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PolicyReport {
    /// `A` or `B`.
    pub label: String,
    /// The rule-set version, when it is a stored one.
    pub rule_set_version: Option<u32>,
    pub rule_set_name: Option<String>,
    pub assigned: u64,
    pub pooled: u64,
    pub held: Held,
    pub cap_hits: u64,
    pub outside_hours: u64,
    pub fairness: Fairness,
    pub reps: Vec<RepReport>,
    pub teams: Vec<TeamReport>,
    pub rules: Vec<RuleReport>,
    /// Leads decided by the rule set's default.
    pub default_routed: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Held {
    /// Leads held when they arrived.
    pub held: u64,
    /// Of those, placed by a later sweep.
    pub placed_later: u64,
    /// Still held when the window ended (or closed while waiting).
    pub never_placed: u64,
    pub wait_median_secs: Option<u32>,
    pub wait_p90_secs: Option<u32>,
    pub wait_max_secs: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Fairness {
    /// Gini coefficient of each rep's leads over their target (0 = everyone exactly at target).
    pub gini: f64,
    /// The largest |share − target share|, in share points (0.05 = five percentage points).
    pub max_deviation: f64,
    pub max_deviation_rep: Option<String>,
    /// Days with at least as many leads as reps with a target.
    pub days: u32,
    pub daily_gini_median: Option<f64>,
    pub daily_gini_max: Option<f64>,
    pub daily_max_deviation: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RepReport {
    pub id: String,
    pub name: String,
    pub teams: Vec<String>,
    pub leads: u64,
    pub share: f64,
    /// The share the weights imply, over the leads that went to targets this rep is part of.
    pub target_share: f64,
    /// share − target share.
    pub deviation: f64,
    /// The most leads the rep got in one day.
    pub busiest_day: u64,
    /// Leads the rep was passed over for because a cap was reached.
    pub cap_hits: u64,
    /// Leads the rep received outside their working hours.
    pub outside_hours: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TeamReport {
    pub id: String,
    pub name: String,
    pub leads: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RuleReport {
    pub id: String,
    pub name: Option<String>,
    /// Leads that reached this rule (no earlier rule decided them) and met its condition.
    pub matched: u64,
    /// Leads this rule decided.
    pub routed: u64,
    /// No lead met its condition, reached or not.
    pub never_matched: bool,
    /// Some lead met its condition, but the rule decided none: an earlier rule always took them.
    pub shadowed: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Fidelity {
    /// Leads with a recorded owner.
    pub compared: u64,
    /// Of those, leads A gave the same owner when they arrived.
    pub same_owner: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Moved {
    /// Leads whose owner differs between A and B (held or pooled counts as no owner).
    pub leads: u64,
    pub share: f64,
    #[schema(value_type = Vec<Object>)]
    pub sample: Vec<MovedLead>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MovedLead {
    pub line: u64,
    pub lead_id: Option<String>,
    pub arrived_at: String,
    pub source: Option<String>,
    pub region: Option<String>,
    pub industry: Option<String>,
    pub a: Placed,
    pub b: Placed,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Placed {
    /// `assigned`, `pooled` or `held`.
    pub outcome: String,
    pub rep_id: Option<String>,
    pub rep_name: Option<String>,
    pub rule: Option<String>,
    /// `{"en": …, "zh": …}`.
    #[schema(value_type = Object)]
    pub explanation: serde_json::Value,
}

impl Placed {
    pub fn new(
        workspace: &crate::workspace::Workspace,
        lead: &engine::Lead,
        decision: &engine::Decision,
    ) -> Placed {
        let record = workspace.record(decision, lead);
        let rules = &workspace.rules.rules;
        let rep = decision.owner();
        Placed {
            outcome: decision.outcome.code().to_owned(),
            rep_id: rep.map(|rep| rep.as_str().to_owned()),
            rep_name: rep
                .and_then(|rep| workspace.roster.position(rep))
                .map(|index| workspace.roster.rep(index).name.clone()),
            rule: decision
                .matched_rule()
                .and_then(|rule| rules.get(rule as usize))
                .map(|rule| rule.id.clone()),
            explanation: serde_json::json!({
                "en": record.explain(engine::Language::En),
                "zh": record.explain(engine::Language::Zh),
            }),
        }
    }
}

/// Gini coefficient of non-negative values.
pub fn gini(values: &mut [f64]) -> f64 {
    let n = values.len() as f64;
    let total: f64 = values.iter().sum();
    if values.len() < 2 || total <= 0.0 {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let weighted: f64 = values
        .iter()
        .enumerate()
        .map(|(index, value)| (index as f64 + 1.0) * value)
        .sum();
    (2.0 * weighted / (n * total) - (n + 1.0) / n).max(0.0)
}

fn quantile(sorted: &[u32], q: f64) -> Option<u32> {
    (!sorted.is_empty()).then(|| sorted[((sorted.len() - 1) as f64 * q).round() as usize])
}

/// Each rep's expected leads had every target shared its leads by weight (a team member's
/// weight in that team, else the rep's), inactive reps aside.
fn targets(side: &Side) -> Vec<f64> {
    let roster = &side.workspace.roster;
    let mut expected = vec![0.0; roster.reps().len()];
    let active = |index: RepIndex| roster.rep(index).status != engine::RepStatus::Inactive;
    for (target, count) in side.tally.targets.values() {
        let mut members: Vec<(RepIndex, f64)> = Vec::new();
        match target {
            Target::Teams(teams) => {
                for team in teams {
                    if let Some(team) = roster.team(team) {
                        for (index, weight) in team.members() {
                            if active(*index) && !members.iter().any(|(seen, _)| seen == index) {
                                members.push((*index, *weight));
                            }
                        }
                    }
                }
            }
            Target::Reps(reps) => {
                for rep in reps {
                    if let Some(index) = roster.position(rep).filter(|index| active(*index)) {
                        members.push((index, roster.rep(index).weight));
                    }
                }
            }
            Target::One(index) => members.push((*index, 1.0)),
        }
        let total: f64 = members.iter().map(|(_, weight)| weight.max(0.0)).sum();
        if total <= 0.0 {
            continue;
        }
        for (index, weight) in members {
            expected[index as usize] += *count as f64 * weight.max(0.0) / total;
        }
    }
    expected
}

pub fn policy(side: &Side, label: &str, version: Option<u32>, never_placed: u64) -> PolicyReport {
    let roster = &side.workspace.roster;
    let tally = &side.tally;
    let expected = targets(side);
    let assigned = tally.assigned.max(1) as f64;
    let team_of = |index: RepIndex| -> Vec<String> {
        roster
            .teams()
            .filter(|team| {
                roster
                    .team(&team.id)
                    .is_some_and(|found| found.members().iter().any(|(member, _)| *member == index))
            })
            .map(|team| team.id.clone())
            .collect()
    };
    let mut reps = Vec::new();
    let mut ratios = Vec::new();
    let mut target_shares = vec![0.0; roster.reps().len()];
    let (mut max_deviation, mut max_deviation_rep) = (0.0f64, None);
    for (index, rep) in roster.reps().iter().enumerate() {
        let leads = tally.leads[index];
        let target = expected[index];
        if leads == 0 && target == 0.0 && rep.status == engine::RepStatus::Inactive {
            continue;
        }
        let share = leads as f64 / assigned;
        let target_share = target / assigned;
        target_shares[index] = target_share;
        let deviation = share - target_share;
        if deviation.abs() > max_deviation.abs() {
            max_deviation = deviation;
            max_deviation_rep = Some(rep.id.as_str().to_owned());
        }
        if target > 0.0 {
            ratios.push(leads as f64 / target);
        }
        reps.push(RepReport {
            id: rep.id.as_str().to_owned(),
            name: rep.name.clone(),
            teams: team_of(index as RepIndex),
            leads,
            share,
            target_share,
            deviation,
            busiest_day: tally
                .daily
                .values()
                .map(|counts| u64::from(counts[index]))
                .max()
                .unwrap_or(0),
            cap_hits: tally.cap_hits[index],
            outside_hours: tally.outside_hours[index],
        });
    }
    let with_target = target_shares.iter().filter(|share| **share > 0.0).count();
    let mut daily_ginis = Vec::new();
    let mut daily_deviation: Option<f64> = None;
    for counts in tally.daily.values() {
        let total: u32 = counts.iter().sum();
        if with_target == 0 || (total as usize) < with_target {
            continue;
        }
        let mut ratios: Vec<f64> = counts
            .iter()
            .zip(&target_shares)
            .filter(|(_, target)| **target > 0.0)
            .map(|(count, target)| *count as f64 / (target * total as f64))
            .collect();
        daily_ginis.push(gini(&mut ratios));
        let deviation = counts
            .iter()
            .zip(&target_shares)
            .filter(|(_, target)| **target > 0.0)
            .map(|(count, target)| (*count as f64 / total as f64 - target).abs())
            .fold(0.0, f64::max);
        daily_deviation = Some(daily_deviation.map_or(deviation, |seen: f64| seen.max(deviation)));
    }
    daily_ginis.sort_by(f64::total_cmp);
    let mut waits = tally.waits.clone();
    waits.sort_unstable();
    let rules = &side.workspace.rules.rules;
    PolicyReport {
        label: label.to_owned(),
        rule_set_version: version,
        rule_set_name: side.workspace.rules.name.clone(),
        assigned: tally.assigned,
        pooled: tally.pooled,
        held: Held {
            held: tally.held,
            placed_later: tally.waits.len() as u64,
            never_placed,
            wait_median_secs: quantile(&waits, 0.5),
            wait_p90_secs: quantile(&waits, 0.9),
            wait_max_secs: waits.last().copied(),
        },
        cap_hits: tally.cap_hits.iter().sum(),
        outside_hours: tally.outside_hours.iter().sum(),
        fairness: Fairness {
            gini: gini(&mut ratios),
            max_deviation: max_deviation.abs(),
            max_deviation_rep,
            days: daily_ginis.len() as u32,
            daily_gini_median: (!daily_ginis.is_empty())
                .then(|| daily_ginis[daily_ginis.len() / 2]),
            daily_gini_max: daily_ginis.last().copied(),
            daily_max_deviation: daily_deviation,
        },
        reps,
        teams: {
            let mut teams: Vec<TeamReport> = roster
                .teams()
                .map(|team| TeamReport {
                    id: team.id.clone(),
                    name: team.name.clone(),
                    leads: tally.team_leads.get(&team.id).copied().unwrap_or(0),
                })
                .collect();
            teams.sort_by(|a, b| a.id.cmp(&b.id));
            teams
        },
        rules: rules
            .iter()
            .enumerate()
            .map(|(index, rule)| RuleReport {
                id: rule.id.clone(),
                name: rule.name.clone(),
                matched: tally.rule_matched[index],
                routed: tally.rule_routed[index],
                never_matched: !tally.rule_could_match[index],
                shadowed: tally.rule_could_match[index] && tally.rule_routed[index] == 0,
            })
            .collect(),
        default_routed: tally.default_routed,
    }
}

pub fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
