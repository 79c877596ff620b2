//! The manager's dashboard and each rep's scorecard: leads in and first response per day, the
//! funnel, per-rep figures (load, overdue, response, SLA, follow-up depth, wins, feedback),
//! fairness against target shares and what each rule-set version did. Every figure links to
//! the leads behind it, and every table exports to CSV and Excel from the same rows the page
//! shows. The team digest sends the same figures to a group chat.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Datelike;
use serde::Deserialize;
use store::DashboardWindow;

use super::i18n::Tr;
use super::{Frame, Viewer, charts, render, viewer};
use crate::AppState;
use crate::auth::Role;
use crate::error::ApiError;

pub(crate) use crate::reports::UNTOUCHED_DAYS;
use crate::reports::{DAY_MICROS, DayFigures, Figures, percent};

#[derive(Debug, Default, Deserialize)]
pub(super) struct DashboardQuery {
    days: Option<i64>,
    team: Option<String>,
    /// Exports: which table, and `csv` or `xlsx`.
    table: Option<String>,
    format: Option<String>,
}

/// The periods a manager picks from.
const PERIODS: [i64; 3] = [7, 30, 90];

/// One cell of a table: what it shows, its number for a spreadsheet, and the leads behind it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Cell {
    pub text: String,
    pub number: Option<f64>,
    pub link: String,
}

impl Cell {
    fn text(text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            ..Cell::default()
        }
    }

    fn count(count: i64, link: String) -> Cell {
        Cell {
            text: count.to_string(),
            number: Some(count as f64),
            link,
        }
    }

    fn linked(mut self, link: String) -> Cell {
        self.link = link;
        self
    }
}

/// A table as the page shows it and the exports write it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Table {
    /// `reps`, `days`, `funnel`, `fairness`, `versions`, `leaderboard`.
    pub id: &'static str,
    pub title: String,
    /// Column headings, each with its definition (shown on hover and in the footnote).
    pub headers: Vec<(String, String)>,
    pub rows: Vec<Vec<Cell>>,
    /// Shown folded (a long day-by-day list).
    pub folded: bool,
}

impl Table {
    /// UTF-8 CSV with a byte-order mark, so Excel reads the Chinese right. A text cell that a
    /// spreadsheet would run as a formula is quoted with a leading apostrophe.
    pub fn csv(&self) -> Result<Vec<u8>, ApiError> {
        let mut writer = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
        writer
            .write_record(self.headers.iter().map(|(name, _)| name))
            .map_err(ApiError::internal)?;
        for row in &self.rows {
            writer
                .write_record(row.iter().map(|cell| match cell.number {
                    Some(number) => format_number(number),
                    None => defused(&cell.text),
                }))
                .map_err(ApiError::internal)?;
        }
        writer.into_inner().map_err(ApiError::internal)
    }

    /// An Excel workbook with one sheet: headings in bold, numbers as numbers.
    pub fn xlsx(&self) -> Result<Vec<u8>, ApiError> {
        use rust_xlsxwriter::{Format, Workbook};
        let mut workbook = Workbook::new();
        let bold = Format::new().set_bold();
        let sheet = workbook.add_worksheet();
        let name: String = self
            .title
            .chars()
            .filter(|c| !"[]:*?/\\".contains(*c))
            .take(31)
            .collect();
        if !name.trim().is_empty() {
            sheet.set_name(name).map_err(ApiError::internal)?;
        }
        for (column, (heading, _)) in self.headers.iter().enumerate() {
            let column = u16::try_from(column).map_err(ApiError::internal)?;
            sheet
                .write_string_with_format(0, column, heading, &bold)
                .map_err(ApiError::internal)?;
            sheet
                .set_column_width(column, if column == 0 { 18 } else { 12 })
                .map_err(ApiError::internal)?;
        }
        for (index, row) in self.rows.iter().enumerate() {
            let line = u32::try_from(index + 1).map_err(ApiError::internal)?;
            for (column, cell) in row.iter().enumerate() {
                let column = u16::try_from(column).map_err(ApiError::internal)?;
                match cell.number {
                    Some(number) => sheet.write_number(line, column, number),
                    None => sheet.write_string(line, column, &cell.text),
                }
                .map_err(ApiError::internal)?;
            }
        }
        workbook.save_to_buffer().map_err(ApiError::internal)
    }
}

