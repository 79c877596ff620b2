//! What each routing job does to leads, inside the worker's transaction: a new lead routed
//! (the function intake and the dry run share), a reroute, an assignment by hand, a change of
//! fields or status (closing with its outcome), the hold-queue sweep, the leave hand-back, and
//! the dispatcher from a `LeadOp` to them.

use chrono::{DateTime, Utc};
use engine::{Decision, LeadStatus, RepId, RoutingState};
use store::{DecisionRow, LeadRow, RoutingTx};

use super::duplicates::{self, Customers, MatchAction, Matched, Verdict};
use super::*;
use crate::error::ApiError;
use crate::leads::LeadInput;
use crate::workspace::Workspace;

/// Who a new lead's known customer says should be offered it first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Affinity {
    pub owner: String,
    /// Under whichever rule matches (the duplicate policy found the customer's lead), not only
    /// under rules with owner affinity.
    pub always: bool,
}

impl Affinity {
    /// The owner of the customer's latest owned lead, for rules with owner affinity.
    pub(crate) fn known(owner: Option<&str>) -> Option<Affinity> {
        owner.map(|owner| Affinity {
            owner: owner.to_owned(),
            always: false,
        })
    }
}

/// What the duplicate policy's verdict means for routing a new lead: the owner to offer it to,
/// and the match to report. (`Attach` reaches here only in a dry run, which routes what
/// intake would attach, to its owner.)
pub(super) fn affinity(
    verdict: Verdict,
    known_owner: Option<String>,
) -> (Option<Affinity>, Option<Matched>) {
    let forced = |owner: Option<String>| {
        owner.map(|owner| Affinity {
            owner,
            always: true,
        })
    };
    match verdict {
        Verdict::New => (Affinity::known(known_owner.as_deref()), None),
        Verdict::Attach { lead, key } => (
            forced(lead.owner_id.clone()),
            Some(Matched {
                lead_id: lead.id,
                key,
                action: MatchAction::Attached,
            }),
        ),
        Verdict::Route { owner, matched, .. } => (
            forced(owner).or_else(|| Affinity::known(known_owner.as_deref())),
            Some(matched),
        ),
    }
}

/// Routes a new lead: the one function intake, the dry run and the simulator's replay share.
/// The lead's customer, if known, brings its owner (owner affinity). The decision's record is
/// left to callers that keep or show it (`Workspace::record`).
pub(crate) fn decide_new(
    workspace: &Workspace,
    state: &RoutingState,
    affinity: Option<&Affinity>,
    input: &LeadInput,
    now: DateTime<Utc>,
) -> Result<(engine::Lead, Decision), ApiError> {
    let mut lead = input.to_engine(&workspace.catalogue, now)?;
    if let Some(affinity) = affinity {
        lead.known_owner = Some(RepId::new(affinity.owner.clone()));
        lead.owner_affinity = affinity.always;
    }
    let decision = workspace.route(state, &lead, &[], now);
    Ok((lead, decision))
}

/// What one routing transaction knows of the customers arriving in it, growing as each arrival
/// is stored: leads by external id, owners by phone and email (owner affinity), and the
/// duplicate policy's customers.
pub(super) struct Arrivals {
    pub(super) external: HashMap<String, LeadRow>,
    pub(super) contacts: KnownCustomers,
    pub(super) customers: Customers,
}

/// A new arrival (its external id not known: the worker answers those): a known customer is
/// attached, routed to its owner or flagged as the duplicate policy says; anything else is
/// routed.
pub(super) fn create(
    cache: &mut Cache,
    writes: &mut Writes,
    arrivals: &mut Arrivals,
    input: &LeadInput,
    actor: &str,
) -> anyhow::Result<Result<Created, ApiError>> {
    let now = now();
    let keys = crate::customer::keys(input);
    let verdict = arrivals
        .customers
        .verdict(&cache.workspace.duplicates, &keys, now);
    if let Verdict::Attach { lead, key } = verdict {
        let (lead, matched) = duplicates::attach(
            cache,
            writes,
            &mut arrivals.customers,
            lead,
            input,
            &keys,
            key,
            actor,
            now,
        )?;
        if let Some(external_id) = &input.external_id {
            arrivals.external.insert(external_id.clone(), lead.clone());
        }
        return Ok(Ok(Created::Attached { lead, matched }));
    }
    let known_owner = arrivals
        .contacts
        .owner(input.phone.as_deref(), input.email.as_deref());
    let (affinity, matched) = affinity(verdict, known_owner);
    let (lead, decision) = match decide_new(
        &cache.workspace,
        &cache.state,
        affinity.as_ref(),
        input,
        now,
    ) {
        Ok(decided) => decided,
        Err(error) => return Ok(Err(error)),
    };
    Ok(Ok(commit_new(
        cache, writes, arrivals, input, &lead, &decision, matched, now, actor,
    )?))
}

