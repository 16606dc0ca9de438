//! A project's provider configuration, as the control plane stored it
//! (read in the control database; secrets still sealed), and the tenants'
//! SSO connections (provider `sso:<tenant_id>`) with the verified domains
//! they answer for.

use identity_shared::db::{DbError, Tx};
use identity_shared::schema::{OauthProviders, TenantDomains, Tenants};
use sea_query::{Expr, ExprTrait, Query};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProviderRow {
    pub provider: String,
    pub client_id: String,
    pub client_secret_sealed: Option<String>,
    pub scopes: String,
    pub enabled: bool,
    pub issuer: Option<String>,
    pub endpoints: Option<String>,
    pub apple_sealed: Option<String>,
    /// An SSO connection's tenant.
    pub tenant_id: Option<String>,
    pub enforce: bool,
}

pub async fn find<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    provider: &str,
) -> Result<Option<ProviderRow>, DbError> {
    tx.fetch_optional(
        Query::select()
            .columns([
                OauthProviders::Provider,
                OauthProviders::ClientId,
                OauthProviders::ClientSecretSealed,
                OauthProviders::Scopes,
                OauthProviders::Enabled,
                OauthProviders::Issuer,
                OauthProviders::Endpoints,
                OauthProviders::AppleSealed,
                OauthProviders::TenantId,
                OauthProviders::Enforce,
            ])
            .from(OauthProviders::Table)
            .and_where(Expr::col(OauthProviders::ProjectId).eq(project_id))
            .and_where(Expr::col(OauthProviders::Provider).eq(provider)),
    )
    .await
}

/// The tenant with an enabled SSO connection whose verified domains
/// include `domain`: `(tenant_id, enforce)`.
pub async fn sso_for_domain<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    domain: &str,
) -> Result<Option<(String, bool)>, DbError> {
    tx.fetch_optional(
        Query::select()
            .column((OauthProviders::Table, OauthProviders::TenantId))
            .column((OauthProviders::Table, OauthProviders::Enforce))
            .from(OauthProviders::Table)
            .inner_join(
                TenantDomains::Table,
                Expr::col((TenantDomains::Table, TenantDomains::TenantId))
                    .equals((OauthProviders::Table, OauthProviders::TenantId)),
            )
            .and_where(Expr::col((OauthProviders::Table, OauthProviders::ProjectId)).eq(project_id))
            .and_where(Expr::col((TenantDomains::Table, TenantDomains::ProjectId)).eq(project_id))
            .and_where(Expr::col((TenantDomains::Table, TenantDomains::Domain)).eq(domain))
            .and_where(Expr::col((TenantDomains::Table, TenantDomains::Verified)).eq(true))
            .and_where(Expr::col((OauthProviders::Table, OauthProviders::Enabled)).eq(true)),
    )
    .await
}

/// The verified domains of the project's tenants whose SSO connection is
/// enforced (password and email sign-in refused for them).
pub async fn enforced_domains<M>(tx: &mut Tx<M>, project_id: &str) -> Result<Vec<String>, DbError> {
    let rows: Vec<(String,)> = tx
        .fetch_all(
            Query::select()
                .column((TenantDomains::Table, TenantDomains::Domain))
                .from(OauthProviders::Table)
                .inner_join(
                    TenantDomains::Table,
                    Expr::col((TenantDomains::Table, TenantDomains::TenantId))
                        .equals((OauthProviders::Table, OauthProviders::TenantId)),
                )
                .and_where(
                    Expr::col((OauthProviders::Table, OauthProviders::ProjectId)).eq(project_id),
                )
                .and_where(
                    Expr::col((TenantDomains::Table, TenantDomains::ProjectId)).eq(project_id),
                )
                .and_where(Expr::col((TenantDomains::Table, TenantDomains::Verified)).eq(true))
                .and_where(Expr::col((OauthProviders::Table, OauthProviders::Enabled)).eq(true))
                .and_where(Expr::col((OauthProviders::Table, OauthProviders::Enforce)).eq(true)),
        )
        .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// A tenant's verified domains and the role its joiners get.
pub async fn tenant_for_sso<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    tenant_id: &str,
) -> Result<(Vec<String>, String), DbError> {
    let domains: Vec<(String,)> = tx
        .fetch_all(
            Query::select()
                .column(TenantDomains::Domain)
                .from(TenantDomains::Table)
                .and_where(Expr::col(TenantDomains::ProjectId).eq(project_id))
                .and_where(Expr::col(TenantDomains::TenantId).eq(tenant_id))
                .and_where(Expr::col(TenantDomains::Verified).eq(true)),
        )
        .await?;
    let role: Option<(Option<String>,)> = tx
        .fetch_optional(
            Query::select()
                .column(Tenants::AutoJoinRole)
                .from(Tenants::Table)
                .and_where(Expr::col(Tenants::ProjectId).eq(project_id))
                .and_where(Expr::col(Tenants::Id).eq(tenant_id)),
        )
        .await?;
    Ok((
        domains.into_iter().map(|d| d.0).collect(),
        role.and_then(|r| r.0).unwrap_or_else(|| "member".into()),
    ))
}
