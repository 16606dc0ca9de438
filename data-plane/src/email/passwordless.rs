//! Sign-in by email, the asking half: a six-digit code (`email-otp`, 10 minutes, 5 wrong
//! codes kill it) or a link (`magic-link`, 15 minutes, single-use). The
//! request endpoints always answer `204` (the lookup and the email happen
//! after the answer); `create_user: true` lets an unknown address sign up
//! this way. Proving the mailbox verifies the address. A user with a second
//! factor gets `mfa_required`, as after a password.

use axum::extract::State;
use axum::http::StatusCode;
use identity_shared::audit::{self, Event, Outcome};
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::http;
use identity_shared::settings::parse_origin;
use identity_shared::templates::{TemplateKind, Vars};
use serde::Deserialize;
use serde_json::json;

use crate::DataState;
use crate::audit::event;
use crate::email::send;
use crate::email::send::after_answer;
use crate::input::Email;
use crate::request::client::Client;
use crate::request::resolve::Resolved;
use crate::store::one_time_codes::{EMAIL_OTP, MAGIC_LINK};
use crate::store::users;

const OTP_TTL_MS: i64 = 10 * 60 * 1000;
const LINK_TTL_MS: i64 = 15 * 60 * 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtpRequestBody {
    email: String,
    #[serde(default)]
    create_user: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkRequestBody {
    email: String,
    redirect_to: Option<String>,
    #[serde(default)]
    create_user: bool,
}

/// What a request asks to send.
struct Ask {
    purpose: &'static str,
    email: Email,
    create_user: bool,
    redirect_to: Option<String>,
}

pub async fn otp_request(
    State(state): State<DataState>,
    resolved: Resolved,
    client: Client,
    http::Json(body): http::Json<OtpRequestBody>,
) -> ApiResult<StatusCode> {
    let email = admit(&state, &resolved, &client, &body.email)?;
    let ask = Ask {
        purpose: EMAIL_OTP,
        email,
        create_user: body.create_user,
        redirect_to: None,
    };
    answer_then_send(state, resolved, client, ask)
}

pub async fn link_request(
    State(state): State<DataState>,
    resolved: Resolved,
    client: Client,
    http::Json(body): http::Json<LinkRequestBody>,
) -> ApiResult<StatusCode> {
    let email = admit(&state, &resolved, &client, &body.email)?;
    let redirect_to = body
        .redirect_to
        .as_deref()
        .map(|r| allowed_redirect(&resolved, r))
        .transpose()?;
    let ask = Ask {
        purpose: MAGIC_LINK,
        email,
        create_user: body.create_user,
        redirect_to,
    };
    answer_then_send(state, resolved, client, ask)
}

/// Rate limit, delivery configured, a valid address.
fn admit(state: &DataState, resolved: &Resolved, client: &Client, email: &str) -> ApiResult<Email> {
    send::limit(state, resolved, client)?;
    send::require_email(state)?;
    let email = Email::parse(email)?;
    resolved.project.require_no_sso(&email.normalized)?;
    Ok(email)
}

/// `redirect_to` must be a URL on one of the project's allowed origins.
fn allowed_redirect(resolved: &Resolved, url: &str) -> ApiResult<String> {
    let invalid = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_redirect",
            "redirect_to must be a URL on one of the project's allowed origins",
        )
    };
    if url.len() > 2048 || url.chars().any(|c| c.is_control() || c == ' ') {
        return Err(invalid());
    }
    let (scheme, rest) = url.split_once("://").ok_or_else(invalid)?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let origin = parse_origin(&format!("{scheme}://{}", &rest[..end])).ok_or_else(invalid)?;
    if resolved.project.settings.allowed_origins.contains(&origin) {
        Ok(url.to_string())
    } else {
        Err(invalid())
    }
}

fn answer_then_send(
    state: DataState,
    resolved: Resolved,
    client: Client,
    ask: Ask,
) -> ApiResult<StatusCode> {
    let task_state = state.clone();
    after_answer(&state, ask.purpose, async move {
        send_sign_in(&task_state, &resolved, &client, &ask).await
    });
    Ok(StatusCode::NO_CONTENT)
}

async fn send_sign_in(
    state: &DataState,
    resolved: &Resolved,
    client: &Client,
    ask: &Ask,
) -> ApiResult<bool> {
    let project = &resolved.project;
    let mut tx = state.shard(resolved)?.scope(&project.id).await?;
    let user = users::find_by_email(&mut tx, &project.id, &ask.email.normalized).await?;
    if user.is_none() && !ask.create_user {
        return Ok(false);
    }
    tx.lock_key(&format!("email:{}:{}", project.id, ask.email.normalized))
        .await?;
    if !send::under_cap(
        state,
        &mut tx,
        &project.id,
        if ask.purpose == EMAIL_OTP {
            TemplateKind::EmailCode
        } else {
            TemplateKind::MagicLink
        },
        &ask.email.normalized,
        project.settings.messaging.emails_per_address_per_hour,
        3_600_000,
    )
    .await?
    {
        return Ok(false);
    }
    let to = user
        .as_ref()
        .map_or(ask.email.typed.as_str(), |u| u.email.as_str());
    let data = json!({"create_user": ask.create_user, "typed": ask.email.typed}).to_string();
    let by_code = ask.purpose == EMAIL_OTP;
    let issued = send::issue(
        state,
        &mut tx,
        &project.id,
        &send::Issue {
            purpose: ask.purpose,
            // None for an account not created yet: found by address.
            user_id: user.as_ref().map(|u| u.id.as_str()),
            email: Some(&ask.email.normalized),
            target: ask.redirect_to.as_deref(),
            data: Some(&data),
            ttl_ms: if by_code { OTP_TTL_MS } else { LINK_TTL_MS },
            link: !by_code,
            code: by_code,
        },
    )
    .await?;
    // `redirect_to` stays out of the link (an app must not trust one read
    // from its own URL): the verification answers with it.
    let (kind, var, value, expires_in) = match (issued.code, issued.token) {
        (Some(code), _) => (TemplateKind::EmailCode, "code", code, "10 minutes"),
        (None, token) => (
            TemplateKind::MagicLink,
            "link",
            send::link(state, project, "/magic-link", &token.unwrap_or_default()),
            "15 minutes",
        ),
    };
    send::queue_email(
        state,
        &mut tx,
        project,
        kind,
        to,
        &ask.email.normalized,
        Vars::new()
            .with("email", to)
            .with(var, &value)
            .with("expires_in", expires_in),
    )
    .await?;
    let ip = client.ip_text();
    audit::record(
        &mut tx,
        Event {
            subject: user.as_ref().map(|u| u.id.as_str()),
            data: json!({"method": ask.purpose, "new_user": user.is_none()}),
            ..event(resolved, client, &ip, "login.code_sent", Outcome::Success)
        },
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}
