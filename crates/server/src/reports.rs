//! The figures a manager watches, computed once for every place that shows them: the
//! console's dashboard and scorecards (with their exports) and the digest a team's group chat
//! gets. The database aggregates (`store::Store::dashboard`); this puts the rows together per
//! rep and per day.

use std::collections::HashMap;

use chrono::{Offset, TimeZone};
use store::DashboardWindow;

use crate::AppState;
use crate::api::access;
use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::ops::Operation;

/// Open leads nobody touched for this many days count as untouched.
pub const UNTOUCHED_DAYS: i64 = 3;

pub const DAY_MICROS: i64 = 86_400_000_000;

pub fn percentile(sorted: &[i64], fraction: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted.get(index).copied()
}

pub fn percent(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// One rep's row.
#[derive(Clone, Debug, Default)]
pub struct RepFigures {
    pub id: String,
    pub name: String,
    /// Paused, on leave or inactive now: not given new leads, no target share.
    pub away: bool,
    pub weight: f64,
    /// The window's leads they were given at some point.
    pub handled: i64,
    /// The window's leads they own now.
    pub owned: i64,
    pub open: i64,
    pub overdue: i64,
    pub untouched: i64,
    /// Average days since each open lead was last touched.
    pub idle_days: Option<f64>,
    pub p50: Option<i64>,
    pub p90: Option<i64>,
    pub sla_met: Option<f64>,
    /// Follow-ups per lead handled.
    pub depth: Option<f64>,
    /// Won in the window, whenever the leads came in (the leaderboard's count).
    pub won_closed: i64,
    pub amount_closed: f64,
    pub nps: Option<f64>,
    pub csat: Option<f64>,
}

/// One day of the trend.
#[derive(Clone, Debug)]
pub struct DayFigures {
    pub date: chrono::NaiveDate,
    pub leads: i64,
    pub p50: Option<i64>,
}

/// Everything the dashboard, its exports, a scorecard and the digest show, computed once.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    pub window: DashboardWindow,
    pub days: i64,
    pub leads_in: i64,
    pub assigned: i64,
    pub held: i64,
    pub pooled: i64,
    pub p50: Option<i64>,
    pub p90: Option<i64>,
    pub sla_met: Option<f64>,
    pub reclaims: i64,
    pub overdue: i64,
    pub untouched: i64,
    pub trend: Vec<DayFigures>,
    /// new → contacted → qualified → won, and lost.
    pub funnel: [i64; 5],
    pub reps: Vec<RepFigures>,
    pub by_source: Vec<store::Conversion>,
    pub by_rule: Vec<store::Conversion>,
    pub nps: Option<f64>,
    pub csat: Option<f64>,
    pub won: i64,
    pub amount: f64,
}

/// NPS from promoters and detractors, as a number from -100 to 100.
fn nps(rows: &[&store::FeedbackFigures]) -> Option<f64> {
    let (answers, promoters, detractors) = rows
        .iter()
        .filter(|row| row.kind == "nps")
        .fold((0, 0, 0), |(a, p, d), row| {
            (a + row.answers, p + row.promoters, d + row.detractors)
        });
    (answers > 0).then(|| (promoters - detractors) as f64 * 100.0 / answers as f64)
}

/// Average satisfaction, 1–5.
fn csat(rows: &[&store::FeedbackFigures]) -> Option<f64> {
    let (answers, total) = rows
        .iter()
        .filter(|row| row.kind == "csat")
        .fold((0, 0), |(a, t), row| (a + row.answers, t + row.total));
    (answers > 0).then(|| total as f64 / answers as f64)
}

/// The window of the last `days` days up to `now`, days counted in `zone`.
pub fn window(
    days: i64,
    team: Option<String>,
    now: chrono::DateTime<chrono::Utc>,
    zone: chrono_tz::Tz,
) -> DashboardWindow {
    let offset = zone
        .offset_from_utc_datetime(&now.naive_utc())
        .fix()
        .local_minus_utc() as i64
        * 1_000_000;
    let micros = now.timestamp_micros();
    // Whole days: from the start of the first day in the viewer's zone.
    let local_today = (micros + offset).div_euclid(DAY_MICROS) * DAY_MICROS - offset;
    DashboardWindow {
        from: local_today - (days - 1) * DAY_MICROS,
        to: micros + 1,
        team,
        owner: None,
        day_offset: offset,
        now: micros,
        idle_before: micros - UNTOUCHED_DAYS * DAY_MICROS,
    }
}

