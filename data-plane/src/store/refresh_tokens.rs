//! Refresh tokens: stored as SHA-256, consumed with compare-and-set, each
//! naming its successor.

use identity_shared::db::{Db, DbError, Tx};
use identity_shared::schema::RefreshTokens;
use identity_shared::time::now_ms;
use sea_query::{Expr, ExprTrait, Query};
use sqlx::postgres::PgRow;

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
    tx.defer(
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

/// One refresh on Postgres, in one statement found by the token's hash:
/// consume the token (compare-and-set, only while it is unexpired and its
/// session live), touch the session, insert the successor and write the
/// `token.refreshed` audit row. One round trip instead of seven.
pub struct Rotation<'a> {
    pub project_id: &'a str,
    pub token_hash: &'a str,
    pub successor_id: &'a str,
    pub successor_hash: &'a str,
    pub ip: &'a str,
    pub user_agent: Option<&'a str>,
    pub audit_id: &'a str,
    pub now: i64,
    pub touch_every_ms: i64,
}

/// What a rotation answers, decoded by the caller (this module knows no
/// other table's rows): `touched` (whether it wrote the session's last-seen
/// facts), the renewed session's columns as `s_<column>` and its user's as
/// `u_<column>`, as they stood before the rotation.
pub trait Rotated: for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin {}
impl<T: for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin> Rotated for T {}

/// Postgres migration 0013's `identity_rotate_refresh_v3`: the statement,
/// with its own role switch and project scope, in one round trip.
const ROTATE_PG: &str =
    "SELECT * FROM identity_rotate_refresh_v3($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// The rotation inside `tx` (so the caller can still refuse and roll it
/// back). On Postgres, `Some` with the renewed session when the token was
/// consumed (`Some(None)`: it was not: unknown, consumed, expired or its
/// session ended; the caller finds out which); `None` on SQLite, whose
/// caller runs the steps one by one.
pub async fn rotate_pg<T: Rotated>(
    tx: &mut Tx,
    r: &Rotation<'_>,
) -> Result<Option<Option<T>>, DbError> {
    let Some(conn) = tx.pg_conn() else {
        return Ok(None);
    };
    Ok(Some(rotate_with(conn, r).await?))
}

/// The rotation on its own, committed when it returns: one round trip.
/// Answers as [`rotate_pg`] does.
pub async fn rotate_pg_alone<T: Rotated>(
    db: &Db,
    r: &Rotation<'_>,
) -> Result<Option<Option<T>>, DbError> {
    let Some(pool) = db.pg_pool() else {
        return Ok(None);
    };
    Ok(Some(rotate_with(pool, r).await?))
}

async fn rotate_with<'e, T: Rotated>(
    on: impl sqlx::PgExecutor<'e>,
    r: &Rotation<'_>,
) -> Result<Option<T>, DbError> {
    Ok(sqlx::query_as(ROTATE_PG)
        .bind(r.now)
        .bind(r.successor_id)
        .bind(r.project_id)
        .bind(r.token_hash)
        .bind(r.successor_hash)
        .bind(r.ip)
        .bind(r.user_agent)
        .bind(r.audit_id)
        .bind(r.touch_every_ms)
        .fetch_optional(on)
        .await?)
}
