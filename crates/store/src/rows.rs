//! Rows as the tables hold them. Times are microseconds since the epoch, documents JSON text.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct RepRow {
    pub id: String,
    pub name: String,
    pub status: String,
    pub document: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct TeamRow {
    pub id: String,
    pub name: String,
    pub document: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct RuleSetRow {
    pub version: i64,
    pub name: Option<String>,
    pub document: String,
    /// `draft`, `published` (the active one) or `retired`.
    pub status: String,
    pub created_at: i64,
    pub published_at: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct PoolRow {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct CustomFieldRow {
    /// `lead` or `rep`.
    pub entity: String,
    pub name: String,
    pub field_type: String,
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct LeadRow {
    pub id: String,
    pub external_id: Option<String>,
    pub document: String,
    pub status: String,
    pub owner_id: Option<String>,
    pub team_id: Option<String>,
    pub pool_id: Option<String>,
    pub held: bool,
    pub source: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    /// JSON array of tags.
    pub tags: String,
    pub score: Option<f64>,
    pub priority: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct DecisionRow {
    pub id: String,
    pub lead_id: String,
    /// `route`, `reroute` or `manual`.
    pub kind: String,
    /// `system`, or the API key that acted.
    pub actor: String,
    pub reason: Option<String>,
    pub rule_set_version: Option<i64>,
    pub outcome: String,
    pub owner_id: Option<String>,
    /// The engine's `DecisionRecord` as JSON.
    pub record: String,
    pub created_at: i64,
    /// `{"en": …, "zh": …}`.
    pub explanation: String,
}

#[derive(Clone, Debug, Default, PartialEq, sqlx::FromRow)]
pub struct RepStateRow {
    pub rep_id: String,
    pub open_leads: i64,
    pub day_start: Option<String>,
    pub day_count: i64,
    pub week_start: Option<String>,
    pub week_count: i64,
    pub month_start: Option<String>,
    pub month_count: i64,
    pub last_assigned_at: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct RotationRow {
    pub key: String,
    pub state: String,
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub id: String,
    pub name: String,
    /// The first characters of the key, to recognise it in lists.
    pub prefix: String,
    /// SHA-256 of the whole key, hex.
    pub hash: String,
    /// `admin` or `integration`.
    pub role: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// Filters for listing leads; all optional.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LeadFilter {
    pub owner_id: Option<String>,
    pub team_id: Option<String>,
    pub status: Option<String>,
    pub tag: Option<String>,
    pub source: Option<String>,
    pub created_from: Option<i64>,
    pub created_to: Option<i64>,
    pub q: Option<String>,
    /// Leads with ids below this one (ids sort by creation time).
    pub before_id: Option<String>,
    pub limit: i64,
}
