//! The learned conversion model (线索评分模型) as routing uses it: a logistic regression over
//! the lead's fields at intake, each field encoded as levels with one weight each, so a
//! lead's win probability is `σ(intercept + Σ weights)` and every weight is a reason a person
//! can check ("来源=展会 +9%").
//!
//! The document (`ModelSpec`) is what training writes and the store keeps; [`WinModel::compile`]
//! resolves its fields against today's catalogue. A field that has since been removed, or
//! declared again with another type, is left out and named in `dropped`: the model keeps
//! scoring with what remains and never fails intake.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::field::{FieldCatalogue, LeadField, LeadView};
use crate::hours::parse_time_zone;
use crate::value::{FieldType, ValueRef};

/// A trained model as stored: what the fields' levels weigh.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    pub intercept: f64,
    /// The zone arrival hour and weekday are read in.
    #[serde(default = "default_zone")]
    pub time_zone: String,
    pub features: Vec<FeatureSpec>,
}

fn default_zone() -> String {
    "Asia/Shanghai".to_owned()
}

/// One field and its levels' weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureSpec {
    /// `source`, `attributes.plan`, `tags`, `arrival_hour`, `arrival_weekday` (for a file: the
    /// column's name).
    pub field: String,
    #[serde(flatten)]
    pub encoding: Encoding,
}

/// How a field's value becomes a weight.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Encoding {
    /// A text (or yes / no) field: each frequent value its weight; rare values share `other`.
    Category {
        levels: Vec<Level>,
        other: f64,
        missing: f64,
    },
    /// A number, cut at `edges` (ascending): `weights[0]` below the first edge, `weights[i]`
    /// from `edges[i - 1]` up to `edges[i]`, the last from the last edge up.
    Number {
        edges: Vec<f64>,
        weights: Vec<f64>,
        missing: f64,
    },
    /// A list such as tags: each frequent member adds its weight.
    Set { levels: Vec<Level> },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Level {
    pub value: String,
    pub weight: f64,
}

/// Where a feature's value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeatureSource {
    Field(LeadField),
    /// The hour the lead arrived, in the model's zone.
    ArrivalHour,
    /// The weekday the lead arrived (`mon` … `sun`).
    ArrivalWeekday,
}

/// A feature's value for one lead, before encoding.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Raw<'a> {
    Missing,
    Text(&'a str),
    Number(f64),
    Set(&'a [String]),
}

const HOURS: [&str; 24] = [
    "00", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12", "13", "14", "15",
    "16", "17", "18", "19", "20", "21", "22", "23",
];
const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Built-in fields a model may learn from: what is known when a lead arrives, never its
/// contact details (personal, and unique to one person) nor what follow-up adds.
const LEARNABLE: &[LeadField] = &[
    LeadField::Source,
    LeadField::Campaign,
    LeadField::Product,
    LeadField::Demand,
    LeadField::Country,
    LeadField::Province,
    LeadField::City,
    LeadField::Region,
    LeadField::Industry,
    LeadField::CompanySize,
    LeadField::Budget,
    LeadField::Urgency,
    LeadField::Tags,
];

/// The fields a workspace's model may learn from, by the name the model stores: the built-in
/// ones known at intake, every custom lead field but times, the arrival hour and weekday.
pub fn learnable_features(catalogue: &FieldCatalogue) -> Vec<(String, FeatureSource)> {
    let mut features: Vec<(String, FeatureSource)> = LEARNABLE
        .iter()
        .map(|field| {
            (
                catalogue.lead_field_name(*field),
                FeatureSource::Field(*field),
            )
        })
        .collect();
    for (slot, field) in catalogue.lead_custom().iter().enumerate() {
        if field.field_type != FieldType::Time {
            features.push((
                format!("attributes.{}", field.name),
                FeatureSource::Field(LeadField::Custom(slot as u16)),
            ));
        }
    }
    features.push(("arrival_hour".to_owned(), FeatureSource::ArrivalHour));
    features.push(("arrival_weekday".to_owned(), FeatureSource::ArrivalWeekday));
    features
}

/// Reads a feature of a lead as it arrived; training and scoring both read through here.
pub fn raw_value<'a>(
    source: FeatureSource,
    view: &LeadView<'a>,
    arrived: DateTime<Utc>,
    zone: Tz,
) -> Raw<'a> {
    match source {
        FeatureSource::Field(LeadField::Tags) => Raw::Set(&view.lead.tags),
        FeatureSource::Field(field) => match view.get(field) {
            None => Raw::Missing,
            Some(ValueRef::Text(text)) if text.trim().is_empty() => Raw::Missing,
            Some(ValueRef::Text(text)) => Raw::Text(text),
            Some(ValueRef::Number(number)) if number.is_finite() => Raw::Number(number),
            Some(ValueRef::Number(_)) => Raw::Missing,
            Some(ValueRef::Bool(true)) => Raw::Text("true"),
            Some(ValueRef::Bool(false)) => Raw::Text("false"),
            Some(ValueRef::List(list)) => Raw::Set(list),
            Some(ValueRef::Time(_)) => Raw::Missing,
        },
        FeatureSource::ArrivalHour => {
            Raw::Text(HOURS[arrived.with_timezone(&zone).hour() as usize])
        }
        FeatureSource::ArrivalWeekday => Raw::Text(
            WEEKDAYS[arrived
                .with_timezone(&zone)
                .weekday()
                .num_days_from_monday() as usize],
        ),
    }
}

