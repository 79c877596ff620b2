//! API keys: 32 random bytes shown once, stored as SHA-256 with a short prefix to recognise
//! them by. Every `/api/v1` request carries one as `Authorization: Bearer …`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use store::ApiKeyRow;

use crate::AppState;
use crate::error::ApiError;

/// What a key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Admin,
    /// Lead intake only.
    Integration,
}

impl Role {
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "admin" => Some(Role::Admin),
            "integration" => Some(Role::Integration),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Integration => "integration",
        }
    }
}

/// The caller, as handlers see it.
#[derive(Clone, Debug)]
pub struct Caller {
    pub key_id: String,
    pub role: Role,
}

impl Caller {
    pub fn actor(&self) -> String {
        format!("key:{}", self.key_id)
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
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let key = format!("lr_{}", hex::encode(bytes));
    let row = ApiKeyRow {
        id: uuid::Uuid::now_v7().to_string(),
        name: name.to_owned(),
        prefix: key[..11].to_owned(),
        hash: hash(&key),
        role: role.as_str().to_owned(),
        created_at: now,
        revoked_at: None,
    };
    (key, row)
}

/// Checks the bearer key and the role's reach before any handler runs.
pub async fn require_key(
    State(app): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let key = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "send an API key as Authorization: Bearer <key>",
            )
        })?;
    let hashed = hash(key);
    let caller = match app.keys.get(&hashed) {
        Some(caller) => caller,
        None => {
            let row = app.store.find_api_key(&hashed).await?.ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthenticated",
                    "the API key is unknown or revoked",
                )
            })?;
            let role = Role::parse(&row.role)
                .ok_or_else(|| ApiError::internal("stored key has an unknown role"))?;
            let caller = Caller {
                key_id: row.id,
                role,
            };
            app.keys.insert(hashed, caller.clone());
            caller
        }
    };
    if caller.role == Role::Integration {
        // The middleware runs inside the `/api/v1` nest, which strips the prefix.
        let path = request.uri().path().trim_start_matches("/api/v1");
        // Survey tools post customer feedback with an integration key too.
        let feedback = path.starts_with("/leads/") && path.ends_with("/feedback");
        let intake = request.method() == Method::POST
            && (path == "/leads" || path == "/leads/batch" || feedback);
        if !intake {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "integration keys may only submit leads and customer feedback",
            ));
        }
    }
    request.extensions_mut().insert(caller);
    Ok(next.run(request).await)
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
