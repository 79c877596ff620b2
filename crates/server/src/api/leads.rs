//! Leads: intake (single and batch), list, get, patch, decisions, manual assignment, reroute,
//! and the dry-run explain.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::DateTime;
use engine::LeadStatus;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use store::LeadFilter;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::api::{Page, access, check_reason, merge_patch};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, error_body};
use crate::extract::{Body, parse_checked};
use crate::leads::{
    DecisionView, LeadInput, LeadView, PlacedView, decision_view, lead_view, routed_decision_view,
};
use crate::ops::Operation;
use crate::routing::{Created, LeadOp, LeadPatch};

/// Leads in one batch at most.
pub const MAX_BATCH: usize = 1000;

async fn latest_decision(app: &AppState, lead_id: &str) -> ApiResult<Option<DecisionView>> {
    Ok(app
        .store
        .decisions_for(lead_id)
        .await?
        .first()
        .map(decision_view))
}

async fn placed(app: &AppState, created: Created) -> ApiResult<(StatusCode, PlacedView)> {
    Ok(match created {
        Created::New {
            lead,
            decision,
            record,
            matched,
        } => (
            StatusCode::CREATED,
            PlacedView {
                lead: lead_view(&lead),
                decision: Some(routed_decision_view(&decision, record.as_deref())),
                duplicate: Some(false),
                matched,
            },
        ),
        Created::Duplicate { lead } => (
            StatusCode::OK,
            PlacedView {
                decision: latest_decision(app, &lead.id).await?,
                lead: lead_view(&lead),
                duplicate: Some(true),
                matched: None,
            },
        ),
        Created::Attached { lead, matched } => (
            StatusCode::OK,
            PlacedView {
                decision: latest_decision(app, &lead.id).await?,
                lead: lead_view(&lead),
                duplicate: Some(true),
                matched: Some(matched),
            },
        ),
        Created::Planned { .. } => {
            return Err(ApiError::internal(
                "a dry run's answer where a lead was made",
            ));
        }
    })
}

/// Create one lead and route it at once.
#[utoipa::path(post, path = "/api/v1/leads", tag = "leads", request_body = LeadInput,
    responses((status = 201, description = "Created and routed: `{lead, decision, duplicate: false}`"),
              (status = 200, description = "A lead with this external_id exists: `{lead, decision, duplicate: true}`"),
              (status = 400, description = "Malformed JSON or unknown field"), (status = 422, description = "Invalid value")),
    security(("api_key" = [])))]
pub async fn create_lead(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Body(input): Body<LeadInput>,
) -> ApiResult<Response> {
    caller.may(Operation::CreateLead)?;
    let lead = match input.normalised() {
        Ok(lead) => lead,
        Err(error) => {
            app.metrics.count_intake("api", "rejected");
            return Err(error);
        }
    };
    let mut results = app.router.create(vec![lead], &caller.actor()).await?;
    let created = results
        .pop()
        .ok_or_else(|| ApiError::internal("no result for a lead"))?;
    app.metrics.count_created("api", &created);
    let created = created?;
    if let Some(receipt) = receipt(&app, &caller, &created).await? {
        let status = match created {
            Created::New { .. } | Created::Planned { .. } => StatusCode::CREATED,
            Created::Duplicate { .. } | Created::Attached { .. } => StatusCode::OK,
        };
        return Ok((status, Json(receipt)).into_response());
    }
    // Written straight from the typed view: the record and explanation go out as the text
    // the worker rendered, not parsed into a tree and written again.
    let (status, body) = placed(&app, created).await?;
    Ok((status, Json(body)).into_response())
}

/// What a caller who may not read the lead learns of its intake: `{id, duplicate}`. An
/// integration key writes leads without reading them, and a manager re-posting another team's
/// customer learns no more than that it was known.
async fn receipt(app: &AppState, caller: &Caller, created: &Created) -> ApiResult<Option<Value>> {
    let (lead, duplicate) = match created {
        Created::New { lead, .. } => (lead, false),
        Created::Duplicate { lead } | Created::Attached { lead, .. } => (lead, true),
        // A dry run is only for callers who may explain routing; nothing was made.
        Created::Planned { .. } => return Ok(None),
    };
    let reads = match caller.role {
        _ if caller.may(Operation::GetLead).is_err() => false,
        // A lead they just made is theirs to see; one that existed is checked like a read.
        crate::auth::Role::Manager if duplicate => {
            access::lead(app, caller, &lead.id).await.is_ok()
        }
        _ => true,
    };
    let matched = match created {
        Created::New { matched, .. } => matched.clone(),
        Created::Attached { matched, .. } => Some(matched.clone()),
        _ => None,
    };
    Ok((!reads).then(|| match matched {
        Some(matched) => json!({"id": lead.id, "duplicate": duplicate, "match": matched}),
        None => json!({"id": lead.id, "duplicate": duplicate}),
    }))
}