/// The figures of a window, for the reps in `members` (all reps when `None`).
pub async fn figures(
    app: &AppState,
    window: DashboardWindow,
    days: i64,
    members: Option<&[String]>,
) -> ApiResult<Figures> {
    let data = app.store.dashboard(&window).await?;
    let reps = app.store.list_reps().await?;
    let today = chrono::DateTime::from_timestamp_micros(window.now + window.day_offset)
        .unwrap_or_default()
        .date_naive()
        .to_string();
    let by = |rows: &[store::KeyCount]| -> HashMap<String, i64> {
        rows.iter()
            .map(|row| (row.key.clone(), row.count))
            .collect()
    };
    let (handled, missed_by, activities) =
        (by(&data.handled), by(&data.missed_by), by(&data.activities));
    let owned: HashMap<&str, &store::OwnerFigures> = data
        .by_owner
        .iter()
        .map(|row| (row.owner_id.as_str(), row))
        .collect();
    let closed: HashMap<&str, &store::OwnerFigures> = data
        .leaderboard
        .iter()
        .map(|row| (row.owner_id.as_str(), row))
        .collect();
    let open: HashMap<&str, &store::OpenFigures> = data
        .open
        .iter()
        .map(|row| (row.owner_id.as_str(), row))
        .collect();
    let mut responses: HashMap<&str, Vec<i64>> = HashMap::new();
    let mut per_day: HashMap<i64, Vec<i64>> = HashMap::new();
    for response in &data.responses {
        if let Some(owner) = &response.owner_id {
            responses.entry(owner).or_default().push(response.secs);
        }
        per_day.entry(response.day).or_default().push(response.secs);
    }
    let mut list = Vec::new();
    for row in &reps {
        if members.is_some_and(|members| !members.contains(&row.id)) {
            continue;
        }
        let document: crate::workspace::RepDocument =
            serde_json::from_str(&row.document).unwrap_or_default();
        let on_leave = document
            .leaves
            .iter()
            .any(|leave| leave.from <= today && today <= leave.until);
        let id = row.id.as_str();
        let handled = handled.get(id).copied().unwrap_or(0);
        let open_now = open.get(id);
        let times = responses.get(id).map(Vec::as_slice).unwrap_or(&[]);
        let feedback: Vec<&store::FeedbackFigures> = data
            .feedback
            .iter()
            .filter(|f| f.rep_id.as_deref() == Some(id))
            .collect();
        let figures = RepFigures {
            id: row.id.clone(),
            name: row.name.clone(),
            away: row.status != "active" || on_leave,
            weight: document.weight.unwrap_or(1.0),
            handled,
            owned: owned.get(id).map_or(0, |o| o.assigned),
            open: open_now.map_or(0, |o| o.open),
            overdue: open_now.map_or(0, |o| o.overdue),
            untouched: open_now.map_or(0, |o| o.untouched),
            idle_days: open_now
                .filter(|o| o.open > 0)
                .map(|o| o.idle_days / o.open as f64),
            p50: percentile(times, 0.5),
            p90: percentile(times, 0.9),
            sla_met: percent(
                handled - missed_by.get(id).copied().unwrap_or(0).min(handled),
                handled,
            ),
            depth: (handled > 0)
                .then(|| activities.get(id).copied().unwrap_or(0) as f64 / handled as f64),
            won_closed: closed.get(id).map_or(0, |o| o.won),
            amount_closed: closed.get(id).map_or(0.0, |o| o.amount),
            nps: nps(&feedback),
            csat: csat(&feedback),
        };
        // Reps with nothing in the window and nothing open are left out, unless still active.
        let idle = figures.handled == 0 && figures.open == 0 && figures.won_closed == 0;
        if idle && row.status == "inactive" {
            continue;
        }
        list.push(figures);
    }
    list.sort_by(|a, b| b.handled.cmp(&a.handled).then(a.name.cmp(&b.name)));
    let first_day = (window.from + window.day_offset).div_euclid(DAY_MICROS);
    let counts: HashMap<i64, i64> = data.days.iter().map(|d| (d.day, d.count)).collect();
    let trend = (0..days)
        .map(|index| {
            let day = first_day + index;
            let mut times = per_day.remove(&day).unwrap_or_default();
            times.sort_unstable();
            DayFigures {
                date: chrono::DateTime::from_timestamp(day * 86_400, 0)
                    .unwrap_or_default()
                    .date_naive(),
                leads: counts.get(&day).copied().unwrap_or(0),
                p50: percentile(&times, 0.5),
            }
        })
        .collect();
    let count = |statuses: &[&str]| -> i64 {
        data.funnel
            .iter()
            .filter(|row| statuses.contains(&row.status.as_str()))
            .map(|row| row.leads)
            .sum()
    };
    // Contacted: answered at some point, or at a later stage.
    let answered_elsewhere: i64 = data
        .funnel
        .iter()
        .filter(|row| !["contacted", "qualified", "won"].contains(&row.status.as_str()))
        .map(|row| row.responded)
        .sum();
    let all: Vec<i64> = data.responses.iter().map(|r| r.secs).collect();
    let feedback: Vec<&store::FeedbackFigures> = data.feedback.iter().collect();
    Ok(Figures {
        days,
        leads_in: data.leads_in,
        assigned: data.assigned,
        held: data.held,
        pooled: data.pooled,
        p50: percentile(&all, 0.5),
        p90: percentile(&all, 0.9),
        sla_met: percent(data.clocked - data.missed, data.clocked),
        reclaims: data.reclaims,
        overdue: list.iter().map(|rep| rep.overdue).sum(),
        untouched: list.iter().map(|rep| rep.untouched).sum(),
        trend,
        funnel: [
            data.leads_in,
            count(&["contacted", "qualified", "won"]) + answered_elsewhere,
            count(&["qualified", "won"]),
            count(&["won"]),
            count(&["lost"]),
        ],
        won: list.iter().map(|rep| rep.won_closed).sum(),
        amount: list.iter().map(|rep| rep.amount_closed).sum(),
        reps: list,
        by_source: data.by_source,
        by_rule: data.by_rule,
        nps: nps(&feedback),
        csat: csat(&feedback),
        window,
    })
}

