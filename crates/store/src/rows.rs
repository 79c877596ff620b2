//! Rows as the tables hold them. Times are microseconds since the epoch, documents JSON text.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, sqlx::FromRow)]
pub struct RepRow {
    pub id: String,
    pub name: String,
    pub status: String,
    pub document: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// Moves on every write: the `ETag` of the document.
    pub version: i64,
}

#[derive(Clone, Debug, Default, PartialEq, sqlx::FromRow)]
pub struct TeamRow {
    pub id: String,
    pub name: String,
    pub document: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// Moves on every write: the `ETag` of the document.
    pub version: i64,
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct RuleSetRow {
    pub version: i64,
    pub name: Option<String>,
    pub document: String,
    /// `draft`, `published` (the active one) or `retired`.
    pub status: String,
    pub created_at: i64,
    pub published_at: Option<i64>,
    /// Who saved it, as the audit log names actors.
    pub created_by: Option<String>,
}

/// A settings document: a calendar, an SLA policy or a pool.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct DocRow {
    pub id: String,
    pub name: String,
    pub document: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// Moves on every write: the `ETag` of the document.
    pub version: i64,
}

/// How a document is written: created only when its id is free, or replaced only while it
/// still has the version that was read. Either way a write that lost a race changes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    Create,
    Replace { version: i64 },
}

/// Pools are settings documents.
pub type PoolRow = DocRow;

/// The tables of settings documents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setting {
    Calendars,
    SlaPolicies,
    Pools,
    Channels,
    IntakeSources,
}

impl Setting {
    pub const ALL: [Setting; 5] = [
        Setting::Calendars,
        Setting::SlaPolicies,
        Setting::Pools,
        Setting::Channels,
        Setting::IntakeSources,
    ];

