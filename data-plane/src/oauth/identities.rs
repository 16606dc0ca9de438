//! The signed-in user's linked identities: `GET /v1/auth/identities`, and
//! `DELETE /v1/auth/identities/{id}` (step-up; `409 last_credential` when
//! nothing else would let the user sign in).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use identity_shared::audit::{self, Event, Outcome};
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::time::rfc3339;
use serde_json::{Value, json};

use crate::DataState;
use crate::audit::event;
use crate::mfa::stepup::require_step_up;
use crate::request::caller::Caller;
use crate::request::client::Client;
use crate::sessions::manage::load_user;
use crate::store::{identities, passkeys, users};

pub async fn list(State(state): State<DataState>, caller: Caller) -> ApiResult<Json<Value>> {
    let (user, _) = load_user(&state, &caller).await?;
    let project_id = &caller.resolved.project.id;
    let mut tx = state
        .shard(&caller.resolved)?
        .scope_read(project_id)
        .await?;
    let rows = identities::of_user(&mut tx, project_id, &user.id).await?;
    tx.commit().await?;
    let items: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "provider": r.provider,
                "provider_user_id": r.provider_user_id,
                "email": r.email,
                "created_at": rfc3339(r.created_at),
            })
        })
        .collect();
    Ok(Json(json!({"items": items})))
}

pub async fn unlink(
    State(state): State<DataState>,
    caller: Caller,
    client: Client,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let (user, _) = require_step_up(&state, &caller).await?;
    let project_id = &caller.resolved.project.id;
    let mut tx = state.shard(&caller.resolved)?.scope(project_id).await?;
    users::lock_credentials(&mut tx, project_id, &user.id).await?;
    let user = users::find(&mut tx, project_id, &user.id)
        .await?
        .ok_or_else(|| ApiError::not_found("identity"))?;
    let linked = identities::of_user(&mut tx, project_id, &user.id).await?;
    let Some(target) = linked.iter().find(|r| r.id == id) else {
        return Err(ApiError::not_found("identity"));
    };
    // What would still let the user in: a password, a passkey, another
    // provider, or a code or link to a proven address.
    let others = linked.len() > 1
        || user.password_hash.is_some()
        || !passkeys::of_user(&mut tx, project_id, &user.id)
            .await?
            .is_empty()
        || (user.email_verified && state.outbox.email_ready());
    if !others {
        return Err(ApiError::conflict(
            "last_credential",
            "this is the only way left to sign in; add a password or another sign-in method first",
        ));
    }
    identities::unlink(&mut tx, project_id, &user.id, &id).await?;
    let ip = client.ip_text();
    audit::record(
        &mut tx,
        Event {
            actor: Some(&user.id),
            subject: Some(&user.id),
            data: json!({"provider": target.provider, "provider_user_id": target.provider_user_id}),
            ..event(
                &caller.resolved,
                &client,
                &ip,
                "identity.unlinked",
                Outcome::Success,
            )
        },
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
