//! The pool (公海) inside the routing worker: claims, releases, and leads going back to a pool
//! when a clock runs out. A claim is checked and written under the routing lock, so the first
//! valid claim of a lead wins on every instance and the holding cap is the one routing uses.

use chrono::{DateTime, Utc};
use engine::hours::{LocalNow, Period};
use engine::pool::{ClaimContext, ClaimRefusal, PoolRules};
use engine::{LeadStatus, RepId};
use serde_json::json;
use store::{DecisionRow, LeadRow, RoutingTx};

use super::follow_up::{Handover, hand_over, instant, micros};
use super::{Cache, Changed, Writes, apply, movable_lead, new_id, now, release, remember};
use crate::error::ApiError;

fn refusal(refusal: &ClaimRefusal) -> ApiError {
    match refusal {
        ClaimRefusal::UnknownRep => ApiError::invalid("unknown_rep", "rep_id", refusal.message()),
        _ => ApiError::conflict(refusal.code(), refusal.message()),
    }
}

/// A decision row for an owner change that is not a routing decision (claim, release,
/// recycle), with its explanation in both languages.
#[allow(clippy::too_many_arguments)]
pub(super) fn plain_decision(
    row: &LeadRow,
    kind: &str,
    actor: &str,
    reason: Option<String>,
    previous: Option<&str>,
    english: String,
    chinese: String,
    now: DateTime<Utc>,
) -> DecisionRow {
    let outcome = if row.owner_id.is_some() {
        "assigned"
    } else if row.pool_id.is_some() {
        "pooled"
    } else {
        "held"
    };
    DecisionRow {
        id: new_id(),
        lead_id: row.id.clone(),
        kind: kind.to_owned(),
        actor: actor.to_owned(),
        reason: reason.clone(),
        rule_set_version: None,
        outcome: outcome.to_owned(),
        owner_id: row.owner_id.clone(),
        record: json!({
            "outcome": outcome,
            "owner": row.owner_id,
            "pool": row.pool_id,
            "previous_owner": previous,
            "kind": kind,
            "reason": reason,
        })
        .to_string(),
        created_at: micros(now),
        explanation: json!({"en": english, "zh": chinese}).to_string(),
    }
}

fn rules_of(cache: &Cache, pool: &str) -> PoolRules {
    cache
        .workspace
        .follow
        .pools
        .get(pool)
        .cloned()
        .unwrap_or_else(|| PoolRules {
            id: pool.to_owned(),
            ..PoolRules::default()
        })
}

/// The start of the rep's day (in their zone), in micros: claim limits are per day.
pub(crate) fn day_start(roster: &engine::Roster, rep: &RepId, now: DateTime<Utc>) -> i64 {
    let zone = roster
        .position(rep)
        .map_or(chrono_tz::UTC, |position| roster.rep(position).time_zone);
    LocalNow::new(now, zone)
        .period_start(Period::Day)
        .and_hms_opt(0, 0, 0)
        .and_then(|midnight| midnight.and_local_timezone(zone).earliest())
        .map_or(micros(now), |start| micros(start.with_timezone(&Utc)))
}

/// Claims made by the rep since the start of their day, counting this transaction's.
async fn claims_today(
    tx: &mut RoutingTx<'_>,
    cache: &Cache,
    writes: &Writes,
    rep: &RepId,
    now: DateTime<Utc>,
) -> anyhow::Result<u32> {
    let start = day_start(&cache.workspace.roster, rep, now);
    let stored = tx.claims_since(rep.as_str(), start).await?;
    let pending = writes
        .decisions
        .iter()
        .filter(|row| {
            row.kind == "claim"
                && row.owner_id.as_deref() == Some(rep.as_str())
                && row.created_at >= start
        })
        .count() as i64;
    Ok(u32::try_from(stored + pending).unwrap_or(u32::MAX))
}

pub(super) async fn claim(
    tx: &mut RoutingTx<'_>,
    cache: &mut Cache,
    writes: &mut Writes,
    lead_id: &str,
    rep_id: &str,
    actor: &str,
) -> anyhow::Result<Result<Changed, ApiError>> {
    let mut row = match movable_lead(tx, writes, lead_id).await? {
        Ok(row) => row,
        Err(error) => return Ok(Err(error)),
    };
    let Some(pool) = row.pool_id.clone().filter(|_| row.owner_id.is_none()) else {
        return Ok(Err(refusal(&ClaimRefusal::NotInPool)));
    };
    let rep = RepId::new(rep_id);
    let now = now();
    let stored_block = tx.claim_block(&row.id, rep_id).await?;
    let pending_block = writes
        .claim_blocks
        .get(&(row.id.clone(), rep_id.to_owned()))
        .copied();
    let context = ClaimContext {
        claims_today: claims_today(tx, cache, writes, &rep, now).await?,
        blocked_until: pending_block.or(stored_block).map(instant),
    };
    if let Some(holder) = super::duplicates::holder(tx, cache, writes, &row, rep_id, now).await? {
        return Ok(Err(super::duplicates::collision(cache, &holder)));
    }
    let rules = rules_of(cache, &pool);
    let changes = match engine::pool::claim(
        &rules,
        &cache.workspace.roster,
        &cache.state,
        &rep,
        context,
        now,
    ) {
        Ok(changes) => changes,
        Err(refused) => return Ok(Err(refusal(&refused))),
    };
    apply(cache, writes, &changes);
    row.owner_id = Some(rep_id.to_owned());
    row.pool_id = None;
    row.held = false;
    if row.status == LeadStatus::New.as_str() {
        row.status = LeadStatus::Assigned.as_str().to_owned();
    }
    row.updated_at = micros(now);
    row.last_pool = Some(pool.clone());
    hand_over(cache, writes, &mut row, None, Handover::Claimed, now);
    let name = rep_name(cache, &rep);
    let decision = plain_decision(
        &row,
        "claim",
        actor,
        None,
        None,
        format!("Claimed from pool {pool} by {name}"),
        format!("{name} 从公海 {pool} 领取"),
        now,
    );
    writes.event(
        "lead.claimed",
        &row,
        &[Some(rep_id)],
        json!({"pool_id": pool}),
        now,
    );
    remember(writes, &row);
    writes.decisions.push(decision.clone());
    Ok(Ok(Changed::lead(row, Some(decision))))
}

