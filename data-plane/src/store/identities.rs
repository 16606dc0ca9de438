//! Identities: a provider's subject linked to a user (one subject, one
//! user, per project).

use identity_shared::db::{DbError, Tx};
use identity_shared::ids::new_id;
use identity_shared::schema::Identities;
use sea_query::{Expr, ExprTrait, Order, Query};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IdentityRow {
    pub id: String,
    pub user_id: String,
    pub provider: String,
    pub provider_user_id: String,
    pub email: Option<String>,
    pub created_at: i64,
    /// The issuer that vouched for the subject (none for rows linked
    /// before it was kept).
    pub issuer: Option<String>,
}

const COLUMNS: [Identities; 7] = [
    Identities::Id,
    Identities::UserId,
    Identities::Provider,
    Identities::ProviderUserId,
    Identities::Email,
    Identities::CreatedAt,
    Identities::Issuer,
];

/// A subject to link.
pub struct NewIdentity<'a> {
    pub user_id: &'a str,
    pub provider: &'a str,
    pub subject: &'a str,
    pub issuer: Option<&'a str>,
    pub email: Option<&'a str>,
}

pub async fn find<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    provider: &str,
    subject: &str,
) -> Result<Option<IdentityRow>, DbError> {
    tx.fetch_optional(
        Query::select()
            .columns(COLUMNS)
            .from(Identities::Table)
            .and_where(Expr::col(Identities::ProjectId).eq(project_id))
            .and_where(Expr::col(Identities::Provider).eq(provider))
            .and_where(Expr::col(Identities::ProviderUserId).eq(subject)),
    )
    .await
}

pub async fn of_user<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    user_id: &str,
) -> Result<Vec<IdentityRow>, DbError> {
    tx.fetch_all(
        Query::select()
            .columns(COLUMNS)
            .from(Identities::Table)
            .and_where(Expr::col(Identities::ProjectId).eq(project_id))
            .and_where(Expr::col(Identities::UserId).eq(user_id))
            .order_by(Identities::CreatedAt, Order::Asc),
    )
    .await
}

/// Links the subject to the user; false when the subject is linked
/// already (to anyone: one subject, one user).
pub async fn link(
    tx: &mut Tx,
    project_id: &str,
    new: &NewIdentity<'_>,
    now: i64,
) -> Result<bool, DbError> {
    let done = tx
        .execute(
            Query::insert()
                .into_table(Identities::Table)
                .columns([
                    Identities::Id,
                    Identities::ProjectId,
                    Identities::UserId,
                    Identities::Provider,
                    Identities::ProviderUserId,
                    Identities::Email,
                    Identities::Issuer,
                    Identities::CreatedAt,
                    Identities::LastSignInAt,
                ])
                .values_panic([
                    new_id("idn").into(),
                    project_id.into(),
                    new.user_id.into(),
                    new.provider.into(),
                    new.subject.into(),
                    new.email.map(str::to_string).into(),
                    new.issuer.map(str::to_string).into(),
                    now.into(),
                    now.into(),
                ])
                .on_conflict(
                    sea_query::OnConflict::columns([
                        Identities::ProjectId,
                        Identities::Provider,
                        Identities::ProviderUserId,
                    ])
                    .do_nothing()
                    .to_owned(),
                ),
        )
        .await?;
    Ok(done == 1)
}

pub async fn signed_in(tx: &mut Tx, project_id: &str, id: &str, now: i64) -> Result<(), DbError> {
    tx.defer(
        Query::update()
            .table(Identities::Table)
            .value(Identities::LastSignInAt, now)
            .and_where(Expr::col(Identities::ProjectId).eq(project_id))
            .and_where(Expr::col(Identities::Id).eq(id)),
    )
    .await
}

/// Removes one of the user's identities; false when it is not theirs.
pub async fn unlink(
    tx: &mut Tx,
    project_id: &str,
    user_id: &str,
    id: &str,
) -> Result<bool, DbError> {
    let n = tx
        .execute(
            Query::delete()
                .from_table(Identities::Table)
                .and_where(Expr::col(Identities::ProjectId).eq(project_id))
                .and_where(Expr::col(Identities::UserId).eq(user_id))
                .and_where(Expr::col(Identities::Id).eq(id)),
        )
        .await?;
    Ok(n == 1)
}

/// Removes every identity of the user (an account reclaimed by its
/// address's owner keeps no one else's way in).
pub async fn unlink_all(tx: &mut Tx, project_id: &str, user_id: &str) -> Result<u64, DbError> {
    tx.execute(
        Query::delete()
            .from_table(Identities::Table)
            .and_where(Expr::col(Identities::ProjectId).eq(project_id))
            .and_where(Expr::col(Identities::UserId).eq(user_id)),
    )
    .await
}
