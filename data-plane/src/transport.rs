//! How tokens travel (bearer in JSON, or cookies), the CSRF rule for
//! cookie-authenticated browser requests, and the authenticated caller.
//!
//! Requests identified by `X-Project-Key` default to bearer, requests
//! identified by `Host` to cookies; `X-Token-Transport` overrides.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method};
use identity_shared::crypto::{b64url, ct_eq, hmac_sha256};
use identity_shared::error::ApiError;
use identity_shared::settings::parse_origin;

use crate::DataState;
use crate::resolve::{Resolved, Via};
use crate::tokens::AccessClaims;

pub const ACCESS_COOKIE: &str = "identity_at";
pub const REFRESH_COOKIE: &str = "identity_rt";
pub const CSRF_COOKIE: &str = "identity_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Bearer,
    Cookie,
}

pub fn transport(resolved: &Resolved, headers: &HeaderMap) -> Result<Transport, ApiError> {
    match headers
        .get("x-token-transport")
        .map(|v| v.to_str().unwrap_or(""))
    {
        Some("bearer") => Ok(Transport::Bearer),
        Some("cookie") => Ok(Transport::Cookie),
        Some(_) => Err(ApiError::invalid_request(
            "X-Token-Transport must be bearer or cookie",
        )),
        None => Ok(match resolved.via {
            Via::Key { .. } => Transport::Bearer,
            Via::Host(_) => Transport::Cookie,
        }),
    }
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

fn set_cookie(
    headers: &mut HeaderMap,
    name: &str,
    value: &str,
    path: &str,
    max_age: i64,
    http_only: bool,
    secure: bool,
) {
    let mut c = format!(
        "{name}={value}; Path={path}; Max-Age={}; SameSite=Lax",
        max_age.max(0)
    );
    if http_only {
        c.push_str("; HttpOnly");
    }
    if secure {
        c.push_str("; Secure");
    }
    if let Ok(v) = HeaderValue::from_str(&c) {
        headers.append(SET_COOKIE, v);
    }
}

/// The three cookies of a signed-in browser.
pub fn set_session_cookies(
    headers: &mut HeaderMap,
    secure: bool,
    access: &str,
    access_ttl: i64,
    refresh: &str,
    refresh_ttl: i64,
    csrf: &str,
) {
    set_cookie(
        headers,
        ACCESS_COOKIE,
        access,
        "/",
        access_ttl,
        true,
        secure,
    );
    set_cookie(
        headers,
        REFRESH_COOKIE,
        refresh,
        "/v1/auth",
        refresh_ttl,
        true,
        secure,
    );
    // Readable by the page's scripts, which echo it in X-CSRF-Token.
    set_cookie(headers, CSRF_COOKIE, csrf, "/", refresh_ttl, false, secure);
}

pub fn clear_session_cookies(headers: &mut HeaderMap, secure: bool) {
    set_cookie(headers, ACCESS_COOKIE, "", "/", 0, true, secure);
    set_cookie(headers, REFRESH_COOKIE, "", "/v1/auth", 0, true, secure);
    set_cookie(headers, CSRF_COOKIE, "", "/", 0, false, secure);
}

fn is_mutating(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn csrf_failed(why: &str) -> ApiError {
    ApiError::forbidden("csrf_failed", format!("cross-site request refused: {why}"))
}

/// Whether a request comes from a browser (it carries `Origin`, `Referer`
/// or `Sec-Fetch-Site`) on another site than the project allows. Requests
/// without browser headers (curl, servers) pass.
pub fn check_origin(
    state: &DataState,
    resolved: &Resolved,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (origin, referer, fetch_site) = (
        header("origin"),
        header("referer"),
        header("sec-fetch-site"),
    );
    let presented = match (origin, referer) {
        (Some("null"), _) => return Err(csrf_failed("opaque Origin")),
        (Some(o), _) => Some(parse_origin(o).ok_or_else(|| csrf_failed("malformed Origin"))?),
        (None, Some(r)) => Some(referer_origin(r).ok_or_else(|| csrf_failed("malformed Referer"))?),
        (None, None) => None,
    };
    match presented {
        Some(origin) if !allowed_origin(state, resolved, &origin) => {
            Err(csrf_failed("origin not allowed"))
        }
        Some(_) => Ok(()),
        None if fetch_site.is_none()
            || matches!(fetch_site, Some("same-origin") | Some("none")) =>
        {
            Ok(())
        }
        None => Err(csrf_failed("not a same-origin request")),
    }
}

/// The CSRF token of a cookie session: derived from the session id under a
/// key of the master key, so the server mints it and never adopts one a
/// client (or a sibling subdomain tossing cookies) sends.
pub fn csrf_token(state: &DataState, session_id: &str) -> String {
    b64url(&hmac_sha256(&state.csrf_key, session_id.as_bytes()))
}

/// The CSRF rule for a request authenticated by cookie: when it comes from
/// a browser, it must come from an allowed origin and carry `X-CSRF-Token`
/// equal to the `identity_csrf` cookie, which is the session's own token.
/// Requests without browser headers (curl, servers) are not subject to it.
pub fn check_csrf(
    state: &DataState,
    resolved: &Resolved,
    method: &Method,
    headers: &HeaderMap,
    session_id: &str,
) -> Result<(), ApiError> {
    if !is_mutating(method) {
        return Ok(());
    }
    let browser = ["origin", "referer", "sec-fetch-site"]
        .iter()
        .any(|h| headers.contains_key(*h));
    if !browser {
        return Ok(());
    }
    check_origin(state, resolved, headers)?;
    let expected = cookie(headers, CSRF_COOKIE).ok_or_else(|| csrf_failed("no CSRF cookie"))?;
    let given = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| csrf_failed("missing X-CSRF-Token"))?;
    if !ct_eq(expected.as_bytes(), given.as_bytes()) {
        return Err(csrf_failed("X-CSRF-Token does not match"));
    }
    if !ct_eq(csrf_token(state, session_id).as_bytes(), given.as_bytes()) {
        return Err(csrf_failed("X-CSRF-Token is not this session's"));
    }
    Ok(())
}

fn referer_origin(referer: &str) -> Option<String> {
    let (scheme, rest) = referer.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    parse_origin(&format!("{scheme}://{authority}"))
}

fn allowed_origin(state: &DataState, resolved: &Resolved, origin: &str) -> bool {
    if crate::cors::project_allows(state, &resolved.project, origin) {
        return true;
    }
    // The branded auth domain the request came to is its own origin.
    if let Via::Host(host) = &resolved.via {
        let (scheme, rest) = origin.split_once("://").unwrap_or(("", ""));
        let origin_host = rest.rsplit_once(':').map(|(h, _)| h).unwrap_or(rest);
        return origin_host == host && (scheme == "https" || state.config.dev_mode);
    }
    false
}

/// An authenticated end user: a valid access token of this project whose
/// session is live. Cookie-authenticated mutating requests pass the CSRF rule.
pub struct Caller {
    pub claims: Arc<AccessClaims>,
    /// The live session and its user (from the session cache).
    pub view: Arc<crate::sessions::SessionView>,
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
        if via_cookie {
            check_csrf(state, &resolved, &parts.method, &parts.headers, &claims.sid)?;
        }
        Ok(Caller {
            claims,
            view,
            resolved,
            via_cookie,
        })
    }
}
