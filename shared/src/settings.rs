//! Per-project settings, stored as JSON on the project row.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::rbac::Rbac;
use crate::templates::{TemplateOverrides, parse_overrides};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SigningAlg {
    EdDSA,
    RS256,
}

impl SigningAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::EdDSA => "EdDSA",
            SigningAlg::RS256 => "RS256",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "EdDSA" => Some(SigningAlg::EdDSA),
            "RS256" => Some(SigningAlg::RS256),
            _ => None,
        }
    }
}

/// The longest access-token lifetime a project may set. Retired signing
/// keys stay published this long (plus skew), whatever the current setting.
pub const MAX_ACCESS_TOKEN_TTL_SECONDS: u32 = 86_400;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProjectSettings {
    pub allowed_origins: Vec<String>,
    pub signing_alg: SigningAlg,
    pub access_token_ttl_seconds: u32,
    pub refresh_token_ttl_seconds: u32,
    /// A consumed refresh token presented again within this many seconds by
    /// the same client gets the same successor instead of revoking the session.
    pub refresh_reuse_grace_seconds: u32,
    /// How long after proving a factor a session may take sensitive actions
    /// (disabling MFA, new recovery codes) without proving one again.
    pub step_up_ttl_seconds: u32,
    /// `required`: users without a second factor may use only the MFA and
    /// session routes until they enroll one.
    pub mfa: MfaPolicy,
    /// How long a browser trusted after a second factor skips the challenge.
    pub trusted_browser_ttl_seconds: u32,
    /// The WebAuthn relying-party id of the project's passkeys; by default
    /// its primary verified auth domain, else the public base URL's host.
    pub webauthn_rp_id: Option<String>,
    pub rate_limits: RateLimits,
    /// Where the links in emails point (`{links_base_url}/reset-password?token=`):
    /// by default the primary verified auth domain's origin, else the
    /// public base URL.
    pub links_base_url: Option<String>,
    /// The display name of the sender of this project's emails.
    pub email_from: Option<String>,
    /// Per-kind overrides of the built-in email and SMS templates.
    pub email_templates: TemplateOverrides,
    /// Abuse caps of the messaging flows (all counted from the outbox).
    pub messaging: MessagingLimits,
    /// Whether signed-in users may create tenants (`POST /v1/tenants`,
    /// `organization_name` at registration).
    pub users_can_create_tenants: bool,
    /// The project's roles and permissions inside tenants, beyond the
    /// built-in ones.
    pub rbac: Rbac,
}

/// How many messages one recipient, and one project, may be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MessagingLimits {
    /// Emails to one address per hour (every kind together).
    pub emails_per_address_per_hour: u32,
    /// SMS to one number per day.
    pub sms_per_number_per_day: u32,
    /// SMS one user may ask for per day, whatever the numbers.
    pub sms_per_user_per_day: u32,
    /// SMS of the whole project per day (SMS pumping).
    pub sms_per_project_per_day: u32,
}

impl Default for MessagingLimits {
    fn default() -> Self {
        Self {
            emails_per_address_per_hour: 5,
            sms_per_number_per_day: 5,
            sms_per_user_per_day: 10,
            sms_per_project_per_day: 1000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MfaPolicy {
    #[default]
    Optional,
    Required,
}

/// Requests per minute per (project, client IP); 0 disables a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimits {
    pub register_per_minute: u32,
    pub login_per_minute: u32,
    pub refresh_per_minute: u32,
    /// Requests that send an email or SMS, or check their codes and links.
    pub email_per_minute: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            register_per_minute: 20,
            login_per_minute: 60,
            refresh_per_minute: 120,
            email_per_minute: 10,
        }
    }
}

impl Default for ProjectSettings {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            signing_alg: SigningAlg::EdDSA,
            access_token_ttl_seconds: 900,
            refresh_token_ttl_seconds: 30 * 24 * 3600,
            refresh_reuse_grace_seconds: 10,
            step_up_ttl_seconds: 1800,
            mfa: MfaPolicy::Optional,
            trusted_browser_ttl_seconds: 30 * 86_400,
            webauthn_rp_id: None,
            rate_limits: RateLimits::default(),
            links_base_url: None,
            email_from: None,
            email_templates: TemplateOverrides::new(),
            messaging: MessagingLimits::default(),
            users_can_create_tenants: true,
            rbac: Rbac::default(),
        }
    }
}

