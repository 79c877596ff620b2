//! The console in a real headless Chromium (Debian's, driven through ChromeDriver): an admin
//! signs in and reads the dashboard and a lead's timeline with its explanation; a rep logs a
//! follow-up, claims from the pool and switches the language. Screenshots go to
//! `target/console-screenshots/` for review.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::http::StatusCode;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::support::{Backend, TestApp, lead};

/// ChromeDriver, when this machine has it; CI must.
fn chromedriver() -> Option<String> {
    let path = std::env::var("LEADROUTE_TEST_CHROMEDRIVER")
        .ok()
        .filter(|path| !path.is_empty())
        .or_else(|| {
            std::path::Path::new("/usr/bin/chromedriver")
                .exists()
                .then(|| "/usr/bin/chromedriver".to_owned())
        });
    if path.is_none() && std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("CI runs the browser tests: install chromium-driver (`.ci/run` does)");
    }
    path
}

struct Driver {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser(path: &str) -> (Driver, Client) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let child = Command::new(path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver");
    let profile = tempfile::tempdir().expect("profile");
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({"args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        "--disable-quic", "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--lang=zh-CN",
                        "--window-size=1280,900",
                        format!("--user-data-dir={}", profile.path().display())],
               "prefs": {"intl.accept_languages": "zh-CN,zh"}}),
    );
    let driver = Driver {
        child,
        port,
        _profile: profile,
    };
    let mut attempts = 0;
    let client = loop {
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities.clone())
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
        {
            Ok(client) => break client,
            Err(error) => {
                attempts += 1;
                assert!(attempts < 50, "chromedriver did not start: {error}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    (driver, client)
}

async fn shot(client: &Client, name: &str) {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/console-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
}

async fn text(client: &Client, css: &str) -> String {
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|error| panic!("{css}: {error}"))
        .text()
        .await
        .expect("text")
}

/// Waits until the element's text satisfies `wanted` (the page may still be loading).
async fn until(client: &Client, css: &str, wanted: impl Fn(&str) -> bool) -> String {
    let mut last = String::new();
    for _ in 0..50 {
        if let Ok(element) = client.find(Locator::Css(css)).await
            && let Ok(found) = element.text().await
        {
            if wanted(&found) {
                return found;
            }
            last = found;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{css} never became what was wanted; last: {last:?}");
}

async fn click(client: &Client, css: &str) {
    let element = client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|error| panic!("{css}: {error}"));
    // To the middle of the window, as a person would scroll: the editor's sticky button bar
    // covers the bottom edge where WebDriver would otherwise leave it.
    client
        .execute(
            "arguments[0].scrollIntoView({block: 'center'})",
            vec![serde_json::to_value(&element).expect("element")],
        )
        .await
        .unwrap_or_else(|error| panic!("scroll to {css}: {error}"));
    element
        .click()
        .await
        .unwrap_or_else(|error| panic!("click {css}: {error}"));
}

/// Each page is no wider than the window (on a phone: no sideways scrolling).
async fn fits_the_screen(client: &Client, base: &str, pages: &[&str]) {
    for page in pages {
        client.goto(&format!("{base}{page}")).await.expect("page");
        let overflow = client
            .execute(
                "return document.documentElement.scrollWidth - window.innerWidth",
                vec![],
            )
            .await
            .expect("widths");
        assert!(
            overflow.as_i64().is_some_and(|extra| extra <= 0),
            "{page} is {overflow} px wider than the screen"
        );
    }
}

async fn sign_in(client: &Client, base: &str, username: &str) {
    client
        .goto(&format!("{base}/login"))
        .await
        .expect("login page");
    let form = client
        .form(Locator::Css("form[action='/login']"))
        .await
        .expect("form");
    form.set_by_name("username", username)
        .await
        .expect("username");
    form.set_by_name("password", "correct horse battery")
        .await
        .expect("password");
    form.submit().await.expect("submit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_works_in_a_real_browser() {
    let Some(path) = chromedriver() else {
        return;
    };
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    app.round_robin_team(2, json!({})).await;
    for (name, role, rep) in [("boss", "admin", None), ("rep0", "rep", Some("r00"))] {
        app.ok(
            "/api/v1/users",
            &json!({"username": name, "role": role, "rep_id": rep, "password": "correct horse battery"}),
            StatusCode::CREATED,
        )
        .await;
    }
    let mut ids = Vec::new();
    for index in 0..3 {
        let mut body = lead(&format!("browser-{index}"));
        body["name"] = json!(format!("浏览器客户{index}"));
        let created = app.ok("/api/v1/leads", &body, StatusCode::CREATED).await;
        ids.push(created["lead"]["id"].as_str().expect("id").to_owned());
    }
    // Lead 1 (r01's) goes to the pool for the rep to claim.
    let (status, _) = app
        .post(&format!("/api/v1/leads/{}/release", ids[1]), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    // The catch-all rule requires a literal value of its reps; the editor must keep it.
    app.publish(
        json!({"rules": [{"id": "all", "target": {"team": "t"}, "fallback": [{"pool": "public"}],
                "requires": [{"field": "rep.teams", "op": "contains", "value": "t"}]}]}),
    )
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let router = app.app.clone();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let (_driver, client) = browser(&path).await;

    // The admin builds a rule with the condition builder and publishes it.
    sign_in(&client, &base, "boss").await;
    until(&client, "h1", |h1| h1 == "看板").await;
    client
        .goto(&format!("{base}/rules/edit"))
        .await
        .expect("editor");
    // The catch-all rule's requirement compares with a value of its own: its box is shown.
    let literal = client
        .find(Locator::Css("input[name='r0_q0_literal']"))
        .await
        .expect("the value box");
    assert!(literal.is_displayed().await.expect("displayed"));
    assert_eq!(
        literal.prop("value").await.expect("value").as_deref(),
        Some("t")
    );
    click(&client, "button[value='add_rule']").await;
    until(&client, "#rule-1", |rule| !rule.is_empty()).await;
    client
        .find(Locator::Css("input[name='r1_name']"))
        .await
        .expect("name")
        .send_keys("华北线索")
        .await
        .expect("type");
    client
        .find(Locator::Css("select[name='r1_c0_field']"))
        .await
        .expect("field")
        .select_by_value("region")
        .await
        .expect("region");
    client
        .find(Locator::Css("input[name='r1_c0_value']"))
        .await
        .expect("value")
        .send_keys("华北")
        .await
        .expect("type");
    client
        .find(Locator::Css("select[name='r1_target']"))
        .await
        .expect("target")
        .select_by_value("team:t")
        .await
        .expect("team");
    // Nobody in the team: let the next rule try.
    client
        .find(Locator::Css("select[name='r1_fb0']"))
        .await
        .expect("fallback")
        .select_by_value("next_rule")
        .await
        .expect("next rule");
    // Move it above the catch-all rule.
    click(&client, "button[value='up:1']").await;
    let mut first = None;
    for _ in 0..50 {
        // The page reloads: an element found may go stale before it is read.
        if let Ok(element) = client.find(Locator::Css("input[name='r0_name']")).await
            && let Ok(value) = element.prop("value").await
        {
            first = value;
            if first.as_deref() == Some("华北线索") {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(first.as_deref(), Some("华北线索"));
    until(&client, "#valid", |valid| valid.contains("规则有效")).await;
    shot(&client, "rule-editor").await;
    click(&client, "#confirm").await;
    click(&client, "#publish").await;
    until(&client, "#versions", |versions| versions.contains("生效中")).await;
    assert!(
        text(&client, ".notice").await.contains("✓"),
        "published, not an error"
    );
    shot(&client, "rule-versions").await;
    let (_, versions) = app.get("/api/v1/rule-sets").await;
    let active = versions["items"]
        .as_array()
        .and_then(|items| items.iter().find(|item| item["active"] == json!(true)))
        .and_then(|item| item["version"].as_i64())
        .expect("an active version");
    let (_, active) = app.get(&format!("/api/v1/rule-sets/{active}")).await;
    assert_eq!(
        active["document"]["rules"][1]["requires"],
        json!([{"field": "rep.teams", "op": "contains", "value": "t"}]),
        "the literal requirement came back through the form: {active}"
    );
    assert_eq!(
        (
            &active["document"]["rules"][0]["fallback"],
            &active["document"]["rules"][1]["fallback"]
        ),
        (&json!(["next_rule"]), &json!([{"pool": "public"}])),
        "{active}"
    );
    client
        .goto(&format!("{base}/admin/reps?id=r00"))
        .await
        .expect("admin");
    until(&client, "#rep-form", |form| form.contains("保有量上限")).await;
    shot(&client, "admin-rep").await;
    // The SLA ladder as rows: the manager adds a rung in a spare row and saves.
    client
        .goto(&format!("{base}/admin/sla-policies?id=default"))
        .await
        .expect("sla policy");
    until(&client, "#sla-form", |form| form.contains("首次响应阶梯")).await;
    client
        .find(Locator::Css("input[name='step_after_3']"))
        .await
        .expect("a spare row")
        .send_keys("72h")
        .await
        .expect("type");
    client
        .find(Locator::Css("select[name='step_action_3']"))
        .await
        .expect("its action")
        .select_by_value("pool")
        .await
        .expect("pool");
    click(&client, "#sla-form button[value='save_form']").await;
    until(&client, ".notice", |notice| notice.contains("✓")).await;
    shot(&client, "admin-sla-policy").await;
    client
        .goto(&format!("{base}/admin/teams?id=t"))
        .await
        .expect("team");
    until(&client, "#team-form", |form| form.contains("Rep 1")).await;
    shot(&client, "admin-team").await;
    let (_, policy) = app.get("/api/v1/sla-policies/default").await;
    assert_eq!(
        policy["steps"][3],
        json!({"after": "72h", "action": "pool"}),
        "{policy}"
    );
    let mut north = lead("browser-north");
    north["name"] = json!("华北客户");
    north["region"] = json!("华北");
    let created = app.ok("/api/v1/leads", &north, StatusCode::CREATED).await;
    let north_id = created["lead"]["id"].as_str().expect("id").to_owned();
    assert!(
        created["decision"]["explanation"]["zh"]
            .as_str()
            .is_some_and(|text| text.contains("华北线索")),
        "{created}"
    );

    // The dashboard counts it; its timeline explains it.
    client.goto(&format!("{base}/")).await.expect("dashboard");
    assert_eq!(text(&client, "#leads-in").await, "4");
    shot(&client, "dashboard").await;
    // Every count is a link to the leads behind it: the list says how many it holds.
    click(&client, "a.card[href^='/leads?from=']").await;
    until(&client, "#lead-total", |total| total == "共 4 条").await;
    shot(&client, "dashboard-drill-down").await;
    // On a wide screen a list is a table (cards are for phones only).
    let display = client
        .execute(
            "return getComputedStyle(document.getElementById('lead-list')).display",
            vec![],
        )
        .await
        .expect("style");
    assert_eq!(display, json!("table"));
    // An export downloads as a real workbook (a zip), from the browser's own session.
    client.goto(&format!("{base}/")).await.expect("dashboard");
    let workbook = client
        .execute_async(
            "var done = arguments[0];
             var link = document.querySelector('#table-reps a[href*=\"format=xlsx\"]');
             fetch(link.getAttribute('href')).then(function (r) {
               return r.arrayBuffer().then(function (bytes) {
                 var head = new Uint8Array(bytes.slice(0, 2));
                 done([r.status, r.headers.get('content-type'), String.fromCharCode(head[0], head[1])]);
               });
             });",
            vec![],
        )
        .await
        .expect("export");
    assert_eq!(
        workbook,
        json!([
            200,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "PK"
        ]),
    );
    // A rep's name in the table opens their scorecard.
    click(&client, "#table-reps tbody a[href^='/reps/']").await;
    until(&client, "h1", |h1| h1.starts_with("个人数据")).await;
    shot(&client, "scorecard").await;
    // A manager's pages on a phone: none wider than the screen.
    client.set_window_size(390, 844).await.expect("resize");
    fits_the_screen(
        &client,
        &base,
        &[
            "/",
            "/leads",
            "/pool",
            "/rules",
            "/admin/reps",
            "/admin/audit",
            "/admin/accounts",
            "/reps/r00/scorecard",
        ],
    )
    .await;
    client.goto(&format!("{base}/")).await.expect("dashboard");
    shot(&client, "dashboard-phone").await;
    client.set_window_size(1280, 900).await.expect("resize");
    client
        .goto(&format!("{base}/leads/{north_id}"))
        .await
        .expect("lead");
    let timeline = text(&client, ".timeline").await;
    assert!(timeline.contains("分配决策"), "{timeline}");
    let explanation = client
        .find(Locator::Css(".timeline li.decision details"))
        .await
        .expect("details");
    explanation.click().await.expect("open the explanation");
    assert!(
        text(&client, ".timeline li.decision pre")
            .await
            .contains("命中规则「华北线索」")
    );
    shot(&client, "lead-timeline").await;
    client
        .find(Locator::Css("form[action='/logout'] button"))
        .await
        .expect("sign out")
        .click()
        .await
        .expect("click");
    until(&client, "h1", |h1| h1 == "登录").await;

    // The rep: a follow-up in two clicks, a claim from the pool, then English.
    sign_in(&client, &base, "rep0").await;
    until(&client, "h1", |h1| h1 == "我的线索").await;
    let work = text(&client, "#my-leads").await;
    assert!(
        work.contains("浏览器客户0") && work.contains("浏览器客户2"),
        "{work}"
    );
    shot(&client, "rep-workspace").await;
    client
        .find(Locator::Css("#my-leads li form button[value='call']"))
        .await
        .expect("call button")
        .click()
        .await
        .expect("click");
    assert!(text(&client, ".notice").await.contains("✓"));
    let contacted = app.get(&format!("/api/v1/leads/{}", ids[0])).await.1["status"].clone();
    let other = app.get(&format!("/api/v1/leads/{}", ids[2])).await.1["status"].clone();
    assert!(
        contacted == json!("contacted") || other == json!("contacted"),
        "one of the rep's leads is contacted now"
    );
    // A new lead appears in the open workspace at once (server-sent events), then in the list.
    client.goto(&format!("{base}/me")).await.expect("me");
    until(&client, "h1", |h1| h1 == "我的线索").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for index in 3..5 {
        let mut body = lead(&format!("browser-{index}"));
        body["name"] = json!(format!("实时客户{index}"));
        app.ok("/api/v1/leads", &body, StatusCode::CREATED).await;
    }
    // The notice names the lead and links to it.
    until(&client, "#toast", |toast| {
        toast.contains("新线索：实时客户")
    })
    .await;
    // Read in the page, retried: the list refreshes itself under the notice, which stays.
    let mut href = serde_json::Value::Null;
    for _ in 0..50 {
        href = client
            .execute(
                "var a = document.querySelector('#toast a'); return a ? a.getAttribute('href') : null",
                vec![],
            )
            .await
            .unwrap_or(serde_json::Value::Null);
        if href.is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        href.as_str()
            .is_some_and(|href| href.starts_with("/leads/")),
        "the notice links to the lead: {href}"
    );
    until(&client, "#my-leads", |work| work.contains("实时客户")).await;
    // The refreshed list still shows the notice.
    until(&client, "#toast", |toast| {
        toast.contains("新线索：实时客户")
    })
    .await;
    client.goto(&format!("{base}/pool")).await.expect("pool");
    assert!(text(&client, "#pool").await.contains("浏览器客户1"));
    shot(&client, "pool").await;
    client
        .find(Locator::Css("#pool form button"))
        .await
        .expect("claim")
        .click()
        .await
        .expect("click");
    until(&client, "#lead-owner", |owner| owner == "Rep 0").await;
    client
        .find(Locator::Css("a.lang"))
        .await
        .expect("language switch")
        .click()
        .await
        .expect("click");
    until(&client, "header nav", |nav| {
        nav.contains("My leads") && nav.contains("Pool")
    })
    .await;
    // A phone screen.
    client.set_window_size(390, 844).await.expect("resize");
    client.goto(&format!("{base}/me")).await.expect("me");
    until(&client, "h1", |h1| h1 == "My leads").await;
    shot(&client, "rep-workspace-phone-en").await;
    // On a phone: the leads come first with a number to tap, and no page is wider than the
    // screen.
    let call = client
        .find(Locator::Css("#my-leads a.tel"))
        .await
        .expect("a tap-to-call link");
    let href = call.attr("href").await.expect("href").unwrap_or_default();
    assert!(href.starts_with("tel:+86"), "{href}");
    fits_the_screen(&client, &base, &["/me", "/pool", "/leads"]).await;
    client.close().await.expect("close");
}

/// A manager tries a draft on the last week from the versions page, reads the two policies side
/// by side while the page refreshes itself to the report, on a phone too, and publishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draft_is_tried_on_history_in_a_real_browser() {
    let Some(path) = chromedriver() else {
        return;
    };
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    app.round_robin_team(3, json!({"max_per_day": 4})).await;
    app.ok(
        "/api/v1/users",
        &json!({"username": "boss", "role": "admin", "password": "correct horse battery"}),
        StatusCode::CREATED,
    )
    .await;
    for index in 0..20 {
        let mut body = lead(&format!("history-{index}"));
        body["phone"] = json!(format!("1380013{index:04}"));
        app.ok("/api/v1/leads", &body, StatusCode::CREATED).await;
    }
    let draft = app
        .ok(
            "/api/v1/rule-sets",
            &json!({"name": "只给 r02", "rules": [{"id": "one", "name": "全部给 r02", "target": {"reps": ["r02"]}}]}),
            StatusCode::CREATED,
        )
        .await["version"]
        .as_i64()
        .expect("version");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let router = app.app.clone();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let (_driver, client) = browser(&path).await;
    sign_in(&client, &base, "boss").await;
    until(&client, "h1", |h1| h1 == "看板").await;
    client
        .goto(&format!("{base}/rules"))
        .await
        .expect("versions");
    client
        .find(Locator::Css(&format!(
            "form.sim-try input[value='{draft}'] ~ label select"
        )))
        .await
        .expect("days")
        .select_by_value("7")
        .await
        .expect("seven days");
    click(&client, "form.sim-try button").await;
    let verdict = until(&client, "#sim-verdict", |verdict| !verdict.is_empty()).await;
    assert!(verdict.contains("历史中没有成交结果"), "{verdict}");
    let compare = text(&client, "#sim-compare").await;
    assert!(
        compare.contains("草稿（B）") && compare.contains("因上限跳过"),
        "{compare}"
    );
    // A: four each, then the pool; B: four to r02, the rest held. Eleven change owner.
    assert!(compare.contains("11 (55.0%)"), "{compare}");
    let moved = text(&client, "#sim-moved").await;
    assert!(moved.contains("Rep 2"), "{moved}");
    shot(&client, "simulation").await;
    client
        .set_window_size(390, 844)
        .await
        .expect("a phone's width");
    client.refresh().await.expect("reload");
    until(&client, "#sim-verdict", |verdict| !verdict.is_empty()).await;
    shot(&client, "simulation-phone").await;
    client
        .set_window_size(1280, 900)
        .await
        .expect("back to a desktop");
    click(&client, "#sim-publish input[name='confirm']").await;
    click(&client, "#sim-publish button").await;
    until(&client, "#versions", |versions| versions.contains("生效中")).await;
    let (_, published) = app.get(&format!("/api/v1/rule-sets/{draft}")).await;
    assert_eq!(published["active"], true, "{published}");
}

/// The pool's "distribute optimally": tick leads, pick the team, read the plan, confirm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_optimal_distribution_is_previewed_and_confirmed_in_a_real_browser() {
    let Some(path) = chromedriver() else {
        return;
    };
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    app.round_robin_team(3, json!({"max_open": 2})).await;
    app.ok(
        "/api/v1/users",
        &json!({"username": "boss", "role": "admin", "password": "correct horse battery"}),
        StatusCode::CREATED,
    )
    .await;
    app.publish(json!({"rules": [{"id": "all", "target": {"pool": "public"}}]}))
        .await;
    for index in 0..6 {
        let mut body = lead(&format!("pool-{index}"));
        body["name"] = json!(format!("展会客户{index}"));
        body["score"] = json!(10 + index * 15);
        app.ok("/api/v1/leads", &body, StatusCode::CREATED).await;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let router = app.app.clone();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let (_driver, client) = browser(&path).await;
    sign_in(&client, &base, "boss").await;
    until(&client, "h1", |h1| h1 == "看板").await;
    client.goto(&format!("{base}/pool")).await.expect("pool");
    until(&client, "#pool", |pool| pool.contains("展会客户5")).await;
    let boxes = client
        .find_all(Locator::Css("#pool input[type='checkbox']"))
        .await
        .expect("checkboxes");
    assert_eq!(boxes.len(), 6);
    for checkbox in boxes {
        checkbox.click().await.expect("tick");
    }
    click(&client, "#distribute").await;
    let summary = until(&client, "#distribute-summary", |text| !text.is_empty()).await;
    assert!(summary.contains("最优方案期望价值"), "{summary}");
    let plan = text(&client, "#distribute-plan").await;
    assert_eq!(plan.matches("按批量最优分配分配给").count(), 6, "{plan}");
    shot(&client, "pool-distribute-preview").await;
    click(&client, "form[action='/pool/distribute/confirm'] button").await;
    until(&client, "#toast, .notice, main", |_| true).await;
    let (_, pool) = app.get("/api/v1/pool").await;
    assert_eq!(pool["items"].as_array().map(Vec::len), Some(0), "{pool}");
    let (_, leads) = app.get("/api/v1/leads?limit=10").await;
    let mut owners: Vec<&str> = leads["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|lead| lead["owner_id"].as_str())
        .collect();
    owners.sort_unstable();
    assert_eq!(owners, ["r00", "r00", "r01", "r01", "r02", "r02"]);
}
