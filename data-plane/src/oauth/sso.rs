//! `POST /v1/auth/sso/start {email, redirect_to?}`: enterprise SSO routed by
//! the address's domain. When the domain is a verified domain of a tenant
//! with an SSO connection, the answer is `{redirect_url}`: this service's
//! own `start` for that connection (provider `sso:<tenant_id>`), where the
//! browser is bound and sent on to the tenant's identity provider.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::http;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::DataState;
use crate::input::Email;
use crate::oauth::accounts::SsoTenant;
use crate::oauth::flow::{allowed_redirect, origin};
use crate::request::client::Client;
use crate::request::resolve::{Resolved, Via};
use crate::store::oauth_providers;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsoStartBody {
    email: String,
    redirect_to: Option<String>,
}

pub async fn sso_start(
    State(state): State<DataState>,
    resolved: Resolved,
    client: Client,
    headers: HeaderMap,
    http::Json(body): http::Json<SsoStartBody>,
) -> ApiResult<Json<Value>> {
    crate::email::send::limit(&state, &resolved, &client)?;
    let email = Email::parse(&body.email)?;
    let redirect_to = match &body.redirect_to {
        Some(url) => allowed_redirect(&resolved, url)?,
        // The app's first allowed origin, when it names none.
        None => match resolved.project.settings.allowed_origins.first() {
            Some(origin) => allowed_redirect(&resolved, &format!("{origin}/"))?,
            None => allowed_redirect(&resolved, "")?,
        },
    };
    // The navigation carries the key it came with, which must be one a
    // browser may see.
    let project_key = match &resolved.via {
        Via::Host(_) => None,
        Via::Key { .. } if resolved.is_secret_key() => {
            return Err(ApiError::forbidden(
                "publishable_key_required",
                "the redirect URL carries the project's key: call this with a publishable key (pk_...)",
            ));
        }
        Via::Key { .. } => headers
            .get("x-project-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    };
    let domain = email
        .normalized
        .rsplit_once('@')
        .map_or("", |(_, d)| d)
        .to_string();
    let project_id = &resolved.project.id;
    let mut control = state.control_db.scope_read(project_id).await?;
    let found = oauth_providers::sso_for_domain(&mut control, project_id, &domain).await?;
    control.commit().await?;
    let (tenant_id, _) = found.ok_or_else(|| {
        ApiError::not_found_code(
            "sso_not_configured",
            "no organisation signs in with single sign-on for this address's domain",
        )
    })?;
    let mut params = vec![("redirect_to", redirect_to)];
    if let Some(key) = project_key {
        params.push(("project_key", key));
    }
    let url = reqwest::Url::parse_with_params(
        &format!(
            "{}/v1/auth/oauth/sso:{tenant_id}/start",
            origin(&state, &resolved)
        ),
        &params,
    )
    .map_err(ApiError::internal)?;
    Ok(Json(json!({"redirect_url": url.to_string()})))
}

/// The SSO connection's tenant, read from the control database.
pub(crate) async fn sso_tenant(
    state: &DataState,
    project_id: &str,
    tenant_id: &str,
) -> Result<SsoTenant, &'static str> {
    let server = |_| "server_error";
    let mut control = state
        .control_db
        .scope_read(project_id)
        .await
        .map_err(server)?;
    let (domains, role) = oauth_providers::tenant_for_sso(&mut control, project_id, tenant_id)
        .await
        .map_err(server)?;
    control.commit().await.map_err(server)?;
    Ok(SsoTenant {
        tenant_id: tenant_id.to_string(),
        domains,
        role,
    })
}
