//! The workspace's configuration as the API writes it (rep and team documents) and as the
//! engine reads it (roster, field catalogue, compiled rule set).

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use engine::compile::compile_strategy_spec;
use engine::field::{CustomField, parse_attributes};
use engine::hours::{TimeRange, WeeklyHours, parse_time_zone, parse_weekday};
use engine::rep::{Caps, Leave};
use engine::spec::StrategySpec;
use engine::team::{HoursPolicy, Member, Overflow, TeamPolicy};
use engine::value::FieldType;
use engine::{FieldCatalogue, Known, Rep, RepId, RepStatus, Roster, RuleSet, RuleSetSpec, Team};
use serde::{Deserialize, Serialize};
use store::{CustomFieldRow, DocRow, RepRow, RuleSetRow, Setting, TeamRow};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::settings::{FollowUpConfig, TeamFollowUp};

/// A rep as the API reads and writes it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RepDocument {
    /// Chosen by the caller, or generated.
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    /// `active`, `paused`, `on_leave` or `inactive`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub regions: Vec<String>,
    #[serde(default)]
    pub industries: Vec<String>,
    #[serde(default)]
    pub products: Vec<String>,
    #[serde(default)]
    pub languages: Vec<String>,
    #[serde(default)]
    pub level: Option<u8>,
    #[serde(default)]
    pub weight: Option<f64>,
    #[serde(default)]
    pub caps: CapsDocument,
    /// IANA name; `Asia/Shanghai` when left out.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// `{"mon": ["09:00-12:00", "13:30-18:00"], …}`; always available when left out.
    #[serde(default)]
    pub working_hours: Option<BTreeMap<String, Vec<String>>>,
    #[serde(default)]
    pub leaves: Vec<LeaveDocument>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub attributes: BTreeMap<String, serde_json::Value>,
    /// Where notifications reach the rep.
    #[serde(default)]
    pub contact: Option<ContactDocument>,
}

/// How notifications reach a rep: their email, their ids on each IM platform (for mentions in
/// group robots), and the language they read.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactDocument {
    #[serde(default)]
    pub email: Option<String>,
    /// A mobile number for SMS; stored as E.164.
    #[serde(default)]
    pub mobile: Option<String>,
    /// 企业微信 userid.
    #[serde(default)]
    pub wecom_userid: Option<String>,
    /// 钉钉 userid.
    #[serde(default)]
    pub dingtalk_userid: Option<String>,
    /// 飞书 user_id or open_id.
    #[serde(default)]
    pub feishu_user_id: Option<String>,
    /// Slack member id (`U…`).
    #[serde(default)]
    pub slack_member_id: Option<String>,
    /// `zh` (default) or `en`.
    #[serde(default)]
    pub locale: Option<String>,
    /// The rep's user id in each CRM a connector writes to: `{"salesforce": "005…",
    /// "hubspot": "…", "fxiaoke": "FSUID_…", "jiandaoyun": "…"}`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub crm: BTreeMap<String, String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CapsDocument {
    #[serde(default)]
    pub max_open: Option<u32>,
    #[serde(default)]
    pub max_per_day: Option<u32>,
    #[serde(default)]
    pub max_per_week: Option<u32>,
    #[serde(default)]
    pub max_per_month: Option<u32>,
    #[serde(default)]
    pub min_per_week: Option<u32>,
    #[serde(default)]
    pub min_per_month: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaveDocument {
    /// First day, `YYYY-MM-DD`, in the rep's time zone.
    pub from: String,
    /// Last day, included.
    pub until: String,
}

