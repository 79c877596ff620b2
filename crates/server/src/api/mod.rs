//! The REST API under `/api/v1`, one file per resource.

pub mod access;
pub mod accounts;
pub mod duplicates;
pub mod fields;
pub mod follow_up;
pub mod intake;
pub mod leads;
pub mod models;
pub mod notifications;
pub mod pool;
pub mod reports;
pub mod reps;
pub mod rule_sets;
pub mod settings;
pub mod simulations;
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
        // What a view adds to the document: a document read, changed and sent back whole
        // still applies (its version goes in `If-Match`).
        if matches!(key.as_str(), "created_at" | "updated_at" | "version") {
            continue;
        }
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

/// A stored document as the API shows it: the document with its id, times and version (its
/// `ETag`).
pub fn document_view(
    document: &str,
    id: &str,
    created_at: i64,
    updated_at: i64,
    version: i64,
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
        object.insert("version".into(), serde_json::json!(version));
    }
    view
}

/// `If-Match: "<version>"` on a write: the version of the document the writer read. A write
/// whose version is no longer current answers `412 version_mismatch` and changes nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct IfMatch(pub Option<i64>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(axum::http::header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        value
            .to_str()
            .ok()
            .map(|text| text.trim().trim_start_matches("W/").trim_matches('"'))
            .and_then(|text| text.parse().ok())
            .map(|version| IfMatch(Some(version)))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_if_match",
                    "If-Match takes the ETag of the document, as \"3\"",
                )
                .with_field("If-Match")
            })
    }
}

impl IfMatch {
    /// Refuses the write when the writer read another version than the stored one.
    pub fn check(self, current: i64) -> Result<(), ApiError> {
        match self.0 {
            Some(version) if version != current => Err(stale()),
            _ => Ok(()),
        }
    }
}

/// Changes a stored document without losing anyone's update: `attempt` reads the document,
/// checks `If-Match` against it, applies the change and writes it over the version read,
/// answering `None` when another write came first. Without `If-Match` the change is applied
/// again to the newer version, a few times at most; with it, the answer is `412`.
pub async fn rewrite<T, Attempt>(
    if_match: IfMatch,
    attempt: impl Fn() -> Attempt,
) -> Result<T, ApiError>
where
    Attempt: Future<Output = Result<Option<T>, ApiError>>,
{
    for _ in 0..WRITE_ATTEMPTS {
        if let Some(written) = attempt().await? {
            return Ok(written);
        }
        if if_match.0.is_some() {
            return Err(stale());
        }
    }
    Err(ApiError::conflict(
        "busy",
        "the document is being changed by others; try again",
    ))
}

/// Attempts of a change without `If-Match` before it gives up.
const WRITE_ATTEMPTS: usize = 16;

fn stale() -> ApiError {
    ApiError::new(
        StatusCode::PRECONDITION_FAILED,
        "version_mismatch",
        "the document changed since you read it; read it again",
    )
    .with_field("If-Match")
}

/// A document's view with its version as `ETag`.
pub type Versioned = (
    [(axum::http::HeaderName, String); 1],
    axum::Json<serde_json::Value>,
);

/// `ETag` for a document's version.
pub fn etag(version: i64) -> [(axum::http::HeaderName, String); 1] {
    [(axum::http::header::ETAG, format!("\"{version}\""))]
}

/// What a create that lost to an existing id answers.
pub fn taken(noun: &str, id: &str) -> ApiError {
    ApiError::conflict("already_exists", format!("a {noun} with id {id:?} exists")).with_field("id")
}

pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}
