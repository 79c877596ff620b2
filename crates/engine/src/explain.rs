//! The decision record: a decision made self-describing (names, values, reasons) for storage
//! and the API, and its short human explanation in Chinese or English. Built only when asked
//! for, never on the routing hot path.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::condition::{NodeInfo, Operand};
use crate::decision::{AttemptTarget, Decision, Outcome, RuleTrace, Step};
use crate::eligibility::Exclusion;
use crate::field::LeadView;
use crate::lead::Lead;
use crate::model::{WinModel, WinScore, field_label, value_label};
use crate::rep::RepId;
use crate::roster::{RepIndex, Roster};
use crate::rule_set::{Fallback, RuleSet};
use crate::value::ValueRef;

/// How many reps an exclusion group lists by name; the rest are counted.
const LISTED_PER_GROUP: usize = 50;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Language {
    En,
    Zh,
}

impl Language {
    /// `zh`, `zh-CN`… choose Chinese; anything else English.
    pub fn parse(tag: &str) -> Language {
        if tag.to_ascii_lowercase().starts_with("zh") {
            Language::Zh
        } else {
            Language::En
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    pub rule_set_version: u32,
    pub at: DateTime<Utc>,
    pub outcome: String,
    pub owner: Option<RepBrief>,
    pub pool: Option<String>,
    pub rule: Option<RuleBrief>,
    pub tags_added: Vec<String>,
    pub score: Option<f64>,
    /// The learned model's score and why, when a model was active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub win: Option<WinRecord>,
    pub priority: Option<String>,
    /// The rules tried, in order, the last [`RULES_TRIED_SHOWN`] of them at most (the matched
    /// rule is the last tried), so a record stays small whatever the rule set.
    pub rules_tried: Vec<RuleTried>,
    /// Rules tried before those listed, left out of the record.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rules_tried_omitted: usize,
    pub attempts: Vec<AttemptRecord>,
    /// How the lead fared in an optimised batch, when it was part of one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchRecord>,
}

/// A lead's place in an optimised batch, as recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchRecord {
    pub value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit: Option<f64>,
    /// Leads the owner could still take in the batch after this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u32>,
    /// The rep one-by-one routing in arrival order would have chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_by_one: Option<RepBrief>,
    /// The best-fitting rep, when the plan chose someone else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_fit: Option<RepBrief>,
    /// The batch had no room for it within caps and the fairness band.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unplaced: bool,
}

impl BatchRecord {
    fn explain(&self, owner: Option<&RepBrief>, zh: bool) -> String {
        let round = |number: f64| (number * 100.0).round() / 100.0;
        let mut text = String::new();
        if self.unplaced {
            text.push_str(if zh {
                "批量最优分配：在上限与公平区间内没有可接的销售，按常规路由处理。"
            } else {
                "Optimal batch: no eligible rep had room within caps and the fairness band, so it was routed as usual."
            });
            return text;
        }
        let value = round(self.value);
        match (zh, self.fit) {
            (true, Some(fit)) => {
                let _ = write!(
                    text,
                    "批量最优分配：线索价值 {value}，匹配度 {}",
                    round(fit)
                );
            }
            (true, None) => {
                let _ = write!(text, "批量最优分配：线索价值 {value}");
            }
            (false, Some(fit)) => {
                let _ = write!(
                    text,
                    "Optimal batch: lead value {value}, fit {}",
                    round(fit)
                );
            }
            (false, None) => {
                let _ = write!(text, "Optimal batch: lead value {value}");
            }
        }
        if let (Some(owner), Some(remaining)) = (owner, self.remaining) {
            if zh {
                let _ = write!(text, "；{} 本批还可接 {remaining} 条", owner.name);
            } else {
                let _ = write!(
                    text,
                    "; {} can take {remaining} more in this batch",
                    owner.name
                );
            }
        }
        if let Some(best) = &self.best_fit {
            if zh {
                let _ = write!(text, "；最匹配的 {} 的名额留给了更需要的线索", best.name);
            } else {
                let _ = write!(
                    text,
                    "; the best fit, {}, was kept for leads that needed them more",
                    best.name
                );
            }
        }
        if let Some(other) = &self.one_by_one
            && owner.is_none_or(|owner| owner.id != other.id)
        {
            if zh {
                let _ = write!(text, "；逐条分配会给 {}", other.name);
            } else {
                let _ = write!(text, "; one by one it would have gone to {}", other.name);
            }
        }
        text.push_str(if zh { "。" } else { "." });
        text
    }
}

/// A lead's win probability as recorded: the model's version and the factors that moved it
/// most, each with its effect in probability (−1 to 1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WinRecord {
    pub probability: f64,
    pub model_version: i64,
    pub factors: Vec<FactorRecord>,
    /// Fields the model was trained on that the catalogue no longer has: scored as missing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields_missing: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FactorRecord {
    pub field: String,
    pub value: String,
    pub effect: f64,
}

