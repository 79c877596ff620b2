//! Eligibility: whether a rep may get this lead now, and if not, the first reason why — the
//! exclusion list, the rule's requirements (is this the right rep at all?), then status,
//! leave, working hours and caps (is the rep available?).

use chrono::NaiveDate;

use crate::condition::{Op, Operand, RepCondition};
use crate::field::{FieldCatalogue, LeadView, RepField, rep_value};
use crate::hours::Period;
use crate::rep::RepStatus;
use crate::roster::{ALWAYS, Clock, ListField, RepIndex, Roster, Symbol, bit};
use crate::state::RoutingState;
use crate::team::HoursPolicy;
use crate::value::ValueRef;

/// Why a rep did not get a lead. Carries the values behind the reason so the explanation can
/// say `daily cap 5/5` or `on leave until 2026-12-01`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exclusion {
    /// On the request's exclusion list, such as a previous owner of the lead.
    Excluded,
    Status(RepStatus),
    OnLeave {
        until: NaiveDate,
    },
    OutsideHours,
    HoldingCap {
        open: u32,
        cap: u32,
    },
    PeriodCap {
        period: Period,
        count: u32,
        cap: u32,
    },
    /// Failed the rule's requirement with this index.
    Requirement {
        index: u16,
    },
}

impl Exclusion {
    /// A stable code for grouping and for the API.
    pub fn code(&self) -> &'static str {
        match self {
            Exclusion::Excluded => "excluded",
            Exclusion::Status(RepStatus::Paused) => "paused",
            Exclusion::Status(RepStatus::OnLeave) | Exclusion::OnLeave { .. } => "on_leave",
            Exclusion::Status(RepStatus::Inactive) => "inactive",
            Exclusion::Status(RepStatus::Active) => "active",
            Exclusion::OutsideHours => "outside_hours",
            Exclusion::HoldingCap { .. } => "holding_cap",
            Exclusion::PeriodCap {
                period: Period::Day,
                ..
            } => "daily_cap",
            Exclusion::PeriodCap {
                period: Period::Week,
                ..
            } => "weekly_cap",
            Exclusion::PeriodCap {
                period: Period::Month,
                ..
            } => "monthly_cap",
            Exclusion::Requirement { .. } => "requirement",
        }
    }
}

/// A rep condition with its lead side read once per routing, so checking a thousand reps
/// compares interned integers.
#[derive(Debug)]
pub(crate) struct Bound<'a> {
    condition: &'a RepCondition,
    value: BoundValue<'a>,
}

#[derive(Debug)]
enum BoundValue<'a> {
    /// The lead has no value for the referenced field: the condition does not constrain.
    Skip,
    Nothing,
    /// For interned list fields: the reps that meet the condition, as a bitset.
    Reps(Vec<u64>),
    Texts(Vec<&'a str>),
    Number(f64),
}

fn interned(field: RepField) -> Option<ListField> {
    Some(match field {
        RepField::Regions => ListField::Regions,
        RepField::Industries => ListField::Industries,
        RepField::Products => ListField::Products,
        RepField::Languages => ListField::Languages,
        RepField::Teams => ListField::Teams,
        _ => return None,
    })
}

