//! Each project's OAuth and OpenID Connect providers:
//! `PUT /v1/projects/{id}/oauth-providers/{provider}`, `GET` (list) and
//! `DELETE`. Providers are `google`, `microsoft`, `apple`, `github` and
//! `oidc:<name>` (any OpenID provider, found by discovery from `issuer`).
//! The client secret, and Apple's signing key, are sealed with the master
//! key and never returned.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::http;
use identity_shared::ids::new_id;
use identity_shared::schema::OauthProviders;
use identity_shared::time::{now_ms, rfc3339};
use sea_query::{Expr, ExprTrait, OnConflict, Order, Query};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{ControlState, project_store};

pub fn router() -> Router<ControlState> {
    Router::new()
        .route("/v1/projects/{id}/oauth-providers", get(list))
        .route(
            "/v1/projects/{id}/oauth-providers/{provider}",
            put(upsert).delete(remove),
        )
}

/// What a provider is, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Google,
    Microsoft,
    Apple,
    Github,
    /// `oidc:<name>`: any OpenID provider, by discovery.
    Oidc,
}

impl Kind {
    pub fn of(provider: &str) -> Option<Kind> {
        match provider {
            "google" => Some(Kind::Google),
            "microsoft" => Some(Kind::Microsoft),
            "apple" => Some(Kind::Apple),
            "github" => Some(Kind::Github),
            _ => {
                let name = provider.strip_prefix("oidc:")?;
                (!name.is_empty()
                    && name.len() <= 32
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
                .then_some(Kind::Oidc)
            }
        }
    }

    /// The issuer an OpenID provider has unless configured otherwise.
    pub fn default_issuer(self) -> Option<&'static str> {
        match self {
            Kind::Google => Some("https://accounts.google.com"),
            // Multi-tenant: each token's `tid` fills `{tenantid}`.
            Kind::Microsoft => Some("https://login.microsoftonline.com/{tenantid}/v2.0"),
            Kind::Apple => Some("https://appleid.apple.com"),
            Kind::Github | Kind::Oidc => None,
        }
    }

    pub fn default_scopes(self) -> &'static [&'static str] {
        match self {
            Kind::Github => &["read:user", "user:email"],
            Kind::Apple => &["name", "email"],
            _ => &["openid", "email", "profile"],
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderBody {
    client_id: String,
    client_secret: Option<String>,
    scopes: Option<Vec<String>>,
    enabled: Option<bool>,
    issuer: Option<String>,
    endpoints: Option<Endpoints>,
    apple: Option<AppleKey>,
}

#[derive(Deserialize, serde::Serialize, Clone)]
#[serde(deny_unknown_fields)]
struct Endpoints {
    authorize: Option<String>,
    token: Option<String>,
    userinfo: Option<String>,
    api: Option<String>,
}

#[derive(Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct AppleKey {
    team_id: String,
    key_id: String,
    private_key: String,
}

#[derive(sqlx::FromRow)]
pub(crate) struct ProviderRow {
    pub provider: String,
    pub client_id: String,
    pub client_secret_sealed: Option<String>,
    pub scopes: String,
    pub enabled: bool,
    pub issuer: Option<String>,
    pub endpoints: Option<String>,
    pub apple_sealed: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// An SSO connection's tenant (provider `sso:<tenant_id>`).
    pub tenant_id: Option<String>,
    pub enforce: bool,
    pub protocol: String,
}

const COLUMNS: [OauthProviders; 13] = [
    OauthProviders::Provider,
    OauthProviders::ClientId,
    OauthProviders::ClientSecretSealed,
    OauthProviders::Scopes,
    OauthProviders::Enabled,
    OauthProviders::Issuer,
    OauthProviders::Endpoints,
    OauthProviders::AppleSealed,
    OauthProviders::CreatedAt,
    OauthProviders::UpdatedAt,
    OauthProviders::TenantId,
    OauthProviders::Enforce,
    OauthProviders::Protocol,
];

impl ProviderRow {
    fn to_json(&self, apple_ids: Option<(String, String)>) -> Value {
        json!({
            "provider": self.provider,
            "client_id": self.client_id,
            "has_client_secret": self.client_secret_sealed.is_some(),
            "scopes": serde_json::from_str::<Value>(&self.scopes).unwrap_or(Value::Null),
            "enabled": self.enabled,
            "issuer": self.issuer,
            "endpoints": self.endpoints.as_deref().and_then(|e| serde_json::from_str::<Value>(e).ok()),
            "apple": apple_ids.map(|(team_id, key_id)| json!({"team_id": team_id, "key_id": key_id})),
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        })
    }
}

pub(crate) fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::unprocessable("invalid_provider", message)
}