impl WinRecord {
    pub fn new(score: &WinScore, model: &WinModel) -> WinRecord {
        WinRecord {
            probability: (score.probability * 1e4).round() / 1e4,
            model_version: score.model_version,
            factors: score
                .factors
                .iter()
                .map(|factor| FactorRecord {
                    field: model.feature_name(factor.feature).to_owned(),
                    value: model.level_label(factor.feature, factor.level),
                    effect: (factor.effect * 1e4).round() / 1e4,
                })
                .collect(),
            fields_missing: model.dropped.clone(),
        }
    }

    /// `成交概率 42%：来源=展会 +9%，行业=制造 +6%，规模<50 −4%`.
    pub fn explain(&self, language: Language) -> String {
        let zh = language == Language::Zh;
        let percent = |value: f64| (value * 100.0).round() as i64;
        let mut text = if zh {
            format!("成交概率 {}%", percent(self.probability))
        } else {
            format!("Win probability {}%", percent(self.probability))
        };
        let factors: Vec<String> = self
            .factors
            .iter()
            .filter(|factor| percent(factor.effect) != 0)
            .map(|factor| {
                let effect = percent(factor.effect);
                let sign = if effect > 0 { "+" } else { "−" };
                let value = value_label(&factor.field, &factor.value, zh);
                let joiner = if value.starts_with(['<', '≥']) {
                    ""
                } else {
                    "="
                };
                format!(
                    "{}{joiner}{value} {sign}{}%",
                    field_label(&factor.field, zh),
                    effect.abs()
                )
            })
            .collect();
        if !factors.is_empty() {
            text.push_str(if zh { "：" } else { ": " });
            text.push_str(&factors.join(if zh { "，" } else { ", " }));
        }
        text
    }
}

/// How many rules tried a record lists at most.
pub const RULES_TRIED_SHOWN: usize = 50;

