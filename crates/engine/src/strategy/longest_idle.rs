//! Longest idle: the rep whose last assignment is oldest gets the lead; reps never assigned
//! come first, in rep order.

use super::{Choice, Pick, rank};

pub(super) fn pick(input: &Pick<'_>) -> Choice {
    let scores: Vec<f64> = input
        .candidates
        .iter()
        .map(|(position, _)| {
            input
                .rep_state(*position)
                .last_assigned_at
                .map_or(f64::MAX, |time| -(time.timestamp_micros() as f64))
        })
        .collect();
    let (winner, leading, tie_break) = rank(input, &scores, &[]);
    Choice {
        winner,
        leading,
        tie_break,
        rotation: None,
    }
}