    /// The singular name, for logs and the audit trail.
    pub fn name(self) -> &'static str {
        match self {
            Setting::Calendars => "calendar",
            Setting::SlaPolicies => "sla_policy",
            Setting::Pools => "pool",
            Setting::Channels => "channel",
            Setting::IntakeSources => "intake_source",
        }
    }

    pub(crate) fn table(self) -> &'static str {
        match self {
            Setting::Calendars => "calendars",
            Setting::SlaPolicies => "sla_policies",
            Setting::Pools => "pools",
            Setting::Channels => "channels",
            Setting::IntakeSources => "intake_sources",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct CustomFieldRow {
    /// `lead` or `rep`.
    pub entity: String,
    pub name: String,
    pub field_type: String,
}

#[derive(Clone, Debug, Default, PartialEq, sqlx::FromRow)]
pub struct LeadRow {
    pub id: String,
    pub external_id: Option<String>,
    pub document: String,
    pub status: String,
    pub owner_id: Option<String>,
    pub team_id: Option<String>,
    pub pool_id: Option<String>,
    pub held: bool,
    pub source: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    /// JSON array of tags.
    pub tags: String,
    pub score: Option<f64>,
    pub priority: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// When the current owner got the lead.
    pub assigned_at: Option<i64>,
    /// The current owner's first activity since then.
    pub first_response_at: Option<i64>,
    pub last_activity_at: Option<i64>,
    /// A callback the owner scheduled.
    pub callback_at: Option<i64>,
    /// Set when the current owner claimed the lead from a pool.
    pub claimed_at: Option<i64>,
    pub protected_until: Option<i64>,
    /// Reclaims so far.
    pub hops: i64,
    /// JSON array of earlier owners.
    pub previous_owners: String,
    /// The rule that routed it, and the SLA policy its clocks follow.
    pub rule_id: Option<String>,
    pub sla_policy: Option<String>,
    pub last_pool: Option<String>,
    pub closed_at: Option<i64>,
    pub amount: Option<f64>,
    pub lost_reason: Option<String>,
    /// The active model's win probability when the lead was routed.
    pub win_probability: Option<f64>,
    /// The lead as it arrived, once a change rewrote `document` (`None`: `document` is it).
    pub intake: Option<String>,
    /// Set when a manager merged this lead into another (it is closed then).
    pub merged_into: Option<String>,
    /// When the SLA clock last reminded or escalated about it (missed and overdue are read
    /// from this and `hops`).
    pub sla_missed_at: Option<i64>,
    /// JSON array of the reps it reminded or escalated to about this lead while they owned it
    /// (the dashboard's missed count per rep). Written only with `sla_missed_at`
    /// (`RoutingTx::mark_sla_missed`); a lead update leaves it as stored.
    pub missed_by: String,
}

impl LeadRow {
    /// The lead's document as it arrived: what the model learns from and replay routes.
    pub fn intake_document(&self) -> &str {
        self.intake.as_deref().unwrap_or(&self.document)
    }

    /// Overdue at `now`: open and owned, and its promised callback has passed, or the SLA clock
    /// reminded or escalated since it was assigned and nobody has answered. The same condition
    /// as the dashboard's and the lead list's SQL (`push_overdue` in `queries/dashboard.rs`).
    pub fn overdue_at(&self, now: i64) -> bool {
        let open = matches!(
            self.status.as_str(),
            "new" | "assigned" | "contacted" | "qualified"
        );
        let reminded = match (self.sla_missed_at, self.assigned_at) {
            (Some(missed), Some(assigned)) => {
                self.first_response_at.is_none() && missed >= assigned
            }
            _ => false,
        };
        open && self.owner_id.is_some() && (self.callback_at.is_some_and(|at| at < now) || reminded)
    }
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct DecisionRow {
    pub id: String,
    pub lead_id: String,
    /// `route`, `reroute` or `manual`.
    pub kind: String,
    /// `system`, or the API key that acted.
    pub actor: String,
    pub reason: Option<String>,
    pub rule_set_version: Option<i64>,
    pub outcome: String,
    pub owner_id: Option<String>,
    /// The engine's `DecisionRecord` as JSON.
    pub record: String,
    pub created_at: i64,
    /// `{"en": …, "zh": …}`, or empty for a decision the engine made: its explanation is
    /// rendered from `record` when read. `{}` on decisions from before explanations were kept.
    pub explanation: String,
}

#[derive(Clone, Debug, Default, PartialEq, sqlx::FromRow)]
pub struct RepStateRow {
    pub rep_id: String,
    pub open_leads: i64,
    pub day_start: Option<String>,
    pub day_count: i64,
    pub week_start: Option<String>,
    pub week_count: i64,
    pub month_start: Option<String>,
    pub month_count: i64,
    pub last_assigned_at: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct RotationRow {
    pub key: String,
    pub state: String,
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub id: String,
    pub name: String,
    /// The first characters of the key, to recognise it in lists.
    pub prefix: String,
    /// SHA-256 of the whole key, hex.
    pub hash: String,
    /// `admin`, `integration` or `reporting`.
    pub role: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    /// The user who created it, if any.
    pub user_id: Option<String>,
    pub last_used_at: Option<i64>,
}

/// Filters for listing leads; all optional.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LeadFilter {
    pub owner_id: Option<String>,
    pub team_id: Option<String>,
    pub status: Option<String>,
    pub tag: Option<String>,
    pub source: Option<String>,
    pub created_from: Option<i64>,
    pub created_to: Option<i64>,
    pub q: Option<String>,
    /// Leads waiting in any of these pools.
    pub pools: Option<Vec<String>>,
    /// Only leads waiting in the hold queue (nobody could take them yet).
    pub held: bool,
    pub priority: Option<String>,
    /// Only leads someone still works on (new, assigned, contacted, qualified).
    pub open: bool,
    /// Only leads overdue at this time (a callback passed, or the SLA clock ran out unanswered).
    pub overdue_at: Option<i64>,
    /// Only open leads nobody touched since this time.
    pub idle_before: Option<i64>,
    /// Only leads whose first response came late under some owner.
    pub sla_missed: bool,
    /// Only leads someone answered.
    pub responded: bool,
    /// Only leads with an owner.
    pub owned: bool,
    /// Only leads this rep was given at some point (routed, claimed, reclaimed to, by hand).
    pub handled_by: Option<String>,
    /// Only leads closed in `[from, to)`.
    pub closed_from: Option<i64>,
    pub closed_to: Option<i64>,
    /// What a manager sees: leads of these teams, owned by these reps, or owned by nobody.
    pub visible: Option<(Vec<String>, Vec<String>)>,
    /// Leads with ids below this one (ids sort by creation time); only in the newest-first
    /// order.
    pub before_id: Option<String>,
    pub limit: i64,
    pub order: LeadOrder,
    /// Rows skipped, for the orders other than newest first.
    pub offset: i64,
}

/// How a lead list is sorted; ties newest first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeadOrder {
    #[default]
    Newest,
    Oldest,
    Status,
    Owner,
    Source,
    Priority,
    /// Longest untouched first.
    LastActivity,
}

impl LeadOrder {
    /// The order a list's `sort` parameter names (`created`, `-created`, `status`, …).
    pub fn parse(text: &str) -> Option<LeadOrder> {
        Some(match text {
            "created" | "" => LeadOrder::Newest,
            "-created" => LeadOrder::Oldest,
            "status" => LeadOrder::Status,
            "owner" => LeadOrder::Owner,
            "source" => LeadOrder::Source,
            "priority" => LeadOrder::Priority,
            "last_activity" => LeadOrder::LastActivity,
            _ => return None,
        })
    }

    pub fn code(self) -> &'static str {
        match self {
            LeadOrder::Newest => "created",
            LeadOrder::Oldest => "-created",
            LeadOrder::Status => "status",
            LeadOrder::Owner => "owner",
            LeadOrder::Source => "source",
            LeadOrder::Priority => "priority",
            LeadOrder::LastActivity => "last_activity",
        }
    }
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct ActivityRow {
    pub id: String,
    pub lead_id: String,
    pub rep_id: Option<String>,
    pub actor: String,
    /// call, wechat, sms, email, visit, meeting or note.
    pub kind: String,
    pub outcome: Option<String>,
    pub note: Option<String>,
    pub next_follow_up_at: Option<i64>,
    /// Set on the owner's first activity after an assignment.
    pub response_secs: Option<i64>,
    pub created_at: i64,
    /// What an arrival attached to the lead brought (`inquiry`): its source and fields, JSON.
    pub detail: Option<String>,
}

/// A key a customer is recognised by (`phone`, `email`, `wechat`, `company`, `company_name`)
/// and the lead it belongs to.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct CustomerKeyRow {
    pub kind: String,
    pub value: String,
    pub lead_id: String,
    pub created_at: i64,
}