fn format_number(number: f64) -> String {
    if number.fract() == 0.0 && number.abs() < 1e15 {
        format!("{number:.0}")
    } else {
        format!("{number:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
    }
}

/// A text cell starting like a formula (`=`, `+`, `-`, `@`, tab, return) made inert.
fn defused(text: &str) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_owned(),
    }
}

/// An amount in yuan with separators: `¥1,234,567`.
pub(crate) fn money(amount: f64) -> String {
    let whole = amount.round() as i64;
    let digits = whole.unsigned_abs().to_string();
    let mut grouped = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    format!("{}¥{grouped}", if whole < 0 { "-" } else { "" })
}

/// A duration for people: `45 秒`, `12 分钟`, `3.5 小时`, `2.0 天`.
pub(crate) fn duration_text(t: &Tr, seconds: i64) -> String {
    let zh = t.is_zh();
    if seconds < 60 {
        format!("{seconds}{}", if zh { " 秒" } else { " s" })
    } else if seconds < 3600 {
        format!("{}{}", seconds / 60, if zh { " 分钟" } else { " min" })
    } else if seconds < 86_400 {
        format!(
            "{:.1}{}",
            seconds as f64 / 3600.0,
            if zh { " 小时" } else { " h" }
        )
    } else {
        format!(
            "{:.1}{}",
            seconds as f64 / 86_400.0,
            if zh { " 天" } else { " d" }
        )
    }
}

/// `&team=…` for a window of one team.
fn team_param(window: &DashboardWindow) -> String {
    window
        .team
        .as_ref()
        .map(|team| {
            format!(
                "&team={}",
                url::form_urlencoded::byte_serialize(team.as_bytes()).collect::<String>()
            )
        })
        .unwrap_or_default()
}

/// Links to the lead list behind a figure: the window's leads, narrowed by `extra`.
fn leads_link(window: &DashboardWindow, extra: &str) -> String {
    let mut link = format!(
        "/leads?from={}&to={}{}",
        window.from,
        window.to,
        team_param(window)
    );
    if !extra.is_empty() {
        link.push('&');
        link.push_str(extra);
    }
    link
}

/// Links to what is open now (whenever it came in).
fn open_link(window: &DashboardWindow, extra: &str) -> String {
    let mut link = format!("/leads?open=1{}", team_param(window));
    link.push('&');
    link.push_str(extra);
    link
}

fn owner_param(id: &str) -> String {
    format!(
        "owner={}",
        url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
    )
}

/// A figure, or a dash where there is none yet.
fn optional(value: Option<String>) -> String {
    value.unwrap_or_else(|| "–".to_owned())
}

fn duration_cell(t: &Tr, seconds: Option<i64>) -> Cell {
    Cell {
        text: optional(seconds.map(|s| duration_text(t, s))),
        // Minutes in a spreadsheet.
        number: seconds.map(|s| (s as f64 / 60.0 * 10.0).round() / 10.0),
        link: String::new(),
    }
}

fn percent_cell(value: Option<f64>) -> Cell {
    Cell {
        text: optional(value.map(|v| format!("{:.0}%", v * 100.0))),
        number: value.map(|v| (v * 1000.0).round() / 10.0),
        link: String::new(),
    }
}

fn decimal_cell(value: Option<f64>) -> Cell {
    Cell {
        text: optional(value.map(|v| format!("{v:.1}"))),
        number: value.map(|v| (v * 10.0).round() / 10.0),
        link: String::new(),
    }
}

fn whole_cell(value: Option<f64>) -> Cell {
    Cell {
        text: optional(value.map(|v| format!("{v:.0}"))),
        number: value.map(f64::round),
        link: String::new(),
    }
}

fn money_cell(amount: f64) -> Cell {
    Cell {
        text: money(amount),
        number: Some(amount),
        link: String::new(),
    }
}

