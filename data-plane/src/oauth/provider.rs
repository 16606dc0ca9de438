//! Talking to an OAuth 2 or OpenID Connect provider: discovery (cached),
//! the authorization URL with state, nonce and PKCE (S256), and the code
//! exchange with the ID token verified (signature by the provider's JWKS,
//! `iss`, `aud`, `exp`, `nonce`). GitHub, plain OAuth 2, is read from its
//! `/user` and `/user/emails` API instead.
//!
//! Every request goes through one HTTP client that follows no redirect and,
//! outside dev mode, connects to public addresses only (SSRF).

use std::sync::Arc;
use std::time::Duration;

use identity_shared::apple::AppleKey;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreClientAuthMethod, CoreProviderMetadata,
};
use openidconnect::{
    AuthType, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse,
};
use serde_json::Value;

use super::github::github_client;
use super::microsoft;
use super::outbound::Capped;

/// A provider's configuration, as the control plane stored it (secrets
/// opened).
#[derive(Clone)]
pub struct ProviderConfig {
    /// `google`, `microsoft`, `apple`, `github` or `oidc:<name>`.
    pub provider: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    /// Sign in with Apple's key: the client secret is a JWT signed with it.
    pub apple: Option<AppleKey>,
    /// An enterprise SSO connection's tenant (provider `sso:<tenant_id>`).
    pub tenant_id: Option<String>,
    pub scopes: Vec<String>,
    /// The OpenID issuer (discovery); `None` for GitHub.
    pub issuer: Option<String>,
    /// GitHub's URLs (GitHub Enterprise, tests).
    pub github: Option<GithubEndpoints>,
}

impl ProviderConfig {
    /// The secret the token endpoint is sent: the stored one, or for Apple
    /// a JWT signed now (its audience the issuer).
    fn secret(&self) -> Result<Option<ClientSecret>, OauthError> {
        let Some(key) = &self.apple else {
            return Ok(self.client_secret.clone().map(ClientSecret::new));
        };
        let audience = self
            .issuer
            .as_deref()
            .unwrap_or("https://appleid.apple.com");
        let now = identity_shared::time::now_ms() as u64 / 1000;
        identity_shared::apple::client_secret(key, &self.client_id, audience, now)
            .map(|s| Some(ClientSecret::new(s)))
            .map_err(OauthError::Config)
    }
}

type OidcClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

#[derive(Clone, Debug)]
pub struct GithubEndpoints {
    pub authorize: String,
    pub token: String,
    pub api: String,
}

impl Default for GithubEndpoints {
    fn default() -> Self {
        Self {
            authorize: "https://github.com/login/oauth/authorize".into(),
            token: "https://github.com/login/oauth/access_token".into(),
            api: "https://api.github.com".into(),
        }
    }
}

/// Who the provider says signed in.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProviderUser {
    /// The provider's stable id of the user (`sub`, GitHub's numeric id).
    pub subject: String,
    pub email: Option<String>,
    /// Only when the provider asserts it.
    pub email_verified: bool,
    pub name: Option<String>,
    /// Who vouched for the subject: the ID token's `iss` (GitHub: its API).
    pub issuer: Option<String>,
}

/// Why a provider step failed; `code()` is the stable error code a
/// callback redirects with.
#[derive(Debug, thiserror::Error)]
pub enum OauthError {
    #[error("the provider could not be reached or described itself wrongly: {0}")]
    Provider(String),
    #[error("the provider refused the code: {0}")]
    Exchange(String),
    #[error("the ID token is not valid: {0}")]
    IdToken(String),
    #[error("the provider gave no usable identity: {0}")]
    Identity(String),
    #[error("the provider's configuration is not usable: {0}")]
    Config(String),
}

impl OauthError {
    pub fn code(&self) -> &'static str {
        match self {
            OauthError::Provider(_) => "provider_unavailable",
            OauthError::Exchange(_) => "code_exchange_failed",
            OauthError::IdToken(_) => "invalid_id_token",
            OauthError::Identity(_) => "provider_identity_missing",
            OauthError::Config(_) => "provider_misconfigured",
        }
    }
}

/// The authorization request's secrets, kept server-side until the
/// callback.
pub struct Started {
    pub url: String,
    pub pkce_verifier: String,
}

pub struct OauthClients {
    pub(super) http: openidconnect::reqwest::Client,
    /// Dev mode: loopback `http://` providers allowed.
    pub(super) allow_private: bool,
    pub(super) discovered: moka::future::Cache<String, Arc<CoreProviderMetadata>>,
}

impl OauthClients {
    /// `allow_private`: dev mode (test providers on loopback).
    pub fn new(allow_private: bool) -> Result<Self, String> {
        let mut builder = openidconnect::reqwest::Client::builder()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .no_proxy()
            .user_agent("identity");
        if !allow_private {
            builder = builder.dns_resolver(Arc::new(super::outbound::PublicOnly));
        }
        Ok(Self {
            http: builder.build().map_err(|e| format!("HTTP client: {e}"))?,
            allow_private,
            discovered: moka::future::Cache::builder()
                // Weighed by size: a document is capped at 1 MB, the cache
                // at 64 MB.
                .weigher(|_, md: &Arc<CoreProviderMetadata>| {
                    serde_json::to_vec(md.as_ref()).map_or(u32::MAX, |v| v.len() as u32)
                })
                .max_capacity(64 * 1024 * 1024)
                .time_to_live(Duration::from_secs(3600))
                .build(),
        })
    }

