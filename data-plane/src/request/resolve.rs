//! Per-request project resolution: `X-Project-Key` first, then a verified
//! auth domain in `Host`. Never a fallback to another project.
//!
//! Keys, hosts and projects are cached in memory (moka) and dropped
//! explicitly when the control plane changes them (see
//! `identity_shared::invalidation`); the TTL is only a safety net. A cache hit
//! touches no database.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use identity_shared::cache::GuardedCache;
use identity_shared::db::{Db, DbError};
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::hostname::normalize_host_header;
use identity_shared::invalidation::{Invalidation, InvalidationSink};
use identity_shared::keys::{self, KeyKind};
use identity_shared::schema::{AuthDomains, ProjectKeys, Projects};
use identity_shared::settings::ProjectSettings;
use sea_query::{Expr, ExprTrait, Query};

pub const PROJECT_KEY_HEADER: &str = "x-project-key";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectStatus {
    Active,
    Suspended,
}

/// What the data plane knows about a project while serving it.
#[derive(Debug)]
pub struct ProjectInfo {
    pub id: String,
    /// Shown to end users (the issuer in authenticator apps).
    pub name: String,
    pub status: ProjectStatus,
    pub shard_id: String,
    pub settings: ProjectSettings,
    /// The primary verified auth domain, which names the issuer.
    pub primary_host: Option<String>,
    /// Verified tenant domains whose SSO connection is enforced: password
    /// and email sign-in for addresses there answer `403 sso_required`.
    pub sso_enforced_domains: Vec<String>,
}

