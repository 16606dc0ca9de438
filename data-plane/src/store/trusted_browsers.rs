//! Trusted browsers: a browser that answered a second factor with
//! `remember_browser` skips the challenge while its token is live, for the
//! same user and user agent. Tokens are stored as SHA-256 hashes.

use identity_shared::db::{DbError, Tx};
use identity_shared::ids::new_id;
use identity_shared::schema::TrustedBrowsers;
use identity_shared::time::now_ms;
use sea_query::{Expr, ExprTrait, Query};

pub async fn create(
    tx: &mut Tx,
    project_id: &str,
    user_id: &str,
    token_hash: &str,
    user_agent: Option<&str>,
    ttl_seconds: u32,
) -> Result<(), DbError> {
    let now = now_ms();
    tx.execute(
        Query::insert()
            .into_table(TrustedBrowsers::Table)
            .columns([
                TrustedBrowsers::Id,
                TrustedBrowsers::ProjectId,
                TrustedBrowsers::UserId,
                TrustedBrowsers::TokenHash,
                TrustedBrowsers::UserAgent,
                TrustedBrowsers::CreatedAt,
                TrustedBrowsers::ExpiresAt,
            ])
            .values_panic([
                new_id("tbr").into(),
                project_id.into(),
                user_id.into(),
                token_hash.into(),
                user_agent.map(str::to_string).into(),
                now.into(),
                (now + i64::from(ttl_seconds) * 1000).into(),
            ]),
    )
    .await?;
    Ok(())
}

/// Whether the token with this hash is live for this user and user agent.
pub async fn is_trusted(
    tx: &mut Tx,
    project_id: &str,
    user_id: &str,
    token_hash: &str,
    user_agent: Option<&str>,
) -> Result<bool, DbError> {
    let row: Option<(Option<String>,)> = tx
        .fetch_optional(
            Query::select()
                .column(TrustedBrowsers::UserAgent)
                .from(TrustedBrowsers::Table)
                .and_where(Expr::col(TrustedBrowsers::ProjectId).eq(project_id))
                .and_where(Expr::col(TrustedBrowsers::UserId).eq(user_id))
                .and_where(Expr::col(TrustedBrowsers::TokenHash).eq(token_hash))
                .and_where(Expr::col(TrustedBrowsers::ExpiresAt).gt(now_ms())),
        )
        .await?;
    Ok(row.is_some_and(|(ua,)| ua.as_deref() == user_agent))
}

/// Forgets every browser the user trusted (password change, a factor
/// removed, revoke-all).
pub async fn forget_all(tx: &mut Tx, project_id: &str, user_id: &str) -> Result<u64, DbError> {
    tx.execute(
        Query::delete()
            .from_table(TrustedBrowsers::Table)
            .and_where(Expr::col(TrustedBrowsers::ProjectId).eq(project_id))
            .and_where(Expr::col(TrustedBrowsers::UserId).eq(user_id)),
    )
    .await
}
