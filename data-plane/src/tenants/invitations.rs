//! Invitations: a member with `members:invite` invites an address with a
//! role (emailed through the outbox, 7 days, the token stored hashed, one
//! pending invitation per address), lists, resends and revokes them. The
//! invitee's side (preview, accept) is in `accept`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use identity_shared::db::Tx;
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::http;
use identity_shared::ids::new_id;
use identity_shared::templates::{TemplateKind, Vars};
use identity_shared::time::{now_ms, rfc3339};
use serde::Deserialize;
use serde_json::{Value, json};

use super::access::{InTenant, MembersInvite};
use crate::DataState;
use crate::email::send;
use crate::input::Email;
use crate::request::client::Client;
use crate::request::resolve::Resolved;
use crate::store::invitations::{self, InvitationRow, NewInvitation, REVOKED};
use crate::store::tenant_members;
use crate::store::users;

const TTL_MS: i64 = 7 * 86_400_000;
/// Resending renews an invitation for 7 days, up to 30 from its creation.
const LIFETIME_MS: i64 = 30 * 86_400_000;

fn invitation_data(i: &InvitationRow) -> Value {
    json!({"invitation_id": i.id, "email": i.email, "role": i.role})
}

fn invitation_json(i: &InvitationRow) -> Value {
    json!({
        "id": i.id,
        "tenant_id": i.tenant_id,
        "email": i.email,
        "role": i.role,
        "inviter": i.inviter_name,
        "status": i.status,
        "created_at": rfc3339(i.created_at),
        "expires_at": rfc3339(i.expires_at),
    })
}

pub(super) fn invalid_token() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_token",
        "this invitation is not valid, was used, or has expired",
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InviteBody {
    email: String,
    role: String,
}

/// Emails the invitation with a fresh token, under the per-address cap
/// (an invitation is no way to flood a mailbox).
async fn send_invitation(
    state: &DataState,
    tx: &mut Tx,
    resolved: &Resolved,
    tenant_name: &str,
    i: &InvitationRow,
    token: &str,
) -> ApiResult<()> {
    let project = &resolved.project;
    if !send::under_cap(
        state,
        tx,
        &project.id,
        TemplateKind::Invitation,
        &i.email_normalized,
        project.settings.messaging.emails_per_address_per_hour,
        3_600_000,
    )
    .await?
    {
        return Err(crate::email::verify::too_many_messages());
    }
    let link = send::link(state, &resolved.project, "/accept-invitation", token);
    send::queue_email(
        state,
        tx,
        &resolved.project,
        TemplateKind::Invitation,
        &i.email,
        &i.email_normalized,
        Vars::new()
            .with("email", &i.email)
            .with("tenant_name", tenant_name)
            .with("inviter", &i.inviter_name)
            .with("link", &link)
            .with("expires_in", "7 days"),
    )
    .await
}

/// `POST /v1/tenants/{id}/invitations`.
pub async fn create(
    State(state): State<DataState>,
    client: Client,
    mut access: InTenant<MembersInvite>,
    http::Json(body): http::Json<InviteBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    send::limit(&state, &access.resolved, &client)?;
    send::require_email(&state)?;
    let email = Email::parse(&body.email)?;
    let project_id = access.project_id().to_string();
    let tenant_id = access.tenant.id.clone();
    let now = now_ms();
    let mut tx = state.shard(&access.resolved)?.scope(&project_id).await?;
    access.lock(&mut tx).await?;
    super::members::check_role(&access, &body.role)?;
    if let Some(user) = users::find_by_email(&mut tx, &project_id, &email.normalized).await?
        && tenant_members::find(&mut tx, &project_id, &tenant_id, &user.id)
            .await?
            .is_some()
    {
        return Err(ApiError::conflict(
            "already_member",
            "this address's account is already a member of the tenant",
        ));
    }
    let inviter_name = match access.user_id() {
        Some(id) => users::find(&mut tx, &project_id, id)
            .await?
            .map(|u| u.name.unwrap_or(u.email))
            .unwrap_or_default(),
        None => access.resolved.project.name.clone(),
    };
    invitations::expire(&mut tx, &project_id, &tenant_id, now).await?;
    let (token, token_hash) = send::new_link_token();
    let row = InvitationRow {
        id: new_id("inv"),
        tenant_id: tenant_id.clone(),
        email: email.typed.clone(),
        email_normalized: email.normalized.clone(),
        role: body.role.clone(),
        inviter_id: access.user_id().map(str::to_string),
        inviter_name,
        status: invitations::PENDING.into(),
        created_at: now,
        expires_at: now + TTL_MS,
    };
    let new = NewInvitation {
        id: &row.id,
        tenant_id: &tenant_id,
        email: &row.email,
        email_normalized: &row.email_normalized,
        role: &row.role,
        token_hash: &token_hash,
        inviter_id: row.inviter_id.as_deref(),
        inviter_name: &row.inviter_name,
        now,
        expires_at: row.expires_at,
    };
    if !invitations::insert(&mut tx, &project_id, &new).await? {
        return Err(ApiError::conflict(
            "invitation_pending",
            "this address has a pending invitation to the tenant: resend or revoke it",
        ));
    }
    send_invitation(
        &state,
        &mut tx,
        &access.resolved,
        &access.tenant.name,
        &row,
        &token,
    )
    .await?;
    access
        .audit(
            &mut tx,
            &client,
            "invitation.created",
            None,
            invitation_data(&row),
        )
        .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"invitation": invitation_json(&row)})),
    ))
}

