//! The field catalogue: built-in and custom fields of leads and reps, with their types, so that
//! conditions are checked when a rule set compiles rather than when a lead arrives.

use std::collections::BTreeMap;

use crate::lead::{Lead, Priority};
use crate::rep::Rep;
use crate::value::{FieldType, Value, ValueRef};

/// A field of a lead that a condition can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LeadField {
    Name,
    Phone,
    Email,
    Wechat,
    Company,
    Title,
    Country,
    Province,
    City,
    Region,
    Industry,
    CompanySize,
    Source,
    Campaign,
    Product,
    Demand,
    Budget,
    Urgency,
    Tags,
    Score,
    /// The learned model's win probability (0–1), when a model is active.
    WinProbability,
    Priority,
    Status,
    Owner,
    KnownOwner,
    CreatedAt,
    /// A custom attribute: the index of its slot in the catalogue.
    Custom(u16),
}

/// Built-in lead fields with their names and types, in the order forms list them.
pub const LEAD_FIELDS: &[(&str, LeadField, FieldType)] = &[
    ("name", LeadField::Name, FieldType::Text),
    ("phone", LeadField::Phone, FieldType::Text),
    ("email", LeadField::Email, FieldType::Text),
    ("wechat", LeadField::Wechat, FieldType::Text),
    ("company", LeadField::Company, FieldType::Text),
    ("title", LeadField::Title, FieldType::Text),
    ("country", LeadField::Country, FieldType::Text),
    ("province", LeadField::Province, FieldType::Text),
    ("city", LeadField::City, FieldType::Text),
    ("region", LeadField::Region, FieldType::Text),
    ("industry", LeadField::Industry, FieldType::Text),
    ("company_size", LeadField::CompanySize, FieldType::Number),
    ("source", LeadField::Source, FieldType::Text),
    ("campaign", LeadField::Campaign, FieldType::Text),
    ("product", LeadField::Product, FieldType::Text),
    ("demand", LeadField::Demand, FieldType::Text),
    ("budget", LeadField::Budget, FieldType::Number),
    ("urgency", LeadField::Urgency, FieldType::Text),
    ("tags", LeadField::Tags, FieldType::List),
    ("score", LeadField::Score, FieldType::Number),
    (
        "win_probability",
        LeadField::WinProbability,
        FieldType::Number,
    ),
    ("priority", LeadField::Priority, FieldType::Text),
    ("status", LeadField::Status, FieldType::Text),
    ("owner", LeadField::Owner, FieldType::Text),
    ("known_owner", LeadField::KnownOwner, FieldType::Text),
    ("created_at", LeadField::CreatedAt, FieldType::Time),
];

impl LeadField {
    /// Contact fields hold personal data; explanations show them masked.
    pub fn is_personal(self) -> bool {
        matches!(
            self,
            LeadField::Name | LeadField::Phone | LeadField::Email | LeadField::Wechat
        )
    }
}

/// A field of a rep that requirements and preferences can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RepField {
    Id,
    Regions,
    Industries,
    Products,
    Languages,
    Teams,
    Level,
    Weight,
    Custom(u16),
}

/// Built-in rep fields, named with the `rep.` prefix in conditions.
pub const REP_FIELDS: &[(&str, RepField, FieldType)] = &[
    ("id", RepField::Id, FieldType::Text),
    ("regions", RepField::Regions, FieldType::List),
    ("industries", RepField::Industries, FieldType::List),
    ("products", RepField::Products, FieldType::List),
    ("languages", RepField::Languages, FieldType::List),
    ("teams", RepField::Teams, FieldType::List),
    ("level", RepField::Level, FieldType::Number),
    ("weight", RepField::Weight, FieldType::Number),
];

/// A custom field declared by the workspace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomField {
    pub name: String,
    pub field_type: FieldType,
}

/// Built-in fields plus the workspace's custom lead and rep fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldCatalogue {
    lead_custom: Vec<CustomField>,
    rep_custom: Vec<CustomField>,
}

