//! What a replay reads: leads as they arrived, with what happened to them. From the workspace's
//! own leads (paged in arrival order, never all at once) or from a file (CSV mapped like
//! `leadroute import`, or JSON Lines), where a bad row is reported by line and the rest replay.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone as _, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value};
use store::LeadRow;

use crate::error::ApiError;
use crate::leads::LeadInput;

/// One lead of the history.
#[derive(Clone, Debug)]
pub struct HistoryLead {
    /// The file line it came from, or its place in the window (from 1).
    pub line: u64,
    /// The stored lead's id, or the file's `external_id`.
    pub id: Option<String>,
    pub input: LeadInput,
    pub arrived_at: DateTime<Utc>,
    /// When it was closed (won, lost, invalid): from then on it no longer counts against its
    /// owner's 保有量.
    pub closed_at: Option<DateTime<Utc>>,
    /// The rep who really had it.
    pub owner: Option<String>,
    /// Won (true) or lost / invalid (false); `None` while open or unknown.
    pub won: Option<bool>,
    pub amount: Option<f64>,
    /// From assignment to the owner's first response.
    pub response_secs: Option<f64>,
}

/// A row that could not be replayed, with why.
#[derive(Clone, Debug, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct BadRow {
    pub line: u64,
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub message: String,
}

impl BadRow {
    fn new(line: u64, error: ApiError) -> BadRow {
        BadRow {
            line,
            code: error.code,
            field: error.field,
            message: error.message,
        }
    }
}

pub type Item = Result<HistoryLead, BadRow>;

