//! Starting a session and answering with a `TokenResponse`, in the body
//! (bearer) or as cookies.

use crate::DataState;
use crate::audit::event;
use crate::request::client::Client;
use crate::request::csrf;
use crate::request::resolve::Resolved;
use crate::request::transport::{self, Transport};
use crate::sessions::cache::ActiveTenant;
use crate::store::refresh_tokens;
use crate::store::sessions::{self, SessionRow};
use crate::store::users::UserRow;
use crate::views::{SessionView, TokenResponse};
use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use identity_shared::audit::{self, Event, Outcome};
use identity_shared::crypto::{b64url, hmac_sha256, random_token, sha256_hex};
use identity_shared::db::Tx;
use identity_shared::error::ApiResult;
use identity_shared::ids::new_id;
use identity_shared::settings::MfaPolicy;
use identity_shared::time::now_ms;
use serde_json::json;

/// The refresh token that follows `value`: derived from it, so a client
/// retrying a consumed token within the grace window can be given the same
/// successor without it being stored anywhere in the clear.
pub fn successor_of(state: &DataState, value: &str) -> String {
    b64url(&hmac_sha256(&state.refresh_key, value.as_bytes()))
}

/// Issues the access token and answers with a `TokenResponse`, in the
/// body (bearer) or as cookies.
#[allow(clippy::too_many_arguments)]
pub async fn signed_in(
    state: &DataState,
    resolved: &Resolved,
    transport: Transport,
    status: StatusCode,
    user: &UserRow,
    session: &SessionRow,
    refresh_value: &str,
) -> ApiResult<Response> {
    signed_in_trusting(
        state,
        resolved,
        transport,
        status,
        user,
        session,
        refresh_value,
        Extras::default(),
    )
    .await
}

/// What some sign-ins add to a `TokenResponse`.
#[derive(Default)]
pub struct Extras<'a> {
    /// A trusted-browser token to hand over (cookie `identity_tb` on cookie
    /// transport, `trusted_browser_token` in the body on bearer).
    pub trusted_browser: Option<&'a str>,
    /// Where the app should go next (a magic link's checked `redirect_to`).
    pub redirect_to: Option<&'a str>,
    /// The session's active tenant, for the access token's claims.
    pub tenant: Option<&'a ActiveTenant>,
    /// A new access token only: the session's refresh token stays as it
    /// is (none in the body, no refresh cookie).
    pub access_only: bool,
}

/// [`signed_in`], with [`Extras`].
#[allow(clippy::too_many_arguments)]
pub async fn signed_in_trusting(
    state: &DataState,
    resolved: &Resolved,
    transport: Transport,
    status: StatusCode,
    user: &UserRow,
    session: &SessionRow,
    refresh_value: &str,
    extras: Extras<'_>,
) -> ApiResult<Response> {
    let issuer = state.issuer(&resolved.project);
    let (access, ttl) = state
        .tokens
        .issue(
            &resolved.project,
            &issuer,
            &user.id,
            &session.id,
            &session.amr(),
            &crate::tokens::TokenExtras {
                tenant: extras.tenant,
                ..Default::default()
            },
        )
        .await?;
    let mut body = TokenResponse {
        access_token: String::new(),
        token_type: "Bearer",
        expires_in: ttl,
        refresh_token: None,
        csrf_token: None,
        trusted_browser_token: None,
        mfa_enrollment_required: (resolved.project.settings.mfa == MfaPolicy::Required
            && !user.mfa_enabled)
            .then_some(true),
        user: user.into(),
        session: SessionView::of(session, &session.id),
        redirect_to: extras.redirect_to.map(str::to_string),
    };
    let mut response_headers = HeaderMap::new();
    if let Some(token) = extras.trusted_browser {
        match transport {
            Transport::Bearer => body.trusted_browser_token = Some(token.to_string()),
            Transport::Cookie => transport::set_trusted_browser_cookie(
                &mut response_headers,
                !state.config.dev_mode,
                token,
                i64::from(resolved.project.settings.trusted_browser_ttl_seconds),
            ),
        }
    }
    match transport {
        Transport::Bearer if extras.access_only => {}
        Transport::Bearer => body.refresh_token = Some(refresh_value.to_string()),
        Transport::Cookie if extras.access_only => {
            body.csrf_token = Some(csrf::csrf_token(state, &session.id));
            transport::set_access_cookie(
                &mut response_headers,
                !state.config.dev_mode,
                &access,
                i64::from(ttl),
            );
        }
        Transport::Cookie => {
            // Minted by the server from the session, never taken from the
            // request: stable across refreshes (other tabs' requests in
            // flight stay valid), and an app on another origin, which cannot
            // read the auth domain's cookie, gets it from the body.
            let csrf = csrf::csrf_token(state, &session.id);
            body.csrf_token = Some(csrf.clone());
            transport::set_session_cookies(
                &mut response_headers,
                !state.config.dev_mode,
                &access,
                i64::from(ttl),
                refresh_value,
                (session.expires_at - now_ms()) / 1000,
                &csrf,
            );
        }
    }
    body.access_token = access;
    Ok((status, response_headers, Json(body)).into_response())
}

/// Starts a session with a first refresh token; returns the token's value.
/// `amr`: how the user signed in (RFC 8176 values).
pub async fn start_session(
    tx: &mut Tx,
    resolved: &Resolved,
    user: &UserRow,
    client: &Client,
    amr: &[&str],
) -> ApiResult<(SessionRow, String)> {
    let project = &resolved.project;
    // Every way in ends here: a banned user gets no session. (A session a
    // sign-in made while a ban was being written is of no use: every
    // request and every refresh checks the ban on the user they load.)
    if user.is_banned(now_ms()) {
        return Err(crate::admin::ban::user_banned());
    }
    // Room for the new session first (the newest MAX - 1 stay): then every
    // write below queues behind this one read (see `Tx::defer`).
    let evicted =
        sessions::evict_oldest(tx, &project.id, &user.id, sessions::MAX_LIVE_SESSIONS - 1).await?;
    let session = sessions::create(
        tx,
        &project.id,
        &user.id,
        &client.ip_text(),
        client.user_agent.as_deref(),
        amr,
        project.settings.refresh_token_ttl_seconds,
    )
    .await?;
    if !evicted.is_empty() {
        let ip = client.ip_text();
        audit::record(
            tx,
            Event {
                subject: Some(&user.id),
                data: json!({"session_ids": evicted, "reason": "session_limit", "limit": sessions::MAX_LIVE_SESSIONS}),
                ..event(resolved, client, &ip, "session.evicted", Outcome::Success)
            },
        )
        .await?;
    }
    let value = random_token();
    refresh_tokens::insert(
        tx,
        &project.id,
        &new_id("rtk"),
        &session.id,
        &sha256_hex(value.as_bytes()),
        client.user_agent.as_deref(),
        session.expires_at,
    )
    .await?;
    Ok((session, value))
}
