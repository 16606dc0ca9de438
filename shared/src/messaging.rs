//! Where outgoing messages go: the SMTP server and the SMS webhook as
//! configured (`IDENTITY_SMTP_URL`, `IDENTITY_EMAIL_FROM`,
//! `IDENTITY_SMS_WEBHOOK_URL`, `IDENTITY_SMS_WEBHOOK_SECRET`), the outbox's
//! retry schedule, and Standard Webhooks signatures (the SMS webhook now,
//! project webhooks later).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::secret::Secret;

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// `smtps://`: TLS from the first byte (port 465 by default).
    Implicit,
    /// `smtp://` (the default): STARTTLS, required (port 587 by default).
    StartTls,
    /// `smtp://...?tls=none`: plain text (a relay on the same host).
    None,
}

#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub user: Option<String>,
    pub password: Option<Secret<String>>,
}

impl SmtpSettings {
    /// `smtp://[user[:password]@]host[:port][?tls=starttls|none]` or
    /// `smtps://...`; user and password percent-decoded.
    pub fn parse(url: &str) -> Result<Self, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or("must look like smtp://user:pass@host:port")?;
        let mut tls = match scheme.to_ascii_lowercase().as_str() {
            "smtp" => SmtpTls::StartTls,
            "smtps" => SmtpTls::Implicit,
            _ => return Err("must start with smtp:// or smtps://".into()),
        };
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') {
            return Err("must have no path".into());
        }
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            match pair.split_once('=') {
                Some(("tls", "starttls")) if tls == SmtpTls::StartTls => {}
                Some(("tls", "none")) if tls == SmtpTls::StartTls => tls = SmtpTls::None,
                Some(("tls", _)) => {
                    return Err("tls must be starttls or none (smtp:// only)".into());
                }
                _ => return Err(format!("unknown parameter {pair:?}")),
            }
        }
        let (auth, hostport) = match rest.rsplit_once('@') {
            Some((a, h)) => (Some(a), h),
            None => (None, rest),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
                h,
                p.parse::<u16>().ok().filter(|p| *p > 0).ok_or("bad port")?,
            ),
            _ => (
                hostport,
                match tls {
                    SmtpTls::Implicit => 465,
                    _ => 587,
                },
            ),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.contains(['/', ' ', '@']) {
            return Err("must name a host".into());
        }
        let (user, password) = match auth {
            None => (None, None),
            Some(a) => {
                let (u, p) = a.split_once(':').unwrap_or((a, ""));
                let u = percent_decode(u).ok_or("bad percent-encoding in the user")?;
                let p = percent_decode(p).ok_or("bad percent-encoding in the password")?;
                (Some(u).filter(|u| !u.is_empty()), Some(Secret::new(p)))
            }
        };
        let host = host.to_ascii_lowercase();
        if tls == SmtpTls::None
            && user.is_some()
            && !matches!(host.as_str(), "localhost" | "127.0.0.1" | "::1")
        {
            return Err("refuses to send credentials in plain text to another host: use STARTTLS (smtp://) or smtps://".into());
        }
        Ok(Self {
            host,
            port,
            tls,
            password: password.filter(|_| user.is_some()),
            user,
        })
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The SMS webhook: `{to, body}` POSTed as JSON, signed as Standard
/// Webhooks sign (see [`WebhookSecret::sign`]). `Debug` shows the URL
/// without its path and query (which may carry a token).
#[derive(Clone)]
pub struct SmsSettings {
    pub url: String,
    pub secret: WebhookSecret,
}

impl std::fmt::Debug for SmsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let origin = match self.url.split_once("://") {
            Some((scheme, rest)) => {
                let host = rest.split(['/', '?', '#']).next().unwrap_or("");
                let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
                format!("{scheme}://{host}/...")
            }
            None => "[redacted]".into(),
        };
        f.debug_struct("SmsSettings")
            .field("url", &origin)
            .field("secret", &self.secret)
            .finish()
    }
}

