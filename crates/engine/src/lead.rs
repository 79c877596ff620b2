//! The lead as the engine sees it: contact, firmographics, custom attributes, tags and score.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};

use crate::rep::RepId;
use crate::value::Value;

/// A prospective customer record (线索). The service builds it from validated intake; the
/// engine only reads it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Lead {
    pub contact: Contact,
    pub company: Option<String>,
    pub title: Option<String>,
    pub country: Option<String>,
    pub province: Option<String>,
    pub city: Option<String>,
    /// A sales region such as 华东 or 华南.
    pub region: Option<String>,
    pub industry: Option<String>,
    /// Employees.
    pub company_size: Option<f64>,
    pub source: Option<String>,
    pub campaign: Option<String>,
    pub product: Option<String>,
    pub demand: Option<String>,
    pub budget: Option<f64>,
    pub urgency: Option<String>,
    /// Custom attributes, typed by the field catalogue.
    pub attributes: BTreeMap<String, Value>,
    pub tags: Vec<String>,
    pub score: Option<f64>,
    /// The learned model's win probability (0–1) as last scored; routing scores it again
    /// when a model is active.
    pub win_probability: Option<f64>,
    pub priority: Option<Priority>,
    pub status: LeadStatus,
    /// The current owner, when the lead is being reassigned.
    pub owner: Option<RepId>,
    /// The owner of the known customer this lead matched (phone, email or company), which
    /// owner affinity prefers.
    pub known_owner: Option<RepId>,
    /// The known owner is tried first under whichever rule matches, even a rule without owner
    /// affinity or one that sends leads to a pool: the workspace's duplicate policy found this
    /// customer's lead with that owner.
    pub owner_affinity: bool,
    pub created_at: Option<DateTime<Utc>>,
}

/// Contact data. Personal: it never appears in logs or explanations.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Contact {
    pub name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub wechat: Option<String>,
}

/// The lead lifecycle: new → assigned → contacted → qualified → won / lost / invalid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LeadStatus {
    #[default]
    New,
    Assigned,
    Contacted,
    Qualified,
    Won,
    Lost,
    Invalid,
}

impl LeadStatus {
    pub const ALL: [LeadStatus; 7] = [
        LeadStatus::New,
        LeadStatus::Assigned,
        LeadStatus::Contacted,
        LeadStatus::Qualified,
        LeadStatus::Won,
        LeadStatus::Lost,
        LeadStatus::Invalid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LeadStatus::New => "new",
            LeadStatus::Assigned => "assigned",
            LeadStatus::Contacted => "contacted",
            LeadStatus::Qualified => "qualified",
            LeadStatus::Won => "won",
            LeadStatus::Lost => "lost",
            LeadStatus::Invalid => "invalid",
        }
    }

    pub fn parse(text: &str) -> Option<LeadStatus> {
        LeadStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
    }

    /// Open leads count against a rep's holding cap (保有量).
    pub fn is_open(self) -> bool {
        matches!(
            self,
            LeadStatus::New | LeadStatus::Assigned | LeadStatus::Contacted | LeadStatus::Qualified
        )
    }
}

impl fmt::Display for LeadStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A priority tier, set by scoring rules or given at intake. Ordered: `Urgent` is highest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    Low,
    #[default]
    Normal,
    High,
    Urgent,
}

impl Priority {
    pub const ALL: [Priority; 4] = [
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Urgent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }

    pub fn parse(text: &str) -> Option<Priority> {
        Priority::ALL
            .into_iter()
            .find(|priority| priority.as_str() == text)
    }

    pub fn zh(self) -> &'static str {
        match self {
            Priority::Low => "低",
            Priority::Normal => "中",
            Priority::High => "高",
            Priority::Urgent => "紧急",
        }
    }
}

/// The customer segment statistics are kept by, from the company's size: `smb` (under 100),
/// `mid_market` (under 1,000), `enterprise`, or `unknown`.
pub fn size_segment(company_size: Option<f64>) -> &'static str {
    match company_size {
        None => "unknown",
        Some(size) if size < 100.0 => "smb",
        Some(size) if size < 1000.0 => "mid_market",
        Some(_) => "enterprise",
    }
}
