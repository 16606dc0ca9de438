//! Password hashing: Argon2id for every new hash, bcrypt accepted for
//! imports and replaced at the next successful login, all on a bounded
//! blocking pool so hashing never stalls the async runtime.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use identity_shared::error::ApiError;
use tokio::sync::Semaphore;

/// New passwords: at least this many characters.
pub const MIN_LENGTH: usize = 12;
/// Any password: at most this many characters (checked before hashing).
pub const MAX_LENGTH: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for HashParams {
    fn default() -> Self {
        // OWASP's Argon2id baseline.
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    No,
    Yes,
    /// Correct, and the stored hash should be replaced by this one (bcrypt,
    /// or Argon2 with other parameters).
    YesRehashed(String),
}

pub struct Hasher {
    argon: Argon2<'static>,
    params: HashParams,
    permits: Semaphore,
    /// A real hash of a random password: unknown accounts are checked
    /// against it so they cost the same time as known ones.
    dummy: String,
}

impl Hasher {
    /// `concurrency` bounds how many hashes run at once (the cores).
    pub fn new(params: HashParams, concurrency: usize) -> Result<Arc<Self>, String> {
        let p = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            None,
        )
        .map_err(|e| e.to_string())?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, p);
        let dummy = hash_with(&argon, &identity_shared::crypto::random_token())?;
        Ok(Arc::new(Self {
            argon,
            params,
            permits: Semaphore::new(concurrency.max(1)),
            dummy,
        }))
    }

    pub fn params(&self) -> HashParams {
        self.params
    }

    async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Hasher) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let _permit = self.permits.acquire().await.map_err(ApiError::internal)?;
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&this))
            .await
            .map_err(ApiError::internal)
    }

    pub async fn hash(self: &Arc<Self>, password: String) -> Result<String, ApiError> {
        self.blocking(move |h| hash_with(&h.argon, &password))
            .await?
            .map_err(ApiError::internal)
    }

    /// Checks `password` against `stored` (or against the dummy hash when
    /// there is no account, with the same cost). Never errors on a damaged
    /// hash: that is a "no".
    pub async fn verify(
        self: &Arc<Self>,
        password: String,
        stored: Option<String>,
    ) -> Result<Verified, ApiError> {
        self.blocking(move |h| {
            let Some(stored) = stored else {
                let _ = h.check(&password, &h.dummy);
                return Verified::No;
            };
            if !h.check(&password, &stored) {
                return Verified::No;
            }
            if h.needs_rehash(&stored) {
                match hash_with(&h.argon, &password) {
                    Ok(new) => Verified::YesRehashed(new),
                    Err(_) => Verified::Yes,
                }
            } else {
                Verified::Yes
            }
        })
        .await
    }

    fn check(&self, password: &str, stored: &str) -> bool {
        if is_bcrypt(stored) {
            return bcrypt::verify(password, stored).unwrap_or(false);
        }
        match PasswordHash::new(stored) {
            Ok(parsed) if parsed.algorithm.as_str() == "argon2id" => {
                // Verify with the parameters stored in the hash itself.
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            }
            _ => false,
        }
    }

    fn needs_rehash(&self, stored: &str) -> bool {
        if is_bcrypt(stored) {
            return true;
        }
        let Ok(parsed) = PasswordHash::new(stored) else {
            return true;
        };
        match Params::try_from(&parsed) {
            Ok(p) => {
                p.m_cost() != self.params.memory_kib
                    || p.t_cost() != self.params.iterations
                    || p.p_cost() != self.params.parallelism
                    || parsed.version != Some(Version::V0x13 as u32)
            }
            Err(_) => true,
        }
    }
}

