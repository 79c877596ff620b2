//! The routing worker: every change to routing state in this process goes through one task,
//! which groups waiting requests into one transaction under the store's routing lock. Within
//! the lock it checks the stored versions, reloads its cached roster and state only when
//! another instance or a configuration change moved them, routes in memory, writes leads,
//! decisions and state changes together, and answers each request after the commit: an
//! acknowledged lead is on disk.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use engine::decision::AttemptTarget;
use engine::state::StateChange;
use engine::{Decision, DecisionRecord, LeadStatus, Outcome, RepId, RoutingState};
use store::{
    ActivityRow, DecisionRow, FeedbackRow, LeadRow, OutboxRow, RepStateRow, RotationRow, RoutingTx,
    StatsDelta, StatsRow, Store, TimerRow,
};
use tokio::sync::{mpsc, oneshot};

use crate::error::ApiError;
use crate::leads::{LeadInput, engine_lead};
use crate::workspace::{ConfigRows, Workspace, build_workspace};

mod follow_up;
pub(crate) mod pool;
mod tick;

pub use follow_up::{ActivityInput, FeedbackInput};
pub use tick::TICK_LIMIT;

/// Leads handled in one transaction at most.
const MAX_BATCH: usize = 512;

/// What became of one submitted lead.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // Built once per lead and moved, never stored in bulk.
pub enum Created {
    New {
        lead: LeadRow,
        decision: DecisionRow,
    },
    Duplicate {
        lead: LeadRow,
    },
}

/// What routing a lead now would do.
#[derive(Debug)]
pub struct Explained {
    pub decision: Decision,
    pub record: DecisionRecord,
}

/// A lead after a change, with what the change recorded.
#[derive(Debug)]
pub struct Changed {
    pub lead: LeadRow,
    pub decision: Option<DecisionRow>,
    pub activity: Option<ActivityRow>,
    pub feedback: Option<FeedbackRow>,
}

impl Changed {
    fn lead(lead: LeadRow, decision: Option<DecisionRow>) -> Changed {
        Changed {
            lead,
            decision,
            activity: None,
            feedback: None,
        }
    }
}

/// Changes a request may make to an existing lead's fields and status.
#[derive(Debug, Default)]
pub struct LeadPatch {
    pub document: Option<LeadInput>,
    pub status: Option<LeadStatus>,
    /// With `won`: the deal's amount.
    pub amount: Option<f64>,
    /// With `lost`: why.
    pub lost_reason: Option<String>,
}

/// One change to one existing lead.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // One per request, moved through a channel.
pub enum LeadOp {
    /// Route again under the active rule set, away from the current owner.
    Reroute,
    /// Give the lead to a rep by hand; with `from_pool`, only a lead waiting in a pool.
    Assign {
        rep_id: String,
        reason: Option<String>,
        from_pool: bool,
    },
    Update(LeadPatch),
    Activity(ActivityInput),
    Feedback(FeedbackInput),
    /// A rep claims the lead from its pool.
    Claim {
        rep_id: String,
    },
    /// The owner gives the lead back to a pool.
    Release {
        reason: Option<String>,
        pool_id: Option<String>,
    },
}

#[allow(clippy::large_enum_variant)] // One per request, moved through a channel.
enum Job {
    Create {
        leads: Vec<LeadInput>,
        actor: String,
        reply: oneshot::Sender<Result<Vec<Result<Created, ApiError>>, ApiError>>,
    },
    Change {
        lead_id: String,
        op: LeadOp,
        actor: String,
        /// The audit action of a change a person made by hand, written in the same transaction
        /// with the owner before and after.
        audit: Option<&'static str>,
        reply: oneshot::Sender<Result<Changed, ApiError>>,
    },
    /// Route held leads again, most urgent first: someone may have become eligible.
    Sweep {
        reply: Option<oneshot::Sender<Result<usize, ApiError>>>,
    },
    /// A rep went on leave: under their team's policy, untouched leads go to someone else.
    HandBack {
        rep_id: String,
        reply: oneshot::Sender<Result<usize, ApiError>>,
    },
    /// Route a lead as intake would now, writing nothing: the dry run.
    Explain {
        lead: LeadInput,
        /// A rule-set version to route under instead of the active one.
        rule_set: Option<store::RuleSetRow>,
        reply: oneshot::Sender<Result<Result<Explained, ApiError>, ApiError>>,
    },
    /// Fire timers due at `now`.
    Tick {
        now: DateTime<Utc>,
        reply: oneshot::Sender<Result<usize, ApiError>>,
    },
}

