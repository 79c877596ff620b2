//! One policy replayed: leads in arrival order on a virtual clock, routed by the function
//! intake uses (`routing::decide_new`), with the state carried from lead to lead (rotation,
//! period caps in each rep's zone, 保有量 released when history closed the lead), held leads
//! swept every [`SWEEP`] of virtual time as the hold queue is in production, and tallies of
//! what happened for the report.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::{BuildHasher as _, Hasher as _};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use engine::decision::AttemptTarget;
use engine::eligibility::Exclusion;
use engine::field::LeadView;
use engine::hours::LocalNow;
use engine::roster::RepIndex;
use engine::{Decision, Outcome, RoutingState};

use crate::error::ApiError;
use crate::leads::LeadInput;
use crate::workspace::Workspace;

/// How often the virtual hold queue is swept. Production sweeps every 15 seconds and whenever
/// a rep becomes available; a quarter hour keeps replay cheap and waits accurate to that.
pub const SWEEP: Duration = Duration::minutes(15);
/// Held leads retried per sweep, oldest first, as production does.
const SWEEP_LIMIT: usize = 500;

/// Per lead of the window: who ended up with it.
pub const HELD: u32 = u32::MAX;
pub const POOLED: u32 = u32::MAX - 1;
pub const INVALID: u32 = u32::MAX - 2;

/// A lead of the window as both sides see it.
#[derive(Debug)]
pub struct Arrival {
    pub ordinal: u32,
    pub segment: u32,
    /// Keep the lead and decision for the sample of moved leads, should it move.
    pub keep: bool,
    pub lead: super::history::HistoryLead,
}

/// What routing one arrival did: the owner it got on arrival (or `HELD`, `POOLED`), and the
/// lead and decision when the arrival asked to keep them, so a moved lead can be explained.
#[derive(Debug)]
pub struct Routed {
    pub owner: u32,
    pub routed: Option<Box<(engine::Lead, Decision)>>,
    pub error: Option<Box<crate::error::ApiError>>,
}

/// What a side counts while it replays.
#[derive(Debug, Default)]
pub struct Tally {
    pub leads: Vec<u64>,
    pub cap_hits: Vec<u64>,
    pub outside_hours: Vec<u64>,
    /// Leads per rep per day (the day they were assigned, in the report's zone).
    pub daily: HashMap<NaiveDate, Vec<u32>>,
    /// Assigned leads per target (a rule's teams or reps, or a known owner): what the weights
    /// say each rep should have had.
    pub targets: HashMap<u64, (Target, u64)>,
    /// Per rule: leads that reached the rule and matched its condition, whether any lead's
    /// condition held at all (reached or not), and leads the rule decided.
    pub rule_matched: Vec<u64>,
    pub rule_could_match: Vec<bool>,
    pub rule_routed: Vec<u64>,
    pub default_routed: u64,
    pub team_leads: HashMap<String, u64>,
    /// Assigned leads per (rep, segment).
    pub cells: HashMap<(RepIndex, u32), u64>,
    /// Leads never assigned, per segment (held to the end, pooled).
    pub unassigned: HashMap<u32, u64>,
    pub assigned: u64,
    pub held: u64,
    /// Held leads history closed before a sweep placed them.
    pub closed_while_held: u64,
    pub pooled: u64,
    /// Seconds each held lead waited until a sweep placed it.
    pub waits: Vec<u32>,
    /// The owner of every lead of the window, by ordinal (`HELD`, `POOLED` when it had none).
    pub owners: Vec<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    Teams(Vec<String>),
    Reps(Vec<engine::RepId>),
    One(RepIndex),
}

#[derive(Debug)]
struct Held {
    ordinal: u32,
    lead: engine::Lead,
    arrived_at: DateTime<Utc>,
    closed_at: Option<DateTime<Utc>>,
    segment: u32,
}

/// One policy's replay.
#[derive(Debug)]
pub struct Side {
    pub workspace: std::sync::Arc<Workspace>,
    state: RoutingState,
    /// Phone and email hashes → owner, for owner affinity.
    known: HashMap<u64, RepIndex>,
    hasher: std::collections::hash_map::RandomState,
    holds: VecDeque<Box<Held>>,
    next_sweep: Option<DateTime<Utc>>,
    releases: BinaryHeap<Reverse<(i64, RepIndex)>>,
    /// The zone the report's days are counted in.
    zone: chrono_tz::Tz,
    /// After a sweep that placed nothing: what the clock looked like then. Until the clock
    /// moves on (hours open or close, a day turns), a lead is released or the configuration
    /// changes, another sweep would place nothing either and is skipped.
    stalled: Option<(Vec<bool>, Vec<NaiveDate>, Vec<bool>)>,
    /// Per rule, whether the decision tried it (a buffer kept between leads).
    tried: Vec<bool>,
    pub tally: Tally,
    /// Leads arriving at the same instant (an import) are placed as one optimised batch.
    pub batch_arrivals: bool,
}

