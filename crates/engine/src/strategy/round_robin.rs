//! Round robin: exact rotation in rep-id order. The pointer is the last rep served, kept as
//! explicit state, so the rotation continues where it left off even when that rep has left.

use super::{Choice, Pick, Scored};
use crate::state::RotationState;

pub(super) fn pick(input: &Pick<'_>) -> Choice {
    let previous = input.rotation();
    let start = match previous.and_then(|rotation| rotation.last.as_ref()) {
        None => 0,
        Some(last) => match input.roster.position(last) {
            Some(position) => position + 1,
            None => input.roster.position_after(last),
        },
    };
    let next = input
        .candidates
        .partition_point(|(position, _)| *position < start);
    let winner = if next == input.candidates.len() {
        0
    } else {
        next
    };
    let rep = input.candidates[winner].0;
    Choice {
        winner,
        leading: vec![Scored {
            rep,
            score: 0.0,
            parts: Vec::new(),
        }],
        tie_break: None,
        rotation: Some(RotationState {
            last: Some(input.roster.rep(rep).id.clone()),
            ..previous.cloned().unwrap_or_default()
        }),
    }
}
