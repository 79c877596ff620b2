//! Least loaded: fewest open leads, or most room under the holding cap. Ties go to the rep
//! idle longest, then to rep order.

use super::{Choice, LoadMeasure, Pick, TieBreak, idle_key, rank};

/// Free capacity of a rep without a holding cap: more than any capped rep can have.
const UNCAPPED_ROOM: f64 = 1e9;

pub(super) fn pick(input: &Pick<'_>, measure: LoadMeasure) -> Choice {
    let scores: Vec<f64> = input
        .candidates
        .iter()
        .map(|(position, _)| {
            let open = f64::from(input.rep_state(*position).open_leads);
            match measure {
                LoadMeasure::OpenLeads => -open,
                LoadMeasure::FreeCapacity => input
                    .roster
                    .rep(*position)
                    .caps
                    .max_open
                    .map_or(UNCAPPED_ROOM, |cap| f64::from(cap) - open),
            }
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
