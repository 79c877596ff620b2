//! The public pool (公海): leads waiting to be claimed, claims, releases, and a manager's batch
//! assignment from the pool.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use store::LeadFilter;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::api::access;
use crate::api::{Page, check_reason};
use crate::auth::Caller;
use crate::auth::{Role, forbidden};
use crate::error::{ApiError, ApiResult, error_body};
use crate::extract::Body;
use crate::ops::Operation;
use crate::routing::LeadOp;
use crate::workspace::{ConfigRows, build_workspace};

#[derive(Debug, Deserialize, IntoParams)]
pub struct PoolQuery {
    /// One pool; every pool (the rep may claim from) when left out.
    pub pool_id: Option<String>,
    /// List what this rep may claim, with their remaining claims today.
    pub rep_id: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Leads waiting in pools, newest first. With `rep_id`: only pools the rep belongs to, and the
/// rep's claim allowance for today.
#[utoipa::path(get, path = "/api/v1/pool", tag = "pool", params(PoolQuery),
    responses((status = 200, description = "`{items, next_cursor, pools, allowance}`"), (status = 404, description = "No such pool or rep")),
    security(("api_key" = [])))]
pub async fn list_pool(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(mut query): Query<PoolQuery>,
) -> ApiResult<Json<Value>> {
    caller.may(Operation::ListPool)?;
    if caller.role == Role::Rep {
        // A rep sees the pools they may claim from, as themselves.
        if query.rep_id.is_some() && query.rep_id != caller.rep_id {
            return Err(forbidden("a rep lists the pool for themselves"));
        }
        query.rep_id = caller.rep_id.clone();
    }
    let limit = Page {
        limit: query.limit,
        cursor: None,
    }
    .limit()?;
    let workspace = build_workspace(&ConfigRows::load(&app.store).await?);
    let follow = &workspace.follow;
    let mut pools: Vec<&engine::pool::PoolRules> = follow.pools.values().collect();
    pools.sort_by(|a, b| a.id.cmp(&b.id));
    if let Some(pool) = &query.pool_id {
        pools.retain(|rules| &rules.id == pool);
        if pools.is_empty() {
            return Err(ApiError::not_found("pool"));
        }
    }
    let mut allowance = Value::Null;
    if let Some(rep) = &query.rep_id {
        let rep = engine::RepId::new(rep.clone());
        if workspace.roster.position(&rep).is_none() {
            return Err(ApiError::not_found("rep"));
        }
        pools.retain(|rules| rules.admits(&workspace.roster, &rep));
        let now = chrono::Utc::now();
        let since = crate::routing::pool::day_start(&workspace.roster, &rep, now);
        let claimed = app.store.claims_since(rep.as_str(), since).await?;
        let per_pool: Vec<Value> = pools
            .iter()
            .map(|rules| {
                json!({
                    "pool_id": rules.id,
                    "claims_per_day": rules.claims_per_day,
                    "remaining": rules.claims_per_day.map(|limit| (i64::from(limit) - claimed).max(0)),
                })
            })
            .collect();
        allowance = json!({"claimed_today": claimed, "pools": per_pool});
    }
    let ids: Vec<String> = pools.iter().map(|rules| rules.id.clone()).collect();
    let filter = LeadFilter {
        pools: Some(ids.clone()),
        before_id: query.cursor,
        limit: limit + 1,
        ..LeadFilter::default()
    };
    let mut rows = app.store.list_leads(&filter).await?;
    let next_cursor = crate::api::cut(&mut rows, limit, |row| &row.id);
    Ok(Json(json!({
        "items": rows.iter().map(|row| access::view(&caller, row)).collect::<Vec<_>>(),
        "next_cursor": next_cursor,
        "pools": ids,
        "allowance": allowance,
    })))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimInput {
    pub rep_id: String,
}

/// Claim a lead from its pool. The first valid claim wins; others get 409 with the reason
/// (`not_in_pool`, `not_pool_member`, `claim_limit`, `claim_cooldown`, `holding_cap`,
/// `rep_unavailable`).
#[utoipa::path(post, path = "/api/v1/leads/{id}/claim", tag = "pool", params(("id" = String, Path)), request_body = ClaimInput,
    responses((status = 200, description = "`{lead, decision}`"), (status = 409, description = "Refused, with the reason")),
    security(("api_key" = [])))]
pub async fn claim(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Body(input): Body<ClaimInput>,
) -> ApiResult<Json<Value>> {
    caller.may(Operation::ClaimLead)?;
    match caller.role {
        Role::Rep if caller.rep_id.as_deref() != Some(input.rep_id.as_str()) => {
            return Err(forbidden("a rep claims for themselves"));
        }
        Role::Rep => {
            // Another rep's lead is not the rep's to know of: 404, as for reading it.
            let row = app.store.get_lead(&id).await?;
            if row.is_none_or(|row| row.owner_id.is_some() && row.owner_id != caller.rep_id) {
                return Err(ApiError::not_found("lead"));
            }
        }
        Role::Manager => access::rep_in_reach(&app, &caller, &input.rep_id)
            .await
            .map_err(|_| forbidden("a manager claims for their teams' reps"))?,
        _ => {}
    }
    let changed = app
        .router
        .change(
            &id,
            LeadOp::Claim {
                rep_id: input.rep_id,
            },
            &caller.actor(),
        )
        .await?;
    Ok(Json(access::changed(&caller, &changed)))
}

#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseInput {
    /// Why the owner gives it back, at most 500 characters.
    #[serde(default)]
    pub reason: Option<String>,
    /// The pool to put it in; the one it came from (or its team's, or `public`) when left out.
    #[serde(default)]
    pub pool_id: Option<String>,
}

