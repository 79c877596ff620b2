//! The web console at `/`: server-rendered pages in Chinese and English, served by the same
//! binary with no front-end build. Pages read through the same access checks as the API, and
//! forms act through the API's own handlers, so the console can do nothing the caller's role
//! could not do over the API. Light progressive enhancement (`static/console.js`) only adds
//! live notices over server-sent events.

mod admin;
mod charts;
pub(crate) mod dashboard;
mod decision_words;
mod distribute;
mod duplicates;
mod forms;
pub mod i18n;
mod lead_list;
mod logs;
mod models;
mod people;
mod rule_changes;
mod rules;
mod simulate;

use std::collections::HashMap;

use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::Value;
use store::{EventFilter, LeadFilter, UserRow};

use crate::AppState;
use crate::api::{access, accounts};
use crate::auth::{Caller, Role, session_cookie};
use crate::error::ApiError;
use crate::extract::Body;
use i18n::{Lang, Tr};

/// The console's routes.
pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/", get(dashboard::dashboard))
        .route("/dashboard/export", get(dashboard::export))
        .route("/reps/{id}/scorecard", get(dashboard::scorecard))
        .route("/login", get(login_page).post(login_submit))
        .route("/logout", post(logout))
        .route("/lang/{code}", get(set_language))
        .route("/leads", get(lead_list::page))
        .route("/leads/bulk-assign", post(lead_list::bulk_assign))
        .route("/leads/{id}", get(lead_page))
        .route("/leads/{id}/activities", post(log_activity))
        .route("/leads/{id}/assign", post(reassign))
        .route("/leads/{id}/status", post(change_lead_status))
        .route("/leads/{id}/claim", post(claim))
        .route("/pool/assign", post(assign_from_pool))
        .route("/pool/distribute", post(distribute::preview))
        .route("/pool/distribute/confirm", post(distribute::confirm))
        .route("/me", get(me_page))
        .route("/me/status", post(set_status))
        .route("/pool", get(pool_page))
        .route(
            "/admin/accounts",
            get(people::accounts).post(people::accounts_submit),
        )
        .route("/admin/audit", get(logs::audit))
        .route(
            "/admin/fields",
            get(people::fields).post(people::fields_submit),
        )
        .route("/admin/{kind}", get(admin::page).post(admin::submit))
        .route("/rules", get(rules::versions))
        .route("/rules/edit", get(rules::edit).post(rules::submit))
        .route("/rules/{version}/publish", post(rules::rollback))
        .route("/duplicates", get(duplicates::page))
        .route("/duplicates/policy", post(duplicates::set_policy))
        .route("/duplicates/{id}/merge", post(duplicates::merge))
        .route("/duplicates/{id}/dismiss", post(duplicates::dismiss))
        .route("/models", get(models::page))
        .route("/models/train", post(models::train))
        .route("/models/schedule", post(models::schedule))
        .route("/models/{version}/publish", post(models::publish))
        .route("/simulations", post(simulate::start))
        .route("/simulations/{id}", get(simulate::page))
        .route("/simulations/{id}/cancel", post(simulate::cancel))
        .route("/stream", get(stream))
        .route("/static/console.css", get(css))
        .route("/static/console.js", get(js))
        .route("/manifest.webmanifest", get(manifest))
        .route("/favicon.ico", get(icon_svg))
        .route("/static/icon.svg", get(icon_svg))
        .route(
            "/static/icon-192.png",
            get(|| icon_png(include_bytes!("../../static/icon-192.png"))),
        )
        .route(
            "/static/icon-512.png",
            get(|| icon_png(include_bytes!("../../static/icon-512.png"))),
        )
}

/// The web-app manifest, so a rep can put the console on a phone's home screen; it opens on
/// their own leads.
async fn manifest(headers: HeaderMap) -> Response {
    let t = Tr {
        lang: Lang::from_headers(&headers),
    };
    let body = serde_json::json!({
        "name": t.t("app"),
        "short_name": "Leadroute",
        "lang": t.lang(),
        "start_url": "/me",
        "scope": "/",
        "display": "standalone",
        "background_color": "#f6f8fa",
        "theme_color": "#1f6feb",
        "icons": [
            {"src": "/static/icon-192.png", "sizes": "192x192", "type": "image/png"},
            {"src": "/static/icon-512.png", "sizes": "512x512", "type": "image/png"},
            {"src": "/static/icon.svg", "sizes": "any", "type": "image/svg+xml"}
        ]
    });
    (
        [(header::CONTENT_TYPE, "application/manifest+json")],
        body.to_string(),
    )
        .into_response()
}

async fn icon_svg() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        include_str!("../../static/icon.svg"),
    )
        .into_response()
}

async fn icon_png(bytes: &'static [u8]) -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        bytes,
    )
        .into_response()
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../static/console.css"),
    )
        .into_response()
}

async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../static/console.js"),
    )
        .into_response()
}

/// What every page shows around its content.
#[derive(Debug)]
pub struct Frame {
    pub t: Tr,
    pub title: String,
    pub csrf: String,
    pub user: String,
    pub signed_in: bool,
    pub is_rep: bool,
    pub is_admin: bool,
    /// Admins and managers: the settings pages (a manager's reps and teams only).
    pub can_manage: bool,
    pub section: &'static str,
    pub notice: String,
}

/// The signed-in person looking at a page.
struct Viewer {
    caller: Caller,
    user: UserRow,
    csrf: String,
    t: Tr,
    /// Times are shown in the viewer's zone: a rep's own, else the default calendar's.
    zone: chrono_tz::Tz,
}

