//! Business calendars: weekly hours in a time zone, holidays, and make-up workdays (调休), with
//! the business-time arithmetic SLA clocks need — is it open now, when does a deadline of N
//! business hours fall, how much business time lies between two instants.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::hours::{TimeRange, WeeklyHours};

/// How far the arithmetic looks for open time before giving up: a calendar with no open hours
/// in ten years has none.
const HORIZON_DAYS: i64 = 3660;

/// A team's business calendar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BusinessCalendar {
    pub zone: Tz,
    pub weekly: WeeklyHours,
    /// Days closed whatever the weekday.
    pub holidays: BTreeSet<NaiveDate>,
    /// Days open with `makeup_hours` whatever the weekday (调休).
    pub makeup_days: BTreeSet<NaiveDate>,
    pub makeup_hours: Vec<TimeRange>,
}

impl BusinessCalendar {
    /// A calendar with the same hours on the given weekdays and no exceptions.
    pub fn new(zone: Tz, weekly: WeeklyHours) -> BusinessCalendar {
        let makeup_hours = weekly
            .days
            .iter()
            .find(|day| !day.is_empty())
            .cloned()
            .unwrap_or_default();
        BusinessCalendar {
            zone,
            weekly,
            holidays: BTreeSet::new(),
            makeup_days: BTreeSet::new(),
            makeup_hours,
        }
    }

