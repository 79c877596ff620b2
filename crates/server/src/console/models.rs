//! The scoring model in the console: the versions, the evaluation of one (ROC curve and
//! calibration as SVG, the strongest factors in plain words), "train now" and "publish". It
//! trains and publishes through `model::start` / `model::publish` with the viewer's caller,
//! as the API does.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use engine::model::{field_label, value_label};
use learn::{Evaluation, Split};

use super::charts::{Bar, bars, calibration, curve};
use super::rules::{VersionQuery, allowed_viewer};
use super::{Frame, back, notice_text, posted, render};
use crate::AppState;
use crate::error::ApiError;
use crate::model::{self, TrainRequest};
use crate::ops::Operation;

struct VersionRow {
    version: i64,
    status: String,
    status_label: String,
    auc: String,
    examples: String,
    created: String,
}

struct Shown {
    version: i64,
    status_label: String,
    error: String,
    from_file: bool,
    publishable: bool,
    evaluated: bool,
    lambda: String,
    holdout_label: String,
    auc: String,
    cv: String,
    log_loss: String,
    brier: String,
    lift: String,
    examples: String,
    roc: String,
    calibration: String,
    levels: Vec<(String, String, String)>,
    fields: String,
}

/// The retraining schedule as the form shows it.
struct ScheduleShown {
    every: String,
    auto_publish: bool,
    minimum_auc: String,
    next_run: String,
    last_result: String,
}

#[derive(Template)]
#[template(path = "models.html")]
struct ModelsPage {
    frame: Frame,
    can_train: bool,
    can_schedule: bool,
    versions: Vec<VersionRow>,
    shown: Option<Shown>,
    schedule: Option<ScheduleShown>,
    every_choices: Vec<(String, String)>,
}

/// The intervals the form offers (`every` values, the empty one for "only on demand").
const EVERY_CHOICES: [(&str, &str); 5] = [
    ("", "model_every_off"),
    ("1d", "model_every_1d"),
    ("7d", "model_every_7d"),
    ("14d", "model_every_14d"),
    ("30d", "model_every_30d"),
];

fn evaluation_of(row: &store::ModelRow) -> Option<Evaluation> {
    row.evaluation
        .as_deref()
        .and_then(|text| serde_json::from_str(text).ok())
}