impl Job {
    fn size(&self) -> usize {
        match self {
            Job::Create { leads, .. } => leads.len(),
            Job::Tick { .. } => TICK_LIMIT as usize,
            _ => 1,
        }
    }
}

/// The handle request handlers use to reach the worker.
#[derive(Clone, Debug)]
pub struct Router {
    jobs: mpsc::Sender<Job>,
    store: Store,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

fn worker_gone() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "the service is shutting down",
    )
}

impl Router {
    /// Starts the worker on the current runtime.
    pub fn start(store: Store) -> Router {
        let (jobs, receiver) = mpsc::channel(4096);
        let worker = Worker {
            store: store.clone(),
            jobs: receiver,
            cache: None,
        };
        tokio::spawn(worker.run());
        Router { jobs, store }
    }

    async fn ask<T>(
        &self,
        job: Job,
        answer: oneshot::Receiver<Result<T, ApiError>>,
    ) -> Result<T, ApiError> {
        self.jobs.send(job).await.map_err(|_| worker_gone())?;
        answer.await.map_err(|_| worker_gone())?
    }

    pub async fn create(
        &self,
        leads: Vec<LeadInput>,
        actor: &str,
    ) -> Result<Vec<Result<Created, ApiError>>, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.ask(
            Job::Create {
                leads,
                actor: actor.to_owned(),
                reply,
            },
            answer,
        )
        .await
    }

    /// Makes one change to one lead.
    pub async fn change(
        &self,
        lead_id: &str,
        op: LeadOp,
        actor: &str,
    ) -> Result<Changed, ApiError> {
        self.change_with_audit(lead_id, op, actor, None).await
    }

    /// Makes one change a person asked for by hand, with its audit row (`action`, the owner
    /// before and after) in the same transaction.
    pub async fn change_with_audit(
        &self,
        lead_id: &str,
        op: LeadOp,
        actor: &str,
        audit: Option<&'static str>,
    ) -> Result<Changed, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.ask(
            Job::Change {
                lead_id: lead_id.to_owned(),
                op,
                actor: actor.to_owned(),
                audit,
                reply,
            },
            answer,
        )
        .await
    }

    /// Routes a lead as intake would at this moment, against the same cached roster, rotation
    /// state, credits and known customers, and writes nothing: the dry run names the rep the
    /// next real post would get.
    pub async fn explain(
        &self,
        lead: LeadInput,
        rule_set: Option<store::RuleSetRow>,
    ) -> Result<Result<Explained, ApiError>, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.ask(
            Job::Explain {
                lead,
                rule_set,
                reply,
            },
            answer,
        )
        .await
    }

    /// Sweeps the hold queue and says how many leads left it.
    pub async fn sweep(&self) -> Result<usize, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.ask(Job::Sweep { reply: Some(reply) }, answer).await
    }

    /// Asks for a sweep without waiting for it (after a rep became available, a lead closed, a
    /// rule set was published).
    pub fn sweep_soon(&self) {
        let _ = self.jobs.try_send(Job::Sweep { reply: None });
    }

    /// Applies the leave policy of the rep's teams; says how many leads went to someone else.
    pub async fn hand_back(&self, rep_id: &str) -> Result<usize, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.ask(
            Job::HandBack {
                rep_id: rep_id.to_owned(),
                reply,
            },
            answer,
        )
        .await
    }

    /// Fires the timers due at `now`, at most [`TICK_LIMIT`] in one transaction, in due order;
    /// says how many fired. Firing is idempotent: a fired timer is deleted with its effects.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<usize, ApiError> {
        // Nothing due: one index lookup, no routing lock.
        match self.store.next_due().await {
            Ok(Some(due)) if due <= now.timestamp_micros() => {}
            Ok(_) => return Ok(0),
            Err(error) => return Err(error.into()),
        }
        let (reply, answer) = oneshot::channel();
        self.ask(Job::Tick { now, reply }, answer).await
    }
}

