//! The routing worker: every change to routing state in this process goes through one task,
//! which groups waiting requests into one transaction under the store's routing lock. Within
//! the lock it checks the stored versions, reloads its cached roster and state only when
//! another instance or a configuration change moved them, routes in memory, writes leads,
//! decisions and state changes together, and answers each request after the commit: an
//! acknowledged lead is on disk.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use engine::decision::AttemptTarget;
use engine::state::StateChange;
use engine::{Decision, DecisionRecord, LeadStatus, Outcome, RepId, RoutingState};
use store::{
    ActivityRow, DecisionRow, FeedbackRow, LeadRow, OutboxRow, RepStateRow, RotationRow,
    RoutingConnection, RoutingTx, StatsDelta, StatsRow, Store, TimerRow,
};
use tokio::sync::{mpsc, oneshot};

use crate::error::ApiError;
use crate::leads::{LeadInput, engine_lead};
use crate::workspace::{ConfigRows, Workspace, build_workspace};

mod distribute;
mod duplicates;
mod follow_up;
mod lead;
pub(crate) mod pool;
mod tick;

pub use distribute::{Distributed, Distribution};
pub use duplicates::{MatchAction, Matched};
pub(crate) use follow_up::coming;
pub use follow_up::{ActivityInput, FeedbackInput};
pub(crate) use lead::{Affinity, decide_new};
pub use tick::TICK_LIMIT;

/// Leads handled in one transaction at most.
const MAX_BATCH: usize = 512;

/// Leads waiting, at least, for the worker to route them while the batch before them writes
/// ([`route_ahead`]). Routing ahead costs a read on another connection and a check of
/// `data_version`, and the batch before answers only once it is done: a few hundred
/// microseconds on a busy machine, worth it for a batch that takes longer than that to route.
/// Measured on two cores (BENCHMARKS.md): 100-lead requests gained 6%; single leads, about 45 to a
/// batch, gained nothing, and at 2,000 leads/s their answers came 0.5 ms later.
const AHEAD_FROM: usize = 100;

/// What became of one submitted lead.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // Built once per lead and moved, never stored in bulk.
pub enum Created {
    New {
        lead: LeadRow,
        decision: DecisionRow,
        /// The engine's record of the decision, when it routed the lead: the answer renders
        /// the explanation from it (`leads::routed_decision_view`) rather than parse it back.
        record: Option<Box<DecisionRecord>>,
        /// The customer's stored lead, when the duplicate policy recognised them.
        matched: Option<Matched>,
    },
    /// The external id is known: nothing was done.
    Duplicate { lead: LeadRow },
    /// The customer has an open lead: the arrival was attached to it as a touch.
    Attached { lead: LeadRow, matched: Matched },
    /// A dry run's answer: the lead as it would be stored (without an id) and its decision.
    Planned {
        lead: LeadRow,
        decision: DecisionRow,
    },
}

/// A batch planned as a whole: what became of each lead, and what the plan is worth.
pub type Planned = (Vec<Result<Created, ApiError>>, engine::batch::Summary);

/// What routing a lead now would do.
#[derive(Debug)]
pub struct Explained {
    pub decision: Decision,
    pub record: DecisionRecord,
    /// The customer's stored lead, when the duplicate policy recognises them; with
    /// `attached`, intake would attach the lead instead of routing it.
    pub matched: Option<Matched>,
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
        /// Assign even though another rep holds the customer (撞单); needs a reason.
        override_collision: bool,
    },
    Update(LeadPatch),
    Activity(ActivityInput),
    Feedback(FeedbackInput),
    /// A rep claims the lead from its pool.
    Claim {
        rep_id: String,
    },
    /// Merge another lead of the same customer into this one (查重): `fields` names the
    /// document fields taken from the other lead; the other is closed, pointing here, its
    /// activities and feedback move here. With `pair_id`, the flagged pair is resolved.
    Merge {
        other_id: String,
        fields: Vec<String>,
        pair_id: Option<String>,
    },
    /// The owner gives the lead back to a pool.
    Release {
        reason: Option<String>,
        pool_id: Option<String>,
    },
}

/// What a lead moving in from another CRM keeps (`import --mode migrate`): its owner (a rep
/// id), status, created time and last follow-up.
#[derive(Clone, Debug)]
pub struct Kept {
    pub owner_id: String,
    pub status: LeadStatus,
    pub created_at: DateTime<Utc>,
    pub last_follow_up: Option<DateTime<Utc>>,
}

#[allow(clippy::large_enum_variant)] // One per request, moved through a channel.
enum Job {
    Create {
        leads: Vec<LeadInput>,
        /// For a migration, what each lead keeps; routed afresh otherwise.
        kept: Option<Vec<Kept>>,
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
    /// Create leads planned as one batch (批量最优分配); with `dry_run`, write nothing.
    Plan {
        leads: Vec<LeadInput>,
        actor: String,
        settings: engine::batch::Settings,
        dry_run: bool,
        reply: oneshot::Sender<Result<Planned, ApiError>>,
    },
    /// Distribute pool leads across a team as one optimised batch.
    Distribute {
        lead_ids: Vec<String>,
        team_id: String,
        actor: String,
        settings: engine::batch::Settings,
        dry_run: bool,
        reply: oneshot::Sender<Result<Distribution, ApiError>>,
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
            Job::Create { leads, .. } | Job::Plan { leads, .. } => leads.len(),
            Job::Distribute { lead_ids, .. } => lead_ids.len(),
            Job::Tick { .. } => TICK_LIMIT as usize,
            _ => 1,
        }
    }
}

