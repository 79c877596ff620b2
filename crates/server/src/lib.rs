//! Leadroute's HTTP service, and the only crate that knows HTTP: the REST API under `/api/v1`
//! with its OpenAPI document, API-key auth, health and metrics, and the routing worker that
//! every state change goes through.

pub mod api;
pub mod auth;
pub mod batch;
pub mod console;
pub mod customer;
pub mod error;
pub mod extract;
pub mod intake;
pub mod leads;
pub mod metrics;
pub mod model;
pub mod normalize;
pub mod notify;
pub mod ops;
pub mod reports;
pub mod routing;
pub mod secrets;
pub mod settings;
pub mod simulate;
pub mod table;
pub mod text;
pub mod workspace;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use store::Store;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_swagger_ui::SwaggerUi;

use crate::error::ApiError;

/// How long a request body may take to arrive.
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Request bodies larger than this are refused with 413.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// What every handler can reach: one shared value, so the clone axum makes for each extractor
/// and middleware of every request is a single reference count, not one per service.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Services>);

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The services behind `AppState`.
#[derive(Clone, Debug)]
pub struct Services {
    pub store: Store,
    pub router: routing::Router,
    pub notifier: notify::Notifier,
    pub keys: Arc<auth::KeyCache>,
    /// Per-key request rates for integration keys.
    pub limits: Arc<auth::RateLimits>,
    /// Seals channel and intake-source secrets at rest (`LEADROUTE_SECRET_KEY`).
    pub sealer: Arc<secrets::Sealer>,
    /// Becomes `true` when the service is shutting down: long-lived answers (event streams)
    /// end, so the server can finish.
    pub closing: tokio::sync::watch::Sender<bool>,
    pub metrics: Arc<metrics::Metrics>,
}

impl AppState {
    /// Starts the routing worker for this store, with the clock ticking: due timers fire every
    /// second and the hold queue is swept every 15 seconds.
    pub fn new(store: Store) -> AppState {
        let state = AppState::without_clock(store);
        tokio::spawn(sweeps(state.router.clone()));
        tokio::spawn(ticks(state.router.clone()));
        tokio::spawn(notifications(state.notifier.clone()));
        tokio::spawn(model_schedule(state.store.clone()));
        tokio::spawn(digests(state.clone()));
        tokio::spawn(fold_tallies(state.store.clone()));
        let store = state.store.clone();
        tokio::spawn(async move {
            match customer::index_stored_leads(&store).await {
                Ok(0) => {}
                Ok(leads) => tracing::info!(leads, "indexed stored leads for duplicate checking"),
                Err(error) => {
                    tracing::warn!(error = %format!("{error:#}"), "indexing stored leads for duplicate checking failed; it resumes at the next start")
                }
            }
        });
        state
    }

    /// The same without the background clock: tests drive `router.tick(now)` and
    /// `router.sweep()` themselves.
    pub fn without_clock(store: Store) -> AppState {
        let router = routing::Router::start(store.clone());
        tokio::spawn(checkpoints(store.clone()));
        let keys: Arc<auth::KeyCache> = Arc::default();

        tokio::spawn(forget_revoked_keys(store.clone(), Arc::downgrade(&keys)));
        let public_url = std::env::var("LEADROUTE_PUBLIC_URL")
            .unwrap_or_else(|_| "http://127.0.0.1:8080".to_owned());
        let intake_rate = std::env::var("LEADROUTE_INTAKE_RATE")
            .ok()
            .and_then(|text| text.parse::<f64>().ok())
            .filter(|rate| *rate > 0.0)
            .unwrap_or(200.0);
        let timeout = std::env::var("LEADROUTE_NOTIFY_TIMEOUT_SECS")
            .ok()
            .and_then(|text| text.parse().ok())
            .map_or(
                std::time::Duration::from_secs(10),
                std::time::Duration::from_secs,
            );
        let limits =
            Arc::new(auth::RateLimits::new(intake_rate, intake_rate * 2.0).shared(store.clone()));
        let sealer = Arc::new(secrets::Sealer::from_env());
        AppState(Arc::new(Services {
            notifier: notify::Notifier::new(store.clone(), public_url, sealer.clone())
                .with_timeout(timeout),
            sealer,
            store,
            router,
            keys,
            limits,
            closing: tokio::sync::watch::Sender::new(false),
            metrics: Arc::default(),
        }))
    }
}

