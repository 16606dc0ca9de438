//! Password accounts and sessions: register, login, refresh, logout, the
//! session check, session management and password change.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use identity_shared::audit::{self, Event, Outcome};
use identity_shared::crypto::{b64url, hmac_sha256, random_token, sha256_hex};
use identity_shared::db::Tx;
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::http;
use identity_shared::ids::new_id;
use identity_shared::secret::Secret;
use identity_shared::time::now_ms;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::client::Client;
use crate::passwords::{self, Verified};
use crate::resolve::Resolved;
use crate::sessions::{self, SessionRow};
use crate::transport::{self, Caller, Transport};
use crate::users::{self, Email, NewUser, UserRow};
use crate::{DataState, limits};

pub fn router() -> Router<DataState> {
    Router::new()
        .route("/v1/auth/register", post(register))
        .route("/v1/auth/login", post(login))
        .route("/v1/auth/refresh", post(refresh))
        .route("/v1/auth/logout", post(logout))
        .route("/v1/auth/session", get(session))
        .route("/v1/auth/sessions", get(list_sessions))
        .route("/v1/auth/sessions/revoke-all", post(revoke_all))
        .route("/v1/auth/sessions/{id}", delete(revoke_one))
        .route("/v1/auth/password/change", post(change_password))
}

/// A JSON body that may be absent (cookie transport sends none); one that
/// is present must be declared `application/json` (415 otherwise).
fn optional_body<T: DeserializeOwned + Default>(
    headers: &HeaderMap,
    bytes: &Bytes,
) -> ApiResult<T> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    if !http::is_json_content_type(headers) {
        return Err(http::unsupported_media_type());
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::invalid_request(format!("invalid body: {e}")))
}

fn rate_limit(
    state: &DataState,
    resolved: &Resolved,
    client: &Client,
    action: &str,
    per_minute: u32,
) -> ApiResult<()> {
    let key = format!("{action}:{}:{}", resolved.project.id, client.ip_key());
    state.limiter.hit(&key, per_minute).map_err(ApiError::from)
}

/// Checks a presented password under the lockout policy: the evaluation is
/// reserved before any hashing (refused with 429 when locked) and released
/// if the password could not be checked at all. Every endpoint that checks
/// a password goes through here.
async fn check_password(
    state: &DataState,
    resolved: &Resolved,
    client: &Client,
    email_normalized: &str,
    user: Option<&UserRow>,
    password: String,
) -> ApiResult<(Verified, limits::Attempt)> {
    let project_id = &resolved.project.id;
    let db = state.shard(resolved)?;
    let key = limits::account_key(project_id, email_normalized);
    let attempt = limits::reserve(
        db,
        project_id,
        &key,
        &client.ip_key(),
        &client.ip_text(),
        user.map(|u| u.id.as_str()),
    )
    .await??;
    // Unknown account, or one without a password: the dummy hash, same cost.
    let stored = user.and_then(|u| u.password_hash.clone());
    match state.hasher.verify(project_id, password, stored).await {
        Ok(v) => Ok((v, attempt)),
        Err(e) => {
            if let Err(release) = limits::release(db, &attempt).await {
                tracing::warn!(error = %release, "could not release a lockout reservation");
            }
            Err(e)
        }
    }
}

fn event<'a>(
    resolved: &'a Resolved,
    client: &'a Client,
    ip: &'a str,
    kind: &'static str,
    outcome: Outcome,
) -> Event<'a> {
    Event {
        ip: Some(ip),
        user_agent: client.user_agent.as_deref(),
        ..Event::new(&resolved.project.id, kind, outcome)
    }
}

/// The refresh token that follows `value`: derived from it, so a client
/// retrying a consumed token within the grace window can be given the same
/// successor without it being stored anywhere in the clear.
fn successor_of(state: &DataState, value: &str) -> String {
    b64url(&hmac_sha256(&state.refresh_key, value.as_bytes()))
}

