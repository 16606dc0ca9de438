//! Tenants (organisations), in the control database: the rows the control
//! plane's tenant routes manage too.

use identity_shared::db::{DbError, Tx};
use identity_shared::schema::{OauthProviders, TenantDomains, Tenants};
use sea_query::{Expr, ExprTrait, Order, Query};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TenantRow {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: [Tenants; 4] = [
    Tenants::Id,
    Tenants::Name,
    Tenants::CreatedAt,
    Tenants::UpdatedAt,
];

pub async fn insert(
    tx: &mut Tx,
    project_id: &str,
    id: &str,
    name: &str,
    now: i64,
) -> Result<(), DbError> {
    tx.execute(
        Query::insert()
            .into_table(Tenants::Table)
            .columns([
                Tenants::Id,
                Tenants::ProjectId,
                Tenants::Name,
                Tenants::CreatedAt,
                Tenants::UpdatedAt,
            ])
            .values_panic([
                id.into(),
                project_id.into(),
                name.into(),
                now.into(),
                now.into(),
            ]),
    )
    .await?;
    Ok(())
}

pub async fn find<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    id: &str,
) -> Result<Option<TenantRow>, DbError> {
    tx.fetch_optional(
        Query::select()
            .columns(COLUMNS)
            .from(Tenants::Table)
            .and_where(Expr::col(Tenants::ProjectId).eq(project_id))
            .and_where(Expr::col(Tenants::Id).eq(id)),
    )
    .await
}

/// The tenants among `ids`, by name.
pub async fn find_many<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    ids: &[String],
) -> Result<Vec<TenantRow>, DbError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    tx.fetch_all(
        Query::select()
            .columns(COLUMNS)
            .from(Tenants::Table)
            .and_where(Expr::col(Tenants::ProjectId).eq(project_id))
            .and_where(Expr::col(Tenants::Id).is_in(ids.iter().cloned()))
            .order_by(Tenants::Name, Order::Asc)
            .order_by(Tenants::Id, Order::Asc),
    )
    .await
}

/// A page of the project's tenants, by id, after `after`.
pub async fn page<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<TenantRow>, DbError> {
    let mut q = Query::select();
    q.columns(COLUMNS)
        .from(Tenants::Table)
        .and_where(Expr::col(Tenants::ProjectId).eq(project_id))
        .order_by(Tenants::Id, Order::Asc)
        .limit(limit);
    if let Some(after) = after {
        q.and_where(Expr::col(Tenants::Id).gt(after));
    }
    tx.fetch_all(&q).await
}

pub async fn rename(
    tx: &mut Tx,
    project_id: &str,
    id: &str,
    name: &str,
    now: i64,
) -> Result<bool, DbError> {
    let n = tx
        .execute(
            Query::update()
                .table(Tenants::Table)
                .values([
                    (Tenants::Name, name.into()),
                    (Tenants::UpdatedAt, now.into()),
                ])
                .and_where(Expr::col(Tenants::ProjectId).eq(project_id))
                .and_where(Expr::col(Tenants::Id).eq(id)),
        )
        .await?;
    Ok(n == 1)
}

/// Deletes the tenant with its domains and SSO connection.
pub async fn delete(tx: &mut Tx, project_id: &str, id: &str) -> Result<bool, DbError> {
    tx.execute(
        Query::delete()
            .from_table(TenantDomains::Table)
            .and_where(Expr::col(TenantDomains::ProjectId).eq(project_id))
            .and_where(Expr::col(TenantDomains::TenantId).eq(id)),
    )
    .await?;
    tx.execute(
        Query::delete()
            .from_table(OauthProviders::Table)
            .and_where(Expr::col(OauthProviders::ProjectId).eq(project_id))
            .and_where(Expr::col(OauthProviders::TenantId).eq(id)),
    )
    .await?;
    let n = tx
        .execute(
            Query::delete()
                .from_table(Tenants::Table)
                .and_where(Expr::col(Tenants::ProjectId).eq(project_id))
                .and_where(Expr::col(Tenants::Id).eq(id)),
        )
        .await?;
    Ok(n == 1)
}