/// A lead moving in from another CRM (`import --mode migrate`): stored as it is there — its
/// owner, status, created time and last follow-up — without routing, with a decision of kind
/// `import` saying so. Open leads count against the owner's 保有量 (not the period counts:
/// they were not assigned today) and their clocks run from their own times, so a lead untouched
/// for longer than the policy allows is reminded, escalated or reclaimed at the next tick.
pub(super) fn migrate(
    cache: &mut Cache,
    writes: &mut Writes,
    arrivals: &mut Arrivals,
    input: &LeadInput,
    kept: &Kept,
    actor: &str,
) -> anyhow::Result<Result<Created, ApiError>> {
    let now = now();
    let roster = &cache.workspace.roster;
    let Some(position) = roster.position_of(&kept.owner_id) else {
        return Ok(Err(ApiError::invalid(
            "unknown_rep",
            "owner",
            "no rep has that id",
        )));
    };
    if kept.status == LeadStatus::New {
        return Ok(Err(ApiError::invalid(
            "invalid_value",
            "status",
            "a migrated lead has an owner: its status is assigned, contacted, qualified, won, lost or invalid",
        )));
    }
    let follow_up = kept.last_follow_up.filter(|at| *at >= kept.created_at);
    if kept.created_at > now || follow_up.is_some_and(|at| at > now) {
        return Ok(Err(ApiError::invalid(
            "invalid_value",
            "created_at",
            "a migrated lead's times are not in the future",
        )));
    }
    let owner_name = roster.rep(position).name.clone();
    let owner = RepId::new(kept.owner_id.clone());
    let team_id = roster
        .teams()
        .find(|team| team.members.iter().any(|member| member.rep == owner))
        .map(|team| team.id.clone());
    let open = kept.status.is_open();
    let id = new_id();
    let mut row = LeadRow {
        id: id.clone(),
        external_id: input.external_id.clone(),
        document: serde_json::to_string(input)?,
        status: kept.status.as_str().to_owned(),
        owner_id: Some(kept.owner_id.clone()),
        team_id,
        source: input.source.clone(),
        phone: input.phone.clone(),
        email: input.email.clone(),
        tags: serde_json::to_string(&input.tags)?,
        score: input.score,
        priority: input.priority.clone(),
        created_at: kept.created_at.timestamp_micros(),
        updated_at: now.timestamp_micros(),
        assigned_at: Some(kept.created_at.timestamp_micros()),
        first_response_at: follow_up.map(|at| at.timestamp_micros()),
        last_activity_at: follow_up.map(|at| at.timestamp_micros()),
        closed_at: (!open).then(|| follow_up.unwrap_or(kept.created_at).timestamp_micros()),
        previous_owners: "[]".into(),
        ..LeadRow::default()
    };
    if open {
        row.sla_policy = cache
            .workspace
            .follow
            .clocks(None, row.team_id.as_deref())
            .map(|clocks| clocks.policy_id);
        apply(
            cache,
            writes,
            &[StateChange::Claimed { rep: owner.clone() }],
        );
    }
    follow_up::replan(cache, writes, &row, now);
    arrivals
        .contacts
        .remember(row.phone.as_deref(), row.email.as_deref(), &kept.owner_id);
    writes.note_owner(&row);
    duplicates::note_new(
        writes,
        &mut arrivals.customers,
        &row,
        &crate::customer::keys(input),
        None,
    );
    let last = follow_up.map(|at| crate::leads::time(at.timestamp_micros()));
    let record = serde_json::json!({
        "outcome": "imported",
        "owner": {"id": kept.owner_id, "name": owner_name},
        "status": kept.status.as_str(),
        "created_at": crate::leads::time(kept.created_at.timestamp_micros()),
        "last_follow_up_at": last,
    });
    let decision = DecisionRow {
        id: new_id(),
        lead_id: id,
        kind: "import".into(),
        actor: actor.to_owned(),
        reason: None,
        rule_set_version: None,
        outcome: "assigned".into(),
        owner_id: Some(kept.owner_id.clone()),
        record: record.to_string(),
        created_at: now.timestamp_micros(),
        explanation: serde_json::json!({
            "en": format!("Moved in from the previous system with its owner {owner_name}; not routed"),
            "zh": format!("从原系统迁入，保留原负责人 {owner_name}，未重新分配"),
        })
        .to_string(),
    };
    if let Some(external_id) = &row.external_id {
        arrivals.external.insert(external_id.clone(), row.clone());
    }
    writes.new_leads.push(row.clone());
    writes.decisions.push(decision.clone());
    Ok(Ok(Created::New {
        lead: row,
        decision,
        record: None,
        matched: None,
    }))
}

