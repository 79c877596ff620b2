//! The team digest (公开透明：在团队群里公布跟进数据和榜单): at the time a channel names, each
//! of its teams gets a summary of the day or week — leads in, first response, SLA, wins, the
//! leaderboard, the quickest responders and who has overdue leads now — as an outbox event the
//! channel alone receives, in both languages (the channel picks its own). A day's digest covers
//! the 24 hours before its time, a week's the seven days before. The figures are the
//! dashboard's (`crate::reports`). A digest is recorded with its events in one transaction, so
//! it goes out once however many instances run.

use chrono::{DateTime, Datelike, TimeZone, Utc};
use serde_json::json;
use store::{OutboxRow, Setting};

use super::channel::{ChannelDocument, DigestDocument};
use crate::AppState;
use crate::console::i18n::{Lang, Tr};
use crate::error::ApiResult;
use crate::reports::{self, Figures};

/// A digest more than this late (the service was down at its time) is skipped, not sent.
const STALE_HOURS: i64 = 12;

/// The digest time at or before `now` (in `zone`), in microseconds.
pub fn last_slot(digest: &DigestDocument, now: DateTime<Utc>, zone: chrono_tz::Tz) -> Option<i64> {
    let time = digest.time().ok()?;
    let local = now.with_timezone(&zone);
    let mut date = local.date_naive();
    if digest.every == "week" {
        let back = (7 + local.weekday().num_days_from_monday()
            - digest.weekday().num_days_from_monday())
            % 7;
        date -= chrono::Duration::days(i64::from(back));
    }
    let at = |date: chrono::NaiveDate| {
        zone.from_local_datetime(&date.and_time(time))
            .earliest()
            .map(|at| at.with_timezone(&Utc))
    };
    let mut slot = at(date)?;
    if slot > now {
        let step = if digest.every == "week" { 7 } else { 1 };
        slot = at(date - chrono::Duration::days(step))?;
    }
    Some(slot.timestamp_micros())
}

/// Writes the digests due at `now` that nobody has sent yet; returns how many channels got one.
pub async fn run_due(app: &AppState, now: DateTime<Utc>) -> ApiResult<usize> {
    let channels: Vec<(String, i64, ChannelDocument)> = app
        .store
        .list_settings(Setting::Channels)
        .await?
        .into_iter()
        .filter_map(|row| {
            let channel: ChannelDocument = serde_json::from_str(&row.document).ok()?;
            (channel.enabled() && channel.digest.is_some()).then_some((
                row.id,
                row.updated_at,
                channel,
            ))
        })
        .collect();
    if channels.is_empty() {
        return Ok(0);
    }
    let zone = reports::workspace_zone(app).await;
    let teams = app.store.list_teams().await?;
    let mut sent = 0;
    for (id, changed_at, channel) in channels {
        let Some(digest) = &channel.digest else {
            continue;
        };
        let Some(slot) = last_slot(digest, now, zone) else {
            continue;
        };
        // A schedule set (or a channel changed) after its time starts at the next one, not at
        // once; a digest the service was down for too long is skipped.
        if slot < changed_at || now.timestamp_micros() - slot > STALE_HOURS * 3_600_000_000 {
            continue;
        }
        let slot_time = DateTime::from_timestamp_micros(slot).unwrap_or(now);
        let days = if digest.every == "week" { 7 } else { 1 };
        let mut events = Vec::new();
        for team in teams
            .iter()
            .filter(|team| channel.teams.is_empty() || channel.teams.contains(&team.id))
        {
            let members = crate::api::access::members(app, std::slice::from_ref(&team.id)).await?;
            // The day (or week) before its time, up to now: a digest at 00:00 covers the day
            // that just ended, one at 18:00 the last 24 hours.
            let mut window = reports::window(days, Some(team.id.clone()), now, zone);
            window.from = slot - days * reports::DAY_MICROS;
            let figures = reports::figures(app, window, days, Some(&members)).await?;
            let link = format!(
                "{}/?team={}&days={}",
                app.notifier.public_url(),
                url::form_urlencoded::byte_serialize(team.id.as_bytes()).collect::<String>(),
                if days == 1 { 7 } else { days }
            );
            let date = slot_time.with_timezone(&zone).date_naive();
            let message = |lang: Lang| {
                let (title, lines) = words(Tr { lang }, &team.name, &digest.every, date, &figures);
                json!({"title": title, "lines": lines, "link": link})
            };
            events.push(OutboxRow {
                id: uuid::Uuid::now_v7().to_string(),
                event: "team.digest".into(),
                lead_id: None,
                rep_id: None,
                recipients: "[]".into(),
                payload: json!({
                    "for_channel": id,
                    "team_id": team.id,
                    "every": digest.every,
                    "from": crate::leads::time(figures.window.from),
                    "to": crate::leads::time(slot),
                    "leads_in": figures.leads_in,
                    "won": figures.won,
                    "amount": figures.amount,
                    "zh": message(Lang::Zh),
                    "en": message(Lang::En),
                })
                .to_string(),
                created_at: now.timestamp_micros(),
                status: "pending".into(),
            });
        }
        if events.is_empty() {
            continue;
        }
        if app
            .store
            .record_digest(&id, slot, now.timestamp_micros(), &events)
            .await?
        {
            sent += 1;
        }
    }
    Ok(sent)
}

