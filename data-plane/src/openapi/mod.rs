//! The public (data-plane) API's OpenAPI document.

use axum::Json;
use identity_shared::openapi::{Route, document};
use identity_shared::route;
use serde_json::Value;

mod email;
mod factors;
mod oauth;
mod profile;
mod tenants;

pub(crate) const KEY: (u16, &str) = (401, "project_key_invalid");
pub(crate) const SUSPENDED: (u16, &str) = (403, "project_suspended");
pub(crate) const HOST: (u16, &str) = (404, "project_not_found (unknown host)");
pub(crate) const BAD: (u16, &str) = (400, "invalid_request (malformed body or X-Token-Transport)");
pub(crate) const LIMITED: (u16, &str) = (429, "too_many_attempts, with Retry-After");
pub(crate) const AUTH: (u16, &str) = (
    401,
    "unauthenticated, invalid_token, token_expired or session_revoked (and 403 mfa_enrollment_required outside the MFA and session routes, when the project requires a second factor and the user has none)",
);
pub(crate) const CSRF: (u16, &str) = (
    403,
    "csrf_failed (cookie-authenticated browser request without a valid X-CSRF-Token)",
);
pub(crate) const LOGIN_CSRF: (u16, &str) = (
    403,
    "csrf_failed (cookie transport requested by a browser on an origin the project does not allow)",
);
pub(crate) const SECRET: (u16, &str) = (403, "secret_key_required");
pub(crate) const MEDIA: (u16, &str) = (
    415,
    "unsupported_media_type (a body that is not application/json)",
);
pub(crate) const DB: (u16, &str) = (503, "database_unavailable, with Retry-After");
pub(crate) const HASHING: (u16, &str) = (
    503,
    "server_busy (the password-hashing queue is full) or database_unavailable, with Retry-After",
);
pub(crate) const LIMITED_OR_LOCKED: (u16, &str) = (
    429,
    "too_many_attempts, with Retry-After (rate limit, or the lockout of this account from this address)",
);
pub(crate) const STEP_UP: (u16, &str) = (
    403,
    "step_up_required (prove a factor again: POST /v1/auth/mfa/verify or /v1/auth/reauthenticate), or csrf_failed",
);
pub(crate) const ANY_CSRF: (u16, &str) = (
    403,
    "csrf_failed (a browser on an origin the project does not allow, or a cookie request without a valid X-CSRF-Token)",
);