/// Issues the access token and answers with a `TokenResponse`, in the
/// body (bearer) or as cookies.
#[allow(clippy::too_many_arguments)]
async fn signed_in(
    state: &DataState,
    resolved: &Resolved,
    transport: Transport,
    status: StatusCode,
    user: &UserRow,
    session: &SessionRow,
    refresh_value: &str,
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
        )
        .await?;
    let mut body = json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": ttl,
        "user": user.to_json(),
        "session": session.to_json(Some(&session.id)),
    });
    let mut response_headers = HeaderMap::new();
    match transport {
        Transport::Bearer => body["refresh_token"] = Value::String(refresh_value.to_string()),
        Transport::Cookie => {
            // Minted by the server from the session, never taken from the
            // request: stable across refreshes (other tabs' requests in
            // flight stay valid), and an app on another origin, which cannot
            // read the auth domain's cookie, gets it from the body.
            let csrf = transport::csrf_token(state, &session.id);
            body["csrf_token"] = Value::String(csrf.clone());
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
    Ok((status, response_headers, Json(body)).into_response())
}

/// Starts a session with a first refresh token; returns the token's value.
async fn start_session(
    tx: &mut Tx,
    resolved: &Resolved,
    user: &UserRow,
    client: &Client,
) -> ApiResult<(SessionRow, String)> {
    let project = &resolved.project;
    let session = sessions::create(
        tx,
        &project.id,
        &user.id,
        client,
        &["pwd"],
        project.settings.refresh_token_ttl_seconds,
    )
    .await?;
    let evicted =
        sessions::evict_oldest(tx, &project.id, &user.id, sessions::MAX_LIVE_SESSIONS).await?;
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
    sessions::insert_refresh(
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

/// Checks the transport header, and that a browser about to receive session
/// cookies was sent by an allowed origin: another site must not be able to
/// sign a visitor in to an account of its choosing (login CSRF).
fn signing_in_from(
    state: &DataState,
    resolved: &Resolved,
    headers: &HeaderMap,
) -> ApiResult<Transport> {
    let transport = transport::transport(resolved, headers)?;
    if transport == Transport::Cookie {
        transport::check_origin(state, resolved, headers)?;
    }
    Ok(transport)
}

// ---- register ----

#[derive(Debug, Deserialize)]
struct RegisterBody {
    email: String,
    password: Secret<String>,
    name: Option<String>,
    /// Accepted now; creates an organisation once organisations exist.
    #[allow(dead_code)]
    organization_name: Option<String>,
}

async fn register(
    State(state): State<DataState>,
    resolved: Resolved,
    client: Client,
    headers: HeaderMap,
    http::Json(body): http::Json<RegisterBody>,
) -> ApiResult<Response> {
    rate_limit(
        &state,
        &resolved,
        &client,
        "register",
        resolved.project.settings.rate_limits.register_per_minute,
    )?;
    let transport = signing_in_from(&state, &resolved, &headers)?;
    let email = Email::parse(&body.email)?;
    passwords::validate_new(body.password.expose())?;
    let name = users::parse_name(body.name.as_deref())?;
    if let Some(org) = &body.organization_name
        && (org.chars().count() > 200 || org.chars().any(char::is_control))
    {
        return Err(ApiError::unprocessable(
            "invalid_name",
            "organization_name must be at most 200 characters",
        ));
    }
    let project_id = resolved.project.id.clone();
    // Fail fast on a taken email before paying for a hash.
    let db = state.shard(&resolved)?;
    {
        let mut tx = db.scope_read(&project_id).await?;
        let taken = users::find_by_email(&mut tx, &project_id, &email.normalized)
            .await?
            .is_some();
        tx.commit().await?;
        if taken {
            return Err(users::email_taken());
        }
    }
    let hash = state
        .hasher
        .hash(&project_id, body.password.into_inner())
        .await?;
    let mut tx = db.scope(&project_id).await?;
    let user = users::insert(
        &mut tx,
        &project_id,
        NewUser {
            email,
            name,
            password_hash: Some(hash),
            email_verified: false,
        },
    )
    .await?;
    let (session, refresh_value) = start_session(&mut tx, &resolved, &user, &client).await?;
    let ip = client.ip_text();
    audit::record(
        &mut tx,
        Event {
            actor: Some(&user.id),
            subject: Some(&user.id),
            data: json!({"session_id": session.id}),
            ..event(&resolved, &client, &ip, "user.registered", Outcome::Success)
        },
    )
    .await?;
    tx.commit().await?;
    signed_in(
        &state,
        &resolved,
        transport,
        StatusCode::CREATED,
        &user,
        &session,
        &refresh_value,
    )
    .await
}

// ---- login ----

#[derive(Debug, Deserialize)]
struct LoginBody {
    email: String,
    password: Secret<String>,
}

/// Audits a failed password check (and the lock it caused, if any); the
/// failure itself was counted when the attempt was reserved.
async fn record_password_failure(
    tx: &mut Tx,
    resolved: &Resolved,
    client: &Client,
    subject: Option<&str>,
    kind: &'static str,
    attempt: &limits::Attempt,
) -> ApiResult<()> {
    let ip = client.ip_text();
    audit::record(
        tx,
        Event {
            actor: if kind == "login.failed" {
                None
            } else {
                subject
            },
            subject,
            data: json!({"reason": "invalid_credentials"}),
            ..event(resolved, client, &ip, kind, Outcome::Failure)
        },
    )
    .await?;
    if attempt.locks_on_failure {
        audit::record(
            tx,
            Event {
                subject,
                data: json!({"scope": "account_ip", "minutes": limits::WINDOW_MS / 60_000}),
                ..event(resolved, client, &ip, "login.locked", Outcome::Failure)
            },
        )
        .await?;
    }
    Ok(())
}

fn invalid_credentials() -> ApiError {
    ApiError::unauthorized(
        "invalid_credentials",
        "the email or password is not correct",
    )
}

async fn login(
    State(state): State<DataState>,
    resolved: Resolved,
    client: Client,
    headers: HeaderMap,
    http::Json(body): http::Json<LoginBody>,
) -> ApiResult<Response> {
    rate_limit(
        &state,
        &resolved,
        &client,
        "login",
        resolved.project.settings.rate_limits.login_per_minute,
    )?;
    let transport = signing_in_from(&state, &resolved, &headers)?;
    passwords::validate_presented(body.password.expose())?;
    // A malformed address cannot belong to an account: say so plainly.
    let email = Email::parse(&body.email)
        .map_err(|_| ApiError::invalid_request("email is not a valid address"))?;
    let project_id = resolved.project.id.clone();
    let db = state.shard(&resolved)?;
    let ip = client.ip_text();

    let user = {
        let mut tx = db.scope_read(&project_id).await?;
        let user = users::find_by_email(&mut tx, &project_id, &email.normalized).await?;
        tx.commit().await?;
        user
    };
    let (verified, attempt) = check_password(
        &state,
        &resolved,
        &client,
        &email.normalized,
        user.as_ref(),
        body.password.into_inner(),
    )
    .await?;

    let mut tx = db.scope(&project_id).await?;
    let user = match (user, &verified) {
        (Some(user), Verified::Yes | Verified::YesRehashed(_)) if user.password_hash.is_some() => {
            if let Verified::YesRehashed(new_hash) = &verified {
                users::set_password_hash(&mut tx, &project_id, &user.id, new_hash).await?;
            }
            user
        }
        (user, _) => {
            let subject = user.as_ref().map(|u| u.id.as_str());
            record_password_failure(
                &mut tx,
                &resolved,
                &client,
                subject,
                "login.failed",
                &attempt,
            )
            .await?;
            tx.commit().await?;
            return Err(invalid_credentials());
        }
    };
    limits::succeeded(&mut tx, &attempt).await?;
    let (session, refresh_value) = start_session(&mut tx, &resolved, &user, &client).await?;
    audit::record(
        &mut tx,
        Event {
            actor: Some(&user.id),
            subject: Some(&user.id),
            data: json!({"session_id": session.id, "rehashed": matches!(verified, Verified::YesRehashed(_))}),
            ..event(&resolved, &client, &ip, "login.succeeded", Outcome::Success)
        },
    )
    .await?;
    tx.commit().await?;
    signed_in(
        &state,
        &resolved,
        transport,
        StatusCode::OK,
        &user,
        &session,
        &refresh_value,
    )
    .await
}

// ---- refresh ----

#[derive(Debug, Deserialize, Default)]
struct RefreshBody {
    refresh_token: Option<Secret<String>>,
}

fn invalid_refresh() -> ApiError {
    ApiError::unauthorized("invalid_refresh_token", "the refresh token is not valid")
}

async fn refresh(
    State(state): State<DataState>,
    resolved: Resolved,
    client: Client,
    method: Method,
    headers: HeaderMap,
    bytes: Bytes,
) -> ApiResult<Response> {
    rate_limit(
        &state,
        &resolved,
        &client,
        "refresh",
        resolved.project.settings.rate_limits.refresh_per_minute,
    )?;
    let requested = transport::transport(&resolved, &headers)?;
    let body: RefreshBody = optional_body(&headers, &bytes)?;
    let (value, from_cookie) = match body.refresh_token {
        Some(v) => (v.into_inner(), false),
        None => {
            let v = transport::cookie(&headers, transport::REFRESH_COOKIE).ok_or_else(|| {
                ApiError::invalid_request(
                    "refresh_token is required (in the body or the identity_rt cookie)",
                )
            })?;
            (v.to_string(), true)
        }
    };
    // A session that lives in cookies stays in cookies: its successor never
    // appears in a body, whatever transport the request asks for.
    let transport = if from_cookie {
        Transport::Cookie
    } else {
        requested
    };
    // A response that sets session cookies needs a browser on an allowed
    // origin (login CSRF: another site must not plant its session here).
    if transport == Transport::Cookie {
        transport::check_origin(&state, &resolved, &headers)?;
    }
    if value.is_empty() || value.len() > 128 {
        return Err(invalid_refresh());
    }
    let project_id = resolved.project.id.clone();
    let hash = sha256_hex(value.as_bytes());
    let db = state.shard(&resolved)?;
    let ip = client.ip_text();
    let now = now_ms();

    let mut tx = db.scope(&project_id).await?;
    let mut row = sessions::find_refresh_by_hash(&mut tx, &project_id, &hash)
        .await?
        .ok_or_else(invalid_refresh)?;
    let session = sessions::find(&mut tx, &project_id, &row.session_id)
        .await?
        .ok_or_else(invalid_refresh)?;
    if !session.is_live(now) {
        return Err(if session.revoked_at.is_some() {
            ApiError::unauthorized("session_revoked", "this session has ended")
        } else {
            invalid_refresh()
        });
    }
    if from_cookie {
        transport::check_csrf(&state, &resolved, &method, &headers, &session.id)?;
    }
    let user = users::find(&mut tx, &project_id, &session.user_id)
        .await?
        .ok_or_else(invalid_refresh)?;
    let successor = successor_of(&state, &value);

    if row.consumed_at.is_none() {
        if row.expires_at <= now {
            return Err(invalid_refresh());
        }
        let successor_id = new_id("rtk");
        if sessions::consume_refresh(&mut tx, &project_id, &row.id, &successor_id).await? {
            sessions::insert_refresh(
                &mut tx,
                &project_id,
                &successor_id,
                &session.id,
                &sha256_hex(successor.as_bytes()),
                client.user_agent.as_deref(),
                session.expires_at,
            )
            .await?;
            sessions::touch(&mut tx, &project_id, &session.id, &client).await?;
            audit::record(
                &mut tx,
                Event {
                    actor: Some(&user.id),
                    subject: Some(&user.id),
                    data: json!({"session_id": session.id}),
                    ..event(&resolved, &client, &ip, "token.refreshed", Outcome::Success)
                },
            )
            .await?;
            tx.commit().await?;
            return signed_in(
                &state,
                &resolved,
                transport,
                StatusCode::OK,
                &user,
                &session,
                &successor,
            )
            .await;
        }
        // Another request consumed it first: judge it as a retry.
        row = sessions::find_refresh_by_hash(&mut tx, &project_id, &hash)
            .await?
            .ok_or_else(invalid_refresh)?;
    }

    // A consumed token. Within the grace window, the same client (same user
    // agent and address, IPv6 by its /64, as the request its successor went
    // to) gets that same successor, as long as the successor is unused.
    let grace_ms = i64::from(resolved.project.settings.refresh_reuse_grace_seconds) * 1000;
    let same_address = session
        .ip
        .as_deref()
        .and_then(|ip| ip.parse().ok())
        .is_some_and(|ip| crate::client::ip_key(ip) == client.ip_key());
    let within_grace = row.consumed_at.is_some_and(|t| now - t <= grace_ms);
    if within_grace && let Some(successor_id) = &row.successor_id {
        let next = sessions::find_refresh(&mut tx, &project_id, successor_id).await?;
        if let Some(next) = next
            && next.consumed_at.is_none()
            && next.user_agent == client.user_agent
            && same_address
            && identity_shared::crypto::ct_eq(
                next.token_hash.as_bytes(),
                sha256_hex(successor.as_bytes()).as_bytes(),
            )
        {
            tx.commit().await?;
            return signed_in(
                &state,
                &resolved,
                transport,
                StatusCode::OK,
                &user,
                &session,
                &successor,
            )
            .await;
        }
    }
    // Reuse: somebody holds a token that was already exchanged. End the session.
    let revoked = sessions::revoke(
        &mut tx,
        &project_id,
        &user.id,
        Some(std::slice::from_ref(&session.id)),
        None,
        "refresh_token_reused",
    )
    .await?;
    audit::record(
        &mut tx,
        Event {
            subject: Some(&user.id),
            data: json!({"session_id": session.id, "revoked": !revoked.is_empty()}),
            ..event(
                &resolved,
                &client,
                &ip,
                "token.reuse_detected",
                Outcome::Failure,
            )
        },
    )
    .await?;
    tx.commit().await?;
    Err(ApiError::unauthorized(
        "refresh_token_reused",
        "this refresh token was already used; the session has been ended",
    ))
}

// ---- the signed-in user's own session ----

/// The caller's user and session, read fresh (password checks must not use
/// a cached hash).
async fn load_user(state: &DataState, caller: &Caller) -> ApiResult<(UserRow, SessionRow)> {
    let project_id = &caller.resolved.project.id;
    let mut tx = state
        .shard(&caller.resolved)?
        .scope_read(project_id)
        .await?;
    let user = users::find(&mut tx, project_id, &caller.claims.sub).await?;
    let session = sessions::find(&mut tx, project_id, &caller.claims.sid).await?;
    tx.commit().await?;
    match (user, session) {
        (Some(u), Some(s)) => Ok((u, s)),
        _ => Err(ApiError::unauthorized(
            "session_revoked",
            "this session has ended",
        )),
    }
}

/// Answered from the session cache: no database work in the common case.
/// A cookie-authenticated caller also gets its CSRF token, which an app on
/// another origin cannot read from the auth domain's cookie.
async fn session(State(state): State<DataState>, caller: Caller) -> Json<Value> {
    let v = &caller.view;
    let mut body =
        json!({"user": v.user.to_json(), "session": v.session.to_json(Some(&v.session.id))});
    if caller.via_cookie {
        body["csrf_token"] = Value::String(transport::csrf_token(&state, &v.session.id));
    }
    Json(body)
}

/// Revokes sessions of the caller's user and records it.
async fn revoke_and_audit(
    state: &DataState,
    caller: &Caller,
    client: &Client,
    ids: Option<&[String]>,
    keep: Option<&str>,
    reason: &'static str,
) -> ApiResult<Vec<String>> {
    let project_id = &caller.resolved.project.id;
    let mut tx = state.shard(&caller.resolved)?.scope(project_id).await?;
    let revoked =
        sessions::revoke(&mut tx, project_id, &caller.claims.sub, ids, keep, reason).await?;
    if !revoked.is_empty() {
        let ip = client.ip_text();
        audit::record(
            &mut tx,
            Event {
                actor: Some(&caller.claims.sub),
                subject: Some(&caller.claims.sub),
                data: json!({"session_ids": revoked, "reason": reason}),
                ..event(
                    &caller.resolved,
                    client,
                    &ip,
                    "session.revoked",
                    Outcome::Success,
                )
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(revoked)
}

async fn logout(
    State(state): State<DataState>,
    caller: Caller,
    client: Client,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let current = [caller.claims.sid.clone()];
    revoke_and_audit(&state, &caller, &client, Some(&current), None, "logout").await?;
    let mut response_headers = HeaderMap::new();
    if caller.via_cookie || transport::transport(&caller.resolved, &headers)? == Transport::Cookie {
        transport::clear_session_cookies(&mut response_headers, !state.config.dev_mode);
    }
    Ok((StatusCode::NO_CONTENT, response_headers).into_response())
}

async fn list_sessions(State(state): State<DataState>, caller: Caller) -> ApiResult<Json<Value>> {
    let project_id = &caller.resolved.project.id;
    let mut tx = state
        .shard(&caller.resolved)?
        .scope_read(project_id)
        .await?;
    let rows = sessions::list_live(&mut tx, project_id, &caller.claims.sub, 200).await?;
    tx.commit().await?;
    let items: Vec<Value> = rows
        .iter()
        .map(|s| s.to_json(Some(&caller.claims.sid)))
        .collect();
    Ok(Json(json!({"items": items, "next_cursor": null})))
}

async fn revoke_one(
    State(state): State<DataState>,
    caller: Caller,
    client: Client,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let ids = [id];
    let revoked = revoke_and_audit(
        &state,
        &caller,
        &client,
        Some(&ids),
        None,
        "revoked_by_user",
    )
    .await?;
    if revoked.is_empty() {
        return Err(ApiError::not_found("session"));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RevokeAllBody {
    #[serde(default)]
    include_current: bool,
}

async fn revoke_all(
    State(state): State<DataState>,
    caller: Caller,
    client: Client,
    headers: HeaderMap,
    bytes: Bytes,
) -> ApiResult<StatusCode> {
    let body: RevokeAllBody = optional_body(&headers, &bytes)?;
    let keep = (!body.include_current).then_some(caller.claims.sid.as_str());
    revoke_and_audit(&state, &caller, &client, None, keep, "revoked_all_by_user").await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangePasswordBody {
    current_password: Secret<String>,
    new_password: Secret<String>,
    #[serde(default)]
    sign_out_other_sessions: bool,
}

async fn change_password(
    State(state): State<DataState>,
    caller: Caller,
    client: Client,
    http::Json(body): http::Json<ChangePasswordBody>,
) -> ApiResult<StatusCode> {
    // Every password check is rate limited like a login and counts toward
    // the same lockout.
    rate_limit(
        &state,
        &caller.resolved,
        &client,
        "login",
        caller
            .resolved
            .project
            .settings
            .rate_limits
            .login_per_minute,
    )?;
    passwords::validate_presented(body.current_password.expose())?;
    passwords::validate_new(body.new_password.expose())?;
    let (user, _) = load_user(&state, &caller).await?;
    let project_id = caller.resolved.project.id.clone();
    let ip = client.ip_text();
    let (verified, attempt) = check_password(
        &state,
        &caller.resolved,
        &client,
        &user.email_normalized,
        Some(&user),
        body.current_password.into_inner(),
    )
    .await?;
    if matches!(verified, Verified::No) || user.password_hash.is_none() {
        let mut tx = state.shard(&caller.resolved)?.scope(&project_id).await?;
        record_password_failure(
            &mut tx,
            &caller.resolved,
            &client,
            Some(&user.id),
            "password.change_failed",
            &attempt,
        )
        .await?;
        tx.commit().await?;
        return Err(invalid_credentials());
    }
    let hash = state
        .hasher
        .hash(&project_id, body.new_password.into_inner())
        .await?;
    let mut tx = state.shard(&caller.resolved)?.scope(&project_id).await?;
    limits::succeeded(&mut tx, &attempt).await?;
    users::set_password_hash(&mut tx, &project_id, &user.id, &hash).await?;
    let revoked = if body.sign_out_other_sessions {
        sessions::revoke(
            &mut tx,
            &project_id,
            &user.id,
            None,
            Some(&caller.claims.sid),
            "password_changed",
        )
        .await?
    } else {
        Vec::new()
    };
    audit::record(
        &mut tx,
        Event {
            actor: Some(&user.id),
            subject: Some(&user.id),
            data: json!({"sessions_revoked": revoked}),
            ..event(
                &caller.resolved,
                &client,
                &ip,
                "password.changed",
                Outcome::Success,
            )
        },
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bodies_never_print_secrets() {
        let login: LoginBody =
            serde_json::from_str(r#"{"email":"a@b.co","password":"hunter2-secret"}"#).unwrap();
        let register: RegisterBody =
            serde_json::from_str(r#"{"email":"a@b.co","password":"hunter2-secret"}"#).unwrap();
        let change: ChangePasswordBody = serde_json::from_str(
            r#"{"current_password":"hunter2-secret","new_password":"hunter3-secret"}"#,
        )
        .unwrap();
        let refresh: RefreshBody =
            serde_json::from_str(r#"{"refresh_token":"rt-hunter2-secret"}"#).unwrap();
        let shown = format!("{login:?} {register:?} {change:?} {refresh:?}");
        assert!(!shown.contains("hunter"), "{shown}");
        assert!(
            shown.contains("a@b.co") && shown.contains("[redacted]"),
            "{shown}"
        );
    }
}