struct Cache {
    config_version: i64,
    routing_version: i64,
    workspace: Workspace,
    state: RoutingState,
    /// Outcome statistics per rep: the engine's performance inputs.
    rep_stats: HashMap<String, StatsRow>,
}

struct Worker {
    store: Store,
    jobs: mpsc::Receiver<Job>,
    cache: Option<Cache>,
}

/// Everything one transaction writes.
#[derive(Default)]
struct Writes {
    new_leads: Vec<LeadRow>,
    changed_leads: Vec<LeadRow>,
    decisions: Vec<DecisionRow>,
    dirty_reps: BTreeSet<RepId>,
    dirty_rotations: BTreeSet<String>,
    /// Contacts whose owner changed: `(kind, value) → (owner, at)`.
    contacts: BTreeMap<(&'static str, String), (String, i64)>,
    /// Leads whose clocks are set again: their stored timers go, `timers` come.
    timers_reset: BTreeSet<String>,
    timers: Vec<TimerRow>,
    /// Timers that fired.
    fired: Vec<String>,
    outbox: Vec<OutboxRow>,
    stats: BTreeMap<(String, String), StatsDelta>,
    /// `(lead, rep) → until`.
    claim_blocks: BTreeMap<(String, String), i64>,
    activities: Vec<ActivityRow>,
    feedback: Vec<FeedbackRow>,
    audits: Vec<store::AuditRow>,
}

impl Writes {
    /// Notes the lead's owner as the owner of its phone and email (known customers).
    fn note_owner(&mut self, row: &LeadRow) {
        let Some(owner) = &row.owner_id else { return };
        for (kind, value) in [("phone", &row.phone), ("email", &row.email)] {
            if let Some(value) = value {
                self.contacts
                    .insert((kind, value.clone()), (owner.clone(), row.updated_at));
            }
        }
    }
}

#[allow(clippy::large_enum_variant)] // One per job, consumed at once.
enum Answer {
    Create(Vec<Result<Created, ApiError>>),
    Explain(Result<Explained, ApiError>),
    Change(Result<Changed, ApiError>),
    Count(usize),
}

/// Answers a job: its answer, or `Err` when its transaction failed (logged already).
fn reply(job: Job, answer: Result<Answer, ()>) {
    let failed = || ApiError::internal("routing transaction failed");
    match (job, answer) {
        (Job::Create { reply, .. }, Ok(Answer::Create(results))) => {
            let _ = reply.send(Ok(results));
        }
        (Job::Change { reply, .. }, Ok(Answer::Change(result))) => {
            let _ = reply.send(result);
        }
        (Job::Explain { reply, .. }, Ok(Answer::Explain(result))) => {
            let _ = reply.send(Ok(result));
        }
        (Job::Explain { reply, .. }, _) => {
            let _ = reply.send(Err(failed()));
        }
        (
            Job::Sweep { reply: Some(reply) }
            | Job::HandBack { reply, .. }
            | Job::Tick { reply, .. },
            Ok(Answer::Count(count)),
        ) => {
            let _ = reply.send(Ok(count));
        }
        (Job::Create { reply, .. }, _) => {
            let _ = reply.send(Err(failed()));
        }
        (Job::Change { reply, .. }, _) => {
            let _ = reply.send(Err(failed()));
        }
        (
            Job::Sweep { reply: Some(reply) }
            | Job::HandBack { reply, .. }
            | Job::Tick { reply, .. },
            _,
        ) => {
            let _ = reply.send(Err(failed()));
        }
        (Job::Sweep { reply: None }, _) => {}
    }
}

impl Worker {
    async fn run(mut self) {
        while let Some(first) = self.jobs.recv().await {
            let mut size = first.size();
            let mut batch = vec![first];
            while size < MAX_BATCH {
                match self.jobs.try_recv() {
                    Ok(job) => {
                        size += job.size();
                        batch.push(job);
                    }
                    Err(_) => break,
                }
            }
            self.process(batch).await;
        }
    }

