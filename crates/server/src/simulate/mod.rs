//! The simulator (规则回放): history replayed through two policies side by side — a policy is
//! a rule set with a roster, as it is or with named changes — on a virtual clock, with the
//! function intake routes by. The report says what each would have done and how they differ.
//!
//! `history` reads the leads (the workspace's window, paged; or a file), `replay` routes them
//! through one policy, `report` turns the tallies into the report and `outcome` estimates
//! conversions. `jobs` runs a simulation for the API and the console. The CLI calls
//! [`prepare`] and [`simulate`] directly.

pub mod history;
pub mod jobs;
pub mod outcome;
pub mod replay;
pub mod report;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use engine::{Known, RuleSetSpec};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::workspace::{ConfigRows, RepDocument, TeamDocument, Workspace, build_workspace};
use history::{BadRow, FileFormat, FileRows, Item};
use outcome::{Observations, Placement};
use replay::{Arrival, HELD, INVALID, POOLED, Side};
use report::{MovedLead, Placed, Report};

/// Leads a window may hold; beyond it, split the window.
pub const MAX_LEADS: i64 = 5_000_000;
/// The largest history file the API takes inline (the CLI reads any size from disk).
pub const MAX_FILE_BYTES: usize = 20 * 1024 * 1024;
/// Leads per batch both policies route before comparing.
const BATCH: usize = 8192;
/// Errors listed in the report; more are only counted.
const LISTED_ERRORS: usize = 100;

/// A simulation as asked for.
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SimulationInput {
    /// The baseline: the active rule set with today's roster when left out.
    #[serde(default)]
    pub a: Option<PolicyInput>,
    /// The policy to try.
    pub b: PolicyInput,
    /// The last this many days of the workspace's leads (default 30), unless `from` / `to`
    /// or `file` say otherwise.
    #[serde(default)]
    pub days: Option<u32>,
    /// RFC 3339; the window's start (included).
    #[serde(default)]
    pub from: Option<String>,
    /// RFC 3339; the window's end (excluded), now when left out.
    #[serde(default)]
    pub to: Option<String>,
    /// A history file instead of the workspace's leads.
    #[serde(default)]
    pub file: Option<FileInput>,
    /// The lead field conversion is estimated per (`source` when left out).
    #[serde(default)]
    pub segment_by: Option<String>,
    /// `recorded` (default): reps' status follows the audit log over the window;
    /// `configured`: as they are configured now.
    #[serde(default)]
    pub availability: Option<String>,
    /// Moved leads to show with both explanations (default 20, at most 200).
    #[serde(default)]
    pub sample: Option<u32>,
    /// The first-response target SLA misses are counted against, minutes (default 30).
    #[serde(default)]
    pub sla_minutes: Option<f64>,
}

/// A rule set and the roster changes to route it with.
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyInput {
    /// `"active"`, a stored version number, or a rule-set document.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub rule_set: Option<Value>,
    #[serde(default)]
    pub roster: Option<RosterChanges>,
    /// `one_by_one` (default): each lead routed as it arrives; `optimal`: leads arriving at the
    /// same instant (an import) are placed as one optimised batch (docs/batch.md).
    #[serde(default)]
    pub arrivals: Option<String>,
}

/// Changes to the roster, as merge patches by id: an object changes a rep or team (a new id
/// adds one, with a whole document), `null` removes it.
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RosterChanges {
    #[serde(default)]
    #[schema(value_type = Object)]
    pub reps: BTreeMap<String, Value>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub teams: BTreeMap<String, Value>,
}

#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileInput {
    pub format: FileFormat,
    pub content: String,
    /// CSV columns to lead fields, as `leadroute import --map`: `{"手机": "phone"}`.
    #[serde(default)]
    pub map: BTreeMap<String, String>,
    /// The zone of times without an offset (default Asia/Shanghai).
    #[serde(default)]
    pub time_zone: Option<String>,
}

/// One side, ready to build.
#[derive(Clone, Debug)]
pub struct SideConfig {
    pub version: Option<u32>,
    rows: ConfigRows,
    spec: RuleSetSpec,
    /// Reps whose status the roster change sets: recorded availability leaves them alone.
    pinned: HashSet<String>,
    /// Leads arriving at the same instant are placed as one optimised batch.
    pub batch_arrivals: bool,
}

impl SideConfig {
    /// The workspace with reps as configured now.
    pub fn build_configured(&self) -> Result<Workspace, ApiError> {
        self.build(&HashMap::new())
    }

    /// The workspace with reps' status as given (recorded availability).
    fn build(&self, statuses: &HashMap<String, String>) -> Result<Workspace, ApiError> {
        let mut rows = self.rows.clone();
        if !statuses.is_empty() {
            for rep in &mut rows.reps {
                let Some(status) = statuses
                    .get(&rep.id)
                    .filter(|_| !self.pinned.contains(&rep.id))
                else {
                    continue;
                };
                if let Ok(mut document) = serde_json::from_str::<Map<String, Value>>(&rep.document)
                {
                    document.insert("status".into(), Value::from(status.clone()));
                    rep.document = Value::Object(document).to_string();
                }
            }
        }
        let mut workspace = build_workspace(&rows);
        let known = Known {
            catalogue: &workspace.catalogue,
            roster: &workspace.roster,
            pools: &workspace.pools,
            sla_policies: &workspace.sla_policy_ids,
        };
        workspace.rules =
            engine::compile(&self.spec, known, self.version.unwrap_or(0)).map_err(|errors| {
                let first = &errors[0];
                ApiError::invalid(
                    "invalid_rule_set",
                    format!("rule_set.{}", first.path),
                    format!("{} problem(s); the first: {first}", errors.len()),
                )
            })?;
        Ok(workspace)
    }
}

