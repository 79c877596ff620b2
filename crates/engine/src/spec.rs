//! The rule-set document as people and forms write it (JSON, or TOML for config as code).
//! Nothing here is trusted: `compile` turns it into a validated `RuleSet`.

use serde::{Deserialize, Serialize};

/// A whole rule-set document: routing rules, tagging rules, scoring and the default when no
/// rule matches.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSetSpec {
    #[serde(default)]
    pub name: Option<String>,
    /// Why this version was made ("华东加两名新人"), shown beside it in the version list. Not
    /// part of what routes: two versions that differ only here route the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
    #[serde(default)]
    pub tagging: Vec<TagRuleSpec>,
    #[serde(default)]
    pub scoring: Option<ScoringSpec>,
    /// What happens to a lead no rule matched; `["hold"]` when left out.
    #[serde(default)]
    pub default: Vec<FallbackSpec>,
}

impl RuleSetSpec {
    pub fn from_json(text: &str) -> Result<RuleSetSpec, String> {
        serde_json::from_str(text).map_err(|error| error.to_string())
    }

    pub fn from_toml(text: &str) -> Result<RuleSetSpec, String> {
        toml::from_str(text).map_err(|error| error.to_string())
    }
}

/// One routing rule. Rules are tried in order; the first that matches decides the target.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Stable id: round-robin pointers and statistics follow it across versions.
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// Matches every lead when left out.
    #[serde(default)]
    pub when: Option<ConditionSpec>,
    #[serde(default)]
    pub window: Option<WindowSpec>,
    pub target: TargetSpec,
    /// Defaults to the team's strategy, or round robin for named reps.
    #[serde(default)]
    pub strategy: Option<StrategySpec>,
    /// Send a known customer's lead to its owner when that owner is eligible.
    #[serde(default)]
    pub owner_affinity: bool,
    /// Rep conditions every candidate must meet.
    #[serde(default)]
    pub requires: Vec<ConditionSpec>,
    /// Rep conditions tried first; dropped from the last one up until someone is eligible.
    #[serde(default)]
    pub prefers: Vec<ConditionSpec>,
    /// `in_hours` or `any_time`; defaults to the team's policy.
    #[serde(default)]
    pub hours: Option<String>,
    /// Steps tried when nobody in the target is eligible; `["overflow", "hold"]` when left out.
    #[serde(default)]
    pub fallback: Vec<FallbackSpec>,
    /// The SLA policy for leads this rule assigns; the team's, then the default, when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla_policy: Option<String>,
}

/// A condition tree node: exactly one of `all`, `any`, `not`, or a `field` / `op` row with a
/// `value` or, in rep conditions, a `ref` to a lead field.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<Vec<ConditionSpec>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub any: Option<Vec<ConditionSpec>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not: Option<Box<ConditionSpec>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

impl ConditionSpec {
    /// A `field op value` row.
    pub fn row(field: &str, op: &str, value: serde_json::Value) -> ConditionSpec {
        ConditionSpec {
            field: Some(field.to_owned()),
            op: Some(op.to_owned()),
            value: Some(value),
            ..ConditionSpec::default()
        }
    }
}

/// When a rule applies: weekdays, hours, a date range, in one time zone.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    #[serde(default)]
    pub weekdays: Vec<String>,
    /// `HH:MM-HH:MM`, may cross midnight.
    #[serde(default)]
    pub hours: Option<String>,
    /// First day, `YYYY-MM-DD`.
    #[serde(default)]
    pub from: Option<String>,
    /// Last day, included.
    #[serde(default)]
    pub until: Option<String>,
    /// IANA name; `Asia/Shanghai` when left out.
    #[serde(default)]
    pub time_zone: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TargetSpec {
    Team(String),
    Teams(Vec<String>),
    Reps(Vec<String>),
    Pool(String),
    /// The owner of the known customer the lead matched.
    ExistingOwner,
    /// A lead field whose value is a rep id.
    OwnerField(String),
}

impl Default for TargetSpec {
    fn default() -> Self {
        TargetSpec::Teams(Vec::new())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum FallbackSpec {
    /// Keep matching from the next rule.
    NextRule,
    /// The target team's overflow target.
    Overflow,
    Team(String),
    Reps(Vec<String>),
    Pool(String),
    /// Wait in the hold queue until someone is eligible.
    Hold,
}

/// How a rep is picked among the eligible candidates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum StrategySpec {
    RoundRobin,
    WeightedRoundRobin {
        #[serde(default)]
        performance: Option<PerformanceSpec>,
    },
    LeastLoaded {
        /// `open_leads` (default) or `free_capacity`.
        #[serde(default)]
        measure: Option<String>,
    },
    LongestIdle,
    FairShare {
        /// `day`, `week` or `month` (default).
        #[serde(default)]
        window: Option<String>,
        #[serde(default)]
        catch_up: Option<CatchUpSpec>,
        #[serde(default)]
        performance: Option<PerformanceSpec>,
    },
    BestMatch {
        #[serde(default)]
        weights: Option<BestMatchSpec>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CatchUpSpec {
    None,
    /// At most this many leads above the rep's share while catching up.
    Capped(u32),
    Full,
}

/// Weights derived from rep statistics: each rep's base weight times a factor, the weighted
/// mean of conversion, response speed and feedback relative to the candidates' mean, bounded by
/// `floor` and `ceiling`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerformanceSpec {
    #[serde(default)]
    pub conversion: Option<f64>,
    #[serde(default)]
    pub response: Option<f64>,
    #[serde(default)]
    pub feedback: Option<f64>,
    #[serde(default)]
    pub floor: Option<f64>,
    #[serde(default)]
    pub ceiling: Option<f64>,
}

/// Weights of the best-match dimensions; left-out ones keep their defaults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BestMatchSpec {
    #[serde(default)]
    pub matching: Option<f64>,
    #[serde(default)]
    pub conversion: Option<f64>,
    #[serde(default)]
    pub response: Option<f64>,
    #[serde(default)]
    pub feedback: Option<f64>,
    #[serde(default)]
    pub load: Option<f64>,
    /// The lead's learned win probability times the rep's relative conversion (default 0.3);
    /// it counts only for leads a published model scored.
    #[serde(default)]
    pub win_probability: Option<f64>,
}

/// Adds tags to leads that match.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagRuleSpec {
    pub id: String,
    #[serde(default)]
    pub when: Option<ConditionSpec>,
    pub add_tags: Vec<String>,
}

/// Points per matching rule, summed from `base` and clamped to 0..=100; tiers turn the score
/// into a priority.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoringSpec {
    #[serde(default)]
    pub base: f64,
    #[serde(default)]
    pub rules: Vec<ScoreRuleSpec>,
    #[serde(default)]
    pub tiers: Vec<TierSpec>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreRuleSpec {
    pub id: String,
    #[serde(default)]
    pub when: Option<ConditionSpec>,
    pub points: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierSpec {
    pub min_score: f64,
    /// `urgent`, `high`, `normal` or `low`.
    pub priority: String,
}