/// The row a new lead is stored as, placed where its decision put it.
fn new_row(
    id: String,
    input: &LeadInput,
    decision: &Decision,
    rules: &engine::RuleSet,
    now: DateTime<Utc>,
) -> anyhow::Result<LeadRow> {
    let mut row = LeadRow {
        id,
        external_id: input.external_id.clone(),
        document: serde_json::to_string(input)?,
        status: String::new(),
        owner_id: None,
        team_id: None,
        pool_id: None,
        held: false,
        source: input.source.clone(),
        phone: input.phone.clone(),
        email: input.email.clone(),
        tags: serde_json::to_string(&input.tags)?,
        score: input.score,
        priority: input.priority.clone(),
        created_at: now.timestamp_micros(),
        updated_at: now.timestamp_micros(),
        previous_owners: "[]".into(),
        ..LeadRow::default()
    };
    place(&mut row, decision, rules);
    Ok(row)
}

/// Stores a new lead with the decision made for it: intake's last step, one lead or a planned
/// batch.
#[allow(clippy::too_many_arguments)] // The worker's context, then the lead and its decision.
fn commit_new(
    cache: &mut Cache,
    writes: &mut Writes,
    arrivals: &mut Arrivals,
    input: &LeadInput,
    lead: &engine::Lead,
    decision: &Decision,
    matched: Option<Matched>,
    now: DateTime<Utc>,
    actor: &str,
) -> anyhow::Result<Created> {
    let record = cache.workspace.record(decision, lead);
    let id = new_id();
    let mut row = new_row(id.clone(), input, decision, &cache.workspace.rules, now)?;
    if let Some(owner) = &row.owner_id {
        arrivals
            .contacts
            .remember(row.phone.as_deref(), row.email.as_deref(), owner);
    }
    let how = handover(&row);
    follow_up::hand_over(cache, writes, &mut row, None, how, now);
    writes.note_owner(&row);
    apply(cache, writes, &decision.changes);
    let decision_row = decision_row(&id, "route", actor, None, decision, &record)?;
    if let Some(external_id) = &row.external_id {
        arrivals.external.insert(external_id.clone(), row.clone());
    }
    duplicates::note_new(
        writes,
        &mut arrivals.customers,
        &row,
        &crate::customer::keys(input),
        matched.as_ref(),
    );
    writes.new_leads.push(row.clone());
    writes.decisions.push(decision_row.clone());
    Ok(Created::New {
        lead: row,
        decision: decision_row,
        record: Some(Box::new(record)),
        matched,
    })
}

