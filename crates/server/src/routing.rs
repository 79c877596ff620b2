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
use store::{DecisionRow, LeadRow, RepStateRow, RotationRow, RoutingTx, Store};
use tokio::sync::{mpsc, oneshot};

use crate::error::ApiError;
use crate::leads::{LeadInput, engine_lead};
use crate::workspace::{Workspace, build_workspace};

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

/// A lead after a reroute, assignment or update.
#[derive(Debug)]
pub struct Changed {
    pub lead: LeadRow,
    pub decision: Option<DecisionRow>,
}

/// Changes a request may make to an existing lead.
#[derive(Debug, Default)]
pub struct LeadPatch {
    pub document: Option<LeadInput>,
    pub status: Option<LeadStatus>,
}

#[allow(clippy::large_enum_variant)] // One per request, moved through a channel.
enum Job {
    Create {
        leads: Vec<LeadInput>,
        actor: String,
        reply: oneshot::Sender<Result<Vec<Result<Created, ApiError>>, ApiError>>,
    },
    Reroute {
        lead_id: String,
        actor: String,
        reply: oneshot::Sender<Result<Changed, ApiError>>,
    },
    Assign {
        lead_id: String,
        rep_id: String,
        reason: Option<String>,
        actor: String,
        reply: oneshot::Sender<Result<Changed, ApiError>>,
    },
    Update {
        lead_id: String,
        patch: LeadPatch,
        reply: oneshot::Sender<Result<Changed, ApiError>>,
    },
    /// Route held leads again, most urgent first: someone may have become eligible.
    Sweep {
        reply: Option<oneshot::Sender<Result<usize, ApiError>>>,
    },
}

impl Job {
    fn size(&self) -> usize {
        match self {
            Job::Create { leads, .. } => leads.len(),
            _ => 1,
        }
    }
}

/// The handle request handlers use to reach the worker.
#[derive(Clone, Debug)]
pub struct Router {
    jobs: mpsc::Sender<Job>,
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
            store,
            jobs: receiver,
            cache: None,
        };
        tokio::spawn(worker.run());
        Router { jobs }
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

    pub async fn reroute(&self, lead_id: &str, actor: &str) -> Result<Changed, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.ask(
            Job::Reroute {
                lead_id: lead_id.to_owned(),
                actor: actor.to_owned(),
                reply,
            },
            answer,
        )
        .await
    }

    pub async fn assign(
        &self,
        lead_id: &str,
        rep_id: &str,
        reason: Option<String>,
        actor: &str,
    ) -> Result<Changed, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.ask(
            Job::Assign {
                lead_id: lead_id.to_owned(),
                rep_id: rep_id.to_owned(),
                reason,
                actor: actor.to_owned(),
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

    pub async fn update(&self, lead_id: &str, patch: LeadPatch) -> Result<Changed, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.ask(
            Job::Update {
                lead_id: lead_id.to_owned(),
                patch,
                reply,
            },
            answer,
        )
        .await
    }
}

struct Cache {
    config_version: i64,
    routing_version: i64,
    workspace: Workspace,
    state: RoutingState,
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
    Change(Result<Changed, ApiError>),
    Swept(usize),
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

