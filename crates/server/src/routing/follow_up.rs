//! What follows an assignment, inside the routing worker's transaction: clocks set again on
//! every owner change, activities and the first response, feedback, outcome statistics and
//! outbox events. Everything here only adds to the transaction's `Writes`, so it commits or
//! rolls back with the change that caused it.

use chrono::{DateTime, Duration, Utc};
use engine::calendar::BusinessCalendar;
use engine::follow_up::{ClaimRules, Ownership, SlaPolicy, Timer, TimerKind, plan};
use engine::rep::RepStats;
use engine::{LeadStatus, RepId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use store::{
    ActivityRow, FeedbackRow, LeadRow, OutboxRow, RoutingTx, StatsDelta, StatsRow, TimerRow,
};
use utoipa::ToSchema;

use super::{Cache, Changed, Writes, new_id, now, open_lead, remember};
use crate::error::ApiError;
use crate::settings::FollowUpConfig;
use crate::workspace::{ConfigRows, build_workspace};

/// Each first response counts at most this much toward a rep's average: one lead forgotten
/// over a holiday should not hide a month of fast answers.
const RESPONSE_CAP_SECS: i64 = 86_400;

pub(super) fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

pub(super) fn instant(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

/// The engine's performance inputs from a rep's outcome statistics.
pub(super) fn rep_stats(row: &StatsRow) -> RepStats {
    let closed = row.won + row.lost + row.invalid;
    RepStats {
        closed: u32::try_from(closed).unwrap_or(u32::MAX),
        won: u32::try_from(row.won).unwrap_or(u32::MAX),
        response_secs: (row.responded > 0)
            .then(|| u32::try_from(row.response_secs / row.responded).unwrap_or(u32::MAX)),
        feedback: (row.feedback_count > 0).then(|| row.feedback_sum / row.feedback_count as f64),
    }
}

/// The customer segment statistics are kept by, from the company's size. Only that field is
/// read: the rest of the document is skipped, not built into a tree.
fn segment(row: &LeadRow) -> &'static str {
    #[derive(serde::Deserialize)]
    struct Size {
        company_size: Option<Value>,
    }
    let size = serde_json::from_str::<Size>(&row.document)
        .ok()
        .and_then(|document| document.company_size?.as_f64());
    engine::lead::size_segment(size)
}

impl Writes {
    /// An event for notifications, in the outbox with this transaction.
    pub(super) fn event(
        &mut self,
        event: &str,
        row: &LeadRow,
        recipients: &[Option<&str>],
        payload: Value,
        at: DateTime<Utc>,
    ) {
        let mut to: Vec<&str> = Vec::new();
        for recipient in recipients.iter().flatten() {
            if !to.contains(recipient) {
                to.push(recipient);
            }
        }
        let mut payload = payload;
        if let Some(object) = payload.as_object_mut() {
            object.insert("lead_id".into(), json!(row.id));
            object.insert("owner_id".into(), json!(row.owner_id));
            object.insert("team_id".into(), json!(row.team_id));
        }
        self.outbox.push(OutboxRow {
            id: new_id(),
            event: event.to_owned(),
            lead_id: Some(row.id.clone()),
            rep_id: row.owner_id.clone(),
            recipients: json!(to).to_string(),
            payload: payload.to_string(),
            created_at: micros(at),
            status: "pending".into(),
        });
    }

    /// Replaces the lead's timers with those its current state calls for.
    pub(super) fn reset_timers(&mut self, lead_id: &str, timers: Vec<TimerRow>) {
        // Only a lead reset earlier in this transaction has timers here to replace: looking
        // through them for every new lead of a batch was quadratic.
        if !self.timers_reset.insert(lead_id.to_owned()) {
            self.timers.retain(|timer| timer.lead_id != lead_id);
        }
        self.timers.extend(timers);
    }

    /// Drops the stored timers the transaction replaces or fired: first, since a lead keeps
    /// one timer (`timers_lead` is unique) and its next one is among the rows added after.
    pub(super) async fn drop_timers(&self, tx: &mut RoutingTx<'_>) -> anyhow::Result<()> {
        // New leads have no stored timers to drop.
        let new: std::collections::HashSet<&str> =
            self.new_leads.iter().map(|row| row.id.as_str()).collect();
        let reset: Vec<String> = self
            .timers_reset
            .iter()
            .filter(|id| !new.contains(id.as_str()))
            .cloned()
            .collect();
        tx.delete_timers_of(&reset).await?;
        tx.delete_timers(&self.fired).await?;
        Ok(())
    }

    /// The outcome statistics to add, one entry per key.
    pub(super) fn stats_rows(&self) -> Vec<((String, String), StatsDelta)> {
        self.stats
            .iter()
            .map(|(key, delta)| (key.clone(), delta.clone()))
            .collect()
    }

    /// Writes what follow-up recorded about stored leads: activities, feedback, claim blocks.
    pub(super) async fn write_follow_up(&self, tx: &mut RoutingTx<'_>) -> anyhow::Result<()> {
        for activity in &self.activities {
            tx.insert_activity(activity).await?;
        }
        for feedback in &self.feedback {
            tx.insert_feedback(feedback).await?;
        }
        let blocks: Vec<(String, String, i64)> = self
            .claim_blocks
            .iter()
            .map(|((lead, rep), until)| (lead.clone(), rep.clone(), *until))
            .collect();
        tx.upsert_claim_blocks(&blocks).await?;
        Ok(())
    }
}

/// Adds to the outcome statistics of the lead's rep, source, rule and segment; the rep's also
/// reach the cached routing state, so performance weighting sees them at once.
pub(super) fn count(
    cache: &mut Cache,
    writes: &mut Writes,
    row: &LeadRow,
    rep: Option<&str>,
    add: impl Fn(&mut StatsDelta),
) {
    let segment = segment(row);
    let keys = [
        ("rep", rep.map(str::to_owned)),
        ("source", row.source.clone()),
        ("rule", row.rule_id.clone()),
        ("segment", Some(segment.to_owned())),
        // The rep's record on the segment: what an optimised batch's fit learns from.
        ("rep_segment", rep.map(|rep| format!("{rep}/{segment}"))),
    ];
    for (dimension, key) in keys {
        let Some(key) = key else { continue };
        add(writes
            .stats
            .entry((dimension.to_owned(), key.clone()))
            .or_default());
        if dimension == "rep_segment" {
            let mut delta = StatsDelta::default();
            add(&mut delta);
            let stats = cache
                .segment_stats
                .entry(key.clone())
                .or_insert_with(|| StatsRow {
                    dimension: dimension.into(),
                    key: key.clone(),
                    ..StatsRow::default()
                });
            add_delta(stats, &delta);
        }
        if dimension == "rep" {
            let mut delta = StatsDelta::default();
            add(&mut delta);
            let stats = cache
                .rep_stats
                .entry(key.clone())
                .or_insert_with(|| StatsRow {
                    dimension: "rep".into(),
                    key: key.clone(),
                    ..StatsRow::default()
                });
            add_delta(stats, &delta);
            let engine_stats = rep_stats(stats);
            if let Some(state) = cache
                .state
                .rep_mut(&cache.workspace.roster, &RepId::new(key))
            {
                state.stats = engine_stats;
            }
        }
    }
}

fn add_delta(stats: &mut StatsRow, delta: &StatsDelta) {
    stats.assigned += delta.assigned;
    stats.responded += delta.responded;
    stats.response_secs += delta.response_secs;
    stats.won += delta.won;
    stats.lost += delta.lost;
    stats.invalid += delta.invalid;
    stats.amount += delta.amount;
    stats.feedback_count += delta.feedback_count;
    stats.feedback_sum += delta.feedback_sum;
}

/// The clocks the lead's current state calls for, soonest first: the first-response ladder,
/// callback, cadence, claim rules. A lead nobody owns, or a closed one, has none.
pub(crate) fn planned(follow: &FollowUpConfig, row: &LeadRow, now: DateTime<Utc>) -> Vec<Timer> {
    with_clocks(follow, row, |policy, calendar, claim, ownership| {
        plan(policy, calendar, claim, ownership, now)
    })
    .unwrap_or_default()
}

/// The first of [`planned`], without putting the ladder's later rungs on the calendar: what a
/// lead stores when its clocks start again.
fn next_planned(follow: &FollowUpConfig, row: &LeadRow, now: DateTime<Utc>) -> Option<Timer> {
    with_clocks(follow, row, |policy, calendar, claim, ownership| {
        engine::follow_up::next(policy, calendar, claim, ownership, now)
    })?
}

/// Calls `clocks` with the lead's SLA policy, calendar, claim rules and ownership; `None` for a
/// lead nobody owns, a closed one, or one no clocks apply to.
fn with_clocks<T>(
    follow: &FollowUpConfig,
    row: &LeadRow,
    clocks: impl FnOnce(&SlaPolicy, &BusinessCalendar, Option<&ClaimRules>, &Ownership) -> T,
) -> Option<T> {
    let open = LeadStatus::parse(&row.status).is_some_and(LeadStatus::is_open);
    let (Some(_), Some(since), true) = (&row.owner_id, row.assigned_at, open) else {
        return None;
    };
    let config = follow.clocks(row.rule_id.as_deref(), row.team_id.as_deref())?;
    let policy = row
        .sla_policy
        .as_ref()
        .and_then(|id| follow.policies.get(id))
        .map_or(config.policy, |(policy, _)| policy);
    let claim = row
        .last_pool
        .as_ref()
        .and_then(|pool| follow.pools.get(pool))
        .map(|pool| pool.claim);
    let ownership = Ownership {
        since: instant(since),
        claimed: row.claimed_at.is_some(),
        first_response: row.first_response_at.map(instant),
        last_activity: row.last_activity_at.map(instant),
        callback: row.callback_at.map(instant),
        protected_until: row.protected_until.map(instant),
    };
    Some(clocks(policy, config.calendar, claim.as_ref(), &ownership))
}

/// The planned timers after `fired` (a stored timer, in due order), soonest first; all of
/// them when the stored timer's kind is not one this release knows.
pub(crate) fn after(planned: Vec<Timer>, fired: &TimerRow) -> impl Iterator<Item = Timer> {
    let kind = TimerKind::from_code(&fired.kind, fired.step);
    planned.into_iter().filter(move |timer| {
        Some((micros(timer.due), timer.kind)) > kind.map(|kind| (fired.due_at, kind))
    })
}

/// What the lead's clocks will do, soonest first: its stored timer (only the next one due is
/// stored) and the planned ones after it, under the workspace's current settings. What the
/// timers API and the console's lead page show.
pub(crate) async fn coming(store: &store::Store, row: &LeadRow) -> Result<Vec<TimerRow>, ApiError> {
    let Some(next) = store.timers_for(&row.id).await?.into_iter().next() else {
        return Ok(Vec::new());
    };
    let workspace = build_workspace(&ConfigRows::load(store).await?);
    let now = Utc::now();
    let later: Vec<TimerRow> = after(planned(&workspace.follow, row, now), &next)
        .map(|timer| timer_row(row, &timer, now))
        .collect();
    Ok(std::iter::once(next).chain(later).collect())
}

/// A planned timer as the row that stores it.
pub(super) fn timer_row(row: &LeadRow, timer: &Timer, now: DateTime<Utc>) -> TimerRow {
    let (kind, step) = timer.kind.code();
    TimerRow {
        id: new_id(),
        lead_id: row.id.clone(),
        kind: kind.to_owned(),
        step,
        owner_id: row.owner_id.clone(),
        due_at: micros(timer.due),
        created_at: micros(now),
    }
}

/// Sets the lead's clocks from its current state. Only the next timer due is stored, one row
/// per lead: when it fires, the tick stores the one after it (`after`), recomputed from the
/// lead as it is then.
pub(super) fn replan(cache: &Cache, writes: &mut Writes, row: &LeadRow, now: DateTime<Utc>) {
    let next =
        next_planned(&cache.workspace.follow, row, now).map(|timer| timer_row(row, &timer, now));
    writes.reset_timers(&row.id, next.into_iter().collect());
}

/// How a lead came to its new owner (or to none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Handover {
    /// Routing or a manager chose the owner.
    Assigned,
    /// The owner claimed it from a pool.
    Claimed,
    /// Nobody owns it now (pooled or held).
    Dropped,
}

