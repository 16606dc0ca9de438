//! Password reset: `POST /v1/auth/password/forgot` always answers `204`
//! (the lookup and the email happen after the answer); the link works once,
//! for an hour; `POST /v1/auth/password/reset` sets the new password and
//! ends every session of the user.

use axum::extract::State;
use axum::http::StatusCode;
use identity_shared::audit::{self, Event, Outcome};
use identity_shared::error::ApiResult;
use identity_shared::http;
use identity_shared::secret::Secret;
use identity_shared::templates::{TemplateKind, Vars};
use identity_shared::time::now_ms;
use serde::Deserialize;
use serde_json::json;

use crate::DataState;
use crate::audit::event;
use crate::email::send;
use crate::email::send::after_answer;
use crate::email::verify::{invalid_token, mark_verified, reclaim};
use crate::input::Email;
use crate::password::policy;
use crate::request::client::Client;
use crate::request::resolve::Resolved;
use crate::store::one_time_codes::{self as codes, PASSWORD_RESET};
use crate::store::{mfa, sessions, trusted_browsers, users};

const TTL_MS: i64 = 3600 * 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForgotBody {
    email: String,
}

pub async fn forgot(
    State(state): State<DataState>,
    resolved: Resolved,
    client: Client,
    http::Json(body): http::Json<ForgotBody>,
) -> ApiResult<StatusCode> {
    send::limit(&state, &resolved, &client)?;
    send::require_email(&state)?;
    let email = Email::parse(&body.email)?;
    let task_state = state.clone();
    after_answer(&state, "password.forgot", async move {
        send_reset(&task_state, &resolved, &client, &email).await
    });
    Ok(StatusCode::NO_CONTENT)
}

/// After the answer: the reset email, if the address has an account and is
/// under its cap. True when a message was queued.
async fn send_reset(
    state: &DataState,
    resolved: &Resolved,
    client: &Client,
    email: &Email,
) -> ApiResult<bool> {
    let project = &resolved.project;
    let mut tx = state.shard(resolved)?.scope(&project.id).await?;
    let Some(user) = users::find_by_email(&mut tx, &project.id, &email.normalized).await? else {
        return Ok(false);
    };
    users::lock_credentials(&mut tx, &project.id, &user.id).await?;
    if !send::under_cap(
        state,
        &mut tx,
        &project.id,
        TemplateKind::PasswordReset,
        &user.email_normalized,
        project.settings.messaging.emails_per_address_per_hour,
        3_600_000,
    )
    .await?
    {
        return Ok(false);
    }
    let issued = send::issue(
        state,
        &mut tx,
        &project.id,
        &send::Issue {
            purpose: PASSWORD_RESET,
            user_id: Some(&user.id),
            email: Some(&user.email_normalized),
            target: None,
            data: None,
            ttl_ms: TTL_MS,
            link: true,
            code: false,
        },
    )
    .await?;
    let link = send::link(
        state,
        project,
        "/reset-password",
        &issued.token.unwrap_or_default(),
    );
    send::queue_email(
        state,
        &mut tx,
        project,
        TemplateKind::PasswordReset,
        &user.email,
        &user.email_normalized,
        Vars::new()
            .with("email", &user.email)
            .with("link", &link)
            .with("expires_in", "1 hour"),
    )
    .await?;
    let ip = client.ip_text();
    audit::record(
        &mut tx,
        Event {
            subject: Some(&user.id),
            ..event(
                resolved,
                client,
                &ip,
                "password.reset_requested",
                Outcome::Success,
            )
        },
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    token: Secret<String>,
    new_password: Secret<String>,
}

pub async fn reset(
    State(state): State<DataState>,
    resolved: Resolved,
    client: Client,
    http::Json(body): http::Json<ResetBody>,
) -> ApiResult<StatusCode> {
    send::limit(&state, &resolved, &client)?;
    policy::validate_new(body.new_password.expose())?;
    let project_id = resolved.project.id.clone();
    let token_hash = send::link_token_hash(body.token.expose());
    let db = state.shard(&resolved)?;
    // Judge the token before paying for a hash.
    let row = {
        let mut tx = db.scope_read(&project_id).await?;
        let row = codes::find_by_token(&mut tx, &project_id, PASSWORD_RESET, &token_hash, now_ms())
            .await?;
        tx.commit().await?;
        row.ok_or_else(invalid_token)?
    };
    let hash = state
        .hasher
        .hash(&project_id, body.new_password.into_inner())
        .await?;
    let now = now_ms();
    let user_id = row.user_id.clone().ok_or_else(invalid_token)?;
    let mut tx = db.scope(&project_id).await?;
    users::lock_credentials(&mut tx, &project_id, &user_id).await?;
    let user = users::find(&mut tx, &project_id, &user_id)
        .await?
        .ok_or_else(invalid_token)?;
    // Sent to an address the user has since left, or used meanwhile.
    if row.email.as_deref() != Some(user.email_normalized.as_str())
        || !codes::consume(&mut tx, &project_id, &row.id, now).await?
    {
        return Err(invalid_token());
    }
    // An account whose address nobody had proven: its factors may be
    // someone else's (see `reclaim`).
    let user = if user.email_verified {
        user
    } else {
        reclaim(&mut tx, &resolved, &client, user).await?
    };
    // Every other pending link or code too: an email change requested from
    // a session this reset ends must not outlive it.
    codes::void_all(&mut tx, &project_id, &user.id, now).await?;
    users::set_password_hash(&mut tx, &project_id, &user.id, &hash).await?;
    mfa::delete_challenges(&mut tx, &project_id, &user.id).await?;
    trusted_browsers::forget_all(&mut tx, &project_id, &user.id).await?;
    let revoked =
        sessions::revoke(&mut tx, &project_id, &user.id, None, None, "password_reset").await?;
    let ip = client.ip_text();
    audit::record(
        &mut tx,
        Event {
            actor: Some(&user.id),
            subject: Some(&user.id),
            data: json!({"sessions_revoked": revoked}),
            ..event(&resolved, &client, &ip, "password.reset", Outcome::Success)
        },
    )
    .await?;
    // The link reached the mailbox: the address is proven.
    mark_verified(&state, &mut tx, &resolved, &client, user, "password_reset").await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
