//! 查重 / 撞单: a returning customer is attached, routed to their owner or flagged as the
//! workspace's policy says, by phone, email, WeChat id or company name; flagged pairs merge;
//! a manual assignment or a claim of a customer another rep holds is refused — on SQLite and
//! on PostgreSQL, with arrivals at once.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use server::auth::Role;

use crate::support::{Backend, TestApp, session_for_rep};

async fn policy(app: &TestApp, document: Value) {
    let (status, body) = app
        .send(
            Method::PUT,
            "/api/v1/settings/duplicates",
            Some(&document),
            Some(&app.key.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn count_leads(app: &TestApp) -> usize {
    let (_, body) = app.get("/api/v1/leads?limit=500").await;
    body["items"].as_array().expect("items").len()
}

async fn the_policy_is_an_admin_setting_checked_field_by_field(app: TestApp) {
    let (status, body) = app.get("/api/v1/settings/duplicates").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["enabled"], false, "{body}");
    assert_eq!(body["window"], "90d");
    let put = |document: Value, key: String| {
        let app = &app;
        async move {
            app.send(
                Method::PUT,
                "/api/v1/settings/duplicates",
                Some(&document),
                Some(&key),
            )
            .await
        }
    };
    let admin = app.key.clone();
    let (status, body) = put(json!({"keys": ["phone"], "window": "soon"}), admin.clone()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "window");
    let (status, body) = put(json!({"keys": ["fax"]}), admin.clone()).await;
    assert!(status.is_client_error(), "{body}");
    let (status, _) = put(json!({"keys": ["phone"], "colour": 1}), admin.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    for role in [Role::Reporting, Role::Integration] {
        let key = app.key(role).await;
        let (status, _) = put(json!({"keys": ["phone"]}), key).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let (status, body) = put(
        json!({"keys": ["phone", "email"], "on_match": "flag", "window": "30d"}),
        admin,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["enabled"], true);
    assert_eq!(body["version"], 1);
    let (_, audit) = app.get("/api/v1/audit?limit=5").await;
    assert!(
        audit.to_string().contains("settings.duplicates_set"),
        "{audit}"
    );
}

async fn a_returning_customer_is_attached_by_each_key(app: TestApp) {
    app.round_robin_team(3, json!({})).await;
    // Off by default: the same phone twice is two leads, as before.
    app.ok(
        "/api/v1/leads",
        &json!({"name": "王总", "phone": "13800138000"}),
        StatusCode::CREATED,
    )
    .await;
    app.ok(
        "/api/v1/leads",
        &json!({"name": "王总", "phone": "138 0013 8000"}),
        StatusCode::CREATED,
    )
    .await;
    policy(
        &app,
        json!({"keys": ["phone", "email", "wechat", "company"], "on_match": "attach"}),
    )
    .await;
    for (first, again, key) in [
        (
            json!({"name": "李总", "phone": "13900139000", "source": "百度"}),
            json!({"name": "李先生", "phone": "+86 139-0013-9000", "source": "抖音"}),
            "phone",
        ),
        (
            json!({"name": "Ann", "email": "Ann.Lee@Example.com"}),
            json!({"name": "Ann", "email": "ann.lee@EXAMPLE.COM"}),
            "email",
        ),
        (
            json!({"name": "赵", "wechat": "ZhaoLaoban"}),
            json!({"name": "赵总", "wechat": " zhaolaoban "}),
            "wechat",
        ),
        (
            json!({"name": "周", "company": "深圳市腾讯计算机系统有限公司"}),
            json!({"name": "吴", "company": "腾讯计算机系统（深圳）有限公司"}),
            "company",
        ),
    ] {
        let before = count_leads(&app).await;
        let created = app.ok("/api/v1/leads", &first, StatusCode::CREATED).await;
        let id = created["lead"]["id"].as_str().expect("id").to_owned();
        let owner = created["lead"]["owner_id"].clone();
        let attached = app.ok("/api/v1/leads", &again, StatusCode::OK).await;
        assert_eq!(attached["duplicate"], true, "{key}: {attached}");
        assert_eq!(attached["match"]["action"], "attached", "{attached}");
        assert_eq!(attached["match"]["key"], key);
        assert_eq!(attached["match"]["lead_id"], id.as_str());
        assert_eq!(attached["lead"]["id"], id.as_str());
        assert_eq!(
            attached["lead"]["owner_id"], owner,
            "the owner keeps the customer"
        );
        assert_eq!(count_leads(&app).await, before + 1, "{key}: one lead");
        let (_, activities) = app.get(&format!("/api/v1/leads/{id}/activities")).await;
        let inquiry = activities["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|activity| activity["kind"] == "inquiry")
            .unwrap_or_else(|| panic!("{key}: an inquiry touch in {activities}"))
            .clone();
        assert!(inquiry.to_string().contains(key), "{inquiry}");
        let (_, events) = app
            .get(&format!("/api/v1/events?lead_id={id}&limit=50"))
            .await;
        assert!(
            events.to_string().contains("lead.inquired"),
            "the owner is told: {events}"
        );
    }
    // The touch did not count as the owner's first response.
    let (_, leads) = app.get("/api/v1/leads?limit=500").await;
    for lead in leads["items"].as_array().expect("items") {
        assert!(lead["follow_up"]["first_response_at"].is_null(), "{lead}");
    }
    // A batch: the same customer twice in one request, and once more as a known customer.
    let (status, batch) = app
        .post(
            "/api/v1/leads/batch",
            &json!({"leads": [
                {"name": "钱", "phone": "13700137000"},
                {"name": "钱总", "phone": "13700137000"},
                {"name": "李", "phone": "13900139000"},
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{batch}");
    let results: Vec<&str> = batch["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["result"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(results, ["created", "attached", "attached"], "{batch}");
}

async fn route_to_owner_flag_and_returning_customers(app: TestApp) {
    app.round_robin_team(3, json!({})).await;
    policy(
        &app,
        json!({"keys": ["phone"], "on_match": "route_to_owner"}),
    )
    .await;
    let first = app
        .ok(
            "/api/v1/leads",
            &json!({"name": "王总", "phone": "13800138000"}),
            StatusCode::CREATED,
        )
        .await;
    let owner = first["lead"]["owner_id"]
        .as_str()
        .expect("owner")
        .to_owned();
    let second = app
        .ok(
            "/api/v1/leads",
            &json!({"name": "王总", "phone": "13800138000", "product": "B"}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(second["lead"]["owner_id"], owner.as_str(), "{second}");
    assert_eq!(second["match"]["action"], "routed_to_owner");
    assert_ne!(second["lead"]["id"], first["lead"]["id"]);
    // The dry run says the same as the real post would.
    let (_, explained) = app
        .post(
            "/api/v1/route/explain",
            &json!({"lead": {"name": "王", "phone": "13800138000"}}),
        )
        .await;
    assert_eq!(
        explained["decision"]["owner_id"],
        owner.as_str(),
        "{explained}"
    );
    assert_eq!(explained["match"]["action"], "routed_to_owner");

    // Flag: routed as usual, the pair waits for review.
    policy(&app, json!({"keys": ["phone"], "on_match": "flag"})).await;
    let third = app
        .ok(
            "/api/v1/leads",
            &json!({"name": "王总", "phone": "13800138000", "email": "wang@example.com"}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(third["match"]["action"], "flagged", "{third}");
    let third_id = third["lead"]["id"].as_str().expect("id").to_owned();
    let (_, pairs) = app.get("/api/v1/duplicates").await;
    let pair = pairs["items"][0].clone();
    assert_eq!(pair["lead"]["id"], third_id.as_str(), "{pairs}");
    assert_eq!(pair["key"], "phone");
    let keep = pair["other"]["id"].as_str().expect("other").to_owned();
    let pair_id = pair["id"].as_str().expect("pair").to_owned();
    app.ok(
        &format!("/api/v1/leads/{third_id}/activities"),
        &json!({"kind": "call", "outcome": "reached"}),
        StatusCode::CREATED,
    )
    .await;
    // A rep cannot merge, not even their own lead; a bad field is named.
    let owner_of_keep = pair["other"]["owner_id"]
        .as_str()
        .expect("owner")
        .to_owned();
    let session = session_for_rep(&app, &owner_of_keep).await;
    let (status, _) = app
        .send_as(
            Method::POST,
            &format!("/api/v1/leads/{keep}/merge"),
            &json!({"other_id": third_id}),
            &session,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = app
        .post(
            &format!("/api/v1/leads/{keep}/merge"),
            &json!({"other_id": third_id, "fields": ["password"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let merged = app
        .ok(
            &format!("/api/v1/leads/{keep}/merge"),
            &json!({"other_id": third_id, "fields": ["email"], "pair_id": pair_id}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(merged["lead"]["email"], "wang@example.com", "{merged}");
    assert_eq!(merged["decision"]["kind"], "merge");
    let (_, gone) = app.get(&format!("/api/v1/leads/{third_id}")).await;
    assert_eq!(gone["status"], "invalid", "{gone}");
    let (_, moved) = app.get(&format!("/api/v1/leads/{keep}/activities")).await;
    assert!(
        moved.to_string().contains("reached"),
        "activities move: {moved}"
    );
    let (_, open) = app.get("/api/v1/duplicates").await;
    assert_eq!(open["items"].as_array().map(Vec::len), Some(0), "{open}");
    let (_, done) = app.get("/api/v1/duplicates?status=merged").await;
    assert_eq!(done["items"][0]["id"], pair_id.as_str(), "{done}");
    let (status, _) = app
        .post(&format!("/api/v1/duplicates/{pair_id}/dismiss"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = app
        .post(
            &format!("/api/v1/leads/{keep}/merge"),
            &json!({"other_id": third_id}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "merged once only");
    let (_, audit) = app.get("/api/v1/audit?limit=5").await;
    assert!(audit.to_string().contains("lead.merged"), "{audit}");

    // Returning: every open lead of the customer is closed; within the window the owner of
    // the last one gets the customer again, whatever the rotation says.
    let (_, leads) = app.get("/api/v1/leads?limit=500").await;
    let mut last_owner = String::new();
    for lead in leads["items"].as_array().expect("items") {
        if lead["status"] != "invalid" {
            let id = lead["id"].as_str().expect("id");
            let (status, body) = app
                .patch(
                    &format!("/api/v1/leads/{id}"),
                    &json!({"status": "lost", "lost_reason": "budget"}),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            last_owner = lead["owner_id"].as_str().unwrap_or_default().to_owned();
        }
    }
    let back = app
        .ok(
            "/api/v1/leads",
            &json!({"name": "王总", "phone": "13800138000"}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(back["match"]["action"], "returning", "{back}");
    assert_eq!(back["lead"]["owner_id"], last_owner.as_str(), "{back}");
}

async fn concurrent_arrivals_of_one_phone_make_one_lead(app: TestApp) {
    app.round_robin_team(4, json!({})).await;
    policy(&app, json!({"keys": ["phone"], "on_match": "attach"})).await;
    let app = Arc::new(app);
    let tasks: Vec<_> = (0..24)
        .map(|index| {
            let app = Arc::clone(&app);
            tokio::spawn(async move {
                app.post(
                    "/api/v1/leads",
                    &json!({"name": format!("客户{index}"), "phone": "13600136000"}),
                )
                .await
            })
        })
        .collect();
    let mut created = 0;
    let mut attached = 0;
    let mut ids = std::collections::BTreeSet::new();
    for task in tasks {
        let (status, body) = task.await.expect("task");
        match status {
            StatusCode::CREATED => created += 1,
            StatusCode::OK if body["match"]["action"] == "attached" => attached += 1,
            _ => panic!("{status}: {body}"),
        }
        ids.insert(body["lead"]["id"].as_str().expect("id").to_owned());
    }
    assert_eq!((created, attached), (1, 23));
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(count_leads(&app).await, 1);
}

/// Many customers, each arriving several times at once: one lead each, the other arrivals
/// attached to it, whichever batch they fall in (on SQLite a batch is routed while the one
/// before it writes, and must see that one's customers).
async fn concurrent_arrivals_of_many_customers_make_one_lead_each(app: TestApp) {
    app.round_robin_team(4, json!({})).await;
    policy(
        &app,
        json!({"keys": ["phone", "email"], "on_match": "attach"}),
    )
    .await;
    let app = Arc::new(app);
    // 30 customers arriving 30 times each, in requests of 15 leads (more than one batch
    // takes): every request holds each customer at most once. Every other arrival brings the
    // email only: the customer is known by either key.
    let leads = (0..900)
        .map(|index| {
            let customer = (index / 15 + index) % 30;
            match index % 2 {
                0 => json!({"name": "客户", "phone": format!("1370000{customer:04}"),
                    "email": format!("c{customer}@example.com")}),
                _ => json!({"name": "客户", "email": format!("c{customer}@example.com")}),
            }
        })
        .collect();
    let results = crate::support::post_batches(&app, leads, 15).await;
    let mut lead_of = std::collections::BTreeMap::new();
    let mut created = 0;
    for (index, (result, lead)) in results.iter().enumerate() {
        match result.as_str() {
            "created" => created += 1,
            "attached" => {}
            _ => panic!("{result}: {lead}"),
        }
        let customer = (index / 15 + index) % 30;
        let id = lead["id"].as_str().expect("id").to_owned();
        let first = lead_of.entry(customer).or_insert_with(|| id.clone());
        assert_eq!(*first, id, "customer {customer} has two leads");
    }
    assert_eq!(created, 30);
    assert_eq!(count_leads(&app).await, 30);
    if app.state.store.reads_ahead() {
        let ahead = server::metrics::ROUTED_AHEAD.load(std::sync::atomic::Ordering::Relaxed);
        assert!(ahead > 0, "no batch was routed ahead");
    }
}

// On two threads, so that requests keep arriving while a batch writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_arrivals_of_many_customers_make_one_lead_each_on_sqlite() {
    concurrent_arrivals_of_many_customers_make_one_lead_each(TestApp::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_arrivals_of_many_customers_make_one_lead_each_on_postgres() {
    if let Some(app) = TestApp::new(Backend::Postgres).await {
        concurrent_arrivals_of_many_customers_make_one_lead_each(app).await;
    }
}

async fn a_customer_another_rep_holds_is_not_handed_over(app: TestApp) {
    app.round_robin_team(3, json!({})).await;
    policy(&app, json!({"keys": ["phone"], "on_match": "flag"})).await;
    let first = app
        .ok(
            "/api/v1/leads",
            &json!({"name": "王总", "phone": "13800138000"}),
            StatusCode::CREATED,
        )
        .await;
    let holder = first["lead"]["owner_id"]
        .as_str()
        .expect("owner")
        .to_owned();
    let second = app
        .ok(
            "/api/v1/leads",
            &json!({"name": "王总", "phone": "13800138000"}),
            StatusCode::CREATED,
        )
        .await;
    let second_id = second["lead"]["id"].as_str().expect("id").to_owned();
    let second_owner = second["lead"]["owner_id"]
        .as_str()
        .expect("owner")
        .to_owned();
    let third_rep = ["r00", "r01", "r02"]
        .into_iter()
        .find(|rep| *rep != holder && *rep != second_owner)
        .expect("a third rep");
    let holder_name = format!(
        "Rep {}",
        &holder[2..]
            .trim_start_matches('0')
            .parse::<u32>()
            .unwrap_or(0)
    );
    let (status, body) = app
        .post(
            &format!("/api/v1/leads/{second_id}/assign"),
            &json!({"rep_id": third_rep}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "customer_held");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains(&holder_name),
        "names the holder: {body}"
    );
    let (status, body) = app
        .post(
            &format!("/api/v1/leads/{second_id}/assign"),
            &json!({"rep_id": third_rep, "override_collision": true}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "reason_required");
    let overridden = app
        .ok(
            &format!("/api/v1/leads/{second_id}/assign"),
            &json!({"rep_id": third_rep, "override_collision": true, "reason": "客户要求换人"}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(overridden["lead"]["owner_id"], third_rep);
    let (_, decisions) = app
        .get(&format!("/api/v1/leads/{second_id}/decisions"))
        .await;
    assert!(
        decisions.to_string().contains("collision_override"),
        "{decisions}"
    );
    // To the holder is no collision.
    app.ok(
        &format!("/api/v1/leads/{second_id}/assign"),
        &json!({"rep_id": holder}),
        StatusCode::OK,
    )
    .await;
    // In the pool, another rep cannot claim the customer; the holder can.
    app.ok(
        &format!("/api/v1/leads/{second_id}/release"),
        &json!({"reason": "换个方式"}),
        StatusCode::OK,
    )
    .await;
    let (status, body) = app
        .post(
            &format!("/api/v1/leads/{second_id}/claim"),
            &json!({"rep_id": third_rep}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "customer_held");
    // With protection off, the same claim goes through.
    policy(
        &app,
        json!({"keys": ["phone"], "on_match": "flag", "protect_holders": false}),
    )
    .await;
    let (status, body) = app
        .post(
            &format!("/api/v1/leads/{second_id}/claim"),
            &json!({"rep_id": third_rep}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(crate::support::TestApp::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(app) = crate::support::TestApp::new(super::Backend::Postgres).await {
                        super::$name(app).await;
                    }
                }
            )*
        }
    };
}

on_both_backends!(
    the_policy_is_an_admin_setting_checked_field_by_field,
    a_returning_customer_is_attached_by_each_key,
    route_to_owner_flag_and_returning_customers,
    concurrent_arrivals_of_one_phone_make_one_lead,
    a_customer_another_rep_holds_is_not_handed_over,
);
