//! Tenants as organisations: users create them, belong to many with one
//! role each, and act in them as their role's permissions allow
//! (`access`). Tenants live in the control database (the control plane's
//! tenant routes manage the same rows); memberships live with the users,
//! in the project's shard.

use axum::Router;
use axum::routing::{get, post};
use identity_shared::audit::{self, Event, Outcome};
use identity_shared::db::Tx;
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::ids::new_id;
use identity_shared::rbac;
use identity_shared::time::{now_ms, rfc3339};
use serde_json::{Value, json};

use crate::DataState;
use crate::audit::event;
use crate::request::client::Client;
use crate::request::resolve::Resolved;
use crate::store::tenants::{self, TenantRow};
pub use joining::{Joining, join};

pub mod accept;
pub mod access;
pub mod active;
pub mod crud;
pub mod groups;
pub mod invitations;
pub mod joining;
pub mod members;

pub fn router() -> Router<DataState> {
    Router::new()
        .route("/v1/tenants", post(crud::create).get(crud::list))
        .route("/v1/auth/session/tenant", post(active::switch))
        .route(
            "/v1/tenants/{id}",
            get(crud::show).patch(crud::update).delete(crud::remove),
        )
        .route(
            "/v1/tenants/{id}/members",
            get(members::list).post(members::add),
        )
        .route(
            "/v1/tenants/{id}/members/{user_id}",
            axum::routing::patch(members::change_role).delete(members::remove),
        )
        .route(
            "/v1/tenants/{id}/transfer-ownership",
            post(members::transfer_ownership),
        )
        .route(
            "/v1/tenants/{id}/invitations",
            post(invitations::create).get(invitations::list),
        )
        .route(
            "/v1/tenants/{id}/invitations/{inv_id}",
            axum::routing::delete(invitations::revoke),
        )
        .route(
            "/v1/tenants/{id}/invitations/{inv_id}/resend",
            post(invitations::resend),
        )
        .route(
            "/v1/tenants/{id}/groups",
            post(groups::create).get(groups::list),
        )
        .route(
            "/v1/tenants/{id}/groups/{group_id}",
            get(groups::show)
                .patch(groups::rename)
                .delete(groups::remove),
        )
        .route(
            "/v1/tenants/{id}/groups/{group_id}/members/{user_id}",
            axum::routing::put(groups::add_member).delete(groups::remove_member),
        )
        .route("/v1/invitations/{token}", get(accept::preview))
        .route("/v1/invitations/accept", post(accept::accept))
}

/// A tenant as the API shows it; with the caller's role when they have one.
pub fn tenant_json(t: &TenantRow, role: Option<&str>) -> Value {
    let mut v = json!({
        "id": t.id,
        "name": t.name,
        "created_at": rfc3339(t.created_at),
        "updated_at": rfc3339(t.updated_at),
    });
    if let Some(role) = role {
        v["role"] = json!(role);
    }
    v
}

/// A tenant name: 1 to 200 characters, no control characters.
pub fn tenant_name(name: &str) -> ApiResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(ApiError::unprocessable(
            "invalid_name",
            "a tenant's name is 1 to 200 characters without control characters",
        ));
    }
    Ok(name.to_string())
}

/// Whether the project's shard is the control database (then one
/// transaction writes tenants and memberships together).
pub fn shard_is_control(state: &DataState, resolved: &Resolved) -> ApiResult<bool> {
    Ok(state
        .shard(resolved)?
        .invalidations()
        .same_as(state.control_db.invalidations()))
}

/// Creates a tenant with `owner` as its owner, in `tx` (the shard's
/// transaction, which the caller commits). The tenant row goes in the same
/// transaction when the shard is the control database; otherwise it is
/// committed to the control database first, and a failure after that
/// leaves a tenant without members, which only the secret key sees.
pub async fn create_with_owner(
    state: &DataState,
    tx: &mut Tx,
    resolved: &Resolved,
    client: &Client,
    owner: Option<&str>,
    name: &str,
) -> ApiResult<TenantRow> {
    let project_id = &resolved.project.id;
    let now = now_ms();
    let id = new_id("ten");
    if shard_is_control(state, resolved)? {
        tenants::insert(tx, project_id, &id, name, now).await?;
    } else {
        let mut control = state.control_db.scope(project_id).await?;
        tenants::insert(&mut control, project_id, &id, name, now).await?;
        control.commit().await?;
    }
    let ip = client.ip_text();
    audit::record(
        tx,
        Event {
            actor: owner,
            data: json!({"tenant_id": id, "name": name}),
            ..event(resolved, client, &ip, "tenant.created", Outcome::Success)
        },
    )
    .await?;
    if let Some(user_id) = owner {
        let joining = Joining {
            tenant_id: &id,
            user_id,
            role: rbac::OWNER,
            source: "created",
            actor: Some(user_id),
        };
        join(tx, resolved, client, &joining).await?;
    }
    Ok(TenantRow {
        id,
        name: name.to_string(),
        created_at: now,
        updated_at: now,
    })
}