/// A team as the API reads and writes it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamDocument {
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    #[serde(default)]
    pub members: Vec<MemberDocument>,
    #[serde(default)]
    pub manager_id: Option<String>,
    /// A strategy as in rule sets, `{"type": "round_robin"}` when left out.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub default_strategy: Option<StrategySpec>,
    /// `{"team": "id"}` or `{"pool": "id"}`.
    #[serde(default)]
    pub overflow: Option<OverflowDocument>,
    /// `in_hours` (default) or `any_time`.
    #[serde(default)]
    pub hours_policy: Option<String>,
    #[serde(default)]
    pub away_fallback: bool,
    /// The business calendar SLA clocks count in; `default` when left out.
    #[serde(default)]
    pub calendar: Option<String>,
    /// The SLA policy for the team's leads when the rule names none; `default` when left out.
    #[serde(default)]
    pub sla_policy: Option<String>,
    /// `keep` (default): a rep going on leave keeps their leads; `hand_back`: leads they have
    /// not touched yet are routed to someone else.
    #[serde(default)]
    pub leave_policy: Option<String>,
    /// `arrival` (default): held leads are released, and leads handed back on leave rerouted,
    /// one at a time; `optimal`: as one optimised batch (批量最优分配) within ±10% shares.
    #[serde(default)]
    pub batch_policy: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberDocument {
    pub rep_id: String,
    #[serde(default)]
    pub weight: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum OverflowDocument {
    Team(String),
    Pool(String),
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid("invalid_value", field, message)
}

/// Checks a rep document and builds the engine's rep.
pub fn rep_from_document(
    id: &str,
    document: &RepDocument,
    catalogue: &FieldCatalogue,
) -> Result<Rep, ApiError> {
    crate::text::check_name(document.name.trim(), "name")?;
    if document.name.trim().is_empty() {
        return Err(invalid("name", "a rep needs a name"));
    }
    let mut rep = Rep::new(id, document.name.trim());
    if let Some(status) = &document.status {
        rep.status = RepStatus::parse(status)
            .ok_or_else(|| invalid("status", "status is active, paused, on_leave or inactive"))?;
    }
    rep.regions = document.regions.clone();
    rep.industries = document.industries.clone();
    rep.products = document.products.clone();
    rep.languages = document.languages.clone();
    rep.level = document.level.unwrap_or(1);
    rep.weight = document.weight.unwrap_or(1.0);
    if !(rep.weight.is_finite() && rep.weight >= 0.0) {
        return Err(invalid("weight", "weight is a number of at least 0"));
    }
    let caps = document.caps;
    rep.caps = Caps {
        max_open: caps.max_open,
        max_per_day: caps.max_per_day,
        max_per_week: caps.max_per_week,
        max_per_month: caps.max_per_month,
        min_per_week: caps.min_per_week,
        min_per_month: caps.min_per_month,
    };
    if let Some(zone) = &document.time_zone {
        rep.time_zone = parse_time_zone(zone).map_err(|message| invalid("time_zone", message))?;
    }
    if let Some(days) = &document.working_hours {
        let mut hours = WeeklyHours::default();
        for (day, ranges) in days {
            let weekday = parse_weekday(day)
                .ok_or_else(|| invalid(&format!("working_hours.{day}"), "days are mon … sun"))?;
            let parsed = ranges
                .iter()
                .map(|range| TimeRange::parse(range))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|message| invalid(&format!("working_hours.{day}"), message))?;
            hours.days[weekday.num_days_from_monday() as usize] = parsed;
        }
        rep.hours = Some(hours);
    }
    for (index, leave) in document.leaves.iter().enumerate() {
        let date = |text: &str, name: &str| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
                invalid(
                    &format!("leaves[{index}].{name}"),
                    "expected a YYYY-MM-DD date",
                )
            })
        };
        let first_day = date(&leave.from, "from")?;
        let last_day = date(&leave.until, "until")?;
        if last_day < first_day {
            return Err(invalid(
                &format!("leaves[{index}].until"),
                "until is before from",
            ));
        }
        rep.leaves.push(Leave {
            first_day,
            last_day,
        });
    }
    rep.attributes = parse_attributes(catalogue.rep_custom(), &document.attributes)
        .map_err(crate::leads::attribute_error)?;
    if let Some(contact) = &document.contact {
        if let Some(email) = &contact.email {
            crate::normalize::email(email).map_err(|message| invalid("contact.email", message))?;
        }
        if let Some(mobile) = &contact.mobile {
            crate::normalize::phone(mobile)
                .map_err(|message| invalid("contact.mobile", message))?;
        }
        if let Some(locale) = &contact.locale
            && !["zh", "en"].contains(&locale.as_str())
        {
            return Err(invalid("contact.locale", "locale is zh or en"));
        }
    }
    Ok(rep)
}

