//! The roster: reps and teams compiled for routing. Reps are sorted by id (the order round
//! robin rotates in), list attributes are interned so matching compares integers, and time
//! zones are shared so each routing converts `now` once per zone, not once per rep.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::hours::{LocalNow, WeeklyHours};
use crate::rep::{Caps, Rep, RepId, RepStatus};
use crate::team::Team;

/// An interned attribute value (a region, industry, product, language or team id).
pub type Symbol = u32;

/// A rep's position in the roster.
pub type RepIndex = u32;

#[derive(Clone, Debug, Default)]
pub(crate) struct RepSymbols {
    pub regions: Vec<Symbol>,
    pub industries: Vec<Symbol>,
    pub products: Vec<Symbol>,
    pub languages: Vec<Symbol>,
    pub teams: Vec<Symbol>,
}

/// What eligibility reads of every candidate, packed together so checking a thousand reps
/// stays in cache.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hot {
    pub status: RepStatus,
    pub zone: u16,
    /// Index into the roster's clocks, or `ALWAYS` for reps without working hours.
    pub clock: u32,
    pub has_leaves: bool,
    pub caps: Caps,
}

pub(crate) const ALWAYS: u32 = u32::MAX;

/// `now` as the roster sees it: the local time in each zone, and whether each distinct pair of
/// working hours and zone is open. Computed once per routing.
#[derive(Clone, Debug)]
pub(crate) struct Clock {
    pub locals: Vec<LocalNow>,
    pub open: Vec<bool>,
}

impl Clock {
    pub fn local(&self, roster: &Roster, index: RepIndex) -> &LocalNow {
        &self.locals[usize::from(roster.hot[index as usize].zone)]
    }
}

/// The rep list fields whose values are interned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ListField {
    Regions,
    Industries,
    Products,
    Languages,
    Teams,
}

impl RepSymbols {
    fn get(&self, field: ListField) -> &[Symbol] {
        match field {
            ListField::Regions => &self.regions,
            ListField::Industries => &self.industries,
            ListField::Products => &self.products,
            ListField::Languages => &self.languages,
            ListField::Teams => &self.teams,
        }
    }
}

/// A set of roster positions.
pub(crate) fn bit(bits: &[u64], position: RepIndex) -> bool {
    bits.get(position as usize / 64)
        .is_some_and(|word| word >> (position % 64) & 1 == 1)
}

/// The positions in a set, given word by word, in increasing order.
pub(crate) fn positions(words: impl IntoIterator<Item = u64>) -> impl Iterator<Item = RepIndex> {
    words.into_iter().enumerate().flat_map(|(index, word)| {
        let mut rest = word;
        std::iter::from_fn(move || {
            (rest != 0).then(|| {
                let bit = rest.trailing_zeros();
                rest &= rest - 1;
                (index * 64) as RepIndex + bit
            })
        })
    })
}

/// Adds a position to a set.
pub(crate) fn set_bit(bits: &mut [u64], position: RepIndex) {
    if let Some(word) = bits.get_mut(position as usize / 64) {
        *word |= 1 << (position % 64);
    }
}

/// A team with its members resolved to roster positions.
#[derive(Clone, Debug)]
pub struct RosterTeam {
    pub team: Team,
    /// Members in roster order, each with the weight it has in this team.
    pub(crate) members: Vec<(RepIndex, f64)>,
    /// The same members as a set over the roster, for narrowing by requirement sets.
    pub(crate) set: Vec<u64>,
}

impl RosterTeam {
    /// Members in roster order, each with the weight it has in this team.
    pub fn members(&self) -> &[(RepIndex, f64)] {
        &self.members
    }
}

/// Reps and teams, validated and indexed once whenever they change.
#[derive(Clone, Debug, Default)]
pub struct Roster {
    reps: Vec<Rep>,
    index: HashMap<String, RepIndex>,
    pub(crate) zones: Vec<Tz>,
    pub(crate) hot: Vec<Hot>,
    /// Whether any rep has a weekly or monthly floor (下限), so routing looks for reps below it.
    pub(crate) has_floors: bool,
    schedules: Vec<WeeklyHours>,
    /// Distinct (schedule, zone) pairs.
    clocks: Vec<(u32, u16)>,
    symbols: HashMap<String, Symbol>,
    pub(crate) rep_symbols: Vec<RepSymbols>,
    /// For each interned list field and value, the set of reps holding it, as a bitset over
    /// roster positions; requirements bind to one bitset per lead.
    holders: HashMap<(ListField, Symbol), Vec<u64>>,
    nonempty: HashMap<ListField, Vec<u64>>,
    teams: Vec<RosterTeam>,
    team_index: HashMap<String, u32>,
}

