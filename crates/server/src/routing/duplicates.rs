//! 查重 and 撞单 inside the worker's transaction: which stored lead a new arrival's customer
//! already is, what the workspace's policy does with it (attach a touch, route to the owner,
//! flag for review), and whether a manual assignment or a claim would hand a customer another
//! rep holds to someone else. Routing is serialised, so two arrivals of one customer at once
//! see each other: one lead, or one lead and one touch.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use engine::LeadStatus;
use serde::Serialize;
use serde_json::json;
use store::{ActivityRow, CustomerKeyRow, DuplicatePairRow, LeadRow, RoutingTx};
use utoipa::ToSchema;

use super::follow_up::{micros, replan};
use super::{Cache, Writes, new_id, remember};
use crate::customer::{self, DuplicatePolicy, KeyKind, OnMatch};
use crate::error::ApiError;
use crate::leads::LeadInput;

/// Keys looked up per transaction at most; a customer with more leads than this is matched
/// on the newest.
pub(super) const LOOKUP_LIMIT: i64 = 2000;

/// What intake did because the customer was known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MatchAction {
    /// No new lead: the arrival is a touch on the existing open lead.
    Attached,
    /// A new lead, offered first to the existing lead's owner.
    RoutedToOwner,
    /// A new lead, routed as usual and flagged for review.
    Flagged,
    /// The customer's lead was closed within the window: its owner was offered the new one.
    Returning,
}

/// The stored lead an arrival matched, by which key, and what came of it.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Matched {
    pub lead_id: String,
    pub key: KeyKind,
    pub action: MatchAction,
}

/// What the policy says for one arrival.
#[allow(clippy::large_enum_variant)] // One per arrival, consumed at once.
pub(super) enum Verdict {
    /// Nothing known, or checking is off: route as usual.
    New,
    /// Attach to this open lead.
    Attach { lead: LeadRow, key: KeyKind },
    /// A new lead; `owner` is offered it first (affinity under any rule). A `flagged` match
    /// goes to review.
    Route {
        owner: Option<String>,
        matched: Matched,
    },
}

/// The stored leads a transaction's arrivals may belong to, by key, plus the leads the
/// transaction itself creates or touches.
#[derive(Default)]
pub(super) struct Customers {
    /// Lead ids per key, newest first.
    by_key: HashMap<(KeyKind, String), Vec<String>>,
    leads: HashMap<String, LeadRow>,
}