/// Where the leads come from.
#[derive(Debug)]
pub enum Source {
    Window {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
    File(FileRows),
}

/// A simulation checked and ready to run.
#[derive(Debug)]
pub struct Prepared {
    pub a: SideConfig,
    pub b: SideConfig,
    pub source: Source,
    pub segment_by: String,
    pub sample: usize,
    pub sla_secs: f64,
    pub zone: Tz,
    /// Reps' recorded status changes, oldest first, with the status each had at the start.
    pub availability: Option<Availability>,
    catalogue: engine::FieldCatalogue,
}

#[derive(Debug, Default)]
pub struct Availability {
    pub initial: HashMap<String, String>,
    pub changes: Vec<(DateTime<Utc>, String, String)>,
}

/// Progress and cancellation, shared with whoever watches.
#[derive(Debug, Default)]
pub struct Control {
    pub done: AtomicU64,
    pub total: AtomicU64,
    pub cancelled: AtomicBool,
}

/// Why a simulation stopped without a report.
#[derive(Debug)]
pub enum Stopped {
    Cancelled,
    Failed(ApiError),
}

impl From<ApiError> for Stopped {
    fn from(error: ApiError) -> Stopped {
        Stopped::Failed(error)
    }
}

/// Lead fields conversion may be estimated per.
const SEGMENT_FIELDS: &[&str] = &[
    "source", "campaign", "region", "province", "industry", "product", "priority", "urgency",
];

fn segment_of<'a>(input: &'a crate::leads::LeadInput, field: &str) -> Option<&'a str> {
    match field {
        "source" => input.source.as_deref(),
        "campaign" => input.campaign.as_deref(),
        "region" => input.region.as_deref(),
        "province" => input.province.as_deref(),
        "industry" => input.industry.as_deref(),
        "product" => input.product.as_deref(),
        "priority" => input.priority.as_deref(),
        "urgency" => input.urgency.as_deref(),
        _ => None,
    }
}

/// An error about a part of the request, its field named from the request's top.
fn under(prefix: &str) -> impl FnOnce(ApiError) -> ApiError + '_ {
    move |error| {
        let field = match error.field.as_deref() {
            Some(inner) if !inner.is_empty() => format!("{prefix}.{inner}"),
            _ => prefix.to_owned(),
        };
        error.with_field(field)
    }
}

fn parse_time(text: &str, field: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|_| ApiError::invalid("invalid_time", field, "expected an RFC 3339 time"))
}

/// Applies merge patches by id to stored documents; `kind` names them in errors.
fn patch_documents(
    documents: &mut Vec<(String, String)>,
    changes: &BTreeMap<String, Value>,
    field: &str,
) -> Result<(), ApiError> {
    for (id, change) in changes {
        crate::text::check(id, &format!("{field}.{id}"), 200)?;
        let position = documents.iter().position(|(existing, _)| existing == id);
        match (position, change) {
            (Some(position), Value::Null) => {
                documents.remove(position);
            }
            (None, Value::Null) => {
                let what = if field.ends_with("reps") {
                    "unknown_rep"
                } else {
                    "unknown_team"
                };
                return Err(ApiError::invalid(
                    what,
                    format!("{field}.{id}"),
                    format!("nothing has the id {id:?} to remove"),
                ));
            }
            (Some(position), Value::Object(patch)) => {
                let mut document: Map<String, Value> =
                    serde_json::from_str(&documents[position].1).map_err(ApiError::internal)?;
                for (key, value) in patch {
                    if key == "id" {
                        continue;
                    }
                    if value.is_null() {
                        document.remove(key);
                    } else {
                        document.insert(key.clone(), value.clone());
                    }
                }
                documents[position].1 = Value::Object(document).to_string();
            }
            (None, Value::Object(document)) => {
                let mut document = document.clone();
                document.remove("id");
                documents.push((id.clone(), Value::Object(document).to_string()));
            }
            _ => {
                return Err(ApiError::invalid(
                    "invalid_value",
                    format!("{field}.{id}"),
                    "expected an object (a change or a new document) or null (remove)",
                ));
            }
        }
    }
    Ok(())
}