/// What the routing worker asks, in one round trip, about the leads arriving in a batch
/// (`RoutingTx::recognise`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Recognise<'a> {
    /// Phones and emails whose owners are wanted (owner affinity).
    pub phones: &'a [String],
    pub emails: &'a [String],
    /// `(kind, value)`: the duplicate policy's keys, whose recorded leads are wanted.
    pub keys: &'a [(String, String)],
    /// The most recorded leads returned for `keys`, newest first.
    pub limit: i64,
    /// External ids whose stored leads are wanted.
    pub external_ids: &'a [String],
    /// The workspace's configuration and routing versions too, so that a routing transaction
    /// learns whether its cache is current in the round trip it makes anyway.
    pub versions: bool,
}

/// Its answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recognised {
    /// `(kind, value, owner_id)`, kind `phone` or `email`.
    pub owners: Vec<(String, String, String)>,
    /// Leads recorded under the keys, newest first, at most `limit`.
    pub recorded: Vec<CustomerKeyRow>,
    /// `(external_id, lead_id)`: the leads stored under the external ids.
    pub external: Vec<(String, String)>,
    /// `(config_version, routing_version)`, when asked for.
    pub versions: Option<(i64, i64)>,
}

/// An arrival flagged as a possible duplicate of an existing lead.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct DuplicatePairRow {
    pub id: String,
    /// The later arrival.
    pub lead_id: String,
    /// The lead it matched.
    pub other_id: String,
    pub key_kind: String,
    /// `open`, `merged` or `dismissed`.
    pub status: String,
    pub created_at: i64,
    pub resolved_at: Option<i64>,
    pub resolved_by: Option<String>,
}