/// The handle request handlers use to reach the worker.
#[derive(Clone, Debug)]
pub struct Router {
    jobs: mpsc::Sender<Job>,
    /// Leads in the jobs waiting in `jobs` ([`Job::size`]).
    waiting: Arc<AtomicUsize>,
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

/// The time the worker stamps on what it writes: the wall clock, or one set by hand (the demo
/// replays a month of history through the real worker, moving its clock as it goes).
#[derive(Clone, Debug, Default)]
pub struct Clock(Option<std::sync::Arc<std::sync::atomic::AtomicI64>>);

impl Clock {
    /// A clock that reads `at` until it is set again.
    pub fn manual(at: DateTime<Utc>) -> Clock {
        Clock(Some(std::sync::Arc::new(
            std::sync::atomic::AtomicI64::new(at.timestamp_micros()),
        )))
    }

    /// Moves a manual clock to `at`; a wall clock stays as it is.
    pub fn set(&self, at: DateTime<Utc>) {
        if let Some(micros) = &self.0 {
            micros.store(at.timestamp_micros(), std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Now, to the microsecond the store keeps.
    pub fn now(&self) -> DateTime<Utc> {
        let micros = match &self.0 {
            Some(micros) => micros.load(std::sync::atomic::Ordering::SeqCst),
            None => Utc::now().timestamp_micros(),
        };
        DateTime::from_timestamp_micros(micros).unwrap_or_else(Utc::now)
    }
}

tokio::task_local! {
    /// The worker task's clock, read by [`now`].
    static CLOCK: Clock;
}

impl Router {
    /// Starts the worker on the current runtime.
    pub fn start(store: Store) -> Router {
        Router::start_with_clock(store, Clock::default())
    }

    /// Starts the worker with its own clock.
    pub fn start_with_clock(store: Store, clock: Clock) -> Router {
        let (jobs, receiver) = mpsc::channel(4096);
        let waiting = Arc::new(AtomicUsize::new(0));
        let (settled, committed) = mpsc::channel(SETTLING);
        let worker = Worker {
            store: store.clone(),
            jobs: receiver,
            waiting: Arc::clone(&waiting),
            cache: None,
            connection: None,
            data_version: None,
            settled,
        };
        tokio::spawn(CLOCK.scope(clock, worker.run()));
        tokio::spawn(answer_when_durable(committed));
        Router {
            jobs,
            waiting,
            store,
        }
    }

    async fn ask<T>(
        &self,
        job: Job,
        answer: oneshot::Receiver<Result<T, ApiError>>,
    ) -> Result<T, ApiError> {
        let size = job.size();
        self.waiting.fetch_add(size, Ordering::Relaxed);
        if self.jobs.send(job).await.is_err() {
            self.waiting.fetch_sub(size, Ordering::Relaxed);
            return Err(worker_gone());
        }
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
                kept: None,
                actor: actor.to_owned(),
                reply,
            },
            answer,
        )
        .await
    }

    /// Stores leads moving in from another CRM as they are there, without routing (see
    /// `lead::migrate`); each lead's answer in order. `kept` pairs with `leads`.
    pub async fn migrate(
        &self,
        leads: Vec<LeadInput>,
        kept: Vec<Kept>,
        actor: &str,
    ) -> Result<Vec<Result<Created, ApiError>>, ApiError> {
        if leads.len() != kept.len() {
            return Err(ApiError::internal("each migrated lead needs what it keeps"));
        }
        let (reply, answer) = oneshot::channel();
        self.ask(
            Job::Create {
                leads,
                kept: Some(kept),
                actor: actor.to_owned(),
                reply,
            },
            answer,
        )
        .await
    }

    /// Creates leads planned as one batch: placed by value and fit under caps and the band
    /// rather than in arrival order (see `engine::batch`). With `dry_run` nothing is written.
    pub async fn create_planned(
        &self,
        leads: Vec<LeadInput>,
        actor: &str,
        settings: engine::batch::Settings,
        dry_run: bool,
    ) -> Result<Planned, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.ask(
            Job::Plan {
                leads,
                actor: actor.to_owned(),
                settings,
                dry_run,
                reply,
            },
            answer,
        )
        .await
    }