    /// The URL to send the browser to, with `state`, `nonce` and a fresh
    /// PKCE challenge (its verifier is returned, to keep server-side).
    pub async fn start(
        &self,
        cfg: &ProviderConfig,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
    ) -> Result<Started, OauthError> {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let redirect = RedirectUrl::new(redirect_uri.to_string())
            .map_err(|e| OauthError::Config(format!("redirect URI: {e}")))?;
        let (state, nonce) = (state.to_string(), nonce.to_string());
        let url = match &cfg.issuer {
            Some(issuer) => {
                let md = self.metadata(issuer, false).await?;
                // No secret is needed to send the browser away (Apple's is
                // signed at the exchange).
                let client = oidc_client(cfg, &md, None).set_redirect_uri(redirect);
                let mut request = client.authorize_url(
                    CoreAuthenticationFlow::AuthorizationCode,
                    move || CsrfToken::new(state),
                    move || Nonce::new(nonce),
                );
                for scope in cfg.scopes.iter().filter(|s| *s != "openid") {
                    request = request.add_scope(Scope::new(scope.clone()));
                }
                // Apple answers a request for the name or address only by
                // a form post.
                if cfg.apple.is_some() {
                    request = request.add_extra_param("response_mode", "form_post");
                }
                request.set_pkce_challenge(challenge).url().0
            }
            None => {
                let client = github_client(cfg, redirect)?;
                let mut request = client.authorize_url(move || CsrfToken::new(state));
                for scope in &cfg.scopes {
                    request = request.add_scope(Scope::new(scope.clone()));
                }
                request.set_pkce_challenge(challenge).url().0
            }
        };
        Ok(Started {
            url: url.to_string(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Exchanges the callback's code (with the PKCE verifier) and says who
    /// signed in: from the verified ID token (its nonce must be `nonce`),
    /// or from GitHub's API.
    pub async fn finish(
        &self,
        cfg: &ProviderConfig,
        redirect_uri: &str,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
    ) -> Result<ProviderUser, OauthError> {
        let redirect = RedirectUrl::new(redirect_uri.to_string())
            .map_err(|e| OauthError::Config(format!("redirect URI: {e}")))?;
        let Some(issuer) = &cfg.issuer else {
            return self.finish_github(cfg, redirect, code, pkce_verifier).await;
        };
        let md = self.metadata(issuer, false).await?;
        let token_url = md
            .token_endpoint()
            .cloned()
            .ok_or_else(|| OauthError::Provider("no token endpoint".into()))?;
        let client = oidc_client(cfg, &md, cfg.secret()?)
            .set_redirect_uri(redirect)
            .set_token_uri(token_url);
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()))
            .request_async(&Capped(&self.http))
            .await
            .map_err(|e| OauthError::Exchange(e.to_string()))?;
        let id_token = token
            .id_token()
            .ok_or_else(|| OauthError::IdToken("the provider sent no ID token".into()))?;
        let expected = Nonce::new(nonce.to_string());
        // Microsoft's multi-tenant issuer is a template: the library
        // cannot match it, so `iss` is judged below against the token's
        // own tenant.
        let template = microsoft::is_template(&cfg.provider, md.issuer().as_str());
        let judge = |md: &CoreProviderMetadata| {
            let client = oidc_client(cfg, md, None);
            let verifier = client.id_token_verifier().require_issuer_match(!template);
            id_token.claims(&verifier, &expected).cloned()
        };
        let claims = match judge(&md) {
            Ok(claims) => claims,
            // A key the cached JWKS lacks (the provider rotated): fetch the
            // keys once more and judge again.
            Err(openidconnect::ClaimsVerificationError::SignatureVerification(_)) => {
                let fresh = self.metadata(issuer, true).await?;
                judge(&fresh).map_err(|e| OauthError::IdToken(e.to_string()))?
            }
            Err(e) => return Err(OauthError::IdToken(e.to_string())),
        };
        // The verified token's claims as JSON, for what the library's
        // standard claims do not carry (`tid`, `xms_edov`).
        let payload = verified_payload(&id_token.to_string())?;
        let email_verified = if template || cfg.provider == "microsoft" {
            microsoft::check_tenant(md.issuer().as_str(), issuer, &payload, template)?;
            microsoft::email_verified(&payload)
        } else {
            claims.email_verified().unwrap_or(false)
        };
        Ok(ProviderUser {
            subject: claims.subject().as_str().to_string(),
            email: claims.email().map(|e| e.as_str().to_string()),
            email_verified,
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_string()),
            issuer: Some(claims.issuer().as_str().to_string()),
        })
    }
}

/// An OpenID client for the provider's metadata: the secret sent in the
/// body when the provider takes only `client_secret_post` (Apple), in the
/// Authorization header otherwise.
fn oidc_client(
    cfg: &ProviderConfig,
    md: &CoreProviderMetadata,
    secret: Option<ClientSecret>,
) -> OidcClient {
    let post_only = md.token_endpoint_auth_methods_supported().is_some_and(|m| {
        m.contains(&CoreClientAuthMethod::ClientSecretPost)
            && !m.contains(&CoreClientAuthMethod::ClientSecretBasic)
    });
    let client = CoreClient::from_provider_metadata(
        md.clone(),
        ClientId::new(cfg.client_id.clone()),
        secret,
    );
    if post_only {
        client.set_auth_type(AuthType::RequestBody)
    } else {
        client
    }
}

/// The claims of an ID token whose signature has been verified.
fn verified_payload(jwt: &str) -> Result<Value, OauthError> {
    use base64::Engine;
    let bad = || OauthError::IdToken("the ID token's claims are not JSON".into());
    let payload = jwt.split('.').nth(1).ok_or_else(bad)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| bad())?;
    serde_json::from_slice(&bytes).map_err(|_| bad())
}
