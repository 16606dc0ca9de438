//! The two WebAuthn ceremonies, each in two halves: `begin` answers the
//! options for `navigator.credentials.create` / `.get` and keeps the server
//! side in the database (5 minutes, single-use); `finish` checks the
//! browser's answer against it.

use crate::DataState;
use crate::audit::event;
use crate::input::Email;
use crate::mfa::stepup::require_step_up;
use crate::passkeys::manage::{PasskeyView, clean_name};
use crate::passkeys::rp::{relying_party, user_handle};
use crate::password::check::signing_in_from;
use crate::request::caller::Caller;
use crate::request::client::Client;
use crate::request::limits::rate_limit;
use crate::request::resolve::Resolved;
use crate::sessions::issue::{signed_in, start_session};
use crate::store::passkeys::{self, MAX_PER_USER, NewPasskey, PasskeyRow};
use crate::store::users;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use identity_shared::audit::{self, Event, Outcome};
use identity_shared::crypto::{b64url, hmac_sha256};
use identity_shared::db::Tx;
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::http;
use serde::Deserialize;
use serde_json::{Value, json};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, WebauthnError,
};

/// The largest credential JSON accepted (a real one is a few kilobytes).
const MAX_CREDENTIAL_BYTES: usize = 64 * 1024;

fn invalid_credential() -> ApiError {
    ApiError::unprocessable(
        "invalid_credential",
        "the credential is not valid for this ceremony",
    )
}

fn invalid_credentials() -> ApiError {
    ApiError::unauthorized("invalid_credentials", "the passkey was not accepted")
}

fn passkey_limit() -> ApiError {
    ApiError::conflict(
        "passkey_limit",
        "a user can have at most ten passkeys: delete one first",
    )
}

/// Parses the browser's credential JSON: `400 invalid_request` when it is
/// not one at all.
fn parse_credential<T: serde::de::DeserializeOwned>(value: Value) -> ApiResult<T> {
    if value.to_string().len() > MAX_CREDENTIAL_BYTES {
        return Err(ApiError::invalid_request("credential is too large"));
    }
    serde_json::from_value(value)
        .map_err(|_| ApiError::invalid_request("credential is not a WebAuthn credential"))
}

fn to_state<T: serde::Serialize>(state: &T) -> ApiResult<String> {
    serde_json::to_string(state).map_err(|e| ApiError::internal(e.to_string()))
}

fn from_state<T: serde::de::DeserializeOwned>(state: &str) -> ApiResult<T> {
    serde_json::from_str(state).map_err(|e| ApiError::internal(format!("ceremony state: {e}")))
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
        &to_state(&registration)?,
    )
    .await?;
    tx.commit().await?;
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
    let project = &caller.resolved.project;
    let user_id = &caller.claims.sub;
    let rp = relying_party(&state, project)?;
    let mut tx = state.shard(&caller.resolved)?.scope(&project.id).await?;
    users::lock_credentials(&mut tx, &project.id, user_id).await?;
    let ceremony = passkeys::finish_ceremony(&mut tx, &project.id, &body.challenge_id)
        .await?
        .filter(|c| c.kind == "register" && c.user_id.as_deref() == Some(user_id.as_str()))
        .ok_or_else(invalid_credential)?;
    let registration: PasskeyRegistration = from_state(&ceremony.state)?;
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

#[derive(Debug, Deserialize, Default)]
pub struct LoginBeginBody {
    email: Option<String>,
}

/// `POST /v1/auth/passkeys/login/begin`: with an email, options naming that
/// user's passkeys (and options of the same shape, naming a passkey nobody
/// has, for an unknown email: no enumeration); without one, options for a
/// discoverable credential (conditional UI).
pub async fn login_begin(
    State(state): State<DataState>,
    resolved: Resolved,
    client: Client,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    rate_limit(
        &state,
        &resolved,
        &client,
        "login",
        resolved.project.settings.rate_limits.login_per_minute,
    )?;
    let body: LoginBeginBody = http::optional_json(&headers, &bytes)?;
    let project = &resolved.project;
    let rp = relying_party(&state, project)?;
    let mut tx = state.shard(&resolved)?.scope(&project.id).await?;
    let (kind, user_id, options, saved) = match &body.email {
        None => {
            let (options, auth) = rp
                .start_discoverable_authentication()
                .map_err(|e| ApiError::internal(format!("passkey login: {e}")))?;
            ("discover", None, json!(options), to_state(&auth)?)
        }
        Some(email) => {
            let email = Email::parse(email)
                .map_err(|_| ApiError::invalid_request("email is not a valid address"))?;
            let user = users::find_by_email(&mut tx, &project.id, &email.normalized).await?;
            let keys: Vec<Passkey> = match &user {
                Some(u) => passkeys::of_user(&mut tx, &project.id, &u.id)
                    .await?
                    .iter()
                    .filter_map(|p| serde_json::from_str(&p.credential).ok())
                    .collect(),
                None => Vec::new(),
            };
            match user.filter(|_| !keys.is_empty()) {
                Some(u) => {
                    let (options, auth) = rp
                        .start_passkey_authentication(&keys)
                        .map_err(|e| ApiError::internal(format!("passkey login: {e}")))?;
                    ("login", Some(u.id), json!(options), to_state(&auth)?)
                }
                None => {
                    // Shaped like a known user's options (a stable credential
                    // id nobody has); it can never finish.
                    let (options, _) = rp
                        .start_discoverable_authentication()
                        .map_err(|e| ApiError::internal(format!("passkey login: {e}")))?;
                    let fake = hmac_sha256(
                        &state.recovery_key,
                        format!("passkey-decoy:{}:{}", project.id, email.normalized).as_bytes(),
                    );
                    let mut options = json!(options);
                    if let Some(o) = options.as_object_mut() {
                        o.remove("mediation");
                    }
                    options["publicKey"]["allowCredentials"] =
                        json!([{"type": "public-key", "id": b64url(&fake)}]);
                    ("decoy", None, options, "{}".to_string())
                }
            }
        }
    };
    let id =
        passkeys::begin_ceremony(&mut tx, &project.id, kind, user_id.as_deref(), &saved).await?;
    tx.commit().await?;
    Ok(Json(json!({"challenge_id": id, "options": options})))
}

