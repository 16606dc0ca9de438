//! Server-side user calls (secret key): create (with a password or an
//! imported hash), get, list (by email, or searching address and name),
//! delete, reset second factors, revoke every session.

use crate::DataState;
use crate::input::{Email, parse_name};
use crate::password::policy;
use crate::request::client::Client;
use crate::request::resolve::Resolved;
use crate::request::resolve::require_secret;
use crate::store::passkeys;
use crate::store::sessions::{self};
use crate::store::trusted_browsers;
use crate::store::users::{self, NewUser, UserRow};
use crate::store::{identities, mfa, tenant_members};
use crate::tenants::joining::{Leaving, leave};
use crate::views::{UserEnvelope, UserView};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::http::{self, ListParams, Page};
use identity_shared::schema::Users;
use identity_shared::secret::Secret;
use sea_query::{Expr, ExprTrait, Query};
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    email: String,
    password: Option<Secret<String>>,
    password_hash: Option<Secret<String>>,
    name: Option<String>,
    email_verified: Option<bool>,
}

pub async fn create(
    State(state): State<DataState>,
    resolved: Resolved,
    client: Client,
    http::Json(body): http::Json<CreateBody>,
) -> ApiResult<(StatusCode, Json<UserEnvelope>)> {
    let actor = require_secret(&resolved)?;
    let email = Email::parse(&body.email)?;
    let name = parse_name(body.name.as_deref())?;
    let password_hash = match (body.password, body.password_hash) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_request(
                "give password or password_hash, not both",
            ));
        }
        (Some(p), None) => {
            policy::validate_new(p.expose())?;
            Some(
                state
                    .hasher
                    .hash(&resolved.project.id, p.into_inner())
                    .await?,
            )
        }
        (None, Some(h)) => {
            let h = h.into_inner();
            policy::validate_import(&h)?;
            Some(h)
        }
        (None, None) => None,
    };
    let project_id = &resolved.project.id;
    let mut tx = state.shard(&resolved)?.scope(project_id).await?;
    let user = users::insert(
        &mut tx,
        project_id,
        NewUser {
            email: email.typed,
            email_normalized: email.normalized,
            name,
            password_hash,
            email_verified: body.email_verified.unwrap_or(false),
        },
    )
    .await?;
    super::audit_for_user(
        &mut tx,
        &resolved,
        &client,
        &actor,
        &user.id,
        "user.created",
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(UserEnvelope::for_server(&user))))
}

fn not_found() -> ApiError {
    ApiError::not_found("user")
}

pub async fn show(
    State(state): State<DataState>,
    resolved: Resolved,
    Path(id): Path<String>,
) -> ApiResult<Json<UserEnvelope>> {
    require_secret(&resolved)?;
    let mut tx = state
        .shard(&resolved)?
        .scope_read(&resolved.project.id)
        .await?;
    let user = users::find(&mut tx, &resolved.project.id, &id)
        .await?
        .ok_or_else(not_found)?;
    tx.commit().await?;
    Ok(Json(UserEnvelope::for_server(&user)))
}

