//! Notifications against real HTTP servers on loopback standing in for a webhook receiver,
//! WeCom, DingTalk, Feishu and Slack: each checks the payload shape and signature as the
//! platform documents it. Failures, backoff, dead letters, rate limits and a crashed sender.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac as _};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::support::{Backend, TestApp, lead};

const SECRET: &str = "SECtest-secret-123";

/// One request: the platform, its body, and whether it checked out.
type Request = (String, Value, Result<(), String>);

/// What the stand-in platforms received, by platform, with whether each request checked out.
#[derive(Clone, Default)]
struct Received {
    requests: Arc<Mutex<Vec<Request>>>,
    /// Answer 500 to this many webhook requests first.
    fail_first: Arc<AtomicUsize>,
    /// Answer WeCom's "too many messages" (errcode 45009) to this many requests first.
    busy_first: Arc<AtomicUsize>,
}

impl Received {
    fn record(&self, platform: &str, body: Value, check: Result<(), String>) {
        self.requests
            .lock()
            .expect("lock")
            .push((platform.to_owned(), body, check));
    }

    fn of(&self, platform: &str) -> Vec<(Value, Result<(), String>)> {
        self.requests
            .lock()
            .expect("lock")
            .iter()
            .filter(|(name, _, _)| name == platform)
            .map(|(_, body, check)| (body.clone(), check.clone()))
            .collect()
    }
}

fn mac(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("key");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

async fn webhook(State(seen): State<Received>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if seen.fail_first.load(Ordering::SeqCst) > 0 {
        seen.fail_first.fetch_sub(1, Ordering::SeqCst);
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let text = String::from_utf8_lossy(&body).into_owned();
    let timestamp = header("x-leadroute-timestamp");
    // The documented recipe: hex HMAC-SHA256 of `timestamp + "." + body`, prefixed `v1=`.
    let expected = format!(
        "v1={}",
        hex::encode(mac(
            SECRET.as_bytes(),
            format!("{timestamp}.{text}").as_bytes()
        ))
    );
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let check = if header("x-leadroute-signature") != expected {
        Err("bad signature".to_owned())
    } else if value["id"] != json!(header("x-leadroute-delivery")) {
        Err("delivery id differs from its header".to_owned())
    } else {
        Ok(())
    };
    seen.record("webhook", value, check);
    StatusCode::OK
}

async fn wecom(State(seen): State<Received>, body: axum::Json<Value>) -> axum::Json<Value> {
    if seen.busy_first.load(Ordering::SeqCst) > 0 {
        seen.busy_first.fetch_sub(1, Ordering::SeqCst);
        return axum::Json(json!({"errcode": 45009, "errmsg": "api freq out of limit"}));
    }
    let content = body["markdown"]["content"].as_str().unwrap_or_default();
    let check = if body["msgtype"] != json!("markdown") || content.is_empty() {
        Err("not a markdown message".to_owned())
    } else if content.len() > 4096 {
        Err("content over 4096 bytes".to_owned())
    } else {
        Ok(())
    };
    seen.record("wecom", body.0, check);
    axum::Json(json!({"errcode": 0, "errmsg": "ok"}))
}

async fn dingtalk(
    State(seen): State<Received>,
    Query(query): Query<HashMap<String, String>>,
    body: axum::Json<Value>,
) -> axum::Json<Value> {
    // The documented recipe: base64(HMAC-SHA256(secret, timestamp + "\n" + secret)), in the
    // query (axum's Query has already URL-decoded it).
    let timestamp = query.get("timestamp").cloned().unwrap_or_default();
    let expected = base64::engine::general_purpose::STANDARD.encode(mac(
        SECRET.as_bytes(),
        format!("{timestamp}\n{SECRET}").as_bytes(),
    ));
    let check = if query.get("sign") != Some(&expected) {
        Err("bad sign".to_owned())
    } else if body["msgtype"] != json!("markdown") || !body["markdown"]["title"].is_string() {
        Err("not a markdown message".to_owned())
    } else {
        Ok(())
    };
    seen.record("dingtalk", body.0, check);
    axum::Json(json!({"errcode": 0, "errmsg": "ok"}))
}

async fn feishu(State(seen): State<Received>, body: axum::Json<Value>) -> axum::Json<Value> {
    // The documented recipe: base64(HMAC-SHA256 keyed with timestamp + "\n" + secret, over an
    // empty message), in the body.
    let timestamp = body["timestamp"].as_str().unwrap_or_default();
    let expected = base64::engine::general_purpose::STANDARD
        .encode(mac(format!("{timestamp}\n{SECRET}").as_bytes(), b""));
    let check = if body["sign"] != json!(expected) {
        Err("bad sign".to_owned())
    } else if body["msg_type"] != json!("text") || !body["content"]["text"].is_string() {
        Err("not a text message".to_owned())
    } else {
        Ok(())
    };
    seen.record("feishu", body.0, check);
    axum::Json(json!({"code": 0, "msg": "success"}))
}

async fn slack(State(seen): State<Received>, body: axum::Json<Value>) -> &'static str {
    let check = if body["text"].is_string() {
        Ok(())
    } else {
        Err("no text".to_owned())
    };
    seen.record("slack", body.0, check);
    "ok"
}

/// Starts the stand-in platforms on a loopback port.
async fn platforms() -> (String, Received) {
    let seen = Received::default();
    let app = axum::Router::new()
        .route("/hook", post(webhook))
        .route("/cgi-bin/webhook/send", post(wecom))
        .route("/robot/send", post(dingtalk))
        .route("/open-apis/bot/v2/hook/abc", post(feishu))
        .route("/services/T0/B0/x", post(slack))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, seen)
}