pub const ROUTES: &[Route] = &[
    route!(
        "get",
        "/.well-known/jwks.json",
        "The project's public signing keys (project from X-Project-Key or Host)",
        None,
        [(200, "{keys}"), KEY, SUSPENDED, HOST]
    ),
    route!(
        "get",
        "/.well-known/openid-configuration",
        "OpenID discovery: issuer and jwks_uri",
        None,
        [(200, "{issuer, jwks_uri, ...}"), KEY, SUSPENDED, HOST]
    ),
    route!(
        "get",
        "/{project_id}/.well-known/jwks.json",
        "The project's public signing keys, under its issuer path",
        None,
        [(200, "{keys}"), SUSPENDED, (404, "project_not_found")]
    ),
    route!(
        "get",
        "/{project_id}/.well-known/openid-configuration",
        "OpenID discovery under the issuer path",
        None,
        [
            (200, "{issuer, jwks_uri, ...}"),
            SUSPENDED,
            (404, "project_not_found")
        ]
    ),
    route!(
        "post",
        "/v1/auth/register",
        "Create a password account and sign in",
        Some((&["email", "password"], &["name", "organization_name"])),
        [
            (
                201,
                "TokenResponse (refresh_token in the body for bearer transport, cookies otherwise)"
            ),
            BAD,
            KEY,
            SUSPENDED,
            HOST,
            (409, "email_taken"),
            (
                422,
                "weak_password, invalid_password, invalid_email or invalid_name"
            ),
            LOGIN_CSRF,
            MEDIA,
            LIMITED,
            HASHING
        ]
    ),
    route!(
        "post",
        "/v1/auth/login",
        "Sign in with email and password",
        Some((&["email", "password"], &["trusted_browser_token"])),
        [
            (
                200,
                "TokenResponse, or {mfa_required, mfa_token, methods} for a user with a second factor"
            ),
            BAD,
            (
                401,
                "invalid_credentials (unknown email and wrong password alike)"
            ),
            LOGIN_CSRF,
            MEDIA,
            LIMITED_OR_LOCKED,
            HASHING
        ]
    ),
    route!(
        "post",
        "/v1/auth/refresh",
        "Exchange a refresh token (body or identity_rt cookie) for new tokens",
        Some((&[], &["refresh_token"])),
        [
            (
                200,
                "TokenResponse with a new refresh token (by cookie only when it came from the cookie)"
            ),
            BAD,
            (
                401,
                "invalid_refresh_token, session_revoked, or refresh_token_reused (the session is revoked)"
            ),
            ANY_CSRF,
            MEDIA,
            LIMITED,
            DB
        ]
    ),
    route!(
        "post",
        "/v1/auth/logout",
        "Revoke the current session",
        None,
        [(204, "revoked; cookies cleared"), AUTH, CSRF]
    ),
    route!(
        "get",
        "/v1/auth/session",
        "The signed-in user and session (from memory in the common case)",
        None,
        [
            (200, "{user, session, csrf_token (cookie callers)}"),
            AUTH,
            DB
        ]
    ),
    route!(
        "get",
        "/v1/auth/sessions",
        "The user's live sessions",
        None,
        [
            (
                200,
                "{items: [{id, created_at, last_seen_at, ip, user_agent, current}]}"
            ),
            AUTH
        ]
    ),
    route!(
        "delete",
        "/v1/auth/sessions/{id}",
        "Revoke one of the user's sessions",
        None,
        [(204, "revoked"), AUTH, CSRF, (404, "not_found")]
    ),
    route!(
        "post",
        "/v1/auth/sessions/revoke-all",
        "Revoke the user's other sessions (or all with include_current)",
        Some((&[], &["include_current"])),
        [(204, "revoked"), BAD, AUTH, CSRF]
    ),
    route!(
        "post",
        "/v1/auth/password/change",
        "Change the password",
        Some((
            &["current_password", "new_password"],
            &["sign_out_other_sessions"]
        )),
        [
            (204, "changed"),
            BAD,
            (401, "invalid_credentials or an authentication error"),
            CSRF,
            MEDIA,
            (422, "weak_password or invalid_password"),
            LIMITED_OR_LOCKED,
            HASHING
        ]
    ),
    route!(
        "post",
        "/v1/users",
        "Create a user with a password or an imported Argon2id/bcrypt hash (secret key)",
        Some((
            &["email"],
            &["password", "password_hash", "name", "email_verified"]
        )),
        [
            (201, "{user}"),
            BAD,
            KEY,
            SECRET,
            (409, "email_taken"),
            MEDIA,
            (422, "invalid_email, weak_password or invalid_password_hash"),
            HASHING
        ]
    ),
    route!(
        "get",
        "/v1/users",
        "Find users (?email= matched in canonical form, or ?query= searching address and name; ?limit, ?cursor) (secret key)",
        None,
        [(200, "{items, next_cursor}"), BAD, KEY, SECRET]
    ),
    route!(
        "get",
        "/v1/users/{id}",
        "Get a user (secret key)",
        None,
        [(200, "{user}"), KEY, SECRET, (404, "not_found")]
    ),
    route!(
        "delete",
        "/v1/users/{id}",
        "Delete a user and revoke their sessions (secret key)",
        None,
        [
            (204, "deleted"),
            KEY,
            SECRET,
            (404, "not_found"),
            (409, "last_owner")
        ]
    ),
    route!(
        "patch",
        "/v1/users/{id}",
        "Update a user: name, email, email_verified, phone, public_metadata, private_metadata (secret key)",
        Some((
            &[],
            &[
                "name",
                "email",
                "email_verified",
                "phone",
                "public_metadata",
                "private_metadata"
            ]
        )),
        [
            (200, "{user} with private_metadata"),
            BAD,
            KEY,
            SECRET,
            (404, "not_found"),
            (409, "email_taken"),
            MEDIA,
            (
                422,
                "invalid_name, invalid_email, invalid_phone or invalid_metadata"
            )
        ]
    ),
    route!(
        "post",
        "/v1/users/{id}/ban",
        "Ban a user (reason?, until? RFC 3339): every session ends at once, every sign-in gets 403 user_banned (secret key)",
        Some((&[], &["reason", "until"])),
        [
            (200, "{user} with banned: true"),
            BAD,
            KEY,
            SECRET,
            (404, "not_found"),
            MEDIA,
            (422, "invalid_ban")
        ]
    ),
    route!(
        "post",
        "/v1/users/{id}/unban",
        "Lift a ban (secret key)",
        None,
        [(200, "{user}"), KEY, SECRET, (404, "not_found")]
    ),
    route!(
        "post",
        "/v1/users/{id}/impersonate",
        "An access token for the user (no refresh token; act: {sub: operator}, amr: [imp]; ttl_seconds at most 3600, 900 by default; never stepped up); the reason is audited (secret key)",
        Some((&["reason"], &["ttl_seconds"])),
        [
            (200, "{access_token, token_type, expires_in, session_id}"),
            BAD,
            KEY,
            (403, "secret_key_required or user_banned"),
            (404, "not_found"),
            MEDIA,
            (422, "invalid_reason or invalid_ttl")
        ]
    ),
    route!(
        "delete",
        "/v1/users/{id}/mfa",
        "Remove every second factor of a user, for account recovery (secret key)",
        None,
        [(204, "reset"), KEY, SECRET, (404, "not_found")]
    ),
    route!(
        "post",
        "/v1/users/{id}/sessions/revoke-all",
        "End every session of a user at once, forget their trusted browsers, void pending challenges, links and codes (secret key)",
        None,
        [(204, "revoked"), KEY, SECRET, (404, "not_found")]
    ),
    route!(
        "get",
        "/v1/audit-events",
        "Audit events, newest first (?user_id, ?type, ?since, ?until, ?limit, ?cursor) (secret key)",
        None,
        [
            (
                200,
                "{items: [{id, type, actor, subject, ip, user_agent, outcome, created_at, data}], next_cursor}"
            ),
            BAD,
            KEY,
            SECRET
        ]
    ),
    route!("get", "/healthz", "Liveness", None, [(200, "ok")]),
    route!(
        "get",
        "/readyz",
        "Readiness: database reachable and migrations current",
        None,
        [(200, "ready"), (503, "not ready")]
    ),
    route!(
        "get",
        "/openapi.json",
        "This document",
        None,
        [(200, "OpenAPI 3.1")]
    ),
];

pub async fn spec() -> Json<Value> {
    Json(document(
        "identity data plane",
        "End-user API. Identify the project with X-Project-Key (pk_/sk_) or a verified auth domain in Host.",
        Some("project_key"),
        ROUTES
            .iter()
            .chain(factors::ROUTES)
            .chain(email::ROUTES)
            .chain(oauth::ROUTES)
            .chain(tenants::ROUTES)
            .chain(profile::ROUTES),
    ))
}
