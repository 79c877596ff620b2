//! Routing one lead: tag, score, find the first matching rule, try its target, then its
//! fallback chain. Pure: `now`, the state and the exclusions are arguments, and the state
//! changes come back in the decision for the store to apply with the assignment.

use chrono::{DateTime, Utc};

use crate::decision::{Attempt, AttemptTarget, Candidate, Decision, Outcome, RuleTrace, Step};
use crate::eligibility::{Bound, Exclusion, Gate, requirement_set};
use crate::field::{LeadField, LeadView};
use crate::hours::Period;
use crate::lead::{Lead, Priority};
use crate::model::WinModel;
use crate::rep::RepId;
use crate::roster::{Clock, RepIndex, Roster, bit, positions, set_bit};
use crate::rule_set::{Fallback, Rule, RuleSet, Target};
use crate::state::{RoutingState, StateChange};
use crate::strategy::{self, Pick, Strategy};
use crate::team::HoursPolicy;
use crate::value::ValueRef;

/// What to route, and when.
#[derive(Clone, Copy, Debug)]
pub struct RouteRequest<'a> {
    pub lead: &'a Lead,
    pub now: DateTime<Utc>,
    /// Reps who must not get the lead, such as its previous owners when reassigning.
    pub exclude: &'a [RepId],
    /// The published conversion model, which scores the lead before anything else reads it.
    pub model: Option<&'a WinModel>,
    /// Keep the deciding step's eligible candidates in its attempt (batch planning).
    pub keep_candidates: bool,
}

/// Routes a lead under a rule set. Never fails: a lead nobody can take is held, never dropped.
pub fn route(
    rules: &RuleSet,
    roster: &Roster,
    state: &RoutingState,
    request: &RouteRequest<'_>,
) -> Decision {
    let lead = request.lead;
    let clock = roster.clock(request.now);
    let exclude: Vec<RepIndex> = request
        .exclude
        .iter()
        .filter_map(|id| roster.position(id))
        .collect();

    let mut view = LeadView::new(lead, &rules.catalogue);
    // The model reads the lead as it arrived (its own tags, not those rules add), as it was
    // trained; everything after may test the probability.
    let win = request
        .model
        .map(|model| model.score(&view, lead.created_at.unwrap_or(request.now)));
    if let Some(win) = &win {
        view.win_probability = Some(win.probability);
    }
    let tags_added = tags_to_add(rules, &view);
    let merged: Vec<String>;
    if !tags_added.is_empty() {
        merged = lead.tags.iter().chain(&tags_added).cloned().collect();
        view.tags = &merged;
    }
    let (score, priority) = score(rules, &view);
    view.score = score;
    view.priority = priority;

    let mut router = Router {
        rules,
        roster,
        state,
        clock: &clock,
        exclude: &exclude,
        now: request.now,
        view: &view,
        attempts: Vec::new(),
        keep_candidates: request.keep_candidates,
    };
    let mut traces = Vec::with_capacity(rules.rules.len());
    let mut outcome = None;
    // The rules this lead's text fields leave in play; the others fail at their gate.
    let open = rules.index.open(&view);
    for (position, rule) in rules.rules.iter().enumerate() {
        let position = position as u32;
        if rule
            .window
            .as_ref()
            .is_some_and(|window| !window.contains(request.now))
        {
            traces.push(RuleTrace::OutsideWindow { rule: position });
            continue;
        }
        if let Some(node) = rules.index.closed(&open, position) {
            traces.push(RuleTrace::NotMatched {
                rule: position,
                node,
            });
            continue;
        }
        if let Some(Err(node)) = rule.when.as_ref().map(|when| when.eval(&view)) {
            traces.push(RuleTrace::NotMatched {
                rule: position,
                node,
            });
            continue;
        }
        traces.push(RuleTrace::Matched { rule: position });
        if let Some(found) = router.try_rule(position, rule) {
            outcome = Some(found);
            break;
        }
    }
    let (outcome, changes) = match outcome {
        Some(found) => found,
        None => router.follow_chain(None, None, &rules.default),
    };
    Decision {
        rule_set_version: rules.version,
        at: request.now,
        tags_added,
        score,
        win,
        priority,
        rules: traces,
        attempts: router.attempts,
        outcome,
        changes,
        batch: None,
    }
}

