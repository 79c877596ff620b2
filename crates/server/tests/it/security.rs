//! Accounts and authorisation: every endpoint against admin, manager, rep, integration,
//! reporting and anonymous callers; sessions (CSRF, idle and absolute expiry, logout); keys
//! (revocation, rotation); deactivation; lock-out across two instances; intake rate limits.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use server::auth::Role;

use crate::support::{Backend, TestApp, lead};

/// A signed-in console user: the cookie and the CSRF token.
#[derive(Clone, Debug)]
struct Session {
    cookie: String,
    csrf: String,
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<&Value>,
    key: Option<&str>,
    session: Option<&Session>,
    csrf: bool,
) -> (StatusCode, Value, axum::http::HeaderMap) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    if let Some(session) = session {
        request = request.header("cookie", format!("leadroute_session={}", session.cookie));
        if csrf {
            request = request.header("x-csrf-token", &session.csrf);
        }
    }
    let body = match body {
        Some(json) => {
            request = request.header("content-type", "application/json");
            Body::from(serde_json::to_vec(json).expect("json"))
        }
        None => Body::empty(),
    };
    let response =
        tower::ServiceExt::oneshot(app.app.clone(), request.body(body).expect("request"))
            .await
            .expect("response");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        headers,
    )
}

async fn login(
    app: &TestApp,
    username: &str,
    password: &str,
) -> (StatusCode, Option<Session>, Value) {
    let (status, body, headers) = call(
        app,
        Method::POST,
        "/api/v1/session",
        Some(&json!({"username": username, "password": password})),
        None,
        None,
        false,
    )
    .await;
    let cookie = headers
        .get("set-cookie")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .and_then(|pair| pair.strip_prefix("leadroute_session="))
        .map(str::to_owned);
    let session = cookie.map(|cookie| Session {
        cookie,
        csrf: body["csrf_token"].as_str().unwrap_or_default().to_owned(),
    });
    (status, session, body)
}

const PASSWORD: &str = "correct horse battery";

async fn user(app: &TestApp, username: &str, role: &str, rep: Option<&str>, teams: &[&str]) {
    app.ok(
        "/api/v1/users",
        &json!({"username": username, "role": role, "rep_id": rep, "teams": teams, "password": PASSWORD}),
        StatusCode::CREATED,
    )
    .await;
}

/// Two teams: `t` (r00, r01) and `u` (r02); leads A (r00), B (r01) in t, C (r02) in u.
async fn workspace(app: &TestApp) -> (String, String, String) {
    for (id, team) in [("r00", "t"), ("r01", "t"), ("r02", "u")] {
        let _ = team;
        app.ok(
            "/api/v1/reps",
            &json!({"id": id, "name": id}),
            StatusCode::CREATED,
        )
        .await;
    }
    app.ok(
        "/api/v1/teams",
        &json!({"id": "t", "name": "T", "members": [{"rep_id": "r00"}, {"rep_id": "r01"}], "hours_policy": "any_time"}),
        StatusCode::CREATED,
    )
    .await;
    app.ok(
        "/api/v1/teams",
        &json!({"id": "u", "name": "U", "members": [{"rep_id": "r02"}], "hours_policy": "any_time"}),
        StatusCode::CREATED,
    )
    .await;
    app.publish(json!({"rules": [
                {"id": "north", "when": {"field": "region", "op": "equals", "value": "华北"}, "target": {"team": "u"}},
                {"id": "rest", "target": {"team": "t"}}]})).await;
    let mut ids = Vec::new();
    for (external, region) in [("a", "华东"), ("b", "华东"), ("c", "华北")] {
        let mut body = lead(external);
        body["region"] = json!(region);
        body["email"] = json!(format!("{external}@customer.example"));
        let created = app.ok("/api/v1/leads", &body, StatusCode::CREATED).await;
        ids.push(created["lead"]["id"].as_str().expect("id").to_owned());
    }
    user(app, "manager", "manager", None, &["t"]).await;
    user(app, "rep0", "rep", Some("r00"), &[]).await;
    (ids[0].clone(), ids[1].clone(), ids[2].clone())
}

/// One row of the matrix: method, route pattern, the id in it, body, and the status for
/// admin, manager, rep, integration, reporting and anonymous callers.
type Row<'a> = (Method, &'a str, &'a str, Option<Value>, [u16; 6]);

#[derive(Clone, Copy, Debug)]
enum Who {
    Admin,
    Manager,
    Rep,
    Integration,
    Reporting,
    Anonymous,
}

const EVERYONE: [Who; 6] = [
    Who::Admin,
    Who::Manager,
    Who::Rep,
    Who::Integration,
    Who::Reporting,
    Who::Anonymous,
];

