//! Batch assignment (批量最优分配): a backlog placed as a whole by expected value under caps
//! and fairness, instead of lead by lead in arrival order, where the first leads take the
//! best-fitting reps' room and the rest get whoever is left.
//!
//! Each lead is routed as usual first, against the state before the batch, keeping the
//! deciding step's eligible candidates: eligibility (rule targets, requirements, status, leave,
//! hours, caps) is routing's own. Leads routing would not hand to a strategy — a known
//! customer's owner, a pool, the hold queue — keep that decision. The rest become a
//! transportation problem ([`solve`]): a lead's value (win probability × expected amount where
//! a model scored it, else its score, else 1) times each eligible rep's fit (their conversion
//! on the lead's segment, shrunk toward their own rate, relative to the best, and the share of
//! preferences they meet), each rep's room the least
//! their caps leave, and with a fairness band each rep's count within ± the band of their
//! share of the leads they are eligible for, floors (下限) first. A lead the plan cannot place
//! is routed as usual against the state after the plan, away from reps whose band is full: to
//! a fallback, a pool or the hold queue, with the reason.

pub mod solve;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::decision::{Attempt, BatchNote, Candidate, Step};
use crate::hours::Period;
use crate::lead::Lead;
use crate::model::WinModel;
use crate::rep::RepId;
use crate::roster::{Clock, RepIndex, Roster};
use crate::route::{RouteRequest, route};
use crate::rule_set::RuleSet;
use crate::state::{RoutingState, StateChange};
use crate::{Decision, Outcome};

use self::solve::{Bounds, Problem};

/// How a batch is planned.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// Each rep's count stays within ± this share of their target (0.1: ±10%); `None`: caps
    /// only.
    pub band: Option<f64>,
    /// The expected amount of a lead without a budget (the workspace's mean won amount).
    pub default_amount: f64,
}

/// The band a batch keeps unless asked otherwise: each rep within ±10% of their share.
pub const DEFAULT_BAND: f64 = 0.1;

impl Default for Settings {
    fn default() -> Self {
        Settings {
            band: Some(DEFAULT_BAND),
            default_amount: 1.0,
        }
    }
}

/// One rep's part in a plan.
#[derive(Clone, Debug, PartialEq)]
pub struct RepPlan {
    pub rep: RepId,
    /// Leads the plan gives them.
    pub leads: u32,
    /// The band's floor (or their 下限) and ceiling, the ceiling already within their caps.
    pub lower: u32,
    pub upper: u32,
    /// What their caps allowed before the batch (`None`: no cap).
    pub room: Option<u32>,
}

/// What a plan is worth, beside routing the same leads one at a time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    pub leads: usize,
    /// Leads a strategy would have placed: the ones the plan optimises.
    pub optimised: usize,
    pub placed: usize,
    /// Optimised leads the plan had no room for (routed as usual afterwards).
    pub unplaced: usize,
    /// Σ value × fit of the plan's placements.
    pub objective: f64,
    /// The same for routing the optimised leads one at a time in arrival order.
    pub one_by_one: f64,
    /// The same for arrival order, each lead to the best-fitting rep with room left.
    pub greedy: f64,
    /// The share of the plan's objective one-by-one routing loses (0 when none).
    pub one_by_one_gap: f64,
    pub greedy_gap: f64,
    /// Lower-bound units met by the plan, of how many asked.
    pub lower_met: u64,
    pub lower_asked: u64,
    pub reps: Vec<RepPlan>,
}

/// A plan: one decision per lead in the order given (apply their changes in that order), and
/// its summary.
#[derive(Clone, Debug)]
pub struct Plan {
    pub decisions: Vec<Decision>,
    pub summary: Summary,
}

/// The deciding attempt of a decision a strategy made, with its candidates.
fn deciding(decision: &Decision) -> Option<&Attempt> {
    if !matches!(decision.outcome, Outcome::Assigned { .. }) {
        return None;
    }
    decision
        .attempts
        .iter()
        .rev()
        .find(|attempt| attempt.winner.is_some())
        .filter(|attempt| attempt.step != Step::Affinity && !attempt.candidates.is_empty())
}

/// The lead's expected value.
pub fn lead_value(lead: &Lead, decision: &Decision, default_amount: f64) -> f64 {
    let value = match (&decision.win, decision.score) {
        (Some(win), _) => win.probability * lead.budget.unwrap_or(default_amount).max(0.0),
        (None, Some(score)) if score > 0.0 => score,
        _ => 1.0,
    };
    if value.is_finite() { value } else { 1.0 }
}

/// Closed leads worth of prior pulling a rep's conversion toward the batch's mean.
const PRIOR_LEADS: f64 = 10.0;

