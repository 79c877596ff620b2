//! Integrations against real HTTP servers on loopback standing in for the platforms: intake
//! presets (Meta Lead Ads with its handshake, signature and Graph API; Google Ads with its key;
//! 简道云; a web form), application messages to one rep (WeCom, DingTalk, Feishu, with their
//! token flows), and CRM connectors (Salesforce, HubSpot, 纷享销客, 简道云) with retries, rate
//! limits, refused credentials and idempotent replays. Sample payloads follow each platform's
//! published documentation.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use chrono::{Duration, Utc};
use hmac::{Hmac, Mac as _};
use serde_json::{Value, json};
use sha1::{Digest as _, Sha1};
use sha2::Sha256;

use crate::support::{Backend, TestApp, lead};

fn hmac_hex(key: &str, message: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("key");
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// Records written, per CRM and external id: `(CRM id, fields)`.
type Records = HashMap<(String, String), (String, Value)>;

/// What the stand-ins saw and how they should answer.
#[derive(Clone, Default)]
struct Platforms {
    /// `(what, body or query)` in arrival order.
    seen: Arc<Mutex<Vec<(String, Value)>>>,
    /// Tokens handed out, per platform.
    tokens: Arc<Mutex<HashMap<String, usize>>>,
    records: Arc<Mutex<Records>>,
    /// WeCom answers 42001 (expired) to the first token's next use.
    expire_wecom: Arc<AtomicBool>,
    /// Salesforce answers 500 to this many upserts first.
    salesforce_fail: Arc<AtomicUsize>,
    /// Salesforce's session is revoked and the connected app's secret refused.
    salesforce_refuse: Arc<AtomicBool>,
    /// HubSpot answers 429 to this many upserts first.
    hubspot_busy: Arc<AtomicUsize>,
}

impl Platforms {
    fn saw(&self, what: &str, body: Value) {
        self.seen
            .lock()
            .expect("lock")
            .push((what.to_owned(), body));
    }

    fn of(&self, what: &str) -> Vec<Value> {
        let seen = self.seen.lock().expect("lock");
        seen.iter()
            .filter(|(name, _)| name == what)
            .map(|(_, body)| body.clone())
            .collect()
    }

    fn token(&self, platform: &str) -> String {
        let mut tokens = self.tokens.lock().expect("lock");
        let count = tokens.entry(platform.to_owned()).or_default();
        *count += 1;
        format!("{platform}-token-{count}")
    }

    fn tokens_of(&self, platform: &str) -> usize {
        self.tokens
            .lock()
            .expect("lock")
            .get(platform)
            .copied()
            .unwrap_or_default()
    }

    /// Writes a record keyed by the external id; true when it was new.
    fn upsert(&self, crm: &str, key: &str, fields: Value) -> (String, bool) {
        let mut records = self.records.lock().expect("lock");
        let count = records.len();
        let entry = records
            .entry((crm.to_owned(), key.to_owned()))
            .or_insert_with(|| (format!("{crm}-{}", count + 1), Value::Null));
        let new = entry.1.is_null();
        entry.1 = fields;
        (entry.0.clone(), new)
    }

    fn record(&self, crm: &str, key: &str) -> Option<(String, Value)> {
        self.records
            .lock()
            .expect("lock")
            .get(&(crm.to_owned(), key.to_owned()))
            .cloned()
    }

    fn find(&self, crm: &str, key: &str) -> Option<String> {
        self.record(crm, key).map(|(id, _)| id)
    }
}

fn bearer(headers: &HeaderMap) -> String {
    headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned()
}

// ---- Meta's Graph API: one lead by id, read with the page token and appsecret_proof. ----

async fn graph_lead(
    State(platforms): State<Platforms>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    platforms.saw("graph", json!(query));
    let token = query.get("access_token").cloned().unwrap_or_default();
    let proof = query.get("appsecret_proof").cloned().unwrap_or_default();
    if token != "PAGE-TOKEN" || proof != hmac_hex("APP-SECRET", token.as_bytes()) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190}})),
        )
            .into_response();
    }
    if id == "999" {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {"message": "Unsupported get request.", "type": "GraphMethodException", "code": 100}})),
        )
            .into_response();
    }
    Json(json!({
        "created_time": "2026-11-30T08:30:00+0000",
        "id": id,
        "ad_id": "23842",
        "form_id": "12312312312",
        "field_data": [
            {"name": "full_name", "values": ["Lin Wei"]},
            {"name": "email", "values": ["LIN.WEI@Example.com"]},
            {"name": "phone_number", "values": ["+8613911112222"]},
            {"name": "company_name", "values": ["深圳市海川科技有限公司"]},
            {"name": "which_product?", "values": ["A", "B"]}
        ]
    }))
    .into_response()
}

// ---- WeCom, DingTalk and Feishu application messages. ----

async fn wecom_token(
    State(platforms): State<Platforms>,
    Query(query): Query<HashMap<String, String>>,
) -> Json<Value> {
    if query.get("corpid").map(String::as_str) != Some("ww-corp")
        || query.get("corpsecret").map(String::as_str) != Some("WECOM-SECRET")
    {
        return Json(json!({"errcode": 40001, "errmsg": "invalid credential"}));
    }
    let token = platforms.token("wecom");
    Json(json!({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200}))
}

async fn wecom_send(
    State(platforms): State<Platforms>,
    Query(query): Query<HashMap<String, String>>,
    Json(body): Json<Value>,
) -> Json<Value> {
    let token = query.get("access_token").cloned().unwrap_or_default();
    if token == "wecom-token-1" && platforms.expire_wecom.load(Ordering::SeqCst) {
        return Json(json!({"errcode": 42001, "errmsg": "access_token expired"}));
    }
    if !token.starts_with("wecom-token-") {
        return Json(json!({"errcode": 40014, "errmsg": "invalid access_token"}));
    }
    platforms.saw("wecom", body);
    Json(json!({"errcode": 0, "errmsg": "ok", "invaliduser": ""}))
}