    /// Runs a batch in one transaction. When the transaction fails, each job runs again alone
    /// in a transaction of its own, so a job that cannot be written (a constraint, a value the
    /// database refuses) fails alone and the others in its batch still commit.
    async fn process(&mut self, batch: Vec<Job>) {
        match self.transact(&batch).await {
            Ok(answers) => {
                for (job, answer) in batch.into_iter().zip(answers) {
                    reply(job, Ok(answer));
                }
            }
            Err(error) => {
                // The cached state may be ahead of the database now: reload next time.
                self.cache = None;
                tracing::error!(error = %format!("{error:#}"), jobs = batch.len(), "routing transaction failed");
                if batch.len() == 1 {
                    for job in batch {
                        reply(job, Err(()));
                    }
                    return;
                }
                for job in batch {
                    let single = std::slice::from_ref(&job);
                    let answer = match self.transact(single).await {
                        Ok(mut answers) => answers.pop().ok_or(()),
                        Err(error) => {
                            self.cache = None;
                            tracing::error!(error = %format!("{error:#}"), "routing job failed alone");
                            Err(())
                        }
                    };
                    reply(job, answer);
                }
            }
        }
    }

    /// Loads the workspace and state when the stored versions moved since the last batch.
    async fn refresh(&mut self, tx: &mut RoutingTx) -> anyhow::Result<()> {
        let (config_version, routing_version) = tx.versions().await?;
        let fresh_config = self
            .cache
            .as_ref()
            .is_some_and(|cache| cache.config_version == config_version);
        let fresh_state = fresh_config
            && self
                .cache
                .as_ref()
                .is_some_and(|cache| cache.routing_version == routing_version);
        if fresh_state {
            return Ok(());
        }
        let workspace = match self.cache.take() {
            Some(cache) if fresh_config => cache.workspace,
            _ => build_workspace(&ConfigRows::load_in(tx).await?),
        };
        let mut state = RoutingState::new(&workspace.roster);
        let rep_stats: HashMap<String, StatsRow> = tx
            .list_stats("rep")
            .await?
            .into_iter()
            .map(|row| (row.key.clone(), row))
            .collect();
        for row in tx.load_rep_states().await? {
            let id = RepId::new(row.rep_id.clone());
            let stats = rep_stats
                .get(&row.rep_id)
                .map(follow_up::rep_stats)
                .unwrap_or_default();
            state.set_rep(
                &workspace.roster,
                &id,
                store::rep_state_from_row(&row, stats),
            );
        }
        for (id, row) in &rep_stats {
            if let Some(rep) = state.rep_mut(&workspace.roster, &RepId::new(id.clone())) {
                rep.stats = follow_up::rep_stats(row);
            }
        }
        for row in tx.load_rotations().await? {
            state.set_rotation(row.key.clone(), store::rotation_from_row(&row));
        }
        self.cache = Some(Cache {
            config_version,
            routing_version,
            workspace,
            state,
            rep_stats,
        });
        Ok(())
    }

