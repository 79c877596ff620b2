//! Batch assignment (批量最优分配) as the surfaces ask for it: the mode and band a request
//! names, checked once, and the plan's summary as the API, the CLI and the console show it.
//! The planning itself is `engine::batch`, run inside the routing worker's transaction.

use chrono::{DateTime, Utc};
use engine::LeadStatus;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::routing::Kept;

/// How a batch of leads is placed.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Mode {
    /// One lead at a time, in the order given (intake's way).
    #[default]
    Arrival,
    /// As a whole: the exact optimum of value × fit under caps and the fairness band.
    Optimal(engine::batch::Settings),
    /// Moving in from another CRM: each lead keeps its owner, status and times, unrouted.
    Migrate,
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
        None | Some("arrival" | "migrate") if explicit_band => Err(ApiError::invalid(
            "invalid_value",
            "band",
            "a band applies to an optimal batch: set mode to optimal",
        )),
        Some("migrate") => Ok(Mode::Migrate),
        None | Some("arrival") => Ok(Mode::Arrival),
        Some("optimal") => Ok(Mode::Optimal(engine::batch::Settings {
            band,
            default_amount: 1.0,
        })),
        Some(_) => Err(ApiError::invalid(
            "invalid_value",
            "mode",
            "mode is arrival (one by one, in order), optimal (the batch as a whole) or migrate (kept as in the CRM it comes from)",
        )),
    }
}

/// The fields a migrated lead carries beside its own: whose it is, its status, when it came in
/// and when it was last followed up.
pub const MIGRATION_FIELDS: [&str; 4] = ["owner", "status", "created_at", "last_follow_up_at"];

/// Finds the rep a migrated lead's owner names: by id, by email (the rep's contact email,
/// any case) or by name, in that order; a name two reps share is refused.
#[derive(Debug, Default)]
pub struct Owners {
    ids: Vec<String>,
    emails: std::collections::HashMap<String, String>,
    names: std::collections::HashMap<String, Vec<String>>,
}

impl Owners {
    pub fn new(reps: &[store::RepRow]) -> Owners {
        let mut owners = Owners::default();
        for rep in reps {
            owners.ids.push(rep.id.clone());
            let email = serde_json::from_str::<crate::workspace::RepDocument>(&rep.document)
                .ok()
                .and_then(|document| document.contact?.email);
            if let Some(email) = email {
                owners.emails.insert(email.to_lowercase(), rep.id.clone());
            }
            owners
                .names
                .entry(rep.name.trim().to_owned())
                .or_default()
                .push(rep.id.clone());
        }
        owners
    }

    pub fn find(&self, owner: &str) -> Result<String, ApiError> {
        let owner = owner.trim();
        if self.ids.iter().any(|id| id == owner) {
            return Ok(owner.to_owned());
        }
        if let Some(id) = self.emails.get(&owner.to_lowercase()) {
            return Ok(id.clone());
        }
        match self.names.get(owner).map(Vec::as_slice) {
            Some([id]) => Ok(id.clone()),
            Some([_, _, ..]) => Err(ApiError::invalid(
                "ambiguous_owner",
                "owner",
                "two reps have this name: give the owner's id or email",
            )),
            _ => Err(ApiError::invalid(
                "unknown_owner",
                "owner",
                "no rep has this id, email or name",
            )),
        }
    }
}

/// The zone times without an offset are read in: China's, where the CRMs exporting them are.
pub const EXPORT_ZONE: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

