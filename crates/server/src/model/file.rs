//! A CSV with an outcome column as examples, for trying the model on data before a workspace
//! has history of its own. Every other column is a feature: numbers when every filled cell is
//! one (and there are more than two values), texts otherwise; an empty cell is missing.

use learn::{Kind, Table};

use crate::error::ApiError;

/// What a file may hold at most.
pub const MAX_FILE_BYTES: usize = 50 * 1024 * 1024;
/// Columns that name an arrival time: the holdout then tests on the newest rows.
const TIME_COLUMNS: &[&str] = &["arrived_at", "created_at", "创建时间", "进线时间"];

/// Reads a CSV into examples. `outcome` names the column that says won (1, true, yes, won,
/// 成交…) or lost (0, false, no, lost…); `drop` names columns to leave out (ids, and anything
/// known only after follow-up, which would leak the outcome).
pub fn read_csv(content: &[u8], outcome: &str, drop: &[String]) -> Result<FileTable, ApiError> {
    if content.len() > MAX_FILE_BYTES {
        return Err(ApiError::invalid(
            "too_large",
            "file",
            format!("a file may hold {MAX_FILE_BYTES} bytes at most"),
        ));
    }
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(content);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|error| ApiError::invalid("invalid_csv", "file", error.to_string()))?
        .iter()
        .map(|header| header.trim_start_matches('\u{feff}').trim().to_owned())
        .collect();
    let Some(outcome_at) = headers.iter().position(|header| header == outcome) else {
        return Err(ApiError::invalid(
            "unknown_column",
            "outcome",
            format!("the file has no column {outcome:?}"),
        ));
    };
    for name in drop {
        if !headers.contains(name) {
            return Err(ApiError::invalid(
                "unknown_column",
                "drop",
                format!("the file has no column {name:?}"),
            ));
        }
    }
    let time_at = headers
        .iter()
        .position(|header| TIME_COLUMNS.contains(&header.as_str()));
    let features: Vec<usize> = (0..headers.len())
        .filter(|at| *at != outcome_at && Some(*at) != time_at && !drop.contains(&headers[*at]))
        .collect();
    let mut records = Vec::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.map_err(|error| {
            ApiError::invalid(
                "invalid_csv",
                format!("line {}", line + 2),
                error.to_string(),
            )
        })?;
        let won = match parse_outcome(record.get(outcome_at).unwrap_or("")) {
            Some(won) => won,
            None => {
                return Err(ApiError::invalid(
                    "invalid_outcome",
                    format!("line {}", line + 2),
                    format!(
                        "{outcome} is {:?}: expected won or lost (1 / 0, true / false, yes / no, 成交 / 输单)",
                        record.get(outcome_at).unwrap_or("")
                    ),
                ));
            }
        };
        let at = time_at
            .and_then(|at| record.get(at))
            .and_then(parse_time)
            .unwrap_or(line as i64);
        records.push((record, won, at));
    }
    let kinds: Vec<Kind> = features
        .iter()
        .map(|at| {
            let mut distinct = std::collections::HashSet::new();
            let numeric = records.iter().all(|(record, _, _)| {
                let cell = record.get(*at).unwrap_or("").trim();
                if distinct.len() < 3 && !cell.is_empty() {
                    distinct.insert(cell.to_owned());
                }
                cell.is_empty() || cell.parse::<f64>().is_ok_and(f64::is_finite)
            });
            if numeric && distinct.len() > 2 {
                Kind::Number
            } else {
                Kind::Category
            }
        })
        .collect();
    let mut table = Table::new(
        features
            .iter()
            .zip(&kinds)
            .map(|(at, kind)| (headers[*at].clone(), *kind)),
    );
    for (record, won, at) in &records {
        let values = features.iter().zip(&kinds).map(|(column, kind)| {
            let cell = record.get(*column).unwrap_or("").trim();
            match kind {
                _ if cell.is_empty() => engine::model::Raw::Missing,
                Kind::Number => cell
                    .parse::<f64>()
                    .map_or(engine::model::Raw::Missing, engine::model::Raw::Number),
                _ => engine::model::Raw::Text(cell),
            }
        });
        table.push(values, *won, *at);
    }
    let won = table.won();
    if won == 0 || won == table.examples.len() {
        return Err(ApiError::invalid(
            "one_outcome",
            "outcome",
            format!(
                "every row of {outcome} says {}: a model needs won and lost leads",
                if won == 0 { "lost" } else { "won" }
            ),
        ));
    }
    Ok(FileTable {
        table,
        timed: time_at.is_some(),
    })
}

/// Examples read from a file, and whether it had an arrival time to split on.
#[derive(Debug)]
pub struct FileTable {
    pub table: Table,
    pub timed: bool,
}

pub fn parse_outcome(text: &str) -> Option<bool> {
    match text.trim().to_lowercase().as_str() {
        "1" | "true" | "yes" | "y" | "won" | "win" | "converted" | "成交" | "赢单" | "是" => {
            Some(true)
        }
        "0" | "false" | "no" | "n" | "lost" | "lose" | "输单" | "丢单" | "否" | "未成交" => {
            Some(false)
        }
        _ => None,
    }
}

fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|time| time.timestamp_micros())
        .ok()
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
                .ok()
                .map(|time| time.and_utc().timestamp_micros())
        })
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|date| date.and_hms_opt(0, 0, 0))
                .map(|time| time.and_utc().timestamp_micros())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_typed_and_outcomes_read() {
        let file = "source,visits,outcome,id\n展会,3,1,a\n官网,,0,b\n展会,10,成交,c\n,7,no,d\n";
        let read =
            read_csv(file.as_bytes(), "outcome", &["id".to_owned()]).expect("valid test data");
        let names: Vec<(&str, Kind)> = read
            .table
            .columns
            .iter()
            .map(|column| (column.name.as_str(), column.kind))
            .collect();
        assert_eq!(
            names,
            vec![("source", Kind::Category), ("visits", Kind::Number)]
        );
        assert_eq!(read.table.won(), 2);
        assert!(!read.timed);
    }

    #[test]
    fn a_missing_outcome_column_or_a_single_outcome_is_refused() {
        let error = read_csv(b"source,won\na,1\n", "Converted", &[]).expect_err("refused");
        assert_eq!(error.code, "unknown_column");
        let error = read_csv(b"source,won\na,1\nb,1\n", "won", &[]).expect_err("refused");
        assert_eq!(error.code, "one_outcome");
        let error = read_csv(b"source,won\na,maybe\n", "won", &[]).expect_err("refused");
        assert_eq!(error.code, "invalid_outcome");
    }
}
