//! The REST API under `/api/v1`, one file per resource.

pub mod leads;
pub mod reps;
pub mod rule_sets;
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

pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}