/// The per-rep table (数据驱动考核): each rep's load, response, SLA, follow-up and results.
pub(crate) fn reps_table(t: &Tr, figures: &Figures, scorecards: bool) -> Table {
    let w = &figures.window;
    let heading = |key: &str| (t.t(key).to_owned(), t.t(&format!("{key}_means")).to_owned());
    let headers = [
        "rep",
        "col_leads",
        "col_open",
        "col_overdue",
        "col_untouched",
        "col_p50",
        "col_p90",
        "sla_met",
        "col_depth",
        "col_idle",
        "won",
        "won_amount",
        "col_nps",
        "col_csat",
    ]
    .iter()
    .map(|key| heading(key))
    .collect();
    let rows = figures
        .reps
        .iter()
        .map(|rep| {
            let owner = owner_param(&rep.id);
            let mut name = if rep.away {
                format!("{} · {}", rep.name, t.t("away_mark"))
            } else {
                rep.name.clone()
            };
            if name.is_empty() {
                name = rep.id.clone();
            }
            let name = Cell::text(name);
            vec![
                if scorecards {
                    name.linked(format!(
                        "/reps/{}/scorecard?days={}",
                        url::form_urlencoded::byte_serialize(rep.id.as_bytes()).collect::<String>(),
                        figures.days
                    ))
                } else {
                    name
                },
                Cell::count(
                    rep.handled,
                    leads_link(w, &format!("handled_by={}", &owner[6..])),
                ),
                Cell::count(rep.open, open_link(w, &owner)),
                Cell::count(rep.overdue, open_link(w, &format!("{owner}&overdue=1"))),
                Cell::count(
                    rep.untouched,
                    open_link(w, &format!("{owner}&idle={UNTOUCHED_DAYS}")),
                ),
                duration_cell(t, rep.p50),
                duration_cell(t, rep.p90),
                percent_cell(rep.sla_met),
                decimal_cell(rep.depth),
                decimal_cell(rep.idle_days),
                Cell::count(
                    rep.won_closed,
                    format!(
                        "/leads?status=won&closed_from={}&closed_to={}&{owner}",
                        w.from, w.to
                    ),
                ),
                money_cell(rep.amount_closed),
                whole_cell(rep.nps),
                decimal_cell(rep.csat),
            ]
        })
        .collect();
    Table {
        id: "reps",
        folded: false,
        title: t.t("rep_figures").to_owned(),
        headers,
        rows,
    }
}

/// Leads in and the median first response, day by day.
pub(crate) fn days_table(t: &Tr, figures: &Figures) -> Table {
    let rows = figures
        .trend
        .iter()
        .map(|day| {
            let from =
                figures.window.from + (day.date - figures.trend[0].date).num_days() * DAY_MICROS;
            let mut window = figures.window.clone();
            window.from = from;
            window.to = from + DAY_MICROS;
            vec![
                Cell::text(day.date.format("%Y-%m-%d").to_string()),
                Cell::count(day.leads, leads_link(&window, "")),
                duration_cell(t, day.p50),
            ]
        })
        .collect();
    Table {
        id: "days",
        folded: true,
        title: t.t("by_day").to_owned(),
        headers: vec![
            (t.t("date").to_owned(), String::new()),
            (t.t("leads_in").to_owned(), t.t("leads_in_means").to_owned()),
            (t.t("col_p50").to_owned(), t.t("col_p50_means").to_owned()),
        ],
        rows,
    }
}

/// The funnel with the conversion from each stage to the next.
pub(crate) fn funnel_table(t: &Tr, figures: &Figures) -> Table {
    let w = &figures.window;
    let stages = [
        ("stage_in", ""),
        ("stage_contacted", "responded=1"),
        ("stage_qualified", "status=qualified"),
        ("won", "status=won"),
    ];
    let mut rows = Vec::new();
    for (index, (key, filter)) in stages.iter().enumerate() {
        let count = figures.funnel[index];
        let step = (index > 0).then(|| percent(count, figures.funnel[index - 1]));
        rows.push(vec![
            Cell::text(t.t(key)),
            Cell::count(count, leads_link(w, filter)),
            step.map_or_else(Cell::default, percent_cell),
            percent_cell(percent(count, figures.funnel[0])),
        ]);
    }
    rows.push(vec![
        Cell::text(t.state("lost")),
        Cell::count(figures.funnel[4], leads_link(w, "status=lost")),
        Cell::default(),
        percent_cell(percent(figures.funnel[4], figures.funnel[0])),
    ]);
    Table {
        id: "funnel",
        folded: false,
        title: t.t("funnel").to_owned(),
        headers: vec![
            (t.t("stage").to_owned(), t.t("stage_means").to_owned()),
            (t.t("col_leads").to_owned(), String::new()),
            (
                t.t("step_rate").to_owned(),
                t.t("step_rate_means").to_owned(),
            ),
            (t.t("of_all").to_owned(), String::new()),
        ],
        rows,
    }
}

