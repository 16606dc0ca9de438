//! The data plane: resolves the project of every request and serves the
//! end-user flows against project-scoped storage.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::get;
use identity_shared::config::Config;
use identity_shared::crypto::MasterKey;
use identity_shared::db::Db;
use identity_shared::error::ApiError;

pub mod admin;
pub mod audit;
pub mod email;
pub mod input;
pub mod metrics;
pub mod mfa;
pub mod oauth;
pub mod openapi;
pub mod passkeys;
pub mod password;
pub mod profile;
pub mod request;
pub mod sessions;
pub mod store;
pub mod tenants;
pub mod tokens;
pub mod views;
pub mod workers;

pub use request::resolve::{ProjectResolver, Resolved};
use request::{cors, limits, resolve};
use tokens::wellknown;

/// The data plane's state: one `Arc`, so each request clones a pointer,
/// not a struct of them.
#[derive(Clone)]
pub struct DataState(Arc<DataPlane>);

impl std::ops::Deref for DataState {
    type Target = DataPlane;

    fn deref(&self) -> &DataPlane {
        &self.0
    }
}

pub struct DataPlane {
    /// The database holding the control plane (projects, keys, domains, signing keys).
    pub control_db: Db,
    /// One pool per data-plane shard, by shard id.
    pub shards: Arc<HashMap<String, Db>>,
    pub resolver: Arc<ProjectResolver>,
    pub config: Arc<Config>,
    pub hasher: Arc<password::hashing::Hasher>,
    pub tokens: Arc<tokens::Tokens>,
    pub sessions: Arc<sessions::cache::SessionCache>,
    pub limiter: Arc<dyn limits::RateLimiter>,
    /// Which origins some project allows (CORS preflights on the shared origin).
    pub origins: Arc<cors::OriginIndex>,
    /// When untrusted forwarding was last noted (unix ms; see `client`).
    pub forwarded_noted_at: std::sync::atomic::AtomicI64,
    /// Derives refresh-token successors (see `sessions::issue::successor_of`).
    pub refresh_key: [u8; 32],
    /// Derives each cookie session's CSRF token (see `request::csrf::csrf_token`).
    pub csrf_key: [u8; 32],
    /// Seals reversible secrets (TOTP seeds).
    pub master_key: Arc<MasterKey>,
    /// Keys the hashes of recovery codes (see `mfa::totp::recovery_code_hash`).
    pub recovery_key: [u8; 32],
    /// Keys the hashes of email and SMS codes (see `email::send::code_hash`).
    pub code_key: [u8; 32],
    /// Keys the recipient hashes of outbox messages (the per-address caps).
    pub message_key: [u8; 32],
    /// Delivers email and SMS (see `workers::outbox`).
    pub outbox: Arc<workers::outbox::Outbox>,
    /// Talks to OAuth and OpenID providers (see `oauth::provider`).
    pub oauth: Arc<oauth::provider::OauthClients>,
    /// Keeps avatars (see `profile::objects`).
    pub objects: Arc<dyn object_store::ObjectStore>,
}

impl DataState {
    pub fn new(
        control_db: Db,
        shards: HashMap<String, Db>,
        config: Arc<Config>,
        master_key: Arc<MasterKey>,
    ) -> Result<Self, String> {
        let resolver = ProjectResolver::start(control_db.clone(), config.resolution_cache_ttl);
        let origins = cors::OriginIndex::start(control_db.clone(), config.resolution_cache_ttl);
        let hasher = password::hashing::Hasher::new(
            password::argon::HashParams {
                memory_kib: config.argon2_memory_kib,
                iterations: config.argon2_iterations,
                parallelism: config.argon2_parallelism,
            },
            config.hash_concurrency,
            config.hash_queue,
        )?;
        for db in std::iter::once(&control_db).chain(shards.values()) {
            db.invalidations()
                .freshness()
                .set_staleness(config.cache_staleness);
        }
        let sessions = sessions::cache::SessionCache::new(control_db.invalidations().freshness());
        sessions.follow(&control_db);
        for db in shards.values() {
            if !db.invalidations().same_as(control_db.invalidations()) {
                sessions.follow(db);
                db.spawn_invalidation_listener();
            }
        }
        Ok(Self(Arc::new(DataPlane {
            tokens: tokens::Tokens::new(control_db.clone(), master_key.clone()),
            refresh_key: master_key.derive("refresh-token-successor"),
            csrf_key: master_key.derive("csrf-token"),
            recovery_key: master_key.derive("mfa-recovery-codes"),
            code_key: master_key.derive("email-phone-codes"),
            message_key: master_key.derive("outbox-recipients"),
            outbox: workers::outbox::Outbox::new(config.clone(), master_key.clone())?,
            oauth: Arc::new(oauth::provider::OauthClients::new(config.dev_mode)?),
            objects: profile::objects::open(&config.object_store(), &config.object_store_env)?,
            master_key: master_key.clone(),
            control_db,
            shards: Arc::new(shards),
            resolver,
            config,
            hasher,
            sessions,
            limiter: Arc::new(limits::InProcessLimiter::default()),
            origins,
            forwarded_noted_at: Default::default(),
        })))
    }
}