    async fn process(&mut self, batch: Vec<Job>) {
        match self.transact(&batch).await {
            Ok(answers) => {
                for (job, answer) in batch.into_iter().zip(answers) {
                    match (job, answer) {
                        (Job::Create { reply, .. }, Answer::Create(results)) => {
                            let _ = reply.send(Ok(results));
                        }
                        (
                            Job::Reroute { reply, .. }
                            | Job::Assign { reply, .. }
                            | Job::Update { reply, .. },
                            Answer::Change(result),
                        ) => {
                            let _ = reply.send(result);
                        }
                        (Job::Sweep { reply: Some(reply) }, Answer::Swept(count)) => {
                            let _ = reply.send(Ok(count));
                        }
                        _ => {}
                    }
                }
            }
            Err(error) => {
                // The cached state may be ahead of the database now: reload next time.
                self.cache = None;
                tracing::error!(error = %format!("{error:#}"), "routing transaction failed");
                for job in batch {
                    let failed = || ApiError::internal("routing transaction failed");
                    match job {
                        Job::Create { reply, .. } => {
                            let _ = reply.send(Err(failed()));
                        }
                        Job::Reroute { reply, .. }
                        | Job::Assign { reply, .. }
                        | Job::Update { reply, .. } => {
                            let _ = reply.send(Err(failed()));
                        }
                        Job::Sweep { reply: Some(reply) } => {
                            let _ = reply.send(Err(failed()));
                        }
                        Job::Sweep { reply: None } => {}
                    }
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
            _ => {
                let reps = tx.list_reps().await?;
                let teams = tx.list_teams().await?;
                let pools = tx.list_pools().await?;
                let fields = tx.list_custom_fields().await?;
                let active = tx.active_rule_set().await?;
                build_workspace(&reps, &teams, &pools, &fields, active.as_ref())
            }
        };
        let mut state = RoutingState::new(&workspace.roster);
        for row in tx.load_rep_states().await? {
            let id = RepId::new(row.rep_id.clone());
            state.set_rep(
                &workspace.roster,
                &id,
                store::rep_state_from_row(&row, Default::default()),
            );
        }
        for row in tx.load_rotations().await? {
            state.set_rotation(row.key.clone(), store::rotation_from_row(&row));
        }
        self.cache = Some(Cache {
            config_version,
            routing_version,
            workspace,
            state,
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
        let (phones, emails): (Vec<String>, Vec<String>) = batch
            .iter()
            .flat_map(|job| match job {
                Job::Create { leads, .. } => leads
                    .iter()
                    .map(|lead| (lead.phone.clone(), lead.email.clone()))
                    .collect(),
                _ => Vec::new(),
            })
            .fold(
                (Vec::new(), Vec::new()),
                |(mut phones, mut emails), (phone, email)| {
                    phones.extend(phone);
                    emails.extend(email);
                    (phones, emails)
                },
            );
        let mut known = KnownCustomers::default();
        for (kind, value, owner) in tx.owners_by_contact(&phones, &emails).await? {
            match kind.as_str() {
                "phone" => known.remember(Some(&value), None, &owner),
                _ => known.remember(None, Some(&value), &owner),
            }
        }
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
                Job::Reroute { lead_id, actor, .. } => {
                    Answer::Change(reroute(&mut tx, cache, &mut writes, lead_id, actor).await?)
                }
                Job::Assign {
                    lead_id,
                    rep_id,
                    reason,
                    actor,
                    ..
                } => Answer::Change(
                    assign(
                        &mut tx,
                        cache,
                        &mut writes,
                        lead_id,
                        rep_id,
                        reason.clone(),
                        actor,
                    )
                    .await?,
                ),
                Job::Update { lead_id, patch, .. } => {
                    Answer::Change(update(&mut tx, cache, &mut writes, lead_id, patch).await?)
                }
                Job::Sweep { .. } => Answer::Swept(sweep(&mut tx, cache, &mut writes).await?),
            };
            answers.push(answer);
        }
        let routed = started.elapsed();
        tx.insert_leads(&writes.new_leads).await?;
        for row in &writes.changed_leads {
            tx.update_lead(row).await?;
        }
        tx.insert_decisions(&writes.decisions).await?;
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
            StateChange::Assigned { rep, .. } => {
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
fn place(row: &mut LeadRow, decision: &Decision) {
    row.owner_id = decision.owner().map(ToString::to_string);
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
    let mut lead = match input.to_engine(&cache.workspace.catalogue, now) {
        Ok(lead) => lead,
        Err(error) => return Ok(Err(error)),
    };
    lead.known_owner = known
        .owner(input.phone.as_deref(), input.email.as_deref())
        .map(RepId::new);
    let (decision, record) = cache.workspace.decide(&cache.state, &lead, &[], now);
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
    };
    place(&mut row, &decision);
    if let Some(owner) = &row.owner_id {
        known.remember(row.phone.as_deref(), row.email.as_deref(), owner);
    }
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
    let lead = match engine_lead(&row, &cache.workspace.catalogue) {
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
    place(&mut row, &decision);
    row.updated_at = now.timestamp_micros();
    apply(cache, writes, &decision.changes);
    let decision_row = decision_row(&row.id, "reroute", actor, None, &decision, &record)?;
    remember(writes, &row);
    writes.decisions.push(decision_row.clone());
    Ok(Ok(Changed {
        lead: row,
        decision: Some(decision_row),
    }))
}

async fn assign(
    tx: &mut RoutingTx,
    cache: &mut Cache,
    writes: &mut Writes,
    lead_id: &str,
    rep_id: &str,
    reason: Option<String>,
    actor: &str,
) -> anyhow::Result<Result<Changed, ApiError>> {
    let mut row = match movable_lead(tx, writes, lead_id).await? {
        Ok(row) => row,
        Err(error) => return Ok(Err(error)),
    };
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
    row.owner_id = Some(rep_id.to_owned());
    row.pool_id = None;
    row.held = false;
    row.status = LeadStatus::Assigned.as_str().to_owned();
    row.updated_at = now.timestamp_micros();
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
    Ok(Ok(Changed {
        lead: row,
        decision: Some(decision_row),
    }))
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
    for mut row in tx.held_leads(SWEEP_LIMIT).await? {
        if writes
            .changed_leads
            .iter()
            .any(|changed| changed.id == row.id)
        {
            continue;
        }
        let Ok(lead) = engine_lead(&row, &cache.workspace.catalogue) else {
            continue;
        };
        let now = now();
        let (decision, record) = cache.workspace.decide(&cache.state, &lead, &[], now);
        if decision.outcome == Outcome::Held {
            continue;
        }
        place(&mut row, &decision);
        row.updated_at = now.timestamp_micros();
        apply(cache, writes, &decision.changes);
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
        if !status.is_open() {
            release(cache, writes, &row);
        }
        row.status = status.as_str().to_owned();
    }
    row.updated_at = now.timestamp_micros();
    remember(writes, &row);
    Ok(Ok(Changed {
        lead: row,
        decision: None,
    }))
}
