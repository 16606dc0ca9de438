//! Groups inside a tenant: any member sees them (`tenant:read`), and who
//! is in them with `members:read`; `groups:manage` creates, renames and
//! deletes them and sets their members, who must belong to the tenant.
//! Changes hold the tenant's lock, like membership changes.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::http;
use identity_shared::ids::new_id;
use identity_shared::time::{now_ms, rfc3339};
use serde::Deserialize;
use serde_json::{Value, json};

use super::access::{GroupsManage, InTenant, MembersRead, Permission, TenantRead};
use crate::DataState;
use crate::request::client::Client;
use crate::store::groups::{self, GroupRow};
use crate::store::tenant_members;

fn group_json(g: &GroupRow) -> Value {
    json!({
        "id": g.id,
        "name": g.name,
        "created_at": rfc3339(g.created_at),
        "updated_at": rfc3339(g.updated_at),
    })
}

fn group_not_found() -> ApiError {
    ApiError::not_found("group")
}

fn name_taken() -> ApiError {
    ApiError::conflict("group_name_taken", "the tenant has a group of that name")
}

/// A group name: 1 to 100 characters, no control characters.
fn group_name(name: &str) -> ApiResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::unprocessable(
            "invalid_name",
            "a group's name is 1 to 100 characters without control characters",
        ));
    }
    Ok(name.to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameBody {
    name: String,
}

pub async fn create(
    State(state): State<DataState>,
    client: Client,
    mut access: InTenant<GroupsManage>,
    http::Json(body): http::Json<NameBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let name = group_name(&body.name)?;
    let project_id = access.project_id().to_string();
    let now = now_ms();
    let group = GroupRow {
        id: new_id("grp"),
        name,
        created_at: now,
        updated_at: now,
    };
    let mut tx = state.shard(&access.resolved)?.scope(&project_id).await?;
    access.lock(&mut tx).await?;
    if !groups::insert(
        &mut tx,
        &project_id,
        &access.tenant.id,
        &group.id,
        &group.name,
        now,
    )
    .await?
    {
        return Err(name_taken());
    }
    let data = json!({"group_id": group.id, "name": group.name});
    access
        .audit(&mut tx, &client, "group.created", None, data)
        .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"group": group_json(&group)})),
    ))
}

pub async fn list(
    State(state): State<DataState>,
    access: InTenant<TenantRead>,
) -> ApiResult<Json<Value>> {
    let project_id = access.project_id();
    let mut tx = state
        .shard(&access.resolved)?
        .scope_read(project_id)
        .await?;
    let rows = groups::of_tenant(&mut tx, project_id, &access.tenant.id).await?;
    tx.commit().await?;
    Ok(Json(
        json!({"items": rows.iter().map(group_json).collect::<Vec<_>>()}),
    ))
}

/// A group with its members.
pub async fn show(
    State(state): State<DataState>,
    access: InTenant<TenantRead>,
    Path((_, group_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let project_id = access.project_id();
    let mut tx = state
        .shard(&access.resolved)?
        .scope_read(project_id)
        .await?;
    let group = groups::find(&mut tx, project_id, &access.tenant.id, &group_id)
        .await?
        .ok_or_else(group_not_found)?;
    let members = groups::members(&mut tx, project_id, &group.id).await?;
    tx.commit().await?;
    let mut v = group_json(&group);
    if access.allows(MembersRead::NAME) {
        v["members"] = members
            .iter()
            .map(|(id, email, name)| json!({"id": id, "email": email, "name": name}))
            .collect();
    }
    Ok(Json(json!({"group": v})))
}

pub async fn rename(
    State(state): State<DataState>,
    client: Client,
    mut access: InTenant<GroupsManage>,
    Path((_, group_id)): Path<(String, String)>,
    http::Json(body): http::Json<NameBody>,
) -> ApiResult<Json<Value>> {
    let name = group_name(&body.name)?;
    let project_id = access.project_id().to_string();
    let mut tx = state.shard(&access.resolved)?.scope(&project_id).await?;
    access.lock(&mut tx).await?;
    let group = groups::find(&mut tx, &project_id, &access.tenant.id, &group_id)
        .await?
        .ok_or_else(group_not_found)?;
    let now = now_ms();
    if groups::rename(&mut tx, &project_id, &group.id, &name, now)
        .await?
        .is_none()
    {
        return Err(name_taken());
    }
    let data = json!({"group_id": group.id, "name": name});
    access
        .audit(&mut tx, &client, "group.updated", None, data)
        .await?;
    tx.commit().await?;
    let group = GroupRow {
        name,
        updated_at: now,
        ..group
    };
    Ok(Json(json!({"group": group_json(&group)})))
}

pub async fn remove(
    State(state): State<DataState>,
    client: Client,
    mut access: InTenant<GroupsManage>,
    Path((_, group_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let project_id = access.project_id().to_string();
    let mut tx = state.shard(&access.resolved)?.scope(&project_id).await?;
    access.lock(&mut tx).await?;
    if groups::delete(&mut tx, &project_id, &access.tenant.id, Some(&group_id)).await? == 0 {
        return Err(group_not_found());
    }
    access
        .audit(
            &mut tx,
            &client,
            "group.deleted",
            None,
            json!({"group_id": group_id}),
        )
        .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT .../groups/{group_id}/members/{user_id}`: the user must be a
/// member of the tenant.
pub async fn add_member(
    State(state): State<DataState>,
    client: Client,
    mut access: InTenant<GroupsManage>,
    Path((_, group_id, user_id)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let project_id = access.project_id().to_string();
    let tenant_id = access.tenant.id.clone();
    let mut tx = state.shard(&access.resolved)?.scope(&project_id).await?;
    // Under the tenant's lock: a member being removed meanwhile is not
    // put back into a group.
    access.lock(&mut tx).await?;
    let group = groups::find(&mut tx, &project_id, &tenant_id, &group_id)
        .await?
        .ok_or_else(group_not_found)?;
    if tenant_members::find(&mut tx, &project_id, &tenant_id, &user_id)
        .await?
        .is_none()
    {
        return Err(ApiError::unprocessable(
            "not_a_member",
            "only members of the tenant join its groups",
        ));
    }
    if groups::add_member(
        &mut tx,
        &project_id,
        &tenant_id,
        &group.id,
        &user_id,
        now_ms(),
    )
    .await?
    {
        let data = json!({"group_id": group.id, "user_id": user_id});
        access
            .audit(&mut tx, &client, "group.member_added", None, data)
            .await?;
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn remove_member(
    State(state): State<DataState>,
    client: Client,
    mut access: InTenant<GroupsManage>,
    Path((_, group_id, user_id)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let project_id = access.project_id().to_string();
    let tenant_id = access.tenant.id.clone();
    let mut tx = state.shard(&access.resolved)?.scope(&project_id).await?;
    access.lock(&mut tx).await?;
    let removed =
        groups::remove_member(&mut tx, &project_id, &tenant_id, Some(&group_id), &user_id).await?;
    if removed == 0 {
        return Err(ApiError::not_found("group member"));
    }
    let data = json!({"group_id": group_id, "user_id": user_id});
    access
        .audit(&mut tx, &client, "group.member_removed", None, data)
        .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
