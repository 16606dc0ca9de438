//! Single-use secrets of the email and phone flows: link tokens (stored as
//! SHA-256) and six-digit codes (stored as a keyed HMAC). Each row has a
//! purpose, an expiry and, for codes, a wrong-attempt count; it is
//! consumed with a compare-and-set, so it works once.

use identity_shared::db::{DbError, Tx};
use identity_shared::schema::OneTimeCodes;
use sea_query::{Expr, ExprTrait, Order, Query};

pub const VERIFY_EMAIL: &str = "verify_email";
pub const PASSWORD_RESET: &str = "password_reset";
pub const EMAIL_OTP: &str = "email_otp";
pub const MAGIC_LINK: &str = "magic_link";
pub const EMAIL_CHANGE: &str = "email_change";
pub const PHONE: &str = "phone";

pub struct NewCode<'a> {
    pub id: &'a str,
    pub project_id: &'a str,
    pub purpose: &'a str,
    pub user_id: Option<&'a str>,
    /// The canonical email the secret was sent to (or is about).
    pub email: Option<&'a str>,
    /// What the secret changes to or leads to (a new address, a phone
    /// number, a `redirect_to`).
    pub target: Option<&'a str>,
    pub token_hash: Option<&'a str>,
    pub code_hash: Option<&'a str>,
    pub data: Option<&'a str>,
    pub now: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CodeRow {
    pub id: String,
    pub purpose: String,
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub target: Option<String>,
    pub code_hash: Option<String>,
    pub attempts: i32,
    pub data: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub consumed_at: Option<i64>,
}

const COLUMNS: [OneTimeCodes; 11] = [
    OneTimeCodes::Id,
    OneTimeCodes::Purpose,
    OneTimeCodes::UserId,
    OneTimeCodes::Email,
    OneTimeCodes::Target,
    OneTimeCodes::CodeHash,
    OneTimeCodes::Attempts,
    OneTimeCodes::Data,
    OneTimeCodes::CreatedAt,
    OneTimeCodes::ExpiresAt,
    OneTimeCodes::ConsumedAt,
];

pub async fn insert(tx: &mut Tx, c: &NewCode<'_>) -> Result<(), DbError> {
    tx.defer(
        Query::insert()
            .into_table(OneTimeCodes::Table)
            .columns([
                OneTimeCodes::Id,
                OneTimeCodes::ProjectId,
                OneTimeCodes::Purpose,
                OneTimeCodes::UserId,
                OneTimeCodes::Email,
                OneTimeCodes::Target,
                OneTimeCodes::TokenHash,
                OneTimeCodes::CodeHash,
                OneTimeCodes::Attempts,
                OneTimeCodes::Data,
                OneTimeCodes::CreatedAt,
                OneTimeCodes::ExpiresAt,
            ])
            .values_panic([
                c.id.into(),
                c.project_id.into(),
                c.purpose.into(),
                c.user_id.map(str::to_string).into(),
                c.email.map(str::to_string).into(),
                c.target.map(str::to_string).into(),
                c.token_hash.map(str::to_string).into(),
                c.code_hash.map(str::to_string).into(),
                0i32.into(),
                c.data.map(str::to_string).into(),
                c.now.into(),
                c.expires_at.into(),
            ]),
    )
    .await
}

/// Ends every live secret of `purpose` for this user (or, without a user,
/// this email): a new one replaces them, and a reset or change voids the
/// rest.
pub async fn void(
    tx: &mut Tx,
    project_id: &str,
    purpose: &str,
    user_id: Option<&str>,
    email: Option<&str>,
    now: i64,
) -> Result<u64, DbError> {
    let mut q = Query::update();
    q.table(OneTimeCodes::Table)
        .value(OneTimeCodes::ConsumedAt, now)
        .and_where(Expr::col(OneTimeCodes::ProjectId).eq(project_id))
        .and_where(Expr::col(OneTimeCodes::Purpose).eq(purpose))
        .and_where(Expr::col(OneTimeCodes::ConsumedAt).is_null());
    match (user_id, email) {
        (Some(u), _) => q.and_where(Expr::col(OneTimeCodes::UserId).eq(u)),
        (None, Some(e)) => q.and_where(Expr::col(OneTimeCodes::Email).eq(e)),
        (None, None) => return Ok(0),
    };
    tx.execute(&q).await
}

/// Ends every live secret of the user, of every purpose (its sessions were
/// ended, or its account reclaimed: a pending email change must not
/// outlive them).
pub async fn void_all(
    tx: &mut Tx,
    project_id: &str,
    user_id: &str,
    now: i64,
) -> Result<u64, DbError> {
    tx.execute(
        Query::update()
            .table(OneTimeCodes::Table)
            .value(OneTimeCodes::ConsumedAt, now)
            .and_where(Expr::col(OneTimeCodes::ProjectId).eq(project_id))
            .and_where(Expr::col(OneTimeCodes::UserId).eq(user_id))
            .and_where(Expr::col(OneTimeCodes::ConsumedAt).is_null()),
    )
    .await
}

