//! Accounts: signing in and out of the console (sessions), users, API keys, and the audit log.

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Argon2, PasswordHash};
use axum::Extension;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use store::{ApiKeyRow, AuditRow, SessionRow, UserRow, Write};
use utoipa::ToSchema;

use crate::AppState;
use crate::api::{IfMatch, Page, Versioned, check_id, etag, now_micros, rewrite};
use crate::auth::{
    Caller, Role, SESSION_COOKIE, SESSION_MAX, hash, new_key, random_hex, session_cookie,
};
use crate::error::{ApiError, ApiResult};
use crate::extract::Body;
use crate::leads::time;
use crate::ops::Operation;

/// Failed logins in a row before the account locks…
pub const LOCK_AFTER: i64 = 5;
/// …for this long.
pub const LOCK_FOR: chrono::Duration = chrono::Duration::minutes(15);

/// One line of the audit log: who did what to which object. Changes to stored documents write
/// it in their own transaction ([`store::Store::write_rep`] and its kind).
pub fn audit_row(
    caller: &Caller,
    action: &str,
    target_kind: &str,
    target_id: Option<&str>,
    detail: Value,
) -> AuditRow {
    AuditRow::new(
        caller.actor(),
        action,
        target_kind,
        target_id,
        &detail,
        now_micros(),
    )
}

/// Writes one line of the audit log for a change made elsewhere (a key, a lead's owner, a
/// publication). A failure is the caller's error, not a silence.
pub async fn audit(
    app: &AppState,
    caller: &Caller,
    action: &str,
    target_kind: &str,
    target_id: Option<&str>,
    detail: Value,
) -> ApiResult<()> {
    let row = audit_row(caller, action, target_kind, target_id, detail);
    app.store.insert_audit(&row).await?;
    Ok(())
}

/// Hashes a password with argon2 (default parameters, a fresh salt), off the async threads.
pub async fn hash_password(password: String) -> ApiResult<String> {
    tokio::task::spawn_blocking(move || {
        let mut bytes = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
        let salt = SaltString::encode_b64(&bytes)?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)
}

async fn verify_password(password: String, stored: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&stored).is_ok_and(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

fn check_password(password: &str, field: &str) -> ApiResult<()> {
    if password.chars().count() < 10 || password.len() > 512 {
        return Err(ApiError::invalid(
            "weak_password",
            field,
            "a password has at least 10 characters",
        ));
    }
    Ok(())
}

fn user_view(row: &UserRow) -> Value {
    json!({
        "id": row.id,
        "username": row.username,
        "display_name": row.display_name,
        "role": row.role,
        "rep_id": row.rep_id,
        "teams": serde_json::from_str::<Value>(&row.teams).unwrap_or(json!([])),
        "active": row.active,
        "locked_until": row.locked_until.filter(|until| *until > now_micros()).map(time),
        "created_at": time(row.created_at),
        "updated_at": time(row.updated_at),
        "version": row.version,
    })
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginInput {
    pub username: String,
    pub password: String,
}

fn session_header(id: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("leadroute_session=; Max-Age=0"))
}

/// Sign in to the console: sets the session cookie and returns the CSRF token to send with
/// every change. Five wrong passwords in a row lock the account for 15 minutes.
#[utoipa::path(post, path = "/api/v1/session", tag = "accounts", request_body = LoginInput,
    responses((status = 200, description = "`{user, csrf_token}` and the cookie"), (status = 401, description = "Wrong username or password"),
              (status = 423, description = "Locked after repeated failures")))]
pub async fn login(
    State(app): State<AppState>,
    Body(input): Body<LoginInput>,
) -> ApiResult<Response> {
    let signed = sign_in(&app, &input.username, input.password).await?;
    let mut response =
        Json(json!({"user": user_view(&signed.user), "csrf_token": signed.csrf})).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, signed.cookie(&app));
    Ok(response)
}

/// A new session.
#[derive(Debug)]
pub struct SignedIn {
    pub user: UserRow,
    /// The random session id the cookie carries.
    pub id: String,
    pub csrf: String,
}

impl SignedIn {
    /// The `Set-Cookie` value that starts the session in the browser.
    pub fn cookie(&self, app: &AppState) -> HeaderValue {
        let secure = app.notifier.public_url().starts_with("https://");
        session_header(&self.id, SESSION_MAX.num_seconds(), secure)
    }
}

