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
use crate::roster::RepIndex;
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
    pub excluded: Vec<(RepIndex, Exclusion)>,
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
