//! Teams (团队): members with optional weights, a manager, a default strategy, an overflow
//! target and the policies that decide eligibility at the edges.

use crate::rep::RepId;
use crate::strategy::Strategy;

/// A group of reps routed to together.
#[derive(Clone, Debug, PartialEq)]
pub struct Team {
    pub id: String,
    pub name: String,
    pub members: Vec<Member>,
    pub manager: Option<RepId>,
    pub default_strategy: Strategy,
    pub overflow: Option<Overflow>,
    pub policy: TeamPolicy,
}

impl Team {
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> Team {
        Team {
            id: id.into(),
            name: name.into(),
            members: Vec::new(),
            manager: None,
            default_strategy: Strategy::default(),
            overflow: None,
            policy: TeamPolicy::default(),
        }
    }

    /// Adds members with no weight of their own.
    pub fn with_members<I, S>(mut self, ids: I) -> Team
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.members.extend(ids.into_iter().map(|id| Member {
            rep: RepId::new(id),
            weight: None,
        }));
        self
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    pub rep: RepId,
    /// Overrides the rep's own weight inside this team.
    pub weight: Option<f64>,
}

/// Where a team's leads go when none of its reps can take them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Overflow {
    Team(String),
    Pool(String),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TeamPolicy {
    pub hours: HoursPolicy,
    /// When nobody is eligible, try reps who are outside their working hours before giving up.
    pub away_fallback: bool,
}

/// Whether working hours limit who gets leads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum HoursPolicy {
    #[default]
    InHours,
    AnyTime,
}

impl HoursPolicy {
    pub fn parse(text: &str) -> Option<HoursPolicy> {
        Some(match text {
            "in_hours" => HoursPolicy::InHours,
            "any_time" => HoursPolicy::AnyTime,
            _ => return None,
        })
    }
}
