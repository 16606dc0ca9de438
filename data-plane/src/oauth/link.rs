//! `POST /v1/auth/oauth/link-token`: a signed-in user (with step-up) asks
//! to link another provider. The token (60 s, single-use) rides on the
//! `start` navigation as `?link=true&link_token=`, which a browser cannot
//! send with an Authorization header; the callback then links the
//! provider's subject to this user, whatever its address.

use axum::Json;
use axum::extract::State;
use identity_shared::crypto::{random_token, sha256_hex};
use identity_shared::error::ApiResult;
use identity_shared::ids::new_id;
use identity_shared::time::now_ms;
use serde_json::{Value, json};

use crate::DataState;
use crate::mfa::stepup::require_step_up;
use crate::oauth::flow::LINK;
use crate::request::caller::Caller;
use crate::store::one_time_codes as codes;

const LINK_TTL_MS: i64 = 60 * 1000;

pub async fn link_token(State(state): State<DataState>, caller: Caller) -> ApiResult<Json<Value>> {
    // Adding a way in is as sensitive as changing the password.
    let (user, _) = require_step_up(&state, &caller).await?;
    let project_id = &caller.resolved.project.id;
    let token = random_token();
    let now = now_ms();
    let mut tx = state.shard(&caller.resolved)?.scope(project_id).await?;
    codes::insert(
        &mut tx,
        &codes::NewCode {
            id: &new_id("otc"),
            project_id,
            purpose: LINK,
            user_id: Some(&user.id),
            email: None,
            target: None,
            token_hash: Some(&sha256_hex(token.as_bytes())),
            code_hash: None,
            data: None,
            now,
            expires_at: now + LINK_TTL_MS,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Json(
        json!({"link_token": token, "expires_in": LINK_TTL_MS / 1000}),
    ))
}