/// The versions and one evaluation (the one asked for, else the newest).
pub async fn page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<VersionQuery>,
) -> Response {
    let viewer = match allowed_viewer(&app, &headers).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    if let Err(error) = viewer.caller.may(Operation::ListModels) {
        return error.into_response();
    }
    let t = viewer.t;
    let rows = match app.store.list_models(50).await {
        Ok(rows) => rows,
        Err(error) => return ApiError::from(error).into_response(),
    };
    let status_label = |row: &store::ModelRow| {
        t.t(&format!("model_status_{}", model::status(row)))
            .to_owned()
    };
    let versions = rows
        .iter()
        .map(|row| {
            let evaluation = evaluation_of(row);
            VersionRow {
                version: row.version,
                status: model::status(row).to_owned(),
                status_label: status_label(row),
                auc: evaluation
                    .as_ref()
                    .map_or("—".into(), |e| format!("{:.3}", e.holdout.auc)),
                examples: evaluation
                    .as_ref()
                    .map_or("—".into(), |e| e.examples.to_string()),
                created: viewer.local(row.created_at),
            }
        })
        .collect();
    let chosen = query
        .version
        .and_then(|version| rows.iter().find(|row| row.version == version))
        .or(rows.first());
    let shown = chosen.map(|row| {
        let evaluation = evaluation_of(row);
        let error = row
            .error
            .as_deref()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
            .and_then(|error| {
                let code = error["code"].as_str()?.to_owned();
                Some(t.error(&code).map_or_else(
                    || error["message"].as_str().unwrap_or("").to_owned(),
                    str::to_owned,
                ))
            })
            .unwrap_or_default();
        let mut shown = Shown {
            version: row.version,
            status_label: status_label(row),
            error,
            from_file: row.source == "file",
            publishable: row.source == "workspace"
                && matches!(row.status.as_str(), "draft" | "retired"),
            evaluated: evaluation.is_some(),
            lambda: String::new(),
            holdout_label: String::new(),
            auc: String::new(),
            cv: String::new(),
            log_loss: String::new(),
            brier: String::new(),
            lift: String::new(),
            examples: String::new(),
            roc: String::new(),
            calibration: String::new(),
            levels: Vec::new(),
            fields: String::new(),
        };
        if let Some(evaluation) = evaluation {
            let zh = t.is_zh();
            let holdout = &evaluation.holdout;
            shown.lambda = evaluation.lambda.to_string();
            shown.holdout_label = format!(
                "{}: {} / {}",
                t.t(match evaluation.split {
                    Split::Time { .. } => "model_holdout_time",
                    Split::Stratified { .. } => "model_holdout_stratified",
                }),
                evaluation.train,
                evaluation.test
            );
            shown.auc = format!("{:.3}", holdout.auc);
            shown.cv = format!(
                "{:.3} ± {:.3} ({} × )",
                evaluation.cross_validation.auc_mean,
                evaluation.cross_validation.auc_sd,
                evaluation.cross_validation.folds
            );
            shown.log_loss = format!(
                "{:.3} ({} {:.3})",
                holdout.log_loss,
                t.t("model_baseline"),
                holdout.baseline_log_loss
            );
            shown.brier = format!(
                "{:.3} ({} {:.3})",
                holdout.brier,
                t.t("model_baseline"),
                holdout.baseline_brier
            );
            shown.lift = format!("{:.2}×", holdout.lift_top_decile);
            shown.examples = format!(
                "{} ({} {} / {} {})",
                evaluation.examples,
                evaluation.won,
                t.state("won"),
                evaluation.lost,
                t.state("lost")
            );
            let (fpr, tpr) = if zh {
                ("误报率", "命中率")
            } else {
                ("false positive rate", "true positive rate")
            };
            shown.roc = curve(&holdout.roc, t.t("model_roc"), fpr, tpr);
            let (predicted, observed) = if zh {
                ("预测成交率", "实际成交率")
            } else {
                ("predicted", "observed")
            };
            let bins: Vec<(f64, f64)> = holdout
                .calibration
                .iter()
                .map(|bin| (bin.predicted, bin.observed))
                .collect();
            shown.calibration = calibration(&bins, t.t("model_calibration"), predicted, observed);
            shown.levels = evaluation
                .top_levels
                .iter()
                .map(|level| {
                    let value = value_label(&level.field, &level.value, zh);
                    let joiner = if value.starts_with(['<', '≥']) {
                        ""
                    } else {
                        "="
                    };
                    (
                        format!(
                            "{}{joiner}{value} · {}",
                            field_label(&level.field, zh),
                            t.t(if level.weight >= 0.0 {
                                "model_raises"
                            } else {
                                "model_lowers"
                            })
                        ),
                        format!("{:+.2}", level.weight),
                        level.count.to_string(),
                    )
                })
                .collect();
            let fields: Vec<Bar> = evaluation
                .fields
                .iter()
                .take(12)
                .map(|field| Bar {
                    label: field_label(&field.field, zh),
                    value: field.spread,
                    target: None,
                })
                .collect();
            let max = fields.iter().map(|bar| bar.value).fold(0.1, f64::max);
            shown.fields = bars(&fields, max, false, "—");
        }
        shown
    });
    let schedule = match model::schedule::get(&app.store, &viewer.caller).await {
        Ok(row) => Some(schedule_shown(&viewer, &row)),
        Err(_) => None,
    };
    let mut every_choices: Vec<(String, String)> = EVERY_CHOICES
        .iter()
        .map(|(value, word)| ((*value).to_owned(), t.t(word).to_owned()))
        .collect();
    // An interval set over the API that the list lacks is offered as it is, not lost on save.
    if let Some(schedule) = &schedule
        && !every_choices
            .iter()
            .any(|(value, _)| *value == schedule.every)
    {
        every_choices.push((schedule.every.clone(), schedule.every.clone()));
    }
    render(ModelsPage {
        frame: viewer.frame(
            t.t("model_title"),
            "models",
            notice_text(&t, query.notice.as_deref()),
        ),
        can_train: viewer.caller.may(Operation::TrainModel).is_ok(),
        can_schedule: viewer.caller.may(Operation::SetModelSchedule).is_ok(),
        versions,
        shown,
        schedule,
        every_choices,
    })
}