/// The `Set-Cookie` value that ends the session in the browser.
pub fn cookie_cleared() -> HeaderValue {
    session_header("", 0, false)
}

/// Checks a username and password and starts a session: the API's and the console's sign-in.
/// Five failures in a row lock the account for 15 minutes (`423` with `Retry-After`).
pub async fn sign_in(app: &AppState, username: &str, password: String) -> ApiResult<SignedIn> {
    let now = now_micros();
    let wrong = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_credentials",
            "wrong username or password",
        )
    };
    let Some(user) = app.store.user_by_name(username.trim()).await? else {
        // Spend the time a check would, so unknown names cannot be told apart.
        verify_password(password, dummy_hash().await).await;
        return Err(wrong());
    };
    if let Some(until) = user.locked_until.filter(|until| *until > now) {
        return Err(ApiError::new(
            StatusCode::LOCKED,
            "account_locked",
            "too many failed sign-ins; try again later",
        )
        .retry_after((until - now) / 1_000_000 + 1));
    }
    if !user.active || !verify_password(password, user.password_hash.clone()).await {
        app.store
            .record_failed_login(
                &user.id,
                now,
                LOCK_AFTER,
                LOCK_FOR.num_microseconds().unwrap_or(0),
            )
            .await?;
        return Err(wrong());
    }
    app.store.reset_failed_logins(&user.id).await?;
    let id = random_hex(32);
    let session = SessionRow {
        id_hash: hash(&id),
        user_id: user.id.clone(),
        csrf_token: random_hex(16),
        created_at: now,
        last_seen_at: now,
        expires_at: now + SESSION_MAX.num_microseconds().unwrap_or(0),
    };
    app.store.insert_session(&session).await?;
    Ok(SignedIn {
        user,
        id,
        csrf: session.csrf_token,
    })
}

/// The hash of a random password, made once, checked against for unknown usernames.
async fn dummy_hash() -> String {
    static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DUMMY
        .get_or_init(|| async { hash_password(random_hex(16)).await.unwrap_or_default() })
        .await
        .clone()
}

/// The signed-in user and the session's CSRF token.
#[utoipa::path(get, path = "/api/v1/session", tag = "accounts",
    responses((status = 200, description = "`{user, csrf_token}`")), security(("api_key" = [])))]
pub async fn current(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    caller.may(Operation::GetSession)?;
    let user_id = caller
        .user_id
        .clone()
        .ok_or_else(|| crate::auth::forbidden("a key has no session"))?;
    let user = app
        .store
        .get_user(&user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let csrf = match session_cookie(&headers) {
        Some(id) => app
            .store
            .get_session(&hash(&id))
            .await?
            .map(|session| session.csrf_token),
        None => None,
    };
    Ok(Json(json!({"user": user_view(&user), "csrf_token": csrf})))
}

/// Sign out: the session ends on every instance at once.
#[utoipa::path(delete, path = "/api/v1/session", tag = "accounts",
    responses((status = 204, description = "Signed out")), security(("api_key" = [])))]
pub async fn logout(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    caller.may(Operation::SignOut)?;
    if let Some(id) = session_cookie(&headers) {
        app.store.delete_session(&hash(&id)).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie_cleared());
    Ok(response)
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

/// Change your own password; your other sessions end.
#[utoipa::path(put, path = "/api/v1/session/password", tag = "accounts", request_body = PasswordChange,
    responses((status = 204, description = "Changed"), (status = 401, description = "Wrong current password")), security(("api_key" = [])))]