/// Everything an owner change means for follow-up, whoever made it: the previous owner joins
/// the lead's history (a reclaim never returns to them), the clocks start again for the new
/// owner, the assignment counts in the statistics, and the new owner hears about it.
pub(super) fn hand_over(
    cache: &mut Cache,
    writes: &mut Writes,
    row: &mut LeadRow,
    previous: Option<String>,
    how: Handover,
    now: DateTime<Utc>,
) {
    if let Some(previous) = previous
        .as_ref()
        .filter(|previous| row.owner_id.as_ref() != Some(*previous))
    {
        let mut owners: Vec<String> =
            serde_json::from_str(&row.previous_owners).unwrap_or_default();
        if !owners.contains(previous) {
            owners.push(previous.clone());
        }
        row.previous_owners = json!(owners).to_string();
    }
    let owned = row.owner_id.is_some() && how != Handover::Dropped;
    row.assigned_at = owned.then(|| micros(now));
    row.first_response_at = None;
    row.last_activity_at = None;
    row.callback_at = None;
    row.claimed_at = (owned && how == Handover::Claimed).then(|| micros(now));
    row.protected_until = None;
    if let Some(pool) = &row.pool_id {
        row.last_pool = Some(pool.clone());
    }
    if owned {
        let follow = &cache.workspace.follow;
        row.sla_policy = follow
            .clocks(row.rule_id.as_deref(), row.team_id.as_deref())
            .map(|clocks| clocks.policy_id);
        if how == Handover::Claimed {
            row.protected_until = row
                .last_pool
                .as_ref()
                .and_then(|pool| follow.pools.get(pool))
                .and_then(|pool| pool.claim.protection)
                .map(|protection| micros(protection.start(now)));
        }
        let owner = row.owner_id.clone();
        count(cache, writes, row, owner.as_deref(), |delta| {
            delta.assigned += 1
        });
        if how == Handover::Assigned {
            let event = if previous.is_some() {
                "lead.reassigned"
            } else {
                "lead.assigned"
            };
            writes.event(
                event,
                row,
                &[owner.as_deref(), previous.as_deref()],
                json!({"previous_owner_id": previous, "rule_id": row.rule_id}),
                now,
            );
        }
    }
    replan(cache, writes, row, now);
}

