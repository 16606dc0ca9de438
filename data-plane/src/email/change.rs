//! Email change: `POST /v1/auth/email/change` (step-up) sends a link to the
//! new address and a notice to the old one; `POST .../change/confirm` (the
//! link's token, no session needed) moves the account to the new address,
//! verified, or answers `409 email_taken`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use identity_shared::audit::{self, Event, Outcome};
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::http;
use identity_shared::secret::Secret;
use identity_shared::templates::{TemplateKind, Vars};
use identity_shared::time::now_ms;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::DataState;
use crate::audit::event;
use crate::email::send;
use crate::email::verify::{invalid_token, mark_verified, too_many_messages};
use crate::input::Email;
use crate::mfa::stepup::require_step_up;
use crate::request::caller::Caller;
use crate::request::client::Client;
use crate::request::resolve::Resolved;
use crate::store::one_time_codes::{self as codes, EMAIL_CHANGE, VERIFY_EMAIL};
use crate::store::{sessions, users};
use crate::tenants::joining::leave_domain_joined;
use crate::views::UserView;

const TTL_MS: i64 = 24 * 3600 * 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeBody {
    new_email: String,
}

pub async fn request(
    State(state): State<DataState>,
    caller: Caller,
    client: Client,
    http::Json(body): http::Json<ChangeBody>,
) -> ApiResult<StatusCode> {
    let resolved = &caller.resolved;
    send::limit(&state, resolved, &client)?;
    send::require_email(&state)?;
    let new = Email::parse(&body.new_email)?;
    let (user, _) = require_step_up(&state, &caller).await?;
    if new.normalized == user.email_normalized {
        return Err(ApiError::unprocessable(
            "same_email",
            "this is already the account's address",
        ));
    }
    let project = &resolved.project;
    let mut tx = state.shard(resolved)?.scope(&project.id).await?;
    users::lock_credentials(&mut tx, &project.id, &user.id).await?;
    // The new address's cap holds across accounts asking for it at once.
    tx.lock_key(&format!("email:{}:{}", project.id, new.normalized))
        .await?;
    let limit = project.settings.messaging.emails_per_address_per_hour;
    for (kind, address) in [
        (TemplateKind::EmailChange, &new.normalized),
        (TemplateKind::EmailChangeNotice, &user.email_normalized),
    ] {
        if !send::under_cap(
            &state,
            &mut tx,
            &project.id,
            kind,
            address,
            limit,
            3_600_000,
        )
        .await?
        {
            return Err(too_many_messages());
        }
    }
    // Whether the new address is taken is told only at confirmation, to the
    // holder of the link: a signed-in user cannot probe addresses here.
    // Bound to the session that asked: once it ends (sign-out, revoke-all,
    // a password reset), the link is dead.
    let data =
        json!({"typed": new.typed, "normalized": new.normalized, "session_id": caller.claims.sid})
            .to_string();
    let issued = send::issue(
        &state,
        &mut tx,
        &project.id,
        &send::Issue {
            purpose: EMAIL_CHANGE,
            user_id: Some(&user.id),
            email: Some(&user.email_normalized),
            target: Some(&new.normalized),
            data: Some(&data),
            ttl_ms: TTL_MS,
            link: true,
            code: false,
        },
    )
    .await?;
    let link = send::link(
        &state,
        project,
        "/confirm-email-change",
        &issued.token.unwrap_or_default(),
    );
    send::queue_email(
        &state,
        &mut tx,
        project,
        TemplateKind::EmailChange,
        &new.typed,
        &new.normalized,
        Vars::new()
            .with("email", &new.typed)
            .with("old_email", &user.email)
            .with("new_email", &new.typed)
            .with("link", &link)
            .with("expires_in", "24 hours"),
    )
    .await?;
    send::queue_email(
        &state,
        &mut tx,
        project,
        TemplateKind::EmailChangeNotice,
        &user.email,
        &user.email_normalized,
        Vars::new()
            .with("email", &user.email)
            .with("old_email", &user.email)
            .with("new_email", &new.typed),
    )
    .await?;
    let ip = client.ip_text();
    audit::record(
        &mut tx,
        Event {
            actor: Some(&user.id),
            subject: Some(&user.id),
            data: json!({"new_email": new.typed}),
            ..event(
                resolved,
                &client,
                &ip,
                "email.change_requested",
                Outcome::Success,
            )
        },
    )
    .await?;
    tx.commit().await?;
    state.outbox.wake();
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBody {
    token: Secret<String>,
}

pub async fn confirm(
    State(state): State<DataState>,
    resolved: Resolved,
    client: Client,
    http::Json(body): http::Json<ConfirmBody>,
) -> ApiResult<Json<Value>> {
    send::limit(&state, &resolved, &client)?;
    let project_id = &resolved.project.id;
    let now = now_ms();
    let mut tx = state.shard(&resolved)?.scope(project_id).await?;
    let row = codes::find_by_token(
        &mut tx,
        project_id,
        EMAIL_CHANGE,
        &send::link_token_hash(body.token.expose()),
        now,
    )
    .await?
    .ok_or_else(invalid_token)?;
    let user_id = row.user_id.clone().ok_or_else(invalid_token)?;
    users::lock_credentials(&mut tx, project_id, &user_id).await?;
    let user = users::find(&mut tx, project_id, &user_id)
        .await?
        .ok_or_else(invalid_token)?;
    let data: Value = row
        .data
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_default();
    let (Some(typed), Some(normalized), Some(session_id)) = (
        data["typed"].as_str(),
        data["normalized"].as_str(),
        data["session_id"].as_str(),
    ) else {
        return Err(invalid_token());
    };
    let asked_from = sessions::find(&mut tx, project_id, session_id).await?;
    if !asked_from.is_some_and(|s| s.user_id == user.id && s.is_live(now)) {
        return Err(invalid_token());
    }
    // Requested from an address the account has since left.
    if row.email.as_deref() != Some(user.email_normalized.as_str())
        || !codes::consume(&mut tx, project_id, &row.id, now).await?
    {
        return Err(invalid_token());
    }
    users::set_email(&mut tx, project_id, &user.id, typed, normalized).await?;
    // Memberships the old address's domain brought end with it (the new
    // one's are added when it is marked verified below), except where the
    // user has become the tenant's last owner.
    let left = leave_domain_joined(&mut tx, &resolved, &client, &user.id).await?;
    // Links and codes sent to the old address prove nothing now.
    codes::void(&mut tx, project_id, VERIFY_EMAIL, Some(&user.id), None, now).await?;
    codes::void(&mut tx, project_id, EMAIL_CHANGE, Some(&user.id), None, now).await?;
    let ip = client.ip_text();
    audit::record(
        &mut tx,
        Event {
            actor: Some(&user.id),
            subject: Some(&user.id),
            data: json!({"old_email": user.email, "new_email": typed, "tenants_left": left}),
            ..event(&resolved, &client, &ip, "email.changed", Outcome::Success)
        },
    )
    .await?;
    let moved = users::UserRow {
        email: typed.to_string(),
        email_normalized: normalized.to_string(),
        email_verified: false,
        ..user
    };
    // The link reached the new mailbox: verified (and the domain auto-join).
    let user = mark_verified(&state, &mut tx, &resolved, &client, moved, "email_change").await?;
    sessions::reload_views(&mut tx, project_id, &user.id).await?;
    tx.commit().await?;
    Ok(Json(json!({"user": UserView::from(&user)})))
}
