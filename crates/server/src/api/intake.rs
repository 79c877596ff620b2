//! `POST /api/v1/intake/{source}`: leads from form tools and ad platforms, authenticated by the
//! source's token or signature rather than an API key; and each source's delivery log.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use store::{IntakeLogRow, Setting};

use crate::AppState;
use crate::api::Page;
use crate::auth::Caller;
use crate::auth::same;
use crate::error::{ApiError, ApiResult};
use crate::intake::{
    IntakeSourceDocument, MAX_AGE_SECS, form_body, hmac_signature, jdy_signature, map_lead,
};
use crate::leads::{LeadInput, time};
use crate::ops::Operation;
use crate::routing::Created;
use axum::Extension;

fn refused(status: StatusCode, code: &str, message: &str) -> ApiError {
    ApiError::new(status, code, message)
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// Checks the delivery is the source's own; returns its delivery id, if it has one.
fn authenticate(
    source: &IntakeSourceDocument,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &str,
    form: Option<&Value>,
    now: i64,
) -> Result<Option<String>, ApiError> {
    let unauthorized = |code: &str, message: &str| refused(StatusCode::UNAUTHORIZED, code, message);
    let fresh = |timestamp: &str| {
        let seconds: i64 = timestamp
            .parse()
            .map_err(|_| unauthorized("bad_signature", "the timestamp is not a number"))?;
        // Milliseconds are accepted too.
        let seconds = if seconds > 100_000_000_000 {
            seconds / 1000
        } else {
            seconds
        };
        if (now - seconds).abs() > MAX_AGE_SECS {
            return Err(unauthorized(
                "stale_signature",
                "the delivery was signed too long ago",
            ));
        }
        Ok(())
    };
    let secret = source.secret.as_deref().unwrap_or_default();
    match source.auth.as_str() {
        "token" => {
            let given = query
                .get("token")
                .map(String::as_str)
                .or_else(|| form.and_then(|form| form.get("token")?.as_str()))
                .unwrap_or_default();
            let expected = source.token.as_deref().unwrap_or_default();
            if expected.is_empty() || !same(given, expected) {
                return Err(unauthorized("bad_token", "the token does not match"));
            }
            Ok(None)
        }
        "jdy" => {
            let nonce = query.get("nonce").map(String::as_str).unwrap_or_default();
            let timestamp = query
                .get("timestamp")
                .map(String::as_str)
                .unwrap_or_default();
            let given = header_text(headers, "x-jdy-signature").unwrap_or_default();
            if !same(given, &jdy_signature(nonce, body, secret, timestamp)) {
                return Err(unauthorized(
                    "bad_signature",
                    "the signature does not match",
                ));
            }
            fresh(timestamp)?;
            Ok(header_text(headers, "x-jdy-deliverid").map(str::to_owned))
        }
        _ => {
            let timestamp = header_text(headers, "x-timestamp").unwrap_or_default();
            let given = header_text(headers, "x-signature").unwrap_or_default();
            if !same(given, &hmac_signature(secret, timestamp, body)) {
                return Err(unauthorized(
                    "bad_signature",
                    "the signature does not match",
                ));
            }
            fresh(timestamp)?;
            Ok(header_text(headers, "x-delivery-id").map(str::to_owned))
        }
    }
}

/// Receive a lead from an intake source. Plain forms post `application/x-www-form-urlencoded`
/// with `?token=`; signed webhooks post JSON. A platform's retry of the same delivery is a
/// duplicate (200), never a new lead. Every delivery is logged; rejected ones with the reason.
#[utoipa::path(post, path = "/api/v1/intake/{source}", tag = "intake", params(("source" = String, Path)),
    request_body(content = Object, description = "The platform's JSON, or a form post"),
    responses((status = 201, description = "`{lead_id, duplicate: false}`"), (status = 200, description = "A retry: `{lead_id, duplicate: true}`"),
              (status = 303, description = "A form post with `redirect_to`"), (status = 401, description = "Bad token, bad or stale signature"),
              (status = 422, description = "The mapped lead is not valid")))]
