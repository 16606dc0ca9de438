//! Enterprise SSO per tenant: `PUT /v1/projects/{id}/tenants/{tenant_id}/sso`
//! `{issuer, client_id, client_secret, enforce?, enabled?, scopes?}`, `GET`
//! and `DELETE`. The connection is an OpenID provider kept beside the
//! project's own (provider `sso:<tenant_id>`), so the data plane's sign-in
//! flow serves it unchanged; it answers only for the tenant's verified
//! domains. `enforce` makes password and email sign-in for those domains
//! answer `403 sso_required`. `protocol` is `oidc` (SAML may join it).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::http;
use identity_shared::invalidation::Invalidation;
use identity_shared::schema::OauthProviders;
use identity_shared::time::{now_ms, rfc3339};
use sea_query::{Expr, ExprTrait, Query};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::oauth_providers::{
    ProviderRow, checked_scopes, client_credentials, invalid, load, provider_url, save,
    sealed_client_secret,
};
use crate::{ControlState, project_store, tenants};

pub fn router() -> Router<ControlState> {
    Router::new().route(
        "/v1/projects/{id}/tenants/{tenant_id}/sso",
        get(show).put(upsert).delete(remove),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SsoBody {
    issuer: String,
    client_id: String,
    client_secret: Option<String>,
    enforce: Option<bool>,
    enabled: Option<bool>,
    scopes: Option<Vec<String>>,
    protocol: Option<String>,
}

/// The provider name of a tenant's connection.
pub fn provider_name(tenant_id: &str) -> String {
    format!("sso:{tenant_id}")
}

fn to_json(row: &ProviderRow) -> Value {
    json!({
        "tenant_id": row.tenant_id,
        "protocol": row.protocol,
        "issuer": row.issuer,
        "client_id": row.client_id,
        "has_client_secret": row.client_secret_sealed.is_some(),
        "scopes": serde_json::from_str::<Value>(&row.scopes).unwrap_or(Value::Null),
        "enabled": row.enabled,
        "enforce": row.enforce,
        "created_at": rfc3339(row.created_at),
        "updated_at": rfc3339(row.updated_at),
    })
}

async fn upsert(
    State(state): State<ControlState>,
    Path((project_id, tenant_id)): Path<(String, String)>,
    http::Json(body): http::Json<SsoBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if body.protocol.as_deref().is_some_and(|p| p != "oidc") {
        return Err(invalid("protocol must be oidc (SAML is not supported yet)"));
    }
    let issuer = provider_url("issuer", &body.issuer, state.config.dev_mode)?;
    let (client_id, client_secret) = client_credentials(&body.client_id, &body.client_secret)?;
    let scopes = checked_scopes(body.scopes.as_deref(), &["openid", "email", "profile"])?;
    if !scopes.iter().any(|s| s == "openid") {
        return Err(invalid("an OpenID connection's scopes must include openid"));
    }
    let mut tx = state.db.control().await?;
    let project = project_store::load(&mut tx, &project_id).await?;
    let tenant = tenants::load(&mut tx, &project.id, &tenant_id).await?;
    let provider = provider_name(&tenant.id);
    let existing = load(&mut tx, &project.id, &provider).await?;
    let sealed_secret = sealed_client_secret(
        &state,
        &project.id,
        &provider,
        client_secret.as_deref(),
        existing.as_ref(),
    );
    if sealed_secret.is_none() {
        return Err(invalid("client_secret is required"));
    }
    let now = now_ms();
    let row = ProviderRow {
        provider: provider.clone(),
        client_id,
        client_secret_sealed: sealed_secret,
        scopes: serde_json::to_string(&scopes).map_err(ApiError::internal)?,
        enabled: body.enabled.unwrap_or(true),
        issuer: Some(issuer),
        endpoints: None,
        apple_sealed: None,
        created_at: existing.as_ref().map_or(now, |r| r.created_at),
        updated_at: now,
        tenant_id: Some(tenant.id.clone()),
        enforce: body.enforce.unwrap_or(false),
        protocol: "oidc".into(),
    };
    save(&mut tx, &project.id, &row).await?;
    // The data plane keeps the enforced domains with the project.
    tx.invalidate(Invalidation::Project(project.id.clone()))
        .await?;
    tx.commit().await?;
    let status = if existing.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(json!({"sso": to_json(&row)}))))
}

async fn show(
    State(state): State<ControlState>,
    Path((project_id, tenant_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let mut tx = state.db.control().await?;
    let project = project_store::load(&mut tx, &project_id).await?;
    let tenant = tenants::load(&mut tx, &project.id, &tenant_id).await?;
    let row = load(&mut tx, &project.id, &provider_name(&tenant.id)).await?;
    tx.commit().await?;
    let row = row.ok_or_else(|| ApiError::not_found("sso connection"))?;
    Ok(Json(json!({"sso": to_json(&row)})))
}

async fn remove(
    State(state): State<ControlState>,
    Path((project_id, tenant_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let mut tx = state.db.control().await?;
    let project = project_store::load(&mut tx, &project_id).await?;
    let tenant = tenants::load(&mut tx, &project.id, &tenant_id).await?;
    let n = delete_for_tenant(&mut tx, &project.id, &tenant.id).await?;
    if n == 0 {
        return Err(ApiError::not_found("sso connection"));
    }
    tx.invalidate(Invalidation::Project(project.id.clone()))
        .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes the tenant's connection (also when the tenant goes).
pub async fn delete_for_tenant(
    tx: &mut identity_shared::db::Tx,
    project_id: &str,
    tenant_id: &str,
) -> ApiResult<u64> {
    Ok(tx
        .execute(
            Query::delete()
                .from_table(OauthProviders::Table)
                .and_where(Expr::col(OauthProviders::ProjectId).eq(project_id))
                .and_where(Expr::col(OauthProviders::TenantId).eq(tenant_id)),
        )
        .await?)
}
