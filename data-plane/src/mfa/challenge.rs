//! The login challenge: a first factor of a user with a second factor ends
//! in `mfa_required` and an `mfa_token` (5 minutes, single-use, dead after
//! five wrong codes); `POST /v1/auth/mfa/challenge` answers it with a code
//! or a recovery code and signs in.

use crate::DataState;
use crate::audit::event;
use crate::mfa::stepup::{
    Factor, Proved, invalid_code_401, mfa_rate_limit, prove, reserve_attempt,
};
use crate::password::check::signing_in_from;
use crate::request::client::Client;
use crate::request::resolve::Resolved;
use crate::request::transport;
use crate::sessions::issue::{Extras, signed_in_trusting, start_session};
use crate::store::mfa;
use crate::store::passkeys;
use crate::store::trusted_browsers;
use crate::store::users::{self, UserRow};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use identity_shared::audit::{self, Event, Outcome};
use identity_shared::crypto::{random_token, sha256_hex};
use identity_shared::db::Tx;
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::http;
use identity_shared::secret::Secret;
use serde::Deserialize;
use serde_json::json;

/// How long an `mfa_token` can be answered.
pub const CHALLENGE_TTL_MS: i64 = 5 * 60 * 1000;

/// Ends a first factor (`first_factor`: its `amr` value) of a user with a
/// second factor: stores a challenge in `tx` and returns the answer the
/// client gets instead of tokens.
pub async fn require_second_factor(
    tx: &mut Tx,
    resolved: &Resolved,
    client: &Client,
    user: &UserRow,
    first_factor: &str,
) -> ApiResult<Response> {
    let project_id = &resolved.project.id;
    let token = random_token();
    mfa::create_challenge(
        tx,
        project_id,
        &sha256_hex(token.as_bytes()),
        &user.id,
        first_factor,
        CHALLENGE_TTL_MS,
    )
    .await?;
    let mut methods = Vec::new();
    if mfa::totp(tx, project_id, &user.id)
        .await?
        .is_some_and(|t| t.confirmed_at.is_some())
    {
        methods.push("totp");
    }
    if mfa::recovery_codes_remaining(tx, project_id, &user.id).await? > 0 {
        methods.push("recovery_code");
    }
    if !passkeys::of_user(tx, project_id, &user.id)
        .await?
        .is_empty()
    {
        methods.push("passkey");
    }
    let ip = client.ip_text();
    audit::record(
        tx,
        Event {
            subject: Some(&user.id),
            data: json!({"first_factor": first_factor}),
            ..event(
                resolved,
                client,
                &ip,
                "mfa.challenge.issued",
                Outcome::Success,
            )
        },
    )
    .await?;
    Ok((
        StatusCode::OK,
        Json(json!({"mfa_required": true, "mfa_token": token, "methods": methods})),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
pub struct ChallengeBody {
    mfa_token: Secret<String>,
    #[serde(flatten)]
    factor: Factor,
    /// Trust this browser: its next logins skip the challenge.
    #[serde(default)]
    remember_browser: bool,
}

fn token_invalid() -> ApiError {
    ApiError::unauthorized(
        "mfa_token_invalid",
        "the mfa_token is unknown, expired, used, or had five wrong codes: sign in again",
    )
}

/// `POST /v1/auth/mfa/challenge`.
pub async fn challenge(
    State(state): State<DataState>,
    resolved: Resolved,
    client: Client,
    headers: HeaderMap,
    http::Json(body): http::Json<ChallengeBody>,
) -> ApiResult<Response> {
    let transport = signing_in_from(&state, &resolved, &headers)?;
    body.factor.check_shape()?;
    mfa_rate_limit(&state, &resolved, &client)?;
    let project_id = resolved.project.id.clone();
    let token_hash = sha256_hex(body.mfa_token.expose().as_bytes());
    let db = state.shard(&resolved)?;
    let (found, user) = {
        let mut tx = db.scope(&project_id).await?;
        let found = mfa::open_challenge(&mut tx, &project_id, &token_hash).await?;
        let user = match &found {
            Some(c) => users::find(&mut tx, &project_id, &c.user_id).await?,
            None => None,
        };
        tx.commit().await?;
        (found, user)
    };
    let (Some(found), Some(user)) = (found, user) else {
        return Err(token_invalid());
    };
    let attempt = reserve_attempt(&state, &resolved, &client, &user).await?;
    let mut tx = db.scope(&project_id).await?;
    let bound_to = format!("mfa:{}", found.id);
    let proved = prove(
        &state,
        &mut tx,
        &resolved.project,
        &user.id,
        &bound_to,
        &body.factor,
    )
    .await?;
    let ip = client.ip_text();
    let Some(proved) = proved else {
        mfa::fail_challenge(&mut tx, &project_id, &found.id).await?;
        audit::record(
            &mut tx,
            Event {
                subject: Some(&user.id),
                data: json!({"attempts": found.attempts + 1, "locked": attempt.locks_on_failure()}),
                ..event(
                    &resolved,
                    &client,
                    &ip,
                    "mfa.challenge.failed",
                    Outcome::Failure,
                )
            },
        )
        .await?;
        tx.commit().await?;
        return Err(invalid_code_401());
    };
    if !mfa::consume_challenge(&mut tx, &project_id, &found.id).await? {
        // Answered by another request first, or just expired: nothing
        // spent here counts (the transaction is dropped).
        return Err(token_invalid());
    }
    attempt.succeeded(&mut tx).await?;
    let mut amr = vec![found.first_factor.as_str()];
    amr.extend(proved.amr());
    amr.push("mfa");
    let (session, refresh_value) = start_session(&mut tx, &resolved, &user, &client, &amr).await?;
    let trusted = if body.remember_browser {
        let token = random_token();
        trusted_browsers::create(
            &mut tx,
            &project_id,
            &user.id,
            &sha256_hex(token.as_bytes()),
            client.user_agent.as_deref(),
            resolved.project.settings.trusted_browser_ttl_seconds,
        )
        .await?;
        Some(token)
    } else {
        None
    };
    if proved == Proved::RecoveryCode {
        let remaining = mfa::recovery_codes_remaining(&mut tx, &project_id, &user.id).await?;
        audit::record(
            &mut tx,
            Event {
                actor: Some(&user.id),
                subject: Some(&user.id),
                data: json!({"remaining": remaining}),
                ..event(
                    &resolved,
                    &client,
                    &ip,
                    "mfa.recovery_code.used",
                    Outcome::Success,
                )
            },
        )
        .await?;
    }
    audit::record(
        &mut tx,
        Event {
            actor: Some(&user.id),
            subject: Some(&user.id),
            data: json!({"session_id": session.id, "method": proved.name(), "remember_browser": trusted.is_some()}),
            ..event(
                &resolved,
                &client,
                &ip,
                "mfa.challenge.succeeded",
                Outcome::Success,
            )
        },
    )
    .await?;
    tx.commit().await?;
    signed_in_trusting(
        &state,
        &resolved,
        transport,
        StatusCode::OK,
        &user,
        &session,
        &refresh_value,
        Extras {
            trusted_browser: trusted.as_deref(),
            ..Extras::default()
        },
    )
    .await
}

/// Whether the login request comes from a browser this user trusted (its
/// token in `trusted_browser_token` or the `identity_tb` cookie, for the
/// same user agent).
pub async fn trusted_browser(
    tx: &mut Tx,
    resolved: &Resolved,
    client: &Client,
    headers: &HeaderMap,
    presented: Option<&str>,
    user: &UserRow,
) -> ApiResult<bool> {
    let token = presented.or_else(|| transport::cookie(headers, transport::TRUSTED_BROWSER_COOKIE));
    let Some(token) = token.filter(|t| !t.is_empty() && t.len() <= 128) else {
        return Ok(false);
    };
    Ok(trusted_browsers::is_trusted(
        tx,
        &resolved.project.id,
        &user.id,
        &sha256_hex(token.as_bytes()),
        client.user_agent.as_deref(),
    )
    .await?)
}
