//! The REST API under `/api/v1`, one file per resource.

pub mod access;
pub mod accounts;
pub mod fields;
pub mod follow_up;
pub mod intake;
pub mod leads;
pub mod notifications;
pub mod pool;
pub mod reps;
pub mod rule_sets;
pub mod settings;
pub mod teams;

use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::ApiError;

/// `?limit=&cursor=` on list endpoints.
#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct Page {
    /// 1–500, default 50.
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl Page {
    pub fn limit(&self) -> Result<i64, ApiError> {
        match self.limit {
            None => Ok(50),
            Some(limit) if (1..=500).contains(&limit) => Ok(limit),
            Some(_) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_value",
                "limit is between 1 and 500",
            )
            .with_field("limit")),
        }
    }
}

/// Ids chosen by callers: letters, digits, `-`, `_`, `.`, up to 64 characters.
pub fn check_id(id: &str, field: &str) -> Result<(), ApiError> {
    let valid = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|character| character.is_alphanumeric() || matches!(character, '-' | '_' | '.'));
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "invalid_value",
            field,
            "ids are 1 to 64 letters, digits, - _ or .",
        ))
    }
}

/// Applies a JSON merge patch (top-level keys replace, `null` removes) to a stored document and
/// parses the result, refusing changes to `immutable` keys.
pub fn merge_patch<T: serde::de::DeserializeOwned>(
    stored: &str,
    patch: serde_json::Map<String, serde_json::Value>,
    immutable: &[&str],
) -> Result<T, ApiError> {
    let mut document: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(stored).map_err(ApiError::internal)?;
    for (key, value) in patch {
        if immutable.contains(&key.as_str()) {
            return Err(ApiError::invalid(
                "immutable_field",
                key.clone(),
                format!("{key} cannot change"),
            ));
        }
        if value.is_null() {
            document.remove(&key);
        } else {
            document.insert(key, value);
        }
    }
    crate::extract::parse(&serde_json::to_vec(&document).map_err(ApiError::internal)?)
}

/// Cuts rows fetched with one more than `limit` down to `limit`; the next page's cursor (the
/// last row's id) when there was more.
pub fn cut<T>(rows: &mut Vec<T>, limit: i64, id: impl Fn(&T) -> &str) -> Option<String> {
    let limit = usize::try_from(limit).unwrap_or(0);
    let more = rows.len() > limit;
    rows.truncate(limit);
    more.then(|| rows.last().map(|row| id(row).to_owned()))
        .flatten()
}

/// One page of rows sorted by id, after the cursor: the page and the next cursor.
pub fn page_by_id<T>(
    rows: Vec<T>,
    page: &Page,
    id: impl Fn(&T) -> &str,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let limit = page.limit()? as usize;
    let mut rows: Vec<T> = rows
        .into_iter()
        .filter(|row| page.cursor.as_deref().is_none_or(|cursor| id(row) > cursor))
        .collect();
    let next_cursor = (rows.len() > limit).then(|| id(&rows[limit - 1]).to_owned());
    rows.truncate(limit);
    Ok((rows, next_cursor))
}

/// Reasons people give (for an assignment, a release) are at most 500 characters.
pub fn check_reason(reason: Option<&str>) -> Result<(), ApiError> {
    if reason.is_some_and(|reason| reason.chars().count() > 500) {
        return Err(ApiError::invalid(
            "too_long",
            "reason",
            "reason is at most 500 characters",
        ));
    }
    Ok(())
}

/// A stored settings document as the API shows it: the document with its id and times.
pub fn document_view(
    document: &str,
    id: &str,
    created_at: i64,
    updated_at: i64,
) -> serde_json::Value {
    let mut view: serde_json::Value =
        serde_json::from_str(document).unwrap_or_else(|_| serde_json::json!({}));
    if let Some(object) = view.as_object_mut() {
        object.insert("id".into(), serde_json::json!(id));
        object.insert(
            "created_at".into(),
            serde_json::json!(crate::leads::time(created_at)),
        );
        object.insert(
            "updated_at".into(),
            serde_json::json!(crate::leads::time(updated_at)),
        );
    }
    view
}

pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}
