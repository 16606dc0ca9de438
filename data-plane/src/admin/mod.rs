//! Calls a customer's backend makes with a secret key.

use crate::DataState;
use axum::Router;
use axum::routing::{delete, get};
pub mod messages;
pub mod users;

pub fn router() -> Router<DataState> {
    Router::new()
        .route("/v1/users", get(users::list).post(users::create))
        .route("/v1/users/{id}", get(users::show).delete(users::remove))
        .route("/v1/users/{id}/mfa", delete(users::reset_mfa))
        .route(
            "/v1/users/{id}/sessions/revoke-all",
            axum::routing::post(users::revoke_sessions),
        )
        .route("/v1/messages", get(messages::list))
}
