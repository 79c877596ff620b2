//! A routing decision in one sentence a manager reads at a glance ("命中规则「华东制造」，12
//! 位销售中 4 位可接（6 位不满足必须条件、2 位已达每日上限），按轮询分给王芳。"); the engine's
//! precise explanation stays one click away.

use engine::DecisionRecord;

use super::i18n::Tr;

/// Excluded reps named at most by this many reasons, the largest groups first.
const REASONS_SHOWN: usize = 3;

/// `pool_name` gives a pool's display name from its id.
pub fn sentence(record: &DecisionRecord, t: &Tr, pool_name: &dyn Fn(&str) -> String) -> String {
    let zh = t.is_zh();
    let rule = match &record.rule {
        Some(rule) => {
            let name = rule.name.as_deref().unwrap_or(&rule.id);
            if zh {
                format!("命中规则「{name}」")
            } else {
                format!("Rule “{name}” matched")
            }
        }
        None if zh => "没有规则命中".to_owned(),
        None => "No rule matched".to_owned(),
    };
    // The attempt that decided: the one with a winner, else the last one tried.
    let attempt = (record.attempts.iter())
        .rfind(|attempt| attempt.winner.is_some())
        .or(record.attempts.last());
    match (record.outcome.as_str(), &record.owner, attempt) {
        ("assigned", Some(owner), Some(attempt)) => {
            let mut groups: Vec<_> = attempt.excluded.iter().collect();
            groups.sort_by_key(|group| std::cmp::Reverse(group.count));
            let reasons: Vec<String> = groups
                .iter()
                .take(REASONS_SHOWN)
                .map(|group| {
                    let reason = lower_first(t.word(&group.reason), zh);
                    if zh {
                        format!("{} 位{reason}", group.count)
                    } else {
                        format!("{reason}: {}", group.count)
                    }
                })
                .collect();
            let strategy = (attempt.strategy.as_deref()).map(|name| lower_first(t.word(name), zh));
            if zh {
                let excluded = if reasons.is_empty() {
                    String::new()
                } else {
                    format!("（{}）", reasons.join("、"))
                };
                let how = strategy.map_or_else(String::new, |name| format!("按{name}"));
                format!(
                    "{rule}，{} 位销售中 {} 位可接{excluded}，{how}分给 {}。",
                    attempt.considered, attempt.eligible, owner.name
                )
            } else {
                let excluded = if reasons.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", reasons.join(", "))
                };
                let how = strategy.map_or_else(String::new, |name| format!(" by {name}"));
                format!(
                    "{rule}; {} of {} reps could take it{excluded}; assigned{how} to {}.",
                    attempt.eligible, attempt.considered, owner.name
                )
            }
        }
        ("pooled", _, _) => {
            let pool = pool_name(record.pool.as_deref().unwrap_or_default());
            if zh {
                format!("{rule}，进入{pool}等待领取。")
            } else {
                format!("{rule}; put in the pool {pool} for reps to claim.")
            }
        }
        _ if zh => format!("{rule}，暂时没有可接的销售，进入待分配。"),
        _ => format!("{rule}; nobody could take it yet, so it waits in the hold queue."),
    }
}

/// Words inside an English sentence start in lower case ("Paused" → "paused").
fn lower_first(word: &str, zh: bool) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) if !zh => first.to_lowercase().chain(chars).collect(),
        _ => word.to_owned(),
    }
}
