//! `GET|POST /v1/auth/oauth/{provider}/callback`: the provider's answer.
//! The state (found by its hash, in the project it names) is spent first;
//! then the browser binding, the provider's verdict and the account are
//! judged, and the browser goes back to `redirect_to` with a one-time code
//! or `?error=<code>`.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use identity_shared::audit::{self, Event, Outcome};
use identity_shared::crypto::{ct_eq, random_token, sha256_hex};
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::ids::new_id;
use identity_shared::time::now_ms;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::DataState;
use crate::audit::event;
use crate::oauth::flow::{BINDING_COOKIE, EXCHANGE, STATE, provider_config};
use crate::request::client::Client;
use crate::request::resolve::{Resolved, Via};
use crate::request::transport;
use crate::store::one_time_codes as codes;

const CODE_TTL_MS: i64 = 60 * 1000;

#[derive(Deserialize, Default)]
pub struct CallbackParams {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

fn invalid_state() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_state",
        "this sign-in is unknown, used or expired: start again",
    )
}

/// `redirect_to` with `name=value` appended to its query.
fn with_param(url: &str, name: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{name}={value}")
}

fn redirect(url: &str) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(url) {
        response.headers_mut().insert(LOCATION, v);
    }
    // The binding is spent either way.
    response.headers_mut().insert(
        SET_COOKIE,
        HeaderValue::from_static("identity_oauth=; Path=/v1/auth/oauth; HttpOnly; Max-Age=0"),
    );
    *response.body_mut() = Body::empty();
    response
}

pub async fn callback_get(
    State(state): State<DataState>,
    Path(provider): Path<String>,
    client: Client,
    headers: HeaderMap,
    Query(params): Query<CallbackParams>,
) -> ApiResult<Response> {
    callback(state, provider, client, headers, params).await
}

pub async fn callback_post(
    State(state): State<DataState>,
    Path(provider): Path<String>,
    client: Client,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let params: CallbackParams = serde_urlencoded_form(&body)?;
    callback(state, provider, client, headers, params).await
}

/// A form-encoded body (`response_mode=form_post`), leniently: unknown
/// fields are ignored, malformed input is `400 invalid_request`.
fn serde_urlencoded_form(body: &[u8]) -> ApiResult<CallbackParams> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::invalid_request("the form is not UTF-8"))?;
    let mut p = CallbackParams::default();
    for pair in text.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v =
            percent_decode(v).ok_or_else(|| ApiError::invalid_request("the form is malformed"))?;
        match k {
            "state" => p.state = Some(v),
            "code" => p.code = Some(v),
            "error" => p.error = Some(v),
            _ => {}
        }
    }
    Ok(p)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                out.push(u8::from_str_radix(s.get(i + 1..i + 3)?, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

async fn callback(
    state: DataState,
    provider: String,
    client: Client,
    headers: HeaderMap,
    params: CallbackParams,
) -> ApiResult<Response> {
    let state_value = params
        .state
        .filter(|s| s.len() <= 200)
        .ok_or_else(invalid_state)?;
    let project_id = state_value.split('.').next().unwrap_or("").to_string();
    let project = state
        .resolver
        .project(&project_id)
        .await?
        .ok_or_else(invalid_state)?;
    let resolved = Resolved {
        project,
        via: Via::Key {
            kind: identity_shared::keys::KeyKind::Publishable,
            key_id: "oauth-callback".into(),
        },
    };
    crate::email::send::limit(&state, &resolved, &client)?;
    let db = state.shard(&resolved)?;
    let now = now_ms();
    let mut tx = db.scope(&project_id).await?;
    let row = codes::find_by_token(
        &mut tx,
        &project_id,
        STATE,
        &sha256_hex(state_value.as_bytes()),
        now,
    )
    .await?
    .ok_or_else(invalid_state)?;
    if !codes::consume(&mut tx, &project_id, &row.id, now).await? {
        return Err(invalid_state());
    }
    // Spent, and committed before any provider is called: no transaction
    // (no lock, no pooled connection) waits on a provider's answer.
    tx.commit().await?;
    let data: Value = row
        .data
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_default();
    let redirect_to = row.target.clone().unwrap_or_default();
    let ip = client.ip_text();
    // The rest is judged with the row spent: a failure goes back to the app.
    let outcome: Result<String, &'static str> = async {
        if data["provider"].as_str() != Some(provider.as_str()) {
            return Err("invalid_state");
        }
        let binding = transport::cookie(&headers, BINDING_COOKIE).unwrap_or("");
        let expected = data["binding"].as_str().unwrap_or("");
        if binding.is_empty()
            || !ct_eq(
                sha256_hex(binding.as_bytes()).as_bytes(),
                expected.as_bytes(),
            )
        {
            return Err("state_mismatch");
        }
        if params.error.is_some() {
            return Err("access_denied");
        }
        let code = params
            .code
            .as_deref()
            .filter(|c| !c.is_empty() && c.len() <= 2048)
            .ok_or("invalid_request")?;
        let verifier = data["verifier"]
            .as_str()
            .and_then(|s| {
                state
                    .master_key
                    .open(s, &format!("oauth-pkce:{project_id}"))
                    .ok()
            })
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or("invalid_state")?;
        let cfg = provider_config(&state, &project_id, &provider)
            .await
            .map_err(|_| "unknown_provider")?;
        let who = state
            .oauth
            .finish(
                &cfg,
                data["callback"].as_str().unwrap_or(""),
                code,
                &verifier,
                data["nonce"].as_str().unwrap_or(""),
            )
            .await
            .map_err(|e| e.code())?;
        let mut tx = db.scope(&project_id).await.map_err(|_| "server_error")?;
        let user_id =
            super::accounts::sign_in_user(&state, &mut tx, &resolved, &client, &provider, &who)
                .await?;
        let exchange = random_token();
        codes::insert(
            &mut tx,
            &codes::NewCode {
                id: &new_id("otc"),
                project_id: &project_id,
                purpose: EXCHANGE,
                user_id: Some(&user_id),
                email: None,
                target: None,
                token_hash: Some(&sha256_hex(exchange.as_bytes())),
                code_hash: None,
                data: Some(&json!({"provider": provider}).to_string()),
                now,
                expires_at: now + CODE_TTL_MS,
            },
        )
        .await
        .map_err(|_| "server_error")?;
        tx.commit().await.map_err(|_| "server_error")?;
        Ok(exchange)
    }
    .await;
    match outcome {
        Ok(exchange) => Ok(redirect(&with_param(&redirect_to, "code", &exchange))),
        Err(reason) => {
            // A transaction of its own: whatever the failed step wrote was
            // rolled back with its transaction.
            let mut tx = db.scope(&project_id).await?;
            audit::record(
                &mut tx,
                Event {
                    data: json!({"provider": provider, "reason": reason}),
                    ..event(&resolved, &client, &ip, "oauth.failed", Outcome::Failure)
                },
            )
            .await?;
            tx.commit().await?;
            Ok(redirect(&with_param(&redirect_to, "error", reason)))
        }
    }
}
