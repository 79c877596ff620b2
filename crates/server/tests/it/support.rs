//! A test application on a fresh database, and requests against it without a network.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::Value;
use server::AppState;
use server::auth::{Role, new_key};
use store::Store;
use tower::ServiceExt as _;

pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub state: AppState,
    pub app: axum::Router,
    pub key: String,
    _dir: Option<tempfile::TempDir>,
}

/// The PostgreSQL server tests may use. On CI it must be there.
pub fn postgres_url() -> Option<String> {
    let url = std::env::var("LEADROUTE_TEST_POSTGRES_URL")
        .ok()
        .filter(|url| !url.is_empty());
    if url.is_none() && std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("CI runs the PostgreSQL tests: set LEADROUTE_TEST_POSTGRES_URL");
    }
    url
}

/// A fresh, migrated database of the backend, or `None` when PostgreSQL is not configured.
pub async fn fresh_store(backend: Backend) -> Option<(Store, Option<tempfile::TempDir>)> {
    let (url, dir) = empty_database(backend).await?;
    let store = Store::connect(&url).await.expect("connect");
    store.migrate().await.expect("migrate");
    Some((store, dir))
}

/// The URL of a new database on `backend` that no migration has touched yet (and the directory
/// that holds it on SQLite).
pub async fn empty_database(backend: Backend) -> Option<(String, Option<tempfile::TempDir>)> {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("leadroute.db").display());
            Some((url, Some(dir)))
        }
        Backend::Postgres => {
            let admin = postgres_url()?;
            let url = store::create_test_database(&admin)
                .await
                .expect("create database");
            Some((url, None))
        }
    }
}

impl TestApp {
    pub async fn new(backend: Backend) -> Option<TestApp> {
        let (store, dir) = fresh_store(backend).await?;
        Some(TestApp::with_store(store, dir).await)
    }

    pub async fn sqlite() -> TestApp {
        TestApp::new(Backend::Sqlite).await.expect("sqlite app")
    }

    pub async fn with_store(store: Store, dir: Option<tempfile::TempDir>) -> TestApp {
        TestApp::build(store, dir, true).await
    }

    /// An app whose clock the test drives with `tick(now)`: no background ticks or sweeps.
    pub async fn without_clock(backend: Backend) -> Option<TestApp> {
        let (store, dir) = fresh_store(backend).await?;
        Some(TestApp::build(store, dir, false).await)
    }

    async fn build(store: Store, dir: Option<tempfile::TempDir>, clock: bool) -> TestApp {
        let (key, row) = new_key("test", Role::Admin, 0);
        store.insert_api_key(&row).await.expect("key");
        let state = if clock {
            AppState::new(store)
        } else {
            AppState::without_clock(store)
        };
        TestApp {
            app: server::app(state.clone()),
            state,
            key,
            _dir: dir,
        }
    }

    /// An app without the clock that seals secrets with this key.
    pub async fn sealed(backend: Backend, passphrase: &str) -> Option<TestApp> {
        let (store, dir) = fresh_store(backend).await?;
        let (key, row) = new_key("test", Role::Admin, 0);
        store.insert_api_key(&row).await.expect("key");
        let state =
            AppState::without_clock(store).with_sealer(server::secrets::Sealer::new(passphrase));
        Some(TestApp {
            app: server::app(state.clone()),
            state,
            key,
            _dir: dir,
        })
    }

    /// Another app (a second instance) over the same state's store, with the same admin key.
    pub fn with_state(state: AppState, key: String) -> TestApp {
        TestApp {
            app: server::app(state.clone()),
            state,
            key,
            _dir: None,
        }
    }

    pub async fn key(&self, role: Role) -> String {
        let (key, row) = new_key("test", role, 0);
        self.state.store.insert_api_key(&row).await.expect("key");
        key
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(key) = key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        let body = match body {
            Some(json) => {
                request = request.header("content-type", "application/json");
                Body::from(serde_json::to_vec(json).expect("json"))
            }
            None => Body::empty(),
        };
        self.raw(request.body(body).expect("request")).await
    }

    pub async fn raw(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self.app.clone().oneshot(request).await.expect("response");
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(Method::GET, path, None, Some(&self.key.clone()))
            .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send(Method::POST, path, Some(body), Some(&self.key.clone()))
            .await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send(Method::PATCH, path, Some(body), Some(&self.key.clone()))
            .await
    }