/// Why reps and teams do not form a roster.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RosterError {
    #[error("rep {0} appears twice")]
    DuplicateRep(String),
    #[error("team {0} appears twice")]
    DuplicateTeam(String),
    #[error("team {team} names rep {rep}, who does not exist")]
    UnknownMember { team: String, rep: String },
    #[error("rep {0} has a weight that is negative or not a number")]
    BadWeight(String),
}

impl Roster {
    pub fn new(mut reps: Vec<Rep>, teams: Vec<Team>) -> Result<Roster, RosterError> {
        reps.sort_by(|left, right| left.id.cmp(&right.id));
        let mut roster = Roster::default();
        let mut schedule_index: HashMap<WeeklyHours, u32> = HashMap::new();
        let mut clock_index: HashMap<(u32, u16), u32> = HashMap::new();
        for (position, rep) in reps.iter().enumerate() {
            if !(rep.weight >= 0.0 && rep.weight.is_finite()) {
                return Err(RosterError::BadWeight(rep.id.to_string()));
            }
            if roster
                .index
                .insert(rep.id.as_str().to_owned(), position as RepIndex)
                .is_some()
            {
                return Err(RosterError::DuplicateRep(rep.id.to_string()));
            }
            let zone = match roster.zones.iter().position(|zone| *zone == rep.time_zone) {
                Some(zone) => zone,
                None => {
                    roster.zones.push(rep.time_zone);
                    roster.zones.len() - 1
                }
            };
            let zone = zone as u16;
            let clock = match &rep.hours {
                None => ALWAYS,
                Some(hours) => {
                    let next = roster.schedules.len() as u32;
                    let schedule = *schedule_index.entry(hours.clone()).or_insert(next);
                    if schedule == next {
                        roster.schedules.push(hours.clone());
                    }
                    let next = roster.clocks.len() as u32;
                    let clock = *clock_index.entry((schedule, zone)).or_insert(next);
                    if clock == next {
                        roster.clocks.push((schedule, zone));
                    }
                    clock
                }
            };
            roster.has_floors |=
                rep.caps.min_per_week.is_some() || rep.caps.min_per_month.is_some();
            roster.hot.push(Hot {
                status: rep.status,
                zone,
                clock,
                has_leaves: !rep.leaves.is_empty(),
                caps: rep.caps,
            });
            let symbols = RepSymbols {
                regions: roster.intern_all(&rep.regions),
                industries: roster.intern_all(&rep.industries),
                products: roster.intern_all(&rep.products),
                languages: roster.intern_all(&rep.languages),
                teams: Vec::new(),
            };
            roster.rep_symbols.push(symbols);
        }
        roster.reps = reps;
        for team in teams {
            if roster.team_index.contains_key(&team.id) {
                return Err(RosterError::DuplicateTeam(team.id));
            }
            let team_symbol = roster.intern(&team.id);
            let mut members = Vec::with_capacity(team.members.len());
            for member in &team.members {
                let Some(position) = roster.position(&member.rep) else {
                    return Err(RosterError::UnknownMember {
                        team: team.id.clone(),
                        rep: member.rep.to_string(),
                    });
                };
                let weight = member
                    .weight
                    .unwrap_or(roster.reps[position as usize].weight);
                if !(weight >= 0.0 && weight.is_finite()) {
                    return Err(RosterError::BadWeight(member.rep.to_string()));
                }
                members.push((position, weight));
                let teams = &mut roster.rep_symbols[position as usize].teams;
                if !teams.contains(&team_symbol) {
                    teams.push(team_symbol);
                }
            }
            members.sort_by_key(|(position, _)| *position);
            members.dedup_by_key(|(position, _)| *position);
            roster
                .team_index
                .insert(team.id.clone(), roster.teams.len() as u32);
            let mut set = vec![0; roster.reps.len().div_ceil(64)];
            for (position, _) in &members {
                set_bit(&mut set, *position);
            }
            roster.teams.push(RosterTeam { team, members, set });
        }
        let words = roster.reps.len().div_ceil(64);
        for (position, symbols) in roster.rep_symbols.iter().enumerate() {
            for field in [
                ListField::Regions,
                ListField::Industries,
                ListField::Products,
                ListField::Languages,
                ListField::Teams,
            ] {
                let values = symbols.get(field);
                let mark = |bits: &mut Vec<u64>| bits[position / 64] |= 1 << (position % 64);
                if !values.is_empty() {
                    mark(
                        roster
                            .nonempty
                            .entry(field)
                            .or_insert_with(|| vec![0; words]),
                    );
                }
                for symbol in values {
                    mark(
                        roster
                            .holders
                            .entry((field, *symbol))
                            .or_insert_with(|| vec![0; words]),
                    );
                }
            }
        }
        Ok(roster)
    }