/// Each available rep's share of the window's assigned leads against their weight's share,
/// the largest gap first; reps away now have no target.
pub(crate) fn fairness_table(t: &Tr, figures: &Figures) -> Table {
    let total_weight: f64 = figures
        .reps
        .iter()
        .filter(|rep| !rep.away)
        .map(|rep| rep.weight)
        .sum();
    let assigned: i64 = figures.reps.iter().map(|rep| rep.owned).sum();
    let mut rows: Vec<(f64, Vec<Cell>)> = figures
        .reps
        .iter()
        .filter(|rep| !rep.away || rep.owned > 0)
        .map(|rep| {
            let share = percent(rep.owned, assigned).unwrap_or(0.0);
            let target = (!rep.away && total_weight > 0.0).then(|| rep.weight / total_weight);
            let gap = target.map(|target| share - target);
            let name = if rep.away {
                format!("{} · {}", rep.name, t.t("away_mark"))
            } else {
                rep.name.clone()
            };
            (
                gap.map_or(0.0, f64::abs),
                vec![
                    Cell::text(name),
                    Cell::count(
                        rep.owned,
                        leads_link(&figures.window, &owner_param(&rep.id)),
                    ),
                    percent_cell(Some(share)),
                    percent_cell(target),
                    Cell {
                        text: gap.map_or_else(
                            || "–".to_owned(),
                            |gap| format!("{:+.1} pt", gap * 100.0),
                        ),
                        number: gap.map(|gap| (gap * 1000.0).round() / 10.0),
                        link: String::new(),
                    },
                ],
            )
        })
        .collect();
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    Table {
        id: "fairness",
        folded: false,
        title: t.t("fairness").to_owned(),
        headers: vec![
            (t.t("rep").to_owned(), String::new()),
            (
                t.t("col_leads").to_owned(),
                t.t("col_owned_means").to_owned(),
            ),
            (t.t("share").to_owned(), t.t("share_means").to_owned()),
            (
                t.t("target_share").to_owned(),
                t.t("target_share_means").to_owned(),
            ),
            (t.t("gap").to_owned(), t.t("gap_means").to_owned()),
        ],
        rows: rows.into_iter().map(|(_, row)| row).collect(),
    }
}

/// What each rule-set version did while it was active: its leads, response, SLA, conversion.
async fn versions_table(
    app: &AppState,
    t: &Tr,
    viewer: &Viewer,
    figures: &Figures,
) -> Result<Table, ApiError> {
    let mut published: Vec<store::RuleSetRow> = app
        .store
        .list_rule_sets()
        .await?
        .into_iter()
        .filter(|row| row.published_at.is_some())
        .collect();
    published.sort_by_key(|row| row.published_at);
    let mut rows = Vec::new();
    let now = figures.window.now;
    // The last four versions, newest first, each over the time it was the active one.
    let spans: Vec<(store::RuleSetRow, i64, i64)> = published
        .iter()
        .enumerate()
        .map(|(index, row)| {
            let start = row.published_at.unwrap_or(0);
            let end = published
                .get(index + 1)
                .and_then(|next| next.published_at)
                .unwrap_or(now + 1);
            (row.clone(), start, end)
        })
        .filter(|(_, start, end)| end > start)
        .rev()
        .take(4)
        .collect();
    for (row, start, end) in spans {
        let period = app
            .store
            .period_figures(&DashboardWindow {
                from: start,
                to: end,
                ..figures.window.clone()
            })
            .await?;
        let days = ((end - start) as f64 / DAY_MICROS as f64).max(1.0 / 24.0);
        let name = match &row.name {
            Some(name) if !name.is_empty() => format!("v{} · {name}", row.version),
            _ => format!("v{}", row.version),
        };
        let mut window = figures.window.clone();
        window.from = start;
        window.to = end;
        rows.push(vec![
            Cell::text(name).linked(format!("/rules/edit?version={}", row.version)),
            Cell::text(format!(
                "{} – {}",
                viewer.local(start),
                if end > now {
                    t.t("now").to_owned()
                } else {
                    viewer.local(end)
                }
            )),
            Cell::count(period.leads_in, leads_link(&window, "")),
            decimal_cell(Some(period.leads_in as f64 / days)),
            duration_cell(t, period.avg_response.map(|s| s.round() as i64)),
            percent_cell(percent(period.clocked - period.missed, period.clocked)),
            percent_cell(percent(period.won, period.closed)),
        ]);
    }
    Ok(Table {
        id: "versions",
        folded: false,
        title: t.t("by_version").to_owned(),
        headers: vec![
            (t.t("version").to_owned(), String::new()),
            (
                t.t("active_span").to_owned(),
                t.t("active_span_means").to_owned(),
            ),
            (t.t("col_leads").to_owned(), String::new()),
            (t.t("per_day").to_owned(), String::new()),
            (
                t.t("avg_response").to_owned(),
                t.t("col_p50_means").to_owned(),
            ),
            (t.t("sla_met").to_owned(), t.t("sla_met_means").to_owned()),
            (t.t("win_rate").to_owned(), t.t("win_rate_means").to_owned()),
        ],
        rows,
    })
}

