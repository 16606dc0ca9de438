//! Stepping a session up: `POST /v1/auth/mfa/verify` (a second factor) and
//! `POST /v1/auth/reauthenticate` (the password, for users without one).

use crate::DataState;
use crate::mfa::stepup::{
    Factor, Proved, invalid_code_401, mfa_rate_limit, prove, record, reserve_attempt,
};
use crate::password::check::{check_password, invalid_credentials, record_password_failure};
use crate::password::hashing::Verified;
use crate::request::caller::Caller;
use crate::request::client::Client;
use crate::request::limits::rate_limit;
use crate::sessions::manage::load_user;
use crate::store::login_failures;
use crate::store::mfa;
use crate::store::sessions;
use axum::extract::State;
use axum::http::StatusCode;
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::http;
use identity_shared::secret::Secret;
use serde::Deserialize;
use serde_json::json;

/// `POST /v1/auth/mfa/verify`: a right code (or recovery code) steps the
/// session up.
pub async fn verify(
    State(state): State<DataState>,
    caller: Caller,
    client: Client,
    http::Json(factor): http::Json<Factor>,
) -> ApiResult<StatusCode> {
    factor.check_shape()?;
    mfa_rate_limit(&state, &caller.resolved, &client)?;
    let user = &caller.view.user;
    if !user.mfa_enabled {
        return Err(ApiError::conflict(
            "totp_not_enabled",
            "this account has no second factor: use POST /v1/auth/reauthenticate",
        ));
    }
    let attempt = reserve_attempt(&state, &caller.resolved, &client, user).await?;
    let project_id = &caller.resolved.project.id;
    let mut tx = state.shard(&caller.resolved)?.scope(project_id).await?;
    let bound_to = format!("session:{}", caller.claims.sid);
    let Some(proved) = prove(
        &state,
        &mut tx,
        &caller.resolved.project,
        &user.id,
        &bound_to,
        &factor,
    )
    .await?
    else {
        // Nothing was spent; the reserved attempt stays as a failure.
        record(
            &mut tx,
            &caller,
            &client,
            "mfa.step_up.failed",
            json!({"locked": attempt.locks_on_failure()}),
        )
        .await?;
        tx.commit().await?;
        return Err(invalid_code_401());
    };
    attempt.succeeded(&mut tx).await?;
    sessions::mark_verified(&mut tx, project_id, &caller.claims.sid).await?;
    if proved == Proved::RecoveryCode {
        let remaining = mfa::recovery_codes_remaining(&mut tx, project_id, &user.id).await?;
        record(
            &mut tx,
            &caller,
            &client,
            "mfa.recovery_code.used",
            json!({"remaining": remaining}),
        )
        .await?;
    }
    record(
        &mut tx,
        &caller,
        &client,
        "mfa.step_up",
        json!({"method": proved.name()}),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
pub struct ReauthenticateBody {
    password: Secret<String>,
}

/// `POST /v1/auth/reauthenticate`: the password steps up a session whose
/// user has no second factor (rate limited and lockout-counted like login).
pub async fn reauthenticate(
    State(state): State<DataState>,
    caller: Caller,
    client: Client,
    http::Json(body): http::Json<ReauthenticateBody>,
) -> ApiResult<StatusCode> {
    let (user, _) = load_user(&state, &caller).await?;
    if user.mfa_enabled {
        return Err(ApiError::forbidden(
            "step_up_required",
            "this account has a second factor: step up with POST /v1/auth/mfa/verify",
        ));
    }
    rate_limit(
        &state,
        &caller.resolved,
        &client,
        "login",
        caller
            .resolved
            .project
            .settings
            .rate_limits
            .login_per_minute,
    )?;
    let (verified, attempt) = check_password(
        &state,
        &caller.resolved,
        &client,
        &user.email_normalized,
        Some(&user),
        body.password.into_inner(),
    )
    .await?;
    let project_id = &caller.resolved.project.id;
    let mut tx = state.shard(&caller.resolved)?.scope(project_id).await?;
    if verified == Verified::No {
        record_password_failure(
            &mut tx,
            &caller.resolved,
            &client,
            Some(&user.id),
            "session.reauthenticate_failed",
            &attempt,
        )
        .await?;
        tx.commit().await?;
        return Err(invalid_credentials());
    }
    login_failures::succeeded(&mut tx, &attempt).await?;
    sessions::mark_verified(&mut tx, project_id, &caller.claims.sid).await?;
    record(
        &mut tx,
        &caller,
        &client,
        "session.reauthenticated",
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