    /// The open spans that start on a local date, as instants. A span crossing midnight
    /// belongs to the day it starts on.
    fn spans(&self, date: NaiveDate) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let ranges: &[TimeRange] = if self.holidays.contains(&date) {
            &[]
        } else if self.makeup_days.contains(&date) {
            &self.makeup_hours
        } else {
            self.weekly.on(date.weekday())
        };
        ranges
            .iter()
            .filter_map(|range| {
                let start = self.instant(date, range.start)?;
                let end_date = if range.end <= range.start {
                    date.succ_opt()?
                } else {
                    date
                };
                let end = self.instant(end_date, range.end)?;
                (start < end).then_some((start, end))
            })
            .collect()
    }

    /// A local date and minute of day as an instant; in a DST gap the first valid instant
    /// after it, in a fold the earlier one.
    fn instant(&self, date: NaiveDate, minute: u16) -> Option<DateTime<Utc>> {
        let local: NaiveDateTime =
            date.and_hms_opt(0, 0, 0)? + Duration::minutes(i64::from(minute));
        match self.zone.from_local_datetime(&local) {
            LocalResult::Single(time) => Some(time.with_timezone(&Utc)),
            LocalResult::Ambiguous(earlier, _) => Some(earlier.with_timezone(&Utc)),
            LocalResult::None => {
                let later = local + Duration::hours(1);
                self.zone
                    .from_local_datetime(&later)
                    .earliest()
                    .map(|time| time.with_timezone(&Utc))
            }
        }
    }

    /// Open spans in time order that end after `from`, starting the day before `from` (to
    /// catch a night span still running).
    fn spans_from(
        &self,
        from: DateTime<Utc>,
    ) -> impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>)> + '_ {
        let first = from
            .with_timezone(&self.zone)
            .date_naive()
            .pred_opt()
            .unwrap_or(NaiveDate::MIN);
        (0..HORIZON_DAYS)
            .filter_map(move |offset| first.checked_add_signed(Duration::days(offset)))
            .flat_map(move |date| self.spans(date))
            .filter(move |(_, end)| *end > from)
    }

    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        self.spans_from(at)
            .take_while(|(start, _)| *start <= at)
            .any(|(start, end)| start <= at && at < end)
    }

    /// The instant `business` of open time after `start`. A deadline that lands exactly on a
    /// closing time is that closing time. `None` when the calendar never opens.
    pub fn add(&self, start: DateTime<Utc>, business: Duration) -> Option<DateTime<Utc>> {
        let mut left = business;
        if left <= Duration::zero() {
            return Some(start);
        }
        for (span_start, span_end) in self.spans_from(start) {
            let from = span_start.max(start);
            let available = span_end - from;
            if available >= left {
                return Some(from + left);
            }
            left -= available;
        }
        None
    }

    /// Open time between two instants (zero if `to` is not after `from`).
    pub fn between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
        if to <= from {
            return Duration::zero();
        }
        let mut total = Duration::zero();
        for (span_start, span_end) in self.spans_from(from) {
            if span_start >= to {
                break;
            }
            total += span_end.min(to) - span_start.max(from);
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use chrono::Weekday;

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date")
    }

    /// Shanghai, Monday to Friday 09:00–12:00 and 13:00–18:00; 2026-10-01…07 National Day
    /// holidays with Sunday 2026-09-27 and Saturday 2026-10-10 as make-up workdays.
    fn shanghai() -> BusinessCalendar {
        let weekdays = [
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
        ];
        let hours = [
            TimeRange::parse("09:00-12:00").expect("range"),
            TimeRange::parse("13:00-18:00").expect("range"),
        ];
        let mut calendar = BusinessCalendar::new(
            chrono_tz::Asia::Shanghai,
            WeeklyHours::uniform(&weekdays, &hours),
        );
        for date in 1..=7 {
            calendar.holidays.insert(day(&format!("2026-10-{date:02}")));
        }
        calendar.makeup_days.insert(day("2026-09-27"));
        calendar.makeup_days.insert(day("2026-10-10"));
        calendar
    }

    /// `start + hours of business time` must be `expected` (all RFC 3339 with offsets).
    fn check(calendar: &BusinessCalendar, start: &str, minutes: i64, expected: &str) {
        let deadline = calendar
            .add(at(start), Duration::minutes(minutes))
            .expect("deadline");
        assert_eq!(deadline, at(expected), "{start} + {minutes} min");
        assert_eq!(
            calendar.between(at(start), deadline),
            Duration::minutes(minutes),
            "between {start} and {expected}"
        );
    }

    #[test]
    fn deadlines_skip_nights_lunch_and_weekends() {
        let calendar = shanghai();
        // Inside hours, across lunch.
        check(
            &calendar,
            "2026-11-24T11:30:00+08:00",
            60,
            "2026-11-24T13:30:00+08:00",
        );
        // Arrives at night: the clock starts at 09:00.
        check(
            &calendar,
            "2026-11-24T22:00:00+08:00",
            60,
            "2026-11-25T10:00:00+08:00",
        );
        // Friday evening to Monday.
        check(
            &calendar,
            "2026-11-27T17:00:00+08:00",
            120,
            "2026-11-30T10:00:00+08:00",
        );
        // A 24 business-hour escalation spans three days (8 open hours a day).
        check(
            &calendar,
            "2026-11-24T10:00:00+08:00",
            24 * 60,
            "2026-11-27T10:00:00+08:00",
        );
        // Starting exactly at closing time counts nothing until the next opening.
        check(
            &calendar,
            "2026-11-24T18:00:00+08:00",
            30,
            "2026-11-25T09:30:00+08:00",
        );
        // A deadline that uses up the day ends at the closing time itself.
        check(
            &calendar,
            "2026-11-24T17:00:00+08:00",
            60,
            "2026-11-24T18:00:00+08:00",
        );
    }

    #[test]
    fn holidays_close_and_make_up_workdays_open() {
        let calendar = shanghai();
        // Wednesday 2026-09-30 evening: the holiday week is closed, Thursday 10-08 opens.
        check(
            &calendar,
            "2026-09-30T17:30:00+08:00",
            60,
            "2026-10-08T09:30:00+08:00",
        );
        // Saturday 2026-10-10 is a make-up workday.
        check(
            &calendar,
            "2026-10-09T17:30:00+08:00",
            60,
            "2026-10-10T09:30:00+08:00",
        );
        assert!(
            calendar.is_open(at("2026-09-27T10:00:00+08:00")),
            "make-up Sunday"
        );
        assert!(
            !calendar.is_open(at("2026-10-05T10:00:00+08:00")),
            "holiday Monday"
        );
        assert!(
            !calendar.is_open(at("2026-11-28T10:00:00+08:00")),
            "ordinary Saturday"
        );
        assert!(!calendar.is_open(at("2026-11-24T12:30:00+08:00")), "lunch");
    }

    #[test]
    fn other_zones_and_daylight_saving_are_respected() {
        let weekdays = [
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
        ];
        let hours = [TimeRange::parse("09:00-17:00").expect("range")];
        let berlin = BusinessCalendar::new(
            chrono_tz::Europe::Berlin,
            WeeklyHours::uniform(&weekdays, &hours),
        );
        // 16:00 Shanghai on Tuesday is 09:00 Berlin.
        check(
            &berlin,
            "2026-11-24T16:00:00+08:00",
            60,
            "2026-11-24T10:00:00+01:00",
        );
        // Across the spring change (Sunday 2026-03-29): Friday 16:30 CET + 1 h = Monday 09:30 CEST.
        check(
            &berlin,
            "2026-03-27T16:30:00+01:00",
            60,
            "2026-03-30T09:30:00+02:00",
        );
        let night = BusinessCalendar::new(
            chrono_tz::America::New_York,
            WeeklyHours::uniform(
                &[Weekday::Mon],
                &[TimeRange::parse("22:00-06:00").expect("range")],
            ),
        );
        // A night shift that starts on Monday runs into Tuesday morning.
        check(
            &night,
            "2026-11-23T23:00:00-05:00",
            120,
            "2026-11-24T01:00:00-05:00",
        );
        assert!(night.is_open(at("2026-11-24T05:59:00-05:00")));
    }

    #[test]
    fn a_calendar_that_never_opens_has_no_deadline() {
        let closed = BusinessCalendar::new(chrono_tz::Asia::Shanghai, WeeklyHours::default());
        assert_eq!(
            closed.add(at("2026-11-24T10:00:00+08:00"), Duration::hours(1)),
            None
        );
        assert_eq!(
            closed.between(
                at("2026-11-24T10:00:00+08:00"),
                at("2026-12-24T10:00:00+08:00")
            ),
            Duration::zero()
        );
    }
}