/// A model ready to score leads.
#[derive(Clone, Debug)]
pub struct WinModel {
    /// The stored model's version.
    pub version: i64,
    intercept: f64,
    zone: Tz,
    features: Vec<Feature>,
    /// Fields the model was trained on that the catalogue no longer has (or has with another
    /// type): scored as if missing, and said in every record.
    pub dropped: Vec<String>,
}

#[derive(Clone, Debug)]
struct Feature {
    name: String,
    source: FeatureSource,
    encoding: Compiled,
}

#[derive(Clone, Debug)]
enum Compiled {
    Category {
        index: HashMap<String, u32>,
        levels: Vec<Level>,
        other: f64,
        missing: f64,
    },
    Number {
        edges: Vec<f64>,
        weights: Vec<f64>,
        missing: f64,
    },
    Set {
        index: HashMap<String, u32>,
        levels: Vec<Level>,
    },
}

/// Which level of a feature a lead fell in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LevelRef {
    Value(u32),
    Bin(u32),
    Other,
    Missing,
}

/// One feature's part in a lead's probability: `effect` is how far it moved the probability
/// (the probability minus what it would be without this feature's weight).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Factor {
    pub feature: u16,
    pub level: LevelRef,
    pub effect: f64,
}

/// A lead's win probability and its largest factors, strongest first.
#[derive(Clone, Debug, PartialEq)]
pub struct WinScore {
    pub model_version: i64,
    pub probability: f64,
    pub factors: Vec<Factor>,
}

/// How many factors a score keeps.
pub const FACTORS_KEPT: usize = 3;

/// Why a model document was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ModelError {
    pub path: String,
    pub message: String,
}

impl WinModel {
    /// Resolves a stored model against today's catalogue. Fields that disappeared are
    /// dropped (and named); a malformed document is refused.
    pub fn compile(
        spec: &ModelSpec,
        catalogue: &FieldCatalogue,
        version: i64,
    ) -> Result<WinModel, ModelError> {
        let zone = parse_time_zone(&spec.time_zone).map_err(|message| ModelError {
            path: "time_zone".into(),
            message,
        })?;
        let bad = |index: usize, message: &str| ModelError {
            path: format!("features[{index}]"),
            message: message.to_owned(),
        };
        if !spec.intercept.is_finite() {
            return Err(ModelError {
                path: "intercept".into(),
                message: "the intercept is not a number".into(),
            });
        }
        let learnable = learnable_features(catalogue);
        let mut features = Vec::new();
        let mut dropped = Vec::new();
        for (index, feature) in spec.features.iter().enumerate() {
            let encoding = compile_encoding(&feature.encoding).map_err(|m| bad(index, m))?;
            let Some(source) = learnable
                .iter()
                .find(|(name, _)| *name == feature.field)
                .map(|(_, source)| *source)
            else {
                dropped.push(feature.field.clone());
                continue;
            };
            let field_type = match source {
                FeatureSource::Field(field) => catalogue
                    .lead_field(&feature.field)
                    .map(|(found, field_type)| {
                        debug_assert_eq!(found, field);
                        field_type
                    })
                    .unwrap_or(FieldType::Text),
                _ => FieldType::Text,
            };
            let fits = matches!(
                (&encoding, field_type),
                (Compiled::Category { .. }, FieldType::Text | FieldType::Bool)
                    | (Compiled::Number { .. }, FieldType::Number)
                    | (Compiled::Set { .. }, FieldType::List)
            );
            if !fits {
                dropped.push(feature.field.clone());
                continue;
            }
            features.push(Feature {
                name: feature.field.clone(),
                source,
                encoding,
            });
        }
        if features.len() > usize::from(u16::MAX) {
            return Err(bad(0, "too many features"));
        }
        Ok(WinModel {
            version,
            intercept: spec.intercept,
            zone,
            features,
            dropped,
        })
    }

