//! Account lockout (ADR 0004), counted in the database so every node sees
//! it: per (account, client address) 5 failed password checks in 15
//! minutes lock that pair for the rest of the window; across all
//! addresses, 50 lock the account for every address that has not signed in
//! to it in the last 30 days, while its owner's known addresses keep
//! working. Accounts are keyed by a hash of the canonical email, so unknown
//! emails behave exactly like known ones. Each evaluation is reserved
//! before hashing (see [`reserve`]).

use std::time::Duration;

use identity_shared::crypto::sha256_hex;
use identity_shared::db::{Db, DbError, Tx};
use identity_shared::ids::new_id;
use identity_shared::schema::{LoginFailures, Sessions};
use identity_shared::time::now_ms;
use sea_query::{Expr, ExprTrait, Order, Query};

use crate::request::client::ip_key;

/// A refused attempt and when to retry.
pub use crate::request::limits::TooMany;

pub const WINDOW_MS: i64 = 15 * 60 * 1000;

pub const PER_IP_FAILURES: usize = 5;

pub const PER_ACCOUNT_FAILURES: i64 = 50;

const KNOWN_IP_MS: i64 = 30 * 24 * 3600 * 1000;

/// The lockout key of an account: its project and normalised email, hashed.
pub fn account_key(project_id: &str, email_normalized: &str) -> String {
    sha256_hex(format!("{project_id}\n{email_normalized}").as_bytes())
}

/// A password evaluation reserved under the lockout policy: its row in
/// `login_failures` already counts as a failure, so concurrent guesses see
/// it before any hashing. Success deletes it (with the pair's failures);
/// failure leaves it; work that never evaluated the password releases it.
#[derive(Debug)]
pub struct Attempt {
    id: String,
    project_id: String,
    /// The account key (hash of project and normalised email).
    pub key: String,
    /// The client's address key (IPv4 address or IPv6 /64).
    pub ip_key: String,
    /// True when this attempt failing locks the (account, address) pair.
    pub locks_on_failure: bool,
}

/// Reserves one password evaluation for the account `key` from the client
/// address `ip_key`, or refuses it when the lockout policy blocks it.
/// Reservations of one account are serialised (an advisory lock on
/// Postgres, the write lock on SQLite), so however requests interleave, at
/// most [`PER_IP_FAILURES`] evaluations per (account, address) and
/// [`PER_ACCOUNT_FAILURES`] per account run in a window. `ip` (the full
/// address) decides whether the client is one of the owner's known ones.
pub async fn reserve(
    db: &Db,
    project_id: &str,
    key: &str,
    ip_key: &str,
    ip: &str,
    user_id: Option<&str>,
) -> Result<Result<Attempt, TooMany>, DbError> {
    let mut tx = db.scope(project_id).await?;
    let reserved = reserve_in(&mut tx, project_id, key, ip_key, ip, user_id).await?;
    if reserved.is_ok() {
        tx.commit().await?;
    }
    Ok(reserved)
}

/// [`reserve`] inside the caller's transaction, which must commit for the
/// reservation to count.
pub async fn reserve_in(
    tx: &mut Tx,
    project_id: &str,
    key: &str,
    ip_key: &str,
    ip: &str,
    user_id: Option<&str>,
) -> Result<Result<Attempt, TooMany>, DbError> {
    tx.lock_key(&format!("lockout:{project_id}:{key}")).await?;
    let now = now_ms();
    let locked_until = |recent: &[i64]| {
        // Locked until the oldest of the counted failures leaves the window.
        let oldest = recent.last().copied().unwrap_or(now);
        TooMany {
            retry_after: Duration::from_millis(std::cmp::max(oldest + WINDOW_MS - now, 1000) as u64),
        }
    };
    let recent = recent_failures(tx, project_id, key, Some(ip_key), PER_IP_FAILURES as u64).await?;
    if recent.len() >= PER_IP_FAILURES {
        return Ok(Err(locked_until(&recent)));
    }
    let total = recent_failures(tx, project_id, key, None, PER_ACCOUNT_FAILURES as u64).await?;
    if total.len() as i64 >= PER_ACCOUNT_FAILURES && !known_ip(tx, project_id, user_id, ip).await? {
        return Ok(Err(locked_until(&total)));
    }
    let id = new_id("lfl");
    tx.execute(
        Query::insert()
            .into_table(LoginFailures::Table)
            .columns([
                LoginFailures::Id,
                LoginFailures::ProjectId,
                LoginFailures::EmailKey,
                LoginFailures::Ip,
                LoginFailures::CreatedAt,
            ])
            .values_panic([
                id.clone().into(),
                project_id.into(),
                key.into(),
                ip_key.into(),
                now.into(),
            ]),
    )
    .await?;
    Ok(Ok(Attempt {
        id,
        project_id: project_id.to_string(),
        key: key.to_string(),
        ip_key: ip_key.to_string(),
        locks_on_failure: recent.len() + 1 == PER_IP_FAILURES,
    }))
}