fn rep_name(cache: &Cache, rep: &RepId) -> String {
    let roster = &cache.workspace.roster;
    roster.position(rep).map_or_else(
        || rep.to_string(),
        |position| roster.rep(position).name.clone(),
    )
}

/// Why a lead went back to a pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Return {
    /// By the owner, with their reason.
    Released(Option<String>),
    SlaPool,
    HopLimit,
    Recycled,
    NotTouched,
    ProtectionEnded,
}

impl Return {
    fn code(&self) -> &'static str {
        match self {
            Return::Released(_) => "released",
            Return::SlaPool => "sla_pool",
            Return::HopLimit => "hop_limit",
            Return::Recycled => "no_follow_up",
            Return::NotTouched => "not_touched",
            Return::ProtectionEnded => "protection_ended",
        }
    }

    fn words(&self) -> (&'static str, &'static str) {
        match self {
            Return::Released(_) => ("released by the owner", "负责人释放"),
            Return::SlaPool => ("no first response in time", "未及时首次跟进"),
            Return::HopLimit => (
                "reassigned too often without a response",
                "多次转派仍无人跟进",
            ),
            Return::Recycled => ("no follow-up for too long", "长期未跟进"),
            Return::NotTouched => ("claimed but not followed up in time", "领取后未及时跟进"),
            Return::ProtectionEnded => ("the protection period ended", "保护期已到"),
        }
    }
}

/// Takes the lead from its owner into a pool: its home pool unless `pool` names one. The
/// previous owner may not claim it back during the pool's cooldown. With no pool at all the
/// lead is held instead, never dropped.
pub(super) fn to_pool(
    cache: &mut Cache,
    writes: &mut Writes,
    row: &mut LeadRow,
    pool: Option<String>,
    why: Return,
    actor: &str,
    now: DateTime<Utc>,
) {
    let detail = match &why {
        Return::Released(reason) => reason.clone(),
        _ => None,
    };
    let previous = row.owner_id.clone();
    let pool = pool.or_else(|| {
        cache
            .workspace
            .follow
            .home_pool(row.last_pool.as_deref(), row.team_id.as_deref())
    });
    release(cache, writes, row);
    if let (Some(previous), Some(pool)) = (&previous, &pool) {
        let cooldown = rules_of(cache, pool).cooldown;
        if cooldown > chrono::Duration::zero() {
            writes
                .claim_blocks
                .insert((row.id.clone(), previous.clone()), micros(now + cooldown));
        }
    }
    row.owner_id = None;
    row.held = pool.is_none();
    row.pool_id = pool.clone();
    if row.status == LeadStatus::Assigned.as_str() {
        row.status = LeadStatus::New.as_str().to_owned();
    }
    row.updated_at = micros(now);
    hand_over(cache, writes, row, previous.clone(), Handover::Dropped, now);
    let (english, chinese) = why.words();
    let place = pool.as_deref().unwrap_or("the hold queue");
    let decision = plain_decision(
        row,
        "pool",
        actor,
        detail.clone().or_else(|| Some(why.code().to_owned())),
        previous.as_deref(),
        format!("Returned to {place}: {english}"),
        format!(
            "退回{}：{chinese}",
            pool.as_deref()
                .map_or("待分配队列".to_owned(), |pool| format!("公海 {pool}"))
        ),
        now,
    );
    let manager = cache
        .workspace
        .follow
        .manager(row.team_id.as_deref())
        .map(ToString::to_string);
    let tell_manager = matches!(why, Return::HopLimit | Return::SlaPool);
    writes.event(
        "lead.returned_to_pool",
        row,
        &[
            previous.as_deref(),
            manager.as_deref().filter(|_| tell_manager),
        ],
        json!({"pool_id": pool, "previous_owner_id": previous, "reason": why.code(), "detail": detail}),
        now,
    );
    remember(writes, row);
    writes.decisions.push(decision);
}

/// The owner gives the lead back.
pub(super) async fn give_back(
    tx: &mut RoutingTx<'_>,
    cache: &mut Cache,
    writes: &mut Writes,
    lead_id: &str,
    reason: Option<String>,
    pool: Option<String>,
    actor: &str,
) -> anyhow::Result<Result<Changed, ApiError>> {
    let mut row = match movable_lead(tx, writes, lead_id).await? {
        Ok(row) => row,
        Err(error) => return Ok(Err(error)),
    };
    if row.owner_id.is_none() {
        return Ok(Err(ApiError::conflict(
            "not_owned",
            "nobody owns the lead, so nobody can release it",
        )));
    }
    if let Some(pool) = &pool
        && !cache.workspace.follow.pools.contains_key(pool)
    {
        return Ok(Err(ApiError::invalid(
            "unknown_pool",
            "pool_id",
            format!("no pool has id {pool:?}"),
        )));
    }
    let now = now();
    to_pool(
        cache,
        writes,
        &mut row,
        pool,
        Return::Released(reason),
        actor,
        now,
    );
    let decision = writes.decisions.last().cloned();
    Ok(Ok(Changed::lead(row, decision)))
}
