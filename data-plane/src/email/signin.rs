//! Sign-in by email, the answering half: `POST /v1/auth/email-otp/verify`
//! (the newest code for the address; 5 wrong codes kill it) and
//! `POST /v1/auth/magic-link/verify` (single-use). The mailbox is proven:
//! the address is verified, a user is created when the request allowed
//! it, and the user is signed in or asked for a second factor.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use identity_shared::audit::{self, Event, Outcome};
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::http;
use identity_shared::secret::Secret;
use identity_shared::time::now_ms;
use serde::Deserialize;
use serde_json::json;

use crate::DataState;
use crate::audit::event;
use crate::email::judge::{Subject, judge};
use crate::email::send;
use crate::email::verify::{invalid_token, mark_verified, reclaim};
use crate::input::Email;
use crate::mfa::challenge::require_second_factor;
use crate::password::check::signing_in_from;
use crate::request::client::Client;
use crate::request::resolve::Resolved;
use crate::sessions::issue::{Extras, signed_in_trusting, start_session};
use crate::store::one_time_codes::{self as codes, CodeRow, EMAIL_OTP, MAGIC_LINK};
use crate::store::users::{self, NewUser, UserRow};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtpVerifyBody {
    email: String,
    code: Secret<String>,
}

pub async fn otp_verify(
    State(state): State<DataState>,
    resolved: Resolved,
    client: Client,
    headers: HeaderMap,
    http::Json(body): http::Json<OtpVerifyBody>,
) -> ApiResult<Response> {
    send::limit(&state, &resolved, &client)?;
    let transport = signing_in_from(&state, &resolved, &headers)?;
    let email = Email::parse(&body.email)?;
    let invalid_code =
        || ApiError::unauthorized("invalid_code", "the code is not valid or has expired");
    let project_id = resolved.project.id.clone();
    let now = now_ms();
    let mut tx = state.shard(&resolved)?.scope(&project_id).await?;
    tx.lock_key(&format!("email:{project_id}:{}", email.normalized))
        .await?;
    let who = Subject {
        user_id: None,
        email: Some(&email.normalized),
    };
    let judged = judge(
        &state,
        &mut tx,
        &project_id,
        EMAIL_OTP,
        &who,
        body.code.expose(),
        now,
    )
    .await?;
    // Known address or not, a wrong code costs the same: the failure is
    // audited and committed either way.
    let Some(row) = judged else {
        let ip = client.ip_text();
        audit::record(
            &mut tx,
            Event {
                data: json!({"method": EMAIL_OTP, "reason": "invalid_code"}),
                ..event(&resolved, &client, &ip, "login.failed", Outcome::Failure)
            },
        )
        .await?;
        tx.commit().await?;
        return Err(invalid_code());
    };
    if !codes::consume(&mut tx, &project_id, &row.id, now).await? {
        return Err(invalid_code());
    }
    finish(
        &state,
        tx,
        &resolved,
        &client,
        transport,
        &row,
        invalid_code,
    )
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkVerifyBody {
    token: Secret<String>,
}

pub async fn link_verify(
    State(state): State<DataState>,
    resolved: Resolved,
    client: Client,
    headers: HeaderMap,
    http::Json(body): http::Json<LinkVerifyBody>,
) -> ApiResult<Response> {
    send::limit(&state, &resolved, &client)?;
    let transport = signing_in_from(&state, &resolved, &headers)?;
    let project_id = resolved.project.id.clone();
    let now = now_ms();
    let mut tx = state.shard(&resolved)?.scope(&project_id).await?;
    let row = codes::find_by_token(
        &mut tx,
        &project_id,
        MAGIC_LINK,
        &send::link_token_hash(body.token.expose()),
        now,
    )
    .await?
    .ok_or_else(invalid_token)?;
    if !codes::consume(&mut tx, &project_id, &row.id, now).await? {
        return Err(invalid_token());
    }
    finish(
        &state,
        tx,
        &resolved,
        &client,
        transport,
        &row,
        invalid_token,
    )
    .await
}

/// The mailbox is proven: the user it belongs to (created when the request
/// allowed it) is signed in, or asked for a second factor.
async fn finish(
    state: &DataState,
    mut tx: identity_shared::db::Tx,
    resolved: &Resolved,
    client: &Client,
    transport: crate::request::transport::Transport,
    row: &CodeRow,
    refused: impl Fn() -> ApiError,
) -> ApiResult<Response> {
    let project_id = &resolved.project.id;
    let normalized = row.email.as_deref().ok_or_else(&refused)?;
    // Enforced after the message went out: the code no longer signs in.
    resolved.project.require_no_sso(normalized)?;
    let data: serde_json::Value = row
        .data
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_default();
    let mut created = false;
    let ip = client.ip_text();
    // The account, read again under its credentials lock: a second factor
    // turned on meanwhile must be asked for.
    let found = match users::find_by_email(&mut tx, project_id, normalized).await? {
        Some(found) => {
            users::lock_credentials(&mut tx, project_id, &found.id).await?;
            let fresh = users::find(&mut tx, project_id, &found.id).await?;
            // Moved to another address meanwhile: the code proves nothing.
            if fresh
                .as_ref()
                .is_some_and(|u| u.email_normalized != normalized)
            {
                return Err(refused());
            }
            fresh
        }
        None => None,
    };
    let user: UserRow = match found {
        Some(user) => user,
        None if data["create_user"] == true => {
            let typed = data["typed"].as_str().unwrap_or(normalized).to_string();
            created = true;
            let user = users::insert(
                &mut tx,
                project_id,
                NewUser {
                    email: typed,
                    email_normalized: normalized.to_string(),
                    name: None,
                    password_hash: None,
                    email_verified: false,
                },
            )
            .await?;
            audit::record(
                &mut tx,
                Event {
                    actor: Some(&user.id),
                    subject: Some(&user.id),
                    data: json!({"method": row.purpose}),
                    ..event(resolved, client, &ip, "user.created", Outcome::Success)
                },
            )
            .await?;
            user
        }
        None => return Err(refused()),
    };
    // The code was sent to an earlier owner of the address.
    if row.user_id.as_deref().is_some_and(|id| id != user.id) {
        return Err(refused());
    }
    // An account whose address nobody had proven may have been set up by
    // someone else: its credentials go before the mailbox's owner enters.
    let user = if user.email_verified || created {
        user
    } else {
        reclaim(&mut tx, resolved, client, user).await?
    };
    let user = mark_verified(state, &mut tx, resolved, client, user, &row.purpose).await?;
    if user.mfa_enabled {
        let answer = require_second_factor(&mut tx, resolved, client, &user, "email").await?;
        tx.commit().await?;
        return Ok(answer);
    }
    let (session, refresh_value) =
        start_session(&mut tx, resolved, &user, client, &["email"]).await?;
    audit::record(
        &mut tx,
        Event {
            actor: Some(&user.id),
            subject: Some(&user.id),
            data: json!({"session_id": session.id, "method": row.purpose}),
            ..event(resolved, client, &ip, "login.succeeded", Outcome::Success)
        },
    )
    .await?;
    tx.commit().await?;
    signed_in_trusting(
        state,
        resolved,
        transport,
        StatusCode::OK,
        &user,
        &session,
        &refresh_value,
        Extras {
            redirect_to: row.target.as_deref().filter(|_| row.purpose == MAGIC_LINK),
            ..Extras::default()
        },
    )
    .await
}
