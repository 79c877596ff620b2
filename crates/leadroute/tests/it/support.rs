//! Starting `leadroute` processes and talking to them over HTTP.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const BINARY: &str = env!("CARGO_BIN_EXE_leadroute");

/// Where a workspace lives: a data directory or a database URL.
#[derive(Clone, Debug)]
pub enum Place {
    Dir(std::path::PathBuf),
    Url(String),
}

impl Place {
    pub fn args(&self) -> Vec<String> {
        match self {
            Place::Dir(dir) => vec!["--data-dir".into(), dir.display().to_string()],
            Place::Url(url) => vec!["--database-url".into(), url.clone()],
        }
    }
}

pub fn postgres_url() -> Option<String> {
    let url = std::env::var("LEADROUTE_TEST_POSTGRES_URL")
        .ok()
        .filter(|url| !url.is_empty());
    if url.is_none() && std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("CI runs the PostgreSQL tests: set LEADROUTE_TEST_POSTGRES_URL");
    }
    url
}

/// A fresh PostgreSQL database, when one is configured.
pub async fn fresh_postgres() -> Option<Place> {
    let admin = postgres_url()?;
    Some(Place::Url(
        store::create_test_database(&admin)
            .await
            .expect("create database"),
    ))
}

pub fn run(args: &[String]) -> std::process::Output {
    Command::new(BINARY)
        .args(args)
        .env("LEADROUTE_LOG", "warn")
        .output()
        .expect("run leadroute")
}

/// `leadroute keys create --role admin`: the key is the last line.
pub fn admin_key(place: &Place) -> String {
    let mut args = vec![
        "keys".to_owned(),
        "create".to_owned(),
        "--role".to_owned(),
        "admin".to_owned(),
    ];
    args.extend(place.args());
    let output = run(&args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .last()
        .expect("key line")
        .trim()
        .to_owned()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A running `leadroute serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Server {
    pub async fn start(place: &Place) -> Server {
        Server::start_with(place, &[]).await
    }

    /// Starts with extra environment variables.
    pub async fn start_with(place: &Place, env: &[(&str, &str)]) -> Server {
        Server::start_logging(place, env, None).await
    }

    /// Starts with extra environment variables, its log written to `log` when given.
    pub async fn start_logging(
        place: &Place,
        env: &[(&str, &str)],
        log: Option<&std::path::Path>,
    ) -> Server {
        let port = free_port();
        let mut args = vec![
            "serve".to_owned(),
            "--listen".to_owned(),
            format!("127.0.0.1:{port}"),
        ];
        args.extend(place.args());
        let child = Command::new(BINARY)
            .args(&args)
            .env("LEADROUTE_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(match log {
                Some(path) => Stdio::from(std::fs::File::create(path).expect("log file")),
                None => Stdio::inherit(),
            })
            .spawn()
            .expect("spawn leadroute serve");
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let started = Instant::now();
        while client.get(format!("{base}/healthz")).send().await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "server did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Server { child, base }
    }

    /// Kills the process at once, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub key: String,
}

impl Client {
    pub fn new(base: &str, key: &str) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: base.to_owned(),
            key: key.to_owned(),
        }
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Result<(u16, Value)> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    pub async fn patch(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .patch(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await
            .expect("patch");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .send()
            .await
            .expect("get");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Ten reps in one round-robin team under a published rule set.
    pub async fn setup_round_robin(&self, reps: usize, caps: Value) {
        let mut members = Vec::new();
        for index in 0..reps {
            let id = format!("r{index:02}");
            let (status, body) = self
                .post(
                    "/api/v1/reps",
                    &json!({"id": id, "name": format!("Rep {index}"), "caps": caps}),
                )
                .await
                .expect("rep");
            assert_eq!(status, 201, "{body}");
            members.push(json!({"rep_id": id}));
        }
        let (status, body) = self
            .post(
                "/api/v1/teams",
                &json!({"id": "t", "name": "T", "members": members, "hours_policy": "any_time"}),
            )
            .await
            .expect("team");
        assert_eq!(status, 201, "{body}");
        let (status, draft) = self
            .post("/api/v1/rule-sets", &json!({"rules": [{"id": "all", "target": {"team": "t"}, "fallback": [{"pool": "public"}]}]}))
            .await
            .expect("rules");
        assert_eq!(status, 201, "{draft}");
        let (status, body) = self
            .post(
                &format!("/api/v1/rule-sets/{}/publish", draft["version"]),
                &json!({}),
            )
            .await
            .expect("publish");
        assert_eq!(status, 200, "{body}");
    }
}

pub fn lead(external_id: &str) -> Value {
    json!({"external_id": external_id, "name": "客户", "phone": "13800138000", "region": "华东"})
}