/// Creates a batch of new leads planned as a whole (批量最优分配): each lead's eligibility is
/// routing's, the placement the exact optimum of value × fit under caps and the band
/// (`engine::batch`). Duplicates (known or repeated external ids) and invalid leads are answered
/// as intake answers them. With `dry_run` nothing is written and each lead's answer is the
/// decision it would get.
pub(super) fn create_planned(
    cache: &mut Cache,
    writes: &mut Writes,
    arrivals: &mut Arrivals,
    inputs: &[LeadInput],
    settings: &engine::batch::Settings,
    dry_run: bool,
    actor: &str,
) -> anyhow::Result<(Vec<Result<Created, ApiError>>, engine::batch::Summary)> {
    let now = now();
    let policy = cache.workspace.duplicates.clone();
    let mut results: Vec<Option<Result<Created, ApiError>>> =
        (0..inputs.len()).map(|_| None).collect();
    let mut repeated = Vec::new();
    let mut seen = std::collections::HashSet::new();
    // A customer twice in the batch: the later arrivals wait for the first's lead, then go
    // through intake one by one.
    let mut customers_seen = std::collections::HashSet::new();
    let mut later = Vec::new();
    let mut planned: Vec<(usize, engine::Lead, Option<Matched>)> = Vec::new();
    for (index, input) in inputs.iter().enumerate() {
        if let Some(external_id) = &input.external_id {
            if let Some(existing) = arrivals.external.get(external_id) {
                results[index] = Some(Ok(Created::Duplicate {
                    lead: existing.clone(),
                }));
                continue;
            }
            if !seen.insert(external_id.clone()) {
                repeated.push((index, external_id.clone()));
                continue;
            }
        }
        let keys = crate::customer::keys(input);
        if policy.enabled() {
            let checked: Vec<_> = keys
                .iter()
                .filter(|(kind, _)| policy.keys.contains(kind))
                .collect();
            if checked.iter().any(|key| customers_seen.contains(*key)) {
                later.push(index);
                continue;
            }
            customers_seen.extend(checked.into_iter().cloned());
        }
        let verdict = arrivals.customers.verdict(&policy, &keys, now);
        if let Verdict::Attach { lead, key } = verdict {
            results[index] = Some(Ok(if dry_run {
                Created::Attached {
                    matched: Matched {
                        lead_id: lead.id.clone(),
                        key,
                        action: MatchAction::Attached,
                    },
                    lead,
                }
            } else {
                let (lead, matched) = duplicates::attach(
                    cache,
                    writes,
                    &mut arrivals.customers,
                    lead,
                    input,
                    &keys,
                    key,
                    actor,
                    now,
                )?;
                Created::Attached { lead, matched }
            }));
            continue;
        }
        let known_owner = arrivals
            .contacts
            .owner(input.phone.as_deref(), input.email.as_deref());
        let (affinity, matched) = affinity(verdict, known_owner);
        match input.to_engine(&cache.workspace.catalogue, now) {
            Ok(mut lead) => {
                if let Some(affinity) = affinity {
                    lead.known_owner = Some(RepId::new(affinity.owner));
                    lead.owner_affinity = affinity.always;
                }
                planned.push((index, lead, matched));
            }
            Err(error) => results[index] = Some(Err(error)),
        }
    }
    let leads: Vec<&engine::Lead> = planned.iter().map(|(_, lead, _)| lead).collect();
    let plan = plan_batch(cache, &cache.workspace.rules, &leads, *settings, &[], now);
    for ((index, lead, matched), decision) in planned.iter().zip(&plan.decisions) {
        let input = &inputs[*index];
        results[*index] = Some(Ok(if dry_run {
            let record = cache.workspace.record(decision, lead);
            let row = new_row(String::new(), input, decision, &cache.workspace.rules, now)?;
            Created::Planned {
                decision: decision_row(&row.id, "route", actor, None, decision, &record)?,
                lead: row,
            }
        } else {
            commit_new(
                cache,
                writes,
                arrivals,
                input,
                lead,
                decision,
                matched.clone(),
                now,
                actor,
            )?
        }));
    }
    for index in later {
        let input = &inputs[index];
        results[index] = Some(if dry_run {
            let known_owner = arrivals
                .contacts
                .owner(input.phone.as_deref(), input.email.as_deref());
            decide_new(
                &cache.workspace,
                &cache.state,
                Affinity::known(known_owner.as_deref()).as_ref(),
                input,
                now,
            )
            .and_then(|(lead, decision)| {
                let record = cache.workspace.record(&decision, &lead);
                let row = new_row(String::new(), input, &decision, &cache.workspace.rules, now)
                    .map_err(ApiError::internal)?;
                Ok(Created::Planned {
                    decision: decision_row(&row.id, "route", actor, None, &decision, &record)
                        .map_err(ApiError::internal)?,
                    lead: row,
                })
            })
        } else {
            create(cache, writes, arrivals, input, actor)?
        });
    }
    for (index, external_id) in repeated {
        results[index] = Some(match arrivals.external.get(&external_id) {
            Some(existing) => Ok(Created::Duplicate {
                lead: existing.clone(),
            }),
            None => Err(ApiError::conflict(
                "duplicate_in_batch",
                "the same external_id comes earlier in this batch",
            )
            .with_field("external_id")),
        });
    }
    let results = results
        .into_iter()
        .map(|result| {
            result.unwrap_or_else(|| Err(ApiError::internal("a lead of the batch went unanswered")))
        })
        .collect();
    Ok((results, plan.summary))
}

pub(super) async fn reroute(
    tx: &mut RoutingTx<'_>,
    cache: &mut Cache,
    writes: &mut Writes,
    lead_id: &str,
    actor: &str,
) -> anyhow::Result<Result<Changed, ApiError>> {
    let mut row = match movable_lead(tx, writes, lead_id).await? {
        Ok(row) => row,
        Err(error) => return Ok(Err(error)),
    };
    let known = known_customers(tx, &[contact_of(&row)]).await?;
    let lead = match stored_lead(&row, cache, &known) {
        Ok(lead) => lead,
        Err(error) => return Ok(Err(error)),
    };
    // Never back to the current owner.
    let exclude: Vec<RepId> = row
        .owner_id
        .iter()
        .map(|owner| RepId::new(owner.clone()))
        .collect();
    release(cache, writes, &row);
    let now = now();
    let (decision, record) = cache.workspace.decide(&cache.state, &lead, &exclude, now);
    let previous = row.owner_id.clone();
    place(&mut row, &decision, &cache.workspace.rules);
    row.updated_at = now.timestamp_micros();
    apply(cache, writes, &decision.changes);
    let how = handover(&row);
    follow_up::hand_over(cache, writes, &mut row, previous, how, now);
    let decision_row = decision_row(&row.id, "reroute", actor, None, &decision, &record)?;
    remember(writes, &row);
    writes.decisions.push(decision_row.clone());
    Ok(Ok(Changed::lead(row, Some(decision_row))))
}

