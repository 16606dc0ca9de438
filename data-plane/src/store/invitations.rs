//! Invitations to join a tenant (in the project's shard, with the users).
//! The token is stored as its SHA-256; a pending invitation is unique per
//! (tenant, address).

use identity_shared::db::{DbError, Tx};
use identity_shared::schema::Invitations;
use sea_query::{Expr, ExprTrait, Order, Query};

pub const PENDING: &str = "pending";
pub const ACCEPTED: &str = "accepted";
pub const REVOKED: &str = "revoked";
pub const EXPIRED: &str = "expired";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvitationRow {
    pub id: String,
    pub tenant_id: String,
    pub email: String,
    pub email_normalized: String,
    pub role: String,
    pub inviter_id: Option<String>,
    pub inviter_name: String,
    pub status: String,
    pub created_at: i64,
    pub expires_at: i64,
}

const COLUMNS: [Invitations; 10] = [
    Invitations::Id,
    Invitations::TenantId,
    Invitations::Email,
    Invitations::EmailNormalized,
    Invitations::Role,
    Invitations::InviterId,
    Invitations::InviterName,
    Invitations::Status,
    Invitations::CreatedAt,
    Invitations::ExpiresAt,
];

pub struct NewInvitation<'a> {
    pub id: &'a str,
    pub tenant_id: &'a str,
    pub email: &'a str,
    pub email_normalized: &'a str,
    pub role: &'a str,
    pub token_hash: &'a str,
    pub inviter_id: Option<&'a str>,
    pub inviter_name: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

/// Ends the tenant's pending invitations that have expired (so a new one
/// to the same address may be made).
pub async fn expire(
    tx: &mut Tx,
    project_id: &str,
    tenant_id: &str,
    now: i64,
) -> Result<(), DbError> {
    tx.execute(
        Query::update()
            .table(Invitations::Table)
            .value(Invitations::Status, EXPIRED)
            .and_where(Expr::col(Invitations::ProjectId).eq(project_id))
            .and_where(Expr::col(Invitations::TenantId).eq(tenant_id))
            .and_where(Expr::col(Invitations::Status).eq(PENDING))
            .and_where(Expr::col(Invitations::ExpiresAt).lte(now)),
    )
    .await?;
    Ok(())
}

/// Inserts a pending invitation; false when one is pending already for
/// the address.
pub async fn insert(tx: &mut Tx, project_id: &str, i: &NewInvitation<'_>) -> Result<bool, DbError> {
    let n = tx
        .execute(
            Query::insert()
                .into_table(Invitations::Table)
                .columns([
                    Invitations::Id,
                    Invitations::ProjectId,
                    Invitations::TenantId,
                    Invitations::Email,
                    Invitations::EmailNormalized,
                    Invitations::Role,
                    Invitations::TokenHash,
                    Invitations::InviterId,
                    Invitations::InviterName,
                    Invitations::Status,
                    Invitations::CreatedAt,
                    Invitations::ExpiresAt,
                ])
                .values_panic([
                    i.id.into(),
                    project_id.into(),
                    i.tenant_id.into(),
                    i.email.into(),
                    i.email_normalized.into(),
                    i.role.into(),
                    i.token_hash.into(),
                    i.inviter_id.map(str::to_string).into(),
                    i.inviter_name.into(),
                    PENDING.into(),
                    i.now.into(),
                    i.expires_at.into(),
                ])
                .on_conflict(sea_query::OnConflict::new().do_nothing().to_owned()),
        )
        .await?;
    Ok(n == 1)
}

pub async fn find<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    tenant_id: &str,
    id: &str,
) -> Result<Option<InvitationRow>, DbError> {
    tx.fetch_optional(
        Query::select()
            .columns(COLUMNS)
            .from(Invitations::Table)
            .and_where(Expr::col(Invitations::ProjectId).eq(project_id))
            .and_where(Expr::col(Invitations::TenantId).eq(tenant_id))
            .and_where(Expr::col(Invitations::Id).eq(id)),
    )
    .await
}

/// The pending, unexpired invitation whose token hashes to `token_hash`.
pub async fn find_by_token<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    token_hash: &str,
    now: i64,
) -> Result<Option<InvitationRow>, DbError> {
    tx.fetch_optional(
        Query::select()
            .columns(COLUMNS)
            .from(Invitations::Table)
            .and_where(Expr::col(Invitations::ProjectId).eq(project_id))
            .and_where(Expr::col(Invitations::TokenHash).eq(token_hash))
            .and_where(Expr::col(Invitations::Status).eq(PENDING))
            .and_where(Expr::col(Invitations::ExpiresAt).gt(now)),
    )
    .await
}

/// The tenant's pending invitations, newest first.
pub async fn pending<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    tenant_id: &str,
    now: i64,
) -> Result<Vec<InvitationRow>, DbError> {
    tx.fetch_all(
        Query::select()
            .columns(COLUMNS)
            .from(Invitations::Table)
            .and_where(Expr::col(Invitations::ProjectId).eq(project_id))
            .and_where(Expr::col(Invitations::TenantId).eq(tenant_id))
            .and_where(Expr::col(Invitations::Status).eq(PENDING))
            .and_where(Expr::col(Invitations::ExpiresAt).gt(now))
            .order_by(Invitations::CreatedAt, Order::Desc),
    )
    .await
}

/// Moves a pending invitation to `status` (compare-and-set: true once).
pub async fn finish(
    tx: &mut Tx,
    project_id: &str,
    id: &str,
    status: &str,
    by: Option<&str>,
    now: i64,
) -> Result<bool, DbError> {
    let n = tx
        .execute(
            Query::update()
                .table(Invitations::Table)
                .values([
                    (Invitations::Status, status.into()),
                    (Invitations::AcceptedAt, now.into()),
                    (Invitations::AcceptedBy, by.map(str::to_string).into()),
                ])
                .and_where(Expr::col(Invitations::ProjectId).eq(project_id))
                .and_where(Expr::col(Invitations::Id).eq(id))
                .and_where(Expr::col(Invitations::Status).eq(PENDING)),
        )
        .await?;
    Ok(n == 1)
}

/// Revokes every pending invitation to a tenant (it is being deleted).
pub async fn revoke_all(
    tx: &mut Tx,
    project_id: &str,
    tenant_id: &str,
    now: i64,
) -> Result<u64, DbError> {
    tx.execute(
        Query::update()
            .table(Invitations::Table)
            .values([
                (Invitations::Status, REVOKED.into()),
                (Invitations::AcceptedAt, now.into()),
            ])
            .and_where(Expr::col(Invitations::ProjectId).eq(project_id))
            .and_where(Expr::col(Invitations::TenantId).eq(tenant_id))
            .and_where(Expr::col(Invitations::Status).eq(PENDING)),
    )
    .await
}

/// A new token and expiry for a pending invitation (resend).
pub async fn renew(
    tx: &mut Tx,
    project_id: &str,
    id: &str,
    token_hash: &str,
    expires_at: i64,
) -> Result<bool, DbError> {
    let n = tx
        .execute(
            Query::update()
                .table(Invitations::Table)
                .values([
                    (Invitations::TokenHash, token_hash.into()),
                    (Invitations::ExpiresAt, expires_at.into()),
                ])
                .and_where(Expr::col(Invitations::ProjectId).eq(project_id))
                .and_where(Expr::col(Invitations::Id).eq(id))
                .and_where(Expr::col(Invitations::Status).eq(PENDING)),
        )
        .await?;
    Ok(n == 1)
}