impl Viewer {
    /// A `datetime-local` value (`2026-12-01T10:30`) read in the viewer's zone, as RFC 3339.
    fn instant(&self, text: &str) -> Option<String> {
        let naive = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M").ok()?;
        let local = naive.and_local_timezone(self.zone).earliest()?;
        Some(local.to_rfc3339())
    }

    /// A stored time as the viewer reads it: `2026-11-27 10:00`.
    fn local(&self, micros: i64) -> String {
        chrono::DateTime::from_timestamp_micros(micros)
            .unwrap_or_default()
            .with_timezone(&self.zone)
            .format("%Y-%m-%d %H:%M")
            .to_string()
    }

    fn frame(&self, title: &str, section: &'static str, notice: String) -> Frame {
        Frame {
            t: self.t,
            title: title.to_owned(),
            csrf: self.csrf.clone(),
            user: self.user.display_name.clone(),
            signed_in: true,
            is_rep: self.caller.role == Role::Rep,
            is_admin: self.caller.role == Role::Admin,
            can_manage: matches!(self.caller.role, Role::Admin | Role::Manager),
            section,
            notice,
        }
    }
}

/// The viewer of a request, or the way to the sign-in page.
async fn viewer(app: &AppState, headers: &HeaderMap) -> Result<Viewer, Response> {
    let t = Tr {
        lang: Lang::from_headers(headers),
    };
    let Some(id) = session_cookie(headers) else {
        return Err(Redirect::to("/login").into_response());
    };
    match crate::auth::session(app, &id).await {
        Ok((caller, session, user)) => {
            let zone = viewer_zone(app, caller.rep_id.as_deref()).await;
            Ok(Viewer {
                caller,
                user,
                csrf: session.csrf_token,
                t,
                zone,
            })
        }
        Err(_) => Err(Redirect::to("/login").into_response()),
    }
}

/// The rep's time zone, else the default calendar's, else Asia/Shanghai.
async fn viewer_zone(app: &AppState, rep: Option<&str>) -> chrono_tz::Tz {
    let named = |value: Option<&Value>, key: &str| {
        value
            .and_then(|document| document.get(key)?.as_str())
            .and_then(|zone| engine::hours::parse_time_zone(zone).ok())
    };
    if let Some(rep) = rep
        && let Ok(Some(row)) = app.store.get_rep(rep).await
    {
        let document: Option<Value> = serde_json::from_str(&row.document).ok();
        if let Some(zone) = named(document.as_ref(), "time_zone") {
            return zone;
        }
    }
    if let Ok(Some(row)) = app
        .store
        .get_setting(store::Setting::Calendars, "default")
        .await
    {
        let document: Option<Value> = serde_json::from_str(&row.document).ok();
        if let Some(zone) = named(document.as_ref(), "time_zone") {
            return zone;
        }
    }
    chrono_tz::Asia::Shanghai
}

fn render(template: impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(error) => ApiError::internal(error).into_response(),
    }
}

/// A form post's fields.
fn form(bytes: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(bytes)
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect()
}

/// Whether a form carries the session's CSRF token.
/// A posted form with who sent it: the viewer as `viewer` found them (or the answer for
/// someone who may not be here), the form's fields once its CSRF token checks out.
fn posted(
    viewer: Result<Viewer, Response>,
    body: &[u8],
) -> Result<(Viewer, HashMap<String, String>), Box<Response>> {
    let viewer = viewer.map_err(Box::new)?;
    let fields = form(body);
    if !csrf_ok(&viewer, &fields) {
        return Err(Box::new(csrf_refused()));
    }
    for (name, value) in &fields {
        crate::text::check(name, name, crate::text::MAX_NAME)
            .and_then(|()| crate::text::check(value, name, crate::BODY_LIMIT))
            .map_err(|error| Box::new(error.into_response()))?;
    }
    Ok((viewer, fields))
}

fn csrf_ok(viewer: &Viewer, fields: &HashMap<String, String>) -> bool {
    let given = fields.get("csrf").map(String::as_str).unwrap_or_default();
    crate::auth::same(given, &viewer.csrf)
}

fn csrf_refused() -> Response {
    (StatusCode::FORBIDDEN, "CSRF token missing or wrong").into_response()
}

/// Where a form sends the browser after it acted: back, with a notice of what happened.
fn back(to: &str, outcome: Result<(), ApiError>) -> Response {
    let notice = match outcome {
        Ok(()) => "ok".to_owned(),
        // The field rides along after a colon so the notice can say where.
        Err(error) => match error.field {
            Some(field) => format!("{}:{field}", error.code),
            None => error.code,
        },
    };
    let separator = if to.contains('?') { '&' } else { '?' };
    Redirect::to(&format!(
        "{to}{separator}notice={}",
        url::form_urlencoded::byte_serialize(notice.as_bytes()).collect::<String>()
    ))
    .into_response()
}

fn notice_text(t: &Tr, notice: Option<&str>) -> String {
    match notice {
        None | Some("") => String::new(),
        Some("ok") => t.t("save").to_owned() + " ✓",
        Some(notice) => {
            let (code, field) = notice.split_once(':').unwrap_or((notice, ""));
            let mut text = match t.error(code) {
                Some(sentence) => sentence.to_owned(),
                None => format!("{}: {code}", t.t("error")),
            };
            if !field.is_empty() {
                text.push_str(&format!(" ({field})"));
            }
            text
        }
    }
}