    /// The lead's win probability and its strongest factors. Does not allocate beyond the
    /// factors it returns.
    pub fn score(&self, view: &LeadView<'_>, arrived: DateTime<Utc>) -> WinScore {
        let mut logit = self.intercept;
        // The strongest weights by magnitude, to turn into effects once the logit is known.
        let mut top: [(f64, u16, LevelRef); FACTORS_KEPT] = [(0.0, 0, LevelRef::Missing); 3];
        let mut keep = |weight: f64, feature: u16, level: LevelRef| {
            if weight == 0.0 {
                return;
            }
            if let Some(slot) = top
                .iter()
                .position(|(held, _, _)| weight.abs() > held.abs())
            {
                top[slot..].rotate_right(1);
                top[slot] = (weight, feature, level);
            }
        };
        for (position, feature) in self.features.iter().enumerate() {
            let position = position as u16;
            let raw = raw_value(feature.source, view, arrived, self.zone);
            match &feature.encoding {
                Compiled::Category {
                    index,
                    levels,
                    other,
                    missing,
                } => {
                    let (weight, level) = match raw {
                        Raw::Text(text) => match index.get(text) {
                            Some(&at) => (levels[at as usize].weight, LevelRef::Value(at)),
                            None => (*other, LevelRef::Other),
                        },
                        Raw::Number(_) | Raw::Set(_) => (*other, LevelRef::Other),
                        Raw::Missing => (*missing, LevelRef::Missing),
                    };
                    logit += weight;
                    keep(weight, position, level);
                }
                Compiled::Number {
                    edges,
                    weights,
                    missing,
                } => {
                    let (weight, level) = match raw {
                        Raw::Number(number) => {
                            let bin = edges.partition_point(|edge| *edge <= number);
                            (weights[bin], LevelRef::Bin(bin as u32))
                        }
                        _ => (*missing, LevelRef::Missing),
                    };
                    logit += weight;
                    keep(weight, position, level);
                }
                Compiled::Set { index, levels } => {
                    if let Raw::Set(members) = raw {
                        for member in members {
                            if let Some(&at) = index.get(member.as_str()) {
                                let weight = levels[at as usize].weight;
                                logit += weight;
                                keep(weight, position, LevelRef::Value(at));
                            }
                        }
                    }
                }
            }
        }
        let probability = sigmoid(logit);
        let mut factors: Vec<Factor> = top
            .iter()
            .filter(|(weight, _, _)| *weight != 0.0)
            .map(|&(weight, feature, level)| Factor {
                feature,
                level,
                effect: probability - sigmoid(logit - weight),
            })
            .collect();
        factors.sort_by(|a, b| b.effect.abs().total_cmp(&a.effect.abs()));
        WinScore {
            model_version: self.version,
            probability,
            factors,
        }
    }

    /// The name a factor's feature is stored under.
    pub fn feature_name(&self, feature: u16) -> &str {
        self.features
            .get(usize::from(feature))
            .map_or("", |feature| feature.name.as_str())
    }

    /// A factor's level in words: the value, a number range, or "other" / "missing".
    pub fn level_label(&self, feature: u16, level: LevelRef) -> String {
        let Some(feature) = self.features.get(usize::from(feature)) else {
            return String::new();
        };
        match (&feature.encoding, level) {
            (
                Compiled::Category { levels, .. } | Compiled::Set { levels, .. },
                LevelRef::Value(at),
            ) => levels
                .get(at as usize)
                .map(|level| level.value.clone())
                .unwrap_or_default(),
            (Compiled::Number { edges, .. }, LevelRef::Bin(bin)) => bin_label(edges, bin as usize),
            (_, LevelRef::Other) => "(other)".to_owned(),
            (_, LevelRef::Missing) => "(missing)".to_owned(),
            _ => String::new(),
        }
    }
}