/// Checks a team document against the reps and pools, and builds the engine's team.
pub fn team_from_document(
    id: &str,
    document: &TeamDocument,
    rep_ids: &[String],
    team_ids: &[String],
    pools: &[String],
) -> Result<Team, ApiError> {
    crate::text::check_name(document.name.trim(), "name")?;
    if document.name.trim().is_empty() {
        return Err(invalid("name", "a team needs a name"));
    }
    let mut team = Team::new(id, document.name.trim());
    for (index, member) in document.members.iter().enumerate() {
        if !rep_ids.contains(&member.rep_id) {
            return Err(ApiError::invalid(
                "unknown_rep",
                format!("members[{index}].rep_id"),
                format!("no rep has id {:?}", member.rep_id),
            ));
        }
        if member
            .weight
            .is_some_and(|weight| !(weight.is_finite() && weight >= 0.0))
        {
            return Err(invalid(
                &format!("members[{index}].weight"),
                "weight is a number of at least 0",
            ));
        }
        team.members.push(Member {
            rep: RepId::new(member.rep_id.clone()),
            weight: member.weight,
        });
    }
    if let Some(manager) = &document.manager_id {
        if !rep_ids.contains(manager) {
            return Err(ApiError::invalid(
                "unknown_rep",
                "manager_id",
                format!("no rep has id {manager:?}"),
            ));
        }
        team.manager = Some(RepId::new(manager.clone()));
    }
    if let Some(strategy) = &document.default_strategy {
        team.default_strategy =
            compile_strategy_spec(strategy, "default_strategy").map_err(|errors| {
                let first = &errors[0];
                ApiError::invalid(first.code, first.path.clone(), first.message.clone())
            })?;
    }
    team.overflow = match &document.overflow {
        None => None,
        Some(OverflowDocument::Team(other)) if team_ids.contains(other) && other != id => {
            Some(Overflow::Team(other.clone()))
        }
        Some(OverflowDocument::Team(other)) => {
            return Err(ApiError::invalid(
                "unknown_team",
                "overflow.team",
                format!("no other team has id {other:?}"),
            ));
        }
        Some(OverflowDocument::Pool(pool)) if pools.contains(pool) => {
            Some(Overflow::Pool(pool.clone()))
        }
        Some(OverflowDocument::Pool(pool)) => {
            return Err(ApiError::invalid(
                "unknown_pool",
                "overflow.pool",
                format!("no pool has id {pool:?}"),
            ));
        }
    };
    team.policy = TeamPolicy {
        hours: match document.hours_policy.as_deref() {
            None => HoursPolicy::InHours,
            Some(text) => HoursPolicy::parse(text)
                .ok_or_else(|| invalid("hours_policy", "hours_policy is in_hours or any_time"))?,
        },
        away_fallback: document.away_fallback,
    };
    Ok(team)
}

pub fn catalogue_from_rows(rows: &[CustomFieldRow]) -> FieldCatalogue {
    let fields = |entity: &str| {
        rows.iter()
            .filter(|row| row.entity == entity)
            .filter_map(|row| {
                Some(CustomField {
                    name: row.name.clone(),
                    field_type: FieldType::parse(&row.field_type)?,
                })
            })
            .collect()
    };
    FieldCatalogue::new(fields("lead"), fields("rep")).unwrap_or_default()
}

/// Everything routing reads that only changes when configuration changes.
#[derive(Debug)]
pub struct Workspace {
    pub roster: Roster,
    pub catalogue: FieldCatalogue,
    pub pools: Vec<String>,
    pub sla_policy_ids: Vec<String>,
    pub rules: RuleSet,
    pub follow: FollowUpConfig,
    /// The published conversion model, which scores every lead routed.
    pub model: Option<engine::WinModel>,
    /// Which keys recognise a returning customer and what a match does (查重 / 撞单).
    pub duplicates: crate::customer::DuplicatePolicy,
}

impl Workspace {
    /// Routes a lead: the engine over this roster and rule set.
    pub fn route(
        &self,
        state: &engine::RoutingState,
        lead: &engine::Lead,
        exclude: &[RepId],
        now: chrono::DateTime<chrono::Utc>,
    ) -> engine::Decision {
        let request = engine::RouteRequest {
            lead,
            now,
            exclude,
            model: self.model.as_ref(),
            keep_candidates: false,
        };
        engine::route(&self.rules, &self.roster, state, &request)
    }

