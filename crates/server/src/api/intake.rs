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
use crate::intake::presets::{self, Delivery, Record};
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
        "meta" => {
            let given = header_text(headers, "x-hub-signature-256").unwrap_or_default();
            if !same(given, &presets::meta_signature(secret, body.as_bytes())) {
                return Err(unauthorized(
                    "bad_signature",
                    "the signature does not match",
                ));
            }
            // No timestamp is signed: Meta retries a notification for up to 36 hours with the
            // same body, and each lead's id makes a replay a duplicate, never a new lead.
            Ok(None)
        }
        "google_key" => {
            let given = serde_json::from_str::<Value>(body)
                .ok()
                .and_then(|body| body.get("google_key")?.as_str().map(str::to_owned))
                .unwrap_or_default();
            if secret.is_empty() || !same(&given, secret) {
                return Err(unauthorized("bad_key", "the google_key does not match"));
            }
            Ok(None)
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
    let mut more = Vec::new();
    let result = match open_secrets(&app, source) {
        Err(reason) => {
            tracing::error!(source = %source_id, %reason, "an intake source's secret cannot be read");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "secret_unavailable",
                "this source's secret cannot be read on the server; the admin must set it again",
            ))
        }
        Ok(source) => {
            accept(
                &app, &source, &source_id, &query, &headers, &body, &mut log, &mut more,
            )
            .await
        }
    };
    if let Err(error) = &result {
        // The code and field, never the message: it may quote the rejected values.
        log.reason = Some(match &error.field {
            Some(field) => format!("{} ({field})", error.code),
            None => error.code.clone(),
        });
    }
    for log in std::iter::once(&log).chain(&more) {
        if let Err(error) = app.store.insert_intake_log(log).await {
            tracing::warn!(source = %source_id, error = %error, "could not log an intake delivery");
        }
        app.metrics.count_intake(
            &format!("intake:{source_id}"),
            match (result.is_ok(), log.outcome.as_str()) {
                (true, "accepted") => "created",
                (true, "ignored") => "ignored",
                (true, _) => "duplicate",
                (false, _) => "rejected",
            },
        );
    }
    match result {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

/// The source with its secrets opened, or why one cannot be.
fn open_secrets(
    app: &AppState,
    mut source: IntakeSourceDocument,
) -> Result<IntakeSourceDocument, String> {
    for secret in [&mut source.secret, &mut source.access_token] {
        if let Some(sealed) = secret.take() {
            *secret = Some(app.sealer.open(&sealed)?);
        }
    }
    Ok(source)
}

/// The leads one delivery holds, as the source's platform sends them.
async fn records(
    app: &AppState,
    source: &IntakeSourceDocument,
    body: Value,
    delivery: Option<String>,
) -> ApiResult<Delivery> {
    match source.auth.as_str() {
        "google_key" => presets::google(&body),
        "jdy" => Ok(presets::jiandaoyun(&body, delivery)),
        "meta" => {
            let mut records = Vec::new();
            for (leadgen_id, change) in presets::meta_leads(&body)? {
                let record = presets::meta_lead(
                    app.notifier.http(),
                    source.graph_url.as_deref().unwrap_or(presets::GRAPH_URL),
                    source.access_token.as_deref().unwrap_or_default(),
                    source.secret.as_deref().unwrap_or_default(),
                    &leadgen_id,
                    &change,
                )
                .await?;
                records.push(Record {
                    delivery_id: Some(leadgen_id),
                    body: record,
                });
            }
            Ok(Delivery::Leads(records))
        }
        _ => Ok(Delivery::Leads(vec![Record {
            delivery_id: delivery,
            body,
        }])),
    }
}

#[allow(clippy::too_many_arguments)]
async fn accept(
    app: &AppState,
    source: &IntakeSourceDocument,
    source_id: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    bytes: &Bytes,
    log: &mut IntakeLogRow,
    more: &mut Vec<IntakeLogRow>,
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
    let google = source.auth == "google_key";
    let records = match records(app, source, body, delivery).await? {
        Delivery::Ignored(reason) => {
            log.outcome = "ignored".into();
            log.reason = Some(reason.into());
            let answer = if google {
                json!({})
            } else {
                json!({"ignored": reason})
            };
            return Ok((StatusCode::OK, Json(answer)).into_response());
        }
        Delivery::Leads(records) => records,
    };
    if records.is_empty() {
        log.outcome = "ignored".into();
        log.reason = Some("no_lead".into());
        return Ok((StatusCode::OK, Json(json!({"ignored": "no_lead"}))).into_response());
    }
    // A preset maps a platform's extras (form id, ad id, job title) to attributes; those the
    // workspace has not declared as lead fields are left out rather than refusing the lead.
    let declared: Option<HashMap<String, String>> = match source.preset() {
        Some(_) => Some(
            app.store
                .list_custom_fields()
                .await?
                .into_iter()
                .filter(|field| field.entity == "lead")
                .map(|field| (field.name, field.field_type))
                .collect(),
        ),
        None => None,
    };
    let mut inputs = Vec::with_capacity(records.len());
    for record in &records {
        let mut lead = map_lead(source, &record.body)?;
        if let (Some(declared), Some(Value::Object(attributes))) =
            (&declared, lead.get_mut("attributes"))
        {
            attributes.retain(|name, _| declared.contains_key(name));
            // Ids come as numbers; a text field takes them as text.
            for (name, value) in attributes.iter_mut() {
                if value.is_number() && declared.get(name).is_some_and(|kind| kind == "text") {
                    *value = Value::String(value.to_string());
                }
            }
            if attributes.is_empty() {
                lead.remove("attributes");
            }
        }
        if let (Some(delivery), false) = (&record.delivery_id, lead.contains_key("external_id")) {
            lead.insert(
                "external_id".into(),
                json!(format!("{source_id}:{delivery}")),
            );
        }
        let input: LeadInput =
            crate::extract::parse(&serde_json::to_vec(&lead).map_err(ApiError::internal)?)?;
        inputs.push(input.normalised()?);
    }
    let results = app
        .router
        .create(inputs, &format!("intake:{source_id}"))
        .await?;
    let mut answers = Vec::with_capacity(results.len());
    let mut status = StatusCode::OK;
    for (index, (result, record)) in results.into_iter().zip(&records).enumerate() {
        let (lead_id, outcome) = match result? {
            Created::New { lead, .. } | Created::Planned { lead, .. } => {
                status = StatusCode::CREATED;
                (lead.id, "accepted")
            }
            Created::Duplicate { lead } => (lead.id, "duplicate"),
            Created::Attached { lead, .. } => (lead.id, "attached"),
        };
        let row = if index == 0 {
            &mut *log
        } else {
            more.push(IntakeLogRow {
                id: uuid::Uuid::now_v7().to_string(),
                ..log.clone()
            });
            more.last_mut()
                .unwrap_or_else(|| unreachable!("just pushed"))
        };
        row.delivery_id.clone_from(&record.delivery_id);
        row.outcome = outcome.into();
        row.lead_id = Some(lead_id.clone());
        answers.push(json!({"lead_id": lead_id, "duplicate": outcome != "accepted"}));
    }
    if let (true, Some(url)) = (is_form, &source.redirect_to) {
        return Ok((StatusCode::SEE_OTHER, [(header::LOCATION, url.clone())]).into_response());
    }
    // Google wants 200 with an empty object; a Meta notification may name several leads.
    let answer = match (google, answers.len()) {
        (true, _) => json!({}),
        (false, 1) => answers.swap_remove(0),
        (false, _) => json!({"leads": answers}),
    };
    Ok((if google { StatusCode::OK } else { status }, Json(answer)).into_response())
}

/// Meta's subscription handshake: `GET` with `hub.mode=subscribe`, `hub.verify_token` and
/// `hub.challenge`; the challenge is answered as it came when the token is the source's.
#[utoipa::path(get, path = "/api/v1/intake/{source}", tag = "intake", params(("source" = String, Path)),
    responses((status = 200, description = "The `hub.challenge`, as text"), (status = 403, description = "The verify token does not match"),
              (status = 404, description = "No such source, or it has no handshake")))]
pub async fn verify(
    State(app): State<AppState>,
    Path(source_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let source = match app
        .store
        .get_setting(Setting::IntakeSources, &source_id)
        .await
    {
        Ok(Some(row)) => serde_json::from_str::<IntakeSourceDocument>(&row.document).ok(),
        Ok(None) => None,
        Err(error) => return ApiError::from(error).into_response(),
    };
    let Some(source) = source.filter(|source| source.auth == "meta") else {
        return ApiError::not_found("intake source with a subscription handshake").into_response();
    };
    if let Err(wait) = app.limits.take(&format!("source:{source_id}")).await {
        return crate::auth::too_many("too many requests for this source; retry later", wait);
    }
    let given = |name: &str| query.get(name).map(String::as_str).unwrap_or_default();
    let expected = source.verify_token.as_deref().unwrap_or_default();
    if given("hub.mode") != "subscribe"
        || expected.is_empty()
        || !same(given("hub.verify_token"), expected)
    {
        return refused(
            StatusCode::FORBIDDEN,
            "bad_verify_token",
            "the verify token does not match",
        )
        .into_response();
    }
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        given("hub.challenge").to_owned(),
    )
        .into_response()
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
