//! Passkeys (WebAuthn): registering them (at most ten per user), signing in
//! with one (email-hinted or discoverable, user verification required),
//! and managing them. Each project is its own relying party.

use axum::Router;
use axum::routing::{get, patch, post};

use crate::DataState;

pub mod login;
pub mod manage;
pub mod register;
pub mod rp;
pub mod second;

pub fn router() -> Router<DataState> {
    Router::new()
        .route("/v1/auth/passkeys", get(manage::list))
        .route(
            "/v1/auth/passkeys/{id}",
            patch(manage::rename).delete(manage::remove),
        )
        .route(
            "/v1/auth/passkeys/register/begin",
            post(register::register_begin),
        )
        .route(
            "/v1/auth/passkeys/register/finish",
            post(register::register_finish),
        )
        .route("/v1/auth/passkeys/login/begin", post(login::login_begin))
        .route("/v1/auth/passkeys/login/finish", post(login::login_finish))
}
