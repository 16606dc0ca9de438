//! Refresh tokens: stored as SHA-256, consumed with compare-and-set, each
//! naming its successor.

use identity_shared::db::{DbError, Tx};
use identity_shared::schema::RefreshTokens;
use identity_shared::time::now_ms;
use sea_query::{Expr, ExprTrait, Query};

// ---- refresh tokens ----

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefreshRow {
    pub id: String,
    pub session_id: String,
    pub token_hash: String,
    pub user_agent: Option<String>,
    pub expires_at: i64,
    pub consumed_at: Option<i64>,
    pub successor_id: Option<String>,
}

const COLUMNS: [RefreshTokens; 7] = [
    RefreshTokens::Id,
    RefreshTokens::SessionId,
    RefreshTokens::TokenHash,
    RefreshTokens::UserAgent,
    RefreshTokens::ExpiresAt,
    RefreshTokens::ConsumedAt,
    RefreshTokens::SuccessorId,
];

pub async fn insert(
    tx: &mut Tx,
    project_id: &str,
    id: &str,
    session_id: &str,
    token_hash: &str,
    user_agent: Option<&str>,
    expires_at: i64,
) -> Result<(), DbError> {
    tx.execute(
        Query::insert()
            .into_table(RefreshTokens::Table)
            .columns([
                RefreshTokens::Id,
                RefreshTokens::ProjectId,
                RefreshTokens::SessionId,
                RefreshTokens::TokenHash,
                RefreshTokens::UserAgent,
                RefreshTokens::CreatedAt,
                RefreshTokens::ExpiresAt,
            ])
            .values_panic([
                id.into(),
                project_id.into(),
                session_id.into(),
                token_hash.into(),
                user_agent.map(str::to_string).into(),
                now_ms().into(),
                expires_at.into(),
            ]),
    )
    .await?;
    Ok(())
}

pub async fn find_by_hash<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    token_hash: &str,
) -> Result<Option<RefreshRow>, DbError> {
    find_where(tx, project_id, RefreshTokens::TokenHash, token_hash).await
}

pub async fn find<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    id: &str,
) -> Result<Option<RefreshRow>, DbError> {
    find_where(tx, project_id, RefreshTokens::Id, id).await
}

async fn find_where<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    column: RefreshTokens,
    value: &str,
) -> Result<Option<RefreshRow>, DbError> {
    tx.fetch_optional(
        Query::select()
            .columns(COLUMNS)
            .from(RefreshTokens::Table)
            .and_where(Expr::col(RefreshTokens::ProjectId).eq(project_id))
            .and_where(Expr::col(column).eq(value)),
    )
    .await
}

/// Consumes an unconsumed, unexpired refresh token (compare-and-set) and
/// names its successor. Returns false when another request got there first.
pub async fn consume(
    tx: &mut Tx,
    project_id: &str,
    id: &str,
    successor_id: &str,
) -> Result<bool, DbError> {
    let now = now_ms();
    let n = tx
        .execute(
            Query::update()
                .table(RefreshTokens::Table)
                .values([
                    (RefreshTokens::ConsumedAt, now.into()),
                    (RefreshTokens::SuccessorId, successor_id.into()),
                ])
                .and_where(Expr::col(RefreshTokens::ProjectId).eq(project_id))
                .and_where(Expr::col(RefreshTokens::Id).eq(id))
                .and_where(Expr::col(RefreshTokens::ConsumedAt).is_null())
                .and_where(Expr::col(RefreshTokens::ExpiresAt).gt(now)),
        )
        .await?;
    Ok(n == 1)
}