    /// Distributes pool leads across a team as one optimised batch (with `dry_run`, only the
    /// plan). Each lead's answer in the order asked.
    pub async fn distribute(
        &self,
        lead_ids: Vec<String>,
        team_id: &str,
        actor: &str,
        settings: engine::batch::Settings,
        dry_run: bool,
    ) -> Result<Distribution, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.ask(
            Job::Distribute {
                lead_ids,
                team_id: team_id.to_owned(),
                actor: actor.to_owned(),
                settings,
                dry_run,
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
        let job = Job::Sweep { reply: None };
        let size = job.size();
        self.waiting.fetch_add(size, Ordering::Relaxed);
        if self.jobs.try_send(job).is_err() {
            self.waiting.fetch_sub(size, Ordering::Relaxed);
        }
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
        let fired = self.ask(Job::Tick { now, reply }, answer).await?;
        crate::metrics::TIMERS_FIRED.fetch_add(fired as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(fired)
    }
}

struct Cache {
    config_version: i64,
    routing_version: i64,
    workspace: Workspace,
    state: RoutingState,
    /// Outcome statistics per rep: the engine's performance inputs.
    rep_stats: HashMap<String, StatsRow>,
    /// Outcome statistics per rep and segment (`rep/segment`): an optimised batch's fit.
    segment_stats: HashMap<String, StatsRow>,
}

struct Worker {
    store: Store,
    jobs: mpsc::Receiver<Job>,
    /// Leads in the jobs waiting in `jobs`, counted by the [`Router`] that sends them.
    waiting: Arc<AtomicUsize>,
    cache: Option<Cache>,
    /// The connection the last batch committed on, kept while jobs keep coming and nobody else
    /// waits for it.
    connection: Option<RoutingConnection>,
    /// The `data_version` the last batch read on `connection` (SQLite): the next batch, routed
    /// while that one wrote, stands only if it reads the same ([`RoutingTx::data_version`]).
    data_version: Option<i64>,
    /// Committed batches whose answers wait for the database's log to reach the disk
    /// ([`answer_when_durable`]).
    settled: mpsc::Sender<Settled>,
}

/// A batch routed in memory, not yet written: what it writes and its answers.
struct Routed {
    writes: Writes,
    answers: Vec<Answer>,
    /// Whether the cache was read again from the database for it.
    reloaded: bool,
    /// How long recognising its arrivals (owners by contact, the duplicate policy's keys,
    /// external ids) and routing them took.
    customers_us: u64,
    route_us: u64,
    /// Routed while the batch before it wrote ([`route_ahead`]).
    ahead: bool,
}

/// The batch the worker took from the queue while the last one wrote, and when it could be
/// routed meanwhile, its routing.
struct Upcoming {
    jobs: Vec<Job>,
    routed: Option<Routed>,
}

/// Batches committed but not yet answered, at most: past this many the worker waits for the
/// disk before committing more.
const SETTLING: usize = 64;

/// Jobs whose transaction committed, with their answers, to be given once the commit is
/// durable.
struct Settled {
    commit: store::Unsynced,
    answers: Vec<(Job, Option<Answer>)>,
}

/// Answers committed batches once they are durable, in the order they committed: it flushes
/// the database's log once for every batch that committed while the last flush ran (SQLite's
/// log file; on PostgreSQL a commit that waits for the disk), so the routing
/// worker commits its next batch while the disk takes this one. An acknowledged lead is on
/// disk. When the flush fails, the jobs get an internal error: their commits are visible but
/// may not survive a power loss.
async fn answer_when_durable(mut committed: mpsc::Receiver<Settled>) {
    let mut batches = Vec::new();
    while committed.recv_many(&mut batches, SETTLING).await > 0 {
        let started = std::time::Instant::now();
        // One flush answers for every commit before it.
        let flushed = match batches.last() {
            Some(batch) => batch.commit.durable().await,
            None => Ok(()),
        };
        tracing::debug!(
            batches = batches.len(),
            sync_us = started.elapsed().as_micros() as u64,
            "routing batches durable"
        );
        if let Err(error) = &flushed {
            tracing::error!(%error, batches = batches.len(), "flushing the database's log failed");
        }
        for batch in batches.drain(..) {
            for (job, answer) in batch.answers {
                reply_with(job, answer.filter(|_| flushed.is_ok()), NOT_FLUSHED);
            }
        }
    }
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
    /// Leads the SLA clock reminded or escalated about, when, and under whom so far
    /// (`at → lead id → missed_by`): written after the changed leads, in one narrow statement
    /// per batch.
    sla_missed: BTreeMap<i64, BTreeMap<String, String>>,
    outbox: Vec<OutboxRow>,
    stats: BTreeMap<(String, String), StatsDelta>,
    /// `(lead, rep) → until`.
    claim_blocks: BTreeMap<(String, String), i64>,
    activities: Vec<ActivityRow>,
    feedback: Vec<FeedbackRow>,
    audits: Vec<store::AuditRow>,
    /// Keys new leads (and touches) are recognised by.
    customer_keys: Vec<store::CustomerKeyRow>,
    /// Arrivals flagged as possible duplicates.
    duplicate_pairs: Vec<store::DuplicatePairRow>,
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
    Plan(Planned),
    Distribute(Result<Distribution, ApiError>),
    Explain(Result<Explained, ApiError>),
    Change(Result<Changed, ApiError>),
    Count(usize),
}

/// What a job whose transaction failed is told (the error is logged).
const FAILED: &str = "routing transaction failed";

/// What a job whose commit could not be flushed to disk is told (logged).
const NOT_FLUSHED: &str = "the database could not flush the change to disk; it may be lost";

/// Answers a job: its answer, or an internal error when its transaction failed.
fn reply(job: Job, answer: Option<Answer>) {
    reply_with(job, answer, FAILED);
}

/// Answers a job: its answer, or an internal error saying `why` without one.
fn reply_with(job: Job, answer: Option<Answer>, why: &'static str) {
    let failed = || ApiError::internal(why);
    match job {
        Job::Create { reply, .. } => {
            let _ = reply.send(match answer {
                Some(Answer::Create(results)) => Ok(results),
                _ => Err(failed()),
            });
        }
        Job::Change { reply, .. } => {
            let _ = reply.send(match answer {
                Some(Answer::Change(result)) => result,
                _ => Err(failed()),
            });
        }
        Job::Plan { reply, .. } => {
            let _ = reply.send(match answer {
                Some(Answer::Plan(planned)) => Ok(planned),
                _ => Err(failed()),
            });
        }
        Job::Distribute { reply, .. } => {
            let _ = reply.send(match answer {
                Some(Answer::Distribute(result)) => result,
                _ => Err(failed()),
            });
        }
        Job::Explain { reply, .. } => {
            let _ = reply.send(match answer {
                Some(Answer::Explain(result)) => Ok(result),
                _ => Err(failed()),
            });
        }
        Job::Sweep { reply: Some(reply) }
        | Job::HandBack { reply, .. }
        | Job::Tick { reply, .. } => {
            let _ = reply.send(match answer {
                Some(Answer::Count(count)) => Ok(count),
                _ => Err(failed()),
            });
        }
        Job::Sweep { reply: None } => {}
    }
}

impl Worker {
    async fn run(mut self) {
        let mut upcoming: Option<Upcoming> = None;
        loop {
            let (batch, routed) = match upcoming.take() {
                Some(Upcoming { jobs, routed }) => (jobs, routed),
                None => {
                    // Idle, or another writer waits: the connection goes back to the pool.
                    if self.jobs.is_empty() || self.store.writer_wanted() {
                        self.connection = None;
                    }
                    let Some(first) = self.jobs.recv().await else {
                        break;
                    };
                    (self.take_batch(first), None)
                }
            };
            upcoming = self.process(batch, routed).await;
        }
    }

    /// `first`, taken from the queue, and the jobs waiting after it, up to [`MAX_BATCH`]
    /// leads; they no longer count as waiting.
    fn take_batch(&mut self, first: Job) -> Vec<Job> {
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
        self.waiting.fetch_sub(size, Ordering::Relaxed);
        batch
    }

    /// Runs a batch in one transaction (`routed` already, when it was routed ahead), and
    /// gives back the batch taken from the queue while it wrote. When the transaction fails,
    /// each job runs again alone in a transaction of its own, so a job that cannot be written
    /// (a constraint, a value the database refuses) fails alone and the others in its batch
    /// still commit.
    async fn process(&mut self, batch: Vec<Job>, routed: Option<Routed>) -> Option<Upcoming> {
        let mut upcoming = None;
        match self.transact(&batch, routed, Some(&mut upcoming)).await {
            Ok((commit, answers)) => {
                let answers = batch.into_iter().zip(answers.into_iter().map(Some));
                self.settle(Some(commit), answers.collect()).await;
            }
            Err(error) => {
                // The cached state may be ahead of the database now: reload next time. The
                // next batch, if routed ahead, saw this one's rows: route it again.
                self.cache = None;
                if let Some(upcoming) = &mut upcoming {
                    upcoming.routed = None;
                }
                tracing::error!(error = %format!("{error:#}"), jobs = batch.len(), "routing transaction failed");
                if batch.len() == 1 {
                    for job in batch {
                        reply(job, None);
                    }
                    return upcoming;
                }
                for job in batch {
                    let single = std::slice::from_ref(&job);
                    let (commit, answer) = match self.transact(single, None, None).await {
                        Ok((commit, mut answers)) => (Some(commit), answers.pop()),
                        Err(error) => {
                            self.cache = None;
                            tracing::error!(error = %format!("{error:#}"), "routing job failed alone");
                            (None, None)
                        }
                    };
                    self.settle(commit, vec![(job, answer)]).await;
                }
            }
        }
        upcoming
    }

    /// Answers jobs now when there is nothing to wait for (an SQLite database in memory, a
    /// failed transaction that wrote nothing), or hands them to [`answer_when_durable`].
    async fn settle(&self, commit: Option<store::Unsynced>, answers: Vec<(Job, Option<Answer>)>) {
        let commit = match commit {
            Some(commit) if !commit.is_durable() => commit,
            _ => {
                for (job, answer) in answers {
                    reply(job, answer);
                }
                return;
            }
        };
        if let Err(mpsc::error::SendError(settled)) =
            self.settled.send(Settled { commit, answers }).await
        {
            // Only when the runtime shuts down: nobody waits for these any more.
            for (job, _) in settled.answers {
                reply(job, None);
            }
        }
    }

    /// Brings the cache up to the stored configuration and routing state, at `versions` (read
    /// here when not given); whether it read them.
    async fn refresh(
        &mut self,
        tx: &mut RoutingTx<'_>,
        versions: Option<(i64, i64)>,
    ) -> anyhow::Result<bool> {
        let (config_version, routing_version) = match versions {
            Some(versions) => versions,
            None => tx.versions().await?,
        };
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
            return Ok(false);
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
            state.set_rotation(
                row.key.clone(),
                store::rotation_from_row(&row, &workspace.roster),
            );
        }
        let segment_stats = tx
            .list_stats("rep_segment")
            .await?
            .into_iter()
            .map(|row| (row.key.clone(), row))
            .collect();
        self.cache = Some(Cache {
            config_version,
            routing_version,
            workspace,
            state,
            rep_stats,
            segment_stats,
        });
        Ok(true)
    }

    /// Runs `batch` in one routing transaction: its commit, to be durable before the answers
    /// are given, and the answers. A batch `routed` ahead stands when nobody else committed
    /// since the batch before it began; otherwise it is routed again here. With `upcoming`,
    /// the jobs waiting in the queue are taken while this batch writes, and routed meanwhile
    /// when both batches only create leads ([`route_ahead`]).
    async fn transact(
        &mut self,
        batch: &[Job],
        routed: Option<Routed>,
        upcoming: Option<&mut Option<Upcoming>>,
    ) -> anyhow::Result<(store::Unsynced, Vec<Answer>)> {
        let started = std::time::Instant::now();
        // `data_version` compares two transactions on one connection only.
        let before = self.data_version.take();
        let (mut connection, before) = match self.connection.take() {
            Some(connection) => (connection, before),
            None => (self.store.routing_connection().await?, None),
        };
        let mut tx = connection.begin().await?;
        // Read to check a batch routed ahead, or (below) when the next one is.
        let mut data_version = match &routed {
            Some(_) => tx.data_version().await?,
            None => None,
        };
        let begun = started.elapsed();
        let routed = match routed {
            Some(routed) if data_version.is_some() && data_version == before => {
                crate::metrics::ROUTED_AHEAD.fetch_add(1, Ordering::Relaxed);
                routed
            }
            Some(_) => {
                // Someone else committed since the batch before began: what was read ahead
                // may be stale, and the cache with it.
                tracing::debug!("routing ahead undone: another connection committed");
                crate::metrics::ROUTED_AGAIN.fetch_add(1, Ordering::Relaxed);
                self.cache = None;
                self.route(&mut tx, batch).await?
            }
            None => self.route(&mut tx, batch).await?,
        };
        let routed_at = started.elapsed();
        let Routed {
            writes,
            answers,
            reloaded,
            customers_us,
            route_us,
            ahead,
        } = routed;
        // The next batch, taken now so that it can be routed while this one writes: when it is
        // large enough to pay for that (`AHEAD_FROM`), and not when another writer waits for the
        // connection, which goes back to the pool after this batch then.
        let look_ahead = upcoming.is_some()
            && self.store.reads_ahead()
            && !self.store.writer_wanted()
            && self.waiting.load(Ordering::Relaxed) >= AHEAD_FROM
            && only_new(batch);
        let next = match look_ahead {
            true => (self.jobs.try_recv().ok()).map(|first| self.take_batch(first)),
            false => None,
        };
        let cache = self
            .cache
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("no cache after routing"))?;
        // Taken before the next batch, routed ahead, changes the cache again.
        let rows = StateRows::new(cache, &writes);
        let ahead_of = match &next {
            Some(next) if only_new(next) => Some(next.as_slice()),
            _ => None,
        };
        let store = &self.store;
        let writing = async {
            let version = write(&mut tx, &writes, &rows).await?;
            let written = started.elapsed();
            if ahead_of.is_some() && data_version.is_none() {
                data_version = tx.data_version().await?;
            }
            let commit = tx.commit_unsynced().await?;
            anyhow::Ok((version, written, started.elapsed(), commit))
        };
        let routing_ahead = async {
            match ahead_of {
                Some(jobs) => Some(route_ahead(store, cache, &writes, jobs).await),
                None => None,
            }
        };
        let (written, routed_ahead) = tokio::join!(writing, routing_ahead);
        let routed_ahead = match routed_ahead {
            Some(Ok(routed)) => Some(routed),
            Some(Err(error)) => {
                // The cache may hold part of that batch: reload it when the batch is routed.
                tracing::warn!(error = %format!("{error:#}"), "routing ahead failed");
                self.cache = None;
                None
            }
            None => None,
        };
        if let (Some(jobs), Some(slot)) = (next, upcoming) {
            *slot = Some(Upcoming {
                jobs,
                routed: routed_ahead,
            });
        }
        let (version, written, committed, commit) = written?;
        self.connection = Some(connection);
        self.data_version = data_version;
        tracing::debug!(
            jobs = batch.len(),
            leads = writes.new_leads.len(),
            begin_us = begun.as_micros() as u64,
            routed_us = routed_at.as_micros() as u64,
            reloaded,
            ahead,
            customers_us,
            route_us,
            write_us = (written - routed_at).as_micros() as u64,
            commit_us = (committed - written).as_micros() as u64,
            // How long the next batch's routing went on after this one committed.
            ahead_us = (started.elapsed() - committed).as_micros() as u64,
            "routing batch committed"
        );
        if let (Some(cache), Some(version)) = (self.cache.as_mut(), version) {
            cache.routing_version = version;
        }
        crate::metrics::ROUTING_TRANSACTIONS.observe(started.elapsed());
        Ok((commit, answers))
    }