/// The owner gives a lead back to a pool. They cannot claim it again during the pool's cooldown.
#[utoipa::path(post, path = "/api/v1/leads/{id}/release", tag = "pool", params(("id" = String, Path)), request_body = ReleaseInput,
    responses((status = 200, description = "`{lead, decision}`"), (status = 409, description = "Nobody owns it, or it is closed")),
    security(("api_key" = [])))]
pub async fn release(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Body(input): Body<ReleaseInput>,
) -> ApiResult<Json<Value>> {
    caller.may(Operation::ReleaseLead)?;
    check_reason(input.reason.as_deref())?;
    access::lead(&app, &caller, &id).await?;
    let changed = app
        .router
        .change_with_audit(
            &id,
            LeadOp::Release {
                reason: input.reason,
                pool_id: input.pool_id,
            },
            &caller.actor(),
            Some("lead.released"),
        )
        .await?;
    Ok(Json(access::changed(&caller, &changed)))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolAssignInput {
    /// Up to 500 leads waiting in pools.
    pub lead_ids: Vec<String>,
    pub rep_id: String,
    #[serde(default)]
    pub reason: Option<String>,
    /// Assign even where another rep holds the customer (撞单); needs a reason.
    #[serde(default)]
    pub override_collision: bool,
}

/// A manager assigns leads from the pool to a rep, one result per lead; the rep's caps apply.
#[utoipa::path(post, path = "/api/v1/pool/assign", tag = "pool", request_body = PoolAssignInput,
    responses((status = 200, description = "`{items: [{lead_id, status, lead | error}]}`")), security(("api_key" = [])))]
pub async fn assign_from_pool(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Body(input): Body<PoolAssignInput>,
) -> ApiResult<Json<Value>> {
    caller.may(Operation::AssignFromPool)?;
    if caller.role == Role::Manager {
        access::rep_in_reach(&app, &caller, &input.rep_id)
            .await
            .map_err(|_| forbidden("a manager assigns to their teams' reps"))?;
    }
    if input.lead_ids.is_empty() || input.lead_ids.len() > 500 {
        return Err(ApiError::invalid(
            "invalid_value",
            "lead_ids",
            "between 1 and 500 leads",
        ));
    }
    let mut items = Vec::with_capacity(input.lead_ids.len());
    for lead_id in &input.lead_ids {
        let result = app
            .router
            .change_with_audit(
                lead_id,
                LeadOp::Assign {
                    rep_id: input.rep_id.clone(),
                    reason: input.reason.clone(),
                    from_pool: true,
                    override_collision: input.override_collision,
                },
                &caller.actor(),
                Some("lead.assigned_from_pool"),
            )
            .await;
        items.push(match result {
            Ok(changed) => {
                json!({"lead_id": lead_id, "status": 200, "lead": access::view(&caller, &changed.lead)})
            }
            Err(error) => json!({
                "lead_id": lead_id,
                "status": error.status.as_u16(),
                "error": error_body(&error),
            }),
        });
    }
    Ok(Json(json!({"items": items})))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolDistributeInput {
    /// Up to 500 leads waiting in pools.
    pub lead_ids: Vec<String>,
    /// The team whose reps share them; a manager names one of their own.
    pub team_id: String,
    /// Each rep within ± this share of their fair share (default 0.1), or `"none"`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub band: Option<Value>,
    /// Return the plan without assigning anything.
    #[serde(default)]
    pub dry_run: bool,
}

/// Distribute pool leads across a team as one optimised batch (公海批量分配): by value and fit
/// under each rep's caps and the fairness band, without naming reps. With `dry_run`, the plan
/// only. One result per lead; a lead nobody has room for stays in the pool (`no_room`).
#[utoipa::path(post, path = "/api/v1/pool/distribute", operation_id = "distribute_pool", tag = "pool", request_body = PoolDistributeInput,
    responses((status = 200, description = "`{items: [{lead_id, status, lead | decision | error}], plan}`"),
        (status = 422, description = "`unknown_team`, `invalid_value`")), security(("api_key" = [])))]
pub async fn distribute(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Body(input): Body<PoolDistributeInput>,
) -> ApiResult<Json<Value>> {
    caller.may(Operation::DistributePool)?;
    if caller.role == Role::Manager && !caller.teams.contains(&input.team_id) {
        return Err(forbidden("a manager distributes across their own teams"));
    }
    if input.lead_ids.is_empty() || input.lead_ids.len() > 500 {
        return Err(ApiError::invalid(
            "invalid_value",
            "lead_ids",
            "between 1 and 500 leads",
        ));
    }
    let crate::batch::Mode::Optimal(settings) =
        crate::batch::mode(Some("optimal"), input.band.as_ref())?
    else {
        return Err(ApiError::internal("an optimal mode expected"));
    };
    let (answers, summary) = app
        .router
        .distribute(
            input.lead_ids,
            &input.team_id,
            &caller.actor(),
            settings,
            input.dry_run,
        )
        .await?;
    let items: Vec<Value> = answers
        .into_iter()
        .map(|(lead_id, answer)| match answer {
            Ok(crate::routing::Distributed::Assigned(changed)) => {
                json!({"lead_id": lead_id, "status": 200, "lead": access::view(&caller, &changed.lead),
                       "decision": changed.decision.as_ref().map(crate::leads::decision_view)})
            }
            Ok(crate::routing::Distributed::Planned(decision)) => {
                json!({"lead_id": lead_id, "status": 200, "decision": crate::leads::decision_view(&decision)})
            }
            Err(error) => json!({
                "lead_id": lead_id,
                "status": error.status.as_u16(),
                "error": error_body(&error),
            }),
        })
        .collect();
    Ok(Json(
        json!({"items": items, "plan": crate::batch::summary_view(&summary)}),
    ))
}