impl FieldCatalogue {
    /// Builds a catalogue, refusing bad or repeated names.
    pub fn new(
        lead_custom: Vec<CustomField>,
        rep_custom: Vec<CustomField>,
    ) -> Result<FieldCatalogue, String> {
        for fields in [&lead_custom, &rep_custom] {
            for (index, field) in fields.iter().enumerate() {
                if !valid_custom_name(&field.name) {
                    return Err(format!(
                        "custom field name {:?} must be 1 to 64 letters, digits or underscores",
                        field.name
                    ));
                }
                if fields[..index].iter().any(|other| other.name == field.name) {
                    return Err(format!("custom field {:?} is declared twice", field.name));
                }
            }
        }
        if lead_custom.len() > usize::from(u16::MAX) || rep_custom.len() > usize::from(u16::MAX) {
            return Err("too many custom fields".to_owned());
        }
        Ok(FieldCatalogue {
            lead_custom,
            rep_custom,
        })
    }

    pub fn lead_custom(&self) -> &[CustomField] {
        &self.lead_custom
    }

    pub fn rep_custom(&self) -> &[CustomField] {
        &self.rep_custom
    }

    /// Resolves `industry`, `lead.industry`, `attributes.x` or `lead.attributes.x`.
    pub fn lead_field(&self, path: &str) -> Option<(LeadField, FieldType)> {
        let path = path.strip_prefix("lead.").unwrap_or(path);
        if let Some(name) = path.strip_prefix("attributes.") {
            let slot = self
                .lead_custom
                .iter()
                .position(|field| field.name == name)?;
            return Some((
                LeadField::Custom(slot as u16),
                self.lead_custom[slot].field_type,
            ));
        }
        LEAD_FIELDS
            .iter()
            .find(|(name, _, _)| *name == path)
            .map(|(_, field, field_type)| (*field, *field_type))
    }

    /// Resolves `rep.industries` or `rep.attributes.x`.
    pub fn rep_field(&self, path: &str) -> Option<(RepField, FieldType)> {
        let path = path.strip_prefix("rep.")?;
        if let Some(name) = path.strip_prefix("attributes.") {
            let slot = self
                .rep_custom
                .iter()
                .position(|field| field.name == name)?;
            return Some((
                RepField::Custom(slot as u16),
                self.rep_custom[slot].field_type,
            ));
        }
        REP_FIELDS
            .iter()
            .find(|(name, _, _)| *name == path)
            .map(|(_, field, field_type)| (*field, *field_type))
    }

    /// The name a condition uses for a lead field.
    pub fn lead_field_name(&self, field: LeadField) -> String {
        match field {
            LeadField::Custom(slot) => {
                format!("attributes.{}", self.lead_custom[slot as usize].name)
            }
            builtin => LEAD_FIELDS
                .iter()
                .find(|(_, candidate, _)| *candidate == builtin)
                .map_or_else(String::new, |(name, _, _)| (*name).to_owned()),
        }
    }

    /// The name a condition uses for a rep field.
    pub fn rep_field_name(&self, field: RepField) -> String {
        match field {
            RepField::Custom(slot) => {
                format!("rep.attributes.{}", self.rep_custom[slot as usize].name)
            }
            builtin => REP_FIELDS
                .iter()
                .find(|(_, candidate, _)| *candidate == builtin)
                .map_or_else(String::new, |(name, _, _)| format!("rep.{name}")),
        }
    }
}

/// Why a custom attribute given as JSON was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttributeError {
    pub name: String,
    /// `unknown_field` or `invalid_value`.
    pub code: &'static str,
    pub message: String,
}

/// Reads custom attributes given as JSON against the declared fields (`lead_custom()` or
/// `rep_custom()`).
pub fn parse_attributes(
    fields: &[CustomField],
    json: &BTreeMap<String, serde_json::Value>,
) -> Result<BTreeMap<String, Value>, AttributeError> {
    json.iter()
        .map(|(name, value)| {
            let field = fields
                .iter()
                .find(|field| field.name == *name)
                .ok_or_else(|| AttributeError {
                    name: name.clone(),
                    code: "unknown_field",
                    message: format!("no custom field {name:?}"),
                })?;
            let value =
                Value::from_json(value, field.field_type).map_err(|message| AttributeError {
                    name: name.clone(),
                    code: "invalid_value",
                    message,
                })?;
            Ok((name.clone(), value))
        })
        .collect()
}

/// Keeps the stored attributes that still read under the declared fields: one whose field was
/// removed from the catalogue, or declared again with another type, is left out rather than
/// making the whole record unreadable. Input is checked with [`parse_attributes`]; this is for
/// records written under an earlier catalogue.
pub fn readable_attributes(
    fields: &[CustomField],
    json: &BTreeMap<String, serde_json::Value>,
) -> BTreeMap<String, serde_json::Value> {
    json.iter()
        .filter(|(name, value)| {
            fields.iter().any(|field| {
                field.name == **name && Value::from_json(value, field.field_type).is_ok()
            })
        })
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

/// Whether a custom field name is acceptable: 1 to 64 letters, digits or underscores.
pub fn valid_custom_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|character| character.is_alphanumeric() || character == '_')
}

