//! Writing messages into the outbox, inside the flow's transaction: the
//! template rendered with the project's overrides, the payload sealed,
//! the recipient kept as a masked hint and a keyed hash (for the caps).
//! Also the flows' secrets: link tokens, six-digit codes and their hashes.

use std::future::Future;

use identity_shared::crypto::{b64url, hmac_sha256, random_bytes, random_token, sha256_hex};
use identity_shared::db::Tx;
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::ids::new_id;
use identity_shared::templates::{self, TemplateKind, Vars};
use identity_shared::time::now_ms;

use crate::DataState;
use crate::request::client::Client;
use crate::request::limits::rate_limit;
use crate::request::resolve::ProjectInfo;
use crate::request::resolve::Resolved;
use crate::store::one_time_codes as codes;
use crate::store::outbox;
use crate::workers::outbox::{EMAIL, EmailPayload, SMS, SmsPayload, payload_context};

/// Email flows refuse at once when no email can leave this node.
pub fn require_email(state: &DataState) -> ApiResult<()> {
    if state.outbox.email_ready() {
        Ok(())
    } else {
        Err(ApiError::unavailable(
            "email_not_configured",
            "this service has no email delivery configured (IDENTITY_SMTP_URL)",
        ))
    }
}

/// Phone flows refuse at once when no SMS can leave this node.
pub fn require_sms(state: &DataState) -> ApiResult<()> {
    if state.outbox.sms_ready() {
        Ok(())
    } else {
        Err(ApiError::unavailable(
            "sms_not_configured",
            "this service has no SMS delivery configured (IDENTITY_SMS_WEBHOOK_URL)",
        ))
    }
}

/// The keyed hash of a recipient (canonical email or E.164 number).
pub fn recipient_hash(state: &DataState, recipient: &str) -> String {
    hex_of(&hmac_sha256(&state.message_key, recipient.as_bytes()))
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `a•••@example.com`, `+44•••••89`: enough for an operator to recognise.
pub fn mask(recipient: &str) -> String {
    if let Some((local, domain)) = recipient.rsplit_once('@') {
        let first: String = local.chars().take(1).collect();
        return format!("{first}•••@{domain}");
    }
    let chars: Vec<char> = recipient.chars().collect();
    let head: String = chars.iter().take(3).collect();
    let tail: String = chars.iter().skip(chars.len().saturating_sub(2)).collect();
    format!("{head}•••{tail}")
}

/// Queues an email of `kind` to `to` (as typed), rendered for `project`.
/// `canonical` is the address's canonical form (for the per-address caps).
pub async fn queue_email(
    state: &DataState,
    tx: &mut Tx,
    project: &ProjectInfo,
    kind: TemplateKind,
    to: &str,
    canonical: &str,
    vars: Vars<'_>,
) -> ApiResult<()> {
    let vars = vars.with("project_name", &project.name);
    let rendered = templates::render(kind, project.settings.email_templates.get(&kind), &vars);
    let payload = EmailPayload {
        to: to.to_string(),
        from_name: Some(
            project
                .settings
                .email_from
                .clone()
                .unwrap_or_else(|| project.name.clone()),
        ),
        subject: rendered.subject,
        text: rendered.text,
        html: rendered.html,
    };
    let body = serde_json::to_vec(&payload).map_err(|e| ApiError::internal(e.to_string()))?;
    write(state, tx, project, EMAIL, kind, canonical, &body).await
}

/// Queues an SMS of `kind` to `to` (E.164).
pub async fn queue_sms(
    state: &DataState,
    tx: &mut Tx,
    project: &ProjectInfo,
    kind: TemplateKind,
    to: &str,
    vars: Vars<'_>,
) -> ApiResult<()> {
    let vars = vars.with("project_name", &project.name);
    let rendered = templates::render(kind, project.settings.email_templates.get(&kind), &vars);
    let payload = SmsPayload {
        to: to.to_string(),
        body: rendered.text,
    };
    let body = serde_json::to_vec(&payload).map_err(|e| ApiError::internal(e.to_string()))?;
    write(state, tx, project, SMS, kind, to, &body).await
}

async fn write(
    state: &DataState,
    tx: &mut Tx,
    project: &ProjectInfo,
    channel: &str,
    kind: TemplateKind,
    recipient: &str,
    body: &[u8],
) -> ApiResult<()> {
    let id = new_id("msg");
    let sealed = state
        .master_key
        .seal(body, &payload_context(&project.id, &id));
    outbox::enqueue(
        tx,
        &outbox::NewMessage {
            id: &id,
            project_id: &project.id,
            channel,
            kind: kind.as_str(),
            recipient_hint: &mask(recipient),
            recipient_hash: &recipient_hash(state, recipient),
            payload: &sealed,
            now: now_ms(),
        },
    )
    .await?;
    Ok(())
}

/// Whether `recipient` may be sent another message of `kind` now: under
/// the per-recipient cap (`per_recipient` in `window_ms`; 0: no cap). Each
/// kind has its own count, so requests of one kind (say, sign-in links)
/// cannot use up another's (password resets).
pub async fn under_cap(
    state: &DataState,
    tx: &mut Tx,
    project_id: &str,
    kind: TemplateKind,
    recipient: &str,
    per_recipient: u32,
    window_ms: i64,
) -> ApiResult<bool> {
    let channel = if kind.is_sms() { SMS } else { EMAIL };
    if per_recipient == 0 {
        return Ok(true);
    }
    let n = outbox::count_since(
        tx,
        project_id,
        channel,
        Some(kind.as_str()),
        Some(&recipient_hash(state, recipient)),
        now_ms() - window_ms,
    )
    .await?;
    Ok(n < i64::from(per_recipient))
}

/// Counts a request to an email or phone route against the project's
/// `rate_limits.email_per_minute` for the client's address.
pub fn limit(state: &DataState, resolved: &Resolved, client: &Client) -> ApiResult<()> {
    rate_limit(
        state,
        resolved,
        client,
        "email",
        resolved.project.settings.rate_limits.email_per_minute,
    )
}

/// A new single-use secret to write.
pub struct Issue<'a> {
    pub purpose: &'a str,
    pub user_id: Option<&'a str>,
    /// The canonical address it is sent to or about.
    pub email: Option<&'a str>,
    pub target: Option<&'a str>,
    pub data: Option<&'a str>,
    pub ttl_ms: i64,
    /// A link token, a six-digit code, or both.
    pub link: bool,
    pub code: bool,
}

