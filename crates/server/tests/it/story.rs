//! The story a new team goes through, on SQLite and on PostgreSQL: create reps and teams,
//! publish rules, post leads, read decisions, reassign, reroute, close.

use axum::http::StatusCode;
use serde_json::json;

use crate::support::{Backend, TestApp};

async fn story(app: TestApp) {
    for (id, name, industries) in [
        ("zhang", "张伟", json!(["制造"])),
        ("li", "李娜", json!(["互联网"])),
        ("wang", "王芳", json!(["制造", "金融"])),
    ] {
        app.ok("/api/v1/reps", &json!({"id": id, "name": name, "regions": ["华东"], "industries": industries, "caps": {"max_per_day": 50}}), StatusCode::CREATED).await;
    }
    app.ok("/api/v1/teams", &json!({"id": "east", "name": "华东销售组", "members": [{"rep_id": "zhang"}, {"rep_id": "li"}, {"rep_id": "wang"}],
        "hours_policy": "any_time", "overflow": {"pool": "public"}}), StatusCode::CREATED).await;
    let draft = app.ok("/api/v1/rule-sets", &json!({"name": "华东", "rules": [
        {"id": "east-manufacturing", "name": "华东制造业", "when": {"all": [
            {"field": "region", "op": "equals", "value": "华东"}, {"field": "industry", "op": "equals", "value": "制造"}]},
         "target": {"team": "east"}, "requires": [{"field": "rep.industries", "op": "contains", "ref": "industry"}]},
        {"id": "rest", "target": {"pool": "public"}}
    ]}), StatusCode::CREATED).await;
    assert_eq!(draft["status"], "draft");
    let version = draft["version"].as_i64().expect("version");
    // Before publishing nothing routes: leads are held.
    let held = app.ok("/api/v1/leads", &json!({"name": "早到的客户", "phone": "13900000001", "region": "华东", "industry": "制造"}), StatusCode::CREATED).await;
    assert_eq!(held["lead"]["held"], true);
    let published = app
        .ok(
            &format!("/api/v1/rule-sets/{version}/publish"),
            &json!({}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(published["active"], true);

    let mut owners = Vec::new();
    for index in 0..4 {
        let body = app
            .ok("/api/v1/leads", &json!({"external_id": format!("story-{index}"), "name": "客户", "phone": format!("1380000000{index}"),
                "province": "江苏省", "industry": "制造"}), StatusCode::CREATED)
            .await;
        assert_eq!(body["lead"]["region"], "华东", "derived from the province");
        assert_eq!(body["lead"]["phone"], format!("+861380000000{index}"));
        owners.push(body["lead"]["owner_id"].as_str().expect("owner").to_owned());
    }
    // Publishing released the lead that waited in the hold queue: it went first, to wang.
    let (_, early) = app
        .get(&format!(
            "/api/v1/leads/{}",
            held["lead"]["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(
        (early["owner_id"].clone(), early["held"].clone()),
        (json!("wang"), json!(false))
    );
    assert_eq!(
        owners,
        ["zhang", "wang", "zhang", "wang"],
        "round robin among reps who do manufacturing"
    );

    let other = app
        .ok(
            "/api/v1/leads",
            &json!({"name": "华南客户", "phone": "13700000000", "region": "华南"}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(other["lead"]["pool_id"], "public");
    assert_eq!(other["lead"]["owner_id"], json!(null));

    let (_, list) = app.get("/api/v1/leads?owner_id=zhang").await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(2));
    let lead_id = list["items"][0]["id"].as_str().expect("id").to_owned();

    let (status, decisions) = app.get(&format!("/api/v1/leads/{lead_id}/decisions")).await;
    assert_eq!(status, StatusCode::OK);
    let decision = &decisions["items"][0];
    assert_eq!(decision["record"]["rule"]["id"], "east-manufacturing");
    let explanation = decision["explanation"]["en"].as_str().expect("explanation");
    assert!(
        explanation.contains("needs 1: 李娜 rep.industries contains 制造"),
        "{explanation}"
    );
    assert!(
        decision["explanation"]["zh"]
            .as_str()
            .expect("zh")
            .contains("命中规则「华东制造业」")
    );

    let assigned = app
        .ok(
            &format!("/api/v1/leads/{lead_id}/assign"),
            &json!({"rep_id": "li", "reason": "客户要求"}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(assigned["lead"]["owner_id"], "li");
    assert_eq!(assigned["decision"]["kind"], "manual");
    let rerouted = app
        .ok(
            &format!("/api/v1/leads/{lead_id}/reroute"),
            &json!({}),
            StatusCode::OK,
        )
        .await;
    let new_owner = rerouted["lead"]["owner_id"].as_str().expect("owner");
    assert_ne!(
        new_owner, "li",
        "a reroute never returns the lead to its current owner"
    );
    let (_, decisions) = app.get(&format!("/api/v1/leads/{lead_id}/decisions")).await;
    let kinds: Vec<&str> = decisions["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|item| item["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["reroute", "manual", "route"]);

    let (status, closed) = app
        .patch(
            &format!("/api/v1/leads/{lead_id}"),
            &json!({"status": "lost", "lost_reason": "went with a competitor"}),
        )
        .await;
    assert_eq!(
        (status, closed["status"].clone()),
        (StatusCode::OK, json!("lost"))
    );
    let (status, error) = app
        .post(&format!("/api/v1/leads/{lead_id}/reroute"), &json!({}))
        .await;
    assert_eq!(
        (status, error["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("lead_closed"))
    );
}

async fn closing(app: TestApp) {
    app.round_robin_team(1, json!({"max_open": 1})).await;
    let first = app
        .ok(
            "/api/v1/leads",
            &crate::support::lead("c-1"),
            StatusCode::CREATED,
        )
        .await;
    let second = app
        .ok(
            "/api/v1/leads",
            &crate::support::lead("c-2"),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(first["lead"]["owner_id"], "r00");
    assert_eq!(
        second["lead"]["pool_id"], "public",
        "the holding cap is full"
    );
    let id = first["lead"]["id"].as_str().expect("id");
    let (status, lead) = app
        .patch(
            &format!("/api/v1/leads/{id}"),
            &json!({"status": "contacted"}),
        )
        .await;
    assert_eq!(
        (status, lead["status"].clone()),
        (StatusCode::OK, json!("contacted"))
    );
    let (status, lead) = app
        .patch(
            &format!("/api/v1/leads/{id}"),
            &json!({"status": "won", "amount": 12000}),
        )
        .await;
    assert_eq!(
        (status, lead["status"].clone()),
        (StatusCode::OK, json!("won"))
    );
    let third = app
        .ok(
            "/api/v1/leads",
            &crate::support::lead("c-3"),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(
        third["lead"]["owner_id"], "r00",
        "closing a lead frees the holding cap"
    );
    let (status, error) = app
        .patch(
            &format!("/api/v1/leads/{id}"),
            &json!({"status": "contacted"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error["error"]["code"], "illegal_transition");
}

#[tokio::test]
async fn the_story_on_sqlite() {
    story(TestApp::sqlite().await).await;
}

#[tokio::test]
async fn the_story_on_postgres() {
    if let Some(app) = TestApp::new(Backend::Postgres).await {
        story(app).await;
    }
}

#[tokio::test]
async fn closing_leads_frees_caps_on_sqlite() {
    closing(TestApp::sqlite().await).await;
}

#[tokio::test]
async fn closing_leads_frees_caps_on_postgres() {
    if let Some(app) = TestApp::new(Backend::Postgres).await {
        closing(app).await;
    }
}
