//! Calls a customer's backend makes with a secret key.

use crate::DataState;
use axum::Router;
use axum::routing::{delete, get};
pub mod ban;
pub mod impersonate;
pub mod messages;
pub mod update;
pub mod users;

/// Audits what the project's server (`actor`: its key) did to a user.
pub(crate) async fn audit_for_user(
    tx: &mut identity_shared::db::Tx,
    resolved: &crate::request::resolve::Resolved,
    client: &crate::request::client::Client,
    actor: &str,
    user_id: &str,
    kind: &'static str,
    data: serde_json::Value,
) -> identity_shared::error::ApiResult<()> {
    use identity_shared::audit::{self, Event, Outcome};
    let ip = client.ip_text();
    audit::record(
        tx,
        Event {
            actor: Some(actor),
            subject: Some(user_id),
            data,
            ..crate::audit::event(resolved, client, &ip, kind, Outcome::Success)
        },
    )
    .await?;
    Ok(())
}

pub fn router() -> Router<DataState> {
    Router::new()
        .route("/v1/users", get(users::list).post(users::create))
        .route(
            "/v1/users/{id}",
            get(users::show).delete(users::remove).patch(update::update),
        )
        .route("/v1/users/{id}/mfa", delete(users::reset_mfa))
        .route(
            "/v1/users/{id}/sessions/revoke-all",
            axum::routing::post(users::revoke_sessions),
        )
        .route("/v1/users/{id}/ban", axum::routing::post(ban::ban))
        .route("/v1/users/{id}/unban", axum::routing::post(ban::unban))
        .route(
            "/v1/users/{id}/impersonate",
            axum::routing::post(impersonate::impersonate),
        )
        .route("/v1/messages", get(messages::list))
}
