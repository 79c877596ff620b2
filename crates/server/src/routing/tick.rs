//! Firing due timers. A tick takes the earliest due timers (locked on PostgreSQL, skipping rows
//! another instance holds), does what each asks — a reminder, an escalation, a reclaim, a
//! return to the pool — and deletes it in the same transaction as its effects: a timer fires
//! once, whether the service was running when it fell due or started later.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use engine::follow_up::{SlaAction, TimerKind};
use engine::{LeadStatus, RepId};
use serde_json::json;
use store::{LeadRow, RoutingTx, TimerRow};

use super::follow_up::{Handover, after, hand_over, micros, planned, timer_row};
use super::pool::{Return, to_pool};
use super::{Cache, Writes, apply, decision_row, place, release, remember};
use crate::leads::engine_lead;

/// Timers fired in one transaction at most; a tick with more due leaves the rest to the next.
pub const TICK_LIMIT: i64 = 2000;

pub(super) async fn tick(
    tx: &mut RoutingTx<'_>,
    cache: &mut Cache,
    writes: &mut Writes,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let due = tx.due_timers(micros(now), TICK_LIMIT).await?;
    if due.is_empty() {
        return Ok(0);
    }
    let mut ids: Vec<String> = due.iter().map(|timer| timer.lead_id.clone()).collect();
    ids.sort();
    ids.dedup();
    let mut leads: HashMap<String, LeadRow> = tx
        .leads_by_ids(&ids)
        .await?
        .into_iter()
        .map(|row| (row.id.clone(), row))
        .collect();
    // This transaction may already have changed some of them.
    for row in &writes.changed_leads {
        if leads.contains_key(&row.id) {
            leads.insert(row.id.clone(), row.clone());
        }
    }
    let mut fired = due.len();
    for timer in due {
        writes.fired.push(timer.id.clone());
        // Timers of a lead reset earlier in this transaction were replaced already.
        if writes.timers_reset.contains(&timer.lead_id) {
            continue;
        }
        let Some(row) = leads.get_mut(&timer.lead_id) else {
            continue;
        };
        // Only a lead's next timer is stored. After it fires, the ones after it in the lead's
        // plan that are due already fire too, in order, and the first still to come is stored.
        let mut current = timer;
        loop {
            if !fire(cache, writes, row, &current, now) || writes.timers_reset.contains(&row.id) {
                // Stale, or the lead's clocks were set again (a reclaim, a return to the pool).
                break;
            }
            let planned = planned(&cache.workspace.follow, row, now);
            let Some(next) = after(planned, &current).next() else {
                break;
            };
            let next = timer_row(row, &next, now);
            if next.due_at > micros(now) {
                writes.reset_timers(&row.id, vec![next]);
                break;
            }
            fired += 1;
            current = next;
        }
    }
    Ok(fired)
}

/// Marks the lead's first response as late under its owner: the dashboard's missed and overdue
/// counts read this, and its missed count per rep reads the owners it was late under.
fn missed(writes: &mut Writes, row: &mut LeadRow, now: DateTime<Utc>) {
    let at = now.timestamp_micros();
    // On the row too, so a later change in this transaction writes it back as it is.
    row.sla_missed_at = Some(at);
    if let Some(owner) = &row.owner_id {
        let mut reps: Vec<String> = serde_json::from_str(&row.missed_by).unwrap_or_default();
        if !reps.contains(owner) {
            reps.push(owner.clone());
            row.missed_by = json!(reps).to_string();
        }
    }
    writes
        .sla_missed
        .entry(at)
        .or_default()
        .insert(row.id.clone(), row.missed_by.clone());
}

/// Does what one timer asks, if it still applies: the lead is open and has the owner the timer
/// was set for. False when it no longer applies.
fn fire(
    cache: &mut Cache,
    writes: &mut Writes,
    row: &mut LeadRow,
    timer: &TimerRow,
    now: DateTime<Utc>,
) -> bool {
    let open = LeadStatus::parse(&row.status).is_some_and(LeadStatus::is_open);
    if !open || row.owner_id.is_none() || row.owner_id != timer.owner_id {
        return false;
    }
    let Some(kind) = TimerKind::from_code(&timer.kind, timer.step) else {
        return false;
    };
    act(cache, writes, row, timer, kind, now);
    true
}

