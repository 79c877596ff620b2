//! Distributing pool leads across a team as one optimised batch (公海批量分配): the manager
//! names the leads and the team, not the reps. Eligibility is routing's for a rule that targets
//! the team at any hour (as a manager's assignment ignores working hours); the placement is
//! `engine::batch`'s optimum. A lead the plan has no room for stays in its pool, with the reason.

use engine::{DecisionRecord, LeadStatus, Outcome};
use store::{DecisionRow, RoutingTx};

use super::*;
use crate::error::ApiError;

/// One pool lead's answer: changed, planned (a dry run), or why not.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // One per lead asked for, moved once to the answer.
pub enum Distributed {
    Assigned(Changed),
    Planned(DecisionRow),
}

/// What a distribution did to each lead asked for, in order, and what the plan was worth.
pub type Distribution = (
    Vec<(String, Result<Distributed, ApiError>)>,
    engine::batch::Summary,
);

/// The one-rule set a distribution routes under: the team, at any hour.
fn team_rules(cache: &Cache, team_id: &str) -> Result<engine::RuleSet, ApiError> {
    if cache.workspace.roster.team(team_id).is_none() {
        return Err(ApiError::invalid(
            "unknown_team",
            "team_id",
            "no team has that id",
        ));
    }
    let spec: engine::RuleSetSpec = serde_json::from_value(serde_json::json!({
        "name": "pool distribution",
        "rules": [{"id": "distribute", "name": "公海分配", "target": {"team": team_id}, "hours": "any_time"}],
    }))
    .map_err(ApiError::internal)?;
    engine::compile(
        &spec,
        engine::Known {
            catalogue: &cache.workspace.catalogue,
            roster: &cache.workspace.roster,
            pools: &[],
            sla_policies: &[],
        },
        0,
    )
    .map_err(|errors| ApiError::internal(format!("{errors:?}")))
}

#[allow(clippy::too_many_arguments)] // The worker's context, then the request's fields.
pub(super) async fn distribute(
    tx: &mut RoutingTx<'_>,
    cache: &mut Cache,
    writes: &mut Writes,
    lead_ids: &[String],
    team_id: &str,
    settings: &engine::batch::Settings,
    dry_run: bool,
    actor: &str,
) -> anyhow::Result<Result<Distribution, ApiError>> {
    let rules = match team_rules(cache, team_id) {
        Ok(rules) => rules,
        Err(error) => return Ok(Err(error)),
    };
    let mut answers: Vec<(String, Option<Result<Distributed, ApiError>>)> = Vec::new();
    let mut rows = Vec::new();
    for lead_id in lead_ids {
        if answers.iter().any(|(id, _)| id == lead_id) {
            continue;
        }
        let row = match movable_lead(tx, writes, lead_id).await? {
            Ok(row) if row.pool_id.is_some() && row.owner_id.is_none() => row,
            Ok(_) => {
                let error = ApiError::conflict("not_in_pool", "the lead is not waiting in a pool");
                answers.push((lead_id.clone(), Some(Err(error))));
                continue;
            }
            Err(error) => {
                answers.push((lead_id.clone(), Some(Err(error))));
                continue;
            }
        };
        answers.push((lead_id.clone(), None));
        rows.push((answers.len() - 1, row));
    }
    let known = known_customers(
        tx,
        &rows
            .iter()
            .map(|(_, row)| contact_of(row))
            .collect::<Vec<_>>(),
    )
    .await?;
    let mut leads = Vec::new();
    let mut kept = Vec::new();
    for (slot, row) in rows {
        match stored_lead(&row, cache, &known) {
            Ok(lead) => {
                leads.push(lead);
                kept.push((slot, row));
            }
            Err(error) => answers[slot].1 = Some(Err(error)),
        }
    }
    let now = now();
    let references: Vec<&engine::Lead> = leads.iter().collect();
    let plan = plan_batch(cache, &rules, &references, *settings, &[], now);
    for (((slot, mut row), lead), decision) in kept.into_iter().zip(&leads).zip(&plan.decisions) {
        let record = DecisionRecord::new(decision, &rules, &cache.workspace.roster, lead)
            .with_win(decision, cache.workspace.model.as_ref());
        let answer = match (&decision.outcome, dry_run) {
            (Outcome::Assigned { .. }, true) => Ok(Distributed::Planned(decision_row(
                &row.id,
                "distribute",
                actor,
                None,
                decision,
                &record,
            )?)),
            (Outcome::Assigned { rep }, false) => {
                apply(cache, writes, &decision.changes);
                let previous_pool = row.pool_id.take();
                row.last_pool = previous_pool.clone();
                row.owner_id = Some(rep.to_string());
                row.team_id = Some(team_id.to_owned());
                row.held = false;
                row.status = LeadStatus::Assigned.as_str().to_owned();
                row.updated_at = now.timestamp_micros();
                follow_up::hand_over(
                    cache,
                    writes,
                    &mut row,
                    None,
                    follow_up::Handover::Assigned,
                    now,
                );
                let decision_row =
                    decision_row(&row.id, "distribute", actor, None, decision, &record)?;
                writes.audits.push(store::AuditRow::new(
                    actor.to_owned(),
                    "lead.assigned_from_pool",
                    "lead",
                    Some(&row.id),
                    &serde_json::json!({"from_pool": previous_pool, "to": rep.as_str(),
                                        "team_id": team_id, "batch": true}),
                    now.timestamp_micros(),
                ));
                remember(writes, &row);
                writes.decisions.push(decision_row.clone());
                Ok(Distributed::Assigned(Changed::lead(
                    row,
                    Some(decision_row),
                )))
            }
            _ => Err(ApiError::conflict(
                "no_room",
                "no rep of the team has room for it within caps and the band; it stays in the pool",
            )),
        };
        answers[slot].1 = Some(answer);
    }
    let answers = answers
        .into_iter()
        .map(|(id, answer)| {
            (
                id,
                answer.unwrap_or_else(|| Err(ApiError::internal("a lead went unanswered"))),
            )
        })
        .collect();
    Ok(Ok((answers, plan.summary)))
}