fn time(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

/// A stored lead as history. Its document is the lead as it arrived (tags from tagging rules
/// are added again by each policy).
pub fn from_row(line: u64, row: &LeadRow, catalogue: &engine::FieldCatalogue) -> Item {
    let mut input: LeadInput = serde_json::from_str(row.intake_document()).map_err(|_| BadRow {
        line,
        code: "unreadable".into(),
        field: None,
        message: "the stored lead could not be read".into(),
    })?;
    input.attributes =
        engine::field::readable_attributes(catalogue.lead_custom(), &input.attributes);
    let won = match row.status.as_str() {
        "won" => Some(true),
        "lost" | "invalid" => Some(false),
        _ => None,
    };
    let response_secs = match (row.assigned_at, row.first_response_at) {
        (Some(assigned), Some(first)) if first >= assigned => Some((first - assigned) as f64 / 1e6),
        _ => None,
    };
    Ok(HistoryLead {
        line,
        id: Some(row.id.clone()),
        input,
        arrived_at: time(row.created_at),
        closed_at: row.closed_at.map(time),
        owner: row.owner_id.clone(),
        won,
        amount: row.amount,
        response_secs,
    })
}

/// The columns a history file may carry beside the lead's own fields.
const HISTORY_COLUMNS: &[(&str, &str)] = &[
    ("arrived_at", "arrived_at"),
    ("created_at", "arrived_at"),
    ("创建时间", "arrived_at"),
    ("进线时间", "arrived_at"),
    ("closed_at", "closed_at"),
    ("关闭时间", "closed_at"),
    ("outcome", "outcome"),
    ("结果", "outcome"),
    ("amount", "amount"),
    ("金额", "amount"),
    ("成交金额", "amount"),
    ("owner", "owner"),
    ("owner_id", "owner"),
    ("负责人", "owner"),
    ("first_response_secs", "first_response_secs"),
    ("first_response_minutes", "first_response_minutes"),
    ("首次响应分钟", "first_response_minutes"),
];

/// `won` / `lost` in the words people use.
fn outcome(text: &str) -> Option<Option<bool>> {
    match text.trim().to_lowercase().as_str() {
        "won" | "win" | "converted" | "true" | "1" | "yes" | "赢单" | "成交" | "已成交" => {
            Some(Some(true))
        }
        "lost" | "lose" | "invalid" | "false" | "0" | "no" | "输单" | "丢单" | "无效"
        | "未成交" => Some(Some(false)),
        "" | "open" | "未关闭" => Some(None),
        _ => None,
    }
}

/// A time as RFC 3339, or a local `YYYY-MM-DD[ HH:MM[:SS]]` / `YYYYMMDD` in `zone`.
fn parse_time(text: &str, zone: Tz) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    let local = [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y/%m/%d %H:%M:%S",
        "%Y/%m/%d %H:%M",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
    .or_else(|| {
        ["%Y-%m-%d", "%Y%m%d", "%Y/%m/%d"]
            .iter()
            .find_map(|format| NaiveDate::parse_from_str(text, format).ok())
            .and_then(|date| date.and_hms_opt(0, 0, 0))
    })?;
    zone.from_local_datetime(&local)
        .earliest()
        .map(|time| time.with_timezone(&Utc))
}

fn bad(line: u64, code: &str, field: &str, message: impl Into<String>) -> BadRow {
    BadRow {
        line,
        code: code.into(),
        field: Some(field.into()),
        message: message.into(),
    }
}

/// A history record (one JSON object: lead fields and history columns) as a lead.
pub fn from_object(line: u64, mut object: Map<String, Value>, zone: Tz) -> Item {
    let mut history: BTreeMap<&str, Value> = BTreeMap::new();
    for (column, name) in HISTORY_COLUMNS {
        if let Some(value) = object.remove(*column) {
            history.entry(name).or_insert(value);
        }
    }
    let text = |name: &str| -> Option<String> {
        match history.get(name)? {
            Value::Null => None,
            Value::String(text) if text.trim().is_empty() => None,
            Value::String(text) => Some(text.trim().to_owned()),
            other => Some(other.to_string()),
        }
    };
    let number = |name: &str| -> Result<Option<f64>, BadRow> {
        text(name)
            .map(|value| {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|number| number.is_finite() && *number >= 0.0)
                    .ok_or_else(|| bad(line, "invalid_value", name, "expected a number ≥ 0"))
            })
            .transpose()
    };
    let Some(arrived) = text("arrived_at") else {
        return Err(bad(
            line,
            "required",
            "arrived_at",
            "each row needs its arrival time (arrived_at or created_at)",
        ));
    };
    let arrived_at = parse_time(&arrived, zone).ok_or_else(|| {
        bad(
            line,
            "invalid_time",
            "arrived_at",
            "expected RFC 3339 or YYYY-MM-DD HH:MM:SS",
        )
    })?;
    let closed_at = text("closed_at")
        .map(|value| {
            parse_time(&value, zone).ok_or_else(|| {
                bad(
                    line,
                    "invalid_time",
                    "closed_at",
                    "expected RFC 3339 or YYYY-MM-DD HH:MM:SS",
                )
            })
        })
        .transpose()?;
    let won = match text("outcome") {
        None => None,
        Some(value) => outcome(&value).ok_or_else(|| {
            bad(
                line,
                "invalid_value",
                "outcome",
                "expected won or lost (赢单 / 输单)",
            )
        })?,
    };
    let response_secs = match number("first_response_secs")? {
        Some(secs) => Some(secs),
        None => number("first_response_minutes")?.map(|minutes| minutes * 60.0),
    };
    let amount = number("amount")?;
    let owner = text("owner");
    if let Some(owner) = &owner {
        crate::text::check_name(owner, "owner").map_err(|error| BadRow::new(line, error))?;
    }
    let bytes = serde_json::to_vec(&Value::Object(object)).unwrap_or_default();
    let input = crate::extract::parse::<LeadInput>(&bytes)
        .and_then(|lead| lead.normalised())
        .map_err(|error| BadRow::new(line, error))?;
    Ok(HistoryLead {
        line,
        id: input.external_id.clone(),
        input,
        arrived_at,
        closed_at,
        owner,
        won,
        amount,
        response_secs,
    })
}

/// Which of a file's formats.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    Csv,
    Jsonl,
}

impl FileFormat {
    /// From a file name's ending: `.jsonl` / `.ndjson` are JSON Lines, anything else CSV.
    pub fn of(name: &str) -> FileFormat {
        if name.ends_with(".jsonl") || name.ends_with(".ndjson") {
            FileFormat::Jsonl
        } else {
            FileFormat::Csv
        }
    }
}

