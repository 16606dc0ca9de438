//! Tenant memberships, and the tenants a verified email joins by its
//! domain (the tenant routes come with the tenants capability; the
//! auto-join stores memberships now).

use identity_shared::db::{DbError, Tx};
use identity_shared::ids::new_id;
use identity_shared::schema::{TenantDomains, TenantMembers, Tenants};
use sea_query::{Expr, ExprTrait, OnConflict, Query};

/// The tenants of the project with a verified domain equal to `domain`,
/// and the role their auto-joiners get (`member` unless set).
pub async fn auto_join_targets<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    domain: &str,
) -> Result<Vec<(String, String)>, DbError> {
    let rows: Vec<(String, Option<String>)> = tx
        .fetch_all(
            Query::select()
                .column((Tenants::Table, Tenants::Id))
                .column((Tenants::Table, Tenants::AutoJoinRole))
                .from(TenantDomains::Table)
                .inner_join(
                    Tenants::Table,
                    Expr::col((Tenants::Table, Tenants::Id))
                        .equals((TenantDomains::Table, TenantDomains::TenantId)),
                )
                .and_where(
                    Expr::col((TenantDomains::Table, TenantDomains::ProjectId)).eq(project_id),
                )
                .and_where(Expr::col((Tenants::Table, Tenants::ProjectId)).eq(project_id))
                .and_where(Expr::col((TenantDomains::Table, TenantDomains::Domain)).eq(domain))
                .and_where(Expr::col((TenantDomains::Table, TenantDomains::Verified)).eq(true)),
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, role)| (id, role.unwrap_or_else(|| "member".into())))
        .collect())
}

/// Adds the user to the tenant unless already a member; true when added.
pub async fn join(
    tx: &mut Tx,
    project_id: &str,
    tenant_id: &str,
    user_id: &str,
    role: &str,
    source: &str,
    now: i64,
) -> Result<bool, DbError> {
    let n = tx
        .execute(
            Query::insert()
                .into_table(TenantMembers::Table)
                .columns([
                    TenantMembers::Id,
                    TenantMembers::ProjectId,
                    TenantMembers::TenantId,
                    TenantMembers::UserId,
                    TenantMembers::Role,
                    TenantMembers::Source,
                    TenantMembers::CreatedAt,
                    TenantMembers::UpdatedAt,
                ])
                .values_panic([
                    new_id("mem").into(),
                    project_id.into(),
                    tenant_id.into(),
                    user_id.into(),
                    role.into(),
                    source.into(),
                    now.into(),
                    now.into(),
                ])
                .on_conflict(
                    OnConflict::columns([
                        TenantMembers::ProjectId,
                        TenantMembers::TenantId,
                        TenantMembers::UserId,
                    ])
                    .do_nothing()
                    .to_owned(),
                ),
        )
        .await?;
    Ok(n == 1)
}

/// The tenants the user's email domain brought them into (source
/// `domain`), sorted.
pub async fn domain_joined<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    user_id: &str,
) -> Result<Vec<String>, DbError> {
    let rows: Vec<(String,)> = tx
        .fetch_all(
            Query::select()
                .column(TenantMembers::TenantId)
                .from(TenantMembers::Table)
                .and_where(Expr::col(TenantMembers::ProjectId).eq(project_id))
                .and_where(Expr::col(TenantMembers::UserId).eq(user_id))
                .and_where(Expr::col(TenantMembers::Source).eq("domain"))
                .order_by(TenantMembers::TenantId, sea_query::Order::Asc),
        )
        .await?;
    Ok(rows.into_iter().map(|(t,)| t).collect())
}

/// The tenants the user belongs to, with roles, by tenant id.
pub async fn of_user<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    user_id: &str,
) -> Result<Vec<(String, String)>, DbError> {
    tx.fetch_all(
        Query::select()
            .columns([TenantMembers::TenantId, TenantMembers::Role])
            .from(TenantMembers::Table)
            .and_where(Expr::col(TenantMembers::ProjectId).eq(project_id))
            .and_where(Expr::col(TenantMembers::UserId).eq(user_id))
            .order_by(TenantMembers::TenantId, sea_query::Order::Asc),
    )
    .await
}

/// A member of a tenant, with what the members list shows of the user.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberRow {
    pub user_id: String,
    pub email: String,
    pub name: Option<String>,
    pub role: String,
    pub source: String,
    pub created_at: i64,
}