#[derive(Debug, Deserialize)]
struct NoticeQuery {
    notice: Option<String>,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    frame: Frame,
    error: String,
}

fn signed_out_frame(t: Tr, title: &str) -> Frame {
    Frame {
        t,
        title: title.to_owned(),
        csrf: String::new(),
        user: String::new(),
        signed_in: false,
        is_rep: false,
        is_admin: false,
        can_manage: false,
        section: "login",
        notice: String::new(),
    }
}

async fn login_page(headers: HeaderMap) -> Response {
    let t = Tr {
        lang: Lang::from_headers(&headers),
    };
    render(LoginPage {
        frame: signed_out_frame(t, t.t("sign_in")),
        error: String::new(),
    })
}

async fn login_submit(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let t = Tr {
        lang: Lang::from_headers(&headers),
    };
    let fields = form(&body);
    let username = fields.get("username").cloned().unwrap_or_default();
    let password = fields.get("password").cloned().unwrap_or_default();
    match accounts::sign_in(&app, &username, password).await {
        Ok(signed) => {
            let home = if signed.user.role == "rep" {
                "/me"
            } else {
                "/"
            };
            let mut response = Redirect::to(home).into_response();
            response
                .headers_mut()
                .insert(header::SET_COOKIE, signed.cookie(&app));
            response
        }
        Err(error) => {
            let message = if error.code == "account_locked" {
                t.t("locked")
            } else {
                t.t("bad_login")
            };
            let mut response = render(LoginPage {
                frame: signed_out_frame(t, t.t("sign_in")),
                error: message.to_owned(),
            });
            *response.status_mut() = error.status;
            response
        }
    }
}

async fn logout(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(response) = posted(viewer(&app, &headers).await, &body) {
        return *response;
    }
    if let Some(id) = session_cookie(&headers)
        && let Err(error) = app.store.delete_session(&crate::auth::hash(&id)).await
    {
        return ApiError::from(error).into_response();
    }
    let mut response = Redirect::to("/login").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, accounts::cookie_cleared());
    response
}

