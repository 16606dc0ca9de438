//! Groups inside a tenant, and their members (who must belong to the
//! tenant).

use identity_shared::db::{DbError, Tx};
use identity_shared::schema::{GroupMembers, TenantGroups, Users};
use sea_query::{Expr, ExprTrait, OnConflict, Order, Query};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GroupRow {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: [TenantGroups; 4] = [
    TenantGroups::Id,
    TenantGroups::Name,
    TenantGroups::CreatedAt,
    TenantGroups::UpdatedAt,
];

/// Inserts a group; false when the tenant has one of that name.
pub async fn insert(
    tx: &mut Tx,
    project_id: &str,
    tenant_id: &str,
    id: &str,
    name: &str,
    now: i64,
) -> Result<bool, DbError> {
    let n = tx
        .execute(
            Query::insert()
                .into_table(TenantGroups::Table)
                .columns([
                    TenantGroups::Id,
                    TenantGroups::ProjectId,
                    TenantGroups::TenantId,
                    TenantGroups::Name,
                    TenantGroups::CreatedAt,
                    TenantGroups::UpdatedAt,
                ])
                .values_panic([
                    id.into(),
                    project_id.into(),
                    tenant_id.into(),
                    name.into(),
                    now.into(),
                    now.into(),
                ])
                .on_conflict(OnConflict::new().do_nothing().to_owned()),
        )
        .await?;
    Ok(n == 1)
}

pub async fn of_tenant<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    tenant_id: &str,
) -> Result<Vec<GroupRow>, DbError> {
    tx.fetch_all(
        Query::select()
            .columns(COLUMNS)
            .from(TenantGroups::Table)
            .and_where(Expr::col(TenantGroups::ProjectId).eq(project_id))
            .and_where(Expr::col(TenantGroups::TenantId).eq(tenant_id))
            .order_by(TenantGroups::Name, Order::Asc),
    )
    .await
}

pub async fn find<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    tenant_id: &str,
    id: &str,
) -> Result<Option<GroupRow>, DbError> {
    tx.fetch_optional(
        Query::select()
            .columns(COLUMNS)
            .from(TenantGroups::Table)
            .and_where(Expr::col(TenantGroups::ProjectId).eq(project_id))
            .and_where(Expr::col(TenantGroups::TenantId).eq(tenant_id))
            .and_where(Expr::col(TenantGroups::Id).eq(id)),
    )
    .await
}

/// Renames a group; `None` when the tenant has another of that name.
pub async fn rename(
    tx: &mut Tx,
    project_id: &str,
    id: &str,
    name: &str,
    now: i64,
) -> Result<Option<u64>, DbError> {
    match tx
        .execute(
            Query::update()
                .table(TenantGroups::Table)
                .values([
                    (TenantGroups::Name, name.into()),
                    (TenantGroups::UpdatedAt, now.into()),
                ])
                .and_where(Expr::col(TenantGroups::ProjectId).eq(project_id))
                .and_where(Expr::col(TenantGroups::Id).eq(id)),
        )
        .await
    {
        Ok(n) => Ok(Some(n)),
        Err(DbError::UniqueViolation(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Deletes groups: one (`group_id`), or every group of the tenant.
pub async fn delete(
    tx: &mut Tx,
    project_id: &str,
    tenant_id: &str,
    group_id: Option<&str>,
) -> Result<u64, DbError> {
    let mut members = Query::delete();
    members
        .from_table(GroupMembers::Table)
        .and_where(Expr::col(GroupMembers::ProjectId).eq(project_id))
        .and_where(Expr::col(GroupMembers::TenantId).eq(tenant_id));
    let mut groups = Query::delete();
    groups
        .from_table(TenantGroups::Table)
        .and_where(Expr::col(TenantGroups::ProjectId).eq(project_id))
        .and_where(Expr::col(TenantGroups::TenantId).eq(tenant_id));
    if let Some(id) = group_id {
        members.and_where(Expr::col(GroupMembers::GroupId).eq(id));
        groups.and_where(Expr::col(TenantGroups::Id).eq(id));
    }
    tx.execute(&members).await?;
    tx.execute(&groups).await
}

/// The group's members: `(user_id, email, name)`.
pub async fn members<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    group_id: &str,
) -> Result<Vec<(String, String, Option<String>)>, DbError> {
    tx.fetch_all(
        Query::select()
            .column((GroupMembers::Table, GroupMembers::UserId))
            .column((Users::Table, Users::Email))
            .column((Users::Table, Users::Name))
            .from(GroupMembers::Table)
            .inner_join(
                Users::Table,
                Expr::col((Users::Table, Users::Id))
                    .equals((GroupMembers::Table, GroupMembers::UserId)),
            )
            .and_where(Expr::col((Users::Table, Users::ProjectId)).eq(project_id))
            .and_where(Expr::col((GroupMembers::Table, GroupMembers::ProjectId)).eq(project_id))
            .and_where(Expr::col((GroupMembers::Table, GroupMembers::GroupId)).eq(group_id))
            .order_by((Users::Table, Users::Email), Order::Asc),
    )
    .await
}

pub async fn add_member(
    tx: &mut Tx,
    project_id: &str,
    tenant_id: &str,
    group_id: &str,
    user_id: &str,
    now: i64,
) -> Result<bool, DbError> {
    let n = tx
        .execute(
            Query::insert()
                .into_table(GroupMembers::Table)
                .columns([
                    GroupMembers::ProjectId,
                    GroupMembers::GroupId,
                    GroupMembers::TenantId,
                    GroupMembers::UserId,
                    GroupMembers::CreatedAt,
                ])
                .values_panic([
                    project_id.into(),
                    group_id.into(),
                    tenant_id.into(),
                    user_id.into(),
                    now.into(),
                ])
                .on_conflict(OnConflict::new().do_nothing().to_owned()),
        )
        .await?;
    Ok(n == 1)
}

/// Removes the user from one group, or (`group_id` none) from every group
/// of the tenant (they left it).
pub async fn remove_member(
    tx: &mut Tx,
    project_id: &str,
    tenant_id: &str,
    group_id: Option<&str>,
    user_id: &str,
) -> Result<u64, DbError> {
    let mut q = Query::delete();
    q.from_table(GroupMembers::Table)
        .and_where(Expr::col(GroupMembers::ProjectId).eq(project_id))
        .and_where(Expr::col(GroupMembers::TenantId).eq(tenant_id))
        .and_where(Expr::col(GroupMembers::UserId).eq(user_id));
    if let Some(id) = group_id {
        q.and_where(Expr::col(GroupMembers::GroupId).eq(id));
    }
    tx.execute(&q).await
}
