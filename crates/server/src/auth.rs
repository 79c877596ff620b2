//! Who is calling, and what they may do. Machines send an API key (`Authorization: Bearer …`:
//! 32 random bytes shown once, stored as SHA-256 with a short prefix to recognise it by);
//! people in the console carry a session cookie (a random id stored hashed, so every instance
//! shares it) and send the session's CSRF token with every change. Every `/api/v1` request
//! passes [`authenticate`]; each operation then checks the role itself (`crate::ops`) and the
//! objects (a rep's own leads, a manager's teams) with [`Caller`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use store::{ApiKeyRow, UserRow};

use crate::AppState;
use crate::error::ApiError;

/// What a caller may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Everything.
    Admin,
    /// Their teams' reps and leads; rules.
    Manager,
    /// Their own leads, the pool, their status.
    Rep,
    /// Keys only: lead intake and customer feedback.
    Integration,
    /// Keys only: read-only, without customers' contact details.
    Reporting,
}

impl Role {
    pub fn parse(text: &str) -> Option<Role> {
        Some(match text {
            "admin" => Role::Admin,
            "manager" => Role::Manager,
            "rep" => Role::Rep,
            "integration" => Role::Integration,
            "reporting" => Role::Reporting,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Rep => "rep",
            Role::Integration => "integration",
            Role::Reporting => "reporting",
        }
    }

    /// Roles an API key may have.
    pub fn for_keys(self) -> bool {
        matches!(self, Role::Admin | Role::Integration | Role::Reporting)
    }

    /// Roles a user may have.
    pub fn for_users(self) -> bool {
        matches!(self, Role::Admin | Role::Manager | Role::Rep)
    }
}

/// The caller, as handlers see it.
#[derive(Clone, Debug)]
pub struct Caller {
    pub role: Role,
    /// The key, when a key authenticated the request.
    pub key_id: Option<String>,
    /// The user, when a session did (or the key's creator).
    pub user_id: Option<String>,
    /// The rep record of a rep (or manager) user.
    pub rep_id: Option<String>,
    /// The teams a manager manages.
    pub teams: Vec<String>,
}

impl Caller {
    /// Who acted, for decisions and the audit log: `user:<id>`, `key:<id>`, or `system`.
    pub fn actor(&self) -> String {
        match (&self.user_id, &self.key_id) {
            (Some(user), None) => format!("user:{user}"),
            (_, Some(key)) => format!("key:{key}"),
            (None, None) => "system".into(),
        }
    }

    /// The service itself, acting on a schedule it was given (scheduled retraining): an
    /// administrator whose actor is `system`.
    pub fn system() -> Caller {
        Caller {
            role: Role::Admin,
            key_id: None,
            user_id: None,
            rep_id: None,
            teams: Vec::new(),
        }
    }

    /// Whether the caller sees every lead.
    pub fn sees_everything(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Reporting)
    }

    /// Whether customers' phones, emails and WeChat ids are hidden from this caller on a lead
    /// owned by `owner`.
    pub fn hides_contact(&self, owner: Option<&str>) -> bool {
        match self.role {
            Role::Reporting => true,
            Role::Rep => owner.is_none() || owner != self.rep_id.as_deref(),
            _ => false,
        }
    }
}

pub fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// `bytes` random bytes, hex: for tokens and keys.
pub fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buffer);
    hex::encode(buffer)
}

/// A new key and the row to store. The key itself is returned once and never stored.
pub fn new_key(name: &str, role: Role, now: i64) -> (String, ApiKeyRow) {
    let key = format!("lr_{}", random_hex(32));
    let row = ApiKeyRow {
        id: uuid::Uuid::now_v7().to_string(),
        name: name.to_owned(),
        prefix: key[..11].to_owned(),
        hash: hash(&key),
        role: role.as_str().to_owned(),
        created_at: now,
        revoked_at: None,
        user_id: None,
        last_used_at: None,
    };
    (key, row)
}

/// The name of the console's session cookie.
pub const SESSION_COOKIE: &str = "leadroute_session";
/// The header carrying the session's CSRF token on changes.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// A session ends after this long without a request…
pub const SESSION_IDLE: chrono::Duration = chrono::Duration::hours(8);
/// …and after this long in any case.
pub const SESSION_MAX: chrono::Duration = chrono::Duration::days(7);

