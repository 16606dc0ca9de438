//! A tenant's members: list, change a role, remove (or leave), transfer
//! ownership, and (secret key) add a user. Only an owner grants or takes
//! away `owner`; the last owner can be neither demoted nor removed. Every
//! change to a tenant's memberships holds the tenant's lock, so two
//! owners demoting each other at once cannot leave it without one.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use identity_shared::db::Tx;
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::http;
use identity_shared::rbac::{ADMIN, OWNER};
use identity_shared::time::{now_ms, rfc3339};
use serde::Deserialize;
use serde_json::{Value, json};

use super::access::{AnyMember, InTenant, MembersManage, MembersRead, Permission};
use crate::DataState;
use crate::request::client::Client;
use crate::store::tenant_members::{self, MemberRow};
use crate::store::{groups, users};
use crate::tenants::joining::membership_changed;

fn member_json(m: &MemberRow) -> Value {
    json!({
        "user": {"id": m.user_id, "email": m.email, "name": m.name},
        "role": m.role,
        "joined_at": rfc3339(m.created_at),
    })
}

fn member_not_found() -> ApiError {
    ApiError::not_found("member")
}

fn last_owner() -> ApiError {
    ApiError::conflict(
        "last_owner",
        "a tenant keeps at least one owner: make someone else owner first",
    )
}