#[allow(clippy::too_many_arguments)] // The worker's context, then the assignment's fields.
pub(super) async fn assign(
    tx: &mut RoutingTx<'_>,
    cache: &mut Cache,
    writes: &mut Writes,
    lead_id: &str,
    rep_id: &str,
    reason: Option<String>,
    (from_pool, override_collision): (bool, bool),
    actor: &str,
) -> anyhow::Result<Result<Changed, ApiError>> {
    let mut row = match movable_lead(tx, writes, lead_id).await? {
        Ok(row) => row,
        Err(error) => return Ok(Err(error)),
    };
    if from_pool && (row.pool_id.is_none() || row.owner_id.is_some()) {
        return Ok(Err(ApiError::conflict(
            "not_in_pool",
            "the lead is not waiting in a pool",
        )));
    }
    if row.owner_id.as_deref() == Some(rep_id) {
        return Ok(Err(ApiError::conflict(
            "already_owner",
            "the rep already owns this lead",
        )));
    }
    let rep = RepId::new(rep_id);
    let now = now();
    let collided = match duplicates::holder(tx, cache, writes, &row, rep_id, now).await? {
        None => None,
        Some(holder) if override_collision => {
            if reason
                .as_deref()
                .is_none_or(|reason| reason.trim().is_empty())
            {
                return Ok(Err(ApiError::invalid(
                    "reason_required",
                    "reason",
                    "overriding a collision (撞单) needs a reason",
                )));
            }
            Some(holder)
        }
        Some(holder) => return Ok(Err(duplicates::collision(cache, &holder))),
    };
    let changes = match engine::assign_manually(&cache.workspace.roster, &cache.state, &rep, now) {
        Ok(changes) => changes,
        Err(engine::route::ManualError::UnknownRep(_)) => {
            return Ok(Err(ApiError::invalid(
                "unknown_rep",
                "rep_id",
                "no rep has that id",
            )));
        }
        Err(engine::route::ManualError::Ineligible(exclusion)) => {
            return Ok(Err(ApiError::conflict(
                "rep_unavailable",
                format!("the rep cannot take the lead: {}", exclusion.code()),
            )
            .with_field("rep_id")));
        }
    };
    release(cache, writes, &row);
    apply(cache, writes, &changes);
    let roster = &cache.workspace.roster;
    let name = roster
        .position(&rep)
        .map(|position| roster.rep(position).name.clone())
        .unwrap_or_default();
    let previous = row.owner_id.clone();
    if let Some(pool) = &row.pool_id {
        row.last_pool = Some(pool.clone());
    }
    row.owner_id = Some(rep_id.to_owned());
    row.pool_id = None;
    row.held = false;
    row.status = LeadStatus::Assigned.as_str().to_owned();
    row.updated_at = now.timestamp_micros();
    follow_up::hand_over(
        cache,
        writes,
        &mut row,
        previous.clone(),
        follow_up::Handover::Assigned,
        now,
    );
    let explanation_en = format!(
        "Assigned by hand to {name}{}",
        reason
            .as_deref()
            .map(|reason| format!(": {reason}"))
            .unwrap_or_default()
    );
    let explanation_zh = format!(
        "手动分配给 {name}{}",
        reason
            .as_deref()
            .map(|reason| format!("：{reason}"))
            .unwrap_or_default()
    );
    let record = serde_json::json!({
        "outcome": "assigned",
        "owner": {"id": rep_id, "name": name},
        "previous_owner": previous,
        "manual": true,
        "reason": reason,
        "collision_override": collided.as_ref().map(|holder| serde_json::json!({
            "lead_id": holder.id,
            "owner_id": holder.owner_id,
        })),
    });
    let decision_row = DecisionRow {
        id: new_id(),
        lead_id: row.id.clone(),
        kind: "manual".into(),
        actor: actor.to_owned(),
        reason,
        rule_set_version: None,
        outcome: "assigned".into(),
        owner_id: Some(rep_id.to_owned()),
        record: record.to_string(),
        created_at: now.timestamp_micros(),
        explanation: serde_json::json!({"en": explanation_en, "zh": explanation_zh}).to_string(),
    };
    remember(writes, &row);
    writes.decisions.push(decision_row.clone());
    Ok(Ok(Changed::lead(row, Some(decision_row))))
}

/// Held leads the hold queue can release in one sweep at most.
const SWEEP_LIMIT: i64 = 500;