/// A follow-up as the API takes it.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivityInput {
    /// `call`, `wechat`, `sms`, `email`, `visit`, `meeting` or `note`.
    pub kind: String,
    /// Who followed up; the lead's owner when left out.
    #[serde(default)]
    pub rep_id: Option<String>,
    /// A short snake_case code such as `reached`, `no_answer`, `interested`.
    #[serde(default)]
    pub outcome: Option<String>,
    /// Free text, at most 4,000 characters.
    #[serde(default)]
    pub note: Option<String>,
    /// RFC 3339: a callback the owner will make; reminds them then, and holds the follow-up
    /// cadence until it.
    #[serde(default)]
    pub next_follow_up_at: Option<String>,
    /// RFC 3339: when it happened, for a call system or CRM syncing a follow-up after the fact;
    /// now when left out. Not in the future, not before the lead came in. A follow-up from
    /// before the current assignment is logged but is not that assignment's first response.
    #[serde(default)]
    pub occurred_at: Option<String>,
}

/// When a follow-up happened and the callback it set.
#[derive(Clone, Copy, Debug)]
pub struct ActivityTimes {
    pub occurred: DateTime<Utc>,
    pub callback: Option<DateTime<Utc>>,
}

/// Clocks disagree a little: a follow-up this far ahead of ours is taken as happening now.
const CLOCK_SKEW_SECS: i64 = 300;

