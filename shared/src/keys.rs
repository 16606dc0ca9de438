//! Project API keys: `pk_<lookup>_<secret>` (publishable) and
//! `sk_<lookup>_<secret>` (secret).
//!
//! The lookup part (shown as the key's `prefix`) finds the row; the whole
//! value is then checked against its stored SHA-256 in constant time, so
//! knowing a prefix is worth nothing.

use serde::{Deserialize, Serialize};

use crate::crypto::{ct_eq, sha256_hex};
use crate::ids::random_base32;

const LOOKUP_LEN: usize = 16;
const SECRET_LEN: usize = 52; // 260 bits

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    Publishable,
    Secret,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Publishable => "publishable",
            KeyKind::Secret => "secret",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "publishable" => Some(KeyKind::Publishable),
            "secret" => Some(KeyKind::Secret),
            _ => None,
        }
    }

    fn tag(self) -> &'static str {
        match self {
            KeyKind::Publishable => "pk",
            KeyKind::Secret => "sk",
        }
    }
}

pub struct NewKey {
    pub kind: KeyKind,
    pub prefix: String,
    pub value: String,
    pub secret_hash: String,
}

pub fn generate(kind: KeyKind) -> NewKey {
    let prefix = format!("{}_{}", kind.tag(), random_base32(LOOKUP_LEN));
    let value = format!("{prefix}_{}", random_base32(SECRET_LEN));
    NewKey {
        kind,
        secret_hash: sha256_hex(value.as_bytes()),
        prefix,
        value,
    }
}

/// Splits a presented key into its kind and prefix; `None` if it cannot be a key.
pub fn parse(value: &str) -> Option<(KeyKind, &str)> {
    if value.len() != 2 + 1 + LOOKUP_LEN + 1 + SECRET_LEN || !value.is_ascii() {
        return None;
    }
    let kind = match &value[..3] {
        "pk_" => KeyKind::Publishable,
        "sk_" => KeyKind::Secret,
        _ => return None,
    };
    let prefix = &value[..3 + LOOKUP_LEN];
    let rest = &value[3 + LOOKUP_LEN..];
    let ok = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    };
    if !rest.starts_with('_') || !ok(&prefix[3..]) || !ok(&rest[1..]) {
        return None;
    }
    Some((kind, prefix))
}

/// Constant-time check of a presented key against the stored hash.
pub fn verify(value: &str, secret_hash: &str) -> bool {
    ct_eq(
        sha256_hex(value.as_bytes()).as_bytes(),
        secret_hash.as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_parse_verify() {
        for kind in [KeyKind::Publishable, KeyKind::Secret] {
            let k = generate(kind);
            let (parsed_kind, prefix) = parse(&k.value).unwrap();
            assert_eq!(parsed_kind, kind);
            assert_eq!(prefix, k.prefix);
            assert!(verify(&k.value, &k.secret_hash));
            let mut forged = k.value.clone();
            forged.pop();
            forged.push(if k.value.ends_with('a') { 'b' } else { 'a' });
            assert!(parse(&forged).is_some());
            assert!(!verify(&forged, &k.secret_hash));
        }
        assert!(parse("pk_short").is_none());
        assert!(parse(&format!("xk_{}_{}", "a".repeat(16), "a".repeat(52))).is_none());
        assert!(parse(&format!("pk_{}_{}", "A".repeat(16), "a".repeat(52))).is_none());
        assert!(parse(&format!("pk_{}-{}", "a".repeat(16), "a".repeat(52))).is_none());
    }
}
