//! The compiled rule set (分配规则): validated rules, tagging and scoring, ready to route.

use chrono::{DateTime, NaiveDate, Utc, Weekday};
use chrono_tz::Tz;

use crate::condition::{Condition, RepCondition};
use crate::field::{FieldCatalogue, LeadField};
use crate::hours::{LocalNow, TimeRange};
use crate::lead::Priority;
use crate::rep::RepId;
use crate::strategy::Strategy;
use crate::team::HoursPolicy;

/// A validated rule set. Published versions never change; `version` is the store's number.
#[derive(Clone, Debug)]
pub struct RuleSet {
    pub version: u32,
    pub name: Option<String>,
    pub catalogue: FieldCatalogue,
    pub rules: Vec<Rule>,
    pub tagging: Vec<TagRule>,
    pub scoring: Option<Scoring>,
    /// Steps for a lead that no rule matched.
    pub default: Vec<Fallback>,
}

#[derive(Clone, Debug)]
pub struct Rule {
    pub id: String,
    pub name: Option<String>,
    pub when: Option<Condition>,
    pub window: Option<Window>,
    pub target: Target,
    pub strategy: Option<Strategy>,
    pub owner_affinity: bool,
    pub requires: Vec<RepCondition>,
    pub prefers: Vec<RepCondition>,
    pub hours: Option<HoursPolicy>,
    pub fallback: Vec<Fallback>,
    /// The SLA policy for leads this rule assigns; the team's when left out.
    pub sla_policy: Option<String>,
}

impl Rule {
    /// The name people see: the rule's name, or its id.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    Teams(Vec<String>),
    Reps(Vec<RepId>),
    Pool(String),
    ExistingOwner,
    OwnerField(LeadField),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Fallback {
    NextRule,
    Overflow,
    Team(String),
    Reps(Vec<RepId>),
    Pool(String),
    Hold,
}

/// When a rule applies, in its own time zone.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    /// Bit `n` set: the rule applies on weekday `n` counted from Monday. Zero means every day.
    pub weekdays: u8,
    pub hours: Option<TimeRange>,
    pub from: Option<NaiveDate>,
    pub until: Option<NaiveDate>,
    pub zone: Tz,
}

impl Window {
    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        let local = LocalNow::new(now, self.zone);
        let weekday_ok = |weekday: Weekday| {
            self.weekdays == 0 || self.weekdays & (1 << weekday.num_days_from_monday()) != 0
        };
        // A span crossing midnight belongs to the weekday it starts on.
        let (day_ok, hours_ok) = match self.hours {
            None => (weekday_ok(local.weekday), true),
            Some(range) if range.start < range.end || local.minute >= range.start => {
                (weekday_ok(local.weekday), range.contains(local.minute))
            }
            Some(range) => (
                weekday_ok(local.weekday.pred()),
                range.contains(local.minute),
            ),
        };
        day_ok
            && hours_ok
            && self.from.is_none_or(|from| local.date >= from)
            && self.until.is_none_or(|until| local.date <= until)
    }
}

#[derive(Clone, Debug)]
pub struct TagRule {
    pub id: String,
    pub when: Option<Condition>,
    pub add_tags: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Scoring {
    pub base: f64,
    pub rules: Vec<ScoreRule>,
    /// Highest `min_score` first.
    pub tiers: Vec<(f64, Priority)>,
}

#[derive(Clone, Debug)]
pub struct ScoreRule {
    pub id: String,
    pub when: Option<Condition>,
    pub points: f64,
}
