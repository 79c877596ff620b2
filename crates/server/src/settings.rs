//! Follow-up settings as the API reads and writes them — business calendars, SLA policies and
//! pools — checked and turned into the engine's types, and the lookups the routing worker
//! makes with them: which policy and calendar a lead's clocks follow, which pool a lead goes
//! back to, what a team does when a rep goes on leave.

use std::collections::{BTreeMap, HashMap};

use chrono::{Duration, NaiveDate};
use engine::calendar::BusinessCalendar;
use engine::follow_up::{
    Cadence, ClaimRules, Protection, SlaAction, SlaPolicy, SlaStep, parse_duration,
};
use engine::hours::{TimeRange, WeeklyHours, parse_time_zone, parse_weekday};
use engine::pool::PoolRules;
use engine::{RepId, Roster};
use serde::{Deserialize, Serialize};
use store::DocRow;
use utoipa::ToSchema;

use crate::error::ApiError;

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
    ApiError::invalid("invalid_value", field, message)
}

fn duration(text: &str, field: &str) -> Result<Duration, ApiError> {
    parse_duration(text).map_err(|message| invalid(field, message))
}

fn ranges(texts: &[String], field: &str) -> Result<Vec<TimeRange>, ApiError> {
    texts
        .iter()
        .map(|text| TimeRange::parse(text))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|message| invalid(field, message))
}

fn dates(texts: &[String], field: &str) -> Result<Vec<NaiveDate>, ApiError> {
    texts
        .iter()
        .enumerate()
        .map(|(index, text)| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map_err(|_| invalid(format!("{field}[{index}]"), "expected a YYYY-MM-DD date"))
        })
        .collect()
}

/// A business calendar: weekly hours in a time zone, holidays, and make-up workdays (调休).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarDocument {
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    /// IANA zone, such as `Asia/Shanghai`.
    pub time_zone: String,
    /// Open hours per weekday: `{"mon": ["09:00-12:00", "13:30-18:00"], …}`.
    #[serde(default)]
    pub hours: BTreeMap<String, Vec<String>>,
    /// Closed days (YYYY-MM-DD), whatever the weekday.
    #[serde(default)]
    pub holidays: Vec<String>,
    /// Days open although they fall on a weekend (调休).
    #[serde(default)]
    pub makeup_days: Vec<String>,
    /// Open hours on make-up days; the first open weekday's hours when left out.
    #[serde(default)]
    pub makeup_hours: Option<Vec<String>>,
}

