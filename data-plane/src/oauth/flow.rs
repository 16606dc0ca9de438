//! The sign-in flow: `GET /v1/auth/oauth/{provider}/start` sends the
//! browser to the provider (state, nonce and PKCE kept server-side for 10
//! minutes, single-use, bound to the browser by an HttpOnly cookie);
//! `GET|POST .../callback` checks them, lets the provider's answer be
//! verified (`provider`), finds or creates the user, and sends the browser
//! back to `redirect_to` with a one-time code (60 s, single-use) that the
//! app exchanges at `POST /v1/auth/oauth/exchange` for tokens. No token
//! travels in a URL; failures go back as `?error=<code>`.

use axum::extract::{Path, Query, State};
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use identity_shared::audit::{self, Event, Outcome};
use identity_shared::crypto::{random_token, sha256_hex};
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::ids::new_id;
use identity_shared::settings::parse_origin;
use identity_shared::time::now_ms;
use serde::Deserialize;
use serde_json::json;

use crate::DataState;
use crate::audit::event;
pub use crate::oauth::config::provider_config;
use crate::request::client::Client;
use crate::request::resolve::{Resolved, Via};
use crate::store::one_time_codes::{self as codes};

pub const STATE: &str = "oauth_state";
pub const EXCHANGE: &str = "oauth_exchange";
pub const LINK: &str = "oauth_link";
/// A provider's answer in a link flow, waiting for the user to confirm it.
pub const LINK_CONFIRM: &str = "oauth_link_confirm";
const STATE_TTL_MS: i64 = 10 * 60 * 1000;
/// The prefix of the cookie that binds a pending authorization to the
/// browser that started it ([`binding_cookie`]).
pub const BINDING_COOKIE: &str = "identity_oauth";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartQuery {
    redirect_to: String,
    /// Browser navigations cannot send headers: a publishable key here.
    project_key: Option<String>,
    /// Linking to the signed-in user: `link=true` with a `link_token`.
    link: Option<bool>,
    link_token: Option<String>,
    /// The app's PKCE challenge for the one-time code (S256).
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

fn invalid_redirect() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_redirect",
        "redirect_to must be a URL on one of the project's allowed origins",
    )
}

/// `redirect_to` must be a URL on one of the project's allowed origins.
pub fn allowed_redirect(resolved: &Resolved, url: &str) -> ApiResult<String> {
    if url.len() > 2048 || url.chars().any(|c| c.is_control() || c == ' ') {
        return Err(invalid_redirect());
    }
    let (scheme, rest) = url.split_once("://").ok_or_else(invalid_redirect)?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let origin =
        parse_origin(&format!("{scheme}://{}", &rest[..end])).ok_or_else(invalid_redirect)?;
    if resolved.project.settings.allowed_origins.contains(&origin) {
        Ok(url.to_string())
    } else {
        Err(invalid_redirect())
    }
}

/// Where the provider sends the browser back: the origin `start` was
/// reached at (a branded auth domain), else the public base URL.
fn callback_url(state: &DataState, resolved: &Resolved, provider: &str) -> String {
    format!(
        "{}/v1/auth/oauth/{provider}/callback",
        origin(state, resolved)
    )
}

/// The origin this request reached: its branded auth domain, else the
/// public base URL.
pub fn origin(state: &DataState, resolved: &Resolved) -> String {
    match &resolved.via {
        Via::Host(host) => {
            let scheme = if state.config.public_base_url.starts_with("http://") {
                "http"
            } else {
                "https"
            };
            format!("{scheme}://{host}")
        }
        Via::Key { .. } => state.config.public_base_url.clone(),
    }
}

