//! A project's provider configuration, as the control plane stored it
//! (read in the control database; secrets still sealed).

use identity_shared::db::{DbError, Tx};
use identity_shared::schema::OauthProviders;
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
            ])
            .from(OauthProviders::Table)
            .and_where(Expr::col(OauthProviders::ProjectId).eq(project_id))
            .and_where(Expr::col(OauthProviders::Provider).eq(provider)),
    )
    .await
}
