//! Expected outcomes under a policy, from what history says each rep converts.
//!
//! A rep's conversion in a segment is estimated with shrinkage toward their team's rate in
//! that segment (the team's toward the whole workspace's): `(wins + K·team) / (closed + K)`,
//! so a rep with five leads does not look like a genius or a disaster. A policy's expected
//! conversions are the sum over the leads it assigns of their owner's estimate; leads it never
//! places count at the segment's overall rate. The difference between two policies comes with
//! a 95% interval from a parametric bootstrap of the history (each rep's wins redrawn from
//! their own record, everything re-estimated), so when outcomes do not depend on the rep the
//! interval straddles zero and the report says the difference is not significant.

use std::collections::HashMap;

use serde::Serialize;
use utoipa::ToSchema;

/// How many leads of the team's rate a rep's own record is weighed against.
pub const PRIOR_LEADS: f64 = 30.0;
/// The same for response times.
const PRIOR_RESPONSES: f64 = 10.0;
const BOOTSTRAP_ROUNDS: usize = 400;
/// A response is counted at most a day, so one lead forgotten over a holiday does not dominate.
const RESPONSE_CAP_SECS: f64 = 86_400.0;

#[derive(Clone, Copy, Debug, Default)]
struct Cell {
    closed: u64,
    wins: u64,
}

#[derive(Clone, Copy, Debug, Default)]
struct Responses {
    count: u64,
    total_secs: f64,
    missed: u64,
}

/// What history says: per (rep, segment) closed leads and wins, won amounts per segment,
/// response times per rep.
#[derive(Debug, Default)]
pub struct Observations {
    /// Owners by id, interned: a million leads cost no allocation each.
    owners: HashMap<String, u32>,
    names: Vec<String>,
    cells: HashMap<(u32, u32), Cell>,
    amounts: HashMap<u32, (f64, u64)>,
    responses: HashMap<u32, Responses>,
    pub sla_secs: f64,
}

/// Leads a policy assigned, per (rep id, segment), and leads it never placed per segment.
#[derive(Debug, Default)]
pub struct Placement {
    pub assigned: Vec<(String, u32, u64)>,
    pub unassigned: Vec<(u32, u64)>,
}

/// Expected outcomes of one policy.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Expected {
    pub conversions: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// 95% interval of the conversions.
    pub interval: [f64; 2],
}

