//! Follow-up clocks: what must happen to an owned lead, and by when. Given the SLA policy, the
//! business calendar, the pool's claim rules and where the lead's current ownership stands,
//! [`plan`] returns the timers the lead should have. The server writes them in the same
//! transaction as the change that caused them (an owner change or an activity) and fires them
//! from its tick; this module reads no clock.
//!
//! Clocks:
//! - the first-response ladder (business time from the assignment): remind the owner, remind
//!   owner and manager, reclaim and reassign, move to the pool. The owner's first activity
//!   stops it;
//! - a scheduled callback: a reminder at its time, and the cadence clock waits for it;
//! - the follow-up cadence (calendar time): no activity for N days recycles the lead to the
//!   pool, with a warning M days before;
//! - for a lead claimed from a pool: it must be touched within X hours, and it is protected
//!   for a period that activity extends up to a hard maximum, after which it returns.

use std::fmt;

use chrono::{DateTime, Duration, Utc};

use crate::calendar::BusinessCalendar;

/// What one rung of the first-response ladder does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlaAction {
    /// Remind the owner.
    Remind,
    /// Remind the owner and tell the manager.
    Escalate,
    /// Take the lead back and route it to someone who has not had it.
    Reclaim,
    /// Take the lead back into the pool.
    Pool,
}

impl SlaAction {
    pub fn parse(text: &str) -> Option<SlaAction> {
        Some(match text {
            "remind" => SlaAction::Remind,
            "escalate" => SlaAction::Escalate,
            "reclaim" => SlaAction::Reclaim,
            "pool" => SlaAction::Pool,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SlaAction::Remind => "remind",
            SlaAction::Escalate => "escalate",
            SlaAction::Reclaim => "reclaim",
            SlaAction::Pool => "pool",
        }
    }
}

/// One rung: `after` business time from the assignment without a first response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlaStep {
    pub after: Duration,
    pub action: SlaAction,
}

/// No activity for `recycle_after` returns the lead to the pool; `warn_before` that, the owner
/// is warned. Calendar time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cadence {
    pub recycle_after: Duration,
    pub warn_before: Duration,
}

/// An SLA policy, chosen per rule or per team.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlaPolicy {
    /// In increasing order of `after`.
    pub steps: Vec<SlaStep>,
    pub cadence: Option<Cadence>,
    /// Reclaims a lead may go through before it goes to the pool instead.
    pub hop_limit: u32,
}

impl Default for SlaPolicy {
    /// The common default: remind after 1 business hour, escalate after 24, reclaim after 48;
    /// at most 3 reclaims.
    fn default() -> SlaPolicy {
        let step = |hours, action| SlaStep {
            after: Duration::hours(hours),
            action,
        };
        SlaPolicy {
            steps: vec![
                step(1, SlaAction::Remind),
                step(24, SlaAction::Escalate),
                step(48, SlaAction::Reclaim),
            ],
            cadence: None,
            hop_limit: 3,
        }
    }
}

/// How long a claimed lead stays with the rep who claimed it: `initial` from the claim, each
/// activity extends it to `extend` after the activity, never past `max` from the claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Protection {
    pub initial: Duration,
    pub extend: Duration,
    pub max: Duration,
}

impl Protection {
    /// The protection end right after a claim at `claimed`.
    pub fn start(&self, claimed: DateTime<Utc>) -> DateTime<Utc> {
        claimed + self.initial.min(self.max)
    }

    /// The protection end after an activity at `at`.
    pub fn extend(
        &self,
        claimed: DateTime<Utc>,
        until: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> DateTime<Utc> {
        until.max(at + self.extend).min(claimed + self.max)
    }
}

/// What a pool asks of a rep who claims from it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClaimRules {
    /// The lead returns if the claimer logs no activity within this.
    pub touch_within: Option<Duration>,
    pub protection: Option<Protection>,
}

/// Where the lead's current ownership stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ownership {
    /// When the current owner got the lead (assigned or claimed).
    pub since: DateTime<Utc>,
    /// Whether the owner claimed it from a pool; the first-response ladder is for assigned
    /// leads, the claim rules for claimed ones.
    pub claimed: bool,
    pub first_response: Option<DateTime<Utc>>,
    pub last_activity: Option<DateTime<Utc>>,
    /// A callback the owner scheduled.
    pub callback: Option<DateTime<Utc>>,
    pub protected_until: Option<DateTime<Utc>>,
}

/// Why a timer exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerKind {
    /// Rung `n` of the first-response ladder.
    Sla(u8),
    Callback,
    RecycleWarning,
    Recycle,
    ClaimTouch,
    ProtectionEnd,
}

