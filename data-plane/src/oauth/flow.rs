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
use identity_shared::crypto::{oauth_secret_context, random_token, sha256_hex};
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::ids::new_id;
use identity_shared::settings::parse_origin;
use identity_shared::time::now_ms;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::DataState;
use crate::audit::event;
use crate::oauth::provider::{GithubEndpoints, ProviderConfig};
use crate::request::client::Client;
use crate::request::resolve::{Resolved, Via};
use crate::store::oauth_providers;
use crate::store::one_time_codes::{self as codes};

pub const STATE: &str = "oauth_state";
pub const EXCHANGE: &str = "oauth_exchange";
const STATE_TTL_MS: i64 = 10 * 60 * 1000;
/// The cookie that binds a pending authorization to the browser that
/// started it.
pub const BINDING_COOKIE: &str = "identity_oauth";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartQuery {
    redirect_to: String,
    /// Browser navigations cannot send headers: a publishable key here.
    project_key: Option<String>,
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

/// The provider's configuration with its secret opened; `404
/// unknown_provider` when the project has none (or it is disabled).
pub async fn provider_config(
    state: &DataState,
    project_id: &str,
    provider: &str,
) -> ApiResult<ProviderConfig> {
    let unknown = || {
        ApiError::not_found_code(
            "unknown_provider",
            "this project has no such sign-in provider enabled",
        )
    };
    let mut tx = state.control_db.scope_read(project_id).await?;
    let row = oauth_providers::find(&mut tx, project_id, provider).await?;
    tx.commit().await?;
    let row = row.filter(|r| r.enabled).ok_or_else(unknown)?;
    let client_secret = match &row.client_secret_sealed {
        Some(sealed) => Some(
            state
                .master_key
                .open(
                    sealed,
                    &oauth_secret_context(project_id, provider, "client_secret"),
                )
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| ApiError::internal("an OAuth client secret does not open"))?,
        ),
        None => None,
    };
    let endpoints: Option<Value> = row
        .endpoints
        .as_deref()
        .and_then(|e| serde_json::from_str(e).ok());
    let issuer = row.issuer.clone().or_else(|| match provider {
        "google" => Some("https://accounts.google.com".into()),
        "apple" => Some("https://appleid.apple.com".into()),
        _ => None,
    });
    let github = (provider == "github").then(|| {
        let d = GithubEndpoints::default();
        let pick = |k: &str, default: String| {
            endpoints
                .as_ref()
                .and_then(|e| e[k].as_str())
                .map(str::to_string)
                .unwrap_or(default)
        };
        GithubEndpoints {
            authorize: pick("authorize", d.authorize),
            token: pick("token", d.token),
            api: pick("api", d.api),
        }
    });
    if issuer.is_none() && github.is_none() {
        return Err(ApiError::unprocessable(
            "provider_misconfigured",
            "this provider has no issuer to discover",
        ));
    }
    Ok(ProviderConfig {
        provider: provider.to_string(),
        client_id: row.client_id,
        client_secret,
        scopes: serde_json::from_str(&row.scopes).unwrap_or_default(),
        issuer,
        github,
    })
}

/// Where the provider sends the browser back: the origin `start` was
/// reached at (a branded auth domain), else the public base URL.
fn callback_url(state: &DataState, resolved: &Resolved, provider: &str) -> String {
    let base = match &resolved.via {
        Via::Host(host) => {
            let scheme = if state.config.public_base_url.starts_with("http://") {
                "http"
            } else {
                "https"
            };
            format!("{scheme}://{host}")
        }
        Via::Key { .. } => state.config.public_base_url.clone(),
    };
    format!("{base}/v1/auth/oauth/{provider}/callback")
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
    let project_id = resolved.project.id.clone();
    let cfg = provider_config(&state, &project_id, &provider).await?;
    let callback = callback_url(&state, &resolved, &provider);
    // The project rides in the state: the callback (on the shared origin)
    // finds its project, and the row, from it.
    let state_value = format!("{project_id}.{}", random_token());
    let nonce = random_token();
    let binding = random_token();
    let started = state
        .oauth
        .start(&cfg, &callback, &state_value, &nonce)
        .await
        .map_err(|e| {
            // The cause stays in the log: it may describe another network.
            tracing::warn!(provider = %provider, error = %e, "OAuth start failed");
            ApiError::unavailable(e.code(), "the sign-in provider cannot be reached")
        })?;
    let data = json!({
        "provider": provider,
        "nonce": nonce,
        "verifier": state.master_key.seal(started.pkce_verifier.as_bytes(), &format!("oauth-pkce:{project_id}")),
        "binding": sha256_hex(binding.as_bytes()),
        "callback": callback,
    })
    .to_string();
    let db = state.shard(&resolved)?;
    let mut tx = db.scope(&project_id).await?;
    let now = now_ms();
    codes::insert(
        &mut tx,
        &codes::NewCode {
            id: &new_id("otc"),
            project_id: &project_id,
            purpose: STATE,
            user_id: None,
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
            data: json!({"provider": provider}),
            ..event(&resolved, &client, &ip, "oauth.started", Outcome::Success)
        },
    )
    .await?;
    tx.commit().await?;
    let secure = if state.config.dev_mode {
        ""
    } else {
        "; Secure"
    };
    let cookie = format!(
        "{BINDING_COOKIE}={binding}; Path=/v1/auth/oauth; HttpOnly; SameSite=Lax; Max-Age=600{secure}"
    );
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