/// A Standard Webhooks secret: `whsec_` and the base64 of the key.
#[derive(Clone)]
pub struct WebhookSecret(Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl WebhookSecret {
    pub fn parse(text: &str) -> Result<Self, String> {
        let key = text
            .strip_prefix("whsec_")
            .and_then(|b| STANDARD.decode(b).ok())
            .filter(|k| (16..=64).contains(&k.len()))
            .ok_or("must be whsec_ followed by the base64 of 16 to 64 bytes")?;
        Ok(Self(key))
    }

    /// A new random secret, as text.
    pub fn generate() -> String {
        format!(
            "whsec_{}",
            STANDARD.encode(crate::crypto::random_bytes::<32>())
        )
    }

    /// The `webhook-signature` header of message `id` sent at `timestamp`
    /// (unix seconds) with `body`: `v1,` and the base64 HMAC-SHA256 of
    /// `{id}.{timestamp}.{body}`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut signed = format!("{id}.{timestamp}.").into_bytes();
        signed.extend_from_slice(body);
        format!(
            "v1,{}",
            STANDARD.encode(crate::crypto::hmac_sha256(&self.0, &signed))
        )
    }
}

/// The outbox's delivery schedule.
#[derive(Debug, Clone, Copy)]
pub struct OutboxSettings {
    /// Attempts before a message is dead.
    pub max_attempts: u32,
    /// The first retry's delay; each later one doubles, up to an hour, with
    /// up to a quarter of jitter either way.
    pub backoff_ms: u64,
    /// How often every node looks for due messages (a message written on
    /// this node wakes its worker at once).
    pub poll_ms: u64,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        Self {
            max_attempts: 12,
            backoff_ms: 5_000,
            poll_ms: 1_000,
        }
    }
}

impl OutboxSettings {
    /// The delay before attempt `attempts + 1`, after `attempts` failures;
    /// `jitter` in [0, 1).
    pub fn retry_delay_ms(&self, attempts: u32, jitter: f64) -> u64 {
        let exp = attempts.saturating_sub(1).min(20);
        let base = self.backoff_ms.saturating_mul(1 << exp).min(3_600_000);
        let spread = base / 4;
        base - spread + (2.0 * spread as f64 * jitter) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls() {
        let s = SmtpSettings::parse("smtp://me%40x.com:p%3Ass@Mail.Example.com:2525").unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.tls),
            ("mail.example.com", 2525, SmtpTls::StartTls)
        );
        assert_eq!(s.user.as_deref(), Some("me@x.com"));
        assert_eq!(s.password.unwrap().expose(), "p:ss");
        let s = SmtpSettings::parse("smtps://mail.example.com").unwrap();
        assert_eq!((s.port, s.tls), (465, SmtpTls::Implicit));
        assert!(SmtpSettings::parse("smtp://u:p@mail.example.com?tls=none").is_err());
        assert!(SmtpSettings::parse("smtp://u:p@127.0.0.1:25?tls=none").is_ok());
        let sms = SmsSettings {
            url: "https://u:pw@hooks.example.com/sms?token=abc".into(),
            secret: WebhookSecret::parse(&WebhookSecret::generate()).unwrap(),
        };
        let shown = format!("{sms:?}");
        assert!(!shown.contains("abc") && !shown.contains("pw"), "{shown}");
        let s = SmtpSettings::parse("smtp://127.0.0.1:25?tls=none").unwrap();
        assert_eq!((s.port, s.tls, s.user), (25, SmtpTls::None, None));
        assert_eq!(
            SmtpSettings::parse("smtp://h?tls=starttls").unwrap().tls,
            SmtpTls::StartTls
        );
        for bad in [
            "http://x",
            "smtp://",
            "smtp://h:0",
            "smtp://h:99999",
            "smtps://h?tls=none",
            "smtp://h?tls=maybe",
            "smtp://h/path",
            "smtp://u:%zz@h",
            "smtp://h?x=1",
        ] {
            assert!(SmtpSettings::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn standard_webhooks_signature() {
        // The example of the Standard Webhooks specification.
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert!(WebhookSecret::parse("nope").is_err());
        assert!(WebhookSecret::parse(&WebhookSecret::generate()).is_ok());
    }

    #[test]
    fn retries_back_off_with_jitter() {
        let o = OutboxSettings::default();
        assert_eq!(o.retry_delay_ms(1, 0.5), 5_000);
        assert_eq!(o.retry_delay_ms(2, 0.5), 10_000);
        assert!((3_750..=6_250).contains(&o.retry_delay_ms(1, 0.0)));
        assert!(o.retry_delay_ms(1, 0.999) <= 6_250);
        assert_eq!(o.retry_delay_ms(30, 0.5), 3_600_000);
    }
}