impl Side {
    pub fn new(workspace: std::sync::Arc<Workspace>, zone: chrono_tz::Tz) -> Side {
        let reps = workspace.roster.reps().len();
        let rules = workspace.rules.rules.len();
        Side {
            state: RoutingState::new(&workspace.roster),
            workspace,
            known: HashMap::new(),
            hasher: std::collections::hash_map::RandomState::new(),
            holds: VecDeque::new(),
            next_sweep: None,
            releases: BinaryHeap::new(),
            zone,
            stalled: None,
            tried: Vec::new(),
            batch_arrivals: false,
            tally: Tally {
                leads: vec![0; reps],
                cap_hits: vec![0; reps],
                outside_hours: vec![0; reps],
                rule_matched: vec![0; rules],
                rule_could_match: vec![false; rules],
                rule_routed: vec![0; rules],
                ..Tally::default()
            },
        }
    }

    /// The configuration changed under the replay (a rep's recorded availability): the same
    /// reps in the same order, so the state carries over.
    pub fn replace_workspace(&mut self, workspace: std::sync::Arc<Workspace>) {
        self.workspace = workspace;
        self.stalled = None;
    }

    /// The clock as eligibility and rule windows see it.
    fn availability(&self, now: DateTime<Utc>) -> (Vec<bool>, Vec<NaiveDate>, Vec<bool>) {
        let (open, dates) = self.workspace.roster.availability_key(now);
        let windows = self
            .workspace
            .rules
            .rules
            .iter()
            .filter_map(|rule| rule.window.as_ref().map(|window| window.contains(now)))
            .collect();
        (open, dates, windows)
    }

    fn key(&self, text: &str) -> u64 {
        let mut hasher = self.hasher.build_hasher();
        hasher.write(text.as_bytes());
        hasher.finish()
    }

    fn known_owner(&self, input: &LeadInput) -> Option<RepIndex> {
        [input.phone.as_deref(), input.email.as_deref()]
            .into_iter()
            .flatten()
            .find_map(|contact| self.known.get(&self.key(contact)).copied())
    }

    fn remember(&mut self, input_phone: Option<&str>, input_email: Option<&str>, owner: RepIndex) {
        for contact in [input_phone, input_email].into_iter().flatten() {
            let key = self.key(contact);
            self.known.insert(key, owner);
        }
    }

    /// Moves the virtual clock to `now`: leads history closed stop counting, and the hold
    /// queue is swept at each sweep time on the way.
    pub fn advance(&mut self, now: DateTime<Utc>) {
        while let Some(due) = self.next_sweep.filter(|due| *due <= now) {
            self.release_until(due);
            self.sweep(due);
            self.next_sweep = (!self.holds.is_empty()).then(|| due + SWEEP);
        }
        self.release_until(now);
    }

    fn release_until(&mut self, now: DateTime<Utc>) {
        let micros = now.timestamp_micros();
        while let Some(Reverse((at, rep))) = self.releases.peek().copied() {
            if at > micros {
                break;
            }
            self.releases.pop();
            let roster = &self.workspace.roster;
            let cap = roster.rep(rep).caps.max_open;
            if cap.is_some_and(|cap| self.state.rep(rep).open_leads >= cap) {
                // A rep at their holding cap has room again: held leads may go to them.
                self.stalled = None;
            }
            let id = roster.rep(rep).id.clone();
            self.state.release(roster, &id);
        }
    }