fn schedule_shown(viewer: &super::Viewer, row: &store::ModelScheduleRow) -> ScheduleShown {
    let t = viewer.t;
    let view = model::schedule::view(row);
    let last = &view["last_result"];
    let last_result = if last.is_null() {
        "—".to_owned()
    } else if let Some(code) = last.pointer("/error/code").and_then(|code| code.as_str()) {
        t.error(code).map_or_else(
            || last["error"]["message"].as_str().unwrap_or(code).to_owned(),
            str::to_owned,
        )
    } else {
        let auc = last["auc"]
            .as_f64()
            .map_or(String::new(), |auc| format!(" · AUC {auc:.3}"));
        let what = if last["published"] == true {
            "model_result_published"
        } else if last["reason"] == "below_minimum_auc" {
            "model_result_below"
        } else {
            "model_result_draft"
        };
        format!("v{}{auc} · {}", last["version"], t.t(what))
    };
    ScheduleShown {
        every: view["every"].as_str().unwrap_or_default().to_owned(),
        auto_publish: view["auto_publish"] == true,
        minimum_auc: view["minimum_auc"].to_string(),
        next_run: row
            .next_at
            .map_or_else(|| t.t("model_every_off").to_owned(), |at| viewer.local(at)),
        last_result,
    }
}

/// "Scheduled retraining", as `PUT /api/v1/models/schedule`.
pub async fn schedule(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (viewer, fields) = match posted(allowed_viewer(&app, &headers).await, &body) {
        Ok(posted) => posted,
        Err(response) => return *response,
    };
    let field = |name: &str| fields.get(name).map(|value| value.trim()).unwrap_or("");
    let minimum_auc = match field("minimum_auc") {
        "" => Ok(None),
        text => text.parse::<f64>().map(Some).map_err(|_| {
            ApiError::invalid(
                "invalid_value",
                "minimum_auc",
                "the minimum AUC is a number",
            )
        }),
    };
    let outcome = match minimum_auc {
        Ok(minimum_auc) => {
            let setting = model::schedule::ScheduleDocument {
                every: Some(field("every").to_owned()).filter(|every| !every.is_empty()),
                auto_publish: field("auto_publish") == "on",
                minimum_auc,
                time_zone: None,
            };
            model::schedule::set(&app.store, &viewer.caller, &setting, chrono::Utc::now())
                .await
                .map(drop)
        }
        Err(error) => Err(error),
    };
    back("/models", outcome)
}

/// "Train now": on the workspace's closed leads, as `POST /api/v1/models`.
pub async fn train(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (viewer, _) = match posted(allowed_viewer(&app, &headers).await, &body) {
        Ok(posted) => posted,
        Err(response) => return *response,
    };
    match model::start(&app.store, &viewer.caller, &TrainRequest::default()).await {
        Ok(row) => Redirect::to(&format!("/models?version={}", row.version)).into_response(),
        Err(error) => back("/models", Err(error)),
    }
}

/// "Publish this model", as `POST /api/v1/models/{version}/publish`.
pub async fn publish(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(version): Path<i64>,
    body: Bytes,
) -> Response {
    let (viewer, _) = match posted(allowed_viewer(&app, &headers).await, &body) {
        Ok(posted) => posted,
        Err(response) => return *response,
    };
    let outcome = model::publish(&app.store, &viewer.caller, version).await;
    if outcome.is_ok() {
        app.router.sweep_soon();
    }
    back(&format!("/models?version={version}"), outcome.map(drop))
}