fn rfc3339(text: &str, field: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| {
            ApiError::invalid(
                "invalid_value",
                field,
                "expected an RFC 3339 time with offset",
            )
        })
}

pub const ACTIVITY_KINDS: [&str; 7] =
    ["call", "wechat", "sms", "email", "visit", "meeting", "note"];

impl ActivityInput {
    /// Checks the input; returns when the follow-up happened and the callback it set.
    pub fn check(&self, now: DateTime<Utc>) -> Result<ActivityTimes, ApiError> {
        if !ACTIVITY_KINDS.contains(&self.kind.as_str()) {
            return Err(ApiError::invalid(
                "invalid_value",
                "kind",
                "kind is call, wechat, sms, email, visit, meeting or note",
            ));
        }
        if let Some(outcome) = &self.outcome {
            let valid = !outcome.is_empty()
                && outcome.len() <= 64
                && outcome
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !valid {
                return Err(ApiError::invalid(
                    "invalid_value",
                    "outcome",
                    "outcome is a snake_case code of at most 64 characters",
                ));
            }
        }
        if self
            .note
            .as_ref()
            .is_some_and(|note| note.chars().count() > 4000)
        {
            return Err(ApiError::invalid(
                "too_long",
                "note",
                "note is at most 4000 characters",
            ));
        }
        let occurred = match &self.occurred_at {
            None => now,
            Some(text) => {
                let at = rfc3339(text, "occurred_at")?;
                if at > now + Duration::seconds(CLOCK_SKEW_SECS) {
                    return Err(ApiError::invalid(
                        "invalid_value",
                        "occurred_at",
                        "a follow-up cannot happen in the future",
                    ));
                }
                at.min(now)
            }
        };
        let Some(text) = &self.next_follow_up_at else {
            return Ok(ActivityTimes {
                occurred,
                callback: None,
            });
        };
        let at = rfc3339(text, "next_follow_up_at")?;
        if at <= now {
            return Err(ApiError::invalid(
                "invalid_value",
                "next_follow_up_at",
                "the next follow-up is in the future",
            ));
        }
        if at > now + Duration::days(366) {
            return Err(ApiError::invalid(
                "invalid_value",
                "next_follow_up_at",
                "the next follow-up is within a year",
            ));
        }
        Ok(ActivityTimes {
            occurred,
            callback: Some(at),
        })
    }
}