/// B against A.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Difference {
    pub conversions: f64,
    pub interval: [f64; 2],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_interval: Option<[f64; 2]>,
    /// The interval leaves out zero.
    pub significant: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct OutcomeComparison {
    /// Closed leads with a known outcome the estimates learned from.
    pub observed: u64,
    pub observed_wins: u64,
    pub segment_by: String,
    pub prior_leads: f64,
    pub a: Expected,
    pub b: Expected,
    pub difference: Difference,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct ExpectedResponse {
    /// Mean first response over assigned leads, seconds.
    pub mean_first_response_secs: f64,
    /// Leads expected to miss the first-response target.
    pub sla_misses: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct ResponseComparison {
    pub observed: u64,
    pub sla_secs: f64,
    pub a: ExpectedResponse,
    pub b: ExpectedResponse,
}

impl Observations {
    pub fn new(sla_secs: f64) -> Observations {
        Observations {
            sla_secs,
            ..Observations::default()
        }
    }

    /// An owner's number, the same for every lead of theirs.
    pub fn intern(&mut self, owner: &str) -> u32 {
        match self.owners.get(owner) {
            Some(index) => *index,
            None => {
                let index = self.names.len() as u32;
                self.owners.insert(owner.to_owned(), index);
                self.names.push(owner.to_owned());
                index
            }
        }
    }

    /// The owner behind a number from [`Observations::intern`].
    pub fn owner(&self, index: u32) -> Option<&str> {
        self.names.get(index as usize).map(String::as_str)
    }

    /// One lead of history with its real owner.
    pub fn observe(
        &mut self,
        owner: &str,
        segment: u32,
        won: Option<bool>,
        amount: Option<f64>,
        response_secs: Option<f64>,
    ) {
        let owner = self.intern(owner);
        if let Some(won) = won {
            let cell = self.cells.entry((owner, segment)).or_default();
            cell.closed += 1;
            if won {
                cell.wins += 1;
                if let Some(amount) = amount.filter(|amount| amount.is_finite() && *amount >= 0.0) {
                    let entry = self.amounts.entry(segment).or_default();
                    entry.0 += amount;
                    entry.1 += 1;
                }
            }
        }
        if let Some(secs) = response_secs.filter(|secs| secs.is_finite() && *secs >= 0.0) {
            let entry = self.responses.entry(owner).or_default();
            entry.count += 1;
            entry.total_secs += secs.min(RESPONSE_CAP_SECS);
            if secs > self.sla_secs {
                entry.missed += 1;
            }
        }
    }

    /// The cells in a stable order (rep id, segment), so the bootstrap draws the same numbers
    /// for the same history.
    fn sorted_cells(&self) -> Vec<(&str, u32, Cell)> {
        let mut cells: Vec<(&str, u32, Cell)> = self
            .cells
            .iter()
            .map(|((owner, segment), cell)| (self.names[*owner as usize].as_str(), *segment, *cell))
            .collect();
        cells.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        cells
    }

    fn closed(&self) -> (u64, u64) {
        self.cells.values().fold((0, 0), |(closed, wins), cell| {
            (closed + cell.closed, wins + cell.wins)
        })
    }

    /// Expected conversions of both policies and their difference, or `None` when history
    /// has no closed lead with an outcome. `group` names a rep's team (shrinkage target).
    pub fn compare(
        &self,
        group: &dyn Fn(&str) -> Option<String>,
        a: &Placement,
        b: &Placement,
        segment_by: &str,
    ) -> Option<OutcomeComparison> {
        let (observed, observed_wins) = self.closed();
        if observed == 0 {
            return None;
        }
        let cells = self.sorted_cells();
        let placed = a
            .assigned
            .iter()
            .chain(&b.assigned)
            .map(|(rep, _, _)| rep.as_str());
        let model = Model::new(&cells, &self.amounts, group, placed);
        let wins: Vec<u64> = cells.iter().map(|(_, _, cell)| cell.wins).collect();
        let (point_a, point_b) = (model.expected(&wins, a), model.expected(&wins, b));
        let value_a = model.value(&wins, a);
        let value_b = model.value(&wins, b);
        let mut random = SplitMix(0x1ead_5eed);
        let mut draws_a = Vec::with_capacity(BOOTSTRAP_ROUNDS);
        let mut draws_b = Vec::with_capacity(BOOTSTRAP_ROUNDS);
        let mut draws_difference = Vec::with_capacity(BOOTSTRAP_ROUNDS);
        let mut draws_value = Vec::with_capacity(BOOTSTRAP_ROUNDS);
        for _ in 0..BOOTSTRAP_ROUNDS {
            let redrawn: Vec<u64> = cells
                .iter()
                .map(|(_, _, cell)| {
                    random.binomial(cell.closed, cell.wins as f64 / cell.closed.max(1) as f64)
                })
                .collect();
            let (ea, eb) = (model.expected(&redrawn, a), model.expected(&redrawn, b));
            draws_a.push(ea);
            draws_b.push(eb);
            draws_difference.push(eb - ea);
            if let (Some(va), Some(vb)) = (model.value(&redrawn, a), model.value(&redrawn, b)) {
                draws_value.push(vb - va);
            }
        }
        let interval = percentiles(&mut draws_difference);
        let value_interval = (!draws_value.is_empty()).then(|| percentiles(&mut draws_value));
        Some(OutcomeComparison {
            observed,
            observed_wins,
            segment_by: segment_by.to_owned(),
            prior_leads: PRIOR_LEADS,
            a: Expected {
                conversions: point_a,
                value: value_a,
                interval: percentiles(&mut draws_a),
            },
            b: Expected {
                conversions: point_b,
                value: value_b,
                interval: percentiles(&mut draws_b),
            },
            difference: Difference {
                conversions: point_b - point_a,
                interval,
                value: value_a.zip(value_b).map(|(va, vb)| vb - va),
                value_interval,
                significant: interval[0] > 0.0 || interval[1] < 0.0,
            },
        })
    }

    /// Expected first response and SLA misses, or `None` when history has no response times.
    pub fn responses(&self, a: &Placement, b: &Placement) -> Option<ResponseComparison> {
        let (count, total, missed) = self.responses.values().fold((0, 0.0, 0), |(c, t, m), r| {
            (c + r.count, t + r.total_secs, m + r.missed)
        });
        if count == 0 {
            return None;
        }
        let overall_mean = total / count as f64;
        let overall_miss = missed as f64 / count as f64;
        let estimate = |rep: &str| -> (f64, f64) {
            let own = self
                .owners
                .get(rep)
                .and_then(|owner| self.responses.get(owner))
                .copied()
                .unwrap_or_default();
            let weight = own.count as f64 + PRIOR_RESPONSES;
            (
                (own.total_secs + PRIOR_RESPONSES * overall_mean) / weight,
                (own.missed as f64 + PRIOR_RESPONSES * overall_miss) / weight,
            )
        };
        let expected = |placement: &Placement| {
            let (mut leads, mut secs, mut misses) = (0.0, 0.0, 0.0);
            for (rep, _, count) in &placement.assigned {
                let (mean, miss) = estimate(rep);
                let count = *count as f64;
                leads += count;
                secs += count * mean;
                misses += count * miss;
            }
            ExpectedResponse {
                mean_first_response_secs: if leads > 0.0 { secs / leads } else { 0.0 },
                sla_misses: misses,
            }
        };
        Some(ResponseComparison {
            observed: count,
            sla_secs: self.sla_secs,
            a: expected(a),
            b: expected(b),
        })
    }
}

/// Conversion rates for one draw of the wins: per segment overall, per (group, segment) the
/// closed leads and wins, and the rate over everything.
struct Rates {
    segments: HashMap<u32, f64>,
    groups: HashMap<(usize, u32), (f64, f64)>,
    global: f64,
}

impl Rates {
    fn segment(&self, segment: u32) -> f64 {
        self.segments.get(&segment).copied().unwrap_or(self.global)
    }
}

/// The estimator's fixed structure: which cell is which rep, team and segment, so a bootstrap
/// round only swaps the wins.
struct Model {
    /// Per cell (in `Observations::cells` order): closed leads, segment, group.
    cells: Vec<(u64, u32, usize)>,
    /// Cell index by (rep, segment).
    index: HashMap<(String, u32), usize>,
    /// Group index by rep.
    groups: HashMap<String, usize>,
    /// Mean won amount per segment, and overall.
    amount: HashMap<u32, f64>,
    amount_overall: Option<f64>,
}

impl Model {
    /// `placed`: reps the policies assign to, so one without history (a new hire) still
    /// counts at their team's rate.
    fn new<'a>(
        observed: &[(&str, u32, Cell)],
        amounts: &HashMap<u32, (f64, u64)>,
        group: &dyn Fn(&str) -> Option<String>,
        placed: impl Iterator<Item = &'a str>,
    ) -> Model {
        let mut names: HashMap<String, usize> = HashMap::new();
        let mut groups = HashMap::new();
        let mut group_of = |rep: &str, groups: &mut HashMap<String, usize>| -> usize {
            if let Some(found) = groups.get(rep) {
                return *found;
            }
            let name = group(rep).unwrap_or_default();
            let next = names.len();
            let index = *names.entry(name).or_insert(next);
            groups.insert(rep.to_owned(), index);
            index
        };
        let mut cells = Vec::new();
        let mut index = HashMap::new();
        for (position, (rep, segment, cell)) in observed.iter().enumerate() {
            let group = group_of(rep, &mut groups);
            cells.push((cell.closed, *segment, group));
            index.insert(((*rep).to_owned(), *segment), position);
        }
        for rep in placed {
            group_of(rep, &mut groups);
        }
        let amount = amounts
            .iter()
            .map(|(segment, (total, count))| (*segment, total / *count as f64))
            .collect();
        let (total, count) = amounts
            .values()
            .fold((0.0, 0), |(t, c), (total, count)| (t + total, c + count));
        Model {
            cells,
            index,
            groups,
            amount,
            amount_overall: (count > 0).then(|| total / count as f64),
        }
    }

    /// Rates per segment overall and per (group, segment), from these wins.
    fn rates(&self, wins: &[u64]) -> Rates {
        let mut overall: HashMap<u32, (f64, f64)> = HashMap::new();
        let mut grouped: HashMap<(usize, u32), (f64, f64)> = HashMap::new();
        let (mut all_closed, mut all_wins) = (0.0, 0.0);
        for ((closed, segment, group), won) in self.cells.iter().zip(wins) {
            let (closed, won) = (*closed as f64, *won as f64);
            let entry = overall.entry(*segment).or_default();
            entry.0 += closed;
            entry.1 += won;
            let entry = grouped.entry((*group, *segment)).or_default();
            entry.0 += closed;
            entry.1 += won;
            all_closed += closed;
            all_wins += won;
        }
        let global = if all_closed > 0.0 {
            all_wins / all_closed
        } else {
            0.0
        };
        let segments = overall
            .into_iter()
            .map(|(segment, (closed, won))| {
                (
                    segment,
                    (won + PRIOR_LEADS * global) / (closed + PRIOR_LEADS),
                )
            })
            .collect();
        Rates {
            segments,
            groups: grouped,
            global,
        }
    }

    /// A rep's rate in a segment.
    fn rate(
        &self,
        wins: &[u64],
        rates: &Rates,
        rep: &str,
        segment: u32,
        group: Option<usize>,
    ) -> f64 {
        let segment_rate = rates.segment(segment);
        let team_rate = group
            .and_then(|group| rates.groups.get(&(group, segment)))
            .map_or(segment_rate, |(closed, won)| {
                (won + PRIOR_LEADS * segment_rate) / (closed + PRIOR_LEADS)
            });
        match self.index.get(&(rep.to_owned(), segment)) {
            Some(&cell) => {
                let closed = self.cells[cell].0 as f64;
                (wins[cell] as f64 + PRIOR_LEADS * team_rate) / (closed + PRIOR_LEADS)
            }
            None => team_rate,
        }
    }

    fn expected(&self, wins: &[u64], placement: &Placement) -> f64 {
        let rates = self.rates(wins);
        let mut total = 0.0;
        for (rep, segment, count) in &placement.assigned {
            let group = self.groups.get(rep).copied();
            total += *count as f64 * self.rate(wins, &rates, rep, *segment, group);
        }
        for (segment, count) in &placement.unassigned {
            total += *count as f64 * rates.segment(*segment);
        }
        total
    }

    /// Expected won value: conversions times the segment's mean deal.
    fn value(&self, wins: &[u64], placement: &Placement) -> Option<f64> {
        let overall = self.amount_overall?;
        let rates = self.rates(wins);
        let mut total = 0.0;
        let amount = |segment: &u32| self.amount.get(segment).copied().unwrap_or(overall);
        for (rep, segment, count) in &placement.assigned {
            let group = self.groups.get(rep).copied();
            total +=
                *count as f64 * self.rate(wins, &rates, rep, *segment, group) * amount(segment);
        }
        for (segment, count) in &placement.unassigned {
            total += *count as f64 * rates.segment(*segment) * amount(segment);
        }
        Some(total)
    }
}

/// The 2.5th and 97.5th percentiles.
fn percentiles(draws: &mut [f64]) -> [f64; 2] {
    if draws.is_empty() {
        return [0.0, 0.0];
    }
    draws.sort_by(f64::total_cmp);
    let at = |q: f64| draws[((draws.len() - 1) as f64 * q).round() as usize];
    [at(0.025), at(0.975)]
}

/// A small deterministic generator (SplitMix64): the same history gives the same interval.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    fn uniform(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    fn poisson(&mut self, mean: f64) -> u64 {
        let limit = (-mean).exp();
        let (mut count, mut product) = (0, self.uniform());
        while product > limit {
            count += 1;
            product *= self.uniform();
        }
        count
    }

    /// A binomial draw: exact for small counts, Poisson or normal approximations beyond.
    fn binomial(&mut self, trials: u64, p: f64) -> u64 {
        if trials == 0 || p <= 0.0 {
            return 0;
        }
        if p >= 1.0 {
            return trials;
        }
        if trials <= 64 {
            return (0..trials).filter(|_| self.uniform() < p).count() as u64;
        }
        let n = trials as f64;
        let variance = n * p * (1.0 - p);
        if variance >= 9.0 {
            let draw = (n * p + variance.sqrt() * self.normal()).round();
            return draw.clamp(0.0, n) as u64;
        }
        if p < 0.5 {
            self.poisson(n * p).min(trials)
        } else {
            trials - self.poisson(n * (1.0 - p)).min(trials)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two reps, two policies that give B's leads to rep 1 instead of rep 0; outcomes drawn
    /// with rates `rates`. Returns whether the difference was significant.
    fn significant(rates: [f64; 2], seed: u64) -> (bool, f64) {
        let mut random = SplitMix(seed);
        let mut observations = Observations::new(3600.0);
        for lead in 0..4000 {
            let rep = lead % 2;
            let won = random.uniform() < rates[rep];
            observations.observe(&format!("rep{rep}"), 0, Some(won), None, None);
        }
        let a = Placement {
            assigned: vec![("rep0".into(), 0, 1500), ("rep1".into(), 0, 500)],
            unassigned: vec![],
        };
        let b = Placement {
            assigned: vec![("rep0".into(), 0, 500), ("rep1".into(), 0, 1500)],
            unassigned: vec![],
        };
        let group = |_: &str| Some("team".to_owned());
        let comparison = observations
            .compare(&group, &a, &b, "source")
            .expect("outcomes");
        (
            comparison.difference.significant,
            comparison.difference.conversions,
        )
    }

    #[test]
    fn no_lift_is_found_in_noise() {
        // Outcome independent of the rep: across seeds, the 95% interval covers zero almost
        // always (a calibrated interval would miss about 1 in 20).
        let misses = (0..40)
            .filter(|seed| significant([0.1, 0.1], *seed).0)
            .count();
        assert!(
            misses <= 5,
            "{misses} of 40 null histories looked significant"
        );
    }

    #[test]
    fn a_rep_who_truly_converts_better_is_found() {
        for seed in 0..10 {
            let (significant, lift) = significant([0.08, 0.16], seed);
            assert!(significant, "seed {seed}: lift {lift} not significant");
            assert!(lift > 0.0);
        }
    }

    #[test]
    fn binomial_draws_have_the_right_mean() {
        let mut random = SplitMix(7);
        for (trials, p) in [(10, 0.3), (1000, 0.002), (1000, 0.4), (100, 0.99)] {
            let mean = (0..2000)
                .map(|_| random.binomial(trials, p) as f64)
                .sum::<f64>()
                / 2000.0;
            let expected = trials as f64 * p;
            assert!(
                (mean - expected).abs() < 0.1 * expected.max(1.0),
                "{trials} {p}: {mean}"
            );
        }
    }
}
