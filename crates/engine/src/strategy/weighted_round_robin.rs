//! Smooth weighted round robin (as in nginx): every eligible candidate gains its weight, the
//! one with the most credit wins and pays the total. Deterministic, evenly interleaved, and
//! exact: weights 1:2 over six leads give 2 and 4. Credits are explicit rotation state; reps
//! who are not eligible keep theirs untouched, so a rep back from leave is not flooded.

use std::cmp::Ordering;

use super::{Choice, Pick, Scored, WeightSource, performance_weights};
use crate::roster::RepIndex;
use crate::state::RotationState;

pub(super) fn pick(input: &Pick<'_>, source: &WeightSource) -> Choice {
    let mut weights = performance_weights(input, source);
    if weights.iter().all(|weight| *weight <= 0.0) {
        weights.iter_mut().for_each(|weight| *weight = 1.0);
    }
    let total: f64 = weights.iter().sum();
    let previous = input.rotation();
    let old_credits: &[(RepIndex, f64)] = previous.map_or(&[], |rotation| &rotation.credits);

    // Candidates and stored credits are both in roster order: one merge reads and rewrites
    // them.
    let mut credits = Vec::with_capacity(old_credits.len().max(input.candidates.len()));
    let mut current = Vec::with_capacity(input.candidates.len());
    let mut slots = Vec::with_capacity(input.candidates.len());
    let mut stored = old_credits.iter().peekable();
    for (&(position, _), weight) in input.candidates.iter().zip(&weights) {
        let mut credit = 0.0;
        while let Some(&&(stored_position, stored_credit)) = stored.peek() {
            match stored_position.cmp(&position) {
                Ordering::Less => {
                    credits.push((stored_position, stored_credit));
                    stored.next();
                }
                Ordering::Equal => {
                    credit = stored_credit;
                    stored.next();
                    break;
                }
                Ordering::Greater => break,
            }
        }
        current.push(credit + weight);
        slots.push(credits.len());
        credits.push((position, 0.0));
    }
    credits.extend(stored.copied());

    let mut winner = 0;
    for (position, credit) in current.iter().enumerate() {
        if *credit > current[winner] + 1e-9 {
            winner = position;
        }
    }
    let scores = current.clone();
    current[winner] -= total;
    for (slot, credit) in slots.into_iter().zip(current) {
        credits[slot].1 = credit;
    }
    let rep = input.candidates[winner].0;
    Choice {
        winner,
        leading: vec![Scored {
            rep,
            score: scores[winner],
            parts: vec![("weight", weights[winner])],
        }],
        tie_break: None,
        rotation: Some(RotationState {
            last: Some(input.roster.rep(rep).id.clone()),
            credits,
            period: None,
        }),
    }
}
