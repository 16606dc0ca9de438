//! Calls a customer's backend makes with a secret key.

use crate::DataState;
use crate::request::resolve::{Resolved, Via};
use axum::Router;
use axum::routing::get;
use identity_shared::error::{ApiError, ApiResult};
pub mod users;

pub fn router() -> Router<DataState> {
    Router::new()
        .route("/v1/users", get(users::list).post(users::create))
        .route("/v1/users/{id}", get(users::show).delete(users::remove))
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
