//! Follow-up: SLA ladders driven by `tick(now)` with a test clock, activities, the status
//! lifecycle, the pool's claims under concurrency, and the leave policy — on SQLite and, when
//! configured, PostgreSQL.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::{Method, StatusCode};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::support::{Backend, TestApp, lead};

/// Open around the clock, so business time is wall time.
fn always() -> Value {
    let day = json!(["00:00-24:00"]);
    json!({"id": "always", "name": "24/7", "time_zone": "UTC", "hours": {
        "mon": day, "tue": day, "wed": day, "thu": day, "fri": day, "sat": day, "sun": day}})
}

/// Reps `r00…`, a round-robin team `t` managed by `boss` (not a member) under `policy`, and a
/// published rule sending every lead to the team.
async fn setup(app: &TestApp, reps: usize, team_extra: Value, policy: Value) {
    app.ok("/api/v1/calendars", &always(), StatusCode::CREATED)
        .await;
    app.ok("/api/v1/sla-policies", &policy, StatusCode::CREATED)
        .await;
    app.ok(
        "/api/v1/reps",
        &json!({"id": "boss", "name": "Manager"}),
        StatusCode::CREATED,
    )
    .await;
    let mut members = Vec::new();
    for index in 0..reps {
        let id = format!("r{index:02}");
        app.ok(
            "/api/v1/reps",
            &json!({"id": id, "name": format!("Rep {index}")}),
            StatusCode::CREATED,
        )
        .await;
        members.push(json!({"rep_id": id}));
    }
    let mut team = json!({"id": "t", "name": "Team", "members": members, "hours_policy": "any_time",
        "manager_id": "boss", "calendar": "always", "sla_policy": policy["id"]});
    for (key, value) in team_extra.as_object().expect("object") {
        team[key] = value.clone();
    }
    app.ok("/api/v1/teams", &team, StatusCode::CREATED).await;
    app.publish(json!({"rules": [{"id": "all", "target": {"team": "t"}}]}))
        .await;
}

async fn create(app: &TestApp, external_id: &str) -> Value {
    app.ok("/api/v1/leads", &lead(external_id), StatusCode::CREATED)
        .await["lead"]
        .clone()
}

