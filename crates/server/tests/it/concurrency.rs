//! Invariants under many requests in flight: exact round robin, caps never exceeded, one lead
//! per external id — on SQLite and on PostgreSQL.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::json;

use crate::support::{Backend, TestApp, empty_database, lead, post_batches};

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

/// The routing worker keeps its connection while leads keep coming, but lets it go when another
/// writer waits: on SQLite, the tallies' fold (as the service runs it every two seconds) gets
/// the one writer connection while sixteen clients keep sending leads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_writer_gets_its_turn_during_intake_on_sqlite() {
    let app = Arc::new(TestApp::sqlite().await);
    app.round_robin_team(3, json!({})).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..16)
        .map(|client| {
            let (app, stop) = (Arc::clone(&app), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut sent = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let body = lead(&format!("turn-{client}-{sent}"));
                    let (status, answer) = app.post("/api/v1/leads", &body).await;
                    assert_eq!(status, StatusCode::CREATED, "{answer}");
                    sent += 1;
                }
                sent
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let folded = app.state.store.fold_tallies().await;
    let waited = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut sent = 0;
    for client in clients {
        sent += client.await.expect("client");
    }
    folded.expect("the fold had the writer connection");
    assert!(sent > 16, "intake ran meanwhile: {sent} leads");
    assert!(waited < std::time::Duration::from_secs(3), "{waited:?}");
}

/// Two instances on one database route at once, each with its own worker and cached state:
/// the routing lock serialises them and each reloads what the other wrote, so the rotation
/// stays exact and no cap is exceeded across the two.
async fn two_instances_share_rotation_and_caps(app: TestApp) {
    app.round_robin_team(6, json!({"max_open": 90})).await;
    let other = Arc::new(TestApp::with_state(
        server::AppState::without_clock(app.state.store.clone()),
        app.key.clone(),
    ));
    let app = Arc::new(app);
    let tasks: Vec<_> = (0..600)
        .map(|index| {
            let instance = Arc::clone(if index % 2 == 0 { &app } else { &other });
            let body = lead(&format!("twin-{index}"));
            tokio::spawn(async move { instance.post("/api/v1/leads", &body).await })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("task"));
    }
    let counts = owners(&results);
    for rep in 0..6 {
        assert_eq!(counts.get(&format!("r{rep:02}")), Some(&90), "{counts:?}");
    }
    assert_eq!(
        counts.get("-"),
        Some(&60),
        "the rest go to the pool: {counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_rotation_and_caps_on_sqlite() {
    two_instances_share_rotation_and_caps(TestApp::sqlite().await).await;
}

/// Two stores on one SQLite file, as two processes would have, each sent requests of 10 leads,
/// while a third connection keeps committing lines of the audit log: each worker routes its
/// next batch while its last one writes, and a commit of the others between two of its batches
/// makes it route the second again (`RoutingTx::data_version`; when that happens is up to the
/// scheduler, and `data_version_moves_only_with_another_connections_commit` checks the
/// signal itself). The rotation stays exact and no cap is exceeded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_sqlite_file_share_rotation_and_caps() {
    let (url, dir) = empty_database(Backend::Sqlite).await.expect("sqlite");
    let store = store::Store::connect(&url).await.expect("connect");
    store.migrate().await.expect("migrate");
    let other = store::Store::connect(&url).await.expect("connect");
    let third = store::Store::connect(&url).await.expect("connect");
    let app = TestApp::with_store(store, dir).await;
    app.round_robin_team(6, json!({"max_open": 300})).await;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let committer = tokio::spawn({
        let done = Arc::clone(&done);
        async move {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let row = store::AuditRow::new("test".into(), "noise", "none", None, &json!({}), 0);
                third.insert_audit(&row).await.expect("audit");
                tokio::task::yield_now().await;
            }
        }
    });
    let other = Arc::new(TestApp::with_state(
        server::AppState::without_clock(other),
        app.key.clone(),
    ));
    let app = Arc::new(app);
    let tasks: Vec<_> = (0..240)
        .map(|request| {
            let instance = Arc::clone(if request % 2 == 0 { &app } else { &other });
            let leads: Vec<_> = (0..10)
                .map(|index| lead(&format!("twin-{request}-{index}")))
                .collect();
            let body = json!({ "leads": leads });
            tokio::spawn(async move { instance.post("/api/v1/leads/batch", &body).await })
        })
        .collect();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for task in tasks {
        let (status, body) = task.await.expect("task");
        assert_eq!(status, StatusCode::OK, "{body}");
        for item in body["items"].as_array().expect("items") {
            assert_eq!(item["result"], "created", "{item}");
            let owner = item["lead"]["owner_id"].as_str().unwrap_or("-").to_owned();
            *counts.entry(owner).or_default() += 1;
        }
    }
    for rep in 0..6 {
        assert_eq!(counts.get(&format!("r{rep:02}")), Some(&300), "{counts:?}");
    }
    assert_eq!(
        counts.get("-"),
        Some(&600),
        "the rest go to the pool: {counts:?}"
    );
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    committer.await.expect("committer");
}