impl AppState {
    /// The same state sealing secrets with another key (tests, and embedders that keep the key
    /// elsewhere than the environment).
    pub fn with_sealer(self, sealer: secrets::Sealer) -> AppState {
        let sealer = Arc::new(sealer);
        self.with(|services| {
            services.notifier = services.notifier.clone().with_sealer(sealer.clone());
            services.sealer = sealer;
        })
    }

    /// The same state with some service changed (tests, and embedders).
    pub fn with(self, change: impl FnOnce(&mut Services)) -> AppState {
        let mut services = Arc::unwrap_or_clone(self.0);
        change(&mut services);
        AppState(Arc::new(services))
    }
}

/// How often the hold queue is swept even when nothing asked: working hours open, leave ends.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(15);

async fn sweeps(router: routing::Router) {
    let mut ticks = tokio::time::interval(SWEEP_EVERY);
    loop {
        ticks.tick().await;
        router.sweep_soon();
    }
}

/// How often due timers are looked for.
const TICK_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Fires due timers: every second, and again at once while a tick found a full batch. Timers
/// that fell due while the service was down fire on the first tick.
async fn ticks(router: routing::Router) {
    let mut ticks = tokio::time::interval(TICK_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        loop {
            match router.tick(chrono::Utc::now()).await {
                Ok(fired) if fired as i64 >= routing::TICK_LIMIT => continue,
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(code = %error.code, "tick failed");
                    break;
                }
            }
        }
    }
}

/// Delivers notifications: a round every second, at once again while rounds find work.
async fn notifications(notifier: notify::Notifier) {
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        loop {
            match notifier.run(chrono::Utc::now()).await {
                Ok(round) if round.sent + round.failed > 0 => continue,
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(code = %error.code, "notification round failed");
                    break;
                }
            }
        }
    }
}

/// Looks once a minute for a scheduled model training that fell due (one instance takes it).
/// Writes the team digests when their time comes (checked every half minute).
async fn digests(state: AppState) {
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(30));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if *state.closing.borrow() {
            return;
        }
        if let Err(error) = notify::digest::run_due(&state, chrono::Utc::now()).await {
            tracing::warn!(code = %error.code, "the team digest failed");
        }
    }
}

/// Moves the dashboard's counts that changed into its tallies every two seconds, so readers
/// add up few deltas (they add them all, so a late fold costs time, never a count).
async fn fold_tallies(store: Store) {
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(2));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(error) = store.fold_tallies().await {
            tracing::warn!(error = %error, "folding the dashboard's tallies failed");
        }
    }
}

async fn model_schedule(store: Store) {
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(60));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(error) = model::schedule::run_due(&store, chrono::Utc::now()).await {
            tracing::warn!(code = %error.code, "scheduled model training failed");
        }
    }
}

