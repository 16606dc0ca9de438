//! Tenants: the customer organisations inside a project.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use identity_shared::db::Tx;
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::http::{self, ListParams, Page};
use identity_shared::ids::new_id;
use identity_shared::schema::{TenantDomains, Tenants};
use identity_shared::time::{now_ms, rfc3339};
use sea_query::{Expr, ExprTrait, Query};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{ControlState, project_store};

pub fn router() -> Router<ControlState> {
    Router::new()
        .route("/v1/projects/{id}/tenants", get(list).post(create))
        .route(
            "/v1/projects/{id}/tenants/{tenant_id}",
            get(show).patch(update).delete(remove),
        )
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TenantRow {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl TenantRow {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        })
    }
}

const COLUMNS: [Tenants; 5] = [
    Tenants::Id,
    Tenants::ProjectId,
    Tenants::Name,
    Tenants::CreatedAt,
    Tenants::UpdatedAt,
];

pub async fn load(tx: &mut Tx, project_id: &str, tenant_id: &str) -> ApiResult<TenantRow> {
    tx.fetch_optional(
        Query::select()
            .columns(COLUMNS)
            .from(Tenants::Table)
            .and_where(Expr::col(Tenants::ProjectId).eq(project_id))
            .and_where(Expr::col(Tenants::Id).eq(tenant_id)),
    )
    .await?
    .ok_or_else(|| ApiError::not_found("tenant"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NameBody {
    name: String,
}

async fn create(
    State(state): State<ControlState>,
    Path(project_id): Path<String>,
    http::Json(body): http::Json<NameBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let name = project_store::validate_name(&body.name)?;
    let mut tx = state.db.control().await?;
    let project = project_store::load(&mut tx, &project_id).await?;
    let now = now_ms();
    let row = TenantRow {
        id: new_id("ten"),
        project_id: project.id,
        name,
        created_at: now,
        updated_at: now,
    };
    tx.execute(
        Query::insert()
            .into_table(Tenants::Table)
            .columns(COLUMNS)
            .values_panic([
                row.id.clone().into(),
                row.project_id.clone().into(),
                row.name.clone().into(),
                now.into(),
                now.into(),
            ]),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(json!({"tenant": row.to_json()}))))
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
        .from(Tenants::Table)
        .and_where(Expr::col(Tenants::ProjectId).eq(&project.id));
    let page = params
        .fetch_page(&mut tx, q, Tenants::Id, false, |r: &TenantRow| r.id.clone())
        .await?;
    tx.commit().await?;
    Ok(Json(page.map(|r| r.to_json())))
}

async fn show(
    State(state): State<ControlState>,
    Path((project_id, tenant_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let mut tx = state.db.control().await?;
    let project = project_store::load(&mut tx, &project_id).await?;
    let row = load(&mut tx, &project.id, &tenant_id).await?;
    tx.commit().await?;
    Ok(Json(json!({"tenant": row.to_json()})))
}

async fn update(
    State(state): State<ControlState>,
    Path((project_id, tenant_id)): Path<(String, String)>,
    http::Json(body): http::Json<NameBody>,
) -> ApiResult<Json<Value>> {
    let name = project_store::validate_name(&body.name)?;
    let mut tx = state.db.control().await?;
    let project = project_store::load(&mut tx, &project_id).await?;
    let mut row = load(&mut tx, &project.id, &tenant_id).await?;
    row.name = name;
    row.updated_at = now_ms();
    tx.execute(
        Query::update()
            .table(Tenants::Table)
            .values([
                (Tenants::Name, row.name.clone().into()),
                (Tenants::UpdatedAt, row.updated_at.into()),
            ])
            .and_where(Expr::col(Tenants::ProjectId).eq(&project.id))
            .and_where(Expr::col(Tenants::Id).eq(&row.id)),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(json!({"tenant": row.to_json()})))
}

/// The tenant's rows beside the users (memberships, groups, invitations),
/// where they share this database (the default of one database; the data
/// plane's `DELETE /v1/tenants/{id}` also reaches a separate shard). The
/// cached views of sessions acting in the tenant reload on every node.
async fn delete_tenant_rows(
    tx: &mut identity_shared::db::Tx,
    project_id: &str,
    tenant_id: &str,
) -> Result<(), identity_shared::db::DbError> {
    use identity_shared::schema::Sessions;
    let sessions: Vec<(String,)> = tx
        .fetch_all(
            Query::select()
                .column(Sessions::Id)
                .from(Sessions::Table)
                .and_where(Expr::col(Sessions::ProjectId).eq(project_id))
                .and_where(Expr::col(Sessions::TenantId).eq(tenant_id))
                .and_where(Expr::col(Sessions::RevokedAt).is_null()),
        )
        .await?;
    for table in [
        "group_members",
        "tenant_groups",
        "invitations",
        "tenant_members",
    ] {
        tx.execute(
            Query::delete()
                .from_table(sea_query::Alias::new(table))
                .and_where(Expr::col(identity_shared::schema::ProjectId).eq(project_id))
                .and_where(Expr::col(sea_query::Alias::new("tenant_id")).eq(tenant_id)),
        )
        .await?;
    }
    if !sessions.is_empty() {
        tx.invalidate(identity_shared::invalidation::Invalidation::Sessions(
            sessions.into_iter().map(|(id,)| id).collect(),
        ))
        .await?;
    }
    Ok(())
}

async fn remove(
    State(state): State<ControlState>,
    Path((project_id, tenant_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let mut tx = state.db.control().await?;
    let project = project_store::load(&mut tx, &project_id).await?;
    let row = load(&mut tx, &project.id, &tenant_id).await?;
    // The data plane's lock on the tenant's memberships (one database).
    tx.lock_key(&format!("tenant:{}:{}", project.id, row.id))
        .await?;
    tx.execute(
        Query::delete()
            .from_table(TenantDomains::Table)
            .and_where(Expr::col(TenantDomains::ProjectId).eq(&project.id))
            .and_where(Expr::col(TenantDomains::TenantId).eq(&row.id)),
    )
    .await?;
    crate::tenant_sso::delete_for_tenant(&mut tx, &project.id, &row.id).await?;
    delete_tenant_rows(&mut tx, &project.id, &row.id).await?;
    // Its domains may have been enforced for SSO.
    tx.invalidate(identity_shared::invalidation::Invalidation::Project(
        project.id.clone(),
    ))
    .await?;
    tx.execute(
        Query::delete()
            .from_table(Tenants::Table)
            .and_where(Expr::col(Tenants::ProjectId).eq(&project.id))
            .and_where(Expr::col(Tenants::Id).eq(&row.id)),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
