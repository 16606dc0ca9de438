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

/// Ends the memberships the user's email domain brought (source
/// `domain`); returns the tenants left.
pub async fn leave_domain_joined(
    tx: &mut Tx,
    project_id: &str,
    user_id: &str,
) -> Result<Vec<String>, DbError> {
    let rows: Vec<(String,)> = tx
        .returning(
            Query::delete()
                .from_table(TenantMembers::Table)
                .and_where(Expr::col(TenantMembers::ProjectId).eq(project_id))
                .and_where(Expr::col(TenantMembers::UserId).eq(user_id))
                .and_where(Expr::col(TenantMembers::Source).eq("domain"))
                .returning(Query::returning().column(TenantMembers::TenantId)),
        )
        .await?;
    Ok(rows.into_iter().map(|(t,)| t).collect())
}

/// The tenants the user belongs to, with roles.
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
            .and_where(Expr::col(TenantMembers::UserId).eq(user_id)),
    )
    .await
}
