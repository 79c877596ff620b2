//! Reps (销售): skills, weight, caps, working hours, status and leave.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use chrono::NaiveDate;
use chrono_tz::Tz;

use crate::hours::WeeklyHours;
use crate::value::Value;

/// A rep's stable id, chosen by the store. Shared, so rotation state can hold many without
/// allocating.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RepId(Arc<str>);

impl RepId {
    pub fn new(id: impl Into<String>) -> RepId {
        RepId(Arc::from(id.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether a rep takes new leads at all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RepStatus {
    #[default]
    Active,
    Paused,
    OnLeave,
    Inactive,
}

impl RepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RepStatus::Active => "active",
            RepStatus::Paused => "paused",
            RepStatus::OnLeave => "on_leave",
            RepStatus::Inactive => "inactive",
        }
    }

    pub fn parse(text: &str) -> Option<RepStatus> {
        Some(match text {
            "active" => RepStatus::Active,
            "paused" => RepStatus::Paused,
            "on_leave" => RepStatus::OnLeave,
            "inactive" => RepStatus::Inactive,
            _ => return None,
        })
    }
}

/// A leave period, whole days in the rep's time zone, both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leave {
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
}

/// Per-rep limits. `None` means no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caps {
    /// Open leads held at once (保有量).
    pub max_open: Option<u32>,
    pub max_per_day: Option<u32>,
    pub max_per_week: Option<u32>,
    pub max_per_month: Option<u32>,
    /// Floors (下限): a rep below one is preferred until it is met.
    pub min_per_week: Option<u32>,
    pub min_per_month: Option<u32>,
}

/// Performance statistics the store keeps per rep; they feed best match and performance
/// weighting.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RepStats {
    /// Leads that reached won, lost or invalid.
    pub closed: u32,
    pub won: u32,
    /// Typical first-response time in seconds, when known: the mean over the rep's leads with
    /// each response capped at one day, so one lead forgotten over a holiday does not dominate.
    pub response_secs: Option<u32>,
    /// Customer feedback mapped to 0..=1, when known.
    pub feedback: Option<f64>,
}

/// A rep as configured by a manager.
#[derive(Clone, Debug, PartialEq)]
pub struct Rep {
    pub id: RepId,
    pub name: String,
    pub status: RepStatus,
    pub leaves: Vec<Leave>,
    pub regions: Vec<String>,
    pub industries: Vec<String>,
    pub products: Vec<String>,
    pub languages: Vec<String>,
    pub level: u8,
    /// Base weight for weighted strategies; a team member weight overrides it.
    pub weight: f64,
    pub caps: Caps,
    pub time_zone: Tz,
    /// Working hours in `time_zone`; `None` means always available.
    pub hours: Option<WeeklyHours>,
    pub attributes: BTreeMap<String, Value>,
}

impl Rep {
    /// A rep with defaults: active, weight 1, no caps, always available, Shanghai time.
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> Rep {
        Rep {
            id: RepId::new(id),
            name: name.into(),
            status: RepStatus::Active,
            leaves: Vec::new(),
            regions: Vec::new(),
            industries: Vec::new(),
            products: Vec::new(),
            languages: Vec::new(),
            level: 1,
            weight: 1.0,
            caps: Caps::default(),
            time_zone: chrono_tz::Asia::Shanghai,
            hours: None,
            attributes: BTreeMap::new(),
        }
    }
}
