//! The control plane: the admin API on its own listener. Projects, their API
//! keys and signing keys, auth domains, tenants and tenant domains.
#![forbid(unsafe_code)]

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use identity_shared::config::Config;
use identity_shared::crypto::MasterKey;
use identity_shared::db::Db;

pub mod auth;
pub mod dns;
pub mod domains;
pub mod email_templates;
pub mod oauth_providers;
pub mod openapi;
pub mod project_keys;
pub mod project_store;
pub mod projects;
pub mod signing_keys;
pub mod tenant_sso;
pub mod tenants;

#[derive(Clone)]
pub struct ControlState {
    pub db: Db,
    pub master_key: Arc<MasterKey>,
    pub dns: Arc<dns::DnsVerifier>,
    pub config: Arc<Config>,
}

pub fn router(state: ControlState) -> Router {
    let limit = state.config.body_limit_bytes;
    let v1 = Router::new()
        .merge(auth::router())
        .merge(projects::router())
        .merge(project_keys::router())
        .merge(signing_keys::router())
        .merge(domains::router())
        .merge(tenants::router())
        .merge(email_templates::router())
        .merge(oauth_providers::router())
        .merge(tenant_sso::router())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_operator,
        ));
    Router::new()
        .merge(v1)
        .route("/healthz", get(identity_shared::http::healthz))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(openapi::spec))
        .fallback(identity_shared::http::not_found)
        .method_not_allowed_fallback(identity_shared::http::method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn(move |req, next| {
            identity_shared::http::enforce_content_length(limit, req, next)
        }))
        .layer(axum::middleware::from_fn(
            identity_shared::http::request_context,
        ))
        .with_state(state)
}

async fn readyz(
    axum::extract::State(state): axum::extract::State<ControlState>,
) -> axum::response::Response {
    identity_shared::http::readiness(&state.db).await
}