    /// Reads the clock for `now`.
    pub(crate) fn clock(&self, now: DateTime<Utc>) -> Clock {
        let locals: Vec<LocalNow> = self
            .zones
            .iter()
            .map(|zone| LocalNow::new(now, *zone))
            .collect();
        let open = self
            .clocks
            .iter()
            .map(|(schedule, zone)| {
                self.schedules[*schedule as usize].contains(&locals[usize::from(*zone)])
            })
            .collect();
        Clock { locals, open }
    }

    /// What eligibility can see of `now`: which working hours are open, and each zone's date
    /// (periods and leave days follow from it). At two instants with the same key the same reps
    /// are in hours, on leave and in the same cap periods.
    pub fn availability_key(&self, now: DateTime<Utc>) -> (Vec<bool>, Vec<chrono::NaiveDate>) {
        let clock = self.clock(now);
        (
            clock.open,
            clock.locals.iter().map(|local| local.date).collect(),
        )
    }

    fn intern(&mut self, value: &str) -> Symbol {
        let next = self.symbols.len() as Symbol;
        *self.symbols.entry(value.to_owned()).or_insert(next)
    }

    fn intern_all(&mut self, values: &[String]) -> Vec<Symbol> {
        values.iter().map(|value| self.intern(value)).collect()
    }

    /// The symbol of a value, if any rep or team uses it.
    pub(crate) fn symbol(&self, value: &str) -> Option<Symbol> {
        self.symbols.get(value).copied()
    }

    /// The reps whose list field holds any of the values, as a bitset.
    pub(crate) fn holding_any(&self, field: ListField, values: &[Symbol]) -> Vec<u64> {
        let mut bits = vec![0u64; self.reps.len().div_ceil(64)];
        for value in values {
            if let Some(holders) = self.holders.get(&(field, *value)) {
                bits.iter_mut()
                    .zip(holders)
                    .for_each(|(word, holder)| *word |= holder);
            }
        }
        bits
    }

    /// The reps whose list field is not empty, as a bitset.
    pub(crate) fn holding_some(&self, field: ListField) -> Vec<u64> {
        self.nonempty
            .get(&field)
            .cloned()
            .unwrap_or_else(|| vec![0u64; self.reps.len().div_ceil(64)])
    }

    pub fn reps(&self) -> &[Rep] {
        &self.reps
    }

    pub fn rep(&self, index: RepIndex) -> &Rep {
        &self.reps[index as usize]
    }

    pub fn position(&self, id: &RepId) -> Option<RepIndex> {
        self.index.get(id.as_str()).copied()
    }

    pub fn position_of(&self, id: &str) -> Option<RepIndex> {
        self.index.get(id).copied()
    }

    pub fn team(&self, id: &str) -> Option<&RosterTeam> {
        self.team_index
            .get(id)
            .map(|position| &self.teams[*position as usize])
    }

    pub fn teams(&self) -> impl Iterator<Item = &Team> {
        self.teams.iter().map(|team| &team.team)
    }

    pub fn has_team(&self, id: &str) -> bool {
        self.team_index.contains_key(id)
    }

    /// The first position whose id sorts after `id`: where a rotation continues when the
    /// rep it last served has left the roster.
    pub(crate) fn position_after(&self, id: &RepId) -> RepIndex {
        self.reps.partition_point(|rep| rep.id <= *id) as RepIndex
    }
}
