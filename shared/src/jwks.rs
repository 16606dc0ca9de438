//! Per-project signing keys: generation and their public JWK form.
//!
//! Private keys are PKCS#8 DER, sealed under the master key before they reach
//! storage; only the public half is ever published.

use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

use crate::crypto::{b64url, random_bytes};
use crate::settings::SigningAlg;

pub struct GeneratedKey {
    pub kid: String,
    pub alg: SigningAlg,
    pub public_jwk: Value,
    /// PKCS#8 DER of the private key. Seal it before storing.
    pub private_pkcs8: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
#[error("key generation failed: {0}")]
pub struct KeyGenError(String);

pub fn generate(alg: SigningAlg) -> Result<GeneratedKey, KeyGenError> {
    let kid = crate::ids::new_id("sig");
    match alg {
        SigningAlg::EdDSA => {
            let key = ed25519_dalek::SigningKey::from_bytes(&random_bytes::<32>());
            let der = key.to_pkcs8_der().map_err(|e| KeyGenError(e.to_string()))?;
            let x = b64url(key.verifying_key().as_bytes());
            Ok(GeneratedKey {
                public_jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"}),
                kid,
                alg,
                private_pkcs8: der.as_bytes().to_vec(),
            })
        }
        SigningAlg::RS256 => {
            let mut rng = rand::rngs::OsRng;
            let key =
                rsa::RsaPrivateKey::new(&mut rng, 2048).map_err(|e| KeyGenError(e.to_string()))?;
            let der = rsa::pkcs8::EncodePrivateKey::to_pkcs8_der(&key)
                .map_err(|e| KeyGenError(e.to_string()))?;
            let n = b64url(&key.n().to_bytes_be());
            let e = b64url(&key.e().to_bytes_be());
            Ok(GeneratedKey {
                public_jwk: json!({"kty": "RSA", "n": n, "e": e, "kid": kid, "alg": "RS256", "use": "sig"}),
                kid,
                alg,
                private_pkcs8: der.as_bytes().to_vec(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ed25519_jwk_shape() {
        let k = generate(SigningAlg::EdDSA).unwrap();
        assert_eq!(k.public_jwk["kty"], "OKP");
        assert_eq!(k.public_jwk["kid"], k.kid.as_str());
        assert_eq!(k.public_jwk["x"].as_str().unwrap().len(), 43);
        assert!(!k.private_pkcs8.is_empty());
    }
}