/// Logs a follow-up. The owner's first activity after an assignment is the first response: it
/// stops the first-response ladder and counts toward their response time. An owner's activity
/// moves an assigned lead to contacted (a note does not), restarts the cadence clock, extends a
/// claimed lead's protection, and a next follow-up time becomes a callback reminder.
pub(super) async fn activity(
    tx: &mut RoutingTx<'_>,
    cache: &mut Cache,
    writes: &mut Writes,
    lead_id: &str,
    input: &ActivityInput,
    actor: &str,
) -> anyhow::Result<Result<Changed, ApiError>> {
    let mut row = match open_lead(tx, writes, lead_id).await? {
        Ok(row) => row,
        Err(error) => return Ok(Err(error)),
    };
    let now = now();
    let (at, callback) = match input.check(now) {
        Ok(times) => (times.occurred, times.callback),
        Err(error) => return Ok(Err(error)),
    };
    if micros(at) < row.created_at {
        return Ok(Err(ApiError::invalid(
            "invalid_value",
            "occurred_at",
            "the follow-up is from before the lead came in",
        )));
    }
    let rep = input.rep_id.clone().or_else(|| row.owner_id.clone());
    if let Some(rep) = &rep
        && cache.workspace.roster.position_of(rep).is_none()
    {
        return Ok(Err(ApiError::invalid(
            "unknown_rep",
            "rep_id",
            "no rep has that id",
        )));
    }
    let open = LeadStatus::parse(&row.status).is_some_and(LeadStatus::is_open);
    let by_owner = open && rep.is_some() && rep == row.owner_id;
    let mut response_secs = None;
    if by_owner {
        // The first response to this assignment: one from before it answered an earlier one.
        if let (None, Some(since)) = (row.first_response_at, row.assigned_at)
            && micros(at) >= since
        {
            let secs = (micros(at) - since) / 1_000_000;
            response_secs = Some(secs);
            row.first_response_at = Some(micros(at));
            count(cache, writes, &row, rep.as_deref(), |delta| {
                delta.responded += 1;
                delta.response_secs += secs.min(RESPONSE_CAP_SECS);
            });
        }
        row.last_activity_at = Some(row.last_activity_at.unwrap_or(0).max(micros(at)));
        if callback.is_some() {
            row.callback_at = callback.map(micros);
        } else if row.callback_at.is_some_and(|at| at <= micros(now)) {
            row.callback_at = None;
        }
        if let (Some(claimed), Some(until)) = (row.claimed_at, row.protected_until)
            && let Some(protection) = row
                .last_pool
                .as_ref()
                .and_then(|pool| cache.workspace.follow.pools.get(pool))
                .and_then(|pool| pool.claim.protection)
        {
            row.protected_until = Some(micros(protection.extend(
                instant(claimed),
                instant(until),
                at,
            )));
        }
        if row.status == LeadStatus::Assigned.as_str() && input.kind != "note" {
            row.status = LeadStatus::Contacted.as_str().to_owned();
        }
        row.updated_at = micros(now);
        replan(cache, writes, &row, now);
        remember(writes, &row);
    }
    let activity = ActivityRow {
        id: new_id(),
        lead_id: row.id.clone(),
        rep_id: rep,
        actor: actor.to_owned(),
        kind: input.kind.clone(),
        outcome: input.outcome.clone(),
        note: input.note.clone(),
        next_follow_up_at: callback.map(micros),
        response_secs,
        created_at: micros(at),
        detail: None,
    };
    writes.activities.push(activity.clone());
    Ok(Ok(Changed {
        activity: Some(activity),
        ..Changed::lead(row, None)
    }))
}

