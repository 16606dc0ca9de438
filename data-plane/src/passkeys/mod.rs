//! Passkeys (WebAuthn): registering them (at most ten per user), signing in
//! with one (email-hinted or discoverable, user verification required),
//! and managing them. Each project is its own relying party.

use axum::Router;
use axum::routing::{get, patch, post};

use crate::DataState;

pub mod ceremonies;
pub mod manage;
pub mod rp;

pub fn router() -> Router<DataState> {
    Router::new()
        .route("/v1/auth/passkeys", get(manage::list))
        .route(
            "/v1/auth/passkeys/{id}",
            patch(manage::rename).delete(manage::remove),
        )
        .route(
            "/v1/auth/passkeys/register/begin",
            post(ceremonies::register_begin),
        )
        .route(
            "/v1/auth/passkeys/register/finish",
            post(ceremonies::register_finish),
        )
        .route(
            "/v1/auth/passkeys/login/begin",
            post(ceremonies::login_begin),
        )
        .route(
            "/v1/auth/passkeys/login/finish",
            post(ceremonies::login_finish),
        )
}
