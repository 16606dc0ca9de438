//! `POST /v1/auth/oauth/exchange`: the callback's one-time code for tokens.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use identity_shared::audit::{self, Event, Outcome};
use identity_shared::crypto::sha256_hex;
use identity_shared::db::Tx;
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::time::now_ms;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::DataState;
use crate::audit::event;
use crate::oauth::flow::EXCHANGE;
use crate::request::client::Client;
use crate::request::resolve::Resolved;
use crate::store::one_time_codes as codes;
use crate::store::sessions::SessionRow;
use crate::store::users::{self, UserRow};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeBody {
    code: identity_shared::secret::Secret<String>,
    /// The verifier of the `code_challenge` passed to `start`, if one was.
    code_verifier: Option<identity_shared::secret::Secret<String>>,
}

/// `POST /v1/auth/oauth/exchange`: the one-time code for a
/// `TokenResponse` (or `mfa_required`), in the project it was issued for.
pub async fn exchange(
    State(state): State<DataState>,
    resolved: Resolved,
    client: Client,
    headers: HeaderMap,
    identity_shared::http::Json(body): identity_shared::http::Json<ExchangeBody>,
) -> ApiResult<Response> {
    crate::email::send::limit(&state, &resolved, &client)?;
    let transport = crate::password::check::signing_in_from(&state, &resolved, &headers)?;
    let invalid = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_code",
            "the code is not valid or has expired",
        )
    };
    let project_id = resolved.project.id.clone();
    let now = now_ms();
    let mut tx = state.shard(&resolved)?.scope(&project_id).await?;
    let row = codes::find_by_token(
        &mut tx,
        &project_id,
        EXCHANGE,
        &sha256_hex(body.code.expose().as_bytes()),
        now,
    )
    .await?
    .ok_or_else(invalid)?;
    if !codes::consume(&mut tx, &project_id, &row.id, now).await? {
        return Err(invalid());
    }
    let data: Value = row
        .data
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_default();
    // An app that sent a PKCE challenge at the start proves it holds the
    // verifier: a code read from a URL is of no use to anyone else. The
    // code is spent either way.
    if let Some(challenge) = data["app_challenge"].as_str() {
        let proven = body.code_verifier.as_ref().is_some_and(|v| {
            use base64::Engine;
            let digest = <sha2::Sha256 as sha2::Digest>::digest(v.expose().as_bytes());
            let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
            identity_shared::crypto::ct_eq(computed.as_bytes(), challenge.as_bytes())
        });
        if !proven {
            tx.commit().await?;
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_code_verifier",
                "code_verifier does not match the code_challenge given at the start",
            ));
        }
    }
    let user_id = row.user_id.clone().ok_or_else(invalid)?;
    users::lock_credentials(&mut tx, &project_id, &user_id).await?;
    let user = users::find(&mut tx, &project_id, &user_id)
        .await?
        .ok_or_else(invalid)?;
    let provider = data["provider"].as_str().unwrap_or("oauth").to_string();
    if user.mfa_enabled {
        let answer = crate::mfa::challenge::require_second_factor(
            &mut tx, &resolved, &client, &user, "oauth",
        )
        .await?;
        tx.commit().await?;
        return Ok(answer);
    }
    let (session, refresh_value) =
        start_oauth_session(&mut tx, &resolved, &client, &user, &provider).await?;
    tx.commit().await?;
    crate::sessions::issue::signed_in(
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

/// A session after a provider's sign-in, audited.
pub async fn start_oauth_session(
    tx: &mut Tx,
    resolved: &Resolved,
    client: &Client,
    user: &UserRow,
    provider: &str,
) -> ApiResult<(SessionRow, String)> {
    let (session, refresh_value) =
        crate::sessions::issue::start_session(tx, resolved, user, client, &["oauth"]).await?;
    let ip = client.ip_text();
    audit::record(
        tx,
        Event {
            actor: Some(&user.id),
            subject: Some(&user.id),
            data: json!({"session_id": session.id, "method": "oauth", "provider": provider}),
            ..event(resolved, client, &ip, "login.succeeded", Outcome::Success)
        },
    )
    .await?;
    Ok((session, refresh_value))
}
