//! The signed-in user's own sessions: the session check, logout, listing
//! and revoking.

use crate::DataState;
use crate::audit::event;
use crate::request::caller::Caller;
use crate::request::client::Client;
use crate::request::csrf;
use crate::request::transport::{self, Transport};
use crate::store::mfa;
use crate::store::one_time_codes;
use crate::store::sessions::{self, SessionRow};
use crate::store::trusted_browsers;
use crate::store::users::{self, UserRow};
use crate::views::{Page, SessionCheck, SessionView};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use identity_shared::audit::{self, Event, Outcome};
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::http::{self};
use identity_shared::time::now_ms;
use serde::Deserialize;
use serde_json::json;

// ---- the signed-in user's own session ----

/// The caller's user and session, read fresh (password checks must not use
/// a cached hash).
pub async fn load_user(state: &DataState, caller: &Caller) -> ApiResult<(UserRow, SessionRow)> {
    let project_id = &caller.resolved.project.id;
    let mut tx = state
        .shard(&caller.resolved)?
        .scope_read(project_id)
        .await?;
    let user = users::find(&mut tx, project_id, &caller.claims.sub).await?;
    let session = sessions::find(&mut tx, project_id, &caller.claims.sid).await?;
    tx.commit().await?;
    match (user, session) {
        (Some(u), Some(s)) => Ok((u, s)),
        _ => Err(ApiError::unauthorized(
            "session_revoked",
            "this session has ended",
        )),
    }
}

/// Answered from the session cache: no database work in the common case.
/// A cookie-authenticated caller also gets its CSRF token, which an app on
/// another origin cannot read from the auth domain's cookie.
pub async fn session(State(state): State<DataState>, caller: Caller) -> Json<SessionCheck> {
    let v = &caller.view;
    Json(SessionCheck {
        user: (&v.user).into(),
        session: SessionView::of(&v.session, &v.session.id),
        csrf_token: caller
            .via_cookie
            .then(|| csrf::csrf_token(&state, &v.session.id)),
    })
}

/// Revokes sessions of the caller's user and records it.
const REVOKED_ALL: &str = "revoked_all_by_user";

async fn revoke_and_audit(
    state: &DataState,
    caller: &Caller,
    client: &Client,
    ids: Option<&[String]>,
    keep: Option<&str>,
    reason: &'static str,
) -> ApiResult<Vec<String>> {
    let project_id = &caller.resolved.project.id;
    let mut tx = state.shard(&caller.resolved)?.scope(project_id).await?;
    let revoked =
        sessions::revoke(&mut tx, project_id, &caller.claims.sub, ids, keep, reason).await?;
    if reason == REVOKED_ALL {
        // Revoke-all also forgets every trusted browser, and voids the
        // logins waiting for a second factor (one could otherwise still
        // trust a browser after this).
        trusted_browsers::forget_all(&mut tx, project_id, &caller.claims.sub).await?;
        mfa::delete_challenges(&mut tx, project_id, &caller.claims.sub).await?;
        // And every pending link or code (an email change above all).
        one_time_codes::void_all(&mut tx, project_id, &caller.claims.sub, now_ms()).await?;
    }
    if !revoked.is_empty() {
        let ip = client.ip_text();
        audit::record(
            &mut tx,
            Event {
                actor: Some(&caller.claims.sub),
                subject: Some(&caller.claims.sub),
                data: json!({"session_ids": revoked, "reason": reason}),
                ..event(
                    &caller.resolved,
                    client,
                    &ip,
                    "session.revoked",
                    Outcome::Success,
                )
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(revoked)
}

pub async fn logout(
    State(state): State<DataState>,
    caller: Caller,
    client: Client,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let current = [caller.claims.sid.clone()];
    revoke_and_audit(&state, &caller, &client, Some(&current), None, "logout").await?;
    let mut response_headers = HeaderMap::new();
    if caller.via_cookie || transport::transport(&caller.resolved, &headers)? == Transport::Cookie {
        transport::clear_session_cookies(&mut response_headers, !state.config.dev_mode);
    }
    Ok((StatusCode::NO_CONTENT, response_headers).into_response())
}

pub async fn list_sessions(
    State(state): State<DataState>,
    caller: Caller,
) -> ApiResult<Json<Page<SessionView>>> {
    let project_id = &caller.resolved.project.id;
    let mut tx = state
        .shard(&caller.resolved)?
        .scope_read(project_id)
        .await?;
    let rows = sessions::list_live(&mut tx, project_id, &caller.claims.sub, 200).await?;
    tx.commit().await?;
    Ok(Json(Page {
        items: rows
            .iter()
            .map(|s| SessionView::of(s, &caller.claims.sid))
            .collect(),
        next_cursor: None,
    }))
}

pub async fn revoke_one(
    State(state): State<DataState>,
    caller: Caller,
    client: Client,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let ids = [id];
    let revoked = revoke_and_audit(
        &state,
        &caller,
        &client,
        Some(&ids),
        None,
        "revoked_by_user",
    )
    .await?;
    if revoked.is_empty() {
        return Err(ApiError::not_found("session"));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RevokeAllBody {
    #[serde(default)]
    include_current: bool,
}

pub async fn revoke_all(
    State(state): State<DataState>,
    caller: Caller,
    client: Client,
    headers: HeaderMap,
    bytes: Bytes,
) -> ApiResult<StatusCode> {
    let body: RevokeAllBody = http::optional_json(&headers, &bytes)?;
    let keep = (!body.include_current).then_some(caller.claims.sid.as_str());
    revoke_and_audit(&state, &caller, &client, None, keep, REVOKED_ALL).await?;
    Ok(StatusCode::NO_CONTENT)
}