#[tokio::test]
async fn every_endpoint_answers_each_role_as_it_should() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    let (a, b, c) = workspace(&app).await;
    let integration = app.key(Role::Integration).await;
    let reporting = app.key(Role::Reporting).await;
    let (_, manager, _) = login(&app, "manager", PASSWORD).await;
    let (_, rep, _) = login(&app, "rep0", PASSWORD).await;
    let (manager, rep) = (manager.expect("manager session"), rep.expect("rep session"));

    let ask = |who: Who, method: Method, path: String, body: Option<Value>| {
        let app = &app;
        let (integration, reporting, manager, rep) = (&integration, &reporting, &manager, &rep);
        async move {
            let (key, session) = match who {
                Who::Admin => (Some(app.key.as_str()), None),
                Who::Manager => (None, Some(manager)),
                Who::Rep => (None, Some(rep)),
                Who::Integration => (Some(integration.as_str()), None),
                Who::Reporting => (Some(reporting.as_str()), None),
                Who::Anonymous => (None, None),
            };
            call(app, method, &path, body.as_ref(), key, session, true).await
        }
    };
    // (method, route pattern, the id in it, body, [admin, manager, rep, integration, reporting,
    // anonymous]). Rows with the same pattern check different objects.
    let bogus = json!({"status": "bogus"});
    let fax = json!({"kind": "fax"});
    let table: Vec<Row> = vec![
        (
            Method::POST,
            "/leads",
            "",
            Some(json!({"phone": "12"})),
            [422, 422, 403, 422, 403, 401],
        ),
        (
            Method::POST,
            "/leads/batch",
            "",
            Some(json!({"leads": "none"})),
            [400, 400, 403, 400, 403, 401],
        ),
        (
            Method::GET,
            "/leads",
            "",
            None,
            [200, 200, 200, 403, 200, 401],
        ),
        (
            Method::GET,
            "/leads/{id}",
            &a,
            None,
            [200, 200, 200, 403, 200, 401],
        ),
        (
            Method::GET,
            "/leads/{id}",
            &b,
            None,
            [200, 200, 404, 403, 200, 401],
        ),
        (
            Method::GET,
            "/leads/{id}",
            &c,
            None,
            [200, 404, 404, 403, 200, 401],
        ),
        (
            Method::PATCH,
            "/leads/{id}",
            &a,
            Some(bogus.clone()),
            [422, 422, 422, 403, 403, 401],
        ),
        (
            Method::PATCH,
            "/leads/{id}",
            &b,
            Some(bogus.clone()),
            [422, 422, 404, 403, 403, 401],
        ),
        (
            Method::PATCH,
            "/leads/{id}",
            &c,
            Some(bogus),
            [422, 404, 404, 403, 403, 401],
        ),
        (
            Method::GET,
            "/leads/{id}/decisions",
            &a,
            None,
            [200, 200, 200, 403, 200, 401],
        ),
        (
            Method::GET,
            "/leads/{id}/timers",
            &b,
            None,
            [200, 200, 404, 403, 200, 401],
        ),
        (
            Method::GET,
            "/leads/{id}/activities",
            &c,
            None,
            [200, 404, 404, 403, 200, 401],
        ),
        (
            Method::POST,
            "/leads/{id}/activities",
            &a,
            Some(fax.clone()),
            [422, 422, 422, 403, 403, 401],
        ),
        (
            Method::POST,
            "/leads/{id}/activities",
            &b,
            Some(fax),
            [422, 422, 404, 403, 403, 401],
        ),
        (
            Method::GET,
            "/leads/{id}/feedback",
            &a,
            None,
            [200, 200, 200, 403, 200, 401],
        ),
        (
            Method::POST,
            "/leads/{id}/feedback",
            &a,
            Some(json!({"kind": "nps", "score": 99})),
            [422, 422, 403, 422, 403, 401],
        ),
        (
            Method::POST,
            "/leads/{id}/assign",
            &b,
            Some(json!({"rep_id": "r01"})),
            [409, 409, 403, 403, 403, 401],
        ),
        (
            Method::POST,
            "/leads/{id}/assign",
            &c,
            Some(json!({"rep_id": "r02"})),
            [409, 404, 403, 403, 403, 401],
        ),
        (
            Method::POST,
            "/leads/{id}/claim",
            &b,
            Some(json!({"rep_id": "r01"})),
            [409, 409, 403, 403, 403, 401],
        ),
        (
            Method::POST,
            "/leads/{id}/release",
            &b,
            Some(json!({"pool_id": "nope"})),
            [422, 422, 404, 403, 403, 401],
        ),
        (
            Method::POST,
            "/route/explain",
            "",
            Some(json!({"lead": {"phone": "12"}})),
            [422, 422, 403, 403, 403, 401],
        ),
        (
            Method::GET,
            "/pool",
            "",
            None,
            [200, 200, 200, 403, 200, 401],
        ),
        (
            Method::POST,
            "/pool/assign",
            "",
            Some(json!({"lead_ids": [], "rep_id": "r00"})),
            [422, 422, 403, 403, 403, 401],
        ),
        (
            Method::POST,
            "/pool/distribute",
            "",
            Some(json!({"lead_ids": [], "team_id": "t"})),
            [422, 422, 403, 403, 403, 401],
        ),
        (
            Method::GET,
            "/events",
            "",
            None,
            [200, 200, 403, 403, 200, 401],
        ),
        (
            Method::GET,
            "/stats",
            "",
            None,
            [200, 200, 403, 403, 200, 401],
        ),
        (
            Method::GET,
            "/reports/dashboard",
            "",
            None,
            [200, 200, 403, 403, 200, 401],
        ),
        (
            Method::GET,
            "/reports/reps/{id}",
            "r00",
            None,
            [200, 200, 200, 403, 200, 401],
        ),
        (
            Method::GET,
            "/reports/reps/{id}",
            "r02",
            None,
            [200, 404, 404, 403, 200, 401],
        ),
        (
            Method::GET,
            "/reps",
            "",
            None,
            [200, 200, 403, 403, 200, 401],
        ),
        (
            Method::POST,
            "/reps",
            "",
            Some(json!({"name": ""})),
            [422, 403, 403, 403, 403, 401],
        ),
        (
            Method::GET,
            "/reps/{id}",
            "r00",
            None,
            [200, 200, 200, 403, 200, 401],
        ),
        (
            Method::GET,
            "/reps/{id}",
            "r01",
            None,
            [200, 200, 404, 403, 200, 401],
        ),
        (
            Method::PATCH,
            "/reps/{id}",
            "r01",
            Some(json!({"weight": -1})),
            [422, 422, 403, 403, 403, 401],
        ),
        (
            Method::PATCH,
            "/reps/{id}",
            "r02",
            Some(json!({"weight": -1})),
            [422, 404, 403, 403, 403, 401],
        ),
        (
            Method::DELETE,
            "/reps/{id}",
            "nobody",
            None,
            [404, 403, 403, 403, 403, 401],
        ),
        (
            Method::PUT,
            "/reps/{id}/status",
            "r00",
            Some(json!({"status": "bogus"})),
            [422, 422, 422, 403, 403, 401],
        ),
        (
            Method::PUT,
            "/reps/{id}/status",
            "r01",
            Some(json!({"status": "bogus"})),
            [422, 422, 404, 403, 403, 401],
        ),
        (
            Method::PUT,
            "/reps/{id}/status",
            "r02",
            Some(json!({"status": "bogus"})),
            [422, 404, 404, 403, 403, 401],
        ),
        (
            Method::GET,
            "/teams",
            "",
            None,
            [200, 200, 403, 403, 200, 401],
        ),
        (
            Method::POST,
            "/teams",
            "",
            Some(json!({"name": ""})),
            [422, 403, 403, 403, 403, 401],
        ),
        (
            Method::GET,
            "/teams/{id}",
            "t",
            None,
            [200, 200, 403, 403, 200, 401],
        ),
        (
            Method::PATCH,
            "/teams/{id}",
            "t",
            Some(json!({"name": ""})),
            [422, 422, 403, 403, 403, 401],
        ),
        (
            Method::PATCH,
            "/teams/{id}",
            "u",
            Some(json!({"name": ""})),
            [422, 404, 403, 403, 403, 401],
        ),
        (
            Method::DELETE,
            "/teams/{id}",
            "nope",
            None,
            [404, 403, 403, 403, 403, 401],
        ),
        (
            Method::GET,
            "/fields",
            "",
            None,
            [200, 200, 403, 403, 200, 401],
        ),
        (
            Method::POST,
            "/fields",
            "",
            Some(json!({"entity": "deal", "name": "x", "type": "text"})),
            [422, 403, 403, 403, 403, 401],
        ),
        (
            Method::DELETE,
            "/fields/{entity}/{name}",
            "lead/nope",
            None,
            [404, 403, 403, 403, 403, 401],
        ),
        (
            Method::GET,
            "/rule-sets",
            "",
            None,
            [200, 200, 403, 403, 200, 401],
        ),
        (
            Method::POST,
            "/rule-sets",
            "",
            Some(json!({"rules": "x"})),
            [400, 400, 403, 403, 403, 401],
        ),
        (
            Method::POST,
            "/rule-sets/validate",
            "",
            Some(json!({"rules": "x"})),
            [400, 400, 403, 403, 403, 401],
        ),
        (
            Method::GET,
            "/rule-sets/{id}",
            "1",
            None,
            [200, 200, 403, 403, 200, 401],
        ),
        (
            Method::POST,
            "/rule-sets/{id}/publish",
            "999",
            None,
            [404, 404, 403, 403, 403, 401],
        ),
        (
            Method::GET,
            "/simulations",
            "",
            None,
            [200, 200, 403, 403, 403, 401],
        ),
        (
            Method::POST,
            "/simulations",
            "",
            Some(json!({"b": {"rule_set": 999}})),
            [422, 422, 403, 403, 403, 401],
        ),
        (
            Method::GET,
            "/simulations/{id}",
            "sim_nope",
            None,
            [404, 404, 403, 403, 403, 401],
        ),
        (
            Method::POST,
            "/simulations/{id}/cancel",
            "sim_nope",
            None,
            [404, 404, 403, 403, 403, 401],
        ),
        (
            Method::GET,
            "/models",
            "",
            None,
            [200, 200, 403, 403, 200, 401],
        ),
        (
            Method::POST,
            "/models",
            "",
            Some(json!({})),
            [422, 422, 403, 403, 403, 401],
        ),
        (
            Method::GET,
            "/models/{id}",
            "999",
            None,
            [404, 404, 403, 403, 404, 401],
        ),
        (
            Method::POST,
            "/models/{id}/publish",
            "999",
            None,
            [404, 404, 403, 403, 403, 401],
        ),
        (
            Method::GET,
            "/settings/duplicates",
            "",
            None,
            [200, 200, 403, 403, 200, 401],
        ),
        (
            Method::PUT,
            "/settings/duplicates",
            "",
            Some(json!({"keys": ["phone"], "window": "soon"})),
            [422, 403, 403, 403, 403, 401],
        ),
        (
            Method::GET,
            "/duplicates",
            "",
            None,
            [200, 200, 403, 403, 200, 401],
        ),
        (
            Method::POST,
            "/duplicates/{id}/dismiss",
            "nope",
            None,
            [404, 404, 403, 403, 403, 401],
        ),
        (
            Method::POST,
            "/leads/{id}/merge",
            &b,
            Some(json!({"other_id": "nope"})),
            [404, 404, 403, 403, 403, 401],
        ),
        (
            Method::POST,
            "/leads/{id}/merge",
            &c,
            Some(json!({"other_id": b.clone()})),
            [200, 404, 403, 403, 403, 401],
        ),
        (
            Method::GET,
            "/models/schedule",
            "",
            None,
            [200, 200, 403, 403, 200, 401],
        ),
        (
            Method::PUT,
            "/models/schedule",
            "",
            Some(json!({"every": "1m"})),
            [422, 422, 403, 403, 403, 401],
        ),
        (
            Method::GET,
            "/calendars",
            "",
            None,
            [200, 200, 403, 403, 200, 401],
        ),
        (
            Method::POST,
            "/calendars",
            "",
            Some(json!({"name": "", "time_zone": "UTC"})),
            [422, 403, 403, 403, 403, 401],
        ),
        (
            Method::GET,
            "/calendars/{id}",
            "default",
            None,
            [200, 200, 403, 403, 200, 401],
        ),
        (
            Method::PATCH,
            "/calendars/{id}",
            "default",
            Some(json!({"time_zone": "Mars/Base"})),
            [422, 403, 403, 403, 403, 401],
        ),
        (
            Method::DELETE,
            "/calendars/{id}",
            "default",
            None,
            [409, 403, 403, 403, 403, 401],
        ),
        (
            Method::GET,
            "/sla-policies",
            "",
            None,
            [200, 200, 403, 403, 200, 401],
        ),
        (
            Method::POST,
            "/sla-policies",
            "",
            Some(json!({"name": ""})),
            [422, 403, 403, 403, 403, 401],
        ),
        (
            Method::GET,
            "/sla-policies/{id}",
            "default",
            None,
            [200, 200, 403, 403, 200, 401],
        ),
        (
            Method::PATCH,
            "/sla-policies/{id}",
            "default",
            Some(json!({"hop_limit": "x"})),
            [400, 403, 403, 403, 403, 401],
        ),
        (
            Method::DELETE,
            "/sla-policies/{id}",
            "default",
            None,
            [409, 403, 403, 403, 403, 401],
        ),
        (
            Method::GET,
            "/pools",
            "",
            None,
            [200, 200, 403, 403, 200, 401],
        ),
        (
            Method::POST,
            "/pools",
            "",
            Some(json!({"name": ""})),
            [422, 403, 403, 403, 403, 401],
        ),
        (
            Method::GET,
            "/pools/{id}",
            "public",
            None,
            [200, 200, 403, 403, 200, 401],
        ),
        (
            Method::PATCH,
            "/pools/{id}",
            "public",
            Some(json!({"cooldown": "soon"})),
            [422, 403, 403, 403, 403, 401],
        ),
        (
            Method::DELETE,
            "/pools/{id}",
            "nope",
            None,
            [404, 403, 403, 403, 403, 401],
        ),
        (
            Method::GET,
            "/channels",
            "",
            None,
            [200, 200, 403, 403, 200, 401],
        ),
        (
            Method::POST,
            "/channels",
            "",
            Some(json!({"name": "", "kind": "slack"})),
            [422, 403, 403, 403, 403, 401],
        ),
        (
            Method::GET,
            "/channels/{id}",
            "nope",
            None,
            [404, 404, 403, 403, 404, 401],
        ),
        (
            Method::PATCH,
            "/channels/{id}",
            "nope",
            Some(json!({})),
            [404, 403, 403, 403, 403, 401],
        ),
        (
            Method::DELETE,
            "/channels/{id}",
            "nope",
            None,
            [404, 403, 403, 403, 403, 401],
        ),
        (
            Method::POST,
            "/channels/{id}/test",
            "nope",
            None,
            [404, 403, 403, 403, 403, 401],
        ),
        (
            Method::GET,
            "/deliveries",
            "",
            None,
            [200, 200, 403, 403, 200, 401],
        ),
        (
            Method::POST,
            "/deliveries/{id}/retry",
            "nope",
            None,
            [404, 403, 403, 403, 403, 401],
        ),
        (
            Method::GET,
            "/intake-sources",
            "",
            None,
            [200, 200, 403, 403, 200, 401],
        ),
        (
            Method::POST,
            "/intake-sources",
            "",
            Some(json!({"name": "", "auth": "token", "mapping": {}})),
            [422, 403, 403, 403, 403, 401],
        ),
        (
            Method::GET,
            "/intake-sources/{id}",
            "nope",
            None,
            [404, 404, 403, 403, 404, 401],
        ),
        (
            Method::PATCH,
            "/intake-sources/{id}",
            "nope",
            Some(json!({})),
            [404, 403, 403, 403, 403, 401],
        ),
        (
            Method::DELETE,
            "/intake-sources/{id}",
            "nope",
            None,
            [404, 403, 403, 403, 403, 401],
        ),
        (
            Method::GET,
            "/intake-sources/{id}/log",
            "nope",
            None,
            [404, 404, 403, 403, 404, 401],
        ),
        (
            Method::GET,
            "/session",
            "",
            None,
            [403, 200, 200, 403, 403, 401],
        ),
        (
            Method::PUT,
            "/session/password",
            "",
            Some(json!({"current_password": "wrong", "new_password": "whatever long"})),
            [403, 401, 401, 403, 403, 401],
        ),
        (
            Method::GET,
            "/users",
            "",
            None,
            [200, 403, 403, 403, 403, 401],
        ),
        (
            Method::POST,
            "/users",
            "",
            Some(json!({"username": "", "role": "admin", "password": "x"})),
            [422, 403, 403, 403, 403, 401],
        ),
        (
            Method::GET,
            "/users/{id}",
            "nope",
            None,
            [404, 403, 403, 403, 403, 401],
        ),
        (
            Method::PATCH,
            "/users/{id}",
            "nope",
            Some(json!({})),
            [404, 403, 403, 403, 403, 401],
        ),
        (
            Method::POST,
            "/users/{id}/password",
            "nope",
            Some(json!({"password": "long enough password"})),
            [404, 403, 403, 403, 403, 401],
        ),
        (
            Method::GET,
            "/keys",
            "",
            None,
            [200, 403, 403, 403, 403, 401],
        ),
        (
            Method::POST,
            "/keys",
            "",
            Some(json!({"name": "", "role": "admin"})),
            [422, 403, 403, 403, 403, 401],
        ),
        (
            Method::DELETE,
            "/keys/{id}",
            "nope",
            None,
            [404, 403, 403, 403, 403, 401],
        ),
        (
            Method::POST,
            "/keys/{id}/rotate",
            "nope",
            None,
            [404, 403, 403, 403, 403, 401],
        ),
        (
            Method::GET,
            "/audit",
            "",
            None,
            [200, 403, 403, 403, 403, 401],
        ),
        // Changes last: an assignment out of the manager's teams, a reroute, signing out.
        (
            Method::POST,
            "/leads/{id}/assign",
            &a,
            Some(json!({"rep_id": "r02"})),
            [200, 403, 403, 403, 403, 401],
        ),
        // The admin's reroute leaves C held (team u has nobody else), and a manager sees held
        // leads: theirs to reroute.
        (
            Method::POST,
            "/leads/{id}/reroute",
            &c,
            None,
            [200, 200, 403, 403, 403, 401],
        ),
        (
            Method::DELETE,
            "/session",
            "",
            None,
            [204, 204, 204, 403, 403, 401],
        ),
    ];
    // Every operation in the OpenAPI document is in the table, but those that need no caller
    // (signing in, an intake delivery and Meta's handshake: `integrations.rs` tests those).
    let openapi = serde_json::to_value(server::openapi()).expect("openapi");
    let mut missing = Vec::new();
    for (path, item) in openapi["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("item").keys() {
            let pattern = path.trim_start_matches("/api/v1");
            let public = matches!(
                (method.as_str(), pattern),
                ("post", "/session" | "/intake/{source}") | ("get", "/intake/{source}")
            );
            let covered = table.iter().any(|(row_method, row_pattern, ..)| {
                row_method.as_str().eq_ignore_ascii_case(method) && *row_pattern == pattern
            });
            if !public && !covered {
                missing.push(format!("{method} {pattern}"));
            }
        }
    }
    assert!(missing.is_empty(), "not in the matrix: {missing:?}");
    let mut wrong = Vec::new();
    let mut after = Vec::new();
    for (method, pattern, id, body, expected) in &table {
        let path = format!(
            "/api/v1{}",
            pattern.replace("{id}", id).replace("{entity}/{name}", id)
        );
        if *method == Method::DELETE && *pattern == "/session" {
            // Signing out ends the sessions the rest of the test uses: last.
            after.push((method.clone(), path, body.clone(), *expected));
            continue;
        }
        for (index, who) in EVERYONE.iter().enumerate() {
            let (status, answer, _) = ask(*who, method.clone(), path.clone(), body.clone()).await;
            if status.as_u16() != expected[index] {
                wrong.push(format!(
                    "{method} {path} as {who:?}: {} (expected {}) {answer}",
                    status.as_u16(),
                    expected[index]
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // What each sees in lists, and whose contact details.
    let count = |who: Who| {
        let ask = &ask;
        async move {
            let (_, body, _) = ask(who, Method::GET, "/api/v1/leads".into(), None).await;
            body["items"].as_array().map_or(0, Vec::len)
        }
    };
    // Lead A went to r02 by hand above: it stays a lead of team t (so the manager still sees
    // it), and r00 has none left.
    assert_eq!(count(Who::Admin).await, 3);
    assert_eq!(count(Who::Manager).await, 2);
    assert_eq!(count(Who::Rep).await, 0);
    assert_eq!(count(Who::Reporting).await, 3);
    let (_, seen, _) = ask(
        Who::Reporting,
        Method::GET,
        format!("/api/v1/leads/{b}"),
        None,
    )
    .await;
    assert_eq!(
        seen["phone"],
        Value::Null,
        "reporting keys see no contact details"
    );
    assert_eq!(seen["email"], Value::Null);
    let (_, seen, _) = ask(
        Who::Manager,
        Method::GET,
        format!("/api/v1/leads/{b}"),
        None,
    )
    .await;
    assert_eq!(seen["email"], json!("b@customer.example"));
    for (method, path, body, expected) in after {
        for (index, who) in EVERYONE.iter().enumerate() {
            let (status, answer, _) = ask(*who, method.clone(), path.clone(), body.clone()).await;
            assert_eq!(
                status.as_u16(),
                expected[index],
                "{method} {path} as {who:?}: {answer}"
            );
        }
    }
}

#[tokio::test]
async fn a_rep_sees_their_own_contacts_but_not_the_pools() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    let (a, b, _) = workspace(&app).await;
    let (status, _) = app
        .post(&format!("/api/v1/leads/{b}/release"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, rep, _) = login(&app, "rep0", PASSWORD).await;
    let rep = rep.expect("session");
    let (_, mine, _) = call(
        &app,
        Method::GET,
        &format!("/api/v1/leads/{a}"),
        None,
        None,
        Some(&rep),
        false,
    )
    .await;
    assert_eq!(mine["phone"], json!("+8613800138000"));
    let (_, pool, _) = call(
        &app,
        Method::GET,
        "/api/v1/pool",
        None,
        None,
        Some(&rep),
        false,
    )
    .await;
    let waiting = &pool["items"][0];
    assert_eq!(waiting["id"], json!(b), "{pool}");
    assert_eq!(waiting["phone"], Value::Null);
    assert_eq!(waiting["email"], Value::Null);
    // Claiming it, as themselves, makes it theirs with its contact details.
    let (status, claimed, _) = call(
        &app,
        Method::POST,
        &format!("/api/v1/leads/{b}/claim"),
        Some(&json!({"rep_id": "r00"})),
        None,
        Some(&rep),
        true,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{claimed}");
    assert_eq!(claimed["lead"]["email"], json!("b@customer.example"));
}

#[tokio::test]
async fn sessions_need_csrf_and_end_on_logout_idle_and_age() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    workspace(&app).await;
    let (status, none, body) = login(&app, "rep0", "wrong password!").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(none.is_none());
    let (status, _, body) = login(&app, "nobody", PASSWORD).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!("bad_credentials"))
    );
    let (status, session, body) = login(&app, "rep0", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let session = session.expect("cookie");
    let (_, _, headers) = call(
        &app,
        Method::POST,
        "/api/v1/session",
        Some(&json!({"username": "rep0", "password": PASSWORD})),
        None,
        None,
        false,
    )
    .await;
    let cookie = headers
        .get("set-cookie")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert_eq!(
        headers.get("x-frame-options").map(|v| v.as_bytes()),
        Some(&b"DENY"[..])
    );

    let put_status = json!({"status": "paused"});
    let (status, body, _) = call(
        &app,
        Method::PUT,
        "/api/v1/reps/r00/status",
        Some(&put_status),
        None,
        Some(&session),
        false,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::FORBIDDEN, json!("csrf_failed"))
    );
    let (status, body, _) = call(
        &app,
        Method::PUT,
        "/api/v1/reps/r00/status",
        Some(&put_status),
        None,
        Some(&session),
        true,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, me, _) = call(
        &app,
        Method::GET,
        "/api/v1/session",
        None,
        None,
        Some(&session),
        false,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["user"]["username"], json!("rep0"));
    assert_eq!(me["csrf_token"], json!(session.csrf));

    // Logout ends it.
    let (status, _, _) = call(
        &app,
        Method::DELETE,
        "/api/v1/session",
        None,
        None,
        Some(&session),
        true,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = call(
        &app,
        Method::GET,
        "/api/v1/session",
        None,
        None,
        Some(&session),
        false,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Idle: nine hours without a request.
    let (_, idle, _) = login(&app, "rep0", PASSWORD).await;
    let idle = idle.expect("cookie");
    let hours_ago =
        |hours: i64| (chrono::Utc::now() - chrono::Duration::hours(hours)).timestamp_micros();
    app.state
        .store
        .touch_session(&server::auth::hash(&idle.cookie), hours_ago(9))
        .await
        .expect("touch");
    let (status, _, _) = call(
        &app,
        Method::GET,
        "/api/v1/session",
        None,
        None,
        Some(&idle),
        false,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "idle expiry");

    // Age: a session past its absolute end, however busy.
    let old = store::SessionRow {
        id_hash: server::auth::hash("old-session"),
        user_id: me["user"]["id"].as_str().expect("id").to_owned(),
        csrf_token: "x".into(),
        created_at: hours_ago(24 * 8),
        last_seen_at: hours_ago(0),
        expires_at: hours_ago(1),
    };
    app.state.store.insert_session(&old).await.expect("session");
    let aged = Session {
        cookie: "old-session".into(),
        csrf: "x".into(),
    };
    let (status, _, _) = call(
        &app,
        Method::GET,
        "/api/v1/session",
        None,
        None,
        Some(&aged),
        false,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "absolute expiry");

    // Password change: the old password stops working.
    let (_, fresh, _) = login(&app, "rep0", PASSWORD).await;
    let fresh = fresh.expect("cookie");
    let change = json!({"current_password": PASSWORD, "new_password": "another long password"});
    let (status, body, _) = call(
        &app,
        Method::PUT,
        "/api/v1/session/password",
        Some(&change),
        None,
        Some(&fresh),
        true,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        login(&app, "rep0", PASSWORD).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&app, "rep0", "another long password").await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn keys_are_shown_once_revoked_and_rotated_at_once() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    let created = app
        .ok(
            "/api/v1/keys",
            &json!({"name": "survey tool", "role": "reporting"}),
            StatusCode::CREATED,
        )
        .await;
    let key = created["key"].as_str().expect("key shown once").to_owned();
    let id = created["id"].as_str().expect("id").to_owned();
    let (_, listed) = app.get("/api/v1/keys").await;
    assert!(
        !listed.to_string().contains(&key),
        "the list shows prefixes only"
    );
    let get = |key: String| {
        let app = &app;
        async move {
            app.send(Method::GET, "/api/v1/reps", None, Some(&key))
                .await
                .0
        }
    };
    assert_eq!(get(key.clone()).await, StatusCode::OK);
    let rotated = app
        .ok(
            &format!("/api/v1/keys/{id}/rotate"),
            &json!({}),
            StatusCode::CREATED,
        )
        .await;
    let new_key = rotated["key"].as_str().expect("new key").to_owned();
    assert_eq!(
        get(key).await,
        StatusCode::UNAUTHORIZED,
        "the old key stops at once"
    );
    assert_eq!(get(new_key.clone()).await, StatusCode::OK);
    let new_id = rotated["id"].as_str().expect("id");
    let (status, _) = app
        .send(
            Method::DELETE,
            &format!("/api/v1/keys/{new_id}"),
            None,
            Some(&app.key.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        get(new_key).await,
        StatusCode::UNAUTHORIZED,
        "revoked on the next request"
    );

    let (_, audit) = app.get("/api/v1/audit").await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|item| item["action"].as_str())
        .collect();
    assert_eq!(actions, ["key.revoked", "key.rotated", "key.created"]);
}

#[tokio::test]
async fn deactivating_a_user_ends_their_sessions_keys_and_leads() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    workspace(&app).await;
    let (_, session, me) = login(&app, "rep0", PASSWORD).await;
    let session = session.expect("cookie");
    let user_id = me["user"]["id"].as_str().expect("id").to_owned();
    let (status, body) = app
        .patch(
            &format!("/api/v1/users/{user_id}"),
            &json!({"active": false}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, _) = call(
        &app,
        Method::GET,
        "/api/v1/leads",
        None,
        None,
        Some(&session),
        false,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        login(&app, "rep0", PASSWORD).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (_, rep) = app.get("/api/v1/reps/r00").await;
    assert_eq!(
        rep["status"],
        json!("inactive"),
        "a deactivated rep stops receiving leads"
    );
    let (_, audit) = app.get("/api/v1/audit").await;
    assert!(audit.to_string().contains("user.deactivated"));
}

async fn lock_out_holds_across_instances(app: TestApp) {
    app.ok(
        "/api/v1/users",
        &json!({"username": "admin2", "role": "admin", "password": PASSWORD}),
        StatusCode::CREATED,
    )
    .await;
    // A second instance on the same database.
    let other = TestApp::with_state(
        server::AppState::without_clock(app.state.store.clone()),
        app.key.clone(),
    );
    for attempt in 0..5 {
        let instance = if attempt % 2 == 0 { &app } else { &other };
        assert_eq!(
            login(instance, "admin2", "not the password").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (status, _, body) = login(&app, "admin2", PASSWORD).await;
    assert_eq!(status, StatusCode::LOCKED, "{body}");
    assert_eq!(body["error"]["code"], json!("account_locked"));
    let (status, _, _) = login(&other, "admin2", PASSWORD).await;
    assert_eq!(status, StatusCode::LOCKED);
    // An admin reset unlocks.
    let (_, users) = app.get("/api/v1/users").await;
    let id = users["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|user| user["username"] == json!("admin2"))
        .and_then(|user| user["id"].as_str())
        .expect("id")
        .to_owned();
    assert!(users.to_string().contains("locked_until"));
    let (status, _) = app
        .post(
            &format!("/api/v1/users/{id}/password"),
            &json!({"password": "a brand new password"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        login(&other, "admin2", "a brand new password").await.0,
        StatusCode::OK
    );
}

/// A key revoked on one instance stops on the other at once, not when the other's cache of
/// verified keys ages out (a second): PostgreSQL tells every instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_stops_on_every_instance_at_once() {
    let Some(app) = TestApp::new(Backend::Postgres).await else {
        return;
    };
    let other = TestApp::with_state(
        server::AppState::without_clock(app.state.store.clone()),
        app.key.clone(),
    );
    let (status, made) = app
        .post(
            "/api/v1/keys",
            &json!({"name": "pos terminal", "role": "reporting"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let (key, id) = (
        made["key"].as_str().expect("key").to_owned(),
        made["id"].as_str().expect("id").to_owned(),
    );
    // Let the other instance's listener connect, then have it verify and cache the key.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let reads = |status: (StatusCode, serde_json::Value)| status.0;
    assert_eq!(
        reads(
            other
                .send(Method::GET, "/api/v1/leads", None, Some(&key))
                .await
        ),
        StatusCode::OK
    );
    let (status, _) = app
        .send(
            Method::DELETE,
            &format!("/api/v1/keys/{id}"),
            None,
            Some(&app.key.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Well inside the cache's second: the other instance refuses it already.
    let started = std::time::Instant::now();
    loop {
        let answer = other
            .send(Method::GET, "/api/v1/leads", None, Some(&key))
            .await;
        if reads(answer) == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_millis(400),
            "the other instance still accepts the revoked key"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn lock_out_holds_across_instances_on_sqlite() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    lock_out_holds_across_instances(app).await;
}

#[tokio::test]
async fn lock_out_holds_across_instances_on_postgres() {
    if let Some(app) = TestApp::without_clock(Backend::Postgres).await {
        lock_out_holds_across_instances(app).await;
    }
}

#[tokio::test]
async fn integration_keys_are_rate_limited_with_retry_after() {
    let stored = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    // One a second with a burst of 20, so the burst runs out however slow the machine is (the
    // default, 200 a second with a burst of 400, is outrun only by a fast loop).
    let state = stored.state.clone().with(|services| {
        services.limits = std::sync::Arc::new(server::auth::RateLimits::new(1.0, 20.0));
    });
    let app = TestApp::with_state(state, stored.key.clone());
    let key = app.key(Role::Integration).await;
    let mut limited = None;
    for _ in 0..60 {
        let (status, _, headers) = call(
            &app,
            Method::POST,
            "/api/v1/leads",
            Some(&json!({"phone": "12"})),
            Some(&key),
            None,
            false,
        )
        .await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            limited = headers
                .get("retry-after")
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            break;
        }
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    assert_eq!(limited.as_deref(), Some("1"));
    // Other keys are not slowed.
    let (status, _) = app.get("/api/v1/reps").await;
    assert_eq!(status, StatusCode::OK);
}

/// On PostgreSQL an integration key's rate is shared by every instance: two instances with a
/// burst of four each let about four requests through between them, not eight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_integration_rate_holds_across_instances() {
    let Some(app) = TestApp::without_clock(Backend::Postgres).await else {
        return;
    };
    let store = app.state.store.clone();
    let limited = |state: server::AppState| {
        let state = state.with(|services| {
            services.limits =
                std::sync::Arc::new(server::auth::RateLimits::new(0.5, 4.0).shared(store.clone()));
        });
        TestApp::with_state(state, app.key.clone())
    };
    let first = limited(app.state.clone());
    let second = limited(server::AppState::without_clock(store.clone()));
    let key = app.key(Role::Integration).await;
    let (mut accepted, mut refused) = (0, 0);
    for index in 0..12 {
        let instance = if index % 2 == 0 { &first } else { &second };
        let (status, _, headers) = call(
            instance,
            Method::POST,
            "/api/v1/leads",
            Some(&json!({"phone": "12"})),
            Some(&key),
            None,
            false,
        )
        .await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
            assert!(headers.contains_key("retry-after"));
        } else {
            accepted += 1;
        }
    }
    assert!(
        accepted <= 5,
        "{accepted} let through; one bucket allows about 4"
    );
    assert_eq!(accepted + refused, 12);
}

#[tokio::test]
async fn a_public_intake_address_is_rate_limited_per_source() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    for id in ["site", "other"] {
        app.ok(
            "/api/v1/intake-sources",
            &json!({"id": id, "name": id, "auth": "token", "mapping": {"name": "name"}}),
            StatusCode::CREATED,
        )
        .await;
    }
    // A flood, all at once: the burst of 400 (and what refills meanwhile) gets through.
    let body = json!({"name": "x"});
    let answers = futures_util::future::join_all((0..1000).map(|_| {
        call(
            &app,
            Method::POST,
            "/api/v1/intake/site?token=wrong",
            Some(&body),
            None,
            None,
            false,
        )
    }))
    .await;
    let refused: Vec<_> = answers
        .iter()
        .filter(|(status, _, _)| *status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert!(!refused.is_empty(), "none of 1,000 refused");
    assert!(
        answers
            .iter()
            .all(|(status, _, _)| matches!(status.as_u16(), 401 | 429))
    );
    let limited = refused[0]
        .2
        .get("retry-after")
        .and_then(|value| value.to_str().ok());
    assert_eq!(limited, Some("1"));
    // Another source is not slowed.
    let (status, _, _) = call(
        &app,
        Method::POST,
        "/api/v1/intake/other?token=wrong",
        Some(&json!({"name": "x"})),
        None,
        None,
        false,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