    /// Routes `batch` inside its transaction: the cache brought up to the stored versions, the
    /// arrivals recognised, every job run in memory (reading what it needs in `tx`).
    async fn route(&mut self, tx: &mut RoutingTx<'_>, batch: &[Job]) -> anyhow::Result<Routed> {
        let started = std::time::Instant::now();
        // The first batch reads the versions alone, to build the cache the duplicate keys
        // come from; later batches read them with the customers, in the round trip they make
        // anyway.
        let mut reloaded = self.cache.is_none() && self.refresh(tx, None).await?;
        let external_ids: Vec<String> = arrivals_of(batch)
            .filter_map(|lead| lead.external_id.clone())
            .collect();
        let contacts: Vec<(Option<String>, Option<String>)> = arrivals_of(batch)
            .map(|lead| (lead.phone.clone(), lead.email.clone()))
            .collect();
        let looked_up = started.elapsed();
        // Owners by contact (affinity), the duplicate policy's keys, the leads stored under
        // the batch's external ids and the versions in one round trip; those leads themselves
        // only when some came again. The keys follow the cached policy: when the configuration
        // changed since, the cache is rebuilt and the customers are read again under it.
        let (contacts, recognised) = loop {
            let config_version = self.cache.as_ref().map(|cache| cache.config_version);
            let keys = match &self.cache {
                Some(cache) => {
                    duplicates::Customers::keys(&cache.workspace.duplicates, arrivals_of(batch))
                }
                None => anyhow::bail!("no cache after refresh"),
            };
            let (contacts, recognised) =
                recognise_customers(tx, &contacts, &keys, &external_ids, true).await?;
            let versions = recognised
                .versions
                .ok_or_else(|| anyhow::anyhow!("no versions with the customers"))?;
            if self.refresh(tx, Some(versions)).await? {
                reloaded = true;
                if config_version != Some(versions.0) {
                    continue;
                }
            }
            break (contacts, recognised);
        };
        let cache = self
            .cache
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("no cache after refresh"))?;
        let mut writes = Writes::default();
        let again: Vec<String> = (recognised.external.iter())
            .map(|(_, lead_id)| lead_id.clone())
            .collect();
        let external: HashMap<String, LeadRow> = if again.is_empty() {
            HashMap::new()
        } else {
            (tx.leads_by_ids(&again).await?.into_iter())
                .filter_map(|row| Some((row.external_id.clone()?, row)))
                .collect()
        };
        let mut arrivals = lead::Arrivals {
            external,
            contacts,
            customers: duplicates::Customers::load(tx, recognised.recorded).await?,
        };
        let customers_us = (started.elapsed() - looked_up).as_micros() as u64;
        let recognised_at = started.elapsed();
        let mut answers = Vec::with_capacity(batch.len());
        for job in batch {
            let answer = match job {
                Job::Create {
                    leads, kept, actor, ..
                } => create_leads(
                    cache,
                    &mut writes,
                    &mut arrivals,
                    leads,
                    kept.as_deref(),
                    actor,
                )?,
                Job::Plan {
                    leads,
                    actor,
                    settings,
                    dry_run,
                    ..
                } => Answer::Plan(lead::create_planned(
                    cache,
                    &mut writes,
                    &mut arrivals,
                    leads,
                    settings,
                    *dry_run,
                    actor,
                )?),
                Job::Change {
                    lead_id,
                    op,
                    actor,
                    audit,
                    ..
                } => {
                    let before = match audit {
                        Some(_) => open_lead(tx, &writes, lead_id).await?.ok(),
                        None => None,
                    };
                    let result = lead::change(tx, cache, &mut writes, lead_id, op, actor).await?;
                    if let (Some(action), Ok(changed)) = (audit, &result) {
                        let detail = serde_json::json!({
                            "from": before.and_then(|row| row.owner_id),
                            "to": changed.lead.owner_id,
                            "to_pool": changed.lead.pool_id,
                        });
                        writes.audits.push(store::AuditRow::new(
                            actor.clone(),
                            action,
                            "lead",
                            Some(lead_id),
                            &detail,
                            changed.lead.updated_at,
                        ));
                    }
                    Answer::Change(result)
                }
                Job::Explain { lead, rule_set, .. } => {
                    let draft = match rule_set {
                        Some(row) => {
                            let mut rows = ConfigRows::load_in(tx).await?;
                            rows.active = Some(row.clone());
                            Some(build_workspace(&rows))
                        }
                        None => None,
                    };
                    let workspace = draft.as_ref().unwrap_or(&cache.workspace);
                    let now = now();
                    let known_owner =
                        (arrivals.contacts).owner(lead.phone.as_deref(), lead.email.as_deref());
                    let verdict = arrivals.customers.verdict(
                        &cache.workspace.duplicates,
                        &crate::customer::keys(lead),
                        now,
                    );
                    let (affinity, matched) = lead::affinity(verdict, known_owner);
                    Answer::Explain(
                        lead::decide_new(workspace, &cache.state, affinity.as_ref(), lead, now)
                            .map(|(lead, decision)| Explained {
                                record: workspace.record(&decision, &lead),
                                decision,
                                matched,
                            }),
                    )
                }
                Job::Distribute {
                    lead_ids,
                    team_id,
                    actor,
                    settings,
                    dry_run,
                    ..
                } => Answer::Distribute(
                    distribute::distribute(
                        tx,
                        cache,
                        &mut writes,
                        lead_ids,
                        team_id,
                        settings,
                        *dry_run,
                        actor,
                    )
                    .await?,
                ),
                Job::Sweep { .. } => Answer::Count(lead::sweep(tx, cache, &mut writes).await?),
                Job::HandBack { rep_id, .. } => {
                    Answer::Count(lead::hand_back(tx, cache, &mut writes, rep_id).await?)
                }
                Job::Tick { now, .. } => {
                    Answer::Count(tick::tick(tx, cache, &mut writes, *now).await?)
                }
            };
            answers.push(answer);
        }
        Ok(Routed {
            writes,
            answers,
            reloaded,
            customers_us,
            route_us: (started.elapsed() - recognised_at).as_micros() as u64,
            ahead: false,
        })
    }
}