fn compile_encoding(encoding: &Encoding) -> Result<Compiled, &'static str> {
    let finite = |weight: f64| {
        if weight.is_finite() {
            Ok(weight)
        } else {
            Err("a weight is not a number")
        }
    };
    let index = |levels: &[Level]| -> Result<HashMap<String, u32>, &'static str> {
        let mut index = HashMap::with_capacity(levels.len());
        for (at, level) in levels.iter().enumerate() {
            finite(level.weight)?;
            if index.insert(level.value.clone(), at as u32).is_some() {
                return Err("a level is listed twice");
            }
        }
        Ok(index)
    };
    Ok(match encoding {
        Encoding::Category {
            levels,
            other,
            missing,
        } => Compiled::Category {
            index: index(levels)?,
            levels: levels.clone(),
            other: finite(*other)?,
            missing: finite(*missing)?,
        },
        Encoding::Number {
            edges,
            weights,
            missing,
        } => {
            if weights.len() != edges.len() + 1 {
                return Err("a number needs one weight more than it has edges");
            }
            if edges
                .windows(2)
                .any(|pair| pair[0].partial_cmp(&pair[1]).is_none_or(|o| o.is_ge()))
                || edges.iter().any(|edge| !edge.is_finite())
            {
                return Err("edges must be finite and ascending");
            }
            for weight in weights {
                finite(*weight)?;
            }
            Compiled::Number {
                edges: edges.clone(),
                weights: weights.clone(),
                missing: finite(*missing)?,
            }
        }
        Encoding::Set { levels } => Compiled::Set {
            index: index(levels)?,
            levels: levels.clone(),
        },
    })
}

/// `<50`, `50–200`, `≥200`.
pub fn bin_label(edges: &[f64], bin: usize) -> String {
    let number = |value: f64| {
        let rounded = (value * 100.0).round() / 100.0;
        format!("{rounded}")
    };
    match (
        bin.checked_sub(1).and_then(|at| edges.get(at)),
        edges.get(bin),
    ) {
        (None, Some(high)) => format!("<{}", number(*high)),
        (Some(low), Some(high)) => format!("{}–{}", number(*low), number(*high)),
        (Some(low), None) => format!("≥{}", number(*low)),
        (None, None) => String::new(),
    }
}

/// A model's field as people read it: `来源` / `source`, a custom field by its name.
pub fn field_label(name: &str, zh: bool) -> String {
    if let Some(custom) = name.strip_prefix("attributes.") {
        return custom.to_owned();
    }
    let (chinese, english) = match name {
        "source" => ("来源", "source"),
        "campaign" => ("活动", "campaign"),
        "product" => ("产品", "product"),
        "demand" => ("需求", "demand"),
        "country" => ("国家", "country"),
        "province" => ("省份", "province"),
        "city" => ("城市", "city"),
        "region" => ("区域", "region"),
        "industry" => ("行业", "industry"),
        "company_size" => ("规模", "company size"),
        "budget" => ("预算", "budget"),
        "urgency" => ("紧急程度", "urgency"),
        "tags" => ("标签", "tag"),
        "arrival_hour" => ("进线时段", "arrival hour"),
        "arrival_weekday" => ("进线日", "arrival day"),
        other => (other, other),
    };
    if zh { chinese } else { english }.to_owned()
}

/// A level as people read it: `(other)` and `(missing)`, weekdays and hours in the language.
pub fn value_label(field: &str, value: &str, zh: bool) -> String {
    match (value, zh) {
        ("(other)", true) => return "其他".to_owned(),
        ("(other)", false) => return "other".to_owned(),
        ("(missing)", true) => return "未填".to_owned(),
        ("(missing)", false) => return "missing".to_owned(),
        _ => {}
    }
    match field {
        "arrival_weekday" => WEEKDAYS
            .iter()
            .position(|day| *day == value)
            .map(|day| {
                if zh {
                    ["周一", "周二", "周三", "周四", "周五", "周六", "周日"][day].to_owned()
                } else {
                    ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][day].to_owned()
                }
            })
            .unwrap_or_else(|| value.to_owned()),
        "arrival_hour" if zh => format!("{value}时"),
        "arrival_hour" => format!("{value}h"),
        _ => value.to_owned(),
    }
}

