//! Cross-site request forgery: which origins may send a browser request,
//! the server-minted CSRF token of a cookie session, and the rule every
//! cookie-authenticated mutation passes.

use crate::DataState;
use crate::request::resolve::{Resolved, Via};
use crate::request::transport::{CSRF_COOKIE, CSRF_HEADER, cookie};
use axum::http::{HeaderMap, Method};
use identity_shared::crypto::{b64url, ct_eq, hmac_sha256};
use identity_shared::error::ApiError;
use identity_shared::settings::parse_origin;

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
    if crate::request::cors::project_allows(state, &resolved.project, origin) {
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
