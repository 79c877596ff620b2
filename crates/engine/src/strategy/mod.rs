//! Strategies (分配方式): how one rep is picked among the eligible candidates. Each strategy
//! lives in its own file; this module holds their configuration and the shared input.

mod best_match;
mod fair_share;
mod least_loaded;
mod longest_idle;
mod performance;
mod round_robin;
mod weighted_round_robin;

pub(crate) use performance::performance_weights;

use crate::hours::{LocalNow, Period};
use crate::roster::{Clock, RepIndex, Roster};
use crate::state::{RepState, RotationState, RoutingState};

/// A strategy with its settings.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Strategy {
    /// Exact rotation in rep-id order; the pointer is explicit state.
    #[default]
    RoundRobin,
    /// Smooth weighted round robin (the nginx algorithm): deterministic, and weights 1:2 over
    /// six leads give exactly 2 and 4.
    WeightedRoundRobin {
        weights: WeightSource,
    },
    LeastLoaded {
        measure: LoadMeasure,
    },
    /// The rep whose last assignment is oldest; never-assigned reps first.
    LongestIdle,
    /// The rep furthest below their target share of the leads in the window.
    FairShare {
        window: Period,
        catch_up: CatchUp,
        weights: WeightSource,
    },
    /// A weighted score over matching, conversion, response speed, feedback and load.
    BestMatch(BestMatchWeights),
}

impl Strategy {
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::RoundRobin => "round_robin",
            Strategy::WeightedRoundRobin { .. } => "weighted_round_robin",
            Strategy::LeastLoaded { .. } => "least_loaded",
            Strategy::LongestIdle => "longest_idle",
            Strategy::FairShare { .. } => "fair_share",
            Strategy::BestMatch(_) => "best_match",
        }
    }
}

/// Where weights come from.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum WeightSource {
    /// The rep's weight, or the member weight the team gives them.
    #[default]
    Configured,
    /// The configured weight times a performance factor.
    Performance(PerformanceWeights),
}

/// "Base rotation plus performance weighting": factor = weighted mean of each statistic
/// relative to the candidates' mean, bounded to `floor..=ceiling`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PerformanceWeights {
    pub conversion: f64,
    pub response: f64,
    pub feedback: f64,
    pub floor: f64,
    pub ceiling: f64,
}

impl Default for PerformanceWeights {
    fn default() -> Self {
        PerformanceWeights {
            conversion: 1.0,
            response: 0.0,
            feedback: 0.0,
            floor: 0.5,
            ceiling: 2.0,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LoadMeasure {
    /// Fewest open leads.
    #[default]
    OpenLeads,
    /// Most room under the holding cap; reps without a cap count as having the most room.
    FreeCapacity,
}

/// How a rep who fell behind their share (back from leave, or new) catches up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CatchUp {
    /// Count them as on target: from now on they get their share, no more.
    None,
    /// At most this many leads above their share until they are caught up.
    Capped(u32),
    /// Everything until they reach their share.
    Full,
}

impl Default for CatchUp {
    fn default() -> Self {
        CatchUp::Capped(3)
    }
}

/// Weights of the best-match dimensions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BestMatchWeights {
    pub matching: f64,
    pub conversion: f64,
    pub response: f64,
    pub feedback: f64,
    pub load: f64,
    /// How strongly a promising lead is steered to the strongest converters: the dimension is
    /// the lead's win probability times the rep's relative conversion, and counts only when a
    /// published model scored the lead.
    pub win_probability: f64,
}

impl Default for BestMatchWeights {
    fn default() -> Self {
        BestMatchWeights {
            matching: 0.3,
            conversion: 0.3,
            response: 0.15,
            feedback: 0.1,
            load: 0.15,
            win_probability: 0.3,
        }
    }
}

/// Everything a strategy may read about the eligible candidates.
#[derive(Debug)]
pub(crate) struct Pick<'a> {
    pub roster: &'a Roster,
    pub state: &'a RoutingState,
    /// Eligible candidates in roster order, with their configured weight.
    pub candidates: &'a [(RepIndex, f64)],
    pub clock: &'a Clock,
    pub rotation_key: &'a str,
    /// For best match: per candidate, the share of preferences met (0..=1).
    pub matching: &'a [f64],
    /// For best match: the lead's win probability, when a published model scored it.
    pub win_probability: Option<f64>,
}