pub async fn receive(
    State(app): State<AppState>,
    Path(source_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = chrono::Utc::now();
    let row = match app
        .store
        .get_setting(Setting::IntakeSources, &source_id)
        .await
    {
        Ok(Some(row)) => row,
        Ok(None) => return ApiError::not_found("intake source").into_response(),
        Err(error) => return ApiError::from(error).into_response(),
    };
    // The route needs no key, so each source has the rate an integration key has: a flood at
    // a public form's address is refused before it is read, logged or routed.
    if let Err(wait) = app.limits.take(&format!("source:{source_id}")).await {
        return crate::auth::too_many("too many deliveries for this source; retry later", wait);
    }
    let Ok(source) = serde_json::from_str::<IntakeSourceDocument>(&row.document) else {
        return ApiError::internal("stored intake source does not parse").into_response();
    };
    let mut log = IntakeLogRow {
        id: uuid::Uuid::now_v7().to_string(),
        source_id: source_id.clone(),
        delivery_id: None,
        outcome: "rejected".into(),
        reason: None,
        lead_id: None,
        received_at: now.timestamp_micros(),
    };
    let result = match source
        .secret
        .as_deref()
        .map(|secret| app.sealer.open(secret))
    {
        Some(Err(reason)) => {
            tracing::error!(source = %source_id, %reason, "an intake source's secret cannot be read");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "secret_unavailable",
                "this source's secret cannot be read on the server; the admin must set it again",
            ))
        }
        opened => {
            let mut source = source;
            source.secret = opened.and_then(Result::ok);
            accept(&app, &source, &source_id, &query, &headers, &body, &mut log).await
        }
    };
    if let Err(error) = &result {
        // The code and field, never the message: it may quote the rejected values.
        log.reason = Some(match &error.field {
            Some(field) => format!("{} ({field})", error.code),
            None => error.code.clone(),
        });
    }
    if let Err(error) = app.store.insert_intake_log(&log).await {
        tracing::warn!(source = %source_id, error = %error, "could not log an intake delivery");
    }
    app.metrics.count_intake(
        &format!("intake:{source_id}"),
        match (result.is_ok(), log.outcome.as_str()) {
            (true, "duplicate") => "duplicate",
            (true, _) => "created",
            (false, _) => "rejected",
        },
    );
    match result {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn accept(
    app: &AppState,
    source: &IntakeSourceDocument,
    source_id: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    bytes: &Bytes,
    log: &mut IntakeLogRow,
) -> ApiResult<Response> {
    let is_form = header_text(headers, header::CONTENT_TYPE.as_str())
        .is_some_and(|kind| kind.starts_with("application/x-www-form-urlencoded"));
    let text = std::str::from_utf8(bytes)
        .map_err(|_| ApiError::bad_request("malformed_body", "the body is not UTF-8"))?;
    let form = is_form.then(|| form_body(bytes));
    let delivery = authenticate(
        source,
        query,
        headers,
        text,
        form.as_ref(),
        chrono::Utc::now().timestamp(),
    )?;
    log.delivery_id = delivery.clone();
    let body = match form {
        Some(form) => form,
        None => serde_json::from_str(text)
            .map_err(|_| ApiError::bad_request("malformed_json", "the body is not JSON"))?,
    };
    let mut lead = map_lead(source, &body)?;
    if let (Some(delivery), false) = (&delivery, lead.contains_key("external_id")) {
        lead.insert(
            "external_id".into(),
            json!(format!("{source_id}:{delivery}")),
        );
    }
    let input: LeadInput =
        crate::extract::parse(&serde_json::to_vec(&lead).map_err(ApiError::internal)?)?;
    let input = input.normalised()?;
    let mut results = app
        .router
        .create(vec![input], &format!("intake:{source_id}"))
        .await?;
    let created = results
        .pop()
        .ok_or_else(|| ApiError::internal("no result for a lead"))??;
    let (status, lead_id, outcome) = match created {
        Created::New { lead, .. } | Created::Planned { lead, .. } => {
            (StatusCode::CREATED, lead.id, "accepted")
        }
        Created::Duplicate { lead } => (StatusCode::OK, lead.id, "duplicate"),
        Created::Attached { lead, .. } => (StatusCode::OK, lead.id, "attached"),
    };
    let duplicate = outcome != "accepted";
    log.outcome = outcome.into();
    log.lead_id = Some(lead_id.clone());
    if let (true, Some(url)) = (is_form, &source.redirect_to) {
        return Ok((StatusCode::SEE_OTHER, [(header::LOCATION, url.clone())]).into_response());
    }
    Ok((
        status,
        Json(json!({"lead_id": lead_id, "duplicate": duplicate})),
    )
        .into_response())
}

/// What a source's deliveries became, newest first: accepted, duplicate, or rejected with the
/// reason (the payload is not kept).
#[utoipa::path(get, path = "/api/v1/intake-sources/{id}/log", tag = "intake", params(("id" = String, Path), Page),
    responses((status = 200, description = "`{items, next_cursor}`")), security(("api_key" = [])))]
pub async fn source_log(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(page): Query<Page>,
) -> ApiResult<Json<Value>> {
    caller.may(Operation::IntakeSourceLog)?;
    let limit = page.limit()?;
    app.store
        .get_setting(Setting::IntakeSources, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("intake source"))?;
    let mut rows = app
        .store
        .intake_log(&id, page.cursor.as_deref(), limit + 1)
        .await?;
    let next_cursor = crate::api::cut(&mut rows, limit, |row| &row.id);
    let items: Vec<Value> = rows
        .iter()
        .map(|row| {
            json!({
                "id": row.id,
                "delivery_id": row.delivery_id,
                "outcome": row.outcome,
                "reason": row.reason,
                "lead_id": row.lead_id,
                "received_at": time(row.received_at),
            })
        })
        .collect();
    Ok(Json(json!({"items": items, "next_cursor": next_cursor})))
}