/// What was issued, in the clear, for the message (never stored).
pub struct Issued {
    pub token: Option<String>,
    pub code: Option<String>,
}

/// Writes a new secret of `i.purpose`, ending the live ones of the same
/// user (or, without a user, the same address): the newest is the only one
/// that works.
pub async fn issue(
    state: &DataState,
    tx: &mut Tx,
    project_id: &str,
    i: &Issue<'_>,
) -> ApiResult<Issued> {
    let now = now_ms();
    codes::void(tx, project_id, i.purpose, i.user_id, i.email, now).await?;
    let id = new_id("otc");
    let (token, token_hash) = if i.link {
        let (token, hash) = new_link_token();
        (Some(token), Some(hash))
    } else {
        (None, None)
    };
    let code = i.code.then(new_code);
    let code_hash = code.as_deref().map(|c| code_hash(state, &id, c));
    codes::insert(
        tx,
        &codes::NewCode {
            id: &id,
            project_id,
            purpose: i.purpose,
            user_id: i.user_id,
            email: i.email,
            target: i.target,
            token_hash: token_hash.as_deref(),
            code_hash: code_hash.as_deref(),
            data: i.data,
            now,
            expires_at: now + i.ttl_ms,
        },
    )
    .await?;
    Ok(Issued { token, code })
}

/// A link token: 32 random bytes, and the SHA-256 hash that is stored.
pub fn new_link_token() -> (String, String) {
    let token = random_token();
    let hash = sha256_hex(token.as_bytes());
    (token, hash)
}

pub fn link_token_hash(token: &str) -> String {
    sha256_hex(token.as_bytes())
}

/// A six-digit code (uniform, no modulo bias worth speaking of: 2^64 draws).
pub fn new_code() -> String {
    let n = u64::from_le_bytes(random_bytes::<8>()) % 1_000_000;
    format!("{n:06}")
}

/// The stored form of a code: HMAC under a key derived from the master key,
/// bound to its row (six digits alone would fall to a table of a million).
pub fn code_hash(state: &DataState, row_id: &str, code: &str) -> String {
    b64url(&hmac_sha256(
        &state.code_key,
        format!("{row_id}:{code}").as_bytes(),
    ))
}

/// A presented code in the canonical form (`123 456`, `123-456` accepted);
/// `None` when it cannot be a code.
pub fn normalize_code(code: &str) -> Option<String> {
    let digits: String = code.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    (digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// Where links of `project` point: its `links_base_url`, else its primary
/// auth domain's origin, else the public base URL.
pub fn link(state: &DataState, project: &ProjectInfo, path: &str, token: &str) -> String {
    let base = match (&project.settings.links_base_url, &project.primary_host) {
        (Some(base), _) => base.clone(),
        (None, Some(host)) => {
            let scheme = if state.config.public_base_url.starts_with("http://") {
                "http"
            } else {
                "https"
            };
            format!("{scheme}://{host}")
        }
        (None, None) => state.config.public_base_url.clone(),
    };
    format!("{base}{path}?token={token}")
}

/// Runs `work` after the answer has gone (see `email`'s note: the always-`204` endpoints). Its
/// failure is logged: the client was told nothing either way.
pub fn after_answer<F>(state: &DataState, what: &'static str, work: F)
where
    F: Future<Output = identity_shared::error::ApiResult<bool>> + Send + 'static,
{
    // At most this many run at once; the rest wait (the per-IP limit bounds
    // how many can pile up).
    static RUNNING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(64);
    let outbox = state.outbox.clone();
    tokio::spawn(async move {
        let Ok(_permit) = RUNNING.acquire().await else {
            return;
        };
        match work.await {
            Ok(true) => outbox.wake(),
            Ok(false) => {}
            Err(e) => tracing::warn!(flow = what, error = %e, "email flow failed after answering"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_masks() {
        for _ in 0..100 {
            let c = new_code();
            assert_eq!(normalize_code(&c).as_deref(), Some(c.as_str()));
        }
        assert_eq!(normalize_code("123 456").as_deref(), Some("123456"));
        assert_eq!(normalize_code("123-456").as_deref(), Some("123456"));
        for bad in ["12345", "1234567", "12a456", "", "١٢٣٤٥٦"] {
            assert_eq!(normalize_code(bad), None, "{bad}");
        }
        assert_eq!(mask("alice@example.com"), "a•••@example.com");
        assert_eq!(mask("+447700900123"), "+44•••23");
    }
}