/// One item of a batch's answer.
#[derive(Debug, Serialize)]
pub struct BatchItem {
    pub index: usize,
    /// `created`, `duplicate` (a known external id), `attached` (a known customer's open lead
    /// took the arrival as a touch), `planned` (a dry run: what would be) or `error`.
    pub result: &'static str,
    /// The customer's stored lead, when the duplicate policy recognised them.
    #[serde(rename = "match", skip_serializing_if = "Option::is_none")]
    pub matched: Option<crate::routing::Matched>,
    /// The lead's id, alone, for callers who may not read the lead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lead: Option<LeadView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<DecisionView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}

impl BatchItem {
    fn new(index: usize) -> BatchItem {
        BatchItem {
            index,
            result: "error",
            matched: None,
            id: None,
            lead: None,
            decision: None,
            error: None,
        }
    }

    fn error(index: usize, error: &ApiError) -> BatchItem {
        BatchItem {
            error: Some(error_body(error)),
            ..BatchItem::new(index)
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchInput {
    /// Up to 1,000 leads, each as for `POST /api/v1/leads`.
    #[schema(value_type = Vec<LeadInput>)]
    pub leads: Vec<Box<serde_json::value::RawValue>>,
    /// `arrival` (the default: one by one, in order), `optimal` (批量最优分配: the batch
    /// placed as a whole by value × fit under caps and the fairness band; see docs/batch.md)
    /// or `migrate` (moving in from another CRM: each item also names its `owner` — a rep's
    /// id, email or name — `status`, `created_at` and `last_follow_up_at`, and is stored as it
    /// is, unrouted; admins and managers only; see docs/integrations.md).
    #[serde(default)]
    pub mode: Option<String>,
    /// With `optimal`: each rep within ± this share of their fair share (default 0.1), or
    /// `"none"` for caps only.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub band: Option<Value>,
    /// With `optimal`: return the plan and each lead's decision without writing anything
    /// (needs the right to explain routing).
    #[serde(default)]
    pub dry_run: bool,
}

/// Create up to 1,000 leads; each item succeeds or fails on its own. With `mode: optimal` the
/// batch is planned as a whole and the answer carries the `plan`.
#[utoipa::path(post, path = "/api/v1/leads/batch", tag = "leads", request_body = BatchInput,
    responses((status = 200, description = "`{items: [{index, result: created | duplicate | planned | error, lead, decision, error}], plan}`")),
    security(("api_key" = [])))]
pub async fn create_batch(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Body(batch): Body<BatchInput>,
) -> ApiResult<Json<BatchAnswer>> {
    caller.may(Operation::CreateLeads)?;
    let mode = crate::batch::mode(batch.mode.as_deref(), batch.band.as_ref())?;
    if batch.dry_run {
        if mode == crate::batch::Mode::Arrival {
            return Err(ApiError::invalid(
                "invalid_value",
                "dry_run",
                "a dry run plans an optimal batch: set mode to optimal (POST /api/v1/route/explain explains one lead)",
            ));
        }
        caller.may(Operation::ExplainRoute)?;
    }
    if batch.leads.len() > MAX_BATCH {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!("a batch has at most {MAX_BATCH} leads"),
        )
        .with_field("leads"));
    }
    // A migration sets owners by hand, as a manager's assignment does.
    let owners = match mode {
        crate::batch::Mode::Migrate => {
            caller.may(Operation::AssignLead)?;
            Some(crate::batch::Owners::new(&app.store.list_reps().await?))
        }
        _ => None,
    };
    let mut items: Vec<Option<BatchItem>> = (0..batch.leads.len()).map(|_| None).collect();
    let mut valid = Vec::new();
    let mut kept = Vec::new();
    let mut positions = Vec::new();
    for (index, raw) in batch.leads.iter().enumerate() {
        let parsed = match &owners {
            // The body's text was checked as a whole when it was parsed.
            None => parse_checked::<LeadInput>(raw.get().as_bytes())
                .and_then(|lead| lead.normalised())
                .map(|lead| (lead, None)),
            Some(owners) => serde_json::from_str::<serde_json::Map<String, Value>>(raw.get())
                .map_err(|_| ApiError::invalid("invalid_value", "", "expected a lead object"))
                .and_then(|document| crate::batch::migrated(document, owners))
                .map(|(lead, keeps)| (lead, Some(keeps))),
        };
        match parsed {
            Ok((lead, keeps)) => {
                valid.push(lead);
                kept.extend(keeps);
                positions.push(index);
            }
            Err(error) => {
                // Name the item in the field path: `leads[3].phone`.
                let field = match &error.field {
                    Some(field) if !field.is_empty() => format!("leads[{index}].{field}"),
                    _ => format!("leads[{index}]"),
                };
                items[index] = Some(BatchItem::error(index, &error.with_field(field)));
            }
        }
    }
    let (results, plan) = match mode {
        _ if valid.is_empty() => (Vec::new(), None),
        crate::batch::Mode::Arrival => (app.router.create(valid, &caller.actor()).await?, None),
        crate::batch::Mode::Migrate => (
            app.router.migrate(valid, kept, &caller.actor()).await?,
            None,
        ),
        crate::batch::Mode::Optimal(settings) => {
            let (results, summary) = app
                .router
                .create_planned(valid, &caller.actor(), settings, batch.dry_run)
                .await?;
            (results, Some(crate::batch::summary_view(&summary)))
        }
    };
    if !batch.dry_run {
        // Items answered already were refused before routing (they did not parse).
        for _ in items.iter().flatten() {
            app.metrics.count_intake("batch", "rejected");
        }
        for result in &results {
            app.metrics.count_created("batch", result);
        }
    }
    for (index, result) in positions.into_iter().zip(results) {
        if let Ok(created) = &result
            && let Some(receipt) = receipt(&app, &caller, created).await?
        {
            items[index] = Some(BatchItem {
                index,
                result: match created {
                    Created::Attached { .. } => "attached",
                    Created::Duplicate { .. } => "duplicate",
                    _ => "created",
                },
                matched: match created {
                    Created::New { matched, .. } => matched.clone(),
                    Created::Attached { matched, .. } => Some(matched.clone()),
                    _ => None,
                },
                id: receipt["id"].as_str().map(str::to_owned),
                ..BatchItem::new(index)
            });
            continue;
        }
        items[index] = Some(match result {
            Ok(Created::New {
                lead,
                decision,
                record,
                matched,
            }) => BatchItem {
                result: "created",
                lead: Some(lead_view(&lead)),
                decision: Some(routed_decision_view(&decision, record.as_deref())),
                matched,
                ..BatchItem::new(index)
            },
            Ok(Created::Duplicate { lead }) => BatchItem {
                result: "duplicate",
                lead: Some(lead_view(&lead)),
                ..BatchItem::new(index)
            },
            Ok(Created::Attached { lead, matched }) => BatchItem {
                result: "attached",
                lead: Some(lead_view(&lead)),
                matched: Some(matched),
                ..BatchItem::new(index)
            },
            Ok(Created::Planned { decision, .. }) => BatchItem {
                result: "planned",
                decision: Some(decision_view(&decision)),
                ..BatchItem::new(index)
            },
            Err(error) => BatchItem::error(index, &error),
        });
    }
    // Written straight from the typed items, as a single lead's answer is: each decision's
    // record goes out as the text the worker rendered, not parsed into a tree and written again.
    Ok(Json(BatchAnswer {
        items: items.into_iter().flatten().collect(),
        next_cursor: None,
        plan,
    }))
}