#[derive(Deserialize)]
pub struct ListQuery {
    email: Option<String>,
    /// Part of the address or of the name, any case.
    query: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

pub async fn list(
    State(state): State<DataState>,
    resolved: Resolved,
    http::Query(q): http::Query<ListQuery>,
) -> ApiResult<Json<Page<UserView>>> {
    require_secret(&resolved)?;
    let params = ListParams {
        limit: q.limit,
        cursor: q.cursor,
    };
    let project_id = &resolved.project.id;
    let mut select = Query::select();
    select
        .columns(users::COLUMNS)
        .from(Users::Table)
        .and_where(Expr::col(Users::ProjectId).eq(project_id));
    if let Some(email) = &q.email {
        // The same canonical form as sign-in; a malformed address matches nobody.
        let canonical = identity_shared::email::canonical(email).unwrap_or_default();
        select.and_where(Expr::col(Users::EmailNormalized).eq(canonical));
    }
    if let Some(query) = q.query.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        if query.chars().count() > 200 {
            return Err(ApiError::invalid_request("query is at most 200 characters"));
        }
        // A literal substring: LIKE's own wildcards are escaped.
        let mut pattern = String::from("%");
        for c in query.to_lowercase().chars() {
            if matches!(c, '%' | '_' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('%');
        let like = || sea_query::LikeExpr::new(pattern.clone()).escape('\\');
        select.cond_where(
            sea_query::Cond::any()
                .add(Expr::col(Users::EmailNormalized).like(like()))
                .add(sea_query::Func::lower(Expr::col(Users::Name)).like(like())),
        );
    }
    let mut tx = state.shard(&resolved)?.scope_read(project_id).await?;
    let page = params
        .fetch_page(&mut tx, select, Users::Id, false, |r: &UserRow| {
            r.id.clone()
        })
        .await?;
    tx.commit().await?;
    Ok(Json(page.map(|r| UserView::for_server(&r))))
}

pub async fn remove(
    State(state): State<DataState>,
    resolved: Resolved,
    client: Client,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let actor = require_secret(&resolved)?;
    let project_id = &resolved.project.id;
    let mut tx = state.shard(&resolved)?.scope(project_id).await?;
    let user = users::find(&mut tx, project_id, &id)
        .await?
        .ok_or_else(not_found)?;
    // The user's own lock before any tenant's, the order an email change
    // takes them in (the other order could deadlock with it).
    users::lock_credentials(&mut tx, project_id, &user.id).await?;
    // Its memberships go with it, but no tenant is left without an owner.
    for (tenant_id, _) in tenant_members::of_user(&mut tx, project_id, &user.id).await? {
        if !leave(
            &mut tx,
            &resolved,
            &client,
            &tenant_id,
            &user.id,
            Leaving::AccountDeleted,
        )
        .await?
        {
            return Err(ApiError::conflict(
                "last_owner",
                format!(
                    "the user is the last owner of tenant {tenant_id}: transfer its ownership or delete it first"
                ),
            ));
        }
    }
    let revoked =
        sessions::revoke(&mut tx, project_id, &user.id, None, None, "user_deleted").await?;
    mfa::delete_all(&mut tx, project_id, &user.id).await?;
    trusted_browsers::forget_all(&mut tx, project_id, &user.id).await?;
    passkeys::delete(&mut tx, project_id, &user.id, None).await?;
    identities::unlink_all(&mut tx, project_id, &user.id).await?;
    tx.execute(
        Query::delete()
            .from_table(Users::Table)
            .and_where(Expr::col(Users::ProjectId).eq(project_id))
            .and_where(Expr::col(Users::Id).eq(&user.id)),
    )
    .await?;
    super::audit_for_user(
        &mut tx,
        &resolved,
        &client,
        &actor,
        &user.id,
        "user.deleted",
        json!({"sessions_revoked": revoked.len()}),
    )
    .await?;
    tx.commit().await?;
    if let Some(key) = &user.avatar_key {
        crate::profile::avatar::forget(&state, key).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v1/users/{id}/mfa`: removes every second factor of a user
/// (account recovery by the customer's support). Their sessions stay; the
/// next sign-in needs only the password.
pub async fn reset_mfa(
    State(state): State<DataState>,
    resolved: Resolved,
    client: Client,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let actor = require_secret(&resolved)?;
    let project_id = &resolved.project.id;
    let mut tx = state.shard(&resolved)?.scope(project_id).await?;
    let user = users::find(&mut tx, project_id, &id)
        .await?
        .ok_or_else(not_found)?;
    mfa::delete_all(&mut tx, project_id, &user.id).await?;
    trusted_browsers::forget_all(&mut tx, project_id, &user.id).await?;
    passkeys::delete(&mut tx, project_id, &user.id, None).await?;
    users::set_mfa_enabled(&mut tx, project_id, &user.id, false).await?;
    sessions::reload_views(&mut tx, project_id, &user.id).await?;
    super::audit_for_user(
        &mut tx,
        &resolved,
        &client,
        &actor,
        &user.id,
        "mfa.reset",
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/users/{id}/sessions/revoke-all`: ends every session of the
/// user (each node's session cache drops them with the commit), forgets
/// their trusted browsers, and voids pending challenges, links and codes.
pub async fn revoke_sessions(
    State(state): State<DataState>,
    resolved: Resolved,
    client: Client,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let actor = require_secret(&resolved)?;
    let project_id = &resolved.project.id;
    let mut tx = state.shard(&resolved)?.scope(project_id).await?;
    let user = users::find(&mut tx, project_id, &id)
        .await?
        .ok_or_else(not_found)?;
    let revoked = sessions::revoke(
        &mut tx,
        project_id,
        &user.id,
        None,
        None,
        "revoked_by_admin",
    )
    .await?;
    trusted_browsers::forget_all(&mut tx, project_id, &user.id).await?;
    mfa::delete_challenges(&mut tx, project_id, &user.id).await?;
    crate::store::one_time_codes::void_all(
        &mut tx,
        project_id,
        &user.id,
        identity_shared::time::now_ms(),
    )
    .await?;
    super::audit_for_user(
        &mut tx,
        &resolved,
        &client,
        &actor,
        &user.id,
        "session.revoked",
        json!({"session_ids": revoked, "reason": "revoked_by_admin"}),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