/// Switches the language (a cookie) and goes back.
async fn set_language(Path(code): Path<String>, headers: HeaderMap) -> Response {
    let code = if code == "en" { "en" } else { "zh" };
    let back = headers
        .get(header::REFERER)
        .and_then(|value| value.to_str().ok())
        .and_then(|referer| {
            // Only back to a page of this site.
            let path = referer.split_once("://").map_or(referer, |(_, rest)| {
                rest.find('/').map_or("/", |at| &rest[at..])
            });
            path.starts_with('/').then(|| path.to_owned())
        })
        .unwrap_or_else(|| "/".to_owned());
    let mut response = Redirect::to(&back).into_response();
    if let Ok(value) = HeaderValue::from_str(&format!(
        "lang={code}; Path=/; Max-Age=31536000; SameSite=Lax"
    )) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// A lead as lists show it.
#[derive(Debug)]
struct LeadLine {
    id: String,
    name: String,
    company: String,
    region: String,
    source: String,
    status: String,
    owner: String,
    created: String,
    due: String,
    /// For tap-to-call; empty where the viewer may not see the lead's contact details.
    phone: String,
    /// For copying into WeChat; empty where the viewer may not see it.
    wechat: String,
    /// A priority code (`urgent`, `high`, `normal`, `low`).
    priority: String,
    /// When it was last followed up (or assigned), in the viewer's zone.
    last_touch: String,
    /// A callback passed, or the SLA clock ran out unanswered (set by lists that asked).
    overdue: bool,
    /// In a pool: why it is there, and since when (set by the pool page).
    why: String,
    since: String,
}

fn line(viewer: &Viewer, row: &store::LeadRow, names: &HashMap<String, String>) -> LeadLine {
    let caller = &viewer.caller;
    let view = access::view(caller, row);
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    LeadLine {
        id: row.id.clone(),
        name: view.document.name.clone().unwrap_or_else(|| "—".into()),
        company: text(&view.document.company),
        region: text(&view.document.region),
        source: text(&row.source),
        status: row.status.clone(),
        owner: row
            .owner_id
            .as_ref()
            .map(|id| names.get(id).cloned().unwrap_or_else(|| id.clone()))
            .unwrap_or_default(),
        created: viewer.local(row.created_at),
        due: String::new(),
        phone: text(&view.document.phone),
        wechat: text(&view.document.wechat),
        priority: row.priority.clone().unwrap_or_else(|| "normal".to_owned()),
        last_touch: row
            .last_activity_at
            .or(row.assigned_at)
            .map(|at| viewer.local(at))
            .unwrap_or_default(),
        overdue: false,
        why: String::new(),
        since: String::new(),
    }
}

/// Why a lead waits in a pool, from the decision that put it there, in words.
fn pool_reason(t: &Tr, decision: &store::DecisionRow) -> String {
    let reason = decision.reason.clone().unwrap_or_default();
    match decision.kind.as_str() {
        "pool" => match t.t(&format!("pool_why_{reason}")) {
            "?" if reason.is_empty() => t.t("pool_why_released").to_owned(),
            // A reason the owner wrote when they gave it back.
            "?" => format!("{}：{reason}", t.t("pool_why_released")),
            words => words.to_owned(),
        },
        "reclaim" => t.t("pool_why_sla_pool").to_owned(),
        _ => t.t("pool_why_route").to_owned(),
    }
}

/// People and keys as the audit log names them (`user:<id>`, `key:<id>`), by display name.
async fn actor_names(app: &AppState) -> HashMap<String, String> {
    let mut names = HashMap::new();
    for user in app.store.list_users().await.unwrap_or_default() {
        let name = if user.display_name.is_empty() {
            user.username
        } else {
            user.display_name
        };
        names.insert(format!("user:{}", user.id), name);
    }
    for key in app.store.list_api_keys().await.unwrap_or_default() {
        names.insert(format!("key:{}", key.id), key.name);
    }
    names
}

/// An actor in words: a person's or key's name, the command line, or the code as it is.
fn actor_name(names: &HashMap<String, String>, actor: &str, t: &i18n::Tr) -> String {
    match (names.get(actor), actor) {
        (Some(name), _) => name.clone(),
        (None, "cli" | "user:cli") => t.t("actor_cli").to_owned(),
        (None, "system") => t.t("actor_system").to_owned(),
        _ => actor.to_owned(),
    }
}

async fn rep_names(app: &AppState) -> Result<HashMap<String, String>, ApiError> {
    Ok(app
        .store
        .list_reps()
        .await?
        .into_iter()
        .map(|row| (row.id, row.name))
        .collect())
}

/// One line of a lead's timeline.
#[derive(Debug)]
struct Entry {
    at: String,
    sort: i64,
    kind: &'static str,
    label: String,
    text: String,
    details: String,
}

#[derive(Debug)]
struct LeadFacts {
    id: String,
    name: String,
    company: String,
    phone: String,
    region: String,
    industry: String,
    source: String,
    status: String,
    owner: String,
    priority: String,
    /// Custom fields with a value, by name; tags.
    attributes: Vec<(String, String)>,
    tags: String,
    /// The model's win probability and why, as last routed.
    win: String,
}

#[derive(Template)]
#[template(path = "lead.html")]
struct LeadPage {
    frame: Frame,
    lead: LeadFacts,
    timeline: Vec<Entry>,
    can_follow_up: bool,
    can_reassign: bool,
    reps: Vec<(String, String)>,
    /// What the clocks will do next: `(when, what)`, soonest first.
    coming: Vec<(String, String)>,
}

/// The lead's pending timers as a person reads them: when, and what will happen then.
async fn coming_up(
    app: &AppState,
    viewer: &Viewer,
    row: &store::LeadRow,
) -> Result<Vec<(String, String)>, ApiError> {
    let t = viewer.t;
    let timers = crate::routing::coming(&app.store, row).await?;
    // The ladder's rungs say what they do in the lead's SLA policy.
    let actions: Vec<String> = match &row.sla_policy {
        Some(policy) => app
            .store
            .get_setting(store::Setting::SlaPolicies, policy)
            .await?
            .and_then(|setting| serde_json::from_str::<Value>(&setting.document).ok())
            .and_then(|document| {
                document["steps"].as_array().map(|steps| {
                    steps
                        .iter()
                        .map(|step| step["action"].as_str().unwrap_or_default().to_owned())
                        .collect()
                })
            })
            .unwrap_or_default(),
        None => Vec::new(),
    };
    Ok(timers
        .iter()
        .map(|timer| {
            let what = match timer.kind.as_str() {
                "sla" => {
                    let action = actions
                        .get(usize::try_from(timer.step).unwrap_or(usize::MAX))
                        .map(String::as_str)
                        .map(|action| if action == "pool" { "to_pool" } else { action })
                        .unwrap_or("remind");
                    format!("{} · {}", t.t("sla_step"), t.t(action))
                }
                other => t.t(&format!("timer_{other}")).to_owned(),
            };
            (viewer.local(timer.due_at), what)
        })
        .collect())
}

async fn lead_page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<NoticeQuery>,
) -> Response {
    let viewer = match viewer(&app, &headers).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    match lead_data(&app, &viewer, &id, query.notice.as_deref()).await {
        Ok(page) => render(page),
        Err(error) if error.status == StatusCode::NOT_FOUND => {
            (StatusCode::NOT_FOUND, Html(viewer.t.t("not_found"))).into_response()
        }
        Err(error) => error.into_response(),
    }
}

