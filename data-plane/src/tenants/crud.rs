//! `POST/GET /v1/tenants`, `GET/PATCH/DELETE /v1/tenants/{id}`.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::http;
use identity_shared::invalidation::Invalidation;
use identity_shared::time::now_ms;
use serde::Deserialize;
use serde_json::{Value, json};

use super::access::{InTenant, TenantDelete, TenantRead, TenantUpdate};
use super::{create_with_owner, shard_is_control, tenant_json, tenant_name};
use crate::DataState;
use crate::request::caller::Caller;
use crate::request::client::Client;
use crate::request::resolve::Resolved;
use crate::store::tenant_members;
use crate::store::tenants;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameBody {
    name: String,
}

/// `POST /v1/tenants`: the signed-in caller becomes its owner (when the
/// project lets users create tenants); with the secret key, a tenant
/// without members.
pub async fn create(
    State(state): State<DataState>,
    resolved: Resolved,
    client: Client,
    caller: Option<Caller>,
    http::Json(body): http::Json<NameBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let owner = if resolved.is_secret_key() {
        None
    } else {
        let caller = caller.ok_or_else(|| {
            ApiError::unauthorized("unauthenticated", "sign in first: no access token")
        })?;
        if !resolved.project.settings.users_can_create_tenants {
            return Err(ApiError::forbidden(
                "tenant_creation_disabled",
                "this project does not let users create tenants",
            ));
        }
        Some(caller.claims.sub.clone())
    };
    let name = tenant_name(&body.name)?;
    let mut tx = state.shard(&resolved)?.scope(&resolved.project.id).await?;
    let tenant =
        create_with_owner(&state, &mut tx, &resolved, &client, owner.as_deref(), &name).await?;
    tx.commit().await?;
    let role = owner.as_ref().map(|_| identity_shared::rbac::OWNER);
    Ok((
        StatusCode::CREATED,
        Json(json!({"tenant": tenant_json(&tenant, role)})),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    all: Option<bool>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// `GET /v1/tenants`: the caller's tenants with their role; with the
/// secret key and `?all=true`, every tenant of the project (paged).
pub async fn list(
    State(state): State<DataState>,
    resolved: Resolved,
    caller: Option<Caller>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let project_id = resolved.project.id.clone();
    if resolved.is_secret_key() {
        if q.all != Some(true) {
            return Err(ApiError::invalid_request(
                "with the secret key, list every tenant with ?all=true",
            ));
        }
        let params = http::ListParams {
            limit: q.limit,
            cursor: q.cursor,
        };
        let limit = params.limit()?;
        let mut tx = state.control_db.scope_read(&project_id).await?;
        let mut rows =
            tenants::page(&mut tx, &project_id, params.cursor.as_deref(), limit + 1).await?;
        tx.commit().await?;
        let more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let next = more.then(|| rows.last().map(|t| t.id.clone())).flatten();
        let items: Vec<Value> = rows.iter().map(|t| tenant_json(t, None)).collect();
        return Ok(Json(json!({"items": items, "next_cursor": next})));
    }
    let caller = caller.ok_or_else(|| {
        ApiError::unauthorized("unauthenticated", "sign in first: no access token")
    })?;
    if q.all.is_some() || q.cursor.is_some() || q.limit.is_some() {
        return Err(ApiError::invalid_request(
            "?all= is for the secret key; a user's tenants come in one list",
        ));
    }
    let mut tx = state.shard(&resolved)?.scope_read(&project_id).await?;
    let memberships = tenant_members::of_user(&mut tx, &project_id, &caller.claims.sub).await?;
    tx.commit().await?;
    let ids: Vec<String> = memberships.iter().map(|(t, _)| t.clone()).collect();
    let mut tx = state.control_db.scope_read(&project_id).await?;
    let rows = tenants::find_many(&mut tx, &project_id, &ids).await?;
    tx.commit().await?;
    let items: Vec<Value> = rows
        .iter()
        .map(|t| {
            let role = memberships
                .iter()
                .find(|(id, _)| *id == t.id)
                .map(|(_, r)| r.as_str());
            tenant_json(t, role)
        })
        .collect();
    Ok(Json(json!({"items": items})))
}

fn role_of<P>(access: &InTenant<P>) -> Option<&str> {
    match &access.actor {
        super::access::Actor::User { role, .. } => Some(role),
        super::access::Actor::Server => None,
    }
}

pub async fn show(access: InTenant<TenantRead>) -> ApiResult<Json<Value>> {
    Ok(Json(
        json!({"tenant": tenant_json(&access.tenant, role_of(&access))}),
    ))
}

pub async fn update(
    State(state): State<DataState>,
    client: Client,
    access: InTenant<TenantUpdate>,
    http::Json(body): http::Json<NameBody>,
) -> ApiResult<Json<Value>> {
    let name = tenant_name(&body.name)?;
    let project_id = access.project_id().to_string();
    let now = now_ms();
    let mut control = state.control_db.scope(&project_id).await?;
    if !tenants::rename(&mut control, &project_id, &access.tenant.id, &name, now).await? {
        return Err(super::access::tenant_not_found());
    }
    control.commit().await?;
    let mut tx = state.shard(&access.resolved)?.scope(&project_id).await?;
    access
        .audit(
            &mut tx,
            &client,
            "tenant.updated",
            None,
            json!({"tenant_id": access.tenant.id, "name": name}),
        )
        .await?;
    tx.commit().await?;
    let tenant = tenants::TenantRow {
        name,
        updated_at: now,
        ..access.tenant.clone()
    };
    Ok(Json(
        json!({"tenant": tenant_json(&tenant, role_of(&access))}),
    ))
}

/// `DELETE /v1/tenants/{id}`: the tenant, its domains and SSO connection,
/// every membership and group; its pending invitations are revoked.
pub async fn remove(
    State(state): State<DataState>,
    client: Client,
    mut access: InTenant<TenantDelete>,
) -> ApiResult<StatusCode> {
    let project_id = access.project_id().to_string();
    let tenant_id = access.tenant.id.clone();
    let same = shard_is_control(&state, &access.resolved)?;
    let mut tx = state.shard(&access.resolved)?.scope(&project_id).await?;
    access.lock(&mut tx).await?;
    for member in tenant_members::of_tenant(&mut tx, &project_id, &tenant_id).await? {
        super::joining::membership_changed(&mut tx, &project_id, &member.user_id).await?;
    }
    tenant_members::remove_tenant(&mut tx, &project_id, &tenant_id).await?;
    crate::store::groups::delete(&mut tx, &project_id, &tenant_id, None).await?;
    crate::store::invitations::revoke_all(&mut tx, &project_id, &tenant_id, now_ms()).await?;
    if same {
        tenants::delete(&mut tx, &project_id, &tenant_id).await?;
        // Its domains may have been enforced for SSO.
        tx.invalidate(Invalidation::Project(project_id.clone()))
            .await?;
    } else {
        let mut control = state.control_db.scope(&project_id).await?;
        tenants::delete(&mut control, &project_id, &tenant_id).await?;
        control
            .invalidate(Invalidation::Project(project_id.clone()))
            .await?;
        control.commit().await?;
    }
    access
        .audit(
            &mut tx,
            &client,
            "tenant.deleted",
            None,
            json!({"tenant_id": tenant_id, "name": access.tenant.name}),
        )
        .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