async fn dingtalk_token(
    State(platforms): State<Platforms>,
    Query(query): Query<HashMap<String, String>>,
) -> Json<Value> {
    if query.get("appkey").map(String::as_str) != Some("ding-key")
        || query.get("appsecret").map(String::as_str) != Some("DING-SECRET")
    {
        return Json(json!({"errcode": 40089, "errmsg": "不合法的corpid或corpsecret"}));
    }
    let token = platforms.token("dingtalk");
    Json(json!({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200}))
}

async fn dingtalk_send(
    State(platforms): State<Platforms>,
    Query(query): Query<HashMap<String, String>>,
    Json(body): Json<Value>,
) -> Json<Value> {
    if !query
        .get("access_token")
        .is_some_and(|token| token.starts_with("dingtalk-token-"))
    {
        return Json(json!({"errcode": 40014, "errmsg": "不合法的access_token"}));
    }
    platforms.saw("dingtalk", body);
    Json(
        json!({"errcode": 0, "errmsg": "ok", "task_id": 256271667526_i64, "request_id": "4jzllmte0wau"}),
    )
}

async fn feishu_token(State(platforms): State<Platforms>, Json(body): Json<Value>) -> Json<Value> {
    if body != json!({"app_id": "cli_a1", "app_secret": "FEISHU-SECRET"}) {
        return Json(json!({"code": 10014, "msg": "app secret invalid"}));
    }
    let token = platforms.token("feishu");
    Json(json!({"code": 0, "msg": "ok", "tenant_access_token": token, "expire": 7200}))
}

async fn feishu_send(
    State(platforms): State<Platforms>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Json<Value> {
    if !bearer(&headers).starts_with("feishu-token-") {
        return Json(json!({"code": 99991663, "msg": "Invalid access token for authorization."}));
    }
    platforms.saw(
        "feishu",
        json!({"query": query.get("receive_id_type"), "body": body}),
    );
    Json(json!({"code": 0, "msg": "success", "data": {"message_id": "om_1"}}))
}

// ---- CRMs. ----

async fn salesforce_token(
    State(platforms): State<Platforms>,
    bytes: axum::body::Bytes,
) -> Response {
    let body: HashMap<String, String> = url::form_urlencoded::parse(&bytes)
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    let good = body.get("grant_type").map(String::as_str) == Some("client_credentials")
        && body.get("client_id").map(String::as_str) == Some("SF-KEY")
        && body.get("client_secret").map(String::as_str) == Some("SF-SECRET")
        && !platforms.salesforce_refuse.load(Ordering::SeqCst);
    if !good {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_client", "error_description": "invalid client credentials"})),
        )
            .into_response();
    }
    let token = platforms.token("salesforce");
    let base = platforms
        .of("base")
        .first()
        .and_then(|base| base.as_str().map(str::to_owned))
        .unwrap_or_default();
    Json(
        json!({"access_token": token, "instance_url": base, "token_type": "Bearer",
                "issued_at": "1701000000000", "signature": "x"}),
    )
    .into_response()
}

async fn salesforce_upsert(
    State(platforms): State<Platforms>,
    Path((object, field, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if platforms.salesforce_refuse.load(Ordering::SeqCst)
        || !bearer(&headers).starts_with("salesforce-token-")
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])),
        )
            .into_response();
    }
    if platforms
        .salesforce_fail
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!([{"errorCode": "UNKNOWN_EXCEPTION"}])),
        )
            .into_response();
    }
    assert_eq!(
        (object.as_str(), field.as_str()),
        ("Lead", "Leadroute_Id__c")
    );
    platforms.saw("salesforce", body.clone());
    let (record, new) = platforms.upsert("salesforce", &id, body);
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    (
        status,
        Json(json!({"id": record, "success": true, "errors": [], "created": new})),
    )
        .into_response()
}

async fn salesforce_describe(Path(object): Path<String>) -> Json<Value> {
    Json(json!({"name": object, "fields": [
        {"name": "Id", "externalId": false},
        {"name": "Leadroute_Id__c", "externalId": true}
    ]}))
}

async fn hubspot_upsert(
    State(platforms): State<Platforms>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if bearer(&headers) != "pat-na1-HUBSPOT" {
        return (
            StatusCode::UNAUTHORIZED,
            Json(
                json!({"status": "error", "message": "Authentication credentials not found.",
                        "category": "INVALID_AUTHENTICATION"}),
            ),
        )
            .into_response();
    }
    if platforms
        .hubspot_busy
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            Json(
                json!({"status": "error", "message": "You have reached your secondly limit.",
                        "errorType": "RATE_LIMIT", "policyName": "SECONDLY"}),
            ),
        )
            .into_response();
    }
    platforms.saw("hubspot", body.clone());
    let input = &body["inputs"][0];
    assert_eq!(input["idProperty"], json!("leadroute_id"));
    let key = input["id"].as_str().expect("id").to_owned();
    let (record, new) = platforms.upsert("hubspot", &key, input["properties"].clone());
    Json(
        json!({"status": "COMPLETE", "results": [{"id": record, "new": new,
                "properties": input["properties"]}]}),
    )
    .into_response()
}

