//! A JSON body extractor whose failures speak the error envelope: malformed JSON, wrong types
//! and unknown fields each get their code and the path of the offending field.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

#[derive(Debug)]
pub struct Body<T>(pub T);

impl<S, T> FromRequest<S> for Body<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        require_json(request.headers())?;
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "body_too_large",
                        "the body is larger than 1 MiB",
                    )
                } else {
                    ApiError::bad_request("invalid_body", rejection.body_text())
                }
            })?;
        parse(&bytes).map(Body)
    }
}

/// Refuses a body that does not say it is JSON.
pub fn require_json(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    let json_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if json_type {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send JSON with Content-Type: application/json",
        ))
    }
}

/// Parses JSON, naming the field that failed; refuses control characters and overlong text
/// in any string ([`crate::text`]).
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    crate::text::check_json(bytes)?;
    parse_checked(bytes)
}

/// [`parse`] for a part of a body whose text [`parse`] has checked already (a batch's items).
pub fn parse_checked<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let message = inner.to_string();
        let field = (path != ".").then_some(path);
        if let Some(name) = message
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split('`').next())
        {
            // The path already ends at the unknown field.
            let field = field
                .filter(|path| !path.is_empty())
                .unwrap_or_else(|| name.to_owned());
            return ApiError::invalid("unknown_field", field, format!("unknown field {name:?}"))
                .with_status(StatusCode::BAD_REQUEST);
        }
        let code = match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                "invalid_json"
            }
            _ => "invalid_value",
        };
        let mut api = ApiError::bad_request(code, message);
        api.field = field;
        api
    })
}

impl ApiError {
    fn with_status(mut self, status: StatusCode) -> ApiError {
        self.status = status;
        self
    }
}

/// A request as stored: a `file.content` is summarised by its length, never kept (it holds
/// customers' data and may be megabytes).
pub fn stored_request(request: &impl serde::Serialize) -> String {
    let mut value = serde_json::to_value(request).unwrap_or(serde_json::Value::Null);
    if let Some(file) = value
        .get_mut("file")
        .and_then(serde_json::Value::as_object_mut)
    {
        let bytes = file
            .get("content")
            .and_then(serde_json::Value::as_str)
            .map_or(0, str::len);
        file.insert("content".into(), format!("({bytes} bytes)").into());
    }
    value.to_string()
}