/// `GET /v1/tenants/{id}/invitations`: the pending ones.
pub async fn list(
    State(state): State<DataState>,
    access: InTenant<MembersInvite>,
) -> ApiResult<Json<Value>> {
    let project_id = access.project_id();
    let mut tx = state
        .shard(&access.resolved)?
        .scope_read(project_id)
        .await?;
    let rows = invitations::pending(&mut tx, project_id, &access.tenant.id, now_ms()).await?;
    tx.commit().await?;
    Ok(Json(
        json!({"items": rows.iter().map(invitation_json).collect::<Vec<_>>()}),
    ))
}

async fn pending_one(
    tx: &mut Tx,
    access: &InTenant<MembersInvite>,
    id: &str,
) -> ApiResult<InvitationRow> {
    invitations::find(tx, access.project_id(), &access.tenant.id, id)
        .await?
        .filter(|i| i.status == invitations::PENDING && i.expires_at > now_ms())
        .ok_or_else(|| ApiError::not_found("invitation"))
}

/// `DELETE /v1/tenants/{id}/invitations/{inv_id}`.
pub async fn revoke(
    State(state): State<DataState>,
    client: Client,
    mut access: InTenant<MembersInvite>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let project_id = access.project_id().to_string();
    let mut tx = state.shard(&access.resolved)?.scope(&project_id).await?;
    access.lock(&mut tx).await?;
    let row = pending_one(&mut tx, &access, &id).await?;
    // An admin does not undo an owner's invitation to be an owner.
    super::members::beyond_own_role(&access, &row.role)?;
    if !invitations::finish(&mut tx, &project_id, &row.id, REVOKED, None, now_ms()).await? {
        return Err(ApiError::not_found("invitation"));
    }
    access
        .audit(
            &mut tx,
            &client,
            "invitation.revoked",
            None,
            invitation_data(&row),
        )
        .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/tenants/{id}/invitations/{inv_id}/resend`: a new link (the
/// old one stops working) and 7 more days.
pub async fn resend(
    State(state): State<DataState>,
    client: Client,
    mut access: InTenant<MembersInvite>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    send::limit(&state, &access.resolved, &client)?;
    send::require_email(&state)?;
    let project_id = access.project_id().to_string();
    let mut tx = state.shard(&access.resolved)?.scope(&project_id).await?;
    access.lock(&mut tx).await?;
    let row = pending_one(&mut tx, &access, &id).await?;
    // Sending it again is inviting again: the role must be the actor's to give.
    super::members::beyond_own_role(&access, &row.role)?;
    let expires_at = (now_ms() + TTL_MS).min(row.created_at + LIFETIME_MS);
    if expires_at <= now_ms() {
        return Err(ApiError::conflict(
            "invitation_too_old",
            "this invitation was created 30 days ago: revoke it and invite again",
        ));
    }
    let (token, token_hash) = send::new_link_token();
    if !invitations::renew(&mut tx, &project_id, &row.id, &token_hash, expires_at).await? {
        return Err(ApiError::not_found("invitation"));
    }
    let row = InvitationRow { expires_at, ..row };
    send_invitation(
        &state,
        &mut tx,
        &access.resolved,
        &access.tenant.name,
        &row,
        &token,
    )
    .await?;
    access
        .audit(
            &mut tx,
            &client,
            "invitation.resent",
            None,
            invitation_data(&row),
        )
        .await?;
    tx.commit().await?;
    Ok(Json(json!({"invitation": invitation_json(&row)})))
}