    fn sweep(&mut self, now: DateTime<Utc>) {
        if self.stalled.is_some() && self.stalled == Some(self.availability(now)) {
            return;
        }
        let mut kept = VecDeque::new();
        let mut tried = 0;
        let mut placed = false;
        // Leads of teams that release their backlog as one batch, placed together first, as
        // the service's sweep does.
        let mut batch = Vec::new();
        let mut after = Vec::new();
        let batches = self.workspace.batches_backlogs();
        while let Some(held) = self.holds.pop_front() {
            if tried == SWEEP_LIMIT {
                kept.push_back(held);
                continue;
            }
            tried += 1;
            if held.closed_at.is_some_and(|closed| closed <= now) {
                // History closed it while it waited; nobody would have got it.
                self.tally.owners[held.ordinal as usize] = HELD;
                self.tally.closed_while_held += 1;
                *self.tally.unassigned.entry(held.segment).or_default() += 1;
                continue;
            }
            let decision = self.workspace.route(&self.state, &held.lead, &[], now);
            if decision.outcome == Outcome::Held {
                kept.push_back(held);
                continue;
            }
            if batches {
                // The rest are routed one by one after the batch, as in the service.
                if self.workspace.batched(&decision) {
                    batch.push(held);
                } else {
                    after.push(held);
                }
                continue;
            }
            placed = true;
            self.release_held(&held, &decision, now);
        }
        if !batch.is_empty() {
            let leads: Vec<&engine::Lead> = batch.iter().map(|held| &held.lead).collect();
            let plan = self.plan(&leads, now);
            for (held, decision) in batch.into_iter().zip(plan.decisions) {
                if decision.outcome == Outcome::Held {
                    kept.push_back(held);
                    continue;
                }
                placed = true;
                self.release_held(&held, &decision, now);
            }
        }
        for held in after {
            let decision = self.workspace.route(&self.state, &held.lead, &[], now);
            if decision.outcome == Outcome::Held {
                kept.push_back(held);
                continue;
            }
            placed = true;
            self.release_held(&held, &decision, now);
        }
        self.holds = kept;
        self.stalled = (!placed).then(|| self.availability(now));
    }

    /// A held lead placed at a sweep: its wait counts, and it settles like an arrival.
    fn release_held(&mut self, held: &Held, decision: &Decision, now: DateTime<Utc>) {
        let wait = (now - held.arrived_at).num_seconds().max(0);
        self.tally
            .waits
            .push(u32::try_from(wait).unwrap_or(u32::MAX));
        self.settle(
            held.ordinal,
            &held.lead,
            decision,
            now,
            held.closed_at,
            held.segment,
        );
    }

    /// Routes one arrival at its arrival time.
    pub fn arrive(&mut self, arrival: &Arrival) -> Routed {
        self.advance(arrival.lead.arrived_at);
        let known_owner = self.known_owner_id(arrival);
        self.make_room(arrival);
        match crate::routing::decide_new(
            &self.workspace,
            &self.state,
            crate::routing::Affinity::known(known_owner.as_deref()).as_ref(),
            &arrival.lead.input,
            arrival.lead.arrived_at,
        ) {
            Ok((lead, decision)) => self.take(arrival, lead, decision),
            Err(error) => refused(error),
        }
    }

    /// Routes leads that arrived at the same instant (an import) as one optimised batch, as
    /// `POST /leads/batch` with `mode: optimal` would; what each got, in order.
    pub fn arrive_together(&mut self, group: &[Arrival]) -> Vec<Routed> {
        let Some(first) = group.first() else {
            return Vec::new();
        };
        let now = first.lead.arrived_at;
        self.advance(now);
        let mut leads = Vec::with_capacity(group.len());
        let mut refusals = Vec::new();
        for arrival in group {
            self.make_room(arrival);
            let known_owner = self.known_owner_id(arrival);
            match arrival.lead.input.to_engine(&self.workspace.catalogue, now) {
                Ok(mut lead) => {
                    lead.known_owner = known_owner.map(engine::RepId::new);
                    leads.push(lead);
                    refusals.push(None);
                }
                Err(error) => refusals.push(Some(error)),
            }
        }
        let references: Vec<&engine::Lead> = leads.iter().collect();
        let mut decisions = self.plan(&references, now).decisions.into_iter().zip(leads);
        group
            .iter()
            .zip(refusals)
            .map(|(arrival, refusal)| match refusal {
                Some(error) => refused(error),
                None => match decisions.next() {
                    Some((decision, lead)) => self.take(arrival, lead, decision),
                    None => refused(ApiError::internal("a lead of the group went unplanned")),
                },
            })
            .collect()
    }