impl DataPlane {
    /// The database of the shard a project lives on. A project on a shard
    /// this node has no pool for is refused, never served from elsewhere.
    pub fn shard(&self, resolved: &Resolved) -> Result<&Db, ApiError> {
        self.shards.get(&resolved.project.shard_id).ok_or_else(|| {
            ApiError::unavailable(
                "shard_unavailable",
                "this project's data is not reachable from this node",
            )
        })
    }

    /// The issuer of the project's tokens: its primary verified auth domain
    /// when it has one, else the public base URL plus the project id.
    pub fn issuer(&self, project: &resolve::ProjectInfo) -> String {
        match &project.primary_host {
            Some(_) => self.public_origin(project),
            None => format!("{}/{}", self.config.public_base_url, project.id),
        }
    }

    /// Where the project's public URLs live: its primary auth domain, else
    /// the deployment's public base URL.
    pub fn public_origin(&self, project: &resolve::ProjectInfo) -> String {
        match &project.primary_host {
            Some(host) => {
                let scheme = if self.config.public_base_url.starts_with("http://") {
                    "http"
                } else {
                    "https"
                };
                format!("{scheme}://{host}")
            }
            None => self.config.public_base_url.clone(),
        }
    }
}

pub fn router(state: DataState) -> Router {
    let limit = state.config.body_limit_bytes;
    let resolved = Router::new()
        .route("/.well-known/jwks.json", get(wellknown::jwks))
        .route(
            "/.well-known/openid-configuration",
            get(wellknown::openid_configuration),
        )
        .merge(password::router())
        .merge(sessions::router())
        .merge(mfa::router())
        .merge(passkeys::router())
        .merge(email::router())
        .merge(oauth::router())
        .merge(tenants::router())
        .merge(admin::router())
        .merge(profile::router())
        .merge(audit::router())
        .route_layer(axum::middleware::from_fn_with_state(
            state.resolver.clone(),
            resolve::require_project,
        ));
    Router::new()
        .merge(resolved)
        .merge(oauth::navigation_router())
        .merge(profile::public_router())
        .route(
            "/{project_id}/.well-known/jwks.json",
            get(wellknown::jwks_by_path),
        )
        .route(
            "/{project_id}/.well-known/openid-configuration",
            get(wellknown::openid_configuration_by_path),
        )
        .route("/healthz", get(identity_shared::http::healthz))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(openapi::spec))
        .fallback(identity_shared::http::not_found)
        .method_not_allowed_fallback(identity_shared::http::method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            cors::cors,
        ))
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next| {
                // The avatar upload alone takes more (its route sets its own
                // body limit too).
                let limit = if req.uri().path() == profile::AVATAR_PATH {
                    profile::avatar::BODY_LIMIT
                } else {
                    limit
                };
                identity_shared::http::enforce_content_length(limit, req, next)
            },
        ))
        .layer(axum::middleware::from_fn(
            identity_shared::http::request_context,
        ))
        .with_state(state)
}

async fn readyz(State(state): State<DataState>) -> axum::response::Response {
    identity_shared::http::readiness(&state.control_db).await
}
