//! `POST /v1/auth/session/tenant`: the signed-in user picks the tenant
//! their session acts in (or none), and gets an access token saying so
//! (no refresh token: the session's own carries the choice on). The
//! session remembers it, so every refresh issues tokens carrying `tid`,
//! `tenant_role` and `permissions` as they stand then; a member removed or given another role gets them
//! at the next refresh, and the token they hold is refused at once
//! (`401 tenant_access_changed`, see `request::caller`).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use identity_shared::audit::{self, Event, Outcome};
use identity_shared::error::ApiResult;
use identity_shared::http;
use identity_shared::time::now_ms;
use serde::Deserialize;
use serde_json::json;

use super::access::tenant_not_found;
use crate::DataState;
use crate::audit::event;
use crate::request::caller::Caller;
use crate::request::client::Client;
use crate::request::transport::Transport;
use crate::sessions::cache::ActiveTenant;
use crate::sessions::issue::{Extras, signed_in_trusting};
use crate::store::{sessions, tenant_members};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActiveBody {
    /// A tenant the user belongs to, or `null` for none.
    tenant_id: Option<String>,
}

pub async fn switch(
    State(state): State<DataState>,
    client: Client,
    headers: HeaderMap,
    caller: Caller,
    http::Json(body): http::Json<ActiveBody>,
) -> ApiResult<Response> {
    let resolved = &caller.resolved;
    // A session that lives in cookies stays in cookies.
    let transport = if caller.via_cookie {
        Transport::Cookie
    } else {
        crate::password::check::signing_in_from(&state, resolved, &headers)?
    };
    let project_id = resolved.project.id.clone();
    let user = &caller.view.user;
    let session_id = &caller.claims.sid;
    let now = now_ms();
    let mut tx = state.shard(resolved)?.scope(&project_id).await?;
    let tenant = match &body.tenant_id {
        None => None,
        Some(id) => {
            if !identity_shared::ids::is_id("ten", id) {
                return Err(tenant_not_found());
            }
            // Not a member: the tenant does not exist for them.
            let member = tenant_members::find(&mut tx, &project_id, id, &user.id)
                .await?
                .ok_or_else(tenant_not_found)?;
            Some(ActiveTenant {
                id: id.clone(),
                role: member.role,
            })
        }
    };
    sessions::set_tenant(&mut tx, &project_id, session_id, body.tenant_id.as_deref()).await?;
    let session = sessions::find(&mut tx, &project_id, session_id)
        .await?
        .filter(|s| s.is_live(now))
        .ok_or_else(|| {
            identity_shared::error::ApiError::unauthorized(
                "session_revoked",
                "this session has ended",
            )
        })?;
    let ip = client.ip_text();
    audit::record(
        &mut tx,
        Event {
            actor: Some(&user.id),
            subject: Some(&user.id),
            data: json!({"session_id": session_id, "tenant_id": body.tenant_id}),
            ..event(
                resolved,
                &client,
                &ip,
                "session.tenant_changed",
                Outcome::Success,
            )
        },
    )
    .await?;
    tx.commit().await?;
    signed_in_trusting(
        &state,
        resolved,
        transport,
        StatusCode::OK,
        user,
        &session,
        "",
        Extras {
            tenant: tenant.as_ref(),
            // The session's refresh token stays what it is (and carries
            // the choice from now on): an access token alone must not buy
            // a refresh token.
            access_only: true,
            ..Extras::default()
        },
    )
    .await
}