/// The leads arriving in a batch: those its jobs create or plan, and the dry run's.
fn arrivals_of(batch: &[Job]) -> impl Iterator<Item = &LeadInput> {
    batch.iter().flat_map(|job| match job {
        Job::Create { leads, .. } | Job::Plan { leads, .. } => leads.as_slice(),
        Job::Explain { lead, .. } => std::slice::from_ref(lead),
        _ => &[],
    })
}

/// Whether every job of `batch` creates leads routed afresh: what [`route_ahead`] routes.
fn only_new(batch: &[Job]) -> bool {
    (batch.iter()).all(|job| matches!(job, Job::Create { kept: None, .. }))
}

/// Creates a job's leads, each answered on its own: a known external id with its lead, a
/// migrated lead with what it keeps, any other routed afresh.
fn create_leads(
    cache: &mut Cache,
    writes: &mut Writes,
    arrivals: &mut lead::Arrivals,
    leads: &[LeadInput],
    kept: Option<&[Kept]>,
    actor: &str,
) -> anyhow::Result<Answer> {
    let mut results = Vec::with_capacity(leads.len());
    for (index, input) in leads.iter().enumerate() {
        // A known external id answers with its lead, however it came in.
        if let Some(existing) =
            (input.external_id.as_ref()).and_then(|id| arrivals.external.get(id))
        {
            results.push(Ok(Created::Duplicate {
                lead: existing.clone(),
            }));
            continue;
        }
        results.push(match kept.and_then(|kept| kept.get(index)) {
            Some(kept) => lead::migrate(cache, writes, arrivals, input, kept, actor)?,
            None => lead::create(cache, writes, arrivals, input, actor)?,
        });
    }
    Ok(Answer::Create(results))
}