/// Forgets verified keys whenever another instance revokes one (PostgreSQL `LISTEN`), so a
/// revoked key stops everywhere at once, not when this instance's cache ages out. On SQLite
/// there is no other instance to hear from.
/// It ends (and lets its connection go) once the state it serves is gone.
async fn forget_revoked_keys(store: Store, keys: std::sync::Weak<auth::KeyCache>) {
    let forget = || match keys.upgrade() {
        Some(keys) => {
            keys.clear();
            true
        }
        None => false,
    };
    loop {
        match store.keys_listener().await {
            Ok(None) => return,
            Ok(Some(mut listener)) => {
                // Whatever happened while the listener was not yet connected is unknown.
                if !forget() {
                    return;
                }
                loop {
                    let heard =
                        tokio::time::timeout(std::time::Duration::from_secs(5), listener.next())
                            .await;
                    match heard {
                        // Nothing for a while: still wanted?
                        Err(_) if keys.strong_count() == 0 => return,
                        Err(_) => continue,
                        Ok(Ok(())) => {
                            if !forget() {
                                return;
                            }
                        }
                        Ok(Err(_)) if store.is_closed() => return,
                        Ok(Err(error)) => {
                            tracing::warn!(error = %error, "listening for revoked keys");
                            break;
                        }
                    }
                }
            }
            Err(_) if store.is_closed() => return,
            Err(error) => tracing::warn!(error = %error, "could not listen for revoked keys"),
        }
        if !forget() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// Checkpoints SQLite's write-ahead log every second, away from request handling.
async fn checkpoints(store: Store) {
    if store.backend() != "sqlite" {
        return;
    }
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        ticks.tick().await;
        if let Err(error) = store.checkpoint().await {
            tracing::warn!(error = %format!("{error:#}"), "checkpoint failed");
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Leadroute", description = "Lead routing: intake, rules, decisions, follow-up, SLA clocks and the pool. Every /api/v1 request needs `Authorization: Bearer <api key>`."),
    paths(
        api::leads::create_lead, api::leads::create_batch, api::leads::list_leads, api::leads::get_lead,
        api::leads::patch_lead, api::leads::lead_decisions, api::leads::assign_lead, api::leads::reroute_lead,
        api::leads::explain,
        api::reps::list_reps, api::reps::create_rep, api::reps::get_rep, api::reps::patch_rep, api::reps::delete_rep, api::reps::set_status,
        api::teams::list_teams, api::teams::create_team, api::teams::get_team, api::teams::patch_team, api::teams::delete_team,
        api::fields::list_fields, api::fields::create_field, api::fields::delete_field,
        api::rule_sets::list_rule_sets, api::rule_sets::create_rule_set, api::rule_sets::validate_rule_set,
        api::rule_sets::get_rule_set, api::rule_sets::publish_rule_set,
        api::simulations::create_simulation, api::simulations::list_simulations,
        api::simulations::get_simulation, api::simulations::cancel_simulation,
        api::models::train_model, api::models::list_models, api::models::get_model, api::models::publish_model,
        api::models::get_model_schedule, api::models::set_model_schedule,
        api::duplicates::get_duplicate_policy, api::duplicates::set_duplicate_policy,
        api::duplicates::list_duplicates, api::duplicates::dismiss_duplicate, api::duplicates::merge_leads,
        api::follow_up::log_activity, api::follow_up::list_activities, api::follow_up::record_feedback,
        api::follow_up::list_feedback, api::follow_up::list_timers, api::follow_up::list_events, api::follow_up::stats,
        api::reports::dashboard, api::reports::scorecard,
        api::pool::list_pool, api::pool::claim, api::pool::release, api::pool::distribute, api::pool::assign_from_pool,
        api::settings::calendars::list, api::settings::calendars::create, api::settings::calendars::get,
        api::settings::calendars::patch, api::settings::calendars::delete,
        api::settings::sla_policies::list, api::settings::sla_policies::create, api::settings::sla_policies::get,
        api::settings::sla_policies::patch, api::settings::sla_policies::delete,
        api::settings::pools::list, api::settings::pools::create, api::settings::pools::get,
        api::settings::pools::patch, api::settings::pools::delete,
        api::settings::channels::list, api::settings::channels::create, api::settings::channels::get,
        api::settings::channels::patch, api::settings::channels::delete,
        api::notifications::test_channel, api::notifications::list_deliveries, api::notifications::retry_delivery,
        api::settings::intake_sources::list, api::settings::intake_sources::create, api::settings::intake_sources::get,
        api::settings::intake_sources::patch, api::settings::intake_sources::delete,
        api::intake::receive, api::intake::verify, api::intake::source_log,
        api::accounts::login, api::accounts::current, api::accounts::logout, api::accounts::change_password,
        api::accounts::list_users, api::accounts::create_user, api::accounts::get_user, api::accounts::patch_user,
        api::accounts::reset_password, api::accounts::list_keys, api::accounts::create_key, api::accounts::rotate_key,
        api::accounts::revoke_key, api::accounts::list_audit,
    ),
    components(schemas(
        leads::LeadInput, api::leads::BatchInput, api::leads::AssignInput, api::leads::ExplainInput,
        customer::DuplicatePolicyDocument, customer::KeyKind, customer::OnMatch, api::duplicates::MergeInput,
        routing::Matched, routing::MatchAction,
        workspace::RepDocument, workspace::CapsDocument, workspace::LeaveDocument, api::reps::StatusInput,
        workspace::TeamDocument, workspace::MemberDocument, workspace::OverflowDocument, api::fields::NewField,
        routing::ActivityInput, routing::FeedbackInput, api::pool::ClaimInput, api::pool::ReleaseInput,
        api::pool::PoolAssignInput, settings::CalendarDocument, settings::SlaPolicyDocument,
        settings::SlaStepDocument, settings::CadenceDocument, settings::PoolDocument, settings::ProtectionDocument,
        notify::channel::ChannelDocument, notify::channel::SmtpDocument, workspace::ContactDocument,
        intake::IntakeSourceDocument, notify::sms::SmsDocument,
        api::accounts::LoginInput, api::accounts::PasswordChange, api::accounts::UserInput, api::accounts::UserPatch,
        api::accounts::PasswordReset, api::accounts::KeyInput,
        simulate::SimulationInput, simulate::PolicyInput, simulate::RosterChanges, simulate::FileInput,
        simulate::history::FileFormat, model::TrainRequest, model::TrainFile,
    )),
    modifiers(&BearerKey),
)]
struct ApiDoc;

struct BearerKey;

impl utoipa::Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "api_key",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

/// The OpenAPI document the server serves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The whole HTTP application.
pub fn app(state: AppState) -> axum::Router {
    use api::settings::{calendars, channels, intake_sources, pools, sla_policies};
    use api::{accounts, follow_up, intake, leads, notifications, pool, reps, rule_sets, teams};
    let v1 = axum::Router::new()
        .route("/leads", post(leads::create_lead).get(leads::list_leads))
        .route("/leads/batch", post(leads::create_batch))
        .route("/leads/{id}", get(leads::get_lead).patch(leads::patch_lead))
        .route("/leads/{id}/decisions", get(leads::lead_decisions))
        .route("/leads/{id}/assign", post(leads::assign_lead))
        .route("/leads/{id}/reroute", post(leads::reroute_lead))
        .route("/route/explain", post(leads::explain))
        .route(
            "/leads/{id}/activities",
            post(follow_up::log_activity).get(follow_up::list_activities),
        )
        .route(
            "/leads/{id}/feedback",
            post(follow_up::record_feedback).get(follow_up::list_feedback),
        )
        .route("/leads/{id}/timers", get(follow_up::list_timers))
        .route("/leads/{id}/claim", post(pool::claim))
        .route("/leads/{id}/release", post(pool::release))
        .route("/pool", get(pool::list_pool))
        .route("/pool/assign", post(pool::assign_from_pool))
        .route("/pool/distribute", post(pool::distribute))
        .route("/events", get(follow_up::list_events))
        .route("/stats", get(follow_up::stats))
        .route("/reports/dashboard", get(api::reports::dashboard))
        .route("/reports/reps/{id}", get(api::reports::scorecard))
        .route("/session", get(accounts::current).delete(accounts::logout))
        .route(
            "/session/password",
            axum::routing::put(accounts::change_password),
        )
        .route(
            "/users",
            get(accounts::list_users).post(accounts::create_user),
        )
        .route(
            "/users/{id}",
            get(accounts::get_user).patch(accounts::patch_user),
        )
        .route("/users/{id}/password", post(accounts::reset_password))
        .route("/keys", get(accounts::list_keys).post(accounts::create_key))
        .route("/keys/{id}", axum::routing::delete(accounts::revoke_key))
        .route("/keys/{id}/rotate", post(accounts::rotate_key))
        .route("/audit", get(accounts::list_audit))
        .route("/calendars", get(calendars::list).post(calendars::create))
        .route(
            "/calendars/{id}",
            get(calendars::get)
                .patch(calendars::patch)
                .delete(calendars::delete),
        )
        .route(
            "/sla-policies",
            get(sla_policies::list).post(sla_policies::create),
        )
        .route(
            "/sla-policies/{id}",
            get(sla_policies::get)
                .patch(sla_policies::patch)
                .delete(sla_policies::delete),
        )
        .route("/channels", get(channels::list).post(channels::create))
        .route(
            "/channels/{id}",
            get(channels::get)
                .patch(channels::patch)
                .delete(channels::delete),
        )
        .route("/channels/{id}/test", post(notifications::test_channel))
        .route("/deliveries", get(notifications::list_deliveries))
        .route(
            "/deliveries/{id}/retry",
            post(notifications::retry_delivery),
        )
        .route(
            "/intake-sources",
            get(intake_sources::list).post(intake_sources::create),
        )
        .route(
            "/intake-sources/{id}",
            get(intake_sources::get)
                .patch(intake_sources::patch)
                .delete(intake_sources::delete),
        )
        .route("/intake-sources/{id}/log", get(intake::source_log))
        .route("/pools", get(pools::list).post(pools::create))
        .route(
            "/pools/{id}",
            get(pools::get).patch(pools::patch).delete(pools::delete),
        )
        .route("/reps", get(reps::list_reps).post(reps::create_rep))
        .route(
            "/reps/{id}",
            get(reps::get_rep)
                .patch(reps::patch_rep)
                .delete(reps::delete_rep),
        )
        .route("/reps/{id}/status", axum::routing::put(reps::set_status))
        .route(
            "/fields",
            get(api::fields::list_fields).post(api::fields::create_field),
        )
        .route(
            "/fields/{entity}/{name}",
            axum::routing::delete(api::fields::delete_field),
        )
        .route("/teams", get(teams::list_teams).post(teams::create_team))
        .route(
            "/teams/{id}",
            get(teams::get_team)
                .patch(teams::patch_team)
                .delete(teams::delete_team),
        )
        .route(
            "/rule-sets",
            get(rule_sets::list_rule_sets).post(rule_sets::create_rule_set),
        )
        .route("/rule-sets/validate", post(rule_sets::validate_rule_set))
        .route("/rule-sets/{id}", get(rule_sets::get_rule_set))
        .route("/rule-sets/{id}/publish", post(rule_sets::publish_rule_set))
        .route(
            "/simulations",
            get(api::simulations::list_simulations)
                .post(api::simulations::create_simulation)
                .layer(DefaultBodyLimit::max(api::simulations::BODY_LIMIT)),
        )
        .route("/simulations/{id}", get(api::simulations::get_simulation))
        .route(
            "/simulations/{id}/cancel",
            post(api::simulations::cancel_simulation),
        )
        .route(
            "/models",
            get(api::models::list_models)
                .post(api::models::train_model)
                .layer(DefaultBodyLimit::max(api::models::BODY_LIMIT)),
        )
        .route(
            "/models/schedule",
            get(api::models::get_model_schedule).put(api::models::set_model_schedule),
        )
        .route(
            "/settings/duplicates",
            get(api::duplicates::get_duplicate_policy).put(api::duplicates::set_duplicate_policy),
        )
        .route("/duplicates", get(api::duplicates::list_duplicates))
        .route(
            "/duplicates/{id}/dismiss",
            post(api::duplicates::dismiss_duplicate),
        )
        .route("/leads/{id}/merge", post(api::duplicates::merge_leads))
        .route("/models/{id}", get(api::models::get_model))
        .route("/models/{id}/publish", post(api::models::publish_model))
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
        })
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        // Intake sources authenticate each delivery by their own token or signature; signing
        // in is how a session starts.
        .route(
            "/intake/{source}",
            post(intake::receive).get(intake::verify),
        )
        .route("/session", post(accounts::login));
    axum::Router::new()
        .nest("/api/v1", v1)
        .merge(SwaggerUi::new("/api/docs").url("/api/v1/openapi.json", openapi()))
        .merge(console::routes())
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(state.clone(), edge))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

