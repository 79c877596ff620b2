//! Optimal batch assignment (批量最优分配) from outside: a backlog posted with `mode: optimal`
//! is placed by value and fit where arrival order would waste the best rep on small leads; the
//! dry run writes nothing; caps hold under two concurrent batches from two instances; bad
//! modes and the other roles are refused. On SQLite and PostgreSQL.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use server::auth::Role;

use crate::support::{Backend, TestApp};

/// Three reps: `east` covers 华东 and takes three more leads today; `south` and `north` cover
/// other regions with room to spare. One team, best match.
async fn workspace(app: &TestApp) {
    for (id, region, daily) in [
        ("east", "华东", Some(3)),
        ("south", "华南", None),
        ("north", "华北", None),
    ] {
        app.ok(
            "/api/v1/reps",
            &json!({"id": id, "name": id, "regions": [region], "caps": {"max_per_day": daily}}),
            StatusCode::CREATED,
        )
        .await;
    }
    app.ok(
        "/api/v1/teams",
        &json!({"id": "t", "name": "T", "hours_policy": "any_time",
                "members": [{"rep_id": "east"}, {"rep_id": "south"}, {"rep_id": "north"}]}),
        StatusCode::CREATED,
    )
    .await;
    app.publish(json!({"rules": [{"id": "all", "target": {"team": "t"},
        "strategy": {"type": "best_match"}, "fallback": [{"pool": "public"}]}]}))
        .await;
}

/// Three small 华东 leads, then three large ones: arrival order gives `east` the small ones.
fn backlog(prefix: &str) -> Vec<Value> {
    (0..6)
        .map(|index| {
            json!({"external_id": format!("{prefix}{index}"), "company": "ACME", "region": "华东",
                   "score": if index < 3 { 1 } else { 90 }})
        })
        .collect()
}