/// The routing state a batch changed, as rows: taken from the cache before the next batch,
/// routed ahead, changes it again.
struct StateRows {
    reps: Vec<RepStateRow>,
    rotations: Vec<RotationRow>,
    /// `(kind, value, owner, at)`.
    contacts: Vec<(String, String, String, i64)>,
}

impl StateRows {
    fn new(cache: &Cache, writes: &Writes) -> StateRows {
        let roster = &cache.workspace.roster;
        let reps = (writes.dirty_reps.iter())
            .filter_map(|id| {
                (roster.position(id))
                    .map(|position| store::rep_state_row(id, cache.state.rep(position)))
            })
            .collect();
        let rotations = (writes.dirty_rotations.iter())
            .filter_map(|key| {
                (cache.state.rotation(key)).map(|state| store::rotation_row(key, state, roster))
            })
            .collect();
        let contacts = (writes.contacts.iter())
            .map(|((kind, value), (owner, at))| {
                ((*kind).to_owned(), value.clone(), owner.clone(), *at)
            })
            .collect();
        StateRows {
            reps,
            rotations,
            contacts,
        }
    }
}

/// Writes what a routed batch changes, in its transaction: the routing version it bumped to,
/// if it did.
async fn write(
    tx: &mut RoutingTx<'_>,
    writes: &Writes,
    rows: &StateRows,
) -> anyhow::Result<Option<i64>> {
    writes.drop_timers(tx).await?;
    // The rows this batch adds, in one statement on PostgreSQL; then what changes stored
    // rows, which is rarer.
    let version = tx
        .insert_routed(&store::Routed {
            leads: &writes.new_leads,
            decisions: &writes.decisions,
            timers: &writes.timers,
            outbox: &writes.outbox,
            stats: &writes.stats_rows(),
            rep_states: &rows.reps,
            rotations: &rows.rotations,
            contacts: &rows.contacts,
            customer_keys: &writes.customer_keys,
            bump: !rows.reps.is_empty() || !rows.rotations.is_empty(),
        })
        .await?;
    for row in &writes.changed_leads {
        tx.update_lead(row).await?;
    }
    for (at, leads) in &writes.sla_missed {
        let leads: Vec<(String, String)> = leads
            .iter()
            .map(|(id, missed_by)| (id.clone(), missed_by.clone()))
            .collect();
        tx.mark_sla_missed(&leads, *at).await?;
    }
    tx.insert_audit(&writes.audits).await?;
    writes.write_follow_up(tx).await?;
    tx.insert_duplicate_pairs(&writes.duplicate_pairs).await?;
    Ok(version)
}

