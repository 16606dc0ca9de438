//! Passwords: register, login and password change, the checks they share,
//! hashing and policy.

use axum::Router;
use axum::routing::post;

use crate::DataState;

pub mod argon;
pub mod change;
pub mod check;
#[cfg(test)]
mod differential;
pub mod hashing;
pub mod login;
pub mod policy;
pub mod queue;
pub mod register;

pub fn router() -> Router<DataState> {
    Router::new()
        .route("/v1/auth/register", post(register::register))
        .route("/v1/auth/login", post(login::login))
        .route("/v1/auth/password/change", post(change::change_password))
}
