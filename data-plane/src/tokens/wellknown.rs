//! Per-project discovery: `/.well-known/jwks.json` and
//! `/.well-known/openid-configuration`, for the project a request resolves
//! to, and under the issuer path `/{project_id}/.well-known/...` for relying
//! parties that only know the issuer URL.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header::CACHE_CONTROL;
use axum::response::IntoResponse;
use identity_shared::error::{ApiError, ApiResult};
use serde_json::{Value, json};

use crate::DataState;
use crate::request::resolve::{ProjectInfo, ProjectStatus, Resolved};

async fn jwks_response(
    state: &DataState,
    project: &ProjectInfo,
) -> ApiResult<impl IntoResponse + use<>> {
    let keys = state.tokens.jwks(&project.id).await?;
    Ok((
        // The project comes from the key or the host: shared caches must
        // keep one copy per project.
        [
            (CACHE_CONTROL, "public, max-age=60"),
            (axum::http::header::VARY, "X-Project-Key, Host"),
        ],
        Json(json!({"keys": keys})),
    ))
}

fn discovery(state: &DataState, project: &ProjectInfo) -> Value {
    let issuer = state.issuer(project);
    json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [project.settings.signing_alg.as_str()],
        "response_types_supported": ["code"],
        "grant_types_supported": ["refresh_token"],
    })
}

pub async fn jwks(
    State(state): State<DataState>,
    resolved: Resolved,
) -> ApiResult<impl IntoResponse> {
    jwks_response(&state, &resolved.project).await
}

pub async fn openid_configuration(
    State(state): State<DataState>,
    resolved: Resolved,
) -> Json<Value> {
    Json(discovery(&state, &resolved.project))
}

async fn by_path(state: &DataState, project_id: &str) -> ApiResult<Arc<ProjectInfo>> {
    let project = state
        .resolver
        .project(project_id)
        .await?
        .ok_or_else(|| ApiError::not_found_code("project_not_found", "no such project"))?;
    if project.status != ProjectStatus::Active {
        return Err(ApiError::forbidden(
            "project_suspended",
            "this project is suspended",
        ));
    }
    Ok(project)
}

pub async fn jwks_by_path(
    State(state): State<DataState>,
    Path(project_id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let project = by_path(&state, &project_id).await?;
    jwks_response(&state, &project).await
}

pub async fn openid_configuration_by_path(
    State(state): State<DataState>,
    Path(project_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let project = by_path(&state, &project_id).await?;
    Ok(Json(discovery(&state, &project)))
}
