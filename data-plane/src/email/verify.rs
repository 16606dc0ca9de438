//! Email verification: `POST /v1/auth/email/verify/request` sends the
//! signed-in user a link and a code (24 hours); `.../confirm` takes either.
//! A verified address joins the tenants whose verified domain matches it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use identity_shared::audit::{self, Event, Outcome};
use identity_shared::db::Tx;
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::http;
use identity_shared::secret::Secret;
use identity_shared::templates::{TemplateKind, Vars};
use identity_shared::time::now_ms;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::DataState;
use crate::audit::event;
use crate::email::judge::{Subject, judge};
use crate::email::send;
use crate::request::caller::Caller;
use crate::request::client::Client;
use crate::request::resolve::Resolved;
use crate::sessions::manage::load_user;
use crate::store::one_time_codes::{self as codes, VERIFY_EMAIL};
use crate::store::tenant_members;
use crate::store::users::{self, UserRow};
use crate::store::{identities, mfa, passkeys, sessions, trusted_browsers};
use crate::views::UserView;

const TTL_MS: i64 = 24 * 3600 * 1000;

pub async fn request(
    State(state): State<DataState>,
    caller: Caller,
    client: Client,
) -> ApiResult<StatusCode> {
    let resolved = &caller.resolved;
    send::limit(&state, resolved, &client)?;
    send::require_email(&state)?;
    let (user, _) = load_user(&state, &caller).await?;
    if user.email_verified {
        return Ok(StatusCode::NO_CONTENT);
    }
    let project = &resolved.project;
    let mut tx = state.shard(resolved)?.scope(&project.id).await?;
    users::lock_credentials(&mut tx, &project.id, &user.id).await?;
    if !send::under_cap(
        &state,
        &mut tx,
        &project.id,
        TemplateKind::Verification,
        &user.email_normalized,
        project.settings.messaging.emails_per_address_per_hour,
        3_600_000,
    )
    .await?
    {
        return Err(too_many_messages());
    }
    let issued = send::issue(
        &state,
        &mut tx,
        &project.id,
        &send::Issue {
            purpose: VERIFY_EMAIL,
            user_id: Some(&user.id),
            email: Some(&user.email_normalized),
            target: None,
            data: None,
            ttl_ms: TTL_MS,
            link: true,
            code: true,
        },
    )
    .await?;
    let (Some(token), Some(code)) = (issued.token, issued.code) else {
        return Err(ApiError::internal("a verification without its secrets"));
    };
    let link = send::link(&state, project, "/verify-email", &token);
    send::queue_email(
        &state,
        &mut tx,
        project,
        TemplateKind::Verification,
        &user.email,
        &user.email_normalized,
        Vars::new()
            .with("email", &user.email)
            .with("link", &link)
            .with("code", &code)
            .with("expires_in", "24 hours"),
    )
    .await?;
    let ip = client.ip_text();
    audit::record(
        &mut tx,
        Event {
            actor: Some(&user.id),
            subject: Some(&user.id),
            ..event(
                resolved,
                &client,
                &ip,
                "email.verification_requested",
                Outcome::Success,
            )
        },
    )
    .await?;
    tx.commit().await?;
    state.outbox.wake();
    Ok(StatusCode::NO_CONTENT)
}

pub fn too_many_messages() -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_messages",
        "too many messages were sent to this recipient recently; try again later",
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBody {
    token: Option<Secret<String>>,
    code: Option<Secret<String>>,
}

pub async fn confirm(
    State(state): State<DataState>,
    caller: Caller,
    client: Client,
    http::Json(body): http::Json<ConfirmBody>,
) -> ApiResult<Json<Value>> {
    let resolved = &caller.resolved;
    send::limit(&state, resolved, &client)?;
    let project_id = &resolved.project.id;
    let (user, _) = load_user(&state, &caller).await?;
    let now = now_ms();
    let mut tx = state.shard(resolved)?.scope(project_id).await?;
    users::lock_credentials(&mut tx, project_id, &user.id).await?;
    let row = match (&body.token, &body.code) {
        (Some(token), None) => codes::find_by_token(
            &mut tx,
            project_id,
            VERIFY_EMAIL,
            &send::link_token_hash(token.expose()),
            now,
        )
        .await?
        .filter(|r| r.user_id.as_deref() == Some(user.id.as_str()))
        .ok_or_else(invalid_token)?,
        (None, Some(code)) => {
            let who = Subject {
                user_id: Some(&user.id),
                email: None,
            };
            let judged = judge(
                &state,
                &mut tx,
                project_id,
                VERIFY_EMAIL,
                &who,
                code.expose(),
                now,
            )
            .await?;
            let Some(row) = judged else {
                let ip = client.ip_text();
                audit::record(
                    &mut tx,
                    Event {
                        actor: Some(&user.id),
                        subject: Some(&user.id),
                        data: json!({"reason": "invalid_code"}),
                        ..event(
                            resolved,
                            &client,
                            &ip,
                            "email.verification_failed",
                            Outcome::Failure,
                        )
                    },
                )
                .await?;
                tx.commit().await?;
                return Err(invalid_code());
            };
            row
        }
        _ => {
            return Err(ApiError::invalid_request("send either token or code"));
        }
    };
    // Sent to an address the user has since left: it proves nothing now.
    if row.email.as_deref() != Some(user.email_normalized.as_str())
        || !codes::consume(&mut tx, project_id, &row.id, now).await?
    {
        return Err(if body.token.is_some() {
            invalid_token()
        } else {
            invalid_code()
        });
    }
    let user = mark_verified(&state, &mut tx, resolved, &client, user, "verification").await?;
    tx.commit().await?;
    Ok(Json(json!({"user": UserView::from(&user)})))
}

