//! The application core from outside: bad bytes and bad shapes on every write operation get a
//! 4xx in the envelope and never a 5xx, every error of the API has a code, and the dry run names
//! the rep the next real post gets.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use server::ops::Operation;

use crate::support::{Backend, TestApp, lead};

/// The path of an operation with placeholders filled.
fn path(operation: Operation) -> String {
    let (_, pattern) = operation.route();
    format!(
        "/api/v1{}",
        pattern
            .replace("{id}", "r00")
            .replace("{entity}/{name}", "lead/x")
            .replace("{source}", "nowhere")
    )
}

async fn raw(
    app: &TestApp,
    method: Method,
    uri: &str,
    body: Option<Vec<u8>>,
) -> (StatusCode, Value) {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {}", app.key));
    let body = match body {
        Some(bytes) => {
            request = request.header("content-type", "application/json");
            Body::from(bytes)
        }
        None => Body::empty(),
    };
    app.raw(request.body(body).expect("request")).await
}

async fn bad_input_never_breaks_an_operation(app: TestApp) {
    app.round_robin_team(2, json!({})).await;
    let long = "x".repeat(1_000_000 - 100);
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let bodies: Vec<Vec<u8>> = vec![
        br#"{"name": "a\u0000b", "phone": "1\u0000", "note": "\u001b[31m", "kind": "call", "rep_id": "r\u0000", "username": "x\u0000", "password": "p\u0000p"}"#.to_vec(),
        format!(r#"{{"name": "{long}"}}"#).into_bytes(),
        deep.into_bytes(),
        br#"{"name": 5, "rules": "none", "leads": {}, "status": [], "rep_id": 7}"#.to_vec(),
        b"not json".to_vec(),
        br#"{"leads": [{"name": "a\u0000"}], "lead": {"name": "\u0000"}, "lead_ids": ["\u0000"]}"#.to_vec(),
    ];
    let mut wrong = Vec::new();
    for operation in Operation::ALL {
        let (method, _) = operation.route();
        if method == Method::GET {
            continue;
        }
        for body in &bodies {
            let (status, answer) =
                raw(&app, method.clone(), &path(*operation), Some(body.clone())).await;
            let enveloped = answer["error"]["code"].is_string();
            if status.is_server_error() || (!status.is_success() && !enveloped) {
                wrong.push(format!(
                    "{} {}: {status} {}",
                    operation.id(),
                    String::from_utf8_lossy(&body[..body.len().min(60)]),
                    answer.to_string().chars().take(200).collect::<String>()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Addresses: NUL, broken UTF-8 and bad numbers in paths and queries.
    for uri in [
        "/api/v1/leads/%00",
        "/api/v1/reps/%FF",
        "/api/v1/leads?limit=abc",
        "/api/v1/leads?q=%00",
        "/api/v1/rule-sets/abc",
        "/api/v1/teams/a%1Bb",
    ] {
        let (status, answer) = raw(&app, Method::GET, uri, None).await;
        assert!(status.is_client_error(), "{uri}: {status} {answer}");
        assert!(answer["error"]["code"].is_string(), "{uri}: {answer}");
    }
    let (status, answer) = raw(&app, Method::PUT, "/api/v1/leads", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        answer["error"]["code"],
        json!("method_not_allowed"),
        "{answer}"
    );
    // A NUL in a sign-in or a public form is a 4xx too.
    let request = Request::builder()
        .method("POST")
        .uri("/api/v1/session")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"username": "a\u0000", "password": "b"}"#))
        .expect("request");
    let (status, answer) = app.raw(request).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    // Still serving, and still routing.
    let (status, created) = app.post("/api/v1/leads", &lead("after-the-storm")).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
}

#[tokio::test]
async fn bad_input_never_breaks_an_operation_on_sqlite() {
    bad_input_never_breaks_an_operation(TestApp::sqlite().await).await;
}

#[tokio::test]
async fn bad_input_never_breaks_an_operation_on_postgres() {
    if let Some(app) = TestApp::new(Backend::Postgres).await {
        bad_input_never_breaks_an_operation(app).await;
    }
}

/// Under round robin the dry run names exactly the rep the next post gets, lead after lead,
/// and a returning customer's dry run names their owner, as the real route does.
async fn the_dry_run_names_the_next_real_owner(app: TestApp) {
    app.round_robin_team(3, json!({})).await;
    app.publish(
        json!({"rules": [{"id": "all", "target": {"team": "t"}, "owner_affinity": true,
        "fallback": [{"pool": "public"}]}]}),
    )
    .await;
    // Distinct customers, so that rotation, not owner affinity, decides.
    let customer = |index: usize| {
        let mut body = lead(&format!("dry-{index}"));
        body["phone"] = json!(format!("1390000{index:04}"));
        body
    };
    for index in 0..9 {
        let body = customer(index);
        let mut sample = body.clone();
        if let Some(object) = sample.as_object_mut() {
            object.remove("external_id");
        }
        let (status, explained) = app
            .post("/api/v1/route/explain", &json!({"lead": sample}))
            .await;
        assert_eq!(status, StatusCode::OK, "{explained}");
        let (status, created) = app.post("/api/v1/leads", &body).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(
            explained["decision"]["owner_id"], created["lead"]["owner_id"],
            "lead {index}: the dry run named another rep"
        );
    }
    // A known customer whose owner is not next in the rotation: the dry run follows owner
    // affinity, as the real route does.
    let (_, listed) = app.get("/api/v1/leads?limit=500").await;
    let owner_of_first = listed["items"]
        .as_array()
        .and_then(|items| {
            items
                .iter()
                .find(|item| item["external_id"] == json!("dry-1"))
        })
        .map(|item| item["owner_id"].clone())
        .expect("the first lead of customer 1");
    let mut again = customer(1);
    again["external_id"] = json!("dry-1-again");
    let mut sample = again.clone();
    if let Some(object) = sample.as_object_mut() {
        object.remove("external_id");
    }
    let (_, explained) = app
        .post("/api/v1/route/explain", &json!({"lead": sample}))
        .await;
    let (status, created) = app.post("/api/v1/leads", &again).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        explained["decision"]["owner_id"],
        created["lead"]["owner_id"]
    );
    assert_eq!(created["lead"]["owner_id"], owner_of_first, "{created}");
    assert_ne!(
        owner_of_first,
        json!("r00"),
        "rotation alone would give r00 next"
    );

    // A routed decision stores its record alone; its explanation is rendered from the record
    // when read, the same words in the answer to the post and in the lead's history.
    let lead_id = created["lead"]["id"].as_str().expect("an id").to_owned();
    let stored = app
        .state
        .store
        .decisions_for(&lead_id)
        .await
        .expect("decisions");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].explanation, "", "the explanation was stored");
    let (status, history) = app.get(&format!("/api/v1/leads/{lead_id}/decisions")).await;
    assert_eq!(status, StatusCode::OK, "{history}");
    let explanation = &history["items"][0]["explanation"];
    assert_eq!(explanation, &created["decision"]["explanation"]);
    assert!(
        explanation["en"]
            .as_str()
            .is_some_and(|text| text.contains("Assigned to")),
        "{explanation}"
    );
    assert!(
        explanation["zh"]
            .as_str()
            .is_some_and(|text| text.contains("分配给")),
        "{explanation}"
    );
}

#[tokio::test]
async fn the_dry_run_names_the_next_real_owner_on_sqlite() {
    the_dry_run_names_the_next_real_owner(TestApp::sqlite().await).await;
}

#[tokio::test]
async fn the_dry_run_names_the_next_real_owner_on_postgres() {
    if let Some(app) = TestApp::new(Backend::Postgres).await {
        the_dry_run_names_the_next_real_owner(app).await;
    }
}

/// Dry run == route, as a property: for random rosters (weights, caps), strategies and
/// histories (returning customers among them), each dry run names the owner (or the pool, or
/// the hold queue) that posting the same lead next gets.
#[test]
fn the_dry_run_agrees_with_the_route_for_every_strategy() {
    use proptest::prelude::*;

    let strategies = [
        json!({"type": "round_robin"}),
        json!({"type": "weighted_round_robin"}),
        json!({"type": "least_loaded"}),
        json!({"type": "longest_idle"}),
        json!({"type": "fair_share", "window": "day"}),
        json!({"type": "best_match"}),
    ];
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let config = ProptestConfig {
        cases: 12,
        ..ProptestConfig::default()
    };
    proptest!(config, |(
        strategy in 0..strategies.len(),
        reps in proptest::collection::vec((1u32..4, proptest::option::of(1u32..5)), 1..5),
        history in proptest::collection::vec(0usize..6, 0..12),
        next in proptest::collection::vec(0usize..8, 1..6),
        affinity in any::<bool>(),
    )| {
        runtime.block_on(async {
            let app = TestApp::sqlite().await;
            let mut members = Vec::new();
            for (index, (weight, max_open)) in reps.iter().enumerate() {
                let id = format!("p{index}");
                app.ok(
                    "/api/v1/reps",
                    &json!({"id": id, "name": id, "weight": weight, "caps": {"max_open": max_open}}),
                    StatusCode::CREATED,
                )
                .await;
                members.push(json!({"rep_id": id}));
            }
            app.ok(
                "/api/v1/teams",
                &json!({"id": "t", "name": "T", "members": members, "hours_policy": "any_time"}),
                StatusCode::CREATED,
            )
            .await;
            app.publish(json!({"rules": [{"id": "all", "target": {"team": "t"},
                "strategy": strategies[strategy], "owner_affinity": affinity,
                "fallback": [{"pool": "public"}]}]}))
                .await;
            let customer = |index: usize, serial: usize| {
                let mut body = lead(&format!("c{index}-{serial}"));
                body["phone"] = json!(format!("1380000{index:04}"));
                body
            };
            for (serial, index) in history.iter().enumerate() {
                let (status, body) = app.post("/api/v1/leads", &customer(*index, serial)).await;
                assert_eq!(status, StatusCode::CREATED, "{body}");
            }
            for (serial, index) in next.iter().enumerate() {
                let body = customer(*index, 100 + serial);
                let mut sample = body.clone();
                if let Some(object) = sample.as_object_mut() {
                    object.remove("external_id");
                }
                let (_, explained) = app.post("/api/v1/route/explain", &json!({"lead": sample})).await;
                let (status, created) = app.post("/api/v1/leads", &body).await;
                assert_eq!(status, StatusCode::CREATED, "{created}");
                let decision = &created["decision"];
                assert_eq!(
                    (&explained["decision"]["owner_id"], &explained["decision"]["outcome"]),
                    (&decision["owner_id"], &decision["outcome"]),
                    "strategy {} affinity {affinity}: the dry run disagreed",
                    strategies[strategy]
                );
            }
        });
    });
}

/// The smaller promises of the core, each as a user would meet it.
#[tokio::test]
async fn names_claims_leave_and_rule_sets_behave() {
    let app = TestApp::sqlite().await;
    app.round_robin_team(2, json!({})).await;
    // Look-alike usernames: Cyrillic letters, zero-width and direction marks are refused.
    for username in ["аdmin", "ad\u{200b}min", "admin\u{202e}", "Ad min"] {
        let (status, answer) = app
            .post(
                "/api/v1/users",
                &json!({"username": username, "role": "admin", "password": "correct horse battery"}),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{username:?}: {answer}"
        );
        assert_eq!(answer["error"]["field"], json!("username"));
    }
    let (status, _) = app
        .post(
            "/api/v1/users",
            &json!({"username": "王芳", "role": "rep", "rep_id": "r00", "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "Chinese usernames are welcome");
    // Names are one line of at most 200 characters.
    let (status, answer) = app
        .post("/api/v1/reps", &json!({"name": "x".repeat(201)}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["error"]["code"], json!("too_long"));

    // A rep claiming another rep's lead is told it does not exist, as when reading it.
    let (_, created) = app.post("/api/v1/leads", &lead("theirs")).await;
    let theirs = created["lead"]["id"].as_str().expect("id").to_owned();
    let owner = created["lead"]["owner_id"]
        .as_str()
        .expect("owner")
        .to_owned();
    let other = if owner == "r00" { "r01" } else { "r00" };
    let session = crate::support::session_for_rep(&app, other).await;
    let (status, answer) = app
        .send_as(
            Method::POST,
            &format!("/api/v1/leads/{theirs}/claim"),
            &json!({"rep_id": other}),
            &session,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");

    // Leave with dates is a period: explained with its end, over when it ends.
    let today = chrono::Utc::now().date_naive();
    let until = today + chrono::Days::new(3);
    let (status, rep) = app
        .send(
            Method::PUT,
            "/api/v1/reps/r00/status",
            Some(&json!({"status": "on_leave", "leave": {"from": today.to_string(), "until": until.to_string()}})),
            Some(&app.key.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rep}");
    assert_eq!(rep["status"], json!("active"));
    let (_, explained) = app
        .post(
            "/api/v1/route/explain",
            &json!({"lead": {"name": "x", "phone": "13600000001"}}),
        )
        .await;
    assert_eq!(
        explained["decision"]["owner_id"],
        json!("r01"),
        "{explained}"
    );
    let english = explained["decision"]["explanation"]["en"]
        .as_str()
        .unwrap_or_default();
    assert!(english.contains(&until.to_string()), "{english}");

    // Rule sets: at most 1,000 rules.
    let rules: Vec<Value> = (0..1001)
        .map(|index| json!({"id": format!("r{index}"), "target": {"team": "t"}}))
        .collect();
    let (status, answer) = app
        .post("/api/v1/rule-sets", &json!({"rules": rules}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["error"]["code"], json!("too_many_rules"));
}

/// A write-only key learns that a lead was taken, never what is stored: `{id, duplicate}` for
/// a new lead, a re-post of a known `external_id` and each item of a batch; feedback answers
/// without the owner.
#[tokio::test]
async fn write_only_keys_get_receipts_not_records() {
    let app = TestApp::sqlite().await;
    app.round_robin_team(2, json!({})).await;
    let integration = app.key(server::auth::Role::Integration).await;
    let post = |path: String, body: Value| {
        let (app, key) = (&app, integration.clone());
        async move { app.send(Method::POST, &path, Some(&body), Some(&key)).await }
    };
    let (status, first) = post("/api/v1/leads".into(), lead("known")).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let keys = |value: &Value| {
        value
            .as_object()
            .map(|object| object.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    assert_eq!(keys(&first), ["duplicate", "id"], "{first}");
    let (status, again) = post("/api/v1/leads".into(), lead("known")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, json!({"id": first["id"], "duplicate": true}));
    let (_, batch) = post(
        "/api/v1/leads/batch".into(),
        json!({"leads": [lead("known"), lead("fresh")]}),
    )
    .await;
    for item in batch["items"].as_array().expect("items") {
        assert!(
            item.get("lead").is_none() && item["id"].is_string(),
            "{item}"
        );
    }
    let id = first["id"].as_str().expect("id");
    let (status, feedback) = post(
        format!("/api/v1/leads/{id}/feedback"),
        json!({"kind": "nps", "score": 9}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{feedback}");
    assert!(feedback.get("rep_id").is_none(), "{feedback}");
}
