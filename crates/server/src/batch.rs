//! Batch assignment (批量最优分配) as the surfaces ask for it: the mode and band a request
//! names, checked once, and the plan's summary as the API, the CLI and the console show it.
//! The planning itself is `engine::batch`, run inside the routing worker's transaction.

use serde_json::{Value, json};

use crate::error::ApiError;

/// How a batch of leads is placed.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Mode {
    /// One lead at a time, in the order given (intake's way).
    #[default]
    Arrival,
    /// As a whole: the exact optimum of value × fit under caps and the fairness band.
    Optimal(engine::batch::Settings),
}

pub use engine::batch::DEFAULT_BAND;

/// Reads `mode` (`arrival` | `optimal`) and `band` (a share 0–1, or `"none"`; only with
/// `optimal`, where it means something).
pub fn mode(mode: Option<&str>, band: Option<&Value>) -> Result<Mode, ApiError> {
    let explicit_band = band.is_some_and(|band| !band.is_null());
    let band = match band {
        None | Some(Value::Null) => Some(DEFAULT_BAND),
        Some(Value::String(text)) if text == "none" => None,
        Some(Value::Number(number)) => match number.as_f64() {
            Some(share) if (0.0..=1.0).contains(&share) => Some(share),
            _ => return Err(band_error()),
        },
        Some(_) => return Err(band_error()),
    };
    match mode {
        None | Some("arrival") if explicit_band => Err(ApiError::invalid(
            "invalid_value",
            "band",
            "a band applies to an optimal batch: set mode to optimal",
        )),
        None | Some("arrival") => Ok(Mode::Arrival),
        Some("optimal") => Ok(Mode::Optimal(engine::batch::Settings {
            band,
            default_amount: 1.0,
        })),
        Some(_) => Err(ApiError::invalid(
            "invalid_value",
            "mode",
            "mode is arrival (one by one, in order) or optimal (the batch as a whole)",
        )),
    }
}

fn band_error() -> ApiError {
    ApiError::invalid(
        "invalid_value",
        "band",
        "band is a share from 0 to 1 (0.1: each rep within ±10% of their share) or \"none\"",
    )
}

fn round(number: f64) -> f64 {
    // Plus zero: an empty sum is -0.0, which reads oddly.
    (number * 1000.0).round() / 1000.0 + 0.0
}

/// The plan's summary: counts, the objective beside one-by-one routing and the arrival-order
/// greedy, and each rep's share.
pub fn summary_view(summary: &engine::batch::Summary) -> Value {
    json!({
        "leads": summary.leads,
        "optimised": summary.optimised,
        "placed": summary.placed,
        "unplaced": summary.unplaced,
        "objective": round(summary.objective),
        "one_by_one_objective": round(summary.one_by_one),
        "greedy_objective": round(summary.greedy),
        "one_by_one_gap": round(summary.one_by_one_gap),
        "greedy_gap": round(summary.greedy_gap),
        "lower_bounds": {"met": summary.lower_met, "asked": summary.lower_asked},
        "reps": summary.reps.iter().map(|rep| json!({
            "rep_id": rep.rep.as_str(),
            "leads": rep.leads,
            "lower": rep.lower,
            "upper": (rep.upper != u32::MAX).then_some(rep.upper),
            "room": rep.room,
        })).collect::<Vec<_>>(),
    })
}
