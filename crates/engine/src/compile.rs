//! Compiling a rule-set document into a `RuleSet`: every reference resolved, every condition
//! typed against the field catalogue, every error located by rule and path. Compilation either
//! yields a rule set that routes without surprises or the full list of what is wrong.

use std::collections::HashSet;
use std::fmt;

use chrono::NaiveDate;

use crate::condition::{Condition, RepCondition};
use crate::field::FieldCatalogue;
use crate::hours::Period;
use crate::hours::{TimeRange, parse_time_zone, parse_weekday};
use crate::lead::Priority;
use crate::rep::RepId;
use crate::roster::Roster;
use crate::rule_set::{
    Fallback, Rule, RuleIndex, RuleSet, ScoreRule, Scoring, TagRule, Target, Window,
};
use crate::spec::{
    CatchUpSpec, ConditionSpec, FallbackSpec, PerformanceSpec, RuleSetSpec, RuleSpec, StrategySpec,
    TargetSpec, WindowSpec,
};
use crate::strategy::{
    BestMatchWeights, CatchUp, LoadMeasure, PerformanceWeights, Strategy, WeightSource,
};
use crate::team::HoursPolicy;

/// Rule sets larger than this are refused; a form never needs more.
pub const MAX_RULES: usize = 10_000;

/// What a rule set may refer to: the workspace's fields, reps, teams and pools.
#[derive(Clone, Copy, Debug)]
pub struct Known<'a> {
    pub catalogue: &'a FieldCatalogue,
    pub roster: &'a Roster,
    pub pools: &'a [String],
    /// Ids of the SLA policies rules may name.
    pub sla_policies: &'a [String],
}