/// What the timer's kind asks for the lead.
fn act(
    cache: &mut Cache,
    writes: &mut Writes,
    row: &mut LeadRow,
    timer: &TimerRow,
    kind: TimerKind,
    now: DateTime<Utc>,
) {
    let owner = row.owner_id.clone();
    let manager = cache
        .workspace
        .follow
        .manager(row.team_id.as_deref())
        .map(ToString::to_string);
    let due = json!(super::follow_up::instant(timer.due_at).to_rfc3339());
    match kind {
        TimerKind::Sla(step) => {
            let follow = &cache.workspace.follow;
            let policy = row
                .sla_policy
                .as_ref()
                .and_then(|id| follow.policies.get(id))
                .map(|(policy, _)| policy.clone());
            let Some(action) = policy
                .as_ref()
                .and_then(|policy| policy.steps.get(usize::from(step)))
                .map(|step| step.action)
            else {
                return;
            };
            let payload = json!({"step": step + 1, "due_at": due, "sla_policy": row.sla_policy});
            match action {
                SlaAction::Remind => {
                    writes.event("lead.sla_reminder", row, &[owner.as_deref()], payload, now);
                    missed(writes, row, now);
                }
                SlaAction::Escalate => {
                    writes.event(
                        "lead.sla_escalated",
                        row,
                        &[owner.as_deref(), manager.as_deref()],
                        payload,
                        now,
                    );
                    missed(writes, row, now);
                }
                SlaAction::Reclaim => {
                    let hop_limit = policy.map_or(0, |policy| policy.hop_limit);
                    reclaim(cache, writes, row, i64::from(hop_limit), now)
                }
                SlaAction::Pool => {
                    to_pool(cache, writes, row, None, Return::SlaPool, "system", now)
                }
            }
        }
        TimerKind::Callback => writes.event(
            "lead.follow_up_due",
            row,
            &[owner.as_deref()],
            json!({"due_at": due}),
            now,
        ),
        TimerKind::RecycleWarning => {
            let recycle_at = cache
                .workspace
                .follow
                .policies
                .get(row.sla_policy.as_deref().unwrap_or("default"))
                .and_then(|(policy, _)| policy.cadence)
                .map(|cadence| {
                    (super::follow_up::instant(timer.due_at) + cadence.warn_before).to_rfc3339()
                });
            writes.event(
                "lead.recycle_warning",
                row,
                &[owner.as_deref()],
                json!({"recycle_at": recycle_at}),
                now,
            )
        }
        TimerKind::Recycle => to_pool(cache, writes, row, None, Return::Recycled, "system", now),
        TimerKind::ClaimTouch => {
            to_pool(cache, writes, row, None, Return::NotTouched, "system", now)
        }
        TimerKind::ProtectionEnd => to_pool(
            cache,
            writes,
            row,
            None,
            Return::ProtectionEnded,
            "system",
            now,
        ),
    }
}

/// Takes an unanswered lead back and routes it to someone who has not had it; after the
/// policy's hop limit it goes to the pool instead and the manager is told.
fn reclaim(
    cache: &mut Cache,
    writes: &mut Writes,
    row: &mut LeadRow,
    hop_limit: i64,
    now: DateTime<Utc>,
) {
    if row.hops >= hop_limit {
        to_pool(cache, writes, row, None, Return::HopLimit, "system", now);
        return;
    }
    let Ok(lead) = engine_lead(row, &cache.workspace.catalogue) else {
        return;
    };
    let previous = row.owner_id.clone();
    let mut exclude: Vec<RepId> = serde_json::from_str::<Vec<String>>(&row.previous_owners)
        .unwrap_or_default()
        .into_iter()
        .map(RepId::new)
        .collect();
    exclude.extend(previous.iter().map(|owner| RepId::new(owner.clone())));
    release(cache, writes, row);
    let (decision, record) = cache.workspace.decide(&cache.state, &lead, &exclude, now);
    place(row, &decision, &cache.workspace.rules);
    row.hops += 1;
    row.updated_at = micros(now);
    apply(cache, writes, &decision.changes);
    let manager = cache
        .workspace
        .follow
        .manager(row.team_id.as_deref())
        .map(ToString::to_string);
    let how = if row.owner_id.is_some() {
        Handover::Assigned
    } else {
        Handover::Dropped
    };
    writes.event(
        "lead.reclaimed",
        row,
        &[previous.as_deref(), manager.as_deref()],
        json!({"previous_owner_id": previous, "hops": row.hops, "outcome": decision.outcome.code()}),
        now,
    );
    hand_over(cache, writes, row, previous, how, now);
    match decision_row(
        &row.id,
        "reclaim",
        "system",
        Some("no first response in time".into()),
        &decision,
        &record,
    ) {
        Ok(decision_row) => writes.decisions.push(decision_row),
        Err(error) => tracing::error!(error = %error, "could not record a reclaim decision"),
    }
    remember(writes, row);
}
