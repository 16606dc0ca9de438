//! Second factors: TOTP with recovery codes, the login challenge that
//! follows a first factor when the user has one, and step-up (proving a
//! factor again before sensitive actions).

use axum::Router;
use axum::routing::{delete, get, post};

use crate::DataState;

pub mod challenge;
pub mod factors;
pub mod stepup;
pub mod totp;
pub mod verify;

pub fn router() -> Router<DataState> {
    Router::new()
        .route("/v1/auth/mfa", get(factors::status))
        .route("/v1/auth/mfa/totp/enroll", post(factors::enroll))
        .route("/v1/auth/mfa/totp/confirm", post(factors::confirm))
        .route("/v1/auth/mfa/totp", delete(factors::disable))
        .route("/v1/auth/mfa/recovery-codes", post(factors::regenerate))
        .route("/v1/auth/mfa/challenge", post(challenge::challenge))
        .route("/v1/auth/mfa/verify", post(verify::verify))
        .route("/v1/auth/reauthenticate", post(verify::reauthenticate))
}