async fn ready(State(app): State<AppState>) -> Response {
    match app.store.ping().await {
        Ok(()) => "ready".into_response(),
        Err(error) => {
            tracing::warn!(error = %format!("{error:#}"), "database not reachable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response()
        }
    }
}

async fn metrics(State(app): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics::render(&app).await,
    )
        .into_response()
}

/// The edge of every request, in one layer (each layer costs every request): refuses addresses
/// that are not clean text (a NUL, a control character, invalid UTF-8) before any handler sees
/// them; gives a request that carries a body [`BODY_READ_TIMEOUT`] to send it; puts the API's
/// answers that axum makes itself (a path or query that does not parse, a method the route
/// does not take) in the error envelope, so every error of the API has a code; counts
/// responses and logs each request by its route pattern — never the query string or body,
/// which may hold names, phones and emails; and sets the headers every answer carries.
async fn edge(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let uri = request.uri();
    let (api, docs) = (
        uri.path().starts_with("/api/v1"),
        uri.path().starts_with("/api/docs"),
    );
    let clean = text::clean_address(uri.path()) && uri.query().is_none_or(text::clean_address);
    let method = request.method().clone();
    // The pattern, not the path: ids and queries never reach metrics or logs.
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("-", MatchedPath::as_str);
    let mut response = if !clean {
        text::bad_address().into_response()
    } else {
        let request = if matches!(method, Method::POST | Method::PUT | Method::PATCH) {
            request.map(|body| {
                axum::body::Body::new(tower_http::timeout::TimeoutBody::new(
                    BODY_READ_TIMEOUT,
                    body,
                ))
            })
        } else {
            request
        };
        let response = next.run(request).await;
        if api {
            enveloped(response).await
        } else {
            response
        }
    };
    app.metrics
        .count_response(route, response.status().as_u16());
    tracing::debug!(%method, %route, status = response.status().as_u16(), micros = started.elapsed().as_micros() as u64, "request");
    secure(response.headers_mut(), api, docs);
    response
}