fn tags_to_add(rules: &RuleSet, view: &LeadView<'_>) -> Vec<String> {
    let mut added: Vec<String> = Vec::new();
    for tag_rule in &rules.tagging {
        if tag_rule.when.as_ref().is_none_or(|when| when.matches(view)) {
            for tag in &tag_rule.add_tags {
                if !view.tags.contains(tag) && !added.contains(tag) {
                    added.push(tag.clone());
                }
            }
        }
    }
    added
}

fn score(rules: &RuleSet, view: &LeadView<'_>) -> (Option<f64>, Option<Priority>) {
    let Some(scoring) = &rules.scoring else {
        return (view.score, view.priority);
    };
    let points: f64 = scoring
        .rules
        .iter()
        .filter(|rule| rule.when.as_ref().is_none_or(|when| when.matches(view)))
        .map(|rule| rule.points)
        .sum();
    let score = (scoring.base + points).clamp(0.0, 100.0);
    let priority = scoring
        .tiers
        .iter()
        .find(|(min_score, _)| score >= *min_score)
        .map(|(_, priority)| *priority)
        .or(view.priority);
    (Some(score), priority)
}

type Found = (Outcome, Vec<StateChange>);

struct Router<'a> {
    rules: &'a RuleSet,
    roster: &'a Roster,
    state: &'a RoutingState,
    clock: &'a Clock,
    exclude: &'a [RepIndex],
    now: DateTime<Utc>,
    view: &'a LeadView<'a>,
    attempts: Vec<Attempt>,
    keep_candidates: bool,
}

/// Who a step offers the lead to.
struct Candidates<'r> {
    target: AttemptTarget,
    /// A single team's members are borrowed from the roster, not copied per lead.
    reps: std::borrow::Cow<'r, [(RepIndex, f64)]>,
    /// The same reps as a set over the roster, when the roster keeps one (a single team).
    members: Option<&'r [u64]>,
    strategy: Strategy,
    hours: HoursPolicy,
    away_fallback: bool,
    rotation_key: String,
}

impl<'a> Router<'a> {
    /// Tries a matched rule: affinity, target, then fallbacks. `None` means "next rule".
    fn try_rule(&mut self, position: u32, rule: &Rule) -> Option<Found> {
        let pooling = matches!(rule.target, Target::Pool(_));
        let affinity = self.view.lead.owner_affinity || (rule.owner_affinity && !pooling);
        if affinity && rule.target != Target::ExistingOwner {
            let candidates = self.known_owner(rule);
            if let Some(found) = self.attempt(Some(position), Step::Affinity, candidates, rule, &[])
            {
                return Some(found);
            }
        }
        if let Target::Pool(pool) = &rule.target {
            self.attempts.push(empty_attempt(
                Some(position),
                Step::Primary,
                AttemptTarget::Pool(pool.clone()),
            ));
            return Some((Outcome::Pooled { pool: pool.clone() }, Vec::new()));
        }
        let requirements: Vec<Bound<'_>> = rule
            .requires
            .iter()
            .map(|condition| Bound::new(condition, self.view, self.roster))
            .collect();
        let candidates = self.primary(rule);
        if let Some(found) = self.attempt(
            Some(position),
            Step::Primary,
            candidates,
            rule,
            &requirements,
        ) {
            return Some(found);
        }
        const DEFAULT_CHAIN: [Fallback; 2] = [Fallback::Overflow, Fallback::Hold];
        let chain = if rule.fallback.is_empty() {
            &DEFAULT_CHAIN[..]
        } else {
            &rule.fallback[..]
        };
        if chain.first() == Some(&Fallback::NextRule) {
            return None;
        }
        let (outcome, changes) =
            self.follow_chain(Some((position, rule)), Some(&requirements), chain);
        Some((outcome, changes))
    }