pub async fn change_password(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Body(input): Body<PasswordChange>,
) -> ApiResult<StatusCode> {
    caller.may(Operation::ChangePassword)?;
    let user_id = caller
        .user_id
        .clone()
        .filter(|_| caller.key_id.is_none())
        .ok_or_else(|| crate::auth::forbidden("sign in to change your password"))?;
    let mut user = app
        .store
        .get_user(&user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    if !verify_password(input.current_password, user.password_hash.clone()).await {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_credentials",
            "the current password is wrong",
        ));
    }
    check_password(&input.new_password, "new_password")?;
    user.password_hash = hash_password(input.new_password).await?;
    user.updated_at = now_micros();
    let audit = audit_row(
        &caller,
        "user.password_changed",
        "user",
        Some(&user.id),
        json!({}),
    );
    write_user(&app, &mut user, &audit).await?;
    // Keep this session; end the others.
    let keep = session_cookie(&headers).map(|id| hash(&id));
    let kept = match &keep {
        Some(id_hash) => app.store.get_session(id_hash).await?,
        None => None,
    };
    app.store.delete_user_sessions(&user.id).await?;
    if let Some(session) = kept {
        app.store.insert_session(&session).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserInput {
    #[serde(default)]
    pub id: Option<String>,
    pub username: String,
    #[serde(default)]
    pub display_name: Option<String>,
    /// `admin`, `manager` or `rep`.
    pub role: String,
    /// The rep record: required for `rep`, optional for `manager`.
    #[serde(default)]
    pub rep_id: Option<String>,
    /// The teams a manager manages.
    #[serde(default)]
    pub teams: Vec<String>,
    pub password: String,
}

#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub rep_id: Option<String>,
    #[serde(default)]
    pub teams: Option<Vec<String>>,
    /// `false` deactivates: sessions and keys stop at once, and a rep stops receiving leads.
    #[serde(default)]
    pub active: Option<bool>,
}

async fn check_user(
    app: &AppState,
    role: &str,
    rep_id: Option<&str>,
    teams: &[String],
) -> ApiResult<Role> {
    let role = Role::parse(role)
        .filter(|role| role.for_users())
        .ok_or_else(|| {
            ApiError::invalid("invalid_value", "role", "role is admin, manager or rep")
        })?;
    if role == Role::Rep && rep_id.is_none() {
        return Err(ApiError::invalid(
            "missing_field",
            "rep_id",
            "a rep user is linked to a rep",
        ));
    }
    if let Some(rep) = rep_id
        && app.store.get_rep(rep).await?.is_none()
    {
        return Err(ApiError::invalid(
            "unknown_rep",
            "rep_id",
            "no rep has that id",
        ));
    }
    for (index, team) in teams.iter().enumerate() {
        if app.store.get_team(team).await?.is_none() {
            return Err(ApiError::invalid(
                "unknown_team",
                format!("teams[{index}]"),
                "no team has that id",
            ));
        }
    }
    Ok(role)
}

/// All users.
#[utoipa::path(get, path = "/api/v1/users", tag = "accounts", responses((status = 200, description = "`{items}`")), security(("api_key" = [])))]
pub async fn list_users(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Value>> {
    caller.may(Operation::ListUsers)?;
    let rows = app.store.list_users().await?;
    Ok(Json(
        json!({"items": rows.iter().map(user_view).collect::<Vec<_>>(), "next_cursor": null}),
    ))
}

/// The name a user goes by when none was given: their rep's name (王芳), else the username.
async fn default_display_name(
    store: &store::Store,
    username: &str,
    rep_id: Option<&str>,
) -> ApiResult<String> {
    if let Some(rep) = rep_id
        && let Some(row) = store.get_rep(rep).await?
        && !row.name.trim().is_empty()
    {
        return Ok(row.name);
    }
    Ok(username.to_owned())
}

/// Create a user.
#[utoipa::path(post, path = "/api/v1/users", tag = "accounts", request_body = UserInput,
    responses((status = 201, description = "The user"), (status = 409, description = "The username is taken")), security(("api_key" = [])))]
pub async fn create_user(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Body(input): Body<UserInput>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.may(Operation::CreateUser)?;
    let id = match &input.id {
        Some(id) => {
            check_id(id, "id")?;
            id.clone()
        }
        None => format!("user_{}", uuid::Uuid::now_v7().simple()),
    };
    let username = check_username(&input.username)?;
    if let Some(name) = &input.display_name {
        crate::text::check_name(name, "display_name")?;
    }
    let role = check_user(&app, &input.role, input.rep_id.as_deref(), &input.teams).await?;
    check_password(&input.password, "password")?;
    let now = now_micros();
    let display_name = match input.display_name.clone() {
        Some(name) => name,
        None => default_display_name(&app.store, &username, input.rep_id.as_deref()).await?,
    };
    let mut row = UserRow {
        id: id.clone(),
        display_name,
        username,
        role: role.as_str().to_owned(),
        rep_id: input.rep_id.clone(),
        teams: json!(input.teams).to_string(),
        password_hash: hash_password(input.password).await?,
        active: true,
        failed_logins: 0,
        locked_until: None,
        created_at: now,
        updated_at: now,
        version: 0,
    };
    let detail = json!({"role": row.role, "rep_id": row.rep_id});
    let audit = audit_row(&caller, "user.created", "user", Some(&id), detail);
    if !app
        .store
        .write_user(&mut row, Write::Create, &audit)
        .await?
    {
        return Err(
            ApiError::conflict("already_exists", "that username or id is taken")
                .with_field("username"),
        );
    }
    Ok((StatusCode::CREATED, Json(user_view(&row))))
}