fn hash_with(argon: &Argon2<'_>, password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    argon
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

fn is_bcrypt(s: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"].iter().any(|p| s.starts_with(p))
}

/// Validates an imported hash: an Argon2id PHC string or a bcrypt hash.
pub fn validate_import(hash: &str) -> Result<(), ApiError> {
    let bad = || {
        ApiError::unprocessable(
            "invalid_password_hash",
            "password_hash must be an Argon2id PHC string or a bcrypt hash ($2a$, $2b$, $2y$)",
        )
    };
    if is_bcrypt(hash) {
        // $2b$NN$ + 53 characters of salt and digest. Costs past 16 would
        // make every login of that account a denial of service.
        let cost_ok = hash
            .get(4..6)
            .and_then(|c| c.parse::<u32>().ok())
            .is_some_and(|c| (4..=16).contains(&c));
        if hash.len() == 60 && cost_ok && hash.as_bytes()[6] == b'$' {
            return Ok(());
        }
        return Err(bad());
    }
    let parsed = PasswordHash::new(hash).map_err(|_| bad())?;
    let params = Params::try_from(&parsed).map_err(|_| bad())?;
    if parsed.algorithm.as_str() != "argon2id" || parsed.hash.is_none() {
        return Err(bad());
    }
    // Bounded so one login cannot take the machine's memory or minutes of CPU.
    if params.m_cost() > 262_144 || params.t_cost() > 16 || params.p_cost() > 16 {
        return Err(ApiError::unprocessable(
            "invalid_password_hash",
            "password_hash parameters are too large (at most m=262144, t=16, p=16)",
        ));
    }
    Ok(())
}

/// Policy for a new password. Counted in characters, not bytes.
pub fn validate_new(password: &str) -> Result<(), ApiError> {
    let n = password.chars().count();
    if !(MIN_LENGTH..=MAX_LENGTH).contains(&n) {
        return Err(ApiError::unprocessable(
            "weak_password",
            format!("the password must be {MIN_LENGTH} to {MAX_LENGTH} characters"),
        ));
    }
    if password.chars().any(char::is_control) {
        return Err(ApiError::unprocessable(
            "invalid_password",
            "the password must not contain control characters",
        ));
    }
    Ok(())
}

/// What a login accepts before any hashing: non-empty, at most the maximum.
pub fn validate_presented(password: &str) -> Result<(), ApiError> {
    if password.is_empty() {
        return Err(ApiError::invalid_request("password is required"));
    }
    if password.chars().count() > MAX_LENGTH {
        return Err(ApiError::invalid_request(format!(
            "password must be at most {MAX_LENGTH} characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> HashParams {
        HashParams {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
        }
    }

    #[tokio::test]
    async fn argon2id_round_trip_and_rehash_on_new_params() {
        let h = Hasher::new(fast(), 2).unwrap();
        let hash = h.hash("correct horse battery".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert_eq!(
            h.verify("correct horse battery".into(), Some(hash.clone()))
                .await
                .unwrap(),
            Verified::Yes
        );
        assert_eq!(
            h.verify("wrong".into(), Some(hash.clone())).await.unwrap(),
            Verified::No
        );
        assert_eq!(h.verify("x".into(), None).await.unwrap(), Verified::No);
        assert_eq!(
            h.verify("x".into(), Some("garbage".into())).await.unwrap(),
            Verified::No
        );
        let stronger = Hasher::new(
            HashParams {
                memory_kib: 2048,
                ..fast()
            },
            1,
        )
        .unwrap();
        match stronger
            .verify("correct horse battery".into(), Some(hash))
            .await
            .unwrap()
        {
            Verified::YesRehashed(new) => assert!(new.contains("m=2048")),
            other => panic!("expected a rehash, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn bcrypt_verifies_and_is_rehashed() {
        let h = Hasher::new(fast(), 1).unwrap();
        let b = bcrypt::hash("hunter2hunter2", 4).unwrap();
        for variant in [
            b.clone(),
            b.replacen("$2b$", "$2a$", 1),
            b.replacen("$2b$", "$2y$", 1),
        ] {
            validate_import(&variant).unwrap();
            match h
                .verify("hunter2hunter2".into(), Some(variant))
                .await
                .unwrap()
            {
                Verified::YesRehashed(new) => assert!(new.starts_with("$argon2id$")),
                other => panic!("expected a rehash, got {other:?}"),
            }
        }
        assert_eq!(
            h.verify("nope".into(), Some(b)).await.unwrap(),
            Verified::No
        );
    }

    #[test]
    fn import_and_policy_validation() {
        assert!(
            validate_import("$argon2i$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo").is_err()
        );
        assert!(validate_import("$2b$99$abc").is_err());
        let costly = bcrypt::hash("x", 4).unwrap().replacen("$04$", "$20$", 1);
        assert!(validate_import(&costly).is_err());
        assert!(
            validate_import(
                "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2g"
            )
            .is_err()
        );
        assert!(validate_import("plain").is_err());
        assert!(validate_new("short").is_err());
        assert!(validate_new(&"a".repeat(257)).is_err());
        assert!(validate_new("twelve chars!").is_ok());
        assert!(validate_new("ünïcødé pässwörd").is_ok());
        assert!(validate_new("null\u{0}byte-password").is_err());
        assert!(validate_presented("").is_err());
        assert!(validate_presented(&"a".repeat(257)).is_err());
        assert!(validate_presented("x").is_ok());
    }
}
