//! Conversions between routing state rows and the engine's state types.

use chrono::NaiveDate;
use engine::roster::RepIndex;
use engine::state::{RepState, RotationState, Tally};
use engine::{RepId, Roster};
use serde_json::json;

use crate::rows::{RepStateRow, RotationRow};

fn tally(start: &Option<String>, count: i64) -> Tally {
    Tally {
        period_start: start
            .as_deref()
            .and_then(|text| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()),
        count: u32::try_from(count).unwrap_or(0),
    }
}

pub fn rep_state_from_row(row: &RepStateRow, stats: engine::rep::RepStats) -> RepState {
    RepState {
        open_leads: u32::try_from(row.open_leads).unwrap_or(0),
        day: tally(&row.day_start, row.day_count),
        week: tally(&row.week_start, row.week_count),
        month: tally(&row.month_start, row.month_count),
        last_assigned_at: row
            .last_assigned_at
            .and_then(chrono::DateTime::from_timestamp_micros),
        stats,
    }
}

pub fn rep_state_row(rep: &RepId, state: &RepState) -> RepStateRow {
    let start = |tally: &Tally| tally.period_start.map(|date| date.to_string());
    RepStateRow {
        rep_id: rep.to_string(),
        open_leads: i64::from(state.open_leads),
        day_start: start(&state.day),
        day_count: i64::from(state.day.count),
        week_start: start(&state.week),
        week_count: i64::from(state.week.count),
        month_start: start(&state.month),
        month_count: i64::from(state.month.count),
        last_assigned_at: state.last_assigned_at.map(|time| time.timestamp_micros()),
    }
}

/// A rotation as its row. Credits are kept by roster position in memory and by rep id here,
/// so they survive a roster that changes between loads.
pub fn rotation_row(key: &str, state: &RotationState, roster: &Roster) -> RotationRow {
    RotationRow {
        key: key.to_owned(),
        state: json!({
            "last": state.last.as_ref().map(RepId::as_str),
            "credits": state
                .credits
                .iter()
                .filter(|(position, _)| (*position as usize) < roster.reps().len())
                .map(|(position, credit)| json!([roster.rep(*position).id.as_str(), credit]))
                .collect::<Vec<_>>(),
            "period": state.period.map(|date| date.to_string()),
        })
        .to_string(),
    }
}

/// A rotation row for the roster it is loaded into; credits of reps no longer on it are
/// dropped, as nobody can route to them.
pub fn rotation_from_row(row: &RotationRow, roster: &Roster) -> RotationState {
    let value: serde_json::Value = serde_json::from_str(&row.state).unwrap_or_default();
    let mut credits: Vec<(RepIndex, f64)> = value["credits"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| {
                    Some((roster.position_of(item[0].as_str()?)?, item[1].as_f64()?))
                })
                .collect()
        })
        .unwrap_or_default();
    credits.sort_by_key(|(position, _)| *position);
    credits.dedup_by_key(|(position, _)| *position);
    RotationState {
        last: value["last"].as_str().map(RepId::new),
        credits,
        period: value["period"]
            .as_str()
            .and_then(|text| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()),
    }
}

#[cfg(test)]
mod tests {
    use engine::{Rep, Roster};

    use super::*;

    fn roster(ids: &[&str]) -> Roster {
        Roster::new(
            ids.iter().map(|id| Rep::new(*id, *id)).collect(),
            Vec::new(),
        )
        .expect("roster")
    }

    /// Credits are positions in memory and ids in the row: a rep added in front moves every
    /// position, a rep removed takes their credit along, and the others keep theirs.
    #[test]
    fn rotation_credits_follow_their_reps_across_a_changed_roster() {
        let before = roster(&["b", "c", "d"]);
        let state = RotationState {
            last: Some(RepId::new("c")),
            credits: vec![(0, 1.5), (1, -2.0), (2, 0.5)],
            period: NaiveDate::from_ymd_opt(2026, 11, 30),
        };
        let row = rotation_row("teams:t", &state, &before);
        let after = roster(&["a", "b", "d"]);
        let loaded = rotation_from_row(&row, &after);
        assert_eq!(loaded.credits, vec![(1, 1.5), (2, 0.5)]);
        assert_eq!(loaded.last, state.last);
        assert_eq!(loaded.period, state.period);
        assert_eq!(rotation_from_row(&row, &before), state);
    }
}