/// An answer of the API as the error envelope, when axum made it as plain text.
async fn enveloped(response: Response) -> Response {
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value.starts_with("application/json") || value.starts_with("text/event-stream")
        });
    let failed = response.status().is_client_error() || response.status().is_server_error();
    if json || !failed {
        return response;
    }
    let (parts, body) = response.into_parts();
    let said = axum::body::to_bytes(body, 16 * 1024)
        .await
        .unwrap_or_default();
    let said = String::from_utf8_lossy(&said).trim().to_owned();
    let status = parts.status;
    let code = match status {
        StatusCode::BAD_REQUEST => "invalid_request",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid_value",
        _ if status.is_server_error() => "internal",
        _ => "invalid_request",
    };
    let message = if said.is_empty() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        said
    };
    let mut answer = ApiError::new(status, code, message).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            answer.headers_mut().insert(name.clone(), value.clone());
        }
    }
    answer
}

/// Headers every answer carries: no sniffing, no framing, no referrer; API answers also a
/// content security policy that allows nothing (the API docs page loads its own scripts).
fn secure(headers: &mut header::HeaderMap, api: bool, docs: bool) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::X_FRAME_OPTIONS,
        header::HeaderValue::from_static("DENY"),
    );
    // The console sends its own pages as referrer (the language switch returns there);
    // nothing leaves the site.
    headers.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static(if api || docs {
            "no-referrer"
        } else {
            "same-origin"
        }),
    );
    if api {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            header::HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
    } else if !docs {
        // Console pages: their own styles and script, nothing inline, nothing from elsewhere.
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            header::HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
            ),
        );
    }
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = app(state.clone());
    let mut closed = state.closing.subscribe();
    let closing = state.closing.clone();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections; finishing what is in flight");
        closing.send_replace(true);
    });
    // Each connection holds a receiver; when all are dropped, every connection has ended.
    let (connections, open) = tokio::sync::watch::channel(());
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors, most likely: wait rather than spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shut_down(&mut closed) => break,
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(
            stream,
            app.clone(),
            state.closing.subscribe(),
            open.clone(),
        ));
    }
    drop(open);
    // In-flight requests finish and event streams end within a second or two; a connection
    // that still hangs on does not hold the process past the grace period.
    if tokio::time::timeout(SHUTDOWN_GRACE, connections.closed())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the grace period; closing them");
    }
    Ok(())
}

/// Resolves once the service is shutting down.
async fn shut_down(closing: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = closing.wait_for(|closing| *closing).await;
}

/// How long a client may take to send a request's headers.
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves one connection: HTTP/1.1 with keep-alive, headers within [`HEADER_READ_TIMEOUT`],
/// ended gracefully (the request in flight finishes) when the service shuts down.
async fn connection(
    stream: tokio::net::TcpStream,
    app: axum::Router,
    mut closing: tokio::sync::watch::Receiver<bool>,
    _open: tokio::sync::watch::Receiver<()>,
) {
    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
        tower::ServiceExt::oneshot(app.clone(), request.map(axum::body::Body::new))
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        () = shut_down(&mut closing) => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// How long a shutdown waits for open connections.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);