    /// Leads placed as one optimised batch against this side's state, with the service's
    /// default band. The replay keeps no per-segment records (fit is each rep's overall rate)
    /// nor amounts (an expected amount of 1).
    fn plan(&self, leads: &[&engine::Lead], now: DateTime<Utc>) -> engine::batch::Plan {
        let planning = engine::batch::Batch {
            rules: &self.workspace.rules,
            roster: &self.workspace.roster,
            state: &self.state,
            now,
            model: self.workspace.model.as_ref(),
            settings: engine::batch::Settings {
                band: Some(crate::batch::DEFAULT_BAND),
                default_amount: 1.0,
            },
            exclude: &[],
            history: None,
        };
        engine::batch::plan(&planning, leads)
    }

    fn known_owner_id(&self, arrival: &Arrival) -> Option<String> {
        self.known_owner(&arrival.lead.input)
            .map(|index| self.workspace.roster.rep(index).id.as_str().to_owned())
    }

    fn make_room(&mut self, arrival: &Arrival) {
        let ordinal = arrival.ordinal as usize;
        if self.tally.owners.len() <= ordinal {
            self.tally.owners.resize(ordinal + 1, INVALID);
        }
    }

    /// Applies an arrival's decision: counts, owner, the hold queue.
    fn take(&mut self, arrival: &Arrival, lead: engine::Lead, decision: Decision) -> Routed {
        self.count_rules(&lead, &decision, arrival.lead.arrived_at);
        let owner = self.settle(
            arrival.ordinal,
            &lead,
            &decision,
            arrival.lead.arrived_at,
            arrival.lead.closed_at,
            arrival.segment,
        );
        let kept = if decision.outcome == Outcome::Held {
            self.tally.held += 1;
            let kept = arrival.keep.then(|| Box::new((lead.clone(), decision)));
            self.holds.push_back(Box::new(Held {
                ordinal: arrival.ordinal,
                lead,
                arrived_at: arrival.lead.arrived_at,
                closed_at: arrival.lead.closed_at,
                segment: arrival.segment,
            }));
            if self.next_sweep.is_none() {
                self.next_sweep = Some(arrival.lead.arrived_at + SWEEP);
            }
            kept
        } else {
            arrival.keep.then(|| Box::new((lead, decision)))
        };
        Routed {
            owner,
            routed: kept,
            error: None,
        }
    }
}

fn refused(error: ApiError) -> Routed {
    Routed {
        owner: INVALID,
        routed: None,
        error: Some(Box::new(error)),
    }
}

impl Side {
    /// Which rules a lead's condition met: those tried say so in the decision; those after
    /// the one that decided are evaluated here until one lead matches them, so a rule an
    /// earlier one always pre-empts shows as shadowed rather than idle.
    fn count_rules(&mut self, lead: &engine::Lead, decision: &Decision, now: DateTime<Utc>) {
        let rules = &self.workspace.rules;
        let tried = &mut self.tried;
        tried.clear();
        tried.resize(rules.rules.len(), false);
        for trace in &decision.rules {
            let (engine::decision::RuleTrace::Matched { rule }
            | engine::decision::RuleTrace::NotMatched { rule, .. }
            | engine::decision::RuleTrace::OutsideWindow { rule }) = *trace;
            tried[rule as usize] = true;
            if matches!(trace, engine::decision::RuleTrace::Matched { .. }) {
                self.tally.rule_matched[rule as usize] += 1;
                self.tally.rule_could_match[rule as usize] = true;
            }
        }
        if tried.iter().all(|tried| *tried) {
            return;
        }
        let merged: Vec<String>;
        let mut view = LeadView::new(lead, &rules.catalogue);
        if !decision.tags_added.is_empty() {
            merged = lead
                .tags
                .iter()
                .chain(&decision.tags_added)
                .cloned()
                .collect();
            view.tags = &merged;
        }
        view.score = decision.score.or(lead.score);
        view.priority = decision.priority.or(lead.priority);
        for (index, rule) in rules.rules.iter().enumerate() {
            // Whether a rule could ever match is settled by one lead: once known, it is not
            // evaluated again, so this costs nothing for rules that match something.
            if tried[index]
                || self.tally.rule_could_match[index]
                || rule
                    .window
                    .as_ref()
                    .is_some_and(|window| !window.contains(now))
            {
                continue;
            }
            if rule.when.as_ref().is_none_or(|when| when.matches(&view)) {
                self.tally.rule_could_match[index] = true;
            }
        }
    }

