//! What every endpoint that checks a password shares: the lockout
//! reservation around the hash, the audit of failures, and the origin
//! check before session cookies are set (login CSRF).

use crate::DataState;
use crate::audit::event;
use crate::password::hashing::Verified;
use crate::request::client::Client;
use crate::request::csrf;
use crate::request::resolve::Resolved;
use crate::request::transport::{self, Transport};
use crate::store::login_failures::{self, Attempt};
use crate::store::users::{self, UserRow};
use axum::http::HeaderMap;
use identity_shared::audit::{self, Event, Outcome};
use identity_shared::db::Tx;
use identity_shared::error::{ApiError, ApiResult};
use serde_json::json;

/// Checks a presented password under the lockout policy: the evaluation is
/// reserved before any hashing (refused with 429 when locked) and released
/// if the password could not be checked at all. Every endpoint that checks
/// a password goes through here.
pub async fn check_password(
    state: &DataState,
    resolved: &Resolved,
    client: &Client,
    email_normalized: &str,
    user: Option<&UserRow>,
    password: String,
) -> ApiResult<(Verified, Attempt)> {
    let project_id = &resolved.project.id;
    let db = state.shard(resolved)?;
    if !state.hasher.has_room(project_id) {
        return Err(crate::password::queue::busy());
    }
    let key = login_failures::account_key(project_id, email_normalized);
    let attempt = login_failures::reserve(
        db,
        project_id,
        &key,
        &client.ip_key(),
        &client.ip_text(),
        user.map(|u| u.id.as_str()),
    )
    .await??;
    verify_reserved(state, resolved, user, password, attempt).await
}

/// [`check_password`] for a sign-in by email: the account is looked up in
/// the reservation's own transaction (one transaction instead of two).
/// Returns the account as found, if any.
pub async fn check_password_by_email(
    state: &DataState,
    resolved: &Resolved,
    client: &Client,
    email_normalized: &str,
    password: String,
) -> ApiResult<(Option<UserRow>, Verified, Attempt)> {
    let project_id = &resolved.project.id;
    let db = state.shard(resolved)?;
    if !state.hasher.has_room(project_id) {
        return Err(crate::password::queue::busy());
    }
    let key = login_failures::account_key(project_id, email_normalized);
    let mut tx = db.scope(project_id).await?;
    let user = users::find_by_email(&mut tx, project_id, email_normalized).await?;
    let attempt = login_failures::reserve_in(
        &mut tx,
        project_id,
        &key,
        &client.ip_key(),
        &client.ip_text(),
        user.as_ref().map(|u| u.id.as_str()),
    )
    .await??;
    tx.commit().await?;
    let (verified, attempt) =
        verify_reserved(state, resolved, user.as_ref(), password, attempt).await?;
    Ok((user, verified, attempt))
}

/// Hashes the presented password against the user's (the dummy hash for an
/// unknown account or one without a password: the same cost), releasing
/// the reservation if the password could not be checked at all.
async fn verify_reserved(
    state: &DataState,
    resolved: &Resolved,
    user: Option<&UserRow>,
    password: String,
    attempt: Attempt,
) -> ApiResult<(Verified, Attempt)> {
    let project_id = &resolved.project.id;
    let db = state.shard(resolved)?;
    let stored = user.and_then(|u| u.password_hash.clone());
    match state.hasher.verify(project_id, password, stored).await {
        Ok(v) => Ok((v, attempt)),
        Err(e) => {
            if let Err(release) = login_failures::release(db, &attempt).await {
                tracing::warn!(error = %release, "could not release a lockout reservation");
            }
            Err(e)
        }
    }
}

/// Checks the transport header, and that a browser about to receive session
/// cookies was sent by an allowed origin: another site must not be able to
/// sign a visitor in to an account of its choosing (login CSRF).
pub fn signing_in_from(
    state: &DataState,
    resolved: &Resolved,
    headers: &HeaderMap,
) -> ApiResult<Transport> {
    let transport = transport::transport(resolved, headers)?;
    if transport == Transport::Cookie {
        csrf::check_origin(state, resolved, headers)?;
    }
    Ok(transport)
}

/// Audits a failed password check (and the lock it caused, if any); the
/// failure itself was counted when the attempt was reserved.
pub async fn record_password_failure(
    tx: &mut Tx,
    resolved: &Resolved,
    client: &Client,
    subject: Option<&str>,
    kind: &'static str,
    attempt: &Attempt,
) -> ApiResult<()> {
    let ip = client.ip_text();
    audit::record(
        tx,
        Event {
            actor: if kind == "login.failed" {
                None
            } else {
                subject
            },
            subject,
            data: json!({"reason": "invalid_credentials"}),
            ..event(resolved, client, &ip, kind, Outcome::Failure)
        },
    )
    .await?;
    if attempt.locks_on_failure {
        audit::record(
            tx,
            Event {
                subject,
                data: json!({"scope": "account_ip", "minutes": login_failures::WINDOW_MS / 60_000}),
                ..event(resolved, client, &ip, "login.locked", Outcome::Failure)
            },
        )
        .await?;
    }
    Ok(())
}

pub fn invalid_credentials() -> ApiError {
    ApiError::unauthorized(
        "invalid_credentials",
        "the email or password is not correct",
    )
}

#[cfg(test)]
mod tests {
    use crate::password::change::ChangePasswordBody;
    use crate::password::login::LoginBody;
    use crate::password::register::RegisterBody;
    use crate::sessions::refresh::RefreshBody;

    #[test]
    fn request_bodies_never_print_secrets() {
        let login: LoginBody =
            serde_json::from_str(r#"{"email":"a@b.co","password":"hunter2-secret"}"#).unwrap();
        let register: RegisterBody =
            serde_json::from_str(r#"{"email":"a@b.co","password":"hunter2-secret"}"#).unwrap();
        let change: ChangePasswordBody = serde_json::from_str(
            r#"{"current_password":"hunter2-secret","new_password":"hunter3-secret"}"#,
        )
        .unwrap();
        let refresh: RefreshBody =
            serde_json::from_str(r#"{"refresh_token":"rt-hunter2-secret"}"#).unwrap();
        let shown = format!("{login:?} {register:?} {change:?} {refresh:?}");
        assert!(!shown.contains("hunter"), "{shown}");
        assert!(
            shown.contains("a@b.co") && shown.contains("[redacted]"),
            "{shown}"
        );
    }
}
