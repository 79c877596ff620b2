//! Simulations as jobs, for the API and the console: checked when asked for (a bad request is
//! a 4xx at once), then run in the background one at a time per instance (a replay takes a
//! core), with progress and the report kept in the `simulations` table so any instance can
//! answer for it and a cancel reaches the one running it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Value, json};
use store::SimulationRow;

use super::{Control, Prepared, SimulationInput, Stopped, prepare, simulate};
use crate::auth::Caller;
use crate::error::ApiError;

/// One replay at a time per instance; others wait as `queued`.
static RUNNING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);
/// How often a running job records its progress (and hears a cancel).
const PROGRESS_EVERY: Duration = Duration::from_millis(500);
/// A job not heard from for this long died with its instance.
pub const STALE_AFTER_SECS: i64 = 60;

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Checks the caller and the simulation and starts it; the job as stored.
pub async fn start(
    store: &store::Store,
    caller: &Caller,
    input: &SimulationInput,
) -> Result<SimulationRow, ApiError> {
    caller.may(crate::ops::Operation::CreateSimulation)?;
    let prepared = prepare(store, input, chrono::Utc::now(), None).await?;
    let at = now_micros();
    let row = SimulationRow {
        id: format!("sim_{}", uuid::Uuid::now_v7().simple()),
        created_by: caller.actor(),
        created_at: at,
        updated_at: at,
        status: "queued".into(),
        request: crate::extract::stored_request(input),
        ..SimulationRow::default()
    };
    store.insert_simulation(&row).await?;
    tokio::spawn(run(store.clone(), row.id.clone(), prepared));
    Ok(row)
}

async fn run(store: store::Store, id: String, prepared: Prepared) {
    let control = Arc::new(Control::default());
    // Wait for the one slot, saying so, and hearing a cancel.
    let permit = loop {
        if let Ok(permit) = RUNNING.try_acquire() {
            break permit;
        }
        match store
            .simulation_progress(&id, "queued", 0, 0, now_micros())
            .await
        {
            Ok(false) => tokio::time::sleep(Duration::from_secs(1)).await,
            Ok(true) => {
                finish(&store, &id, Err(Stopped::Cancelled)).await;
                return;
            }
            Err(error) => {
                tracing::error!(%error, simulation = %id, "could not record a simulation's progress");
                return;
            }
        }
    };
    let watcher = {
        let (store, id, control) = (store.clone(), id.clone(), control.clone());
        tokio::spawn(async move {
            loop {
                let done = control.done.load(Ordering::Relaxed) as i64;
                let total = control.total.load(Ordering::Relaxed) as i64;
                if let Ok(true) = store
                    .simulation_progress(&id, "running", done, total, now_micros())
                    .await
                {
                    control.cancelled.store(true, Ordering::Relaxed);
                }
                tokio::time::sleep(PROGRESS_EVERY).await;
            }
        })
    };
    let result = simulate(&store, prepared, control.clone()).await;
    watcher.abort();
    drop(permit);
    let (done, total) = (
        control.done.load(Ordering::Relaxed),
        control.total.load(Ordering::Relaxed),
    );
    if let Err(error) = store
        .simulation_progress(&id, "running", done as i64, total as i64, now_micros())
        .await
    {
        tracing::warn!(%error, simulation = %id, "could not record a simulation's progress");
    }
    finish(&store, &id, result).await;
}

async fn finish(store: &store::Store, id: &str, result: Result<super::Report, Stopped>) {
    let (status, report, error) = match result {
        Ok(report) => ("done", serde_json::to_string(&report).ok(), None),
        Err(Stopped::Cancelled) => ("cancelled", None, None),
        Err(Stopped::Failed(error)) => (
            "failed",
            None,
            Some(
                json!({"code": error.code, "message": error.message, "field": error.field})
                    .to_string(),
            ),
        ),
    };
    if let Err(error) = store
        .finish_simulation(
            id,
            status,
            report.as_deref(),
            error.as_deref(),
            now_micros(),
        )
        .await
    {
        tracing::error!(%error, simulation = %id, "could not record a simulation's end");
    }
}

/// Reps a manager sees in reports: their teams' members and themselves; `None` for everyone.
pub async fn visible(
    app: &crate::AppState,
    caller: &Caller,
) -> Result<Option<Vec<String>>, ApiError> {
    if caller.role != crate::auth::Role::Manager {
        return Ok(None);
    }
    let mut reps = crate::api::access::members(app, &caller.teams).await?;
    reps.extend(caller.rep_id.clone());
    Ok(Some(reps))
}

/// A job's status as shown: `interrupted` for one whose instance stopped answering.
pub fn status(row: &SimulationRow) -> &str {
    let stale = matches!(row.status.as_str(), "queued" | "running")
        && now_micros() - row.updated_at > STALE_AFTER_SECS * 1_000_000;
    if stale {
        "interrupted"
    } else {
        row.status.as_str()
    }
}

/// A job as the API shows it. Managers see only their teams' reps in the report; a job whose
/// instance stopped answering reads as `interrupted`.
pub fn view(row: &SimulationRow, visible: Option<&[String]>) -> Value {
    let stale = matches!(row.status.as_str(), "queued" | "running")
        && now_micros() - row.updated_at > STALE_AFTER_SECS * 1_000_000;
    let status = if stale {
        "interrupted"
    } else {
        row.status.as_str()
    };
    let mut view = json!({
        "id": row.id,
        "status": status,
        "created_by": row.created_by,
        "created_at": crate::leads::time(row.created_at),
        "updated_at": crate::leads::time(row.updated_at),
        "progress": {"done": row.done, "total": row.total},
        "cancel_requested": row.cancel_requested,
        "request": serde_json::from_str::<Value>(&row.request).unwrap_or(Value::Null),
    });
    if let Some(error) = &row.error {
        view["error"] = serde_json::from_str(error).unwrap_or(Value::Null);
    }
    if let Some(report) = &row.report {
        let mut report: Value = serde_json::from_str(report).unwrap_or(Value::Null);
        if let Some(visible) = visible {
            narrow(&mut report, visible);
        }
        view["report"] = report;
    }
    view
}

/// Keeps in a report only what concerns these reps: their rows, and moved leads that came
/// from or went to one of them.
pub fn narrow(report: &mut Value, visible: &[String]) {
    let seen = |value: &Value| {
        value
            .as_str()
            .is_some_and(|id| visible.iter().any(|rep| rep == id))
    };
    for side in ["a", "b"] {
        if let Some(reps) = report
            .get_mut(side)
            .and_then(|side| side.get_mut("reps"))
            .and_then(Value::as_array_mut)
        {
            reps.retain(|rep| seen(&rep["id"]));
        }
        if let Some(policy) = report.get_mut(side) {
            policy["fairness"]["max_deviation_rep"] = policy["fairness"]["max_deviation_rep"]
                .as_str()
                .filter(|id| visible.iter().any(|rep| rep == id))
                .map_or(Value::Null, Value::from);
        }
    }
    if let Some(sample) = report
        .pointer_mut("/moved/sample")
        .and_then(Value::as_array_mut)
    {
        sample.retain(|moved| seen(&moved["a"]["rep_id"]) || seen(&moved["b"]["rep_id"]));
    }
}
