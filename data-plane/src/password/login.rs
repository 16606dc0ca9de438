//! `POST /v1/auth/login`.

use crate::DataState;
use crate::audit::event;
use crate::input::Email;
use crate::mfa::challenge::{require_second_factor, trusted_browser};
use crate::password::check::{
    check_password_by_email, invalid_credentials, record_password_failure, signing_in_from,
};
use crate::password::hashing::Verified;
use crate::password::policy;
use crate::request::client::Client;
use crate::request::limits::rate_limit;
use crate::request::resolve::Resolved;
use crate::sessions::issue::{signed_in, start_session};
use crate::store::login_failures::{self};
use crate::store::users::{self};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use identity_shared::audit::{self, Event, Outcome};
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::http::{self};
use identity_shared::secret::Secret;
use serde::Deserialize;
use serde_json::json;

// ---- login ----

#[derive(Debug, Deserialize)]
pub struct LoginBody {
    email: String,
    password: Secret<String>,
    /// From an earlier challenge with `remember_browser` (bearer transport;
    /// browsers on cookie transport send the `identity_tb` cookie).
    trusted_browser_token: Option<Secret<String>>,
}

pub async fn login(
    State(state): State<DataState>,
    resolved: Resolved,
    client: Client,
    headers: HeaderMap,
    http::Json(body): http::Json<LoginBody>,
) -> ApiResult<Response> {
    rate_limit(
        &state,
        &resolved,
        &client,
        "login",
        resolved.project.settings.rate_limits.login_per_minute,
    )?;
    let transport = signing_in_from(&state, &resolved, &headers)?;
    policy::validate_presented(body.password.expose())?;
    // A malformed address cannot belong to an account: say so plainly.
    let email = Email::parse(&body.email)
        .map_err(|_| ApiError::invalid_request("email is not a valid address"))?;
    resolved.project.require_no_sso(&email.normalized)?;
    let project_id = resolved.project.id.clone();
    let db = state.shard(&resolved)?;
    let ip = client.ip_text();

    let (user, verified, attempt) = check_password_by_email(
        &state,
        &resolved,
        &client,
        &email.normalized,
        body.password.into_inner(),
    )
    .await?;

    let mut tx = db.scope(&project_id).await?;
    // The user as stored now, if the password checked is still theirs (read
    // again under the lock: a second factor turned on meanwhile counts).
    let current = match (&user, &verified) {
        (Some(user), Verified::Yes | Verified::YesRehashed(_)) => {
            users::lock_password(
                &mut tx,
                &project_id,
                &user.id,
                user.password_hash.as_deref(),
            )
            .await?
        }
        _ => None,
    };
    let user = match (current, &verified) {
        (Some(fresh), Verified::Yes | Verified::YesRehashed(_)) => {
            if let Verified::YesRehashed(new_hash) = &verified {
                users::set_password_hash(&mut tx, &project_id, &fresh.id, new_hash).await?;
            }
            fresh
        }
        _ => {
            let subject = user.as_ref().map(|u| u.id.as_str());
            record_password_failure(
                &mut tx,
                &resolved,
                &client,
                subject,
                "login.failed",
                &attempt,
            )
            .await?;
            tx.commit().await?;
            return Err(invalid_credentials());
        }
    };
    let presented = body
        .trusted_browser_token
        .as_ref()
        .map(|t| t.expose().as_str());
    let trusted = user.mfa_enabled
        && trusted_browser(&mut tx, &resolved, &client, &headers, presented, &user).await?;
    if user.mfa_enabled && !trusted {
        // The password was right, but it is only the first factor: the
        // pair's failures stay counted (the codes that follow are judged by
        // the same lockout), and only this evaluation is released.
        let answer = require_second_factor(&mut tx, &resolved, &client, &user, "pwd").await?;
        tx.commit().await?;
        if let Err(e) = login_failures::release(db, &attempt).await {
            tracing::warn!(error = %e, "could not release a lockout reservation");
        }
        return Ok(answer);
    }
    login_failures::succeeded(&mut tx, &attempt).await?;
    let (session, refresh_value) =
        start_session(&mut tx, &resolved, &user, &client, &["pwd"]).await?;
    audit::record(
        &mut tx,
        Event {
            actor: Some(&user.id),
            subject: Some(&user.id),
            data: json!({"session_id": session.id, "rehashed": matches!(verified, Verified::YesRehashed(_)), "trusted_browser": trusted}),
            ..event(&resolved, &client, &ip, "login.succeeded", Outcome::Success)
        },
    )
    .await?;
    tx.commit().await?;
    signed_in(
        &state,
        &resolved,
        transport,
        StatusCode::OK,
        &user,
        &session,
        &refresh_value,
    )
    .await
}