/// A side: its rule set and roster, checked against the stored configuration.
async fn side(
    store: &store::Store,
    rows: &ConfigRows,
    input: &PolicyInput,
    field: &str,
) -> Result<SideConfig, ApiError> {
    let batch_arrivals = match input.arrivals.as_deref() {
        None | Some("one_by_one") => false,
        Some("optimal") => true,
        Some(_) => {
            return Err(ApiError::invalid(
                "invalid_value",
                format!("{field}.arrivals"),
                "arrivals is one_by_one or optimal (leads arriving together placed as one batch)",
            ));
        }
    };
    let rule_field = format!("{field}.rule_set");
    let (spec, version) = match input.rule_set.as_ref().unwrap_or(&json!("active")) {
        Value::String(text) if text == "active" => {
            let row = rows.active.as_ref().ok_or_else(|| {
                ApiError::invalid(
                    "no_active_rule_set",
                    &rule_field,
                    "no rule set is published yet",
                )
            })?;
            (
                RuleSetSpec::from_json(&row.document).map_err(ApiError::internal)?,
                Some(row.version as u32),
            )
        }
        Value::Number(number) => {
            let version = number
                .as_i64()
                .filter(|version| *version > 0)
                .ok_or_else(|| {
                    ApiError::invalid(
                        "unknown_rule_set",
                        &rule_field,
                        "a rule-set version is a positive number",
                    )
                })?;
            let row = store.get_rule_set(version).await?.ok_or_else(|| {
                ApiError::invalid(
                    "unknown_rule_set",
                    &rule_field,
                    format!("no rule set has version {version}"),
                )
            })?;
            (
                RuleSetSpec::from_json(&row.document).map_err(ApiError::internal)?,
                Some(version as u32),
            )
        }
        Value::Object(_) => {
            let document = input.rule_set.clone().unwrap_or_default();
            let bytes = serde_json::to_vec(&document).map_err(ApiError::internal)?;
            let spec: RuleSetSpec = crate::extract::parse(&bytes).map_err(under(&rule_field))?;
            if spec.rules.len() > crate::api::rule_sets::MAX_RULES {
                return Err(ApiError::invalid(
                    "too_many_rules",
                    rule_field,
                    "a rule set has at most 1000 rules",
                ));
            }
            (spec, None)
        }
        _ => {
            return Err(ApiError::invalid(
                "invalid_value",
                rule_field,
                "expected \"active\", a version number or a rule-set document",
            ));
        }
    };
    let mut rows = rows.clone();
    rows.active = None;
    let mut pinned = HashSet::new();
    if let Some(changes) = &input.roster {
        let roster_field = format!("{field}.roster");
        let mut reps: Vec<(String, String)> = rows
            .reps
            .iter()
            .map(|row| (row.id.clone(), row.document.clone()))
            .collect();
        patch_documents(&mut reps, &changes.reps, &format!("{roster_field}.reps"))?;
        let mut teams: Vec<(String, String)> = rows
            .teams
            .iter()
            .map(|row| (row.id.clone(), row.document.clone()))
            .collect();
        patch_documents(&mut teams, &changes.teams, &format!("{roster_field}.teams"))?;
        for (id, change) in &changes.reps {
            if change.get("status").is_some() {
                pinned.insert(id.clone());
            }
        }
        let catalogue = crate::workspace::catalogue_from_rows(&rows.fields);
        let mut rep_rows = Vec::new();
        for (id, document) in reps {
            let field = format!("{roster_field}.reps.{id}");
            let parsed: RepDocument =
                crate::extract::parse(document.as_bytes()).map_err(under(&field))?;
            crate::workspace::rep_from_document(&id, &parsed, &catalogue).map_err(under(&field))?;
            let existing = rows
                .reps
                .iter()
                .find(|row| row.id == id)
                .cloned()
                .unwrap_or_default();
            rep_rows.push(store::RepRow {
                id: id.clone(),
                name: parsed.name.clone(),
                status: parsed.status.clone().unwrap_or_else(|| "active".into()),
                document,
                ..existing
            });
        }
        let rep_ids: Vec<String> = rep_rows.iter().map(|row| row.id.clone()).collect();
        let team_ids: Vec<String> = teams.iter().map(|(id, _)| id.clone()).collect();
        let pools: Vec<String> = rows.pools.iter().map(|row| row.id.clone()).collect();
        let mut team_rows = Vec::new();
        for (id, document) in teams {
            let field = format!("{roster_field}.teams.{id}");
            let parsed: TeamDocument =
                crate::extract::parse(document.as_bytes()).map_err(under(&field))?;
            if changes.teams.contains_key(&id) {
                crate::workspace::team_from_document(&id, &parsed, &rep_ids, &team_ids, &pools)
                    .map_err(under(&field))?;
            }
            let existing = rows
                .teams
                .iter()
                .find(|row| row.id == id)
                .cloned()
                .unwrap_or_default();
            team_rows.push(store::TeamRow {
                id,
                name: parsed.name.clone(),
                document,
                ..existing
            });
        }
        rows.reps = rep_rows;
        rows.teams = team_rows;
    }
    let config = SideConfig {
        version,
        rows,
        spec,
        pinned,
        batch_arrivals,
    };
    config.build(&HashMap::new()).map_err(under(field))?;
    Ok(config)
}

