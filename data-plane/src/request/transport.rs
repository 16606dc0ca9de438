//! How tokens travel: bearer in JSON, or cookies. Requests identified by
//! `X-Project-Key` default to bearer, requests identified by `Host` to
//! cookies; `X-Token-Transport` overrides.

use crate::request::resolve::{Resolved, Via};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use identity_shared::error::ApiError;

pub const ACCESS_COOKIE: &str = "identity_at";

pub const REFRESH_COOKIE: &str = "identity_rt";

pub const CSRF_COOKIE: &str = "identity_csrf";

pub const CSRF_HEADER: &str = "x-csrf-token";

/// A browser trusted after a second factor (HttpOnly; sent only to the
/// auth routes).
pub const TRUSTED_BROWSER_COOKIE: &str = "identity_tb";

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

pub fn set_trusted_browser_cookie(
    headers: &mut HeaderMap,
    secure: bool,
    token: &str,
    max_age: i64,
) {
    set_cookie(
        headers,
        TRUSTED_BROWSER_COOKIE,
        token,
        "/v1/auth",
        max_age,
        true,
        secure,
    );
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

/// Only the access cookie (a new access token for the same session).
pub fn set_access_cookie(headers: &mut HeaderMap, secure: bool, access: &str, access_ttl: i64) {
    set_cookie(
        headers,
        ACCESS_COOKIE,
        access,
        "/",
        access_ttl,
        true,
        secure,
    );
}

pub fn clear_session_cookies(headers: &mut HeaderMap, secure: bool) {
    set_cookie(headers, ACCESS_COOKIE, "", "/", 0, true, secure);
    set_cookie(headers, REFRESH_COOKIE, "", "/v1/auth", 0, true, secure);
    set_cookie(headers, CSRF_COOKIE, "", "/", 0, false, secure);
}