/// Routes `batch`, new leads only, while the batch before it (`before`) writes: 流水线. The
/// arrivals are recognised on a reader connection, which sees every commit but not `before`'s
/// rows, so those are laid over what it reads (`before`'s contacts, external ids, customer
/// keys and leads), as a read after that commit would find them. The cache is the one
/// `before` left. The result stands only when nobody else commits before this batch's own
/// transaction begins ([`RoutingTx::data_version`]); otherwise, or when `before` fails, the
/// batch is routed again and the cache reloaded.
async fn route_ahead(
    store: &Store,
    cache: &mut Cache,
    before: &Writes,
    batch: &[Job],
) -> anyhow::Result<Routed> {
    let started = std::time::Instant::now();
    let external_ids: Vec<String> = arrivals_of(batch)
        .filter_map(|lead| lead.external_id.clone())
        .collect();
    let (phones, emails) =
        wanted_contacts(arrivals_of(batch).map(|lead| (lead.phone.as_ref(), lead.email.as_ref())));
    let keys = duplicates::Customers::keys(&cache.workspace.duplicates, arrivals_of(batch));
    let mut recognised = store
        .recognise(&store::Recognise {
            phones: &phones,
            emails: &emails,
            keys: &keys,
            limit: duplicates::LOOKUP_LIMIT,
            external_ids: &external_ids,
            versions: false,
        })
        .await?;
    // `before`'s rows, as a read after its commit finds them.
    let written: HashMap<&str, &LeadRow> = (before.new_leads.iter())
        .chain(&before.changed_leads)
        .map(|row| (row.id.as_str(), row))
        .collect();
    let mut contacts = known_owners(std::mem::take(&mut recognised.owners));
    for ((kind, value), (owner, _)) in &before.contacts {
        contacts.remember_contact(kind, value, owner);
    }
    let wanted: std::collections::HashSet<&str> = external_ids.iter().map(String::as_str).collect();
    recognised.external.extend(
        (before.new_leads.iter())
            .filter_map(|row| Some((row.external_id.clone()?, row.id.clone())))
            .filter(|(external_id, _)| wanted.contains(external_id.as_str())),
    );
    let keys: std::collections::HashSet<(&str, &str)> = (keys.iter())
        .map(|(kind, value)| (kind.as_str(), value.as_str()))
        .collect();
    // Newest first, as the reader returns them.
    let mut recorded: Vec<store::CustomerKeyRow> = (before.customer_keys.iter().rev())
        .filter(|row| keys.contains(&(row.kind.as_str(), row.value.as_str())))
        .cloned()
        .collect();
    recorded.append(&mut recognised.recorded);
    let mut ids: Vec<&String> = (recognised.external.iter().map(|(_, id)| id))
        .chain(recorded.iter().map(|row| &row.lead_id))
        .collect();
    ids.sort();
    ids.dedup();
    let (written_ids, stored_ids): (Vec<&String>, Vec<&String>) = ids
        .into_iter()
        .partition(|id| written.contains_key(id.as_str()));
    let stored_ids: Vec<String> = stored_ids.into_iter().cloned().collect();
    let mut leads: HashMap<String, LeadRow> = match stored_ids.is_empty() {
        true => HashMap::new(),
        false => (store.leads_by_ids(&stored_ids).await?.into_iter())
            .map(|row| (row.id.clone(), row))
            .collect(),
    };
    leads.extend(
        (written_ids.into_iter())
            .filter_map(|id| Some((id.clone(), (*written.get(id.as_str())?).clone()))),
    );
    let external = (recognised.external.iter())
        .filter_map(|(external_id, id)| Some((external_id.clone(), leads.get(id)?.clone())))
        .collect();
    let mut arrivals = lead::Arrivals {
        external,
        contacts,
        customers: duplicates::Customers::with_leads(recorded, leads),
    };
    let customers_us = started.elapsed().as_micros() as u64;
    let mut writes = Writes::default();
    let mut answers = Vec::with_capacity(batch.len());
    for job in batch {
        let Job::Create {
            leads,
            kept: None,
            actor,
            ..
        } = job
        else {
            anyhow::bail!("only new leads are routed ahead");
        };
        answers.push(create_leads(
            cache,
            &mut writes,
            &mut arrivals,
            leads,
            None,
            actor,
        )?);
    }
    Ok(Routed {
        writes,
        answers,
        reloaded: false,
        customers_us,
        route_us: started.elapsed().as_micros() as u64 - customers_us,
        ahead: true,
    })
}

