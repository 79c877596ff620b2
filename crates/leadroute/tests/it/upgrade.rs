//! Upgrades: a workspace an earlier release wrote (`tests/fixtures/`) is migrated by this code
//! and reads back whole: leads with their outcomes, decisions, activities, the rule set, the
//! team's settings, users and keys; new leads route on it.

use crate::support::{Client, Place, Server, run};

/// The admin key stored (hashed) in the fixture; it opens nothing else.
const FIXTURE_KEY: &str = "lr_c9d89303b222fbc5946c3da7b6ad8c0dbd26d5bd4b1e1208b567245169367894";
const WON: &str = "01a22d0c-8a3d-74c2-92e7-31112339ae9c";
const LOST: &str = "01a22d0c-8a30-74a9-98d0-488b5faf61ab";
const CALLED: &str = "01a22d0c-8a23-72ff-858b-37d796199a2b";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_from_2026_11_30_upgrades_and_reads_back() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/workspace-2026-11-30.db"
        ),
        data.join("leadroute.db"),
    )
    .expect("fixture");
    let place = Place::Dir(data);
    let mut args = vec!["migrate".to_owned()];
    args.extend(place.args());
    let output = run(&args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let server = Server::start(&place).await;
    let client = Client::new(&server.base, FIXTURE_KEY);
    let (status, leads) = client.get("/api/v1/leads?limit=100").await;
    assert_eq!(status, 200, "{leads}");
    assert_eq!(leads["items"].as_array().map(Vec::len), Some(20));
    let (_, won) = client.get(&format!("/api/v1/leads/{WON}")).await;
    assert_eq!(won["status"], "won", "{won}");
    assert_eq!(won["attributes"]["plan"], "pro", "{won}");
    let (_, lost) = client.get(&format!("/api/v1/leads/{LOST}")).await;
    assert_eq!(lost["status"], "lost", "{lost}");
    let (_, decisions) = client.get(&format!("/api/v1/leads/{WON}/decisions")).await;
    let explanation = decisions["items"]
        .as_array()
        .and_then(|items| items.last())
        .map(|decision| decision["explanation"]["zh"].to_string())
        .unwrap_or_default();
    assert!(explanation.contains("华东线索"), "{decisions}");
    let (_, activities) = client
        .get(&format!("/api/v1/leads/{CALLED}/activities"))
        .await;
    assert_eq!(activities["items"][0]["kind"], "call", "{activities}");
    let (_, team) = client.get("/api/v1/teams/t").await;
    assert_eq!(team["batch_policy"], "optimal", "{team}");
    let (_, rules) = client.get("/api/v1/rule-sets").await;
    assert!(rules.to_string().contains("fixture rules"), "{rules}");
    let signed = client
        .http
        .post(format!("{}/api/v1/session", server.base))
        .json(&serde_json::json!({"username": "boss", "password": "correct horse battery"}))
        .send()
        .await
        .expect("sign in");
    assert_eq!(signed.status().as_u16(), 200);
    // The state carried over: a new 华东 lead routes to the team.
    let (status, made) = client
        .post(
            "/api/v1/leads",
            &serde_json::json!({"company": "新客户", "region": "华东"}),
        )
        .await
        .expect("lead");
    assert_eq!(status, 201, "{made}");
    assert!(
        made["lead"]["owner_id"]
            .as_str()
            .is_some_and(|owner| owner.starts_with("r0")),
        "{made}"
    );
}