pub async fn start(
    State(state): State<DataState>,
    Path(provider): Path<String>,
    client: Client,
    headers: HeaderMap,
    Query(q): Query<StartQuery>,
) -> ApiResult<Response> {
    let resolved = match &q.project_key {
        Some(key) => {
            let r = state.resolver.resolve_key(key).await?;
            if r.is_secret_key() {
                return Err(ApiError::forbidden(
                    "publishable_key_required",
                    "a browser navigation carries a publishable key (pk_...), never a secret one",
                ));
            }
            r
        }
        None => state.resolver.resolve(&headers).await?,
    };
    crate::email::send::limit(&state, &resolved, &client)?;
    // Checked before anything else: a foreign redirect never leaves here.
    let redirect_to = allowed_redirect(&resolved, &q.redirect_to)?;
    let app_challenge = app_challenge(&q)?;
    if q.link == Some(true) && q.link_token.is_none() {
        return Err(ApiError::invalid_request(
            "linking passes link_token (from POST /v1/auth/oauth/link-token)",
        ));
    }
    let project_id = resolved.project.id.clone();
    let cfg = provider_config(&state, &project_id, &provider).await?;
    let callback = callback_url(&state, &resolved, &provider);
    // The project rides in the state: the callback (on the shared origin)
    // finds its project, and the row, from it.
    let state_value = format!("{project_id}.{}", random_token());
    let nonce = random_token();
    let binding = random_token();
    let db = state.shard(&resolved)?;
    let now = now_ms();
    // Linking: the signed-in user the link token names (spent here).
    let link_user = match &q.link_token {
        Some(token) => Some(spend_link_token(db, &project_id, token, now).await?),
        None => None,
    };
    let started = state
        .oauth
        .start(&cfg, &callback, &state_value, &nonce)
        .await
        .map_err(|e| {
            // The cause stays in the log: it may describe another network.
            tracing::warn!(provider = %provider, error = %e, "OAuth start failed");
            ApiError::unavailable(e.code(), "the sign-in provider cannot be reached")
        })?;
    let transport = match resolved.via {
        Via::Host(_) => "cookie",
        Via::Key { .. } => "bearer",
    };
    let data = json!({
        "provider": provider,
        "nonce": nonce,
        "verifier": state.master_key.seal(started.pkce_verifier.as_bytes(), &format!("oauth-pkce:{project_id}")),
        "binding": sha256_hex(binding.as_bytes()),
        "callback": callback,
        "transport": transport,
        "link_user": link_user,
        "app_challenge": app_challenge,
    })
    .to_string();
    let mut tx = db.scope(&project_id).await?;
    codes::insert(
        &mut tx,
        &codes::NewCode {
            id: &new_id("otc"),
            project_id: &project_id,
            purpose: STATE,
            user_id: link_user.as_deref(),
            email: None,
            target: Some(&redirect_to),
            token_hash: Some(&sha256_hex(state_value.as_bytes())),
            code_hash: None,
            data: Some(&data),
            now,
            expires_at: now + STATE_TTL_MS,
        },
    )
    .await?;
    let ip = client.ip_text();
    audit::record(
        &mut tx,
        Event {
            actor: link_user.as_deref(),
            data: json!({"provider": provider, "link": link_user.is_some()}),
            ..event(&resolved, &client, &ip, "oauth.started", Outcome::Success)
        },
    )
    .await?;
    tx.commit().await?;
    let dev = state.config.dev_mode;
    let cookie = binding_header(dev, &binding_cookie(dev, &state_value), &binding, 600);
    let mut response = StatusCode::FOUND.into_response();
    response.headers_mut().insert(
        LOCATION,
        HeaderValue::from_str(&started.url).map_err(ApiError::internal)?,
    );
    response.headers_mut().insert(
        SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(ApiError::internal)?,
    );
    Ok(response)
}

/// The binding cookie of one pending authorization: named after its state,
/// so sign-ins started in two tabs do not overwrite each other's. Outside
/// dev mode it is a `__Host-` cookie, which only this exact host can set:
/// a sibling subdomain cannot plant its own binding for a login CSRF.
pub fn binding_cookie(dev_mode: bool, state_value: &str) -> String {
    let prefix = if dev_mode { "" } else { "__Host-" };
    format!(
        "{prefix}{BINDING_COOKIE}_{}",
        &sha256_hex(state_value.as_bytes())[..16]
    )
}

/// The `Set-Cookie` value for a binding cookie (`max_age` 0 clears it).
/// SameSite=None (so Apple's cross-site form post carries it) needs
/// Secure, which a plain-HTTP dev server cannot set; `__Host-` needs
/// Secure and `Path=/`.
pub fn binding_header(dev_mode: bool, name: &str, value: &str, max_age: u32) -> String {
    if dev_mode {
        format!("{name}={value}; Path=/v1/auth/oauth; HttpOnly; Max-Age={max_age}; SameSite=Lax")
    } else {
        format!("{name}={value}; Path=/; HttpOnly; Max-Age={max_age}; SameSite=None; Secure")
    }
}

/// The app's own PKCE challenge for the one-time code (S256, optional):
/// the code is then exchanged only with its verifier.
fn app_challenge(q: &StartQuery) -> ApiResult<Option<String>> {
    let Some(challenge) = &q.code_challenge else {
        return match q.code_challenge_method {
            Some(_) => Err(ApiError::invalid_request(
                "code_challenge_method without code_challenge",
            )),
            None => Ok(None),
        };
    };
    if q.code_challenge_method.as_deref().unwrap_or("S256") != "S256" {
        return Err(ApiError::invalid_request(
            "code_challenge_method must be S256",
        ));
    }
    let well_formed = challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return Err(ApiError::invalid_request(
            "code_challenge must be the base64url SHA-256 of the verifier (43 characters)",
        ));
    }
    Ok(Some(challenge.clone()))
}

/// The user a link token names, spending it; `400 invalid_link_token`.
async fn spend_link_token(
    db: &identity_shared::db::Db,
    project_id: &str,
    token: &str,
    now: i64,
) -> ApiResult<String> {
    let invalid = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_link_token",
            "the link token is not valid or has expired",
        )
    };
    let mut tx = db.scope(project_id).await?;
    let row = codes::find_by_token(
        &mut tx,
        project_id,
        LINK,
        &sha256_hex(token.as_bytes()),
        now,
    )
    .await?
    .ok_or_else(invalid)?;
    if !codes::consume(&mut tx, project_id, &row.id, now).await? {
        return Err(invalid());
    }
    tx.commit().await?;
    row.user_id.ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binding_cookie_is_host_only_outside_dev_mode() {
        let name = binding_cookie(false, "prj.state");
        assert!(name.starts_with("__Host-identity_oauth_"), "{name}");
        assert_eq!(
            binding_header(false, &name, "v", 600),
            format!("{name}=v; Path=/; HttpOnly; Max-Age=600; SameSite=None; Secure")
        );
        // Cleared with the same attributes, or a browser ignores it.
        assert!(binding_header(false, &name, "", 0).ends_with("Max-Age=0; SameSite=None; Secure"));
        let dev = binding_cookie(true, "prj.state");
        assert_eq!(dev, name.trim_start_matches("__Host-"));
        assert!(binding_header(true, &dev, "v", 600).contains("Path=/v1/auth/oauth"));
    }
}
