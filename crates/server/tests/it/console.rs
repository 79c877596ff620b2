//! The console, in-process: signing in, the dashboard, leads and a lead's timeline, a rep's
//! workspace with a follow-up in two clicks, the pool, and switching language.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;

use crate::support::{Backend, TestApp, lead};

struct Page {
    status: StatusCode,
    html: String,
    location: Option<String>,
    cookie: Option<String>,
    csp: Option<String>,
}

async fn visit(
    app: &TestApp,
    method: &str,
    path: &str,
    cookies: &str,
    form: Option<&str>,
    language: &str,
) -> Page {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("accept-language", language)
        .header("referer", "http://127.0.0.1/me");
    if !cookies.is_empty() {
        request = request.header("cookie", cookies);
    }
    let body = match form {
        Some(form) => {
            request = request.header("content-type", "application/x-www-form-urlencoded");
            Body::from(form.to_owned())
        }
        None => Body::empty(),
    };
    let response =
        tower::ServiceExt::oneshot(app.app.clone(), request.body(body).expect("request"))
            .await
            .expect("response");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let (status, location, cookie, csp) = (
        response.status(),
        header("location"),
        header("set-cookie"),
        header("content-security-policy"),
    );
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .expect("body")
        .to_bytes();
    Page {
        status,
        html: String::from_utf8_lossy(&bytes).into_owned(),
        location,
        cookie,
        csp,
    }
}

/// Posts a form as a Chinese-speaking browser would.
async fn submit(app: &TestApp, path: &str, cookies: &str, form: &str) -> Page {
    visit(app, "POST", path, cookies, Some(form), "zh-CN").await
}

/// Adds `mgr`, a manager of team `t`, who signs in with `sign_in(app, "mgr")`.
async fn add_manager(app: &TestApp) {
    app.ok(
        "/api/v1/users",
        &json!({"username": "mgr", "role": "manager", "teams": ["t"], "password": "correct horse battery"}),
        StatusCode::CREATED,
    )
    .await;
}

