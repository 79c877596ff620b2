//! Fair share: each candidate's target share is their weight over the total; the rep furthest
//! below target on the leads of the window (day, week or month, in their own time zone) wins.
//! The deficit of rep i is `t_i · (N + 1) − c_i` with `N` the candidates' leads in the window.
//! A rep who fell far behind (leave, newly added) is lifted per the catch-up policy, so that
//! "capped" lets them take at most a few leads above their share.

use super::{CatchUp, Choice, Pick, TieBreak, WeightSource, idle_key, performance_weights, rank};
use crate::hours::Period;

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
    let counts: Vec<f64> = input
        .candidates
        .iter()
        .map(|(position, _)| {
            f64::from(
                input
                    .rep_state(*position)
                    .count(window, input.local(*position)),
            )
        })
        .collect();
    let total: f64 = counts.iter().sum();
    let scores: Vec<f64> = counts
        .iter()
        .zip(&weights)
        .map(|(count, weight)| {
            let share = weight / total_weight;
            let on_target = share * total;
            let counted = match catch_up {
                CatchUp::Full => *count,
                CatchUp::None => count.max(on_target),
                CatchUp::Capped(extra) => count.max(on_target - f64::from(extra)),
            };
            share * (total + 1.0) - counted
        })
        .collect();
    let idle = |position: usize| idle_key(input, position);
    let (winner, leading, tie_break) = rank(input, &scores, &[(TieBreak::LongestIdle, &idle)]);
    Choice {
        winner,
        leading,
        tie_break,
        rotation: None,
    }
}