impl CalendarDocument {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn to_engine(&self) -> Result<BusinessCalendar, ApiError> {
        if self.name.trim().is_empty() {
            return Err(invalid("name", "a calendar needs a name"));
        }
        let zone =
            parse_time_zone(&self.time_zone).map_err(|message| invalid("time_zone", message))?;
        let mut weekly = WeeklyHours::default();
        for (day, texts) in &self.hours {
            let weekday = parse_weekday(day)
                .ok_or_else(|| invalid(format!("hours.{day}"), "days are mon … sun"))?;
            weekly.days[weekday.num_days_from_monday() as usize] =
                ranges(texts, &format!("hours.{day}"))?;
        }
        let mut calendar = BusinessCalendar::new(zone, weekly);
        calendar.holidays = dates(&self.holidays, "holidays")?.into_iter().collect();
        calendar.makeup_days = dates(&self.makeup_days, "makeup_days")?
            .into_iter()
            .collect();
        if let Some(hours) = &self.makeup_hours {
            calendar.makeup_hours = ranges(hours, "makeup_hours")?;
        }
        Ok(calendar)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlaStepDocument {
    /// Business time after the assignment: `30m`, `1h`, `24h`.
    pub after: String,
    /// `remind` (the owner), `escalate` (owner and manager), `reclaim` (reassign to someone
    /// who has not had the lead) or `pool`.
    pub action: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CadenceDocument {
    /// No activity for this long (calendar time) returns the lead to the pool: `30d`.
    pub recycle_after: String,
    /// The owner is warned this long before: `3d`.
    #[serde(default)]
    pub warn_before: Option<String>,
}

/// An SLA policy: the first-response ladder, the follow-up cadence and the hop limit.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlaPolicyDocument {
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    /// The calendar business time is counted in; the team's, then `default`, when left out.
    #[serde(default)]
    pub calendar: Option<String>,
    #[serde(default)]
    pub steps: Vec<SlaStepDocument>,
    /// Reclaims before a lead goes to the pool instead (and the manager is told); default 3.
    #[serde(default)]
    pub hop_limit: Option<u32>,
    #[serde(default)]
    pub cadence: Option<CadenceDocument>,
}

impl SlaPolicyDocument {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn to_engine(&self, calendars: &[String]) -> Result<SlaPolicy, ApiError> {
        if self.name.trim().is_empty() {
            return Err(invalid("name", "a policy needs a name"));
        }
        if let Some(calendar) = &self.calendar
            && !calendars.contains(calendar)
        {
            return Err(ApiError::invalid(
                "unknown_calendar",
                "calendar",
                format!("no calendar has id {calendar:?}"),
            ));
        }
        let mut steps = Vec::with_capacity(self.steps.len());
        for (index, step) in self.steps.iter().enumerate() {
            let after = duration(&step.after, &format!("steps[{index}].after"))?;
            let action = SlaAction::parse(&step.action).ok_or_else(|| {
                invalid(
                    format!("steps[{index}].action"),
                    "action is remind, escalate, reclaim or pool",
                )
            })?;
            if steps
                .last()
                .is_some_and(|last: &SlaStep| last.after >= after)
            {
                return Err(invalid(
                    format!("steps[{index}].after"),
                    "steps come in increasing order of time",
                ));
            }
            steps.push(SlaStep { after, action });
        }
        if steps.len() > 20 {
            return Err(invalid("steps", "at most 20 steps"));
        }
        let cadence = match &self.cadence {
            None => None,
            Some(cadence) => {
                let recycle_after = duration(&cadence.recycle_after, "cadence.recycle_after")?;
                let warn_before = match &cadence.warn_before {
                    Some(text) => duration(text, "cadence.warn_before")?,
                    None => Duration::zero(),
                };
                if recycle_after <= Duration::zero() || warn_before >= recycle_after {
                    return Err(invalid(
                        "cadence.warn_before",
                        "the warning comes before the recycle, after the last activity",
                    ));
                }
                Some(Cadence {
                    recycle_after,
                    warn_before,
                })
            }
        };
        Ok(SlaPolicy {
            steps,
            cadence,
            hop_limit: self.hop_limit.unwrap_or(3),
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProtectionDocument {
    /// How long a claimed lead stays with the claimer: `15d`.
    pub initial: String,
    /// Each activity extends it to this long after the activity: `7d`.
    #[serde(default)]
    pub extend: Option<String>,
    /// Never longer than this after the claim: `60d`.
    #[serde(default)]
    pub max: Option<String>,
}

/// A pool (公海) and the rules for claiming from it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolDocument {
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    /// Members of these teams may claim; with `reps`, the union. Both empty: everyone.
    #[serde(default)]
    pub teams: Vec<String>,
    #[serde(default)]
    pub reps: Vec<String>,
    /// Claims one rep may make per day (in their time zone).
    #[serde(default)]
    pub claims_per_day: Option<u32>,
    /// A previous owner cannot claim the lead back for this long: `7d`.
    #[serde(default)]
    pub cooldown: Option<String>,
    /// A claimed lead with no activity within this returns to the pool: `24h`.
    #[serde(default)]
    pub touch_within: Option<String>,
    #[serde(default)]
    pub protection: Option<ProtectionDocument>,
}

impl PoolDocument {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn to_engine(
        &self,
        id: &str,
        rep_ids: &[String],
        team_ids: &[String],
    ) -> Result<PoolRules, ApiError> {
        if self.name.trim().is_empty() {
            return Err(invalid("name", "a pool needs a name"));
        }
        for (index, team) in self.teams.iter().enumerate() {
            if !team_ids.contains(team) {
                return Err(ApiError::invalid(
                    "unknown_team",
                    format!("teams[{index}]"),
                    format!("no team has id {team:?}"),
                ));
            }
        }
        for (index, rep) in self.reps.iter().enumerate() {
            if !rep_ids.contains(rep) {
                return Err(ApiError::invalid(
                    "unknown_rep",
                    format!("reps[{index}]"),
                    format!("no rep has id {rep:?}"),
                ));
            }
        }
        let protection = match &self.protection {
            None => None,
            Some(document) => {
                let initial = duration(&document.initial, "protection.initial")?;
                let extend = match &document.extend {
                    Some(text) => duration(text, "protection.extend")?,
                    None => Duration::zero(),
                };
                let max = match &document.max {
                    Some(text) => duration(text, "protection.max")?,
                    None => initial.max(extend),
                };
                if max < initial {
                    return Err(invalid(
                        "protection.max",
                        "the maximum is at least the initial period",
                    ));
                }
                Some(Protection {
                    initial,
                    extend,
                    max,
                })
            }
        };
        Ok(PoolRules {
            id: id.to_owned(),
            teams: self.teams.clone(),
            reps: self
                .reps
                .iter()
                .map(|rep| RepId::new(rep.clone()))
                .collect(),
            claims_per_day: self.claims_per_day,
            cooldown: match &self.cooldown {
                Some(text) => duration(text, "cooldown")?,
                None => Duration::zero(),
            },
            claim: ClaimRules {
                touch_within: self
                    .touch_within
                    .as_deref()
                    .map(|text| duration(text, "touch_within"))
                    .transpose()?,
                protection,
            },
        })
    }
}

/// What a team decides about follow-up.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TeamFollowUp {
    pub calendar: Option<String>,
    pub sla_policy: Option<String>,
    /// Whether a rep going on leave hands back leads they have not touched yet.
    pub hand_back_on_leave: bool,
    /// Whether held leads are released, and handed-back leads rerouted, as one optimised batch.
    pub optimal_batches: bool,
    pub overflow_pool: Option<String>,
    pub manager: Option<RepId>,
}

/// Every follow-up setting, as the routing worker uses them.
#[derive(Clone, Debug, Default)]
pub struct FollowUpConfig {
    pub calendars: HashMap<String, BusinessCalendar>,
    /// Each policy with the calendar it names.
    pub policies: HashMap<String, (SlaPolicy, Option<String>)>,
    pub pools: HashMap<String, PoolRules>,
    pub teams: HashMap<String, TeamFollowUp>,
    /// The rule id → SLA policy of the active rule set.
    pub rules: HashMap<String, String>,
}

/// The policy and calendar a lead's clocks follow.
#[derive(Debug)]
pub struct Clocks<'a> {
    pub policy_id: String,
    pub policy: &'a SlaPolicy,
    pub calendar: &'a BusinessCalendar,
}

impl FollowUpConfig {
    /// Reads the stored settings, skipping (with a warning) any that no longer validate.
    pub fn build(
        calendars: &[DocRow],
        policies: &[DocRow],
        pools: &[DocRow],
        roster: &Roster,
    ) -> FollowUpConfig {
        let mut config = FollowUpConfig::default();
        for row in calendars {
            match serde_json::from_str::<CalendarDocument>(&row.document)
                .map_err(ApiError::internal)
                .and_then(|document| document.to_engine())
            {
                Ok(calendar) => {
                    config.calendars.insert(row.id.clone(), calendar);
                }
                Err(error) => {
                    tracing::warn!(calendar = %row.id, code = %error.code, "skipping a calendar that no longer validates")
                }
            }
        }
        let calendar_ids: Vec<String> = config.calendars.keys().cloned().collect();
        for row in policies {
            match serde_json::from_str::<SlaPolicyDocument>(&row.document)
                .map_err(ApiError::internal)
                .and_then(|document| {
                    Ok((
                        document.to_engine(&calendar_ids)?,
                        document.calendar.clone(),
                    ))
                }) {
                Ok(policy) => {
                    config.policies.insert(row.id.clone(), policy);
                }
                Err(error) => {
                    tracing::warn!(policy = %row.id, code = %error.code, "skipping an SLA policy that no longer validates")
                }
            }
        }
        let rep_ids: Vec<String> = roster.reps().iter().map(|rep| rep.id.to_string()).collect();
        let team_ids: Vec<String> = roster.teams().map(|team| team.id.clone()).collect();
        for row in pools {
            let mut document =
                serde_json::from_str::<PoolDocument>(&row.document).unwrap_or_else(|_| {
                    PoolDocument {
                        name: row.name.clone(),
                        ..PoolDocument::default()
                    }
                });
            // Scope entries whose rep or team is gone no longer admit anyone.
            document.reps.retain(|rep| rep_ids.contains(rep));
            document.teams.retain(|team| team_ids.contains(team));
            match document.to_engine(&row.id, &rep_ids, &team_ids) {
                Ok(rules) => {
                    config.pools.insert(row.id.clone(), rules);
                }
                Err(error) => {
                    tracing::warn!(pool = %row.id, code = %error.code, "pool rules no longer validate; claims follow no limits");
                    config.pools.insert(
                        row.id.clone(),
                        PoolRules {
                            id: row.id.clone(),
                            ..PoolRules::default()
                        },
                    );
                }
            }
        }
        config
    }