impl<'a> Bound<'a> {
    pub fn new(condition: &'a RepCondition, lead: &LeadView<'a>, roster: &Roster) -> Bound<'a> {
        if let Some(list) = interned(condition.field)
            && matches!(condition.op, Op::Exists | Op::Missing)
        {
            let mut bits = roster.holding_some(list);
            if condition.op == Op::Missing {
                bits.iter_mut().for_each(|word| *word = !*word);
            }
            return Bound {
                condition,
                value: BoundValue::Reps(bits),
            };
        }
        let texts: Vec<&'a str> = match &condition.operand {
            Operand::Nothing => {
                return Bound {
                    condition,
                    value: BoundValue::Nothing,
                };
            }
            Operand::Number(number) => {
                return Bound {
                    condition,
                    value: BoundValue::Number(*number),
                };
            }
            Operand::Text(text) => vec![text.as_str()],
            Operand::Texts(texts) => texts.iter().map(String::as_str).collect(),
            Operand::Lead(field) => match lead.get(*field) {
                None => Vec::new(),
                Some(ValueRef::Text(text)) => vec![text],
                Some(ValueRef::List(items)) => items.iter().map(String::as_str).collect(),
                Some(ValueRef::Number(number)) => {
                    return Bound {
                        condition,
                        value: BoundValue::Number(number),
                    };
                }
                Some(ValueRef::Bool(_) | ValueRef::Time(_)) => Vec::new(),
            },
        };
        let texts: Vec<&'a str> = texts.into_iter().filter(|text| !text.is_empty()).collect();
        let value = if texts.is_empty() {
            BoundValue::Skip
        } else if let Some(list) = interned(condition.field) {
            let symbols: Vec<Symbol> = texts
                .iter()
                .filter_map(|text| roster.symbol(text))
                .collect();
            let mut bits = roster.holding_any(list, &symbols);
            if condition.op == Op::NotContains {
                bits.iter_mut().for_each(|word| *word = !*word);
            }
            BoundValue::Reps(bits)
        } else {
            BoundValue::Texts(texts)
        };
        Bound { condition, value }
    }

    /// The reps meeting the condition as a set over roster positions, when it is one: `None`
    /// inside for a condition that does not constrain; `None` outside when each rep's value
    /// must be read.
    pub(crate) fn set(&self) -> Option<Option<&[u64]>> {
        match &self.value {
            BoundValue::Skip => Some(None),
            BoundValue::Reps(bits) => Some(Some(bits)),
            _ => None,
        }
    }

    /// Whether the rep meets the condition. The common cases (no lead value to compare, or an
    /// interned list field answered by a bitset) are a bit test inlined into the caller's loop
    /// over a thousand reps; the rest reads the rep's value.
    #[inline(always)]
    pub fn holds(&self, roster: &Roster, rep: RepIndex, catalogue: &FieldCatalogue) -> bool {
        match &self.value {
            BoundValue::Skip => true,
            BoundValue::Reps(bits) => bit(bits, rep),
            _ => self.holds_by_value(roster, rep, catalogue),
        }
    }

    #[inline(never)]
    fn holds_by_value(&self, roster: &Roster, rep: RepIndex, catalogue: &FieldCatalogue) -> bool {
        let op = self.condition.op;
        let field = self.condition.field;
        let value = rep_value(roster.rep(rep), field, catalogue);
        let present = match value {
            None => false,
            Some(ValueRef::Text(text)) => !text.is_empty(),
            Some(ValueRef::List(items)) => !items.is_empty(),
            Some(_) => true,
        };
        match (&self.value, op, value) {
            (BoundValue::Skip, _, _) => true,
            (_, Op::Exists, _) => present,
            (_, Op::Missing, _) => !present,
            (BoundValue::Texts(wanted), Op::Equals | Op::In, Some(ValueRef::Text(text))) => {
                wanted.contains(&text)
            }
            (BoundValue::Texts(wanted), Op::NotEquals | Op::NotIn, Some(ValueRef::Text(text))) => {
                !wanted.contains(&text)
            }
            (BoundValue::Texts(_), Op::NotEquals | Op::NotIn, None) => true,
            (
                BoundValue::Texts(wanted),
                Op::Contains | Op::ContainsAny,
                Some(ValueRef::List(items)),
            ) => items.iter().any(|item| wanted.contains(&item.as_str())),
            (BoundValue::Texts(wanted), Op::NotContains, Some(ValueRef::List(items))) => {
                !items.iter().any(|item| wanted.contains(&item.as_str()))
            }
            (BoundValue::Texts(_), Op::NotContains, None) => true,
            (BoundValue::Number(bound), op, Some(ValueRef::Number(number))) => match op {
                Op::Equals => number == *bound,
                Op::NotEquals => number != *bound,
                Op::Gt => number > *bound,
                Op::Gte => number >= *bound,
                Op::Lt => number < *bound,
                Op::Lte => number <= *bound,
                _ => false,
            },
            (BoundValue::Number(_), Op::NotEquals, None) => true,
            _ => false,
        }
    }
}