/// One user.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "accounts", params(("id" = String, Path)),
    responses((status = 200, description = "The user")), security(("api_key" = [])))]
pub async fn get_user(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Versioned> {
    caller.may(Operation::GetUser)?;
    let row = app
        .store
        .get_user(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    Ok((etag(row.version), Json(user_view(&row))))
}

/// Change a user's name, role, rep, teams, or deactivate them.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "accounts", params(("id" = String, Path)), request_body = UserPatch,
    responses((status = 200, description = "The user")), security(("api_key" = [])))]
pub async fn patch_user(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    if_match: IfMatch,
    Body(patch): Body<UserPatch>,
) -> ApiResult<Versioned> {
    caller.may(Operation::PatchUser)?;
    if let Some(name) = &patch.display_name {
        crate::text::check_name(name, "display_name")?;
    }
    let (app, caller, id, patch) = (&app, &caller, &id, &patch);
    let (row, deactivating) = rewrite(if_match, || async move {
        let mut row = app
            .store
            .get_user(id)
            .await?
            .ok_or_else(|| ApiError::not_found("user"))?;
        if_match.check(row.version)?;
        let role = patch.role.clone().unwrap_or_else(|| row.role.clone());
        let rep_id = patch.rep_id.clone().or_else(|| row.rep_id.clone());
        let teams = patch
            .teams
            .clone()
            .unwrap_or_else(|| serde_json::from_str(&row.teams).unwrap_or_default());
        let role = check_user(app, &role, rep_id.as_deref(), &teams).await?;
        if let Some(name) = &patch.display_name {
            row.display_name = name.trim().to_owned();
        }
        row.role = role.as_str().to_owned();
        row.rep_id = rep_id;
        row.teams = json!(teams).to_string();
        let deactivating = patch.active == Some(false) && row.active;
        if let Some(active) = patch.active {
            row.active = active;
        }
        row.updated_at = now_micros();
        let write = Write::Replace {
            version: row.version,
        };
        let action = if deactivating {
            "user.deactivated"
        } else {
            "user.changed"
        };
        let detail = serde_json::to_value(patch).unwrap_or(Value::Null);
        let audit = audit_row(caller, action, "user", Some(&row.id), detail);
        let written = app.store.write_user(&mut row, write, &audit).await?;
        Ok(written.then_some((row, deactivating)))
    })
    .await?;
    if deactivating {
        // At once, on every instance: sessions are looked up per request; keys leave this
        // instance's cache now and every other's when it hears the notice (PostgreSQL).
        app.store.delete_user_sessions(&row.id).await?;
        app.store.revoke_user_keys(&row.id, now_micros()).await?;
        forget_keys(app).await?;
        if let Some(rep) = &row.rep_id {
            crate::api::reps::deactivate(app, caller, rep).await?;
        }
    }
    Ok((etag(row.version), Json(user_view(&row))))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordReset {
    pub password: String,
}

/// An admin sets a new password; the user's sessions end.
#[utoipa::path(post, path = "/api/v1/users/{id}/password", tag = "accounts", params(("id" = String, Path)), request_body = PasswordReset,
    responses((status = 204, description = "Reset")), security(("api_key" = [])))]