async fn events(app: &TestApp, lead_id: &str) -> Vec<Value> {
    let (status, body) = app
        .get(&format!("/api/v1/events?lead_id={lead_id}&limit=500"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"].as_array().expect("items").clone()
}

fn names(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|event| event["event"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn tick(app: &TestApp, at: DateTime<Utc>) -> usize {
    app.state.router.tick(at).await.expect("tick")
}

async fn get_lead(app: &TestApp, id: &str) -> Value {
    let (status, lead) = app.get(&format!("/api/v1/leads/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{lead}");
    lead
}

fn ladder(hop_limit: u32) -> Value {
    json!({"id": "fast", "name": "Fast", "calendar": "always", "hop_limit": hop_limit, "steps": [
        {"after": "1h", "action": "remind"},
        {"after": "2h", "action": "escalate"},
        {"after": "3h", "action": "reclaim"}]})
}

async fn the_ladder_reclaims_away_from_every_previous_owner(app: TestApp) {
    setup(&app, 3, json!({}), ladder(2)).await;
    let lead = create(&app, "ladder-1").await;
    let id = lead["id"].as_str().expect("id").to_owned();
    let first = lead["owner_id"].as_str().expect("owner").to_owned();
    assert_eq!(lead["follow_up"]["sla_policy"], json!("fast"));
    let start = Utc::now();
    let (_, timers) = app.get(&format!("/api/v1/leads/{id}/timers")).await;
    assert_eq!(
        timers["items"].as_array().map(Vec::len),
        Some(3),
        "{timers}"
    );

    assert_eq!(tick(&app, start + Duration::minutes(30)).await, 0);
    assert_eq!(tick(&app, start + Duration::minutes(61)).await, 1);
    assert_eq!(
        tick(&app, start + Duration::minutes(61)).await,
        0,
        "idempotent"
    );
    assert_eq!(tick(&app, start + Duration::minutes(121)).await, 1);
    let seen = events(&app, &id).await;
    assert_eq!(
        names(&seen),
        ["lead.assigned", "lead.sla_reminder", "lead.sla_escalated"]
    );
    assert_eq!(seen[1]["recipients"], json!([first]));
    assert_eq!(seen[2]["recipients"], json!([first, "boss"]));

    // Reclaim: to someone who never had it, twice, then the hop limit sends it to the pool.
    let mut owners = vec![first.clone()];
    let mut at = start + Duration::minutes(181);
    for hop in 1..=2 {
        assert!(tick(&app, at).await >= 1);
        let lead = get_lead(&app, &id).await;
        let owner = lead["owner_id"].as_str().expect("new owner").to_owned();
        assert!(!owners.contains(&owner), "hop {hop}: back to {owner}");
        assert_eq!(lead["follow_up"]["hops"], json!(hop));
        assert_eq!(lead["follow_up"]["previous_owners"], json!(owners));
        owners.push(owner);
        // The new owner's ladder runs from the reclaim.
        at += Duration::minutes(181);
    }
    assert!(tick(&app, at).await >= 1);
    let lead = get_lead(&app, &id).await;
    assert_eq!(lead["owner_id"], Value::Null);
    assert_eq!(lead["pool_id"], json!("public"));
    let seen = events(&app, &id).await;
    let last = seen.last().expect("event");
    assert_eq!(last["event"], json!("lead.returned_to_pool"));
    assert_eq!(last["payload"]["reason"], json!("hop_limit"));
    assert!(
        last["recipients"]
            .as_array()
            .expect("recipients")
            .contains(&json!("boss")),
        "the manager is told: {last}"
    );
    assert_eq!(
        names(&seen)
            .iter()
            .filter(|name| *name == "lead.reclaimed")
            .count(),
        2
    );
    let (_, decisions) = app.get(&format!("/api/v1/leads/{id}/decisions")).await;
    let kinds: Vec<&str> = decisions["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|item| item["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["pool", "reclaim", "reclaim", "route"]);
    // Nothing is left to fire, however late.
    assert_eq!(tick(&app, at + Duration::days(30)).await, 0);
}

#[tokio::test]
async fn the_ladder_reclaims_away_from_every_previous_owner_on_sqlite() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    the_ladder_reclaims_away_from_every_previous_owner(app).await;
}

#[tokio::test]
async fn the_ladder_reclaims_away_from_every_previous_owner_on_postgres() {
    if let Some(app) = TestApp::without_clock(Backend::Postgres).await {
        the_ladder_reclaims_away_from_every_previous_owner(app).await;
    }
}

#[tokio::test]
async fn an_activity_stops_the_ladder_and_a_callback_reminds() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    let policy = json!({"id": "fast", "name": "Fast", "calendar": "always",
        "steps": [{"after": "1h", "action": "remind"}, {"after": "2h", "action": "reclaim"}],
        "cadence": {"recycle_after": "10d", "warn_before": "2d"}});
    setup(&app, 2, json!({}), policy).await;
    let lead = create(&app, "activity-1").await;
    let id = lead["id"].as_str().expect("id").to_owned();
    let owner = lead["owner_id"].as_str().expect("owner").to_owned();
    let start = Utc::now();

    // Someone else's note does not stop the owner's clock.
    let other = if owner == "r00" { "r01" } else { "r00" };
    let (status, body) = app
        .post(
            &format!("/api/v1/leads/{id}/activities"),
            &json!({"kind": "note", "rep_id": other, "note": "saw this one"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["activity"]["first_response"], json!(false));

    let callback = start + Duration::days(3);
    let (status, body) = app
        .post(
            &format!("/api/v1/leads/{id}/activities"),
            &json!({"kind": "call", "outcome": "reached", "note": "wants a quote",
                    "next_follow_up_at": callback.to_rfc3339()}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["activity"]["first_response"], json!(true));
    assert_eq!(body["lead"]["status"], json!("contacted"));
    assert!(body["lead"]["follow_up"]["first_response_at"].is_string());
    let (_, timers) = app.get(&format!("/api/v1/leads/{id}/timers")).await;
    let kinds: Vec<&str> = timers["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|timer| timer["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["callback", "recycle_warning", "recycle"]);

    // The ladder's hours pass without a reminder or a reclaim.
    tick(&app, start + Duration::hours(5)).await;
    assert_eq!(get_lead(&app, &id).await["owner_id"], json!(owner));
    assert_eq!(names(&events(&app, &id).await), ["lead.assigned"]);

    tick(&app, callback + Duration::seconds(1)).await;
    // The cadence waits for the callback: warning 8 days after it, recycle 10.
    tick(&app, callback + Duration::days(8) + Duration::seconds(1)).await;
    assert_eq!(get_lead(&app, &id).await["owner_id"], json!(owner));
    tick(&app, callback + Duration::days(10) + Duration::seconds(1)).await;
    let lead = get_lead(&app, &id).await;
    assert_eq!(lead["owner_id"], Value::Null);
    assert_eq!(lead["pool_id"], json!("public"));
    assert_eq!(lead["status"], json!("contacted"), "the work done stays");
    assert_eq!(
        names(&events(&app, &id).await),
        [
            "lead.assigned",
            "lead.follow_up_due",
            "lead.recycle_warning",
            "lead.returned_to_pool"
        ]
    );

    let (_, stats) = app.get("/api/v1/stats?by=rep").await;
    let mine = stats["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|row| row["key"] == json!(owner))
        .cloned()
        .expect("the owner's stats");
    assert_eq!(mine["responded"], json!(1));

    let (status, body) = app
        .post(
            &format!("/api/v1/leads/{id}/activities"),
            &json!({"kind": "fax"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], json!("kind"));
    let (status, body) = app
        .post(
            &format!("/api/v1/leads/{id}/activities"),
            &json!({"kind": "call", "next_follow_up_at": "2001-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], json!("next_follow_up_at"));
}

#[tokio::test]
async fn outcomes_need_their_details_and_feed_the_statistics() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    setup(&app, 1, json!({}), ladder(3)).await;
    let id = create(&app, "won-1").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let path = format!("/api/v1/leads/{id}");
    let (status, body) = app.patch(&path, &json!({"status": "won"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], json!("amount"));
    let (status, body) = app.patch(&path, &json!({"status": "lost"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], json!("lost_reason"));
    let (status, body) = app
        .patch(&path, &json!({"status": "contacted", "amount": 5}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = app.patch(&path, &json!({"status": "new"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], json!("illegal_transition"));

    let (status, body) = app
        .patch(&path, &json!({"status": "won", "amount": 88000}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["amount"], json!(88000.0));
    let (_, timers) = app.get(&format!("{path}/timers")).await;
    assert_eq!(timers["items"], json!([]), "a closed lead has no clocks");
    assert_eq!(
        names(&events(&app, &id).await),
        ["lead.assigned", "lead.won"]
    );
    let (status, _) = app
        .patch(
            &path,
            &json!({"status": "lost", "lost_reason": "changed mind"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "a closed lead stays closed");

    // Feedback, also from a survey tool's integration key.
    let survey = app.key(server::auth::Role::Integration).await;
    let (status, body) = app
        .send(
            Method::POST,
            &format!("{path}/feedback"),
            Some(&json!({"kind": "nps", "score": 9})),
            Some(&survey),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = app
        .post(
            &format!("{path}/feedback"),
            &json!({"kind": "csat", "score": 6}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], json!("score"));
    let (status, _) = app.send(Method::GET, &path, None, Some(&survey)).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "integration keys cannot read leads"
    );

    // The test lead has no source; rep, rule and segment each count the win once.
    for by in ["rep", "rule", "segment"] {
        let (status, stats) = app.get(&format!("/api/v1/stats?by={by}")).await;
        assert_eq!(status, StatusCode::OK);
        let won: i64 = stats["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|row| row["won"].as_i64())
            .sum();
        assert_eq!(won, 1, "{by}: {stats}");
    }
    let (_, stats) = app.get("/api/v1/stats?by=rep").await;
    assert_eq!(stats["items"][0]["key"], json!("r00"));
    assert_eq!(stats["items"][0]["conversion"], json!(1.0));
    assert_eq!(stats["items"][0]["feedback"], json!(0.9));
}

/// A pool `north` that leads are routed into, with limits.
async fn pool_setup(app: &TestApp, reps: usize, caps: Value) {
    setup(app, reps, json!({}), ladder(3)).await;
    for index in 0..reps {
        let (status, body) = app
            .patch(&format!("/api/v1/reps/r{index:02}"), &json!({"caps": caps}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    app.ok(
        "/api/v1/pools",
        &json!({"id": "north", "name": "华北公海", "teams": ["t"], "claims_per_day": 2,
                "cooldown": "7d", "touch_within": "2h",
                "protection": {"initial": "3d", "extend": "1d", "max": "5d"}}),
        StatusCode::CREATED,
    )
    .await;
    app.publish(json!({"rules": [{"id": "to-pool", "target": {"pool": "north"}}]}))
        .await;
}

async fn claim(app: &TestApp, lead: &str, rep: &str) -> (StatusCode, Value) {
    app.post(
        &format!("/api/v1/leads/{lead}/claim"),
        &json!({"rep_id": rep}),
    )
    .await
}

/// Sends every `(lead, rep)` claim at once; counts the answers: `won`, or the refusal's code.
async fn claim_at_once(
    app: &Arc<TestApp>,
    attempts: Vec<(String, String)>,
) -> BTreeMap<String, usize> {
    let tasks: Vec<_> = attempts
        .into_iter()
        .map(|(lead, rep)| {
            let app = Arc::clone(app);
            tokio::spawn(async move { claim(&app, &lead, &rep).await })
        })
        .collect();
    let mut codes = BTreeMap::new();
    for task in tasks {
        let (status, body) = task.await.expect("task");
        let code = if status == StatusCode::OK {
            "won".to_owned()
        } else {
            assert_eq!(status, StatusCode::CONFLICT, "{body}");
            body["error"]["code"].as_str().expect("code").to_owned()
        };
        *codes.entry(code).or_insert(0) += 1;
    }
    codes
}

async fn claims_hold_under_concurrency(app: TestApp) {
    pool_setup(&app, 10, json!({"max_open": 3})).await;
    let mut ids = Vec::new();
    for index in 0..40 {
        let lead = create(&app, &format!("pool-{index}")).await;
        assert_eq!(lead["pool_id"], json!("north"));
        ids.push(lead["id"].as_str().expect("id").to_owned());
    }
    let app = Arc::new(app);

    // 100 claims of one lead by ten reps at once: exactly one wins.
    let attempts: Vec<(String, String)> = (0..100)
        .map(|index| (ids[0].clone(), format!("r{:02}", index % 10)))
        .collect();
    let codes = claim_at_once(&app, attempts).await;
    assert_eq!(codes.get("won"), Some(&1), "{codes:?}");
    assert_eq!(codes.get("not_in_pool"), Some(&99), "{codes:?}");
    let winner_of_first = get_lead(&app, &ids[0]).await["owner_id"].clone();

    // One rep claiming 10 leads at once: the daily limit of 2 holds, counting the first lead
    // if they won it.
    let attempts = ids[1..11]
        .iter()
        .map(|lead| (lead.clone(), "r05".to_owned()))
        .collect();
    let codes = claim_at_once(&app, attempts).await;
    let already = usize::from(winner_of_first == json!("r05"));
    assert_eq!(
        codes.get("won").copied().unwrap_or(0) + already,
        2,
        "{codes:?}"
    );
    assert_eq!(
        codes.get("claim_limit").copied().unwrap_or(0),
        8 + already,
        "{codes:?}"
    );

    // The holding cap (3) is shared with routing: raise the claim limit and claim at once.
    let (status, body) = app
        .patch("/api/v1/pools/north", &json!({"claims_per_day": 100}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let attempts = ids[11..21]
        .iter()
        .map(|lead| (lead.clone(), "r07".to_owned()))
        .collect();
    let codes = claim_at_once(&app, attempts).await;
    let already = usize::from(winner_of_first == json!("r07"));
    assert_eq!(
        codes.get("won").copied().unwrap_or(0) + already,
        3,
        "{codes:?}"
    );
    assert_eq!(
        codes.get("holding_cap").copied().unwrap_or(0),
        7 + already,
        "{codes:?}"
    );
    let (_, held) = app.get("/api/v1/leads?owner_id=r07").await;
    assert_eq!(held["items"].as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn claims_hold_under_concurrency_on_sqlite() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    claims_hold_under_concurrency(app).await;
}

#[tokio::test]
async fn claims_hold_under_concurrency_on_postgres() {
    if let Some(app) = TestApp::without_clock(Backend::Postgres).await {
        claims_hold_under_concurrency(app).await;
    }
}

#[tokio::test]
async fn released_leads_cool_down_and_untouched_claims_return() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    pool_setup(&app, 3, json!({})).await;
    let first = create(&app, "claim-1").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let second = create(&app, "claim-2").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let outsider = app
        .ok(
            "/api/v1/reps",
            &json!({"id": "outsider", "name": "Not in the team"}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(outsider["id"], json!("outsider"));
    let (status, body) = claim(&app, &first, "outsider").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("not_pool_member"))
    );

    let (status, body) = claim(&app, &first, "r00").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["lead"]["owner_id"], json!("r00"));
    assert!(body["lead"]["follow_up"]["protected_until"].is_string());
    let (_, pool) = app.get("/api/v1/pool?rep_id=r00").await;
    assert_eq!(pool["allowance"]["claimed_today"], json!(1));
    assert_eq!(pool["allowance"]["pools"][0]["remaining"], json!(1));
    assert_eq!(pool["items"].as_array().map(Vec::len), Some(1));

    let (status, body) = app
        .post(
            &format!("/api/v1/leads/{first}/release"),
            &json!({"reason": "不是我的行业"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["lead"]["pool_id"], json!("north"));
    let (status, body) = claim(&app, &first, "r00").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("claim_cooldown"))
    );
    let (status, _) = claim(&app, &first, "r01").await;
    assert_eq!(status, StatusCode::OK);

    // A claimed lead nobody touches within 2 hours goes back; a touched one stays protected
    // until its protection ends.
    let (status, _) = claim(&app, &second, "r02").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .post(
            &format!("/api/v1/leads/{second}/activities"),
            &json!({"kind": "wechat"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let now = Utc::now();
    tick(&app, now + Duration::hours(3)).await;
    let untouched = get_lead(&app, &first).await;
    assert_eq!(untouched["pool_id"], json!("north"));
    let events = events(&app, &first).await;
    assert_eq!(
        events.last().expect("event")["payload"]["reason"],
        json!("not_touched")
    );
    assert_eq!(get_lead(&app, &second).await["owner_id"], json!("r02"));
    // Protection (3 days; an activity keeps at least a day) ends, and the lead goes back.
    tick(&app, now + Duration::days(2)).await;
    assert_eq!(get_lead(&app, &second).await["owner_id"], json!("r02"));
    tick(&app, now + Duration::days(3) + Duration::hours(1)).await;
    let expired = get_lead(&app, &second).await;
    assert_eq!(expired["pool_id"], json!("north"), "{expired}");

    // A manager assigns from the pool in one call, one result per lead.
    let (status, body) = app
        .post(
            "/api/v1/pool/assign",
            &json!({"lead_ids": [first, second, "missing"], "rep_id": "r00"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let statuses: Vec<i64> = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|item| item["status"].as_i64())
        .collect();
    assert_eq!(statuses, [200, 200, 404]);
}

#[tokio::test]
async fn a_rep_going_on_leave_hands_back_untouched_leads() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    setup(&app, 2, json!({"leave_policy": "hand_back"}), ladder(3)).await;
    let mut mine = Vec::new();
    for index in 0..4 {
        let lead = create(&app, &format!("leave-{index}")).await;
        if lead["owner_id"] == json!("r00") {
            mine.push(lead["id"].as_str().expect("id").to_owned());
        }
    }
    assert_eq!(mine.len(), 2);
    let (status, _) = app
        .post(
            &format!("/api/v1/leads/{}/activities", mine[0]),
            &json!({"kind": "call"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = app
        .send(
            Method::PUT,
            "/api/v1/reps/r00/status",
            Some(&json!({"status": "on_leave", "leave": {"from": "2020-01-01", "until": "2099-12-31"}})),
            Some(&app.key.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(get_lead(&app, &mine[0]).await["owner_id"], json!("r00"));
    let handed = get_lead(&app, &mine[1]).await;
    assert_eq!(handed["owner_id"], json!("r01"), "{handed}");
    let (_, decisions) = app
        .get(&format!("/api/v1/leads/{}/decisions", mine[1]))
        .await;
    assert_eq!(decisions["items"][0]["kind"], json!("hand_back"));
}

#[tokio::test]
async fn settings_are_checked_and_defaults_stay() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    let (status, body) = app
        .post(
            "/api/v1/calendars",
            &json!({"name": "Bad", "time_zone": "Mars/Olympus"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], json!("time_zone"));
    let (status, body) = app
        .post(
            "/api/v1/calendars",
            &json!({"name": "CN", "time_zone": "Asia/Shanghai", "holidays": ["2026-10-32"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], json!("holidays[0]"));
    let (status, body) = app
        .post(
            "/api/v1/sla-policies",
            &json!({"name": "P", "steps": [{"after": "1h", "action": "shout"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], json!("steps[0].action"));
    let (status, body) = app
        .post(
            "/api/v1/sla-policies",
            &json!({"name": "P", "steps": [{"after": "2h", "action": "remind"}, {"after": "1h", "action": "reclaim"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], json!("steps[1].after"));
    let (status, body) = app
        .post(
            "/api/v1/sla-policies",
            &json!({"name": "P", "calendar": "nope"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("unknown_calendar"))
    );
    let (status, body) = app
        .send(
            Method::DELETE,
            "/api/v1/sla-policies/default",
            None,
            Some(&app.key.clone()),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("default_setting"))
    );
    let (status, body) = app
        .post("/api/v1/teams", &json!({"name": "T", "calendar": "nope"}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("unknown_calendar"))
    );
    let (status, body) = app.get("/api/v1/sla-policies/default").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["steps"][2]["action"], json!("reclaim"));
    // A rule names an SLA policy that must exist.
    let (status, body) = app
        .post(
            "/api/v1/rule-sets",
            &json!({"rules": [{"id": "r", "target": {"pool": "public"}, "sla_policy": "nope"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        body["error"]["details"][0]["code"],
        json!("unknown_sla_policy")
    );
}

/// Two workers (as two instances would) tick the same database at once: every due timer fires
/// exactly once.
async fn two_instances_tick_without_firing_twice(app: TestApp) {
    setup(&app, 4, json!({}), ladder(3)).await;
    let batch: Vec<Value> = (0..300)
        .map(|index| lead(&format!("twin-{index}")))
        .collect();
    app.ok(
        "/api/v1/leads/batch",
        &json!({"leads": batch}),
        StatusCode::OK,
    )
    .await;
    let other = server::AppState::without_clock(app.state.store.clone());
    let at = Utc::now() + Duration::minutes(150);
    let mut tasks = Vec::new();
    for router in [app.state.router.clone(), other.router.clone()] {
        for _ in 0..3 {
            let router = router.clone();
            tasks.push(tokio::spawn(async move {
                let mut fired = 0;
                loop {
                    let count = router.tick(at).await.expect("tick");
                    fired += count;
                    if count == 0 {
                        return fired;
                    }
                }
            }));
        }
    }
    let mut fired = 0;
    for task in tasks {
        fired += task.await.expect("task");
    }
    // Remind and escalate for each of the 300 leads.
    assert_eq!(fired, 600);
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/api/v1/events?limit=500&cursor={cursor}"),
            None => "/api/v1/events?limit=500".to_owned(),
        };
        let (_, page) = app.get(&path).await;
        for event in page["items"].as_array().expect("items") {
            *counts
                .entry(event["event"].as_str().expect("event").to_owned())
                .or_default() += 1;
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(counts.get("lead.sla_reminder"), Some(&300), "{counts:?}");
    assert_eq!(counts.get("lead.sla_escalated"), Some(&300), "{counts:?}");
}

#[tokio::test]
async fn two_instances_tick_without_firing_twice_on_sqlite() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    two_instances_tick_without_firing_twice(app).await;
}

#[tokio::test]
async fn two_instances_tick_without_firing_twice_on_postgres() {
    if let Some(app) = TestApp::without_clock(Backend::Postgres).await {
        two_instances_tick_without_firing_twice(app).await;
    }
}

#[tokio::test]
async fn a_closed_lead_leaves_the_pool_and_the_hold_queue() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    pool_setup(&app, 2, json!({})).await;
    let pooled = create(&app, "closed-pooled").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (status, body) = app
        .patch(
            &format!("/api/v1/leads/{pooled}"),
            &json!({"status": "invalid"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["pool_id"], Value::Null);
    let (_, pool) = app.get("/api/v1/pool").await;
    assert_eq!(pool["items"], json!([]), "{pool}");
    let (status, body) = claim(&app, &pooled, "r00").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("lead_closed"))
    );

    // Nobody can take leads: they are held. A held lead closed stays closed after a sweep.
    app.publish(json!({"rules": []})).await;
    let held = create(&app, "closed-held").await;
    assert_eq!(held["held"], json!(true));
    let held = held["id"].as_str().expect("id").to_owned();
    let (status, _) = app
        .patch(
            &format!("/api/v1/leads/{held}"),
            &json!({"status": "invalid"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    app.publish(json!({"rules": [{"id": "all", "target": {"team": "t"}}]}))
        .await;
    app.state.router.sweep().await.expect("sweep");
    let lead = get_lead(&app, &held).await;
    assert_eq!(
        (
            lead["status"].clone(),
            lead["owner_id"].clone(),
            lead["held"].clone()
        ),
        (json!("invalid"), Value::Null, json!(false))
    );
}

/// The examples in docs/follow-up.md marked `<!-- POST path -->` are accepted, in order.
#[tokio::test]
async fn docs_examples_are_accepted() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    let text = include_str!("../../../../docs/follow-up.md");
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
    assert_eq!(posted, 3);
}

/// A call system syncing a call made earlier: the first response is when the call was made.
#[tokio::test]
async fn a_follow_up_synced_after_the_fact_counts_from_when_it_happened() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    let policy = json!({"id": "fast", "name": "Fast", "calendar": "always",
        "steps": [{"after": "1h", "action": "remind"}]});
    setup(&app, 2, json!({}), policy).await;
    let lead = create(&app, "synced-1").await;
    let id = lead["id"].as_str().expect("id").to_owned();
    let created =
        chrono::DateTime::parse_from_rfc3339(lead["created_at"].as_str().expect("created"))
            .expect("time")
            .with_timezone(&Utc);
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    let post = |body: Value| {
        let app = &app;
        let id = id.clone();
        async move {
            app.post(&format!("/api/v1/leads/{id}/activities"), &body)
                .await
        }
    };
    // Not before the lead came in, not in the future.
    for (at, why) in [
        (created - Duration::hours(1), "before the lead"),
        (Utc::now() + Duration::hours(1), "in the future"),
    ] {
        let (status, body) = post(json!({"kind": "call", "occurred_at": at.to_rfc3339()})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{why}: {body}");
        assert_eq!(body["error"]["field"], json!("occurred_at"));
    }
    // The call happened two seconds after the lead came in; it is logged later.
    let happened = created + Duration::seconds(2);
    let (status, body) = post(json!({"kind": "call", "outcome": "reached",
        "occurred_at": happened.to_rfc3339()}))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["activity"]["first_response"], json!(true));
    let first = chrono::DateTime::parse_from_rfc3339(
        body["lead"]["follow_up"]["first_response_at"]
            .as_str()
            .expect("first response"),
    )
    .expect("time")
    .with_timezone(&Utc);
    assert_eq!(first.timestamp_millis(), happened.timestamp_millis());
    // Two seconds less the moment between intake and assignment, whole seconds.
    assert_eq!(
        body["activity"]["response_secs"],
        json!(1),
        "from when it happened, not when it was logged"
    );
    // An older follow-up synced later does not move the last activity back.
    let (status, body) = post(json!({"kind": "note",
        "occurred_at": (created + Duration::milliseconds(1)).to_rfc3339()}))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let last = body["lead"]["follow_up"]["last_activity_at"]
        .as_str()
        .expect("last activity")
        .to_owned();
    let last = chrono::DateTime::parse_from_rfc3339(&last)
        .expect("time")
        .with_timezone(&Utc);
    assert_eq!(last.timestamp_millis(), happened.timestamp_millis());
}
