//! `/api/v1/reports`: the dashboard's figures and a rep's scorecard for BI tools and
//! integrators — the same computation the console and the team digest show
//! (`crate::reports`), with the same authority: admins and reporting keys read every team,
//! managers their own, reps their own scorecard.

use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::reports;

#[derive(Debug, Deserialize, IntoParams)]
pub struct ReportQuery {
    /// Whole days up to now, in the workspace's zone: 1 to 366, default 7.
    pub days: Option<i64>,
    /// One team (a manager's only team when left out, every team for admins).
    pub team_id: Option<String>,
}

fn days(query: &ReportQuery) -> ApiResult<i64> {
    match query.days {
        None => Ok(7),
        Some(days) if (1..=366).contains(&days) => Ok(days),
        Some(_) => Err(ApiError::invalid(
            "invalid_value",
            "days",
            "days is from 1 to 366",
        )),
    }
}

/// The dashboard's figures for the leads that came in over the last `days` days: totals,
/// first response, SLA, the funnel, day by day, per rep (load, overdue, response, SLA,
/// follow-up depth, wins, feedback) and conversion by source and rule. Durations are seconds,
/// shares 0–1.
#[utoipa::path(get, path = "/api/v1/reports/dashboard", tag = "reports", params(ReportQuery),
    responses((status = 200, description = "The figures"), (status = 404, description = "No such team in reach")),
    security(("api_key" = [])))]
pub async fn dashboard(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<ReportQuery>,
) -> ApiResult<Json<Value>> {
    let days = days(&query)?;
    let zone = reports::workspace_zone(&app).await;
    let figures = reports::team_figures(&app, &caller, days, query.team_id, zone).await?;
    Ok(Json(reports::view(&figures)))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ScorecardQuery {
    /// Whole days up to now: 1 to 366, default 30.
    pub days: Option<i64>,
}

/// One rep's figures over the last `days` days (their scorecard, 数据驱动考核): the leads they
/// own, day by day and in the funnel, and their row of the dashboard.
#[utoipa::path(get, path = "/api/v1/reports/reps/{id}", tag = "reports", params(("id" = String, Path), ScorecardQuery),
    responses((status = 200, description = "The figures"), (status = 404, description = "No such rep in reach")),
    security(("api_key" = [])))]
pub async fn scorecard(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(query): Query<ScorecardQuery>,
) -> ApiResult<Json<Value>> {
    let days = days(&ReportQuery {
        days: Some(query.days.unwrap_or(30)),
        team_id: None,
    })?;
    let zone = reports::workspace_zone(&app).await;
    let (_, figures) = reports::rep_figures(&app, &caller, &id, days, zone).await?;
    Ok(Json(reports::view(&figures)))
}