/// The SVG of the trend: leads in per day as bars, the median first response as a line.
fn trend_chart(t: &Tr, trend: &[DayFigures]) -> String {
    let (width, height, left, bottom, top) = (720.0, 220.0, 40.0, 28.0, 14.0);
    let plot = height - bottom - top;
    let most = trend.iter().map(|d| d.leads).max().unwrap_or(0).max(1) as f64;
    let slowest = trend
        .iter()
        .filter_map(|d| d.p50)
        .max()
        .unwrap_or(0)
        .max(60) as f64;
    let step = (width - left - 40.0) / trend.len().max(1) as f64;
    let mut svg = format!(
        "<svg role=\"img\" class=\"trend\" viewBox=\"0 0 {width} {height}\" preserveAspectRatio=\"xMinYMin meet\"><title>{}</title>",
        charts::escape(t.t("trend"))
    );
    svg.push_str(&format!(
        "<text x=\"0\" y=\"10\" font-size=\"12\" fill=\"#1f6feb\">{} ({:.0})</text><text x=\"{}\" y=\"10\" font-size=\"12\" fill=\"#b54708\" text-anchor=\"end\">{} ({})</text>",
        charts::escape(t.t("leads_in")),
        most,
        width,
        charts::escape(t.t("col_p50")),
        charts::escape(&duration_text(t, slowest as i64)),
    ));
    let mut line = Vec::new();
    let label_every = (trend.len() / 8).max(1);
    for (index, day) in trend.iter().enumerate() {
        let x = left + step * index as f64;
        let h = day.leads as f64 / most * plot;
        svg.push_str(&format!(
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#1f6feb\" opacity=\"0.75\"><title>{} · {} {}</title></rect>",
            x + step * 0.15,
            top + plot - h,
            step * 0.7,
            h,
            day.date.format("%m-%d"),
            day.leads,
            charts::escape(t.t("leads_in")),
        ));
        if let Some(p50) = day.p50 {
            line.push(format!(
                "{:.1},{:.1}",
                x + step / 2.0,
                top + plot - p50 as f64 / slowest * plot
            ));
        }
        if index.is_multiple_of(label_every) {
            svg.push_str(&format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"middle\">{}</text>",
                x + step / 2.0,
                height - 8.0,
                day.date.format("%m-%d"),
            ));
        }
    }
    if line.len() > 1 {
        svg.push_str(&format!(
            "<polyline points=\"{}\" fill=\"none\" stroke=\"#b54708\" stroke-width=\"2\"></polyline>",
            line.join(" ")
        ));
    }
    svg.push_str(&format!(
        "<line x1=\"{left}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#8a94a6\"></line></svg>",
        top + plot,
        width - 40.0,
        top + plot
    ));
    svg
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    frame: Frame,
    days: i64,
    periods: Vec<i64>,
    team: String,
    teams: Vec<(String, String)>,
    /// `(id, label, value, link, definition)` for the cards.
    cards: Vec<(&'static str, String, String, String, String)>,
    trend: String,
    tables: Vec<Table>,
    by_source: String,
    by_rule: String,
    /// The query string the export links carry.
    query: String,
}

