//! The decision (分配决策) as a value: rules tried, every attempt with its candidates and
//! exclusions, the outcome, and the state changes to apply. It refers to rules and reps by
//! position, so building it costs no strings; `DecisionRecord` turns it into the
//! self-describing form that is stored and explained.

use chrono::{DateTime, Utc};

use crate::condition::NodeId;
use crate::eligibility::Exclusion;
use crate::lead::Priority;
use crate::model::WinScore;
use crate::rep::RepId;
use crate::roster::{RepIndex, bit, positions};
use crate::rule_set::Fallback;
use crate::state::StateChange;
use crate::strategy::{Scored, TieBreak};

#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub rule_set_version: u32,
    pub at: DateTime<Utc>,
    pub tags_added: Vec<String>,
    pub score: Option<f64>,
    /// The learned model's win probability and its strongest factors, when a model is active.
    pub win: Option<WinScore>,
    pub priority: Option<Priority>,
    /// The rules tried, in order, with why each did or did not match.
    pub rules: Vec<RuleTrace>,
    pub attempts: Vec<Attempt>,
    pub outcome: Outcome,
    pub changes: Vec<StateChange>,
    /// Set when the lead was placed as part of an optimised batch.
    pub batch: Option<BatchNote>,
}

/// How a lead fared in an optimised batch (批量最优分配).
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNote {
    /// The lead's expected value: win probability × expected amount, else its score, else 1.
    pub value: f64,
    /// The chosen rep's fit for the lead (0–1): relative conversion and preferences met.
    pub fit: Option<f64>,
    /// The leads the chosen rep could still take in this batch after this one.
    pub remaining: Option<u32>,
    /// The rep routing one lead at a time, in arrival order, would have chosen.
    pub one_by_one: Option<RepId>,
    /// The rep who fits the lead best, when the plan gave it to someone else (their room went
    /// to leads that needed them more).
    pub best_fit: Option<RepId>,
    /// Why the batch did not place it: no eligible rep had room within caps and the band.
    pub unplaced: bool,
}

impl Decision {
    pub fn owner(&self) -> Option<&RepId> {
        match &self.outcome {
            Outcome::Assigned { rep, .. } => Some(rep),
            _ => None,
        }
    }

    /// The rule that decided the outcome, by position in the rule set.
    pub fn matched_rule(&self) -> Option<u32> {
        self.attempts.last().and_then(|attempt| attempt.rule)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleTrace {
    Matched {
        rule: u32,
    },
    /// The condition failed at this node.
    NotMatched {
        rule: u32,
        node: NodeId,
    },
    OutsideWindow {
        rule: u32,
    },
}

/// One try at finding a rep: the rule's target, the known owner, or a fallback step.
#[derive(Clone, Debug, PartialEq)]
pub struct Attempt {
    /// The rule it belongs to; `None` for the rule set's default.
    pub rule: Option<u32>,
    pub step: Step,
    pub target: AttemptTarget,
    /// Candidates in the target before any check.
    pub considered: u32,
    /// Candidates turned away by the exclusion list, status, leave, hours or caps, in roster
    /// order.
    pub unavailable: Vec<(RepIndex, Exclusion)>,
    /// Candidates turned away by the rule's requirements, as sets over roster positions: the
    /// i-th holds those whose first unmet requirement is the i-th. Sets, because a requirement
    /// typically turns away most of a large team and routing should not list them one by one.
    pub unmet: Vec<Vec<u64>>,
    /// Nobody was in hours, so reps outside their hours were tried (team policy).
    pub away_fallback: bool,
    /// How many of the rule's preferences the chosen candidates met, of how many.
    pub preferences: Option<(u16, u16)>,
    /// Candidates were narrowed to reps below their floor (下限).
    pub floor: bool,
    pub strategy: Option<&'static str>,
    pub leading: Vec<Scored>,
    pub tie_break: Option<TieBreak>,
    pub winner: Option<RepIndex>,
    /// The reps who passed every check, with their weight and share of preferences met; kept
    /// only when the request asks (batch planning).
    pub candidates: Vec<Candidate>,
}

impl Attempt {
    /// Every candidate turned away, with the first reason, in roster order.
    pub fn exclusions(&self) -> impl Iterator<Item = (RepIndex, Exclusion)> + '_ {
        let mut unmet = self.unmet_reps().peekable();
        let mut unavailable = self.unavailable.iter().copied().peekable();
        std::iter::from_fn(move || match (unmet.peek(), unavailable.peek()) {
            (Some(left), Some(right)) if left.0 < right.0 => unmet.next(),
            (Some(_), None) => unmet.next(),
            _ => unavailable.next(),
        })
    }

    /// How many candidates were turned away.
    pub fn excluded_count(&self) -> u32 {
        let unmet: u32 = self
            .unmet
            .iter()
            .flatten()
            .map(|word| word.count_ones())
            .sum();
        unmet + self.unavailable.len() as u32
    }

    /// The reps the requirements turned away, in roster order, each with the first it failed.
    fn unmet_reps(&self) -> impl Iterator<Item = (RepIndex, Exclusion)> + '_ {
        let words = self.unmet.iter().map(Vec::len).max().unwrap_or(0);
        let all = (0..words).map(|word| {
            self.unmet
                .iter()
                .fold(0, |all, set| all | set.get(word).copied().unwrap_or(0))
        });
        positions(all).map(|position| {
            let index = self
                .unmet
                .iter()
                .position(|set| bit(set, position))
                .unwrap_or(0);
            (
                position,
                Exclusion::Requirement {
                    index: index as u16,
                },
            )
        })
    }
}

/// An eligible rep of a step, as batch planning reads it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    pub rep: RepIndex,
    pub weight: f64,
    /// The share of the rule's preferences (or of the lead's region, industry and product) the
    /// rep meets, 0–1.
    pub matching: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    Primary,
    /// Owner affinity: the owner of the known customer.
    Affinity,
    Fallback(Fallback),
}

#[derive(Clone, Debug, PartialEq)]
pub enum AttemptTarget {
    Teams(Vec<String>),
    Reps(Vec<RepId>),
    KnownOwner(Option<RepId>),
    /// The value of the owner field, if the lead had one.
    OwnerField(Option<String>),
    Pool(String),
    /// The step had nowhere to go (e.g. overflow on a team without an overflow target).
    Nothing,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Assigned {
        rep: RepId,
    },
    Pooled {
        pool: String,
    },
    /// Waiting in the hold queue until someone is eligible.
    Held,
}

impl Outcome {
    pub fn code(&self) -> &'static str {
        match self {
            Outcome::Assigned { .. } => "assigned",
            Outcome::Pooled { .. } => "pooled",
            Outcome::Held => "held",
        }
    }
}
