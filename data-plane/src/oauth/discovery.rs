//! Discovery: an OpenID provider's metadata and keys, fetched from its
//! issuer (cached), with every URL the document names checked before
//! anything is fetched from it.

use std::sync::Arc;

use openidconnect::core::CoreProviderMetadata;

use super::outbound::{Capped, get_json};
use super::provider::{OauthClients, OauthError};

impl OauthClients {
    /// The provider's metadata and keys, discovered from its issuer
    /// (cached an hour; `refresh` fetches again, for a key the cache lacks).
    pub(super) async fn metadata(
        &self,
        issuer: &str,
        refresh: bool,
    ) -> Result<Arc<CoreProviderMetadata>, OauthError> {
        if refresh {
            self.discovered.invalidate(issuer).await;
        }
        self.discovered
            .try_get_with(issuer.to_string(), self.discover(issuer))
            .await
            .map_err(|e: Arc<OauthError>| OauthError::Provider(e.to_string()))
    }

    /// Discovery by hand, so that every URL the document names is checked
    /// before anything is fetched from it (the DNS filter does not see an
    /// IP-literal host): the document from the issuer, its issuer equal to
    /// the configured one, then the keys.
    async fn discover(&self, issuer: &str) -> Result<Arc<CoreProviderMetadata>, OauthError> {
        self.check_url(issuer)?;
        let document = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let body = get_json(&self.http, &document, "application/json", None)
            .await
            .map_err(|e| OauthError::Provider(format!("discovery: {e}")))?;
        let md: CoreProviderMetadata = serde_json::from_value(body)
            .map_err(|e| OauthError::Provider(format!("discovery: {e}")))?;
        let named = md.issuer().as_str();
        let same = named.trim_end_matches('/') == issuer.trim_end_matches('/');
        if !same && !super::microsoft::template_covers(named, issuer) {
            return Err(OauthError::Provider(
                "discovery: the document names another issuer".into(),
            ));
        }
        self.check_url(md.authorization_endpoint().as_str())?;
        if let Some(token) = md.token_endpoint() {
            self.check_url(token.as_str())?;
        }
        if let Some(userinfo) = md.userinfo_endpoint() {
            self.check_url(userinfo.as_str())?;
        }
        self.check_url(md.jwks_uri().as_str())?;
        let jwks =
            openidconnect::core::CoreJsonWebKeySet::fetch_async(md.jwks_uri(), &Capped(&self.http))
                .await
                .map_err(|e| OauthError::Provider(format!("keys: {e}")))?;
        Ok(Arc::new(md.set_jwks(jwks)))
    }

    /// A provider URL this node may fetch: `https://` to a named host, or
    /// (dev mode) `http://` to loopback too. IP-literal hosts are refused
    /// outside dev mode: the DNS filter never sees them.
    pub(super) fn check_url(&self, url: &str) -> Result<(), OauthError> {
        let bad = || OauthError::Provider("a provider URL is not https:// to a public host".into());
        let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => host.rsplit_once(':').map_or(host, |(h, _)| h),
        };
        if self.allow_private {
            return matches!(scheme, "https" | "http")
                .then_some(())
                .ok_or_else(bad);
        }
        if scheme != "https" || host.is_empty() || identity_shared::hostname::is_ip_host(host) {
            return Err(bad());
        }
        Ok(())
    }
}