impl ProjectSettings {
    /// Reads settings stored by this server; unknown or damaged JSON falls
    /// back to defaults field by field rather than failing a request.
    pub fn from_stored(text: &str) -> Self {
        serde_json::from_str(text).unwrap_or_default()
    }

    pub fn to_stored(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// Applies a partial update from the admin API. Unknown fields and bad
    /// values are rejected with a message naming the field.
    pub fn apply_patch(&mut self, patch: &Value) -> Result<(), String> {
        let Value::Object(map) = patch else {
            return Err("settings must be an object".into());
        };
        for (key, value) in map {
            match key.as_str() {
                "allowed_origins" => {
                    let Value::Array(items) = value else {
                        return Err("settings.allowed_origins must be a list of origins".into());
                    };
                    if items.len() > 100 {
                        return Err("settings.allowed_origins has more than 100 entries".into());
                    }
                    let mut origins = Vec::with_capacity(items.len());
                    for item in items {
                        let origin = item
                            .as_str()
                            .and_then(parse_origin)
                            .ok_or_else(|| format!("settings.allowed_origins: {item} is not an origin like https://app.example.com"))?;
                        if !origins.contains(&origin) {
                            origins.push(origin);
                        }
                    }
                    self.allowed_origins = origins;
                }
                "signing_alg" => {
                    self.signing_alg = value
                        .as_str()
                        .and_then(SigningAlg::parse)
                        .ok_or("settings.signing_alg must be \"EdDSA\" or \"RS256\"")?;
                }
                "access_token_ttl_seconds" => {
                    self.access_token_ttl_seconds =
                        bounded(value, 60, u64::from(MAX_ACCESS_TOKEN_TTL_SECONDS)).ok_or(
                            "settings.access_token_ttl_seconds must be an integer from 60 to 86400",
                        )?;
                }
                "refresh_token_ttl_seconds" => {
                    self.refresh_token_ttl_seconds = bounded(value, 300, 365 * 86_400)
                        .ok_or("settings.refresh_token_ttl_seconds must be an integer from 300 to 31536000")?;
                }
                "refresh_reuse_grace_seconds" => {
                    self.refresh_reuse_grace_seconds = bounded(value, 0, 60).ok_or(
                        "settings.refresh_reuse_grace_seconds must be an integer from 0 to 60",
                    )?;
                }
                "step_up_ttl_seconds" => {
                    self.step_up_ttl_seconds = bounded(value, 60, 86_400).ok_or(
                        "settings.step_up_ttl_seconds must be an integer from 60 to 86400",
                    )?;
                }
                "mfa" => {
                    self.mfa = match value.as_str() {
                        Some("optional") => MfaPolicy::Optional,
                        Some("required") => MfaPolicy::Required,
                        _ => return Err("settings.mfa must be \"optional\" or \"required\"".into()),
                    };
                }
                "trusted_browser_ttl_seconds" => {
                    self.trusted_browser_ttl_seconds = bounded(value, 3600, 365 * 86_400).ok_or(
                        "settings.trusted_browser_ttl_seconds must be an integer from 3600 to 31536000",
                    )?;
                }
                "webauthn_rp_id" => {
                    self.webauthn_rp_id = match value {
                        Value::Null => None,
                        Value::String(s)
                            if is_hostname(s) && (s.contains('.') || s == "localhost") =>
                        {
                            Some(s.to_ascii_lowercase())
                        }
                        _ => return Err(
                            "settings.webauthn_rp_id must be a host name like example.com, or null"
                                .into(),
                        ),
                    };
                }
                "rate_limits" => {
                    let Value::Object(limits) = value else {
                        return Err("settings.rate_limits must be an object".into());
                    };
                    for (name, v) in limits {
                        let n = bounded(v, 0, 100_000).ok_or_else(|| {
                            format!(
                                "settings.rate_limits.{name} must be an integer from 0 to 100000"
                            )
                        })?;
                        match name.as_str() {
                            "register_per_minute" => self.rate_limits.register_per_minute = n,
                            "login_per_minute" => self.rate_limits.login_per_minute = n,
                            "refresh_per_minute" => self.rate_limits.refresh_per_minute = n,
                            "email_per_minute" => self.rate_limits.email_per_minute = n,
                            other => {
                                return Err(format!(
                                    "settings.rate_limits.{other} is not a known limit"
                                ));
                            }
                        }
                    }
                }
                "links_base_url" => {
                    self.links_base_url = match value {
                        Value::Null => None,
                        Value::String(s) => Some(parse_origin(s.trim_end_matches('/')).ok_or(
                            "settings.links_base_url must be an origin like https://app.example.com, or null",
                        )?),
                        _ => {
                            return Err(
                                "settings.links_base_url must be an origin like https://app.example.com, or null"
                                    .into(),
                            );
                        }
                    };
                }
                "email_from" => {
                    self.email_from = match value {
                        Value::Null => None,
                        Value::String(s)
                            if !s.trim().is_empty()
                                && s.chars().count() <= 100
                                && !s
                                    .chars()
                                    .any(|c| c.is_control() || matches!(c, '<' | '>' | '"')) =>
                        {
                            Some(s.trim().to_string())
                        }
                        _ => {
                            return Err("settings.email_from must be a display name of 1 to 100 characters without control characters, quotes or angle brackets, or null".into());
                        }
                    };
                }
                "email_templates" => {
                    self.email_templates = parse_overrides(value)?;
                }
                "users_can_create_tenants" => {
                    self.users_can_create_tenants = value
                        .as_bool()
                        .ok_or("settings.users_can_create_tenants must be true or false")?;
                }
                "rbac" => {
                    self.rbac = Rbac::parse(value)?;
                }
                "messaging" => {
                    let Value::Object(limits) = value else {
                        return Err("settings.messaging must be an object".into());
                    };
                    for (name, v) in limits {
                        let n = bounded(v, 0, 1_000_000).ok_or_else(|| {
                            format!(
                                "settings.messaging.{name} must be an integer from 0 to 1000000"
                            )
                        })?;
                        match name.as_str() {
                            "emails_per_address_per_hour" => {
                                self.messaging.emails_per_address_per_hour = n
                            }
                            "sms_per_number_per_day" => self.messaging.sms_per_number_per_day = n,
                            "sms_per_user_per_day" => self.messaging.sms_per_user_per_day = n,
                            "sms_per_project_per_day" => self.messaging.sms_per_project_per_day = n,
                            other => {
                                return Err(format!(
                                    "settings.messaging.{other} is not a known limit"
                                ));
                            }
                        }
                    }
                }
                other => return Err(format!("settings.{other} is not a known setting")),
            }
        }
        Ok(())
    }
}

/// A DNS host name (letters, digits, hyphens and dots; no scheme, port or
/// path).
fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn bounded(value: &Value, min: u64, max: u64) -> Option<u32> {
    value
        .as_u64()
        .filter(|v| (min..=max).contains(v))
        .map(|v| v as u32)
}

/// `scheme://host[:port]` with nothing after it, lowercased.
pub fn parse_origin(s: &str) -> Option<String> {
    let (scheme, rest) = s.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return None;
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    if let Some(p) = port
        && p.parse::<u16>().ok().filter(|p| *p > 0).is_none()
    {
        return None;
    }
    let host = host.to_ascii_lowercase();
    if host != "localhost"
        && crate::hostname::parse_hostname(&host).is_err()
        && host.parse::<std::net::Ipv4Addr>().is_err()
    {
        return None;
    }
    Some(match port {
        Some(p) => format!("{scheme}://{host}:{p}"),
        None => format!("{scheme}://{host}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patch_validates_each_field() {
        let mut s = ProjectSettings::default();
        s.apply_patch(&json!({"allowed_origins": ["https://App.example.com", "http://localhost:3000"], "signing_alg": "RS256", "access_token_ttl_seconds": 600}))
            .unwrap();
        assert_eq!(
            s.allowed_origins,
            vec!["https://app.example.com", "http://localhost:3000"]
        );
        assert_eq!(s.signing_alg, SigningAlg::RS256);
        assert_eq!(s.access_token_ttl_seconds, 600);
        for bad in [
            json!({"allowed_origins": ["app.example.com"]}),
            json!({"allowed_origins": ["https://a.com/path"]}),
            json!({"allowed_origins": "https://a.com"}),
            json!({"signing_alg": "HS256"}),
            json!({"access_token_ttl_seconds": 5}),
            json!({"refresh_token_ttl_seconds": -1}),
            json!({"nope": 1}),
            json!([1]),
        ] {
            assert!(s.clone().apply_patch(&bad).is_err(), "{bad} accepted");
        }
    }
}