async fn lead_data(
    app: &AppState,
    viewer: &Viewer,
    id: &str,
    notice: Option<&str>,
) -> Result<LeadPage, ApiError> {
    let t = viewer.t;
    let row = access::lead(app, &viewer.caller, id).await?;
    let view = access::view(&viewer.caller, &row);
    let names = rep_names(app).await?;
    let name_of = |id: &Option<String>| {
        id.as_ref()
            .map(|id| names.get(id).cloned().unwrap_or_else(|| id.clone()))
            .unwrap_or_default()
    };
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    let language = if t.is_zh() { "zh" } else { "en" };
    let mut timeline = vec![Entry {
        at: viewer.local(row.created_at),
        sort: row.created_at,
        kind: "intake",
        label: t.t("intake").to_owned(),
        text: text(&row.source),
        details: String::new(),
    }];
    let mut win = String::new();
    let pools: HashMap<String, String> = (app.store.list_settings(store::Setting::Pools).await?)
        .into_iter()
        .map(|row| (row.id, row.name))
        .collect();
    let pool_name = |id: &str| pools.get(id).cloned().unwrap_or_else(|| id.to_owned());
    for decision in app.store.decisions_for(id).await? {
        let record = serde_json::from_str::<engine::DecisionRecord>(&decision.record).ok();
        if win.is_empty()
            && let Some(record) = &record
            && let Some(score) = &record.win
        {
            win = score.explain(if t.is_zh() {
                engine::Language::Zh
            } else {
                engine::Language::En
            });
        }
        let explanation: Value =
            serde_json::from_str(&crate::leads::stored_explanation(&decision)).unwrap_or_default();
        timeline.push(Entry {
            at: viewer.local(decision.created_at),
            sort: decision.created_at,
            kind: "decision",
            label: format!("{} · {}", t.t("decision"), t.state(&decision.kind)),
            // Routed decisions read as a sentence; manual ones name the rep and the reason.
            text: match (&record, decision.kind.as_str()) {
                (Some(record), kind) if !matches!(kind, "manual" | "import" | "claim") => {
                    decision_words::sentence(record, &t, &pool_name)
                }
                _ => format!(
                    "→ {} {}",
                    name_of(&decision.owner_id),
                    decision.reason.clone().unwrap_or_default()
                ),
            },
            details: explanation
                .get(language)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        });
    }
    for activity in app.store.activities_for(id).await? {
        timeline.push(Entry {
            at: viewer.local(activity.created_at),
            sort: activity.created_at,
            kind: "activity",
            label: format!("{} · {}", t.t("activity"), t.t(&activity.kind)),
            text: format!(
                "{} {} {}",
                name_of(&activity.rep_id),
                t.word(activity.outcome.as_deref().unwrap_or_default()),
                activity.note.clone().unwrap_or_default()
            ),
            details: String::new(),
        });
    }
    let events = app
        .store
        .list_outbox(&EventFilter {
            lead_id: Some(id.to_owned()),
            event: None,
            after_id: None,
            limit: 200,
        })
        .await?;
    for event in events {
        timeline.push(Entry {
            at: viewer.local(event.created_at),
            sort: event.created_at,
            kind: "event",
            label: format!("{} · {}", t.t("event"), t.word(&event.event)),
            text: serde_json::from_str::<Vec<String>>(&event.recipients)
                .unwrap_or_default()
                .iter()
                .map(|id| names.get(id).cloned().unwrap_or_else(|| id.clone()))
                .collect::<Vec<_>>()
                .join(", "),
            details: String::new(),
        });
    }
    timeline.sort_by_key(|entry| entry.sort);
    let open = engine::LeadStatus::parse(&row.status).is_some_and(engine::LeadStatus::is_open);
    let can_reassign = open && matches!(viewer.caller.role, Role::Admin | Role::Manager);
    let mut reps: Vec<(String, String)> = Vec::new();
    if can_reassign {
        reps = reps_in_reach(app, viewer, &names).await?;
        reps.retain(|(id, _)| row.owner_id.as_ref() != Some(id));
    }
    Ok(LeadPage {
        frame: viewer.frame(
            &text(&view.document.name),
            if viewer.caller.role == Role::Rep {
                "me"
            } else {
                "leads"
            },
            notice_text(&t, notice),
        ),
        lead: LeadFacts {
            id: row.id.clone(),
            name: view.document.name.clone().unwrap_or_else(|| "—".into()),
            company: text(&view.document.company),
            phone: text(&view.document.phone),
            region: text(&view.document.region),
            industry: text(&view.document.industry),
            source: text(&row.source),
            status: row.status.clone(),
            owner: name_of(&row.owner_id),
            // A lead no tier raised is of normal priority, not of none.
            priority: row.priority.clone().unwrap_or_else(|| "normal".to_owned()),
            attributes: view
                .document
                .attributes
                .iter()
                .map(|(name, value)| {
                    let shown = match value {
                        Value::String(text) => text.clone(),
                        Value::Array(items) => items
                            .iter()
                            .map(|item| {
                                item.as_str()
                                    .map_or_else(|| item.to_string(), str::to_owned)
                            })
                            .collect::<Vec<_>>()
                            .join(", "),
                        other => other.to_string(),
                    };
                    (name.clone(), shown)
                })
                .collect(),
            tags: view.document.tags.join(", "),
            win,
        },
        timeline,
        can_follow_up: open && viewer.caller.role != Role::Rep
            || open && row.owner_id.is_some() && row.owner_id == viewer.caller.rep_id,
        can_reassign,
        reps,
        coming: coming_up(app, viewer, &row).await?,
    })
}

/// Runs a form's action through the API handler, as the viewer.
async fn act<F, Fut>(app: &AppState, headers: &HeaderMap, body: &Bytes, action: F) -> Response
where
    F: FnOnce(Viewer, HashMap<String, String>) -> Fut,
    Fut: std::future::Future<Output = (String, Result<(), ApiError>)>,
{
    let (viewer, fields) = match posted(viewer(app, headers).await, body) {
        Ok(posted) => posted,
        Err(response) => return *response,
    };
    let (to, outcome) = action(viewer, fields).await;
    back(&to, outcome)
}

/// Where a form asked to go back to, if it is a page of this site.
fn return_to(fields: &HashMap<String, String>, default: String) -> String {
    fields
        .get("back")
        .filter(|path| path.starts_with('/') && !path.starts_with("//"))
        .cloned()
        .unwrap_or(default)
}

