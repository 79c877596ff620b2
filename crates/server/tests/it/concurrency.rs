//! Invariants under many requests in flight: exact round robin, caps never exceeded, one lead
//! per external id — on SQLite and on PostgreSQL.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::json;

use crate::support::{Backend, TestApp, lead};

async fn post_many(
    app: &Arc<TestApp>,
    bodies: Vec<serde_json::Value>,
) -> Vec<(StatusCode, serde_json::Value)> {
    let tasks: Vec<_> = bodies
        .into_iter()
        .map(|body| {
            let app = Arc::clone(app);
            tokio::spawn(async move { app.post("/api/v1/leads", &body).await })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("task"));
    }
    results
}

fn owners(results: &[(StatusCode, serde_json::Value)]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for (status, body) in results {
        assert!(status.is_success(), "{body}");
        let owner = body["lead"]["owner_id"]
            .as_str()
            .map_or_else(|| "-".to_owned(), str::to_owned);
        *counts.entry(owner).or_default() += 1;
    }
    counts
}

async fn round_robin_stays_exact(app: TestApp) {
    app.round_robin_team(10, json!({})).await;
    let app = Arc::new(app);
    let results = post_many(
        &app,
        (0..1000)
            .map(|index| lead(&format!("rr-{index}")))
            .collect(),
    )
    .await;
    let counts = owners(&results);
    assert_eq!(counts.len(), 10, "{counts:?}");
    assert!(counts.values().all(|count| *count == 100), "{counts:?}");
}

async fn caps_hold(app: TestApp) {
    app.round_robin_team(5, json!({"max_open": 30, "max_per_day": 40}))
        .await;
    let app = Arc::new(app);
    let results = post_many(
        &app,
        (0..300)
            .map(|index| lead(&format!("cap-{index}")))
            .collect(),
    )
    .await;
    let counts = owners(&results);
    for rep in 0..5 {
        assert_eq!(counts.get(&format!("r{rep:02}")), Some(&30), "{counts:?}");
    }
    assert_eq!(
        counts.get("-"),
        Some(&150),
        "the rest overflow to the pool: {counts:?}"
    );
}

async fn one_lead_per_external_id(app: TestApp) {
    app.round_robin_team(3, json!({})).await;
    let app = Arc::new(app);
    let results = post_many(&app, (0..100).map(|_| lead("same-one")).collect()).await;
    let created = results
        .iter()
        .filter(|(status, _)| *status == StatusCode::CREATED)
        .count();
    let duplicates = results
        .iter()
        .filter(|(status, body)| *status == StatusCode::OK && body["duplicate"] == true)
        .count();
    assert_eq!((created, duplicates), (1, 99));
    let ids: std::collections::BTreeSet<&str> = results
        .iter()
        .filter_map(|(_, body)| body["lead"]["id"].as_str())
        .collect();
    assert_eq!(ids.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_leads_rotate_exactly_on_sqlite() {
    round_robin_stays_exact(TestApp::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_leads_rotate_exactly_on_postgres() {
    if let Some(app) = TestApp::new(Backend::Postgres).await {
        round_robin_stays_exact(app).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_leads_never_exceed_caps_on_sqlite() {
    caps_hold(TestApp::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_leads_never_exceed_caps_on_postgres() {
    if let Some(app) = TestApp::new(Backend::Postgres).await {
        caps_hold(app).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_copies_make_one_lead_on_sqlite() {
    one_lead_per_external_id(TestApp::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_copies_make_one_lead_on_postgres() {
    if let Some(app) = TestApp::new(Backend::Postgres).await {
        one_lead_per_external_id(app).await;
    }
}
