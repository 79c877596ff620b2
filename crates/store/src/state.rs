//! Conversions between routing state rows and the engine's state types.

use chrono::NaiveDate;
use engine::RepId;
use engine::state::{RepState, RotationState, Tally};
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

pub fn rotation_row(key: &str, state: &RotationState) -> RotationRow {
    RotationRow {
        key: key.to_owned(),
        state: json!({
            "last": state.last.as_ref().map(RepId::as_str),
            "credits": state.credits.iter().map(|(id, credit)| json!([id.as_str(), credit])).collect::<Vec<_>>(),
            "period": state.period.map(|date| date.to_string()),
        })
        .to_string(),
    }
}

pub fn rotation_from_row(row: &RotationRow) -> RotationState {
    let value: serde_json::Value = serde_json::from_str(&row.state).unwrap_or_default();
    let mut credits: Vec<(RepId, f64)> = value["credits"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| Some((RepId::new(item[0].as_str()?), item[1].as_f64()?)))
                .collect()
        })
        .unwrap_or_default();
    credits.sort_by(|left, right| left.0.cmp(&right.0));
    RotationState {
        last: value["last"].as_str().map(RepId::new),
        credits,
        period: value["period"]
            .as_str()
            .and_then(|text| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()),
    }
}