pub(crate) use identity_shared::crypto::oauth_secret_context as secret_context;

/// An `https://` URL without query or fragment; `http://` to a loopback
/// host only in dev mode (test providers).
pub(crate) fn provider_url(field: &str, url: &str, dev_mode: bool) -> ApiResult<String> {
    let url = url.trim().trim_end_matches('/');
    let bad = || {
        invalid(format!(
            "{field} must be an https:// URL without query or fragment"
        ))
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
    let host_port = rest.split('/').next().unwrap_or("");
    if url.len() > 2048
        || url.contains(['?', '#', ' ', '@'])
        || url.chars().any(char::is_control)
        || host_port.is_empty()
    {
        return Err(bad());
    }
    let host = host_port.rsplit_once(':').map_or(host_port, |(h, _)| h);
    let loopback = matches!(host, "localhost" | "127.0.0.1" | "[::1]");
    // An address instead of a name: only a loopback test provider, in dev
    // mode (a provider must not point this node into its own network).
    let literal = identity_shared::hostname::is_ip_host(host);
    match scheme {
        "https" if !literal => Ok(url.to_string()),
        "https" if dev_mode && loopback => Ok(url.to_string()),
        "http" if dev_mode && loopback => Ok(url.to_string()),
        _ => Err(bad()),
    }
}

/// The client id and (optional) secret, as printable text.
pub(crate) fn client_credentials(
    id: &str,
    secret: &Option<String>,
) -> ApiResult<(String, Option<String>)> {
    let secret = secret
        .as_deref()
        .map(|s| printable("client_secret", s, 4096))
        .transpose()?;
    Ok((printable("client_id", id, 512)?, secret))
}

/// 1 to 30 scope tokens, or the defaults.
pub(crate) fn checked_scopes(
    scopes: Option<&[String]>,
    defaults: &[&str],
) -> ApiResult<Vec<String>> {
    let Some(list) = scopes else {
        return Ok(defaults.iter().map(|s| s.to_string()).collect());
    };
    if list.is_empty() || list.len() > 30 {
        return Err(invalid("scopes must list 1 to 30 scopes"));
    }
    list.iter()
        .map(|s| {
            let ok = !s.is_empty()
                && s.len() <= 200
                && s.bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
            ok.then(|| s.clone())
                .ok_or_else(|| invalid(format!("scope {s:?} is not a scope token")))
        })
        .collect()
}

pub(crate) fn printable(field: &str, value: &str, max: usize) -> ApiResult<String> {
    let v = value.trim();
    if v.is_empty() || v.len() > max || v.chars().any(char::is_control) {
        return Err(invalid(format!(
            "{field} must be 1 to {max} printable characters"
        )));
    }
    Ok(v.to_string())
}

async fn upsert(
    State(state): State<ControlState>,
    Path((project_id, provider)): Path<(String, String)>,
    http::Json(body): http::Json<ProviderBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let kind = Kind::of(&provider).ok_or_else(|| {
        ApiError::not_found_code(
            "unknown_provider",
            "providers are google, microsoft, apple, github and oidc:<name> (lowercase letters, digits and dashes)",
        )
    })?;
    let dev = state.config.dev_mode;
    let (client_id, client_secret) = client_credentials(&body.client_id, &body.client_secret)?;
    let scopes = checked_scopes(body.scopes.as_deref(), kind.default_scopes())?;
    if matches!(kind, Kind::Oidc | Kind::Google | Kind::Microsoft)
        && !scopes.iter().any(|s| s == "openid")
    {
        return Err(invalid("an OpenID provider's scopes must include openid"));
    }
    let issuer = match (&body.issuer, kind) {
        (Some(i), Kind::Github) => {
            return Err(invalid(format!(
                "github is plain OAuth 2 (no issuer); set endpoints instead (got {i:?})"
            )));
        }
        (Some(i), _) => Some(provider_url("issuer", i, dev)?),
        (None, Kind::Oidc) => return Err(invalid("an oidc: provider needs its issuer")),
        (None, _) => None,
    };
    let endpoints = match &body.endpoints {
        None => None,
        Some(_) if kind != Kind::Github => {
            return Err(invalid(
                "endpoints override a plain OAuth 2 provider (github); OpenID providers are found by their issuer",
            ));
        }
        Some(e) => {
            let check = |field: &str, v: &Option<String>| {
                v.as_deref()
                    .map(|u| provider_url(&format!("endpoints.{field}"), u, dev))
                    .transpose()
            };
            let e = Endpoints {
                authorize: check("authorize", &e.authorize)?,
                token: check("token", &e.token)?,
                userinfo: check("userinfo", &e.userinfo)?,
                api: check("api", &e.api)?,
            };
            Some(serde_json::to_string(&e).map_err(ApiError::internal)?)
        }
    };
    let apple = match (&body.apple, kind) {
        (Some(_), k) if k != Kind::Apple => {
            return Err(invalid(
                "apple holds Sign in with Apple's key (provider apple only)",
            ));
        }
        (Some(a), _) => {
            let id10 = |field: &str, v: &str| {
                let ok = v.len() == 10
                    && v.bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
                ok.then(|| v.to_string()).ok_or_else(|| {
                    invalid(format!(
                        "apple.{field} must be 10 uppercase letters or digits"
                    ))
                })
            };
            let key = a.private_key.trim();
            let usable = key.starts_with("-----BEGIN PRIVATE KEY-----")
                && key.ends_with("-----END PRIVATE KEY-----")
                && key.len() <= 4096
                && identity_shared::apple::key_is_usable(key);
            if !usable {
                return Err(invalid(
                    "apple.private_key must be the PKCS#8 PEM of the .p8 key Apple issued (a P-256 key)",
                ));
            }
            Some(AppleKey {
                team_id: id10("team_id", &a.team_id)?,
                key_id: id10("key_id", &a.key_id)?,
                private_key: key.to_string(),
            })
        }
        (None, _) => None,
    };
    let mut tx = state.db.control().await?;
    let project = project_store::load(&mut tx, &project_id).await?;
    let existing = load(&mut tx, &project.id, &provider).await?;
    let now = now_ms();
    let sealed_secret = sealed_client_secret(
        &state,
        &project.id,
        &provider,
        client_secret.as_deref(),
        existing.as_ref(),
    );
    let sealed_apple = match (&apple, &existing) {
        (Some(a), _) => Some(state.master_key.seal(
            &serde_json::to_vec(a).map_err(ApiError::internal)?,
            &secret_context(&project.id, &provider, "apple"),
        )),
        (None, Some(row)) => row.apple_sealed.clone(),
        (None, None) => None,
    };
    if kind == Kind::Apple && sealed_apple.is_none() {
        return Err(invalid(
            "apple needs apple: {team_id, key_id, private_key} (its client secret is a JWT signed with that key)",
        ));
    }
    if kind != Kind::Apple && sealed_secret.is_none() {
        return Err(invalid("client_secret is required"));
    }
    let row = ProviderRow {
        provider: provider.clone(),
        client_id,
        client_secret_sealed: sealed_secret,
        scopes: serde_json::to_string(&scopes).map_err(ApiError::internal)?,
        enabled: body.enabled.unwrap_or(true),
        issuer,
        endpoints,
        apple_sealed: sealed_apple,
        created_at: existing.as_ref().map_or(now, |r| r.created_at),
        updated_at: now,
        tenant_id: None,
        enforce: false,
        protocol: "oidc".into(),
    };
    save(&mut tx, &project.id, &row).await?;
    tx.commit().await?;
    let ids = apple.map(|a| (a.team_id, a.key_id)).or_else(|| {
        existing
            .as_ref()
            .and_then(|r| apple_ids(&state, &project.id, r))
    });
    let status = if existing.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(json!({"provider": row.to_json(ids)}))))
}