/// What routing ahead rests on: on one SQLite connection, `data_version` is the same from one
/// routing transaction to the next, its own commits included, unless another connection
/// committed in between.
#[tokio::test]
async fn data_version_moves_only_with_another_connections_commit() {
    let (url, _dir) = empty_database(Backend::Sqlite).await.expect("sqlite");
    let store = store::Store::connect(&url).await.expect("connect");
    store.migrate().await.expect("migrate");
    let other = store::Store::connect(&url).await.expect("connect");
    assert!(store.reads_ahead());
    let audit = || store::AuditRow::new("test".into(), "noise", "none", None, &json!({}), 0);
    let mut connection = store.routing_connection().await.expect("connection");
    let mut version = async |write: bool| {
        let mut tx = connection.begin().await.expect("begin");
        if write {
            tx.insert_audit(&[audit()]).await.expect("audit");
        }
        let version = tx.data_version().await.expect("data_version");
        tx.commit_unsynced()
            .await
            .expect("commit")
            .durable()
            .await
            .expect("durable");
        version.expect("SQLite has a data_version")
    };
    let first = version(true).await;
    assert_eq!(version(true).await, first, "its own commits do not move it");
    store.insert_audit(&audit()).await.expect("audit");
    let moved = version(false).await;
    assert_ne!(moved, first, "a commit on the store's reader pool moves it");
    other.insert_audit(&audit()).await.expect("audit");
    let again = version(false).await;
    assert_ne!(again, moved, "another store's commit moves it");
    assert_eq!(version(false).await, again);
    drop(connection);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_rotation_and_caps_on_postgres() {
    if let Some(app) = TestApp::new(Backend::Postgres).await {
        two_instances_share_rotation_and_caps(app).await;
    }
}

/// Customers arriving again while the batch holding their first lead still writes: on SQLite
/// the next batch is routed meanwhile (`route_ahead`), from a reader that does not see that
/// batch yet, so it must lay the batch's leads, contacts and external ids over what it reads.
/// Owner affinity and external ids then hold as if the batches ran one after the other.
async fn customers_are_known_to_the_next_batch(app: TestApp) {
    app.round_robin_team(4, json!({})).await;
    app.publish(json!({"rules": [{"id": "all", "target": {"team": "t"}, "owner_affinity": true}]}))
        .await;
    let app = Arc::new(app);
    // 40 customers arriving 25 times each, in requests of 20 leads (more than one batch takes):
    // every request holds each customer at most once. Their external ids come ten, ten and
    // five times.
    let leads = (0..1000)
        .map(|index| {
            let customer = (index / 20 + index) % 40;
            json!({"external_id": format!("c{customer}-{}", index / 400), "name": "客户",
                "phone": format!("1390000{customer:04}")})
        })
        .collect();
    let results = post_batches(&app, leads, 20).await;
    let mut owner_of_phone: BTreeMap<String, String> = BTreeMap::new();
    let mut lead_of_external: BTreeMap<String, String> = BTreeMap::new();
    let mut created = 0;
    for (result, lead) in &results {
        match result.as_str() {
            "created" => created += 1,
            "duplicate" => {}
            _ => panic!("{result}: {lead}"),
        }
        let owner = lead["owner_id"].as_str().expect("an owner").to_owned();
        let phone = lead["phone"].as_str().expect("phone").to_owned();
        let previous = owner_of_phone.entry(phone).or_insert_with(|| owner.clone());
        assert_eq!(*previous, owner, "a customer with two owners: {lead}");
        let external = lead["external_id"]
            .as_str()
            .expect("external id")
            .to_owned();
        let id = lead["id"].as_str().expect("id").to_owned();
        let previous = lead_of_external
            .entry(external)
            .or_insert_with(|| id.clone());
        assert_eq!(*previous, id, "an external id with two leads: {lead}");
    }
    assert_eq!(lead_of_external.len(), 120);
    assert_eq!(created, 120);
    assert_eq!(owner_of_phone.len(), 40);
    if app.state.store.reads_ahead() {
        let ahead = server::metrics::ROUTED_AHEAD.load(std::sync::atomic::Ordering::Relaxed);
        assert!(ahead > 0, "no batch was routed ahead");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_are_known_to_the_next_batch_on_sqlite() {
    customers_are_known_to_the_next_batch(TestApp::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_are_known_to_the_next_batch_on_postgres() {
    if let Some(app) = TestApp::new(Backend::Postgres).await {
        customers_are_known_to_the_next_batch(app).await;
    }
}

/// Sends `count` copies of one request at once; the statuses and answers.
async fn send_many(
    app: &Arc<TestApp>,
    method: axum::http::Method,
    count: usize,
    path: impl Fn(usize) -> String,
    body: impl Fn(usize) -> serde_json::Value,
) -> Vec<(StatusCode, serde_json::Value)> {
    let tasks: Vec<_> = (0..count)
        .map(|index| {
            let app = Arc::clone(app);
            let (method, path, body) = (method.clone(), path(index), body(index));
            tokio::spawn(async move {
                let key = app.key.clone();
                app.send(method, &path, Some(&body), Some(&key)).await
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("task"));
    }
    results
}

/// Creates without an id each get their own full-length id; creates with one id or one
/// username have exactly one winner and the rest `409 already_exists`, never an overwrite.
async fn concurrent_creates_keep_every_record(app: TestApp) {
    let app = Arc::new(app);
    let post = axum::http::Method::POST;
    let created = send_many(
        &app,
        post.clone(),
        48,
        |_| "/api/v1/reps".into(),
        |index| json!({"name": format!("Rep {index}")}),
    )
    .await;
    let mut ids = std::collections::BTreeSet::new();
    for (status, body) in &created {
        assert_eq!(*status, StatusCode::CREATED, "{body}");
        let id = body["id"].as_str().expect("id");
        assert!(id.len() >= 36, "a full-length id: {id}");
        ids.insert(id.to_owned());
    }
    assert_eq!(ids.len(), 48);
    let (_, listed) = app.get("/api/v1/reps?limit=500").await;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(48));

    for (path, body) in [
        ("/api/v1/reps", json!({"id": "same", "name": "Same"})),
        ("/api/v1/teams", json!({"id": "same", "name": "Same"})),
        (
            "/api/v1/calendars",
            json!({"id": "same", "name": "Same", "time_zone": "Asia/Shanghai"}),
        ),
        (
            "/api/v1/users",
            json!({"username": "same", "role": "admin", "password": "correct horse battery"}),
        ),
    ] {
        let results = send_many(&app, post.clone(), 6, |_| path.into(), |_| body.clone()).await;
        let won = results
            .iter()
            .filter(|(status, _)| *status == StatusCode::CREATED)
            .count();
        assert_eq!(won, 1, "{path}: {results:?}");
        for (status, answer) in &results {
            if *status != StatusCode::CREATED {
                assert_eq!(*status, StatusCode::CONFLICT, "{path}: {answer}");
                assert_eq!(answer["error"]["code"], json!("already_exists"), "{answer}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_keep_every_record_on_sqlite() {
    concurrent_creates_keep_every_record(TestApp::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_keep_every_record_on_postgres() {
    if let Some(app) = TestApp::new(Backend::Postgres).await {
        concurrent_creates_keep_every_record(app).await;
    }
}

/// Two writers change different fields of one rep at once, twenty times: neither change is
/// lost. A writer naming a stale version gets 412 and changes nothing.
async fn racing_writers_lose_no_update(app: TestApp) {
    app.round_robin_team(1, json!({})).await;
    let app = Arc::new(app);
    for round in 0..20 {
        let caps = {
            let app = Arc::clone(&app);
            tokio::spawn(async move {
                let key = app.key.clone();
                app.send(
                    axum::http::Method::PATCH,
                    "/api/v1/reps/r00",
                    Some(&json!({"caps": {"max_open": 100 + round}})),
                    Some(&key),
                )
                .await
            })
        };
        let status = {
            let app = Arc::clone(&app);
            let status = if round % 2 == 0 { "paused" } else { "active" };
            tokio::spawn(async move {
                let key = app.key.clone();
                app.send(
                    axum::http::Method::PUT,
                    "/api/v1/reps/r00/status",
                    Some(&json!({"status": status})),
                    Some(&key),
                )
                .await
            })
        };
        let (caps, status) = (caps.await.expect("task"), status.await.expect("task"));
        assert_eq!(caps.0, StatusCode::OK, "{}", caps.1);
        assert_eq!(status.0, StatusCode::OK, "{}", status.1);
        let (_, rep) = app.get("/api/v1/reps/r00").await;
        assert_eq!(
            rep["caps"]["max_open"],
            json!(100 + round),
            "round {round}: {rep}"
        );
        let expected = if round % 2 == 0 { "paused" } else { "active" };
        assert_eq!(rep["status"], json!(expected), "round {round}: {rep}");
    }
    let (_, rep) = app.get("/api/v1/reps/r00").await;
    let version = rep["version"].as_i64().expect("version");
    let request = |version: i64| {
        axum::http::Request::builder()
            .method("PATCH")
            .uri("/api/v1/reps/r00")
            .header("authorization", format!("Bearer {}", app.key))
            .header("content-type", "application/json")
            .header("if-match", format!("\"{version}\""))
            .body(axum::body::Body::from(r#"{"name": "Renamed"}"#))
            .expect("request")
    };
    let (status, answer) = app.raw(request(version - 1)).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{answer}");
    assert_eq!(answer["error"]["code"], json!("version_mismatch"));
    let (status, answer) = app.raw(request(version)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["version"], json!(version + 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_writers_lose_no_update_on_sqlite() {
    racing_writers_lose_no_update(TestApp::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_writers_lose_no_update_on_postgres() {
    if let Some(app) = TestApp::new(Backend::Postgres).await {
        racing_writers_lose_no_update(app).await;
    }
}

/// A batch of routing jobs with bad bytes among them: the bad ones are refused alone (422 at
/// the door, or failing alone in the worker), every valid lead is created.
async fn a_poisoned_job_fails_alone(app: TestApp) {
    app.round_robin_team(4, json!({})).await;
    let app = Arc::new(app);
    let results = send_many(
        &app,
        axum::http::Method::POST,
        72,
        |_| "/api/v1/leads".into(),
        |index| {
            let mut body = lead(&format!("poison-{index}"));
            if index % 3 == 0 {
                body["company"] = json!(format!("Bad\u{0}Co {index}"));
            }
            body
        },
    )
    .await;
    for (index, (status, body)) in results.iter().enumerate() {
        if index % 3 == 0 {
            assert_eq!(*status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            assert_eq!(body["error"]["code"], json!("control_character"), "{body}");
            assert_eq!(body["error"]["field"], json!("company"), "{body}");
        } else {
            assert_eq!(*status, StatusCode::CREATED, "{body}");
        }
    }
    let (_, listed) = app.get("/api/v1/leads?limit=500").await;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(48));

    // A job the database itself refuses (here a trigger stands in for any constraint the
    // checks at the door do not know): it fails alone, every other lead batched with it commits.
    match &app.state.store {
        store::Store::Sqlite { pool, .. } => {
            sqlx::raw_sql(
                "CREATE TRIGGER poison BEFORE INSERT ON leads WHEN NEW.source = 'poison'
                 BEGIN SELECT RAISE(ABORT, 'poisoned'); END;",
            )
            .execute(pool)
            .await
            .expect("trigger");
        }
        store::Store::Postgres(pool) => {
            sqlx::raw_sql(
                "CREATE FUNCTION poison() RETURNS trigger AS $$
                 BEGIN IF NEW.source = 'poison' THEN RAISE EXCEPTION 'poisoned'; END IF; RETURN NEW; END
                 $$ LANGUAGE plpgsql;
                 CREATE TRIGGER poison BEFORE INSERT ON leads FOR EACH ROW EXECUTE FUNCTION poison();",
            )
            .execute(pool)
            .await
            .expect("trigger");
        }
    }
    let results = send_many(
        &app,
        axum::http::Method::POST,
        64,
        |_| "/api/v1/leads".into(),
        |index| {
            let mut body = lead(&format!("trigger-{index}"));
            body["phone"] = json!(format!("1370000{index:04}"));
            if index % 8 == 0 {
                body["source"] = json!("poison");
            }
            body
        },
    )
    .await;
    for (index, (status, body)) in results.iter().enumerate() {
        if index % 8 == 0 {
            assert_eq!(*status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
        } else {
            assert_eq!(*status, StatusCode::CREATED, "lead {index}: {body}");
        }
    }
    let (_, listed) = app.get("/api/v1/leads?limit=500").await;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(48 + 56));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poisoned_job_fails_alone_on_sqlite() {
    a_poisoned_job_fails_alone(TestApp::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poisoned_job_fails_alone_on_postgres() {
    if let Some(app) = TestApp::new(Backend::Postgres).await {
        a_poisoned_job_fails_alone(app).await;
    }
}

/// Eight drafts published at once: exactly one is active afterwards, and the audit log has a
/// line for each publication naming the version it replaced.
async fn concurrent_publications_leave_one_active(app: TestApp) {
    app.round_robin_team(2, json!({})).await;
    let app = Arc::new(app);
    let mut versions = Vec::new();
    for index in 0..8 {
        let draft = app
            .ok(
                "/api/v1/rule-sets",
                &json!({"name": format!("draft {index}"), "rules": [{"id": "all", "target": {"team": "t"}}]}),
                StatusCode::CREATED,
            )
            .await;
        versions.push(draft["version"].as_i64().expect("version"));
    }
    let results = send_many(
        &app,
        axum::http::Method::POST,
        versions.len(),
        |index| format!("/api/v1/rule-sets/{}/publish", versions[index]),
        |_| json!({}),
    )
    .await;
    for (status, body) in &results {
        assert_eq!(*status, StatusCode::OK, "{body}");
    }
    let (_, listed) = app.get("/api/v1/rule-sets").await;
    let active: Vec<&serde_json::Value> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|item| item["active"] == json!(true))
        .collect();
    assert_eq!(active.len(), 1, "{listed}");
    let (_, audit) = app.get("/api/v1/audit?limit=500").await;
    let previous: std::collections::BTreeSet<String> = audit["items"]
        .as_array()
        .expect("audit")
        .iter()
        .filter(|row| row["target_kind"] == json!("rule_set"))
        .filter(|row| versions.contains(&row["detail"]["version"].as_i64().unwrap_or(-1)))
        .map(|row| row["detail"]["previous"].to_string())
        .collect();
    // Each publication replaced a different version: they happened one after another.
    assert_eq!(previous.len(), versions.len(), "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publications_leave_one_active_on_sqlite() {
    concurrent_publications_leave_one_active(TestApp::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publications_leave_one_active_on_postgres() {
    if let Some(app) = TestApp::new(Backend::Postgres).await {
        concurrent_publications_leave_one_active(app).await;
    }
}

/// A rep deleted while leads are being routed: either the delete wins and no lead is theirs,
/// or a lead reached them first and the delete is refused — never a lead owned by nobody.
async fn a_rep_is_never_deleted_under_a_lead(app: TestApp) {
    app.round_robin_team(3, json!({})).await;
    let app = Arc::new(app);
    let leads = {
        let app = Arc::clone(&app);
        tokio::spawn(async move {
            send_many(
                &app,
                axum::http::Method::POST,
                60,
                |_| "/api/v1/leads".into(),
                |index| {
                    let mut body = lead(&format!("race-{index}"));
                    body["phone"] = json!(format!("1350000{index:04}"));
                    body
                },
            )
            .await
        })
    };
    let key = app.key.clone();
    let (status, answer) = app
        .send(
            axum::http::Method::DELETE,
            "/api/v1/reps/r02",
            None,
            Some(&key),
        )
        .await;
    for (status, body) in leads.await.expect("leads") {
        assert!(status.is_success(), "{body}");
    }
    let (_, listed) = app.get("/api/v1/leads?limit=500&owner_id=r02").await;
    let theirs = listed["items"].as_array().map_or(0, Vec::len);
    match status {
        StatusCode::NO_CONTENT => assert_eq!(theirs, 0, "leads owned by a deleted rep"),
        StatusCode::CONFLICT => assert!(theirs > 0, "{answer}"),
        other => panic!("{other}: {answer}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rep_is_never_deleted_under_a_lead_on_sqlite() {
    a_rep_is_never_deleted_under_a_lead(TestApp::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rep_is_never_deleted_under_a_lead_on_postgres() {
    if let Some(app) = TestApp::new(Backend::Postgres).await {
        a_rep_is_never_deleted_under_a_lead(app).await;
    }
}

/// Routing transactions commit without waiting for the disk, and the answers wait for a flush:
/// SQLite's log file flushed where SQLite keeps it, or on PostgreSQL a commit that waits and
/// writes the `flushes` row. Were the flush looking in the wrong place, or gone, every answer
/// would fail: a flush that cannot be made acknowledges nothing.
async fn commits_are_flushed_before_answers(backend: Backend) {
    let Some((store, dir)) = crate::support::fresh_store(backend).await else {
        return;
    };
    let mut connection = store.routing_connection().await.expect("connection");
    let mut tx = connection.begin().await.expect("begin");
    tx.bump_routing().await.expect("write");
    let commit = tx.commit_unsynced().await.expect("commit");
    assert!(!commit.is_durable());
    commit.durable().await.expect("flushed");
    drop(connection);
    let log = dir.as_ref().map(|dir| dir.path().join("leadroute.db-wal"));
    let app = TestApp::with_store(store, dir).await;
    app.round_robin_team(2, json!({})).await;
    let (status, body) = app.post("/api/v1/leads", &lead("durable-1")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Here the log goes from under SQLite, and PostgreSQL's flushing commit cannot be made.
    match (&app.state.store, log) {
        (store::Store::Sqlite { .. }, Some(log)) => {
            std::fs::remove_file(&log).expect("remove the log");
        }
        (store::Store::Postgres(pool), _) => {
            sqlx::query("DROP TABLE flushes")
                .execute(pool)
                .await
                .expect("drop");
        }
        _ => panic!("an SQLite database without its file"),
    }
    let (status, body) = app.post("/api/v1/leads", &lead("durable-2")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["error"]["code"], "internal", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_are_flushed_before_answers_on_sqlite() {
    commits_are_flushed_before_answers(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_are_flushed_before_answers_on_postgres() {
    commits_are_flushed_before_answers(Backend::Postgres).await;
}
