//! Best match: a weighted score over how well the rep matches the lead's preferences, their
//! smoothed conversion, response speed, feedback and current load — and, for a lead a published
//! model scored, its win probability times the rep's conversion, so the leads most likely to
//! close go to the reps who close most. Ties go to the rep furthest below their fair share this
//! month, then the one idle longest.

use super::performance::Statistics;
use super::{BestMatchWeights, Choice, Pick, TieBreak, idle_key, rank};
use crate::hours::Period;

pub(super) fn pick(input: &Pick<'_>, weights: &BestMatchWeights) -> Choice {
    let statistics = Statistics::of(input);
    let best_conversion = statistics
        .conversion
        .iter()
        .copied()
        .fold(0.0_f64, f64::max);
    let most_open = input
        .candidates
        .iter()
        .map(|(position, _)| input.rep_state(*position).open_leads)
        .max()
        .unwrap_or(0);
    // Each candidate's dimensions, as (name, weight, value); the win-probability dimension
    // only when a model scored the lead.
    let count = if input.win_probability.is_some() {
        6
    } else {
        5
    };
    // Reciprocals taken once: three divisions per candidate were a visible part of a route.
    let (conversion_scale, conversion_floor) = if best_conversion > 0.0 {
        (1.0 / best_conversion, 0.0)
    } else {
        (0.0, 0.5)
    };
    let load_scale = 1.0 / (f64::from(most_open) + 1.0);
    let dimensions = |position: usize| -> [(&'static str, f64, f64); 6] {
        let open = input.rep_state(input.candidates[position].0).open_leads;
        let conversion = statistics.conversion[position] * conversion_scale + conversion_floor;
        [
            ("matching", weights.matching, input.matching[position]),
            ("conversion", weights.conversion, conversion),
            ("response", weights.response, statistics.response[position]),
            ("feedback", weights.feedback, statistics.feedback[position]),
            ("load", weights.load, 1.0 - f64::from(open) * load_scale),
            (
                "win_probability",
                weights.win_probability,
                input.win_probability.unwrap_or(0.0) * conversion,
            ),
        ]
    };
    let per_weight = 1.0
        / dimensions(0)[..count]
            .iter()
            .map(|(_, weight, _)| weight)
            .sum::<f64>()
            .max(f64::MIN_POSITIVE);
    let scores: Vec<f64> = (0..input.candidates.len())
        .map(|position| {
            dimensions(position)[..count]
                .iter()
                .map(|(_, weight, value)| weight * value)
                .sum::<f64>()
                * per_weight
        })
        .collect();
    let month_share = |position: usize| {
        let (rep, weight) = input.candidates[position];
        let count = input.rep_state(rep).count(Period::Month, input.local(rep));
        f64::from(count) / weight.max(f64::MIN_POSITIVE)
    };
    let idle = |position: usize| idle_key(input, position);
    let (winner, mut leading, tie_break) = rank(
        input,
        &scores,
        &[
            (TieBreak::FairShare, &month_share),
            (TieBreak::LongestIdle, &idle),
        ],
    );
    for scored in &mut leading {
        let position = input
            .candidates
            .iter()
            .position(|(rep, _)| *rep == scored.rep)
            .unwrap_or_default();
        scored.parts = dimensions(position)[..count]
            .iter()
            .map(|(name, _, value)| (*name, *value))
            .collect();
    }
    Choice {
        winner,
        leading,
        tie_break,
        rotation: None,
    }
}