fn unauthenticated(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
}

pub fn forbidden(message: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
}

/// The session id in the request's cookies.
pub fn session_cookie(request_headers: &axum::http::HeaderMap) -> Option<String> {
    request_headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// Compares secrets in time independent of where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |difference, (x, y)| difference | (x ^ y))
            == 0
}

pub fn caller_for_user(user: &UserRow) -> Option<Caller> {
    Some(Caller {
        role: Role::parse(&user.role).filter(|role| role.for_users())?,
        key_id: None,
        user_id: Some(user.id.clone()),
        rep_id: user.rep_id.clone(),
        teams: serde_json::from_str(&user.teams).unwrap_or_default(),
    })
}

/// Whether a session is still live and its user active, without counting as activity (an open
/// page's event stream must not keep an idle session alive).
pub async fn session_live(app: &AppState, id: &str) -> bool {
    let now = chrono::Utc::now().timestamp_micros();
    live_session(app, &hash(id), now).await.is_ok()
}

/// The session by its hashed id while it is live (neither idle too long nor too old), with its
/// active user.
async fn live_session(
    app: &AppState,
    id_hash: &str,
    now: i64,
) -> Result<(store::SessionRow, UserRow), ApiError> {
    let session = app
        .store
        .get_session(id_hash)
        .await?
        .filter(|session| {
            session.expires_at > now
                && session.last_seen_at + SESSION_IDLE.num_microseconds().unwrap_or(0) > now
        })
        .ok_or_else(|| unauthenticated("the session has ended; sign in again"))?;
    let user = app
        .store
        .get_user(&session.user_id)
        .await?
        .filter(|user| user.active)
        .ok_or_else(|| unauthenticated("the account is deactivated"))?;
    Ok((session, user))
}

/// A live session and its active user, by the cookie's session id.
pub async fn session(
    app: &AppState,
    id: &str,
) -> Result<(Caller, store::SessionRow, UserRow), ApiError> {
    let now = chrono::Utc::now().timestamp_micros();
    let id_hash = hash(id);
    let (session, user) = live_session(app, &id_hash, now).await?;
    // Sliding idle expiry, written at most once a minute.
    if now - session.last_seen_at > 60_000_000 {
        app.store.touch_session(&id_hash, now).await?;
    }
    let caller = caller_for_user(&user)
        .ok_or_else(|| ApiError::internal("stored user has an unknown role"))?;
    Ok((caller, session, user))
}

/// The caller of a session cookie, if the session is live and its user active; checks the
/// CSRF token on changes.
async fn session_caller(
    app: &AppState,
    id: &str,
    changes: bool,
    csrf: Option<String>,
) -> Result<Caller, ApiError> {
    let (caller, session, _) = session(app, id).await?;
    if changes && !same(csrf.as_deref().unwrap_or_default(), &session.csrf_token) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf_failed",
            "send the session's CSRF token in X-CSRF-Token",
        ));
    }
    Ok(caller)
}

async fn key_caller(app: &AppState, key: &str) -> Result<Caller, ApiError> {
    let hashed = hash(key);
    if let Some(caller) = app.keys.get(&hashed) {
        return Ok(caller);
    }
    let row = app
        .store
        .find_api_key(&hashed)
        .await?
        .ok_or_else(|| unauthenticated("the API key is unknown or revoked"))?;
    let role = Role::parse(&row.role)
        .filter(|role| role.for_keys())
        .ok_or_else(|| ApiError::internal("stored key has an unknown role"))?;
    let caller = Caller {
        role,
        key_id: Some(row.id),
        user_id: row.user_id,
        rep_id: None,
        teams: Vec::new(),
    };
    app.keys.insert(hashed, caller.clone());
    Ok(caller)
}