impl Customers {
    /// Looks up every key of these arrivals once. Nothing is read when checking is off.
    /// The keys of these arrivals the policy matches on, to look up (none when it is off).
    pub(super) fn keys<'a>(
        policy: &DuplicatePolicy,
        inputs: impl Iterator<Item = &'a LeadInput>,
    ) -> Vec<(String, String)> {
        if !policy.enabled() {
            return Vec::new();
        }
        let mut keys: Vec<(String, String)> = inputs
            .flat_map(customer::keys)
            .filter(|(kind, _)| policy.keys.contains(kind))
            .map(|(kind, value)| (kind.as_str().to_owned(), value))
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// The customers known by the rows recorded under the arrivals' keys (`keys`, read with
    /// the contacts in one statement), with their leads.
    pub(super) async fn load(
        tx: &mut RoutingTx<'_>,
        rows: Vec<store::CustomerKeyRow>,
    ) -> anyhow::Result<Customers> {
        if rows.is_empty() {
            return Ok(Customers::default());
        }
        let mut ids: Vec<String> = rows.iter().map(|row| row.lead_id.clone()).collect();
        ids.sort();
        ids.dedup();
        let leads = (tx.leads_by_ids(&ids).await?.into_iter())
            .map(|lead| (lead.id.clone(), lead))
            .collect();
        Ok(Customers::with_leads(rows, leads))
    }

    /// The customers known by `rows` (recorded keys, newest first), with their `leads`.
    pub(super) fn with_leads(
        rows: Vec<store::CustomerKeyRow>,
        leads: HashMap<String, LeadRow>,
    ) -> Customers {
        let mut by_key: HashMap<(KeyKind, String), Vec<String>> = HashMap::new();
        for row in rows {
            if let Some(kind) = KeyKind::parse(&row.kind) {
                let ids = by_key.entry((kind, row.value)).or_default();
                if !ids.contains(&row.lead_id) {
                    ids.push(row.lead_id);
                }
            }
        }
        Customers { by_key, leads }
    }

    /// What the policy does with an arrival recognised by `keys`. An open lead of the
    /// customer (the first key in the policy's order that finds one, its newest) decides by
    /// the policy; otherwise a lead closed within the window sends the customer back to its
    /// owner.
    pub(super) fn verdict(
        &self,
        policy: &DuplicatePolicy,
        keys: &[(KeyKind, String)],
        now: DateTime<Utc>,
    ) -> Verdict {
        if !policy.enabled() {
            return Verdict::New;
        }
        let checked = || {
            policy.keys.iter().flat_map(|kind| {
                keys.iter()
                    .filter(move |(key, _)| key == kind)
                    .filter_map(|key| Some((key.0, self.by_key.get(key)?)))
            })
        };
        for (kind, ids) in checked() {
            if let Some(lead) = ids
                .iter()
                .filter_map(|id| self.leads.get(id))
                .find(|lead| is_open(lead))
            {
                let matched = |action| Matched {
                    lead_id: lead.id.clone(),
                    key: kind,
                    action,
                };
                return match policy.on_match {
                    OnMatch::Attach => Verdict::Attach {
                        lead: lead.clone(),
                        key: kind,
                    },
                    OnMatch::RouteToOwner => Verdict::Route {
                        owner: lead.owner_id.clone(),
                        matched: matched(MatchAction::RoutedToOwner),
                    },
                    OnMatch::Flag => Verdict::Route {
                        owner: None,
                        matched: matched(MatchAction::Flagged),
                    },
                };
            }
        }
        let since = micros(now - policy.window);
        let returning = checked()
            .flat_map(|(kind, ids)| ids.iter().map(move |id| (kind, id)))
            .filter_map(|(kind, id)| Some((kind, self.leads.get(id)?)))
            .filter(|(_, lead)| {
                lead.merged_into.is_none()
                    && lead.owner_id.is_some()
                    && lead.closed_at.is_some_and(|closed| closed >= since)
            })
            .max_by_key(|(_, lead)| lead.closed_at);
        match returning {
            Some((kind, lead)) => Verdict::Route {
                owner: lead.owner_id.clone(),
                matched: Matched {
                    lead_id: lead.id.clone(),
                    key: kind,
                    action: MatchAction::Returning,
                },
            },
            None => Verdict::New,
        }
    }

    /// Remembers a lead this transaction created or changed, under its keys, so a later
    /// arrival in the same transaction finds it.
    pub(super) fn remember(&mut self, row: &LeadRow, keys: &[(KeyKind, String)]) {
        for key in keys {
            let ids = self.by_key.entry(key.clone()).or_default();
            if !ids.contains(&row.id) {
                ids.insert(0, row.id.clone());
            }
        }
        self.leads.insert(row.id.clone(), row.clone());
    }
}

fn is_open(lead: &LeadRow) -> bool {
    lead.merged_into.is_none() && LeadStatus::parse(&lead.status).is_some_and(LeadStatus::is_open)
}

/// The rows recording a lead's keys.
pub(super) fn key_rows(lead_id: &str, keys: &[(KeyKind, String)], at: i64) -> Vec<CustomerKeyRow> {
    keys.iter()
        .map(|(kind, value)| CustomerKeyRow {
            kind: kind.as_str().to_owned(),
            value: value.clone(),
            lead_id: lead_id.to_owned(),
            created_at: at,
        })
        .collect()
}

