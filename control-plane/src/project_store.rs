//! The project row and the lookups every control-plane module needs:
//! their one shared dependency, so the modules that manage a project's keys,
//! domains and tenants never import each other.

use identity_shared::db::{DbError, Tx};
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::schema::Projects;
use identity_shared::settings::ProjectSettings;
use identity_shared::time::rfc3339;
use sea_query::{Expr, ExprTrait, Order, Query};
use serde_json::{Value, json};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProjectRow {
    pub id: String,
    pub name: String,
    pub status: String,
    pub shard_id: String,
    pub settings: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl ProjectRow {
    pub fn settings(&self) -> ProjectSettings {
        ProjectSettings::from_stored(&self.settings)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "shard_id": self.shard_id,
            "settings": self.settings(),
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        })
    }
}

pub const COLUMNS: [Projects; 7] = [
    Projects::Id,
    Projects::Name,
    Projects::Status,
    Projects::ShardId,
    Projects::Settings,
    Projects::CreatedAt,
    Projects::UpdatedAt,
];

/// Loads a project or answers 404.
pub async fn load(tx: &mut Tx, id: &str) -> ApiResult<ProjectRow> {
    if !identity_shared::ids::is_id("prj", id) {
        return Err(ApiError::not_found("project"));
    }
    tx.fetch_optional(
        Query::select()
            .columns(COLUMNS)
            .from(Projects::Table)
            .and_where(Expr::col(Projects::Id).eq(id)),
    )
    .await?
    .ok_or_else(|| ApiError::not_found("project"))
}

/// Every project, oldest first (the CLI's `project list`).
pub async fn list_all(db: &identity_shared::db::Db) -> Result<Vec<ProjectRow>, DbError> {
    let mut tx = db.control().await?;
    let rows = tx
        .fetch_all(
            Query::select()
                .columns(COLUMNS)
                .from(Projects::Table)
                .order_by(Projects::Id, Order::Asc),
        )
        .await?;
    tx.commit().await?;
    Ok(rows)
}

pub fn validate_name(name: &str) -> ApiResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::unprocessable(
            "invalid_name",
            "name must be 1 to 100 characters without control characters",
        ));
    }
    Ok(name.to_string())
}