/// Gives back a reservation whose password was never evaluated (the
/// hashing queue was full, the request failed before the check).
pub async fn release(db: &Db, attempt: &Attempt) -> Result<(), DbError> {
    let mut tx = db.scope(&attempt.project_id).await?;
    tx.execute(
        Query::delete()
            .from_table(LoginFailures::Table)
            .and_where(Expr::col(LoginFailures::ProjectId).eq(attempt.project_id.as_str()))
            .and_where(Expr::col(LoginFailures::Id).eq(attempt.id.as_str())),
    )
    .await?;
    tx.commit().await
}

/// A successful evaluation clears that (account, address) pair's
/// failures, this attempt's reservation included.
pub async fn succeeded(tx: &mut Tx, attempt: &Attempt) -> Result<(), DbError> {
    tx.defer(
        Query::delete()
            .from_table(LoginFailures::Table)
            .and_where(Expr::col(LoginFailures::ProjectId).eq(attempt.project_id.as_str()))
            .and_where(Expr::col(LoginFailures::EmailKey).eq(attempt.key.as_str()))
            .and_where(Expr::col(LoginFailures::Ip).eq(attempt.ip_key.as_str())),
    )
    .await?;
    Ok(())
}

/// Times of an account's failures in the window (from `ip` only, if given),
/// newest first, at most `limit`.
async fn recent_failures<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    key: &str,
    ip: Option<&str>,
    limit: u64,
) -> Result<Vec<i64>, DbError> {
    let mut q = Query::select();
    q.column(LoginFailures::CreatedAt)
        .from(LoginFailures::Table)
        .and_where(Expr::col(LoginFailures::ProjectId).eq(project_id))
        .and_where(Expr::col(LoginFailures::EmailKey).eq(key))
        .and_where(Expr::col(LoginFailures::CreatedAt).gt(now_ms() - WINDOW_MS))
        .order_by(LoginFailures::CreatedAt, Order::Desc)
        .limit(limit);
    if let Some(ip) = ip {
        q.and_where(Expr::col(LoginFailures::Ip).eq(ip));
    }
    let rows: Vec<(i64,)> = tx.fetch_all(&q).await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Whether the client's address (IPv6 by its /64, as lockouts count it)
/// started a session of this account in the last 30 days.
async fn known_ip<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    user_id: Option<&str>,
    ip: &str,
) -> Result<bool, DbError> {
    let Some(user_id) = user_id else {
        return Ok(false);
    };
    let Ok(ip) = ip.parse::<std::net::IpAddr>() else {
        return Ok(false);
    };
    let key = ip_key(ip);
    let recent: Vec<(Option<String>,)> = tx
        .fetch_all(
            Query::select()
                .column(Sessions::Ip)
                .from(Sessions::Table)
                .and_where(Expr::col(Sessions::ProjectId).eq(project_id))
                .and_where(Expr::col(Sessions::UserId).eq(user_id))
                .and_where(Expr::col(Sessions::CreatedAt).gt(now_ms() - KNOWN_IP_MS))
                .order_by(Sessions::Id, Order::Desc)
                .limit(500),
        )
        .await?;
    Ok(recent
        .iter()
        .filter_map(|(ip,)| ip.as_deref()?.parse::<std::net::IpAddr>().ok())
        .any(|ip| ip_key(ip) == key))
}
