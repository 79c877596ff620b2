//! "Distribute optimally" (批量最优分配) on the pool page: a manager ticks pool leads and picks
//! a team; the console shows the plan — who gets which lead and why, the plan's value beside
//! one-by-one routing, each rep's share — and assigns only when confirmed. Both steps go through
//! `POST /api/v1/pool/distribute` with the viewer's caller, as the API does.

use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{Frame, back, posted, render, rep_names, viewer};
use crate::AppState;
use crate::api::pool::{PoolDistributeInput, distribute};
use crate::error::ApiError;
use crate::extract::Body;

struct PlannedRow {
    lead: String,
    owner: String,
    why: String,
    refused: bool,
}

struct ShareRow {
    rep: String,
    leads: String,
    band: String,
}

#[derive(Template)]
#[template(path = "distribute.html")]
struct PreviewPage {
    frame: Frame,
    rows: Vec<PlannedRow>,
    shares: Vec<ShareRow>,
    summary: String,
    lead_ids: Vec<String>,
    team_id: String,
    band: String,
}

/// The request a form asks for: the ticked leads, the team and the band.
fn input(fields: &std::collections::HashMap<String, String>, dry_run: bool) -> PoolDistributeInput {
    let band = fields
        .get("band")
        .map(|band| band.trim())
        .filter(|band| !band.is_empty())
        .map(|band| match band.parse::<f64>() {
            Ok(number) => Value::from(number),
            Err(_) => Value::from(band),
        });
    let mut lead_ids: Vec<String> = fields
        .keys()
        .filter_map(|key| key.strip_prefix("lead_"))
        .map(str::to_owned)
        .collect();
    lead_ids.sort();
    PoolDistributeInput {
        lead_ids,
        team_id: fields.get("team_id").cloned().unwrap_or_default(),
        band,
        dry_run,
    }
}

/// The plan for the ticked leads, nothing assigned yet.
pub async fn preview(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (viewer, fields) = match posted(viewer(&app, &headers).await, &body) {
        Ok(posted) => posted,
        Err(response) => return *response,
    };
    let request = input(&fields, true);
    if request.lead_ids.is_empty() {
        return back(
            "/pool",
            Err(ApiError::invalid(
                "missing_field",
                "lead_ids",
                "tick the leads to distribute",
            )),
        );
    }
    let (lead_ids, team_id) = (request.lead_ids.clone(), request.team_id.clone());
    let band = fields.get("band").cloned().unwrap_or_default();
    let answer = match distribute(
        State(app.clone()),
        Extension(viewer.caller.clone()),
        Body(request),
    )
    .await
    {
        Ok(answer) => answer.0,
        Err(error) => return back("/pool", Err(error)),
    };
    let t = viewer.t;
    let names = match rep_names(&app).await {
        Ok(names) => names,
        Err(error) => return error.into_response(),
    };
    let language = if t.is_zh() { "zh" } else { "en" };
    let mut rows = Vec::new();
    for item in answer["items"].as_array().into_iter().flatten() {
        let id = item["lead_id"].as_str().unwrap_or_default();
        let lead = match app.store.get_lead(id).await {
            Ok(Some(row)) => super::line(&viewer, &row, &names).name,
            _ => id.to_owned(),
        };
        let decision = &item["decision"];
        let refused = decision.is_null();
        rows.push(PlannedRow {
            lead,
            owner: decision["owner_id"]
                .as_str()
                .map(|owner| {
                    names
                        .get(owner)
                        .cloned()
                        .unwrap_or_else(|| owner.to_owned())
                })
                .unwrap_or_else(|| "—".to_owned()),
            why: if refused {
                let code = item["error"]["code"].as_str().unwrap_or("refused");
                t.error(code).map_or_else(
                    || item["error"]["message"].as_str().unwrap_or(code).to_owned(),
                    str::to_owned,
                )
            } else {
                decision["explanation"][language]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            },
            refused,
        });
    }
    let plan = &answer["plan"];
    let shares = plan["reps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|rep| {
            let id = rep["rep_id"].as_str().unwrap_or_default();
            ShareRow {
                rep: names.get(id).cloned().unwrap_or_else(|| id.to_owned()),
                leads: rep["leads"].to_string(),
                band: format!(
                    "{}–{}",
                    rep["lower"],
                    rep["upper"]
                        .as_u64()
                        .map_or("∞".to_owned(), |upper| upper.to_string())
                ),
            }
        })
        .collect();
    let percent = 100.0 * plan["one_by_one_gap"].as_f64().unwrap_or(0.0);
    let summary = if t.is_zh() {
        format!(
            "最优方案期望价值 {}，逐条按到达顺序分配为 {}（高 {percent:.1}%）。",
            plan["objective"], plan["one_by_one_objective"]
        )
    } else {
        format!(
            "The plan's expected value is {}; one by one in arrival order it would be {} ({percent:.1}% better).",
            plan["objective"], plan["one_by_one_objective"]
        )
    };
    render(PreviewPage {
        frame: viewer.frame(t.t("distribute_title"), "pool", String::new()),
        rows,
        shares,
        summary,
        lead_ids,
        team_id,
        band,
    })
}

/// The plan, made: the same request without the dry run (planned afresh against the state as
/// it is now).
pub async fn confirm(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (viewer, fields) = match posted(viewer(&app, &headers).await, &body) {
        Ok(posted) => posted,
        Err(response) => return *response,
    };
    let outcome = distribute(
        State(app.clone()),
        Extension(viewer.caller.clone()),
        Body(input(&fields, false)),
    )
    .await
    .map(drop);
    back("/pool", outcome)
}