pub async fn reset_password(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Body(input): Body<PasswordReset>,
) -> ApiResult<StatusCode> {
    caller.may(Operation::ResetPassword)?;
    let row = app
        .store
        .get_user(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    set_password(&app.store, &caller, row, input.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An administrator's password reset, over the API or `leadroute users reset-password`:
/// checked, audited, the lock-out cleared and every session of the user ended.
pub async fn set_password(
    store: &store::Store,
    caller: &Caller,
    mut row: UserRow,
    password: String,
) -> ApiResult<UserRow> {
    caller.may(Operation::ResetPassword)?;
    check_password(&password, "password")?;
    row.password_hash = hash_password(password).await?;
    row.updated_at = now_micros();
    let audit = audit_row(
        caller,
        "user.password_reset",
        "user",
        Some(&row.id),
        json!({}),
    );
    let write = Write::Replace {
        version: row.version,
    };
    if !store.write_user(&mut row, write, &audit).await? {
        return Err(busy());
    }
    store.reset_failed_logins(&row.id).await?;
    store.delete_user_sessions(&row.id).await?;
    Ok(row)
}

fn key_view(row: &ApiKeyRow) -> Value {
    json!({
        "id": row.id,
        "name": row.name,
        "prefix": row.prefix,
        "role": row.role,
        "created_by": row.user_id,
        "created_at": time(row.created_at),
        "revoked_at": row.revoked_at.map(time),
    })
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyInput {
    pub name: String,
    /// `admin`, `integration` (intake and feedback only) or `reporting` (read-only).
    pub role: String,
}

/// All keys, by prefix only.
#[utoipa::path(get, path = "/api/v1/keys", tag = "accounts", responses((status = 200, description = "`{items}`")), security(("api_key" = [])))]
pub async fn list_keys(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Value>> {
    caller.may(Operation::ListKeys)?;
    let rows = app.store.list_api_keys().await?;
    Ok(Json(
        json!({"items": rows.iter().map(key_view).collect::<Vec<_>>(), "next_cursor": null}),
    ))
}

async fn issue(
    app: &AppState,
    caller: &Caller,
    name: &str,
    role: Role,
) -> ApiResult<(String, ApiKeyRow)> {
    let (key, mut row) = new_key(name, role, now_micros());
    row.user_id = caller.user_id.clone();
    app.store.insert_api_key(&row).await?;
    Ok((key, row))
}

/// Create a key; the key is in this answer and never again.
#[utoipa::path(post, path = "/api/v1/keys", tag = "accounts", request_body = KeyInput,
    responses((status = 201, description = "`{key, …}`: the key, shown once")), security(("api_key" = [])))]
pub async fn create_key(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Body(input): Body<KeyInput>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.may(Operation::CreateKey)?;
    let role = Role::parse(&input.role)
        .filter(|role| role.for_keys())
        .ok_or_else(|| {
            ApiError::invalid(
                "invalid_value",
                "role",
                "role is admin, integration or reporting",
            )
        })?;
    if input.name.trim().is_empty() || input.name.chars().count() > 100 {
        return Err(ApiError::invalid(
            "invalid_value",
            "name",
            "1 to 100 characters",
        ));
    }
    let (key, row) = issue(&app, &caller, input.name.trim(), role).await?;
    audit(
        &app,
        &caller,
        "key.created",
        "key",
        Some(&row.id),
        json!({"role": row.role, "prefix": row.prefix}),
    )
    .await?;
    let mut view = key_view(&row);
    view["key"] = json!(key);
    Ok((StatusCode::CREATED, Json(view)))
}

/// Replace a key with a new one of the same name and role; the old one stops at once.
#[utoipa::path(post, path = "/api/v1/keys/{id}/rotate", tag = "accounts", params(("id" = String, Path)),
    responses((status = 201, description = "`{key, …}`: the new key, shown once")), security(("api_key" = [])))]
pub async fn rotate_key(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.may(Operation::RotateKey)?;
    let old = app
        .store
        .get_api_key(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("key"))?;
    if old.revoked_at.is_some() {
        return Err(ApiError::conflict("revoked", "the key is revoked"));
    }
    let role = Role::parse(&old.role)
        .ok_or_else(|| ApiError::internal("stored key has an unknown role"))?;
    let (key, row) = issue(&app, &caller, &old.name, role).await?;
    app.store.revoke_api_key(&old.id, now_micros()).await?;
    forget_keys(&app).await?;
    audit(
        &app,
        &caller,
        "key.rotated",
        "key",
        Some(&old.id),
        json!({"new_key": row.id}),
    )
    .await?;
    let mut view = key_view(&row);
    view["key"] = json!(key);
    Ok((StatusCode::CREATED, Json(view)))
}

/// Revoke a key: it stops working on the next request.
#[utoipa::path(delete, path = "/api/v1/keys/{id}", tag = "accounts", params(("id" = String, Path)),
    responses((status = 204, description = "Revoked")), security(("api_key" = [])))]
