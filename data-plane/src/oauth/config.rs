//! A provider's configuration for one project, as the control plane
//! stored it, with its secrets opened.

use identity_shared::apple::AppleKey;
use identity_shared::crypto::oauth_secret_context;
use identity_shared::error::{ApiError, ApiResult};
use serde_json::Value;

use crate::DataState;
use crate::oauth::provider::{GithubEndpoints, ProviderConfig};
use crate::store::oauth_providers;

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
        // Any tenant's accounts, personal ones included (see `microsoft`).
        "microsoft" => Some("https://login.microsoftonline.com/common/v2.0".into()),
        _ => None,
    });
    let apple = match &row.apple_sealed {
        Some(sealed) => Some(
            state
                .master_key
                .open(sealed, &oauth_secret_context(project_id, provider, "apple"))
                .ok()
                .and_then(|b| serde_json::from_slice::<AppleKey>(&b).ok())
                .ok_or_else(|| ApiError::internal("an Apple key does not open"))?,
        ),
        None => None,
    };
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
        apple,
        tenant_id: row.tenant_id.clone(),
        scopes: serde_json::from_str(&row.scopes).unwrap_or_default(),
        issuer,
        github,
    })
}