/// The live row of `purpose` whose link token has this hash.
pub async fn find_by_token<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    purpose: &str,
    token_hash: &str,
    now: i64,
) -> Result<Option<CodeRow>, DbError> {
    tx.fetch_optional(
        Query::select()
            .columns(COLUMNS)
            .from(OneTimeCodes::Table)
            .and_where(Expr::col(OneTimeCodes::ProjectId).eq(project_id))
            .and_where(Expr::col(OneTimeCodes::Purpose).eq(purpose))
            .and_where(Expr::col(OneTimeCodes::TokenHash).eq(token_hash))
            .and_where(Expr::col(OneTimeCodes::ConsumedAt).is_null())
            .and_where(Expr::col(OneTimeCodes::ExpiresAt).gt(now)),
    )
    .await
}

/// The newest live code of `purpose` for this user, or (without a user)
/// this email.
pub async fn latest_code<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    purpose: &str,
    user_id: Option<&str>,
    email: Option<&str>,
    now: i64,
) -> Result<Option<CodeRow>, DbError> {
    let mut q = Query::select();
    q.columns(COLUMNS)
        .from(OneTimeCodes::Table)
        .and_where(Expr::col(OneTimeCodes::ProjectId).eq(project_id))
        .and_where(Expr::col(OneTimeCodes::Purpose).eq(purpose))
        .and_where(Expr::col(OneTimeCodes::CodeHash).is_not_null())
        .and_where(Expr::col(OneTimeCodes::ConsumedAt).is_null())
        .and_where(Expr::col(OneTimeCodes::ExpiresAt).gt(now))
        .order_by(OneTimeCodes::CreatedAt, Order::Desc)
        .limit(1);
    match (user_id, email) {
        (Some(u), _) => q.and_where(Expr::col(OneTimeCodes::UserId).eq(u)),
        (None, Some(e)) => q.and_where(Expr::col(OneTimeCodes::Email).eq(e)),
        (None, None) => return Ok(None),
    };
    tx.fetch_optional(&q).await
}

/// Wrong codes of `purpose` counted for this user (or, without a user,
/// this email) on rows created since `since`: the budget across codes,
/// which new codes do not reset.
pub async fn failures_since<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    purpose: &str,
    user_id: Option<&str>,
    email: Option<&str>,
    since: i64,
) -> Result<i64, DbError> {
    let mut q = Query::select();
    q.expr(Expr::col(OneTimeCodes::Attempts).sum())
        .from(OneTimeCodes::Table)
        .and_where(Expr::col(OneTimeCodes::ProjectId).eq(project_id))
        .and_where(Expr::col(OneTimeCodes::Purpose).eq(purpose))
        .and_where(Expr::col(OneTimeCodes::CreatedAt).gte(since));
    match (user_id, email) {
        (Some(u), _) => q.and_where(Expr::col(OneTimeCodes::UserId).eq(u)),
        (None, Some(e)) => q.and_where(Expr::col(OneTimeCodes::Email).eq(e)),
        (None, None) => return Ok(0),
    };
    let (n,): (Option<i64>,) = tx.fetch_optional(&q).await?.unwrap_or((None,));
    Ok(n.unwrap_or(0))
}

/// Secrets of `purpose` issued to this user since `since` (the per-user
/// SMS cap).
pub async fn issued_since<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    purpose: &str,
    user_id: &str,
    since: i64,
) -> Result<i64, DbError> {
    let (n,): (i64,) = tx
        .fetch_optional(
            Query::select()
                .expr(Expr::col(OneTimeCodes::Id).count())
                .from(OneTimeCodes::Table)
                .and_where(Expr::col(OneTimeCodes::ProjectId).eq(project_id))
                .and_where(Expr::col(OneTimeCodes::Purpose).eq(purpose))
                .and_where(Expr::col(OneTimeCodes::UserId).eq(user_id))
                .and_where(Expr::col(OneTimeCodes::CreatedAt).gte(since)),
        )
        .await?
        .unwrap_or((0,));
    Ok(n)
}

/// Consumes a live row (compare-and-set): false when it was consumed or
/// expired meanwhile.
pub async fn consume(tx: &mut Tx, project_id: &str, id: &str, now: i64) -> Result<bool, DbError> {
    let n = tx
        .execute(
            Query::update()
                .table(OneTimeCodes::Table)
                .value(OneTimeCodes::ConsumedAt, now)
                .and_where(Expr::col(OneTimeCodes::ProjectId).eq(project_id))
                .and_where(Expr::col(OneTimeCodes::Id).eq(id))
                .and_where(Expr::col(OneTimeCodes::ConsumedAt).is_null())
                .and_where(Expr::col(OneTimeCodes::ExpiresAt).gt(now)),
        )
        .await?;
    Ok(n == 1)
}

/// Counts a wrong code (compare-and-set on the count seen); the row dies
/// (is consumed) at `max_attempts`. False when the row changed meanwhile.
pub async fn wrong_attempt(
    tx: &mut Tx,
    project_id: &str,
    row: &CodeRow,
    max_attempts: i32,
    now: i64,
) -> Result<bool, DbError> {
    let attempts = row.attempts + 1;
    let mut q = Query::update();
    q.table(OneTimeCodes::Table)
        .value(OneTimeCodes::Attempts, attempts)
        .and_where(Expr::col(OneTimeCodes::ProjectId).eq(project_id))
        .and_where(Expr::col(OneTimeCodes::Id).eq(&row.id))
        .and_where(Expr::col(OneTimeCodes::Attempts).eq(row.attempts))
        .and_where(Expr::col(OneTimeCodes::ConsumedAt).is_null());
    if attempts >= max_attempts {
        q.value(OneTimeCodes::ConsumedAt, now);
    }
    Ok(tx.execute(&q).await? == 1)
}
