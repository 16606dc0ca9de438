//! Registering a passkey, in two halves: `begin` answers the options for
//! `navigator.credentials.create` and keeps the server side in the database
//! (5 minutes, single-use); `finish` checks the browser's answer against it.

use crate::DataState;
use crate::audit::event;
use crate::mfa::stepup::require_step_up;
use crate::passkeys::manage::{PasskeyView, clean_name};
use crate::passkeys::rp::{
    bound_state, open_bound, parse_credential, relying_party, to_state, user_handle,
};
use crate::request::caller::Caller;
use crate::request::client::Client;
use crate::store::passkeys::{self, MAX_PER_USER, NewPasskey};
use crate::store::sessions;
use crate::store::users;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use identity_shared::audit::{self, Event, Outcome};
use identity_shared::crypto::b64url;
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::http;
use serde::Deserialize;
use serde_json::{Value, json};
use webauthn_rs::prelude::{Passkey, PasskeyRegistration, RegisterPublicKeyCredential};

fn invalid_credential() -> ApiError {
    ApiError::unprocessable(
        "invalid_credential",
        "the credential is not valid for this ceremony",
    )
}

fn passkey_limit() -> ApiError {
    ApiError::conflict(
        "passkey_limit",
        "a user can have at most ten passkeys: delete one first",
    )
}

#[derive(Debug, Deserialize, Default)]
pub struct RegisterBeginBody {
    name: Option<String>,
}

/// `POST /v1/auth/passkeys/register/begin` (step-up).
pub async fn register_begin(
    State(state): State<DataState>,
    caller: Caller,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let body: RegisterBeginBody = http::optional_json(&headers, &bytes)?;
    if let Some(name) = &body.name {
        clean_name(name)?;
    }
    let (user, _) = require_step_up(&state, &caller).await?;
    let project = &caller.resolved.project;
    let rp = relying_party(&state, project)?;
    let mut tx = state.shard(&caller.resolved)?.scope(&project.id).await?;
    let existing = passkeys::of_user(&mut tx, &project.id, &user.id).await?;
    if existing.len() >= MAX_PER_USER {
        return Err(passkey_limit());
    }
    let exclude = existing
        .iter()
        .filter_map(|p| serde_json::from_str::<Passkey>(&p.credential).ok())
        .map(|p| p.cred_id().clone())
        .collect();
    let display = user.name.clone().unwrap_or_else(|| user.email.clone());
    let (options, registration) = rp
        .start_passkey_registration(
            user_handle(&project.id, &user.id),
            &user.email,
            &display,
            Some(exclude),
        )
        .map_err(|e| ApiError::internal(format!("passkey registration: {e}")))?;
    let id = passkeys::begin_ceremony(
        &mut tx,
        &project.id,
        "register",
        Some(&user.id),
        &bound_state(&format!("session:{}", caller.claims.sid), &registration)?,
    )
    .await?;
    tx.commit().await?;
    // Ask for a discoverable credential where the authenticator can make
    // one (sign-in without an email, conditional UI). webauthn-rs writes
    // "discouraged"; the finish half does not depend on it.
    let mut options = json!(options);
    options["publicKey"]["authenticatorSelection"]["residentKey"] = json!("preferred");
    Ok(Json(json!({"challenge_id": id, "options": options})))
}

#[derive(Debug, Deserialize)]
pub struct FinishBody {
    challenge_id: String,
    credential: Value,
    name: Option<String>,
}

/// `POST /v1/auth/passkeys/register/finish`.
pub async fn register_finish(
    State(state): State<DataState>,
    caller: Caller,
    client: Client,
    http::Json(body): http::Json<FinishBody>,
) -> ApiResult<Response> {
    let name = clean_name(body.name.as_deref().unwrap_or("Passkey"))?;
    let credential: RegisterPublicKeyCredential = parse_credential(body.credential)?;
    // Still stepped up, and the session that began the ceremony.
    require_step_up(&state, &caller).await?;
    let project = &caller.resolved.project;
    let user_id = &caller.claims.sub;
    let rp = relying_party(&state, project)?;
    let mut tx = state.shard(&caller.resolved)?.scope(&project.id).await?;
    users::lock_credentials(&mut tx, &project.id, user_id).await?;
    let ceremony = passkeys::finish_ceremony(&mut tx, &project.id, &body.challenge_id)
        .await?
        .filter(|c| c.kind == "register" && c.user_id.as_deref() == Some(user_id.as_str()))
        .ok_or_else(invalid_credential)?;
    let Some(registration) = open_bound::<PasskeyRegistration>(
        &ceremony.state,
        &format!("session:{}", caller.claims.sid),
    )?
    else {
        tx.commit().await?;
        return Err(invalid_credential());
    };
    let passkey = match rp.finish_passkey_registration(&credential, &registration) {
        Ok(p) => p,
        Err(_) => {
            // The ceremony is spent either way.
            tx.commit().await?;
            return Err(invalid_credential());
        }
    };
    if passkeys::of_user(&mut tx, &project.id, user_id)
        .await?
        .len()
        >= MAX_PER_USER
    {
        return Err(passkey_limit());
    }
    let stored = to_state(&passkey)?;
    let credential_id = b64url(passkey.cred_id().as_ref());
    // One registration of a credential id at a time, whoever registers it.
    tx.lock_key(&format!("passkey:{}:{credential_id}", project.id))
        .await?;
    if passkeys::by_credential_id(&mut tx, &project.id, &credential_id)
        .await?
        .is_some()
    {
        return Err(ApiError::conflict(
            "passkey_exists",
            "this passkey is already registered",
        ));
    }
    let row = passkeys::insert(
        &mut tx,
        &NewPasskey {
            project_id: &project.id,
            user_id,
            user_handle: &user_handle(&project.id, user_id).to_string(),
            credential_id: &credential_id,
            name: &name,
            credential: &stored,
            backed_up: credential_flag(&stored, "backup_state"),
        },
    )
    .await?;
    // A passkey is a second factor: a password sign-in now asks for one,
    // and the user's other sessions, which proved only the password, are no
    // longer stepped up.
    users::set_mfa_enabled(&mut tx, &project.id, user_id, true).await?;
    sessions::reload_views(&mut tx, &project.id, user_id).await?;
    sessions::clear_verified_except(&mut tx, &project.id, user_id, &caller.claims.sid).await?;
    let ip = client.ip_text();
    audit::record(
        &mut tx,
        Event {
            actor: Some(user_id),
            subject: Some(user_id),
            data: json!({"passkey_id": row.id}),
            ..event(
                &caller.resolved,
                &client,
                &ip,
                "passkey.registered",
                Outcome::Success,
            )
        },
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"passkey": PasskeyView::of(&row)})),
    )
        .into_response())
}

/// A boolean of the credential webauthn-rs serialised (`backup_state`).
pub fn credential_flag(stored: &str, name: &str) -> bool {
    serde_json::from_str::<Value>(stored)
        .ok()
        .and_then(|v| v["cred"][name].as_bool())
        .unwrap_or(false)
}