    /// Walks a fallback chain; a lead that reaches its end is held. A `next_rule` step ends the
    /// chain early by returning to the rule loop, which the caller handles before calling.
    fn follow_chain(
        &mut self,
        rule: Option<(u32, &Rule)>,
        requirements: Option<&[Bound<'_>]>,
        chain: &[Fallback],
    ) -> Found {
        let position = rule.map(|(position, _)| position);
        for step in chain {
            let candidates = match step {
                Fallback::NextRule => continue,
                Fallback::Hold => {
                    self.attempts.push(empty_attempt(
                        position,
                        Step::Fallback(step.clone()),
                        AttemptTarget::Nothing,
                    ));
                    return (Outcome::Held, Vec::new());
                }
                Fallback::Pool(pool) => {
                    self.attempts.push(empty_attempt(
                        position,
                        Step::Fallback(step.clone()),
                        AttemptTarget::Pool(pool.clone()),
                    ));
                    return (Outcome::Pooled { pool: pool.clone() }, Vec::new());
                }
                Fallback::Overflow => {
                    let overflow = rule.and_then(|(_, rule)| self.overflow_of(rule));
                    match overflow {
                        Some(crate::team::Overflow::Pool(pool)) => {
                            self.attempts.push(empty_attempt(
                                position,
                                Step::Fallback(step.clone()),
                                AttemptTarget::Pool(pool.clone()),
                            ));
                            return (Outcome::Pooled { pool }, Vec::new());
                        }
                        Some(crate::team::Overflow::Team(team)) => {
                            self.teams(&[team], rule.map(|(_, rule)| rule))
                        }
                        None => {
                            self.attempts.push(empty_attempt(
                                position,
                                Step::Fallback(step.clone()),
                                AttemptTarget::Nothing,
                            ));
                            continue;
                        }
                    }
                }
                Fallback::Team(team) => {
                    self.teams(std::slice::from_ref(team), rule.map(|(_, rule)| rule))
                }
                Fallback::Reps(reps) => self.named_reps(reps, rule.map(|(_, rule)| rule), position),
            };
            let found = match rule {
                Some((_, rule)) => self.attempt(
                    position,
                    Step::Fallback(step.clone()),
                    candidates,
                    rule,
                    requirements.unwrap_or_default(),
                ),
                None => self.attempt_plain(Step::Fallback(step.clone()), candidates),
            };
            if let Some(found) = found {
                return found;
            }
        }
        (Outcome::Held, Vec::new())
    }

    fn overflow_of(&self, rule: &Rule) -> Option<crate::team::Overflow> {
        match &rule.target {
            Target::Teams(teams) => teams.iter().find_map(|team| {
                self.roster
                    .team(team)
                    .and_then(|team| team.team.overflow.clone())
            }),
            _ => None,
        }
    }

    fn known_owner(&self, rule: &Rule) -> Candidates<'a> {
        let owner = self.view.lead.known_owner.clone();
        let position = owner.as_ref().and_then(|owner| self.roster.position(owner));
        self.single(AttemptTarget::KnownOwner(owner), position, rule)
    }