async fn log_activity(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let handle = app.clone();
    act(&app, &headers, &body, move |viewer, fields| async move {
        let to = return_to(&fields, format!("/leads/{id}"));
        let input = crate::routing::ActivityInput {
            kind: fields.get("kind").cloned().unwrap_or_else(|| "note".into()),
            rep_id: None,
            outcome: None,
            note: fields
                .get("note")
                .cloned()
                .filter(|note| !note.trim().is_empty()),
            occurred_at: None,
            // A `datetime-local` value, in the viewer's zone; the API names it if it is wrong.
            next_follow_up_at: fields
                .get("next_follow_up_at")
                .filter(|text| !text.is_empty())
                .map(|text| viewer.instant(text).unwrap_or_else(|| text.clone())),
        };
        let outcome = crate::api::follow_up::log_activity(
            State(handle),
            Extension(viewer.caller),
            Path(id),
            Body(input),
        )
        .await
        .map(drop);
        (to, outcome)
    })
    .await
}

/// The owner (or a manager) moves the lead along: contacted, qualified, won with an amount,
/// lost with a reason, invalid.
async fn change_lead_status(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let handle = app.clone();
    act(&app, &headers, &body, move |viewer, fields| async move {
        let to = format!("/leads/{id}");
        let fields = forms::Fields(&fields);
        let mut patch = serde_json::Map::new();
        patch.insert("status".into(), fields.optional("status"));
        // Only what was filled in: an empty box is not a change.
        for (key, value) in [
            ("amount", fields.number("amount")),
            ("lost_reason", fields.optional("lost_reason")),
        ] {
            if !value.is_null() {
                patch.insert(key.into(), value);
            }
        }
        let outcome = crate::api::leads::patch_lead(
            State(handle),
            Extension(viewer.caller),
            Path(id),
            Body(patch),
        )
        .await
        .map(drop);
        (to, outcome)
    })
    .await
}

async fn reassign(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let handle = app.clone();
    act(&app, &headers, &body, move |viewer, fields| async move {
        let to = format!("/leads/{id}");
        let input = crate::api::leads::AssignInput {
            rep_id: fields.get("rep_id").cloned().unwrap_or_default(),
            reason: fields
                .get("reason")
                .cloned()
                .filter(|reason| !reason.trim().is_empty()),
            override_collision: fields.contains_key("override_collision"),
        };
        let outcome = crate::api::leads::assign_lead(
            State(handle),
            Extension(viewer.caller),
            Path(id),
            Body(input),
        )
        .await
        .map(drop);
        (to, outcome)
    })
    .await
}

/// The reps a manager may hand leads to (their teams'), or every rep for an admin; by name.
async fn reps_in_reach(
    app: &AppState,
    viewer: &Viewer,
    names: &HashMap<String, String>,
) -> Result<Vec<(String, String)>, ApiError> {
    let reachable = match viewer.caller.role {
        Role::Manager => Some(access::members(app, &viewer.caller.teams).await?),
        _ => None,
    };
    // A rep who cannot take leads now (paused, on leave, inactive) is marked, not hidden: a
    // manager may still hand them one on purpose.
    let statuses: HashMap<String, String> = (app.store.list_reps().await?)
        .into_iter()
        .map(|row| (row.id, row.status))
        .collect();
    let mut reps: Vec<(String, String)> = names
        .iter()
        .filter(|(id, _)| {
            reachable
                .as_ref()
                .is_none_or(|members| members.contains(id))
        })
        .map(|(id, name)| {
            let label = match statuses.get(id).map(String::as_str) {
                Some("active") | None => name.clone(),
                Some(status) => format!("{name}（{}）", viewer.t.t(status)),
            };
            (id.clone(), label)
        })
        .collect();
    reps.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(reps)
}

/// The teams a viewer may distribute pool leads across: all for an admin, their own for a
/// manager.
async fn teams_in_reach(
    app: &AppState,
    viewer: &Viewer,
) -> Result<Vec<(String, String)>, ApiError> {
    let mut teams: Vec<(String, String)> = crate::workspace::ConfigRows::load(&app.store)
        .await?
        .teams
        .iter()
        .filter(|row| viewer.caller.role != Role::Manager || viewer.caller.teams.contains(&row.id))
        .map(|row| {
            let name = serde_json::from_str::<Value>(&row.document)
                .ok()
                .and_then(|document| document["name"].as_str().map(str::to_owned))
                .unwrap_or_else(|| row.id.clone());
            (row.id.clone(), name)
        })
        .collect();
    teams.sort();
    Ok(teams)
}

/// The leads a list's checkboxes ticked (`lead_<id>` fields).
fn ticked_leads(fields: &HashMap<String, String>) -> Vec<String> {
    fields
        .keys()
        .filter_map(|key| key.strip_prefix("lead_"))
        .map(str::to_owned)
        .collect()
}

/// A manager hands the ticked pool leads (`lead_<id>`) to one rep, with a reason.
async fn assign_from_pool(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let handle = app.clone();
    act(&app, &headers, &body, move |viewer, fields| async move {
        let lead_ids = ticked_leads(&fields);
        if lead_ids.is_empty() {
            return (
                "/pool".to_owned(),
                Err(ApiError::invalid(
                    "missing_field",
                    "lead_ids",
                    "tick the leads to assign",
                )),
            );
        }
        let answer = crate::api::pool::assign_from_pool(
            State(handle),
            Extension(viewer.caller),
            Body(crate::api::pool::PoolAssignInput {
                lead_ids,
                rep_id: fields.get("rep_id").cloned().unwrap_or_default(),
                reason: fields
                    .get("reason")
                    .cloned()
                    .filter(|reason| !reason.is_empty()),
                override_collision: fields.contains_key("override_collision"),
            }),
        )
        .await;
        // One result per lead: the first refusal is what the notice says.
        let outcome = answer.and_then(|answer| {
            let refused = answer.0["items"].as_array().and_then(|items| {
                items.iter().find_map(|item| {
                    let error = &item["error"];
                    error.is_object().then(|| {
                        ApiError::conflict(error["code"].as_str().unwrap_or("refused"), "")
                    })
                })
            });
            refused.map_or(Ok(()), Err)
        });
        ("/pool".to_owned(), outcome)
    })
    .await
}