/// Checks a simulation and gathers what it needs, so a bad request fails before any job
/// starts. A file's content is read here; `file` is a history file read already (the CLI's,
/// which may be larger than a request takes).
pub async fn prepare(
    store: &store::Store,
    input: &SimulationInput,
    now: DateTime<Utc>,
    file: Option<FileRows>,
) -> Result<Prepared, ApiError> {
    let rows = ConfigRows::load(store).await?;
    let a = side(
        store,
        &rows,
        input.a.as_ref().unwrap_or(&PolicyInput::default()),
        "a",
    )
    .await?;
    let b = side(store, &rows, &input.b, "b").await?;
    let segment_by = input.segment_by.clone().unwrap_or_else(|| "source".into());
    if !SEGMENT_FIELDS.contains(&segment_by.as_str()) {
        return Err(ApiError::invalid(
            "invalid_value",
            "segment_by",
            format!("one of {}", SEGMENT_FIELDS.join(", ")),
        ));
    }
    let sla_minutes = input.sla_minutes.unwrap_or(30.0);
    if !(sla_minutes.is_finite() && sla_minutes > 0.0) {
        return Err(ApiError::invalid(
            "invalid_value",
            "sla_minutes",
            "a number of minutes above 0",
        ));
    }
    let recorded = match input.availability.as_deref() {
        None | Some("recorded") => true,
        Some("configured") => false,
        Some(_) => {
            return Err(ApiError::invalid(
                "invalid_value",
                "availability",
                "recorded or configured",
            ));
        }
    };
    let catalogue = crate::workspace::catalogue_from_rows(&rows.fields);
    let zone = most_common_zone(&rows);
    let source = match (&input.file, file) {
        (_, Some(file)) => Source::File(file),
        (Some(file), None) => {
            if input.days.is_some() || input.from.is_some() || input.to.is_some() {
                return Err(ApiError::invalid(
                    "invalid_value",
                    "file",
                    "a file or a window, not both",
                ));
            }
            if file.content.len() > MAX_FILE_BYTES {
                return Err(ApiError::invalid(
                    "too_long",
                    "file.content",
                    format!(
                        "a file sent inline is at most {} MB; the CLI reads larger files",
                        MAX_FILE_BYTES >> 20
                    ),
                ));
            }
            let file_zone = match &file.time_zone {
                Some(name) => engine::hours::parse_time_zone(name).map_err(|message| {
                    ApiError::invalid("invalid_value", "file.time_zone", message)
                })?,
                None => chrono_tz::Asia::Shanghai,
            };
            let map: Vec<String> = file
                .map
                .iter()
                .map(|(column, field)| format!("{column}={field}"))
                .collect();
            Source::File(read_history_file(
                &rows,
                file.format,
                file.content.as_bytes(),
                &map,
                file_zone,
            )?)
        }
        (None, None) => {
            let to = match &input.to {
                Some(text) => parse_time(text, "to")?,
                None => now,
            };
            let from = match (&input.from, input.days) {
                (Some(_), Some(_)) => {
                    return Err(ApiError::invalid(
                        "invalid_value",
                        "days",
                        "days or from, not both",
                    ));
                }
                (Some(text), None) => parse_time(text, "from")?,
                (None, days) => {
                    let days = days.unwrap_or(30);
                    if !(1..=3660).contains(&days) {
                        return Err(ApiError::invalid(
                            "invalid_value",
                            "days",
                            "between 1 and 3660",
                        ));
                    }
                    to - Duration::days(i64::from(days))
                }
            };
            if from >= to {
                return Err(ApiError::invalid(
                    "invalid_value",
                    "from",
                    "the window starts before it ends",
                ));
            }
            let count = store
                .count_leads_arrived(from.timestamp_micros(), to.timestamp_micros())
                .await?;
            if count == 0 {
                return Err(ApiError::invalid(
                    "empty_window",
                    "from",
                    format!(
                        "no leads arrived between {} and {}",
                        report::time(from),
                        report::time(to)
                    ),
                ));
            }
            if count > MAX_LEADS {
                return Err(ApiError::invalid(
                    "too_many_leads",
                    "from",
                    format!(
                        "{count} leads in the window; a simulation replays at most {MAX_LEADS}"
                    ),
                ));
            }
            Source::Window { from, to }
        }
    };
    if let Source::File(file) = &source
        && file.is_empty()
    {
        return Err(ApiError::invalid(
            "no_leads",
            "file",
            "no row of the file has a lead with its arrival time",
        ));
    }
    let availability = match (&source, recorded) {
        (Source::Window { from, to }, true) => {
            Some(recorded_availability(store, *from, *to).await?)
        }
        _ => None,
    };
    Ok(Prepared {
        a,
        b,
        source,
        segment_by,
        sample: input.sample.unwrap_or(20).min(200) as usize,
        sla_secs: sla_minutes * 60.0,
        zone,
        availability,
        catalogue,
    })
}

/// Reads a history file against the workspace's custom fields.
pub fn read_history_file(
    rows: &ConfigRows,
    format: FileFormat,
    content: &[u8],
    map: &[String],
    zone: Tz,
) -> Result<FileRows, ApiError> {
    let (custom, numbers) = crate::table::custom_columns(&rows.fields);
    history::read_file(format, content, map, &custom, &numbers, zone)
}

/// The zone most reps work in: days in the report are its days.
fn most_common_zone(rows: &ConfigRows) -> Tz {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for row in &rows.reps {
        if let Ok(document) = serde_json::from_str::<RepDocument>(&row.document) {
            *counts
                .entry(document.time_zone.unwrap_or_else(|| "Asia/Shanghai".into()))
                .or_default() += 1;
        }
    }
    counts
        .into_iter()
        .max_by_key(|(_, count)| *count)
        .and_then(|(name, _)| engine::hours::parse_time_zone(&name).ok())
        .unwrap_or(chrono_tz::Asia::Shanghai)
}