impl ProjectInfo {
    /// `403 sso_required` when `email_normalized`'s domain signs in only
    /// through its tenant's SSO connection.
    pub fn require_no_sso(&self, email_normalized: &str) -> Result<(), ApiError> {
        let domain = email_normalized.rsplit_once('@').map_or("", |(_, d)| d);
        if self.sso_enforced_domains.iter().any(|d| d == domain) {
            return Err(ApiError::forbidden(
                "sso_required",
                "this address's organisation signs in with single sign-on: POST /v1/auth/sso/start",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    Key { kind: KeyKind, key_id: String },
    Host(String),
}

/// The project a request belongs to, and how it was identified.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub project: Arc<ProjectInfo>,
    pub via: Via,
}

impl Resolved {
    pub fn is_secret_key(&self) -> bool {
        matches!(
            self.via,
            Via::Key {
                kind: KeyKind::Secret,
                ..
            }
        )
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Resolved {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Resolved>()
            .cloned()
            .ok_or_else(|| ApiError::internal("route served without project resolution"))
    }
}

#[derive(Debug)]
struct KeyEntry {
    id: String,
    project_id: String,
    kind: KeyKind,
    secret_hash: String,
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: String,
    project_id: String,
    kind: String,
    secret_hash: String,
}

#[derive(sqlx::FromRow)]
struct ProjectRow {
    id: String,
    name: String,
    status: String,
    shard_id: String,
    settings: String,
}

fn key_invalid() -> ApiError {
    ApiError::unauthorized("project_key_invalid", "the project key is not valid")
}

fn project_not_found() -> ApiError {
    ApiError::not_found_code("project_not_found", "no project is served on this host")
}

pub(crate) fn suspended() -> ApiError {
    ApiError::forbidden("project_suspended", "this project is suspended")
}

pub struct ProjectResolver {
    db: Db,
    keys: GuardedCache<Option<Arc<KeyEntry>>>,
    hosts: GuardedCache<Option<String>>,
    projects: GuardedCache<Option<Arc<ProjectInfo>>>,
}

impl ProjectResolver {
    /// Builds the resolver and starts following invalidations on `db`.
    pub fn start(db: Db, ttl: Duration) -> Arc<Self> {
        let fresh = db.invalidations().freshness();
        let resolver = Arc::new(Self {
            keys: GuardedCache::new(100_000, ttl).following(fresh.clone()),
            hosts: GuardedCache::new(100_000, ttl).following(fresh.clone()),
            projects: GuardedCache::new(100_000, ttl).following(fresh),
            db: db.clone(),
        });
        let sink: Arc<dyn InvalidationSink> = resolver.clone();
        db.invalidations().register(Arc::downgrade(&sink));
        db.spawn_invalidation_listener();
        resolver
    }

    pub async fn apply(&self, message: &Invalidation) {
        match message {
            Invalidation::Key(prefix) => self.keys.invalidate(prefix).await,
            Invalidation::Project(id) => self.projects.invalidate(id).await,
            Invalidation::Host(host) => self.hosts.invalidate(host).await,
            Invalidation::Sessions(_) | Invalidation::Heartbeat => {}
            Invalidation::All => {
                self.keys.invalidate_all();
                self.hosts.invalidate_all();
                self.projects.invalidate_all();
            }
        }
    }

    /// How many resolution lookups reached the database.
    pub fn database_loads(&self) -> u64 {
        self.keys.loads() + self.hosts.loads() + self.projects.loads()
    }

    pub async fn resolve(&self, headers: &HeaderMap) -> Result<Resolved, ApiError> {
        if let Some(value) = headers.get(PROJECT_KEY_HEADER) {
            let value = value.to_str().map_err(|_| key_invalid())?.trim();
            return self.resolve_key(value).await;
        }
        let host = headers
            .get(axum::http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .and_then(normalize_host_header)
            .ok_or_else(project_not_found)?;
        self.resolve_host(&host).await
    }

    pub async fn resolve_key(&self, value: &str) -> Result<Resolved, ApiError> {
        let (kind, prefix) = keys::parse(value).ok_or_else(key_invalid)?;
        let entry = self
            .keys
            .get_or_load(prefix, || self.load_key(prefix))
            .await?
            .ok_or_else(key_invalid)?;
        if entry.kind != kind || !keys::verify(value, &entry.secret_hash) {
            return Err(key_invalid());
        }
        let project = self
            .project(&entry.project_id)
            .await?
            .ok_or_else(key_invalid)?;
        if project.status != ProjectStatus::Active {
            return Err(suspended());
        }
        Ok(Resolved {
            project,
            via: Via::Key {
                kind,
                key_id: entry.id.clone(),
            },
        })
    }

    pub async fn resolve_host(&self, host: &str) -> Result<Resolved, ApiError> {
        let project_id = self
            .hosts
            .get_or_load(host, || self.load_host(host))
            .await?
            .ok_or_else(project_not_found)?;
        let project = self
            .project(&project_id)
            .await?
            .ok_or_else(project_not_found)?;
        if project.status != ProjectStatus::Active {
            return Err(suspended());
        }
        Ok(Resolved {
            project,
            via: Via::Host(host.to_string()),
        })
    }

    /// A project by id (for issuer-path routes); `None` when it does not exist.
    pub async fn project(&self, id: &str) -> Result<Option<Arc<ProjectInfo>>, ApiError> {
        if !identity_shared::ids::is_id("prj", id) {
            return Ok(None);
        }
        Ok(self
            .projects
            .get_or_load(id, || self.load_project(id))
            .await?)
    }

    async fn load_key(&self, prefix: &str) -> Result<Option<Arc<KeyEntry>>, DbError> {
        let mut tx = self.db.control_read().await?;
        let row: Option<KeyRow> = tx
            .fetch_optional(
                Query::select()
                    .columns([
                        ProjectKeys::Id,
                        ProjectKeys::ProjectId,
                        ProjectKeys::Kind,
                        ProjectKeys::SecretHash,
                    ])
                    .from(ProjectKeys::Table)
                    .and_where(Expr::col(ProjectKeys::Prefix).eq(prefix)),
            )
            .await?;
        tx.commit().await?;
        Ok(row.and_then(|r| {
            Some(Arc::new(KeyEntry {
                kind: KeyKind::parse(&r.kind)?,
                id: r.id,
                project_id: r.project_id,
                secret_hash: r.secret_hash,
            }))
        }))
    }

    async fn load_host(&self, host: &str) -> Result<Option<String>, DbError> {
        let mut tx = self.db.control_read().await?;
        let row: Option<(String,)> = tx
            .fetch_optional(
                Query::select()
                    .column(AuthDomains::ProjectId)
                    .from(AuthDomains::Table)
                    .and_where(Expr::col(AuthDomains::Hostname).eq(host))
                    .and_where(Expr::col(AuthDomains::Verified).eq(true)),
            )
            .await?;
        tx.commit().await?;
        Ok(row.map(|r| r.0))
    }

    async fn load_project(&self, id: &str) -> Result<Option<Arc<ProjectInfo>>, DbError> {
        let mut tx = self.db.control_read().await?;
        let row: Option<ProjectRow> = tx
            .fetch_optional(
                Query::select()
                    .columns([
                        Projects::Id,
                        Projects::Name,
                        Projects::Status,
                        Projects::ShardId,
                        Projects::Settings,
                    ])
                    .from(Projects::Table)
                    .and_where(Expr::col(Projects::Id).eq(id)),
            )
            .await?;
        let Some(row) = row else {
            tx.commit().await?;
            return Ok(None);
        };
        let primary: Option<(String,)> = tx
            .fetch_optional(
                Query::select()
                    .column(AuthDomains::Hostname)
                    .from(AuthDomains::Table)
                    .and_where(Expr::col(AuthDomains::ProjectId).eq(id))
                    .and_where(Expr::col(AuthDomains::IsPrimary).eq(true))
                    .and_where(Expr::col(AuthDomains::Verified).eq(true)),
            )
            .await?;
        let sso_enforced_domains =
            crate::store::oauth_providers::enforced_domains(&mut tx, id).await?;
        tx.commit().await?;
        Ok(Some(Arc::new(ProjectInfo {
            // Anything but "active" is treated as suspended: fail closed.
            status: if row.status == "active" {
                ProjectStatus::Active
            } else {
                ProjectStatus::Suspended
            },
            settings: ProjectSettings::from_stored(&row.settings),
            id: row.id,
            name: row.name,
            shard_id: row.shard_id,
            primary_host: primary.map(|p| p.0),
            sso_enforced_domains,
        })))
    }
}

impl InvalidationSink for ProjectResolver {
    fn apply<'a>(&'a self, message: &'a Invalidation) -> futures_util::future::BoxFuture<'a, ()> {
        Box::pin(ProjectResolver::apply(self, message))
    }
}

/// Middleware: resolves the project and puts [`Resolved`] in the request.
pub async fn require_project(
    State(resolver): State<Arc<ProjectResolver>>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let resolved = resolver.resolve(req.headers()).await?;
    req.extensions_mut().insert(resolved.clone());
    let mut response = next.run(req).await;
    // The CORS layer grants the resolved project's origins; the request's
    // log line names the project.
    response
        .extensions_mut()
        .insert(identity_shared::http::ProjectTag(Arc::from(
            resolved.project.id.as_str(),
        )));
    response.extensions_mut().insert(resolved);
    Ok(response)
}

/// Requires a secret key: `403 secret_key_required` otherwise.
pub fn require_secret(resolved: &Resolved) -> ApiResult<String> {
    match &resolved.via {
        Via::Key { key_id, .. } if resolved.is_secret_key() => Ok(format!("api_key:{key_id}")),
        _ => Err(ApiError::forbidden(
            "secret_key_required",
            "this call needs a secret key (sk_...)",
        )),
    }
}