impl TimerKind {
    /// The name the store keeps, with the rung for ladder timers.
    pub fn code(self) -> (&'static str, i64) {
        match self {
            TimerKind::Sla(step) => ("sla", i64::from(step)),
            TimerKind::Callback => ("callback", 0),
            TimerKind::RecycleWarning => ("recycle_warning", 0),
            TimerKind::Recycle => ("recycle", 0),
            TimerKind::ClaimTouch => ("claim_touch", 0),
            TimerKind::ProtectionEnd => ("protection_end", 0),
        }
    }

    pub fn from_code(kind: &str, step: i64) -> Option<TimerKind> {
        Some(match kind {
            "sla" => TimerKind::Sla(u8::try_from(step).ok()?),
            "callback" => TimerKind::Callback,
            "recycle_warning" => TimerKind::RecycleWarning,
            "recycle" => TimerKind::Recycle,
            "claim_touch" => TimerKind::ClaimTouch,
            "protection_end" => TimerKind::ProtectionEnd,
            _ => return None,
        })
    }
}

impl fmt::Display for TimerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code() {
            ("sla", step) => write!(f, "sla step {}", step + 1),
            (name, _) => f.write_str(name),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timer {
    pub kind: TimerKind,
    pub due: DateTime<Utc>,
}

/// The timers a lead should have now, in due order. Timers already due are kept (they fire on
/// the next tick) except callbacks in the past, which nobody can keep any more.
pub fn plan(
    policy: &SlaPolicy,
    calendar: &BusinessCalendar,
    claim: Option<&ClaimRules>,
    ownership: &Ownership,
    now: DateTime<Utc>,
) -> Vec<Timer> {
    let mut timers = timers(policy, calendar, claim, ownership, now, Rungs::All);
    timers.sort_by_key(|timer| (timer.due, timer.kind));
    timers
}

/// The first timer of [`plan`]: the one a lead stores. Only the ladder's earliest rung is put
/// on the calendar, since a later rung (more open time after the same start) is never due
/// sooner; counting open time is most of what planning costs.
pub fn next(
    policy: &SlaPolicy,
    calendar: &BusinessCalendar,
    claim: Option<&ClaimRules>,
    ownership: &Ownership,
    now: DateTime<Utc>,
) -> Option<Timer> {
    timers(policy, calendar, claim, ownership, now, Rungs::Earliest)
        .into_iter()
        .min_by_key(|timer| (timer.due, timer.kind))
}

/// Which rungs of the first-response ladder [`timers`] puts on the calendar.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rungs {
    All,
    Earliest,
}

/// The timers a lead should have now, in no particular order.
fn timers(
    policy: &SlaPolicy,
    calendar: &BusinessCalendar,
    claim: Option<&ClaimRules>,
    ownership: &Ownership,
    now: DateTime<Utc>,
    rungs: Rungs,
) -> Vec<Timer> {
    let mut timers = Vec::new();
    if ownership.first_response.is_none() && !ownership.claimed {
        let ladder = policy.steps.iter().enumerate().take(usize::from(u8::MAX));
        let earliest = ladder
            .clone()
            .min_by_key(|(index, step)| (step.after, *index))
            .map(|(index, _)| index);
        let wanted =
            |(index, _): &(usize, &SlaStep)| rungs == Rungs::All || Some(*index) == earliest;
        for (index, step) in ladder.filter(wanted) {
            if let Some(due) = calendar.add(ownership.since, step.after) {
                timers.push(Timer {
                    kind: TimerKind::Sla(index as u8),
                    due,
                });
            }
        }
    }
    if let Some(callback) = ownership.callback.filter(|at| *at > now) {
        timers.push(Timer {
            kind: TimerKind::Callback,
            due: callback,
        });
    }
    if let Some(cadence) = policy.cadence {
        let anchor = [ownership.last_activity, ownership.callback]
            .into_iter()
            .flatten()
            .fold(ownership.since, DateTime::max);
        let recycle = anchor + cadence.recycle_after;
        let warning = recycle - cadence.warn_before;
        if cadence.warn_before > Duration::zero() && warning > anchor {
            timers.push(Timer {
                kind: TimerKind::RecycleWarning,
                due: warning,
            });
        }
        timers.push(Timer {
            kind: TimerKind::Recycle,
            due: recycle,
        });
    }
    if let (true, Some(claim)) = (ownership.claimed, claim) {
        if let (Some(within), None) = (claim.touch_within, ownership.last_activity) {
            timers.push(Timer {
                kind: TimerKind::ClaimTouch,
                due: ownership.since + within,
            });
        }
        if let Some(until) = ownership.protected_until {
            timers.push(Timer {
                kind: TimerKind::ProtectionEnd,
                due: until,
            });
        }
    }
    timers
}