    async fn transact(&mut self, batch: &[Job]) -> anyhow::Result<Vec<Answer>> {
        let started = std::time::Instant::now();
        let mut tx = self.store.begin_routing().await?;
        self.refresh(&mut tx).await?;
        let locked = started.elapsed();
        let cache = self
            .cache
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("no cache after refresh"))?;
        let mut writes = Writes::default();
        let external_ids: Vec<String> = batch
            .iter()
            .flat_map(|job| match job {
                Job::Create { leads, .. } => leads
                    .iter()
                    .filter_map(|lead| lead.external_id.clone())
                    .collect(),
                _ => Vec::new(),
            })
            .collect();
        let mut known_external: HashMap<String, LeadRow> = tx
            .leads_by_external_ids(&external_ids)
            .await?
            .into_iter()
            .filter_map(|row| Some((row.external_id.clone()?, row)))
            .collect();
        let contacts: Vec<(Option<String>, Option<String>)> = batch
            .iter()
            .flat_map(|job| match job {
                Job::Create { leads, .. } => leads
                    .iter()
                    .map(|lead| (lead.phone.clone(), lead.email.clone()))
                    .collect(),
                Job::Explain { lead, .. } => vec![(lead.phone.clone(), lead.email.clone())],
                _ => Vec::new(),
            })
            .collect();
        let mut known = known_customers(&mut tx, &contacts).await?;
        let mut answers = Vec::with_capacity(batch.len());
        for job in batch {
            let answer = match job {
                Job::Create { leads, actor, .. } => {
                    let mut results = Vec::with_capacity(leads.len());
                    for input in leads {
                        results.push(create(
                            cache,
                            &mut writes,
                            &mut known_external,
                            &mut known,
                            input,
                            actor,
                        )?);
                    }
                    Answer::Create(results)
                }
                Job::Change {
                    lead_id,
                    op,
                    actor,
                    audit,
                    ..
                } => {
                    let before = match audit {
                        Some(_) => open_lead(&mut tx, &writes, lead_id).await?.ok(),
                        None => None,
                    };
                    let result = change(&mut tx, cache, &mut writes, lead_id, op, actor).await?;
                    if let (Some(action), Ok(changed)) = (audit, &result) {
                        writes.audits.push(store::AuditRow {
                            id: new_id(),
                            at: changed.lead.updated_at,
                            actor: actor.clone(),
                            action: (*action).to_owned(),
                            target_kind: "lead".into(),
                            target_id: Some(lead_id.clone()),
                            detail: serde_json::json!({
                                "from": before.and_then(|row| row.owner_id),
                                "to": changed.lead.owner_id,
                                "to_pool": changed.lead.pool_id,
                            })
                            .to_string(),
                        });
                    }
                    Answer::Change(result)
                }
                Job::Explain { lead, rule_set, .. } => {
                    let draft = match rule_set {
                        Some(row) => {
                            let mut rows = ConfigRows::load_in(&mut tx).await?;
                            rows.active = Some(row.clone());
                            Some(build_workspace(&rows))
                        }
                        None => None,
                    };
                    let workspace = draft.as_ref().unwrap_or(&cache.workspace);
                    Answer::Explain(
                        decide_new(workspace, &cache.state, &known, lead, now())
                            .map(|(_, decision, record)| Explained { decision, record }),
                    )
                }
                Job::Sweep { .. } => Answer::Count(sweep(&mut tx, cache, &mut writes).await?),
                Job::HandBack { rep_id, .. } => {
                    Answer::Count(hand_back(&mut tx, cache, &mut writes, rep_id).await?)
                }
                Job::Tick { now, .. } => {
                    Answer::Count(tick::tick(&mut tx, cache, &mut writes, *now).await?)
                }
            };
            answers.push(answer);
        }
        let routed = started.elapsed();
        tx.insert_leads(&writes.new_leads).await?;
        for row in &writes.changed_leads {
            tx.update_lead(row).await?;
        }
        tx.insert_decisions(&writes.decisions).await?;
        tx.insert_audit(&writes.audits).await?;
        writes.write_follow_up(&mut tx).await?;
        let roster = &cache.workspace.roster;
        let state_rows: Vec<RepStateRow> = writes
            .dirty_reps
            .iter()
            .filter_map(|id| {
                roster
                    .position(id)
                    .map(|position| store::rep_state_row(id, cache.state.rep(position)))
            })
            .collect();
        tx.upsert_rep_states(&state_rows).await?;
        let rotation_rows: Vec<RotationRow> = writes
            .dirty_rotations
            .iter()
            .filter_map(|key| {
                cache
                    .state
                    .rotation(key)
                    .map(|state| store::rotation_row(key, state))
            })
            .collect();
        tx.upsert_rotations(&rotation_rows).await?;
        let contacts: Vec<(String, String, String, i64)> = writes
            .contacts
            .iter()
            .map(|((kind, value), (owner, at))| {
                ((*kind).to_owned(), value.clone(), owner.clone(), *at)
            })
            .collect();
        tx.upsert_contacts(&contacts).await?;
        let changed_state = !state_rows.is_empty() || !rotation_rows.is_empty();
        let version = if changed_state {
            Some(tx.bump_routing().await?)
        } else {
            None
        };
        let written = started.elapsed();
        tx.commit().await?;
        tracing::debug!(
            jobs = batch.len(),
            leads = writes.new_leads.len(),
            lock_and_load_us = locked.as_micros() as u64,
            route_us = (routed - locked).as_micros() as u64,
            write_us = (written - routed).as_micros() as u64,
            commit_us = (started.elapsed() - written).as_micros() as u64,
            "routing batch committed"
        );
        if let Some(version) = version {
            cache.routing_version = version;
        }
        Ok(answers)
    }
}

fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Applies a decision's state changes to the cache and marks what the transaction must write.
fn apply(cache: &mut Cache, writes: &mut Writes, changes: &[StateChange]) {
    cache.state.apply(&cache.workspace.roster, changes);
    for change in changes {
        match change {
            StateChange::Assigned { rep, .. } | StateChange::Claimed { rep } => {
                writes.dirty_reps.insert(rep.clone());
            }
            StateChange::Rotation { key, .. } => {
                writes.dirty_rotations.insert(key.clone());
            }
        }
    }
}

/// A lead left its owner (closed, reassigned): it no longer counts against their 保有量.
fn release(cache: &mut Cache, writes: &mut Writes, lead: &LeadRow) {
    let open = LeadStatus::parse(&lead.status).is_some_and(LeadStatus::is_open);
    if let (true, Some(owner)) = (open, &lead.owner_id) {
        let owner = RepId::new(owner.clone());
        cache.state.release(&cache.workspace.roster, &owner);
        writes.dirty_reps.insert(owner);
    }
}

/// Where a decision left the lead, as lead columns.
fn place(row: &mut LeadRow, decision: &Decision, rules: &engine::RuleSet) {
    row.owner_id = decision.owner().map(ToString::to_string);
    row.rule_id = decision
        .matched_rule()
        .and_then(|index| rules.rules.get(index as usize))
        .map(|rule| rule.id.clone());
    row.pool_id = match &decision.outcome {
        Outcome::Pooled { pool } => Some(pool.clone()),
        _ => None,
    };
    row.held = decision.outcome == Outcome::Held;
    row.team_id = decision
        .attempts
        .iter()
        .rev()
        .find(|attempt| attempt.winner.is_some())
        .and_then(|attempt| match &attempt.target {
            AttemptTarget::Teams(teams) => teams.first().cloned(),
            _ => None,
        });
    row.status = if row.owner_id.is_some() {
        LeadStatus::Assigned
    } else {
        LeadStatus::New
    }
    .as_str()
    .to_owned();
    row.tags = serde_json::to_string(&merged_tags(&row.tags, &decision.tags_added))
        .unwrap_or_else(|_| "[]".into());
    if decision.score.is_some() {
        row.score = decision.score;
    }
    if let Some(priority) = decision.priority {
        row.priority = Some(priority.as_str().to_owned());
    }
}

fn merged_tags(stored: &str, added: &[String]) -> Vec<String> {
    let mut tags: Vec<String> = serde_json::from_str(stored).unwrap_or_default();
    for tag in added {
        if !tags.contains(tag) {
            tags.push(tag.clone());
        }
    }
    tags
}

fn decision_row(
    lead_id: &str,
    kind: &str,
    actor: &str,
    reason: Option<String>,
    decision: &Decision,
    record: &DecisionRecord,
) -> anyhow::Result<DecisionRow> {
    Ok(DecisionRow {
        id: new_id(),
        lead_id: lead_id.to_owned(),
        kind: kind.to_owned(),
        actor: actor.to_owned(),
        reason,
        rule_set_version: Some(i64::from(decision.rule_set_version)),
        outcome: decision.outcome.code().to_owned(),
        owner_id: decision.owner().map(ToString::to_string),
        record: serde_json::to_string(record)?,
        created_at: decision.at.timestamp_micros(),
        explanation: crate::leads::explanation(record),
    })
}

/// Owners of known customers by phone and email; later entries win, so the newest lead counts.
#[derive(Default)]
struct KnownCustomers {
    by_phone: HashMap<String, String>,
    by_email: HashMap<String, String>,
}

impl KnownCustomers {
    fn remember(&mut self, phone: Option<&str>, email: Option<&str>, owner: &str) {
        if let Some(phone) = phone {
            self.by_phone.insert(phone.to_owned(), owner.to_owned());
        }
        if let Some(email) = email {
            self.by_email.insert(email.to_owned(), owner.to_owned());
        }
    }

    fn owner(&self, phone: Option<&str>, email: Option<&str>) -> Option<String> {
        phone
            .and_then(|phone| self.by_phone.get(phone))
            .or_else(|| email.and_then(|email| self.by_email.get(email)))
            .cloned()
    }
}

