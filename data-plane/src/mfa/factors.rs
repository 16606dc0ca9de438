//! The signed-in user's own factors: what they have, TOTP enrollment and
//! confirmation, disabling it, and new recovery codes.

use crate::DataState;
use crate::mfa::stepup::{
    invalid_code, mfa_rate_limit, now_seconds, open_secret, record, require_step_up,
    reserve_attempt, seal_context, sync_mfa_enabled,
};
use crate::mfa::totp;
use crate::passkeys::manage::PasskeyView;
use crate::request::caller::Caller;
use crate::request::client::Client;
use crate::store::mfa;
use crate::store::passkeys;
use crate::store::sessions;
use crate::store::trusted_browsers;
use crate::store::users;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use identity_shared::db::Tx;
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::http;
use identity_shared::secret::Secret;
use identity_shared::time::now_ms;
use serde::Deserialize;
use serde_json::{Value, json};

/// `GET /v1/auth/mfa`.
pub async fn status(State(state): State<DataState>, caller: Caller) -> ApiResult<Json<Value>> {
    let project_id = &caller.resolved.project.id;
    let user_id = &caller.claims.sub;
    let mut tx = state
        .shard(&caller.resolved)?
        .scope_read(project_id)
        .await?;
    let totp = mfa::totp(&mut tx, project_id, user_id).await?;
    let remaining = mfa::recovery_codes_remaining(&mut tx, project_id, user_id).await?;
    let keys = passkeys::of_user(&mut tx, project_id, user_id).await?;
    tx.commit().await?;
    let keys: Vec<PasskeyView> = keys.iter().map(PasskeyView::of).collect();
    Ok(Json(json!({
        "totp": totp.map(|t| json!({
            "enabled": t.confirmed_at.is_some(),
            "created_at": identity_shared::time::rfc3339(t.created_at),
        })),
        "recovery_codes_remaining": remaining,
        "passkeys": keys,
    })))
}

/// How long a pending secret can be confirmed.
const PENDING_MS: i64 = 10 * 60 * 1000;

/// `POST /v1/auth/mfa/totp/enroll` (step-up: a stolen access token alone
/// must not be able to put the thief's factor on the account): a new
/// pending secret (replacing a pending one), shown once as base32,
/// `otpauth://` URI and QR code.
pub async fn enroll(
    State(state): State<DataState>,
    caller: Caller,
    client: Client,
) -> ApiResult<Json<Value>> {
    let (user, _) = require_step_up(&state, &caller).await?;
    let project = &caller.resolved.project;
    let secret = totp::new_secret();
    let sealed = state
        .master_key
        .seal(&secret, &seal_context(&project.id, &user.id));
    let mut tx = state.shard(&caller.resolved)?.scope(&project.id).await?;
    users::lock_credentials(&mut tx, &project.id, &user.id).await?;
    if !mfa::put_pending_totp(&mut tx, &project.id, &user.id, &sealed).await? {
        return Err(ApiError::conflict(
            "totp_already_enabled",
            "TOTP is already enabled: disable it first",
        ));
    }
    record(&mut tx, &caller, &client, "mfa.totp.enrolled", json!({})).await?;
    tx.commit().await?;
    let uri = totp::otpauth_uri(&secret, &project.name, &user.email);
    Ok(Json(json!({
        "secret": totp::base32(&secret),
        "qr_svg": totp::qr_svg(&uri),
        "otpauth_uri": uri,
    })))
}

#[derive(Debug, Deserialize)]
pub struct CodeBody {
    code: Secret<String>,
}