fn member_query(project_id: &str, tenant_id: &str) -> sea_query::SelectStatement {
    use identity_shared::schema::Users;
    Query::select()
        .column((TenantMembers::Table, TenantMembers::UserId))
        .column((Users::Table, Users::Email))
        .column((Users::Table, Users::Name))
        .column((TenantMembers::Table, TenantMembers::Role))
        .column((TenantMembers::Table, TenantMembers::Source))
        .column((TenantMembers::Table, TenantMembers::CreatedAt))
        .from(TenantMembers::Table)
        .inner_join(
            Users::Table,
            Expr::col((Users::Table, Users::Id))
                .equals((TenantMembers::Table, TenantMembers::UserId)),
        )
        .and_where(Expr::col((Users::Table, Users::ProjectId)).eq(project_id))
        .and_where(Expr::col((TenantMembers::Table, TenantMembers::ProjectId)).eq(project_id))
        .and_where(Expr::col((TenantMembers::Table, TenantMembers::TenantId)).eq(tenant_id))
        .to_owned()
}

/// One member of the tenant.
pub async fn find<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    tenant_id: &str,
    user_id: &str,
) -> Result<Option<MemberRow>, DbError> {
    tx.fetch_optional(
        member_query(project_id, tenant_id)
            .and_where(Expr::col((TenantMembers::Table, TenantMembers::UserId)).eq(user_id)),
    )
    .await
}

/// The tenant's members, oldest first.
pub async fn of_tenant<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    tenant_id: &str,
) -> Result<Vec<MemberRow>, DbError> {
    tx.fetch_all(
        member_query(project_id, tenant_id)
            .order_by(
                (TenantMembers::Table, TenantMembers::CreatedAt),
                sea_query::Order::Asc,
            )
            .order_by(
                (TenantMembers::Table, TenantMembers::UserId),
                sea_query::Order::Asc,
            ),
    )
    .await
}

/// How many owners the tenant has (whose accounts exist).
pub async fn owners<M>(tx: &mut Tx<M>, project_id: &str, tenant_id: &str) -> Result<i64, DbError> {
    let row: Option<(i64,)> = tx
        .fetch_optional(
            member_query(project_id, tenant_id)
                .clear_selects()
                .expr(Expr::col((TenantMembers::Table, TenantMembers::UserId)).count())
                .and_where(Expr::col((TenantMembers::Table, TenantMembers::Role)).eq("owner")),
        )
        .await?;
    Ok(row.map_or(0, |r| r.0))
}

pub async fn set_role(
    tx: &mut Tx,
    project_id: &str,
    tenant_id: &str,
    user_id: &str,
    role: &str,
    now: i64,
) -> Result<bool, DbError> {
    let n = tx
        .execute(
            Query::update()
                .table(TenantMembers::Table)
                .values([
                    (TenantMembers::Role, role.into()),
                    (TenantMembers::UpdatedAt, now.into()),
                ])
                .and_where(Expr::col(TenantMembers::ProjectId).eq(project_id))
                .and_where(Expr::col(TenantMembers::TenantId).eq(tenant_id))
                .and_where(Expr::col(TenantMembers::UserId).eq(user_id)),
        )
        .await?;
    Ok(n == 1)
}

pub async fn remove(
    tx: &mut Tx,
    project_id: &str,
    tenant_id: &str,
    user_id: &str,
) -> Result<bool, DbError> {
    let n = tx
        .execute(
            Query::delete()
                .from_table(TenantMembers::Table)
                .and_where(Expr::col(TenantMembers::ProjectId).eq(project_id))
                .and_where(Expr::col(TenantMembers::TenantId).eq(tenant_id))
                .and_where(Expr::col(TenantMembers::UserId).eq(user_id)),
        )
        .await?;
    Ok(n == 1)
}

/// Every membership of a deleted tenant.
pub async fn remove_tenant(tx: &mut Tx, project_id: &str, tenant_id: &str) -> Result<u64, DbError> {
    tx.execute(
        Query::delete()
            .from_table(TenantMembers::Table)
            .and_where(Expr::col(TenantMembers::ProjectId).eq(project_id))
            .and_where(Expr::col(TenantMembers::TenantId).eq(tenant_id)),
    )
    .await
}