async fn fxiaoke_token(State(platforms): State<Platforms>, Json(body): Json<Value>) -> Json<Value> {
    if body != json!({"appId": "FSAID_1", "appSecret": "FX-SECRET", "permanentCode": "FX-CODE"}) {
        return Json(json!({"errorCode": 20016, "errorMessage": "appSecret错误"}));
    }
    let token = platforms.token("fxiaoke");
    Json(
        json!({"errorCode": 0, "errorMessage": "success", "corpAccessToken": token,
                "corpId": "FSCID_1", "expiresIn": 7200}),
    )
}

async fn fxiaoke_call(
    State(platforms): State<Platforms>,
    Path(action): Path<String>,
    Json(body): Json<Value>,
) -> Json<Value> {
    if !body["corpAccessToken"]
        .as_str()
        .is_some_and(|token| token.starts_with("fxiaoke-token-"))
        || body["currentOpenUserId"] != json!("FSUID_ADMIN")
    {
        return Json(json!({"errorCode": 20005, "errorMessage": "corpAccessToken 无效"}));
    }
    platforms.saw(&format!("fxiaoke.{action}"), body.clone());
    match action.as_str() {
        "query" => {
            let key = body["data"]["search_query_info"]["filters"][0]["field_values"][0]
                .as_str()
                .unwrap_or_default();
            let list: Vec<Value> = platforms
                .find("fxiaoke", key)
                .map(|id| json!({"_id": id}))
                .into_iter()
                .collect();
            Json(
                json!({"errorCode": 0, "errorMessage": "OK", "data": {"dataList": list, "total": list.len()}}),
            )
        }
        _ => {
            let data = &body["data"]["object_data"];
            assert_eq!(data["dataObjectApiName"], json!("LeadsObj"));
            let key = data["leadroute_id__c"].as_str().unwrap_or_default();
            let (record, _) = platforms.upsert("fxiaoke", key, data.clone());
            Json(json!({"errorCode": 0, "errorMessage": "OK", "dataId": record}))
        }
    }
}

async fn jiandaoyun_call(
    State(platforms): State<Platforms>,
    Path(action): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if bearer(&headers) != "JDY-KEY" {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"code": 8301, "msg": "Invalid API Key"})),
        )
            .into_response();
    }
    assert_eq!(
        (&body["app_id"], &body["entry_id"]),
        (&json!("app1"), &json!("entry1"))
    );
    platforms.saw(&format!("jiandaoyun.{action}"), body.clone());
    match action.as_str() {
        "list" => {
            let key = body["filter"]["cond"][0]["value"][0]
                .as_str()
                .unwrap_or_default();
            let list: Vec<Value> = platforms
                .find("jiandaoyun", key)
                .map(|id| json!({"_id": id}))
                .into_iter()
                .collect();
            Json(json!({"data": list})).into_response()
        }
        _ => {
            let key = body["data"]["_widget_id"]["value"]
                .as_str()
                .unwrap_or_default();
            let (record, _) = platforms.upsert("jiandaoyun", key, body["data"].clone());
            Json(json!({"data": {"_id": record}})).into_response()
        }
    }
}

async fn stand_ins() -> (String, Platforms) {
    let platforms = Platforms::default();
    let app = axum::Router::new()
        .route("/v21.0/{id}", get(graph_lead))
        .route("/cgi-bin/gettoken", get(wecom_token))
        .route("/cgi-bin/message/send", post(wecom_send))
        .route("/gettoken", get(dingtalk_token))
        .route(
            "/topapi/message/corpconversation/asyncsend_v2",
            post(dingtalk_send),
        )
        .route(
            "/open-apis/auth/v3/tenant_access_token/internal",
            post(feishu_token),
        )
        .route("/open-apis/im/v1/messages", post(feishu_send))
        .route("/services/oauth2/token", post(salesforce_token))
        .route(
            "/services/data/v60.0/sobjects/{object}/{field}/{id}",
            patch(salesforce_upsert),
        )
        .route(
            "/services/data/v60.0/sobjects/{object}/describe",
            get(salesforce_describe),
        )
        .route(
            "/crm/v3/objects/contacts/batch/upsert",
            post(hubspot_upsert),
        )
        .route("/cgi/corpAccessToken/get/V2", post(fxiaoke_token))
        .route("/cgi/crm/v2/data/{action}", post(fxiaoke_call))
        .route("/api/v5/app/entry/data/{action}", post(jiandaoyun_call))
        .with_state(platforms.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    platforms.saw("base", json!(base));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, platforms)
}