/// Authenticates every `/api/v1` request (key or session) and refuses a role its route's
/// operation does not allow before the body is read. Each operation checks again itself
/// ([`Caller::may`](crate::ops)), since the console and the CLI call it without this layer.
pub async fn authenticate(
    State(app): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(|key| key.trim().to_owned());
    let caller = match (bearer, session_cookie(request.headers())) {
        (Some(key), _) => key_caller(&app, &key).await?,
        (None, Some(session)) => {
            let changes = !matches!(
                *request.method(),
                Method::GET | Method::HEAD | Method::OPTIONS
            );
            let csrf = request
                .headers()
                .get(CSRF_HEADER)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            session_caller(&app, &session, changes, csrf).await?
        }
        (None, None) => {
            return Err(unauthenticated(
                "send an API key as Authorization: Bearer <key>, or sign in",
            ));
        }
    };
    // The operation behind the route says who may call it, before the body is read; the
    // operation's handler checks again itself, for the surfaces that call it directly.
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().trim_start_matches("/api/v1").to_owned())
        .unwrap_or_default();
    match crate::ops::Operation::for_route(request.method(), &path) {
        Some(operation) => caller.may(operation)?,
        // Another method on a known path: the router answers 405.
        None if crate::ops::Operation::known_path(&path) => {}
        None => return Err(forbidden("no operation answers this route")),
    }
    if let (Some(key), true) = (&caller.key_id, caller.role == Role::Integration)
        && let Err(wait) = app.limits.take(key).await
    {
        return Ok(too_many(
            "too many requests for this key; retry later",
            wait,
        ));
    }
    request.extensions_mut().insert(caller);
    Ok(next.run(request).await)
}

/// `429 rate_limited` with `Retry-After`.
pub fn too_many(message: &str, wait: u64) -> Response {
    let mut response =
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message).into_response();
    if let Ok(value) = wait.to_string().parse() {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// Requests per second one integration key (or public intake source) may make, and the burst
/// it may save up. On PostgreSQL the buckets are rows every instance draws from, so two
/// instances allow the rate once, not twice; on SQLite (one instance) they are in memory.
#[derive(Debug)]
pub struct RateLimits {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
    shared: Option<store::Store>,
}

impl RateLimits {
    pub fn new(per_second: f64, burst: f64) -> RateLimits {
        RateLimits {
            per_second,
            burst,
            buckets: Mutex::default(),
            shared: None,
        }
    }

    /// The same limits kept in the database (PostgreSQL), shared by every instance.
    pub fn shared(mut self, store: store::Store) -> RateLimits {
        if store.backend() == "postgres" {
            self.shared = Some(store);
        }
        self
    }

    /// Takes one request from the key's bucket, or says how many seconds to wait. Should the
    /// shared bucket be unreachable, this instance's own bucket decides.
    pub async fn take(&self, key: &str) -> Result<(), u64> {
        if let Some(store) = &self.shared {
            let now = chrono::Utc::now().timestamp_micros();
            match store
                .take_token(key, self.per_second, self.burst, now)
                .await
            {
                Ok(Some((true, _))) => return Ok(()),
                Ok(Some((false, tokens))) => return Err(self.wait(tokens)),
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%error, "shared rate limit unavailable; using this instance's")
                }
            }
        }
        self.take_here(key)
    }

    fn wait(&self, tokens: f64) -> u64 {
        ((1.0 - tokens) / self.per_second).ceil().max(1.0) as u64
    }

    fn take_here(&self, key: &str) -> Result<(), u64> {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        let (tokens, at) = buckets.entry(key.to_owned()).or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(self.wait(*tokens))
        }
    }
}

/// How long a verified key is trusted without asking the database again. A key revoked on
/// another instance stops working within this time; one revoked here, at once.
const KEY_CACHE_TTL: Duration = Duration::from_secs(1);

/// Recently verified keys, by hash.
#[derive(Debug, Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<String, (Caller, Instant)>>,
}

impl KeyCache {
    fn get(&self, hash: &str) -> Option<Caller> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        entries
            .get(hash)
            .filter(|(_, verified)| verified.elapsed() < KEY_CACHE_TTL)
            .map(|(caller, _)| caller.clone())
    }

    fn insert(&self, hash: String, caller: Caller) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() > 10_000 {
            entries.retain(|_, (_, verified)| verified.elapsed() < KEY_CACHE_TTL);
        }
        entries.insert(hash, (caller, Instant::now()));
    }

    /// Forgets every key, so the next request of each is checked against the database.
    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
    }
}