impl Pick<'_> {
    pub fn rep_state(&self, index: RepIndex) -> &RepState {
        self.state.rep(index)
    }

    pub fn local(&self, index: RepIndex) -> &LocalNow {
        self.clock.local(self.roster, index)
    }

    pub fn rotation(&self) -> Option<&RotationState> {
        self.state.rotation(self.rotation_key)
    }
}

/// A strategy's choice: the winner (a position in `candidates`), the leading candidates with
/// their scores, the tie-break used, and a new rotation state if it moved.
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    pub winner: usize,
    pub leading: Vec<Scored>,
    pub tie_break: Option<TieBreak>,
    pub rotation: Option<RotationState>,
}

/// A candidate's score under the strategy, with its parts for best match.
#[derive(Clone, Debug, PartialEq)]
pub struct Scored {
    pub rep: RepIndex,
    pub score: f64,
    pub parts: Vec<(&'static str, f64)>,
}

/// How a tie between equally scored candidates was broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TieBreak {
    FairShare,
    LongestIdle,
    RepOrder,
}

impl TieBreak {
    pub fn as_str(self) -> &'static str {
        match self {
            TieBreak::FairShare => "fair_share",
            TieBreak::LongestIdle => "longest_idle",
            TieBreak::RepOrder => "rep_order",
        }
    }
}

/// How many leading candidates a decision keeps.
pub(crate) const LEADING: usize = 5;

/// Picks among the candidates, which must not be empty.
pub(crate) fn pick(strategy: &Strategy, input: &Pick<'_>) -> Choice {
    match strategy {
        Strategy::RoundRobin => round_robin::pick(input),
        Strategy::WeightedRoundRobin { weights } => weighted_round_robin::pick(input, weights),
        Strategy::LeastLoaded { measure } => least_loaded::pick(input, *measure),
        Strategy::LongestIdle => longest_idle::pick(input),
        Strategy::FairShare {
            window,
            catch_up,
            weights,
        } => fair_share::pick(input, *window, *catch_up, weights),
        Strategy::BestMatch(weights) => best_match::pick(input, weights),
    }
}

/// Keeps the best `LEADING` of `scored` (higher first, ties in roster order) and returns the
/// winner's position among the candidates. Ties on the top score are broken by the given
/// chain of tie-breaks; the rule for each is "lower key wins".
///
/// One pass after the maximum collects the tied and the leading together, and each tie-break
/// key is read once per tied candidate: with a third of a large team eligible and many of
/// them level, this was a fifth of a fair-share route.
pub(crate) fn rank(
    input: &Pick<'_>,
    scores: &[f64],
    tie_breaks: &[(TieBreak, &dyn Fn(usize) -> f64)],
) -> (usize, Vec<Scored>, Option<TieBreak>) {
    let (winner, leading, used) = leading(scores, tie_breaks);
    let leading = leading
        .into_iter()
        .map(|position| Scored {
            rep: input.candidates[position].0,
            score: scores[position],
            parts: Vec::new(),
        })
        .collect();
    (winner, leading, used)
}