/// Signs in through the form; returns the session cookie and the CSRF token of its pages.
async fn sign_in(app: &TestApp, username: &str) -> (String, String) {
    let page = visit(
        app,
        "POST",
        "/login",
        "",
        Some(&format!(
            "username={username}&password=correct+horse+battery"
        )),
        "zh-CN",
    )
    .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    let cookie = page
        .cookie
        .and_then(|cookie| cookie.split(';').next().map(str::to_owned))
        .expect("session cookie");
    let home = visit(
        app,
        "GET",
        page.location.as_deref().unwrap_or("/"),
        &cookie,
        None,
        "zh-CN",
    )
    .await;
    let csrf = home
        .html
        .split("data-csrf=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("csrf token on the page")
        .to_owned();
    (cookie, csrf)
}

async fn setup(app: &TestApp) -> Vec<String> {
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
    for index in 0..4 {
        let mut body = lead(&format!("console-{index}"));
        body["name"] = json!(format!("客户{index}"));
        body["source"] = json!("官网");
        let created = app.ok("/api/v1/leads", &body, StatusCode::CREATED).await;
        ids.push(created["lead"]["id"].as_str().expect("id").to_owned());
    }
    ids
}

#[tokio::test]
async fn an_admin_signs_in_and_reads_the_dashboard_and_a_timeline() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    let ids = setup(&app).await;
    let page = visit(&app, "GET", "/", "", None, "zh-CN").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location.as_deref(), Some("/login"));
    let login = visit(&app, "GET", "/login", "", None, "zh-CN,zh;q=0.9").await;
    assert!(login.html.contains("<html lang=\"zh-CN\">") && login.html.contains("登录"));
    let english = visit(&app, "GET", "/login", "", None, "en-US,en;q=0.9").await;
    assert!(english.html.contains("Sign in"), "{}", english.html);
    let wrong = submit(&app, "/login", "", "username=boss&password=nope").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.html.contains("用户名或密码错误"));

    let (cookie, _) = sign_in(&app, "boss").await;
    let dashboard = visit(&app, "GET", "/?days=7", &cookie, None, "zh-CN").await;
    assert_eq!(dashboard.status, StatusCode::OK);
    assert!(
        dashboard.html.contains("<b id=\"leads-in\">4</b>"),
        "{}",
        dashboard.html
    );
    assert!(
        dashboard.html.contains("<svg role=\"img\""),
        "fairness drawn as SVG"
    );
    let csp = dashboard.csp.unwrap_or_default();
    assert!(
        csp.contains("default-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );

    let list = visit(&app, "GET", "/leads", &cookie, None, "zh-CN").await;
    assert!(list.html.contains("客户3") && list.html.contains(&format!("/leads/{}", ids[3])));
    let timeline = visit(
        &app,
        "GET",
        &format!("/leads/{}", ids[0]),
        &cookie,
        None,
        "zh-CN",
    )
    .await;
    assert_eq!(timeline.status, StatusCode::OK);
    assert!(timeline.html.contains("分配决策"), "{}", timeline.html);
    assert!(
        timeline.html.contains("命中规则"),
        "the decision's explanation"
    );
    // The decision reads as one sentence, the engine's full text one click away.
    let sentence = timeline
        .html
        .split("命中规则「all」，")
        .nth(1)
        .unwrap_or_default();
    let sentence = sentence.split('<').next().unwrap_or_default();
    assert!(
        sentence.contains(" 位销售中 ")
            && sentence.contains("位可接")
            && sentence.contains("分给 "),
        "{}",
        timeline.html
    );
    assert!(timeline.html.contains("<summary>完整说明</summary>"));
    assert!(
        timeline.html.contains("事件 · 新线索分配") && !timeline.html.contains("lead.assigned"),
        "the events, in words: {}",
        timeline.html
    );
    assert!(
        timeline.html.contains("id=\"coming\"")
            && timeline.html.contains("首次响应时效 · 提醒负责人")
            && timeline.html.contains("首次响应时效 · 收回并改派"),
        "what the clocks will do: {}",
        timeline.html
    );
    assert!(timeline.html.contains("改派"), "an admin may reassign");
    // The reassignment picker has no default, and a rep who cannot take leads now is marked.
    let (status, _) = app
        .patch("/api/v1/reps/r01", &json!({"status": "paused"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let timeline = visit(
        &app,
        "GET",
        &format!("/leads/{}", ids[0]),
        &cookie,
        None,
        "zh-CN",
    )
    .await;
    let picker = timeline
        .html
        .split("name=\"rep_id\"")
        .nth(1)
        .unwrap_or_default();
    let picker = picker.split("</select>").next().unwrap_or_default();
    assert!(
        picker.contains("<option value=\"\" selected disabled>请选择</option>"),
        "{picker}"
    );
    assert!(picker.contains("（暂停）"), "{picker}");
}

#[tokio::test]
async fn a_rep_works_their_leads_and_the_pool_in_the_console() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    let ids = setup(&app).await;
    // r00 has leads 0 and 2; lead 1 goes to the pool.
    let (status, _) = app
        .post(&format!("/api/v1/leads/{}/release", ids[1]), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (cookie, csrf) = sign_in(&app, "rep0").await;
    let me = visit(&app, "GET", "/me", &cookie, None, "zh-CN").await;
    assert!(
        me.html.contains("我的线索") && me.html.contains("客户0") && me.html.contains("客户2"),
        "{}",
        me.html
    );
    assert!(!me.html.contains("客户3"), "r01's lead is not here");
    assert!(me.html.contains("待办"), "due first: {}", me.html);
    let other = visit(
        &app,
        "GET",
        &format!("/leads/{}", ids[3]),
        &cookie,
        None,
        "zh-CN",
    )
    .await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);

    // A follow-up in two clicks: the lead's "call" button.
    let refused = submit(
        &app,
        &format!("/leads/{}/activities", ids[0]),
        &cookie,
        "kind=call",
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "no CSRF token");
    let done = submit(
        &app,
        &format!("/leads/{}/activities", ids[0]),
        &cookie,
        &format!("csrf={csrf}&kind=call&back=%2Fme"),
    )
    .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(done.location.as_deref(), Some("/me?notice=ok"));
    let (_, lead) = app.get(&format!("/api/v1/leads/{}", ids[0])).await;
    assert_eq!(lead["status"], json!("contacted"));

    // The pool, with a claim button, and the claim.
    let pool = visit(&app, "GET", "/pool", &cookie, None, "zh-CN").await;
    assert!(
        pool.html.contains("客户1") && pool.html.contains("领取"),
        "{}",
        pool.html
    );
    // With a daily claim limit set, the allowance names the pool, not its id.
    let (status, _) = app
        .patch(
            "/api/v1/pools/public",
            &json!({"name": "公海", "claims_per_day": 5}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let limited = visit(&app, "GET", "/pool", &cookie, None, "zh-CN").await;
    let allowance = limited
        .html
        .split("id=\"allowance\">")
        .nth(1)
        .unwrap_or_default();
    assert!(allowance.starts_with("公海 5<"), "{}", limited.html);
    assert!(
        !pool.html.contains("13800138000"),
        "no contact details in the pool"
    );
    let claimed = submit(
        &app,
        &format!("/leads/{}/claim", ids[1]),
        &cookie,
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(claimed.status, StatusCode::SEE_OTHER);
    let (_, lead) = app.get(&format!("/api/v1/leads/{}", ids[1])).await;
    assert_eq!(lead["owner_id"], json!("r00"));

    // Status, then the language.
    let paused = submit(
        &app,
        "/me/status",
        &cookie,
        &format!("csrf={csrf}&status=paused"),
    )
    .await;
    assert_eq!(paused.status, StatusCode::SEE_OTHER);
    let (_, rep) = app.get("/api/v1/reps/r00").await;
    assert_eq!(rep["status"], json!("paused"));
    // On leave with its dates: they join the rep's leave periods.
    let leave = submit(
        &app,
        "/me/status",
        &cookie,
        &format!("csrf={csrf}&status=on_leave&leave_from=2026-12-21&leave_until=2026-12-25"),
    )
    .await;
    assert_eq!(leave.location.as_deref(), Some("/me?notice=ok"));
    let (_, rep) = app.get("/api/v1/reps/r00").await;
    // A dated leave is a period: the rep stays active and the period keeps them out until it
    // ends.
    assert_eq!(rep["status"], json!("active"));
    assert!(
        rep["leaves"].as_array().is_some_and(
            |leaves| leaves.contains(&json!({"from": "2026-12-21", "until": "2026-12-25"}))
        ),
        "{rep}"
    );
    let switch = visit(&app, "GET", "/lang/en", &cookie, None, "zh-CN").await;
    assert_eq!(switch.status, StatusCode::SEE_OTHER);
    assert_eq!(switch.location.as_deref(), Some("/me"));
    assert!(
        switch
            .cookie
            .as_deref()
            .is_some_and(|cookie| cookie.starts_with("lang=en"))
    );
    let english = visit(
        &app,
        "GET",
        "/me",
        &format!("{cookie}; lang=en"),
        None,
        "zh-CN",
    )
    .await;
    assert!(english.html.contains("My leads") && english.html.contains("<html lang=\"en\">"));

    let out = submit(&app, "/logout", &cookie, &format!("csrf={csrf}")).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let after = visit(&app, "GET", "/me", &cookie, None, "zh-CN").await;
    assert_eq!(after.location.as_deref(), Some("/login"));
}

#[tokio::test]
async fn the_rule_editor_checks_at_the_row_dry_runs_diffs_publishes_and_rolls_back() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    setup(&app).await;
    let (cookie, csrf) = sign_in(&app, "boss").await;
    let editor = visit(&app, "GET", "/rules/edit", &cookie, None, "zh-CN").await;
    assert_eq!(editor.status, StatusCode::OK);
    assert!(
        editor.html.contains("name=\"r0_id\" value=\"all\""),
        "{}",
        editor.html
    );
    assert!(editor.html.contains("规则有效"));
    // The active version against itself: nothing changed, however the form writes it.
    assert!(editor.html.contains("id=\"no-changes\""), "{}", editor.html);
    // Add a rule: it arrives with one empty row.
    let base = format!(
        "csrf={csrf}&rules=1&r0_id=all&r0_target=team%3At&r0_c_count=0&r0_q_count=0&r0_rest=%7B%22fallback%22%3A%5B%7B%22pool%22%3A%22public%22%7D%5D%7D"
    );
    let added = submit(
        &app,
        "/rules/edit",
        &cookie,
        &format!("{base}&action=add_rule"),
    )
    .await;
    assert!(
        added.html.contains("name=\"r1_id\" value=\"rule-2\""),
        "{}",
        added.html
    );
    // The new rule is asked for a target in the viewer's language, not told of a team "".
    assert!(
        added.html.contains("请选择分配给哪个团队或公海") && !added.html.contains("unknown_team"),
        "{}",
        added.html
    );
    // A row that cannot hold: `gt` on a text field. The message stands at that row.
    let bad = format!(
        "csrf={csrf}&rules=2&r0_id=north&r0_target=team%3At&r0_group=all&r0_c_count=1&r0_c0_field=region&r0_c0_op=gt&r0_c0_value=5&r0_q_count=0\
         &r1_id=all&r1_target=team%3At&r1_c_count=0&r1_q_count=0&action=check"
    );
    let checked = submit(&app, "/rules/edit", &cookie, &bad).await;
    let row = checked.html.split("r0_c0_value").nth(1).unwrap_or_default();
    let row = row.split("</div>").next().unwrap_or_default();
    assert!(
        row.contains("class=\"error\""),
        "the error is at the row: {}",
        checked.html
    );
    assert!(!checked.html.contains("规则有效"));
    // A rule after a catch-all is flagged as never reached, at that rule.
    let shadowed = format!(
        "csrf={csrf}&rules=2&r0_id=all&r0_target=team%3At&r0_c_count=0&r0_q_count=0\
         &r1_id=north&r1_target=team%3At&r1_group=all&r1_c_count=1&r1_c0_field=region&r1_c0_op=equals&r1_c0_value=%E5%8D%8E%E5%8C%97&r1_q_count=0&action=check"
    );
    let checked = submit(&app, "/rules/edit", &cookie, &shadowed).await;
    let second = checked
        .html
        .split("id=\"rule-1\"")
        .nth(1)
        .unwrap_or_default();
    assert!(
        second.contains("class=\"warning\"") && second.contains("永远不会用到：规则「all」"),
        "{}",
        checked.html
    );
    // Known values come with their words (a priority by its label), and score tiers are rows
    // of a number and a priority; words in a tier's score are refused.
    assert!(
        editor.html.contains("<datalist id=\"values-priority\">")
            && editor.html.contains("value=\"urgent\" label=\"紧急\""),
        "{}",
        editor.html
    );
    let tiers = format!(
        "csrf={csrf}&rules=1&r0_id=all&r0_target=team%3At&r0_c_count=0&r0_q_count=0\
         &tier_count=3&tier0_score=80&tier0_priority=urgent&tier1_score=60&tier1_priority=high&tier2_score=&tier2_priority=normal&action=check"
    );
    let checked = submit(&app, "/rules/edit", &cookie, &tiers).await;
    assert!(checked.html.contains("规则有效"), "{}", checked.html);
    let second_tier = checked
        .html
        .split("name=\"tier1_priority\"")
        .nth(1)
        .and_then(|rest| rest.split("</select>").next())
        .unwrap_or_default();
    assert!(
        checked.html.contains("name=\"tier0_score\" value=\"80\"")
            && second_tier.contains("value=\"high\" selected"),
        "{}",
        checked.html
    );
    let checked = submit(
        &app,
        "/rules/edit",
        &cookie,
        &tiers.replace("tier1_score=60", "tier1_score=%E5%85%AD%E5%8D%81"),
    )
    .await;
    assert!(!checked.html.contains("规则有效"), "{}", checked.html);
    // A number field given words: refused at the row, not dropped from the rule.
    let words = format!(
        "csrf={csrf}&rules=2&r0_id=north&r0_target=team%3At&r0_group=all&r0_c_count=1&r0_c0_field=budget&r0_c0_op=gte&r0_c0_value=%E4%B8%80%E5%8D%83&r0_q_count=0\
         &r1_id=all&r1_target=team%3At&r1_c_count=0&r1_q_count=0&action=check"
    );
    let checked = submit(&app, "/rules/edit", &cookie, &words).await;
    let row = checked.html.split("r0_c0_value").nth(1).unwrap_or_default();
    let row = row.split("</div>").next().unwrap_or_default();
    assert!(
        row.contains("class=\"error\"") && row.contains("needs a number"),
        "{}",
        checked.html
    );
    assert!(!checked.html.contains("规则有效"));
    // The fixed row dry-runs, shows its diff, and publishes with confirmation.
    let good = format!(
        "csrf={csrf}&rules=2&r0_id=north&r0_name=%E5%8D%8E%E5%8C%97&r0_target=team%3At&r0_group=all&r0_c_count=1&r0_c0_field=region&r0_c0_op=equals&r0_c0_value=%E5%8D%8E%E5%8C%97&r0_strategy=least_loaded&r0_q_count=0\
         &r1_id=all&r1_target=team%3At&r1_c_count=0&r1_q_count=0\
         &sample=%7B%22name%22%3A%22%E6%9D%8E%E6%80%BB%22%2C%22region%22%3A%22%E5%8D%8E%E5%8C%97%22%7D"
    );
    let dry = submit(
        &app,
        "/rules/edit",
        &cookie,
        &format!("{good}&action=dry_run"),
    )
    .await;
    assert!(dry.html.contains("id=\"dry-run\""), "{}", dry.html);
    assert!(dry.html.contains("命中规则「华北」"), "{}", dry.html);
    // The same dry run on a stored lead, picked from the list of recent ones.
    let stored = app
        .ok(
            "/api/v1/leads",
            &json!({"name": "赵总", "region": "华北"}),
            StatusCode::CREATED,
        )
        .await;
    let stored_id = stored["lead"]["id"].as_str().expect("id").to_owned();
    let listed = submit(
        &app,
        "/rules/edit",
        &cookie,
        &format!("{good}&action=check"),
    )
    .await;
    assert!(
        listed
            .html
            .contains(&format!("<option value=\"{stored_id}\">赵总 · ")),
        "{}",
        listed.html
    );
    let on_lead = submit(
        &app,
        "/rules/edit",
        &cookie,
        &format!("{good}&action=dry_run_lead&sample_lead={stored_id}"),
    )
    .await;
    assert!(
        on_lead.html.contains("命中规则「华北」") && on_lead.html.contains("赵总"),
        "{}",
        on_lead.html
    );
    let unknown = submit(
        &app,
        "/rules/edit",
        &cookie,
        &format!("{good}&action=dry_run_lead&sample_lead=nope"),
    )
    .await;
    assert!(
        unknown
            .html
            .contains("class=\"error\" role=\"alert\">没有找到"),
        "{}",
        unknown.html
    );
    assert!(
        dry.html.contains("class=\"add\"") && dry.html.contains("新增 · 华北"),
        "the changes show the new rule by name: {}",
        dry.html
    );
    // Each rule reads as one line: its condition, its target, its strategy.
    let summary = dry
        .html
        .split("class=\"summary\">")
        .nth(1)
        .unwrap_or_default();
    assert!(
        summary.starts_with("华北 → ") && summary.contains(" · 最少负载</p>"),
        "{summary}"
    );
    let unconfirmed = submit(
        &app,
        "/rules/edit",
        &cookie,
        &format!("{good}&action=publish"),
    )
    .await;
    assert_eq!(unconfirmed.status, StatusCode::OK);
    assert!(
        unconfirmed
            .html
            .contains("class=\"error\" role=\"alert\">请先勾选确认"),
        "the refusal is an error, not a success notice"
    );
    // Saved as a draft, opened again and published unchanged: the draft itself becomes the
    // active version, and no copy of it is left behind.
    let saved = submit(
        &app,
        "/rules/edit",
        &cookie,
        &format!("{good}&action=save&note=%E5%8D%8E%E5%8C%97%E5%8D%95%E7%8B%AC%E5%88%86%E9%85%8D"),
    )
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    let reopened = visit(&app, "GET", "/rules/edit?version=2", &cookie, None, "zh-CN").await;
    assert!(
        reopened.html.contains("name=\"based_on\" value=\"2\""),
        "{}",
        reopened.html
    );
    let published = submit(
        &app,
        "/rules/edit",
        &cookie,
        &format!("{good}&based_on=2&action=publish&confirm=on"),
    )
    .await;
    assert_eq!(
        published.status,
        StatusCode::SEE_OTHER,
        "{}",
        published.html
    );
    let (_, sets) = app.get("/api/v1/rule-sets").await;
    let active = sets["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|set| set["status"] == json!("published"))
        .cloned()
        .expect("active");
    assert_eq!(active["version"], json!(2));
    assert_eq!(
        sets["items"].as_array().map(Vec::len),
        Some(2),
        "no leftover draft: {sets}"
    );
    // Roll back to version 1 from the versions page, which shows each version's note and
    // who published it, by name.
    let versions = visit(&app, "GET", "/rules", &cookie, None, "zh-CN").await;
    assert!(
        versions
            .html
            .contains("<td class=\"note\">华北单独分配</td>"),
        "{}",
        versions.html
    );
    let by = versions
        .html
        .split("<td class=\"by\">")
        .nth(1)
        .unwrap_or_default();
    let by = by.split('<').next().unwrap_or_default();
    assert!(!by.is_empty() && !by.contains("user:"), "{}", versions.html);
    // The newest version was saved in the editor by the signed-in admin: named as its author.
    let author = versions
        .html
        .split("<td class=\"author\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or_default();
    assert_eq!(author, "boss", "{}", versions.html);
    assert!(versions.html.contains("回滚到此版本"));
    let rolled = submit(
        &app,
        "/rules/1/publish",
        &cookie,
        &format!("csrf={csrf}&confirm=on"),
    )
    .await;
    assert_eq!(rolled.location.as_deref(), Some("/rules?notice=ok"));
    let (_, audit) = app.get("/api/v1/audit").await;
    assert!(
        audit.to_string().contains("rule_set.rolled_back"),
        "{audit}"
    );
}

#[tokio::test]
async fn an_admin_edits_settings_users_and_keys_in_the_console() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    setup(&app).await;
    let (cookie, csrf) = sign_in(&app, "boss").await;
    let reps = visit(&app, "GET", "/admin/reps", &cookie, None, "zh-CN").await;
    assert_eq!(reps.status, StatusCode::OK);
    assert!(
        reps.html.contains("r00") && reps.html.contains("新建"),
        "{}",
        reps.html
    );
    // The tab has its own title; the rep list shows status, team and load against the cap.
    assert!(
        reps.html.contains("<title>销售 · 管理 · Leadroute</title>"),
        "{}",
        reps.html
    );
    let roster = reps.html.split("id=\"roster\"").nth(1).unwrap_or_default();
    let roster = roster.split("</table>").next().unwrap_or_default();
    assert!(
        roster.contains("<td>接单中</td>"),
        "a status word: {roster}"
    );
    assert!(
        !roster.contains(">active<"),
        "the status is a word, not a code: {roster}"
    );
    assert!(
        roster.contains("<td>Team</td>") && roster.contains(" / "),
        "each rep's team and load against the cap: {roster}"
    );
    // A new rep from the form, without writing JSON.
    let made = submit(
        &app,
        "/admin/reps",
        &cookie,
        &format!("csrf={csrf}&id=&action=save_rep&new_id=r08&name=%E6%96%B0%E5%90%8C%E4%BA%8B&status=active&weight=1&cap_max_open=20"),
    )
    .await;
    assert_eq!(
        made.location.as_deref(),
        Some("/admin/reps?id=r08&notice=ok"),
        "{}",
        made.html
    );
    let (_, made) = app.get("/api/v1/reps/r08").await;
    assert_eq!(made["name"], json!("新同事"));
    assert_eq!(made["caps"]["max_open"], json!(20));
    let encode =
        |text: &str| url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
    // A new rep from the editor, then their caps changed.
    let document = r#"{"id": "r09", "name": "新人", "caps": {"max_open": 5}}"#;
    let created = submit(
        &app,
        "/admin/reps",
        &cookie,
        &format!("csrf={csrf}&id=&action=save&document={}", encode(document)),
    )
    .await;
    assert_eq!(
        created.location.as_deref(),
        Some("/admin/reps?id=r09&notice=ok")
    );
    let changed = submit(
        &app,
        "/admin/reps",
        &cookie,
        &format!(
            "csrf={csrf}&id=r09&action=save&document={}",
            encode(r#"{"caps": {"max_open": 8}}"#)
        ),
    )
    .await;
    assert_eq!(
        changed.location.as_deref(),
        Some("/admin/reps?id=r09&notice=ok")
    );
    let (_, rep) = app.get("/api/v1/reps/r09").await;
    assert_eq!(rep["caps"]["max_open"], json!(8));
    // The everyday fields as a form: caps, weight, hours, leave.
    let form = visit(&app, "GET", "/admin/reps?id=r09", &cookie, None, "zh-CN").await;
    assert!(
        form.html.contains("id=\"rep-form\"")
            && form.html.contains("name=\"cap_max_open\" value=\"8\"")
            && form.html.contains("保有量上限")
            && form.html.contains("周一"),
        "{}",
        form.html
    );
    let fields = format!(
        "csrf={csrf}&id=r09&action=save_rep&name={}&status=active&weight=2&regions={}&industries=&time_zone=Asia%2FShanghai\
         &cap_max_open=12&cap_max_per_day=5&hours_mon=09%3A00-12%3A00%2C+13%3A00-18%3A00&hours_fri=09%3A00-17%3A00\
         &leaves=2026-12-01..2026-12-05&email=new%40example.com&mobile=",
        encode("新人"),
        encode("华东, 华南")
    );
    let saved = submit(&app, "/admin/reps", &cookie, &fields).await;
    assert_eq!(
        saved.location.as_deref(),
        Some("/admin/reps?id=r09&notice=ok")
    );
    let (_, rep) = app.get("/api/v1/reps/r09").await;
    assert_eq!(rep["caps"]["max_open"], json!(12));
    assert_eq!(rep["weight"], json!(2.0));
    assert_eq!(rep["regions"], json!(["华东", "华南"]));
    assert_eq!(
        rep["working_hours"]["mon"],
        json!(["09:00-12:00", "13:00-18:00"])
    );
    assert_eq!(
        rep["leaves"],
        json!([{"from": "2026-12-01", "until": "2026-12-05"}])
    );
    assert_eq!(rep["contact"]["email"], json!("new@example.com"));
    // A bad document comes back with the API's reason.
    let bad = submit(
        &app,
        "/admin/reps",
        &cookie,
        &format!(
            "csrf={csrf}&id=r09&action=save&document={}",
            encode(r#"{"weight": -1}"#)
        ),
    )
    .await;
    assert_eq!(
        bad.location.as_deref(),
        Some("/admin/reps?notice=invalid_value%3Aweight")
    );
    // The notice says what was wrong and where, in the page's language.
    let said = visit(
        &app,
        "GET",
        "/admin/reps?notice=invalid_value%3Aweight",
        &cookie,
        None,
        "zh-CN",
    )
    .await;
    assert!(said.html.contains("取值不正确 (weight)"), "{}", said.html);
    // A channel with its secret hidden, and a test send that fails visibly (nobody listens).
    let channel = r#"{"id": "hook", "name": "Hook", "kind": "webhook", "url": "http://127.0.0.1:9/hook", "secret": "s3cret"}"#;
    submit(
        &app,
        "/admin/channels",
        &cookie,
        &format!("csrf={csrf}&id=&action=save&document={}", encode(channel)),
    )
    .await;
    let editor = visit(
        &app,
        "GET",
        "/admin/channels?id=hook",
        &cookie,
        None,
        "zh-CN",
    )
    .await;
    assert!(
        editor.html.contains("secret_set") && !editor.html.contains("s3cret"),
        "{}",
        editor.html
    );
    let test = submit(
        &app,
        "/admin/channels",
        &cookie,
        &format!("csrf={csrf}&id=hook&action=test"),
    )
    .await;
    assert_eq!(
        test.location.as_deref(),
        Some("/admin/channels?notice=channel_failed")
    );
    // Users and keys: a key is shown once, then revoked.
    let user = submit(&app, "/admin/accounts", &cookie, &format!("csrf={csrf}&action=create_user&username=mgr&role=manager&teams=t&password=long+enough+password")).await;
    assert_eq!(user.location.as_deref(), Some("/admin/accounts?notice=ok"));
    // The form ticks teams by name; the manager gets the ticked team.
    let ticked = submit(&app, "/admin/accounts", &cookie, &format!("csrf={csrf}&action=create_user&username=mgr2&role=manager&team_t=on&password=long+enough+password")).await;
    assert_eq!(
        ticked.location.as_deref(),
        Some("/admin/accounts?notice=ok")
    );
    let (_, users) = app.get("/api/v1/users").await;
    let mgr2 = users["items"]
        .as_array()
        .expect("users")
        .iter()
        .find(|user| user["username"] == "mgr2")
        .cloned()
        .unwrap_or_default();
    assert_eq!(mgr2["teams"], json!(["t"]), "{users}");
    let key = submit(
        &app,
        "/admin/accounts",
        &cookie,
        &format!("csrf={csrf}&action=create_key&name=crm&role=integration"),
    )
    .await;
    let shown = key
        .html
        .split("id=\"new-key\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("the new key")
        .to_owned();
    assert!(shown.starts_with("lr_"));
    let page = visit(&app, "GET", "/admin/accounts", &cookie, None, "zh-CN").await;
    assert!(
        page.html.contains("mgr") && !page.html.contains(&shown),
        "listed by prefix only"
    );
    // A rep is not let in.
    let (rep_cookie, _) = sign_in(&app, "rep0").await;
    let refused = visit(&app, "GET", "/admin/reps", &rep_cookie, None, "zh-CN").await;
    assert_eq!(refused.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn calendars_and_sla_policies_are_edited_as_forms() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    setup(&app).await;
    let (cookie, csrf) = sign_in(&app, "boss").await;
    let encode =
        |text: &str| url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
    // A new calendar from the form: a holiday week written as one range, a make-up Sunday.
    let form = visit(&app, "GET", "/admin/calendars", &cookie, None, "zh-CN").await;
    assert!(
        form.html.contains("id=\"calendar-form\"") && form.html.contains("调休上班日"),
        "{}",
        form.html
    );
    let created = submit(&app, "/admin/calendars", &cookie, &format!(
            "csrf={csrf}&id=&action=save_form&new_id=cn-office&name={}&time_zone=Asia%2FShanghai\
             &hours_mon={hours}&hours_tue={hours}&hours_wed={hours}&hours_thu={hours}&hours_fri={hours}\
             &holidays={}&makeup_days=2026-09-27&makeup_hours=",
            encode("中国办公室"),
            encode("2026-10-01..2026-10-07\n2027-01-01"),
            hours = encode("09:00-12:00, 13:30-18:00"),
        ))
    .await;
    assert_eq!(
        created.location.as_deref(),
        Some("/admin/calendars?id=cn-office&notice=ok")
    );
    let (status, calendar) = app.get("/api/v1/calendars/cn-office").await;
    assert_eq!(status, StatusCode::OK, "{calendar}");
    assert_eq!(calendar["holidays"].as_array().map(Vec::len), Some(8));
    assert_eq!(calendar["holidays"][6], json!("2026-10-07"));
    assert_eq!(calendar["makeup_days"], json!(["2026-09-27"]));
    assert_eq!(
        calendar["hours"]["mon"],
        json!(["09:00-12:00", "13:30-18:00"])
    );
    assert!(calendar["hours"]["sat"].is_null(), "{calendar}");
    // Shown back in the form, a date per line.
    let shown = visit(
        &app,
        "GET",
        "/admin/calendars?id=cn-office",
        &cookie,
        None,
        "zh-CN",
    )
    .await;
    assert!(
        shown.html.contains("2026-10-01\n2026-10-02")
            && shown.html.contains("value=\"09:00-12:00, 13:30-18:00\""),
        "{}",
        shown.html
    );
    // A bad date is refused with where it is; nothing changes.
    let bad = submit(&app, "/admin/calendars", &cookie, &format!(
            "csrf={csrf}&id=cn-office&action=save_form&name=x&time_zone=Asia%2FShanghai&holidays=2026-13-01"
        ))
    .await;
    let notice = bad.location.expect("back to the page");
    assert!(notice.contains("notice=invalid_value"), "{notice}");
    let (_, unchanged) = app.get("/api/v1/calendars/cn-office").await;
    assert_eq!(unchanged["name"], json!("中国办公室"));

    // The default SLA policy's ladder as rows: one rung changed, one added, one blanked out.
    let policy = visit(
        &app,
        "GET",
        "/admin/sla-policies?id=default",
        &cookie,
        None,
        "en",
    )
    .await;
    assert!(
        policy.html.contains("id=\"sla-form\"")
            && policy.html.contains("name=\"step_after_0\" value=\"1h\"")
            && policy.html.contains("Reclaim and reassign")
            && policy.html.contains("<option value=\"cn-office\""),
        "{}",
        policy.html
    );
    let saved = visit(
        &app,
        "POST",
        "/admin/sla-policies",
        &cookie,
        Some(&format!(
            "csrf={csrf}&id=default&action=save_form&name=Default&calendar=cn-office&hop_limit=2\
             &step_after_0=30m&step_action_0=remind&step_after_1=&step_action_1=escalate\
             &step_after_2=8h&step_action_2=reclaim&step_after_3=16h&step_action_3=pool\
             &recycle_after=30d&warn_before=3d"
        )),
        "en",
    )
    .await;
    assert_eq!(
        saved.location.as_deref(),
        Some("/admin/sla-policies?id=default&notice=ok")
    );
    let (_, policy) = app.get("/api/v1/sla-policies/default").await;
    assert_eq!(
        policy["steps"],
        json!([
            {"after": "30m", "action": "remind"},
            {"after": "8h", "action": "reclaim"},
            {"after": "16h", "action": "pool"}
        ]),
        "{policy}"
    );
    assert_eq!(policy["calendar"], json!("cn-office"));
    assert_eq!(policy["hop_limit"], json!(2));
    assert_eq!(
        policy["cadence"],
        json!({"recycle_after": "30d", "warn_before": "3d"})
    );
    // A duration the API cannot read is refused at its field, in the page's language.
    let bad = visit(
        &app,
        "POST",
        "/admin/sla-policies",
        &cookie,
        Some(&format!(
            "csrf={csrf}&id=default&action=save_form&name=Default&step_after_0=soon&step_action_0=remind"
        )),
        "en",
    )
    .await;
    let back = bad.location.expect("back to the page");
    assert!(back.contains("notice=invalid_value"), "{back}");
    let said = visit(&app, "GET", &back, &cookie, None, "en").await;
    assert!(
        said.html.contains("A value is not acceptable ("),
        "{}",
        said.html
    );
    let (_, kept) = app.get("/api/v1/sla-policies/default").await;
    assert_eq!(kept["steps"], policy["steps"], "nothing half-written");
}

#[tokio::test]
async fn custom_fields_are_declared_in_the_console_and_offered_to_the_rule_editor() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    setup(&app).await;
    let (cookie, csrf) = sign_in(&app, "boss").await;
    let page = visit(&app, "GET", "/admin/fields", &cookie, None, "zh-CN").await;
    assert!(
        page.html.contains("自定义字段") && page.html.contains("<code>rep.regions</code>"),
        "{}",
        page.html
    );
    for (entity, name, kind) in [
        ("lead", "account_owner", "text"),
        ("rep", "seniority", "number"),
    ] {
        let created = submit(
            &app,
            "/admin/fields",
            &cookie,
            &format!("csrf={csrf}&action=create&entity={entity}&name={name}&type={kind}"),
        )
        .await;
        assert_eq!(created.location.as_deref(), Some("/admin/fields?notice=ok"));
    }
    let twice = submit(
        &app,
        "/admin/fields",
        &cookie,
        &format!("csrf={csrf}&action=create&entity=lead&name=account_owner&type=text"),
    )
    .await;
    assert_eq!(
        twice.location.as_deref(),
        Some("/admin/fields?notice=already_exists%3Aname")
    );
    let listed = visit(&app, "GET", "/admin/fields", &cookie, None, "zh-CN").await;
    assert!(
        listed
            .html
            .contains("<code>attributes.account_owner</code>")
            && listed
                .html
                .contains("<code>rep.attributes.seniority</code>"),
        "{}",
        listed.html
    );
    // A lead carrying one shows it on its page.
    let mut body = lead("attributed-1");
    body["attributes"] = json!({"account_owner": "r01"});
    let created = app.ok("/api/v1/leads", &body, StatusCode::CREATED).await;
    let page = visit(
        &app,
        "GET",
        &format!("/leads/{}", created["lead"]["id"].as_str().expect("id")),
        &cookie,
        None,
        "zh-CN",
    )
    .await;
    assert!(
        page.html.contains("<dt>account_owner</dt><dd>r01</dd>"),
        "{}",
        page.html
    );
    // The rule editor offers them in its field lists.
    let added = submit(&app, "/rules/edit", &cookie, &format!(
            "csrf={csrf}&rules=1&r0_id=all&r0_target=team%3At&r0_c_count=0&r0_q_count=0&action=add_requirement%3A0"
        ))
    .await;
    assert!(
        added
            .html
            .contains("<option value=\"rep.attributes.seniority\"")
            && added
                .html
                .contains("<option value=\"attributes.account_owner\""),
        "{}",
        added.html
    );
    // Removed again.
    let removed = submit(
        &app,
        "/admin/fields",
        &cookie,
        &format!("csrf={csrf}&action=delete&entity=rep&name=seniority"),
    )
    .await;
    assert_eq!(removed.location.as_deref(), Some("/admin/fields?notice=ok"));
    let (_, fields) = app.get("/api/v1/fields").await;
    assert!(!fields.to_string().contains("seniority"), "{fields}");
}

#[tokio::test]
async fn a_team_is_edited_as_a_form_keeping_what_the_form_does_not_show() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    setup(&app).await;
    let (cookie, csrf) = sign_in(&app, "boss").await;
    let (status, _) = app
        .patch(
            "/api/v1/teams/t",
            &json!({"default_strategy": {"type": "fair_share", "window": "week"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let form = visit(&app, "GET", "/admin/teams?id=t", &cookie, None, "zh-CN").await;
    assert!(
        form.html.contains("id=\"team-form\"")
            && form.html.contains("name=\"member_r00\" checked")
            && form.html.contains("name=\"strategy_json\""),
        "{}",
        form.html
    );
    let kept = url::form_urlencoded::byte_serialize(br#"{"type":"fair_share","window":"week"}"#)
        .collect::<String>();
    // r01 leaves the team, r00 weighs double; strategy unchanged, so its window stays.
    let saved = submit(&app, "/admin/teams", &cookie, &format!(
            "csrf={csrf}&id=t&action=save_form&name=Team&manager_id=r00&member_r00=on&weight_r00=2&weight_r01=\
             &strategy=fair_share&strategy_json={kept}&overflow=pool%3Apublic&hours_policy=any_time\
             &calendar=&sla_policy=&leave_policy=hand_back&batch_policy=optimal"
        ))
    .await;
    assert_eq!(
        saved.location.as_deref(),
        Some("/admin/teams?id=t&notice=ok")
    );
    let (_, team) = app.get("/api/v1/teams/t").await;
    assert_eq!(
        team["members"],
        json!([{"rep_id": "r00", "weight": 2.0}]),
        "{team}"
    );
    assert_eq!(
        (
            &team["default_strategy"]["type"],
            &team["default_strategy"]["window"]
        ),
        (&json!("fair_share"), &json!("week"))
    );
    assert_eq!(team["overflow"], json!({"pool": "public"}));
    assert_eq!(team["manager_id"], json!("r00"));
    assert_eq!(team["leave_policy"], json!("hand_back"));
    assert_eq!(team["batch_policy"], json!("optimal"));
    assert_eq!(team["away_fallback"], json!(false));
    let form = visit(&app, "GET", "/admin/teams?id=t", &cookie, None, "zh-CN").await;
    assert!(
        form.html
            .contains("<option value=\"optimal\" selected>整批最优分配（±10% 公平区间）</option>"),
        "{}",
        form.html
    );
    // Another strategy: the old one's settings go.
    submit(
        &app,
        "/admin/teams",
        &cookie,
        &format!(
            "csrf={csrf}&id=t&action=save_form&name=Team&member_r00=on&member_r01=on\
             &strategy=least_loaded&strategy_json={kept}&hours_policy=in_hours&away_fallback=on"
        ),
    )
    .await;
    let (_, team) = app.get("/api/v1/teams/t").await;
    assert_eq!(
        team["default_strategy"]["type"],
        json!("least_loaded"),
        "{team}"
    );
    assert!(team["default_strategy"]["window"].is_null(), "{team}");
    assert_eq!(team["members"].as_array().map(Vec::len), Some(2));
    assert_eq!(team["away_fallback"], json!(true));
    assert!(
        team["overflow"].is_null() && team["manager_id"].is_null(),
        "{team}"
    );
    // A new team from the form.
    let created = submit(&app, "/admin/teams", &cookie, &format!(
            "csrf={csrf}&id=&action=save_form&new_id=night&name={}&member_r01=on&strategy=round_robin&hours_policy=any_time",
            url::form_urlencoded::byte_serialize("夜班".as_bytes()).collect::<String>()
        ))
    .await;
    assert_eq!(
        created.location.as_deref(),
        Some("/admin/teams?id=night&notice=ok")
    );
    let (_, night) = app.get("/api/v1/teams/night").await;
    assert_eq!(night["members"][0]["rep_id"], json!("r01"), "{night}");
}

#[tokio::test]
async fn a_pool_is_edited_as_a_form() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    setup(&app).await;
    let (cookie, csrf) = sign_in(&app, "boss").await;
    let form = visit(
        &app,
        "GET",
        "/admin/pools?id=public",
        &cookie,
        None,
        "zh-CN",
    )
    .await;
    assert!(
        form.html.contains("id=\"pool-form\"") && form.html.contains("name=\"team_t\""),
        "{}",
        form.html
    );
    let saved = submit(&app, "/admin/pools", &cookie, &format!(
            "csrf={csrf}&id=public&action=save_form&name=%E5%85%AC%E6%B5%B7&team_t=on&reps=\
             &claims_per_day=3&cooldown=7d&touch_within=24h&protect_initial=15d&protect_extend=7d&protect_max=60d"
        ))
    .await;
    assert_eq!(
        saved.location.as_deref(),
        Some("/admin/pools?id=public&notice=ok")
    );
    let (_, pool) = app.get("/api/v1/pools/public").await;
    assert_eq!(pool["teams"], json!(["t"]), "{pool}");
    assert_eq!(pool["claims_per_day"], json!(3));
    assert_eq!(
        (&pool["cooldown"], &pool["touch_within"]),
        (&json!("7d"), &json!("24h"))
    );
    assert_eq!(pool["protection"]["initial"], json!("15d"));
    assert_eq!(pool["protection"]["max"], json!("60d"));
    // Shown back; then everyone may claim again and protection is off.
    let shown = visit(
        &app,
        "GET",
        "/admin/pools?id=public",
        &cookie,
        None,
        "zh-CN",
    )
    .await;
    assert!(
        shown.html.contains("name=\"team_t\" checked")
            && shown.html.contains("name=\"protect_max\" value=\"60d\""),
        "{}",
        shown.html
    );
    submit(&app, "/admin/pools", &cookie, &format!(
            "csrf={csrf}&id=public&action=save_form&name=%E5%85%AC%E6%B5%B7&claims_per_day=&protect_initial="
        ))
    .await;
    let (_, pool) = app.get("/api/v1/pools/public").await;
    assert_eq!(pool["teams"], json!([]), "{pool}");
    assert!(
        pool["protection"].is_null() && pool["claims_per_day"].is_null(),
        "{pool}"
    );
    // A bad duration comes back with its field.
    let bad = submit(
        &app,
        "/admin/pools",
        &cookie,
        &format!("csrf={csrf}&id=public&action=save_form&name=x&cooldown=soon"),
    )
    .await;
    let back = bad.location.expect("back");
    assert!(back.contains("notice=invalid_value%3Acooldown"), "{back}");
}

#[tokio::test]
async fn a_channel_is_edited_as_a_form_with_its_secret_write_only() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    setup(&app).await;
    let (cookie, csrf) = sign_in(&app, "boss").await;
    let form = visit(&app, "GET", "/admin/channels", &cookie, None, "zh-CN").await;
    assert!(
        form.html.contains("id=\"channel-form\"") && form.html.contains("企业微信群机器人"),
        "{}",
        form.html
    );
    let created = submit(&app, "/admin/channels", &cookie, &format!(
            "csrf={csrf}&id=&action=save_form&new_id=crm&name=CRM&kind=webhook&language=en&enabled=on\
             &url=https%3A%2F%2Fcrm.example.com%2Fhook&secret=s3cret-value\
             &event_lead.assigned=on&event_lead.won=on&team_t=on&max_attempts=5&per_minute=30"
        ))
    .await;
    assert_eq!(
        created.location.as_deref(),
        Some("/admin/channels?id=crm&notice=ok")
    );
    let (_, channel) = app.get("/api/v1/channels/crm").await;
    assert_eq!(
        channel["events"],
        json!(["lead.assigned", "lead.won"]),
        "{channel}"
    );
    assert_eq!(channel["teams"], json!(["t"]));
    assert_eq!(channel["secret_set"], json!(true));
    assert_eq!(channel["max_attempts"], json!(5));
    // The form never shows the secret; saving with the field empty keeps it.
    let shown = visit(
        &app,
        "GET",
        "/admin/channels?id=crm",
        &cookie,
        None,
        "zh-CN",
    )
    .await;
    assert!(
        !shown.html.contains("s3cret-value")
            && shown.html.contains("已设置（留空不变）")
            && shown.html.contains("name=\"event_lead.won\" checked"),
        "{}",
        shown.html
    );
    submit(&app, "/admin/channels", &cookie, &format!(
            "csrf={csrf}&id=crm&action=save_form&name=CRM&kind=webhook&language=zh&url=https%3A%2F%2Fcrm.example.com%2Fhook2&secret="
        ))
    .await;
    let (_, channel) = app.get("/api/v1/channels/crm").await;
    assert_eq!(channel["secret_set"], json!(true), "{channel}");
    assert_eq!(channel["url"], json!("https://crm.example.com/hook2"));
    assert_eq!(channel["enabled"], json!(false));
    assert_eq!(channel["events"], json!([]));
    // An email channel: the SMTP settings from their fields, the URL dropped.
    let email = submit(&app, "/admin/channels", &cookie, &format!(
            "csrf={csrf}&id=&action=save_form&new_id=mail&name=Mail&kind=email&enabled=on\
             &url=&smtp_host=smtp.example.com&smtp_port=587&smtp_security=starttls&smtp_username=leads\
             &smtp_from=leads%40example.com&secret=pw"
        ))
    .await;
    assert_eq!(
        email.location.as_deref(),
        Some("/admin/channels?id=mail&notice=ok")
    );
    let (_, mail) = app.get("/api/v1/channels/mail").await;
    assert_eq!(mail["smtp"]["host"], json!("smtp.example.com"), "{mail}");
    assert_eq!(mail["smtp"]["port"], json!(587));
    assert!(mail["url"].is_null(), "{mail}");
    // A kind the API does not know is refused at its field.
    let bad = submit(
        &app,
        "/admin/channels",
        &cookie,
        &format!("csrf={csrf}&id=crm&action=save_form&name=CRM&kind=pigeon"),
    )
    .await;
    let back = bad.location.expect("back");
    assert!(back.contains("kind"), "{back}");
    // A CRM connector: its app id, second credential and CRM settings from their fields.
    let crm = submit(
        &app,
        "/admin/channels",
        &cookie,
        &format!(
            "csrf={csrf}&id=&action=save_form&new_id=fx&name=FX&kind=fxiaoke&enabled=on&url=\
             &app_id=FSAID_1&secret=app-secret&token=perm-code&crm={}",
            url::form_urlencoded::byte_serialize(br#"{"operator": "FSUID_ADMIN"}"#)
                .collect::<String>()
        ),
    )
    .await;
    assert_eq!(
        crm.location.as_deref(),
        Some("/admin/channels?id=fx&notice=ok")
    );
    let (_, fx) = app.get("/api/v1/channels/fx").await;
    assert_eq!(fx["crm"]["operator"], json!("FSUID_ADMIN"), "{fx}");
    assert_eq!(
        (fx["token_set"].clone(), fx.get("token")),
        (json!(true), None)
    );
    let shown = visit(&app, "GET", "/admin/channels?id=fx", &cookie, None, "en").await;
    assert!(
        !shown.html.contains("perm-code")
            && shown.html.contains("纷享销客 (CRM write-back)")
            && shown.html.contains("FSUID_ADMIN"),
        "{}",
        shown.html
    );
    // Without the operator the connector is refused at its field.
    let bad = submit(
        &app,
        "/admin/channels",
        &cookie,
        &format!("csrf={csrf}&id=fx&action=save_form&name=FX&kind=fxiaoke&app_id=FSAID_1&crm="),
    )
    .await;
    let back = bad.location.expect("back");
    assert!(back.contains("crm.operator"), "{back}");
}

#[tokio::test]
async fn an_intake_source_is_made_from_a_preset_in_the_console() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    setup(&app).await;
    let (cookie, csrf) = sign_in(&app, "boss").await;
    let form = visit(&app, "GET", "/admin/intake-sources", &cookie, None, "zh-CN").await;
    assert!(form.html.contains("Meta 线索广告"), "{}", form.html);
    let created = submit(
        &app,
        "/admin/intake-sources",
        &cookie,
        &format!(
            "csrf={csrf}&id=&action=save_form&new_id=gads&name=Google&auth=token&preset=google_ads\
             &secret=the-key&rows=0"
        ),
    )
    .await;
    assert_eq!(
        created.location.as_deref(),
        Some("/admin/intake-sources?id=gads&notice=ok")
    );
    let (_, source) = app.get("/api/v1/intake-sources/gads").await;
    assert_eq!(source["auth"], json!("google_key"), "{source}");
    assert_eq!(
        source["mapping"]["name"],
        json!("columns.FULL_NAME|columns.FIRST_NAME")
    );
    let shown = visit(
        &app,
        "GET",
        "/admin/intake-sources?id=gads",
        &cookie,
        None,
        "zh-CN",
    )
    .await;
    assert!(
        shown
            .html
            .contains("columns.PHONE_NUMBER|columns.WORK_PHONE")
            && !shown.html.contains("the-key"),
        "{}",
        shown.html
    );
}

#[tokio::test]
async fn an_intake_source_is_edited_as_a_form_and_takes_a_form_post() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    setup(&app).await;
    let (cookie, csrf) = sign_in(&app, "boss").await;
    let form = visit(&app, "GET", "/admin/intake-sources", &cookie, None, "zh-CN").await;
    let rows: usize = form
        .html
        .split("name=\"rows\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|count| count.parse().ok())
        .expect("a row count");
    let row_of = |field: &str| {
        form.html
            .split("_field\" value=\"")
            .skip(1)
            .position(|rest| rest.starts_with(&format!("{field}\"")))
            .expect("a row for the field")
    };
    let encode =
        |text: &str| url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
    let (name, phone, province, source, size) = (
        row_of("name"),
        row_of("phone"),
        row_of("province"),
        row_of("source"),
        row_of("company_size"),
    );
    let created = submit(&app, "/admin/intake-sources", &cookie, &format!(
            "csrf={csrf}&id=&action=save_form&new_id=site&name={}&auth=token&rows={rows}\
             &f{name}_field=name&f{name}_path={}&f{phone}_field=phone&f{phone}_path={}\
             &f{province}_field=province&f{province}_path=province&f{province}_values={}\
             &f{source}_field=source&f{source}_default={}&f{size}_field=company_size&f{size}_default=50",
            encode("官网表单"),
            encode("姓名"),
            encode("手机"),
            encode("北京=北京市\n沪=上海市"),
            encode("官网"),
        ))
    .await;
    assert_eq!(
        created.location.as_deref(),
        Some("/admin/intake-sources?id=site&notice=ok")
    );
    let (_, stored) = app.get("/api/v1/intake-sources/site").await;
    assert_eq!(
        stored["mapping"],
        json!({"name": "姓名", "phone": "手机", "province": "province"}),
        "{stored}"
    );
    assert_eq!(
        stored["defaults"],
        json!({"source": "官网", "company_size": 50})
    );
    assert_eq!(
        stored["values"],
        json!({"province": {"北京": "北京市", "沪": "上海市"}})
    );
    // The page shows where to post; a web form posting there makes a lead.
    let page = visit(
        &app,
        "GET",
        "/admin/intake-sources?id=site",
        &cookie,
        None,
        "zh-CN",
    )
    .await;
    let address = page
        .html
        .split("id=\"intake-address\">POST ")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("the address")
        .replace("&amp;", "&");
    let posted = submit(
        &app,
        &address,
        "",
        &format!(
            "{}={}&{}=13900139000&province={}",
            encode("姓名"),
            encode("刘女士"),
            encode("手机"),
            encode("沪")
        ),
    )
    .await;
    assert!(
        posted.status.is_success(),
        "{} {}",
        posted.status,
        posted.html
    );
    let (_, leads) = app.get("/api/v1/leads?limit=50").await;
    let lead = leads["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|lead| lead["source"] == json!("官网"))
        .cloned()
        .expect("the posted lead");
    // 沪 → 上海市 by the value map, then 上海 and 华东 by intake's own normalising.
    assert_eq!(
        (&lead["province"], &lead["region"]),
        (&json!("上海"), &json!("华东")),
        "{lead}"
    );
    assert_eq!(lead["company_size"].as_f64(), Some(50.0));
    // Saved again unchanged from its own page: nothing lost.
    let mut fields = vec![
        format!("csrf={csrf}"),
        "id=site".into(),
        "action=save_form".into(),
    ];
    for part in page
        .html
        .split("<input ")
        .skip(1)
        .chain(page.html.split("<textarea ").skip(1))
    {
        let attribute = |name: &str| {
            part.split(&format!("{name}=\""))
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .map(|value| {
                    value
                        .replace("&amp;", "&")
                        .replace("&#x27;", "'")
                        .replace("&quot;", "\"")
                })
        };
        let Some(field) = attribute("name") else {
            continue;
        };
        if !(field.starts_with('f') || field == "rows" || field == "name" || field == "redirect_to")
        {
            continue;
        }
        let value = if part.starts_with(&format!("name=\"{field}\"")) && field.ends_with("_values")
        {
            part.split('>')
                .nth(1)
                .and_then(|rest| rest.split("</textarea").next())
                .unwrap_or("")
                .to_owned()
        } else {
            attribute("value").unwrap_or_default()
        };
        fields.push(format!("{}={}", encode(&field), encode(&value)));
    }
    fields.push("auth=token".into());
    assert!(fields.len() > 60, "every row's fields: {fields:?}");
    let resaved = submit(&app, "/admin/intake-sources", &cookie, &fields.join("&")).await;
    assert_eq!(
        resaved.location.as_deref(),
        Some("/admin/intake-sources?id=site&notice=ok")
    );
    let (_, again) = app.get("/api/v1/intake-sources/site").await;
    assert_eq!(
        (&again["mapping"], &again["defaults"], &again["values"]),
        (&stored["mapping"], &stored["defaults"], &stored["values"]),
        "{again}"
    );
}

/// The dashboard's figures, counted by the database, on both backends.
async fn dashboard_counts(backend: Backend) {
    let Some(app) = TestApp::without_clock(backend).await else {
        return;
    };
    let ids = setup(&app).await;
    let number = |html: &str, id: &str| {
        html.split(&format!("<b id=\"{id}\">"))
            .nth(1)
            .and_then(|rest| rest.split('<').next())
            .unwrap_or_default()
            .to_owned()
    };
    // Lead 0 answered and won; lead 1 lost; leads 2 and 3 left unanswered.
    let (_, zero) = app.get(&format!("/api/v1/leads/{}", ids[0])).await;
    let owner = zero["owner_id"].as_str().expect("owner").to_owned();
    let rep = app.key(server::auth::Role::Admin).await;
    let (status, answer) = app
        .send(
            axum::http::Method::POST,
            &format!("/api/v1/leads/{}/activities", ids[0]),
            Some(&json!({"kind": "call", "outcome": "reached", "rep_id": owner})),
            Some(&rep),
        )
        .await;
    assert!(status.is_success(), "{answer}");
    for (id, change) in [
        (&ids[0], json!({"status": "won", "amount": 1200})),
        (&ids[1], json!({"status": "lost", "lost_reason": "budget"})),
    ] {
        let (status, answer) = app.patch(&format!("/api/v1/leads/{id}"), &change).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    // Ten days on: the ladder reminded, escalated and reclaimed the two unanswered leads.
    app.state
        .router
        .tick(chrono::Utc::now() + chrono::Duration::days(10))
        .await
        .expect("tick");
    let mut reclaims = 0;
    for id in &ids[2..] {
        let (_, decisions) = app.get(&format!("/api/v1/leads/{id}/decisions")).await;
        reclaims += decisions["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|item| item["kind"] == json!("reclaim"))
            .count();
    }
    assert!(reclaims > 0, "the ladder reclaimed");
    // A deal that came in long before the window and was won in it: on the leaderboard, not
    // among the leads in.
    let long_ago = (chrono::Utc::now() - chrono::Duration::days(40)).timestamp_micros();
    let old_deal = store::LeadRow {
        id: "old-deal".into(),
        document: r#"{"name":"老客户"}"#.into(),
        status: "won".into(),
        owner_id: Some("r01".into()),
        team_id: Some("t".into()),
        tags: "[]".into(),
        created_at: long_ago,
        updated_at: long_ago,
        assigned_at: Some(long_ago),
        closed_at: Some(chrono::Utc::now().timestamp_micros()),
        amount: Some(5000.0),
        previous_owners: "[]".into(),
        ..store::LeadRow::default()
    };
    let mut connection = app.state.store.routing_connection().await.expect("tx");
    let mut tx = connection.begin().await.expect("tx");
    tx.insert_leads(std::slice::from_ref(&old_deal))
        .await
        .expect("insert");
    // Intake writes new leads; how they end is an update.
    tx.update_lead(&old_deal).await.expect("update");
    tx.commit().await.expect("commit");
    drop(connection);
    let (cookie, _) = sign_in(&app, "boss").await;
    let page = visit(&app, "GET", "/?days=7", &cookie, None, "en").await;
    let html = &page.html;
    assert_eq!(number(html, "leads-in"), "4", "{html}");
    assert_eq!(number(html, "assigned"), "4");
    assert_eq!(number(html, "held"), "0");
    assert!(
        html.contains("href=\"/leads?held=1\""),
        "the hold queue is a link"
    );
    let queue = visit(&app, "GET", "/leads?held=1", &cookie, None, "en").await;
    assert!(
        queue.html.contains("name=\"held\" value=\"1\" checked"),
        "{}",
        queue.html
    );
    assert_eq!(
        number(html, "sla-met"),
        "50%",
        "two of four missed their first response"
    );
    assert_eq!(number(html, "reclaims"), reclaims.to_string());
    assert_ne!(number(html, "p50"), "–", "lead 0 was answered");
    assert!(html.contains("官网 (1/2)"), "conversion by source: {html}");
    assert!(html.contains("all (1/2)"), "conversion by rule");
    // Won in the window: lead 0 and the old deal, with their amounts in yuan.
    assert_eq!(number(html, "won"), "2");
    assert_eq!(number(html, "won-amount"), "¥6,200");
    // The funnel: four in, one answered, one won, one lost.
    let funnel = html
        .split("id=\"table-funnel\"")
        .nth(1)
        .and_then(|rest| rest.split("</section>").next())
        .unwrap_or_default();
    for stage in ["Leads in", "Contacted", "Qualified", "Won", "lost"] {
        assert!(funnel.contains(stage), "{stage}: {funnel}");
    }
    // Each rep's row: the old deal's owner with it won and its amount.
    let reps = html
        .split("id=\"table-reps\"")
        .nth(1)
        .and_then(|rest| rest.split("</section>").next())
        .unwrap_or_default();
    let rep_one = reps
        .split("<tr>")
        .find(|row| row.contains(">Rep 1<"))
        .unwrap_or_default();
    assert!(rep_one.contains("¥5,000"), "{rep_one}");
    // Every count that links to leads names as many as the list it links to shows.
    for card in ["leads-in", "assigned", "overdue", "untouched", "won"] {
        let link = html
            .split(&format!("<b id=\"{card}\">"))
            .next()
            .and_then(|before| before.rsplit("href=\"").next())
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_default()
            .replace("&amp;", "&")
            .replace("&#38;", "&");
        assert!(link.starts_with("/leads?"), "{card}: {link}");
        let list = visit(&app, "GET", &link, &cookie, None, "en").await;
        let total = list
            .html
            .split("id=\"lead-total\">")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .unwrap_or_default()
            .to_owned();
        assert_eq!(total, number(html, card), "{card} links to {link}");
    }
    // A rep's count of leads given to them links to exactly those leads.
    let mut followed = 0;
    for link in reps.split("href=\"").skip(1) {
        let (href, rest) = link.split_once('"').unwrap_or_default();
        if !href.contains("handled_by=") {
            continue;
        }
        let count = rest
            .trim_start_matches('>')
            .split('<')
            .next()
            .unwrap_or_default();
        let href = href.replace("&amp;", "&").replace("&#38;", "&");
        let list = visit(&app, "GET", &href, &cookie, None, "en").await;
        let total = list
            .html
            .split("id=\"lead-total\">")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .unwrap_or_default()
            .to_owned();
        assert_eq!(total, count, "{href}");
        followed += 1;
    }
    assert_eq!(followed, 2, "one link per rep");
    // The tables export with the same rows, as CSV and as an Excel workbook.
    let csv = visit(
        &app,
        "GET",
        "/dashboard/export?table=reps&format=csv&days=7",
        &cookie,
        None,
        "en",
    )
    .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.html.contains("Rep 1") && csv.html.contains(",5000,"),
        "{}",
        csv.html
    );
    let xlsx = visit(
        &app,
        "GET",
        "/dashboard/export?table=funnel&format=xlsx&days=7",
        &cookie,
        None,
        "zh-CN",
    )
    .await;
    assert_eq!(xlsx.status, StatusCode::OK);
    assert!(xlsx.html.starts_with("PK"), "a workbook is a zip file");
    let wrong = visit(
        &app,
        "GET",
        "/dashboard/export?table=secrets&format=csv",
        &cookie,
        None,
        "en",
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    // The same figures over the API, for BI tools: numbers, not words.
    let (status, report) = app.get("/api/v1/reports/dashboard?days=7").await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["leads_in"], 4);
    assert_eq!(report["won"], 2);
    assert_eq!(report["amount"], 6200.0);
    assert_eq!(report["funnel"]["lost"], 1);
    assert_eq!(report["trend"].as_array().map(Vec::len), Some(7));
    // Each rep counts the leads given to them: four arrivals, and the two reclaimed ones again
    // for their new owners; the two reps let those two wait, so their SLA is below 100%.
    let reps = report["reps"].as_array().expect("reps");
    let given: i64 = reps.iter().filter_map(|rep| rep["leads"].as_i64()).sum();
    assert_eq!(given, 6, "{report}");
    assert!(
        reps.iter()
            .any(|rep| rep["sla_met"].as_f64().is_some_and(|met| met < 1.0)),
        "{report}"
    );
    let (status, refused) = app.get("/api/v1/reports/dashboard?days=0").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["error"]["field"], "days");
    let (status, scorecard) = app.get("/api/v1/reports/reps/r01?days=7").await;
    assert_eq!(status, StatusCode::OK, "{scorecard}");
    assert_eq!(scorecard["reps"][0]["amount"], 5000.0);
    // A rep's scorecard: their own figures.
    let card = visit(
        &app,
        "GET",
        "/reps/r01/scorecard?days=7",
        &cookie,
        None,
        "en",
    )
    .await;
    assert_eq!(card.status, StatusCode::OK);
    assert!(card.html.contains("¥5,000"), "{}", card.html);
    // Ten more days: the reclaimed leads' new owners let them wait too. Each rep's missed count
    // is the leads the clock reminded or escalated to them about, each lead once per rep.
    let later = chrono::Utc::now() + chrono::Duration::days(20);
    app.state.router.tick(later).await.expect("tick");
    let mut expected: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        Default::default();
    for event in ["lead.sla_reminder", "lead.sla_escalated"] {
        let rows = app
            .state
            .store
            .list_outbox(&store::EventFilter {
                lead_id: None,
                event: Some(event.into()),
                after_id: None,
                limit: 1000,
            })
            .await
            .expect("events");
        for row in rows {
            if let (Some(rep), Some(lead)) = (row.rep_id, row.lead_id) {
                expected.entry(rep).or_default().insert(lead);
            }
        }
    }
    let expected: Vec<(String, i64)> = expected
        .into_iter()
        .map(|(rep, leads)| (rep, leads.len() as i64))
        .collect();
    assert!(
        expected.len() >= 2 && expected.iter().map(|(_, count)| count).sum::<i64>() >= 4,
        "both unanswered leads missed under two owners each: {expected:?}"
    );
    let micros = later.timestamp_micros();
    let window = store::DashboardWindow {
        from: micros - 30 * 86_400_000_000,
        to: micros + 1,
        team: None,
        owner: None,
        day_offset: 0,
        now: micros,
        idle_before: micros,
    };
    for figures in [
        app.state.store.dashboard(&window).await.expect("dashboard"),
        app.state
            .store
            .dashboard_from_leads(&window)
            .await
            .expect("dashboard"),
    ] {
        let missed: Vec<(String, i64)> = figures
            .missed_by
            .iter()
            .map(|row| (row.key.clone(), row.count))
            .collect();
        assert_eq!(missed, expected);
    }
}

#[tokio::test]
async fn the_dashboard_counts_on_sqlite() {
    dashboard_counts(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_dashboard_counts_on_postgres() {
    dashboard_counts(Backend::Postgres).await;
}

#[tokio::test]
async fn an_admin_sees_deliveries_receipts_and_the_audit_log_and_retries_a_dead_letter() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    setup(&app).await;
    let (cookie, csrf) = sign_in(&app, "boss").await;
    // A channel nobody listens on, tried once: the next lead's delivery dies.
    app.ok(
        "/api/v1/channels",
        &json!({"id": "hook", "name": "Hook", "kind": "webhook", "url": "http://127.0.0.1:9/hook",
                "secret": "s3cret", "events": ["lead.assigned"], "max_attempts": 1}),
        StatusCode::CREATED,
    )
    .await;
    app.ok("/api/v1/leads", &lead("dead-1"), StatusCode::CREATED)
        .await;
    app.state
        .notifier
        .run(chrono::Utc::now())
        .await
        .expect("round");
    let page = visit(
        &app,
        "GET",
        "/admin/channels?id=hook",
        &cookie,
        None,
        "zh-CN",
    )
    .await;
    assert!(
        page.html.contains("最近发送记录")
            && page.html.contains("已放弃（死信）")
            && page.html.contains("新线索分配"),
        "{}",
        page.html
    );
    let delivery = page
        .html
        .split("name=\"delivery\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a retry button")
        .to_owned();
    let retried = submit(
        &app,
        "/admin/channels",
        &cookie,
        &format!("csrf={csrf}&id=hook&action=retry&delivery={delivery}"),
    )
    .await;
    assert_eq!(
        retried.location.as_deref(),
        Some("/admin/channels?id=hook&notice=ok")
    );
    let (_, deliveries) = app.get("/api/v1/deliveries?channel_id=hook").await;
    assert_eq!(deliveries["items"][0]["status"], json!("pending"));
    // A form post with a wrong token is shown, with its reason, on the source's page.
    app.ok(
        "/api/v1/intake-sources",
        &json!({"id": "site", "name": "Site", "auth": "token", "mapping": {"name": "name"}}),
        StatusCode::CREATED,
    )
    .await;
    submit(&app, "/api/v1/intake/site?token=wrong", "", "name=x").await;
    let source = visit(
        &app,
        "GET",
        "/admin/intake-sources?id=site",
        &cookie,
        None,
        "zh-CN",
    )
    .await;
    assert!(
        source.html.contains("最近接收记录")
            && source.html.contains("已拒绝")
            && source.html.contains("bad_token"),
        "{}",
        source.html
    );
    // The audit log: who created the channel, in words, the channel by its name.
    let audit = visit(&app, "GET", "/admin/audit", &cookie, None, "en").await;
    assert!(
        audit.html.contains("channel · created") && audit.html.contains("channel Hook"),
        "{}",
        audit.html
    );
    assert!(!audit.html.contains("channel.created"), "{}", audit.html);
}

#[tokio::test]
async fn a_manager_assigns_ticked_pool_leads_to_a_rep() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    let ids = setup(&app).await;
    for id in &ids[..2] {
        let (status, answer) = app
            .post(&format!("/api/v1/leads/{id}/release"), &json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    add_manager(&app).await;
    let (cookie, csrf) = sign_in(&app, "mgr").await;
    let pool = visit(&app, "GET", "/pool", &cookie, None, "zh-CN").await;
    assert!(
        pool.html.contains(&format!("name=\"lead_{}\"", ids[0]))
            && pool.html.contains("id=\"pool-assign\"")
            && pool.html.contains("分配勾选的线索"),
        "{}",
        pool.html
    );
    let assigned = submit(
        &app,
        "/pool/assign",
        &cookie,
        &format!(
            "csrf={csrf}&lead_{}=on&lead_{}=on&rep_id=r01&reason=%E5%9B%9E%E8%AE%BF",
            ids[0], ids[1]
        ),
    )
    .await;
    assert_eq!(assigned.location.as_deref(), Some("/pool?notice=ok"));
    for id in &ids[..2] {
        let (_, lead) = app.get(&format!("/api/v1/leads/{id}")).await;
        assert_eq!(lead["owner_id"], json!("r01"), "{lead}");
    }
    // Again: they are no longer in the pool, and the notice says so.
    let again = submit(
        &app,
        "/pool/assign",
        &cookie,
        &format!("csrf={csrf}&lead_{}=on&rep_id=r00", ids[0]),
    )
    .await;
    let back = again.location.expect("back");
    assert!(back.starts_with("/pool?notice="), "{back}");
    assert_ne!(back, "/pool?notice=ok");
    // A rep sees claim buttons, not the assignment form.
    let (rep_cookie, _) = sign_in(&app, "rep0").await;
    let theirs = visit(&app, "GET", "/pool", &rep_cookie, None, "zh-CN").await;
    assert!(!theirs.html.contains("pool-assign"), "{}", theirs.html);
}

/// "Distribute optimally": the manager ticks pool leads and picks their team; the console shows
/// the plan and assigns only on confirmation.
#[tokio::test]
async fn a_manager_previews_and_confirms_an_optimal_distribution() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    let ids = setup(&app).await;
    for id in &ids[..3] {
        let (status, answer) = app
            .post(&format!("/api/v1/leads/{id}/release"), &json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    add_manager(&app).await;
    let (cookie, csrf) = sign_in(&app, "mgr").await;
    let pool = visit(&app, "GET", "/pool", &cookie, None, "zh-CN").await;
    assert!(
        pool.html.contains("批量最优分配（先预览）"),
        "{}",
        pool.html
    );
    let ticked = format!(
        "csrf={csrf}&lead_{}=on&lead_{}=on&lead_{}=on&team_id=t&band=0.1&rep_id=",
        ids[0], ids[1], ids[2]
    );
    let preview = submit(&app, "/pool/distribute", &cookie, &ticked).await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.html);
    for expected in [
        "批量最优分配预览",
        "id=\"distribute-plan\"",
        "按批量最优分配分配给",
        "<td>Rep 1</td><td>1</td><td>1–2</td>",
        "确认分配",
    ] {
        assert!(
            preview.html.contains(expected),
            "{expected}: {}",
            preview.html
        );
    }
    // Nothing assigned by the preview.
    let (_, pool) = app.get("/api/v1/pool").await;
    assert_eq!(pool["items"].as_array().map(Vec::len), Some(3));
    let english = visit(
        &app,
        "POST",
        "/pool/distribute",
        &cookie,
        Some(&ticked),
        "en",
    )
    .await;
    assert!(
        english.html.contains("Optimal distribution: preview"),
        "{}",
        english.html
    );

    let confirmed = submit(
        &app,
        "/pool/distribute/confirm",
        &cookie,
        &format!(
            "csrf={csrf}&lead_{}=on&lead_{}=on&lead_{}=on&team_id=t&band=none",
            ids[0], ids[1], ids[2]
        ),
    )
    .await;
    assert_eq!(confirmed.location.as_deref(), Some("/pool?notice=ok"));
    let (_, pool) = app.get("/api/v1/pool").await;
    assert_eq!(pool["items"].as_array().map(Vec::len), Some(0), "{pool}");
    // A rep's post is refused by the operation itself; a team that is not the manager's too.
    let (rep_cookie, rep_csrf) = sign_in(&app, "rep0").await;
    let refused = submit(
        &app,
        "/pool/distribute/confirm",
        &rep_cookie,
        &format!("csrf={rep_csrf}&lead_{}=on&team_id=t", ids[0]),
    )
    .await;
    assert_ne!(refused.location.as_deref(), Some("/pool?notice=ok"));
}

#[tokio::test]
async fn a_rep_schedules_a_callback_and_closes_a_lead_from_its_page() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    let ids = setup(&app).await;
    let (cookie, csrf) = sign_in(&app, "rep0").await;
    let (_, lead) = app.get(&format!("/api/v1/leads/{}", ids[0])).await;
    assert_eq!(
        lead["owner_id"],
        json!("r00"),
        "setup's first lead is rep0's"
    );
    let page = visit(
        &app,
        "GET",
        &format!("/leads/{}", ids[0]),
        &cookie,
        None,
        "zh-CN",
    )
    .await;
    assert!(
        page.html.contains("id=\"status-form\"") && page.html.contains("已分配"),
        "{}",
        page.html
    );
    // A call, and a callback tomorrow at ten in the rep's zone (Asia/Shanghai by default).
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive();
    let logged = submit(
        &app,
        &format!("/leads/{}/activities", ids[0]),
        &cookie,
        &format!("csrf={csrf}&kind=call&note=&next_follow_up_at={tomorrow}T10%3A00"),
    )
    .await;
    assert!(
        logged
            .location
            .as_deref()
            .is_some_and(|to| to.ends_with("notice=ok")),
        "{:?}",
        logged.location
    );
    let (_, activities) = app
        .get(&format!("/api/v1/leads/{}/activities", ids[0]))
        .await;
    let callback = activities["items"][0]["next_follow_up_at"]
        .as_str()
        .expect("a callback")
        .to_owned();
    let at = chrono::DateTime::parse_from_rfc3339(&callback).expect("time");
    assert_eq!(
        at.with_timezone(&chrono_tz::Asia::Shanghai)
            .format("%Y-%m-%d %H:%M")
            .to_string(),
        format!("{tomorrow} 10:00")
    );
    let page = visit(
        &app,
        "GET",
        &format!("/leads/{}", ids[0]),
        &cookie,
        None,
        "zh-CN",
    )
    .await;
    assert!(
        page.html
            .contains(&format!("<time>{tomorrow} 10:00</time> 回访提醒")),
        "{}",
        page.html
    );
    // Won needs an amount: refused at its field, then done.
    let refused = submit(
        &app,
        &format!("/leads/{}/status", ids[0]),
        &cookie,
        &format!("csrf={csrf}&status=won&amount=&lost_reason="),
    )
    .await;
    let back = refused.location.expect("back");
    assert!(back.contains("amount"), "{back}");
    let won = submit(
        &app,
        &format!("/leads/{}/status", ids[0]),
        &cookie,
        &format!("csrf={csrf}&status=won&amount=8800&lost_reason="),
    )
    .await;
    assert!(
        won.location
            .as_deref()
            .is_some_and(|to| to.ends_with("notice=ok")),
        "{:?}",
        won.location
    );
    let (_, lead) = app.get(&format!("/api/v1/leads/{}", ids[0])).await;
    assert_eq!(lead["status"], json!("won"), "{lead}");
    // Another rep's lead: not theirs to change.
    let other = submit(
        &app,
        &format!("/leads/{}/status", ids[1]),
        &cookie,
        &format!("csrf={csrf}&status=lost&lost_reason=x"),
    )
    .await;
    assert!(
        other
            .location
            .as_deref()
            .is_some_and(|to| !to.ends_with("notice=ok")),
        "{:?}",
        other.location
    );
    let (_, untouched) = app.get(&format!("/api/v1/leads/{}", ids[1])).await;
    assert_eq!(untouched["status"], json!("assigned"));
}

#[tokio::test]
async fn a_manager_edits_their_own_reps_and_team_and_nothing_else() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    setup(&app).await;
    // Another team with a rep of its own.
    app.ok(
        "/api/v1/reps",
        &json!({"id": "x1", "name": "Other rep"}),
        StatusCode::CREATED,
    )
    .await;
    app.ok(
        "/api/v1/teams",
        &json!({"id": "u", "name": "Other team", "members": [{"rep_id": "x1"}]}),
        StatusCode::CREATED,
    )
    .await;
    add_manager(&app).await;
    let (cookie, csrf) = sign_in(&app, "mgr").await;
    let reps = visit(&app, "GET", "/admin/reps", &cookie, None, "zh-CN").await;
    assert_eq!(reps.status, StatusCode::OK);
    assert!(
        reps.html.contains("id=\"rep-form\"")
            && reps.html.contains("Rep 0")
            && !reps.html.contains("Other rep")
            && !reps.html.contains("+ 新建")
            && !reps.html.contains("/admin/accounts")
            && !reps.html.contains("/admin/channels"),
        "{}",
        reps.html
    );
    // Their rep's caps, through the form.
    let saved = submit(
        &app,
        "/admin/reps",
        &cookie,
        &format!("csrf={csrf}&id=r01&action=save_rep&name=Rep+1&status=active&cap_max_per_day=7"),
    )
    .await;
    assert_eq!(
        saved.location.as_deref(),
        Some("/admin/reps?id=r01&notice=ok")
    );
    let (_, rep) = app.get("/api/v1/reps/r01").await;
    assert_eq!(rep["caps"]["max_per_day"], json!(7));
    // Another team's rep: not found for them, unchanged.
    let refused = submit(
        &app,
        "/admin/reps",
        &cookie,
        &format!("csrf={csrf}&id=x1&action=save_rep&name=Mine&status=active"),
    )
    .await;
    assert!(
        refused
            .location
            .as_deref()
            .is_some_and(|to| to.contains("notice=not_found")),
        "{:?}",
        refused.location
    );
    let (_, other) = app.get("/api/v1/reps/x1").await;
    assert_eq!(other["name"], json!("Other rep"));
    // Their team opens as a form; other settings pages are not theirs.
    let team = visit(&app, "GET", "/admin/teams", &cookie, None, "zh-CN").await;
    let listed = team
        .html
        .split("id=\"items\"")
        .nth(1)
        .and_then(|rest| rest.split("</ul>").next())
        .unwrap_or_default();
    assert!(
        team.html.contains("id=\"team-form\"")
            && listed.contains("Team")
            && !listed.contains("Other team"),
        "{}",
        team.html
    );
    let channels = visit(&app, "GET", "/admin/channels", &cookie, None, "zh-CN").await;
    assert_eq!(channels.status, StatusCode::SEE_OTHER);
    // Weights of their own members, yes; pulling another team's rep in (and so reaching that
    // rep's leads), no.
    let weighted = submit(&app, "/admin/teams", &cookie, &format!(
            "csrf={csrf}&id=t&action=save_form&name=Team&member_r00=on&weight_r00=2&member_r01=on             &strategy=round_robin&hours_policy=any_time"
        ))
    .await;
    assert_eq!(
        weighted.location.as_deref(),
        Some("/admin/teams?id=t&notice=ok")
    );
    let pulled = submit(&app, "/admin/teams", &cookie, &format!(
            "csrf={csrf}&id=t&action=save_form&name=Team&member_r00=on&member_r01=on&member_x1=on             &strategy=round_robin&hours_policy=any_time"
        ))
    .await;
    assert_eq!(
        pulled.location.as_deref(),
        Some("/admin/teams?notice=forbidden")
    );
    let (_, team) = app.get("/api/v1/teams/t").await;
    assert_eq!(team["members"].as_array().map(Vec::len), Some(2), "{team}");
    let (_, team) = app
        .patch("/api/v1/teams/t", &json!({"members": [{"rep_id": "x1"}]}))
        .await;
    assert_eq!(
        team["members"][0]["rep_id"],
        json!("x1"),
        "an admin may: {team}"
    );
}

#[tokio::test]
async fn the_condition_builder_nests_a_group_and_places_its_errors() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    setup(&app).await;
    let (cookie, csrf) = sign_in(&app, "boss").await;
    let form = |second_op: &str, action: &str| {
        format!(
            "csrf={csrf}&rules=1&r0_id=big-east&r0_target=team%3At&r0_group=all&r0_c_count=1\
             &r0_c0_field=region&r0_c0_op=equals&r0_c0_value=%E5%8D%8E%E4%B8%9C\
             &r0_g_count=1&r0_g0_group=any&r0_g0_c_count=2\
             &r0_g0_c0_field=company_size&r0_g0_c0_op=gte&r0_g0_c0_value=1000\
             &r0_g0_c1_field=industry&r0_g0_c1_op={second_op}&r0_g0_c1_value=5\
             &r0_q_count=0&r0_p_count=0&action={action}"
        )
    };
    // `gt` on a text field, inside the group: the message stands at that row.
    let checked = submit(&app, "/rules/edit", &cookie, &form("gt", "check")).await;
    let at_row = checked
        .html
        .split("name=\"r0_g0_c1_value\"")
        .nth(1)
        .and_then(|rest| rest.split("</div>").next())
        .unwrap_or_default();
    assert!(at_row.contains("class=\"error\""), "{}", checked.html);
    // Adding a group, and a row to it, from the buttons.
    let added = submit(
        &app,
        "/rules/edit",
        &cookie,
        &form("equals", "add_group_row:0:0"),
    )
    .await;
    assert!(
        added.html.contains("name=\"r0_g0_c2_field\""),
        "{}",
        added.html
    );
    // Saved as written: region, and any of size or industry.
    let saved = submit(&app, "/rules/edit", &cookie, &form("equals", "save")).await;
    assert_eq!(
        saved.location.as_deref(),
        Some("/rules?notice=ok"),
        "{}",
        saved.html
    );
    let (_, versions) = app.get("/api/v1/rule-sets").await;
    let newest = versions["items"][0]["version"].as_i64().expect("version");
    let (_, draft) = app.get(&format!("/api/v1/rule-sets/{newest}")).await;
    assert_eq!(
        draft["document"]["rules"][0]["when"],
        json!({"all": [
            {"field": "region", "op": "equals", "value": "华东"},
            {"any": [{"field": "company_size", "op": "gte", "value": 1000},
                     {"field": "industry", "op": "equals", "value": "5"}]}]}),
        "{draft}"
    );
}

/// The console is one more surface on the same operations: a form may do only what the
/// viewer's role may do over the API, whatever it posts. Each row names its operation, and the
/// outcome for each role follows from that operation's rule: refused (403, a `forbidden`
/// notice, or sent home) and nothing changed, or not refused.
#[tokio::test]
async fn console_forms_refuse_what_the_role_may_not_do() {
    use server::auth::Role;
    use server::ops::Operation;

    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    let ids = setup(&app).await;
    add_manager(&app).await;
    let owner = |id: String| {
        let app = &app;
        async move {
            let (_, lead) = app.get(&format!("/api/v1/leads/{id}")).await;
            lead["owner_id"].as_str().map(str::to_owned)
        }
    };
    // The rep's own lead, and another lead given back to the pool.
    let mut mine = None;
    for id in &ids {
        if owner(id.clone()).await.as_deref() == Some("r00") {
            mine = Some(id.clone());
        }
    }
    let mine = mine.expect("a lead of r00");
    let pooled = ids.iter().find(|id| **id != mine).expect("another").clone();
    app.post(&format!("/api/v1/leads/{pooled}/release"), &json!({}))
        .await;
    // What the rows would change, read over the API.
    let state = || {
        let app = &app;
        let (mine, pooled) = (mine.clone(), pooled.clone());
        async move {
            let (_, users) = app.get("/api/v1/users").await;
            let (_, fields) = app.get("/api/v1/fields").await;
            let (_, reps) = app.get("/api/v1/reps").await;
            (
                owner(mine).await,
                owner(pooled).await,
                users["items"].as_array().map(Vec::len),
                fields["items"].as_array().map(Vec::len),
                reps["items"].as_array().map(Vec::len),
            )
        }
    };
    let rows: Vec<(Operation, String, String)> = vec![
        (
            Operation::LogActivity,
            format!("/leads/{mine}/activities"),
            "kind=call".into(),
        ),
        (
            Operation::AssignFromPool,
            "/pool/assign".into(),
            format!("lead_{pooled}=on&rep_id=r00&reason=x"),
        ),
        (
            Operation::AssignLead,
            format!("/leads/{mine}/assign"),
            "rep_id=r01&reason=x".into(),
        ),
        (
            Operation::CreateUser,
            "/admin/accounts".into(),
            "action=create_user&username=newcomer&role=admin&password=correct+horse+battery".into(),
        ),
        (
            Operation::CreateField,
            "/admin/fields".into(),
            "action=create&entity=lead&name=budget&kind=number".into(),
        ),
        (
            Operation::DeleteRep,
            "/admin/reps".into(),
            "action=delete&id=r01".into(),
        ),
    ];
    for (who, role) in [
        ("rep0", Role::Rep),
        ("mgr", Role::Manager),
        ("boss", Role::Admin),
    ] {
        let (cookie, csrf) = sign_in(&app, who).await;
        for (operation, path, form) in &rows {
            let before = state().await;
            let page = submit(&app, path, &cookie, &format!("csrf={csrf}&{form}")).await;
            let location = page.location.clone().unwrap_or_default();
            let refused = page.status == StatusCode::FORBIDDEN
                || location == "/"
                || location.contains("notice=forbidden");
            if operation.allowed(role) {
                assert!(!refused, "{who} {operation:?}: {} {location}", page.status);
            } else {
                assert!(refused, "{who} {operation:?}: {} {location}", page.status);
                assert_eq!(
                    before,
                    state().await,
                    "{who} {operation:?} changed something"
                );
            }
        }
    }
}

/// A settings form carries the version it was drawn from: saving it after someone else changed
/// the document is refused with a notice, and their change stays.
#[tokio::test]
async fn a_settings_form_saved_over_a_newer_version_is_refused() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    setup(&app).await;
    let (cookie, csrf) = sign_in(&app, "boss").await;
    let page = visit(&app, "GET", "/admin/teams?id=t", &cookie, None, "zh-CN").await;
    let version = page
        .html
        .split("name=\"version\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the form's version")
        .to_owned();
    assert!(!version.is_empty(), "{}", page.html);
    // Someone else renames the team meanwhile.
    let (status, _) = app
        .send(
            axum::http::Method::PATCH,
            "/api/v1/teams/t",
            Some(&json!({"name": "Renamed"})),
            Some(&app.key.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let saved = submit(
        &app,
        "/admin/teams",
        &cookie,
        &format!("csrf={csrf}&action=save_form&id=t&version={version}&name=Mine"),
    )
    .await;
    let location = saved.location.unwrap_or_default();
    assert!(location.contains("notice=version_mismatch"), "{location}");
    let (_, team) = app.get("/api/v1/teams/t").await;
    assert_eq!(team["name"], json!("Renamed"));
}

/// A page's event stream ends with its session: signing out closes it within a couple of
/// seconds instead of delivering lead events to a signed-out browser.
#[tokio::test]
async fn the_event_stream_ends_when_the_session_does() {
    use http_body_util::BodyExt as _;

    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    setup(&app).await;
    let (cookie, csrf) = sign_in(&app, "rep0").await;
    let request = Request::builder()
        .uri("/stream")
        .header("cookie", &cookie)
        .body(Body::empty())
        .expect("request");
    let response = tower::ServiceExt::oneshot(app.app.clone(), request)
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    // Open: the first comment arrives within a couple of seconds.
    let first = tokio::time::timeout(std::time::Duration::from_secs(3), body.frame())
        .await
        .expect("a frame while signed in");
    assert!(first.is_some_and(|frame| frame.is_ok()));
    let out = submit(&app, "/logout", &cookie, &format!("csrf={csrf}")).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let ended = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while let Some(frame) = body.frame().await {
            if frame.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream still runs after sign-out");
}

#[tokio::test]
async fn a_draft_is_tried_on_history_from_the_versions_page_and_published_from_its_report() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    app.round_robin_team(2, json!({})).await;
    for index in 0..6 {
        app.ok(
            "/api/v1/leads",
            &lead(&format!("sim-{index}")),
            StatusCode::CREATED,
        )
        .await;
    }
    let draft = app
        .ok(
            "/api/v1/rule-sets",
            &json!({"rules": [{"id": "one", "target": {"reps": ["r01"]}}]}),
            StatusCode::CREATED,
        )
        .await["version"]
        .as_i64()
        .expect("version");
    for (name, role, rep) in [("boss", "admin", None), ("rep0", "rep", Some("r00"))] {
        app.ok(
            "/api/v1/users",
            &json!({"username": name, "role": role, "rep_id": rep, "password": "correct horse battery"}),
            StatusCode::CREATED,
        )
        .await;
    }
    // A rep cannot start one through the console's form either.
    let (rep_cookie, rep_csrf) = sign_in(&app, "rep0").await;
    let refused = submit(
        &app,
        "/simulations",
        &rep_cookie,
        &format!("csrf={rep_csrf}&version={draft}&days=7"),
    )
    .await;
    assert!(
        !refused
            .location
            .as_deref()
            .is_some_and(|to| to.starts_with("/simulations/")),
        "{:?}",
        refused.location
    );
    let (_, list) = app.get("/api/v1/simulations").await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0));

    let (cookie, csrf) = sign_in(&app, "boss").await;
    let versions = visit(&app, "GET", "/rules", &cookie, None, "zh-CN").await;
    assert!(
        versions.html.contains("用历史线索试运行"),
        "{}",
        versions.html
    );
    let started = submit(
        &app,
        "/simulations",
        &cookie,
        &format!("csrf={csrf}&version={draft}&days=7"),
    )
    .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.html);
    let location = started.location.expect("the simulation's page");
    let mut page = visit(&app, "GET", &location, &cookie, None, "zh-CN").await;
    for _ in 0..100 {
        if page.html.contains("sim-verdict") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        page = visit(&app, "GET", &location, &cookie, None, "zh-CN").await;
    }
    assert!(page.html.contains("草稿（B） · v2"), "{}", page.html);
    assert!(page.html.contains("换了负责人的线索"), "{}", page.html);
    assert!(page.html.contains("<svg"), "share bars");
    assert!(page.html.contains("历史中没有成交结果"), "no outcomes yet");
    assert!(
        page.html
            .contains(&format!("action=\"/rules/{draft}/publish\"")),
        "{}",
        page.html
    );
    let english = visit(&app, "GET", &location, &cookie, None, "en").await;
    assert!(
        english.html.contains("Draft (B)") || english.html.contains("草稿"),
        "{}",
        english.html
    );
    // Publishing from the report makes the draft active.
    let published = submit(
        &app,
        &format!("/rules/{draft}/publish"),
        &cookie,
        &format!("csrf={csrf}&confirm=on"),
    )
    .await;
    assert_eq!(published.status, StatusCode::SEE_OTHER);
    let (_, active) = app.get(&format!("/api/v1/rule-sets/{draft}")).await;
    assert_eq!(active["active"], true, "{active}");
    let again = visit(&app, "GET", &location, &cookie, None, "zh-CN").await;
    assert!(
        !again
            .html
            .contains(&format!("action=\"/rules/{draft}/publish\"")),
        "already active"
    );
}

#[tokio::test]
async fn a_model_is_trained_read_and_published_from_the_console() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    app.round_robin_team(2, json!({})).await;
    app.ok(
        "/api/v1/fields",
        &json!({"entity": "lead", "name": "plan", "type": "text"}),
        StatusCode::CREATED,
    )
    .await;
    crate::scoring::closed_history(&app).await;
    for (name, role, rep) in [("boss", "admin", None), ("rep0", "rep", Some("r00"))] {
        app.ok(
            "/api/v1/users",
            &json!({"username": name, "role": role, "rep_id": rep, "password": "correct horse battery"}),
            StatusCode::CREATED,
        )
        .await;
    }
    // A rep cannot train through the console's form.
    let (rep_cookie, rep_csrf) = sign_in(&app, "rep0").await;
    submit(
        &app,
        "/models/train",
        &rep_cookie,
        &format!("csrf={rep_csrf}"),
    )
    .await;
    let (_, list) = app.get("/api/v1/models").await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0));

    let (cookie, csrf) = sign_in(&app, "boss").await;
    let empty = visit(&app, "GET", "/models", &cookie, None, "zh-CN").await;
    assert!(empty.html.contains("还没有模型"), "{}", empty.html);
    let started = submit(&app, "/models/train", &cookie, &format!("csrf={csrf}")).await;
    assert_eq!(started.location.as_deref(), Some("/models?version=1"));
    let mut page = visit(&app, "GET", "/models?version=1", &cookie, None, "zh-CN").await;
    for _ in 0..200 {
        if page.html.contains("id=\"model-auc\"") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        page = visit(&app, "GET", "/models?version=1", &cookie, None, "zh-CN").await;
    }
    for expected in [
        "ROC 曲线",
        "校准",
        "来源=展会 · 提高成交概率",
        "<svg",
        "发布此模型",
    ] {
        assert!(page.html.contains(expected), "{expected}: {}", page.html);
    }
    let english = visit(&app, "GET", "/models?version=1", &cookie, None, "en").await;
    assert!(
        english.html.contains("source=展会 · raises the odds"),
        "{}",
        english.html
    );
    let published = submit(&app, "/models/1/publish", &cookie, &format!("csrf={csrf}")).await;
    assert_eq!(
        published.location.as_deref(),
        Some("/models?version=1&notice=ok")
    );
    let (_, model) = app.get("/api/v1/models/1").await;
    assert_eq!(model["status"], json!("active"));

    // Scheduled retraining from the same page: weekly, publishing itself above 0.8.
    let saved = submit(
        &app,
        "/models/schedule",
        &cookie,
        &format!("csrf={csrf}&every=7d&auto_publish=on&minimum_auc=0.8"),
    )
    .await;
    assert_eq!(saved.location.as_deref(), Some("/models?notice=ok"));
    let (_, schedule) = app.get("/api/v1/models/schedule").await;
    assert_eq!(schedule["every"], json!("7d"));
    assert_eq!(schedule["auto_publish"], json!(true));
    assert_eq!(schedule["minimum_auc"], json!(0.8));
    let page = visit(&app, "GET", "/models", &cookie, None, "zh-CN").await;
    assert!(
        page.html
            .contains("<option value=\"7d\" selected>每周</option>"),
        "{}",
        page.html
    );
    let refused = submit(
        &app,
        "/models/schedule",
        &cookie,
        &format!("csrf={csrf}&every=7d&minimum_auc=0.2"),
    )
    .await;
    assert_eq!(
        refused.location.as_deref(),
        Some("/models?notice=invalid_value%3Aminimum_auc")
    );
    // The rep's form is refused by the operation itself.
    submit(
        &app,
        "/models/schedule",
        &rep_cookie,
        &format!("csrf={rep_csrf}&every=1d"),
    )
    .await;
    assert_eq!(
        app.get("/api/v1/models/schedule").await.1["every"],
        json!("7d")
    );

    // A lead's page says its probability and why.
    let created = app
        .ok(
            "/api/v1/leads",
            &json!({"external_id": "new", "company": "新客户", "source": "展会", "attributes": {"plan": "pro"}}),
            StatusCode::CREATED,
        )
        .await;
    let id = created["lead"]["id"].as_str().expect("id");
    let lead_page = visit(&app, "GET", &format!("/leads/{id}"), &cookie, None, "zh-CN").await;
    assert!(
        lead_page.html.contains("id=\"lead-win\">成交概率 "),
        "{}",
        lead_page.html
    );
}

#[tokio::test]
async fn duplicates_are_set_up_reviewed_and_merged_in_the_console() {
    let app = TestApp::sqlite().await;
    setup(&app).await;
    let (cookie, csrf) = sign_in(&app, "boss").await;
    let (rep_cookie, rep_csrf) = sign_in(&app, "rep0").await;
    // The policy form: phone and company, flag.
    let saved = submit(
        &app,
        "/duplicates/policy",
        &cookie,
        &format!(
            "csrf={csrf}&key_phone=on&key_company=on&on_match=flag&window=30d&protect_holders=on"
        ),
    )
    .await;
    assert_eq!(saved.location.as_deref(), Some("/duplicates?notice=ok"));
    let (_, policy) = app.get("/api/v1/settings/duplicates").await;
    assert_eq!(policy["keys"], json!(["phone", "company"]), "{policy}");
    assert_eq!(policy["on_match"], "flag");
    let refused = submit(
        &app,
        "/duplicates/policy",
        &cookie,
        &format!("csrf={csrf}&key_phone=on&on_match=flag&window=soon"),
    )
    .await;
    assert_eq!(
        refused.location.as_deref(),
        Some("/duplicates?notice=invalid_value%3Awindow")
    );
    // A rep's post changes nothing.
    submit(
        &app,
        "/duplicates/policy",
        &rep_cookie,
        &format!("csrf={rep_csrf}&on_match=attach"),
    )
    .await;
    assert_eq!(
        app.get("/api/v1/settings/duplicates").await.1["on_match"],
        "flag"
    );
    // The setup's leads share one phone: a new arrival with it is flagged against the newest.
    let flagged = app
        .ok(
            "/api/v1/leads",
            &json!({"name": "客户新", "phone": "13800138000", "email": "new@example.com"}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(flagged["match"]["action"], "flagged", "{flagged}");
    let page = visit(&app, "GET", "/duplicates", &cookie, None, "zh-CN").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(
        page.html
            .contains("手机号 、公司名称 → 新建线索，标记疑似重复待处理")
            || page
                .html
                .contains("手机号、公司名称 → 新建线索，标记疑似重复待处理"),
        "{}",
        page.html
    );
    assert!(page.html.contains("name=\"take_email\""), "{}", page.html);
    let pair = page
        .html
        .split("data-pair=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a pair on the page")
        .to_owned();
    let english = visit(&app, "GET", "/duplicates", &cookie, None, "en").await;
    assert!(
        english.html.contains("Possible duplicates"),
        "{}",
        english.html
    );
    // A rep sees no such page and cannot merge.
    let rep_page = visit(&app, "GET", "/duplicates", &rep_cookie, None, "zh-CN").await;
    assert_eq!(rep_page.status, StatusCode::FORBIDDEN);
    submit(
        &app,
        &format!("/duplicates/{pair}/merge"),
        &rep_cookie,
        &format!("csrf={rep_csrf}&take_email=on"),
    )
    .await;
    let (_, open) = app.get("/api/v1/duplicates").await;
    assert_eq!(open["items"].as_array().map(Vec::len), Some(1));
    let merged = submit(
        &app,
        &format!("/duplicates/{pair}/merge"),
        &cookie,
        &format!("csrf={csrf}&take_email=on"),
    )
    .await;
    assert_eq!(merged.location.as_deref(), Some("/duplicates?notice=ok"));
    let (_, open) = app.get("/api/v1/duplicates").await;
    assert_eq!(open["items"].as_array().map(Vec::len), Some(0), "{open}");
    let (_, done) = app.get("/api/v1/duplicates?status=merged").await;
    let kept = done["items"][0]["other"]["id"].as_str().expect("kept");
    let (_, lead) = app.get(&format!("/api/v1/leads/{kept}")).await;
    assert_eq!(lead["email"], "new@example.com", "{lead}");
    // The merged lead's page says so in words.
    let lead_page = visit(
        &app,
        "GET",
        &format!("/leads/{kept}"),
        &cookie,
        None,
        "zh-CN",
    )
    .await;
    assert!(lead_page.html.contains("合并线索"), "{}", lead_page.html);
    let again = submit(
        &app,
        &format!("/duplicates/{pair}/dismiss"),
        &cookie,
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(
        again.location.as_deref(),
        Some("/duplicates?notice=pair_resolved")
    );
}

/// A page's visible text: tags, scripts and attribute values gone.
fn visible_text(html: &str) -> String {
    let mut text = String::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        text.push_str(&rest[..start]);
        text.push(' ');
        let tag = &rest[start..];
        let skip_to = if tag.starts_with("<script") {
            tag.find("</script>").map(|end| end + "</script>".len())
        } else {
            tag.find('>').map(|end| end + 1)
        };
        rest = &tag[skip_to.unwrap_or(tag.len())..];
    }
    text.push_str(rest);
    text.replace("&#34;", "\"").replace("&amp;", "&")
}

/// Codes of known lists a person should never read on a Chinese page: statuses, priorities,
/// outcomes, events, audit actions, roles.
const RAW_CODES: &[&str] = &[
    "assigned",
    "contacted",
    "qualified",
    "won",
    "lost",
    "invalid",
    "urgent",
    "high",
    "normal",
    "reached",
    "no_answer",
    "interested",
    "manager",
    "admin",
    "reclaim",
    "sla_reminder",
];

/// Whether `text` has `code` as a whole word (not inside another word or an id).
fn has_word(text: &str, code: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.';
    text.match_indices(code).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + code.len()..].chars().next();
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}

/// The catalogue check on rendered pages: in Chinese, no page a manager or a rep opens shows
/// a raw code from a known list, a dotted event or audit code, or the "?" of a missing word.
#[tokio::test]
async fn no_page_shows_a_raw_code() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    let ids = setup(&app).await;
    // History to show: a follow-up with an outcome, a win, a loss, a release to the pool, the
    // SLA ladder reminding and reclaiming, a rule set published, a channel set up.
    let (_, zero) = app.get(&format!("/api/v1/leads/{}", ids[0])).await;
    let owner = zero["owner_id"].as_str().expect("owner").to_owned();
    app.ok(
        &format!("/api/v1/leads/{}/activities", ids[0]),
        &json!({"kind": "call", "outcome": "reached", "rep_id": owner}),
        StatusCode::CREATED,
    )
    .await;
    for (id, change) in [
        (&ids[0], json!({"status": "won", "amount": 1200})),
        (&ids[1], json!({"status": "lost", "lost_reason": "budget"})),
    ] {
        let (status, answer) = app.patch(&format!("/api/v1/leads/{id}"), &change).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    let (status, answer) = app
        .post(&format!("/api/v1/leads/{}/release", ids[2]), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    app.state
        .router
        .tick(chrono::Utc::now() + chrono::Duration::days(3))
        .await
        .expect("tick");
    app.ok(
        "/api/v1/channels",
        &json!({"id": "hook", "name": "钩子", "kind": "webhook", "url": "http://127.0.0.1:9/hook",
                "secret": "s3cret-s3cret-s3cret", "events": ["lead.assigned"]}),
        StatusCode::CREATED,
    )
    .await;
    let (admin, _) = sign_in(&app, "boss").await;
    let (rep, _) = sign_in(&app, "rep0").await;
    let lead = format!("/leads/{}", ids[3]);
    let won = format!("/leads/{}", ids[0]);
    let pages: Vec<(&str, &str)> = vec![
        (&admin, "/?days=7"),
        (&admin, "/?days=30"),
        (&admin, "/leads"),
        (&admin, "/leads?sort=status"),
        (&admin, &lead),
        (&admin, &won),
        (&admin, "/pool"),
        (&admin, "/rules"),
        (&admin, "/rules/edit"),
        (&admin, "/admin/reps"),
        (&admin, "/admin/teams"),
        (&admin, "/admin/audit"),
        (&admin, "/admin/accounts"),
        (&admin, "/reps/r00/scorecard"),
        (&rep, "/me"),
        (&rep, "/pool"),
        (&rep, "/reps/r00/scorecard"),
    ];
    let mut found = Vec::new();
    for (cookie, path) in pages {
        let page = visit(&app, "GET", path, cookie, None, "zh-CN").await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        if page.html.contains(">?<") {
            found.push(format!("{path}: a missing word (?)"));
        }
        let text = visible_text(&page.html);
        for code in RAW_CODES {
            if has_word(&text, code) {
                found.push(format!("{path}: {code}"));
            }
        }
        for prefix in ["lead.", "rule_set.", "user.", "channel.", "rep.", "team."] {
            if text.contains(prefix) {
                found.push(format!("{path}: {prefix}…"));
            }
        }
    }
    assert!(found.is_empty(), "raw codes on Chinese pages: {found:#?}");
}

/// Overdue, as the dashboard, the lead list and the rep's list count it: the SLA clock reminded
/// and nobody has answered since the lead was assigned. An answer clears it.
#[tokio::test]
async fn a_reminded_unanswered_lead_is_overdue_until_someone_answers() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    let ids = setup(&app).await;
    let (cookie, _) = sign_in(&app, "boss").await;
    let overdue = |html: &str| {
        html.split("<b id=\"overdue\">")
            .nth(1)
            .and_then(|rest| rest.split('<').next())
            .unwrap_or_default()
            .to_owned()
    };
    let page = visit(&app, "GET", "/?days=7", &cookie, None, "en").await;
    assert_eq!(overdue(&page.html), "0", "nothing reminded yet");
    // Thirty hours on: the default policy has reminded (1 h) and escalated (24 h), and not yet
    // reclaimed (48 h of business hours).
    app.state
        .router
        .tick(chrono::Utc::now() + chrono::Duration::hours(30))
        .await
        .expect("tick");
    let page = visit(&app, "GET", "/?days=7", &cookie, None, "en").await;
    let before: i64 = overdue(&page.html).parse().expect("a count");
    assert!(before >= 1, "reminded leads are overdue: {}", page.html);
    let list = visit(&app, "GET", "/leads?open=1&overdue=1", &cookie, None, "en").await;
    assert!(
        list.html.contains(&format!("{before} in all")),
        "{}",
        list.html
    );
    assert!(list.html.contains("badge overdue"), "{}", list.html);
    // The owner of one of them answers: one fewer.
    let listed = ids
        .iter()
        .find(|id| list.html.contains(id.as_str()))
        .expect("an overdue lead in the list")
        .clone();
    let (_, lead) = app.get(&format!("/api/v1/leads/{listed}")).await;
    let owner = lead["owner_id"].as_str().expect("owner").to_owned();
    app.ok(
        &format!("/api/v1/leads/{listed}/activities"),
        &json!({"kind": "call", "outcome": "reached", "rep_id": owner}),
        StatusCode::CREATED,
    )
    .await;
    let page = visit(&app, "GET", "/?days=7", &cookie, None, "en").await;
    assert_eq!(overdue(&page.html), (before - 1).to_string());
}

/// From the lead list, a manager assigns the ticked leads, or every lead the filter matches, to
/// one rep — each through the one-lead assignment and its checks; a rep may not.
#[tokio::test]
async fn a_manager_assigns_ticked_or_all_matching_leads_from_the_list() {
    let app = TestApp::without_clock(Backend::Sqlite).await.expect("app");
    let ids = setup(&app).await;
    add_manager(&app).await;
    let (cookie, csrf) = sign_in(&app, "mgr").await;
    let list = visit(
        &app,
        "GET",
        "/leads?source=%E5%AE%98%E7%BD%91",
        &cookie,
        None,
        "zh-CN",
    )
    .await;
    assert!(list.html.contains("id=\"bulk-assign\""), "{}", list.html);
    assert!(list.html.contains("共 4 条"), "{}", list.html);
    // Two ticked leads to r01.
    let ticked = submit(
        &app,
        "/leads/bulk-assign",
        &cookie,
        &format!(
            "csrf={csrf}&filter=&lead_{}=on&lead_{}=on&rep_id=r01&reason=%E8%B0%83%E6%95%B4",
            ids[0], ids[1]
        ),
    )
    .await;
    assert_eq!(ticked.location.as_deref(), Some("/leads?notice=ok"));
    for id in &ids[..2] {
        let (_, lead) = app.get(&format!("/api/v1/leads/{id}")).await;
        assert_eq!(lead["owner_id"], "r01", "{lead}");
    }
    // Every lead the filter matches (source 官网: all four) to r00.
    let all = submit(
        &app,
        "/leads/bulk-assign",
        &cookie,
        &format!("csrf={csrf}&filter=source%3D%25E5%25AE%2598%25E7%25BD%2591&all=1&rep_id=r00&reason=%E8%B0%83%E6%95%B4"),
    )
    .await;
    assert!(
        all.location
            .as_deref()
            .is_some_and(|to| to.ends_with("notice=ok")),
        "{:?}",
        all.location
    );
    for id in &ids {
        let (_, lead) = app.get(&format!("/api/v1/leads/{id}")).await;
        assert_eq!(lead["owner_id"], "r00", "{lead}");
    }
    // A filter hiding a NUL byte (encoded twice, past the address check) is refused as a
    // whole, before anything is assigned.
    let hidden = submit(
        &app,
        "/leads/bulk-assign",
        &cookie,
        &format!("csrf={csrf}&filter=q%3D%2500&all=1&rep_id=r01"),
    )
    .await;
    assert!(
        hidden
            .location
            .as_deref()
            .is_some_and(|to| to.starts_with("/leads?notice=invalid_value")),
        "{:?}",
        hidden.location
    );
    // Nothing ticked: a notice, nothing changed.
    let none = submit(
        &app,
        "/leads/bulk-assign",
        &cookie,
        &format!("csrf={csrf}&filter=&rep_id=r01"),
    )
    .await;
    assert!(
        none.location
            .as_deref()
            .is_some_and(|to| to.contains("notice=nothing_ticked")),
        "{:?}",
        none.location
    );
    // A rep cannot: the assignment's own check refuses, and the leads stay.
    let (rep, rep_csrf) = sign_in(&app, "rep0").await;
    let refused = submit(
        &app,
        "/leads/bulk-assign",
        &rep,
        &format!("csrf={rep_csrf}&filter=&lead_{}=on&rep_id=r01", ids[0]),
    )
    .await;
    assert!(
        refused
            .location
            .as_deref()
            .is_some_and(|to| to.contains("notice=forbidden")),
        "{:?}",
        refused.location
    );
    let (_, lead) = app.get(&format!("/api/v1/leads/{}", ids[0])).await;
    assert_eq!(lead["owner_id"], "r00");
}

/// The dashboard read from the tallies kept as leads are written is the dashboard counted
/// from the leads themselves: for leads of every state, team, owner, source and rule, inserted
/// and then changed, before and after the deltas are folded, over windows in several zones
/// (the half-hour one counted from the leads), one team or all, ending on an hour or within
/// one.
async fn tallies_match_the_leads(backend: Backend) {
    use rand::{Rng, SeedableRng};
    let Some((store, _dir)) = crate::support::fresh_store(backend).await else {
        return;
    };
    const HOUR: i64 = 3_600_000_000;
    const DAY: i64 = 24 * HOUR;
    let now = chrono::Utc::now().timestamp_micros();
    let mut rng = rand::rngs::StdRng::seed_from_u64(18);
    let pick = |rng: &mut rand::rngs::StdRng, options: &[Option<&str>]| {
        options[rng.random_range(0..options.len())].map(str::to_owned)
    };
    let statuses = ["new", "assigned", "contacted", "qualified", "won", "lost"];
    // Changes a lead the ways people and the clock change one.
    let shape = |rng: &mut rand::rngs::StdRng, row: &mut store::LeadRow| {
        row.team_id = pick(rng, &[None, Some("t"), Some("t"), Some("u")]);
        row.owner_id = pick(rng, &[None, Some("r1"), Some("r2"), Some("r3"), Some("r4")]);
        row.status = statuses[rng.random_range(0..statuses.len())].into();
        row.source = pick(rng, &[None, Some("官网"), Some("展会")]);
        row.rule_id = pick(rng, &[None, Some("east"), Some("west")]);
        row.held = rng.random_bool(0.1);
        row.pool_id = pick(rng, &[None, None, Some("sea")]);
        row.assigned_at = row
            .owner_id
            .as_ref()
            .map(|_| row.created_at + rng.random_range(0..HOUR));
        row.hops = rng.random_range(0..3).max(1) - 1;
        row.sla_missed_at = rng.random_bool(0.3).then_some(row.created_at + HOUR);
        row.first_response_at = rng
            .random_bool(0.4)
            .then(|| row.created_at + rng.random_range(0..DAY));
        row.last_activity_at = rng.random_bool(0.2).then_some(row.created_at + 2 * HOUR);
        row.amount = rng
            .random_bool(0.5)
            .then(|| rng.random_range(1..100_000) as f64 / 100.0);
        // A callback promised for a time now past, or still to come.
        row.callback_at = rng
            .random_bool(0.3)
            .then(|| now + rng.random_range(-3 * DAY..DAY));
        // Closed within days of coming in: some in the window, some after it.
        row.closed_at = ["won", "lost"]
            .contains(&row.status.as_str())
            .then(|| row.created_at + rng.random_range(0..5 * DAY));
    };
    let mut leads: Vec<store::LeadRow> = (0..900)
        .map(|index| {
            let created_at = now - rng.random_range(0..35 * DAY);
            let mut row = store::LeadRow {
                id: format!("lead-{index}"),
                document: "{}".into(),
                tags: "[]".into(),
                previous_owners: "[]".into(),
                created_at,
                updated_at: created_at,
                ..store::LeadRow::default()
            };
            shape(&mut rng, &mut row);
            row
        })
        .collect();
    // A lead in the hour now, and one at its very start, both the team's and left as they
    // are: every window holds some lead, even minutes after a zone's midnight. And one 40
    // minutes into the hour before, after the end of a window that ends within that hour.
    leads[0].created_at = now;
    leads[1].created_at = now.div_euclid(HOUR) * HOUR;
    leads[2].created_at = now.div_euclid(HOUR) * HOUR - HOUR + 40 * 60_000_000;
    for row in &mut leads[..3] {
        row.team_id = Some("t".into());
    }
    let windows = || {
        let mut windows = Vec::new();
        for offset in [8 * HOUR, 0, -5 * HOUR, 5 * HOUR + HOUR / 2] {
            for team in [None, Some("t".to_owned())] {
                for days in [1, 7, 30] {
                    let today = (now + offset).div_euclid(DAY) * DAY - offset;
                    windows.push(store::DashboardWindow {
                        from: today - (days - 1) * DAY,
                        to: now + 1,
                        team: team.clone(),
                        owner: None,
                        day_offset: offset,
                        now,
                        idle_before: now - 3 * DAY,
                    });
                }
            }
        }
        // Ending on the hour, and beginning within one.
        let hour = now.div_euclid(HOUR) * HOUR;
        windows.push(store::DashboardWindow {
            from: hour - 3 * DAY,
            to: hour,
            ..windows[0].clone()
        });
        windows.push(store::DashboardWindow {
            from: now - 3 * DAY + 17 * 60_000_000,
            ..windows[0].clone()
        });
        // Ending 20 minutes into the hour before this one (a lead came in after it).
        windows.push(store::DashboardWindow {
            from: hour - 3 * DAY,
            to: hour - HOUR + 20 * 60_000_000,
            ..windows[0].clone()
        });
        windows
    };
    let tallied = windows()
        .iter()
        .filter(|window| window.tallied_hours().is_some())
        .count();
    assert!(tallied >= 18, "most windows read the tallies: {tallied}");
    let same = |mut figures: store::Dashboard| {
        // Amounts summed in another order may differ in the last bit.
        for owner in figures.by_owner.iter_mut().chain(&mut figures.leaderboard) {
            owner.amount = (owner.amount * 100.0).round() / 100.0;
        }
        figures
    };
    let compare = |store: store::Store, stage: &'static str| async move {
        for window in windows() {
            let kept = store.dashboard(&window).await.expect("dashboard");
            let counted = store.dashboard_from_leads(&window).await.expect("leads");
            assert!(counted.leads_in > 0, "{stage}: {window:?}");
            assert_eq!(same(kept), same(counted), "{stage}: {window:?}");
        }
    };
    // Inserted as intake writes them (a thousand at a time on PostgreSQL: one statement),
    // then given what only an update writes (hops, amount, the SLA clock's mark).
    let mut connection = store.routing_connection().await.expect("tx");
    let mut tx = connection.begin().await.expect("tx");
    tx.insert_leads(&leads).await.expect("insert");
    for row in &leads {
        tx.update_lead(row).await.expect("update");
    }
    tx.commit().await.expect("commit");
    drop(connection);
    compare(store.clone(), "inserted").await;
    let month = store.dashboard(&windows()[2]).await.expect("dashboard");
    assert!(month.leaderboard.len() >= 3, "{:?}", month.leaderboard);
    assert!(store.fold_tallies().await.expect("fold") > 0);
    compare(store.clone(), "folded").await;
    // A third changed: some counted in the folded tallies, their changes in the deltas.
    let mut connection = store.routing_connection().await.expect("tx");
    let mut tx = connection.begin().await.expect("tx");
    for row in leads.iter_mut().skip(3).step_by(3) {
        shape(&mut rng, row);
        tx.update_lead(row).await.expect("update");
    }
    tx.commit().await.expect("commit");
    drop(connection);
    compare(store.clone(), "changed").await;
    // The first responses, each lead's, with its owner (or none).
    let window = windows()[2].clone();
    let mut expected: Vec<(i64, Option<String>)> = leads
        .iter()
        .filter(|row| (window.from..window.to).contains(&row.created_at))
        .filter_map(|row| {
            let (assigned, answered) = (row.assigned_at?, row.first_response_at?);
            (answered >= assigned)
                .then(|| ((answered - assigned) / 1_000_000, row.owner_id.clone()))
        })
        .collect();
    expected.sort();
    let mut responses: Vec<(i64, Option<String>)> = store
        .dashboard(&window)
        .await
        .expect("dashboard")
        .responses
        .into_iter()
        .map(|response| (response.secs, response.owner_id))
        .collect();
    responses.sort();
    assert!(expected.len() > 50, "{}", expected.len());
    assert_eq!(responses, expected);
    store.fold_tallies().await.expect("fold");
    assert_eq!(store.fold_tallies().await.expect("fold again"), 0);
    compare(store.clone(), "folded again").await;
    // A database from before these tallies: its leads written under an older trigger that
    // counts nothing. Migrating drops it, creates the triggers and counts every lead there.
    let statements: &[&'static str] = match &store {
        store::Store::Sqlite { .. } => &[
            "DROP TRIGGER leads_tally_2_insert",
            "DROP TRIGGER leads_tally_2_update",
            "DROP TRIGGER leads_tally_2_delete",
            "CREATE TRIGGER leads_tally_insert AFTER INSERT ON leads BEGIN SELECT 1; END",
        ],
        store::Store::Postgres(_) => &[
            "DROP TRIGGER leads_tally_2_insert ON leads",
            "DROP TRIGGER leads_tally_2_update ON leads",
            "DROP TRIGGER leads_tally_2_delete ON leads",
            "CREATE FUNCTION leads_tally_insert() RETURNS trigger LANGUAGE plpgsql
                 AS $$ BEGIN RETURN NULL; END $$",
            "CREATE TRIGGER leads_tally_insert AFTER INSERT ON leads
                 FOR EACH STATEMENT EXECUTE FUNCTION leads_tally_insert()",
        ],
    };
    let triggers = match &store {
        store::Store::Sqlite { .. } => {
            "SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name"
        }
        store::Store::Postgres(_) => {
            "SELECT tgname::text FROM pg_trigger WHERE NOT tgisinternal ORDER BY tgname"
        }
    };
    let names = |store: store::Store| async move {
        match &store {
            store::Store::Sqlite { writer, .. } => {
                sqlx::query_scalar::<_, String>(triggers)
                    .fetch_all(writer)
                    .await
            }
            store::Store::Postgres(pool) => {
                sqlx::query_scalar::<_, String>(triggers)
                    .fetch_all(pool)
                    .await
            }
        }
        .expect("triggers")
    };
    for statement in statements {
        match &store {
            store::Store::Sqlite { writer, .. } => {
                sqlx::query(*statement).execute(writer).await.expect("drop");
            }
            store::Store::Postgres(pool) => {
                sqlx::query(*statement).execute(pool).await.expect("drop");
            }
        }
    }
    assert_eq!(names(store.clone()).await, ["leads_tally_insert"]);
    let mut connection = store.routing_connection().await.expect("tx");
    let mut tx = connection.begin().await.expect("tx");
    let more: Vec<store::LeadRow> = leads[..100]
        .iter()
        .map(|row| store::LeadRow {
            id: format!("{}-again", row.id),
            ..row.clone()
        })
        .collect();
    tx.insert_leads(&more).await.expect("insert");
    for row in leads.iter_mut().skip(3).step_by(5) {
        shape(&mut rng, row);
        tx.update_lead(row).await.expect("update");
    }
    tx.commit().await.expect("commit");
    drop(connection);
    store.migrate().await.expect("migrate");
    compare(store.clone(), "migrated").await;
    assert_eq!(
        names(store.clone()).await,
        [
            "leads_tally_2_delete",
            "leads_tally_2_insert",
            "leads_tally_2_update"
        ]
    );
}

#[tokio::test]
async fn the_dashboard_tallies_match_the_leads_on_sqlite() {
    tallies_match_the_leads(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_dashboard_tallies_match_the_leads_on_postgres() {
    tallies_match_the_leads(Backend::Postgres).await;
}

/// A database from before leads kept the reps they were missed under (migration 0027) learns
/// them from the reminders and escalations its clock wrote: each rep once per lead, and none
/// for a lead the clock never reminded about.
async fn missed_by_from_the_events(backend: Backend) {
    let Some((url, _dir)) = crate::support::empty_database(backend).await else {
        return;
    };
    let store = store::Store::connect(&url).await.expect("connect");
    store.migrate_to(26).await.expect("migrate to 0026");
    let lead = |id: &str| store::LeadRow {
        id: id.into(),
        document: "{}".into(),
        status: "assigned".into(),
        owner_id: Some("r2".into()),
        tags: "[]".into(),
        ..store::LeadRow::default()
    };
    let event = |id: &str, event: &str, lead: &str, rep: &str| store::OutboxRow {
        id: id.into(),
        event: event.into(),
        lead_id: Some(lead.into()),
        rep_id: Some(rep.into()),
        recipients: "[]".into(),
        payload: "{}".into(),
        created_at: 0,
        status: "dispatched".into(),
    };
    let mut connection = store.routing_connection().await.expect("tx");
    let mut tx = connection.begin().await.expect("tx");
    tx.insert_leads(&[lead("missed"), lead("answered")])
        .await
        .expect("leads");
    tx.insert_outbox(&[
        event("e1", "lead.sla_reminder", "missed", "r1"),
        event("e2", "lead.sla_escalated", "missed", "r1"),
        event("e3", "lead.sla_reminder", "missed", "r2"),
        event("e4", "lead.assigned", "answered", "r2"),
    ])
    .await
    .expect("events");
    // Visible is all the new release needs; a flush would write `flushes`, a later table.
    let _visible = tx.commit_unsynced().await.expect("commit");
    drop(connection);
    // The new release starts on that database.
    store.close().await;
    let store = store::Store::connect(&url).await.expect("connect");
    store.migrate().await.expect("migrate");
    let mut rows = store
        .leads_by_ids(&["answered".into(), "missed".into()])
        .await
        .expect("leads");
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    let missed_by: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let mut reps: Vec<String> = serde_json::from_str(&row.missed_by).expect("a list");
            reps.sort();
            reps
        })
        .collect();
    assert_eq!(missed_by, [vec![], vec!["r1".to_owned(), "r2".to_owned()]]);
}

#[tokio::test]
async fn missed_by_is_learned_from_the_events_on_sqlite() {
    missed_by_from_the_events(Backend::Sqlite).await;
}

#[tokio::test]
async fn missed_by_is_learned_from_the_events_on_postgres() {
    missed_by_from_the_events(Backend::Postgres).await;
}