/// The digest in one language: a title and its lines.
fn words(
    t: Tr,
    team: &str,
    every: &str,
    date: chrono::NaiveDate,
    figures: &Figures,
) -> (String, Vec<String>) {
    use crate::console::dashboard::{duration_text, money};
    let dash = || "–".to_owned();
    let title = t
        .t(if every == "week" {
            "digest_weekly"
        } else {
            "digest_daily"
        })
        .replace("{team}", team)
        .replace("{date}", &date.format("%Y-%m-%d").to_string());
    let mut lines = vec![
        t.t("digest_totals")
            .replace("{in}", &figures.leads_in.to_string())
            .replace("{assigned}", &figures.assigned.to_string())
            .replace(
                "{p50}",
                &figures.p50.map_or_else(dash, |s| duration_text(&t, s)),
            )
            .replace(
                "{sla}",
                &figures
                    .sla_met
                    .map_or_else(dash, |v| format!("{:.0}%", v * 100.0)),
            ),
        t.t("digest_won")
            .replace("{won}", &figures.won.to_string())
            .replace("{amount}", &money(figures.amount)),
    ];
    let mut winners: Vec<&reports::RepFigures> = figures
        .reps
        .iter()
        .filter(|rep| rep.won_closed > 0)
        .collect();
    winners.sort_by(|a, b| {
        b.amount_closed
            .total_cmp(&a.amount_closed)
            .then(b.won_closed.cmp(&a.won_closed))
    });
    lines.push(if winners.is_empty() {
        t.t("digest_no_wins").to_owned()
    } else {
        let board: Vec<String> = winners
            .iter()
            .take(3)
            .enumerate()
            .map(|(place, rep)| {
                t.t("digest_winner")
                    .replace("{place}", &(place + 1).to_string())
                    .replace("{name}", &rep.name)
                    .replace("{won}", &rep.won_closed.to_string())
                    .replace("{amount}", &money(rep.amount_closed))
            })
            .collect();
        format!("{}{}", t.t("digest_board"), board.join(" · "))
    });
    let mut quick: Vec<&reports::RepFigures> = figures
        .reps
        .iter()
        .filter(|rep| rep.p50.is_some())
        .collect();
    quick.sort_by_key(|rep| rep.p50);
    if !quick.is_empty() {
        let names: Vec<String> = quick
            .iter()
            .take(3)
            .map(|rep| {
                format!(
                    "{} {}",
                    rep.name,
                    rep.p50.map_or_else(dash, |s| duration_text(&t, s))
                )
            })
            .collect();
        lines.push(format!("{}{}", t.t("digest_quickest"), names.join(" · ")));
    }
    let mut late: Vec<&reports::RepFigures> =
        figures.reps.iter().filter(|rep| rep.overdue > 0).collect();
    late.sort_by(|a, b| b.overdue.cmp(&a.overdue).then(a.name.cmp(&b.name)));
    lines.push(if late.is_empty() {
        t.t("digest_none_overdue").to_owned()
    } else {
        let names: Vec<String> = late
            .iter()
            .map(|rep| format!("{} {}", rep.name, rep.overdue))
            .collect();
        format!("{}{}", t.t("digest_overdue"), names.join(" · "))
    });
    (title, lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(every: &str, at: &str, weekday: Option<&str>) -> DigestDocument {
        DigestDocument {
            every: every.into(),
            at: at.into(),
            weekday: weekday.map(str::to_owned),
        }
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn a_daily_digest_goes_out_at_its_local_time() {
        let zone = chrono_tz::Asia::Shanghai;
        // 19:00 in Shanghai: today's 18:00 has passed.
        let slot = last_slot(
            &digest("day", "18:00", None),
            utc("2026-11-30T11:00:00Z"),
            zone,
        );
        assert_eq!(slot, Some(utc("2026-11-30T10:00:00Z").timestamp_micros()));
        // 17:00 there: yesterday's.
        let slot = last_slot(
            &digest("day", "18:00", None),
            utc("2026-11-30T09:00:00Z"),
            zone,
        );
        assert_eq!(slot, Some(utc("2026-11-29T10:00:00Z").timestamp_micros()));
    }

    #[test]
    fn a_weekly_digest_goes_out_on_its_weekday() {
        let zone = chrono_tz::Asia::Shanghai;
        // Monday 2026-11-30, 10:00 in Shanghai: this Monday's 09:00 has passed.
        let monday = digest("week", "09:00", Some("mon"));
        let slot = last_slot(&monday, utc("2026-11-30T02:00:00Z"), zone);
        assert_eq!(slot, Some(utc("2026-11-30T01:00:00Z").timestamp_micros()));
        // Friday's digest, asked on Monday: last Friday's.
        let friday = digest("week", "17:30", Some("fri"));
        let slot = last_slot(&friday, utc("2026-11-30T02:00:00Z"), zone);
        assert_eq!(slot, Some(utc("2026-11-27T09:30:00Z").timestamp_micros()));
    }
}