/// The active rule set's rules by id: their names (the id where a rule has none), for words
/// about which rule routed a lead.
pub async fn active_rule_names(store: &store::Store) -> HashMap<String, String> {
    let Ok(Some(row)) = store.active_rule_set().await else {
        return HashMap::new();
    };
    let document: serde_json::Value = serde_json::from_str(&row.document).unwrap_or_default();
    document["rules"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|rule| {
            let id = rule["id"].as_str()?.to_owned();
            let name = rule["name"]
                .as_str()
                .filter(|name| !name.is_empty())
                .unwrap_or(&id)
                .to_owned();
            Some((id, name))
        })
        .collect()
}

/// The teams whose figures the caller may read, by name: every team for admins and reporting,
/// a manager's own.
pub async fn teams_in_reach(app: &AppState, caller: &Caller) -> ApiResult<Vec<(String, String)>> {
    let mut teams: Vec<(String, String)> = app
        .store
        .list_teams()
        .await?
        .into_iter()
        .map(|row| (row.id, row.name))
        .collect();
    teams.sort_by(|a, b| a.1.cmp(&b.1));
    if caller.role == Role::Manager {
        teams.retain(|(id, _)| caller.teams.contains(id));
    }
    Ok(teams)
}

/// The workspace's zone, where days start: the default calendar's, else Shanghai.
pub async fn workspace_zone(app: &AppState) -> chrono_tz::Tz {
    if let Ok(Some(row)) = app
        .store
        .get_setting(store::Setting::Calendars, "default")
        .await
        && let Some(zone) = serde_json::from_str::<serde_json::Value>(&row.document)
            .ok()
            .and_then(|document| document.get("time_zone")?.as_str().map(str::to_owned))
            .and_then(|zone| engine::hours::parse_time_zone(&zone).ok())
    {
        return zone;
    }
    chrono_tz::Asia::Shanghai
}