/// A workspace-wide settings document that exists once.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct WorkspaceSettingRow {
    pub name: String,
    pub document: String,
    pub version: i64,
    pub updated_by: Option<String>,
    pub updated_at: i64,
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct FeedbackRow {
    pub id: String,
    pub lead_id: String,
    pub rep_id: Option<String>,
    /// `nps` (0–10) or `csat` (1–5).
    pub kind: String,
    pub score: i64,
    pub comment: Option<String>,
    pub actor: String,
    pub created_at: i64,
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct TimerRow {
    pub id: String,
    pub lead_id: String,
    pub kind: String,
    pub step: i64,
    pub owner_id: Option<String>,
    pub due_at: i64,
    pub created_at: i64,
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: String,
    /// `lead.assigned`, `lead.sla_reminder`, …
    pub event: String,
    pub lead_id: Option<String>,
    pub rep_id: Option<String>,
    /// JSON array of the rep ids who should hear.
    pub recipients: String,
    /// JSON.
    pub payload: String,
    pub created_at: i64,
    pub status: String,
}

/// The rows a routing transaction adds, and whether its routing state moved: written
/// together by `RoutingTx::insert_routed`, in one statement on PostgreSQL. Everything here is
/// an insert or an upsert of rows the batch owns, so the parts do not depend on one another's
/// order; what must come first (the timers a lead drops) and what updates stored rows are
/// written on their own.
#[derive(Clone, Copy, Debug, Default)]
pub struct Routed<'a> {
    pub leads: &'a [LeadRow],
    pub decisions: &'a [DecisionRow],
    pub timers: &'a [TimerRow],
    pub outbox: &'a [OutboxRow],
    /// `((dimension, key), delta)`, one entry per key.
    pub stats: &'a [((String, String), StatsDelta)],
    /// One row per rep.
    pub rep_states: &'a [RepStateRow],
    /// One row per key.
    pub rotations: &'a [RotationRow],
    /// `(kind, value, owner_id, at)`, one entry per contact.
    pub contacts: &'a [(String, String, String, i64)],
    /// The keys the new leads (and touched ones) are recognised by; a key already recorded for
    /// its lead is left as it is.
    pub customer_keys: &'a [CustomerKeyRow],
    /// The routing state changed: the routing version moves, so other instances reload.
    pub bump: bool,
}

/// Additions to one row of outcome statistics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StatsDelta {
    pub assigned: i64,
    pub responded: i64,
    pub response_secs: i64,
    pub won: i64,
    pub lost: i64,
    pub invalid: i64,
    pub amount: f64,
    pub feedback_count: i64,
    pub feedback_sum: f64,
}

#[derive(Clone, Debug, Default, PartialEq, sqlx::FromRow)]
pub struct StatsRow {
    /// `rep`, `source`, `rule` or `segment`.
    pub dimension: String,
    pub key: String,
    pub assigned: i64,
    pub responded: i64,
    pub response_secs: i64,
    pub won: i64,
    pub lost: i64,
    pub invalid: i64,
    pub amount: f64,
    pub feedback_count: i64,
    pub feedback_sum: f64,
}

/// Filters for the event log.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventFilter {
    pub lead_id: Option<String>,
    pub event: Option<String>,
    /// Events with ids above this one (ids sort by creation time).
    pub after_id: Option<String>,
    pub limit: i64,
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct DeliveryRow {
    /// The delivery id receivers de-duplicate on.
    pub id: String,
    pub event_id: String,
    pub channel_id: String,
    pub event: String,
    /// `pending`, `sent` or `dead`.
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub locked_until: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    /// What the receiving platform answered (a CRM's record id or error), when it says more
    /// than its status.
    pub answer: Option<String>,
}

/// A channel whose credentials the platform refused: its deliveries wait until it is changed.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct ChannelAttentionRow {
    pub channel_id: String,
    pub reason: String,
    pub since: i64,
}

