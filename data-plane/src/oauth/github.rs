//! GitHub, plain OAuth 2: the code exchange with PKCE, then who signed in
//! from `/user` and `/user/emails` (the primary address may be private).

use openidconnect::{AuthorizationCode, OAuth2TokenResponse, PkceCodeVerifier, RedirectUrl};

use super::outbound::{Capped, get_json};
use super::provider::{OauthClients, OauthError, ProviderConfig, ProviderUser};

impl OauthClients {
    pub(super) async fn finish_github(
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
            .request_async(&Capped(&self.http))
            .await
            .map_err(|e| OauthError::Exchange(e.to_string()))?;
        let api = cfg.github.clone().unwrap_or_default().api;
        let bearer = token.access_token().secret().clone();
        let read = |path: &'static str| {
            let (url, bearer) = (format!("{api}{path}"), &bearer);
            async move {
                get_json(
                    &self.http,
                    &url,
                    "application/vnd.github+json",
                    Some(bearer),
                )
                .await
                .map_err(|e| OauthError::Identity(format!("GitHub {path}: {e}")))
            }
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
            issuer: Some(api),
        })
    }
}

pub(super) type GithubClient = oauth2::basic::BasicClient<
    oauth2::EndpointSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

pub(super) fn github_client(
    cfg: &ProviderConfig,
    redirect: RedirectUrl,
) -> Result<GithubClient, OauthError> {
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
