//! Signing and verifying keys, parsed once: Ed25519 or RSA (PKCS#1 v1.5,
//! SHA-256), public keys from their JWK.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::Sha256;

pub enum SigningKey {
    Ed(Box<ed25519_dalek::SigningKey>),
    Rsa(Box<rsa::pkcs1v15::SigningKey<Sha256>>),
}

pub enum VerifyingKey {
    Ed(ed25519_dalek::VerifyingKey),
    Rsa(Box<rsa::pkcs1v15::VerifyingKey<Sha256>>),
}

pub fn parse_public_jwk(text: &str) -> Option<VerifyingKey> {
    let jwk: serde_json::Value = serde_json::from_str(text).ok()?;
    let field = |name: &str| {
        jwk[name]
            .as_str()
            .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
    };
    match jwk["kty"].as_str()? {
        "OKP" => {
            let x: [u8; 32] = field("x")?.try_into().ok()?;
            ed25519_dalek::VerifyingKey::from_bytes(&x)
                .ok()
                .map(VerifyingKey::Ed)
        }
        "RSA" => {
            let n = rsa::BigUint::from_bytes_be(&field("n")?);
            let e = rsa::BigUint::from_bytes_be(&field("e")?);
            let public = rsa::RsaPublicKey::new(n, e).ok()?;
            Some(VerifyingKey::Rsa(Box::new(rsa::pkcs1v15::VerifyingKey::<
                Sha256,
            >::new(public))))
        }
        _ => None,
    }
}