    /// Whether a team with the optimal batch policy decided the lead: its backlog (held
    /// leads, leave hand-backs) is placed as one batch. The sweep and the replay both ask.
    pub fn batched(&self, decision: &engine::Decision) -> bool {
        decision
            .attempts
            .iter()
            .rev()
            .find(|attempt| attempt.winner.is_some())
            .and_then(|attempt| match &attempt.target {
                engine::decision::AttemptTarget::Teams(teams) => teams.first(),
                _ => None,
            })
            .and_then(|team| self.follow.teams.get(team))
            .is_some_and(|team| team.optimal_batches)
    }

    /// Whether any team places its backlog as one batch.
    pub fn batches_backlogs(&self) -> bool {
        self.follow.teams.values().any(|team| team.optimal_batches)
    }

    /// A decision made self-describing, as it is stored and explained.
    pub fn record(
        &self,
        decision: &engine::Decision,
        lead: &engine::Lead,
    ) -> engine::DecisionRecord {
        engine::DecisionRecord::new(decision, &self.rules, &self.roster, lead)
            .with_win(decision, self.model.as_ref())
    }

    /// Routes a lead and makes its decision self-describing: what reroute, the sweep and the
    /// SLA clock's reassignment do.
    pub fn decide(
        &self,
        state: &engine::RoutingState,
        lead: &engine::Lead,
        exclude: &[RepId],
        now: chrono::DateTime<chrono::Utc>,
    ) -> (engine::Decision, engine::DecisionRecord) {
        let decision = self.route(state, lead, exclude, now);
        let record = self.record(&decision, lead);
        (decision, record)
    }
}

/// The stored configuration a workspace is built from.
#[derive(Clone, Debug, Default)]
pub struct ConfigRows {
    pub reps: Vec<RepRow>,
    pub teams: Vec<TeamRow>,
    pub pools: Vec<DocRow>,
    pub fields: Vec<CustomFieldRow>,
    pub calendars: Vec<DocRow>,
    pub sla_policies: Vec<DocRow>,
    pub active: Option<RuleSetRow>,
    pub model: Option<store::ModelRow>,
    /// The duplicate policy document (查重), if one was saved.
    pub duplicates: Option<String>,
}

impl ConfigRows {
    pub async fn load(store: &store::Store) -> Result<ConfigRows, store::DbError> {
        Ok(ConfigRows {
            reps: store.list_reps().await?,
            teams: store.list_teams().await?,
            pools: store.list_settings(Setting::Pools).await?,
            fields: store.list_custom_fields().await?,
            calendars: store.list_settings(Setting::Calendars).await?,
            sla_policies: store.list_settings(Setting::SlaPolicies).await?,
            active: store.active_rule_set().await?,
            model: store.active_model().await?,
            duplicates: store
                .workspace_setting(crate::customer::POLICY_SETTING)
                .await?
                .map(|row| row.document),
        })
    }

    pub async fn load_in(tx: &mut store::RoutingTx<'_>) -> Result<ConfigRows, store::DbError> {
        Ok(ConfigRows {
            reps: tx.list_reps().await?,
            teams: tx.list_teams().await?,
            pools: tx.list_settings(Setting::Pools).await?,
            fields: tx.list_custom_fields().await?,
            calendars: tx.list_settings(Setting::Calendars).await?,
            sla_policies: tx.list_settings(Setting::SlaPolicies).await?,
            active: tx.active_rule_set().await?,
            model: tx.active_model().await?,
            duplicates: tx
                .workspace_setting(crate::customer::POLICY_SETTING)
                .await?
                .map(|row| row.document),
        })
    }
}

