//! A table of leads (a CSV file) as lead documents: which column fills which field, and a row
//! as the JSON an API client would send. `leadroute import` and the simulator's file input
//! share it.

use std::collections::BTreeMap;

use anyhow::Context as _;
use serde_json::{Map, Value};

/// The workspace's custom lead fields as columns may name them: their names, and the
/// `attributes.<name>` of those holding numbers.
pub fn custom_columns(fields: &[store::CustomFieldRow]) -> (Vec<String>, Vec<String>) {
    let declared: Vec<&store::CustomFieldRow> =
        fields.iter().filter(|row| row.entity == "lead").collect();
    let custom = declared.iter().map(|row| row.name.clone()).collect();
    let numbers = declared
        .iter()
        .filter(|row| row.field_type == "number")
        .map(|row| format!("attributes.{}", row.name))
        .collect();
    (custom, numbers)
}

pub const NUMBER_FIELDS: &[&str] = &["company_size", "budget", "score"];
/// Built-in lead fields a column may map to.
/// Built-in lead fields, and what a migrated lead keeps (`import --mode migrate` reads those;
/// other imports leave them out).
fn is_field(name: &str) -> bool {
    name != "attributes"
        && (crate::leads::INPUT_FIELDS.contains(&name)
            || crate::batch::MIGRATION_FIELDS.contains(&name))
}
const ALIASES: &[(&str, &str)] = &[
    ("姓名", "name"),
    ("联系人", "name"),
    ("电话", "phone"),
    ("手机", "phone"),
    ("手机号", "phone"),
    ("邮箱", "email"),
    ("微信", "wechat"),
    ("公司", "company"),
    ("企业名称", "company"),
    ("职位", "title"),
    ("国家", "country"),
    ("省份", "province"),
    ("城市", "city"),
    ("区域", "region"),
    ("行业", "industry"),
    ("规模", "company_size"),
    ("来源", "source"),
    ("渠道", "source"),
    ("活动", "campaign"),
    ("产品", "product"),
    ("需求", "demand"),
    ("预算", "budget"),
    ("紧急程度", "urgency"),
    ("标签", "tags"),
    ("负责人", "owner"),
    ("所有人", "owner"),
    ("状态", "status"),
    ("创建时间", "created_at"),
    ("最后跟进时间", "last_follow_up_at"),
];

/// Which field each column fills: `--map` first, then a built-in field's name, then a declared
/// custom field's (`custom`: lead field names), then the usual Chinese headers.
pub fn mapping(
    headers: &csv::StringRecord,
    overrides: &[String],
    custom: &[String],
) -> anyhow::Result<Vec<Option<String>>> {
    let mut explicit = BTreeMap::new();
    for pair in overrides {
        let (column, field) = pair
            .split_once('=')
            .with_context(|| format!("--map {pair:?}: expected COLUMN=FIELD"))?;
        let known = is_field(field) || field.starts_with("attributes.");
        anyhow::ensure!(known, "--map {pair:?}: unknown lead field {field:?}");
        explicit.insert(column.to_owned(), field.to_owned());
    }
    Ok(headers
        .iter()
        .map(|header| {
            let header = header.trim();
            explicit
                .get(header)
                .cloned()
                .or_else(|| {
                    crate::leads::INPUT_FIELDS
                        .iter()
                        .chain(&crate::batch::MIGRATION_FIELDS)
                        .find(|field| is_field(field) && field.eq_ignore_ascii_case(header))
                        .map(|field| (*field).to_owned())
                })
                .or_else(|| {
                    custom
                        .iter()
                        .find(|name| *name == header)
                        .map(|name| format!("attributes.{name}"))
                })
                .or_else(|| {
                    ALIASES
                        .iter()
                        .find(|(alias, _)| *alias == header)
                        .map(|(_, field)| (*field).to_owned())
                })
        })
        .collect())
}

/// One row as a lead document; `numbers` are the custom fields (`attributes.x`) holding numbers.
pub fn row_to_json(
    record: &csv::StringRecord,
    columns: &[Option<String>],
    numbers: &[String],
) -> Value {
    let mut object = Map::new();
    let mut attributes = Map::new();
    for (value, field) in record.iter().zip(columns) {
        let (Some(field), value) = (field, value.trim()) else {
            continue;
        };
        if value.is_empty() {
            continue;
        }
        let json = if NUMBER_FIELDS.contains(&field.as_str()) || numbers.contains(field) {
            value
                .parse::<f64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::from(value))
        } else if field == "tags" {
            Value::from(
                value
                    .split([',', '，', ';'])
                    .map(str::trim)
                    .filter(|tag| !tag.is_empty())
                    .collect::<Vec<_>>(),
            )
        } else {
            Value::from(value)
        };
        match field.strip_prefix("attributes.") {
            Some(name) => {
                attributes.insert(name.to_owned(), json);
            }
            None => {
                object.insert(field.clone(), json);
            }
        }
    }
    if !attributes.is_empty() {
        object.insert("attributes".into(), Value::Object(attributes));
    }
    if !object.contains_key("external_id") {
        object.insert(
            "external_id".into(),
            Value::from(format!("csv:{}", hash_row(record))),
        );
    }
    Value::Object(object)
}

/// A stable id for a row without an id column: the hash of its cells.
pub fn hash_row(record: &csv::StringRecord) -> String {
    let joined = record.iter().collect::<Vec<_>>().join("\u{1f}");
    crate::auth::hash(&joined)[..32].to_owned()
}