pub async fn list(
    State(state): State<DataState>,
    access: InTenant<MembersRead>,
) -> ApiResult<Json<Value>> {
    let project_id = access.project_id();
    let mut tx = state
        .shard(&access.resolved)?
        .scope_read(project_id)
        .await?;
    let rows = tenant_members::of_tenant(&mut tx, project_id, &access.tenant.id).await?;
    tx.commit().await?;
    Ok(Json(
        json!({"items": rows.iter().map(member_json).collect::<Vec<_>>()}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    role: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddBody {
    user_id: String,
    role: String,
}

/// The role must exist in the project, and be the actor's to give: only
/// an owner makes owners, and no one grants a permission they lack.
pub(super) fn check_role<P>(access: &InTenant<P>, role: &str) -> ApiResult<()> {
    if !access.resolved.project.settings.rbac.has_role(role) {
        return Err(ApiError::unprocessable(
            "invalid_role",
            format!("{role:?} is not a role of this project"),
        ));
    }
    beyond_own_role(access, role)
}

/// `403 permission_denied` when `role` carries more than the actor holds.
pub(super) fn beyond_own_role<P>(access: &InTenant<P>, role: &str) -> ApiResult<()> {
    if access.may_grant(role) {
        Ok(())
    } else if role == OWNER {
        Err(super::access::denied(
            "owner (only an owner acts on owners)",
        ))
    } else {
        Err(super::access::denied(&format!(
            "some permission of the role {role:?}"
        )))
    }
}

/// The tenant's membership lock, the actor read again under it, and the
/// target member.
async fn locked_member<P: Permission>(
    tx: &mut Tx,
    access: &mut InTenant<P>,
    user_id: &str,
) -> ApiResult<MemberRow> {
    access.lock(tx).await?;
    tenant_members::find(tx, access.project_id(), &access.tenant.id, user_id)
        .await?
        .ok_or_else(member_not_found)
}

/// Acting on another member: their role must be within the actor's, and
/// the tenant keeps an owner.
async fn may_act_on<P>(tx: &mut Tx, access: &InTenant<P>, target: &MemberRow) -> ApiResult<()> {
    beyond_own_role(access, &target.role)?;
    if target.role == OWNER
        && tenant_members::owners(tx, access.project_id(), &access.tenant.id).await? <= 1
    {
        return Err(last_owner());
    }
    Ok(())
}

pub async fn change_role(
    State(state): State<DataState>,
    client: Client,
    mut access: InTenant<MembersManage>,
    Path((_, user_id)): Path<(String, String)>,
    http::Json(body): http::Json<RoleBody>,
) -> ApiResult<Json<Value>> {
    let project_id = access.project_id().to_string();
    let mut tx = state.shard(&access.resolved)?.scope(&project_id).await?;
    let target = locked_member(&mut tx, &mut access, &user_id).await?;
    check_role(&access, &body.role)?;
    if target.role != body.role {
        if body.role != OWNER {
            may_act_on(&mut tx, &access, &target).await?;
        }
        tenant_members::set_role(
            &mut tx,
            &project_id,
            &access.tenant.id,
            &user_id,
            &body.role,
            now_ms(),
        )
        .await?;
        membership_changed(&mut tx, &project_id, &user_id).await?;
        let data = json!({"role": body.role, "previous_role": target.role});
        access
            .audit(&mut tx, &client, "membership.updated", Some(&user_id), data)
            .await?;
    }
    tx.commit().await?;
    let member = MemberRow {
        role: body.role,
        ..target
    };
    Ok(Json(json!({"member": member_json(&member)})))
}

/// `DELETE .../members/{user_id}`: removing someone needs
/// `members:manage`; removing yourself is leaving.
pub async fn remove(
    State(state): State<DataState>,
    client: Client,
    mut access: InTenant<AnyMember>,
    Path((_, user_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let leaving = access.user_id() == Some(user_id.as_str());
    if !leaving {
        access.require(MembersManage::NAME)?;
    }
    let project_id = access.project_id().to_string();
    let mut tx = state.shard(&access.resolved)?.scope(&project_id).await?;
    let target = locked_member(&mut tx, &mut access, &user_id).await?;
    if !leaving {
        access.require(MembersManage::NAME)?;
        may_act_on(&mut tx, &access, &target).await?;
    } else if target.role == OWNER
        && tenant_members::owners(&mut tx, &project_id, &access.tenant.id).await? <= 1
    {
        return Err(last_owner());
    }
    tenant_members::remove(&mut tx, &project_id, &access.tenant.id, &user_id).await?;
    membership_changed(&mut tx, &project_id, &user_id).await?;
    groups::remove_member(&mut tx, &project_id, &access.tenant.id, None, &user_id).await?;
    let data = json!({"role": target.role, "left": leaving});
    access
        .audit(&mut tx, &client, "membership.deleted", Some(&user_id), data)
        .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    user_id: String,
}

/// `POST .../transfer-ownership`: an owner makes a member owner and
/// becomes an admin.
pub async fn transfer_ownership(
    State(state): State<DataState>,
    client: Client,
    mut access: InTenant<AnyMember>,
    http::Json(body): http::Json<TransferBody>,
) -> ApiResult<StatusCode> {
    if !access.is_owner() {
        return Err(super::access::denied(
            "owner (only an owner transfers ownership)",
        ));
    }
    let project_id = access.project_id().to_string();
    let mut tx = state.shard(&access.resolved)?.scope(&project_id).await?;
    let target = locked_member(&mut tx, &mut access, &body.user_id).await?;
    let now = now_ms();
    let tenant_id = access.tenant.id.clone();
    if let Some(me) = access.user_id().map(str::to_string) {
        if me == body.user_id {
            return Err(ApiError::invalid_request("you already own this tenant"));
        }
        // Still an owner, read again under the lock?
        if !access.is_owner() {
            return Err(super::access::denied("owner"));
        }
        tenant_members::set_role(&mut tx, &project_id, &tenant_id, &me, ADMIN, now).await?;
        membership_changed(&mut tx, &project_id, &me).await?;
        let data = json!({"role": ADMIN, "previous_role": OWNER});
        access
            .audit(&mut tx, &client, "membership.updated", Some(&me), data)
            .await?;
    }
    if target.role != OWNER {
        tenant_members::set_role(&mut tx, &project_id, &tenant_id, &body.user_id, OWNER, now)
            .await?;
        membership_changed(&mut tx, &project_id, &body.user_id).await?;
        let data = json!({"role": OWNER, "previous_role": target.role});
        access
            .audit(
                &mut tx,
                &client,
                "membership.updated",
                Some(&body.user_id),
                data,
            )
            .await?;
    }
    access
        .audit(
            &mut tx,
            &client,
            "tenant.ownership_transferred",
            Some(&body.user_id),
            json!({}),
        )
        .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST .../members` (secret key): adds a user of the project.
pub async fn add(
    State(state): State<DataState>,
    client: Client,
    mut access: InTenant<MembersManage>,
    http::Json(body): http::Json<AddBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if access.user_id().is_some() {
        return Err(ApiError::forbidden(
            "secret_key_required",
            "users join a tenant by invitation; adding one directly takes the secret key",
        ));
    }
    check_role(&access, &body.role)?;
    let project_id = access.project_id().to_string();
    let mut tx = state.shard(&access.resolved)?.scope(&project_id).await?;
    access.lock(&mut tx).await?;
    if users::find(&mut tx, &project_id, &body.user_id)
        .await?
        .is_none()
    {
        return Err(ApiError::not_found("user"));
    }
    let joined = tenant_members::join(
        &mut tx,
        &project_id,
        &access.tenant.id,
        &body.user_id,
        &body.role,
        "admin",
        now_ms(),
    )
    .await?;
    if !joined {
        return Err(ApiError::conflict(
            "already_member",
            "this user is already a member of the tenant",
        ));
    }
    membership_changed(&mut tx, &project_id, &body.user_id).await?;
    let data = json!({"role": body.role});
    access
        .audit(
            &mut tx,
            &client,
            "membership.created",
            Some(&body.user_id),
            data,
        )
        .await?;
    let member = tenant_members::find(&mut tx, &project_id, &access.tenant.id, &body.user_id)
        .await?
        .ok_or_else(member_not_found)?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"member": member_json(&member)})),
    ))
}