    /// Posts and insists on a status.
    pub async fn ok(&self, path: &str, body: &Value, expected: StatusCode) -> Value {
        let (status, value) = self.post(path, body).await;
        assert_eq!(status, expected, "{path}: {value}");
        value
    }

    /// A team of `count` reps `r00…` under a published round-robin rule, with optional caps.
    pub async fn round_robin_team(&self, count: usize, caps: Value) {
        let mut members = Vec::new();
        for index in 0..count {
            let id = format!("r{index:02}");
            self.ok(
                "/api/v1/reps",
                &serde_json::json!({"id": id, "name": format!("Rep {index}"), "caps": caps}),
                StatusCode::CREATED,
            )
            .await;
            members.push(serde_json::json!({"rep_id": id}));
        }
        self.ok("/api/v1/teams", &serde_json::json!({"id": "t", "name": "Team", "members": members, "hours_policy": "any_time"}), StatusCode::CREATED).await;
        self.publish(serde_json::json!({"rules": [{"id": "all", "target": {"team": "t"}, "fallback": [{"pool": "public"}]}]}))
            .await;
    }

    /// Saves a rule-set document as a draft and publishes it; returns its version.
    pub async fn publish(&self, rules: Value) -> i64 {
        let draft = self
            .ok("/api/v1/rule-sets", &rules, StatusCode::CREATED)
            .await;
        let version = draft["version"].as_i64().expect("version");
        self.ok(
            &format!("/api/v1/rule-sets/{version}/publish"),
            &serde_json::json!({}),
            StatusCode::OK,
        )
        .await;
        version
    }
}

/// Posts `leads` in requests of `per_request` to `/api/v1/leads/batch`, all at once: each
/// lead's result (`created`, `duplicate`, …) and lead, in order.
pub async fn post_batches(
    app: &std::sync::Arc<TestApp>,
    leads: Vec<serde_json::Value>,
    per_request: usize,
) -> Vec<(String, serde_json::Value)> {
    let tasks: Vec<_> = leads
        .chunks(per_request)
        .map(|chunk| {
            let app = std::sync::Arc::clone(app);
            let body = serde_json::json!({ "leads": chunk });
            tokio::spawn(async move { app.post("/api/v1/leads/batch", &body).await })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        let (status, body) = task.await.expect("task");
        assert_eq!(status, StatusCode::OK, "{body}");
        for item in body["items"].as_array().expect("items") {
            let result = item["result"].as_str().expect("result").to_owned();
            results.push((result, item["lead"].clone()));
        }
    }
    results
}

pub fn lead(external_id: &str) -> Value {
    serde_json::json!({"external_id": external_id, "name": "测试客户", "phone": "13800138000", "region": "华东", "industry": "制造"})
}

/// A signed-in session: its cookie value and CSRF token.
#[derive(Debug, Clone)]
pub struct SessionKeys {
    pub cookie: String,
    pub csrf: String,
}

/// Creates a user for the rep and signs them in over the API.
pub async fn session_for_rep(app: &TestApp, rep_id: &str) -> SessionKeys {
    let username = format!("user-{rep_id}");
    app.ok(
        "/api/v1/users",
        &serde_json::json!({"username": username, "role": "rep", "rep_id": rep_id,
            "password": "correct horse battery"}),
        StatusCode::CREATED,
    )
    .await;
    sign_in(app, &username, "correct horse battery").await
}

/// Signs a user in over the API.
pub async fn sign_in(app: &TestApp, username: &str, password: &str) -> SessionKeys {
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/session")
        .header("content-type", "application/json")
        .body(Body::from(
            serde_json::json!({"username": username, "password": password}).to_string(),
        ))
        .expect("request");
    let response = app.app.clone().oneshot(request).await.expect("response");
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .and_then(|pair| pair.strip_prefix("leadroute_session="))
        .expect("session cookie")
        .to_owned();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let body: Value = serde_json::from_slice(&bytes).expect("json");
    SessionKeys {
        cookie,
        csrf: body["csrf_token"].as_str().expect("csrf").to_owned(),
    }
}

impl TestApp {
    /// A JSON request in a signed-in session, with its CSRF token.
    pub async fn send_as(
        &self,
        method: Method,
        path: &str,
        body: &Value,
        session: &SessionKeys,
    ) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("cookie", format!("leadroute_session={}", session.cookie))
            .header("x-csrf-token", &session.csrf)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .expect("request");
        self.raw(request).await
    }
}

/// A time as the API shows it.
pub fn time(at: chrono::DateTime<chrono::Utc>) -> String {
    server::leads::time(at.timestamp_micros())
}