/// A history file read into rows, sorted by arrival (stable: rows arriving together keep the
/// file's order), each converted to a lead only when it is replayed.
#[derive(Debug, Default)]
pub struct FileRows {
    rows: Vec<(DateTime<Utc>, u64, Map<String, Value>)>,
    /// Rows that failed before they could be ordered (unreadable, no arrival time).
    pub bad: Vec<BadRow>,
    zone: Option<Tz>,
}

impl FileRows {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows that could not be ordered, then the rest as history in arrival order.
    pub fn into_items(self) -> impl Iterator<Item = Item> + Send {
        let zone = self.zone.unwrap_or(chrono_tz::Asia::Shanghai);
        self.bad.into_iter().map(Err).chain(
            self.rows
                .into_iter()
                .map(move |(_, line, object)| from_object(line, object, zone)),
        )
    }
}

/// Reads a history file: CSV with a header row (columns mapped like `leadroute import`, with
/// `--map`-style overrides in `map`, and the history columns above), or JSON Lines. Local times
/// are in `zone`. Fails only when the file as a whole cannot be read.
pub fn read_file(
    format: FileFormat,
    content: &[u8],
    map: &[String],
    custom: &[String],
    numbers: &[String],
    zone: Tz,
) -> Result<FileRows, ApiError> {
    let mut file = FileRows {
        zone: Some(zone),
        ..FileRows::default()
    };
    let push = |file: &mut FileRows, line: u64, object: Map<String, Value>| {
        let arrived = HISTORY_COLUMNS
            .iter()
            .filter(|(_, name)| *name == "arrived_at")
            .find_map(|(column, _)| object.get(*column))
            .and_then(Value::as_str)
            .and_then(|text| parse_time(text, zone));
        match arrived {
            Some(at) => file.rows.push((at, line, object)),
            None => file.bad.push(bad(
                line,
                "invalid_time",
                "arrived_at",
                "each row needs its arrival time (arrived_at or created_at), RFC 3339 or YYYY-MM-DD HH:MM:SS",
            )),
        }
    };
    match format {
        FileFormat::Jsonl => {
            let text = std::str::from_utf8(content).map_err(|_| {
                ApiError::invalid("invalid_characters", "file", "the file is not UTF-8")
            })?;
            for (index, line) in text.lines().enumerate() {
                let number = index as u64 + 1;
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<Map<String, Value>>(line) {
                    Ok(object) => push(&mut file, number, object),
                    Err(_) => file.bad.push(BadRow {
                        line: number,
                        code: "invalid_json".into(),
                        field: None,
                        message: "the line is not a JSON object".into(),
                    }),
                }
            }
        }
        FileFormat::Csv => {
            let mut reader = csv::ReaderBuilder::new()
                .flexible(true)
                .from_reader(content);
            let headers = reader
                .headers()
                .map_err(|error| ApiError::invalid("invalid_csv", "file", error.to_string()))?
                .clone();
            let history: Vec<Option<&str>> = headers
                .iter()
                .map(|header| {
                    HISTORY_COLUMNS
                        .iter()
                        .find(|(column, _)| column.eq_ignore_ascii_case(header.trim()))
                        .map(|(column, _)| *column)
                })
                .collect();
            let columns = crate::table::mapping(&headers, map, custom)
                .map_err(|error| ApiError::invalid("invalid_mapping", "map", error.to_string()))?;
            let mut last_line = 1;
            for record in reader.records() {
                let position = match &record {
                    Ok(record) => record.position(),
                    Err(error) => error.position(),
                };
                last_line = position.map_or(last_line + 1, csv::Position::line);
                let record = match record {
                    Ok(record) => record,
                    Err(error) => {
                        file.bad.push(BadRow {
                            line: last_line,
                            code: "invalid_csv".into(),
                            field: None,
                            message: error.to_string(),
                        });
                        continue;
                    }
                };
                let Value::Object(mut object) =
                    crate::table::row_to_json(&record, &columns, numbers)
                else {
                    continue;
                };
                for (value, column) in record.iter().zip(&history) {
                    if let Some(column) = column {
                        object.insert((*column).to_owned(), Value::from(value.trim()));
                    }
                }
                push(&mut file, last_line, object);
            }
        }
    }
    file.rows.sort_by_key(|(at, line, _)| (*at, *line));
    Ok(file)
}
