//! Bans (secret key): `POST /v1/users/{id}/ban {reason?, until?}` ends
//! every session of the user at once (on every node, through the session
//! cache's invalidation) and refuses every sign-in with `403 user_banned`
//! until it ends or `POST /v1/users/{id}/unban` lifts it.

use axum::Json;
use axum::extract::{Path, State};
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::http;
use identity_shared::schema::Users;
use identity_shared::time::{now_ms, parse_rfc3339};
use serde::Deserialize;
use serde_json::json;

use crate::DataState;
use crate::request::client::Client;
use crate::request::resolve::{Resolved, require_secret};
use crate::store::users::{self, UserRow};
use crate::store::{mfa, one_time_codes, sessions, trusted_browsers};
use crate::views::UserEnvelope;

/// `403 user_banned`: what every way in answers a banned user.
pub fn user_banned() -> ApiError {
    ApiError::forbidden("user_banned", "this account is banned")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BanBody {
    reason: Option<String>,
    /// RFC 3339; absent: until lifted.
    until: Option<String>,
}

fn invalid(message: &str) -> ApiError {
    ApiError::unprocessable("invalid_ban", message.to_string())
}

/// The user, under their credentials lock (the lock every new session
/// takes: a sign-in cannot slip a session past the ban).
async fn locked_user(
    tx: &mut identity_shared::db::Tx,
    project_id: &str,
    id: &str,
) -> ApiResult<UserRow> {
    users::lock_credentials(tx, project_id, id).await?;
    current(tx, project_id, id).await
}

/// The user as it now stands; `404 not_found`.
async fn current(
    tx: &mut identity_shared::db::Tx,
    project_id: &str,
    id: &str,
) -> ApiResult<UserRow> {
    users::find(tx, project_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))
}

pub async fn ban(
    State(state): State<DataState>,
    resolved: Resolved,
    client: Client,
    Path(id): Path<String>,
    http::Json(body): http::Json<BanBody>,
) -> ApiResult<Json<UserEnvelope>> {
    let actor = require_secret(&resolved)?;
    let now = now_ms();
    let reason = body
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    if reason.is_some_and(|r| r.chars().count() > 500 || r.chars().any(char::is_control)) {
        return Err(invalid(
            "reason is at most 500 characters without control characters",
        ));
    }
    let until = match body.until.as_deref() {
        None => None,
        Some(text) => match parse_rfc3339(text) {
            Some(t) if t > now => Some(t),
            Some(_) => return Err(invalid("until must be in the future")),
            None => return Err(invalid("until must be an RFC 3339 time")),
        },
    };
    let project_id = resolved.project.id.clone();
    let mut tx = state.shard(&resolved)?.scope(&project_id).await?;
    let user = locked_user(&mut tx, &project_id, &id).await?;
    users::update(
        &mut tx,
        &project_id,
        &user.id,
        vec![
            (Users::BannedAt, now.into()),
            (Users::BanReason, reason.map(str::to_string).into()),
            (Users::BannedUntil, until.into()),
        ],
    )
    .await?;
    let revoked =
        sessions::revoke(&mut tx, &project_id, &user.id, None, None, "user_banned").await?;
    // Nothing half-way through a sign-in survives either.
    trusted_browsers::forget_all(&mut tx, &project_id, &user.id).await?;
    mfa::delete_challenges(&mut tx, &project_id, &user.id).await?;
    one_time_codes::void_all(&mut tx, &project_id, &user.id, now).await?;
    super::audit_for_user(
        &mut tx,
        &resolved,
        &client,
        &actor,
        &user.id,
        "user.banned",
        json!({"reason": reason, "until": body.until, "sessions_revoked": revoked.len()}),
    )
    .await?;
    let user = current(&mut tx, &project_id, &user.id).await?;
    tx.commit().await?;
    Ok(Json(UserEnvelope::for_server(&user)))
}

pub async fn unban(
    State(state): State<DataState>,
    resolved: Resolved,
    client: Client,
    Path(id): Path<String>,
) -> ApiResult<Json<UserEnvelope>> {
    let actor = require_secret(&resolved)?;
    let project_id = resolved.project.id.clone();
    let mut tx = state.shard(&resolved)?.scope(&project_id).await?;
    let user = locked_user(&mut tx, &project_id, &id).await?;
    users::update(
        &mut tx,
        &project_id,
        &user.id,
        vec![
            (Users::BannedAt, Option::<i64>::None.into()),
            (Users::BanReason, Option::<String>::None.into()),
            (Users::BannedUntil, Option::<i64>::None.into()),
        ],
    )
    .await?;
    super::audit_for_user(
        &mut tx,
        &resolved,
        &client,
        &actor,
        &user.id,
        "user.unbanned",
        json!({"was_banned": user.is_banned(now_ms())}),
    )
    .await?;
    let user = current(&mut tx, &project_id, &user.id).await?;
    tx.commit().await?;
    Ok(Json(UserEnvelope::for_server(&user)))
}
