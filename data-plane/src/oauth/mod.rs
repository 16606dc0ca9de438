//! OAuth 2 and OpenID Connect sign-in: the provider side (discovery,
//! authorization URL with PKCE, code exchange, ID-token verification) in
//! `provider`, the browser flow in `flow`, and which account an answer
//! signs in to in `accounts`.

use axum::Router;
use axum::routing::{get, post};

use crate::DataState;

pub mod accounts;
pub mod callback;
pub mod config;
mod discovery;
pub mod exchange;
pub mod flow;
mod github;
pub mod identities;
pub mod link;
mod microsoft;
pub mod outbound;
pub mod provider;
pub mod sso;

/// Routes that find their project themselves (a browser navigation: the
/// key in the query, the host, or the stored state).
pub fn navigation_router() -> Router<DataState> {
    Router::new()
        .route("/v1/auth/oauth/{provider}/start", get(flow::start))
        .route(
            "/v1/auth/oauth/{provider}/callback",
            get(callback::callback_get).post(callback::callback_post),
        )
}

/// Routes under the usual project resolution.
pub fn router() -> Router<DataState> {
    Router::new()
        .route("/v1/auth/oauth/exchange", post(exchange::exchange))
        .route("/v1/auth/oauth/link-token", post(link::link_token))
        .route("/v1/auth/oauth/link/confirm", post(link::confirm))
        .route("/v1/auth/sso/start", post(sso::sso_start))
        .route("/v1/auth/identities", get(identities::list))
        .route(
            "/v1/auth/identities/{id}",
            axum::routing::delete(identities::unlink),
        )
}