/// Reads a duration such as `90s`, `30m`, `1h`, `1h30m` or `2d` (a day is 24 hours).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let fail = || format!("expected a duration such as 30m, 1h, 1h30m or 2d, got {text:?}");
    if text.is_empty() {
        return Err(fail());
    }
    let mut total = Duration::zero();
    let mut digits = String::new();
    for character in text.chars() {
        if character.is_ascii_digit() {
            digits.push(character);
            continue;
        }
        let amount: i64 = digits.parse().map_err(|_| fail())?;
        digits.clear();
        let unit = match character {
            's' => Duration::try_seconds(amount),
            'm' => Duration::try_minutes(amount),
            'h' => Duration::try_hours(amount),
            'd' => Duration::try_days(amount),
            _ => None,
        }
        .ok_or_else(fail)?;
        total = total.checked_add(&unit).ok_or_else(fail)?;
    }
    if !digits.is_empty() || total > Duration::days(3650) {
        return Err(fail());
    }
    Ok(total)
}

/// Writes a duration the way [`parse_duration`] reads it.
pub fn format_duration(duration: Duration) -> String {
    let mut seconds = duration.num_seconds().max(0);
    if seconds == 0 {
        return "0s".into();
    }
    let mut text = String::new();
    for (unit, size) in [('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)] {
        if seconds >= size {
            text.push_str(&format!("{}{unit}", seconds / size));
            seconds %= size;
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Weekday};

    use super::*;
    use crate::hours::{TimeRange, WeeklyHours};

    fn office() -> BusinessCalendar {
        let weekdays = [
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
        ];
        let hours = [TimeRange::parse("09:00-18:00").expect("valid")];
        BusinessCalendar::new(
            chrono_tz::Asia::Shanghai,
            WeeklyHours::uniform(&weekdays, &hours),
        )
    }

    fn shanghai(month: u32, day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
        chrono_tz::Asia::Shanghai
            .with_ymd_and_hms(2026, month, day, hour, minute, 0)
            .single()
            .expect("valid")
            .with_timezone(&Utc)
    }

    fn assigned(since: DateTime<Utc>) -> Ownership {
        Ownership {
            since,
            claimed: false,
            first_response: None,
            last_activity: None,
            callback: None,
            protected_until: None,
        }
    }

    #[test]
    fn the_default_ladder_counts_business_hours_from_the_assignment() {
        // Friday 2026-11-27 17:30: half an hour left on Friday.
        let since = shanghai(11, 27, 17, 30);
        let timers = plan(
            &SlaPolicy::default(),
            &office(),
            None,
            &assigned(since),
            since,
        );
        let dues: Vec<_> = timers.iter().map(|timer| (timer.kind, timer.due)).collect();
        assert_eq!(
            dues,
            vec![
                // 30 min on Friday, 30 min on Monday.
                (TimerKind::Sla(0), shanghai(11, 30, 9, 30)),
                // 24 h = Fri 0.5 + Mon 9 + Tue 9 + Wed 5.5.
                (TimerKind::Sla(1), shanghai(12, 2, 14, 30)),
                // 48 h = 24 h + Wed 3.5 + Thu 9 + Fri 9 + Mon 2.5.
                (TimerKind::Sla(2), shanghai(12, 7, 11, 30)),
            ]
        );
    }

    #[test]
    fn the_first_response_stops_the_ladder_and_starts_the_cadence() {
        let since = shanghai(11, 23, 10, 0);
        let policy = SlaPolicy {
            cadence: Some(Cadence {
                recycle_after: Duration::days(7),
                warn_before: Duration::days(2),
            }),
            ..SlaPolicy::default()
        };
        let answered = shanghai(11, 23, 10, 20);
        let ownership = Ownership {
            first_response: Some(answered),
            last_activity: Some(answered),
            ..assigned(since)
        };
        let timers = plan(&policy, &office(), None, &ownership, answered);
        assert_eq!(
            timers,
            vec![
                Timer {
                    kind: TimerKind::RecycleWarning,
                    due: answered + Duration::days(5)
                },
                Timer {
                    kind: TimerKind::Recycle,
                    due: answered + Duration::days(7)
                },
            ]
        );
    }

    #[test]
    fn a_callback_reminds_and_holds_the_cadence_until_its_time() {
        let since = shanghai(11, 23, 10, 0);
        let policy = SlaPolicy {
            cadence: Some(Cadence {
                recycle_after: Duration::days(3),
                warn_before: Duration::days(1),
            }),
            ..SlaPolicy::default()
        };
        let callback = shanghai(11, 30, 15, 0);
        let ownership = Ownership {
            first_response: Some(since),
            last_activity: Some(since),
            callback: Some(callback),
            ..assigned(since)
        };
        let timers = plan(&policy, &office(), None, &ownership, since);
        assert_eq!(timers[0].kind, TimerKind::Callback);
        assert_eq!(timers[0].due, callback);
        assert_eq!(timers[2].kind, TimerKind::Recycle);
        assert_eq!(timers[2].due, callback + Duration::days(3));
    }

    #[test]
    fn a_claimed_lead_must_be_touched_and_is_protected_up_to_the_maximum() {
        let claimed = shanghai(11, 23, 10, 0);
        let protection = Protection {
            initial: Duration::days(3),
            extend: Duration::days(2),
            max: Duration::days(5),
        };
        let rules = ClaimRules {
            touch_within: Some(Duration::hours(4)),
            protection: Some(protection),
        };
        let ownership = Ownership {
            claimed: true,
            protected_until: Some(protection.start(claimed)),
            ..assigned(claimed)
        };
        let timers = plan(
            &SlaPolicy::default(),
            &office(),
            Some(&rules),
            &ownership,
            claimed,
        );
        assert_eq!(
            timers,
            vec![
                Timer {
                    kind: TimerKind::ClaimTouch,
                    due: claimed + Duration::hours(4)
                },
                Timer {
                    kind: TimerKind::ProtectionEnd,
                    due: claimed + Duration::days(3)
                },
            ]
        );
        // Activity on day 2 extends to day 4; on day 4 it would reach day 6, capped at day 5.
        let until = protection.extend(
            claimed,
            protection.start(claimed),
            claimed + Duration::days(2),
        );
        assert_eq!(until, claimed + Duration::days(4));
        let until = protection.extend(claimed, until, claimed + Duration::days(4));
        assert_eq!(until, claimed + Duration::days(5));
    }

    #[test]
    fn a_calendar_that_never_opens_sets_no_ladder() {
        let since = shanghai(11, 23, 10, 0);
        let closed = BusinessCalendar::new(chrono_tz::UTC, WeeklyHours::default());
        let timers = plan(
            &SlaPolicy::default(),
            &closed,
            None,
            &assigned(since),
            since,
        );
        assert!(timers.is_empty());
    }

    proptest::proptest! {
        /// The timer a lead stores is the first one of its whole plan, whatever the ladder,
        /// the lead's state and the calendar (office hours, or every day in another zone).
        #[test]
        fn the_next_timer_is_the_plans_first(
            minutes in proptest::collection::vec(0i64..20_000, 0..6),
            since in 0i64..(14 * 24 * 60),
            state in 0u8..64,
            office_hours: bool,
        ) {
            let since = shanghai(11, 23, 0, 0) + Duration::minutes(since);
            let policy = SlaPolicy {
                steps: minutes
                    .iter()
                    .map(|minutes| SlaStep {
                        after: Duration::minutes(*minutes),
                        action: SlaAction::Remind,
                    })
                    .collect(),
                cadence: (state & 1 == 1).then(|| Cadence {
                    recycle_after: Duration::hours(30),
                    warn_before: Duration::hours(2),
                }),
                hop_limit: 3,
            };
            let calendar = if office_hours {
                office()
            } else {
                let every_day = [
                    Weekday::Mon,
                    Weekday::Tue,
                    Weekday::Wed,
                    Weekday::Thu,
                    Weekday::Fri,
                    Weekday::Sat,
                    Weekday::Sun,
                ];
                let hours = [TimeRange::parse("08:00-20:00").expect("valid")];
                BusinessCalendar::new(chrono_tz::UTC, WeeklyHours::uniform(&every_day, &hours))
            };
            let claim = ClaimRules {
                touch_within: Some(Duration::hours(1)),
                protection: None,
            };
            let later = |hours| Some(since + Duration::hours(hours));
            let ownership = Ownership {
                since,
                claimed: state & 2 == 2,
                first_response: if state & 4 == 4 { later(1) } else { None },
                last_activity: if state & 8 == 8 { later(2) } else { None },
                callback: if state & 16 == 16 { later(3) } else { None },
                protected_until: if state & 32 == 32 { later(4) } else { None },
            };
            let now = since + Duration::minutes(30);
            let planned = plan(&policy, &calendar, Some(&claim), &ownership, now);
            proptest::prop_assert_eq!(
                next(&policy, &calendar, Some(&claim), &ownership, now),
                planned.first().copied()
            );
        }
    }

    #[test]
    fn durations_read_and_write() {
        assert_eq!(parse_duration("1h30m"), Ok(Duration::minutes(90)));
        assert_eq!(parse_duration("2d"), Ok(Duration::days(2)));
        assert_eq!(parse_duration("45s"), Ok(Duration::seconds(45)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("99999999999999999999h").is_err());
        assert!(parse_duration("4000d").is_err());
        assert_eq!(format_duration(Duration::minutes(90)), "1h30m");
        assert_eq!(format_duration(Duration::days(2)), "2d");
    }
}
