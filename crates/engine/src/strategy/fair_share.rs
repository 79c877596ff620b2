//! Fair share: each candidate's target share is their weight over the total; the rep furthest
//! below target on the leads of the window (day, week or month, in their own time zone) wins.
//! The deficit of rep i is `t_i · (N + 1) − c_i` with `N` the candidates' leads in the window.
//!
//! A rep who fell far behind (back from leave, or newly added) would take every lead until
//! level. The catch-up policy bounds that: a rep lagging the leader's pace by more than the
//! allowance has the excess forgiven, and the forgiven leads are remembered as rotation
//! credits for the rest of the window, so they count as if received.

use super::{CatchUp, Choice, Pick, TieBreak, WeightSource, idle_key, performance_weights, rank};
use crate::hours::Period;
use crate::roster::RepIndex;
use crate::state::RotationState;

pub(super) fn pick(
    input: &Pick<'_>,
    window: Period,
    catch_up: CatchUp,
    source: &WeightSource,
) -> Choice {
    let mut weights = performance_weights(input, source);
    if weights.iter().all(|weight| *weight <= 0.0) {
        weights.iter_mut().for_each(|weight| *weight = 1.0);
    }
    let total_weight: f64 = weights.iter().sum();
    let shares: Vec<f64> = weights.iter().map(|weight| weight / total_weight).collect();
    // Credits belong to one window period, read in the zone of the first candidate.
    let period = input.local(input.candidates[0].0).period_start(window);
    // Under full catch-up nothing is forgiven, including what a stricter policy forgave earlier.
    let previous = input
        .rotation()
        .filter(|rotation| rotation.period == Some(period) && catch_up != CatchUp::Full);
    // Candidates and stored credits are both in roster order: one walk reads the credits.
    let mut stored = previous
        .map_or(&[][..], |rotation| &rotation.credits[..])
        .iter()
        .peekable();
    let mut counted: Vec<f64> = input
        .candidates
        .iter()
        .map(|&(position, _)| {
            let count = input
                .rep_state(position)
                .count(window, input.local(position));
            while stored.next_if(|(stored, _)| *stored < position).is_some() {}
            let forgiven = stored
                .next_if(|(stored, _)| *stored == position)
                .map_or(0.0, |(_, credit)| *credit);
            f64::from(count) + forgiven
        })
        .collect();
    let allowance = match catch_up {
        CatchUp::Full => None,
        CatchUp::None => Some(1.0),
        CatchUp::Capped(extra) => Some(f64::from(extra).max(1.0)),
    };
    let mut rotation = None;
    if let Some(allowance) = allowance {
        // The leader's pace: the total their count stands for at their share.
        let pace = counted
            .iter()
            .zip(&shares)
            .map(|(count, share)| count / share)
            .fold(0.0_f64, f64::max);
        // Candidates are in roster order, so the forgiven leads come out sorted and merge
        // into the stored credits in one pass.
        let mut forgiven = Vec::with_capacity(counted.len());
        for ((count, share), &(position, _)) in
            counted.iter_mut().zip(&shares).zip(input.candidates)
        {
            let lag = share * pace - *count;
            if lag > allowance + 1e-9 {
                let forgive = lag - allowance;
                *count += forgive;
                forgiven.push((position, forgive));
            }
        }
        let stored: &[(RepIndex, f64)] = previous.map_or(&[], |rotation| &rotation.credits);
        let changed = !forgiven.is_empty() || (previous.is_none() && input.rotation().is_some());
        let credits = if forgiven.is_empty() {
            stored.to_vec()
        } else {
            merge(stored, forgiven)
        };
        if changed {
            rotation = Some(RotationState {
                credits,
                period: Some(period),
                ..input.rotation().cloned().unwrap_or_default()
            });
        }
    }
    let total: f64 = counted.iter().sum();
    let scores: Vec<f64> = counted
        .iter()
        .zip(&shares)
        .map(|(count, share)| share * (total + 1.0) - count)
        .collect();
    let idle = |position: usize| idle_key(input, position);
    let (winner, leading, tie_break) = rank(input, &scores, &[(TieBreak::LongestIdle, &idle)]);
    Choice {
        winner,
        leading,
        tie_break,
        rotation,
    }
}

/// Merges two position-sorted credit lists, adding the credits of reps in both.
fn merge(stored: &[(RepIndex, f64)], added: Vec<(RepIndex, f64)>) -> Vec<(RepIndex, f64)> {
    let mut merged = Vec::with_capacity(stored.len() + added.len());
    let mut stored = stored.iter().peekable();
    for (position, credit) in added {
        while let Some(earlier) = stored.next_if(|(stored, _)| *stored < position) {
            merged.push(*earlier);
        }
        let previous = stored
            .next_if(|(stored, _)| *stored == position)
            .map_or(0.0, |(_, credit)| *credit);
        merged.push((position, previous + credit));
    }
    merged.extend(stored.copied());
    merged
}
