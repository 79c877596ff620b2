//! Typed values of lead and rep fields, and the types a field catalogue declares.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};

/// The type of a field, declared in the catalogue and checked when a rule set compiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldType {
    Text,
    Number,
    Bool,
    /// An instant; dates (`2026-12-01`) are read as midnight UTC.
    Time,
    /// A list of texts, such as tags or a rep's regions.
    List,
}

impl FieldType {
    pub fn parse(text: &str) -> Option<FieldType> {
        Some(match text {
            "text" => FieldType::Text,
            "number" => FieldType::Number,
            "bool" => FieldType::Bool,
            "time" => FieldType::Time,
            "list" => FieldType::List,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            FieldType::Text => "text",
            FieldType::Number => "number",
            FieldType::Bool => "bool",
            FieldType::Time => "time",
            FieldType::List => "list",
        }
    }
}

/// An owned value of a custom attribute.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Text(String),
    Number(f64),
    Bool(bool),
    Time(DateTime<Utc>),
    List(Vec<String>),
}

impl Value {
    pub fn field_type(&self) -> FieldType {
        match self {
            Value::Text(_) => FieldType::Text,
            Value::Number(_) => FieldType::Number,
            Value::Bool(_) => FieldType::Bool,
            Value::Time(_) => FieldType::Time,
            Value::List(_) => FieldType::List,
        }
    }

    pub fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Text(text) => ValueRef::Text(text),
            Value::Number(number) => ValueRef::Number(*number),
            Value::Bool(flag) => ValueRef::Bool(*flag),
            Value::Time(time) => ValueRef::Time(*time),
            Value::List(items) => ValueRef::List(items),
        }
    }

    /// Reads a JSON value as the given type: the one conversion the API, the CSV import and the
    /// rule compiler share, so "2026-12-01" means the same instant everywhere.
    pub fn from_json(json: &serde_json::Value, expected: FieldType) -> Result<Value, String> {
        use serde_json::Value as Json;
        match (expected, json) {
            (FieldType::Text, Json::String(text)) => Ok(Value::Text(text.clone())),
            (FieldType::Number, Json::Number(number)) => number
                .as_f64()
                .filter(|value| value.is_finite())
                .map(Value::Number)
                .ok_or_else(|| "number out of range".to_owned()),
            (FieldType::Bool, Json::Bool(flag)) => Ok(Value::Bool(*flag)),
            (FieldType::Time, Json::String(text)) => parse_time(text).map(Value::Time),
            (FieldType::List, Json::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Json::String(text) => Ok(text.clone()),
                    _ => Err("expected a list of texts".to_owned()),
                })
                .collect::<Result<_, _>>()
                .map(Value::List),
            (expected, _) => Err(format!("expected a {}", expected.name())),
        }
    }
}

/// Parses an RFC 3339 instant or a plain date (midnight UTC).
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|time| time.and_utc())
        .ok_or_else(|| format!("expected an RFC 3339 time or a YYYY-MM-DD date, got {text:?}"))
}

/// A borrowed view of a field's value, read from a lead or a rep without copying.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ValueRef<'a> {
    Text(&'a str),
    Number(f64),
    Bool(bool),
    Time(DateTime<Utc>),
    List(&'a [String]),
}

impl fmt::Display for ValueRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueRef::Text(text) => f.write_str(text),
            ValueRef::Number(number) => write!(f, "{number}"),
            ValueRef::Bool(flag) => write!(f, "{flag}"),
            ValueRef::Time(time) => write!(f, "{}", time.to_rfc3339()),
            ValueRef::List(items) => write!(f, "[{}]", items.join(", ")),
        }
    }
}