/// Customer feedback as the API (or a survey tool) sends it.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackInput {
    /// `nps` (0–10) or `csat` (satisfaction, 1–5).
    pub kind: String,
    pub score: i64,
    #[serde(default)]
    pub comment: Option<String>,
}

impl FeedbackInput {
    /// The score mapped to 0..=1.
    pub fn normalised(&self) -> Result<f64, ApiError> {
        let (low, high) = match self.kind.as_str() {
            "nps" => (0, 10),
            "csat" => (1, 5),
            _ => {
                return Err(ApiError::invalid(
                    "invalid_value",
                    "kind",
                    "kind is nps or csat",
                ));
            }
        };
        if !(low..=high).contains(&self.score) {
            return Err(ApiError::invalid(
                "invalid_value",
                "score",
                format!("a {} score is {low} to {high}", self.kind),
            ));
        }
        if self
            .comment
            .as_ref()
            .is_some_and(|comment| comment.chars().count() > 4000)
        {
            return Err(ApiError::invalid(
                "too_long",
                "comment",
                "comment is at most 4000 characters",
            ));
        }
        Ok((self.score - low) as f64 / (high - low) as f64)
    }
}

/// Records customer feedback for the lead's owner (or, for a closed lead, its last owner).
pub(super) async fn feedback(
    tx: &mut RoutingTx<'_>,
    cache: &mut Cache,
    writes: &mut Writes,
    lead_id: &str,
    input: &FeedbackInput,
    actor: &str,
) -> anyhow::Result<Result<Changed, ApiError>> {
    let row = match open_lead(tx, writes, lead_id).await? {
        Ok(row) => row,
        Err(error) => return Ok(Err(error)),
    };
    let value = match input.normalised() {
        Ok(value) => value,
        Err(error) => return Ok(Err(error)),
    };
    let now = now();
    let rep = row.owner_id.clone();
    count(cache, writes, &row, rep.as_deref(), |delta| {
        delta.feedback_count += 1;
        delta.feedback_sum += value;
    });
    let feedback = FeedbackRow {
        id: new_id(),
        lead_id: row.id.clone(),
        rep_id: rep,
        kind: input.kind.clone(),
        score: input.score,
        comment: input.comment.clone(),
        actor: actor.to_owned(),
        created_at: micros(now),
    };
    writes.feedback.push(feedback.clone());
    Ok(Ok(Changed {
        feedback: Some(feedback),
        ..Changed::lead(row, None)
    }))
}