#[derive(Debug, Deserialize)]
pub struct LoginFinishBody {
    challenge_id: String,
    credential: Value,
}

/// `POST /v1/auth/passkeys/login/finish`: signs in (`amr: ["hwk", "mfa"]`:
/// a passkey with user verification is two factors).
pub async fn login_finish(
    State(state): State<DataState>,
    resolved: Resolved,
    client: Client,
    headers: HeaderMap,
    http::Json(body): http::Json<LoginFinishBody>,
) -> ApiResult<Response> {
    let transport = signing_in_from(&state, &resolved, &headers)?;
    rate_limit(
        &state,
        &resolved,
        &client,
        "login",
        resolved.project.settings.rate_limits.login_per_minute,
    )?;
    let credential: PublicKeyCredential = parse_credential(body.credential)?;
    let project = &resolved.project;
    let rp = relying_party(&state, project)?;
    let mut tx = state.shard(&resolved)?.scope(&project.id).await?;
    let Some(ceremony) =
        passkeys::finish_ceremony(&mut tx, &project.id, &body.challenge_id).await?
    else {
        return Err(invalid_credentials());
    };
    let rows = match (ceremony.kind.as_str(), &ceremony.user_id) {
        ("login", Some(user_id)) => passkeys::of_user(&mut tx, &project.id, user_id).await?,
        ("discover", None) => match rp.identify_discoverable_authentication(&credential) {
            Ok((handle, _)) => {
                passkeys::of_handle(&mut tx, &project.id, &handle.to_string()).await?
            }
            Err(_) => Vec::new(),
        },
        _ => Vec::new(),
    };
    let keys: Vec<(PasskeyRow, Passkey)> = rows
        .into_iter()
        .filter_map(|r| {
            let k = serde_json::from_str(&r.credential).ok()?;
            Some((r, k))
        })
        .collect();
    let outcome = if keys.is_empty() {
        Err(WebauthnError::CredentialNotFound)
    } else if ceremony.kind == "login" {
        let auth: PasskeyAuthentication = from_state(&ceremony.state)?;
        rp.finish_passkey_authentication(&credential, &auth)
    } else {
        let auth: DiscoverableAuthentication = from_state(&ceremony.state)?;
        let discoverable: Vec<DiscoverableKey> = keys.iter().map(|(_, k)| k.into()).collect();
        // The successor (`_v2`) takes a `CredentialRef`, which only the
        // `danger-credential-internals` feature lets us build.
        #[allow(deprecated)]
        rp.finish_discoverable_authentication(&credential, auth, &discoverable)
    };
    let ip = client.ip_text();
    let result = match outcome {
        Ok(r) if r.user_verified() => r,
        other => {
            if let Err(WebauthnError::CredentialPossibleCompromise) = other {
                suspected_clone(&mut tx, &resolved, &client, &ip, &credential).await?;
            }
            // The ceremony is spent either way.
            tx.commit().await?;
            return Err(invalid_credentials());
        }
    };
    let Some((row, mut key)) = keys
        .into_iter()
        .find(|(_, k)| k.cred_id() == result.cred_id())
    else {
        tx.commit().await?;
        return Err(invalid_credentials());
    };
    key.update_credential(&result);
    passkeys::used(
        &mut tx,
        &project.id,
        &row.id,
        &to_state(&key)?,
        result.backup_state(),
    )
    .await?;
    let Some(user) = users::find(&mut tx, &project.id, &row.user_id).await? else {
        tx.commit().await?;
        return Err(invalid_credentials());
    };
    let (session, refresh_value) =
        start_session(&mut tx, &resolved, &user, &client, &["hwk", "mfa"]).await?;
    audit::record(
        &mut tx,
        Event {
            actor: Some(&user.id),
            subject: Some(&user.id),
            data: json!({"session_id": session.id, "passkey_id": row.id}),
            ..event(&resolved, &client, &ip, "passkey.used", Outcome::Success)
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

/// A signature counter that went backwards: two copies of the private key
/// may exist. The sign-in fails, and the passkey's owner sees it audited.
async fn suspected_clone(
    tx: &mut Tx,
    resolved: &Resolved,
    client: &Client,
    ip: &str,
    credential: &PublicKeyCredential,
) -> ApiResult<()> {
    let id = b64url(credential.raw_id.as_ref());
    let row = passkeys::by_credential_id(tx, &resolved.project.id, &id).await?;
    audit::record(
        tx,
        Event {
            subject: row.as_ref().map(|r| r.user_id.as_str()),
            data: json!({"passkey_id": row.as_ref().map(|r| r.id.as_str())}),
            ..event(
                resolved,
                client,
                ip,
                "passkey.clone_suspected",
                Outcome::Failure,
            )
        },
    )
    .await?;
    Ok(())
}
