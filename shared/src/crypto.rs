//! Hashing, sealing and comparison of secrets.
//!
//! High-entropy values (keys, tokens) are stored as SHA-256; reversible
//! secrets are sealed with AES-256-GCM under the master key. A sealed value
//! names the master key's id, so a new master key can be introduced while old
//! ciphertexts still open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    // HMAC accepts keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Constant-time equality for secrets and their hashes.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    rand::thread_rng().fill_bytes(&mut out);
    out
}

/// 256 random bits as URL-safe base64 (43 characters).
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

pub fn b64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

#[derive(Clone)]
pub struct MasterKey {
    id: String,
    cipher: Aes256Gcm,
    secret: [u8; 32],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed under master key {0}, which is not configured")]
    UnknownKey(String),
    #[error("sealed value failed authentication")]
    Authentication,
}

const SEAL_VERSION: &str = "v1";

impl MasterKey {
    /// Parses 32 bytes given as 64 hex characters or as base64.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|e| e.to_string())?
        } else {
            STANDARD
                .decode(text)
                .or_else(|_| URL_SAFE_NO_PAD.decode(text))
                .map_err(|_| "must be 32 bytes as 64 hex characters or base64".to_string())?
        };
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| {
            "must be exactly 32 bytes (64 hex characters or 44 base64 characters)".to_string()
        })?;
        Ok(Self::from_bytes(bytes))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        // The id is a digest of the key under a fixed label: it names the key
        // without revealing anything usable about it.
        let id =
            sha256_hex(&[b"identity-master-key-id:".as_slice(), &bytes].concat())[..12].to_string();
        Self {
            id,
            cipher: Aes256Gcm::new(&bytes.into()),
            secret: bytes,
        }
    }

    /// A 256-bit key for one purpose, derived from the master key
    /// (HMAC-SHA256 under the master key, of a purpose label).
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        hmac_sha256(&self.secret, purpose.as_bytes())
    }

    pub fn generate_hex() -> String {
        hex::encode(random_bytes::<32>())
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Seals `plaintext`; `context` (e.g. the owning row's id) is bound as
    /// associated data so a ciphertext cannot be moved to another row.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> String {
        let nonce = random_bytes::<12>();
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            // AES-GCM encryption fails only for inputs beyond 64 GiB.
            .unwrap_or_default();
        let mut body = nonce.to_vec();
        body.extend_from_slice(&ciphertext);
        format!(
            "{SEAL_VERSION}:{}:{}",
            self.id,
            URL_SAFE_NO_PAD.encode(body)
        )
    }

    pub fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, SealError> {
        let mut parts = sealed.splitn(3, ':');
        let (Some(SEAL_VERSION), Some(kid), Some(body)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(SealError::Malformed);
        };
        if kid != self.id {
            return Err(SealError::UnknownKey(kid.to_string()));
        }
        let body = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SealError::Malformed)?;
        if body.len() < 12 + 16 {
            return Err(SealError::Malformed);
        }
        let (nonce, ciphertext) = body.split_at(12);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SealError::Authentication)
    }
}

/// The sealing context of an OAuth provider's secret `what`
/// (`client_secret`, `apple`): bound to its project and provider name.
pub fn oauth_secret_context(project_id: &str, provider: &str, what: &str) -> String {
    format!("oauth-provider:{project_id}:{provider}:{what}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trip_and_binding() {
        let key = MasterKey::parse(&MasterKey::generate_hex()).unwrap();
        let sealed = key.seal(b"secret", "row-1");
        assert!(sealed.starts_with(&format!("v1:{}:", key.id())));
        assert_eq!(key.open(&sealed, "row-1").unwrap(), b"secret");
        assert!(matches!(
            key.open(&sealed, "row-2"),
            Err(SealError::Authentication)
        ));
        let other = MasterKey::parse(&MasterKey::generate_hex()).unwrap();
        assert!(matches!(
            other.open(&sealed, "row-1"),
            Err(SealError::UnknownKey(_))
        ));
        assert!(matches!(
            key.open("v1:x", "row-1"),
            Err(SealError::Malformed)
        ));
    }

    #[test]
    fn derived_keys_differ_by_purpose_and_key() {
        let a = MasterKey::parse(&"01".repeat(32)).unwrap();
        let b = MasterKey::parse(&"02".repeat(32)).unwrap();
        assert_eq!(a.derive("x"), a.derive("x"));
        assert_ne!(a.derive("x"), a.derive("y"));
        assert_ne!(a.derive("x"), b.derive("x"));
    }

    #[test]
    fn master_key_formats() {
        let hex_key = "00".repeat(32);
        let b64_key = STANDARD.encode([0u8; 32]);
        assert_eq!(
            MasterKey::parse(&hex_key).unwrap().id(),
            MasterKey::parse(&b64_key).unwrap().id()
        );
        assert!(MasterKey::parse("abcd").is_err());
        assert!(MasterKey::parse(&"00".repeat(31)).is_err());
    }

    #[test]
    fn constant_time_eq() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
