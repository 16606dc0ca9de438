//! Talking to an OAuth 2 or OpenID Connect provider: discovery (cached),
//! the authorization URL with state, nonce and PKCE (S256), and the code
//! exchange with the ID token verified (signature by the provider's JWKS,
//! `iss`, `aud`, `exp`, `nonce`). GitHub, plain OAuth 2, is read from its
//! `/user` and `/user/emails` API instead.
//!
//! Every request goes through one HTTP client that follows no redirect and,
//! outside dev mode, connects to public addresses only (SSRF).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};

/// A provider's configuration, as the control plane stored it (secrets
/// opened).
#[derive(Clone)]
pub struct ProviderConfig {
    /// `google`, `microsoft`, `apple`, `github` or `oidc:<name>`.
    pub provider: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub scopes: Vec<String>,
    /// The OpenID issuer (discovery); `None` for GitHub.
    pub issuer: Option<String>,
    /// GitHub's URLs (GitHub Enterprise, tests).
    pub github: Option<GithubEndpoints>,
}

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
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderUser {
    /// The provider's stable id of the user (`sub`, GitHub's numeric id).
    pub subject: String,
    pub email: Option<String>,
    /// Only when the provider asserts it.
    pub email_verified: bool,
    pub name: Option<String>,
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
    http: openidconnect::reqwest::Client,
    /// Dev mode: loopback `http://` providers allowed.
    allow_private: bool,
    discovered: moka::future::Cache<String, Arc<CoreProviderMetadata>>,
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
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(3600))
                .build(),
        })
    }

    /// The provider's metadata and keys, discovered from its issuer
    /// (cached an hour; `refresh` fetches again, for a key the cache lacks).
    async fn metadata(
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
        let body = self
            .http
            .get(&document)
            .header("accept", "application/json")
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| OauthError::Provider(format!("discovery: {}", e.without_url())))?
            .bytes()
            .await
            .map_err(|e| OauthError::Provider(format!("discovery: {}", e.without_url())))?;
        if body.len() > 1_000_000 {
            return Err(OauthError::Provider(
                "discovery: the document is too large".into(),
            ));
        }
        let md: CoreProviderMetadata = serde_json::from_slice(&body)
            .map_err(|e| OauthError::Provider(format!("discovery: {e}")))?;
        if md.issuer().as_str().trim_end_matches('/') != issuer.trim_end_matches('/') {
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
        let jwks = openidconnect::core::CoreJsonWebKeySet::fetch_async(md.jwks_uri(), &self.http)
            .await
            .map_err(|e| OauthError::Provider(format!("keys: {e}")))?;
        Ok(Arc::new(md.set_jwks(jwks)))
    }

    /// A provider URL this node may fetch: `https://` to a named host, or
    /// (dev mode) `http://` to loopback too. IP-literal hosts are refused
    /// outside dev mode: the DNS filter never sees them.
    fn check_url(&self, url: &str) -> Result<(), OauthError> {
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
        if scheme != "https" || host.is_empty() || host.parse::<IpAddr>().is_ok() {
            return Err(bad());
        }
        Ok(())
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
                let client = CoreClient::from_provider_metadata(
                    (*md).clone(),
                    ClientId::new(cfg.client_id.clone()),
                    cfg.client_secret.clone().map(ClientSecret::new),
                )
                .set_redirect_uri(redirect);
                let mut request = client.authorize_url(
                    CoreAuthenticationFlow::AuthorizationCode,
                    move || CsrfToken::new(state),
                    move || Nonce::new(nonce),
                );
                for scope in cfg.scopes.iter().filter(|s| *s != "openid") {
                    request = request.add_scope(Scope::new(scope.clone()));
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
        let client = CoreClient::from_provider_metadata(
            (*md).clone(),
            ClientId::new(cfg.client_id.clone()),
            cfg.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect)
        .set_token_uri(token_url);
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()))
            .request_async(&self.http)
            .await
            .map_err(|e| OauthError::Exchange(e.to_string()))?;
        let id_token = token
            .id_token()
            .ok_or_else(|| OauthError::IdToken("the provider sent no ID token".into()))?;
        let expected = Nonce::new(nonce.to_string());
        let claims = match id_token.claims(&client.id_token_verifier(), &expected) {
            Ok(claims) => claims.clone(),
            // A key the cached JWKS lacks (the provider rotated): fetch the
            // keys once more and judge again.
            Err(openidconnect::ClaimsVerificationError::SignatureVerification(_)) => {
                let fresh = self.metadata(issuer, true).await?;
                let client = CoreClient::from_provider_metadata(
                    (*fresh).clone(),
                    ClientId::new(cfg.client_id.clone()),
                    cfg.client_secret.clone().map(ClientSecret::new),
                );
                id_token
                    .claims(&client.id_token_verifier(), &expected)
                    .map_err(|e| OauthError::IdToken(e.to_string()))?
                    .clone()
            }
            Err(e) => return Err(OauthError::IdToken(e.to_string())),
        };
        Ok(ProviderUser {
            subject: claims.subject().as_str().to_string(),
            email: claims.email().map(|e| e.as_str().to_string()),
            email_verified: claims.email_verified().unwrap_or(false),
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_string()),
        })
    }

    async fn finish_github(
        &self,
        cfg: &ProviderConfig,
        redirect: RedirectUrl,
        code: &str,
        pkce_verifier: &str,
    ) -> Result<ProviderUser, OauthError> {
        let urls = cfg.github.clone().unwrap_or_default();
        self.check_url(&urls.token)?;
        self.check_url(&urls.api)?;
        let client = github_client(cfg, redirect)?;
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()))
            .request_async(&self.http)
            .await
            .map_err(|e| OauthError::Exchange(e.to_string()))?;
        let api = cfg.github.clone().unwrap_or_default().api;
        let bearer = token.access_token().secret().clone();
        let get = |path: &str| {
            self.http
                .get(format!("{api}{path}"))
                .bearer_auth(&bearer)
                .header("accept", "application/vnd.github+json")
                .send()
        };
        let read = |path: &'static str| async move {
            let body = get(path)
                .await
                .and_then(|r| r.error_for_status())
                .map_err(|e| OauthError::Identity(format!("GitHub {path}: {}", e.without_url())))?
                .bytes()
                .await
                .map_err(|e| OauthError::Identity(format!("GitHub {path}: {}", e.without_url())))?;
            serde_json::from_slice::<serde_json::Value>(&body)
                .map_err(|e| OauthError::Identity(format!("GitHub {path}: {e}")))
        };
        let user = read("/user").await?;
        let subject = match &user["id"] {
            serde_json::Value::Number(n) => n.to_string(),
            _ => return Err(OauthError::Identity("GitHub /user has no id".into())),
        };
        // The primary address, if GitHub says it is verified (it may be
        // private: then only /user/emails shows it).
        let emails = read("/user/emails").await?;
        let primary = emails
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["primary"] == true && e["verified"] == true)
            .and_then(|e| e["email"].as_str());
        Ok(ProviderUser {
            subject,
            email: primary.map(str::to_string),
            email_verified: primary.is_some(),
            name: user["name"]
                .as_str()
                .or(user["login"].as_str())
                .map(str::to_string),
        })
    }
}

type GithubClient = oauth2::basic::BasicClient<
    oauth2::EndpointSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

fn github_client(cfg: &ProviderConfig, redirect: RedirectUrl) -> Result<GithubClient, OauthError> {
    let urls = cfg.github.clone().unwrap_or_default();
    let bad = |e: oauth2::url::ParseError| OauthError::Config(e.to_string());
    let mut client = oauth2::basic::BasicClient::new(oauth2::ClientId::new(cfg.client_id.clone()))
        .set_auth_uri(oauth2::AuthUrl::new(urls.authorize).map_err(bad)?)
        .set_token_uri(oauth2::TokenUrl::new(urls.token).map_err(bad)?)
        .set_redirect_uri(oauth2::RedirectUrl::new(redirect.to_string()).map_err(bad)?)
        .set_auth_type(oauth2::AuthType::RequestBody);
    if let Some(secret) = &cfg.client_secret {
        client = client.set_client_secret(oauth2::ClientSecret::new(secret.clone()));
    }
    Ok(client)
}