/// The owners of the customers with these phones and emails, as the contacts table has them.
async fn known_customers(
    tx: &mut RoutingTx,
    contacts: &[(Option<String>, Option<String>)],
) -> anyhow::Result<KnownCustomers> {
    let phones: Vec<String> = contacts
        .iter()
        .filter_map(|(phone, _)| phone.clone())
        .collect();
    let emails: Vec<String> = contacts
        .iter()
        .filter_map(|(_, email)| email.clone())
        .collect();
    let mut known = KnownCustomers::default();
    if phones.is_empty() && emails.is_empty() {
        return Ok(known);
    }
    for (kind, value, owner) in tx.owners_by_contact(&phones, &emails).await? {
        match kind.as_str() {
            "phone" => known.remember(Some(&value), None, &owner),
            _ => known.remember(None, Some(&value), &owner),
        }
    }
    Ok(known)
}

/// A stored lead's phone and email (normalised at intake), to look its customer up.
fn contact_of(row: &LeadRow) -> (Option<String>, Option<String>) {
    let document: serde_json::Value = serde_json::from_str(&row.document).unwrap_or_default();
    let text = |key: &str| document[key].as_str().map(str::to_owned);
    (text("phone"), text("email"))
}

/// A stored lead as the engine routes it again: with its customer's current owner, so owner
/// affinity holds for a lead rerouted or released from the hold queue as it does at intake.
fn stored_lead(
    row: &LeadRow,
    cache: &Cache,
    known: &KnownCustomers,
) -> Result<engine::Lead, ApiError> {
    let mut lead = engine_lead(row, &cache.workspace.catalogue)?;
    let (phone, email) = contact_of(row);
    lead.known_owner = known
        .owner(phone.as_deref(), email.as_deref())
        .map(RepId::new);
    Ok(lead)
}

/// Routes a new lead: the one function intake and the dry run share. The lead's customer, if
/// known, brings its owner (owner affinity).
fn decide_new(
    workspace: &Workspace,
    state: &RoutingState,
    known: &KnownCustomers,
    input: &LeadInput,
    now: DateTime<Utc>,
) -> Result<(engine::Lead, Decision, DecisionRecord), ApiError> {
    let mut lead = input.to_engine(&workspace.catalogue, now)?;
    lead.known_owner = known
        .owner(input.phone.as_deref(), input.email.as_deref())
        .map(RepId::new);
    let (decision, record) = workspace.decide(state, &lead, &[], now);
    Ok((lead, decision, record))
}