/// Plans leads as one optimised batch against the cached state under `rules` (the active rule
/// set, or a distribution's), with the workspace's model, each rep's record per segment and the
/// mean won amount for leads without a budget.
fn plan_batch(
    cache: &Cache,
    rules: &engine::RuleSet,
    leads: &[&engine::Lead],
    settings: engine::batch::Settings,
    exclude: &[RepId],
    now: DateTime<Utc>,
) -> engine::batch::Plan {
    let history = segment_history(cache);
    let batch = engine::batch::Batch {
        rules,
        roster: &cache.workspace.roster,
        state: &cache.state,
        now,
        model: cache.workspace.model.as_ref(),
        settings: engine::batch::Settings {
            default_amount: mean_won_amount(cache),
            ..settings
        },
        exclude,
        history: Some(&history),
    };
    engine::batch::plan(&batch, leads)
}

/// Each rep's record per segment, by roster position, as batch planning reads it.
fn segment_history(cache: &Cache) -> engine::batch::SegmentHistory {
    let roster = &cache.workspace.roster;
    cache
        .segment_stats
        .values()
        .filter_map(|row| {
            let (rep, segment) = row.key.rsplit_once('/')?;
            let position = roster.position(&RepId::new(rep))?;
            let stats = follow_up::rep_stats(row);
            Some(((position, segment.to_owned()), (stats.won, stats.closed)))
        })
        .collect()
}

/// The mean amount of a won lead, the expected amount of a lead without a budget (1 before
/// anything was won).
fn mean_won_amount(cache: &Cache) -> f64 {
    let (amount, won) = cache
        .rep_stats
        .values()
        .fold((0.0, 0i64), |(amount, won), row| {
            (amount + row.amount, won + row.won)
        });
    if won > 0 && amount > 0.0 {
        amount / won as f64
    } else {
        1.0
    }
}

/// The worker's clock (see [`Clock`]); the wall clock outside the worker task.
fn now() -> DateTime<Utc> {
    CLOCK
        .try_with(Clock::now)
        .unwrap_or_else(|_| Clock::default().now())
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
    if let Some(win) = &decision.win {
        row.win_probability = Some(win.probability);
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
        // Rendered from the record when read (`leads::stored_explanation`).
        explanation: String::new(),
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

    /// `remember` for one contact of `kind` `phone` or `email`, as the contacts table has it.
    fn remember_contact(&mut self, kind: &str, value: &str, owner: &str) {
        match kind {
            "phone" => self.remember(Some(value), None, owner),
            _ => self.remember(None, Some(value), owner),
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
    tx: &mut RoutingTx<'_>,
    contacts: &[(Option<String>, Option<String>)],
) -> anyhow::Result<KnownCustomers> {
    Ok(recognise_customers(tx, contacts, &[], &[], false).await?.0)
}

/// Owners of known customers by phone and email, and what else `store::Recognise` reads with
/// them: with `keys` (the duplicate policy's) the leads recorded under those keys, and the
/// leads stored under `external_ids`, and with `versions` the workspace's versions.
async fn recognise_customers(
    tx: &mut RoutingTx<'_>,
    contacts: &[(Option<String>, Option<String>)],
    keys: &[(String, String)],
    external_ids: &[String],
    versions: bool,
) -> anyhow::Result<(KnownCustomers, store::Recognised)> {
    let (phones, emails) =
        wanted_contacts((contacts.iter()).map(|(phone, email)| (phone.as_ref(), email.as_ref())));
    let mut recognised = tx
        .recognise(&store::Recognise {
            phones: &phones,
            emails: &emails,
            keys,
            limit: duplicates::LOOKUP_LIMIT,
            external_ids,
            versions,
        })
        .await?;
    let known = known_owners(std::mem::take(&mut recognised.owners));
    Ok((known, recognised))
}

/// The phones and the emails of `contacts` (`(phone, email)`), to look their owners up.
fn wanted_contacts<'a>(
    contacts: impl Iterator<Item = (Option<&'a String>, Option<&'a String>)>,
) -> (Vec<String>, Vec<String>) {
    let (mut phones, mut emails) = (Vec::new(), Vec::new());
    for (phone, email) in contacts {
        phones.extend(phone.cloned());
        emails.extend(email.cloned());
    }
    (phones, emails)
}

/// The owners `store::Recognised::owners` found, by phone and email.
fn known_owners(owners: Vec<(String, String, String)>) -> KnownCustomers {
    let mut known = KnownCustomers::default();
    for (kind, value, owner) in owners {
        known.remember_contact(&kind, &value, &owner);
    }
    known
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

async fn open_lead(
    tx: &mut RoutingTx<'_>,
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
    tx: &mut RoutingTx<'_>,
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
