//! API behaviour at the edges: bad input, auth, idempotency, lists, validation of rule sets.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use server::auth::Role;

use crate::support::{Backend, TestApp, lead};

/// Posts a body and checks the status, error code and field.
async fn check(
    app: &TestApp,
    path: &str,
    body: Value,
    status: StatusCode,
    code: &str,
    field: Option<&str>,
) {
    let (got, value) = app.post(path, &body).await;
    assert_eq!(got, status, "{body} → {value}");
    assert_eq!(value["error"]["code"], code, "{body} → {value}");
    assert_eq!(value["error"]["field"].as_str(), field, "{body} → {value}");
}

#[tokio::test]
async fn bad_leads_get_a_code_and_the_offending_field() {
    let app = TestApp::sqlite().await;
    app.round_robin_team(2, json!({})).await;
    let leads = "/api/v1/leads";
    check(
        &app,
        leads,
        json!({"name": "x", "phone": "12345"}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_phone",
        Some("phone"),
    )
    .await;
    check(
        &app,
        leads,
        json!({"name": "x", "email": "not-an-email"}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_email",
        Some("email"),
    )
    .await;
    check(
        &app,
        leads,
        json!({"name": "x", "nickname": "y"}),
        StatusCode::BAD_REQUEST,
        "unknown_field",
        Some("nickname"),
    )
    .await;
    check(
        &app,
        leads,
        json!({"name": 42}),
        StatusCode::BAD_REQUEST,
        "invalid_value",
        Some("name"),
    )
    .await;
    check(
        &app,
        leads,
        json!({"name": "x", "budget": -5}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_value",
        Some("budget"),
    )
    .await;
    check(
        &app,
        leads,
        json!({"industry": "制造"}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "missing_contact",
        Some("phone"),
    )
    .await;
    check(
        &app,
        leads,
        json!({"name": "x", "attributes": {"seats": 3}}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_field",
        Some("attributes.seats"),
    )
    .await;
    check(
        &app,
        leads,
        json!({"name": "x", "priority": "asap"}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_value",
        Some("priority"),
    )
    .await;

    let malformed = Request::builder()
        .method(Method::POST)
        .uri(leads)
        .header("authorization", format!("Bearer {}", app.key))
        .header("content-type", "application/json")
        .body(Body::from("{\"name\": "))
        .expect("request");
    let (status, value) = app.raw(malformed).await;
    assert_eq!(
        (status, value["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_json"))
    );

    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(1024 * 1024 + 10));
    let oversize = Request::builder()
        .method(Method::POST)
        .uri(leads)
        .header("authorization", format!("Bearer {}", app.key))
        .header("content-type", "application/json")
        .body(Body::from(huge))
        .expect("request");
    let (status, value) = app.raw(oversize).await;
    assert_eq!(
        (status, value["error"]["code"].clone()),
        (StatusCode::PAYLOAD_TOO_LARGE, json!("body_too_large"))
    );

    // Nothing of that was written.
    let (_, list) = app.get("/api/v1/leads").await;
    assert_eq!(list["items"], json!([]));
}

#[tokio::test]
async fn requests_need_a_valid_key_and_integration_keys_only_submit_leads() {
    let app = TestApp::sqlite().await;
    let (status, value) = app.send(Method::GET, "/api/v1/leads", None, None).await;
    assert_eq!(
        (status, value["error"]["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!("unauthenticated"))
    );
    let (status, _) = app
        .send(Method::GET, "/api/v1/leads", None, Some("lr_wrong"))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let integration = app.key(Role::Integration).await;
    let (status, _) = app
        .send(
            Method::POST,
            "/api/v1/leads",
            Some(&lead("i-1")),
            Some(&integration),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, value) = app
        .send(Method::GET, "/api/v1/leads", None, Some(&integration))
        .await;
    assert_eq!(
        (status, value["error"]["code"].clone()),
        (StatusCode::FORBIDDEN, json!("forbidden"))
    );
    let (status, _) = app.send(Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.send(Method::GET, "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_same_external_id_is_one_lead_on_sqlite() {
    the_same_external_id_is_one_lead(TestApp::sqlite().await).await;
}

#[tokio::test]
async fn the_same_external_id_is_one_lead_on_postgres() {
    if let Some(app) = TestApp::new(Backend::Postgres).await {
        the_same_external_id_is_one_lead(app).await;
    }
}

/// A lead sent again (alone, or among new ones in a batch, or twice in one batch) answers
/// with the lead stored under its external id, and its decision.
async fn the_same_external_id_is_one_lead(app: TestApp) {
    app.round_robin_team(2, json!({})).await;
    let first = app
        .ok("/api/v1/leads", &lead("same"), StatusCode::CREATED)
        .await;
    let again = app.ok("/api/v1/leads", &lead("same"), StatusCode::OK).await;
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["lead"]["id"], first["lead"]["id"]);
    assert_eq!(again["decision"]["id"], first["decision"]["id"]);
    let batch = app
        .ok("/api/v1/leads/batch", &json!({"leads": [lead("same"), lead("b-1"), lead("b-1"), {"name": "x", "phone": "1"}]}), StatusCode::OK)
        .await;
    assert_eq!(
        results(&batch),
        ["duplicate", "created", "duplicate", "error"]
    );
    assert_eq!(batch["items"][0]["lead"]["id"], first["lead"]["id"]);
    assert_eq!(batch["items"][3]["error"]["code"], "invalid_phone");
    assert_eq!(batch["items"][3]["error"]["field"], "leads[3].phone");
    let batch = app
        .ok(
            "/api/v1/leads/batch",
            &json!({"leads": [lead("b-1"), lead("same"), lead("b-2")]}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(results(&batch), ["duplicate", "duplicate", "created"]);
    assert_eq!(batch["items"][1]["lead"]["id"], first["lead"]["id"]);
    let (_, list) = app.get("/api/v1/leads").await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(3));
}

/// Each item's result in a batch's answer.
fn results(batch: &Value) -> Vec<&str> {
    batch["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|item| item["result"].as_str())
        .collect()
}

#[tokio::test]
async fn lists_filter_and_page_with_a_cursor() {
    let app = TestApp::sqlite().await;
    app.round_robin_team(2, json!({})).await;
    for index in 0..7 {
        let mut body = lead(&format!("l-{index}"));
        body["source"] = json!(if index % 2 == 0 { "百度" } else { "展会" });
        body["tags"] = json!(if index == 3 {
            vec!["高潜力"]
        } else {
            vec![]
        });
        app.ok("/api/v1/leads", &body, StatusCode::CREATED).await;
    }
    let (_, page) = app.get("/api/v1/leads?limit=3").await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(3));
    let cursor = page["next_cursor"].as_str().expect("cursor");
    let (_, next) = app
        .get(&format!("/api/v1/leads?limit=3&cursor={cursor}"))
        .await;
    assert_eq!(next["items"].as_array().map(Vec::len), Some(3));
    assert_ne!(next["items"][0]["id"], page["items"][0]["id"]);
    let (_, last) = app
        .get(&format!(
            "/api/v1/leads?limit=3&cursor={}",
            next["next_cursor"].as_str().expect("cursor")
        ))
        .await;
    assert_eq!(
        (
            last["items"].as_array().map(Vec::len),
            last["next_cursor"].clone()
        ),
        (Some(1), Value::Null)
    );
    let (_, by_source) = app.get("/api/v1/leads?source=%E5%B1%95%E4%BC%9A").await;
    assert_eq!(by_source["items"].as_array().map(Vec::len), Some(3));
    let (_, by_tag) = app
        .get("/api/v1/leads?tag=%E9%AB%98%E6%BD%9C%E5%8A%9B")
        .await;
    assert_eq!(by_tag["items"].as_array().map(Vec::len), Some(1));
    let (_, by_owner) = app.get("/api/v1/leads?owner_id=r00&status=assigned").await;
    assert_eq!(by_owner["items"].as_array().map(Vec::len), Some(4));
    let (status, error) = app.get("/api/v1/leads?status=bogus").await;
    assert_eq!(
        (status, error["error"]["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("status"))
    );
    let (status, _) = app.get("/api/v1/leads/does-not-exist").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn rule_sets_naming_unknown_teams_or_fields_are_refused_with_every_error() {
    let app = TestApp::sqlite().await;
    app.round_robin_team(1, json!({})).await;
    let (status, value) = app
        .post("/api/v1/rule-sets", &json!({"rules": [
            {"id": "a", "target": {"team": "ghost"}},
            {"id": "b", "when": {"field": "regoin", "op": "equals", "value": "华东"}, "target": {"team": "t"}}
        ]}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(value["error"]["code"], "invalid_rule_set");
    assert_eq!(value["error"]["field"], "rules[0].target.team");
    let codes: Vec<&str> = value["error"]["details"]
        .as_array()
        .expect("details")
        .iter()
        .filter_map(|detail| detail["code"].as_str())
        .collect();
    assert_eq!(codes, ["unknown_team", "unknown_field"]);
    let (status, value) = app
        .post(
            "/api/v1/rule-sets",
            &json!({"rules": [{"id": "a", "target": {"team": "t"}, "stratgy": {}}]}),
        )
        .await;
    assert_eq!(
        (
            status,
            value["error"]["code"].clone(),
            value["error"]["field"].clone()
        ),
        (
            StatusCode::BAD_REQUEST,
            json!("unknown_field"),
            json!("rules[0].stratgy")
        )
    );
    let (status, value) = app
        .post(
            "/api/v1/rule-sets/validate",
            &json!({"rules": [{"id": "a", "target": {"team": "t"}}]}),
        )
        .await;
    assert_eq!(
        (status, value["valid"].clone()),
        (StatusCode::OK, json!(true))
    );
}

#[tokio::test]
async fn reps_and_teams_are_validated_and_patched() {
    let app = TestApp::sqlite().await;
    let (status, error) = app
        .post(
            "/api/v1/reps",
            &json!({"name": "A", "time_zone": "Mars/Base"}),
        )
        .await;
    assert_eq!(
        (status, error["error"]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("time_zone"))
    );
    let (status, error) = app
        .post(
            "/api/v1/reps",
            &json!({"name": "A", "working_hours": {"mon": ["9-18"]}}),
        )
        .await;
    assert_eq!(
        (status, error["error"]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("working_hours.mon"))
    );
    let rep = app
        .ok(
            "/api/v1/reps",
            &json!({"id": "a", "name": "A", "caps": {"max_per_day": 5}}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(rep["status"], "active");
    let (status, _) = app
        .post("/api/v1/reps", &json!({"id": "a", "name": "again"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, rep) = app.patch("/api/v1/reps/a", &json!({"status": "on_leave", "leaves": [{"from": "2026-12-01", "until": "2026-12-14"}]})).await;
    assert_eq!(
        (
            status,
            rep["status"].clone(),
            rep["caps"]["max_per_day"].clone()
        ),
        (StatusCode::OK, json!("on_leave"), json!(5))
    );
    let (status, error) = app
        .post(
            "/api/v1/teams",
            &json!({"name": "T", "members": [{"rep_id": "ghost"}]}),
        )
        .await;
    assert_eq!(
        (
            status,
            error["error"]["code"].clone(),
            error["error"]["field"].clone()
        ),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!("unknown_rep"),
            json!("members[0].rep_id")
        )
    );
}

#[tokio::test]
async fn explain_routes_without_storing() {
    let app = TestApp::sqlite().await;
    app.round_robin_team(2, json!({})).await;
    let (status, value) = app
        .post("/api/v1/route/explain", &json!({"lead": lead("dry")}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(value["decision"]["outcome"], "assigned");
    assert!(
        value["decision"]["explanation"]["en"]
            .as_str()
            .expect("en")
            .contains("Assigned to Rep 0")
    );
    let (_, list) = app.get("/api/v1/leads").await;
    assert_eq!(list["items"], json!([]));
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let app = TestApp::sqlite().await;
    let (status, document) = app
        .send(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let paths = document["paths"].as_object().expect("paths");
    for path in [
        "/api/v1/leads",
        "/api/v1/leads/batch",
        "/api/v1/leads/{id}",
        "/api/v1/leads/{id}/decisions",
        "/api/v1/leads/{id}/assign",
        "/api/v1/leads/{id}/reroute",
        "/api/v1/route/explain",
        "/api/v1/reps",
        "/api/v1/reps/{id}",
        "/api/v1/teams",
        "/api/v1/teams/{id}",
        "/api/v1/rule-sets",
        "/api/v1/rule-sets/{id}",
        "/api/v1/rule-sets/{id}/publish",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from the OpenAPI document"
        );
    }
    let (status, page) = app.send(Method::GET, "/api/docs/", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.as_str().is_some_and(|html| html.contains("swagger")),
        "the docs page renders from the binary"
    );
}

#[tokio::test]
async fn a_known_customer_goes_back_to_its_owner() {
    let app = TestApp::sqlite().await;
    for index in 0..3 {
        app.ok(
            "/api/v1/reps",
            &json!({"id": format!("r{index}"), "name": format!("Rep {index}")}),
            StatusCode::CREATED,
        )
        .await;
    }
    app.ok(
        "/api/v1/teams",
        &json!({"id": "t", "name": "T", "hours_policy": "any_time",
        "members": [{"rep_id": "r0"}, {"rep_id": "r1"}, {"rep_id": "r2"}]}),
        StatusCode::CREATED,
    )
    .await;
    app.publish(json!({"rules": [{"id": "all", "target": {"team": "t"}, "owner_affinity": true}]}))
        .await;
    let first = app
        .ok(
            "/api/v1/leads",
            &json!({"name": "老客户", "phone": "13911112222"}),
            StatusCode::CREATED,
        )
        .await;
    let owner = first["lead"]["owner_id"].clone();
    for index in 0..3 {
        let body = app.ok("/api/v1/leads", &json!({"name": "老客户", "phone": "+86 139 1111 2222", "external_id": format!("again-{index}")}), StatusCode::CREATED).await;
        assert_eq!(body["lead"]["owner_id"], owner, "{body}");
        assert_eq!(
            body["decision"]["record"]["attempts"][0]["step"],
            "affinity"
        );
    }
    // Reassigned by hand, the customer follows its new owner.
    let id = first["lead"]["id"].as_str().expect("id");
    let new_owner = if owner == json!("r2") { "r1" } else { "r2" };
    app.ok(
        &format!("/api/v1/leads/{id}/assign"),
        &json!({"rep_id": new_owner}),
        StatusCode::OK,
    )
    .await;
    let back = app
        .ok(
            "/api/v1/leads",
            &json!({"name": "老客户", "phone": "13911112222", "external_id": "after-assign"}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(back["lead"]["owner_id"], new_owner, "{back}");
    let other = app
        .ok(
            "/api/v1/leads",
            &json!({"name": "新客户", "email": "new@example.com"}),
            StatusCode::CREATED,
        )
        .await;
    assert_ne!(
        other["lead"]["owner_id"], owner,
        "rotation continues for new customers"
    );
}

#[tokio::test]
async fn held_leads_are_released_most_urgent_first_when_someone_can_take_them() {
    let app = TestApp::sqlite().await;
    app.ok(
        "/api/v1/reps",
        &json!({"id": "a", "name": "A", "status": "paused", "caps": {"max_open": 2}}),
        StatusCode::CREATED,
    )
    .await;
    app.ok(
        "/api/v1/teams",
        &json!({"id": "t", "name": "T", "hours_policy": "any_time", "members": [{"rep_id": "a"}]}),
        StatusCode::CREATED,
    )
    .await;
    app.publish(json!({"rules": [{"id": "all", "target": {"team": "t"}, "fallback": ["hold"]}]}))
        .await;
    let mut ids = std::collections::BTreeMap::new();
    for (name, priority) in [("low", "low"), ("normal", "normal"), ("urgent", "urgent")] {
        let body = app
            .ok(
                "/api/v1/leads",
                &json!({"name": name, "priority": priority}),
                StatusCode::CREATED,
            )
            .await;
        assert_eq!(body["lead"]["held"], true, "{body}");
        ids.insert(name, body["lead"]["id"].as_str().expect("id").to_owned());
    }
    assert_eq!(
        app.state.router.sweep().await.expect("sweep"),
        0,
        "nobody can take them yet"
    );
    let (_, queue) = app.get("/api/v1/leads?held=true").await;
    assert_eq!(queue["items"].as_array().map(Vec::len), Some(3), "{queue}");

    let (status, rep) = app
        .send(
            Method::PUT,
            "/api/v1/reps/a/status",
            Some(&json!({"status": "active"})),
            Some(&app.key.clone()),
        )
        .await;
    assert_eq!(
        (status, rep["status"].clone()),
        (StatusCode::OK, json!("active"))
    );
    app.state.router.sweep().await.expect("sweep");
    let owner = |lead: &Value| (lead["owner_id"].clone(), lead["held"].clone());
    let (_, urgent) = app.get(&format!("/api/v1/leads/{}", ids["urgent"])).await;
    let (_, normal) = app.get(&format!("/api/v1/leads/{}", ids["normal"])).await;
    let (_, low) = app.get(&format!("/api/v1/leads/{}", ids["low"])).await;
    assert_eq!(owner(&urgent), (json!("a"), json!(false)));
    assert_eq!(owner(&normal), (json!("a"), json!(false)));
    assert_eq!(
        owner(&low),
        (Value::Null, json!(true)),
        "the holding cap of 2 is full"
    );
    let (_, queue) = app.get("/api/v1/leads?held=true").await;
    assert_eq!(
        queue["items"][0]["id"],
        json!(ids["low"]),
        "only the one still waiting"
    );
    assert_eq!(queue["items"].as_array().map(Vec::len), Some(1));
    let (_, decisions) = app
        .get(&format!("/api/v1/leads/{}/decisions", ids["urgent"]))
        .await;
    let kinds: Vec<&str> = decisions["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|item| item["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["release", "route"]);

    let (status, _) = app
        .patch(
            &format!("/api/v1/leads/{}", ids["urgent"]),
            &json!({"status": "invalid"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    app.state.router.sweep().await.expect("sweep");
    let (_, low) = app.get(&format!("/api/v1/leads/{}", ids["low"])).await;
    assert_eq!(
        owner(&low),
        (json!("a"), json!(false)),
        "closing a lead freed the cap"
    );
}

/// Custom fields: declared, carried by leads and reps, tested by rules, removed safely.
async fn custom_fields_on(backend: crate::support::Backend) {
    let Some(app) = TestApp::new(backend).await else {
        return;
    };
    app.round_robin_team(2, json!({})).await;
    // Undeclared attributes are refused, as before.
    let mut body = lead("custom-0");
    body["attributes"] = json!({"account_owner": "r01"});
    let (status, refused) = app.post("/api/v1/leads", &body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    // Declared, with bad declarations refused by field.
    check(
        &app,
        "/api/v1/fields",
        json!({"entity": "lead", "name": "account owner", "type": "text"}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_value",
        Some("name"),
    )
    .await;
    check(
        &app,
        "/api/v1/fields",
        json!({"entity": "lead", "name": "seats", "type": "decimal"}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_value",
        Some("type"),
    )
    .await;
    let created = app
        .ok(
            "/api/v1/fields",
            &json!({"entity": "lead", "name": "account_owner", "type": "text"}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(created["path"], json!("attributes.account_owner"));
    // Names may be Chinese, as 简道云 and CRM fields often are.
    let channel = app
        .ok(
            "/api/v1/fields",
            &json!({"entity": "lead", "name": "渠道", "type": "text"}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(channel["path"], json!("attributes.渠道"));
    app.ok(
        "/api/v1/fields",
        &json!({"entity": "rep", "name": "seniority", "type": "number"}),
        StatusCode::CREATED,
    )
    .await;
    check(
        &app,
        "/api/v1/fields",
        json!({"entity": "lead", "name": "account_owner", "type": "text"}),
        StatusCode::CONFLICT,
        "already_exists",
        Some("name"),
    )
    .await;
    let (_, fields) = app.get("/api/v1/fields").await;
    let paths: Vec<&str> = fields["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|field| field["path"].as_str())
        .collect();
    assert!(
        paths.contains(&"region")
            && paths.contains(&"rep.regions")
            && paths.contains(&"attributes.account_owner")
            && paths.contains(&"rep.attributes.seniority"),
        "{paths:?}"
    );
    // The example from docs/rules.md: the CRM's owner field routes the lead.
    app.publish(json!({"rules": [
        {"id": "crm-owner", "when": {"field": "attributes.account_owner", "op": "exists"},
         "target": {"owner_field": "attributes.account_owner"}, "fallback": ["next_rule"]},
        {"id": "senior", "target": {"team": "t"},
         "requires": [{"field": "rep.attributes.seniority", "op": "gte", "value": 2}],
         "fallback": [{"pool": "public"}]}]}))
        .await;
    body["attributes"]["渠道"] = json!("抖音");
    let routed = app.ok("/api/v1/leads", &body, StatusCode::CREATED).await;
    assert_eq!(routed["lead"]["attributes"]["渠道"], json!("抖音"));
    assert_eq!(routed["lead"]["owner_id"], json!("r01"), "{routed}");
    assert_eq!(routed["lead"]["attributes"]["account_owner"], json!("r01"));
    // A rep attribute: only r00 is senior, so the second rule gives r00 everything.
    let (status, rep) = app
        .patch("/api/v1/reps/r00", &json!({"attributes": {"seniority": 3}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{rep}");
    for index in 1..4 {
        let plain = app
            .ok(
                "/api/v1/leads",
                &lead(&format!("custom-{index}")),
                StatusCode::CREATED,
            )
            .await;
        assert_eq!(plain["lead"]["owner_id"], json!("r00"), "{plain}");
    }
    // In use by the active rule set: not removable.
    let (status, in_use) = app
        .send(
            Method::DELETE,
            "/api/v1/fields/lead/account_owner",
            None,
            Some(&app.key),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{in_use}");
    assert_eq!(in_use["error"]["code"], json!("in_use"));
    // Once no rule uses it, it goes; leads that carry it still reroute (the value is unread).
    app.publish(json!({"rules": [{"id": "all", "target": {"team": "t"}, "fallback": [{"pool": "public"}]}]})).await;
    for path in [
        "/api/v1/fields/lead/account_owner",
        "/api/v1/fields/rep/seniority",
    ] {
        let (status, answer) = app.send(Method::DELETE, path, None, Some(&app.key)).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{path}: {answer}");
    }
    let (status, _) = app
        .send(
            Method::DELETE,
            "/api/v1/fields/lead/account_owner",
            None,
            Some(&app.key),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let id = routed["lead"]["id"].as_str().expect("id");
    let (status, rerouted) = app
        .post(&format!("/api/v1/leads/{id}/reroute"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{rerouted}");
    // The rep with the removed attribute still receives leads.
    let (status, rep) = app.get("/api/v1/reps/r00").await;
    assert_eq!(status, StatusCode::OK, "{rep}");
    let owners: Vec<Value> = {
        let mut owners = Vec::new();
        for index in 4..8 {
            let plain = app
                .ok(
                    "/api/v1/leads",
                    &lead(&format!("custom-{index}")),
                    StatusCode::CREATED,
                )
                .await;
            owners.push(plain["lead"]["owner_id"].clone());
        }
        owners
    };
    assert!(owners.contains(&json!("r00")), "{owners:?}");
    let (_, audit) = app.get("/api/v1/audit").await;
    assert!(audit.to_string().contains("field.deleted"), "{audit}");
}

#[tokio::test]
async fn custom_fields_are_declared_used_and_removed_safely_on_sqlite() {
    custom_fields_on(crate::support::Backend::Sqlite).await;
}

#[tokio::test]
async fn custom_fields_are_declared_used_and_removed_safely_on_postgres() {
    custom_fields_on(crate::support::Backend::Postgres).await;
}

/// A known customer's lead that waited in the hold queue goes to the customer's owner when it
/// is released, as it would have at intake.
#[tokio::test]
async fn a_held_lead_of_a_known_customer_goes_to_their_owner() {
    let app = TestApp::without_clock(crate::support::Backend::Sqlite)
        .await
        .expect("app");
    for id in ["a", "b"] {
        app.ok(
            "/api/v1/reps",
            &json!({"id": id, "name": id}),
            StatusCode::CREATED,
        )
        .await;
    }
    app.ok(
        "/api/v1/teams",
        &json!({"id": "t", "name": "T", "hours_policy": "any_time", "members": [{"rep_id": "a"}, {"rep_id": "b"}]}),
        StatusCode::CREATED,
    )
    .await;
    let publish = |requires: Value| {
        app.publish(
            json!({"rules": [{"id": "all", "target": {"team": "t"}, "owner_affinity": true,
            "requires": requires, "fallback": ["hold"]}]}),
        )
    };
    publish(json!([])).await;
    let customer = |phone: &str, external: &str| json!({"external_id": external, "name": "客户", "phone": phone});
    let mut owners = Vec::new();
    for (phone, external) in [
        ("13800138001", "x-1"),
        ("13800138002", "y-1"),
        ("13800138003", "z-1"),
    ] {
        let routed = app
            .ok(
                "/api/v1/leads",
                &customer(phone, external),
                StatusCode::CREATED,
            )
            .await;
        owners.push(routed["lead"]["owner_id"].clone());
    }
    assert_eq!(owners, [json!("a"), json!("b"), json!("a")]);
    // Both reps away for a while: customer X's second lead waits.
    for rep in ["a", "b"] {
        let (status, _) = app
            .send(
                Method::PUT,
                &format!("/api/v1/reps/{rep}/status"),
                Some(&json!({"status": "paused"})),
                Some(&app.key.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let held = app
        .ok(
            "/api/v1/leads",
            &customer("13800138001", "x-2"),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(held["lead"]["held"], json!(true), "{held}");
    // Both back at once, as another instance would write it; the rotation would say b, the
    // customer's owner is a.
    for rep in ["a", "b"] {
        let mut row = app
            .state
            .store
            .get_rep(rep)
            .await
            .expect("read")
            .expect("rep");
        let mut document: Value = serde_json::from_str(&row.document).expect("document");
        document["status"] = json!("active");
        row.document = document.to_string();
        row.status = "active".into();
        app.state.store.upsert_rep(&row).await.expect("write");
    }
    app.state.router.sweep().await.expect("sweep");
    let id = held["lead"]["id"].as_str().expect("id");
    let (_, released) = app.get(&format!("/api/v1/leads/{id}")).await;
    assert_eq!(released["owner_id"], json!("a"), "{released}");
}

/// The served document is a valid OpenAPI 3.1 contract an integrator can generate a client
/// from, checked by the reference validator (openapi-spec-validator, which `.ci/run` installs).
#[tokio::test]
async fn the_served_openapi_document_is_a_valid_contract() {
    let app = TestApp::sqlite().await;
    let (status, document) = app
        .send(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let python = std::env::var("LEADROUTE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let available = std::process::Command::new(&python)
        .args(["-c", "import openapi_spec_validator"])
        .output()
        .is_ok_and(|output| output.status.success());
    if !available {
        assert!(
            std::env::var("CI").is_err(),
            "CI must check the OpenAPI document: pip install openapi-spec-validator"
        );
        eprintln!("openapi-spec-validator is not installed; the document was not validated");
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, document.to_string()).expect("write");
    let output = std::process::Command::new(&python)
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .expect("validator");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `/metrics` says what an operator watches: answers by route and status, intake by source and
/// outcome, routing latency, timers fired, the hold queue, the pools, timers due, deliveries
/// waiting and the connection pool — by route pattern, never a lead's id.
async fn metrics_describe_the_service(app: TestApp) {
    app.round_robin_team(1, json!({"max_open": 1})).await;
    let lead = json!({"external_id": "m1", "company": "ACME"});
    app.ok("/api/v1/leads", &lead, StatusCode::CREATED).await;
    app.ok("/api/v1/leads", &lead, StatusCode::OK).await;
    let (status, _) = app.post("/api/v1/leads", &json!({"phone": "12"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // The only rep is full: the next one goes to the pool.
    let pooled = app
        .ok(
            "/api/v1/leads",
            &json!({"company": "Second"}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(pooled["lead"]["pool_id"], json!("public"), "{pooled}");
    let id = pooled["lead"]["id"].as_str().expect("id");
    app.get(&format!("/api/v1/leads/{id}")).await;
    app.state
        .router
        .tick(chrono::Utc::now() + chrono::Duration::days(30))
        .await
        .expect("tick");
    let (status, text) = app.send(Method::GET, "/metrics", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().expect("text").to_owned();
    for line in [
        "leadroute_http_requests_total{route=\"/api/v1/leads\",status=\"201\"} 2",
        "leadroute_http_requests_total{route=\"/api/v1/leads/{id}\",status=\"200\"} 1",
        "leadroute_intake_leads_total{source=\"api\",outcome=\"created\"} 2",
        "leadroute_intake_leads_total{source=\"api\",outcome=\"duplicate\"} 1",
        "leadroute_intake_leads_total{source=\"api\",outcome=\"rejected\"} 1",
        "leadroute_hold_queue_leads 0",
        "# TYPE leadroute_routing_transaction_seconds histogram",
        "leadroute_outbox_pending ",
        "leadroute_timers_due ",
        "leadroute_timers_fired_total ",
        "leadroute_db_connections{state=\"open\"} ",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
    let gauge = |name: &str| -> i64 {
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{name} ")))
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("{name}: {text}"))
    };
    // The second lead waits in the pool (the first may have joined it when its timers fired).
    assert!(gauge("leadroute_pool_leads") >= 1, "{text}");
    assert!(gauge("leadroute_timers_fired_total") >= 1, "{text}");
    assert!(!text.contains(id), "a lead's id in metrics: {text}");
    // The alert rules and the dashboard in deploy/ use only series this exposes.
    for file in [
        include_str!("../../../../deploy/prometheus-alerts.yml"),
        include_str!("../../../../deploy/grafana-dashboard.json"),
    ] {
        let names = file
            .split(|character: char| !(character.is_ascii_alphanumeric() || character == '_'))
            .filter(|word| word.starts_with("leadroute_"));
        for name in names {
            let series = name.trim_end_matches("_bucket");
            assert!(text.contains(series), "{series} is not exposed: {text}");
        }
    }
}

#[tokio::test]
async fn metrics_describe_the_service_on_sqlite() {
    metrics_describe_the_service(TestApp::without_clock(Backend::Sqlite).await.expect("app")).await;
}

#[tokio::test]
async fn metrics_describe_the_service_on_postgres() {
    if let Some(app) = TestApp::without_clock(Backend::Postgres).await {
        metrics_describe_the_service(app).await;
    }
}