/// Conversion per rep, smoothed toward the mean of `reps`.
fn smoothed_conversion(state: &RoutingState, reps: &[RepIndex]) -> BTreeMap<RepIndex, f64> {
    let (won, closed) = reps.iter().fold((0.0, 0.0), |(won, closed), rep| {
        let stats = &state.rep(*rep).stats;
        (won + f64::from(stats.won), closed + f64::from(stats.closed))
    });
    let mean = if closed > 0.0 { won / closed } else { 0.0 };
    reps.iter()
        .map(|rep| {
            let stats = &state.rep(*rep).stats;
            let rate = (f64::from(stats.won) + PRIOR_LEADS * mean)
                / (f64::from(stats.closed) + PRIOR_LEADS);
            (*rep, rate)
        })
        .collect()
}

/// A rep's conversion on a lead's segment: their record there, shrunk toward their overall
/// (smoothed) rate by ten closed leads of prior.
fn segment_conversion(
    overall: f64,
    history: Option<&SegmentHistory>,
    rep: RepIndex,
    segment: &str,
) -> f64 {
    match history.and_then(|history| history.get(&(rep, segment.to_owned()))) {
        Some((won, closed)) => {
            (f64::from(*won) + PRIOR_LEADS * overall) / (f64::from(*closed) + PRIOR_LEADS)
        }
        None => overall,
    }
}

fn fit(conversion: f64, matching: f64) -> f64 {
    conversion * (0.5 + 0.5 * matching)
}

/// How many more leads the rep's caps allow at this moment (`None`: no cap), and how many they
/// still need to meet their weekly and monthly floors (下限).
fn room_and_floor(
    roster: &Roster,
    clock: &Clock,
    state: &RoutingState,
    rep: RepIndex,
) -> (Option<u32>, u32) {
    let local = clock.local(roster, rep);
    let caps = &roster.hot[rep as usize].caps;
    let rep_state = state.rep(rep);
    let left = |cap: Option<u32>, taken: u32| cap.map(|cap| cap.saturating_sub(taken));
    let room = [
        left(caps.max_open, rep_state.open_leads),
        left(caps.max_per_day, rep_state.count(Period::Day, local)),
        left(caps.max_per_week, rep_state.count(Period::Week, local)),
        left(caps.max_per_month, rep_state.count(Period::Month, local)),
    ]
    .into_iter()
    .flatten()
    .min();
    let floor = [
        left(caps.min_per_week, rep_state.count(Period::Week, local)),
        left(caps.min_per_month, rep_state.count(Period::Month, local)),
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(0);
    (room, floor)
}

fn assigned(roster: &Roster, clock: &Clock, rep: RepIndex, now: DateTime<Utc>) -> StateChange {
    let local = clock.local(roster, rep);
    StateChange::Assigned {
        rep: roster.rep(rep).id.clone(),
        at: now,
        day: local.period_start(Period::Day),
        week: local.period_start(Period::Week),
        month: local.period_start(Period::Month),
    }
}

/// One optimised lead: where it is in the batch and what each eligible rep is worth.
struct Optimised {
    index: usize,
    value: f64,
    candidates: Vec<Candidate>,
}

/// Each rep's record per customer segment (`lead::size_segment`): `(rep, segment) → (won,
/// closed)`. The fit learns from it where it has history.
pub type SegmentHistory = std::collections::HashMap<(RepIndex, String), (u32, u32)>;

/// What a batch is planned against: routing's inputs, the settings, the reps no lead may go to
/// (a rep handing leads back on leave) and each rep's record per segment.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    pub rules: &'a RuleSet,
    pub roster: &'a Roster,
    pub state: &'a RoutingState,
    pub now: DateTime<Utc>,
    pub model: Option<&'a WinModel>,
    pub settings: Settings,
    pub exclude: &'a [RepId],
    pub history: Option<&'a SegmentHistory>,
}

