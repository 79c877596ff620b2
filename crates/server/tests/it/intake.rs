//! Intake sources: a plain web form with a public token, and a 简道云-style signed webhook whose
//! retries never create duplicates; rejected deliveries are logged with the reason.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use sha1::{Digest as _, Sha1};

use crate::support::{Backend, TestApp};

async fn post_raw(
    app: &TestApp,
    path: &str,
    content_type: &str,
    headers: &[(&str, String)],
    body: &str,
) -> (StatusCode, Value, Option<String>) {
    let mut request = Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", content_type);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = tower::ServiceExt::oneshot(
        app.app.clone(),
        request.body(Body::from(body.to_owned())).expect("request"),
    )
    .await
    .expect("response");
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .expect("body")
        .to_bytes();
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, value, location)
}

async fn log(app: &TestApp, source: &str) -> Vec<(String, Option<String>)> {
    let (status, body) = app
        .get(&format!("/api/v1/intake-sources/{source}/log"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut items: Vec<(String, Option<String>)> = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| {
            (
                item["outcome"].as_str().expect("outcome").to_owned(),
                item["reason"].as_str().map(str::to_owned),
            )
        })
        .collect();
    items.reverse();
    items
}

#[tokio::test]
async fn a_web_form_posts_leads_with_its_public_token() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    app.round_robin_team(2, json!({})).await;
    let source = app
        .ok(
            "/api/v1/intake-sources",
            &json!({"id": "site", "name": "官网表单", "auth": "token",
                    "mapping": {"name": "姓名", "phone": "手机", "region": "城市", "budget": "预算"},
                    "values": {"region": {"北京市": "华北"}},
                    "defaults": {"source": "官网"},
                    "redirect_to": "https://example.com/thanks"}),
            StatusCode::CREATED,
        )
        .await;
    let token = source["token"]
        .as_str()
        .expect("a generated token")
        .to_owned();
    let form =
        "姓名=%E7%8E%8B%E6%80%BB&手机=13812345678&城市=%E5%8C%97%E4%BA%AC%E5%B8%82&预算=300000";
    let (status, _, location) = post_raw(
        &app,
        &format!("/api/v1/intake/site?token={token}"),
        "application/x-www-form-urlencoded",
        &[],
        form,
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location.as_deref(), Some("https://example.com/thanks"));
    let (_, leads) = app.get("/api/v1/leads?source=官网").await;
    let lead = &leads["items"][0];
    assert_eq!(lead["name"], json!("王总"));
    assert_eq!(lead["region"], json!("华北"));
    assert_eq!(lead["phone"], json!("+8613812345678"));
    assert_eq!(lead["budget"], json!(300000.0));
    assert!(lead["owner_id"].is_string(), "routed at once: {lead}");

    let (status, body, _) = post_raw(
        &app,
        "/api/v1/intake/site?token=wrong",
        "application/x-www-form-urlencoded",
        &[],
        form,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], json!("bad_token"));
    let (status, body, _) = post_raw(
        &app,
        &format!("/api/v1/intake/site?token={token}"),
        "application/x-www-form-urlencoded",
        &[],
        "手机=12",
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        log(&app, "site").await,
        [
            ("accepted".to_owned(), None),
            ("rejected".to_owned(), Some("bad_token".to_owned())),
            (
                "rejected".to_owned(),
                Some("invalid_phone (phone)".to_owned())
            ),
        ]
    );
    let (status, _, _) = post_raw(&app, "/api/v1/intake/nope", "application/json", &[], "{}").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

fn jdy_sign(nonce: &str, body: &str, secret: &str, timestamp: &str) -> String {
    // 简道云's recipe: sha1 of `nonce:payload:secret:timestamp`, hex.
    hex::encode(Sha1::digest(
        format!("{nonce}:{body}:{secret}:{timestamp}").as_bytes(),
    ))
}

#[tokio::test]
async fn a_signed_webhook_is_verified_and_its_retries_are_duplicates() {
    // Secrets sealed at rest: the source's secret is opened to verify.
    let app = TestApp::sealed(Backend::Sqlite, "intake key")
        .await
        .expect("app");
    app.round_robin_team(2, json!({})).await;
    let secret = "jdy-secret-1";
    let source = app
        .ok(
            "/api/v1/intake-sources",
            &json!({"id": "jdy", "name": "简道云", "auth": "jdy", "secret": secret,
                    "mapping": {"name": "$.data._widget_name", "phone": "$.data._widget_phone",
                                "company": "$.data.company.name"},
                    "defaults": {"source": "简道云"}}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(source["secret"], Value::Null, "{source}");
    assert_eq!(source["secret_set"], json!(true));
    let stored = app
        .state
        .store
        .get_setting(store::Setting::IntakeSources, "jdy")
        .await
        .expect("read")
        .expect("row");
    assert!(!stored.document.contains(secret), "{}", stored.document);

    let body = json!({"op": "data_create", "data": {"_widget_name": "李总", "_widget_phone": "13900001111",
                                                    "company": {"name": "华东制造"}}})
    .to_string();
    let now = chrono::Utc::now().timestamp().to_string();
    let send = |timestamp: String, signature: String, delivery: &'static str| {
        let app = &app;
        let body = body.clone();
        async move {
            post_raw(
                app,
                &format!("/api/v1/intake/jdy?nonce=abc123&timestamp={timestamp}"),
                "application/json",
                &[
                    ("x-jdy-signature", signature),
                    ("x-jdy-deliverid", delivery.to_owned()),
                ],
                &body,
            )
            .await
        }
    };
    let good = jdy_sign("abc123", &body, secret, &now);
    let (status, first, _) = send(now.clone(), good.clone(), "d-1").await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    // The platform retries the same delivery: nothing new.
    let (status, again, _) = send(now.clone(), good.clone(), "d-1").await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["duplicate"], json!(true));
    assert_eq!(again["lead_id"], first["lead_id"]);
    let (status, body_of, _) = send(now.clone(), "0".repeat(40), "d-2").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body_of["error"]["code"], json!("bad_signature"));
    let stale = (chrono::Utc::now().timestamp() - 3600).to_string();
    let (status, body_of, _) = send(
        stale.clone(),
        jdy_sign("abc123", &body, secret, &stale),
        "d-3",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body_of["error"]["code"], json!("stale_signature"));

    let lead_id = first["lead_id"].as_str().expect("lead");
    let (_, lead) = app.get(&format!("/api/v1/leads/{lead_id}")).await;
    assert_eq!(lead["company"], json!("华东制造"));
    assert_eq!(lead["external_id"], json!("jdy:d-1"));
    let (_, all) = app.get("/api/v1/leads?source=简道云").await;
    assert_eq!(all["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        log(&app, "jdy").await,
        [
            ("accepted".to_owned(), None),
            ("duplicate".to_owned(), None),
            ("rejected".to_owned(), Some("bad_signature".to_owned())),
            ("rejected".to_owned(), Some("stale_signature".to_owned())),
        ]
    );
}
