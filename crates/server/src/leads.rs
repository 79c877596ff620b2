//! Leads on the wire: the intake document (validated and normalised), the view the API
//! returns, and the conversion to the engine's lead.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use engine::field::parse_attributes;
use engine::lead::{Contact, Lead, LeadStatus, Priority};
use engine::{FieldCatalogue, RepId};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use store::{DecisionRow, LeadRow};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::normalize;

const MAX_TEXT: usize = 1000;
const MAX_TAGS: usize = 50;

/// A lead as integrators send it. Unknown fields are refused.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadInput {
    /// The caller's id for the lead: a second lead with the same id is a duplicate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A Chinese mobile or an international number; stored as E.164.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wechat: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub province: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// A sales region such as 华东; derived from the province when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub industry: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_size: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub demand: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urgency: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// 0–100; scoring rules may replace it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// `urgent`, `high`, `normal` or `low`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    /// Custom fields declared in the workspace's field catalogue.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(value_type = Object)]
    pub attributes: BTreeMap<String, serde_json::Value>,
}

fn text(value: &Option<String>, field: &str) -> Result<Option<String>, ApiError> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) if text.chars().count() > MAX_TEXT => Err(ApiError::invalid(
            "too_long",
            field,
            format!("{field} is at most {MAX_TEXT} characters"),
        )),
        Some(text) => Ok(Some(text.to_owned())),
    }
}

fn number(value: Option<f64>, field: &str) -> Result<Option<f64>, ApiError> {
    match value {
        Some(number) if !(number.is_finite() && number >= 0.0) => Err(ApiError::invalid(
            "invalid_value",
            field,
            format!("{field} is a number of at least 0"),
        )),
        other => Ok(other),
    }
}

