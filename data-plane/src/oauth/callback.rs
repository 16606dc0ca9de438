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
use crate::oauth::accounts::{Ask, sign_in_user};
use crate::oauth::exchange::start_oauth_session;
use crate::oauth::flow::{
    EXCHANGE, LINK_CONFIRM, STATE, binding_cookie, binding_header, provider_config,
};
use crate::oauth::sso::sso_tenant;
use crate::request::client::Client;
use crate::request::resolve::{Resolved, Via};
use crate::request::transport;
use crate::store::one_time_codes as codes;
use crate::store::sessions::SessionRow;
use crate::store::users::{self, UserRow};

const CODE_TTL_MS: i64 = 60 * 1000;

#[derive(Deserialize, Default)]
pub struct CallbackParams {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
    /// Apple's form post: the name, on the first sign-in only.
    user: Option<String>,
}

/// How a callback ends well.
enum Done {
    /// Bearer apps (or a user with a second factor): a one-time code.
    Code(String),
    /// Cookie transport: the session, set as cookies on the redirect.
    Session(Box<(UserRow, SessionRow, String)>),
    /// A link flow: a one-time code the signed-in user confirms the link
    /// with (`link::confirm`); the browser that came back may not be theirs.
    LinkCode(String),
}

fn invalid_state() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_state",
        "this sign-in is unknown, used or expired: start again",
    )
}