/// Routes held leads again, most urgent first, then oldest; those still nobody can take stay
/// held without a new decision.
pub(super) async fn sweep(
    tx: &mut RoutingTx<'_>,
    cache: &mut Cache,
    writes: &mut Writes,
) -> anyhow::Result<usize> {
    let mut released = 0;
    let held = tx.held_leads(SWEEP_LIMIT).await?;
    let known = known_customers(tx, &held.iter().map(contact_of).collect::<Vec<_>>()).await?;
    let any_optimal = cache.workspace.batches_backlogs();
    let mut batch = Vec::new();
    let mut single = Vec::new();
    for row in held {
        if writes
            .changed_leads
            .iter()
            .any(|changed| changed.id == row.id)
        {
            continue;
        }
        let Ok(lead) = stored_lead(&row, cache, &known) else {
            continue;
        };
        // Leads a team with the optimal batch policy would take are released together.
        let optimal = any_optimal && {
            let probe = cache.workspace.route(&cache.state, &lead, &[], now());
            cache.workspace.batched(&probe)
        };
        if optimal {
            batch.push((row, lead));
        } else {
            single.push((row, lead));
        }
    }
    if !batch.is_empty() {
        let plan = plan_backlog(cache, &batch, &[]);
        for ((row, lead), decision) in batch.iter().zip(plan.decisions) {
            if decision.outcome == Outcome::Held {
                continue;
            }
            let record = cache.workspace.record(&decision, lead);
            release_held(cache, writes, row.clone(), &decision, &record)?;
            released += 1;
        }
    }
    for (row, lead) in single {
        let (decision, record) = cache.workspace.decide(&cache.state, &lead, &[], now());
        if decision.outcome == Outcome::Held {
            continue;
        }
        release_held(cache, writes, row, &decision, &record)?;
        released += 1;
    }
    Ok(released)
}

/// A held lead placed by the decision made for it now.
fn release_held(
    cache: &mut Cache,
    writes: &mut Writes,
    mut row: LeadRow,
    decision: &Decision,
    record: &engine::DecisionRecord,
) -> anyhow::Result<()> {
    let now = now();
    place(&mut row, decision, &cache.workspace.rules);
    row.updated_at = now.timestamp_micros();
    apply(cache, writes, &decision.changes);
    let how = handover(&row);
    follow_up::hand_over(cache, writes, &mut row, None, how, now);
    let decision_row = decision_row(&row.id, "release", "system", None, decision, record)?;
    remember(writes, &row);
    writes.decisions.push(decision_row);
    Ok(())
}

/// A team's backlog planned as one batch: the default band, the workspace's mean won amount.
fn plan_backlog(
    cache: &Cache,
    backlog: &[(LeadRow, engine::Lead)],
    exclude: &[RepId],
) -> engine::batch::Plan {
    let leads: Vec<&engine::Lead> = backlog.iter().map(|(_, lead)| lead).collect();
    let settings = engine::batch::Settings {
        band: Some(crate::batch::DEFAULT_BAND),
        ..engine::batch::Settings::default()
    };
    plan_batch(
        cache,
        &cache.workspace.rules,
        &leads,
        settings,
        exclude,
        now(),
    )
}

/// The leave hand-back as one optimised batch: the rep's untouched leads are released and
/// placed together among everyone else eligible, within the band.
async fn hand_back_together(
    tx: &mut RoutingTx<'_>,
    cache: &mut Cache,
    writes: &mut Writes,
    rep_id: &str,
) -> anyhow::Result<usize> {
    let rows: Vec<LeadRow> = tx
        .untouched_leads(rep_id, HAND_BACK_LIMIT)
        .await?
        .into_iter()
        .filter(|row| {
            !writes
                .changed_leads
                .iter()
                .any(|changed| changed.id == row.id)
        })
        .collect();
    let known = known_customers(tx, &rows.iter().map(contact_of).collect::<Vec<_>>()).await?;
    let mut batch = Vec::new();
    for row in rows {
        if let Ok(lead) = stored_lead(&row, cache, &known) {
            release(cache, writes, &row);
            batch.push((row, lead));
        }
    }
    let plan = plan_backlog(cache, &batch, &[RepId::new(rep_id)]);
    let now = now();
    let mut moved = 0;
    for ((mut row, lead), decision) in batch.into_iter().zip(plan.decisions) {
        let record = cache.workspace.record(&decision, &lead);
        let previous = row.owner_id.clone();
        place(&mut row, &decision, &cache.workspace.rules);
        row.updated_at = now.timestamp_micros();
        apply(cache, writes, &decision.changes);
        let how = handover(&row);
        follow_up::hand_over(cache, writes, &mut row, previous, how, now);
        let decision_row = decision_row(
            &row.id,
            "hand_back",
            "system",
            Some("the owner went on leave".into()),
            &decision,
            &record,
        )?;
        remember(writes, &row);
        writes.decisions.push(decision_row);
        moved += 1;
    }
    Ok(moved)
}