/// The dashboard's figures for the viewer (through `reports::team_figures`, the one home of
/// this read and its authority), the team shown and the teams they may pick.
async fn team_figures(
    app: &AppState,
    viewer: &Viewer,
    query: &DashboardQuery,
) -> Result<(Figures, String, Vec<(String, String)>), ApiError> {
    let days = query
        .days
        .filter(|days| PERIODS.contains(days))
        .unwrap_or(7);
    let figures =
        crate::reports::team_figures(app, &viewer.caller, days, query.team.clone(), viewer.zone)
            .await?;
    let teams = crate::reports::teams_in_reach(app, &viewer.caller).await?;
    let team = figures.window.team.clone().unwrap_or_default();
    Ok((figures, team, teams))
}

pub(super) async fn dashboard(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<DashboardQuery>,
) -> Response {
    let viewer = match viewer(&app, &headers).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    if viewer.caller.role == Role::Rep {
        return Redirect::to("/me").into_response();
    }
    match dashboard_page(&app, &viewer, query).await {
        Ok(page) => render(page),
        Err(error) => error.into_response(),
    }
}

async fn dashboard_page(
    app: &AppState,
    viewer: &Viewer,
    query: DashboardQuery,
) -> Result<DashboardPage, ApiError> {
    let t = viewer.t;
    let (figures, team, teams) = team_figures(app, viewer, &query).await?;
    let w = &figures.window;
    let dash = || "–".to_owned();
    let card = |id: &'static str, label: &str, value: String, link: String, means: &str| {
        (id, label.to_owned(), value, link, t.t(means).to_owned())
    };
    // The deals closed in the window, whenever they came in.
    let won_link = format!(
        "/leads?status=won&closed_from={}&closed_to={}{}",
        w.from,
        w.to,
        team_param(w)
    );
    let cards = vec![
        card(
            "leads-in",
            t.t("leads_in"),
            figures.leads_in.to_string(),
            leads_link(w, ""),
            "leads_in_means",
        ),
        card(
            "assigned",
            t.t("assigned"),
            figures.assigned.to_string(),
            leads_link(w, "owned=1"),
            "assigned_means",
        ),
        card(
            "held",
            t.t("held"),
            figures.held.to_string(),
            "/leads?held=1".to_owned(),
            "held_means",
        ),
        card(
            "pooled",
            t.t("in_pool"),
            figures.pooled.to_string(),
            "/pool".to_owned(),
            "pooled_means",
        ),
        card(
            "p50",
            &format!("{} {}", t.t("first_response"), t.t("p50")),
            figures.p50.map_or_else(dash, |s| duration_text(&t, s)),
            leads_link(w, "responded=1"),
            "col_p50_means",
        ),
        card(
            "p90",
            &format!("{} {}", t.t("first_response"), t.t("p90")),
            figures.p90.map_or_else(dash, |s| duration_text(&t, s)),
            leads_link(w, "responded=1"),
            "col_p90_means",
        ),
        card(
            "sla-met",
            t.t("sla_met"),
            figures
                .sla_met
                .map_or_else(dash, |v| format!("{:.0}%", v * 100.0)),
            leads_link(w, "sla_missed=1"),
            "sla_met_means",
        ),
        card(
            "reclaims",
            t.t("reclaims"),
            figures.reclaims.to_string(),
            leads_link(w, "sla_missed=1"),
            "reclaims_means",
        ),
        card(
            "overdue",
            t.t("col_overdue"),
            figures.overdue.to_string(),
            open_link(w, "overdue=1"),
            "col_overdue_means",
        ),
        card(
            "untouched",
            t.t("col_untouched"),
            figures.untouched.to_string(),
            open_link(w, &format!("idle={UNTOUCHED_DAYS}")),
            "col_untouched_means",
        ),
        card(
            "won",
            t.t("won"),
            figures.won.to_string(),
            won_link.clone(),
            "won_amount_means",
        ),
        card(
            "won-amount",
            t.t("won_amount"),
            money(figures.amount),
            won_link.clone(),
            "won_amount_means",
        ),
        card(
            "nps",
            t.t("col_nps"),
            figures.nps.map_or_else(dash, |v| format!("{v:.0}")),
            String::new(),
            "col_nps_means",
        ),
        card(
            "csat",
            t.t("col_csat"),
            figures.csat.map_or_else(dash, |v| format!("{v:.1}")),
            String::new(),
            "col_csat_means",
        ),
    ];
    let rules = crate::reports::active_rule_names(&app.store).await;
    let conversion = |groups: &[store::Conversion], rule: bool| {
        let rows: Vec<charts::Bar> = groups
            .iter()
            .map(|group| charts::Bar {
                label: format!(
                    "{} ({}/{})",
                    if rule {
                        rules
                            .get(&group.name)
                            .cloned()
                            .unwrap_or_else(|| group.name.clone())
                    } else {
                        group.name.clone()
                    },
                    group.won,
                    group.closed
                ),
                value: group.won as f64 / group.closed.max(1) as f64,
                target: None,
            })
            .collect();
        charts::bars(&rows, 1.0, true, t.t("no_data"))
    };
    let tables = vec![
        reps_table(&t, &figures, true),
        funnel_table(&t, &figures),
        fairness_table(&t, &figures),
        versions_table(app, &t, viewer, &figures).await?,
        days_table(&t, &figures),
    ];
    let query = format!(
        "days={}&team={}",
        figures.days,
        url::form_urlencoded::byte_serialize(team.as_bytes()).collect::<String>()
    );
    Ok(DashboardPage {
        frame: viewer.frame(t.t("dashboard"), "dashboard", String::new()),
        days: figures.days,
        periods: PERIODS.to_vec(),
        team,
        teams,
        cards,
        trend: trend_chart(&t, &figures.trend),
        by_source: conversion(&figures.by_source, false),
        by_rule: conversion(&figures.by_rule, true),
        tables,
        query,
    })
}

