//! Linking another provider to a signed-in user, in three steps:
//!
//! 1. `POST /v1/auth/oauth/link-token` (with step-up) gives a token (60 s,
//!    single-use) that rides on the `start` navigation as
//!    `?link=true&link_token=` (a browser cannot send an Authorization
//!    header there).
//! 2. The callback links nothing: it redirects with `?link_code=`.
//! 3. `POST /v1/auth/oauth/link/confirm {link_code}`, signed in as the
//!    user who asked, links the provider's subject to them, whatever its
//!    address. Without this step, anyone holding a link token could send
//!    a victim's browser through the provider and link the victim's
//!    identity to their own account.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use identity_shared::audit::{self, Event, Outcome};
use identity_shared::crypto::{random_token, sha256_hex};
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::ids::new_id;
use identity_shared::secret::Secret;
use identity_shared::time::now_ms;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::DataState;
use crate::audit::event;
use crate::mfa::stepup::require_step_up;
use crate::oauth::accounts::{Ask, sign_in_user};
use crate::oauth::flow::{LINK, LINK_CONFIRM, provider_config};
use crate::oauth::provider::ProviderUser;
use crate::oauth::sso::sso_tenant;
use crate::request::caller::Caller;
use crate::request::client::Client;
use crate::store::one_time_codes as codes;

const LINK_TTL_MS: i64 = 60 * 1000;

pub async fn link_token(State(state): State<DataState>, caller: Caller) -> ApiResult<Json<Value>> {
    // Adding a way in is as sensitive as changing the password.
    let (user, _) = require_step_up(&state, &caller).await?;
    let project_id = &caller.resolved.project.id;
    let token = random_token();
    let now = now_ms();
    let mut tx = state.shard(&caller.resolved)?.scope(project_id).await?;
    codes::insert(
        &mut tx,
        &codes::NewCode {
            id: &new_id("otc"),
            project_id,
            purpose: LINK,
            user_id: Some(&user.id),
            email: None,
            target: None,
            token_hash: Some(&sha256_hex(token.as_bytes())),
            code_hash: None,
            data: None,
            now,
            expires_at: now + LINK_TTL_MS,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Json(
        json!({"link_token": token, "expires_in": LINK_TTL_MS / 1000}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBody {
    link_code: Secret<String>,
}

fn invalid_code() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_code",
        "the link code is not valid or has expired",
    )
}

/// The API error for a reason the account rules refused a link with.
fn refused(reason: &'static str) -> ApiError {
    match reason {
        "identity_conflict" => ApiError::conflict(
            reason,
            "this provider account is linked to another user of the project",
        ),
        "sso_domain_mismatch" => ApiError::forbidden(
            reason,
            "the SSO connection does not answer for this address's domain",
        ),
        "link_user_mismatch" => ApiError::forbidden(
            reason,
            "another account started this link: start it again while signed in as yourself",
        ),
        "sso_required" => ApiError::forbidden(
            reason,
            "this address's organisation signs in with single sign-on only",
        ),
        "server_error" => ApiError::internal("linking failed"),
        _ => ApiError::new(StatusCode::BAD_REQUEST, reason, "the link was refused"),
    }
}

/// `POST /v1/auth/oauth/link/confirm`: links the provider's answer to the
/// signed-in user, if they are the one who started the link.
pub async fn confirm(
    State(state): State<DataState>,
    client: Client,
    caller: Caller,
    identity_shared::http::Json(body): identity_shared::http::Json<ConfirmBody>,
) -> ApiResult<Json<Value>> {
    let resolved = &caller.resolved;
    crate::email::send::limit(&state, resolved, &client)?;
    let project_id = resolved.project.id.clone();
    let now = now_ms();
    let db = state.shard(resolved)?;
    let mut tx = db.scope(&project_id).await?;
    let row = codes::find_by_token(
        &mut tx,
        &project_id,
        LINK_CONFIRM,
        &sha256_hex(body.link_code.expose().as_bytes()),
        now,
    )
    .await?
    .ok_or_else(invalid_code)?;
    if !codes::consume(&mut tx, &project_id, &row.id, now).await? {
        return Err(invalid_code());
    }
    let data: Value = row
        .data
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_default();
    let provider = data["provider"].as_str().unwrap_or("").to_string();
    let ip = client.ip_text();
    if row.user_id.as_deref() != Some(caller.claims.sub.as_str()) {
        // Someone else's link reached this browser: spent with the audit.
        audit::record(
            &mut tx,
            Event {
                actor: Some(&caller.claims.sub),
                data: json!({"provider": provider, "reason": "link_user_mismatch"}),
                ..event(resolved, &client, &ip, "oauth.failed", Outcome::Failure)
            },
        )
        .await?;
        tx.commit().await?;
        return Err(refused("link_user_mismatch"));
    }
    // Spent before anything else is read: no transaction stays open while
    // the provider's configuration is loaded.
    tx.commit().await?;
    // A refusal from here on is audited, and the code stays spent.
    let fail = |reason: &'static str| {
        let (db, resolved, client, ip, provider) = (db, resolved, &client, &ip, &provider);
        let actor = caller.claims.sub.clone();
        async move {
            let mut tx = db.scope(&resolved.project.id).await?;
            audit::record(
                &mut tx,
                Event {
                    actor: Some(&actor),
                    data: json!({"provider": provider, "reason": reason}),
                    ..event(resolved, client, ip, "oauth.failed", Outcome::Failure)
                },
            )
            .await?;
            tx.commit().await?;
            Err::<Json<Value>, ApiError>(refused(reason))
        }
    };
    let who: Option<ProviderUser> = data["who"]
        .as_str()
        .and_then(|s| {
            state
                .master_key
                .open(
                    s,
                    &format!("oauth-link:{project_id}:{}:{provider}", caller.claims.sub),
                )
                .ok()
        })
        .and_then(|b| serde_json::from_slice(&b).ok());
    let Some(who) = who else {
        return fail("invalid_state").await;
    };
    let Ok(cfg) = provider_config(&state, &project_id, &provider).await else {
        return fail("unknown_provider").await;
    };
    let sso = match &cfg.tenant_id {
        Some(tenant_id) => match sso_tenant(&state, &project_id, tenant_id).await {
            Ok(sso) => Some(sso),
            Err(reason) => return fail(reason).await,
        },
        None => None,
    };
    let ask = Ask {
        provider: &provider,
        who: &who,
        link_user: Some(&caller.claims.sub),
        sso: sso.as_ref(),
    };
    let mut tx = db.scope(&project_id).await?;
    if let Err(reason) = sign_in_user(&state, &mut tx, resolved, &client, &ask).await {
        drop(tx);
        return fail(reason).await;
    }
    tx.commit().await?;
    Ok(Json(json!({"identity": {
        "provider": provider,
        "provider_user_id": who.subject,
        "email": who.email,
    }})))
}