    /// The rule's policy, else the team's, else `default`; the policy's calendar, else the
    /// team's, else `default`. `None` when no calendar or policy can be found at all.
    pub fn clocks(&self, rule: Option<&str>, team: Option<&str>) -> Option<Clocks<'_>> {
        let team = team.and_then(|team| self.teams.get(team));
        let policy_id = rule
            .and_then(|rule| self.rules.get(rule))
            .or_else(|| team.and_then(|team| team.sla_policy.as_ref()))
            .filter(|id| self.policies.contains_key(*id))
            .cloned()
            .unwrap_or_else(|| "default".to_owned());
        let (policy, calendar_id) = self.policies.get(&policy_id)?;
        let calendar = calendar_id
            .as_ref()
            .or_else(|| team.and_then(|team| team.calendar.as_ref()))
            .and_then(|id| self.calendars.get(id))
            .or_else(|| self.calendars.get("default"))?;
        Some(Clocks {
            policy_id,
            policy,
            calendar,
        })
    }

    /// Where a lead goes back to: the pool it last waited in, else its team's overflow pool,
    /// else `public`, else any pool.
    pub fn home_pool(&self, last_pool: Option<&str>, team: Option<&str>) -> Option<String> {
        last_pool
            .filter(|pool| self.pools.contains_key(*pool))
            .map(str::to_owned)
            .or_else(|| {
                team.and_then(|team| self.teams.get(team))
                    .and_then(|team| team.overflow_pool.clone())
                    .filter(|pool| self.pools.contains_key(pool))
            })
            .or_else(|| {
                self.pools
                    .contains_key("public")
                    .then(|| "public".to_owned())
            })
            .or_else(|| {
                let mut ids: Vec<&String> = self.pools.keys().collect();
                ids.sort();
                ids.first().map(|id| (*id).clone())
            })
    }

    pub fn manager(&self, team: Option<&str>) -> Option<&RepId> {
        team.and_then(|team| self.teams.get(team))
            .and_then(|team| team.manager.as_ref())
    }
}
