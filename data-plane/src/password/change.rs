//! `POST /v1/auth/password/change`.

use crate::DataState;
use crate::audit::event;
use crate::password::check::{check_password, invalid_credentials, record_password_failure};
use crate::password::hashing::Verified;
use crate::password::policy;
use crate::request::caller::Caller;
use crate::request::client::Client;
use crate::request::limits::rate_limit;
use crate::sessions::manage::load_user;
use crate::store::login_failures::{self};
use crate::store::mfa;
use crate::store::sessions::{self};
use crate::store::trusted_browsers;
use crate::store::users::{self};
use axum::extract::State;
use axum::http::StatusCode;
use identity_shared::audit::{self, Event, Outcome};
use identity_shared::error::ApiResult;
use identity_shared::http::{self};
use identity_shared::secret::Secret;
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordBody {
    current_password: Secret<String>,
    new_password: Secret<String>,
    #[serde(default)]
    sign_out_other_sessions: bool,
}

pub async fn change_password(
    State(state): State<DataState>,
    caller: Caller,
    client: Client,
    http::Json(body): http::Json<ChangePasswordBody>,
) -> ApiResult<StatusCode> {
    // Every password check is rate limited like a login and counts toward
    // the same lockout.
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
    policy::validate_presented(body.current_password.expose())?;
    policy::validate_new(body.new_password.expose())?;
    let (user, _) = load_user(&state, &caller).await?;
    let project_id = caller.resolved.project.id.clone();
    let ip = client.ip_text();
    let (verified, attempt) = check_password(
        &state,
        &caller.resolved,
        &client,
        &user.email_normalized,
        Some(&user),
        body.current_password.into_inner(),
    )
    .await?;
    if matches!(verified, Verified::No) || user.password_hash.is_none() {
        let mut tx = state.shard(&caller.resolved)?.scope(&project_id).await?;
        record_password_failure(
            &mut tx,
            &caller.resolved,
            &client,
            Some(&user.id),
            "password.change_failed",
            &attempt,
        )
        .await?;
        tx.commit().await?;
        return Err(invalid_credentials());
    }
    let db = state.shard(&caller.resolved)?;
    // The current password was right: whatever happens next, this check
    // must not count as a failure.
    let hash = match state
        .hasher
        .hash(&project_id, body.new_password.into_inner())
        .await
    {
        Ok(hash) => hash,
        Err(e) => {
            let mut tx = db.scope(&project_id).await?;
            login_failures::succeeded(&mut tx, &attempt).await?;
            tx.commit().await?;
            return Err(e);
        }
    };
    let mut tx = db.scope(&project_id).await?;
    login_failures::succeeded(&mut tx, &attempt).await?;
    // Another change since the check: that one stands.
    if users::lock_password(
        &mut tx,
        &project_id,
        &user.id,
        user.password_hash.as_deref(),
    )
    .await?
    .is_none()
    {
        tx.commit().await?;
        return Err(invalid_credentials());
    }
    users::set_password_hash(&mut tx, &project_id, &user.id, &hash).await?;
    // A challenge issued to the old password must not be answered now.
    mfa::delete_challenges(&mut tx, &project_id, &user.id).await?;
    trusted_browsers::forget_all(&mut tx, &project_id, &user.id).await?;
    let revoked = if body.sign_out_other_sessions {
        sessions::revoke(
            &mut tx,
            &project_id,
            &user.id,
            None,
            Some(&caller.claims.sid),
            "password_changed",
        )
        .await?
    } else {
        Vec::new()
    };
    audit::record(
        &mut tx,
        Event {
            actor: Some(&user.id),
            subject: Some(&user.id),
            data: json!({"sessions_revoked": revoked}),
            ..event(
                &caller.resolved,
                &client,
                &ip,
                "password.changed",
                Outcome::Success,
            )
        },
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