pub fn sigmoid(logit: f64) -> f64 {
    1.0 / (1.0 + (-logit).exp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lead::Lead;

    fn spec() -> ModelSpec {
        ModelSpec {
            intercept: -1.0,
            time_zone: "Asia/Shanghai".into(),
            features: vec![
                FeatureSpec {
                    field: "source".into(),
                    encoding: Encoding::Category {
                        levels: vec![Level {
                            value: "展会".into(),
                            weight: 0.8,
                        }],
                        other: -0.1,
                        missing: -0.3,
                    },
                },
                FeatureSpec {
                    field: "company_size".into(),
                    encoding: Encoding::Number {
                        edges: vec![50.0, 200.0],
                        weights: vec![-0.4, 0.0, 0.5],
                        missing: 0.0,
                    },
                },
                FeatureSpec {
                    field: "tags".into(),
                    encoding: Encoding::Set {
                        levels: vec![Level {
                            value: "vip".into(),
                            weight: 1.0,
                        }],
                    },
                },
                FeatureSpec {
                    field: "attributes.gone".into(),
                    encoding: Encoding::Set { levels: vec![] },
                },
            ],
        }
    }

    #[test]
    fn a_score_is_the_sigmoid_of_its_weights_and_names_its_largest_factors() {
        let catalogue = FieldCatalogue::default();
        let model = WinModel::compile(&spec(), &catalogue, 3).expect("valid test data");
        assert_eq!(model.dropped, vec!["attributes.gone".to_owned()]);
        let lead = Lead {
            source: Some("展会".into()),
            company_size: Some(20.0),
            tags: vec!["vip".into(), "other".into()],
            ..Lead::default()
        };
        let view = LeadView::new(&lead, &catalogue);
        let score = model.score(&view, Utc::now());
        let logit: f64 = -1.0 + 0.8 - 0.4 + 1.0;
        assert!((score.probability - sigmoid(logit)).abs() < 1e-12);
        let names: Vec<(&str, String)> = score
            .factors
            .iter()
            .map(|factor| {
                (
                    model.feature_name(factor.feature),
                    model.level_label(factor.feature, factor.level),
                )
            })
            .collect();
        assert_eq!(
            names,
            vec![
                ("tags", "vip".to_owned()),
                ("source", "展会".to_owned()),
                ("company_size", "<50".to_owned())
            ]
        );
        assert!(score.factors[2].effect < 0.0);
        let expected = sigmoid(logit) - sigmoid(logit - 1.0);
        assert!((score.factors[0].effect - expected).abs() < 1e-12);
    }

    #[test]
    fn missing_and_unknown_values_take_their_own_weights() {
        let catalogue = FieldCatalogue::default();
        let model = WinModel::compile(&spec(), &catalogue, 1).expect("valid test data");
        let lead = Lead {
            company_size: Some(200.0),
            ..Lead::default()
        };
        let score = model.score(&LeadView::new(&lead, &catalogue), Utc::now());
        assert!((score.probability - sigmoid(-1.0 - 0.3 + 0.5)).abs() < 1e-12);
        let other = Lead {
            source: Some("官网".into()),
            ..Lead::default()
        };
        let score = model.score(&LeadView::new(&other, &catalogue), Utc::now());
        assert!((score.probability - sigmoid(-1.0 - 0.1)).abs() < 1e-12);
    }

    #[test]
    fn malformed_documents_are_refused() {
        let mut bad = spec();
        bad.features[1].encoding = Encoding::Number {
            edges: vec![200.0, 50.0],
            weights: vec![0.0; 3],
            missing: 0.0,
        };
        let error = WinModel::compile(&bad, &FieldCatalogue::default(), 1).expect_err("refused");
        assert_eq!(error.path, "features[1]");
        let mut bad = spec();
        bad.intercept = f64::NAN;
        assert!(WinModel::compile(&bad, &FieldCatalogue::default(), 1).is_err());
    }

    #[test]
    fn bins_read_as_ranges() {
        assert_eq!(bin_label(&[50.0, 200.0], 0), "<50");
        assert_eq!(bin_label(&[50.0, 200.0], 1), "50–200");
        assert_eq!(bin_label(&[50.0, 200.0], 2), "≥200");
    }
}