/// Status moves along new → assigned → contacted → qualified → won / lost / invalid; a closed
/// lead stays closed, and a lead moves to assigned only by routing or assignment.
pub(super) fn transition_allowed(from: LeadStatus, to: LeadStatus) -> bool {
    use LeadStatus::*;
    match (from, to) {
        (Won | Lost | Invalid, _) => false,
        (_, New | Assigned) => false,
        (New, Contacted | Qualified | Won) => false,
        (Qualified, Contacted) => false,
        _ => from != to,
    }
}

pub(super) async fn update(
    tx: &mut RoutingTx<'_>,
    cache: &mut Cache,
    writes: &mut Writes,
    lead_id: &str,
    patch: &LeadPatch,
) -> anyhow::Result<Result<Changed, ApiError>> {
    let mut row = match open_lead(tx, writes, lead_id).await? {
        Ok(row) => row,
        Err(error) => return Ok(Err(error)),
    };
    let now = now();
    if let Some(document) = &patch.document {
        if let Err(error) = document.to_engine(&cache.workspace.catalogue, now) {
            return Ok(Err(error));
        }
        // The lead as it arrived stays readable for training and replay.
        if row.intake.is_none() {
            row.intake = Some(row.document.clone());
        }
        row.document = serde_json::to_string(document)?;
        row.source = document.source.clone();
        row.phone = document.phone.clone();
        row.email = document.email.clone();
        row.score = document.score.or(row.score);
        row.priority = document.priority.clone().or(row.priority.clone());
        row.tags =
            serde_json::to_string(&merged_tags(&serde_json::to_string(&document.tags)?, &[]))?;
        // A new phone or email is the customer's too (查重).
        let keys = crate::customer::keys(document);
        writes
            .customer_keys
            .extend(duplicates::key_rows(&row.id, &keys, now.timestamp_micros()));
    }
    if let Some(status) = patch.status {
        let from = LeadStatus::parse(&row.status).unwrap_or_default();
        if !transition_allowed(from, status) {
            return Ok(Err(ApiError::conflict(
                "illegal_transition",
                format!("a lead cannot go from {from} to {status}"),
            )
            .with_field("status")));
        }
        if let Err(error) = check_outcome(status, patch) {
            return Ok(Err(error));
        }
        if !status.is_open() {
            release(cache, writes, &row);
            row.status = status.as_str().to_owned();
            close(cache, writes, &mut row, patch, now);
        }
        row.status = status.as_str().to_owned();
    } else if patch.amount.is_some() || patch.lost_reason.is_some() {
        return Ok(Err(ApiError::invalid(
            "invalid_value",
            if patch.amount.is_some() {
                "amount"
            } else {
                "lost_reason"
            },
            "amount comes with status won, lost_reason with status lost",
        )));
    }
    row.updated_at = now.timestamp_micros();
    remember(writes, &row);
    Ok(Ok(Changed::lead(row, None)))
}

/// Won needs an amount, lost a reason; neither goes with another status.
pub(super) fn check_outcome(status: LeadStatus, patch: &LeadPatch) -> Result<(), ApiError> {
    match (status, patch.amount, &patch.lost_reason) {
        (LeadStatus::Won, Some(amount), None) if amount.is_finite() && amount >= 0.0 => Ok(()),
        (LeadStatus::Won, Some(_), None) => Err(ApiError::invalid(
            "invalid_value",
            "amount",
            "amount is a number of at least 0",
        )),
        (LeadStatus::Won, None, _) => Err(ApiError::invalid(
            "missing_field",
            "amount",
            "a won lead needs the deal's amount",
        )),
        (LeadStatus::Lost, None, Some(reason))
            if !reason.trim().is_empty() && reason.chars().count() <= 500 =>
        {
            Ok(())
        }
        (LeadStatus::Lost, None, _) => Err(ApiError::invalid(
            "missing_field",
            "lost_reason",
            "a lost lead needs a reason of at most 500 characters",
        )),
        (_, None, None) => Ok(()),
        (_, amount, _) => Err(ApiError::invalid(
            "invalid_value",
            if amount.is_some() {
                "amount"
            } else {
                "lost_reason"
            },
            "amount comes with status won, lost_reason with status lost",
        )),
    }
}