/// A time as CRMs export it: RFC 3339, or `YYYY-MM-DD HH:MM[:SS]` / `YYYY-MM-DD` read in
/// `zone` (the workspace's, China's by default).
fn exported_time(text: &str, field: &str, zone: chrono_tz::Tz) -> Result<DateTime<Utc>, ApiError> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    let naive = [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y/%m/%d %H:%M:%S",
        "%Y/%m/%d %H:%M",
    ]
    .iter()
    .find_map(|format| chrono::NaiveDateTime::parse_from_str(text, format).ok())
    .or_else(|| {
        ["%Y-%m-%d", "%Y/%m/%d"].iter().find_map(|format| {
            chrono::NaiveDate::parse_from_str(text, format)
                .ok()
                .and_then(|date| date.and_hms_opt(0, 0, 0))
        })
    })
    .ok_or_else(|| {
        ApiError::invalid(
            "invalid_value",
            field,
            "expected a time such as 2026-03-01 09:30 or RFC 3339",
        )
    })?;
    use chrono::TimeZone as _;
    zone.from_local_datetime(&naive)
        .earliest()
        .map(|at| at.with_timezone(&Utc))
        .ok_or_else(|| ApiError::invalid("invalid_value", field, "no such local time"))
}

/// Statuses as CRMs name them, in English or Chinese.
fn exported_status(text: &str) -> Result<LeadStatus, ApiError> {
    let text = text.trim();
    let status = match text {
        "" | "已分配" | "待跟进" | "未跟进" => Some(LeadStatus::Assigned),
        "跟进中" | "已联系" | "contacting" => Some(LeadStatus::Contacted),
        "已确认" | "有意向" | "合格" => Some(LeadStatus::Qualified),
        "赢单" | "已成交" | "成交" => Some(LeadStatus::Won),
        "输单" | "丢单" | "已流失" => Some(LeadStatus::Lost),
        "无效" => Some(LeadStatus::Invalid),
        other => LeadStatus::parse(&other.to_lowercase()),
    };
    status.filter(|status| *status != LeadStatus::New).ok_or_else(|| {
        ApiError::invalid(
            "invalid_value",
            "status",
            "status is assigned, contacted, qualified, won, lost or invalid (or 跟进中, 赢单, …)",
        )
    })
}

/// A migrated lead from its document (an API item, a CSV row): what it keeps is taken out,
/// then the rest is checked and normalised as any lead is.
pub fn migrated(
    mut document: serde_json::Map<String, Value>,
    owners: &Owners,
) -> Result<(crate::leads::LeadInput, Kept), ApiError> {
    let kept = kept(&mut document, owners)?;
    let bytes = serde_json::to_vec(&document).map_err(ApiError::internal)?;
    let lead = crate::extract::parse::<crate::leads::LeadInput>(&bytes)?.normalised()?;
    Ok((lead, kept))
}

/// Takes the migration fields out of a lead document: what the lead keeps.
fn kept(document: &mut serde_json::Map<String, Value>, owners: &Owners) -> Result<Kept, ApiError> {
    let zone = EXPORT_ZONE;
    let mut text = |field: &str| -> Result<Option<String>, ApiError> {
        match document.remove(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(ApiError::invalid("invalid_value", field, "expected text")),
        }
    };
    let owner = text("owner")?.ok_or_else(|| {
        ApiError::invalid(
            "missing_field",
            "owner",
            "a migrated lead names its owner: a rep's id, email or name",
        )
    })?;
    let status = text("status")?;
    let created = text("created_at")?.ok_or_else(|| {
        ApiError::invalid(
            "missing_field",
            "created_at",
            "a migrated lead keeps when it came in",
        )
    })?;
    let last = text("last_follow_up_at")?;
    let now = Utc::now();
    let past = |at: DateTime<Utc>, field: &str| {
        if at > now {
            return Err(ApiError::invalid(
                "invalid_value",
                field,
                "a migrated lead's times are not in the future",
            ));
        }
        Ok(at)
    };
    let created_at = past(exported_time(&created, "created_at", zone)?, "created_at")?;
    let last_follow_up = match last {
        Some(last) => Some(past(
            exported_time(&last, "last_follow_up_at", zone)?,
            "last_follow_up_at",
        )?),
        None => None,
    };
    if last_follow_up.is_some_and(|last| last < created_at) {
        return Err(ApiError::invalid(
            "invalid_value",
            "last_follow_up_at",
            "the last follow-up is not before the lead came in",
        ));
    }
    Ok(Kept {
        owner_id: owners.find(&owner)?,
        status: exported_status(status.as_deref().unwrap_or_default())?,
        created_at,
        last_follow_up,
    })
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