/// The client secret to store: the new one sealed, else the stored one.
pub(crate) fn sealed_client_secret(
    state: &ControlState,
    project_id: &str,
    provider: &str,
    new: Option<&str>,
    existing: Option<&ProviderRow>,
) -> Option<String> {
    match (new, existing) {
        (Some(s), _) => Some(state.master_key.seal(
            s.as_bytes(),
            &secret_context(project_id, provider, "client_secret"),
        )),
        (None, Some(row)) => row.client_secret_sealed.clone(),
        (None, None) => None,
    }
}

/// Inserts or replaces the project's row for `row.provider`.
pub(crate) async fn save(
    tx: &mut identity_shared::db::Tx,
    project_id: &str,
    row: &ProviderRow,
) -> ApiResult<()> {
    tx.execute(
        Query::insert()
            .into_table(OauthProviders::Table)
            .columns(
                [OauthProviders::Id, OauthProviders::ProjectId]
                    .into_iter()
                    .chain(COLUMNS),
            )
            .values_panic([
                new_id("oap").into(),
                project_id.into(),
                row.provider.clone().into(),
                row.client_id.clone().into(),
                row.client_secret_sealed.clone().into(),
                row.scopes.clone().into(),
                row.enabled.into(),
                row.issuer.clone().into(),
                row.endpoints.clone().into(),
                row.apple_sealed.clone().into(),
                row.created_at.into(),
                row.updated_at.into(),
                row.tenant_id.clone().into(),
                row.enforce.into(),
                row.protocol.clone().into(),
            ])
            .on_conflict(
                OnConflict::columns([OauthProviders::ProjectId, OauthProviders::Provider])
                    .update_columns([
                        OauthProviders::ClientId,
                        OauthProviders::ClientSecretSealed,
                        OauthProviders::Scopes,
                        OauthProviders::Enabled,
                        OauthProviders::Issuer,
                        OauthProviders::Endpoints,
                        OauthProviders::AppleSealed,
                        OauthProviders::UpdatedAt,
                        OauthProviders::Enforce,
                    ])
                    .to_owned(),
            ),
    )
    .await?;
    Ok(())
}

