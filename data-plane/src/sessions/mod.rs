//! Sessions after sign-in: refresh (consume | grace | reuse), logout, the
//! session check, listing and revoking, and the cache that answers checks.

use axum::Router;
use axum::routing::{delete, get, post};

use crate::DataState;

pub mod cache;
pub mod issue;
pub mod manage;
pub mod refresh;

pub fn router() -> Router<DataState> {
    Router::new()
        .route("/v1/auth/refresh", post(refresh::refresh))
        .route("/v1/auth/logout", post(manage::logout))
        .route("/v1/auth/session", get(manage::session))
        .route("/v1/auth/sessions", get(manage::list_sessions))
        .route("/v1/auth/sessions/revoke-all", post(manage::revoke_all))
        .route("/v1/auth/sessions/{id}", delete(manage::revoke_one))
}
