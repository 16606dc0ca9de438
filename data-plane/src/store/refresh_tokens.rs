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

/// One refresh, on Postgres in one statement: consume the token
/// (compare-and-set), insert its successor, touch the session and write the
/// `token.refreshed` audit row. One round trip instead of four.
pub struct Rotation<'a> {
    pub project_id: &'a str,
    pub token_id: &'a str,
    pub successor_id: &'a str,
    pub successor_hash: &'a str,
    pub expires_at: i64,
    pub ip: &'a str,
    pub user_agent: Option<&'a str>,
    pub user_id: &'a str,
    pub audit_id: &'a str,
    pub audit_data: &'a str,
}

const ROTATE_PG: &str = "\
WITH c AS (
    UPDATE refresh_tokens SET consumed_at = $1, successor_id = $2
     WHERE project_id = $3 AND id = $4 AND consumed_at IS NULL AND expires_at > $1
    RETURNING session_id
), n AS (
    INSERT INTO refresh_tokens (id, project_id, session_id, token_hash, user_agent, created_at, expires_at)
    SELECT $2, $3, c.session_id, $5, $6, $1, $7 FROM c
    RETURNING session_id
), t AS (
    UPDATE sessions SET last_seen_at = $1, ip = $8, user_agent = $6
     WHERE project_id = $3 AND id IN (SELECT session_id FROM n)
)
INSERT INTO audit_events (id, project_id, type, actor, subject, ip, user_agent, outcome, created_at, data)
SELECT $9, $3, 'token.refreshed', $10, $10, $8, $6, 'success', $1, $11 FROM n
RETURNING id";

/// `Some(consumed)` on Postgres (false: another request consumed the token
/// first); `None` on SQLite, whose caller runs the steps one by one.
pub async fn rotate_pg(tx: &mut Tx, r: &Rotation<'_>) -> Result<Option<bool>, DbError> {
    let Some(conn) = tx.pg_conn() else {
        return Ok(None);
    };
    let row: Option<(String,)> = sqlx::query_as(ROTATE_PG)
        .bind(now_ms())
        .bind(r.successor_id)
        .bind(r.project_id)
        .bind(r.token_id)
        .bind(r.successor_hash)
        .bind(r.user_agent)
        .bind(r.expires_at)
        .bind(r.ip)
        .bind(r.audit_id)
        .bind(r.user_id)
        .bind(r.audit_data)
        .fetch_optional(conn)
        .await?;
    Ok(Some(row.is_some()))
}
