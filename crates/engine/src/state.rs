//! Routing state: what the engine reads about the past (open leads, counts per period,
//! rotation pointers and credits) and the changes it returns for the store to apply in the
//! same transaction as the assignment.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};

use crate::hours::{LocalNow, Period};
use crate::rep::{RepId, RepStats};
use crate::roster::{RepIndex, Roster};

/// A count inside one calendar period. A count from an earlier period reads as zero, so the
/// store never has to reset counters at midnight.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub period_start: Option<NaiveDate>,
    pub count: u32,
}

impl Tally {
    pub fn count_in(&self, period_start: NaiveDate) -> u32 {
        if self.period_start == Some(period_start) {
            self.count
        } else {
            0
        }
    }

    pub fn add_one(&mut self, period_start: NaiveDate) {
        self.count = self.count_in(period_start) + 1;
        self.period_start = Some(period_start);
    }
}

/// What the store knows about one rep's recent work.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RepState {
    /// Leads the rep owns that are not closed (保有量).
    pub open_leads: u32,
    pub day: Tally,
    pub week: Tally,
    pub month: Tally,
    pub last_assigned_at: Option<DateTime<Utc>>,
    pub stats: RepStats,
}

impl RepState {
    pub fn tally(&self, period: Period) -> &Tally {
        match period {
            Period::Day => &self.day,
            Period::Week => &self.week,
            Period::Month => &self.month,
        }
    }

    /// New leads in the current period of the rep's zone.
    pub fn count(&self, period: Period, local: &LocalNow) -> u32 {
        self.tally(period).count_in(local.period_start(period))
    }
}

/// The explicit state of one rotation (a team, or a rule's named reps): round robin's pointer,
/// smooth weighted round robin's current weights, or fair share's forgiven leads.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RotationState {
    /// By id, so the rotation continues after the last rep served even once they have left.
    pub last: Option<RepId>,
    /// By roster position, sorted; reps absent count as zero. Positions belong to the roster
    /// the state was built for: the store reads and writes them as rep ids. A rotation over
    /// a large team rewrites a credit per candidate, and a position costs nothing to copy
    /// where an id is a shared string with a reference count.
    pub credits: Vec<(RepIndex, f64)>,
    /// For fair share: the window period the credits belong to; other periods read as zero.
    pub period: Option<NaiveDate>,
}

/// A change the store applies with the assignment, in the same transaction.
#[derive(Clone, Debug, PartialEq)]
pub enum StateChange {
    /// The rep got a lead: open leads and the period counts go up by one, `at` becomes the
    /// last assignment. The period starts are those of the rep's zone.
    Assigned {
        rep: RepId,
        at: DateTime<Utc>,
        day: NaiveDate,
        week: NaiveDate,
        month: NaiveDate,
    },
    /// The rep claimed a lead from a pool: it counts against their 保有量 but not against the
    /// period counts routing shares out, and it does not reset their idle time.
    Claimed { rep: RepId },
    /// A rotation moved.
    Rotation { key: String, state: RotationState },
}

/// All routing state, with rep states in roster order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RoutingState {
    reps: Vec<RepState>,
    rotations: HashMap<String, RotationState>,
}

impl RoutingState {
    /// Fresh state for a roster: nobody holds anything yet.
    pub fn new(roster: &Roster) -> RoutingState {
        RoutingState {
            reps: vec![RepState::default(); roster.reps().len()],
            rotations: HashMap::new(),
        }
    }

    pub fn rep(&self, index: RepIndex) -> &RepState {
        &self.reps[index as usize]
    }

    /// Replaces a rep's state; unknown reps are ignored, as they cannot be routed to.
    pub fn set_rep(&mut self, roster: &Roster, id: &RepId, state: RepState) {
        if let Some(index) = roster.position(id) {
            self.reps[index as usize] = state;
        }
    }

    pub fn rep_mut(&mut self, roster: &Roster, id: &RepId) -> Option<&mut RepState> {
        roster
            .position(id)
            .map(|index| &mut self.reps[index as usize])
    }

    pub fn rotation(&self, key: &str) -> Option<&RotationState> {
        self.rotations.get(key)
    }

    pub fn set_rotation(&mut self, key: String, state: RotationState) {
        self.rotations.insert(key, state);
    }

    /// Applies the changes of a decision, as the store does in its transaction.
    pub fn apply(&mut self, roster: &Roster, changes: &[StateChange]) {
        for change in changes {
            match change {
                StateChange::Assigned {
                    rep,
                    at,
                    day,
                    week,
                    month,
                } => {
                    if let Some(state) = self.rep_mut(roster, rep) {
                        state.open_leads += 1;
                        state.day.add_one(*day);
                        state.week.add_one(*week);
                        state.month.add_one(*month);
                        state.last_assigned_at = Some(*at);
                    }
                }
                StateChange::Claimed { rep } => {
                    if let Some(state) = self.rep_mut(roster, rep) {
                        state.open_leads += 1;
                    }
                }
                StateChange::Rotation { key, state } => {
                    self.rotations.insert(key.clone(), state.clone());
                }
            }
        }
    }

    /// A lead of the rep was closed or moved away: it no longer counts against 保有量.
    pub fn release(&mut self, roster: &Roster, id: &RepId) {
        if let Some(state) = self.rep_mut(roster, id) {
            state.open_leads = state.open_leads.saturating_sub(1);
        }
    }
}
