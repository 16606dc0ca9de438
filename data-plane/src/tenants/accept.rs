//! The invitee's side of an invitation: anyone holding the link previews
//! it; accepting joins a signed-in user with the invited address, or
//! creates the account (its address proven by the link) and signs it in.
//! Accepting for an address that has an account, while not signed in, is
//! `401 sign_in_required`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use identity_shared::audit::{self, Event, Outcome};
use identity_shared::db::Tx;
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::http;
use identity_shared::secret::Secret;
use identity_shared::time::{now_ms, rfc3339};
use serde::Deserialize;
use serde_json::{Value, json};

use super::invitations::invalid_token;
use super::joining::{Joining, join};
use crate::DataState;
use crate::audit::event;
use crate::email::send;
use crate::input::parse_name;
use crate::request::caller::Caller;
use crate::request::client::Client;
use crate::request::resolve::Resolved;
use crate::store::invitations::{self, ACCEPTED, InvitationRow};
use crate::store::users::{self, NewUser};
use crate::store::{tenant_members, tenants};

/// The invitation a token names, and its tenant.
async fn by_token(
    state: &DataState,
    resolved: &Resolved,
    token: &str,
) -> ApiResult<(InvitationRow, tenants::TenantRow)> {
    let project_id = &resolved.project.id;
    let mut tx = state.shard(resolved)?.scope_read(project_id).await?;
    let row =
        invitations::find_by_token(&mut tx, project_id, &send::link_token_hash(token), now_ms())
            .await?;
    tx.commit().await?;
    let row = row.ok_or_else(invalid_token)?;
    let mut control = state.control_db.scope_read(project_id).await?;
    let tenant = tenants::find(&mut control, project_id, &row.tenant_id).await?;
    control.commit().await?;
    Ok((row, tenant.ok_or_else(invalid_token)?))
}

