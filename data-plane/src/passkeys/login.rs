//! Signing in with a passkey, in two halves: `begin` answers the options
//! for `navigator.credentials.get` and keeps the server side in the
//! database (5 minutes, single-use); `finish` checks the browser's answer
//! against it. `begin` also starts the ceremony of a passkey used as a
//! second factor (see `passkeys::second`).

use crate::DataState;
use crate::audit::event;
use crate::input::Email;
use crate::passkeys::rp::{bound_state, from_state, parse_credential, relying_party, to_state};
use crate::passkeys::second;
use crate::password::check::signing_in_from;
use crate::request::caller::Caller;
use crate::request::client::Client;
use crate::request::limits::rate_limit;
use crate::request::resolve::Resolved;
use crate::sessions::issue::{signed_in, start_session};
use crate::store::mfa;
use crate::store::passkeys::{self, PasskeyRow};
use crate::store::users;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use identity_shared::audit::{self, Event, Outcome};
use identity_shared::crypto::{b64url, hmac_sha256, sha256_hex};
use identity_shared::db::Tx;
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::http;
use identity_shared::secret::Secret;
use serde::Deserialize;
use serde_json::{Value, json};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyAuthentication,
    PublicKeyCredential, Webauthn, WebauthnError,
};

fn invalid_credentials() -> ApiError {
    ApiError::unauthorized("invalid_credentials", "the passkey was not accepted")
}

#[derive(Debug, Deserialize, Default)]
pub struct LoginBeginBody {
    email: Option<String>,
    /// A login waiting for its second factor.
    mfa_token: Option<Secret<String>>,
}

/// Options shaped like a real user's (one stable credential id nobody has,
/// derived from `key`), which can never finish.
fn decoy_options(
    state: &DataState,
    rp: &Webauthn,
    project_id: &str,
    key: &str,
) -> ApiResult<Value> {
    let (options, _) = rp
        .start_discoverable_authentication()
        .map_err(|e| ApiError::internal(format!("passkey login: {e}")))?;
    let fake = hmac_sha256(
        &state.recovery_key,
        format!("passkey-decoy:{project_id}:{key}").as_bytes(),
    );
    let mut options = json!(options);
    if let Some(o) = options.as_object_mut() {
        o.remove("mediation");
    }
    options["publicKey"]["allowCredentials"] = json!([{"type": "public-key", "id": b64url(&fake)}]);
    Ok(uniform(options))
}

/// Options naming credentials, in the one shape real and decoy options
/// share: no transport hints (they would tell a known user from an unknown
/// one) and no extensions.
fn uniform(mut options: Value) -> Value {
    if let Some(o) = options["publicKey"].as_object_mut() {
        o.remove("extensions");
    }
    if let Some(list) = options["publicKey"]["allowCredentials"].as_array_mut() {
        for c in list {
            if let Some(c) = c.as_object_mut() {
                c.remove("transports");
            }
        }
    }
    options
}

async fn user_keys(tx: &mut Tx, project_id: &str, user_id: &str) -> ApiResult<Vec<Passkey>> {
    Ok(passkeys::of_user(tx, project_id, user_id)
        .await?
        .iter()
        .filter_map(|p| serde_json::from_str(&p.credential).ok())
        .collect())
}

/// `POST /v1/auth/passkeys/login/begin`: with an email, options naming that
/// user's passkeys (and options of the same shape, naming a passkey nobody
/// has, for an unknown email: no enumeration); without one, options for a
/// discoverable credential (conditional UI).
pub async fn login_begin(
    State(state): State<DataState>,
    resolved: Resolved,
    client: Client,
    caller: Option<Caller>,
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
    // A second factor, after a first one (`mfa_token`) or for step-up (a
    // session): that user's passkeys only.
    let second_for = match (&body.mfa_token, &caller) {
        (Some(token), _) => {
            let hash = sha256_hex(token.expose().as_bytes());
            let found = mfa::open_challenge(&mut tx, &project.id, &hash)
                .await?
                .ok_or_else(|| {
                    ApiError::unauthorized(
                        "mfa_token_invalid",
                        "the mfa_token is unknown, expired, used, or had five wrong codes: sign in again",
                    )
                })?;
            Some((found.user_id, format!("mfa:{}", found.id)))
        }
        (None, Some(caller)) => Some((
            caller.claims.sub.clone(),
            format!("session:{}", caller.claims.sid),
        )),
        (None, None) => None,
    };
    let (kind, user_id, options, saved) = if let Some((user_id, bound_to)) = second_for {
        let keys = user_keys(&mut tx, &project.id, &user_id).await?;
        if keys.is_empty() {
            let options = decoy_options(&state, &rp, &project.id, &user_id)?;
            ("decoy", None, options, "{}".to_string())
        } else {
            let (options, auth) = rp
                .start_passkey_authentication(&keys)
                .map_err(|e| ApiError::internal(format!("passkey login: {e}")))?;
            let saved = bound_state(&bound_to, &auth)?;
            (second::KIND, Some(user_id), uniform(json!(options)), saved)
        }
    } else {
        match &body.email {
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
                let keys = match &user {
                    Some(u) => user_keys(&mut tx, &project.id, &u.id).await?,
                    None => Vec::new(),
                };
                match user.filter(|_| !keys.is_empty()) {
                    Some(u) => {
                        let (options, auth) = rp
                            .start_passkey_authentication(&keys)
                            .map_err(|e| ApiError::internal(format!("passkey login: {e}")))?;
                        (
                            "login",
                            Some(u.id),
                            uniform(json!(options)),
                            to_state(&auth)?,
                        )
                    }
                    None => {
                        let options = decoy_options(&state, &rp, &project.id, &email.normalized)?;
                        ("decoy", None, options, "{}".to_string())
                    }
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
    // Whose passkeys: the hinted user's, or those of the handle the
    // authenticator returned. Their uses are serialised, so counters only
    // move forward.
    let handle = match ceremony.kind.as_str() {
        "discover" => rp
            .identify_discoverable_authentication(&credential)
            .ok()
            .map(|(h, _)| h.to_string()),
        _ => None,
    };
    let owner = match (ceremony.kind.as_str(), &ceremony.user_id, &handle) {
        ("login", Some(user_id), _) => Some(user_id.clone()),
        ("discover", None, Some(handle)) => passkeys::of_handle(&mut tx, &project.id, handle)
            .await?
            .first()
            .map(|r| r.user_id.clone()),
        _ => None,
    };
    let rows = match &owner {
        Some(user_id) => {
            users::lock_credentials(&mut tx, &project.id, user_id).await?;
            passkeys::of_user(&mut tx, &project.id, user_id)
                .await?
                .into_iter()
                .filter(|r| handle.as_ref().is_none_or(|h| r.user_handle == *h))
                .collect()
        }
        None => Vec::new(),
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
    // An organisation that enforces SSO lets its people in only that way.
    project.require_no_sso(&user.email_normalized)?;
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
