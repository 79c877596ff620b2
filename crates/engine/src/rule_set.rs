//! The compiled rule set (分配规则): validated rules, tagging and scoring, ready to route.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc, Weekday};
use chrono_tz::Tz;

use crate::condition::{Condition, NodeId, RepCondition};
use crate::field::{FieldCatalogue, LeadField, LeadView};
use crate::hours::{LocalNow, TimeRange};
use crate::lead::Priority;
use crate::rep::RepId;
use crate::strategy::Strategy;
use crate::team::HoursPolicy;
use crate::value::ValueRef;

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
    /// Which rules a lead's text fields leave in play (built by `compile`; the default index
    /// skips nothing).
    pub index: RuleIndex,
}

/// An index from a lead's text field values to the rules that can match them, so routing does
/// not evaluate the rules a lead cannot match (199 of 200 regional rules for one region). A
/// rule is indexed by its condition's gate (`Condition::gate`); the others are always
/// evaluated. Skipping a gated rule records the gate's row as the failing node, as evaluating
/// it would.
#[derive(Clone, Debug, Default)]
pub struct RuleIndex {
    /// Per rule position: the field slot and node of its gate.
    gates: Vec<Option<(u16, NodeId)>>,
    /// Per gated field: the rules each value lets through.
    fields: Vec<(LeadField, HashMap<String, Vec<u32>>)>,
}

impl RuleIndex {
    pub fn new(rules: &[Rule]) -> RuleIndex {
        let mut index = RuleIndex::default();
        for (position, rule) in rules.iter().enumerate() {
            let gate = rule.when.as_ref().and_then(Condition::gate);
            let Some((field, node, values)) = gate else {
                index.gates.push(None);
                continue;
            };
            let slot = match index.fields.iter().position(|(known, _)| *known == field) {
                Some(slot) => slot,
                None => {
                    index.fields.push((field, HashMap::new()));
                    index.fields.len() - 1
                }
            };
            for value in values {
                let list = index.fields[slot].1.entry(value.clone()).or_default();
                if list.last() != Some(&(position as u32)) {
                    list.push(position as u32);
                }
            }
            index.gates.push(Some((slot as u16, node)));
        }
        index
    }

    /// The rules whose gate this lead passes, as a bitset over rule positions.
    pub(crate) fn open(&self, lead: &LeadView<'_>) -> Vec<u64> {
        let mut open = vec![0u64; self.gates.len().div_ceil(64)];
        for (field, values) in &self.fields {
            if let Some(ValueRef::Text(text)) = lead.get(*field)
                && let Some(rules) = values.get(text)
            {
                for &rule in rules {
                    open[rule as usize / 64] |= 1 << (rule % 64);
                }
            }
        }
        open
    }

    /// The gate's node when the rule at `position` is gated and `open` does not let it
    /// through: the rule cannot match.
    #[inline]
    pub(crate) fn closed(&self, open: &[u64], position: u32) -> Option<NodeId> {
        let (_, node) = self.gates.get(position as usize).copied().flatten()?;
        let through = open
            .get(position as usize / 64)
            .is_some_and(|word| word >> (position % 64) & 1 == 1);
        (!through).then_some(node)
    }
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