fn is_zero(count: &usize) -> bool {
    *count == 0
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepBrief {
    pub id: String,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleBrief {
    pub id: String,
    pub name: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleTried {
    pub rule: RuleBrief,
    /// `matched`, `not_matched` or `outside_window`.
    pub result: String,
    pub failed: Option<FailedCondition>,
}

/// The first condition that failed, with the lead's value. Contact fields show as hidden.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedCondition {
    pub path: String,
    /// `all`, `any`, `not`, or the row's field.
    pub node: String,
    pub op: Option<String>,
    pub expected: Option<String>,
    pub actual: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    pub rule: Option<String>,
    /// `primary`, `affinity` or `fallback:<step>`.
    pub step: String,
    pub target: String,
    pub considered: u32,
    pub eligible: u32,
    pub excluded: Vec<ExclusionGroup>,
    pub away_fallback: bool,
    pub preferences_met: Option<(u16, u16)>,
    pub floor: bool,
    pub strategy: Option<String>,
    pub leading: Vec<CandidateScore>,
    pub tie_break: Option<String>,
    pub winner: Option<RepBrief>,
}

/// Excluded reps grouped by reason, each with the values behind it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExclusionGroup {
    pub reason: String,
    pub count: u32,
    pub reps: Vec<ExcludedRep>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExcludedRep {
    pub id: String,
    pub name: String,
    /// `5/5`, `2026-12-01`, `09:00–18:00 Asia/Shanghai`, `rep.industries contains 制造`…
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CandidateScore {
    pub id: String,
    pub name: String,
    pub score: f64,
    pub parts: BTreeMap<String, f64>,
}

impl DecisionRecord {
    /// Makes a decision self-describing. `lead` must be the lead that was routed.
    pub fn new(
        decision: &Decision,
        rules: &RuleSet,
        roster: &Roster,
        lead: &Lead,
    ) -> DecisionRecord {
        let view = LeadView::new(lead, &rules.catalogue);
        let brief = |position: RepIndex| {
            let rep = roster.rep(position);
            RepBrief {
                id: rep.id.to_string(),
                name: rep.name.clone(),
            }
        };
        let rule_brief = |position: u32| {
            let rule = &rules.rules[position as usize];
            RuleBrief {
                id: rule.id.clone(),
                name: rule.name.clone(),
            }
        };
        let rules_tried_omitted = decision.rules.len().saturating_sub(RULES_TRIED_SHOWN);
        let rules_tried = decision
            .rules
            .iter()
            .skip(rules_tried_omitted)
            .map(|trace| match *trace {
                RuleTrace::Matched { rule } => RuleTried {
                    rule: rule_brief(rule),
                    result: "matched".to_owned(),
                    failed: None,
                },
                RuleTrace::OutsideWindow { rule } => RuleTried {
                    rule: rule_brief(rule),
                    result: "outside_window".to_owned(),
                    failed: None,
                },
                RuleTrace::NotMatched { rule, node } => {
                    let failed = rules.rules[rule as usize]
                        .when
                        .as_ref()
                        .and_then(|when| when.node(node))
                        .map(|(path, info)| match info {
                            NodeInfo::Row { field, op, value } => FailedCondition {
                                path: when_path(path),
                                node: rules.catalogue.lead_field_name(*field),
                                op: Some(op.as_str().to_owned()),
                                expected: Some(value.clone()),
                                actual: if field.is_personal() {
                                    Some("(hidden)".to_owned())
                                } else {
                                    view.get(*field).map(|value| value.to_string())
                                },
                            },
                            group => FailedCondition {
                                path: when_path(path),
                                node: match group {
                                    NodeInfo::Any => "any",
                                    NodeInfo::Not => "not",
                                    _ => "all",
                                }
                                .to_owned(),
                                op: None,
                                expected: None,
                                actual: None,
                            },
                        });
                    RuleTried {
                        rule: rule_brief(rule),
                        result: "not_matched".to_owned(),
                        failed,
                    }
                }
            })
            .collect();
        let attempts = decision
            .attempts
            .iter()
            .map(|attempt| {
                let mut groups: Vec<ExclusionGroup> = Vec::new();
                for (position, exclusion) in attempt.exclusions() {
                    let code = exclusion.code();
                    let group = match groups.iter_mut().position(|group| group.reason == code) {
                        Some(found) => &mut groups[found],
                        None => {
                            groups.push(ExclusionGroup {
                                reason: code.to_owned(),
                                count: 0,
                                reps: Vec::new(),
                            });
                            groups.last_mut().expect("just pushed")
                        }
                    };
                    group.count += 1;
                    if group.reps.len() < LISTED_PER_GROUP {
                        let detail = exclusion_detail(
                            exclusion,
                            position,
                            attempt.rule.map(|rule| &rules.rules[rule as usize]),
                            rules,
                            roster,
                            &view,
                            decision.at,
                        );
                        let RepBrief { id, name } = brief(position);
                        group.reps.push(ExcludedRep { id, name, detail });
                    }
                }
                AttemptRecord {
                    rule: attempt
                        .rule
                        .map(|rule| rules.rules[rule as usize].id.clone()),
                    step: match &attempt.step {
                        Step::Primary => "primary".to_owned(),
                        Step::Affinity => "affinity".to_owned(),
                        Step::Fallback(fallback) => format!("fallback:{}", fallback_code(fallback)),
                    },
                    target: match &attempt.target {
                        AttemptTarget::Teams(teams) => teams
                            .iter()
                            .map(|id| {
                                roster
                                    .team(id)
                                    .map_or(id.clone(), |team| team.team.name.clone())
                            })
                            .collect::<Vec<_>>()
                            .join(", "),
                        AttemptTarget::Reps(reps) => reps
                            .iter()
                            .map(|id| {
                                roster.position(id).map_or(id.to_string(), |position| {
                                    roster.rep(position).name.clone()
                                })
                            })
                            .collect::<Vec<_>>()
                            .join(", "),
                        AttemptTarget::KnownOwner(Some(owner)) => roster
                            .position(owner)
                            .map_or(owner.to_string(), |position| {
                                roster.rep(position).name.clone()
                            }),
                        AttemptTarget::KnownOwner(None) => String::new(),
                        AttemptTarget::OwnerField(value) => value.clone().unwrap_or_default(),
                        AttemptTarget::Pool(pool) => pool.clone(),
                        AttemptTarget::Nothing => String::new(),
                    },
                    considered: attempt.considered,
                    eligible: attempt.considered - attempt.excluded_count(),
                    excluded: groups,
                    away_fallback: attempt.away_fallback,
                    preferences_met: attempt.preferences,
                    floor: attempt.floor,
                    strategy: attempt.strategy.map(str::to_owned),
                    leading: attempt
                        .leading
                        .iter()
                        .map(|scored| {
                            let RepBrief { id, name } = brief(scored.rep);
                            CandidateScore {
                                id,
                                name,
                                score: round(scored.score),
                                parts: scored
                                    .parts
                                    .iter()
                                    .map(|(part, value)| ((*part).to_owned(), round(*value)))
                                    .collect(),
                            }
                        })
                        .collect(),
                    tie_break: attempt
                        .tie_break
                        .map(|tie_break| tie_break.as_str().to_owned()),
                    winner: attempt.winner.map(brief),
                }
            })
            .collect();
        let owner = decision
            .owner()
            .and_then(|id| roster.position(id))
            .map(brief);
        DecisionRecord {
            rule_set_version: decision.rule_set_version,
            at: decision.at,
            outcome: decision.outcome.code().to_owned(),
            owner,
            pool: match &decision.outcome {
                Outcome::Pooled { pool } => Some(pool.clone()),
                _ => None,
            },
            rule: decision.matched_rule().map(rule_brief),
            tags_added: decision.tags_added.clone(),
            score: decision.score,
            win: None,
            priority: decision
                .priority
                .map(|priority| priority.as_str().to_owned()),
            rules_tried_omitted,
            rules_tried,
            attempts,
            batch: decision.batch.as_ref().map(|note| {
                let by_id = |id: &RepId| roster.position(id).map(brief);
                BatchRecord {
                    value: note.value,
                    fit: note.fit,
                    remaining: note.remaining,
                    one_by_one: note.one_by_one.as_ref().and_then(by_id),
                    best_fit: note.best_fit.as_ref().and_then(by_id),
                    unplaced: note.unplaced,
                }
            }),
        }
    }

    /// Adds the model's score and factors, which need the model to be named.
    pub fn with_win(mut self, decision: &Decision, model: Option<&WinModel>) -> DecisionRecord {
        self.win = decision
            .win
            .as_ref()
            .zip(model)
            .map(|(score, model)| WinRecord::new(score, model));
        self
    }

    /// A short explanation for people: the model's score, the rule, who was left out and why,
    /// who won and how.
    pub fn explain(&self, language: Language) -> String {
        let zh = language == Language::Zh;
        let mut text = String::new();
        if let Some(win) = &self.win {
            text.push_str(&win.explain(language));
            text.push_str(if zh { "。" } else { ". " });
        }
        let skipped: Vec<&RuleTried> = self
            .rules_tried
            .iter()
            .filter(|tried| tried.result != "matched")
            .collect();
        match &self.rule {
            Some(rule) => {
                let name = rule.name.as_deref().unwrap_or(&rule.id);
                if zh {
                    let _ = write!(text, "命中规则「{name}」");
                } else {
                    let _ = write!(text, "Rule “{name}” matched");
                }
            }
            None if zh => text.push_str("没有规则命中，按默认处理"),
            None => text.push_str("No rule matched; the default applied"),
        }
        if !skipped.is_empty() {
            let shown: Vec<String> = skipped
                .iter()
                .take(3)
                .map(|tried| {
                    let name = tried.rule.name.as_deref().unwrap_or(&tried.rule.id);
                    match (&tried.failed, tried.result.as_str()) {
                        (_, "outside_window") if zh => format!("「{name}」不在生效时间"),
                        (_, "outside_window") => format!("“{name}” outside its window"),
                        (Some(failed), _) => {
                            let condition = match (&failed.op, &failed.expected) {
                                (Some(op), Some(expected)) if expected.is_empty() => {
                                    format!("{} {}", failed.node, op_symbol(op))
                                }
                                (Some(op), Some(expected)) => {
                                    format!("{} {} {expected}", failed.node, op_symbol(op))
                                }
                                _ => failed.node.clone(),
                            };
                            let actual = failed.actual.as_deref().unwrap_or(if zh {
                                "空"
                            } else {
                                "empty"
                            });
                            if failed.op.is_none() {
                                if zh {
                                    format!("「{name}」条件 {condition} 不成立")
                                } else {
                                    format!("“{name}”: {condition} failed")
                                }
                            } else if zh {
                                format!("「{name}」要求 {condition}，实际为{actual}")
                            } else {
                                format!("“{name}” needs {condition}, was {actual}")
                            }
                        }
                        (None, _) => format!("「{name}」"),
                    }
                })
                .collect();
            // Rules left out of the record were skipped too.
            let skipped_count = skipped.len() + self.rules_tried_omitted;
            let more = skipped_count.saturating_sub(shown.len());
            if zh {
                let _ = write!(
                    text,
                    "（跳过 {} 条：{}{}）",
                    skipped_count,
                    shown.join("；"),
                    if more > 0 {
                        " 等".to_string()
                    } else {
                        String::new()
                    }
                );
            } else {
                let _ = write!(
                    text,
                    " (skipped {}: {}{})",
                    skipped_count,
                    shown.join("; "),
                    if more > 0 {
                        format!("; {more} more")
                    } else {
                        String::new()
                    }
                );
            }
        }
        text.push_str(if zh { "。" } else { ". " });
        for attempt in &self.attempts {
            if attempt.considered == 0 && attempt.winner.is_none() {
                continue;
            }
            let step = step_label(&attempt.step, zh);
            if zh {
                let _ = write!(
                    text,
                    "{step} {}：候选 {} 人，可分配 {} 人",
                    attempt.target, attempt.considered, attempt.eligible
                );
            } else {
                let _ = write!(
                    text,
                    "{step} {}: {} considered, {} eligible",
                    attempt.target, attempt.considered, attempt.eligible
                );
            }
            if !attempt.excluded.is_empty() {
                let groups: Vec<String> = attempt
                    .excluded
                    .iter()
                    .map(|group| {
                        let examples: Vec<String> = group
                            .reps
                            .iter()
                            .take(3)
                            .map(|rep| example(&group.reason, rep, zh))
                            .collect();
                        let more = group.count as usize - examples.len();
                        let more = match (more, zh) {
                            (0, _) => String::new(),
                            (more, true) => format!(" 等 {more} 人"),
                            (more, false) => format!(" and {more} more"),
                        };
                        if zh {
                            format!(
                                "{} {} 人：{}{more}",
                                reason_label(&group.reason, zh),
                                group.count,
                                examples.join("、")
                            )
                        } else {
                            format!(
                                "{} {}: {}{more}",
                                reason_label(&group.reason, zh),
                                group.count,
                                examples.join(", ")
                            )
                        }
                    })
                    .collect();
                if zh {
                    let _ = write!(text, "；排除 {}", groups.join("；"));
                } else {
                    let _ = write!(text, "; excluded {}", groups.join("; "));
                }
            }
            if attempt.away_fallback {
                text.push_str(if zh {
                    "；无人在岗，改派非工作时间的销售"
                } else {
                    "; nobody in hours, so reps outside hours were tried"
                });
            }
            if let Some((met, of)) = attempt.preferences_met {
                if zh {
                    let _ = write!(text, "；满足偏好 {met}/{of}");
                } else {
                    let _ = write!(text, "; preferences met {met}/{of}");
                }
            }
            if attempt.floor {
                text.push_str(if zh {
                    "；优先未达下限的销售"
                } else {
                    "; reps below their floor first"
                });
            }
            text.push_str(if zh { "。" } else { ". " });
        }
        let winning = self
            .attempts
            .iter()
            .rev()
            .find(|attempt| attempt.winner.is_some());
        match (self.outcome.as_str(), &self.owner, winning) {
            ("assigned", Some(owner), Some(attempt)) => {
                let strategy = if attempt.step == "affinity" {
                    strategy_label("affinity", zh)
                } else {
                    strategy_label(attempt.strategy.as_deref().unwrap_or(""), zh)
                };
                if zh {
                    let _ = write!(text, "按{strategy}分配给 {}", owner.name);
                } else {
                    let _ = write!(text, "Assigned to {} by {strategy}", owner.name);
                }
                let scored = attempt.leading.len() > 1
                    || attempt
                        .leading
                        .iter()
                        .any(|candidate| !candidate.parts.is_empty());
                if scored {
                    let runner_up = attempt.leading.get(1);
                    let winner_score = attempt
                        .leading
                        .first()
                        .map_or(0.0, |candidate| candidate.score);
                    match (runner_up, zh) {
                        (Some(runner_up), true) => {
                            let _ = write!(
                                text,
                                "（得分 {winner_score}，次优 {} {}）",
                                runner_up.name, runner_up.score
                            );
                        }
                        (Some(runner_up), false) => {
                            let _ = write!(
                                text,
                                " (score {winner_score}; runner-up {} {})",
                                runner_up.name, runner_up.score
                            );
                        }
                        (None, true) => {
                            let _ = write!(text, "（得分 {winner_score}）");
                        }
                        (None, false) => {
                            let _ = write!(text, " (score {winner_score})");
                        }
                    }
                }
                if let Some(tie_break) = &attempt.tie_break {
                    if zh {
                        let _ = write!(text, "，平分时按{}决定", tie_break_label(tie_break, zh));
                    } else {
                        let _ = write!(text, ", tie broken by {}", tie_break_label(tie_break, zh));
                    }
                }
                text.push_str(if zh { "。" } else { "." });
            }
            ("pooled", _, _) => {
                let pool = self.pool.as_deref().unwrap_or_default();
                if zh {
                    let _ = write!(text, "进入公海「{pool}」。");
                } else {
                    let _ = write!(text, "Sent to the pool “{pool}”.");
                }
            }
            _ => text.push_str(if zh {
                "暂无可分配的销售，进入等待队列。"
            } else {
                "Nobody can take it now; held until someone is eligible."
            }),
        }
        if let Some(batch) = &self.batch {
            if !zh {
                text.push(' ');
            }
            text.push_str(&batch.explain(self.owner.as_ref(), zh));
        }
        text.trim_end().to_owned()
    }
}

/// A condition's path as the document names it: `when`, `when.all[1]`.
fn when_path(relative: &str) -> String {
    if relative.is_empty() {
        "when".to_owned()
    } else {
        format!("when.{relative}")
    }
}

fn op_symbol(op: &str) -> &str {
    match op {
        "equals" => "=",
        "not_equals" => "≠",
        "gt" => ">",
        "gte" => "≥",
        "lt" => "<",
        "lte" => "≤",
        other => other,
    }
}

/// One excluded rep as an example in the explanation: `张伟 5/5`, `李娜 until 2026-12-01`.
fn example(reason: &str, rep: &ExcludedRep, zh: bool) -> String {
    match (reason, rep.detail.is_empty(), zh) {
        (_, true, _) => rep.name.clone(),
        ("on_leave", false, true) => format!("{} 休至 {}", rep.name, rep.detail),
        ("on_leave", false, false) => format!("{} until {}", rep.name, rep.detail),
        _ => format!("{} {}", rep.name, rep.detail),
    }
}

fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

fn fallback_code(fallback: &Fallback) -> &'static str {
    match fallback {
        Fallback::NextRule => "next_rule",
        Fallback::Overflow => "overflow",
        Fallback::Team(_) => "team",
        Fallback::Reps(_) => "reps",
        Fallback::Pool(_) => "pool",
        Fallback::Hold => "hold",
    }
}

fn exclusion_detail(
    exclusion: Exclusion,
    position: RepIndex,
    rule: Option<&crate::rule_set::Rule>,
    rules: &RuleSet,
    roster: &Roster,
    view: &LeadView<'_>,
    at: DateTime<Utc>,
) -> String {
    let rep = roster.rep(position);
    match exclusion {
        Exclusion::Excluded | Exclusion::Status(_) => String::new(),
        Exclusion::OnLeave { until } => until.to_string(),
        Exclusion::OutsideHours => {
            let local = crate::hours::LocalNow::new(at, rep.time_zone);
            let ranges = rep
                .hours
                .as_ref()
                .map(|hours| hours.on(local.weekday))
                .unwrap_or_default();
            let spans = if ranges.is_empty() {
                "-".to_owned()
            } else {
                ranges
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            format!("{spans} {}", rep.time_zone.name())
        }
        Exclusion::HoldingCap { open, cap } => format!("{open}/{cap}"),
        Exclusion::PeriodCap { count, cap, .. } => format!("{count}/{cap}"),
        Exclusion::Requirement { index } => {
            let Some(condition) = rule.and_then(|rule| rule.requires.get(usize::from(index)))
            else {
                return String::new();
            };
            let value = match &condition.operand {
                Operand::Nothing => String::new(),
                Operand::Text(text) => text.clone(),
                Operand::Texts(texts) => texts.join(", "),
                Operand::Number(number) => number.to_string(),
                Operand::Lead(field) => {
                    view.get(*field)
                        .map_or_else(String::new, |value| match value {
                            ValueRef::List(items) => items.join(", "),
                            other => other.to_string(),
                        })
                }
            };
            format!(
                "{} {} {value}",
                rules.catalogue.rep_field_name(condition.field),
                condition.op.as_str()
            )
            .trim_end()
            .to_owned()
        }
    }
}

fn step_label(step: &str, zh: bool) -> String {
    let label = match (step, zh) {
        ("primary", true) => "目标",
        ("primary", false) => "Target",
        ("affinity", true) => "原负责人",
        ("affinity", false) => "Known owner",
        ("fallback:overflow", true) => "溢出到",
        ("fallback:overflow", false) => "Overflow to",
        (_, true) => "后备",
        (_, false) => "Fallback",
    };
    label.to_owned()
}

fn reason_label(code: &str, zh: bool) -> &'static str {
    match (code, zh) {
        ("excluded", true) => "已排除（曾负责）",
        ("excluded", false) => "excluded (previous owner)",
        ("paused", true) => "暂停接单",
        ("paused", false) => "paused",
        ("on_leave", true) => "休假",
        ("on_leave", false) => "on leave",
        ("inactive", true) => "已停用",
        ("inactive", false) => "inactive",
        ("outside_hours", true) => "非工作时间",
        ("outside_hours", false) => "outside hours",
        ("holding_cap", true) => "保有量已满",
        ("holding_cap", false) => "holding cap",
        ("daily_cap", true) => "当日上限已满",
        ("daily_cap", false) => "daily cap",
        ("weekly_cap", true) => "本周上限已满",
        ("weekly_cap", false) => "weekly cap",
        ("monthly_cap", true) => "本月上限已满",
        ("monthly_cap", false) => "monthly cap",
        ("requirement", true) => "不满足要求",
        ("requirement", false) => "needs",
        (_, true) => "其他",
        (_, false) => "other",
    }
}

fn strategy_label(code: &str, zh: bool) -> &'static str {
    match (code, zh) {
        ("round_robin", true) => "轮流分配",
        ("round_robin", false) => "round robin",
        ("weighted_round_robin", true) => "加权轮流",
        ("weighted_round_robin", false) => "weighted round robin",
        ("least_loaded", true) => "最少负载",
        ("least_loaded", false) => "least loaded",
        ("longest_idle", true) => "最久未分配",
        ("longest_idle", false) => "longest idle",
        ("fair_share", true) => "公平份额",
        ("fair_share", false) => "fair share",
        ("best_match", true) => "最佳匹配",
        ("best_match", false) => "best match",
        ("optimal_batch", true) => "批量最优分配",
        ("optimal_batch", false) => "optimal batch assignment",
        ("affinity", true) => "原负责人优先",
        ("affinity", false) => "owner affinity",
        (_, true) => "规则",
        (_, false) => "rule",
    }
}

fn tie_break_label(code: &str, zh: bool) -> &'static str {
    match (code, zh) {
        ("fair_share", true) => "公平份额",
        ("fair_share", false) => "fair share",
        ("longest_idle", true) => "最久未分配",
        ("longest_idle", false) => "longest idle",
        (_, true) => "销售顺序",
        (_, false) => "rep order",
    }
}