async fn team(app: &TestApp) {
    app.round_robin_team(2, json!({})).await;
}

async fn channel(app: &TestApp, body: &Value) {
    app.ok("/api/v1/channels", body, StatusCode::CREATED).await;
}

async fn run(app: &TestApp, now: DateTime<Utc>) -> server::notify::Round {
    app.state.notifier.run(now).await.expect("round")
}

async fn deliveries(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, body) = app.get(&format!("/api/v1/deliveries?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"].as_array().expect("items").clone()
}

#[tokio::test]
async fn every_platform_gets_its_shape_and_signature_on_sqlite() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    every_platform_gets_its_shape_and_signature(app).await;
}

#[tokio::test]
async fn every_platform_gets_its_shape_and_signature_on_postgres() {
    if let Some(app) = TestApp::without_clock(Backend::Postgres).await {
        every_platform_gets_its_shape_and_signature(app).await;
    }
}

async fn every_platform_gets_its_shape_and_signature(app: TestApp) {
    let (base, seen) = platforms().await;
    team(&app).await;
    for (id, kind, path, secret) in [
        ("hook", "webhook", "/hook", Some(SECRET)),
        ("wecom", "wecom", "/cgi-bin/webhook/send?key=k1", None),
        (
            "ding",
            "dingtalk",
            "/robot/send?access_token=t1",
            Some(SECRET),
        ),
        (
            "feishu",
            "feishu",
            "/open-apis/bot/v2/hook/abc",
            Some(SECRET),
        ),
        ("slack", "slack", "/services/T0/B0/x", None),
    ] {
        channel(
            &app,
            &json!({"id": id, "name": id, "kind": kind, "url": format!("{base}{path}"), "secret": secret,
                    "events": ["lead.assigned"]}),
        )
        .await;
    }
    // The secret is never shown again.
    let (_, shown) = app.get("/api/v1/channels/hook").await;
    assert_eq!(shown["secret"], Value::Null, "{shown}");
    assert_eq!(shown["secret_set"], json!(true));

    // The first lead goes to r00, who is mentioned by their id on each platform.
    let (status, body) = app
        .patch(
            "/api/v1/reps/r00",
            &json!({"contact": {"wecom_userid": "zhangwei", "dingtalk_userid": "ding-zw",
                                "feishu_user_id": "ou_zw", "slack_member_id": "U0ZW"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let created = app
        .ok("/api/v1/leads", &lead("notify-1"), StatusCode::CREATED)
        .await;
    assert_eq!(created["lead"]["owner_id"], json!("r00"));
    let round = run(&app, Utc::now()).await;
    assert_eq!((round.dispatched, round.sent), (1, 5), "{round:?}");
    for platform in ["webhook", "wecom", "dingtalk", "feishu", "slack"] {
        let got = seen.of(platform);
        assert_eq!(got.len(), 1, "{platform}");
        assert_eq!(got[0].1, Ok(()), "{platform}: {}", got[0].0);
    }
    let (body, _) = &seen.of("webhook")[0];
    assert_eq!(body["event"], json!("lead.assigned"));
    assert_eq!(body["data"]["lead"]["id"], created["lead"]["id"]);
    assert_eq!(body["data"]["lead"]["name"], json!("测试客户"));
    assert!(
        !body.to_string().contains("13800138000"),
        "no phone in notifications"
    );
    let (wecom_body, _) = &seen.of("wecom")[0];
    let content = wecom_body["markdown"]["content"].as_str().expect("content");
    assert!(content.contains("新线索分配给"), "{content}");
    assert!(content.contains("/leads/"), "a link to the lead: {content}");
    assert!(content.contains("<@zhangwei>"), "{content}");
    assert!(
        content.contains("截止："),
        "the first-response deadline: {content}"
    );
    let (ding, _) = &seen.of("dingtalk")[0];
    assert_eq!(ding["at"]["atUserIds"], json!(["ding-zw"]));
    let (feishu, _) = &seen.of("feishu")[0];
    assert!(
        feishu["content"]["text"]
            .as_str()
            .is_some_and(|text| text.contains("<at user_id=\"ou_zw\">")),
        "{feishu}"
    );
    let (slack, _) = &seen.of("slack")[0];
    assert!(
        slack["text"]
            .as_str()
            .is_some_and(|text| text.contains("<@U0ZW>"))
    );
    // Everything sent: a round later nothing goes out twice.
    let round = run(&app, Utc::now()).await;
    assert_eq!(round.sent, 0);
    assert_eq!(deliveries(&app, "status=sent").await.len(), 5);

    // The test action sends at once.
    let (status, body) = app.post("/api/v1/channels/ding/test", &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(seen.of("dingtalk").len(), 2);
}

#[tokio::test]
async fn failures_back_off_then_dead_letter_and_retry_on_sqlite() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    failures_back_off_then_dead_letter_and_retry(app).await;
}

#[tokio::test]
async fn failures_back_off_then_dead_letter_and_retry_on_postgres() {
    if let Some(app) = TestApp::without_clock(Backend::Postgres).await {
        failures_back_off_then_dead_letter_and_retry(app).await;
    }
}

async fn failures_back_off_then_dead_letter_and_retry(app: TestApp) {
    let (base, seen) = platforms().await;
    team(&app).await;
    channel(
        &app,
        &json!({"id": "hook", "name": "Hook", "kind": "webhook", "url": format!("{base}/hook"), "secret": SECRET}),
    )
    .await;
    seen.fail_first.store(2, Ordering::SeqCst);
    app.ok("/api/v1/leads", &lead("retry-1"), StatusCode::CREATED)
        .await;
    let now = Utc::now();
    assert_eq!(run(&app, now).await.failed, 1);
    let pending = deliveries(&app, "status=pending").await;
    assert_eq!(pending[0]["attempts"], json!(1));
    assert_eq!(pending[0]["last_error"], json!("HTTP 500"));
    // Backoff: 10 s after the first failure, 20 s after the second.
    assert_eq!(run(&app, now + Duration::seconds(5)).await.failed, 0);
    assert_eq!(run(&app, now + Duration::seconds(11)).await.failed, 1);
    assert_eq!(run(&app, now + Duration::seconds(25)).await.sent, 0);
    assert_eq!(run(&app, now + Duration::seconds(32)).await.sent, 1);
    let sent = seen.of("webhook");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1, Ok(()));

    // Nobody listening: after max_attempts the delivery is dead; an admin retries it.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let dead_url = format!("http://{}/hook", closed.local_addr().expect("addr"));
    drop(closed);
    channel(
        &app,
        &json!({"id": "gone", "name": "Gone", "kind": "webhook", "url": dead_url, "secret": SECRET,
                "max_attempts": 2}),
    )
    .await;
    app.ok("/api/v1/leads", &lead("retry-2"), StatusCode::CREATED)
        .await;
    let later = now + Duration::seconds(60);
    run(&app, later).await;
    run(&app, later + Duration::seconds(11)).await;
    let dead = deliveries(&app, "status=dead&channel_id=gone").await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["attempts"], json!(2));
    assert_eq!(dead[0]["last_error"], json!("could not connect"));
    let id = dead[0]["id"].as_str().expect("id");
    let (status, body) = app
        .post(&format!("/api/v1/deliveries/{id}/retry"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], json!("pending"));
    let (status, _) = app
        .post(&format!("/api/v1/deliveries/{id}/retry"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_robot_gets_twenty_messages_a_minute_on_sqlite() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    a_robot_gets_twenty_messages_a_minute(app).await;
}

#[tokio::test]
async fn a_robot_gets_twenty_messages_a_minute_on_postgres() {
    if let Some(app) = TestApp::without_clock(Backend::Postgres).await {
        a_robot_gets_twenty_messages_a_minute(app).await;
    }
}

async fn a_robot_gets_twenty_messages_a_minute(app: TestApp) {
    let (base, seen) = platforms().await;
    team(&app).await;
    channel(
        &app,
        &json!({"id": "wecom", "name": "WeCom", "kind": "wecom", "url": format!("{base}/cgi-bin/webhook/send?key=k")}),
    )
    .await;
    let batch: Vec<Value> = (0..25)
        .map(|index| lead(&format!("rate-{index}")))
        .collect();
    app.ok(
        "/api/v1/leads/batch",
        &json!({"leads": batch}),
        StatusCode::OK,
    )
    .await;
    // A moment just after a minute starts.
    let minute = Utc::now().timestamp() / 60 * 60 + 60;
    let now = DateTime::from_timestamp(minute + 1, 0).expect("time");
    for _ in 0..5 {
        run(&app, now).await;
    }
    assert_eq!(seen.of("wecom").len(), 20);
    let waiting = deliveries(&app, "status=pending").await;
    assert_eq!(waiting.len(), 5);
    run(&app, now + Duration::seconds(60)).await;
    assert_eq!(seen.of("wecom").len(), 25);
}

#[tokio::test]
async fn a_sender_that_dies_holding_deliveries_loses_nothing() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    let (base, seen) = platforms().await;
    team(&app).await;
    channel(
        &app,
        &json!({"id": "hook", "name": "Hook", "kind": "webhook", "url": format!("{base}/hook"), "secret": SECRET}),
    )
    .await;
    app.ok("/api/v1/leads", &lead("crash-1"), StatusCode::CREATED)
        .await;
    let now = Utc::now();
    assert_eq!(app.state.notifier.dispatch(now).await.expect("dispatch"), 1);
    // A sender takes the delivery and dies before sending it.
    let taken = app
        .state
        .store
        .claim_deliveries(
            now.timestamp_micros(),
            (now + Duration::seconds(60)).timestamp_micros(),
            10,
        )
        .await
        .expect("claim");
    assert_eq!(taken.len(), 1);
    // While the lease holds, nobody else sends it; after it runs out, it goes out once.
    assert_eq!(run(&app, now + Duration::seconds(30)).await.sent, 0);
    assert_eq!(run(&app, now + Duration::seconds(61)).await.sent, 1);
    assert_eq!(run(&app, now + Duration::seconds(120)).await.sent, 0);
    assert_eq!(seen.of("webhook").len(), 1);
}

/// One mail an SMTP conversation delivered.
#[derive(Clone, Debug, Default)]
struct Mail {
    auth: Option<String>,
    from: String,
    to: Vec<String>,
    data: String,
}

/// A real SMTP server on loopback, speaking enough of RFC 5321 (and AUTH PLAIN) for a client.
async fn smtp_server() -> (u16, Arc<Mutex<Vec<Mail>>>) {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let mails: Arc<Mutex<Vec<Mail>>> = Arc::default();
    let store = Arc::clone(&mails);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 test.local ESMTP\r\n").await;
                let mut mail = Mail::default();
                while let Ok(Some(line)) = lines.next_line().await {
                    let upper = line.to_ascii_uppercase();
                    let answer: &[u8] = if upper.starts_with("EHLO") {
                        b"250-test.local\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n"
                    } else if upper.starts_with("AUTH PLAIN") {
                        let encoded = line.split_whitespace().nth(2).unwrap_or_default();
                        let decoded = base64::engine::general_purpose::STANDARD
                            .decode(encoded)
                            .unwrap_or_default();
                        mail.auth = Some(String::from_utf8_lossy(&decoded).into_owned());
                        b"235 2.7.0 Authentication successful\r\n"
                    } else if upper.starts_with("MAIL FROM:") {
                        mail.from = line[10..].trim().to_owned();
                        b"250 OK\r\n"
                    } else if upper.starts_with("RCPT TO:") {
                        mail.to.push(line[8..].trim().to_owned());
                        b"250 OK\r\n"
                    } else if upper == "DATA" {
                        let _ = write
                            .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                            .await;
                        while let Ok(Some(line)) = lines.next_line().await {
                            if line == "." {
                                break;
                            }
                            mail.data.push_str(&line);
                            mail.data.push('\n');
                        }
                        let auth = mail.auth.clone();
                        store.lock().expect("lock").push(std::mem::take(&mut mail));
                        mail.auth = auth;
                        b"250 OK queued\r\n"
                    } else if upper == "QUIT" {
                        let _ = write.write_all(b"221 Bye\r\n").await;
                        break;
                    } else {
                        b"250 OK\r\n"
                    };
                    if write.write_all(answer).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (port, mails)
}

#[tokio::test]
async fn email_reaches_each_recipient_in_their_language() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    let (port, mails) = smtp_server().await;
    team(&app).await;
    for (rep, email, locale) in [
        ("r00", "zhang@example.com", "zh"),
        ("r01", "ann@example.com", "en"),
    ] {
        let (status, body) = app
            .patch(
                &format!("/api/v1/reps/{rep}"),
                &json!({"contact": {"email": email, "locale": locale}}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = app
        .patch(
            "/api/v1/reps/r00",
            &json!({"contact": {"email": "not an address"}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], json!("contact.email"));
    channel(
        &app,
        &json!({"id": "mail", "name": "Mail", "kind": "email", "secret": "app-password",
                "smtp": {"host": "127.0.0.1", "port": port, "security": "none", "username": "leads",
                         "from": "Leadroute <leads@example.com>"},
                "events": ["lead.assigned"]}),
    )
    .await;
    let (_, shown) = app.get("/api/v1/channels/mail").await;
    assert_eq!(shown["secret_set"], json!(true));
    assert!(!shown.to_string().contains("app-password"));
    // Round robin: the first lead goes to r00, the second to r01.
    for index in 0..2 {
        app.ok(
            "/api/v1/leads",
            &lead(&format!("mail-{index}")),
            StatusCode::CREATED,
        )
        .await;
    }
    let round = run(&app, Utc::now()).await;
    assert_eq!(round.sent, 2, "{round:?}");
    let mails = mails.lock().expect("lock").clone();
    assert_eq!(mails.len(), 2, "{mails:?}");
    let to_zhang = mails
        .iter()
        .find(|mail| mail.to.iter().any(|to| to.contains("zhang@example.com")))
        .expect("a mail to r00");
    let to_ann = mails
        .iter()
        .find(|mail| mail.to.iter().any(|to| to.contains("ann@example.com")))
        .expect("a mail to r01");
    assert_eq!(to_zhang.auth.as_deref(), Some("\0leads\0app-password"));
    assert!(to_zhang.from.contains("leads@example.com"));
    for (mail, words) in [
        (to_zhang, "Subject: =?utf-8?"),
        (to_ann, "Subject: New lead for"),
    ] {
        assert!(mail.data.contains(words), "{}", mail.data);
        assert!(mail.data.contains("text/plain"), "{}", mail.data);
        assert!(mail.data.contains("text/html"), "{}", mail.data);
    }
}

/// Stand-ins for Alibaba Cloud SMS and Tencent Cloud SMS that check each request's signature
/// the way each cloud documents it, and record the numbers and template parameters.
async fn sms_clouds() -> (String, Received) {
    use axum::routing::get;

    fn encode(text: &str) -> String {
        text.bytes()
            .map(|byte| match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (byte as char).to_string()
                }
                _ => format!("%{byte:02X}"),
            })
            .collect()
    }

    async fn aliyun(
        State(seen): State<Received>,
        Query(query): Query<Vec<(String, String)>>,
    ) -> axum::Json<Value> {
        // Sort every parameter but Signature, encode (RFC 3986), join, sign
        // "GET&%2F&" + encode(query) with HMAC-SHA1 keyed by secret + "&", base64.
        let mut params: Vec<(String, String)> = query
            .iter()
            .filter(|(key, _)| key != "Signature")
            .cloned()
            .collect();
        params.sort();
        let canonical = params
            .iter()
            .map(|(key, value)| format!("{}={}", encode(key), encode(value)))
            .collect::<Vec<_>>()
            .join("&");
        let to_sign = format!("GET&%2F&{}", encode(&canonical));
        let mut mac =
            Hmac::<sha1::Sha1>::new_from_slice(format!("{SECRET}&").as_bytes()).expect("key");
        mac.update(to_sign.as_bytes());
        let expected =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        let given = query
            .iter()
            .find(|(key, _)| key == "Signature")
            .map(|(_, value)| value.clone());
        let field = |name: &str| {
            query
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
                .unwrap_or_default()
        };
        let check = if given.as_deref() != Some(expected.as_str()) {
            Err("bad signature".to_owned())
        } else if field("Action") != "SendSms" || field("SignatureMethod") != "HMAC-SHA1" {
            Err("wrong action or method".to_owned())
        } else {
            Ok(())
        };
        seen.record(
            "aliyun",
            json!({"PhoneNumbers": field("PhoneNumbers"), "TemplateCode": field("TemplateCode"),
                   "TemplateParam": serde_json::from_str::<Value>(&field("TemplateParam")).unwrap_or(Value::Null)}),
            check,
        );
        axum::Json(json!({"Code": "OK", "Message": "OK", "BizId": "1", "RequestId": "r"}))
    }

    async fn tencent(
        State(seen): State<Received>,
        headers: HeaderMap,
        body: Bytes,
    ) -> axum::Json<Value> {
        // TC3-HMAC-SHA256: canonical request over content-type and host, string to sign with
        // the date scope, key derived from "TC3" + key by date, service, "tc3_request".
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let payload = String::from_utf8_lossy(&body).into_owned();
        let timestamp: i64 = header("x-tc-timestamp").parse().unwrap_or_default();
        let date = DateTime::from_timestamp(timestamp, 0)
            .expect("time")
            .format("%Y-%m-%d")
            .to_string();
        let canonical = format!(
            "POST\n/\n\ncontent-type:{}\nhost:{}\n\ncontent-type;host\n{}",
            header("content-type"),
            header("host"),
            hex::encode(<Sha256 as sha2::Digest>::digest(payload.as_bytes()))
        );
        let to_sign = format!(
            "TC3-HMAC-SHA256\n{timestamp}\n{date}/sms/tc3_request\n{}",
            hex::encode(<Sha256 as sha2::Digest>::digest(canonical.as_bytes()))
        );
        let key = mac(format!("TC3{SECRET}").as_bytes(), date.as_bytes());
        let key = mac(&key, b"sms");
        let key = mac(&key, b"tc3_request");
        let signature = hex::encode(mac(&key, to_sign.as_bytes()));
        let expected = format!(
            "TC3-HMAC-SHA256 Credential=AKIDtest/{date}/sms/tc3_request, SignedHeaders=content-type;host, Signature={signature}"
        );
        let check = if header("authorization") != expected {
            Err("bad authorization".to_owned())
        } else if header("x-tc-action") != "SendSms" {
            Err("wrong action".to_owned())
        } else {
            Ok(())
        };
        seen.record(
            "tencent",
            serde_json::from_str(&payload).unwrap_or(Value::Null),
            check,
        );
        axum::Json(json!({"Response": {"SendStatusSet": [{"Code": "Ok"}], "RequestId": "r"}}))
    }

    let seen = Received::default();
    let app = axum::Router::new()
        .route("/", get(aliyun).post(tencent))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, seen)
}

#[tokio::test]
async fn sms_goes_through_either_cloud_signed_as_documented() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    let (base, seen) = sms_clouds().await;
    team(&app).await;
    let (status, body) = app
        .patch(
            "/api/v1/reps/r00",
            &json!({"contact": {"mobile": "138 0013 8000"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    channel(
        &app,
        &json!({"id": "ali", "name": "阿里云短信", "kind": "aliyun_sms", "secret": SECRET,
                "sms": {"access_key_id": "LTAItest", "sign_name": "线索通知", "template": "SMS_1", "endpoint": base},
                "events": ["lead.assigned"]}),
    )
    .await;
    channel(
        &app,
        &json!({"id": "tc", "name": "腾讯云短信", "kind": "tencent_sms", "secret": SECRET,
                "sms": {"access_key_id": "AKIDtest", "sign_name": "线索通知", "template": "100", "app_id": "1400000000",
                        "endpoint": base},
                "events": ["lead.assigned"]}),
    )
    .await;
    app.ok("/api/v1/leads", &lead("sms-1"), StatusCode::CREATED)
        .await;
    let round = run(&app, Utc::now()).await;
    assert_eq!(round.sent, 2, "{round:?} {:?}", deliveries(&app, "").await);
    let (aliyun, check) = &seen.of("aliyun")[0];
    assert_eq!(check, &Ok(()), "{aliyun}");
    assert_eq!(aliyun["PhoneNumbers"], json!("13800138000"));
    assert!(aliyun["TemplateParam"]["title"].is_string(), "{aliyun}");
    let (tencent, check) = &seen.of("tencent")[0];
    assert_eq!(check, &Ok(()), "{tencent}");
    assert_eq!(tencent["PhoneNumberSet"], json!(["+8613800138000"]));
    assert_eq!(
        tencent["TemplateParamSet"].as_array().map(Vec::len),
        Some(3)
    );
}

#[tokio::test]
async fn a_slow_receiver_times_out_and_is_tried_again() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    let slow = axum::Router::new().route(
        "/hook",
        post(|| async {
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            StatusCode::OK
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, slow).await });
    team(&app).await;
    channel(
        &app,
        &json!({"id": "slow", "name": "Slow", "kind": "webhook", "url": url, "secret": SECRET}),
    )
    .await;
    app.ok("/api/v1/leads", &lead("slow-1"), StatusCode::CREATED)
        .await;
    let notifier = app
        .state
        .notifier
        .clone()
        .with_timeout(std::time::Duration::from_millis(500));
    let now = Utc::now();
    let round = notifier.run(now).await.expect("round");
    assert_eq!(round.failed, 1, "{round:?}");
    let pending = deliveries(&app, "status=pending").await;
    assert_eq!(pending[0]["last_error"], json!("timed out"));
    assert_eq!(pending[0]["attempts"], json!(1));
}

#[tokio::test]
async fn a_platform_saying_too_many_waits_a_minute() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    let (base, seen) = platforms().await;
    team(&app).await;
    channel(
        &app,
        &json!({"id": "wecom", "name": "WeCom", "kind": "wecom", "url": format!("{base}/cgi-bin/webhook/send?key=k")}),
    )
    .await;
    seen.busy_first.store(1, Ordering::SeqCst);
    app.ok("/api/v1/leads", &lead("busy-1"), StatusCode::CREATED)
        .await;
    let now = Utc::now();
    assert_eq!(run(&app, now).await.failed, 1);
    let pending = deliveries(&app, "status=pending").await;
    assert!(
        pending[0]["last_error"]
            .as_str()
            .is_some_and(|error| error.contains("45009")),
        "{pending:?}"
    );
    // Not after the usual 10 s backoff: a minute.
    assert_eq!(run(&app, now + Duration::seconds(30)).await.sent, 0);
    assert_eq!(run(&app, now + Duration::seconds(61)).await.sent, 1);
    assert_eq!(seen.of("wecom").len(), 1);
}

/// The examples in docs/notifications.md marked `<!-- POST path -->` are accepted, in order.
#[tokio::test]
async fn docs_examples_are_accepted() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    team(&app).await;
    let text = include_str!("../../../../docs/notifications.md");
    let mut posted = 0;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(path) = line
            .strip_prefix("<!-- POST ")
            .and_then(|rest| rest.strip_suffix(" -->"))
        else {
            continue;
        };
        assert_eq!(
            lines.next(),
            Some("```json"),
            "{path}: a json block follows"
        );
        let body: String = lines
            .by_ref()
            .take_while(|line| *line != "```")
            .collect::<Vec<_>>()
            .join("\n");
        let document: Value = serde_json::from_str(&body).expect("example is JSON");
        let (status, answer) = app.post(path, &document).await;
        assert_eq!(status, StatusCode::CREATED, "{path}: {answer}");
        posted += 1;
    }
    assert_eq!(posted, 11);
    // The contact example is a valid rep patch.
    let contact = text
        .split("```json\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("contact example");
    let (status, body) = app
        .patch(
            "/api/v1/reps/r00",
            &serde_json::from_str::<Value>(contact).expect("json"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Secrets at rest: sealed in the database, opened to sign; unreadable under another key.
async fn secrets_are_sealed_at_rest(backend: Backend) {
    let Some(app) = TestApp::sealed(backend, "a key the database never sees").await else {
        return;
    };
    let (base, seen) = platforms().await;
    team(&app).await;
    channel(
        &app,
        &json!({"id": "hook", "name": "hook", "kind": "webhook", "url": format!("{base}/hook"),
                "secret": SECRET, "events": ["lead.assigned"]}),
    )
    .await;
    let row = app
        .state
        .store
        .get_setting(store::Setting::Channels, "hook")
        .await
        .expect("read")
        .expect("row");
    assert!(
        !row.document.contains(SECRET) && row.document.contains("sealed:v1:"),
        "{}",
        row.document
    );
    // A change that does not touch the secret keeps it sealed and working.
    let (status, _) = app
        .patch("/api/v1/channels/hook", &json!({"name": "CRM hook"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    app.ok("/api/v1/leads", &lead("sealed-1"), StatusCode::CREATED)
        .await;
    let round = run(&app, Utc::now()).await;
    assert_eq!(round.sent, 1, "{round:?}");
    let got = seen.of("webhook");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, Ok(()), "signed with the opened secret");

    // Another instance with another key, or none, cannot sign: it says why instead.
    let stored: server::notify::channel::ChannelDocument =
        serde_json::from_str(&row.document).expect("document");
    for sealer in [
        server::secrets::Sealer::new("some other key"),
        server::secrets::Sealer::default(),
    ] {
        let other = server::AppState::without_clock(app.state.store.clone()).with_sealer(sealer);
        let error = other
            .notifier
            .test(&other.notifier.readable(stored.clone()), &[])
            .await
            .expect_err("cannot sign");
        assert!(error.contains("LEADROUTE_SECRET_KEY"), "{error}");
    }

    // A secret stored before the key was set is sealed at the next start.
    let document = json!({"id": "old", "name": "old", "kind": "webhook",
        "url": format!("{base}/hook"), "secret": SECRET, "events": ["channel.test"]});
    app.state
        .store
        .upsert_setting(
            store::Setting::Channels,
            &store::DocRow {
                id: "old".into(),
                name: "old".into(),
                document: document.to_string(),
                created_at: 0,
                updated_at: 0,
                version: 1,
            },
        )
        .await
        .expect("an old row");
    let before = app
        .state
        .store
        .get_setting(store::Setting::Channels, "old")
        .await
        .expect("read")
        .expect("row");
    assert!(
        before.document.contains(SECRET),
        "stored as given without a key"
    );
    assert_eq!(
        server::secrets::seal_stored(&app.state.store, &app.state.sealer)
            .await
            .expect("seal"),
        1
    );
    let after = app
        .state
        .store
        .get_setting(store::Setting::Channels, "old")
        .await
        .expect("read")
        .expect("row");
    assert!(!after.document.contains(SECRET), "{}", after.document);
    let (status, answer) = app.post("/api/v1/channels/old/test", &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        seen.of("webhook").last().map(|(_, check)| check.clone()),
        Some(Ok(()))
    );
}

#[tokio::test]
async fn secrets_are_sealed_at_rest_on_sqlite() {
    secrets_are_sealed_at_rest(Backend::Sqlite).await;
}

#[tokio::test]
async fn secrets_are_sealed_at_rest_on_postgres() {
    secrets_are_sealed_at_rest(Backend::Postgres).await;
}

/// The team digest: at its time, the team's group chat gets the day's figures — leads in, first
/// response, the leaderboard, who has overdue leads — once, however often the clock looks, and
/// no other channel gets it.
async fn a_team_digest_reaches_its_group_chat(app: TestApp) {
    let (base, seen) = platforms().await;
    team(&app).await;
    // The WeCom group of team t, daily at 00:00 in the workspace's zone.
    channel(
        &app,
        &json!({"id": "team-chat", "name": "销售群", "kind": "wecom", "teams": ["t"],
                "url": format!("{base}/cgi-bin/webhook/send?key=k1"),
                "events": ["lead.won"], "digest": {"every": "day", "at": "00:00"}}),
    )
    .await;
    // Another channel that wants every lead event but no digest.
    channel(
        &app,
        &json!({"id": "other", "name": "Slack", "kind": "slack", "language": "en",
                "url": format!("{base}/services/T0/B0/x"), "events": ["channel.test"]}),
    )
    .await;
    let mut ids = Vec::new();
    for index in 0..3 {
        let created = app
            .ok(
                "/api/v1/leads",
                &lead(&format!("digest-{index}")),
                StatusCode::CREATED,
            )
            .await;
        ids.push(created["lead"]["id"].as_str().expect("id").to_owned());
    }
    let (_, zero) = app.get(&format!("/api/v1/leads/{}", ids[0])).await;
    let owner = zero["owner_id"].as_str().expect("owner").to_owned();
    app.ok(
        &format!("/api/v1/leads/{}/activities", ids[0]),
        &json!({"kind": "call", "outcome": "reached", "rep_id": owner}),
        StatusCode::CREATED,
    )
    .await;
    let (status, answer) = app
        .patch(
            &format!("/api/v1/leads/{}", ids[0]),
            &json!({"status": "won", "amount": 268000}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // Just after the channel was set up, today's time has passed already: the first digest
    // is the next one, at 00:00 tomorrow.
    let written = server::notify::digest::run_due(&app.state, Utc::now())
        .await
        .expect("digest");
    assert_eq!(written, 0, "a schedule starts at its next time");
    // A minute after the next 00:00 in the workspace's zone: due, and not late. (A day from
    // now would be more than 12 hours after that 00:00 in the zone's afternoon, and a digest
    // that late is skipped.)
    let zone = server::reports::workspace_zone(&app.state).await;
    let tomorrow = Utc::now().with_timezone(&zone).date_naive() + Duration::days(1);
    let midnight = tomorrow
        .and_hms_opt(0, 0, 0)
        .and_then(|local| local.and_local_timezone(zone).earliest())
        .expect("midnight")
        .with_timezone(&Utc);
    let now = midnight + Duration::minutes(1);
    let written = server::notify::digest::run_due(&app.state, now)
        .await
        .expect("digest");
    assert_eq!(written, 1, "one channel has a digest due");
    // Looked at again (this instance or another): nothing more.
    let again = server::notify::digest::run_due(&app.state, now + Duration::seconds(30))
        .await
        .expect("digest");
    assert_eq!(again, 0, "a digest goes out once");
    run(&app, now + Duration::seconds(31)).await;
    let digests: Vec<String> = seen
        .of("wecom")
        .iter()
        .map(|(body, check)| {
            assert!(check.is_ok(), "{check:?}");
            body["markdown"]["content"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .filter(|content| content.contains("日报"))
        .collect();
    assert_eq!(digests.len(), 1, "{digests:?}");
    let digest = &digests[0];
    let winner = app.get(&format!("/api/v1/reps/{owner}")).await.1["name"]
        .as_str()
        .expect("name")
        .to_owned();
    for expected in [
        "新进线索 3",
        "赢单 1 · ¥268,000",
        &format!("1. {winner} 1 单 ¥268,000"),
        "首次响应中位数",
        "/?team=t&days=7",
    ] {
        assert!(digest.contains(expected), "{expected:?} in {digest}");
    }
    assert!(
        seen.of("slack").is_empty(),
        "the digest is for its own channel only"
    );
    let (_, sent) = app.get("/api/v1/deliveries?channel_id=team-chat").await;
    assert!(
        sent["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|delivery| delivery["event"] == "team.digest" && delivery["status"] == "sent"),
        "{sent}"
    );
    // A digest for a kind that cannot carry it is refused with the field named.
    let (status, refused) = app
        .post(
            "/api/v1/channels",
            &json!({"id": "crm", "name": "CRM", "kind": "hubspot", "secret": "x",
                    "digest": {"every": "day", "at": "18:00"}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    let (status, refused) = app
        .post(
            "/api/v1/channels",
            &json!({"id": "late", "name": "群", "kind": "wecom", "url": format!("{base}/x"),
                    "digest": {"every": "day", "at": "25:99"}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["error"]["field"], "digest.at");
}

#[tokio::test]
async fn a_team_digest_reaches_its_group_chat_on_sqlite() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    a_team_digest_reaches_its_group_chat(app).await;
}

#[tokio::test]
async fn a_team_digest_reaches_its_group_chat_on_postgres() {
    let Some(app) = TestApp::without_clock(Backend::Postgres).await else {
        return;
    };
    a_team_digest_reaches_its_group_chat(app).await;
}