/// `redirect_to` with `name=value` set in its query (before any fragment;
/// a parameter of that name already there is replaced, not repeated).
fn with_param(url: &str, name: &str, value: &str) -> String {
    let (base, fragment) = match url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url, None),
    };
    let (path, query) = base.split_once('?').unwrap_or((base, ""));
    let mut pairs: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| p.split('=').next() != Some(name))
        .collect();
    let ours = format!("{name}={value}");
    pairs.push(&ours);
    let mut out = format!("{path}?{}", pairs.join("&"));
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// A redirect that also clears the (spent) binding cookie.
fn redirect(url: &str, binding: &(bool, String), mut headers: HeaderMap) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(url) {
        response.headers_mut().insert(LOCATION, v);
    }
    let (dev_mode, name) = binding;
    if let Ok(v) = HeaderValue::from_str(&binding_header(*dev_mode, name, "", 0)) {
        headers.append(SET_COOKIE, v);
    }
    for cookie in headers.get_all(SET_COOKIE) {
        response.headers_mut().append(SET_COOKIE, cookie.clone());
    }
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
            "user" => p.user = Some(v),
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
    // Suspended since the sign-in started: nothing more happens in it.
    if project.status != crate::request::resolve::ProjectStatus::Active {
        return Err(crate::request::resolve::suspended());
    }
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
    let binding_name = binding_cookie(state.config.dev_mode, &state_value);
    let outcome: Result<Done, &'static str> = async {
        if data["provider"].as_str() != Some(provider.as_str()) {
            return Err("invalid_state");
        }
        let binding = transport::cookie(&headers, &binding_name).unwrap_or("");
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
        let sso = match &cfg.tenant_id {
            Some(tenant_id) => Some(sso_tenant(&state, &project_id, tenant_id).await?),
            None => None,
        };
        let mut who = state
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
        if who.name.is_none() {
            who.name = params.user.as_deref().and_then(apple_name);
        }
        let mut tx = db.scope(&project_id).await.map_err(|_| "server_error")?;
        if let Some(link_user) = data["link_user"].as_str() {
            // Nothing is linked yet: whoever holds a link token can send
            // any browser through the provider, so the answer waits for the
            // user who asked to confirm it while signed in.
            let who = serde_json::to_vec(&who).map_err(|_| "server_error")?;
            let sealed = state.master_key.seal(
                &who,
                &format!("oauth-link:{project_id}:{link_user}:{provider}"),
            );
            let data = json!({"provider": provider, "who": sealed});
            let code = issue_code(&mut tx, &project_id, LINK_CONFIRM, link_user, &data)
                .await
                .map_err(|_| "server_error")?;
            tx.commit().await.map_err(|_| "server_error")?;
            return Ok(Done::LinkCode(code));
        }
        let ask = Ask {
            provider: &provider,
            who: &who,
            link_user: None,
            sso: sso.as_ref(),
        };
        let user_id = sign_in_user(&state, &mut tx, &resolved, &client, &ask).await?;
        let banned = users::find(&mut tx, &project_id, &user_id)
            .await
            .map_err(|_| "server_error")?
            .is_some_and(|u| u.is_banned(now));
        if banned {
            return Err("user_banned");
        }
        if data["transport"] == "cookie" {
            let server = |_| "server_error";
            users::lock_credentials(&mut tx, &project_id, &user_id)
                .await
                .map_err(server)?;
            let user = users::find(&mut tx, &project_id, &user_id)
                .await
                .map_err(server)?
                .ok_or("server_error")?;
            // A second factor is asked for by the app, with the code.
            if !user.mfa_enabled {
                let (session, refresh) =
                    start_oauth_session(&mut tx, &resolved, &client, &user, &provider)
                        .await
                        .map_err(|_| "server_error")?;
                tx.commit().await.map_err(server)?;
                return Ok(Done::Session(Box::new((user, session, refresh))));
            }
        }
        let app_challenge = data["app_challenge"].as_str();
        let data = json!({"provider": provider, "app_challenge": app_challenge});
        let exchange = issue_code(&mut tx, &project_id, EXCHANGE, &user_id, &data)
            .await
            .map_err(|_| "server_error")?;
        tx.commit().await.map_err(|_| "server_error")?;
        Ok(Done::Code(exchange))
    }
    .await;
    let binding = (state.config.dev_mode, binding_name);
    match outcome {
        Ok(Done::Code(exchange)) => Ok(redirect(
            &with_param(&redirect_to, "code", &exchange),
            &binding,
            HeaderMap::new(),
        )),
        Ok(Done::LinkCode(code)) => Ok(redirect(
            &with_param(&redirect_to, "link_code", &code),
            &binding,
            HeaderMap::new(),
        )),
        Ok(Done::Session(done)) => {
            let (user, session, refresh) = *done;
            let signed_in = crate::sessions::issue::signed_in(
                &state,
                &resolved,
                transport::Transport::Cookie,
                StatusCode::OK,
                &user,
                &session,
                &refresh,
            )
            .await?;
            Ok(redirect(
                &redirect_to,
                &binding,
                signed_in.headers().clone(),
            ))
        }
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
            Ok(redirect(
                &with_param(&redirect_to, "error", reason),
                &binding,
                HeaderMap::new(),
            ))
        }
    }
}

/// A one-time code (60 s) for `user_id`, stored as its hash.
async fn issue_code(
    tx: &mut identity_shared::db::Tx,
    project_id: &str,
    purpose: &'static str,
    user_id: &str,
    data: &Value,
) -> Result<String, identity_shared::db::DbError> {
    let code = random_token();
    let now = now_ms();
    codes::insert(
        tx,
        &codes::NewCode {
            id: &new_id("otc"),
            project_id,
            purpose,
            user_id: Some(user_id),
            email: None,
            target: None,
            token_hash: Some(&sha256_hex(code.as_bytes())),
            code_hash: None,
            data: Some(&data.to_string()),
            now,
            expires_at: now + CODE_TTL_MS,
        },
    )
    .await?;
    Ok(code)
}

/// The name in Apple's `user` form field (`{"name": {"firstName",
/// "lastName"}}`), sent on the first sign-in only and not signed: a
/// display name, never an identity.
fn apple_name(user: &str) -> Option<String> {
    let v: Value = serde_json::from_str(user).ok()?;
    let part = |k: &str| v["name"][k].as_str().map(str::trim).unwrap_or("");
    let name = format!("{} {}", part("firstName"), part("lastName"));
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_string())
}