/// Filters for the delivery log.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeliveryFilter {
    pub status: Option<String>,
    pub channel_id: Option<String>,
    pub event_id: Option<String>,
    /// Deliveries with ids below this one (newest first).
    pub before_id: Option<String>,
    pub limit: i64,
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct IntakeLogRow {
    pub id: String,
    pub source_id: String,
    pub delivery_id: Option<String>,
    /// `accepted`, `duplicate` or `rejected`.
    pub outcome: String,
    pub reason: Option<String>,
    pub lead_id: Option<String>,
    pub received_at: i64,
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    pub display_name: String,
    /// `admin`, `manager` or `rep`.
    pub role: String,
    pub rep_id: Option<String>,
    /// JSON array of team ids.
    pub teams: String,
    pub password_hash: String,
    pub active: bool,
    pub failed_logins: i64,
    pub locked_until: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Moves on every write: the `ETag` of the document.
    pub version: i64,
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct SessionRow {
    pub id_hash: String,
    pub user_id: String,
    pub csrf_token: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct AuditRow {
    pub id: String,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target_kind: String,
    pub target_id: Option<String>,
    /// JSON.
    pub detail: String,
}

impl AuditRow {
    /// A new line of the audit log: who (`user:<id>`, `key:<id>`, `cli`), what, to which object.
    pub fn new(
        actor: String,
        action: &str,
        target_kind: &str,
        target_id: Option<&str>,
        detail: &serde_json::Value,
        at: i64,
    ) -> AuditRow {
        AuditRow {
            id: uuid::Uuid::now_v7().to_string(),
            at,
            actor,
            action: action.to_owned(),
            target_kind: target_kind.to_owned(),
            target_id: target_id.map(str::to_owned),
            detail: detail.to_string(),
        }
    }
}

/// What the dashboard asks about: the leads created in `[from, to)`, of one team when given.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DashboardWindow {
    pub from: i64,
    pub to: i64,
    pub team: Option<String>,
    /// Only the leads this rep owns now (a scorecard).
    pub owner: Option<String>,
    /// The viewer's zone east of UTC, in microseconds: days start at its midnight.
    pub day_offset: i64,
    /// For what is open or overdue now.
    pub now: i64,
    /// Open leads untouched since before this count as untouched.
    pub idle_before: i64,
}

/// The dashboard's figures for the leads created in a window, aggregated by the database.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Dashboard {
    pub leads_in: i64,
    pub assigned: i64,
    pub held: i64,
    /// Unowned and in a pool.
    pub pooled: i64,
    /// Assigned at some point: their first-response clock ran.
    pub clocked: i64,
    /// Of those, how many had a first-response rung fire or were reclaimed.
    pub missed: i64,
    pub reclaims: i64,
    /// Leads in per day, days since the epoch in the viewer's zone, ascending.
    pub days: Vec<DayCount>,
    /// First responses, quickest first.
    pub responses: Vec<Response>,
    /// Leads by status, with those someone answered.
    pub funnel: Vec<StatusCount>,
    /// Closed leads (won or lost) by source and by rule.
    pub by_source: Vec<Conversion>,
    pub by_rule: Vec<Conversion>,
    /// Leads created in the window, by owner (shares), with those of them won.
    pub by_owner: Vec<OwnerFigures>,
    /// Deals won in the window (closed then, whenever they came in), by owner.
    pub leaderboard: Vec<OwnerFigures>,
    /// By rep: the window's leads they were given at some point (they own it now or are among
    /// its earlier owners), and those whose SLA clock ran out while they held them.
    pub handled: Vec<KeyCount>,
    pub missed_by: Vec<KeyCount>,
    /// Follow-ups logged on the window's leads, by the rep who made them.
    pub activities: Vec<KeyCount>,
    /// Feedback recorded in the window, by rep and kind.
    pub feedback: Vec<FeedbackFigures>,
    /// Each rep's open leads now.
    pub open: Vec<OpenFigures>,
}

/// A period's headline figures (a rule-set version's time as the active one).
#[derive(Clone, Debug, Default, PartialEq, sqlx::FromRow)]
pub struct PeriodFigures {
    pub leads_in: i64,
    pub clocked: i64,
    pub missed: i64,
    pub won: i64,
    pub closed: i64,
    /// Mean seconds to the first response.
    pub avg_response: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct DayCount {
    pub day: i64,
    pub count: i64,
}

/// A count for one key (a rep).
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct KeyCount {
    pub key: String,
    pub count: i64,
}

/// One first response: the owner who answered, the day the lead came in, and how long it took.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct Response {
    pub owner_id: Option<String>,
    pub day: i64,
    pub secs: i64,
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct StatusCount {
    pub status: String,
    pub leads: i64,
    /// Of those, answered by someone at some point.
    pub responded: i64,
}

/// Customer feedback of one kind (`nps` 0–10, `csat` 1–5) about one rep's leads.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct FeedbackFigures {
    pub rep_id: Option<String>,
    pub kind: String,
    pub answers: i64,
    /// The scores summed.
    pub total: i64,
    /// NPS 9–10 and 0–6.
    pub promoters: i64,
    pub detractors: i64,
}

