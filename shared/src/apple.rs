//! Sign in with Apple's client secret: not a stored string but a short JWT
//! (ES256) the service signs with the `.p8` key Apple issued, naming the
//! team (`iss`), the key (`kid`) and the client (`sub`). The control plane
//! checks the key when it is saved; the data plane signs a fresh secret
//! for each code exchange.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

/// The key as the control plane stores it (sealed).
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppleKey {
    pub team_id: String,
    pub key_id: String,
    /// The PKCS#8 PEM of the P-256 key.
    pub private_key: String,
}

impl std::fmt::Debug for AppleKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppleKey")
            .field("team_id", &self.team_id)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// The signing key of a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
fn encoding_key(pem: &str) -> Option<EncodingKey> {
    use base64::Engine;
    let body = pem
        .trim()
        .strip_prefix("-----BEGIN PRIVATE KEY-----")?
        .strip_suffix("-----END PRIVATE KEY-----")?;
    let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()?;
    Some(EncodingKey::from_ec_der(&der))
}

/// Whether `pem` is a usable P-256 signing key (PKCS#8 PEM).
pub fn key_is_usable(pem: &str) -> bool {
    encoding_key(pem)
        .and_then(|key| {
            jsonwebtoken::encode(&Header::new(Algorithm::ES256), &Claims::probe(), &key).ok()
        })
        .is_some()
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

impl Claims<'static> {
    fn probe() -> Self {
        Claims {
            iss: "probe",
            sub: "probe",
            aud: "probe",
            iat: 0,
            exp: 0,
        }
    }
}

/// A client secret for `client_id`, valid five minutes from `now_s`
/// (seconds), for the provider at `audience` (`https://appleid.apple.com`).
pub fn client_secret(
    key: &AppleKey,
    client_id: &str,
    audience: &str,
    now_s: u64,
) -> Result<String, String> {
    let encoding = encoding_key(&key.private_key)
        .ok_or_else(|| "the Apple key is not a PKCS#8 PEM".to_string())?;
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(key.key_id.clone());
    let claims = Claims {
        iss: &key.team_id,
        sub: client_id,
        aud: audience,
        iat: now_s,
        exp: now_s + 300,
    };
    jsonwebtoken::encode(&header, &claims, &encoding).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throwaway P-256 key for this test alone.
    const KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgwncRe5nCPaSuEt9/
nfr5skEUGERiNnBWUDRnrdWPui2hRANCAAQQhO3NskctcdXEKnkFUNcire6XAGpk
WGCfcQrWltg7uuGpNmkyTzLw1cRqmQNBogPYIuzC40tY4Td9vzuRDWnw
-----END PRIVATE KEY-----";

    #[test]
    fn signs_a_secret_apple_accepts_the_shape_of() {
        assert!(key_is_usable(KEY));
        assert!(!key_is_usable(
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"
        ));
        let key = AppleKey {
            team_id: "ABCDE12345".into(),
            key_id: "KEY1234567".into(),
            private_key: KEY.into(),
        };
        let jwt = client_secret(
            &key,
            "com.example.web",
            "https://appleid.apple.com",
            1_700_000_000,
        )
        .unwrap();
        let header = jsonwebtoken::decode_header(&jwt).unwrap();
        assert_eq!(header.alg, Algorithm::ES256);
        assert_eq!(header.kid.as_deref(), Some("KEY1234567"));
        // The key's public point, as `openssl pkey -pubout` shows it.
        let public = jsonwebtoken::DecodingKey::from_ec_components(
            "EITtzbJHLXHVxCp5BVDXIq3ulwBqZFhgn3EK1pbYO7o",
            "4ak2aTJPMvDVxGqZA0GiA9gi7MLjS1jhN32_O5ENafA",
        )
        .unwrap();
        let mut validation = jsonwebtoken::Validation::new(Algorithm::ES256);
        validation.validate_exp = false;
        validation.set_audience(&["https://appleid.apple.com"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(&jwt, &public, &validation).unwrap();
        assert_eq!(data.claims["iss"], "ABCDE12345");
        assert_eq!(data.claims["sub"], "com.example.web");
        assert_eq!(data.claims["exp"], 1_700_000_300u64);
        assert!(!format!("{key:?}").contains("BEGIN"));
    }
}