/// Plans a batch: the decision for each lead, in the order given, and what the plan is worth
/// beside one-by-one routing.
pub fn plan(batch: &Batch<'_>, leads: &[&Lead]) -> Plan {
    let Batch {
        rules,
        roster,
        state,
        now,
        model,
        settings,
        exclude,
        history,
    } = *batch;
    let settings = &settings;
    // Routing's own view of each lead against the state before the batch.
    let first: Vec<Decision> = leads
        .iter()
        .map(|lead| {
            route(
                rules,
                roster,
                state,
                &RouteRequest {
                    lead,
                    now,
                    exclude,
                    model,
                    keep_candidates: true,
                },
            )
        })
        .collect();
    let mut decisions: Vec<Decision> = first.clone();
    let mut working = state.clone();
    let mut optimised = Vec::new();
    // Leads no strategy decides keep their decision, made against the state as it goes.
    for (index, decision) in first.iter().enumerate() {
        match deciding(decision) {
            Some(attempt) => optimised.push(Optimised {
                index,
                value: lead_value(leads[index], decision, settings.default_amount),
                candidates: attempt.candidates.clone(),
            }),
            None => {
                let decision = route(
                    rules,
                    roster,
                    &working,
                    &RouteRequest {
                        lead: leads[index],
                        now,
                        exclude,
                        model,
                        keep_candidates: false,
                    },
                );
                working.apply(roster, &decision.changes);
                decisions[index] = decision;
            }
        }
    }

    // The reps in play, their room, conversion and fair share.
    let mut reps: Vec<RepIndex> = optimised
        .iter()
        .flat_map(|lead| lead.candidates.iter().map(|candidate| candidate.rep))
        .collect();
    reps.sort_unstable();
    reps.dedup();
    let node: BTreeMap<RepIndex, usize> = reps
        .iter()
        .enumerate()
        .map(|(node, rep)| (*rep, node))
        .collect();
    let conversion = smoothed_conversion(&working, &reps);
    let mut expected = vec![0.0f64; reps.len()];
    for lead in &optimised {
        let total: f64 = lead
            .candidates
            .iter()
            .map(|candidate| candidate.weight.max(0.0))
            .sum();
        for candidate in &lead.candidates {
            let share = if total > 0.0 {
                candidate.weight.max(0.0) / total
            } else {
                1.0 / lead.candidates.len() as f64
            };
            expected[node[&candidate.rep]] += share;
        }
    }
    let clock = roster.clock(now);
    let limits: Vec<(Option<u32>, u32)> = reps
        .iter()
        .map(|rep| room_and_floor(roster, &clock, &working, *rep))
        .collect();
    let rooms: Vec<Option<u32>> = limits.iter().map(|(room, _)| *room).collect();
    let bounds: Vec<Bounds> = reps
        .iter()
        .enumerate()
        .map(|(position, _)| {
            let room = rooms[position].unwrap_or(u32::MAX);
            let (band_lower, band_upper) = match settings.band {
                Some(band) => (
                    (expected[position] * (1.0 - band)).floor().max(0.0) as u32,
                    (expected[position] * (1.0 + band)).ceil() as u32,
                ),
                None => (0, u32::MAX),
            };
            let upper = band_upper.min(room);
            let lower = band_lower.max(limits[position].1).min(upper);
            Bounds { lower, upper }
        })
        .collect();

    // Each lead–rep conversion on the lead's segment, relative to the best of them all.
    let rates: Vec<Vec<f64>> = optimised
        .iter()
        .map(|lead| {
            let segment = crate::lead::size_segment(leads[lead.index].company_size);
            lead.candidates
                .iter()
                .map(|candidate| {
                    segment_conversion(conversion[&candidate.rep], history, candidate.rep, segment)
                })
                .collect()
        })
        .collect();
    let best_rate = rates.iter().flatten().copied().fold(0.0, f64::max);
    // Weights: value × fit, in integers so that the optimum and its ties are exact.
    let fits: Vec<Vec<(usize, f64)>> = optimised
        .iter()
        .zip(&rates)
        .map(|(lead, rates)| {
            lead.candidates
                .iter()
                .zip(rates)
                .map(|(candidate, rate)| {
                    let relative = if best_rate > 0.0 {
                        rate / best_rate
                    } else {
                        1.0
                    };
                    (
                        node[&candidate.rep],
                        lead.value * fit(relative, candidate.matching),
                    )
                })
                .collect()
        })
        .collect();
    let largest = fits
        .iter()
        .flatten()
        .map(|(_, worth)| *worth)
        .fold(0.0, f64::max);
    let scale = if largest > 0.0 { 1e6 / largest } else { 1.0 };
    let problem = Problem {
        edges: fits
            .iter()
            .map(|edges| {
                edges
                    .iter()
                    .map(|(rep, worth)| (*rep, (worth * scale).round() as i64))
                    .collect()
            })
            .collect(),
        reps: bounds.clone(),
    };
    let solution = solve::solve(&problem);
    let greedy = problem.greedy();
    let worth_of = |lead: usize, rep: usize| {
        fits[lead]
            .iter()
            .find(|(node, _)| *node == rep)
            .map_or(0.0, |(_, worth)| *worth)
    };

    // One by one, in arrival order, from the same state: what the plan is compared with.
    let mut alone = working.clone();
    let one_by_one: Vec<Option<RepId>> = optimised
        .iter()
        .map(|lead| {
            let decision = route(
                rules,
                roster,
                &alone,
                &RouteRequest {
                    lead: leads[lead.index],
                    now,
                    exclude,
                    model,
                    keep_candidates: false,
                },
            );
            alone.apply(roster, &decision.changes);
            decision.owner().cloned()
        })
        .collect();
    let one_by_one_objective: f64 = optimised
        .iter()
        .enumerate()
        .map(|(position, _)| {
            // A rep outside the lead's candidates (a fallback) earns nothing here.
            one_by_one[position]
                .as_ref()
                .and_then(|rep| roster.position(rep))
                .and_then(|rep| node.get(&rep))
                .map_or(0.0, |rep| worth_of(position, *rep))
        })
        .sum();

    // The plan's placements, in the order the leads came.
    let mut counts = vec![0u32; reps.len()];
    let mut unplaced = Vec::new();
    let mut objective = 0.0;
    for (position, lead) in optimised.iter().enumerate() {
        let Some(rep_node) = solution.assignment[position] else {
            unplaced.push(position);
            continue;
        };
        counts[rep_node] += 1;
        let rep = reps[rep_node];
        let worth = worth_of(position, rep_node);
        objective += worth;
        let mut decision = first[lead.index].clone();
        if let Some(attempt) = decision
            .attempts
            .iter_mut()
            .rev()
            .find(|attempt| attempt.winner.is_some())
        {
            attempt.winner = Some(rep);
            attempt.strategy = Some("optimal_batch");
            attempt.leading.clear();
            attempt.tie_break = None;
            attempt.candidates.clear();
        }
        let rep_id = roster.rep(rep).id.clone();
        decision.outcome = Outcome::Assigned {
            rep: rep_id.clone(),
        };
        decision.changes = vec![assigned(roster, &clock, rep, now)];
        working.apply(roster, &decision.changes);
        let best = fits[position]
            .iter()
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
            .map(|(node, _)| *node);
        decision.batch = Some(BatchNote {
            value: lead.value,
            fit: Some(if lead.value > 0.0 {
                worth / lead.value
            } else {
                0.0
            }),
            remaining: (bounds[rep_node].upper != u32::MAX)
                .then(|| bounds[rep_node].upper.saturating_sub(counts[rep_node])),
            one_by_one: one_by_one[position].clone(),
            best_fit: best
                .filter(|best| {
                    *best != rep_node && worth_of(position, *best) > worth_of(position, rep_node)
                })
                .map(|best| roster.rep(reps[best]).id.clone()),
            unplaced: false,
        });
        decisions[lead.index] = decision;
    }
    // What the plan could not place: routed as usual after it, away from full bands.
    let full: Vec<RepId> = reps
        .iter()
        .enumerate()
        .filter(|(position, _)| counts[*position] >= bounds[*position].upper)
        .map(|(_, rep)| roster.rep(*rep).id.clone())
        .chain(exclude.iter().cloned())
        .collect();
    for position in &unplaced {
        let lead = &optimised[*position];
        let mut decision = route(
            rules,
            roster,
            &working,
            &RouteRequest {
                lead: leads[lead.index],
                now,
                exclude: &full,
                model,
                keep_candidates: false,
            },
        );
        working.apply(roster, &decision.changes);
        decision.batch = Some(BatchNote {
            value: lead.value,
            fit: None,
            remaining: None,
            one_by_one: one_by_one[*position].clone(),
            best_fit: None,
            unplaced: true,
        });
        decisions[lead.index] = decision;
    }

    let lower_asked = bounds.iter().map(|bounds| u64::from(bounds.lower)).sum();
    let gap = |other: f64| {
        if objective > 0.0 {
            ((objective - other) / objective).max(0.0)
        } else {
            0.0
        }
    };
    let greedy_objective = greedy.weight as f64 / scale;
    let summary = Summary {
        leads: leads.len(),
        optimised: optimised.len(),
        placed: optimised.len() - unplaced.len(),
        unplaced: unplaced.len(),
        objective,
        one_by_one: one_by_one_objective,
        greedy: greedy_objective,
        one_by_one_gap: gap(one_by_one_objective),
        greedy_gap: gap(greedy_objective),
        lower_met: solution.lower_met,
        lower_asked,
        reps: reps
            .iter()
            .enumerate()
            .map(|(position, rep)| RepPlan {
                rep: roster.rep(*rep).id.clone(),
                leads: counts[position],
                lower: bounds[position].lower,
                upper: bounds[position].upper,
                room: rooms[position],
            })
            .collect(),
    };
    Plan { decisions, summary }
}