/// The figures as the API gives them: durations in seconds, shares from 0 to 1, amounts as
/// numbers, days as dates in the workspace's zone.
pub fn view(figures: &Figures) -> serde_json::Value {
    use serde_json::json;
    let reps: Vec<serde_json::Value> = figures
        .reps
        .iter()
        .map(|rep| {
            json!({
                "rep_id": rep.id,
                "name": rep.name,
                "away": rep.away,
                "leads": rep.handled,
                "owned": rep.owned,
                "open": rep.open,
                "overdue": rep.overdue,
                "untouched": rep.untouched,
                "days_since_follow_up": rep.idle_days,
                "first_response_p50_secs": rep.p50,
                "first_response_p90_secs": rep.p90,
                "sla_met": rep.sla_met,
                "follow_ups_per_lead": rep.depth,
                "won": rep.won_closed,
                "amount": rep.amount_closed,
                "nps": rep.nps,
                "csat": rep.csat,
            })
        })
        .collect();
    let conversion = |groups: &[store::Conversion]| -> Vec<serde_json::Value> {
        groups
            .iter()
            .map(|group| json!({"name": group.name, "won": group.won, "closed": group.closed}))
            .collect()
    };
    json!({
        "from": crate::leads::time(figures.window.from),
        "to": crate::leads::time(figures.window.to),
        "team_id": figures.window.team,
        "days": figures.days,
        "leads_in": figures.leads_in,
        "assigned": figures.assigned,
        "held": figures.held,
        "pooled": figures.pooled,
        "first_response_p50_secs": figures.p50,
        "first_response_p90_secs": figures.p90,
        "sla_met": figures.sla_met,
        "reclaims": figures.reclaims,
        "overdue": figures.overdue,
        "untouched": figures.untouched,
        "won": figures.won,
        "amount": figures.amount,
        "nps": figures.nps,
        "csat": figures.csat,
        "funnel": {
            "in": figures.funnel[0],
            "contacted": figures.funnel[1],
            "qualified": figures.funnel[2],
            "won": figures.funnel[3],
            "lost": figures.funnel[4],
        },
        "trend": figures.trend.iter().map(|day| json!({
            "date": day.date.to_string(),
            "leads_in": day.leads,
            "first_response_p50_secs": day.p50,
        })).collect::<Vec<_>>(),
        "reps": reps,
        "conversion_by_source": conversion(&figures.by_source),
        "conversion_by_rule": conversion(&figures.by_rule),
    })
}

/// The dashboard's figures over the last `days` days for the caller: one team (a manager's
/// first when none is named, never one outside their reach) or the whole workspace. The one
/// home of this read, for the API and the console alike.
pub async fn team_figures(
    app: &AppState,
    caller: &Caller,
    days: i64,
    team: Option<String>,
    zone: chrono_tz::Tz,
) -> ApiResult<Figures> {
    caller.may(Operation::GetDashboard)?;
    let teams = teams_in_reach(app, caller).await?;
    let team = match team.filter(|team| !team.is_empty()) {
        Some(team) if teams.iter().any(|(id, _)| *id == team) => Some(team),
        Some(_) => return Err(ApiError::not_found("team")),
        // A manager reads their teams, never the whole workspace.
        None if caller.role == Role::Manager => match teams.first() {
            Some((id, _)) => Some(id.clone()),
            None => return Err(ApiError::not_found("team")),
        },
        None => None,
    };
    let members = match &team {
        Some(team) => Some(access::members(app, std::slice::from_ref(team)).await?),
        None => None,
    };
    let window = window(days, team, chrono::Utc::now(), zone);
    figures(app, window, days, members.as_deref()).await
}

/// One rep's figures over the last `days` days (their scorecard): for the rep themselves, their
/// teams' managers, admins and reporting.
pub async fn rep_figures(
    app: &AppState,
    caller: &Caller,
    rep_id: &str,
    days: i64,
    zone: chrono_tz::Tz,
) -> ApiResult<(store::RepRow, Figures)> {
    caller.may(Operation::GetScorecard)?;
    if caller.role != Role::Reporting {
        access::rep_in_reach(app, caller, rep_id).await?;
    }
    let Some(rep) = app.store.get_rep(rep_id).await? else {
        return Err(ApiError::not_found("rep"));
    };
    let mut window = window(days, None, chrono::Utc::now(), zone);
    window.owner = Some(rep.id.clone());
    let figures = figures(app, window, days, Some(std::slice::from_ref(&rep.id))).await?;
    Ok((rep, figures))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_starts_at_the_viewers_midnight() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-30T02:00:00Z")
            .expect("time")
            .with_timezone(&chrono::Utc);
        let window = window(7, None, now, chrono_tz::Asia::Shanghai);
        // 10:00 in Shanghai on the 30th: the window starts at midnight there on the 24th.
        let start = chrono::DateTime::parse_from_rfc3339("2026-11-24T00:00:00+08:00")
            .expect("time")
            .timestamp_micros();
        assert_eq!(window.from, start);
        assert_eq!(window.day_offset, 8 * 3_600_000_000);
    }
}