fn create(
    cache: &mut Cache,
    writes: &mut Writes,
    known_external: &mut HashMap<String, LeadRow>,
    known: &mut KnownCustomers,
    input: &LeadInput,
    actor: &str,
) -> anyhow::Result<Result<Created, ApiError>> {
    if let Some(existing) = input
        .external_id
        .as_ref()
        .and_then(|id| known_external.get(id))
    {
        return Ok(Ok(Created::Duplicate {
            lead: existing.clone(),
        }));
    }
    let now = now();
    let (_, decision, record) = match decide_new(&cache.workspace, &cache.state, known, input, now)
    {
        Ok(decided) => decided,
        Err(error) => return Ok(Err(error)),
    };
    let id = new_id();
    let mut row = LeadRow {
        id: id.clone(),
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
    place(&mut row, &decision, &cache.workspace.rules);
    if let Some(owner) = &row.owner_id {
        known.remember(row.phone.as_deref(), row.email.as_deref(), owner);
    }
    let how = handover(&row);
    follow_up::hand_over(cache, writes, &mut row, None, how, now);
    writes.note_owner(&row);
    apply(cache, writes, &decision.changes);
    let decision_row = decision_row(&id, "route", actor, None, &decision, &record)?;
    if let Some(external_id) = &row.external_id {
        known_external.insert(external_id.clone(), row.clone());
    }
    writes.new_leads.push(row.clone());
    writes.decisions.push(decision_row.clone());
    Ok(Ok(Created::New {
        lead: row,
        decision: decision_row,
    }))
}

async fn open_lead(
    tx: &mut RoutingTx,
    writes: &Writes,
    lead_id: &str,
) -> anyhow::Result<Result<LeadRow, ApiError>> {
    if let Some(row) = writes
        .changed_leads
        .iter()
        .rev()
        .find(|row| row.id == lead_id)
    {
        return Ok(Ok(row.clone()));
    }
    Ok(match tx.get_lead(lead_id).await? {
        None => Err(ApiError::not_found("lead")),
        Some(row) => Ok(row),
    })
}

/// A lead that routing may still move: closed leads are refused.
async fn movable_lead(
    tx: &mut RoutingTx,
    writes: &Writes,
    lead_id: &str,
) -> anyhow::Result<Result<LeadRow, ApiError>> {
    Ok(open_lead(tx, writes, lead_id).await?.and_then(|row| {
        if LeadStatus::parse(&row.status).is_some_and(LeadStatus::is_open) {
            Ok(row)
        } else {
            Err(ApiError::conflict(
                "lead_closed",
                format!("the lead is {}; reopen it first", row.status),
            ))
        }
    }))
}

fn remember(writes: &mut Writes, row: &LeadRow) {
    writes.note_owner(row);
    writes
        .changed_leads
        .retain(|existing| existing.id != row.id);
    writes.changed_leads.push(row.clone());
}

async fn reroute(
    tx: &mut RoutingTx,
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
async fn assign(
    tx: &mut RoutingTx,
    cache: &mut Cache,
    writes: &mut Writes,
    lead_id: &str,
    rep_id: &str,
    reason: Option<String>,
    from_pool: bool,
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
async fn sweep(
    tx: &mut RoutingTx,
    cache: &mut Cache,
    writes: &mut Writes,
) -> anyhow::Result<usize> {
    let mut released = 0;
    let held = tx.held_leads(SWEEP_LIMIT).await?;
    let known = known_customers(tx, &held.iter().map(contact_of).collect::<Vec<_>>()).await?;
    for mut row in held {
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
        let now = now();
        let (decision, record) = cache.workspace.decide(&cache.state, &lead, &[], now);
        if decision.outcome == Outcome::Held {
            continue;
        }
        place(&mut row, &decision, &cache.workspace.rules);
        row.updated_at = now.timestamp_micros();
        apply(cache, writes, &decision.changes);
        let how = handover(&row);
        follow_up::hand_over(cache, writes, &mut row, None, how, now);
        let decision_row = decision_row(&row.id, "release", "system", None, &decision, &record)?;
        remember(writes, &row);
        writes.decisions.push(decision_row);
        released += 1;
    }
    Ok(released)
}

/// Status moves along new → assigned → contacted → qualified → won / lost / invalid; a closed
/// lead stays closed, and a lead moves to assigned only by routing or assignment.
fn transition_allowed(from: LeadStatus, to: LeadStatus) -> bool {
    use LeadStatus::*;
    match (from, to) {
        (Won | Lost | Invalid, _) => false,
        (_, New | Assigned) => false,
        (New, Contacted | Qualified | Won) => false,
        (Qualified, Contacted) => false,
        _ => from != to,
    }
}

async fn update(
    tx: &mut RoutingTx,
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
        row.document = serde_json::to_string(document)?;
        row.source = document.source.clone();
        row.phone = document.phone.clone();
        row.email = document.email.clone();
        row.score = document.score.or(row.score);
        row.priority = document.priority.clone().or(row.priority.clone());
        row.tags =
            serde_json::to_string(&merged_tags(&serde_json::to_string(&document.tags)?, &[]))?;
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
fn check_outcome(status: LeadStatus, patch: &LeadPatch) -> Result<(), ApiError> {
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
fn close(
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
fn handover(row: &LeadRow) -> follow_up::Handover {
    if row.owner_id.is_some() {
        follow_up::Handover::Assigned
    } else {
        follow_up::Handover::Dropped
    }
}

/// One change to one lead.
async fn change(
    tx: &mut RoutingTx,
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
        } => {
            assign(
                tx,
                cache,
                writes,
                lead_id,
                rep_id,
                reason.clone(),
                *from_pool,
                actor,
            )
            .await
        }
        LeadOp::Update(patch) => update(tx, cache, writes, lead_id, patch).await,
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
async fn hand_back(
    tx: &mut RoutingTx,
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