/// A batch's answer: an item per lead, in order, and the plan of an optimal batch.
#[derive(Debug, Serialize)]
pub struct BatchAnswer {
    pub items: Vec<BatchItem>,
    /// Always `null`: the answer holds every item.
    pub next_cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Value>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LeadQuery {
    pub owner_id: Option<String>,
    pub team_id: Option<String>,
    pub status: Option<String>,
    pub tag: Option<String>,
    pub source: Option<String>,
    /// RFC 3339.
    pub created_from: Option<String>,
    /// RFC 3339, exclusive.
    pub created_to: Option<String>,
    /// Searches name, company, phone, email and the other fields.
    pub q: Option<String>,
    /// Leads waiting in this pool.
    pub pool_id: Option<String>,
    /// `true`: only leads waiting in the hold queue, nobody able to take them yet.
    pub held: Option<bool>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

fn instant(value: &Option<String>, field: &str) -> ApiResult<Option<i64>> {
    value
        .as_deref()
        .map(|text| {
            DateTime::parse_from_rfc3339(text)
                .map(|time| time.timestamp_micros())
                .map_err(|_| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_value",
                        "expected an RFC 3339 time",
                    )
                    .with_field(field)
                })
        })
        .transpose()
}

/// List leads, newest first.
#[utoipa::path(get, path = "/api/v1/leads", tag = "leads", params(LeadQuery),
    responses((status = 200, description = "`{items: [lead], next_cursor}`")), security(("api_key" = [])))]