/// `GET /dashboard/export?table=reps&format=xlsx&days=30&team=east`: one of the dashboard's
/// tables as a file, with the same rows the page shows.
pub(super) async fn export(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<DashboardQuery>,
) -> Response {
    let viewer = match viewer(&app, &headers).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    if viewer.caller.role == Role::Rep {
        return crate::auth::forbidden("reps read their own scorecard, not the dashboard")
            .into_response();
    }
    let result: Result<Response, ApiError> = async {
        let t = viewer.t;
        let table_id = query.table.clone().unwrap_or_default();
        let format = query.format.clone().unwrap_or_default();
        if !["csv", "xlsx"].contains(&format.as_str()) {
            return Err(ApiError::invalid(
                "invalid_value",
                "format",
                "format must be csv or xlsx",
            ));
        }
        let (figures, _, _) = team_figures(&app, &viewer, &query).await?;
        let table = match table_id.as_str() {
            "reps" => reps_table(&t, &figures, false),
            "funnel" => funnel_table(&t, &figures),
            "fairness" => fairness_table(&t, &figures),
            "days" => days_table(&t, &figures),
            "versions" => versions_table(&app, &t, &viewer, &figures).await?,
            _ => {
                return Err(ApiError::invalid(
                    "invalid_value",
                    "table",
                    "table must be reps, funnel, fairness, days or versions",
                ));
            }
        };
        file(
            &table,
            &format,
            &format!("leadroute-{table_id}-{}d", figures.days),
        )
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

fn file(table: &Table, format: &str, name: &str) -> Result<Response, ApiError> {
    let (bytes, content_type) = if format == "xlsx" {
        (
            table.xlsx()?,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    } else {
        (table.csv()?, "text/csv; charset=utf-8")
    };
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.{format}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

#[derive(Template)]
#[template(path = "scorecard.html")]
struct ScorecardPage {
    frame: Frame,
    rep_id: String,
    name: String,
    days: i64,
    periods: Vec<i64>,
    /// `(label, value, link, definition)`.
    cards: Vec<(String, String, String, String)>,
    trend: String,
    tables: Vec<Table>,
}

/// `GET /reps/{id}/scorecard`: one rep's figures over the period, their trend and funnel, for
/// the rep themselves, their team's managers and admins.
pub(super) async fn scorecard(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<DashboardQuery>,
) -> Response {
    let viewer = match viewer(&app, &headers).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let result: Result<ScorecardPage, ApiError> = async {
        let t = viewer.t;
        let days = query
            .days
            .filter(|days| PERIODS.contains(days))
            .unwrap_or(30);
        let (rep, figures) =
            crate::reports::rep_figures(&app, &viewer.caller, &id, days, viewer.zone).await?;
        let me = figures.reps.first().cloned().unwrap_or_default();
        let w = &figures.window;
        let owner = owner_param(&rep.id);
        let dash = || "–".to_owned();
        let cards = vec![
            (
                t.t("col_leads").to_owned(),
                me.handled.to_string(),
                leads_link(w, &format!("handled_by={}", &owner[6..])),
                t.t("col_leads_means").to_owned(),
            ),
            (
                t.t("col_open").to_owned(),
                me.open.to_string(),
                open_link(w, &owner),
                t.t("col_open_means").to_owned(),
            ),
            (
                t.t("col_overdue").to_owned(),
                me.overdue.to_string(),
                open_link(w, &format!("{owner}&overdue=1")),
                t.t("col_overdue_means").to_owned(),
            ),
            (
                t.t("col_untouched").to_owned(),
                me.untouched.to_string(),
                open_link(w, &format!("{owner}&idle={UNTOUCHED_DAYS}")),
                t.t("col_untouched_means").to_owned(),
            ),
            (
                t.t("col_p50").to_owned(),
                me.p50.map_or_else(dash, |s| duration_text(&t, s)),
                String::new(),
                t.t("col_p50_means").to_owned(),
            ),
            (
                t.t("sla_met").to_owned(),
                me.sla_met
                    .map_or_else(dash, |v| format!("{:.0}%", v * 100.0)),
                String::new(),
                t.t("sla_met_means").to_owned(),
            ),
            (
                t.t("col_depth").to_owned(),
                me.depth.map_or_else(dash, |v| format!("{v:.1}")),
                String::new(),
                t.t("col_depth_means").to_owned(),
            ),
            (
                t.t("won_amount").to_owned(),
                format!("{} · {}", me.won_closed, money(me.amount_closed)),
                format!(
                    "/leads?status=won&closed_from={}&closed_to={}&{owner}",
                    w.from, w.to
                ),
                t.t("won_amount_means").to_owned(),
            ),
            (
                t.t("col_nps").to_owned(),
                me.nps.map_or_else(dash, |v| format!("{v:.0}")),
                String::new(),
                t.t("col_nps_means").to_owned(),
            ),
            (
                t.t("col_csat").to_owned(),
                me.csat.map_or_else(dash, |v| format!("{v:.1}")),
                String::new(),
                t.t("col_csat_means").to_owned(),
            ),
        ];
        Ok(ScorecardPage {
            frame: viewer.frame(
                &format!("{} · {}", t.t("scorecard"), rep.name),
                if viewer.caller.role == Role::Rep {
                    "me"
                } else {
                    "dashboard"
                },
                String::new(),
            ),
            rep_id: rep.id.clone(),
            name: rep.name.clone(),
            days,
            periods: PERIODS.to_vec(),
            cards,
            trend: trend_chart(&t, &figures.trend),
            tables: vec![funnel_table(&t, &figures), days_table(&t, &figures)],
        })
    }
    .await;
    match result {
        Ok(page) => render(page),
        Err(error) => error.into_response(),
    }
}

/// The date a lead list link's `from`/`to` stand for, for the filter's label.
pub(super) fn day_label(micros: i64, zone: chrono_tz::Tz) -> String {
    let date = chrono::DateTime::from_timestamp_micros(micros)
        .unwrap_or_default()
        .with_timezone(&zone);
    format!("{}-{:02}-{:02}", date.year(), date.month(), date.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_has_separators_and_the_yuan_sign() {
        assert_eq!(money(990_000.0), "¥990,000");
        assert_eq!(money(1_234_567.4), "¥1,234,567");
        assert_eq!(money(0.0), "¥0");
        assert_eq!(money(-1200.0), "-¥1,200");
    }

    #[test]
    fn exports_defuse_formulas_and_keep_numbers() {
        let table = Table {
            id: "reps",
            title: "销售数据".into(),
            folded: false,
            headers: vec![
                ("销售".into(), String::new()),
                ("线索".into(), String::new()),
            ],
            rows: vec![vec![
                Cell::text("=HYPERLINK(\"x\")"),
                Cell::count(12, String::new()),
            ]],
        };
        let csv = String::from_utf8(table.csv().expect("csv")).expect("utf-8");
        assert!(
            csv.starts_with('\u{feff}'),
            "Excel needs the BOM for Chinese"
        );
        assert!(csv.contains("'=HYPERLINK"), "{csv}");
        assert!(csv.contains(",12"), "{csv}");
        let xlsx = table.xlsx().expect("xlsx");
        assert!(xlsx.starts_with(b"PK"), "an xlsx file is a zip");
    }
}