/// `rank` over positions: the winner, the leading positions with the winner first, and the
/// tie-break that decided.
fn leading(
    scores: &[f64],
    tie_breaks: &[(TieBreak, &dyn Fn(usize) -> f64)],
) -> (usize, Vec<usize>, Option<TieBreak>) {
    let best = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut tied: Vec<usize> = Vec::new();
    // The leading so far, higher score first; positions arrive in roster order, so a newcomer
    // goes after every kept candidate scored at least as high.
    let mut top = [0usize; LEADING];
    let mut kept = 0;
    // The score a newcomer must beat to lead, once LEADING are kept.
    let mut floor = f64::NEG_INFINITY;
    for (position, &score) in scores.iter().enumerate() {
        if (score - best).abs() <= 1e-9 {
            tied.push(position);
        }
        if kept == LEADING && score.total_cmp(&floor).is_le() {
            continue;
        }
        let place = top[..kept]
            .iter()
            .position(|kept| scores[*kept].total_cmp(&score).is_lt())
            .unwrap_or(kept);
        if kept < LEADING {
            kept += 1;
        }
        top.copy_within(place..kept - 1, place + 1);
        top[place] = position;
        floor = scores[top[kept - 1]];
    }
    let mut used = None;
    for (tie_break, key) in tie_breaks {
        if tied.len() <= 1 {
            break;
        }
        let keys: Vec<f64> = tied.iter().map(|position| key(*position)).collect();
        let lowest = keys.iter().copied().fold(f64::INFINITY, f64::min);
        let before = tied.len();
        let mut narrowed = 0;
        for index in 0..before {
            if keys[index] <= lowest + 1e-9 {
                tied[narrowed] = tied[index];
                narrowed += 1;
            }
        }
        if narrowed == 0 {
            // Keys that do not compare (NaN) narrow nothing.
            continue;
        }
        tied.truncate(narrowed);
        if narrowed < before {
            used = Some(*tie_break);
        }
    }
    if tied.len() > 1 {
        used = Some(TieBreak::RepOrder);
    }
    // Scores that do not compare (NaN) tie with nothing; the first leading candidate wins.
    let winner = tied.first().copied().unwrap_or(top[0]);
    // The winner leads, then the others in order, as many as fit.
    let others = top[..kept]
        .iter()
        .copied()
        .filter(|position| *position != winner)
        .take(LEADING - 1);
    (
        winner,
        std::iter::once(winner).chain(others).collect(),
        used,
    )
}

/// Seconds since the last assignment, for "longest idle first" tie-breaks: never-assigned
/// reps sort first.
pub(crate) fn idle_key(input: &Pick<'_>, position: usize) -> f64 {
    input
        .rep_state(input.candidates[position].0)
        .last_assigned_at
        .map_or(f64::NEG_INFINITY, |time| time.timestamp_micros() as f64)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{LEADING, TieBreak, leading};

    /// The plain reading of `rank`: sort everyone, narrow the tied by each key in turn.
    fn by_sorting(
        scores: &[f64],
        tie_breaks: &[(TieBreak, &dyn Fn(usize) -> f64)],
    ) -> (usize, Vec<usize>, Option<TieBreak>) {
        let best = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut tied: Vec<usize> = (0..scores.len())
            .filter(|position| (scores[*position] - best).abs() <= 1e-9)
            .collect();
        let mut used = None;
        for (tie_break, key) in tie_breaks {
            if tied.len() <= 1 {
                break;
            }
            let lowest = tied
                .iter()
                .map(|position| key(*position))
                .fold(f64::INFINITY, f64::min);
            let narrowed: Vec<usize> = tied
                .iter()
                .copied()
                .filter(|position| key(*position) <= lowest + 1e-9)
                .collect();
            if narrowed.len() < tied.len() {
                used = Some(*tie_break);
            }
            tied = narrowed;
        }
        if tied.len() > 1 {
            used = Some(TieBreak::RepOrder);
        }
        let winner = tied[0];
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|left, right| {
            scores[*right]
                .total_cmp(&scores[*left])
                .then(left.cmp(right))
        });
        let mut leading = vec![winner];
        leading.extend(
            order
                .into_iter()
                .filter(|position| *position != winner)
                .take(LEADING - 1),
        );
        (winner, leading, used)
    }

    proptest! {
        #[test]
        fn one_pass_ranks_as_sorting_does(
            // Few distinct values, so ties on the top score and on the keys are common.
            scores in prop::collection::vec(0u8..6, 1..40),
            first in prop::collection::vec(0u8..3, 40),
            second in prop::collection::vec(0u8..3, 40),
        ) {
            let scores: Vec<f64> = scores.into_iter().map(|score| f64::from(score) / 2.0).collect();
            let first = |position: usize| f64::from(first[position]);
            let second = |position: usize| f64::from(second[position]);
            let chain: [(TieBreak, &dyn Fn(usize) -> f64); 2] =
                [(TieBreak::FairShare, &first), (TieBreak::LongestIdle, &second)];
            for tie_breaks in [&chain[..], &chain[1..], &[]] {
                prop_assert_eq!(leading(&scores, tie_breaks), by_sorting(&scores, tie_breaks));
            }
        }
    }
}