async fn claim(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let handle = app.clone();
    act(&app, &headers, &body, move |viewer, _| async move {
        let Some(rep_id) = viewer.caller.rep_id.clone() else {
            return (
                "/pool".to_owned(),
                Err(crate::auth::forbidden("only reps claim from the console")),
            );
        };
        let outcome = crate::api::pool::claim(
            State(handle),
            Extension(viewer.caller),
            Path(id.clone()),
            Body(crate::api::pool::ClaimInput { rep_id }),
        )
        .await
        .map(drop);
        let to = if outcome.is_ok() {
            format!("/leads/{id}")
        } else {
            "/pool".to_owned()
        };
        (to, outcome)
    })
    .await
}

async fn set_status(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let handle = app.clone();
    act(&app, &headers, &body, move |viewer, fields| async move {
        let Some(rep_id) = viewer.caller.rep_id.clone() else {
            return ("/me".to_owned(), Err(crate::auth::forbidden("not a rep")));
        };
        let status = fields.get("status").cloned().unwrap_or_default();
        let day = |key: &str| fields.get(key).cloned().filter(|day| !day.is_empty());
        // Leave with its dates, when given (the last day defaults to the first).
        let leave = match (status.as_str(), day("leave_from")) {
            ("on_leave", Some(from)) => Some(crate::workspace::LeaveDocument {
                until: day("leave_until").unwrap_or_else(|| from.clone()),
                from,
            }),
            _ => None,
        };
        let input = crate::api::reps::StatusInput { status, leave };
        let outcome = crate::api::reps::set_status(
            State(handle),
            Extension(viewer.caller),
            Path(rep_id),
            crate::api::IfMatch(None),
            Body(input),
        )
        .await
        .map(drop);
        ("/me".to_owned(), outcome)
    })
    .await
}

#[derive(Template)]
#[template(path = "me.html")]
struct MePage {
    frame: Frame,
    status: String,
    leads: Vec<LeadLine>,
}

async fn me_page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<NoticeQuery>,
) -> Response {
    let viewer = match viewer(&app, &headers).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let result: Result<MePage, ApiError> = async {
        let rep_id = viewer.caller.rep_id.clone().unwrap_or_default();
        let status = app
            .store
            .get_rep(&rep_id)
            .await?
            .map(|row| row.status)
            .unwrap_or_default();
        let rows = app
            .store
            .list_leads(&LeadFilter {
                owner_id: Some(rep_id.clone()),
                limit: 200,
                ..LeadFilter::default()
            })
            .await?;
        // Overdue ones, by the dashboard's definition, come first and say so.
        let now = chrono::Utc::now().timestamp_micros();
        let names = rep_names(&app).await?;
        let mut leads: Vec<(i64, LeadLine)> = Vec::new();
        for row in rows.iter().filter(|row| {
            engine::LeadStatus::parse(&row.status).is_some_and(engine::LeadStatus::is_open)
        }) {
            let next = app
                .store
                .timers_for(&row.id)
                .await?
                .first()
                .map(|timer| timer.due_at);
            let mut item = line(&viewer, row, &names);
            item.due = next.map(|due| viewer.local(due)).unwrap_or_default();
            item.overdue = row.overdue_at(now);
            let first = if item.overdue {
                i64::MIN
            } else {
                next.unwrap_or(i64::MAX)
            };
            leads.push((first, item));
        }
        // What is due first comes first.
        leads.sort_by_key(|(due, _)| *due);
        Ok(MePage {
            frame: viewer.frame(
                viewer.t.t("my_leads"),
                "me",
                notice_text(&viewer.t, query.notice.as_deref()),
            ),
            status,
            leads: leads.into_iter().map(|(_, item)| item).collect(),
        })
    }
    .await;
    match result {
        Ok(page) => render(page),
        Err(error) => error.into_response(),
    }
}

#[derive(Template)]
#[template(path = "pool.html")]
struct PoolPage {
    frame: Frame,
    allowance: String,
    leads: Vec<LeadLine>,
    can_claim: bool,
    /// For managers and admins: whom ticked leads can be assigned to.
    assignable: Vec<(String, String)>,
    /// For managers and admins: the teams ticked leads can be distributed across.
    teams: Vec<(String, String)>,
}

