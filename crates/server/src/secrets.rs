//! Secrets at rest: channel signing keys, SMTP passwords, SMS keys and intake-source secrets are
//! sealed with AES-256-GCM under a key the database never holds (`LEADROUTE_SECRET_KEY`), so a
//! copy of the database or a backup does not give them away. Without a key they are stored as
//! given, and the service says so when it starts.
//!
//! A sealed value reads `sealed:v1:<base64 of nonce ‖ ciphertext ‖ tag>`; a value without the
//! prefix is plain (written before a key was set) and is sealed at the next start with a key.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

const PREFIX: &str = "sealed:v1:";

/// Seals and opens secrets; a sealer without a key passes them through.
#[derive(Default)]
pub struct Sealer {
    key: Option<LessSafeKey>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Sealer")
            .field("key", &self.key.as_ref().map(|_| "set"))
            .finish()
    }
}

impl Sealer {
    /// A sealer keyed by a passphrase (any text; its SHA-256 is the key). Several instances
    /// sharing a database must be given the same one.
    pub fn new(passphrase: &str) -> Sealer {
        let digest = Sha256::digest(passphrase.as_bytes());
        Sealer {
            key: UnboundKey::new(&AES_256_GCM, &digest)
                .ok()
                .map(LessSafeKey::new),
        }
    }

    /// The sealer `LEADROUTE_SECRET_KEY` describes, or one that passes secrets through.
    pub fn from_env() -> Sealer {
        match std::env::var("LEADROUTE_SECRET_KEY") {
            Ok(passphrase) if !passphrase.is_empty() => Sealer::new(&passphrase),
            _ => Sealer::default(),
        }
    }

    pub fn is_keyed(&self) -> bool {
        self.key.is_some()
    }

    pub fn is_sealed(value: &str) -> bool {
        value.starts_with(PREFIX)
    }

    /// The value sealed; as it is when there is no key or it is sealed already.
    pub fn seal(&self, plain: &str) -> String {
        let Some(key) = &self.key else {
            return plain.to_owned();
        };
        if Sealer::is_sealed(plain) {
            return plain.to_owned();
        }
        let mut nonce = [0u8; NONCE_LEN];
        if SystemRandom::new().fill(&mut nonce).is_err() {
            // No randomness: refuse to write a secret sealed badly; keep it as it was given.
            tracing::error!("no system randomness: a secret is stored unsealed");
            return plain.to_owned();
        }
        let mut sealed = plain.as_bytes().to_vec();
        if key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::empty(),
                &mut sealed,
            )
            .is_err()
        {
            return plain.to_owned();
        }
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!("{PREFIX}{}", STANDARD.encode(bytes))
    }

    /// The plain value of a stored one; an error saying why when it cannot be read.
    pub fn open(&self, stored: &str) -> Result<String, String> {
        let Some(encoded) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_owned());
        };
        let Some(key) = &self.key else {
            return Err("the secret is sealed and LEADROUTE_SECRET_KEY is not set".into());
        };
        let unreadable = || "the secret cannot be opened with this LEADROUTE_SECRET_KEY".to_owned();
        let bytes = STANDARD.decode(encoded).map_err(|_| unreadable())?;
        if bytes.len() < NONCE_LEN {
            return Err(unreadable());
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| unreadable())?;
        let mut sealed = sealed.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::empty(), &mut sealed)
            .map_err(|_| unreadable())?;
        String::from_utf8(plain.to_vec()).map_err(|_| unreadable())
    }
}

/// Seals the plain secrets stored before a key was set: every channel's and intake source's.
/// Returns how many it sealed. Safe to run on every start and on several instances at once
/// (sealing is idempotent; the last writer's ciphertext wins and every instance can open it).
pub async fn seal_stored(store: &store::Store, sealer: &Sealer) -> Result<usize, store::DbError> {
    if !sealer.is_keyed() {
        return Ok(0);
    }
    let mut sealed = 0;
    for setting in [store::Setting::Channels, store::Setting::IntakeSources] {
        for mut row in store.list_settings(setting).await? {
            let Ok(mut document) = serde_json::from_str::<serde_json::Value>(&row.document) else {
                continue;
            };
            let mut changed = false;
            // Channels' second credential is `token`; an intake source's `token` is public
            // (it is in the form's address), its second secret `access_token`.
            let fields: &[&str] = if setting == store::Setting::Channels {
                &["secret", "token"]
            } else {
                &["secret", "access_token"]
            };
            for field in fields {
                let Some(secret) = document[*field].as_str() else {
                    continue;
                };
                if Sealer::is_sealed(secret) || secret.is_empty() {
                    continue;
                }
                document[*field] = serde_json::Value::String(sealer.seal(secret));
                changed = true;
            }
            if !changed {
                continue;
            }
            row.document = document.to_string();
            store.upsert_setting(setting, &row).await?;
            sealed += 1;
        }
    }
    Ok(sealed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_with_its_key_only() {
        let sealer = Sealer::new("correct horse battery staple");
        let sealed = sealer.seal("SEC-robot-signing-key");
        assert!(Sealer::is_sealed(&sealed));
        assert!(!sealed.contains("robot"));
        assert_ne!(
            sealer.seal("SEC-robot-signing-key"),
            sealed,
            "a fresh nonce each time"
        );
        assert_eq!(
            sealer.seal(&sealed),
            sealed,
            "sealing twice is sealing once"
        );
        assert_eq!(sealer.open(&sealed).as_deref(), Ok("SEC-robot-signing-key"));
        assert!(Sealer::new("another key").open(&sealed).is_err());
        assert!(Sealer::default().open(&sealed).is_err());
        // Tampering is noticed.
        let mut bytes = sealed.clone().into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        assert!(
            sealer
                .open(&String::from_utf8(bytes).expect("text"))
                .is_err()
        );
        // Plain values pass through both ways without a key, and open as they are with one.
        assert_eq!(Sealer::default().seal("plain"), "plain");
        assert_eq!(sealer.open("plain").as_deref(), Ok("plain"));
    }
}
