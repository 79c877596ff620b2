//! Clock math in a time zone: times of day, weekly hours, and the local "now" of a zone with
//! the day / week / month periods that caps count in.

use std::fmt;

use chrono::{DateTime, Datelike, Days, NaiveDate, Timelike, Utc, Weekday};
use chrono_tz::Tz;

/// A span of the day in minutes since midnight, `start` inclusive, `end` exclusive. A span
/// whose end is not after its start crosses midnight (`22:00-06:00`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimeRange {
    pub start: u16,
    pub end: u16,
}

impl TimeRange {
    /// Parses `HH:MM-HH:MM`; `24:00` is allowed as an end.
    pub fn parse(text: &str) -> Result<TimeRange, String> {
        let error = || format!("expected a time range such as 09:00-18:00, got {text:?}");
        let (start, end) = text.split_once('-').ok_or_else(error)?;
        let start = parse_minute(start.trim()).ok_or_else(error)?;
        let end = parse_minute(end.trim()).ok_or_else(error)?;
        if start == end || start >= 24 * 60 {
            return Err(error());
        }
        Ok(TimeRange { start, end })
    }

    pub fn contains(self, minute: u16) -> bool {
        if self.start < self.end {
            (self.start..self.end).contains(&minute)
        } else {
            minute >= self.start || minute < self.end
        }
    }
}

fn parse_minute(text: &str) -> Option<u16> {
    let (hours, minutes) = text.split_once(':')?;
    if hours.len() != 2 || minutes.len() != 2 {
        return None;
    }
    let hours: u16 = hours.parse().ok()?;
    let minutes: u16 = minutes.parse().ok()?;
    (minutes < 60 && (hours < 24 || (hours == 24 && minutes == 0))).then_some(hours * 60 + minutes)
}

impl fmt::Display for TimeRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}–{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

/// Parses `mon`…`sun` (or full English names).
pub fn parse_weekday(text: &str) -> Option<Weekday> {
    Some(match text.to_ascii_lowercase().as_str() {
        "mon" | "monday" => Weekday::Mon,
        "tue" | "tuesday" => Weekday::Tue,
        "wed" | "wednesday" => Weekday::Wed,
        "thu" | "thursday" => Weekday::Thu,
        "fri" | "friday" => Weekday::Fri,
        "sat" | "saturday" => Weekday::Sat,
        "sun" | "sunday" => Weekday::Sun,
        _ => return None,
    })
}

/// Parses an IANA time zone name such as `Asia/Shanghai`.
pub fn parse_time_zone(text: &str) -> Result<Tz, String> {
    text.parse::<Tz>().map_err(|_| {
        format!("unknown time zone {text:?}, expected an IANA name such as Asia/Shanghai")
    })
}

/// Working hours for each weekday, Monday first. An empty day is a day off.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct WeeklyHours {
    pub days: [Vec<TimeRange>; 7],
}

impl WeeklyHours {
    /// The same hours on the given weekdays.
    pub fn uniform(weekdays: &[Weekday], ranges: &[TimeRange]) -> WeeklyHours {
        let mut hours = WeeklyHours::default();
        for weekday in weekdays {
            hours.days[weekday.num_days_from_monday() as usize] = ranges.to_vec();
        }
        hours
    }

    /// Whether the local moment is inside the hours. A span crossing midnight belongs to the
    /// day it starts on.
    pub fn contains(&self, local: &LocalNow) -> bool {
        let today = &self.days[local.weekday.num_days_from_monday() as usize];
        let yesterday = &self.days[local.weekday.pred().num_days_from_monday() as usize];
        today.iter().any(|range| {
            if range.start < range.end {
                range.contains(local.minute)
            } else {
                local.minute >= range.start
            }
        }) || yesterday
            .iter()
            .any(|range| range.start >= range.end && local.minute < range.end)
    }

    /// The spans of one weekday, for explanations.
    pub fn on(&self, weekday: Weekday) -> &[TimeRange] {
        &self.days[weekday.num_days_from_monday() as usize]
    }
}

/// `now` seen from one time zone, with the starts of the periods caps are counted in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalNow {
    pub date: NaiveDate,
    pub weekday: Weekday,
    pub minute: u16,
    pub week_start: NaiveDate,
    pub month_start: NaiveDate,
}

impl LocalNow {
    pub fn new(now: DateTime<Utc>, zone: Tz) -> LocalNow {
        let local = now.with_timezone(&zone);
        let date = local.date_naive();
        let weekday = date.weekday();
        LocalNow {
            date,
            weekday,
            minute: (local.hour() * 60 + local.minute()) as u16,
            week_start: date
                .checked_sub_days(Days::new(u64::from(weekday.num_days_from_monday())))
                .unwrap_or(date),
            month_start: date.with_day(1).unwrap_or(date),
        }
    }

    pub fn period_start(&self, period: Period) -> NaiveDate {
        match period {
            Period::Day => self.date,
            Period::Week => self.week_start,
            Period::Month => self.month_start,
        }
    }
}

/// The calendar periods that caps, floors and fair share count in. Weeks start on Monday.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Period {
    Day,
    Week,
    Month,
}

impl Period {
    pub fn parse(text: &str) -> Option<Period> {
        Some(match text {
            "day" => Period::Day,
            "week" => Period::Week,
            "month" => Period::Month,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(weekday_date: &str, minute: u16) -> LocalNow {
        let date = NaiveDate::parse_from_str(weekday_date, "%Y-%m-%d").expect("date");
        LocalNow {
            date,
            weekday: date.weekday(),
            minute,
            week_start: date,
            month_start: date,
        }
    }

    #[test]
    fn a_night_shift_belongs_to_the_day_it_starts() {
        let night = TimeRange::parse("22:00-06:00").expect("range");
        let hours = WeeklyHours::uniform(&[Weekday::Mon], &[night]);
        // 2026-11-23 is a Monday.
        assert!(hours.contains(&local("2026-11-23", 23 * 60)));
        assert!(hours.contains(&local("2026-11-24", 5 * 60)));
        assert!(!hours.contains(&local("2026-11-24", 23 * 60)));
        assert!(!hours.contains(&local("2026-11-23", 5 * 60)));
    }

    #[test]
    fn time_ranges_reject_nonsense() {
        for bad in ["9-18", "09:00", "25:00-26:00", "09:00-09:00", "09:60-10:00"] {
            assert!(TimeRange::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            TimeRange::parse("09:00-24:00").expect("range"),
            TimeRange {
                start: 540,
                end: 1440
            }
        );
    }

    #[test]
    fn periods_start_on_monday_and_the_first_in_the_rep_zone() {
        // 2026-11-29 16:30 UTC is Monday 2026-11-30 00:30 in Shanghai.
        let now = DateTime::parse_from_rfc3339("2026-11-29T16:30:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let shanghai = LocalNow::new(now, chrono_tz::Asia::Shanghai);
        assert_eq!(shanghai.weekday, Weekday::Mon);
        assert_eq!(shanghai.week_start.to_string(), "2026-11-30");
        assert_eq!(shanghai.month_start.to_string(), "2026-11-01");
        let london = LocalNow::new(now, chrono_tz::Europe::London);
        assert_eq!(london.week_start.to_string(), "2026-11-23");
    }
}