/// Posts raw bytes to the app, as a platform would.
async fn deliver(
    app: &TestApp,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
) -> (StatusCode, String) {
    let mut request = Request::builder().method(method).uri(path);
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
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

async fn log(app: &TestApp, source: &str) -> Vec<Value> {
    let (status, body) = app
        .get(&format!("/api/v1/intake-sources/{source}/log"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"].as_array().expect("items").clone()
}

#[tokio::test]
async fn presets_take_each_platforms_push_on_sqlite() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    presets_take_each_platforms_push(app).await;
}

#[tokio::test]
async fn presets_take_each_platforms_push_on_postgres() {
    if let Some(app) = TestApp::without_clock(Backend::Postgres).await {
        presets_take_each_platforms_push(app).await;
    }
}

async fn presets_take_each_platforms_push(app: TestApp) {
    let (base, platforms) = stand_ins().await;
    app.round_robin_team(2, json!({})).await;
    // The presets' extras land in attributes the workspace declares; the rest are left out.
    for name in ["form_id", "message"] {
        app.ok(
            "/api/v1/fields",
            &json!({"entity": "lead", "name": name, "type": "text"}),
            StatusCode::CREATED,
        )
        .await;
    }
    let json_type = ("content-type", "application/json".to_owned());

    // Meta: only the credentials are given; the preset fills in the rest.
    let source = app
        .ok(
            "/api/v1/intake-sources",
            &json!({"id": "meta", "name": "Facebook 线索广告", "preset": "meta_lead_ads",
                    "secret": "APP-SECRET", "verify_token": "VERIFY-ME", "access_token": "PAGE-TOKEN",
                    "graph_url": format!("{base}/v21.0")}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(source["auth"], json!("meta"));
    assert!(source.get("access_token").is_none(), "{source}");
    assert_eq!(source["access_token_set"], json!(true));
    assert_eq!(source["secret_set"], json!(true));
    assert_eq!(
        source["mapping"]["phone"],
        json!("fields.phone_number|fields.work_phone_number")
    );
    // The subscription handshake answers the challenge, as text, for the right token only.
    let (status, text) = deliver(
        &app,
        "GET",
        "/api/v1/intake/meta?hub.mode=subscribe&hub.verify_token=VERIFY-ME&hub.challenge=1158201444",
        &[],
        "",
    )
    .await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "1158201444"));
    let (status, text) = deliver(
        &app,
        "GET",
        "/api/v1/intake/meta?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1",
        &[],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    assert!(text.contains("bad_verify_token"));
    // A leadgen notification as Meta documents it: the lead is read from the Graph API.
    let notification = json!({"object": "page", "entry": [{"id": "153125381133", "time": 1438292065,
        "changes": [{"field": "leadgen", "value": {"leadgen_id": "123123123123", "page_id": "153125381133",
            "form_id": "12312312312", "adgroup_id": "12312312312", "ad_id": "12312312312",
            "created_time": 1440120384}}]}]})
    .to_string();
    let signature = format!("sha256={}", hmac_hex("APP-SECRET", notification.as_bytes()));
    let signed = [
        json_type.clone(),
        ("x-hub-signature-256", signature.clone()),
    ];
    let (status, text) = deliver(&app, "POST", "/api/v1/intake/meta", &signed, &notification).await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let answer: Value = serde_json::from_str(&text).expect("json");
    let lead_id = answer["lead_id"].as_str().expect("lead").to_owned();
    let (_, lead) = app.get(&format!("/api/v1/leads/{lead_id}")).await;
    assert_eq!(lead["name"], json!("Lin Wei"), "{lead}");
    assert_eq!(lead["email"], json!("LIN.WEI@example.com"));
    assert_eq!(lead["phone"], json!("+8613911112222"));
    assert_eq!(lead["source"], json!("Meta Lead Ads"));
    assert_eq!(lead["external_id"], json!("meta:123123123123"));
    assert_eq!(lead["attributes"]["form_id"], json!("12312312312"));
    assert!(lead["owner_id"].is_string(), "routed: {lead}");
    let graph = platforms.of("graph");
    assert_eq!(graph.len(), 1);
    assert!(
        graph[0]["fields"]
            .as_str()
            .is_some_and(|fields| fields.contains("field_data"))
    );
    // Meta retries the same notification: the same lead, no second one.
    let (status, text) = deliver(&app, "POST", "/api/v1/intake/meta", &signed, &notification).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("\"duplicate\":true"), "{text}");
    // A forged notification and one the Graph API cannot answer.
    let forged = [
        json_type.clone(),
        ("x-hub-signature-256", format!("sha256={}", "0".repeat(64))),
    ];
    let (status, text) = deliver(&app, "POST", "/api/v1/intake/meta", &forged, &notification).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
    let missing = notification.replace("123123123123", "999");
    let signed_missing = [
        json_type.clone(),
        (
            "x-hub-signature-256",
            format!("sha256={}", hmac_hex("APP-SECRET", missing.as_bytes())),
        ),
    ];
    let (status, text) = deliver(
        &app,
        "POST",
        "/api/v1/intake/meta",
        &signed_missing,
        &missing,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{text}");
    let outcomes: Vec<(String, String)> = log(&app, "meta")
        .await
        .iter()
        .map(|item| {
            (
                item["outcome"].as_str().unwrap_or_default().to_owned(),
                item["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("rejected".into(), "platform_unavailable".into()),
            ("rejected".into(), "bad_signature".into()),
            ("duplicate".into(), String::new()),
            ("accepted".into(), String::new()),
        ]
    );
    // Meta without its page token is refused when the source is made.
    let (status, body) = app
        .post(
            "/api/v1/intake-sources",
            &json!({"name": "Meta", "preset": "meta_lead_ads", "secret": "s", "verify_token": "v"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], json!("access_token"), "{body}");

    // Google Ads: the form's key is in the body; the answer is an empty object.
    app.ok(
        "/api/v1/intake-sources",
        &json!({"id": "gads", "name": "Google Ads 表单", "preset": "google_ads", "secret": "GOOGLE-KEY"}),
        StatusCode::CREATED,
    )
    .await;
    let google = |key: &str, lead_id: &str, test: bool| {
        json!({
            "lead_id": lead_id,
            "user_column_data": [
                {"column_name": "Full Name", "string_value": "Zhao Min", "column_id": "FULL_NAME"},
                {"column_name": "User Phone", "string_value": "+86 139 0000 1111", "column_id": "PHONE_NUMBER"},
                {"column_name": "User Email", "string_value": "zhao.min@example.com", "column_id": "EMAIL"},
                {"column_name": "Company Name", "string_value": "北京远航物流有限公司", "column_id": "COMPANY_NAME"},
                {"column_name": "What is your budget?", "string_value": "100k", "column_id": "budget_question"}
            ],
            "api_version": "1.0", "form_id": 40000000000_i64, "campaign_id": 12345678901_i64,
            "google_key": key, "is_test": test, "gcl_id": "EAIaIQobChMI", "adgroup_id": 20000000000_i64,
            "creative_id": 30000000000_i64
        })
        .to_string()
    };
    let (status, text) = deliver(
        &app,
        "POST",
        "/api/v1/intake/gads",
        std::slice::from_ref(&json_type),
        &google("GOOGLE-KEY", "TeSter-123-ABC", false),
    )
    .await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "{}"));
    let entries = log(&app, "gads").await;
    assert_eq!(entries[0]["outcome"], json!("accepted"));
    assert_eq!(entries[0]["delivery_id"], json!("TeSter-123-ABC"));
    let (_, lead) = app
        .get(&format!(
            "/api/v1/leads/{}",
            entries[0]["lead_id"].as_str().expect("lead")
        ))
        .await;
    assert_eq!(lead["name"], json!("Zhao Min"));
    assert_eq!(lead["phone"], json!("+8613900001111"));
    assert_eq!(lead["company"], json!("北京远航物流有限公司"));
    assert_eq!(lead["campaign"], json!("12345678901"), "{lead}");
    for (body, expected, outcome) in [
        // A retry, a test lead from the form's "send test data", a wrong key.
        (
            google("GOOGLE-KEY", "TeSter-123-ABC", false),
            StatusCode::OK,
            "duplicate",
        ),
        (
            google("GOOGLE-KEY", "TeSter-456", true),
            StatusCode::OK,
            "ignored",
        ),
        (
            google("wrong", "TeSter-789", false),
            StatusCode::UNAUTHORIZED,
            "rejected",
        ),
    ] {
        let (status, text) = deliver(
            &app,
            "POST",
            "/api/v1/intake/gads",
            std::slice::from_ref(&json_type),
            &body,
        )
        .await;
        assert_eq!(status, expected, "{text}");
        assert_eq!(log(&app, "gads").await[0]["outcome"], json!(outcome));
    }

    // 简道云: a new record is a lead; an edit is acknowledged; a stale signature is refused.
    app.ok(
        "/api/v1/intake-sources",
        &json!({"id": "jdy", "name": "简道云表单", "preset": "jiandaoyun", "secret": "JDY-SECRET"}),
        StatusCode::CREATED,
    )
    .await;
    let push = |op: &str, timestamp: i64, deliver_id: &str| {
        let body = json!({"op": op, "data": {"_id": "5f1", "name": "钱经理", "phone": "13700001111",
                                            "company": "杭州青禾贸易有限公司", "appId": "a", "entryId": "e"}})
        .to_string();
        let nonce = "0f5ade";
        let mut hasher = Sha1::new();
        hasher.update(format!("{nonce}:{body}:JDY-SECRET:{timestamp}").as_bytes());
        let signature = hex::encode(hasher.finalize());
        (
            format!("/api/v1/intake/jdy?timestamp={timestamp}&nonce={nonce}"),
            vec![
                ("content-type", "application/json".to_owned()),
                ("x-jdy-signature", signature),
                ("x-jdy-deliverid", deliver_id.to_owned()),
            ],
            body,
        )
    };
    let now = Utc::now().timestamp();
    for (op, at, id, expected, outcome) in [
        ("data_create", now, "d-1", StatusCode::CREATED, "accepted"),
        ("data_update", now, "d-2", StatusCode::OK, "ignored"),
        (
            "data_create",
            now - 3600,
            "d-3",
            StatusCode::UNAUTHORIZED,
            "rejected",
        ),
    ] {
        let (path, headers, body) = push(op, at, id);
        let (status, text) = deliver(&app, "POST", &path, &headers, &body).await;
        assert_eq!(status, expected, "{op}: {text}");
        assert_eq!(log(&app, "jdy").await[0]["outcome"], json!(outcome));
    }

    // A website form: the preset knows the usual field names, in Chinese too.
    let form = app
        .ok(
            "/api/v1/intake-sources",
            &json!({"id": "site", "name": "官网", "preset": "web_form"}),
            StatusCode::CREATED,
        )
        .await;
    let token = form["token"].as_str().expect("a token is generated");
    let body = format!(
        "{}&token={token}",
        "%E5%A7%93%E5%90%8D=%E5%AD%99%E6%80%BB&%E6%89%8B%E6%9C%BA=13600001111&%E7%95%99%E8%A8%80=%E6%83%B3%E4%BA%86%E8%A7%A3%E4%BB%B7%E6%A0%BC"
    );
    let (status, text) = deliver(
        &app,
        "POST",
        "/api/v1/intake/site",
        &[(
            "content-type",
            "application/x-www-form-urlencoded".to_owned(),
        )],
        &body,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let answer: Value = serde_json::from_str(&text).expect("json");
    let (_, lead) = app
        .get(&format!(
            "/api/v1/leads/{}",
            answer["lead_id"].as_str().expect("lead")
        ))
        .await;
    assert_eq!(lead["name"], json!("孙总"));
    assert_eq!(lead["source"], json!("官网表单"));
    assert_eq!(lead["attributes"]["message"], json!("想了解价格"));

    // An unknown preset is refused by name.
    let (status, body) = app
        .post(
            "/api/v1/intake-sources",
            &json!({"name": "x", "preset": "ocean_engine"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], json!("preset"));
    // The log never keeps a payload.
    let logged = serde_json::to_string(&log(&app, "meta").await).expect("json");
    assert!(!logged.contains("Lin Wei") && !logged.contains("13911112222"));
}

async fn contacts(app: &TestApp) {
    for (rep, wecom, ding, feishu, suffix) in [
        ("r00", "zhangwei", "ding-zw", "ou_zw", "0"),
        ("r01", "lina", "ding-ln", "ou_ln", "1"),
    ] {
        let (status, body) = app
            .patch(
                &format!("/api/v1/reps/{rep}"),
                &json!({"contact": {"wecom_userid": wecom, "dingtalk_userid": ding, "feishu_user_id": feishu,
                                    "crm": {"salesforce": format!("005SF{suffix}"), "hubspot": format!("77{suffix}"),
                                            "fxiaoke": format!("FSUID_{suffix}"), "jiandaoyun": format!("user{suffix}")}}}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

#[tokio::test]
async fn reps_hear_of_their_leads_alone_through_each_app_on_sqlite() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    reps_hear_of_their_leads_alone_through_each_app(app).await;
}

#[tokio::test]
async fn reps_hear_of_their_leads_alone_through_each_app_on_postgres() {
    if let Some(app) = TestApp::without_clock(Backend::Postgres).await {
        reps_hear_of_their_leads_alone_through_each_app(app).await;
    }
}

async fn reps_hear_of_their_leads_alone_through_each_app(app: TestApp) {
    let (base, platforms) = stand_ins().await;
    app.round_robin_team(2, json!({})).await;
    contacts(&app).await;
    for body in [
        json!({"id": "wx", "name": "企业微信应用", "kind": "wecom_app", "url": base, "app_id": "ww-corp",
               "agent_id": "1000002", "secret": "WECOM-SECRET", "events": ["lead.assigned"]}),
        json!({"id": "dd", "name": "钉钉工作通知", "kind": "dingtalk_work", "url": base, "app_id": "ding-key",
               "agent_id": "2000001", "secret": "DING-SECRET", "events": ["lead.assigned"]}),
        json!({"id": "fs", "name": "飞书应用", "kind": "feishu_app", "url": base, "app_id": "cli_a1",
               "secret": "FEISHU-SECRET", "events": ["lead.assigned"], "language": "en"}),
    ] {
        app.ok("/api/v1/channels", &body, StatusCode::CREATED).await;
    }
    let (status, body) = app
        .post(
            "/api/v1/channels",
            &json!({"name": "x", "kind": "wecom_app", "app_id": "ww", "secret": "s"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], json!("agent_id"));

    for id in ["app-1", "app-2"] {
        app.ok("/api/v1/leads", &lead(id), StatusCode::CREATED)
            .await;
    }
    let round = app.state.notifier.run(Utc::now()).await.expect("round");
    assert_eq!(round.sent, 6, "{round:?}");
    // One token per application, reused for the second message.
    for platform in ["wecom", "dingtalk", "feishu"] {
        assert_eq!(platforms.tokens_of(platform), 1, "{platform}");
    }
    let wecom = platforms.of("wecom");
    let mut to: Vec<&str> = wecom
        .iter()
        .map(|body| body["touser"].as_str().expect("touser"))
        .collect();
    to.sort_unstable();
    assert_eq!(to, ["lina", "zhangwei"], "each rep alone");
    let wecom: Vec<Value> = wecom
        .into_iter()
        .filter(|body| body["touser"] == json!("zhangwei"))
        .collect();
    assert_eq!(wecom[0]["agentid"], json!(1000002));
    assert_eq!(wecom[0]["msgtype"], json!("markdown"));
    assert!(
        wecom[0]["markdown"]["content"]
            .as_str()
            .is_some_and(|text| text.contains("新线索分配给Rep 0")),
        "{}",
        wecom[0]
    );
    let ding: Vec<Value> = platforms
        .of("dingtalk")
        .into_iter()
        .filter(|body| body["userid_list"] == json!("ding-zw"))
        .collect();
    assert_eq!(ding.len(), 1);
    assert_eq!(ding[0]["agent_id"], json!(2000001));
    assert_eq!(ding[0]["msg"]["msgtype"], json!("markdown"));
    let feishu: Vec<Value> = platforms
        .of("feishu")
        .into_iter()
        .filter(|body| body["body"]["receive_id"] == json!("ou_zw"))
        .collect();
    assert_eq!(feishu[0]["query"], json!("user_id"));
    let content: Value = serde_json::from_str(
        feishu[0]["body"]["content"]
            .as_str()
            .expect("content is a JSON string"),
    )
    .expect("json");
    assert!(
        content["text"]
            .as_str()
            .is_some_and(|text| text.starts_with("New lead for Rep 0")),
        "in the channel's language: {content}"
    );

    // WeCom says the token expired: a new one is fetched and the message goes out once.
    platforms.expire_wecom.store(true, Ordering::SeqCst);
    app.ok("/api/v1/leads", &lead("app-3"), StatusCode::CREATED)
        .await;
    let round = app.state.notifier.run(Utc::now()).await.expect("round");
    assert_eq!(round.sent, 3, "{round:?}");
    assert_eq!(platforms.tokens_of("wecom"), 2);
    assert_eq!(platforms.of("wecom").len(), 3);

    // A wrong secret is refused when the token is fetched: the channel needs attention.
    let (status, body) = app
        .patch("/api/v1/channels/dd", &json!({"secret": "WRONG"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.ok("/api/v1/leads", &lead("app-4"), StatusCode::CREATED)
        .await;
    app.state.notifier.run(Utc::now()).await.expect("round");
    let (_, channel) = app.get("/api/v1/channels/dd").await;
    assert!(
        channel["needs_attention"]["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("refused the application's credentials")),
        "{channel}"
    );
}

#[tokio::test]
async fn connectors_write_each_lead_once_into_each_crm_on_sqlite() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    connectors_write_each_lead_once_into_each_crm(app).await;
}

#[tokio::test]
async fn connectors_write_each_lead_once_into_each_crm_on_postgres() {
    if let Some(app) = TestApp::without_clock(Backend::Postgres).await {
        connectors_write_each_lead_once_into_each_crm(app).await;
    }
}

async fn deliveries(app: &TestApp, channel: &str) -> Vec<Value> {
    let (status, body) = app
        .get(&format!("/api/v1/deliveries?channel_id={channel}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"].as_array().expect("items").clone()
}

async fn connectors_write_each_lead_once_into_each_crm(app: TestApp) {
    let (base, platforms) = stand_ins().await;
    app.round_robin_team(2, json!({})).await;
    contacts(&app).await;
    for body in [
        json!({"id": "sf", "name": "Salesforce", "kind": "salesforce", "url": base, "app_id": "SF-KEY",
               "secret": "SF-SECRET"}),
        json!({"id": "hs", "name": "HubSpot", "kind": "hubspot", "url": base, "secret": "pat-na1-HUBSPOT"}),
        json!({"id": "fx", "name": "纷享销客", "kind": "fxiaoke", "url": base, "app_id": "FSAID_1",
               "secret": "FX-SECRET", "token": "FX-CODE", "crm": {"operator": "FSUID_ADMIN"}}),
        json!({"id": "jd", "name": "简道云 CRM", "kind": "jiandaoyun", "url": base, "secret": "JDY-KEY",
               "crm": {"app_id": "app1", "entry_id": "entry1", "external_id_field": "_widget_id",
                       "fields": {"name": "_widget_name", "phone": "_widget_phone", "owner": "_widget_owner"}}}),
    ] {
        let view = app.ok("/api/v1/channels", &body, StatusCode::CREATED).await;
        assert!(view.get("token").is_none(), "{view}");
    }
    let (status, body) = app
        .post(
            "/api/v1/channels",
            &json!({"name": "x", "kind": "jiandaoyun", "secret": "k", "crm": {"app_id": "a"}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // The test button checks the credentials and the external id field; it writes nothing.
    let (status, body) = app.post("/api/v1/channels/sf/test", &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["answer"]
            .as_str()
            .is_some_and(|answer| answer.contains("Leadroute_Id__c"))
    );

    // A lead is routed: each CRM gets it once, owned by the rep's CRM user.
    platforms.salesforce_fail.store(1, Ordering::SeqCst);
    platforms.hubspot_busy.store(1, Ordering::SeqCst);
    let created = app
        .ok("/api/v1/leads", &lead("crm-1"), StatusCode::CREATED)
        .await;
    let lead_id = created["lead"]["id"].as_str().expect("id").to_owned();
    let now = Utc::now();
    let round = app.state.notifier.run(now).await.expect("round");
    assert_eq!((round.sent, round.failed), (2, 2), "{round:?}");
    // Salesforce's 500 backs off ten seconds; HubSpot's 429 waits a minute.
    let round = app
        .state
        .notifier
        .run(now + Duration::seconds(11))
        .await
        .expect("round");
    assert_eq!(round.sent, 1, "{round:?}");
    let round = app
        .state
        .notifier
        .run(now + Duration::seconds(61))
        .await
        .expect("round");
    assert_eq!(round.sent, 1, "{round:?}");
    let (_, salesforce) = platforms
        .record("salesforce", &lead_id)
        .expect("salesforce");
    assert_eq!(salesforce["OwnerId"], json!("005SF0"));
    assert_eq!(salesforce["LastName"], json!("测试客户"));
    assert_eq!(salesforce["Company"], json!("[not provided]"));
    assert_eq!(salesforce["Phone"], json!("+8613800138000"));
    let (_, hubspot) = platforms.record("hubspot", &lead_id).expect("hubspot");
    assert_eq!(hubspot["hubspot_owner_id"], json!("770"));
    let (_, fxiaoke) = platforms.record("fxiaoke", &lead_id).expect("fxiaoke");
    assert_eq!(fxiaoke["owner"], json!(["FSUID_0"]));
    assert_eq!(fxiaoke["mobile"], json!("+8613800138000"));
    let (_, jiandaoyun) = platforms.record("jiandaoyun", &lead_id).expect("jdy");
    assert_eq!(jiandaoyun["_widget_owner"], json!({"value": "user0"}));
    let sent = deliveries(&app, "sf").await;
    assert!(
        sent[0]["answer"]
            .as_str()
            .is_some_and(|answer| answer.starts_with("created Lead salesforce-")),
        "{sent:?}"
    );

    // Reassigned: the same records change owner, none is added.
    let (status, body) = app
        .post(
            &format!("/api/v1/leads/{lead_id}/assign"),
            &json!({"rep_id": "r01", "reason": "客户要求"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let round = app
        .state
        .notifier
        .run(now + Duration::seconds(120))
        .await
        .expect("round");
    assert_eq!(round.sent, 4, "{round:?}");
    assert_eq!(platforms.records.lock().expect("lock").len(), 4);
    assert_eq!(
        platforms.record("salesforce", &lead_id).expect("sf").1["OwnerId"],
        json!("005SF1")
    );
    assert_eq!(
        platforms.record("fxiaoke", &lead_id).expect("fx").1["owner"],
        json!(["FSUID_1"])
    );
    assert!(
        deliveries(&app, "jd").await[0]["answer"]
            .as_str()
            .is_some_and(|answer| answer.starts_with("updated record")),
    );
    // A replayed delivery updates the same record again.
    let id = deliveries(&app, "hs").await[0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (status, body) = app
        .post(&format!("/api/v1/deliveries/{id}/retry"), &json!({}))
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a sent delivery is not retried: {body}"
    );
    assert_eq!(platforms.records.lock().expect("lock").len(), 4);

    // Salesforce revokes the session and refuses the app: the connector needs attention, its
    // delivery waits without using up its attempts, and an event says so.
    platforms.salesforce_refuse.store(true, Ordering::SeqCst);
    let (status, body) = app
        .post(
            &format!("/api/v1/leads/{lead_id}/assign"),
            &json!({"rep_id": "r00", "reason": "回到原负责人"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let later = now + Duration::seconds(180);
    app.state.notifier.run(later).await.expect("round");
    let (_, channel) = app.get("/api/v1/channels/sf").await;
    assert!(
        channel["needs_attention"]["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("invalid_client")),
        "{channel}"
    );
    let waiting = deliveries(&app, "sf").await;
    assert_eq!(waiting[0]["status"], json!("pending"));
    assert_eq!(waiting[0]["attempts"], json!(0));
    let (_, events) = app
        .get("/api/v1/events?event=channel.needs_attention")
        .await;
    assert!(
        events.to_string().contains("channel.needs_attention"),
        "{events}"
    );
    // Nothing is sent while it waits; a second refusal does not raise a second event.
    app.state
        .notifier
        .run(later + Duration::seconds(60))
        .await
        .expect("round");
    assert_eq!(deliveries(&app, "sf").await[0]["status"], json!("pending"));
    // The admin fixes the app: the mark is cleared and the waiting delivery goes at once.
    platforms.salesforce_refuse.store(false, Ordering::SeqCst);
    let (status, body) = app
        .patch("/api/v1/channels/sf", &json!({"secret": "SF-SECRET"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["needs_attention"], Value::Null, "{body}");
    let round = app
        .state
        .notifier
        .run(Utc::now().max(later) + Duration::seconds(61))
        .await
        .expect("round");
    assert!(round.sent >= 1, "{round:?}");
    assert_eq!(deliveries(&app, "sf").await[0]["status"], json!("sent"));
    assert_eq!(
        platforms.record("salesforce", &lead_id).expect("sf").1["OwnerId"],
        json!("005SF0")
    );
}

#[tokio::test]
async fn a_batch_moves_leads_in_with_their_owners_on_sqlite() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    a_batch_moves_leads_in_with_their_owners(app).await;
}

#[tokio::test]
async fn a_batch_moves_leads_in_with_their_owners_on_postgres() {
    if let Some(app) = TestApp::without_clock(Backend::Postgres).await {
        a_batch_moves_leads_in_with_their_owners(app).await;
    }
}

async fn a_batch_moves_leads_in_with_their_owners(app: TestApp) {
    app.round_robin_team(2, json!({"max_open": 1})).await;
    let now = Utc::now();
    let at = |hours: i64| (now - Duration::hours(hours)).to_rfc3339();
    let body = json!({"mode": "migrate", "leads": [
        {"external_id": "m1", "name": "甲", "owner": "r00", "status": "跟进中",
         "created_at": at(30), "last_follow_up_at": at(1)},
        {"external_id": "m2", "name": "乙", "owner": "Rep 0", "created_at": at(30)},
        {"external_id": "m3", "name": "丙", "owner": "nobody", "created_at": at(2)},
        {"external_id": "m4", "name": "丁", "created_at": at(2)},
        {"external_id": "m5", "name": "戊", "owner": "r01", "created_at": at(-2)}
    ]});
    let answer = app.ok("/api/v1/leads/batch", &body, StatusCode::OK).await;
    let results: Vec<(&str, &str)> = answer["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| {
            (
                item["result"].as_str().unwrap_or_default(),
                item["error"]["field"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        results,
        [
            ("created", ""),
            ("created", ""),
            ("error", "leads[2].owner"),
            ("error", "leads[3].owner"),
            ("error", "leads[4].created_at"),
        ],
        "{answer}"
    );
    let first = &answer["items"][0];
    assert_eq!(first["lead"]["owner_id"], json!("r00"));
    assert_eq!(first["lead"]["status"], json!("contacted"));
    assert_eq!(first["decision"]["kind"], json!("import"));
    assert_eq!(
        first["lead"]["follow_up"]["first_response_at"],
        json!(crate::support::time(now - Duration::hours(1)))
    );
    // r00 holds two open leads though the cap is one: a migration stores what is, and the
    // cap holds for what comes next.
    let next = app
        .ok(
            "/api/v1/leads",
            &lead("after-migration"),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(next["lead"]["owner_id"], json!("r01"));
    // The clocks run from the lead's own times: 乙 came in thirty hours ago, so its first-response
    // deadline is earlier than that of the lead routed now.
    let first_due = |id: String| {
        let app = &app;
        async move {
            let (_, timers) = app.get(&format!("/api/v1/leads/{id}/timers")).await;
            timers["items"][0]["due_at"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }
    };
    let migrated = first_due(
        answer["items"][1]["lead"]["id"]
            .as_str()
            .expect("id")
            .to_owned(),
    )
    .await;
    let routed = first_due(next["lead"]["id"].as_str().expect("id").to_owned()).await;
    assert!(
        !migrated.is_empty() && migrated < routed,
        "{migrated} / {routed}"
    );
    let (_, events) = app.get("/api/v1/events?event=lead.assigned").await;
    assert_eq!(
        events["items"].as_array().map(Vec::len),
        Some(1),
        "only the routed lead is announced: {events}"
    );
    // A replay finds the leads; a band makes no sense here; an integration key may not.
    let again = app.ok("/api/v1/leads/batch", &body, StatusCode::OK).await;
    assert_eq!(again["items"][0]["result"], json!("duplicate"));
    let (status, _) = app
        .post(
            "/api/v1/leads/batch",
            &json!({"mode": "migrate", "band": 0.2, "leads": []}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let key = app.key(server::auth::Role::Integration).await;
    let (status, _) = app
        .send(
            axum::http::Method::POST,
            "/api/v1/leads/batch",
            Some(&json!({"mode": "migrate", "leads": []})),
            Some(&key),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