/// The team and key ids of a stored Apple key (the key itself stays sealed).
fn apple_ids(
    state: &ControlState,
    project_id: &str,
    row: &ProviderRow,
) -> Option<(String, String)> {
    let sealed = row.apple_sealed.as_deref()?;
    let plain = state
        .master_key
        .open(sealed, &secret_context(project_id, &row.provider, "apple"))
        .ok()?;
    let key: AppleKey = serde_json::from_slice(&plain).ok()?;
    Some((key.team_id, key.key_id))
}

pub(crate) async fn load(
    tx: &mut identity_shared::db::Tx,
    project_id: &str,
    provider: &str,
) -> ApiResult<Option<ProviderRow>> {
    Ok(tx
        .fetch_optional(
            Query::select()
                .columns(COLUMNS)
                .from(OauthProviders::Table)
                .and_where(Expr::col(OauthProviders::ProjectId).eq(project_id))
                .and_where(Expr::col(OauthProviders::Provider).eq(provider)),
        )
        .await?)
}

async fn list(
    State(state): State<ControlState>,
    Path(project_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let mut tx = state.db.control().await?;
    let project = project_store::load(&mut tx, &project_id).await?;
    let rows: Vec<ProviderRow> = tx
        .fetch_all(
            Query::select()
                .columns(COLUMNS)
                .from(OauthProviders::Table)
                .and_where(Expr::col(OauthProviders::ProjectId).eq(&project.id))
                // Tenants' SSO connections are listed with their tenant.
                .and_where(Expr::col(OauthProviders::TenantId).is_null())
                .order_by(OauthProviders::Provider, Order::Asc),
        )
        .await?;
    tx.commit().await?;
    let items: Vec<Value> = rows
        .iter()
        .map(|r| r.to_json(apple_ids(&state, &project.id, r)))
        .collect();
    Ok(Json(json!({"items": items})))
}

async fn remove(
    State(state): State<ControlState>,
    Path((project_id, provider)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let mut tx = state.db.control().await?;
    let project = project_store::load(&mut tx, &project_id).await?;
    let n = tx
        .execute(
            Query::delete()
                .from_table(OauthProviders::Table)
                .and_where(Expr::col(OauthProviders::ProjectId).eq(&project.id))
                .and_where(Expr::col(OauthProviders::Provider).eq(&provider))
                .and_where(Expr::col(OauthProviders::TenantId).is_null()),
        )
        .await?;
    tx.commit().await?;
    if n == 0 {
        return Err(ApiError::not_found("provider"));
    }
    Ok(StatusCode::NO_CONTENT)
}