/// One rep's open leads now.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct OpenFigures {
    pub owner_id: String,
    pub open: i64,
    pub overdue: i64,
    pub untouched: i64,
    /// Days since each was last touched (or assigned), summed.
    pub idle_days: f64,
}

/// One family's counts over the window's whole hours, from the tallies (`tallies.rs`): by
/// status and day (`s`), by owner (`o`), by source (`c`) or rule (`r`) among the closed, and
/// the deals won by owner, by the hour they closed (`w`).
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub(crate) struct TallyRow {
    pub kind: String,
    pub day: i64,
    pub key: String,
    pub leads: i64,
    pub held: i64,
    pub pooled: i64,
    pub clocked: i64,
    pub missed: i64,
    pub reclaims: i64,
    pub responded: i64,
    pub won: i64,
    pub amount: f64,
}

/// The window's leads of one owner, status and day, counted (the dashboard's main pass).
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub(crate) struct WindowGroup {
    pub owner_id: Option<String>,
    pub status: String,
    pub day: i64,
    pub source: Option<String>,
    pub rule_id: Option<String>,
    pub leads: i64,
    pub held: i64,
    pub pooled: i64,
    pub clocked: i64,
    pub missed: i64,
    pub reclaims: i64,
    pub responded: i64,
    pub amount: f64,
}

/// Won among closed, for one source or rule.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct Conversion {
    pub name: String,
    pub won: i64,
    pub closed: i64,
}

/// One owner's leads in the window: assigned, won and the amount won.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct OwnerFigures {
    pub owner_id: String,
    pub assigned: i64,
    pub won: i64,
    pub amount: f64,
}

/// A simulation job: its request, progress and, once done, its report.
#[derive(Clone, Debug, Default, PartialEq, sqlx::FromRow)]
pub struct SimulationRow {
    pub id: String,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// `queued`, `running`, `done`, `failed` or `cancelled`.
    pub status: String,
    pub done: i64,
    pub total: i64,
    pub cancel_requested: bool,
    /// JSON.
    pub request: String,
    /// JSON, once done.
    pub report: Option<String>,
    pub error: Option<String>,
}

/// A trained conversion model (线索评分模型) or a training under way.
#[derive(Clone, Debug, Default, PartialEq, sqlx::FromRow)]
pub struct ModelRow {
    pub version: i64,
    /// `training`, `draft`, `active`, `retired` or `failed`.
    pub status: String,
    /// `workspace` or `file`.
    pub source: String,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// JSON: what was asked.
    pub request: String,
    /// JSON `engine::ModelSpec`, once trained (left out of lists).
    pub spec: Option<String>,
    /// JSON `learn::Evaluation`, once trained.
    pub evaluation: Option<String>,
    /// JSON `{code, message}` when training failed.
    pub error: Option<String>,
    pub published_at: Option<i64>,
}

/// The conversion model's retraining schedule and where it stands (one row).
#[derive(Clone, Debug, Default, PartialEq, sqlx::FromRow)]
pub struct ModelScheduleRow {
    /// JSON: the setting as saved.
    pub document: String,
    /// When the next scheduled training is due; `None`: only on demand.
    pub next_at: Option<i64>,
    /// When the last scheduled training started.
    pub last_at: Option<i64>,
    /// JSON: what the last scheduled training gave.
    pub last_result: Option<String>,
    pub updated_by: Option<String>,
    pub updated_at: i64,
}

/// Queue sizes `/metrics` reports, read at each scrape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Workload {
    pub held: i64,
    pub pooled: i64,
    pub timers_due: i64,
    pub deliveries_pending: i64,
}
