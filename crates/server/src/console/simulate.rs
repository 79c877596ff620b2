//! The simulator in the console: "try this draft on the last 7 / 30 / 90 days" from the rule
//! versions and the editor, and the page that shows the two policies side by side while the
//! job runs and once it is done, with "publish this draft" from there. It starts and reads
//! jobs through `simulate::jobs` with the viewer's caller, as the API does.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Value, json};

use super::charts::{Bar, bars};
use super::rules::VersionQuery;
use super::{Frame, Viewer, back, notice_text, posted, render};
use crate::AppState;
use crate::error::ApiError;
use crate::ops::Operation;
use crate::simulate::report::{PolicyReport, Report};
use crate::simulate::{PolicyInput, SimulationInput, jobs};

/// Starts a simulation of a stored version over the last days; the page shows it.
pub async fn start(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (viewer, fields) = match posted(super::rules::allowed_viewer(&app, &headers).await, &body) {
        Ok(posted) => posted,
        Err(response) => return *response,
    };
    let version = fields
        .get("version")
        .and_then(|text| text.parse::<u32>().ok());
    let days = fields.get("days").and_then(|text| text.parse::<u32>().ok());
    let (Some(version), Some(days)) = (version, days) else {
        return back(
            "/rules",
            Err(ApiError::invalid(
                "invalid_value",
                "version",
                "a version and a number of days",
            )),
        );
    };
    let input = SimulationInput {
        b: PolicyInput {
            rule_set: Some(json!(version)),
            ..PolicyInput::default()
        },
        days: Some(days),
        ..SimulationInput::default()
    };
    match jobs::start(&app.store, &viewer.caller, &input).await {
        Ok(row) => Redirect::to(&format!("/simulations/{}", row.id)).into_response(),
        Err(error) => back("/rules", Err(error)),
    }
}

#[derive(Template)]
#[template(path = "simulation.html")]
struct SimulationPage {
    frame: Frame,
    id: String,
    status: String,
    running: bool,
    done: i64,
    total: i64,
    error: String,
    window: String,
    label_a: String,
    label_b: String,
    rows: Vec<(String, String, String)>,
    verdict: String,
    bars_a: String,
    bars_b: String,
    flags: Vec<String>,
    moved: Vec<MovedRow>,
    errors: Vec<String>,
    publish: Option<u32>,
}

struct MovedRow {
    lead: String,
    arrived: String,
    a: String,
    b: String,
    why_a: String,
    why_b: String,
}

