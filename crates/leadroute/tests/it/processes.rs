//! Several processes on one database, and a crash in the middle of intake.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::support::{Client, Place, Server, admin_key, fresh_postgres, lead};

/// Posts the leads spread over the clients, all at once, and counts owners.
async fn post_spread(
    clients: &[Client],
    leads: Vec<Value>,
) -> (BTreeMap<String, usize>, Vec<Value>) {
    let tasks: Vec<_> = leads
        .into_iter()
        .enumerate()
        .map(|(index, body)| {
            let client = clients[index % clients.len()].clone();
            tokio::spawn(async move { client.post("/api/v1/leads", &body).await.expect("post") })
        })
        .collect();
    let mut counts = BTreeMap::new();
    let mut bodies = Vec::new();
    for task in tasks {
        let (status, body) = task.await.expect("task");
        assert!(status == 200 || status == 201, "{status}: {body}");
        let owner = body["lead"]["owner_id"]
            .as_str()
            .map_or_else(|| "-".to_owned(), str::to_owned);
        *counts.entry(owner).or_default() += 1;
        bodies.push(body);
    }
    (counts, bodies)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_postgres_keep_rotation_exact_caps_and_idempotency() {
    let Some(place) = fresh_postgres().await else {
        return;
    };
    let key = admin_key(&place);
    let first = Server::start(&place).await;
    let second = Server::start(&place).await;
    let clients = [
        Client::new(&first.base, &key),
        Client::new(&second.base, &key),
    ];
    clients[0]
        .setup_round_robin(10, json!({"max_per_day": 120}))
        .await;

    let (counts, _) = post_spread(
        &clients,
        (0..1000).map(|index| lead(&format!("a-{index}"))).collect(),
    )
    .await;
    assert_eq!(counts.len(), 10, "{counts:?}");
    assert!(counts.values().all(|count| *count == 100), "{counts:?}");

    // Caps: 120 a day each, 1,200 in all; 300 more leads overflow to the pool.
    let (counts, _) = post_spread(
        &clients,
        (0..500).map(|index| lead(&format!("b-{index}"))).collect(),
    )
    .await;
    assert_eq!(counts.get("-"), Some(&300), "{counts:?}");
    assert!(
        counts
            .iter()
            .filter(|(owner, _)| *owner != "-")
            .all(|(_, count)| *count == 20),
        "{counts:?}"
    );

    let (_, bodies) = post_spread(&clients, (0..100).map(|_| lead("one-and-only")).collect()).await;
    let ids: BTreeSet<&str> = bodies
        .iter()
        .filter_map(|body| body["lead"]["id"].as_str())
        .collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(
        bodies
            .iter()
            .filter(|body| body["duplicate"] == false)
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_lead_survives_kill_dash_nine() {
    let dir = tempfile::tempdir().expect("dir");
    let place = Place::Dir(dir.path().to_path_buf());
    let key = admin_key(&place);
    let mut server = Server::start(&place).await;
    let client = Client::new(&server.base, &key);
    client.setup_round_robin(4, json!({})).await;

    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let writers: Vec<_> = (0..8)
        .map(|writer| {
            let client = client.clone();
            let acknowledged = Arc::clone(&acknowledged);
            tokio::spawn(async move {
                for index in 0.. {
                    match client
                        .post("/api/v1/leads", &lead(&format!("crash-{writer}-{index}")))
                        .await
                    {
                        Ok((201, body)) => acknowledged
                            .lock()
                            .expect("lock")
                            .push(body["lead"]["id"].as_str().expect("id").to_owned()),
                        Ok((status, body)) => panic!("{status}: {body}"),
                        Err(_) => break,
                    }
                }
            })
        })
        .collect();
    while acknowledged.lock().expect("lock").len() < 300 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    server.kill();
    for writer in writers {
        writer.await.expect("writer");
    }
    let acknowledged = acknowledged.lock().expect("lock").clone();

    let server = Server::start(&place).await;
    let client = Client::new(&server.base, &key);
    for id in &acknowledged {
        let (status, lead) = client.get(&format!("/api/v1/leads/{id}")).await;
        assert_eq!(status, 200, "acknowledged lead {id} is gone");
        assert!(lead["owner_id"].is_string());
        let (_, decisions) = client.get(&format!("/api/v1/leads/{id}/decisions")).await;
        assert_eq!(
            decisions["items"].as_array().map(Vec::len),
            Some(1),
            "{id} has its decision"
        );
    }
    // Rotation survived too: the next four leads still go to four different reps.
    let mut owners = BTreeSet::new();
    for index in 0..4 {
        let (_, body) = client
            .post("/api/v1/leads", &lead(&format!("after-{index}")))
            .await
            .expect("post");
        owners.insert(body["lead"]["owner_id"].as_str().expect("owner").to_owned());
    }
    assert_eq!(owners.len(), 4);
}

/// Every event of a kind in the outbox, by lead.
async fn events_by_lead(client: &Client, event: &str) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/events?event={event}&limit=500");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let (status, page) = client.get(&path).await;
        assert_eq!(status, 200, "{page}");
        for item in page["items"].as_array().expect("items") {
            *counts
                .entry(item["lead_id"].as_str().expect("lead").to_owned())
                .or_default() += 1;
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return counts,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_due_while_the_service_was_down_fire_once_after_it_starts() {
    let dir = tempfile::tempdir().expect("dir");
    let place = Place::Dir(dir.path().to_path_buf());
    let key = admin_key(&place);
    let mut server = Server::start(&place).await;
    let client = Client::new(&server.base, &key);
    client.setup_round_robin(3, json!({})).await;
    let day = json!(["00:00-24:00"]);
    let (status, body) = client
        .post(
            "/api/v1/calendars",
            &json!({"id": "always", "name": "24/7", "time_zone": "UTC", "hours": {
                "mon": day, "tue": day, "wed": day, "thu": day, "fri": day, "sat": day, "sun": day}}),
        )
        .await
        .expect("calendar");
    assert_eq!(status, 201, "{body}");
    let (status, body) = client
        .patch(
            "/api/v1/sla-policies/default",
            &json!({"calendar": "always", "steps": [
                {"after": "4s", "action": "remind"}, {"after": "5s", "action": "escalate"}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let created = std::time::Instant::now();
    let mut leads = Vec::new();
    for index in 0..20 {
        let (status, body) = client
            .post("/api/v1/leads", &lead(&format!("down-{index}")))
            .await
            .expect("lead");
        assert_eq!(status, 201, "{body}");
        leads.push(body["lead"]["id"].as_str().expect("id").to_owned());
    }
    server.kill();
    // Every timer falls due while nothing runs.
    tokio::time::sleep(std::time::Duration::from_secs(6).saturating_sub(created.elapsed())).await;

    let server = Server::start(&place).await;
    let client = Client::new(&server.base, &key);
    let started = std::time::Instant::now();
    loop {
        let escalations = events_by_lead(&client, "lead.sla_escalated").await;
        if escalations.len() == leads.len() {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "timers did not fire after the restart: {escalations:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // A few more ticks change nothing: each fired exactly once.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    for event in ["lead.sla_reminder", "lead.sla_escalated"] {
        let counts = events_by_lead(&client, event).await;
        assert_eq!(counts.len(), leads.len(), "{event}: {counts:?}");
        assert!(
            counts.values().all(|count| *count == 1),
            "{event}: {counts:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_in_flight_when_the_service_dies_goes_out_after_restart() {
    use std::sync::atomic::{AtomicBool, Ordering};

    // A receiver that records delivery ids and holds its first answer long enough for the
    // service to die waiting for it.
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let first = Arc::new(AtomicBool::new(true));
    let receiver = {
        let seen = Arc::clone(&seen);
        let first = Arc::clone(&first);
        axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap| {
                let seen = Arc::clone(&seen);
                let first = Arc::clone(&first);
                async move {
                    let id = headers
                        .get("x-leadroute-delivery")
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    seen.lock().expect("lock").push(id);
                    if first.swap(false, Ordering::SeqCst) {
                        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                    }
                    "ok"
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hook = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    let dir = tempfile::tempdir().expect("dir");
    let place = Place::Dir(dir.path().to_path_buf());
    let key = admin_key(&place);
    // A short time limit per send, so the lease of a dead sender runs out in 6 s.
    let env = [("LEADROUTE_NOTIFY_TIMEOUT_SECS", "2")];
    let mut server = Server::start_with(&place, &env).await;
    let client = Client::new(&server.base, &key);
    client.setup_round_robin(2, json!({})).await;
    let (status, body) = client
        .post(
            "/api/v1/channels",
            &json!({"id": "hook", "name": "Hook", "kind": "webhook", "url": hook, "secret": "s3cret",
                    "events": ["lead.assigned"]}),
        )
        .await
        .expect("channel");
    assert_eq!(status, 201, "{body}");
    let (status, _) = client
        .post("/api/v1/leads", &lead("in-flight-1"))
        .await
        .expect("lead");
    assert_eq!(status, 201);
    let started = std::time::Instant::now();
    while seen.lock().expect("lock").is_empty() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "never sent"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The service dies while the receiver has not answered.
    server.kill();

    let server = Server::start_with(&place, &env).await;
    let client = Client::new(&server.base, &key);
    let started = std::time::Instant::now();
    loop {
        let (_, sent) = client.get("/api/v1/deliveries?status=sent").await;
        if sent["items"]
            .as_array()
            .is_some_and(|items| items.len() == 1)
        {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "not delivered after the restart: {sent}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let ids = seen.lock().expect("lock").clone();
    assert_eq!(ids.len(), 2, "sent again after the restart: {ids:?}");
    assert_eq!(
        ids[0], ids[1],
        "with the same delivery id, for the receiver to drop"
    );
}

/// The service's own log, at its most verbose, through intake, errors, follow-up and a sign-in,
/// never holds a customer's phone number or email.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_never_holds_a_phone_number_or_an_email() {
    let dir = tempfile::tempdir().expect("dir");
    let place = Place::Dir(dir.path().to_path_buf());
    let key = admin_key(&place);
    let log = dir.path().join("server.log");
    let mut server = Server::start_logging(&place, &[("LEADROUTE_LOG", "trace")], Some(&log)).await;
    let client = Client::new(&server.base, &key);
    client.setup_round_robin(2, json!({})).await;
    let phones = ["13912345678", "13987654321"];
    let emails = [
        "wang.zong@customer-secret.example",
        "li@customer-secret.example",
    ];
    for (index, (phone, email)) in phones.iter().zip(emails).enumerate() {
        let (status, body) = client
            .post(
                "/api/v1/leads",
                &json!({"external_id": format!("log-{index}"), "name": "王总", "phone": phone, "email": email}),
            )
            .await
            .expect("lead");
        assert_eq!(status, 201, "{body}");
        let id = body["lead"]["id"].as_str().expect("id").to_owned();
        client
            .post(
                &format!("/api/v1/leads/{id}/activities"),
                &json!({"kind": "call", "note": format!("called {phone}, wrote to {email}")}),
            )
            .await
            .expect("activity");
    }
    // Bad input quoting contact details, in the body and the query.
    client
        .post(
            "/api/v1/leads",
            &json!({"phone": "139123456789999", "email": "not an email"}),
        )
        .await
        .expect("bad lead");
    client.get(&format!("/api/v1/leads?q={}", phones[0])).await;
    client
        .post(
            "/api/v1/session",
            &json!({"username": "nobody", "password": emails[0]}),
        )
        .await
        .expect("sign-in");
    server.kill();
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        text.len() > 1000,
        "the log was written: {} bytes",
        text.len()
    );
    for secret in phones
        .iter()
        .chain(emails.iter())
        .chain(["139123456789999", "customer-secret"].iter())
    {
        assert!(!text.contains(secret), "the log holds {secret}");
    }
}

/// `LEADROUTE_SECRET_KEY` as an operator sets it: secrets stored before it was set are sealed
/// when the service starts with it, still sign correctly, and cannot be used under another key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_sealed_once_the_service_has_a_key() {
    const SECRET: &str = "s3cret-plain-text";
    // A receiver that accepts only a correctly signed message.
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(|headers: axum::http::HeaderMap, body: String| async move {
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or_default()
                    .to_owned()
            };
            let timestamp: i64 = header("x-leadroute-timestamp").parse().unwrap_or(0);
            let expected = server::notify::channel::webhook_signature(SECRET, timestamp, &body);
            if header("x-leadroute-signature") == expected {
                axum::http::StatusCode::OK
            } else {
                axum::http::StatusCode::UNAUTHORIZED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hook = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    let dir = tempfile::tempdir().expect("dir");
    let place = Place::Dir(dir.path().to_path_buf());
    let key = admin_key(&place);
    let stored = || async {
        let store = store::Store::open_data_dir(dir.path())
            .await
            .expect("store");
        let row = store
            .get_setting(store::Setting::Channels, "hook")
            .await
            .expect("read")
            .expect("the channel");
        store.close().await;
        row.document
    };
    let test_send = |base: String| {
        let key = key.clone();
        async move {
            Client::new(&base, &key)
                .post("/api/v1/channels/hook/test", &json!({}))
                .await
                .expect("test send")
        }
    };
    {
        // No key yet: the secret is stored as given (and the service warns).
        let server = Server::start(&place).await;
        let (status, body) = Client::new(&server.base, &key)
            .post(
                "/api/v1/channels",
                &json!({"id": "hook", "name": "Hook", "kind": "webhook", "url": hook,
                        "secret": SECRET, "events": ["channel.test"]}),
            )
            .await
            .expect("channel");
        assert_eq!(status, 201, "{body}");
    }
    assert!(stored().await.contains(SECRET));
    {
        // With a key: sealed at start, and the message is still signed with the secret.
        let server =
            Server::start_with(&place, &[("LEADROUTE_SECRET_KEY", "the operator's key")]).await;
        let (status, body) = test_send(server.base.clone()).await;
        assert_eq!(status, 200, "{body}");
    }
    let document = stored().await;
    assert!(
        !document.contains(SECRET) && document.contains("sealed:v1:"),
        "{document}"
    );
    {
        // Another key cannot open it: the send fails and says why.
        let server =
            Server::start_with(&place, &[("LEADROUTE_SECRET_KEY", "somebody else's")]).await;
        let (status, body) = test_send(server.base.clone()).await;
        assert_eq!(status, 502, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|message| message.contains("LEADROUTE_SECRET_KEY")),
            "{body}"
        );
    }
}

/// A client that sends half its headers is cut off after the header timeout; SIGTERM with a
/// console event stream open ends the process within seconds; a log written to a file has no
/// colour codes, and with `LEADROUTE_LOG_FORMAT=json` is one JSON object a line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_the_service_gracefully_and_slow_clients_are_cut_off() {
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let dir = tempfile::tempdir().expect("dir");
    let place = Place::Dir(dir.path().to_path_buf());
    let key = admin_key(&place);
    let log = dir.path().join("server.log");
    let mut server = Server::start_logging(
        &place,
        &[("LEADROUTE_LOG", "info"), ("LEADROUTE_LOG_FORMAT", "json")],
        Some(&log),
    )
    .await;
    let client = Client::new(&server.base, &key);
    let address = server.base.trim_start_matches("http://").to_owned();

    // Half a request: the headers never end.
    let mut slow = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");

    // A console session with its event stream open.
    let (status, body) = client
        .post(
            "/api/v1/users",
            &json!({"username": "boss", "role": "admin", "password": "correct horse battery"}),
        )
        .await
        .expect("user");
    assert_eq!(status, 201, "{body}");
    let signed_in = client
        .http
        .post(format!("{}/api/v1/session", server.base))
        .json(&json!({"username": "boss", "password": "correct horse battery"}))
        .send()
        .await
        .expect("sign in");
    let cookie = signed_in
        .headers()
        .get("set-cookie")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .expect("cookie")
        .to_owned();
    let stream = client
        .http
        .get(format!("{}/stream", server.base))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("event stream");
    assert_eq!(stream.status(), 200);
    assert!(stream.headers().get("content-type").is_some_and(|kind| {
        kind.to_str()
            .unwrap_or_default()
            .starts_with("text/event-stream")
    }));

    // The slow client is cut off after the header timeout, the server still serving.
    let mut buffer = [0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(15), slow.read(&mut buffer))
        .await
        .expect("the server closed the half-sent request within the header timeout");
    assert!(
        read.as_ref()
            .is_ok_and(|count| *count == 0 || buffer.starts_with(b"HTTP/1.1 408")),
        "{read:?}"
    );
    let (status, _) = client.get("/healthz").await;
    assert_eq!(status, 200);

    // SIGTERM: the process ends within a few seconds although the stream was open.
    let pid = server.child.id().to_string();
    let asked = Instant::now();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(sent.success());
    let exited = loop {
        if let Some(status) = server.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(10),
            "still running 10 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exited.success(), "{exited:?}");
    drop(stream);
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(text.contains("shutting down"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "colour codes in a log file: {text}"
    );
}

/// Two `serve` processes on one PostgreSQL: a key revoked through one stops on the other at
/// once, and an integration key's rate is one budget between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_key_revocation_and_rate_limits() {
    let Some(place) = fresh_postgres().await else {
        return;
    };
    let key = admin_key(&place);
    let env = [("LEADROUTE_INTAKE_RATE", "1")];
    let first = Server::start_with(&place, &env).await;
    let second = Server::start_with(&place, &env).await;
    let admin = Client::new(&first.base, &key);
    let (status, made) = admin
        .post(
            "/api/v1/keys",
            &json!({"name": "reader", "role": "reporting"}),
        )
        .await
        .expect("key");
    assert_eq!(status, 201, "{made}");
    let reader = made["key"].as_str().expect("key").to_owned();
    let id = made["id"].as_str().expect("id").to_owned();
    // The second process verifies (and caches) the key, then the first revokes it.
    let (status, _) = Client::new(&second.base, &reader)
        .get("/api/v1/leads")
        .await;
    assert_eq!(status, 200);
    let revoked = admin
        .http
        .delete(format!("{}/api/v1/keys/{id}", first.base))
        .bearer_auth(&key)
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoked.status().as_u16(), 204);
    let started = std::time::Instant::now();
    loop {
        let (status, _) = Client::new(&second.base, &reader)
            .get("/api/v1/leads")
            .await;
        if status == 401 {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_millis(400),
            "the second process still accepts the revoked key"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    // One a second with a burst of two, between both processes.
    let (status, made) = admin
        .post(
            "/api/v1/keys",
            &json!({"name": "form", "role": "integration"}),
        )
        .await
        .expect("key");
    assert_eq!(status, 201, "{made}");
    let integration = made["key"].as_str().expect("key").to_owned();
    let mut accepted = 0;
    for index in 0..8 {
        let base = if index % 2 == 0 {
            &first.base
        } else {
            &second.base
        };
        let (status, _) = Client::new(base, &integration)
            .post("/api/v1/leads", &json!({"phone": "12"}))
            .await
            .expect("post");
        if status != 429 {
            accepted += 1;
        }
    }
    assert!(accepted <= 3, "{accepted} got through a budget of about 2");
}