pub async fn list_leads(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<LeadQuery>,
) -> ApiResult<Json<Value>> {
    caller.may(Operation::ListLeads)?;
    if let Some(status) = &query.status
        && LeadStatus::parse(status).is_none()
    {
        return Err(
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_value", "unknown status")
                .with_field("status"),
        );
    }
    let limit = Page {
        limit: query.limit,
        cursor: None,
    }
    .limit()?;
    let mut filter = LeadFilter {
        owner_id: query.owner_id.clone(),
        team_id: query.team_id.clone(),
        status: query.status.clone(),
        tag: query.tag.clone(),
        source: query.source.clone(),
        created_from: instant(&query.created_from, "created_from")?,
        created_to: instant(&query.created_to, "created_to")?,
        q: query.q.clone().filter(|q| !q.trim().is_empty()),
        pools: query.pool_id.clone().map(|pool| vec![pool]),
        held: query.held == Some(true),
        before_id: query.cursor.clone(),
        limit: limit + 1,
        ..LeadFilter::default()
    };
    access::scope(&app, &caller, &mut filter).await?;
    let mut rows = app.store.list_leads(&filter).await?;
    let next_cursor = crate::api::cut(&mut rows, limit, |row| &row.id);
    Ok(Json(
        json!({"items": rows.iter().map(|row| access::view(&caller, row)).collect::<Vec<_>>(), "next_cursor": next_cursor}),
    ))
}

/// One lead.
#[utoipa::path(get, path = "/api/v1/leads/{id}", tag = "leads", params(("id" = String, Path)),
    responses((status = 200, description = "The lead"), (status = 404, description = "No such lead")), security(("api_key" = [])))]
pub async fn get_lead(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<LeadView>> {
    caller.may(Operation::GetLead)?;
    let row = access::lead(&app, &caller, &id).await?;
    Ok(Json(access::view(&caller, &row)))
}

/// Change fields (a JSON merge of the lead's fields) or the status.
#[utoipa::path(patch, path = "/api/v1/leads/{id}", tag = "leads", params(("id" = String, Path)),
    request_body(content = Object, description = "Any lead fields to replace (null clears), and `status`; `won` needs `amount`, `lost` needs `lost_reason`"),
    responses((status = 200, description = "The lead"), (status = 409, description = "Illegal status change")), security(("api_key" = [])))]
pub async fn patch_lead(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Body(patch): Body<serde_json::Map<String, Value>>,
) -> ApiResult<Json<LeadView>> {
    caller.may(Operation::PatchLead)?;
    let row = access::lead(&app, &caller, &id).await?;
    let mut changes = LeadPatch::default();
    let mut patch = patch;
    if let Some(value) = patch.remove("status") {
        let status = value.as_str().and_then(LeadStatus::parse).ok_or_else(|| {
            ApiError::invalid(
                "invalid_value",
                "status",
                "status is new, assigned, contacted, qualified, won, lost or invalid",
            )
        })?;
        changes.status = Some(status);
    }
    if let Some(value) = patch.remove("amount") {
        changes.amount =
            Some(value.as_f64().ok_or_else(|| {
                ApiError::invalid("invalid_value", "amount", "amount is a number")
            })?);
    }
    if let Some(value) = patch.remove("lost_reason") {
        changes.lost_reason = Some(
            value
                .as_str()
                .ok_or_else(|| {
                    ApiError::invalid("invalid_value", "lost_reason", "lost_reason is text")
                })?
                .to_owned(),
        );
    }
    if !patch.is_empty() {
        let document: LeadInput = merge_patch(&row.document, patch, &["external_id"])?;
        changes.document = Some(document.normalised()?);
    }
    let closing = changes.status.is_some_and(|status| !status.is_open());
    let changed = app
        .router
        .change(&id, LeadOp::Update(changes), &caller.actor())
        .await?;
    if closing {
        // A closed lead frees its owner's holding cap.
        app.router.sweep_soon();
    }
    Ok(Json(access::view(&caller, &changed.lead)))
}