pub async fn revoke_key(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.may(Operation::RevokeKey)?;
    if !app.store.revoke_api_key(&id, now_micros()).await? {
        return Err(ApiError::not_found("key"));
    }
    forget_keys(&app).await?;
    audit(&app, &caller, "key.revoked", "key", Some(&id), json!({})).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who changed what: rule sets published, caps and statuses, channels, keys, users, leads
/// assigned by hand. Newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "accounts", params(Page),
    responses((status = 200, description = "`{items, next_cursor}`")), security(("api_key" = [])))]
pub async fn list_audit(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(page): Query<Page>,
) -> ApiResult<Json<Value>> {
    caller.may(Operation::ListAudit)?;
    let limit = page.limit()?;
    let mut rows = app
        .store
        .list_audit(page.cursor.as_deref(), limit + 1)
        .await?;
    let next_cursor = crate::api::cut(&mut rows, limit, |row| &row.id);
    let items: Vec<Value> = rows
        .iter()
        .map(|row| {
            json!({
                "id": row.id,
                "at": time(row.at),
                "actor": row.actor,
                "action": row.action,
                "target_kind": row.target_kind,
                "target_id": row.target_id,
                "detail": serde_json::from_str::<Value>(&row.detail).unwrap_or(Value::Null),
            })
        })
        .collect();
    Ok(Json(json!({"items": items, "next_cursor": next_cursor})))
}

/// Writes a user's password change over the version read (another change in between wins,
/// and this one is refused: a password is not merged).
async fn write_user(app: &AppState, row: &mut UserRow, audit: &AuditRow) -> ApiResult<()> {
    let write = Write::Replace {
        version: row.version,
    };
    if app.store.write_user(row, write, audit).await? {
        Ok(())
    } else {
        Err(busy())
    }
}

/// Keys were revoked: this instance forgets the keys it verified at once, and every other
/// instance on the same PostgreSQL hears of it (`AppState` listens) and does the same.
async fn forget_keys(app: &AppState) -> ApiResult<()> {
    app.keys.clear();
    app.store.notify_keys_changed().await?;
    Ok(())
}

fn busy() -> ApiError {
    ApiError::conflict("busy", "the account changed at the same moment; try again")
}

/// A username: 1 to 64 ASCII letters, digits, `.`, `_`, `-`, `@`, or Chinese characters. Other
/// scripts, zero-width and direction marks are refused, so no name can pass for another.
pub fn check_username(name: &str) -> ApiResult<String> {
    let name = name.trim();
    let fits = |character: char| {
        character.is_ascii_alphanumeric()
            || matches!(character, '.' | '_' | '-' | '@')
            || matches!(character, '\u{4e00}'..='\u{9fff}' | '\u{3400}'..='\u{4dbf}')
    };
    if name.is_empty() || name.chars().count() > 64 || !name.chars().all(fits) {
        return Err(ApiError::invalid(
            "invalid_value",
            "username",
            "usernames are 1 to 64 letters a-z, digits, . _ - @ or Chinese characters",
        ));
    }
    Ok(name.to_owned())
}

/// Creates the first admin (the CLI's `users create` and the demo use it).
pub async fn create_first_user(
    store: &store::Store,
    username: &str,
    role: Role,
    rep_id: Option<String>,
    password: String,
) -> ApiResult<UserRow> {
    let username = &check_username(username)?;
    check_password(&password, "password")?;
    if store.user_by_name(username).await?.is_some() {
        return Err(ApiError::conflict(
            "already_exists",
            "that username is taken",
        ));
    }
    let now = now_micros();
    let display_name = default_display_name(store, username, rep_id.as_deref()).await?;
    let mut row = UserRow {
        id: format!("user_{}", uuid::Uuid::now_v7().simple()),
        username: username.to_owned(),
        display_name,
        role: role.as_str().to_owned(),
        rep_id,
        teams: "[]".into(),
        password_hash: hash_password(password).await?,
        active: true,
        failed_logins: 0,
        locked_until: None,
        created_at: now,
        updated_at: now,
        version: 0,
    };
    let detail = json!({"role": row.role});
    let audit = AuditRow::new(
        "cli".into(),
        "user.created",
        "user",
        Some(&row.id),
        &detail,
        now,
    );
    if !store.write_user(&mut row, Write::Create, &audit).await? {
        return Err(ApiError::conflict(
            "already_exists",
            "that username is taken",
        ));
    }
    Ok(row)
}