    /// Applies a decision and counts it; the owner's index (or `HELD`, `POOLED`).
    #[allow(clippy::too_many_arguments)] // One lead's facts, passed apart to avoid a copy.
    fn settle(
        &mut self,
        ordinal: u32,
        lead: &engine::Lead,
        decision: &Decision,
        now: DateTime<Utc>,
        closed_at: Option<DateTime<Utc>>,
        segment: u32,
    ) -> u32 {
        let roster = &self.workspace.roster;
        self.state.apply(roster, &decision.changes);
        let owner = match &decision.outcome {
            Outcome::Held => {
                self.tally.owners[ordinal as usize] = HELD;
                return HELD;
            }
            Outcome::Pooled { .. } => {
                self.tally.pooled += 1;
                *self.tally.unassigned.entry(segment).or_default() += 1;
                self.tally.owners[ordinal as usize] = POOLED;
                self.count_decided_rule(decision);
                return POOLED;
            }
            Outcome::Assigned { rep } => match roster.position(rep) {
                Some(index) => index,
                None => return INVALID,
            },
        };
        let tally = &mut self.tally;
        tally.owners[ordinal as usize] = owner;
        tally.assigned += 1;
        tally.leads[owner as usize] += 1;
        let day = now.with_timezone(&self.zone).date_naive();
        tally
            .daily
            .entry(day)
            .or_insert_with(|| vec![0; roster.reps().len()])[owner as usize] += 1;
        *tally.cells.entry((owner, segment)).or_default() += 1;
        let rep = roster.rep(owner);
        if let Some(hours) = &rep.hours
            && !hours.contains(&LocalNow::new(now, rep.time_zone))
        {
            tally.outside_hours[owner as usize] += 1;
        }
        let mut capped: Vec<RepIndex> = Vec::new();
        for attempt in &decision.attempts {
            for (index, exclusion) in &attempt.unavailable {
                if matches!(
                    exclusion,
                    Exclusion::HoldingCap { .. } | Exclusion::PeriodCap { .. }
                ) && !capped.contains(index)
                {
                    capped.push(*index);
                    tally.cap_hits[*index as usize] += 1;
                }
            }
        }
        if let Some(attempt) = decision.attempts.last() {
            // Counted by a hash of the target, so the common case clones nothing.
            let mut hasher = std::hash::DefaultHasher::new();
            match &attempt.target {
                AttemptTarget::Teams(teams) => {
                    std::hash::Hash::hash(&(0u8, teams), &mut hasher);
                    let team = teams
                        .iter()
                        .find(|team| {
                            roster.team(team).is_some_and(|team| {
                                team.members().iter().any(|(member, _)| *member == owner)
                            })
                        })
                        .or(teams.first());
                    if let Some(team) = team {
                        match tally.team_leads.get_mut(team) {
                            Some(count) => *count += 1,
                            None => {
                                tally.team_leads.insert(team.clone(), 1);
                            }
                        }
                    }
                }
                AttemptTarget::Reps(reps) => std::hash::Hash::hash(&(1u8, reps), &mut hasher),
                _ => std::hash::Hash::hash(&(2u8, owner), &mut hasher),
            }
            let entry = tally.targets.entry(hasher.finish()).or_insert_with(|| {
                let target = match &attempt.target {
                    AttemptTarget::Teams(teams) => Target::Teams(teams.clone()),
                    AttemptTarget::Reps(reps) => Target::Reps(reps.clone()),
                    _ => Target::One(owner),
                };
                (target, 0)
            });
            entry.1 += 1;
        }
        self.count_decided_rule(decision);
        if let Some(closed) = closed_at {
            self.releases
                .push(Reverse((closed.timestamp_micros(), owner)));
        }
        self.remember(
            lead.contact.phone.as_deref(),
            lead.contact.email.as_deref(),
            owner,
        );
        owner
    }

    fn count_decided_rule(&mut self, decision: &Decision) {
        match decision.matched_rule() {
            Some(rule) => self.tally.rule_routed[rule as usize] += 1,
            None => self.tally.default_routed += 1,
        }
    }

    /// Ends the replay at `end`; how many held leads were never placed (still held, or closed
    /// while they waited).
    pub fn finish(&mut self, end: DateTime<Utc>) -> u64 {
        self.advance(end);
        let still = self.holds.len() as u64 + self.tally.closed_while_held;
        for held in self.holds.drain(..) {
            *self.tally.unassigned.entry(held.segment).or_default() += 1;
        }
        still
    }
}