impl LeadInput {
    /// Validates and normalises the document in place of the raw one. Custom attributes are
    /// checked against the catalogue when the lead is routed.
    pub fn normalised(&self) -> Result<LeadInput, ApiError> {
        let external_id = text(&self.external_id, "external_id")?;
        if external_id.as_ref().is_some_and(|id| id.len() > 200) {
            return Err(ApiError::invalid(
                "too_long",
                "external_id",
                "external_id is at most 200 bytes",
            ));
        }
        let phone = text(&self.phone, "phone")?
            .map(|phone| {
                normalize::phone(&phone)
                    .map_err(|message| ApiError::invalid("invalid_phone", "phone", message))
            })
            .transpose()?;
        let email = text(&self.email, "email")?
            .map(|email| {
                normalize::email(&email)
                    .map_err(|message| ApiError::invalid("invalid_email", "email", message))
            })
            .transpose()?;
        let province =
            text(&self.province, "province")?.map(|province| normalize::province(&province));
        let region = text(&self.region, "region")?
            .map(|region| normalize::region(&region))
            .or_else(|| {
                province
                    .as_deref()
                    .and_then(normalize::region_of_province)
                    .map(str::to_owned)
            });
        let name = text(&self.name, "name")?;
        let wechat = text(&self.wechat, "wechat")?;
        let company = text(&self.company, "company")?;
        if name.is_none()
            && phone.is_none()
            && email.is_none()
            && wechat.is_none()
            && company.is_none()
        {
            return Err(ApiError::invalid(
                "missing_contact",
                "phone",
                "a lead needs at least one of name, phone, email, wechat or company",
            ));
        }
        if self.tags.len() > MAX_TAGS
            || self
                .tags
                .iter()
                .any(|tag| tag.trim().is_empty() || tag.chars().count() > 50)
        {
            return Err(ApiError::invalid(
                "invalid_value",
                "tags",
                format!("at most {MAX_TAGS} non-empty tags of up to 50 characters"),
            ));
        }
        if self
            .score
            .is_some_and(|score| !(0.0..=100.0).contains(&score))
        {
            return Err(ApiError::invalid(
                "invalid_value",
                "score",
                "score is between 0 and 100",
            ));
        }
        if let Some(priority) = &self.priority
            && Priority::parse(priority).is_none()
        {
            return Err(ApiError::invalid(
                "invalid_value",
                "priority",
                "priority is urgent, high, normal or low",
            ));
        }
        let mut tags: Vec<String> = Vec::new();
        for tag in &self.tags {
            let tag = tag.trim().to_owned();
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
        Ok(LeadInput {
            external_id,
            name,
            phone,
            email,
            wechat,
            company,
            title: text(&self.title, "title")?,
            country: text(&self.country, "country")?,
            province,
            city: text(&self.city, "city")?,
            region,
            industry: text(&self.industry, "industry")?,
            company_size: number(self.company_size, "company_size")?,
            source: text(&self.source, "source")?,
            campaign: text(&self.campaign, "campaign")?,
            product: text(&self.product, "product")?,
            demand: text(&self.demand, "demand")?,
            budget: number(self.budget, "budget")?,
            urgency: text(&self.urgency, "urgency")?,
            tags,
            score: self.score,
            priority: self.priority.clone(),
            attributes: self.attributes.clone(),
        })
    }

    /// The engine's view of a normalised document.
    pub fn to_engine(
        &self,
        catalogue: &FieldCatalogue,
        created_at: DateTime<Utc>,
    ) -> Result<Lead, ApiError> {
        let attributes =
            parse_attributes(catalogue.lead_custom(), &self.attributes).map_err(attribute_error)?;
        Ok(Lead {
            contact: Contact {
                name: self.name.clone(),
                phone: self.phone.clone(),
                email: self.email.clone(),
                wechat: self.wechat.clone(),
            },
            company: self.company.clone(),
            title: self.title.clone(),
            country: self.country.clone(),
            province: self.province.clone(),
            city: self.city.clone(),
            region: self.region.clone(),
            industry: self.industry.clone(),
            company_size: self.company_size,
            source: self.source.clone(),
            campaign: self.campaign.clone(),
            product: self.product.clone(),
            demand: self.demand.clone(),
            budget: self.budget,
            urgency: self.urgency.clone(),
            attributes,
            tags: self.tags.clone(),
            score: self.score,
            win_probability: None,
            priority: self.priority.as_deref().and_then(Priority::parse),
            status: LeadStatus::New,
            owner: None,
            known_owner: None,
            owner_affinity: false,
            created_at: Some(created_at),
        })
    }
}

/// A refused custom attribute as an API error on `attributes.<name>`.
pub fn attribute_error(error: engine::field::AttributeError) -> ApiError {
    ApiError::invalid(
        error.code,
        format!("attributes.{}", error.name),
        error.message,
    )
}

/// A stored lead's engine form, for rerouting.
pub fn engine_lead(row: &LeadRow, catalogue: &FieldCatalogue) -> Result<Lead, ApiError> {
    let mut document: LeadInput =
        serde_json::from_str(&row.document).map_err(ApiError::internal)?;
    document.attributes =
        engine::field::readable_attributes(catalogue.lead_custom(), &document.attributes);
    let created_at = DateTime::from_timestamp_micros(row.created_at).unwrap_or_default();
    let mut lead = document.to_engine(catalogue, created_at)?;
    lead.status = LeadStatus::parse(&row.status).unwrap_or_default();
    lead.owner = row.owner_id.clone().map(RepId::new);
    lead.win_probability = row.win_probability;
    Ok(lead)
}

pub fn time(micros: i64) -> String {
    DateTime::from_timestamp_micros(micros)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The fields of a lead document, as intake sources and CSV imports map columns to them.
pub const INPUT_FIELDS: &[&str] = &[
    "external_id",
    "name",
    "phone",
    "email",
    "wechat",
    "company",
    "title",
    "country",
    "province",
    "city",
    "region",
    "industry",
    "company_size",
    "source",
    "campaign",
    "product",
    "demand",
    "budget",
    "urgency",
    "tags",
    "score",
    "priority",
    "attributes",
];

/// The lead as the API returns it: the document plus where it stands.
#[derive(Debug, Serialize)]
pub struct LeadView {
    pub id: String,
    #[serde(flatten)]
    pub document: LeadInput,
    pub status: String,
    pub owner_id: Option<String>,
    pub team_id: Option<String>,
    pub pool_id: Option<String>,
    pub held: bool,
    pub created_at: String,
    pub updated_at: String,
    /// The rule that routed it.
    pub rule_id: Option<String>,
    pub follow_up: FollowUpView,
    /// With `won`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<f64>,
    /// With `lost`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost_reason: Option<String>,
    /// The active model's win probability (0–1) when the lead was routed; its factors are in
    /// the decision's `record.win`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub win_probability: Option<f64>,
}

/// Where the lead's follow-up stands.
#[derive(Debug, Serialize)]
pub struct FollowUpView {
    /// When the current owner got it.
    pub assigned_at: Option<String>,
    /// The current owner's first activity since.
    pub first_response_at: Option<String>,
    pub last_activity_at: Option<String>,
    /// The callback the owner scheduled.
    pub next_follow_up_at: Option<String>,
    /// When the owner claimed it from a pool, and until when it stays theirs.
    pub claimed_at: Option<String>,
    pub protected_until: Option<String>,
    pub sla_policy: Option<String>,
    /// Reclaims so far.
    pub hops: i64,
    pub previous_owners: Vec<String>,
    pub closed_at: Option<String>,
}

pub fn lead_view(row: &LeadRow) -> LeadView {
    let mut document: LeadInput = serde_json::from_str(&row.document).unwrap_or_default();
    // Tagging and scoring may have changed these since intake.
    document.tags = serde_json::from_str(&row.tags).unwrap_or_default();
    document.score = row.score;
    document.priority = row.priority.clone();
    document.external_id = row.external_id.clone();
    LeadView {
        id: row.id.clone(),
        document,
        status: row.status.clone(),
        owner_id: row.owner_id.clone(),
        team_id: row.team_id.clone(),
        pool_id: row.pool_id.clone(),
        held: row.held,
        created_at: time(row.created_at),
        updated_at: time(row.updated_at),
        rule_id: row.rule_id.clone(),
        follow_up: FollowUpView {
            assigned_at: row.assigned_at.map(time),
            first_response_at: row.first_response_at.map(time),
            last_activity_at: row.last_activity_at.map(time),
            next_follow_up_at: row.callback_at.map(time),
            claimed_at: row.claimed_at.map(time),
            protected_until: row.protected_until.map(time),
            sla_policy: row.sla_policy.clone(),
            hops: row.hops,
            previous_owners: serde_json::from_str(&row.previous_owners).unwrap_or_default(),
            closed_at: row.closed_at.map(time),
        },
        amount: row.amount,
        lost_reason: row.lost_reason.clone(),
        win_probability: row.win_probability.map(|p| (p * 1e4).round() / 1e4),
    }
}

/// A decision as the API returns it, with its explanation in both languages. The stored record
/// is passed through as it is; the explanation is rendered from it when none was stored.
#[derive(Debug, Serialize)]
pub struct DecisionView {
    pub id: String,
    pub lead_id: String,
    pub kind: String,
    pub actor: String,
    pub reason: Option<String>,
    pub rule_set_version: Option<i64>,
    pub outcome: String,
    pub owner_id: Option<String>,
    pub created_at: String,
    pub explanation: Box<RawValue>,
    pub record: Box<RawValue>,
}

fn raw(text: &str) -> Box<RawValue> {
    RawValue::from_string(text.to_owned()).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

pub fn decision_view(row: &DecisionRow) -> DecisionView {
    routed_decision_view(row, None)
}

/// `decision_view` of a decision just made, whose record is at hand: its explanation, when not
/// stored, is rendered from `record` instead of from the stored JSON parsed back.
pub fn routed_decision_view(
    row: &DecisionRow,
    record: Option<&engine::DecisionRecord>,
) -> DecisionView {
    let explanation = match record {
        Some(record) if row.explanation.is_empty() => explanation(record),
        _ => stored_explanation(row),
    };
    DecisionView {
        id: row.id.clone(),
        lead_id: row.lead_id.clone(),
        kind: row.kind.clone(),
        actor: row.actor.clone(),
        reason: row.reason.clone(),
        rule_set_version: row.rule_set_version,
        outcome: row.outcome.clone(),
        owner_id: row.owner_id.clone(),
        created_at: time(row.created_at),
        explanation: RawValue::from_string(explanation)
            .unwrap_or_else(|_| RawValue::NULL.to_owned()),
        record: raw(&row.record),
    }
}

/// A lead with the decision that placed it.
#[derive(Debug, Serialize)]
pub struct PlacedView {
    pub lead: LeadView,
    pub decision: Option<DecisionView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<bool>,
    /// The customer's stored lead, when the duplicate policy recognised them (查重).
    #[serde(rename = "match", skip_serializing_if = "Option::is_none")]
    pub matched: Option<crate::routing::Matched>,
}

/// A page of a list.
#[derive(Debug, Serialize)]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// `{"en": …, "zh": …}` for a decision record.
pub fn explanation(record: &engine::DecisionRecord) -> String {
    #[derive(Serialize)]
    struct Both {
        en: String,
        zh: String,
    }
    let both = Both {
        en: record.explain(engine::Language::En),
        zh: record.explain(engine::Language::Zh),
    };
    serde_json::to_string(&both).unwrap_or_else(|_| "{}".to_owned())
}

/// A stored decision's explanation, `{"en": …, "zh": …}`. A decision the engine made stores
/// none (its explanation is a function of its record, and writing both cost every routed lead
/// a few hundred bytes): it is rendered here from the record. Manual decisions, claims and the
/// decisions of earlier releases keep the words they were written with.
pub fn stored_explanation(row: &DecisionRow) -> String {
    if !row.explanation.is_empty() {
        return row.explanation.clone();
    }
    match serde_json::from_str::<engine::DecisionRecord>(&row.record) {
        Ok(record) => explanation(&record),
        Err(_) => "{}".to_owned(),
    }
}