/// Builds the workspace from stored rows. Rows that no longer validate (a rep deleted from
/// under a team) are skipped with a warning rather than stopping intake.
pub fn build_workspace(rows: &ConfigRows) -> Workspace {
    let ConfigRows {
        reps,
        teams,
        pools,
        fields,
        calendars,
        sla_policies,
        active,
        model,
        duplicates,
    } = rows;
    let catalogue = catalogue_from_rows(fields);
    let model = model
        .as_ref()
        .and_then(|row| compile_model(row, &catalogue));
    let pools_rows = pools;
    let pools: Vec<String> = pools.iter().map(|pool| pool.id.clone()).collect();
    let sla_policy_ids: Vec<String> = sla_policies.iter().map(|row| row.id.clone()).collect();
    let engine_reps: Vec<Rep> = reps
        .iter()
        .filter_map(|row| {
            let mut document: RepDocument = serde_json::from_str(&row.document).ok()?;
            document.attributes =
                engine::field::readable_attributes(catalogue.rep_custom(), &document.attributes);
            rep_from_document(&row.id, &document, &catalogue)
                .map_err(|error| tracing::warn!(rep = %row.id, code = %error.code, "skipping a rep that no longer validates"))
                .ok()
        })
        .collect();
    let rep_ids: Vec<String> = engine_reps.iter().map(|rep| rep.id.to_string()).collect();
    let team_ids: Vec<String> = teams.iter().map(|team| team.id.clone()).collect();
    let mut team_follow_up = HashMap::new();
    let engine_teams: Vec<Team> = teams
        .iter()
        .filter_map(|row| {
            let mut document: TeamDocument = serde_json::from_str(&row.document).ok()?;
            document.members.retain(|member| rep_ids.contains(&member.rep_id));
            if document.manager_id.as_ref().is_some_and(|manager| !rep_ids.contains(manager)) {
                document.manager_id = None;
            }
            let team = team_from_document(&row.id, &document, &rep_ids, &team_ids, &pools)
                .map_err(|error| tracing::warn!(team = %row.id, code = %error.code, "skipping a team that no longer validates"))
                .ok()?;
            team_follow_up.insert(
                row.id.clone(),
                TeamFollowUp {
                    calendar: document.calendar.clone(),
                    sla_policy: document.sla_policy.clone(),
                    hand_back_on_leave: document.leave_policy.as_deref() == Some("hand_back"),
                    optimal_batches: document.batch_policy.as_deref() == Some("optimal"),
                    overflow_pool: match &document.overflow {
                        Some(OverflowDocument::Pool(pool)) => Some(pool.clone()),
                        _ => None,
                    },
                    manager: team.manager.clone(),
                },
            );
            Some(team)
        })
        .collect();
    let roster = Roster::new(engine_reps, engine_teams).unwrap_or_else(|error| {
        tracing::error!(%error, "the stored reps and teams do not form a roster");
        Roster::default()
    });
    let mut follow = FollowUpConfig::build(calendars, sla_policies, pools_rows, &roster);
    follow.teams = team_follow_up;
    let rules = active
        .as_ref()
        .and_then(|row| {
            let spec = RuleSetSpec::from_json(&row.document).ok()?;
            follow.rules = spec
                .rules
                .iter()
                .filter_map(|rule| Some((rule.id.clone(), rule.sla_policy.clone()?)))
                .collect();
            engine::compile(
                &spec,
                Known {
                    catalogue: &catalogue,
                    roster: &roster,
                    pools: &pools,
                    sla_policies: &sla_policy_ids,
                },
                row.version as u32,
            )
            .map_err(|errors| {
                tracing::error!(
                    version = row.version,
                    errors = errors.len(),
                    "the active rule set no longer compiles; holding leads"
                )
            })
            .ok()
        })
        .unwrap_or_else(|| empty_rules(&catalogue));
    Workspace {
        roster,
        catalogue,
        pools,
        sla_policy_ids,
        rules,
        follow,
        model,
        duplicates: crate::customer::policy_from(duplicates.as_deref()),
    }
}

/// The active model against today's catalogue. One that cannot be read scores nothing (and
/// says so in the log); fields removed since training are scored as missing.
fn compile_model(row: &store::ModelRow, catalogue: &FieldCatalogue) -> Option<engine::WinModel> {
    let spec: engine::ModelSpec = serde_json::from_str(row.spec.as_deref()?)
        .map_err(|error| tracing::error!(version = row.version, %error, "the active model cannot be read; leads go unscored"))
        .ok()?;
    let model = engine::WinModel::compile(&spec, catalogue, row.version)
        .map_err(|error| tracing::error!(version = row.version, %error, "the active model does not compile; leads go unscored"))
        .ok()?;
    if !model.dropped.is_empty() {
        tracing::warn!(version = row.version, fields = ?model.dropped, "the active model scores without fields removed since it was trained");
    }
    Some(model)
}

/// With no rule set published every lead is held until one is.
fn empty_rules(catalogue: &FieldCatalogue) -> RuleSet {
    RuleSet {
        version: 0,
        name: None,
        catalogue: catalogue.clone(),
        rules: Vec::new(),
        tagging: Vec::new(),
        scoring: None,
        default: Vec::new(),
        index: engine::RuleIndex::default(),
    }
}