fn owners(answer: &Value) -> Vec<Option<String>> {
    answer["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["decision"]["owner_id"].as_str().map(str::to_owned))
        .collect()
}

async fn a_backlog_is_placed_by_value(app: TestApp) {
    workspace(&app).await;
    let body = |leads: Vec<Value>, extra: Value| {
        let mut body = json!({"leads": leads, "mode": "optimal", "band": "none"});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        body
    };

    // The dry run: the plan and each lead's decision, nothing written.
    let (status, planned) = app
        .post(
            "/api/v1/leads/batch",
            &body(backlog("d"), json!({"dry_run": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{planned}");
    assert!(
        planned["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|item| item["result"] == json!("planned"))
    );
    let east: Vec<usize> = owners(&planned)
        .iter()
        .enumerate()
        .filter(|(_, owner)| owner.as_deref() == Some("east"))
        .map(|(index, _)| index)
        .collect();
    assert_eq!(east, [3, 4, 5], "{planned}");
    let plan = &planned["plan"];
    assert_eq!(plan["optimised"], json!(6));
    assert!(
        plan["objective"].as_f64() > plan["one_by_one_objective"].as_f64(),
        "{plan}"
    );
    assert_eq!(app.get("/api/v1/leads").await.1["items"], json!([]));

    // For real: the same plan, stored, each decision saying why.
    let (status, made) = app
        .post("/api/v1/leads/batch", &body(backlog("a"), json!({})))
        .await;
    assert_eq!(status, StatusCode::OK, "{made}");
    assert_eq!(owners(&made), owners(&planned));
    let explanation = &made["items"][0]["decision"]["explanation"];
    assert!(
        explanation.to_string().contains("批量最优分配")
            && explanation.to_string().contains("逐条分配会给 east"),
        "{explanation}"
    );
    // `east` took its three for today, no more: the next lead goes elsewhere.
    let (_, next) = app
        .post(
            "/api/v1/leads",
            &json!({"company": "ACME", "region": "华东", "score": 99}),
        )
        .await;
    assert_ne!(next["decision"]["owner_id"], json!("east"), "{next}");
    // Posting the same batch again makes duplicates, not leads.
    let (_, again) = app
        .post("/api/v1/leads/batch", &body(backlog("a"), json!({})))
        .await;
    assert!(
        again["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|item| item["result"] == json!("duplicate")),
        "{again}"
    );

    // Bad requests, by field; the dry run needs the right to explain routing.
    for (request, field) in [
        (json!({"leads": backlog("x"), "mode": "fast"}), "mode"),
        (
            json!({"leads": backlog("x"), "mode": "optimal", "band": 2}),
            "band",
        ),
        (
            json!({"leads": backlog("x"), "mode": "optimal", "band": "wide"}),
            "band",
        ),
        (json!({"leads": backlog("x"), "dry_run": true}), "dry_run"),
        (json!({"leads": backlog("x"), "band": 0.2}), "band"),
    ] {
        let (status, refused) = app.post("/api/v1/leads/batch", &request).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
        assert_eq!(refused["error"]["field"], json!(field), "{refused}");
    }
    let integration = app.key(Role::Integration).await;
    let (status, refused) = app
        .send(
            Method::POST,
            "/api/v1/leads/batch",
            Some(&json!({"leads": backlog("i"), "mode": "optimal", "dry_run": true})),
            Some(&integration),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    // An integration posting an optimal batch gets receipts, as for any batch.
    let (status, receipts) = app
        .send(
            Method::POST,
            "/api/v1/leads/batch",
            Some(&json!({"leads": backlog("i"), "mode": "optimal"})),
            Some(&integration),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{receipts}");
    assert!(
        receipts["items"][0]["id"].is_string() && receipts["items"][0]["lead"].is_null(),
        "{receipts}"
    );
}

/// Two instances post optimal batches at once against a rep with room for five more: the
/// rep ends with five, never more, and every lead is stored once.
async fn concurrent_batches_never_overfill(app: TestApp) {
    app.ok(
        "/api/v1/reps",
        &json!({"id": "busy", "name": "busy", "caps": {"max_open": 5}}),
        StatusCode::CREATED,
    )
    .await;
    app.ok(
        "/api/v1/reps",
        &json!({"id": "spare", "name": "spare"}),
        StatusCode::CREATED,
    )
    .await;
    app.ok(
        "/api/v1/teams",
        &json!({"id": "t", "name": "T", "hours_policy": "any_time",
                "members": [{"rep_id": "busy"}, {"rep_id": "spare"}]}),
        StatusCode::CREATED,
    )
    .await;
    app.publish(json!({"rules": [{"id": "all", "target": {"team": "t"}}]}))
        .await;
    let other = TestApp::with_state(
        server::AppState::without_clock(app.state.store.clone()),
        app.key.clone(),
    );
    let batch = |prefix: &str| {
        json!({"mode": "optimal", "band": "none", "leads": (0..20).map(|index| json!({
            "external_id": format!("{prefix}{index}"), "company": "ACME", "score": index + 1
        })).collect::<Vec<_>>()})
    };
    let (one, two) = (batch("one"), batch("two"));
    let (first, second) = tokio::join!(
        app.post("/api/v1/leads/batch", &one),
        other.post("/api/v1/leads/batch", &two)
    );
    assert_eq!(first.0, StatusCode::OK, "{}", first.1);
    assert_eq!(second.0, StatusCode::OK, "{}", second.1);
    let leads = app.get("/api/v1/leads?limit=100").await.1;
    let items = leads["items"].as_array().expect("items");
    assert_eq!(items.len(), 40);
    let busy = items
        .iter()
        .filter(|lead| lead["owner_id"] == json!("busy"))
        .count();
    assert_eq!(busy, 5, "{leads}");
    // The stored state is what the leads say, for every rep and every count, as one-by-one
    // routing leaves it.
    let states = app.state.store.load_rep_states().await.expect("states");
    for rep in ["busy", "spare"] {
        let owned = items
            .iter()
            .filter(|lead| lead["owner_id"] == json!(rep))
            .count() as i64;
        let stored = states.iter().find(|row| row.rep_id == rep).expect("state");
        assert_eq!(
            (
                stored.open_leads,
                stored.day_count,
                stored.week_count,
                stored.month_count
            ),
            (owned, owned, owned, owned),
            "{stored:?}"
        );
    }
}

/// A manager spreads twelve pool leads across their team without naming reps: the dry run
/// assigns nothing; for real, each rep ends within the band, `east` gets the valuable 华东
/// leads up to its cap, and what nobody has room for stays in the pool.
async fn pool_leads_are_distributed_across_a_team(app: TestApp) {
    workspace(&app).await;
    // Everything to the pool first.
    app.publish(json!({"rules": [{"id": "all", "target": {"pool": "public"}}]}))
        .await;
    let mut ids = Vec::new();
    for index in 0..12 {
        let (status, made) = app
            .post(
                "/api/v1/leads",
                &json!({"company": "ACME", "region": if index % 2 == 0 { "华东" } else { "华北" },
                        "score": index * 8}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{made}");
        assert_eq!(made["lead"]["pool_id"], json!("public"));
        ids.push(made["lead"]["id"].as_str().expect("id").to_owned());
    }
    let mut asked = ids.clone();
    asked.push("no-such-lead".into());
    let (status, planned) = app
        .post(
            "/api/v1/pool/distribute",
            &json!({"lead_ids": asked, "team_id": "t", "dry_run": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{planned}");
    assert_eq!(planned["items"][12]["status"], json!(404), "{planned}");
    let (_, pool) = app.get("/api/v1/pool").await;
    assert_eq!(pool["items"].as_array().map(Vec::len), Some(12));

    let (status, done) = app
        .post(
            "/api/v1/pool/distribute",
            &json!({"lead_ids": ids, "team_id": "t", "band": 0.25}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    let owners: Vec<Option<&str>> = done["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["lead"]["owner_id"].as_str())
        .collect();
    assert_eq!(
        owners,
        planned["items"].as_array().expect("items")[..12]
            .iter()
            .map(|item| item["decision"]["owner_id"].as_str())
            .collect::<Vec<_>>()
    );
    // Twelve over three: four each ± a quarter is 3 to 5; `east` takes its cap of 3, the most
    // valuable 华东 leads.
    for rep in done["plan"]["reps"].as_array().expect("reps") {
        let leads = rep["leads"].as_u64().expect("leads");
        assert!((3..=5).contains(&leads), "{rep}");
    }
    let east_scores: Vec<f64> = done["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|item| item["lead"]["owner_id"] == json!("east"))
        .filter_map(|item| item["lead"]["score"].as_f64())
        .collect();
    assert_eq!(east_scores, [48.0, 64.0, 80.0], "{}", done["plan"]);
    let (_, audit) = app.get("/api/v1/audit?limit=50").await;
    assert!(
        audit["items"].as_array().is_some_and(|items| items
            .iter()
            .filter(|item| item["action"] == json!("lead.assigned_from_pool"))
            .count()
            == 12),
        "{audit}"
    );
    // Again: nothing left in the pool to distribute.
    let (_, again) = app
        .post(
            "/api/v1/pool/distribute",
            &json!({"lead_ids": [ids[0]], "team_id": "t"}),
        )
        .await;
    assert_eq!(
        again["items"][0]["error"]["code"],
        json!("not_in_pool"),
        "{again}"
    );
    let (status, refused) = app
        .post(
            "/api/v1/pool/distribute",
            &json!({"lead_ids": [ids[0]], "team_id": "nowhere"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
}

/// A team whose backlog policy is `optimal`: the overnight hold queue is released as one batch
/// when its reps come back (the valuable 华东 leads to `east`, within its cap), and a rep going
/// on leave hands back their untouched leads as one batch too.
async fn backlogs_are_released_as_one_batch(app: TestApp) {
    workspace(&app).await;
    let (status, team) = app
        .patch(
            "/api/v1/teams/t",
            &json!({"batch_policy": "optimal", "leave_policy": "hand_back"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{team}");
    let (status, refused) = app
        .patch("/api/v1/teams/t", &json!({"batch_policy": "best"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["error"]["field"], json!("batch_policy"));
    // Overnight: nobody is available, so the backlog waits in the hold queue.
    app.publish(json!({"rules": [{"id": "all", "target": {"team": "t"}, "strategy": {"type": "best_match"}}]}))
        .await;
    let key = app.key.clone();
    for rep in ["east", "south", "north"] {
        let (status, body) = app
            .send(
                Method::PUT,
                &format!("/api/v1/reps/{rep}/status"),
                Some(&json!({"status": "paused"})),
                Some(&key),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, made) = app
        .post("/api/v1/leads/batch", &json!({"leads": backlog("night")}))
        .await;
    assert_eq!(status, StatusCode::OK, "{made}");
    assert!(
        made["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|item| item["lead"]["held"] == json!(true)),
        "{made}"
    );
    // Morning: they come back and the queue is released together.
    for rep in ["east", "south", "north"] {
        app.send(
            Method::PUT,
            &format!("/api/v1/reps/{rep}/status"),
            Some(&json!({"status": "active"})),
            Some(&key),
        )
        .await;
    }
    app.state.router.sweep().await.expect("sweep");
    let (_, leads) = app.get("/api/v1/leads?limit=10").await;
    let items = leads["items"].as_array().expect("items");
    let mut east: Vec<f64> = items
        .iter()
        .filter(|lead| lead["owner_id"] == json!("east"))
        .filter_map(|lead| lead["score"].as_f64())
        .collect();
    east.sort_by(f64::total_cmp);
    assert_eq!(east, [90.0, 90.0, 90.0], "{leads}");
    let id = items[0]["id"].as_str().expect("id");
    let (_, decisions) = app.get(&format!("/api/v1/leads/{id}/decisions")).await;
    assert_eq!(
        decisions["items"][0]["kind"],
        json!("release"),
        "{decisions}"
    );
    assert!(
        decisions["items"][0]["record"]["batch"].is_object(),
        "{decisions}"
    );

    // `south` goes on leave: their untouched leads are placed together among the others.
    let south: Vec<String> = items
        .iter()
        .filter(|lead| lead["owner_id"] == json!("south"))
        .filter_map(|lead| lead["id"].as_str().map(str::to_owned))
        .collect();
    assert!(!south.is_empty(), "{leads}");
    let (status, body) = app
        .send(
            Method::PUT,
            "/api/v1/reps/south/status",
            Some(&json!({"status": "on_leave", "leave": {"from": "2020-01-01", "until": "2099-12-31"}})),
            Some(&key),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for id in &south {
        let (_, lead) = app.get(&format!("/api/v1/leads/{id}")).await;
        assert_ne!(lead["owner_id"], json!("south"), "{lead}");
        let (_, decisions) = app.get(&format!("/api/v1/leads/{id}/decisions")).await;
        assert_eq!(
            decisions["items"][0]["kind"],
            json!("hand_back"),
            "{decisions}"
        );
        assert!(
            decisions["items"][0]["record"]["batch"].is_object(),
            "{decisions}"
        );
    }
    // `east` is at its cap for today, so none of them went there.
    let (_, leads) = app.get("/api/v1/leads?limit=10&owner_id=east").await;
    assert_eq!(leads["items"].as_array().map(Vec::len), Some(3), "{leads}");
}

/// Closed leads teach the batch who closes which segment: `r00` wins at large companies and
/// loses at small ones, `r01` the opposite; a batch then sends each its segment.
async fn the_fit_learns_each_reps_segment(app: TestApp) {
    app.round_robin_team(2, json!({})).await;
    let leads: Vec<Value> = (0..40)
        .map(|index| {
            json!({"external_id": format!("s{index}"), "company": "ACME",
                            "company_size": if index % 4 < 2 { 20 } else { 5000 }})
        })
        .collect();
    let (_, made) = app
        .post("/api/v1/leads/batch", &json!({"leads": leads}))
        .await;
    for item in made["items"].as_array().expect("items") {
        let id = item["lead"]["id"].as_str().expect("id");
        let (_, lead) = app.get(&format!("/api/v1/leads/{id}")).await;
        let big = lead["company_size"]
            .as_f64()
            .is_some_and(|size| size >= 1000.0);
        let won = (lead["owner_id"] == json!("r00")) == big;
        let body = if won {
            json!({"status": "won", "amount": 1000})
        } else {
            json!({"status": "lost", "lost_reason": "price"})
        };
        let (status, closed) = app.patch(&format!("/api/v1/leads/{id}"), &body).await;
        assert_eq!(status, StatusCode::OK, "{closed}");
    }
    // Both close half their leads overall; only the segments tell them apart.
    let batch = json!({"mode": "optimal", "band": "none", "dry_run": true, "leads": [
        {"external_id": "n0", "company": "ACME", "company_size": 10},
        {"external_id": "n1", "company": "ACME", "company_size": 9000},
        {"external_id": "n2", "company": "ACME", "company_size": 15},
        {"external_id": "n3", "company": "ACME", "company_size": 7000},
    ]});
    // Room for two each, so the plan has to choose.
    for rep in ["r00", "r01"] {
        let (status, body) = app
            .patch(
                &format!("/api/v1/reps/{rep}"),
                &json!({"caps": {"max_open": 2}}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, planned) = app.post("/api/v1/leads/batch", &batch).await;
    assert_eq!(status, StatusCode::OK, "{planned}");
    assert_eq!(
        owners(&planned),
        ["r01", "r00", "r01", "r00"].map(|rep| Some(rep.to_owned())),
        "{}",
        planned["plan"]
    );
}

#[tokio::test]
async fn the_fit_learns_each_reps_segment_on_sqlite() {
    the_fit_learns_each_reps_segment(TestApp::sqlite().await).await;
}

#[tokio::test]
async fn the_fit_learns_each_reps_segment_on_postgres() {
    if let Some(app) = TestApp::new(Backend::Postgres).await {
        the_fit_learns_each_reps_segment(app).await;
    }
}

#[tokio::test]
async fn backlogs_are_released_as_one_batch_on_sqlite() {
    backlogs_are_released_as_one_batch(TestApp::without_clock(Backend::Sqlite).await.expect("app"))
        .await;
}

#[tokio::test]
async fn backlogs_are_released_as_one_batch_on_postgres() {
    if let Some(app) = TestApp::without_clock(Backend::Postgres).await {
        backlogs_are_released_as_one_batch(app).await;
    }
}

#[tokio::test]
async fn pool_leads_are_distributed_across_a_team_on_sqlite() {
    pool_leads_are_distributed_across_a_team(TestApp::sqlite().await).await;
}

#[tokio::test]
async fn pool_leads_are_distributed_across_a_team_on_postgres() {
    if let Some(app) = TestApp::new(Backend::Postgres).await {
        pool_leads_are_distributed_across_a_team(app).await;
    }
}

#[tokio::test]
async fn a_backlog_is_placed_by_value_on_sqlite() {
    a_backlog_is_placed_by_value(TestApp::sqlite().await).await;
}

#[tokio::test]
async fn a_backlog_is_placed_by_value_on_postgres() {
    if let Some(app) = TestApp::new(Backend::Postgres).await {
        a_backlog_is_placed_by_value(app).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_batches_never_overfill_on_sqlite() {
    concurrent_batches_never_overfill(TestApp::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_batches_never_overfill_on_postgres() {
    if let Some(app) = TestApp::new(Backend::Postgres).await {
        concurrent_batches_never_overfill(app).await;
    }
}