/// One problem in a rule-set document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileError {
    /// The id of the rule it is in, if any.
    pub rule: Option<String>,
    /// Where in the document: `rules[2].when.all[0].op`.
    pub path: String,
    /// A stable snake_case code: `unknown_field`, `unknown_team`, `invalid_value`…
    pub code: &'static str,
    pub message: String,
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.rule {
            Some(rule) => write!(f, "{} (rule {rule}): {}", self.path, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// Collects errors with the rule they belong to.
#[derive(Debug, Default)]
pub(crate) struct Errors {
    list: Vec<CompileError>,
    rule: Option<String>,
}

impl Errors {
    pub fn push(&mut self, path: &str, code: &'static str, message: String) {
        self.list.push(CompileError {
            rule: self.rule.clone(),
            path: path.to_owned(),
            code,
            message,
        });
    }
}

/// A version's change note is a sentence or two.
const MAX_NOTE: usize = 500;

/// Compiles a document. `version` is the number the store gives the rule set.
pub fn compile(
    spec: &RuleSetSpec,
    known: Known<'_>,
    version: u32,
) -> Result<RuleSet, Vec<CompileError>> {
    let mut errors = Errors::default();
    if spec.rules.len() > MAX_RULES {
        errors.push(
            "rules",
            "too_large",
            format!("a rule set has at most {MAX_RULES} rules"),
        );
        return Err(errors.list);
    }
    if spec
        .note
        .as_ref()
        .is_some_and(|note| note.chars().count() > MAX_NOTE)
    {
        errors.push(
            "note",
            "too_long",
            format!("a version's note has at most {MAX_NOTE} characters"),
        );
    }
    let mut ids = HashSet::new();
    let mut rules = Vec::with_capacity(spec.rules.len());
    for (index, rule) in spec.rules.iter().enumerate() {
        let path = format!("rules[{index}]");
        errors.rule = Some(rule.id.clone());
        if !valid_id(&rule.id) {
            errors.push(
                &format!("{path}.id"),
                "invalid_value",
                "a rule id is 1 to 64 characters without spaces".to_owned(),
            );
        } else if !ids.insert(rule.id.as_str()) {
            errors.push(
                &format!("{path}.id"),
                "duplicate_id",
                format!("rule id {:?} is used twice", rule.id),
            );
        }
        if let Some(rule) = compile_rule(rule, known, &path, &mut errors) {
            rules.push(rule);
        }
    }
    errors.rule = None;
    let tagging = spec
        .tagging
        .iter()
        .enumerate()
        .filter_map(|(index, tag_rule)| {
            let path = format!("tagging[{index}]");
            let when = optional_condition(tag_rule.when.as_ref(), known, &path, &mut errors);
            if tag_rule.add_tags.is_empty()
                || tag_rule.add_tags.iter().any(|tag| tag.trim().is_empty())
            {
                errors.push(
                    &format!("{path}.add_tags"),
                    "invalid_value",
                    "add_tags needs one or more non-empty tags".to_owned(),
                );
            }
            Some(TagRule {
                id: tag_rule.id.clone(),
                when: when?,
                add_tags: tag_rule.add_tags.clone(),
            })
        })
        .collect();
    let scoring = spec.scoring.as_ref().map(|scoring| {
        let rules = scoring
            .rules
            .iter()
            .enumerate()
            .filter_map(|(index, score_rule)| {
                let path = format!("scoring.rules[{index}]");
                let when = optional_condition(score_rule.when.as_ref(), known, &path, &mut errors);
                if !score_rule.points.is_finite() {
                    errors.push(
                        &format!("{path}.points"),
                        "invalid_value",
                        "points must be a number".to_owned(),
                    );
                }
                Some(ScoreRule {
                    id: score_rule.id.clone(),
                    when: when?,
                    points: score_rule.points,
                })
            })
            .collect();
        let mut tiers = Vec::new();
        for (index, tier) in scoring.tiers.iter().enumerate() {
            match Priority::parse(&tier.priority) {
                Some(priority) if (0.0..=100.0).contains(&tier.min_score) => {
                    tiers.push((tier.min_score, priority));
                }
                Some(_) => errors.push(
                    &format!("scoring.tiers[{index}].min_score"),
                    "invalid_value",
                    "min_score is between 0 and 100".to_owned(),
                ),
                None => errors.push(
                    &format!("scoring.tiers[{index}].priority"),
                    "invalid_value",
                    format!(
                        "unknown priority {:?}, expected urgent, high, normal or low",
                        tier.priority
                    ),
                ),
            }
        }
        tiers.sort_by(|left, right| right.0.total_cmp(&left.0));
        Scoring {
            base: scoring.base,
            rules,
            tiers,
        }
    });
    let default = compile_fallbacks(&spec.default, known, "default", &mut errors);
    if default.contains(&Fallback::NextRule) || default.contains(&Fallback::Overflow) {
        errors.push(
            "default",
            "invalid_value",
            "the default has no next rule and no team to overflow from".to_owned(),
        );
    }
    if !errors.list.is_empty() {
        return Err(errors.list);
    }
    Ok(RuleSet {
        version,
        name: spec.name.clone(),
        catalogue: known.catalogue.clone(),
        index: RuleIndex::new(&rules),
        rules,
        tagging,
        scoring,
        default,
    })
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.chars().count() <= 64 && !id.chars().any(char::is_whitespace)
}

/// `Some(None)` for a missing condition, `None` when it failed to compile.
fn optional_condition(
    spec: Option<&ConditionSpec>,
    known: Known<'_>,
    path: &str,
    errors: &mut Errors,
) -> Option<Option<Condition>> {
    match spec {
        None => Some(None),
        Some(spec) => {
            Condition::compile(spec, known.catalogue, &format!("{path}.when"), errors).map(Some)
        }
    }
}

fn compile_rule(
    spec: &RuleSpec,
    known: Known<'_>,
    path: &str,
    errors: &mut Errors,
) -> Option<Rule> {
    let before = errors.list.len();
    let when = optional_condition(spec.when.as_ref(), known, path, errors);
    let window = spec
        .window
        .as_ref()
        .map(|window| compile_window(window, &format!("{path}.window"), errors));
    let target = compile_target(&spec.target, known, &format!("{path}.target"), errors);
    let strategy = spec
        .strategy
        .as_ref()
        .map(|strategy| compile_strategy(strategy, &format!("{path}.strategy"), errors));
    let rep_conditions =
        |specs: &[ConditionSpec], key: &str, errors: &mut Errors| -> Option<Vec<RepCondition>> {
            specs
                .iter()
                .enumerate()
                .map(|(index, condition)| {
                    RepCondition::compile(
                        condition,
                        known.catalogue,
                        &format!("{path}.{key}[{index}]"),
                        errors,
                    )
                })
                .collect::<Vec<_>>()
                .into_iter()
                .collect()
        };
    let requires = rep_conditions(&spec.requires, "requires", errors);
    let prefers = rep_conditions(&spec.prefers, "prefers", errors);
    let hours = spec.hours.as_deref().map(|hours| {
        let policy = HoursPolicy::parse(hours);
        if policy.is_none() {
            errors.push(
                &format!("{path}.hours"),
                "invalid_value",
                format!("unknown hours policy {hours:?}, expected in_hours or any_time"),
            );
        }
        policy
    });
    let fallback = compile_fallbacks(&spec.fallback, known, &format!("{path}.fallback"), errors);
    if matches!(target, Some(Target::Pool(_)))
        && (spec.strategy.is_some() || !spec.requires.is_empty() || !spec.prefers.is_empty())
    {
        errors.push(
            path,
            "invalid_value",
            "a pool target takes no strategy, requires or prefers".to_owned(),
        );
    }
    if let Some(policy) = &spec.sla_policy
        && !known.sla_policies.contains(policy)
    {
        errors.push(
            &format!("{path}.sla_policy"),
            "unknown_sla_policy",
            format!("no SLA policy has id {policy:?}"),
        );
    }
    if errors.list.len() > before {
        return None;
    }
    Some(Rule {
        id: spec.id.clone(),
        name: spec.name.clone(),
        when: when?,
        window: window.flatten(),
        target: target?,
        strategy: strategy.flatten(),
        owner_affinity: spec.owner_affinity,
        requires: requires?,
        prefers: prefers?,
        hours: hours.flatten(),
        fallback,
        sla_policy: spec.sla_policy.clone(),
    })
}

fn compile_window(spec: &WindowSpec, path: &str, errors: &mut Errors) -> Option<Window> {
    let before = errors.list.len();
    let mut weekdays = 0u8;
    for (index, name) in spec.weekdays.iter().enumerate() {
        match parse_weekday(name) {
            Some(weekday) => weekdays |= 1 << weekday.num_days_from_monday(),
            None => errors.push(
                &format!("{path}.weekdays[{index}]"),
                "invalid_value",
                format!("unknown weekday {name:?}, expected mon … sun"),
            ),
        }
    }
    let hours = spec.hours.as_deref().and_then(|hours| {
        TimeRange::parse(hours)
            .map_err(|message| errors.push(&format!("{path}.hours"), "invalid_value", message))
            .ok()
    });
    let mut date = |value: &Option<String>, name: &str| {
        value.as_deref().and_then(|text| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map_err(|_| {
                    errors.push(
                        &format!("{path}.{name}"),
                        "invalid_value",
                        format!("expected a YYYY-MM-DD date, got {text:?}"),
                    )
                })
                .ok()
        })
    };
    let from = date(&spec.from, "from");
    let until = date(&spec.until, "until");
    if let (Some(from), Some(until)) = (from, until)
        && from > until
    {
        errors.push(
            &format!("{path}.until"),
            "invalid_value",
            "until is before from".to_owned(),
        );
    }
    let zone = match spec.time_zone.as_deref() {
        None => chrono_tz::Asia::Shanghai,
        Some(name) => match parse_time_zone(name) {
            Ok(zone) => zone,
            Err(message) => {
                errors.push(&format!("{path}.time_zone"), "invalid_value", message);
                chrono_tz::Asia::Shanghai
            }
        },
    };
    (errors.list.len() == before).then_some(Window {
        weekdays,
        hours,
        from,
        until,
        zone,
    })
}

fn check_team(id: &str, known: Known<'_>, path: &str, errors: &mut Errors) -> bool {
    let exists = known.roster.has_team(id);
    if !exists {
        errors.push(path, "unknown_team", format!("no team has id {id:?}"));
    }
    exists
}

fn check_pool(id: &str, known: Known<'_>, path: &str, errors: &mut Errors) -> bool {
    let exists = known.pools.iter().any(|pool| pool == id);
    if !exists {
        errors.push(path, "unknown_pool", format!("no pool has id {id:?}"));
    }
    exists
}

fn check_reps(
    ids: &[String],
    known: Known<'_>,
    path: &str,
    errors: &mut Errors,
) -> Option<Vec<RepId>> {
    if ids.is_empty() {
        errors.push(path, "invalid_value", "name at least one rep".to_owned());
        return None;
    }
    let mut ok = true;
    for (index, id) in ids.iter().enumerate() {
        if known.roster.position_of(id).is_none() {
            errors.push(
                &format!("{path}[{index}]"),
                "unknown_rep",
                format!("no rep has id {id:?}"),
            );
            ok = false;
        }
    }
    ok.then(|| ids.iter().map(RepId::new).collect())
}

fn compile_target(
    spec: &TargetSpec,
    known: Known<'_>,
    path: &str,
    errors: &mut Errors,
) -> Option<Target> {
    match spec {
        TargetSpec::Team(id) => check_team(id, known, &format!("{path}.team"), errors)
            .then(|| Target::Teams(vec![id.clone()])),
        TargetSpec::Teams(ids) => {
            if ids.is_empty() {
                errors.push(
                    &format!("{path}.teams"),
                    "invalid_value",
                    "name at least one team".to_owned(),
                );
                return None;
            }
            let all = ids
                .iter()
                .enumerate()
                .map(|(index, id)| check_team(id, known, &format!("{path}.teams[{index}]"), errors))
                .filter(|ok| !ok)
                .count()
                == 0;
            all.then(|| Target::Teams(ids.clone()))
        }
        TargetSpec::Reps(ids) => {
            check_reps(ids, known, &format!("{path}.reps"), errors).map(Target::Reps)
        }
        TargetSpec::Pool(id) => {
            check_pool(id, known, &format!("{path}.pool"), errors).then(|| Target::Pool(id.clone()))
        }
        TargetSpec::ExistingOwner => Some(Target::ExistingOwner),
        TargetSpec::OwnerField(name) => match known.catalogue.lead_field(name) {
            Some((field, crate::value::FieldType::Text)) => Some(Target::OwnerField(field)),
            Some(_) => {
                errors.push(
                    &format!("{path}.owner_field"),
                    "invalid_value",
                    format!("{name} is not a text field"),
                );
                None
            }
            None => {
                errors.push(
                    &format!("{path}.owner_field"),
                    "unknown_field",
                    format!("unknown lead field {name:?}"),
                );
                None
            }
        },
    }
}

fn compile_fallbacks(
    specs: &[FallbackSpec],
    known: Known<'_>,
    path: &str,
    errors: &mut Errors,
) -> Vec<Fallback> {
    specs
        .iter()
        .enumerate()
        .filter_map(|(index, spec)| {
            let path = format!("{path}[{index}]");
            match spec {
                FallbackSpec::NextRule => Some(Fallback::NextRule),
                FallbackSpec::Overflow => Some(Fallback::Overflow),
                FallbackSpec::Hold => Some(Fallback::Hold),
                FallbackSpec::Team(id) => check_team(id, known, &format!("{path}.team"), errors)
                    .then(|| Fallback::Team(id.clone())),
                FallbackSpec::Pool(id) => check_pool(id, known, &format!("{path}.pool"), errors)
                    .then(|| Fallback::Pool(id.clone())),
                FallbackSpec::Reps(ids) => {
                    check_reps(ids, known, &format!("{path}.reps"), errors).map(Fallback::Reps)
                }
            }
        })
        .collect()
}

fn compile_strategy(spec: &StrategySpec, path: &str, errors: &mut Errors) -> Option<Strategy> {
    Some(match spec {
        StrategySpec::RoundRobin => Strategy::RoundRobin,
        StrategySpec::LongestIdle => Strategy::LongestIdle,
        StrategySpec::WeightedRoundRobin { performance } => Strategy::WeightedRoundRobin {
            weights: weight_source(performance.as_ref(), path, errors)?,
        },
        StrategySpec::LeastLoaded { measure } => Strategy::LeastLoaded {
            measure: match measure.as_deref() {
                None | Some("open_leads") => LoadMeasure::OpenLeads,
                Some("free_capacity") => LoadMeasure::FreeCapacity,
                Some(other) => {
                    errors.push(
                        &format!("{path}.measure"),
                        "invalid_value",
                        format!("unknown measure {other:?}, expected open_leads or free_capacity"),
                    );
                    return None;
                }
            },
        },
        StrategySpec::FairShare {
            window,
            catch_up,
            performance,
        } => Strategy::FairShare {
            window: match window.as_deref() {
                None => Period::Month,
                Some(text) => match Period::parse(text) {
                    Some(period) => period,
                    None => {
                        errors.push(
                            &format!("{path}.window"),
                            "invalid_value",
                            format!("unknown window {text:?}, expected day, week or month"),
                        );
                        return None;
                    }
                },
            },
            catch_up: match catch_up {
                None => CatchUp::default(),
                Some(CatchUpSpec::None) => CatchUp::None,
                Some(CatchUpSpec::Full) => CatchUp::Full,
                Some(CatchUpSpec::Capped(extra)) => CatchUp::Capped(*extra),
            },
            weights: weight_source(performance.as_ref(), path, errors)?,
        },
        StrategySpec::BestMatch { weights } => {
            let defaults = BestMatchWeights::default();
            let spec = weights.clone().unwrap_or_default();
            let resolved = BestMatchWeights {
                matching: spec.matching.unwrap_or(defaults.matching),
                conversion: spec.conversion.unwrap_or(defaults.conversion),
                response: spec.response.unwrap_or(defaults.response),
                feedback: spec.feedback.unwrap_or(defaults.feedback),
                load: spec.load.unwrap_or(defaults.load),
                win_probability: spec.win_probability.unwrap_or(defaults.win_probability),
            };
            let all = [
                resolved.matching,
                resolved.conversion,
                resolved.response,
                resolved.feedback,
                resolved.load,
            ];
            if !(resolved.win_probability.is_finite() && resolved.win_probability >= 0.0) {
                errors.push(
                    &format!("{path}.weights.win_probability"),
                    "invalid_value",
                    "a weight is a non-negative number".to_owned(),
                );
                return None;
            }
            if all
                .iter()
                .any(|weight| !(weight.is_finite() && *weight >= 0.0))
                || all.iter().sum::<f64>() <= 0.0
            {
                errors.push(
                    &format!("{path}.weights"),
                    "invalid_value",
                    "weights are non-negative numbers, not all zero".to_owned(),
                );
                return None;
            }
            Strategy::BestMatch(resolved)
        }
    })
}

fn weight_source(
    spec: Option<&PerformanceSpec>,
    path: &str,
    errors: &mut Errors,
) -> Option<WeightSource> {
    let Some(spec) = spec else {
        return Some(WeightSource::Configured);
    };
    let defaults = PerformanceWeights::default();
    let weights = PerformanceWeights {
        conversion: spec.conversion.unwrap_or(defaults.conversion),
        response: spec.response.unwrap_or(defaults.response),
        feedback: spec.feedback.unwrap_or(defaults.feedback),
        floor: spec.floor.unwrap_or(defaults.floor),
        ceiling: spec.ceiling.unwrap_or(defaults.ceiling),
    };
    let parts = [weights.conversion, weights.response, weights.feedback];
    if parts
        .iter()
        .any(|weight| !(weight.is_finite() && *weight >= 0.0))
        || parts.iter().sum::<f64>() <= 0.0
    {
        errors.push(
            &format!("{path}.performance"),
            "invalid_value",
            "conversion, response and feedback are non-negative, not all zero".to_owned(),
        );
        return None;
    }
    if !(weights.floor.is_finite()
        && weights.ceiling.is_finite()
        && 0.0 <= weights.floor
        && weights.floor <= weights.ceiling)
    {
        errors.push(
            &format!("{path}.performance"),
            "invalid_value",
            "floor and ceiling satisfy 0 ≤ floor ≤ ceiling".to_owned(),
        );
        return None;
    }
    Some(WeightSource::Performance(weights))
}

/// Compiles a strategy on its own, such as a team's default strategy.
pub fn compile_strategy_spec(
    spec: &StrategySpec,
    path: &str,
) -> Result<Strategy, Vec<CompileError>> {
    let mut errors = Errors::default();
    match compile_strategy(spec, path, &mut errors) {
        Some(strategy) if errors.list.is_empty() => Ok(strategy),
        _ => Err(errors.list),
    }
}
