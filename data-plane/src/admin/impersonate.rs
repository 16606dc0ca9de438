//! `POST /v1/users/{id}/impersonate {reason, ttl_seconds?}` (secret key):
//! support signs in as a user to see what they see. The answer is an
//! access token only (no refresh token), for at most an hour (15 minutes
//! by default), in a session of its own that the user sees in their
//! session list and can end; its claims say who acts (`act: {sub:
//! "operator"}`) and how (`amr: ["imp"]`). The reason is required and
//! audited, with the user as the subject, so it shows in their trail.

use axum::Json;
use axum::extract::{Path, State};
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::http;
use identity_shared::time::{now_ms, rfc3339};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::DataState;
use crate::request::client::Client;
use crate::request::resolve::{Resolved, require_secret};
use crate::store::{sessions, users};
use crate::tokens::TokenExtras;

const DEFAULT_TTL: u32 = 900;
const MAX_TTL: u32 = 3600;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImpersonateBody {
    reason: String,
    ttl_seconds: Option<u32>,
}

pub async fn impersonate(
    State(state): State<DataState>,
    resolved: Resolved,
    client: Client,
    Path(id): Path<String>,
    http::Json(body): http::Json<ImpersonateBody>,
) -> ApiResult<Json<Value>> {
    let actor = require_secret(&resolved)?;
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 || reason.chars().any(char::is_control) {
        return Err(ApiError::unprocessable(
            "invalid_reason",
            "reason is required: 1 to 500 characters without control characters",
        ));
    }
    let ttl = body.ttl_seconds.unwrap_or(DEFAULT_TTL);
    if ttl == 0 || ttl > MAX_TTL {
        return Err(ApiError::unprocessable(
            "invalid_ttl",
            "ttl_seconds is 1 to 3600",
        ));
    }
    let project_id = resolved.project.id.clone();
    let mut tx = state.shard(&resolved)?.scope(&project_id).await?;
    // The ban's lock: no impersonation session slips past a ban either.
    users::lock_credentials(&mut tx, &project_id, &id).await?;
    let user = users::find(&mut tx, &project_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    if user.is_banned(now_ms()) {
        return Err(crate::admin::ban::user_banned());
    }
    // Never stepped up: whoever impersonates cannot change the user's
    // password, factors or address (those ask for a factor they lack).
    let session = sessions::create_with(
        &mut tx,
        &project_id,
        &user.id,
        &client.ip_text(),
        client.user_agent.as_deref(),
        &["imp"],
        ttl,
        false,
    )
    .await?;
    super::audit_for_user(
        &mut tx,
        &resolved,
        &client,
        &actor,
        &user.id,
        "user.impersonated",
        json!({"reason": reason, "session_id": session.id, "expires_at": rfc3339(session.expires_at)}),
    )
    .await?;
    tx.commit().await?;
    let issuer = state.issuer(&resolved.project);
    let extra = TokenExtras {
        ttl_seconds: Some(ttl),
        act: Some(json!({"sub": "operator"})),
        ..TokenExtras::default()
    };
    let (access, ttl) = state
        .tokens
        .issue(
            &resolved.project,
            &issuer,
            &user.id,
            &session.id,
            &session.amr(),
            &extra,
        )
        .await?;
    Ok(Json(json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": ttl,
        "session_id": session.id,
    })))
}