/// `POST /v1/auth/mfa/totp/confirm` (step-up; lockout-counted like every
/// code): a right code within ten minutes of enrolling turns the pending
/// secret on and returns the ten recovery codes, once.
pub async fn confirm(
    State(state): State<DataState>,
    caller: Caller,
    client: Client,
    http::Json(body): http::Json<CodeBody>,
) -> ApiResult<Json<Value>> {
    mfa_rate_limit(&state, &caller.resolved, &client)?;
    let (user, _) = require_step_up(&state, &caller).await?;
    let project_id = &caller.resolved.project.id;
    let user_id = &user.id;
    let attempt = reserve_attempt(&state, &caller.resolved, &client, &user).await?;
    let mut tx = state.shard(&caller.resolved)?.scope(project_id).await?;
    users::lock_credentials(&mut tx, project_id, user_id).await?;
    let pending = mfa::totp(&mut tx, project_id, user_id)
        .await?
        .filter(|t| t.confirmed_at.is_none() && t.created_at > now_ms() - PENDING_MS)
        .ok_or_else(|| {
            ApiError::conflict(
                "totp_not_pending",
                "no TOTP enrollment is waiting for confirmation (or it is older than ten minutes): enroll again",
            )
        })?;
    let step = open_secret(&state, project_id, user_id, &pending)
        .and_then(|secret| totp::check(&secret, body.code.expose(), now_seconds()));
    let of = mfa::StepOf::Pending {
        secret_sealed: &pending.secret_sealed,
    };
    let confirmed = match step {
        Some(step) => mfa::use_totp_step(&mut tx, project_id, user_id, step, of).await?,
        None => false,
    };
    if !confirmed {
        // Nothing changed; the reserved attempt stays as a failure.
        record(
            &mut tx,
            &caller,
            &client,
            "mfa.totp.confirm_failed",
            json!({}),
        )
        .await?;
        tx.commit().await?;
        return Err(invalid_code());
    }
    attempt.succeeded(&mut tx).await?;
    let codes = new_recovery_codes(&state, &mut tx, project_id, user_id).await?;
    users::set_mfa_enabled(&mut tx, project_id, user_id, true).await?;
    sessions::reload_views(&mut tx, project_id, user_id).await?;
    // Confirming proved the factor: this session is stepped up, and the
    // user's other sessions, which proved only the password, are not.
    sessions::clear_verified_except(&mut tx, project_id, user_id, &caller.claims.sid).await?;
    sessions::mark_verified(&mut tx, project_id, &caller.claims.sid).await?;
    record(&mut tx, &caller, &client, "mfa.totp.confirmed", json!({})).await?;
    tx.commit().await?;
    Ok(Json(json!({ "recovery_codes": codes })))
}

/// `DELETE /v1/auth/mfa/totp` (step-up): removes TOTP and the recovery
/// codes.
pub async fn disable(
    State(state): State<DataState>,
    caller: Caller,
    client: Client,
) -> ApiResult<StatusCode> {
    let (user, _) = require_step_up(&state, &caller).await?;
    let project_id = &caller.resolved.project.id;
    let mut tx = state.shard(&caller.resolved)?.scope(project_id).await?;
    users::lock_credentials(&mut tx, project_id, &user.id).await?;
    if mfa::totp(&mut tx, project_id, &user.id).await?.is_none() {
        return Err(totp_not_enabled());
    }
    // The factor and its outstanding challenges; trusted browsers too. With
    // no passkey left, the recovery codes go and MFA is off.
    mfa::delete_totp(&mut tx, project_id, &user.id).await?;
    mfa::delete_challenges(&mut tx, project_id, &user.id).await?;
    trusted_browsers::forget_all(&mut tx, project_id, &user.id).await?;
    sync_mfa_enabled(&mut tx, project_id, &user.id).await?;
    record(&mut tx, &caller, &client, "mfa.totp.disabled", json!({})).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/auth/mfa/recovery-codes` (step-up): ten new codes; the old
/// ones stop working.
pub async fn regenerate(
    State(state): State<DataState>,
    caller: Caller,
    client: Client,
) -> ApiResult<Json<Value>> {
    let (user, _) = require_step_up(&state, &caller).await?;
    let project_id = &caller.resolved.project.id;
    let mut tx = state.shard(&caller.resolved)?.scope(project_id).await?;
    if !user.mfa_enabled {
        return Err(totp_not_enabled());
    }
    let codes = new_recovery_codes(&state, &mut tx, project_id, &user.id).await?;
    record(
        &mut tx,
        &caller,
        &client,
        "mfa.recovery_codes.regenerated",
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(json!({ "recovery_codes": codes })))
}

async fn new_recovery_codes(
    state: &DataState,
    tx: &mut Tx,
    project_id: &str,
    user_id: &str,
) -> ApiResult<Vec<String>> {
    let codes = totp::new_recovery_codes();
    let hashes: Vec<String> = codes
        .iter()
        .map(|c| totp::recovery_code_hash(&state.recovery_key, user_id, c))
        .collect();
    mfa::replace_recovery_codes(tx, project_id, user_id, &hashes).await?;
    Ok(codes)
}

fn totp_not_enabled() -> ApiError {
    ApiError::conflict("totp_not_enabled", "TOTP is not enabled")
}
