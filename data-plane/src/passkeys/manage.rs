//! The signed-in user's passkeys: list, rename, delete (step-up).

use crate::DataState;
use crate::audit::event;
use crate::mfa::stepup::{require_step_up, sync_mfa_enabled};
use crate::request::caller::Caller;
use crate::request::client::Client;
use crate::store::passkeys::{self, PasskeyRow};
use crate::store::trusted_browsers;
use crate::store::users;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use identity_shared::audit::{self, Event, Outcome};
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::http;
use identity_shared::time::rfc3339;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Serialize)]
pub struct PasskeyView {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub backed_up: bool,
    pub transports: Vec<String>,
}

impl PasskeyView {
    pub fn of(row: &PasskeyRow) -> Self {
        let transports = serde_json::from_str::<Value>(&row.credential)
            .ok()
            .and_then(|v| v["cred"]["transports"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|t| t.as_str().map(str::to_lowercase))
            .collect();
        Self {
            id: row.id.clone(),
            name: row.name.clone(),
            created_at: rfc3339(row.created_at),
            last_used_at: row.last_used_at.map(rfc3339),
            backed_up: row.backed_up,
            transports,
        }
    }
}

/// A passkey's name: 1 to 64 characters, trimmed, no control characters.
pub fn clean_name(name: &str) -> ApiResult<String> {
    let name = name.trim();
    let n = name.chars().count();
    if n == 0 || n > 64 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid_request(
            "name must be 1 to 64 characters, without control characters",
        ));
    }
    Ok(name.to_string())
}

fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such passkey")
}

/// `GET /v1/auth/passkeys`.
pub async fn list(State(state): State<DataState>, caller: Caller) -> ApiResult<Json<Value>> {
    let project_id = &caller.resolved.project.id;
    let mut tx = state
        .shard(&caller.resolved)?
        .scope_read(project_id)
        .await?;
    let rows = passkeys::of_user(&mut tx, project_id, &caller.claims.sub).await?;
    tx.commit().await?;
    let items: Vec<PasskeyView> = rows.iter().map(PasskeyView::of).collect();
    Ok(Json(json!({ "items": items })))
}

#[derive(Debug, Deserialize)]
pub struct RenameBody {
    name: String,
}

/// `PATCH /v1/auth/passkeys/{id}`.
pub async fn rename(
    State(state): State<DataState>,
    caller: Caller,
    client: Client,
    Path(id): Path<String>,
    http::Json(body): http::Json<RenameBody>,
) -> ApiResult<Json<Value>> {
    let name = clean_name(&body.name)?;
    let project_id = &caller.resolved.project.id;
    let user_id = &caller.claims.sub;
    let mut tx = state.shard(&caller.resolved)?.scope(project_id).await?;
    if !passkeys::rename(&mut tx, project_id, user_id, &id, &name).await? {
        return Err(not_found());
    }
    let row = passkeys::of_user(&mut tx, project_id, user_id)
        .await?
        .into_iter()
        .find(|p| p.id == id)
        .ok_or_else(not_found)?;
    record(&mut tx, &caller, &client, "passkey.renamed", &id).await?;
    tx.commit().await?;
    Ok(Json(json!({ "passkey": PasskeyView::of(&row) })))
}

/// `DELETE /v1/auth/passkeys/{id}` (step-up).
pub async fn remove(
    State(state): State<DataState>,
    caller: Caller,
    client: Client,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let (user, _) = require_step_up(&state, &caller).await?;
    let project_id = &caller.resolved.project.id;
    let mut tx = state.shard(&caller.resolved)?.scope(project_id).await?;
    users::lock_credentials(&mut tx, project_id, &user.id).await?;
    if passkeys::delete(&mut tx, project_id, &user.id, Some(&id)).await? == 0 {
        return Err(not_found());
    }
    // A removed factor (a lost device, say) must not leave the browsers it
    // let skip the challenge.
    trusted_browsers::forget_all(&mut tx, project_id, &user.id).await?;
    sync_mfa_enabled(&mut tx, project_id, &user.id).await?;
    record(&mut tx, &caller, &client, "passkey.deleted", &id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn record(
    tx: &mut identity_shared::db::Tx,
    caller: &Caller,
    client: &Client,
    kind: &'static str,
    passkey_id: &str,
) -> ApiResult<()> {
    let ip = client.ip_text();
    let user_id = &caller.claims.sub;
    audit::record(
        tx,
        Event {
            actor: Some(user_id),
            subject: Some(user_id),
            data: json!({ "passkey_id": passkey_id }),
            ..event(&caller.resolved, client, &ip, kind, Outcome::Success)
        },
    )
    .await?;
    Ok(())
}