/// The checks one routing step applies to each candidate.
#[derive(Debug)]
pub(crate) struct Gate<'a> {
    pub roster: &'a Roster,
    pub state: &'a RoutingState,
    pub catalogue: &'a FieldCatalogue,
    pub clock: &'a Clock,
    pub hours: HoursPolicy,
    pub exclude: &'a [RepIndex],
    pub requirements: &'a [Bound<'a>],
}

/// The reps meeting every requirement, as a set over roster positions, when each requirement
/// is one (an interned list field, or nothing to compare): the usual case, which lets a team
/// of a thousand be narrowed a word at a time. `None` means read each rep, which without
/// requirements reads nothing.
pub(crate) fn requirement_set(requirements: &[Bound<'_>], roster: &Roster) -> Option<Vec<u64>> {
    if requirements.is_empty() {
        return None;
    }
    let mut all = vec![u64::MAX; roster.reps().len().div_ceil(64)];
    for requirement in requirements {
        if let Some(bits) = requirement.set()? {
            for (word, other) in all.iter_mut().zip(bits) {
                *word &= other;
            }
        }
    }
    Some(all)
}

impl Gate<'_> {
    /// The exclusion list, the rule's requirements, then availability: the first reason the rep
    /// cannot have the lead.
    pub fn check(&self, index: RepIndex) -> Result<(), Exclusion> {
        if self.excludes(index) {
            return Err(Exclusion::Excluded);
        }
        if let Some(index) = self.first_unmet(index) {
            return Err(Exclusion::Requirement { index });
        }
        self.available(index)
    }

    /// Whether the rep is on the request's exclusion list.
    #[inline(always)]
    pub fn excludes(&self, index: RepIndex) -> bool {
        !self.exclude.is_empty() && self.exclude.contains(&index)
    }

    /// The first requirement the rep does not meet.
    #[inline]
    pub fn first_unmet(&self, index: RepIndex) -> Option<u16> {
        self.requirements
            .iter()
            .position(|requirement| !requirement.holds(self.roster, index, self.catalogue))
            .map(|position| position as u16)
    }

    /// Status, leave, working hours and caps: whether a rep who is the right rep for the lead
    /// can take it now.
    #[inline(always)]
    pub fn available(&self, index: RepIndex) -> Result<(), Exclusion> {
        let hot = &self.roster.hot[index as usize];
        if hot.status != RepStatus::Active {
            return Err(Exclusion::Status(hot.status));
        }
        let local = &self.clock.locals[usize::from(hot.zone)];
        if hot.has_leaves
            && let Some(leave) = self
                .roster
                .rep(index)
                .leaves
                .iter()
                .find(|leave| leave.first_day <= local.date && local.date <= leave.last_day)
        {
            return Err(Exclusion::OnLeave {
                until: leave.last_day,
            });
        }
        if self.hours == HoursPolicy::InHours
            && hot.clock != ALWAYS
            && !self.clock.open[hot.clock as usize]
        {
            return Err(Exclusion::OutsideHours);
        }
        let state = self.state.rep(index);
        if let Some(cap) = hot.caps.max_open
            && state.open_leads >= cap
        {
            return Err(Exclusion::HoldingCap {
                open: state.open_leads,
                cap,
            });
        }
        for (period, cap) in [
            (Period::Day, hot.caps.max_per_day),
            (Period::Week, hot.caps.max_per_week),
            (Period::Month, hot.caps.max_per_month),
        ] {
            if let Some(cap) = cap {
                let count = state.count(period, local);
                if count >= cap {
                    return Err(Exclusion::PeriodCap { period, count, cap });
                }
            }
        }
        Ok(())
    }

    /// Whether the rep is below a weekly or monthly floor (下限).
    pub fn below_floor(&self, index: RepIndex) -> bool {
        let hot = &self.roster.hot[index as usize];
        let state = self.state.rep(index);
        let local = &self.clock.locals[usize::from(hot.zone)];
        hot.caps
            .min_per_week
            .is_some_and(|floor| state.count(Period::Week, local) < floor)
            || hot
                .caps
                .min_per_month
                .is_some_and(|floor| state.count(Period::Month, local) < floor)
    }
}
