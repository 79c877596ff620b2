//! The simulator from outside: a replay of recorded history under the active rule set gives
//! every lead the owner production gave it; the strategies keep their promises in replay; a
//! lift is found where one rep truly converts better and not in noise; the API's job flow,
//! roles and bad input. On SQLite and PostgreSQL.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use server::auth::Role;

use crate::support::{Backend, TestApp, session_for_rep};

/// Starts a simulation over the API and waits for it to end; the finished job.
async fn run(app: &TestApp, request: &Value) -> Value {
    let job = app
        .ok("/api/v1/simulations", request, StatusCode::ACCEPTED)
        .await;
    let id = job["id"].as_str().expect("id").to_owned();
    wait(app, &id).await
}

async fn wait(app: &TestApp, id: &str) -> Value {
    for _ in 0..600 {
        let (status, job) = app.get(&format!("/api/v1/simulations/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{job}");
        if !matches!(job["status"].as_str(), Some("queued" | "running")) {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("simulation {id} did not finish");
}

fn rep<'a>(policy: &'a Value, id: &str) -> &'a Value {
    policy["reps"]
        .as_array()
        .and_then(|reps| reps.iter().find(|rep| rep["id"] == id))
        .unwrap_or_else(|| panic!("no rep {id} in {policy}"))
}

fn jsonl(rows: &[Value]) -> String {
    rows.iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Leads arriving every `minutes` from 2026-11-02 09:00 Shanghai (a Monday).
fn arrivals(count: usize, minutes: i64, extra: impl Fn(usize) -> Value) -> Vec<Value> {
    let start = chrono::DateTime::parse_from_rfc3339("2026-11-02T01:00:00Z").expect("time");
    (0..count)
        .map(|index| {
            let mut row = json!({
                "external_id": format!("h{index}"),
                "company": format!("客户{index}"),
                "region": "华东",
                "source": "web",
                "arrived_at": (start + chrono::Duration::minutes(minutes * index as i64)).to_rfc3339(),
            });
            if let (Value::Object(row), Value::Object(extra)) = (&mut row, extra(index)) {
                row.extend(extra);
            }
            row
        })
        .collect()
}

async fn replay_reproduces_production(app: TestApp) {
    // Three reps, one capped at 4 a day, under round robin with an overflow to the pool.
    for (id, caps) in [
        ("r00", json!({})),
        ("r01", json!({"max_per_day": 4})),
        ("r02", json!({})),
    ] {
        app.ok(
            "/api/v1/reps",
            &json!({"id": id, "name": id, "caps": caps}),
            StatusCode::CREATED,
        )
        .await;
    }
    app.ok(
        "/api/v1/teams",
        &json!({"id": "t", "name": "T", "hours_policy": "any_time",
            "members": [{"rep_id": "r00"}, {"rep_id": "r01"}, {"rep_id": "r02"}]}),
        StatusCode::CREATED,
    )
    .await;
    let active = app
        .publish(json!({"rules": [{"id": "all", "target": {"team": "t"}, "fallback": [{"pool": "public"}]}]}))
        .await;
    for index in 0..30 {
        app.ok(
            "/api/v1/leads",
            &json!({"external_id": format!("p{index}"), "company": "ACME", "source": if index % 2 == 0 { "web" } else { "expo" }}),
            StatusCode::CREATED,
        )
        .await;
    }
    // A draft that sends everything to r02.
    let draft = app
        .ok(
            "/api/v1/rule-sets",
            &json!({"rules": [{"id": "all", "target": {"reps": ["r02"]}}]}),
            StatusCode::CREATED,
        )
        .await["version"]
        .as_i64()
        .expect("version");

    let job = run(&app, &json!({"b": {"rule_set": active}, "days": 1})).await;
    assert_eq!(job["status"], "done", "{job}");
    let report = &job["report"];
    assert_eq!(report["window"]["leads"], 30, "{report}");
    assert_eq!(report["fidelity"]["compared"], 30, "{}", report["fidelity"]);
    assert_eq!(
        report["fidelity"]["same_owner"], 30,
        "A reproduces production: {}",
        report["fidelity"]
    );
    assert_eq!(report["moved"]["leads"], 0);
    assert_eq!(
        rep(&report["a"], "r01")["leads"],
        4,
        "the daily cap holds in replay"
    );
    assert!(rep(&report["a"], "r01")["cap_hits"].as_u64().expect("hits") > 0);
    assert_eq!(job["progress"]["done"], 30);

    let job = run(
        &app,
        &json!({"b": {"rule_set": draft}, "days": 1, "sample": 5}),
    )
    .await;
    let report = &job["report"];
    assert_eq!(report["fidelity"]["same_owner"], 30);
    assert_eq!(rep(&report["b"], "r02")["leads"], 30);
    assert_eq!(report["b"]["rules"][0]["routed"], 30);
    let moved = report["moved"]["leads"].as_u64().expect("moved");
    assert_eq!(
        moved,
        30 - rep(&report["a"], "r02")["leads"].as_u64().expect("leads")
    );
    let sample = report["moved"]["sample"].as_array().expect("sample");
    assert_eq!(sample.len(), 5);
    for moved in sample {
        assert_eq!(moved["b"]["rep_id"], "r02");
        assert_ne!(moved["a"]["rep_id"], "r02");
        assert!(
            moved["a"]["explanation"]["zh"]
                .as_str()
                .is_some_and(|text| !text.is_empty())
        );
        assert!(
            moved["b"]["explanation"]["en"]
                .as_str()
                .is_some_and(|text| !text.is_empty())
        );
    }
    // Same inputs, same report.
    let to = (chrono::Utc::now() + chrono::Duration::seconds(1)).to_rfc3339();
    let request =
        json!({"b": {"rule_set": draft}, "from": "2026-01-01T00:00:00Z", "to": to, "sample": 5});
    let first = run(&app, &request).await;
    let again = run(&app, &request).await;
    assert_eq!(again["report"], first["report"]);
    assert_eq!(first["report"]["moved"], report["moved"]);
}

async fn strategies_keep_their_promises_in_replay(app: TestApp) {
    for (id, weight, caps) in [
        ("r00", 1, json!({"max_per_day": 6})),
        ("r01", 2, json!({"max_per_day": 6})),
        ("r02", 3, json!({"max_per_day": 6})),
    ] {
        app.ok(
            "/api/v1/reps",
            &json!({"id": id, "name": id, "weight": weight, "caps": caps}),
            StatusCode::CREATED,
        )
        .await;
    }
    app.ok(
        "/api/v1/teams",
        &json!({"id": "t", "name": "T", "hours_policy": "any_time",
            "members": [{"rep_id": "r00"}, {"rep_id": "r01"}, {"rep_id": "r02"}]}),
        StatusCode::CREATED,
    )
    .await;
    app.publish(json!({"rules": [{"id": "rr", "target": {"team": "t"}}]}))
        .await;
    let weighted = json!({"rules": [{"id": "wrr", "target": {"team": "t"}, "strategy": {"type": "weighted_round_robin"}}]});
    // 12 leads a day for 5 days, then 18 a day for 2 days (more than the caps allow).
    let mut rows = Vec::new();
    for day in 0..7 {
        let per_day = if day < 5 { 12 } else { 24 };
        for index in 0..per_day {
            rows.push(json!({
                "external_id": format!("d{day}-{index}"),
                "company": "ACME",
                "arrived_at": format!("2026-11-{:02}T{:02}:{:02}:00+08:00", 2 + day, 9 + index / 6, (index % 6) * 10),
            }));
        }
    }
    let request =
        json!({"b": {"rule_set": weighted}, "file": {"format": "jsonl", "content": jsonl(&rows)}});
    let job = run(&app, &request).await;
    assert_eq!(job["status"], "done", "{job}");
    let report = &job["report"];
    // Round robin: max − min ≤ 1 over the days the caps did not bind.
    let leads = |policy: &Value, id: &str| rep(policy, id)["leads"].as_u64().expect("leads");
    let a: Vec<u64> = ["r00", "r01", "r02"]
        .iter()
        .map(|id| leads(&report["a"], id))
        .collect();
    assert!(
        a.iter().max().expect("max") - a.iter().min().expect("min") <= 1,
        "{a:?}"
    );
    // Caps never exceeded: six a day each at most, and the busy days hit them.
    for policy in [&report["a"], &report["b"]] {
        for id in ["r00", "r01", "r02"] {
            assert!(
                rep(policy, id)["busiest_day"].as_u64().expect("busiest") <= 6,
                "{policy}"
            );
        }
        assert!(policy["cap_hits"].as_u64().expect("hits") > 0);
        assert!(policy["held"]["held"].as_u64().expect("held") > 0);
    }
    // Weighted round robin is exact per cycle on the first days: 12 a day as 2 : 4 : 6.
    let request = json!({"b": {"rule_set": weighted}, "file": {"format": "jsonl", "content": jsonl(&rows[..60])}});
    let job = run(&app, &request).await;
    let report = &job["report"];
    let b: Vec<u64> = ["r00", "r01", "r02"]
        .iter()
        .map(|id| leads(&report["b"], id))
        .collect();
    assert_eq!(b, vec![10, 20, 30]);
    assert!(report["b"]["fairness"]["gini"].as_f64().expect("gini") < 1e-9);
    assert!(
        report["b"]["fairness"]["max_deviation"]
            .as_f64()
            .expect("deviation")
            < 1e-9
    );
    assert!(
        report["a"]["fairness"]["max_deviation"]
            .as_f64()
            .expect("deviation")
            > 0.1,
        "round robin ignores weights"
    );
}

/// Two reps; A shares leads evenly, B gives three quarters to r01. History has outcomes.
async fn outcome_significance(app: &TestApp, rate: impl Fn(usize) -> f64) -> Value {
    let mut rows = Vec::new();
    let mut state = 12345u64;
    let mut uniform = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    for (index, row) in arrivals(4000, 2, |_| json!({})).into_iter().enumerate() {
        let owner = index % 2;
        let won = uniform() < rate(owner);
        let mut row = row;
        row["owner"] = json!(format!("r0{owner}"));
        row["outcome"] = json!(if won { "won" } else { "lost" });
        row["amount"] = json!(if won { 1000 } else { 0 });
        rows.push(row);
    }
    // Reps r00 and r01 with weights 1 : 3 under weighted round robin in B.
    let request = json!({
        "b": {
            "rule_set": {"rules": [{"id": "skewed", "target": {"team": "t"}, "strategy": {"type": "weighted_round_robin"}}]},
            "roster": {"teams": {"t": {"members": [{"rep_id": "r00", "weight": 1}, {"rep_id": "r01", "weight": 3}]}}},
        },
        "file": {"format": "jsonl", "content": jsonl(&rows)},
    });
    let job = run(app, &request).await;
    assert_eq!(job["status"], "done", "{job}");
    job["report"]["outcomes"].clone()
}

async fn lift_is_found_only_where_it_is(app: TestApp) {
    app.round_robin_team(2, json!({})).await;
    let noise = outcome_significance(&app, |_| 0.10).await;
    assert_eq!(noise["difference"]["significant"], false, "{noise}");
    let lift = outcome_significance(&app, |rep| if rep == 1 { 0.20 } else { 0.05 }).await;
    assert_eq!(lift["difference"]["significant"], true, "{lift}");
    let difference = lift["difference"]["conversions"]
        .as_f64()
        .expect("difference");
    // B moves a quarter of 4,000 leads from a 5% rep to a 20% rep: about +150.
    assert!((100.0..200.0).contains(&difference), "{lift}");
    assert!(lift["difference"]["value"].as_f64().expect("value") > 0.0);
}

async fn the_api_checks_what_it_is_given(app: TestApp) {
    app.round_robin_team(2, json!({})).await;
    // An empty window says so.
    let (status, body) = app
        .post("/api/v1/simulations", &json!({"b": {"rule_set": "active"}}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "empty_window");
    app.ok(
        "/api/v1/leads",
        &json!({"external_id": "x1", "company": "ACME"}),
        StatusCode::CREATED,
    )
    .await;
    for (request, code, field) in [
        (
            json!({"b": {"rule_set": 99}}),
            "unknown_rule_set",
            "b.rule_set",
        ),
        (
            json!({"b": {"rule_set": "newest"}}),
            "invalid_value",
            "b.rule_set",
        ),
        (
            json!({"b": {"roster": {"reps": {"ghost": null}}}}),
            "unknown_rep",
            "b.roster.reps.ghost",
        ),
        (
            json!({"b": {"roster": {"reps": {"r00": {"weight": "heavy"}}}}}),
            "invalid_value",
            "b.roster.reps.r00.weight",
        ),
        (
            json!({"b": {"rule_set": {"rules": [{"id": "x", "target": {"team": "nope"}}]}}}),
            "invalid_rule_set",
            "b.rule_set.rules[0].target",
        ),
        (
            json!({"b": {}, "segment_by": "phone"}),
            "invalid_value",
            "segment_by",
        ),
        (json!({"b": {}, "days": 0}), "invalid_value", "days"),
        (
            json!({"b": {}, "file": {"format": "csv", "content": "a,b\n1,2\n"}}),
            "no_leads",
            "file",
        ),
    ] {
        let (status, body) = app.post("/api/v1/simulations", &request).await;
        assert!(status.is_client_error(), "{request}: {body}");
        assert_eq!(body["error"]["code"], code, "{request}: {body}");
        assert!(
            body["error"]["field"]
                .as_str()
                .is_some_and(|found| found.starts_with(field)),
            "{request}: {body}"
        );
    }
    let (status, body) = app
        .post("/api/v1/simulations", &json!({"b": {}, "sample": "x\u{0}"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // A file with bad rows reports them by line and replays the rest.
    let csv = "external_id,公司,region,created_at,outcome\n\
               c1,甲,华东,2026-11-02 09:00,won\n\
               c2,乙,华东,yesterday,lost\n\
               c3,丙,华东,2026-11-02 09:05,maybe\n\
               c4,丁,\u{0}华东,2026-11-02 09:06,lost\n\
               c5,戊,华东,2026-11-02 09:10,lost\n";
    let job = run(
        &app,
        &json!({"b": {}, "file": {"format": "csv", "content": csv}}),
    )
    .await;
    assert_eq!(job["status"], "done", "{job}");
    let window = &job["report"]["window"];
    assert_eq!(window["leads"], 2, "{window}");
    assert_eq!(window["bad_rows"], 3, "{window}");
    let lines: Vec<u64> = window["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|error| error["line"].as_u64().expect("line"))
        .collect();
    assert_eq!(lines, vec![3, 4, 5]);

    // Roles: managers may, reps and reporting keys may not; a manager sees only their reps.
    let reporting = app.key(Role::Reporting).await;
    let (status, _) = app
        .send(
            Method::POST,
            "/api/v1/simulations",
            Some(&json!({"b": {}})),
            Some(&reporting),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .send(Method::GET, "/api/v1/simulations", None, Some(&reporting))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let session = session_for_rep(&app, "r00").await;
    let (status, _) = app
        .send_as(
            Method::POST,
            "/api/v1/simulations",
            &json!({"b": {}, "days": 1}),
            &session,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Cancelling: once answered, the job ends cancelled.
    let mut rows = arrivals(20_000, 1, |_| json!({}));
    rows.truncate(20_000);
    let job = app
        .ok(
            "/api/v1/simulations",
            &json!({"b": {}, "file": {"format": "jsonl", "content": jsonl(&rows)}}),
            StatusCode::ACCEPTED,
        )
        .await;
    let id = job["id"].as_str().expect("id");
    let (status, body) = app
        .post(&format!("/api/v1/simulations/{id}/cancel"), &json!({}))
        .await;
    if status == StatusCode::ACCEPTED {
        assert_eq!(wait(&app, id).await["status"], "cancelled");
    } else {
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
    }
    let (status, body) = app
        .post(&format!("/api/v1/simulations/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = app.get("/api/v1/simulations/sim_nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, list) = app.get("/api/v1/simulations").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        list["items"]
            .as_array()
            .is_some_and(|items| items.len() >= 2)
    );
    assert!(list["items"][0].get("report").is_none());
}

async fn a_manager_sees_only_their_reps(app: TestApp) {
    app.round_robin_team(2, json!({})).await;
    app.ok(
        "/api/v1/reps",
        &json!({"id": "boss", "name": "Boss"}),
        StatusCode::CREATED,
    )
    .await;
    app.ok(
        "/api/v1/reps",
        &json!({"id": "other", "name": "Other"}),
        StatusCode::CREATED,
    )
    .await;
    app.ok(
        "/api/v1/teams",
        &json!({"id": "mine", "name": "Mine", "manager_id": "boss", "members": [{"rep_id": "r00"}]}),
        StatusCode::CREATED,
    )
    .await;
    for index in 0..6 {
        app.ok(
            "/api/v1/leads",
            &json!({"external_id": format!("m{index}"), "company": "ACME"}),
            StatusCode::CREATED,
        )
        .await;
    }
    app.ok(
        "/api/v1/users",
        &json!({"username": "boss", "role": "manager", "rep_id": "boss", "teams": ["mine"], "password": "correct horse battery"}),
        StatusCode::CREATED,
    )
    .await;
    let session = crate::support::sign_in(&app, "boss", "correct horse battery").await;
    let request = json!({"b": {"rule_set": {"rules": [{"id": "x", "target": {"reps": ["r01"]}}]}}, "days": 1});
    let (status, job) = app
        .send_as(Method::POST, "/api/v1/simulations", &request, &session)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let id = job["id"].as_str().expect("id").to_owned();
    wait(&app, &id).await;
    let (status, seen) = app
        .send_as(
            Method::GET,
            &format!("/api/v1/simulations/{id}"),
            &Value::Null,
            &session,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = seen["report"]["a"]["reps"]
        .as_array()
        .expect("reps")
        .iter()
        .filter_map(|rep| rep["id"].as_str())
        .collect();
    assert!(
        ids.contains(&"r00") && !ids.contains(&"r01") && !ids.contains(&"other"),
        "{ids:?}"
    );
    for moved in seen["report"]["moved"]["sample"]
        .as_array()
        .expect("sample")
    {
        assert!(
            moved["a"]["rep_id"] == "r00" || moved["b"]["rep_id"] == "r00",
            "{moved}"
        );
    }
    let (_, full) = app.get(&format!("/api/v1/simulations/{id}")).await;
    assert!(full["report"]["a"]["reps"].as_array().expect("reps").len() > ids.len());
}

/// A rep paused for part of the window: replay follows the audit log, so it reproduces every
/// owner; replaying with reps as configured now does not.
async fn recorded_availability_is_replayed(app: TestApp) {
    app.round_robin_team(3, json!({})).await;
    let post = |index: usize| {
        let app = &app;
        async move {
            app.ok(
                "/api/v1/leads",
                &json!({"external_id": format!("v{index}"), "company": "ACME"}),
                StatusCode::CREATED,
            )
            .await;
        }
    };
    for index in 0..6 {
        post(index).await;
    }
    let (status, body) = app
        .send(
            Method::PUT,
            "/api/v1/reps/r01/status",
            Some(&json!({"status": "paused"})),
            Some(&app.key.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for index in 6..12 {
        post(index).await;
    }
    let (status, body) = app
        .send(
            Method::PUT,
            "/api/v1/reps/r02/status",
            Some(&json!({"status": "paused"})),
            Some(&app.key.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for index in 12..16 {
        post(index).await;
    }
    let recorded = run(&app, &json!({"b": {}, "days": 1})).await;
    assert_eq!(
        recorded["report"]["fidelity"],
        json!({"compared": 16, "same_owner": 16}),
        "{}",
        recorded["report"]
    );
    let configured = run(
        &app,
        &json!({"b": {}, "days": 1, "availability": "configured"}),
    )
    .await;
    let same = configured["report"]["fidelity"]["same_owner"]
        .as_u64()
        .expect("same");
    assert!(
        same < 16,
        "with today's statuses only r00 takes leads: {}",
        configured["report"]["fidelity"]
    );
}

/// Rules that never match, or that an earlier rule always pre-empts, are named in the report.
async fn idle_and_shadowed_rules_are_named(app: TestApp) {
    app.round_robin_team(2, json!({})).await;
    let rows = arrivals(
        10,
        5,
        |index| json!({"industry": if index % 2 == 0 { "制造" } else { "金融" }}),
    );
    let draft = json!({"rules": [
        {"id": "east", "when": {"field": "region", "op": "equals", "value": "华东"}, "target": {"team": "t"}},
        {"id": "east-makers", "when": {"all": [{"field": "region", "op": "equals", "value": "华东"},
                                               {"field": "industry", "op": "equals", "value": "制造"}]},
         "target": {"reps": ["r01"]}},
        {"id": "tibet", "when": {"field": "region", "op": "equals", "value": "西藏"}, "target": {"team": "t"}},
    ]});
    let job = run(
        &app,
        &json!({"b": {"rule_set": draft}, "file": {"format": "jsonl", "content": jsonl(&rows)}}),
    )
    .await;
    let rules = &job["report"]["b"]["rules"];
    assert_eq!(rules[0]["routed"], 10, "{rules}");
    assert_eq!(
        (&rules[1]["shadowed"], &rules[1]["never_matched"]),
        (&json!(true), &json!(false)),
        "{rules}"
    );
    assert_eq!(
        (&rules[2]["shadowed"], &rules[2]["never_matched"]),
        (&json!(false), &json!(true)),
        "{rules}"
    );
}

/// The replay compares a team's backlog released in arrival order (A) with the same team set to
/// release it as one optimised batch (B): overnight leads wait for 09:00, and B gives the rep
/// with the fitting region and a cap of three the three valuable leads instead of the first
/// three.
async fn a_backlog_released_optimally_is_compared_in_replay(app: TestApp) {
    let hours = json!({"mon": ["09:00-18:00"], "tue": ["09:00-18:00"]});
    for (id, region, daily) in [
        ("east", "华东", Some(3)),
        ("south", "华南", None),
        ("north", "华北", None),
    ] {
        app.ok(
            "/api/v1/reps",
            &json!({"id": id, "name": id, "regions": [region], "caps": {"max_per_day": daily},
                    "time_zone": "Asia/Shanghai", "working_hours": hours}),
            StatusCode::CREATED,
        )
        .await;
    }
    app.ok(
        "/api/v1/teams",
        &json!({"id": "t", "name": "T", "members": [{"rep_id": "east"}, {"rep_id": "south"}, {"rep_id": "north"}]}),
        StatusCode::CREATED,
    )
    .await;
    app.publish(json!({"rules": [{"id": "all", "target": {"team": "t"}, "strategy": {"type": "best_match"}}]}))
        .await;
    // Six 华东 leads overnight: three small, then three large.
    let rows: Vec<Value> = (0..6)
        .map(|index| {
            json!({"external_id": format!("n{index}"), "company": "ACME", "region": "华东",
                   "score": if index < 3 { 1 } else { 90 },
                   "arrived_at": format!("2026-11-02T02:{:02}:00+08:00", index * 5)})
        })
        .collect();
    let request = json!({
        "b": {"roster": {"teams": {"t": {"batch_policy": "optimal"}}}},
        "file": {"format": "jsonl", "content": jsonl(&rows)},
        "availability": "configured",
    });
    let job = run(&app, &request).await;
    assert_eq!(job["status"], "done", "{job}");
    let report = &job["report"];
    for policy in [&report["a"], &report["b"]] {
        assert_eq!(rep(policy, "east")["leads"], json!(3), "{policy}");
    }
    assert_eq!(report["moved"]["leads"], json!(6), "{}", report["moved"]);
    let sample = report["moved"]["sample"].as_array().expect("sample");
    for moved in sample {
        let line = moved["line"].as_u64().expect("line");
        let (a, b) = (&moved["a"]["rep_id"], &moved["b"]["rep_id"]);
        if line <= 3 {
            assert_eq!(*a, json!("east"), "{moved}");
        } else {
            assert_eq!(*b, json!("east"), "{moved}");
        }
    }
}

/// The import case: six leads arrive at the same instant. A routes them one by one, B places
/// them as one optimised batch, and the report shows the difference.
async fn an_import_placed_optimally_is_compared_in_replay(app: TestApp) {
    for (id, region, daily) in [
        ("east", "华东", Some(3)),
        ("south", "华南", None),
        ("north", "华北", None),
    ] {
        app.ok(
            "/api/v1/reps",
            &json!({"id": id, "name": id, "regions": [region], "caps": {"max_per_day": daily}}),
            StatusCode::CREATED,
        )
        .await;
    }
    app.ok(
        "/api/v1/teams",
        &json!({"id": "t", "name": "T", "hours_policy": "any_time",
                "members": [{"rep_id": "east"}, {"rep_id": "south"}, {"rep_id": "north"}]}),
        StatusCode::CREATED,
    )
    .await;
    app.publish(json!({"rules": [{"id": "all", "target": {"team": "t"}, "strategy": {"type": "best_match"}}]}))
        .await;
    let rows: Vec<Value> = (0..6)
        .map(|index| {
            json!({"external_id": format!("i{index}"), "company": "ACME", "region": "华东",
                   "score": if index < 3 { 1 } else { 90 },
                   "arrived_at": "2026-11-02T10:00:00+08:00"})
        })
        .collect();
    let file = json!({"format": "jsonl", "content": jsonl(&rows)});
    let (status, refused) = app
        .post(
            "/api/v1/simulations",
            &json!({"b": {"arrivals": "fast"}, "file": file}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["error"]["field"], json!("b.arrivals"));
    let job = run(
        &app,
        &json!({"b": {"arrivals": "optimal"}, "file": file, "availability": "configured"}),
    )
    .await;
    assert_eq!(job["status"], "done", "{job}");
    let report = &job["report"];
    assert_eq!(report["moved"]["leads"], json!(6), "{}", report["moved"]);
    for moved in report["moved"]["sample"].as_array().expect("sample") {
        let line = moved["line"].as_u64().expect("line");
        let east = if line <= 3 {
            &moved["a"]["rep_id"]
        } else {
            &moved["b"]["rep_id"]
        };
        assert_eq!(*east, json!("east"), "{moved}");
    }
    // B's decisions say they were planned together.
    let explained = report["moved"]["sample"][0]["b"].to_string();
    assert!(explained.contains("批量最优分配"), "{explained}");
}

#[tokio::test]
async fn an_import_placed_optimally_is_compared_in_replay_sqlite() {
    an_import_placed_optimally_is_compared_in_replay(TestApp::sqlite().await).await;
}

#[tokio::test]
async fn an_import_placed_optimally_is_compared_in_replay_postgres() {
    if let Some(app) = TestApp::new(Backend::Postgres).await {
        an_import_placed_optimally_is_compared_in_replay(app).await;
    }
}

#[tokio::test]
async fn a_backlog_released_optimally_is_compared_in_replay_sqlite() {
    a_backlog_released_optimally_is_compared_in_replay(TestApp::sqlite().await).await;
}

#[tokio::test]
async fn a_backlog_released_optimally_is_compared_in_replay_postgres() {
    if let Some(app) = TestApp::new(Backend::Postgres).await {
        a_backlog_released_optimally_is_compared_in_replay(app).await;
    }
}

#[tokio::test]
async fn idle_and_shadowed_rules_are_named_sqlite() {
    idle_and_shadowed_rules_are_named(TestApp::sqlite().await).await;
}

#[tokio::test]
async fn idle_and_shadowed_rules_are_named_postgres() {
    if let Some(app) = TestApp::new(Backend::Postgres).await {
        idle_and_shadowed_rules_are_named(app).await;
    }
}

#[tokio::test]
async fn recorded_availability_is_replayed_sqlite() {
    recorded_availability_is_replayed(TestApp::sqlite().await).await;
}

#[tokio::test]
async fn recorded_availability_is_replayed_postgres() {
    if let Some(app) = TestApp::new(Backend::Postgres).await {
        recorded_availability_is_replayed(app).await;
    }
}

#[tokio::test]
async fn replay_reproduces_production_sqlite() {
    replay_reproduces_production(TestApp::sqlite().await).await;
}

#[tokio::test]
async fn replay_reproduces_production_postgres() {
    if let Some(app) = TestApp::new(Backend::Postgres).await {
        replay_reproduces_production(app).await;
    }
}

#[tokio::test]
async fn strategies_keep_their_promises_in_replay_sqlite() {
    strategies_keep_their_promises_in_replay(TestApp::sqlite().await).await;
}

#[tokio::test]
async fn strategies_keep_their_promises_in_replay_postgres() {
    if let Some(app) = TestApp::new(Backend::Postgres).await {
        strategies_keep_their_promises_in_replay(app).await;
    }
}

#[tokio::test]
async fn lift_is_found_only_where_it_is_sqlite() {
    lift_is_found_only_where_it_is(TestApp::sqlite().await).await;
}

#[tokio::test]
async fn lift_is_found_only_where_it_is_postgres() {
    if let Some(app) = TestApp::new(Backend::Postgres).await {
        lift_is_found_only_where_it_is(app).await;
    }
}

#[tokio::test]
async fn the_api_checks_what_it_is_given_sqlite() {
    the_api_checks_what_it_is_given(TestApp::sqlite().await).await;
}

#[tokio::test]
async fn the_api_checks_what_it_is_given_postgres() {
    if let Some(app) = TestApp::new(Backend::Postgres).await {
        the_api_checks_what_it_is_given(app).await;
    }
}

#[tokio::test]
async fn a_manager_sees_only_their_reps_sqlite() {
    a_manager_sees_only_their_reps(TestApp::sqlite().await).await;
}

#[tokio::test]
async fn a_manager_sees_only_their_reps_postgres() {
    if let Some(app) = TestApp::new(Backend::Postgres).await {
        a_manager_sees_only_their_reps(app).await;
    }
}