/// A lead as conditions read it: the stored lead plus what tagging and scoring added, with
/// custom attributes resolved to catalogue slots once per routing.
#[derive(Debug)]
pub struct LeadView<'a> {
    pub lead: &'a Lead,
    pub tags: &'a [String],
    pub score: Option<f64>,
    pub win_probability: Option<f64>,
    pub priority: Option<Priority>,
    custom: Vec<Option<&'a Value>>,
}

impl<'a> LeadView<'a> {
    pub fn new(lead: &'a Lead, catalogue: &FieldCatalogue) -> LeadView<'a> {
        let custom = catalogue
            .lead_custom
            .iter()
            .map(|field| {
                lead.attributes
                    .get(&field.name)
                    .filter(|value| value.field_type() == field.field_type)
            })
            .collect();
        LeadView {
            lead,
            tags: &lead.tags,
            score: lead.score,
            win_probability: lead.win_probability,
            priority: lead.priority,
            custom,
        }
    }

    pub fn get(&self, field: LeadField) -> Option<ValueRef<'a>> {
        let lead = self.lead;
        let text = |value: &'a Option<String>| value.as_deref().map(ValueRef::Text);
        match field {
            LeadField::Name => text(&lead.contact.name),
            LeadField::Phone => text(&lead.contact.phone),
            LeadField::Email => text(&lead.contact.email),
            LeadField::Wechat => text(&lead.contact.wechat),
            LeadField::Company => text(&lead.company),
            LeadField::Title => text(&lead.title),
            LeadField::Country => text(&lead.country),
            LeadField::Province => text(&lead.province),
            LeadField::City => text(&lead.city),
            LeadField::Region => text(&lead.region),
            LeadField::Industry => text(&lead.industry),
            LeadField::CompanySize => lead.company_size.map(ValueRef::Number),
            LeadField::Source => text(&lead.source),
            LeadField::Campaign => text(&lead.campaign),
            LeadField::Product => text(&lead.product),
            LeadField::Demand => text(&lead.demand),
            LeadField::Budget => lead.budget.map(ValueRef::Number),
            LeadField::Urgency => text(&lead.urgency),
            LeadField::Tags => Some(ValueRef::List(self.tags)),
            LeadField::Score => self.score.map(ValueRef::Number),
            LeadField::WinProbability => self.win_probability.map(ValueRef::Number),
            LeadField::Priority => self
                .priority
                .map(|priority| ValueRef::Text(priority.as_str())),
            LeadField::Status => Some(ValueRef::Text(lead.status.as_str())),
            LeadField::Owner => lead.owner.as_ref().map(|id| ValueRef::Text(id.as_str())),
            LeadField::KnownOwner => lead
                .known_owner
                .as_ref()
                .map(|id| ValueRef::Text(id.as_str())),
            LeadField::CreatedAt => lead.created_at.map(ValueRef::Time),
            LeadField::Custom(slot) => self
                .custom
                .get(slot as usize)
                .copied()
                .flatten()
                .map(Value::as_ref),
        }
    }
}

/// Reads a rep field that is not interned (custom attributes, level, weight, id).
pub(crate) fn rep_value<'a>(
    rep: &'a Rep,
    field: RepField,
    catalogue: &FieldCatalogue,
) -> Option<ValueRef<'a>> {
    match field {
        RepField::Id => Some(ValueRef::Text(rep.id.as_str())),
        RepField::Regions => Some(ValueRef::List(&rep.regions)),
        RepField::Industries => Some(ValueRef::List(&rep.industries)),
        RepField::Products => Some(ValueRef::List(&rep.products)),
        RepField::Languages => Some(ValueRef::List(&rep.languages)),
        RepField::Teams => None,
        RepField::Level => Some(ValueRef::Number(f64::from(rep.level))),
        RepField::Weight => Some(ValueRef::Number(rep.weight)),
        RepField::Custom(slot) => {
            let field = catalogue.rep_custom.get(slot as usize)?;
            rep.attributes
                .get(&field.name)
                .filter(|value| value.field_type() == field.field_type)
                .map(Value::as_ref)
        }
    }
}