/// Marks the user's address verified (if it still is the one proven), joins
/// the tenants whose verified domain matches it, and audits both. Returns
/// the user as it now stands.
pub async fn mark_verified(
    state: &DataState,
    tx: &mut Tx,
    resolved: &Resolved,
    client: &Client,
    mut user: UserRow,
    how: &str,
) -> ApiResult<UserRow> {
    let project_id = &resolved.project.id;
    if user.email_verified {
        return Ok(user);
    }
    if !users::set_email_verified(tx, project_id, &user.id, &user.email_normalized).await? {
        return Ok(user);
    }
    user.email_verified = true;
    let ip = client.ip_text();
    audit::record(
        tx,
        Event {
            actor: Some(&user.id),
            subject: Some(&user.id),
            data: json!({"email": user.email, "via": how}),
            ..event(resolved, client, &ip, "email.verified", Outcome::Success)
        },
    )
    .await?;
    let domain = user
        .email_normalized
        .rsplit_once('@')
        .map(|(_, d)| d.to_string())
        .unwrap_or_default();
    // Tenants live in the control database. When it is this shard's
    // database, read them in this transaction: a second connection wanted
    // while this one holds locks could wait on a pool drained by requests
    // queued behind those locks.
    let shared = state
        .shard(resolved)?
        .invalidations()
        .same_as(state.control_db.invalidations());
    let targets = if shared {
        tenant_members::auto_join_targets(tx, project_id, &domain).await?
    } else {
        let mut control = state.control_db.scope_read(project_id).await?;
        let t = tenant_members::auto_join_targets(&mut control, project_id, &domain).await?;
        control.commit().await?;
        t
    };
    for (tenant_id, role) in targets {
        let joining = crate::tenants::joining::Joining {
            tenant_id: &tenant_id,
            user_id: &user.id,
            role: &role,
            source: "domain",
            actor: None,
        };
        crate::tenants::joining::join(tx, resolved, client, &joining).await?;
    }
    // Cached views of the user's sessions show the old flag.
    sessions::reload_views(tx, project_id, &user.id).await?;
    Ok(user)
}

/// The mailbox's owner takes over an account whose address was never
/// proven (signing in by email, or resetting the password): whoever set it
/// up may not be them, so its sessions end and its password, second
/// factors, passkeys, linked identities and trusted browsers are removed. Returns the account
/// as it now stands.
pub async fn reclaim(
    tx: &mut Tx,
    resolved: &Resolved,
    client: &Client,
    user: UserRow,
) -> ApiResult<UserRow> {
    let project_id = &resolved.project.id;
    let revoked =
        sessions::revoke(tx, project_id, &user.id, None, None, "account_reclaimed").await?;
    users::clear_password(tx, project_id, &user.id).await?;
    mfa::delete_all(tx, project_id, &user.id).await?;
    passkeys::delete(tx, project_id, &user.id, None).await?;
    identities::unlink_all(tx, project_id, &user.id).await?;
    trusted_browsers::forget_all(tx, project_id, &user.id).await?;
    codes::void_all(tx, project_id, &user.id, now_ms()).await?;
    users::clear_phone(tx, project_id, &user.id).await?;
    let ip = client.ip_text();
    audit::record(
        tx,
        Event {
            subject: Some(&user.id),
            data: json!({"sessions_revoked": revoked, "had_password": user.password_hash.is_some(), "had_second_factor": user.mfa_enabled}),
            ..event(resolved, client, &ip, "account.reclaimed", Outcome::Success)
        },
    )
    .await?;
    Ok(UserRow {
        password_hash: None,
        mfa_enabled: false,
        phone: None,
        phone_verified: false,
        ..user
    })
}

pub fn invalid_token() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_token",
        "the link is not valid or has expired",
    )
}

pub fn invalid_code() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_code",
        "the code is not valid or has expired",
    )
}
