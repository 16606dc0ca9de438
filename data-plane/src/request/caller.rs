//! The authenticated end user: a valid access token of this project whose
//! session is live; cookie-authenticated mutations pass the CSRF rule.

use crate::DataState;
use crate::request::csrf::check_csrf;
use crate::request::resolve::Resolved;
use crate::request::transport::{ACCESS_COOKIE, cookie};
use crate::tokens::AccessClaims;
use axum::extract::FromRequestParts;
use axum::http::Method;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use identity_shared::error::ApiError;
use identity_shared::settings::MfaPolicy;
use std::sync::Arc;

/// An authenticated end user: a valid access token of this project whose
/// session is live. Cookie-authenticated mutating requests pass the CSRF rule.
pub struct Caller {
    pub claims: Arc<AccessClaims>,
    /// The live session and its user (from the session cache).
    pub view: Arc<crate::sessions::cache::LiveSession>,
    pub resolved: Resolved,
    pub via_cookie: bool,
}

impl FromRequestParts<DataState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &DataState,
    ) -> Result<Self, Self::Rejection> {
        let resolved = Resolved::from_request_parts(parts, state).await?;
        let bearer = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        let (token, via_cookie) = match bearer {
            Some(t) => (t, false),
            None => match cookie(&parts.headers, ACCESS_COOKIE) {
                Some(t) => (t, true),
                None => {
                    return Err(ApiError::unauthorized(
                        "unauthenticated",
                        "sign in first: no access token",
                    ));
                }
            },
        };
        let issuer = state.issuer(&resolved.project);
        let claims = state
            .tokens
            .verify(&resolved.project, &issuer, token)
            .await?;
        let db = state.shard(&resolved)?;
        let view = state
            .sessions
            .check(db, &resolved.project.id, &claims.sub, &claims.sid)
            .await?
            .ok_or_else(|| ApiError::unauthorized("session_revoked", "this session has ended"))?;
        if view.user.is_banned(identity_shared::time::now_ms()) {
            return Err(crate::admin::ban::user_banned());
        }
        // Impersonation is for seeing what the user sees: it reads, and
        // may end its own session, but changes nothing in the user's name.
        if claims.act.is_some()
            && !matches!(parts.method, Method::GET | Method::HEAD)
            && parts.uri.path() != "/v1/auth/logout"
        {
            return Err(ApiError::forbidden(
                "impersonation_read_only",
                "an impersonation token only reads (and signs out)",
            ));
        }
        // A token that speaks for a tenant holds only while the member
        // still has that role there (the session cache reloads on every
        // membership change): a removed or demoted member refreshes.
        if let Some(tid) = &claims.tid {
            let current = view
                .tenant
                .as_ref()
                .is_some_and(|t| &t.id == tid && Some(&t.role) == claims.tenant_role.as_ref());
            if !current {
                return Err(ApiError::unauthorized(
                    "tenant_access_changed",
                    "your membership of the token's tenant changed: refresh the session",
                ));
            }
        }
        if via_cookie {
            check_csrf(state, &resolved, &parts.method, &parts.headers, &claims.sid)?;
        }
        if resolved.project.settings.mfa == MfaPolicy::Required
            && !view.user.mfa_enabled
            && !enrollment_route(parts.uri.path())
        {
            return Err(ApiError::forbidden(
                "mfa_enrollment_required",
                "this project requires a second factor: enroll one first (POST /v1/auth/mfa/totp/enroll)",
            ));
        }
        Ok(Caller {
            claims,
            view,
            resolved,
            via_cookie,
        })
    }
}

/// The routes a user without a second factor may use when the project
/// requires one: enrolling it, and their session.
fn enrollment_route(path: &str) -> bool {
    path == "/v1/auth/mfa"
        || path.starts_with("/v1/auth/mfa/")
        || path == "/v1/auth/reauthenticate"
        || path == "/v1/auth/passkeys"
        || path.starts_with("/v1/auth/passkeys/")
        || path == "/v1/auth/session"
        || path == "/v1/auth/logout"
        || path == "/v1/auth/sessions"
        || path.starts_with("/v1/auth/sessions/")
        // Proving the address comes first: factors added to an account
        // whose address was never proven do not survive its owner
        // reclaiming it (see `email::verify::reclaim`).
        || path.starts_with("/v1/auth/email/verify/")
}

/// `Option<Caller>`: the caller when the request carries a valid session,
/// else `None` (no token, or a stale one: a route that also serves
/// anonymous callers treats it as anonymous).
impl axum::extract::OptionalFromRequestParts<DataState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &DataState,
    ) -> Result<Option<Self>, Self::Rejection> {
        let has_token = parts.headers.contains_key(AUTHORIZATION)
            || cookie(&parts.headers, ACCESS_COOKIE).is_some();
        if !has_token {
            return Ok(None);
        }
        Ok(
            <Caller as FromRequestParts<DataState>>::from_request_parts(parts, state)
                .await
                .ok(),
        )
    }
}