/// A lead reached won, lost or invalid: its clocks stop, the outcome counts for its owner,
/// source, rule and segment, and won and lost are announced.
pub(super) fn close(
    cache: &mut Cache,
    writes: &mut Writes,
    row: &mut LeadRow,
    patch: &LeadPatch,
    now: DateTime<Utc>,
) {
    row.closed_at = Some(now.timestamp_micros());
    // A closed lead waits nowhere: not in the hold queue, not in a pool.
    row.held = false;
    row.pool_id = None;
    row.amount = patch.amount;
    row.lost_reason = patch.lost_reason.clone();
    row.callback_at = None;
    writes.reset_timers(&row.id, Vec::new());
    let status = LeadStatus::parse(&row.status).unwrap_or_default();
    let amount = patch.amount.unwrap_or(0.0);
    let owner = row.owner_id.clone();
    follow_up::count(cache, writes, row, owner.as_deref(), |delta| match status {
        LeadStatus::Won => {
            delta.won += 1;
            delta.amount += amount;
        }
        LeadStatus::Lost => delta.lost += 1,
        _ => delta.invalid += 1,
    });
    let event = match status {
        LeadStatus::Won => "lead.won",
        LeadStatus::Lost => "lead.lost",
        _ => return,
    };
    let manager = cache
        .workspace
        .follow
        .manager(row.team_id.as_deref())
        .map(ToString::to_string);
    writes.event(
        event,
        row,
        &[owner.as_deref(), manager.as_deref()],
        serde_json::json!({"amount": patch.amount, "lost_reason": patch.lost_reason}),
        now,
    );
}

/// How a routing decision left the lead, for follow-up.
pub(super) fn handover(row: &LeadRow) -> follow_up::Handover {
    if row.owner_id.is_some() {
        follow_up::Handover::Assigned
    } else {
        follow_up::Handover::Dropped
    }
}

/// One change to one lead.
pub(super) async fn change(
    tx: &mut RoutingTx<'_>,
    cache: &mut Cache,
    writes: &mut Writes,
    lead_id: &str,
    op: &LeadOp,
    actor: &str,
) -> anyhow::Result<Result<Changed, ApiError>> {
    match op {
        LeadOp::Reroute => reroute(tx, cache, writes, lead_id, actor).await,
        LeadOp::Assign {
            rep_id,
            reason,
            from_pool,
            override_collision,
        } => {
            assign(
                tx,
                cache,
                writes,
                lead_id,
                rep_id,
                reason.clone(),
                (*from_pool, *override_collision),
                actor,
            )
            .await
        }
        LeadOp::Update(patch) => update(tx, cache, writes, lead_id, patch).await,
        LeadOp::Merge {
            other_id,
            fields,
            pair_id,
        } => {
            duplicates::merge(
                tx,
                cache,
                writes,
                lead_id,
                other_id,
                fields,
                pair_id.as_deref(),
                actor,
            )
            .await
        }
        LeadOp::Activity(input) => {
            follow_up::activity(tx, cache, writes, lead_id, input, actor).await
        }
        LeadOp::Feedback(input) => {
            follow_up::feedback(tx, cache, writes, lead_id, input, actor).await
        }
        LeadOp::Claim { rep_id } => pool::claim(tx, cache, writes, lead_id, rep_id, actor).await,
        LeadOp::Release { reason, pool_id } => {
            pool::give_back(
                tx,
                cache,
                writes,
                lead_id,
                reason.clone(),
                pool_id.clone(),
                actor,
            )
            .await
        }
    }
}

/// Leads a rep going on leave hands back in one go at most.
const HAND_BACK_LIMIT: i64 = 1000;

/// Applies the leave policy: when any team of the rep says `hand_back`, the rep's leads that
/// nobody has worked yet are routed to someone else, away from the rep.
pub(super) async fn hand_back(
    tx: &mut RoutingTx<'_>,
    cache: &mut Cache,
    writes: &mut Writes,
    rep_id: &str,
) -> anyhow::Result<usize> {
    let follow = &cache.workspace.follow;
    let hands_back = cache.workspace.roster.teams().any(|team| {
        team.members
            .iter()
            .any(|member| member.rep.as_str() == rep_id)
            && follow
                .teams
                .get(&team.id)
                .is_some_and(|team| team.hand_back_on_leave)
    });
    if !hands_back {
        return Ok(0);
    }
    let optimal = cache.workspace.roster.teams().any(|team| {
        team.members
            .iter()
            .any(|member| member.rep.as_str() == rep_id)
            && cache
                .workspace
                .follow
                .teams
                .get(&team.id)
                .is_some_and(|team| team.hand_back_on_leave && team.optimal_batches)
    });
    if optimal {
        return hand_back_together(tx, cache, writes, rep_id).await;
    }
    let mut moved = 0;
    for row in tx.untouched_leads(rep_id, HAND_BACK_LIMIT).await? {
        if writes
            .changed_leads
            .iter()
            .any(|changed| changed.id == row.id)
        {
            continue;
        }
        if let Ok(changed) = reroute(tx, cache, writes, &row.id, "system").await?
            && let Some(decision) = writes.decisions.last_mut()
            && decision.lead_id == changed.lead.id
        {
            decision.kind = "hand_back".into();
            decision.reason = Some("the owner went on leave".into());
            moved += 1;
        }
    }
    Ok(moved)
}