async fn pool_page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<NoticeQuery>,
) -> Response {
    let viewer = match viewer(&app, &headers).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let result: Result<PoolPage, ApiError> = async {
        let listed = crate::api::pool::list_pool(
            State(app.clone()),
            Extension(viewer.caller.clone()),
            Query(crate::api::pool::PoolQuery {
                pool_id: None,
                rep_id: viewer.caller.rep_id.clone(),
                limit: Some(100),
                cursor: None,
            }),
        )
        .await?
        .0;
        let ids: Vec<String> = listed["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| item["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let names = rep_names(&app).await?;
        let mut leads = Vec::new();
        let t = viewer.t;
        for id in ids {
            if let Some(row) = app.store.get_lead(&id).await? {
                let mut item = line(&viewer, &row, &names);
                // The latest decision is the one that left it here.
                if let Some(decision) = app.store.decisions_for(&id).await?.first() {
                    item.why = pool_reason(&t, decision);
                    item.since = viewer.local(decision.created_at);
                }
                leads.push(item);
            }
        }
        // Pools by name (公海), with the claims left today.
        let pool_names: HashMap<String, String> =
            (app.store.list_settings(store::Setting::Pools).await?)
                .into_iter()
                .map(|row| (row.id, row.name))
                .collect();
        let allowance = listed["allowance"]["pools"]
            .as_array()
            .map(|pools| {
                pools
                    .iter()
                    .map(|pool| {
                        let remaining = pool["remaining"]
                            .as_i64()
                            .map_or_else(|| t.t("unlimited").to_owned(), |n| n.to_string());
                        let id = pool["pool_id"].as_str().unwrap_or("");
                        let name = pool_names.get(id).map_or(id, String::as_str);
                        format!("{name} {remaining}")
                    })
                    .collect::<Vec<_>>()
                    .join(" · ")
            })
            .unwrap_or_default();
        Ok(PoolPage {
            frame: viewer.frame(
                t.t("pool"),
                "pool",
                notice_text(&t, query.notice.as_deref()),
            ),
            allowance,
            leads,
            can_claim: viewer.caller.role == Role::Rep,
            assignable: if matches!(viewer.caller.role, Role::Admin | Role::Manager) {
                reps_in_reach(&app, &viewer, &names).await?
            } else {
                Vec::new()
            },
            teams: if viewer
                .caller
                .may(crate::ops::Operation::DistributePool)
                .is_ok()
            {
                teams_in_reach(&app, &viewer).await?
            } else {
                Vec::new()
            },
        })
    }
    .await;
    match result {
        Ok(page) => render(page),
        Err(error) => error.into_response(),
    }
}

/// Server-sent events for an open console: a `lead` event whenever the outbox gets an event
/// for the viewer (a new lead, a reminder, an escalation), checked every second.
async fn stream(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let viewer = match viewer(&app, &headers).await {
        Ok(viewer) => viewer,
        Err(_) => return StatusCode::UNAUTHORIZED.into_response(),
    };
    let Some(session) = crate::auth::session_cookie(&headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let closing = app.closing.subscribe();
    // Start after what exists now.
    let start = uuid::Uuid::now_v7().to_string();
    let who = viewer.caller.rep_id.clone();
    let everyone = viewer.caller.role == Role::Admin;
    let zh = viewer.t.is_zh();
    let caller = viewer.caller.clone();
    let state = (app, start);
    let events = futures_util::stream::unfold(state, move |(app, after)| {
        let who = who.clone();
        let caller = caller.clone();
        let session = session.clone();
        let mut closing = closing.clone();
        async move {
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                _ = closing.wait_for(|closing| *closing) => return None,
            }
            // The stream ends with its session: signed out, expired, or the user deactivated.
            if !crate::auth::session_live(&app, &session).await {
                return None;
            }
            let rows = app
                .store
                .list_outbox(&EventFilter {
                    lead_id: None,
                    event: None,
                    after_id: Some(after.clone()),
                    limit: 100,
                })
                .await
                .ok()?;
            // A comment every second even when nothing happened: writing is how a closed
            // connection is noticed, so a page that went away frees its stream at once.
            let Some(last) = rows.last().map(|row| row.id.clone()) else {
                return Some((Event::default().comment("tick"), (app, after)));
            };
            let mine: Vec<&store::OutboxRow> = rows
                .iter()
                .filter(|row| {
                    everyone && row.event == "lead.assigned"
                        || who.as_ref().is_some_and(|rep| {
                            serde_json::from_str::<Vec<String>>(&row.recipients)
                                .unwrap_or_default()
                                .contains(rep)
                        })
                })
                .collect();
            let Some(row) = mine.last() else {
                return Some((Event::default().comment("tick"), (app, last)));
            };
            let text = match (row.event.as_str(), zh) {
                ("lead.assigned" | "lead.reassigned" | "lead.reclaimed", true) => "新线索",
                ("lead.assigned" | "lead.reassigned" | "lead.reclaimed", false) => "New lead",
                (_, true) => "线索提醒",
                (_, false) => "Lead reminder",
            };
            // The notice names the lead and links to it, when the viewer may see it.
            let seen = match &row.lead_id {
                Some(id) => access::lead(&app, &caller, id).await.ok(),
                None => None,
            };
            let (text, url) = match seen {
                Some(lead) => {
                    let document = access::view(&caller, &lead).document;
                    let who = [document.name, document.company]
                        .into_iter()
                        .flatten()
                        .filter(|part| !part.is_empty())
                        .collect::<Vec<_>>()
                        .join(" · ");
                    let text = if who.is_empty() {
                        text.to_owned()
                    } else {
                        format!("{text}{}{who}", if zh { "：" } else { ": " })
                    };
                    (text, Some(format!("/leads/{}", lead.id)))
                }
                None => (text.to_owned(), None),
            };
            let data = serde_json::json!({"event": row.event, "lead_id": row.lead_id,
                "text": text, "url": url});
            Some((
                Event::default().event("lead").data(data.to_string()),
                (app, last),
            ))
        }
    });
    let events = futures_util::StreamExt::map(events, Ok::<Event, std::convert::Infallible>);
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}
