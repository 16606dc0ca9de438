//! Project API keys: issue (value shown once), list (never the values), revoke.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use identity_shared::db::{DbError, Tx};
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::http::{self, ListParams, Page};
use identity_shared::ids::new_id;
use identity_shared::invalidation::Invalidation;
use identity_shared::keys::{self, KeyKind, NewKey};
use identity_shared::schema::ProjectKeys;
use identity_shared::time::{now_ms, rfc3339};
use sea_query::{Expr, ExprTrait, Query};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{ControlState, project_store};

pub fn router() -> Router<ControlState> {
    Router::new()
        .route("/v1/projects/{id}/keys", get(list).post(create))
        .route("/v1/projects/{id}/keys/{key_id}", delete(remove).get(show))
}

#[derive(Debug, sqlx::FromRow)]
struct KeyRow {
    id: String,
    kind: String,
    prefix: String,
    created_at: i64,
}

impl KeyRow {
    fn to_json(&self) -> Value {
        json!({"id": self.id, "kind": self.kind, "prefix": self.prefix, "created_at": rfc3339(self.created_at)})
    }
}

const COLUMNS: [ProjectKeys; 4] = [
    ProjectKeys::Id,
    ProjectKeys::Kind,
    ProjectKeys::Prefix,
    ProjectKeys::CreatedAt,
];

/// Stores a new key's hash; returns the row id.
pub async fn insert(tx: &mut Tx, project_id: &str, key: &NewKey) -> Result<String, DbError> {
    let id = new_id("key");
    tx.execute(
        Query::insert()
            .into_table(ProjectKeys::Table)
            .columns([
                ProjectKeys::Id,
                ProjectKeys::ProjectId,
                ProjectKeys::Kind,
                ProjectKeys::Prefix,
                ProjectKeys::SecretHash,
                ProjectKeys::CreatedAt,
            ])
            .values_panic([
                id.clone().into(),
                project_id.into(),
                key.kind.as_str().into(),
                key.prefix.clone().into(),
                key.secret_hash.clone().into(),
                now_ms().into(),
            ]),
    )
    .await?;
    // A data-plane node may have cached "no such key" for this prefix.
    tx.invalidate(Invalidation::Key(key.prefix.clone())).await?;
    Ok(id)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    kind: KeyKind,
}

async fn create(
    State(state): State<ControlState>,
    Path(project_id): Path<String>,
    http::Json(body): http::Json<CreateBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let key = keys::generate(body.kind);
    let mut tx = state.db.control().await?;
    let project = project_store::load(&mut tx, &project_id).await?;
    let id = insert(&mut tx, &project.id, &key).await?;
    let row = load(&mut tx, &project.id, &id).await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"key": row.to_json(), "value": key.value})),
    ))
}

async fn load(tx: &mut Tx, project_id: &str, key_id: &str) -> ApiResult<KeyRow> {
    tx.fetch_optional(
        Query::select()
            .columns(COLUMNS)
            .from(ProjectKeys::Table)
            .and_where(Expr::col(ProjectKeys::ProjectId).eq(project_id))
            .and_where(Expr::col(ProjectKeys::Id).eq(key_id)),
    )
    .await?
    .ok_or_else(|| ApiError::not_found("key"))
}

async fn list(
    State(state): State<ControlState>,
    Path(project_id): Path<String>,
    http::Query(params): http::Query<ListParams>,
) -> ApiResult<Json<Page<Value>>> {
    let mut tx = state.db.control().await?;
    let project = project_store::load(&mut tx, &project_id).await?;
    let mut q = Query::select();
    q.columns(COLUMNS)
        .from(ProjectKeys::Table)
        .and_where(Expr::col(ProjectKeys::ProjectId).eq(&project.id));
    let page = params
        .fetch_page(&mut tx, q, ProjectKeys::Id, false, |r: &KeyRow| {
            r.id.clone()
        })
        .await?;
    tx.commit().await?;
    Ok(Json(page.map(|r| r.to_json())))
}

async fn show(
    State(state): State<ControlState>,
    Path((project_id, key_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let mut tx = state.db.control().await?;
    let project = project_store::load(&mut tx, &project_id).await?;
    let row = load(&mut tx, &project.id, &key_id).await?;
    tx.commit().await?;
    Ok(Json(json!({"key": row.to_json()})))
}

async fn remove(
    State(state): State<ControlState>,
    Path((project_id, key_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let mut tx = state.db.control().await?;
    let project = project_store::load(&mut tx, &project_id).await?;
    let row = load(&mut tx, &project.id, &key_id).await?;
    tx.execute(
        Query::delete()
            .from_table(ProjectKeys::Table)
            .and_where(Expr::col(ProjectKeys::ProjectId).eq(&project.id))
            .and_where(Expr::col(ProjectKeys::Id).eq(&row.id)),
    )
    .await?;
    tx.invalidate(Invalidation::Key(row.prefix)).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
