//! The relying party of a project: its id (the `webauthn_rp_id` setting, or
//! the primary verified auth domain, or the public base URL's host) and the
//! origins its ceremonies may come from (the auth domain or public base
//! URL, and the project's `allowed_origins`).

use identity_shared::crypto::sha256_hex;
use identity_shared::error::{ApiError, ApiResult};
use webauthn_rs::prelude::{Url, Uuid, Webauthn, WebauthnBuilder};

use crate::DataState;
use crate::request::resolve::ProjectInfo;

pub fn relying_party(state: &DataState, project: &ProjectInfo) -> ApiResult<Webauthn> {
    let public = Url::parse(&state.config.public_base_url)
        .map_err(|e| ApiError::internal(format!("IDENTITY_PUBLIC_BASE_URL: {e}")))?;
    let home = match &project.primary_host {
        Some(host) => Url::parse(&format!("https://{host}"))
            .map_err(|e| ApiError::internal(format!("auth domain {host}: {e}")))?,
        None => public.clone(),
    };
    let rp_id = project
        .settings
        .webauthn_rp_id
        .clone()
        .or_else(|| home.host_str().map(str::to_string))
        .unwrap_or_default();
    let misconfigured = || {
        ApiError::conflict(
            "passkeys_unavailable",
            "passkeys need a relying-party id that the project's auth domain (or the public base URL) belongs to: set webauthn_rp_id",
        )
    };
    // Only origins of the relying party itself (its host or a subdomain),
    // over https (http only for localhost).
    let mut origins: Vec<Url> = std::iter::once(home)
        .chain(
            project
                .settings
                .allowed_origins
                .iter()
                .filter_map(|o| Url::parse(o).ok()),
        )
        .filter(|o| belongs(o, &rp_id))
        .collect();
    origins.dedup();
    let Some((first, rest)) = origins.split_first() else {
        return Err(misconfigured());
    };
    let mut builder = WebauthnBuilder::new(&rp_id, first)
        .map_err(|_| misconfigured())?
        .rp_name(&project.name);
    for origin in rest {
        builder = builder.append_allowed_origin(origin);
    }
    builder.build().map_err(|_| misconfigured())
}

fn belongs(origin: &Url, rp_id: &str) -> bool {
    let secure = origin.scheme() == "https"
        || (origin.scheme() == "http" && origin.domain() == Some("localhost"));
    secure
        && origin
            .domain()
            .is_some_and(|d| d == rp_id || d.ends_with(&format!(".{rp_id}")))
}

/// The WebAuthn user handle of a user: stable, opaque, and different in
/// every project.
pub fn user_handle(project_id: &str, user_id: &str) -> Uuid {
    let digest = sha256_hex(format!("passkey-user:{project_id}:{user_id}").as_bytes());
    let mut bytes = [0u8; 16];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::from_str_radix(&digest[i * 2..i * 2 + 2], 16).unwrap_or(0);
    }
    Uuid::from_bytes(bytes)
}

/// The largest credential JSON accepted (a real one is a few kilobytes).
const MAX_CREDENTIAL_BYTES: usize = 64 * 1024;

/// Parses the browser's credential JSON: `400 invalid_request` when it is
/// not one at all.
pub fn parse_credential<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> ApiResult<T> {
    if value.to_string().len() > MAX_CREDENTIAL_BYTES {
        return Err(ApiError::invalid_request("credential is too large"));
    }
    serde_json::from_value(value)
        .map_err(|_| ApiError::invalid_request("credential is not a WebAuthn credential"))
}

/// A ceremony's server side, as stored between its two halves.
pub fn to_state<T: serde::Serialize>(state: &T) -> ApiResult<String> {
    serde_json::to_string(state).map_err(|e| ApiError::internal(e.to_string()))
}

pub fn from_state<T: serde::de::DeserializeOwned>(state: &str) -> ApiResult<T> {
    serde_json::from_str(state).map_err(|e| ApiError::internal(format!("ceremony state: {e}")))
}

/// A ceremony's server side bound to what began it (a session, or a login
/// waiting for its second factor): it finishes only for the same one.
pub fn bound_state<T: serde::Serialize>(bound_to: &str, state: &T) -> ApiResult<String> {
    to_state(&serde_json::json!({"bound_to": bound_to, "state": state}))
}

/// The state of a bound ceremony, when it was bound to `expected`.
pub fn open_bound<T: serde::de::DeserializeOwned>(
    stored: &str,
    expected: &str,
) -> ApiResult<Option<T>> {
    let v: serde_json::Value = from_state(stored)?;
    if v["bound_to"].as_str() != Some(expected) {
        return Ok(None);
    }
    Ok(serde_json::from_value(v["state"].clone()).ok())
}