fn count(value: u64) -> String {
    let text = value.to_string();
    let mut out = String::new();
    for (index, digit) in text.chars().enumerate() {
        if index > 0 && (text.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn duration(secs: Option<u32>, zh: bool) -> String {
    match secs {
        None => "–".into(),
        Some(secs) if secs < 3600 => format!("{}{}", secs / 60, if zh { " 分钟" } else { " min" }),
        Some(secs) => format!(
            "{:.1}{}",
            f64::from(secs) / 3600.0,
            if zh { " 小时" } else { " h" }
        ),
    }
}

fn policy_label(viewer: &Viewer, policy: &PolicyReport, key: &str) -> String {
    match policy.rule_set_version {
        Some(version) => format!("{} · v{version}", viewer.t.t(key)),
        None => viewer.t.t(key).to_owned(),
    }
}

/// Share against target per rep, as bars with the target marked.
fn share_bars(policy: &PolicyReport) -> String {
    let rows: Vec<Bar> = policy
        .reps
        .iter()
        .filter(|rep| rep.leads > 0 || rep.target_share > 0.0)
        .map(|rep| Bar {
            label: rep.name.clone(),
            value: rep.share,
            target: Some(rep.target_share),
        })
        .collect();
    let max = rows
        .iter()
        .map(|row| row.value.max(row.target.unwrap_or(0.0)))
        .fold(0.0, f64::max);
    bars(&rows, max, true, "–")
}

/// The comparison as rows of (what, A, B).
fn rows(viewer: &Viewer, report: &Report) -> Vec<(String, String, String)> {
    let (a, b) = (&report.a, &report.b);
    let zh = viewer.t.is_zh();
    let t = |key: &str| viewer.t.t(key).to_owned();
    let mut rows = vec![
        (t("sim_assigned"), count(a.assigned), count(b.assigned)),
        (
            t("sim_held"),
            format!("{} ({})", count(a.held.held), count(a.held.never_placed)),
            format!("{} ({})", count(b.held.held), count(b.held.never_placed)),
        ),
        (
            t("sim_wait"),
            duration(a.held.wait_median_secs, zh),
            duration(b.held.wait_median_secs, zh),
        ),
        (t("sim_pooled"), count(a.pooled), count(b.pooled)),
        (t("sim_cap_hits"), count(a.cap_hits), count(b.cap_hits)),
        (
            t("sim_outside_hours"),
            count(a.outside_hours),
            count(b.outside_hours),
        ),
        (
            t("sim_gini"),
            format!("{:.3}", a.fairness.gini),
            format!("{:.3}", b.fairness.gini),
        ),
        (
            t("sim_deviation"),
            format!("{:.1} pt", a.fairness.max_deviation * 100.0),
            format!("{:.1} pt", b.fairness.max_deviation * 100.0),
        ),
    ];
    if let Some(outcomes) = &report.outcomes {
        let number = |pointer: &str| outcomes.pointer(pointer).and_then(Value::as_f64);
        let with_interval = |side: &str| {
            format!(
                "{:.1} [{:.1}, {:.1}]",
                number(&format!("/{side}/conversions")).unwrap_or_default(),
                number(&format!("/{side}/interval/0")).unwrap_or_default(),
                number(&format!("/{side}/interval/1")).unwrap_or_default()
            )
        };
        rows.push((t("sim_conversions"), with_interval("a"), with_interval("b")));
        if let (Some(va), Some(vb)) = (number("/a/value"), number("/b/value")) {
            rows.push((t("sim_value"), format!("{va:.0}"), format!("{vb:.0}")));
        }
    }
    if let Some(response) = &report.response {
        let number = |pointer: &str| {
            response
                .pointer(pointer)
                .and_then(Value::as_f64)
                .unwrap_or_default()
        };
        rows.push((
            t("sim_first_response"),
            duration(Some(number("/a/mean_first_response_secs") as u32), zh),
            duration(Some(number("/b/mean_first_response_secs") as u32), zh),
        ));
        rows.push((
            t("sim_sla_misses"),
            format!("{:.0}", number("/a/sla_misses")),
            format!("{:.0}", number("/b/sla_misses")),
        ));
    }
    rows
}

fn verdict(viewer: &Viewer, report: &Report) -> String {
    let Some(outcomes) = &report.outcomes else {
        return viewer.t.t("sim_no_outcomes").to_owned();
    };
    let number = |pointer: &str| {
        outcomes
            .pointer(pointer)
            .and_then(Value::as_f64)
            .unwrap_or_default()
    };
    let significant = outcomes
        .pointer("/difference/significant")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    format!(
        "B − A: {:+.1} [{:.1}, {:.1}] — {}",
        number("/difference/conversions"),
        number("/difference/interval/0"),
        number("/difference/interval/1"),
        viewer.t.t(if significant {
            "sim_significant"
        } else {
            "sim_not_significant"
        })
    )
}

/// A simulation: progress while it runs, the two policies side by side once done.
pub async fn page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<VersionQuery>,
) -> Response {
    let viewer = match super::rules::allowed_viewer(&app, &headers).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    if let Err(error) = viewer.caller.may(Operation::GetSimulation) {
        return error.into_response();
    }
    let row = match app.store.get_simulation(&id).await {
        Ok(Some(row)) => row,
        Ok(None) => return ApiError::not_found("simulation").into_response(),
        Err(error) => return ApiError::from(error).into_response(),
    };
    let visible = match jobs::visible(&app, &viewer.caller).await {
        Ok(visible) => visible,
        Err(error) => return error.into_response(),
    };
    let view = jobs::view(&row, visible.as_deref());
    let status = view["status"].as_str().unwrap_or_default().to_owned();
    let zh = viewer.t.is_zh();
    let mut page = SimulationPage {
        frame: viewer.frame(
            viewer.t.t("sim_title"),
            "rules",
            notice_text(&viewer.t, query.notice.as_deref()),
        ),
        id: row.id.clone(),
        running: matches!(status.as_str(), "queued" | "running"),
        status: viewer.t.t(&format!("sim_{status}")).to_owned(),
        done: row.done,
        total: row.total,
        error: view["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        window: String::new(),
        label_a: String::new(),
        label_b: String::new(),
        rows: Vec::new(),
        verdict: String::new(),
        bars_a: String::new(),
        bars_b: String::new(),
        flags: Vec::new(),
        moved: Vec::new(),
        errors: Vec::new(),
        publish: None,
    };
    let report: Option<Report> = serde_json::from_value(view["report"].clone()).ok();
    if let Some(report) = report {
        let window = &report.window;
        let local = |at: &Option<String>| {
            at.as_deref()
                .and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok())
                .map_or("–".to_owned(), |at| viewer.local(at.timestamp_micros()))
        };
        page.window = format!(
            "{} → {} · {}: {}",
            local(&window.first_arrival),
            local(&window.last_arrival),
            viewer.t.t("sim_leads"),
            count(window.leads)
        );
        page.label_a = policy_label(&viewer, &report.a, "sim_policy_a");
        page.label_b = policy_label(&viewer, &report.b, "sim_policy_b");
        page.rows = rows(&viewer, &report);
        page.rows.push((
            viewer.t.t("sim_moved").to_owned(),
            String::new(),
            format!(
                "{} ({:.1}%)",
                count(report.moved.leads),
                report.moved.share * 100.0
            ),
        ));
        if report.fidelity.compared > 0 {
            page.rows.push((
                viewer.t.t("sim_fidelity").to_owned(),
                format!(
                    "{:.1}%",
                    report.fidelity.same_owner as f64 * 100.0 / report.fidelity.compared as f64
                ),
                String::new(),
            ));
        }
        page.verdict = verdict(&viewer, &report);
        page.bars_a = share_bars(&report.a);
        page.bars_b = share_bars(&report.b);
        for policy in [&report.a, &report.b] {
            for rule in &policy.rules {
                if rule.never_matched || rule.shadowed {
                    page.flags.push(format!(
                        "{}: {} — {}",
                        policy.label,
                        rule.name.clone().unwrap_or_else(|| rule.id.clone()),
                        viewer.t.t(if rule.never_matched {
                            "sim_never_matched"
                        } else {
                            "sim_shadowed"
                        })
                    ));
                }
            }
        }
        let language = if zh { "zh" } else { "en" };
        page.moved = report
            .moved
            .sample
            .iter()
            .map(|moved| MovedRow {
                lead: moved
                    .lead_id
                    .clone()
                    .unwrap_or_else(|| format!("#{}", moved.line)),
                arrived: viewer.local(
                    chrono::DateTime::parse_from_rfc3339(&moved.arrived_at)
                        .map(|at| at.timestamp_micros())
                        .unwrap_or_default(),
                ),
                a: moved
                    .a
                    .rep_name
                    .clone()
                    .unwrap_or_else(|| viewer.t.state(&moved.a.outcome).to_owned()),
                b: moved
                    .b
                    .rep_name
                    .clone()
                    .unwrap_or_else(|| viewer.t.state(&moved.b.outcome).to_owned()),
                why_a: moved.a.explanation[language]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                why_b: moved.b.explanation[language]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            })
            .collect();
        page.errors = report
            .window
            .errors
            .iter()
            .take(20)
            .map(|error| {
                format!(
                    "#{} {} {}",
                    error["line"],
                    error["field"].as_str().unwrap_or_default(),
                    error["message"].as_str().unwrap_or_default()
                )
            })
            .collect();
        // Publishing from here: B is a stored version that is not the active one.
        let active = app
            .store
            .active_rule_set()
            .await
            .ok()
            .flatten()
            .map(|row| row.version as u32);
        page.publish = report.b.rule_set_version.filter(|version| {
            Some(*version) != active && viewer.caller.may(Operation::PublishRuleSet).is_ok()
        });
    }
    render(page)
}

/// Stops a simulation that is still going.
pub async fn cancel(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (viewer, _) = match posted(super::rules::allowed_viewer(&app, &headers).await, &body) {
        Ok(posted) => posted,
        Err(response) => return *response,
    };
    let outcome = crate::api::simulations::cancel_simulation(
        State(app.clone()),
        axum::Extension(viewer.caller.clone()),
        Path(id.clone()),
    )
    .await
    .map(drop);
    back(&format!("/simulations/{id}"), outcome)
}