/// `GET /v1/invitations/{token}`: what the invitation is for.
pub async fn preview(
    State(state): State<DataState>,
    resolved: Resolved,
    client: Client,
    Path(token): Path<String>,
) -> ApiResult<Json<Value>> {
    send::limit(&state, &resolved, &client)?;
    let (row, tenant) = by_token(&state, &resolved, &token).await?;
    Ok(Json(json!({
        "tenant": {"id": tenant.id, "name": tenant.name},
        "email": row.email,
        "role": row.role,
        "inviter": row.inviter_name,
        "expires_at": rfc3339(row.expires_at),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptBody {
    token: Secret<String>,
    password: Option<Secret<String>>,
    name: Option<String>,
}

/// `POST /v1/invitations/accept`.
pub async fn accept(
    State(state): State<DataState>,
    resolved: Resolved,
    client: Client,
    headers: HeaderMap,
    caller: Option<Caller>,
    http::Json(body): http::Json<AcceptBody>,
) -> ApiResult<Response> {
    send::limit(&state, &resolved, &client)?;
    let (row, tenant) = by_token(&state, &resolved, body.token.expose()).await?;
    let project_id = resolved.project.id.clone();
    let answer =
        |role: &str| json!({"tenant": {"id": tenant.id, "name": tenant.name}, "role": role});
    if let Some(caller) = caller {
        let mut tx = state.shard(&resolved)?.scope(&project_id).await?;
        let user = users::find(&mut tx, &project_id, &caller.claims.sub)
            .await?
            .ok_or_else(invalid_token)?;
        if user.email_normalized != row.email_normalized {
            return Err(ApiError::forbidden(
                "invitation_email_mismatch",
                "this invitation is for another address: sign in with it",
            ));
        }
        resolved.project.require_no_sso(&user.email_normalized)?;
        let role = spend(&mut tx, &resolved, &client, &row, &user.id).await?;
        tx.commit().await?;
        return Ok(Json(answer(&role)).into_response());
    }
    // No account yet: the link proved the mailbox; the account is made now.
    resolved.project.require_no_sso(&row.email_normalized)?;
    let transport = crate::password::check::signing_in_from(&state, &resolved, &headers)?;
    let name = parse_name(body.name.as_deref())?;
    let hash = match body.password {
        Some(password) => {
            crate::password::policy::validate_new(password.expose())?;
            Some(
                state
                    .hasher
                    .hash(&project_id, password.into_inner())
                    .await?,
            )
        }
        // Without a password the account signs in by email code or link.
        None => {
            send::require_email(&state).map_err(|_| {
                ApiError::unprocessable(
                    "password_required",
                    "choose a password: this project cannot send sign-in emails",
                )
            })?;
            None
        }
    };
    let mut tx = state.shard(&resolved)?.scope(&project_id).await?;
    // Concurrent accepts of one invitation queue here; all but the first
    // then find it used.
    tx.lock_key(&format!("invitation:{project_id}:{}", row.id))
        .await?;
    let token_hash = send::link_token_hash(body.token.expose());
    if invitations::find_by_token(&mut tx, &project_id, &token_hash, now_ms())
        .await?
        .is_none()
    {
        return Err(invalid_token());
    }
    if users::find_by_email(&mut tx, &project_id, &row.email_normalized)
        .await?
        .is_some()
    {
        return Err(ApiError::unauthorized(
            "sign_in_required",
            "this address has an account: sign in, then accept",
        ));
    }
    let user = users::insert(
        &mut tx,
        &project_id,
        NewUser {
            email: row.email.clone(),
            email_normalized: row.email_normalized.clone(),
            name,
            password_hash: hash,
            email_verified: false,
        },
    )
    .await?;
    let ip = client.ip_text();
    audit::record(
        &mut tx,
        Event {
            actor: Some(&user.id),
            subject: Some(&user.id),
            data: json!({"method": "invitation", "tenant_id": tenant.id}),
            ..event(&resolved, &client, &ip, "user.created", Outcome::Success)
        },
    )
    .await?;
    spend(&mut tx, &resolved, &client, &row, &user.id).await?;
    let user = crate::email::verify::mark_verified(
        &state,
        &mut tx,
        &resolved,
        &client,
        user,
        "invitation",
    )
    .await?;
    let (session, refresh) =
        crate::sessions::issue::start_session(&mut tx, &resolved, &user, &client, &["email"])
            .await?;
    tx.commit().await?;
    crate::sessions::issue::signed_in(
        &state,
        &resolved,
        transport,
        StatusCode::CREATED,
        &user,
        &session,
        &refresh,
    )
    .await
}

/// Uses the invitation (once) and joins its tenant; returns the user's
/// role there (an earlier membership keeps its role). An invitation holds
/// only while its inviter could still send it (`members:invite`, and its
/// role theirs to give): one sent by a member since removed or demoted no
/// longer opens the tenant.
async fn spend(
    tx: &mut Tx,
    resolved: &Resolved,
    client: &Client,
    row: &InvitationRow,
    user_id: &str,
) -> ApiResult<String> {
    let project_id = &resolved.project.id;
    tx.lock_key(&format!("tenant:{project_id}:{}", row.tenant_id))
        .await?;
    if let Some(inviter) = &row.inviter_id {
        let member = tenant_members::find(tx, project_id, &row.tenant_id, inviter).await?;
        let rbac = &resolved.project.settings.rbac;
        let still = member.is_some_and(|m| {
            rbac.allows(&m.role, identity_shared::rbac::MEMBERS_INVITE)
                && rbac.may_grant(&m.role, &row.role)
        });
        if !still {
            return Err(invalid_token());
        }
    }
    if !invitations::finish(tx, project_id, &row.id, ACCEPTED, Some(user_id), now_ms()).await? {
        return Err(invalid_token());
    }
    let joining = Joining {
        tenant_id: &row.tenant_id,
        user_id,
        role: &row.role,
        source: "invitation",
        actor: row.inviter_id.as_deref(),
    };
    join(tx, resolved, client, &joining).await?;
    let ip = client.ip_text();
    audit::record(
        tx,
        Event {
            actor: Some(user_id),
            subject: Some(user_id),
            data: json!({"tenant_id": row.tenant_id, "invitation_id": row.id, "role": row.role}),
            ..event(
                resolved,
                client,
                &ip,
                "invitation.accepted",
                Outcome::Success,
            )
        },
    )
    .await?;
    let member = tenant_members::find(tx, project_id, &row.tenant_id, user_id)
        .await?
        .ok_or_else(invalid_token)?;
    Ok(member.role)
}