/// Reps' status over the window, from the audit log: the status each had when the window
/// began (its last recorded change before; reps with changes only later are taken as active
/// before their first), and every change inside the window.
async fn recorded_availability(
    store: &store::Store,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Availability, ApiError> {
    let rows = store.rep_status_changes(to.timestamp_micros()).await?;
    let mut availability = Availability::default();
    for row in rows {
        let Some(rep) = row.target_id else { continue };
        let Some(status) = serde_json::from_str::<Value>(&row.detail)
            .ok()
            .and_then(|detail| {
                detail
                    .get("status")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
        else {
            continue;
        };
        let at = DateTime::from_timestamp_micros(row.at).unwrap_or_default();
        if at < from {
            availability.initial.insert(rep, status);
        } else {
            availability
                .initial
                .entry(rep.clone())
                .or_insert_with(|| "active".into());
            availability.changes.push((at, rep, status));
        }
    }
    Ok(availability)
}

/// Runs a prepared simulation: reads the history (the window paged from the store, or the
/// file) and replays it on a blocking thread. `control` reports progress and can cancel.
pub async fn simulate(
    store: &store::Store,
    prepared: Prepared,
    control: std::sync::Arc<Control>,
) -> Result<Report, Stopped> {
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Vec<Item>>(4);
    let producer = match &prepared.source {
        Source::Window { from, to } => {
            let total = store
                .count_leads_arrived(from.timestamp_micros(), to.timestamp_micros())
                .await
                .map_err(ApiError::from)?;
            control.total.store(total as u64, Ordering::Relaxed);
            let store = store.clone();
            let (from, to) = (from.timestamp_micros(), to.timestamp_micros());
            let catalogue = prepared.catalogue.clone();
            let control = control.clone();
            Some(tokio::spawn(async move {
                let mut after = None;
                let mut line = 0;
                loop {
                    if control.cancelled.load(Ordering::Relaxed) {
                        return Ok(());
                    }
                    let rows = store
                        .leads_in_arrival_order(from, to, after.clone(), 1000)
                        .await?;
                    let Some(last) = rows.last() else {
                        return Ok(());
                    };
                    after = Some((last.created_at, last.id.clone()));
                    let items = rows
                        .iter()
                        .map(|row| {
                            line += 1;
                            history::from_row(line, row, &catalogue)
                        })
                        .collect();
                    if sender.send(items).await.is_err() {
                        return Ok::<(), store::DbError>(());
                    }
                }
            }))
        }
        Source::File(file) => {
            control
                .total
                .store((file.len() + file.bad.len()) as u64, Ordering::Relaxed);
            drop(sender);
            None
        }
    };
    let watched = control.clone();
    let result = tokio::task::spawn_blocking(move || {
        let mut prepared = prepared;
        match &mut prepared.source {
            Source::Window { .. } => {
                let items = std::iter::from_fn(move || receiver.blocking_recv()).flatten();
                run(&prepared, items, &watched)
            }
            Source::File(file) => {
                let items = std::mem::take(file).into_items();
                run(&prepared, items, &watched)
            }
        }
    })
    .await
    .map_err(|error| Stopped::Failed(ApiError::internal(error)))?;
    if let Some(producer) = producer {
        match producer.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(Stopped::Failed(ApiError::from(error))),
            Err(error) => return Err(Stopped::Failed(ApiError::internal(error))),
        }
    }
    result
}

/// The sample of moved leads: the `wanted` moved leads whose ordinals hash lowest (bottom-k
/// sampling). Every moved lead is equally likely, the same history gives the same sample, and
/// it is cheap: an arrival hashing above the threshold can no longer enter, so neither policy
/// keeps its lead and decision.
struct Sampler {
    wanted: usize,
    kept: Vec<(u64, MovedLead)>,
}

impl Sampler {
    fn hash(ordinal: u32) -> u64 {
        let mut z = u64::from(ordinal).wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Arrivals hashing below this may still enter the sample.
    fn threshold(&self) -> u64 {
        if self.wanted == 0 {
            0
        } else if self.kept.len() < self.wanted {
            u64::MAX
        } else {
            self.kept.iter().map(|(hash, _)| *hash).max().unwrap_or(0)
        }
    }

    fn offer(&mut self, hash: u64, moved: MovedLead) {
        self.kept.push((hash, moved));
        if self.kept.len() > self.wanted
            && let Some(largest) = (0..self.kept.len()).max_by_key(|index| self.kept[*index].0)
        {
            self.kept.swap_remove(largest);
        }
    }
}

/// The rep an owner number names; `None` for a lead without one (held, pooled or refused), so
/// comparing two policies treats every ownerless outcome alike.
fn rep_of(workspace: &Workspace, owner: u32) -> Option<&str> {
    match owner {
        HELD | POOLED | INVALID => None,
        index => Some(workspace.roster.rep(index).id.as_str()),
    }
}

/// What a policy's thread is asked to do, in order.
enum Work {
    Batch(Arc<Vec<Arrival>>),
    /// Move the virtual clock (before the configuration changes under it).
    Advance(DateTime<Utc>),
    Replace(Arc<Workspace>),
}

/// A policy replayed on its own thread: batches in, what each arrival got out, the side back
/// when the work ends.
fn policy_thread(
    mut side: Side,
    work: mpsc::Receiver<Work>,
    results: mpsc::SyncSender<Vec<replay::Routed>>,
) -> Side {
    for item in work {
        match item {
            Work::Batch(batch) => {
                let mut routed = Vec::with_capacity(batch.len());
                if side.batch_arrivals {
                    // Leads that arrived at the same instant (an import) are placed together.
                    for group in batch.chunk_by(|a, b| a.lead.arrived_at == b.lead.arrived_at) {
                        match group {
                            [arrival] => routed.push(side.arrive(arrival)),
                            _ => routed.extend(side.arrive_together(group)),
                        }
                    }
                } else {
                    routed.extend(batch.iter().map(|arrival| side.arrive(arrival)));
                }
                // Let go of the batch first, so the reader can reuse its memory.
                drop(batch);
                if results.send(routed).is_err() {
                    break;
                }
            }
            Work::Advance(at) => side.advance(at),
            Work::Replace(workspace) => side.replace_workspace(workspace),
        }
    }
    side
}

/// What the replay gathers beside the policies' own tallies, batch by batch.
struct Gathered {
    sampler: Sampler,
    bad_rows: u64,
    errors: Vec<Value>,
    replayed: u64,
}

impl Gathered {
    /// Compares what A and B did with a batch: owners on arrival, and the sample.
    fn compare(
        &mut self,
        batch: &[Arrival],
        routed: [Vec<replay::Routed>; 2],
        workspaces: &[Arc<Workspace>; 2],
    ) {
        let [routed_a, routed_b] = routed;
        for ((a, b), arrival) in routed_a.into_iter().zip(routed_b).zip(batch) {
            let fact = &arrival.lead;
            if let Some(error) = a.error.or(b.error).map(|error| *error) {
                self.bad_rows += 1;
                if self.errors.len() < LISTED_ERRORS {
                    self.errors.push(json!(BadRow {
                        line: fact.line,
                        code: error.code,
                        field: error.field,
                        message: error.message
                    }));
                }
                continue;
            }
            self.replayed += 1;
            if rep_of(&workspaces[0], a.owner) == rep_of(&workspaces[1], b.owner) {
                continue;
            }
            if let (Some(routed_a), Some(routed_b)) = (a.routed, b.routed) {
                let ((lead_a, decision_a), (lead_b, decision_b)) = (*routed_a, *routed_b);
                let moved = MovedLead {
                    line: fact.line,
                    lead_id: fact.id.clone(),
                    arrived_at: report::time(fact.arrived_at),
                    source: fact.input.source.clone(),
                    region: fact.input.region.clone(),
                    industry: fact.input.industry.clone(),
                    a: Placed::new(&workspaces[0], &lead_a, &decision_a),
                    b: Placed::new(&workspaces[1], &lead_b, &decision_b),
                };
                self.sampler.offer(Sampler::hash(arrival.ordinal), moved);
            }
        }
    }
}

/// The two policies' threads and the batches they are working on. A batch is handed to both
/// while this thread reads and compares the one before, so reading the history, routing A
/// and routing B overlap.
struct Policies {
    work: [mpsc::SyncSender<Work>; 2],
    results: [mpsc::Receiver<Vec<replay::Routed>>; 2],
    in_flight: std::collections::VecDeque<Arc<Vec<Arrival>>>,
    workspaces: [Arc<Workspace>; 2],
    /// Batches both policies are done with, emptied for the reader to fill again.
    spare: Vec<Vec<Arrival>>,
}

impl Policies {
    fn send(&self, work: impl Fn() -> Work) {
        for sender in &self.work {
            // A policy thread that stopped has panicked; joining it says so.
            let _ = sender.send(work());
        }
    }

    fn dispatch(&mut self, batch: Vec<Arrival>) {
        if batch.is_empty() {
            return;
        }
        let batch = Arc::new(batch);
        self.send(|| Work::Batch(batch.clone()));
        self.in_flight.push_back(batch);
    }

    /// Waits for the oldest batch in flight and compares it; whether there was one.
    fn collect(&mut self, gathered: &mut Gathered, control: &Control) -> bool {
        let Some(batch) = self.in_flight.pop_front() else {
            return false;
        };
        let (Ok(a), Ok(b)) = (self.results[0].recv(), self.results[1].recv()) else {
            self.in_flight.clear();
            return false;
        };
        gathered.compare(&batch, [a, b], &self.workspaces);
        control
            .done
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        if let Ok(mut batch) = Arc::try_unwrap(batch) {
            batch.clear();
            self.spare.push(batch);
        }
        true
    }

    /// An empty batch to fill, reusing one when there is one.
    fn empty(&mut self) -> Vec<Arrival> {
        self.spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(BATCH))
    }

    fn drain(&mut self, gathered: &mut Gathered, control: &Control) {
        while self.collect(gathered, control) {}
    }
}

/// The replay proper: this thread reads the history and compares, one thread per policy
/// routes.
pub fn run(
    prepared: &Prepared,
    items: impl Iterator<Item = Item>,
    control: &Control,
) -> Result<Report, Stopped> {
    let availability = prepared.availability.as_ref();
    let mut statuses: HashMap<String, String> = availability
        .map(|found| found.initial.clone())
        .unwrap_or_default();
    let workspaces = [
        Arc::new(prepared.a.build(&statuses)?),
        Arc::new(prepared.b.build(&statuses)?),
    ];
    let mut changes = availability
        .map(|found| found.changes.as_slice())
        .unwrap_or_default()
        .iter()
        .peekable();
    let mut segments: HashMap<String, u32> = HashMap::new();
    let mut observations = Observations::new(prepared.sla_secs);
    let mut gathered = Gathered {
        sampler: Sampler {
            wanted: prepared.sample,
            kept: Vec::new(),
        },
        bad_rows: 0,
        errors: Vec::new(),
        replayed: 0,
    };
    // The owner history recorded for each lead, by ordinal (`NO_OWNER` when none).
    const NO_OWNER: u32 = u32::MAX;
    let mut recorded: Vec<u32> = Vec::new();
    let (mut first, mut last): (Option<DateTime<Utc>>, Option<DateTime<Utc>>) = (None, None);
    std::thread::scope(|scope| {
        let mut threads = Vec::new();
        let mut work = Vec::new();
        let mut results = Vec::new();
        for (workspace, config) in workspaces.iter().zip([&prepared.a, &prepared.b]) {
            let (work_sender, work_receiver) = mpsc::sync_channel(2);
            let (result_sender, result_receiver) = mpsc::sync_channel(2);
            let mut side = Side::new(workspace.clone(), prepared.zone);
            side.batch_arrivals = config.batch_arrivals;
            threads.push(scope.spawn(move || policy_thread(side, work_receiver, result_sender)));
            work.push(work_sender);
            results.push(result_receiver);
        }
        let (Ok(work), Ok(results)) = (<[_; 2]>::try_from(work), <[_; 2]>::try_from(results))
        else {
            unreachable!("two policies")
        };
        let mut policies = Policies {
            work,
            results,
            in_flight: std::collections::VecDeque::new(),
            workspaces: workspaces.clone(),
            spare: Vec::new(),
        };
        let mut batch: Vec<Arrival> = Vec::with_capacity(BATCH);
        let mut threshold = gathered.sampler.threshold();
        let mut ordinal = 0u32;
        let mut outcome: Result<(), Stopped> = Ok(());
        for item in items {
            if control.cancelled.load(Ordering::Relaxed) {
                outcome = Err(Stopped::Cancelled);
                break;
            }
            let lead = match item {
                Ok(lead) => lead,
                Err(bad) => {
                    gathered.bad_rows += 1;
                    if gathered.errors.len() < LISTED_ERRORS {
                        gathered.errors.push(json!(bad));
                    }
                    control.done.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            };
            if changes
                .peek()
                .is_some_and(|(at, _, _)| *at <= lead.arrived_at)
            {
                // The roster changes under the replay: both policies finish what they have,
                // move their clocks to each change and take the new configuration.
                policies.dispatch(std::mem::take(&mut batch));
                policies.drain(&mut gathered, control);
                while let Some((at, rep, status)) =
                    changes.next_if(|(at, _, _)| *at <= lead.arrived_at)
                {
                    policies.send(|| Work::Advance(*at));
                    statuses.insert(rep.clone(), status.clone());
                }
                let rebuilt = match (prepared.a.build(&statuses), prepared.b.build(&statuses)) {
                    (Ok(a), Ok(b)) => [Arc::new(a), Arc::new(b)],
                    (Err(error), _) | (_, Err(error)) => {
                        outcome = Err(Stopped::Failed(error));
                        break;
                    }
                };
                for (sender, workspace) in policies.work.iter().zip(&rebuilt) {
                    let _ = sender.send(Work::Replace(workspace.clone()));
                }
                policies.workspaces = rebuilt;
                threshold = gathered.sampler.threshold();
            }
            first.get_or_insert(lead.arrived_at);
            last = Some(lead.arrived_at);
            let segment_name = segment_of(&lead.input, &prepared.segment_by).unwrap_or_default();
            let segment = match segments.get(segment_name) {
                Some(segment) => *segment,
                None => {
                    let next = segments.len() as u32;
                    segments.insert(segment_name.to_owned(), next);
                    next
                }
            };
            recorded.push(match &lead.owner {
                Some(owner) => {
                    observations.observe(owner, segment, lead.won, lead.amount, lead.response_secs);
                    observations.intern(owner)
                }
                None => NO_OWNER,
            });
            batch.push(Arrival {
                ordinal,
                segment,
                keep: Sampler::hash(ordinal) < threshold,
                lead,
            });
            ordinal += 1;
            if batch.len() >= BATCH {
                // Leads that arrived at the same instant stay in one batch (a policy may place
                // them as one), up to ten batches' worth: the last instant's run waits for the
                // next batch.
                let last_at = batch[batch.len() - 1].lead.arrived_at;
                let run = batch
                    .iter()
                    .rposition(|arrival| arrival.lead.arrived_at != last_at)
                    .map_or(0, |before| before + 1);
                if run == 0 && batch.len() < 10 * BATCH {
                    continue;
                }
                let rest = if run == 0 {
                    policies.empty()
                } else {
                    batch.split_off(run)
                };
                let full = std::mem::replace(&mut batch, rest);
                policies.dispatch(full);
                if policies.in_flight.len() > 1 {
                    policies.collect(&mut gathered, control);
                }
                threshold = gathered.sampler.threshold();
            }
        }
        if outcome.is_ok() {
            policies.dispatch(batch);
        }
        policies.drain(&mut gathered, control);
        let end = match &prepared.source {
            Source::Window { to, .. } => *to,
            Source::File(_) => last.unwrap_or_default() + Duration::days(1),
        };
        if outcome.is_ok() {
            policies.send(|| Work::Advance(end));
        }
        drop(policies);
        let mut sides = threads.into_iter().map(|thread| {
            thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        });
        let (Some(mut side_a), Some(mut side_b)) = (sides.next(), sides.next()) else {
            unreachable!("two policies")
        };
        outcome?;
        if control.cancelled.load(Ordering::Relaxed) {
            return Err(Stopped::Cancelled);
        }
        let never_placed = [side_a.finish(end), side_b.finish(end)];
        let sides = [side_a, side_b];
        gathered.errors.sort_by_key(|error| error["line"].as_u64());
        let Gathered {
            sampler,
            bad_rows,
            errors,
            replayed,
        } = gathered;
        // Fidelity: the owner A ended up giving each lead (a held lead's is the one a sweep
        // found) against the one history recorded.
        let mut fidelity = report::Fidelity::default();
        for (ordinal, recorded) in recorded.iter().enumerate() {
            let owner = sides[0]
                .tally
                .owners
                .get(ordinal)
                .copied()
                .unwrap_or(INVALID);
            let Some(name) = observations.owner(*recorded).filter(|_| owner != INVALID) else {
                continue;
            };
            fidelity.compared += 1;
            if rep_of(&sides[0].workspace, owner) == Some(name) {
                fidelity.same_owner += 1;
            }
        }
        let mut report = build_report(
            prepared,
            &sides,
            never_placed,
            sampler,
            bad_rows,
            errors,
            replayed,
            first,
            last,
            &observations,
        );
        report.fidelity = fidelity;
        Ok(report)
    })
}

#[allow(clippy::too_many_arguments)] // The replay's results, gathered once.
fn build_report(
    prepared: &Prepared,
    sides: &[Side; 2],
    never_placed: [u64; 2],
    sampler: Sampler,
    bad_rows: u64,
    errors: Vec<Value>,
    replayed: u64,
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
    observations: &Observations,
) -> Report {
    let name_of = |side: usize, owner: u32| rep_of(&sides[side].workspace, owner);
    let (owners_a, owners_b) = (&sides[0].tally.owners, &sides[1].tally.owners);
    let moved = owners_a
        .iter()
        .zip(owners_b)
        .filter(|(a, b)| **a != INVALID && **b != INVALID && name_of(0, **a) != name_of(1, **b))
        .count() as u64;
    let placement = |side: usize| -> Placement {
        let tally = &sides[side].tally;
        let mut assigned: Vec<(String, u32, u64)> = tally
            .cells
            .iter()
            .map(|((rep, segment), count)| {
                let id = sides[side]
                    .workspace
                    .roster
                    .rep(*rep)
                    .id
                    .as_str()
                    .to_owned();
                (id, *segment, *count)
            })
            .collect();
        assigned.sort();
        let mut unassigned: Vec<(u32, u64)> = tally
            .unassigned
            .iter()
            .map(|(segment, count)| (*segment, *count))
            .collect();
        unassigned.sort();
        Placement {
            assigned,
            unassigned,
        }
    };
    let (placed_a, placed_b) = (placement(0), placement(1));
    let team_of = |rep: &str| -> Option<String> {
        sides.iter().find_map(|side| {
            let roster = &side.workspace.roster;
            let index = roster.position_of(rep)?;
            roster
                .teams()
                .find(|team| {
                    roster.team(&team.id).is_some_and(|found| {
                        found.members().iter().any(|(member, _)| *member == index)
                    })
                })
                .map(|team| team.id.clone())
        })
    };
    let outcomes = observations.compare(&team_of, &placed_a, &placed_b, &prepared.segment_by);
    let response = observations.responses(&placed_a, &placed_b);
    let mut sample: Vec<MovedLead> = sampler.kept.into_iter().map(|(_, moved)| moved).collect();
    sample.sort_by_key(|moved| moved.line);
    let (from, to) = match &prepared.source {
        Source::Window { from, to } => (Some(report::time(*from)), Some(report::time(*to))),
        Source::File(_) => (None, None),
    };
    let mut assumptions = vec![
        "Each policy starts the window with no open leads, empty rotations and no period counts."
            .to_owned(),
        format!(
            "Held leads are retried every {} minutes of replayed time.",
            replay::SWEEP.num_minutes()
        ),
        "A lead stops counting against its owner's holding cap when history closed it.".to_owned(),
    ];
    assumptions.push(match (&prepared.source, prepared.availability.is_some()) {
        (Source::Window { .. }, true) => "Reps' status follows the audit log over the window; leave periods and hours are as configured now.".to_owned(),
        _ => "Reps' status, leave and hours are as configured now.".to_owned(),
    });
    if outcomes.is_some() {
        assumptions.push(format!(
            "Conversion per rep and {} is shrunk toward the team's rate with the weight of {} leads; leads never placed count at the segment's rate.",
            prepared.segment_by,
            outcome::PRIOR_LEADS
        ));
    }
    Report {
        window: report::Window {
            from,
            to,
            first_arrival: first.map(report::time),
            last_arrival: last.map(report::time),
            leads: replayed,
            bad_rows,
            errors,
            zone: prepared.zone.name().to_owned(),
        },
        a: report::policy(&sides[0], "A", prepared.a.version, never_placed[0]),
        b: report::policy(&sides[1], "B", prepared.b.version, never_placed[1]),
        moved: report::Moved {
            leads: moved,
            share: if replayed > 0 {
                moved as f64 / replayed as f64
            } else {
                0.0
            },
            sample,
        },
        fidelity: report::Fidelity::default(),
        outcomes: outcomes.map(|found| serde_json::to_value(found).unwrap_or_default()),
        response: response.map(|found| serde_json::to_value(found).unwrap_or_default()),
        assumptions,
    }
}