/// The arrival becomes a touch on the customer's open lead (客户再次咨询): an `inquiry`
/// activity with what it brought, the owner told, and with `restart_sla` the owner's
/// first-response clock started again. The lead's keys grow by the arrival's.
#[allow(clippy::too_many_arguments)] // The worker's context, then the arrival.
pub(super) fn attach(
    cache: &mut Cache,
    writes: &mut Writes,
    customers: &mut Customers,
    mut lead: LeadRow,
    input: &LeadInput,
    keys: &[(KeyKind, String)],
    key: KeyKind,
    actor: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<(LeadRow, Matched)> {
    let at = micros(now);
    lead.updated_at = at;
    writes.activities.push(ActivityRow {
        id: new_id(),
        lead_id: lead.id.clone(),
        rep_id: None,
        actor: actor.to_owned(),
        kind: "inquiry".into(),
        outcome: None,
        note: None,
        next_follow_up_at: None,
        response_secs: None,
        created_at: at,
        detail: Some(json!({"key": key, "arrival": input}).to_string()),
    });
    if cache.workspace.duplicates.restart_sla && lead.owner_id.is_some() {
        lead.assigned_at = Some(at);
        lead.first_response_at = None;
        replan(cache, writes, &lead, now);
    }
    writes.event(
        "lead.inquired",
        &lead,
        &[lead.owner_id.as_deref()],
        json!({"key": key, "source": input.source}),
        now,
    );
    writes.customer_keys.extend(key_rows(&lead.id, keys, at));
    customers.remember(&lead, keys);
    remember(writes, &lead);
    Ok((
        lead.clone(),
        Matched {
            lead_id: lead.id,
            key,
            action: MatchAction::Attached,
        },
    ))
}

/// Records a new lead's keys, and the pair when the policy flags it.
pub(super) fn note_new(
    writes: &mut Writes,
    customers: &mut Customers,
    row: &LeadRow,
    keys: &[(KeyKind, String)],
    matched: Option<&Matched>,
) {
    writes
        .customer_keys
        .extend(key_rows(&row.id, keys, row.created_at));
    customers.remember(row, keys);
    if let Some(matched) = matched.filter(|matched| matched.action == MatchAction::Flagged) {
        writes.duplicate_pairs.push(DuplicatePairRow {
            id: new_id(),
            lead_id: row.id.clone(),
            other_id: matched.lead_id.clone(),
            key_kind: matched.key.as_str().to_owned(),
            status: "open".into(),
            created_at: row.created_at,
            resolved_at: None,
            resolved_by: None,
        });
    }
}

/// 撞单: another rep's open lead of the same customer, if handing `row` to `rep_id` would
/// collide with it. A lead the other rep claimed counts only while its protection lasts.
pub(super) async fn holder(
    tx: &mut RoutingTx<'_>,
    cache: &Cache,
    writes: &Writes,
    row: &LeadRow,
    rep_id: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<LeadRow>> {
    let policy = &cache.workspace.duplicates;
    if !policy.enabled() || !policy.protect_holders {
        return Ok(None);
    }
    let document: LeadInput = serde_json::from_str(&row.document).unwrap_or_default();
    let keys: Vec<(String, String)> = customer::keys(&document)
        .into_iter()
        .filter(|(kind, _)| policy.keys.contains(kind))
        .map(|(kind, value)| (kind.as_str().to_owned(), value))
        .collect();
    if keys.is_empty() {
        return Ok(None);
    }
    let mut ids: Vec<String> = tx
        .leads_by_customer_keys(&keys, LOOKUP_LIMIT)
        .await?
        .into_iter()
        .map(|key| key.lead_id)
        .filter(|id| *id != row.id)
        .collect();
    ids.sort();
    ids.dedup();
    let at = micros(now);
    let mut leads = tx.leads_by_ids(&ids).await?;
    // What this transaction already changed is newer than what is stored.
    for lead in &mut leads {
        if let Some(changed) = writes.changed_leads.iter().rev().find(|c| c.id == lead.id) {
            *lead = changed.clone();
        }
    }
    Ok(leads.into_iter().find(|lead| {
        is_open(lead)
            && lead
                .owner_id
                .as_deref()
                .is_some_and(|owner| owner != rep_id)
            && lead.protected_until.is_none_or(|until| until > at)
    }))
}

/// The refusal for a collision, naming the holder.
pub(super) fn collision(cache: &Cache, holder: &LeadRow) -> ApiError {
    let owner = holder.owner_id.clone().unwrap_or_default();
    let name = cache
        .workspace
        .roster
        .position(&engine::RepId::new(owner.clone()))
        .map(|position| cache.workspace.roster.rep(position).name.clone())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| owner.clone());
    ApiError::conflict(
        "customer_held",
        format!(
            "{name} holds this customer (lead {}); a manager may override with a reason / 该客户由{name}跟进中（撞单）",
            holder.id
        ),
    )
}

/// Merges `other_id` into `lead_id` (查重): the fields named are taken from the other lead's
/// document, the other is closed as `invalid`, marked merged, released from its owner's
/// holding, and its activities and feedback move here; decisions stay where they were made.
#[allow(clippy::too_many_arguments)] // The worker's context, then the merge.
pub(super) async fn merge(
    tx: &mut RoutingTx<'_>,
    cache: &mut Cache,
    writes: &mut Writes,
    lead_id: &str,
    other_id: &str,
    fields: &[String],
    pair_id: Option<&str>,
    actor: &str,
) -> anyhow::Result<Result<super::Changed, ApiError>> {
    if lead_id == other_id {
        return Ok(Err(ApiError::invalid(
            "invalid_value",
            "other_id",
            "a lead cannot be merged into itself",
        )));
    }
    let mut keep = match super::movable_lead(tx, writes, lead_id).await? {
        Ok(row) => row,
        Err(error) => return Ok(Err(error)),
    };
    let mut other = match super::open_lead(tx, writes, other_id).await? {
        Ok(row) => row,
        Err(_) => return Ok(Err(ApiError::not_found("lead").with_field("other_id"))),
    };
    if other.merged_into.is_some() || keep.merged_into.is_some() {
        return Ok(Err(ApiError::conflict(
            "already_merged",
            "one of the leads was merged already",
        )));
    }
    if let Some(pair_id) = pair_id {
        let pair = tx.get_duplicate_pair(pair_id).await?;
        let matches = pair.as_ref().is_some_and(|pair| {
            let ids = [pair.lead_id.as_str(), pair.other_id.as_str()];
            ids.contains(&lead_id) && ids.contains(&other_id)
        });
        if !matches {
            return Ok(Err(
                ApiError::not_found("duplicate pair").with_field("pair_id")
            ));
        }
    }
    let mut document: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&keep.document)?;
    let theirs: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&other.document)?;
    for field in fields {
        if !crate::leads::INPUT_FIELDS.contains(&field.as_str()) || field == "external_id" {
            return Ok(Err(ApiError::invalid(
                "unknown_field",
                "fields",
                format!("{field} is not a lead field that can be taken from the other lead"),
            )));
        }
        match theirs.get(field) {
            Some(value) => document.insert(field.clone(), value.clone()),
            None => document.remove(field),
        };
    }
    let merged: LeadInput = match serde_json::from_value::<LeadInput>(document.into())
        .map_err(|_| ApiError::invalid("invalid_value", "fields", "the merged lead does not read"))
        .and_then(|input| input.normalised())
    {
        Ok(input) => input,
        Err(error) => return Ok(Err(error)),
    };
    let now = super::now();
    let at = micros(now);
    if keep.intake.is_none() {
        keep.intake = Some(keep.document.clone());
    }
    keep.document = serde_json::to_string(&merged)?;
    keep.phone = merged.phone.clone();
    keep.email = merged.email.clone();
    keep.source = merged.source.clone();
    keep.updated_at = at;
    let keys = customer::keys(&merged);
    writes.customer_keys.extend(key_rows(&keep.id, &keys, at));
    // The other lead closes: its owner no longer holds it, its clocks stop.
    super::release(cache, writes, &other);
    other.status = LeadStatus::Invalid.as_str().to_owned();
    other.closed_at = Some(at);
    other.lost_reason = Some("merged".into());
    other.merged_into = Some(keep.id.clone());
    other.updated_at = at;
    replan(cache, writes, &other, now);
    tx.move_lead_history(&other.id, &keep.id, actor, at).await?;
    let decision = super::pool::plain_decision(
        &keep,
        "merge",
        actor,
        None,
        None,
        format!("Lead {} merged into this one", other.id),
        format!("线索 {} 已合并到本线索", other.id),
        now,
    );
    writes.audits.push(store::AuditRow::new(
        actor.to_owned(),
        "lead.merged",
        "lead",
        Some(&keep.id),
        &json!({
            "merged": other.id,
            "fields": fields,
            "owner": keep.owner_id,
            "merged_owner": other.owner_id,
            "pair_id": pair_id,
        }),
        at,
    ));
    remember(writes, &other);
    remember(writes, &keep);
    writes.decisions.push(decision.clone());
    Ok(Ok(super::Changed::lead(keep, Some(decision))))
}
