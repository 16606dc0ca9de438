//! Email and phone flows: verification, password reset, sign-in by emailed
//! code or link, email change, phone numbers verified by SMS. Every message is written to the outbox in the same transaction as
//! the secret it carries (`send`), and delivered by `workers::outbox`.
//!
//! The endpoints that take an address from anyone (forgot password, email
//! code, magic link) answer `204` before looking the address up: the
//! lookup and the message happen after the answer, so neither the answer
//! nor its timing says whether the address has an account.

use axum::Router;
use axum::routing::post;

use crate::DataState;

pub mod change;
pub mod judge;
pub mod passwordless;
pub mod phone;
pub mod reset;
pub mod send;
pub mod signin;
pub mod verify;

pub fn router() -> Router<DataState> {
    Router::new()
        .route("/v1/auth/email/verify/request", post(verify::request))
        .route("/v1/auth/email/verify/confirm", post(verify::confirm))
        .route("/v1/auth/password/forgot", post(reset::forgot))
        .route("/v1/auth/password/reset", post(reset::reset))
        .route(
            "/v1/auth/email-otp/request",
            post(passwordless::otp_request),
        )
        .route("/v1/auth/email-otp/verify", post(signin::otp_verify))
        .route(
            "/v1/auth/magic-link/request",
            post(passwordless::link_request),
        )
        .route("/v1/auth/magic-link/verify", post(signin::link_verify))
        .route("/v1/auth/email/change", post(change::request))
        .route("/v1/auth/email/change/confirm", post(change::confirm))
        .route("/v1/auth/phone", post(phone::request))
        .route("/v1/auth/phone/verify", post(phone::verify))
}
