//! Password hashing with argon2id (PHC strings with their own salt and parameters).

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// Hashing failed (the operating system's random source, or absurd parameters).
#[derive(Debug, thiserror::Error)]
#[error("cannot hash the password: {0}")]
pub struct HashError(String);

/// A new salted argon2id hash of `password`.
pub fn hash(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Whether `password` matches `stored`; a malformed stored hash never matches.
pub fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
        .unwrap_or(false)
}

/// Checks at most this many passwords at once: argon2 takes tens of milliseconds of a core each,
/// and a burst of sign-ins must not take every core from the rest of the console.
const CONCURRENT_CHECKS: usize = 2;

/// Checks `password` against `stored` on a blocking thread, waiting for a free slot first; with
/// no `stored` hash (an unknown or disabled user) checks against a dummy one, so the answer takes
/// as long either way and tells nobody which names exist. Always false without a stored hash.
pub async fn check(password: String, stored: Option<String>) -> bool {
    static SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(CONCURRENT_CHECKS);
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let Ok(_slot) = SLOTS.acquire().await else { return false };
    tokio::task::spawn_blocking(move || match stored {
        Some(stored) => verify(&password, &stored),
        None => {
            let dummy = DUMMY.get_or_init(|| hash(&random_password()).unwrap_or_default());
            verify(&password, dummy);
            false
        }
    })
    .await
    .unwrap_or(false)
}

/// A random password of 24 hex digits (96 bits), for the first administrator.
pub fn random_password() -> String {
    crate::db::random_hex(12)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_own_password_and_no_other() {
        let stored = hash("correct horse battery").unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", &stored));
        assert!(!verify("correct horse battery!", &stored));
    }

    #[test]
    fn the_same_password_hashes_differently_each_time() {
        assert_ne!(hash("correct horse battery").unwrap(), hash("correct horse battery").unwrap());
    }

    #[test]
    fn a_malformed_hash_never_matches() {
        assert!(!verify("anything at all", "not-a-hash"));
        assert!(!verify("", ""));
    }
}