/// Every routing decision for the lead, newest first.
#[utoipa::path(get, path = "/api/v1/leads/{id}/decisions", tag = "leads", params(("id" = String, Path)),
    responses((status = 200, description = "`{items: [decision]}` with explanations in en and zh")), security(("api_key" = [])))]
pub async fn lead_decisions(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.may(Operation::ListDecisions)?;
    access::lead(&app, &caller, &id).await?;
    let rows = app.store.decisions_for(&id).await?;
    Ok(Json(
        json!({"items": rows.iter().map(decision_view).collect::<Vec<_>>(), "next_cursor": null}),
    ))
}

#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignInput {
    pub rep_id: String,
    #[serde(default)]
    pub reason: Option<String>,
    /// Assign even though another rep holds this customer (撞单, refused with
    /// `customer_held` otherwise); needs a reason.
    #[serde(default)]
    pub override_collision: bool,
}

/// Assign the lead to a rep by hand. The rep must be active and under their caps.
#[utoipa::path(post, path = "/api/v1/leads/{id}/assign", tag = "leads", params(("id" = String, Path)), request_body = AssignInput,
    responses((status = 200, description = "`{lead, decision}`"), (status = 409, description = "The rep cannot take it, or the lead is closed")),
    security(("api_key" = [])))]
pub async fn assign_lead(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Body(input): Body<AssignInput>,
) -> ApiResult<Json<Value>> {
    caller.may(Operation::AssignLead)?;
    check_reason(input.reason.as_deref())?;
    access::lead(&app, &caller, &id).await?;
    if caller.role == crate::auth::Role::Manager {
        access::rep_in_reach(&app, &caller, &input.rep_id)
            .await
            .map_err(|_| crate::auth::forbidden("a manager assigns to their teams' reps"))?;
    }
    let changed = app
        .router
        .change_with_audit(
            &id,
            LeadOp::Assign {
                rep_id: input.rep_id,
                reason: input.reason,
                from_pool: false,
                override_collision: input.override_collision,
            },
            &caller.actor(),
            Some("lead.assigned_by_hand"),
        )
        .await?;
    Ok(Json(access::changed(&caller, &changed)))
}

/// Route the lead again under the active rule set, away from its current owner.
#[utoipa::path(post, path = "/api/v1/leads/{id}/reroute", tag = "leads", params(("id" = String, Path)),
    responses((status = 200, description = "`{lead, decision}`")), security(("api_key" = [])))]
pub async fn reroute_lead(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.may(Operation::RerouteLead)?;
    access::lead(&app, &caller, &id).await?;
    let changed = app
        .router
        .change_with_audit(&id, LeadOp::Reroute, &caller.actor(), Some("lead.rerouted"))
        .await?;
    Ok(Json(access::changed(&caller, &changed)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExplainInput {
    pub lead: LeadInput,
    /// A draft rule-set version to route under instead of the active one.
    #[serde(default)]
    pub rule_set_version: Option<i64>,
}

/// Dry run: route a lead document without storing anything.
#[utoipa::path(post, path = "/api/v1/route/explain", tag = "leads", request_body = ExplainInput,
    responses((status = 200, description = "`{decision: {outcome, owner_id, record, explanation}}`")), security(("api_key" = [])))]
pub async fn explain(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Body(input): Body<ExplainInput>,
) -> ApiResult<Json<Value>> {
    caller.may(Operation::ExplainRoute)?;
    let lead_input = input.lead.normalised()?;
    let rule_set = match input.rule_set_version {
        Some(version) => Some(
            app.store
                .get_rule_set(version)
                .await?
                .ok_or_else(|| ApiError::not_found("rule set"))?,
        ),
        None => None,
    };
    let crate::routing::Explained {
        decision,
        record,
        matched,
    } = app.router.explain(lead_input, rule_set).await??;
    let mut answer = json!({"decision": {
        "outcome": decision.outcome.code(),
        "owner_id": decision.owner().map(ToString::to_string),
        "explanation": {"en": record.explain(engine::Language::En), "zh": record.explain(engine::Language::Zh)},
        "record": record,
    }});
    // Intake would recognise the customer: say which lead, and what it would do.
    if let Some(matched) = matched {
        answer["match"] = json!(matched);
    }
    Ok(Json(answer))
}
