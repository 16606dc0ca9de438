//! TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps, one step of skew
//! either way), the `otpauth://` URI authenticator apps read, its QR code as
//! SVG, and recovery codes.

use identity_shared::crypto::{hmac_sha256, random_bytes};
use totp_rs::{Algorithm, Builder, Secret, Totp};

/// RFC 4226 recommends 160 bits.
pub const SECRET_BYTES: usize = 20;
pub const STEP_SECONDS: u64 = 30;
pub const DIGITS: u8 = 6;
pub const RECOVERY_CODES: usize = 10;

pub fn new_secret() -> Vec<u8> {
    random_bytes::<SECRET_BYTES>().to_vec()
}

fn totp(secret: &[u8]) -> Option<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS)
        .with_skew(1)
        .with_step_duration(STEP_SECONDS)
        .with_secret(secret.to_vec())
        .build()
        .ok()
}

/// The time step `code` belongs to (within one step of `now_seconds`), when
/// it is right. Spaces in the code are ignored; anything but six digits is
/// wrong.
pub fn check(secret: &[u8], code: &str, now_seconds: u64) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != usize::from(DIGITS) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let step = totp(secret)?.check(&code, now_seconds)?;
    i64::try_from(step).ok()
}

/// The code of `secret` at `time_seconds` (tests, and nothing else, need it).
pub fn code_at(secret: &[u8], time_seconds: u64) -> String {
    totp(secret)
        .map(|t| t.generate(time_seconds).to_string())
        .unwrap_or_default()
}

pub fn base32(secret: &[u8]) -> String {
    Secret::from(secret.to_vec()).to_base32()
}

/// The secret an authenticator app reads from `base32` (tests use it the
/// same way).
pub fn from_base32(text: &str) -> Option<Vec<u8>> {
    Secret::try_from_base32(text)
        .ok()
        .map(|s| s.as_ref().to_vec())
}

/// `otpauth://totp/Issuer:account?secret=...&issuer=Issuer&...`, the Key
/// URI format authenticator apps read.
pub fn otpauth_uri(secret: &[u8], issuer: &str, account: &str) -> String {
    let issuer = encode(issuer);
    format!(
        "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        account = encode(account),
        secret = base32(secret),
    )
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A QR code of `text` as a standalone SVG document (black modules on
/// white, a four-module quiet zone).
pub fn qr_svg(text: &str) -> String {
    use qrcodegen::{QrCode, QrCodeEcc};
    let Ok(qr) = QrCode::encode_text(text, QrCodeEcc::Medium) else {
        return String::new();
    };
    let border = 4;
    let size = qr.size() + border * 2;
    let mut path = String::new();
    for y in 0..qr.size() {
        for x in 0..qr.size() {
            if qr.get_module(x, y) {
                path.push_str(&format!("M{},{}h1v1h-1z", x + border, y + border));
            }
        }
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" shape-rendering=\"crispEdges\"><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/><path d=\"{path}\" fill=\"#000\"/></svg>"
    )
}

/// Ten new recovery codes (`xxxxx-xxxxx`, 50 random bits each).
pub fn new_recovery_codes() -> Vec<String> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    (0..RECOVERY_CODES)
        .map(|_| {
            let bytes = random_bytes::<10>();
            let chars: String = bytes
                .iter()
                .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
                .collect();
            format!("{}-{}", &chars[..5], &chars[5..])
        })
        .collect()
}

/// How a recovery code is stored: HMAC-SHA-256 under `key` (derived from
/// the master key: a leaked database alone cannot be searched for 50-bit
/// codes) of the user it belongs to and the code, after dropping case,
/// spaces and dashes (so `ABCDE FGHIJ` is `abcde-fghij`).
pub fn recovery_code_hash(key: &[u8; 32], user_id: &str, code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    hex(&hmac_sha256(key, format!("{user_id}:{normal}").as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 (truncated to six digits).
    #[test]
    fn rfc_6238_vectors() {
        let secret = b"12345678901234567890";
        for (time, eight_digits) in [
            (59u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
        ] {
            assert_eq!(code_at(secret, time), &eight_digits[2..], "t={time}");
            assert_eq!(
                check(secret, &eight_digits[2..], time),
                Some((time / 30) as i64)
            );
        }
    }

    #[test]
    fn one_step_of_skew_either_way_and_nothing_else() {
        let secret = new_secret();
        let now = 1_700_000_000;
        for (offset, ok) in [
            (-60i64, false),
            (-30, true),
            (0, true),
            (30, true),
            (60, false),
        ] {
            let code = code_at(&secret, (now as i64 + offset) as u64);
            assert_eq!(check(&secret, &code, now).is_some(), ok, "offset {offset}");
        }
        let code = code_at(&secret, now);
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert!(check(&secret, &spaced, now).is_some());
        for bad in ["", "12345", "1234567", "abcdef", "١٢٣٤٥٦"] {
            assert_eq!(check(&secret, bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn otpauth_uri_and_qr() {
        let secret = b"12345678901234567890";
        let uri = otpauth_uri(secret, "Acme Corp: Dev", "ada@example.com");
        assert_eq!(
            uri,
            "otpauth://totp/Acme%20Corp%3A%20Dev:ada%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Acme%20Corp%3A%20Dev&algorithm=SHA1&digits=6&period=30"
        );
        let svg = qr_svg(&uri);
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"));
        assert!(svg.matches('h').count() > 100, "modules drawn");
    }

    #[test]
    fn recovery_codes_are_distinct_and_normalised() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), 10);
        let unique: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), 10);
        let code = &codes[0];
        assert_eq!(code.len(), 11);
        let key = [7u8; 32];
        assert_eq!(
            recovery_code_hash(&key, "usr_1", code),
            recovery_code_hash(&key, "usr_1", &code.to_uppercase().replace('-', " "))
        );
        assert_ne!(
            recovery_code_hash(&key, "usr_1", code),
            recovery_code_hash(&key, "usr_2", code)
        );
        assert_ne!(
            recovery_code_hash(&key, "usr_1", code),
            recovery_code_hash(&[8u8; 32], "usr_1", code)
        );
    }
}