    /// One named rep, or nobody when the name is unknown.
    fn single(
        &self,
        target: AttemptTarget,
        position: Option<RepIndex>,
        rule: &Rule,
    ) -> Candidates<'a> {
        Candidates {
            target,
            reps: position
                .map(|position| (position, self.roster.rep(position).weight))
                .into_iter()
                .collect(),
            members: None,
            strategy: Strategy::RoundRobin,
            hours: rule.hours.unwrap_or_default(),
            away_fallback: false,
            rotation_key: String::new(),
        }
    }

    fn primary(&self, rule: &Rule) -> Candidates<'a> {
        match &rule.target {
            Target::Teams(teams) => self.teams(teams, Some(rule)),
            Target::Reps(reps) => self.named_reps(reps, Some(rule), None),
            Target::ExistingOwner => self.known_owner(rule),
            Target::OwnerField(field) => {
                let value = match self.view.get(*field) {
                    Some(ValueRef::Text(text)) => Some(text.to_owned()),
                    _ => None,
                };
                let position = value.as_deref().and_then(|id| self.roster.position_of(id));
                self.single(AttemptTarget::OwnerField(value), position, rule)
            }
            // Pool targets are answered before candidates are built.
            Target::Pool(pool) => Candidates {
                target: AttemptTarget::Pool(pool.clone()),
                reps: std::borrow::Cow::Borrowed(&[]),
                members: None,
                strategy: Strategy::RoundRobin,
                hours: HoursPolicy::InHours,
                away_fallback: false,
                rotation_key: String::new(),
            },
        }
    }

    /// Members of the teams, with each member's weight in the first team that lists them.
    fn teams(&self, ids: &[String], rule: Option<&Rule>) -> Candidates<'a> {
        let teams: Vec<_> = ids.iter().filter_map(|id| self.roster.team(id)).collect();
        let (reps, members) = match teams.as_slice() {
            [team] => (
                std::borrow::Cow::Borrowed(team.members.as_slice()),
                Some(team.set.as_slice()),
            ),
            _ => {
                let mut all: Vec<(RepIndex, f64)> = teams
                    .iter()
                    .flat_map(|team| team.members.iter().copied())
                    .collect();
                all.sort_by_key(|(position, _)| *position);
                all.dedup_by_key(|(position, _)| *position);
                (std::borrow::Cow::Owned(all), None)
            }
        };
        let first = teams.first().map(|team| &team.team);
        Candidates {
            target: AttemptTarget::Teams(ids.to_vec()),
            reps,
            members,
            strategy: rule
                .and_then(|rule| rule.strategy.clone())
                .or_else(|| first.map(|team| team.default_strategy.clone()))
                .unwrap_or_default(),
            hours: rule
                .and_then(|rule| rule.hours)
                .or_else(|| first.map(|team| team.policy.hours))
                .unwrap_or_default(),
            away_fallback: first.is_some_and(|team| team.policy.away_fallback),
            rotation_key: format!("teams:{}", ids.join(",")),
        }
    }

    fn named_reps(
        &self,
        ids: &[RepId],
        rule: Option<&Rule>,
        fallback_of: Option<u32>,
    ) -> Candidates<'a> {
        let mut reps: Vec<(RepIndex, f64)> = ids
            .iter()
            .filter_map(|id| self.roster.position(id))
            .map(|position| (position, self.roster.rep(position).weight))
            .collect();
        reps.sort_by_key(|(position, _)| *position);
        reps.dedup_by_key(|(position, _)| *position);
        let rule_id = rule.map_or("default", |rule| rule.id.as_str());
        Candidates {
            target: AttemptTarget::Reps(ids.to_vec()),
            reps: reps.into(),
            members: None,
            strategy: rule
                .and_then(|rule| rule.strategy.clone())
                .unwrap_or_default(),
            hours: rule.and_then(|rule| rule.hours).unwrap_or_default(),
            away_fallback: false,
            rotation_key: match fallback_of {
                Some(_) => format!("rule:{rule_id}:fallback"),
                None => format!("rule:{rule_id}"),
            },
        }
    }

    fn attempt_plain(&mut self, step: Step, candidates: Candidates<'_>) -> Option<Found> {
        self.run(None, step, candidates, &[], &[])
    }

    fn attempt(
        &mut self,
        rule_position: Option<u32>,
        step: Step,
        candidates: Candidates<'_>,
        rule: &Rule,
        requirements: &[Bound<'_>],
    ) -> Option<Found> {
        let preferences: Vec<Bound<'_>> = if step == Step::Affinity {
            Vec::new()
        } else {
            rule.prefers
                .iter()
                .map(|condition| Bound::new(condition, self.view, self.roster))
                .collect()
        };
        self.run(rule_position, step, candidates, requirements, &preferences)
    }

    /// Checks every candidate, narrows by preferences and floors, and lets the strategy pick.
    fn run(
        &mut self,
        rule: Option<u32>,
        step: Step,
        candidates: Candidates<'_>,
        requirements: &[Bound<'_>],
        preferences: &[Bound<'_>],
    ) -> Option<Found> {
        let mut gate = Gate {
            roster: self.roster,
            state: self.state,
            catalogue: &self.rules.catalogue,
            clock: self.clock,
            hours: candidates.hours,
            exclude: self.exclude,
            requirements,
        };
        // Requirements first, as one set when they are sets; then availability for the reps
        // who are the right reps at all.
        let required = requirement_set(requirements, self.roster);
        let mut eligible: Vec<(RepIndex, f64)> = Vec::with_capacity(candidates.reps.len());
        let mut unavailable: Vec<(RepIndex, Exclusion)> = Vec::new();
        let mut failed: Vec<u64> = Vec::new();
        match (&required, candidates.members) {
            // A team against requirement sets, with nobody excluded by name: word by word, the
            // members outside the set failed a requirement, and only those inside are visited.
            (Some(required), Some(members)) if self.exclude.is_empty() => {
                failed = members
                    .iter()
                    .zip(required)
                    .map(|(member, meets)| member & !meets)
                    .collect();
                if failed.iter().all(|word| *word == 0) {
                    failed = Vec::new();
                }
                let mut reps = candidates.reps.iter();
                let meeting = members
                    .iter()
                    .zip(required)
                    .map(|(member, meets)| member & meets);
                for position in positions(meeting) {
                    let weight = reps
                        .find(|(candidate, _)| *candidate == position)
                        .map_or(1.0, |(_, weight)| *weight);
                    match gate.available(position) {
                        Ok(()) => eligible.push((position, weight)),
                        Err(reason) => unavailable.push((position, reason)),
                    }
                }
            }
            _ => {
                for &(position, weight) in candidates.reps.iter() {
                    if gate.excludes(position) {
                        unavailable.push((position, Exclusion::Excluded));
                        continue;
                    }
                    let meets = match &required {
                        Some(set) => bit(set, position),
                        None => gate.first_unmet(position).is_none(),
                    };
                    if !meets {
                        if failed.is_empty() {
                            failed = vec![0; self.roster.reps().len().div_ceil(64)];
                        }
                        set_bit(&mut failed, position);
                        continue;
                    }
                    match gate.available(position) {
                        Ok(()) => eligible.push((position, weight)),
                        Err(reason) => unavailable.push((position, reason)),
                    }
                }
            }
        }
        let unmet = split_by_first_unmet(&gate, failed);
        let mut away_fallback = false;
        if eligible.is_empty()
            && candidates.away_fallback
            && unavailable
                .iter()
                .any(|(_, reason)| *reason == Exclusion::OutsideHours)
        {
            gate.hours = HoursPolicy::AnyTime;
            for (position, reason) in &mut unavailable {
                if *reason == Exclusion::OutsideHours {
                    match gate.available(*position) {
                        Ok(()) => {
                            let weight = candidates
                                .reps
                                .iter()
                                .find(|(candidate, _)| candidate == position)
                                .map_or(1.0, |(_, weight)| *weight);
                            eligible.push((*position, weight));
                        }
                        Err(other) => *reason = other,
                    }
                }
            }
            unavailable.retain(|(position, _)| {
                !eligible.iter().any(|(candidate, _)| candidate == position)
            });
            eligible.sort_by_key(|(position, _)| *position);
            away_fallback = !eligible.is_empty();
        }
        let mut attempt = Attempt {
            rule,
            step,
            target: candidates.target,
            considered: candidates.reps.len() as u32,
            unavailable,
            unmet,
            away_fallback,
            preferences: None,
            floor: false,
            strategy: None,
            leading: Vec::new(),
            tie_break: None,
            winner: None,
            candidates: Vec::new(),
        };
        if eligible.is_empty() {
            self.attempts.push(attempt);
            return None;
        }
        if self.keep_candidates {
            let matching = self.matching(&eligible, preferences);
            attempt.candidates = eligible
                .iter()
                .zip(matching)
                .map(|(&(rep, weight), matching)| Candidate {
                    rep,
                    weight,
                    matching,
                })
                .collect();
        }
        if !preferences.is_empty() {
            // Preferences are dropped from the last one: a rep's tier is how many leading
            // preferences they meet, and the best tier anyone reaches is served.
            let sets: Option<Vec<Option<&[u64]>>> = preferences.iter().map(Bound::set).collect();
            let best = match sets {
                // As sets: those meeting the first k preferences narrow with each k, and the
                // best tier is the last that still holds an eligible rep.
                Some(sets) => {
                    let mut meeting = vec![u64::MAX; self.roster.reps().len().div_ceil(64)];
                    let mut best = 0;
                    for set in sets {
                        if let Some(set) = set {
                            let narrowed: Vec<u64> = meeting
                                .iter()
                                .zip(set)
                                .map(|(left, right)| left & right)
                                .collect();
                            if !eligible
                                .iter()
                                .any(|(position, _)| bit(&narrowed, *position))
                            {
                                break;
                            }
                            meeting = narrowed;
                        }
                        best += 1;
                    }
                    eligible.retain(|(position, _)| bit(&meeting, *position));
                    best
                }
                None => {
                    let tier = |position: RepIndex| {
                        preferences
                            .iter()
                            .take_while(|preference| {
                                preference.holds(self.roster, position, &self.rules.catalogue)
                            })
                            .count()
                    };
                    let tiers: Vec<usize> = eligible
                        .iter()
                        .map(|(position, _)| tier(*position))
                        .collect();
                    let best = tiers.iter().copied().max().unwrap_or(0);
                    let mut tiers = tiers.into_iter();
                    eligible.retain(|_| tiers.next().is_some_and(|tier| tier >= best));
                    best
                }
            };
            attempt.preferences = Some((best as u16, preferences.len() as u16));
        }
        // Reps below a weekly or monthly floor (下限) go first, when only some are.
        if self.roster.has_floors {
            let below = eligible
                .iter()
                .filter(|(position, _)| gate.below_floor(*position))
                .count();
            if below > 0 && below < eligible.len() {
                eligible.retain(|(position, _)| gate.below_floor(*position));
                attempt.floor = true;
            }
        }
        let matching = match candidates.strategy {
            Strategy::BestMatch(_) => self.matching(&eligible, preferences),
            _ => Vec::new(),
        };
        let choice = strategy::pick(
            &candidates.strategy,
            &Pick {
                roster: self.roster,
                state: self.state,
                candidates: &eligible,
                clock: self.clock,
                rotation_key: &candidates.rotation_key,
                matching: &matching,
                win_probability: self.view.win_probability,
            },
        );
        let winner = eligible[choice.winner].0;
        attempt.strategy = Some(candidates.strategy.name());
        attempt.leading = choice.leading;
        attempt.tie_break = choice.tie_break;
        attempt.winner = Some(winner);
        self.attempts.push(attempt);
        let rep = self.roster.rep(winner);
        let local = self.clock.local(self.roster, winner);
        let mut changes = vec![StateChange::Assigned {
            rep: rep.id.clone(),
            at: self.now,
            day: local.period_start(Period::Day),
            week: local.period_start(Period::Week),
            month: local.period_start(Period::Month),
        }];
        if let Some(rotation) = choice.rotation {
            changes.push(StateChange::Rotation {
                key: candidates.rotation_key,
                state: rotation,
            });
        }
        Some((
            Outcome::Assigned {
                rep: rep.id.clone(),
            },
            changes,
        ))
    }

    /// Best match's matching dimension: the share of preferences met, or without preferences
    /// the share of the lead's region, industry and product the rep covers.
    fn matching(&self, eligible: &[(RepIndex, f64)], preferences: &[Bound<'_>]) -> Vec<f64> {
        if !preferences.is_empty() {
            return eligible
                .iter()
                .map(|(position, _)| {
                    let met = preferences
                        .iter()
                        .filter(|preference| {
                            preference.holds(self.roster, *position, &self.rules.catalogue)
                        })
                        .count();
                    met as f64 / preferences.len() as f64
                })
                .collect();
        }
        let symbol = |field: LeadField| match self.view.get(field) {
            Some(ValueRef::Text(text)) if !text.is_empty() => Some(self.roster.symbol(text)),
            _ => None,
        };
        let wanted = [
            symbol(LeadField::Region),
            symbol(LeadField::Industry),
            symbol(LeadField::Product),
        ];
        let asked = wanted.iter().filter(|wanted| wanted.is_some()).count();
        eligible
            .iter()
            .map(|(position, _)| {
                if asked == 0 {
                    return 1.0;
                }
                let symbols = &self.roster.rep_symbols[*position as usize];
                let lists = [&symbols.regions, &symbols.industries, &symbols.products];
                let met = wanted
                    .iter()
                    .zip(lists)
                    .filter(|(wanted, list)| matches!(wanted, Some(Some(symbol)) if list.contains(symbol)))
                    .count();
                met as f64 / asked as f64
            })
            .collect()
    }
}

/// Splits the reps who failed some requirement by the first they failed: a set per
/// requirement, computed a word at a time when the requirements are sets.
fn split_by_first_unmet(gate: &Gate<'_>, failed: Vec<u64>) -> Vec<Vec<u64>> {
    if failed.is_empty() {
        return Vec::new();
    }
    let mut unmet = vec![vec![0u64; failed.len()]; gate.requirements.len()];
    let sets: Option<Vec<Option<&[u64]>>> = gate.requirements.iter().map(Bound::set).collect();
    match sets {
        Some(sets) => {
            // Those failing requirement i are the ones left after 0..i that its set lacks.
            let mut left = failed;
            for (set, out) in sets.iter().zip(&mut unmet) {
                let Some(set) = set else { continue };
                for ((word, kept), out) in left.iter_mut().zip(set.iter()).zip(out.iter_mut()) {
                    *out = *word & !kept;
                    *word &= kept;
                }
            }
        }
        None => {
            for position in positions(failed.iter().copied()) {
                let index = gate.first_unmet(position).unwrap_or(0);
                set_bit(&mut unmet[usize::from(index)], position);
            }
        }
    }
    unmet
}

fn empty_attempt(rule: Option<u32>, step: Step, target: AttemptTarget) -> Attempt {
    Attempt {
        rule,
        step,
        target,
        considered: 0,
        unavailable: Vec::new(),
        unmet: Vec::new(),
        away_fallback: false,
        preferences: None,
        floor: false,
        strategy: None,
        leading: Vec::new(),
        tie_break: None,
        winner: None,
        candidates: Vec::new(),
    }
}

/// Why a manual assignment was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ManualError {
    #[error("no rep has id {0}")]
    UnknownRep(RepId),
    #[error("rep cannot take the lead: {}", .0.code())]
    Ineligible(Exclusion),
}

/// A manager's assignment: the rep must be active, not on leave and under their caps, but
/// working hours do not apply. Returns the state changes to apply with it.
pub fn assign_manually(
    roster: &Roster,
    state: &RoutingState,
    rep: &RepId,
    now: DateTime<Utc>,
) -> Result<Vec<StateChange>, ManualError> {
    let position = roster
        .position(rep)
        .ok_or_else(|| ManualError::UnknownRep(rep.clone()))?;
    let clock = roster.clock(now);
    let catalogue = crate::field::FieldCatalogue::default();
    let gate = Gate {
        roster,
        state,
        catalogue: &catalogue,
        clock: &clock,
        hours: HoursPolicy::AnyTime,
        exclude: &[],
        requirements: &[],
    };
    gate.check(position).map_err(ManualError::Ineligible)?;
    let local = clock.local(roster, position);
    Ok(vec![StateChange::Assigned {
        rep: rep.clone(),
        at: now,
        day: local.period_start(Period::Day),
        week: local.period_start(Period::Week),
        month: local.period_start(Period::Month),
    }])
}
