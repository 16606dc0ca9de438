//! Deletes expired rows (sessions, refresh tokens, login failures, MFA
//! challenges, trusted browsers, passkey ceremonies, email and phone
//! codes, delivered messages after 30 days) for every
//! project on every shard, in bounded batches, so no tick holds a long lock.

use std::time::Duration;

use identity_shared::db::{Db, DbError};
use identity_shared::schema::{
    LoginFailures, MfaChallenges, OneTimeCodes, OutboxMessages, PasskeyCeremonies, RefreshTokens,
    Sessions, TrustedBrowsers,
};
use identity_shared::time::now_ms;
use sea_query::{Expr, ExprTrait, Query};

use crate::store::login_failures::WINDOW_MS;

/// How long delivered outbox messages stay listed.
const SENT_KEPT_MS: i64 = 30 * 86_400_000;
/// Rows deleted per table per batch.
pub const BATCH: u64 = 1000;
/// Batches per table per tick: the bound on one tick's work.
const BATCHES_PER_TICK: usize = 10;

/// One pass over `db`; returns how many rows it deleted.
pub async fn sweep(db: &Db) -> Result<u64, DbError> {
    let now = now_ms();
    let mut total = 0;
    for _ in 0..BATCHES_PER_TICK {
        let mut tx = db.control().await?;
        // Expired sessions take their refresh tokens with them (same expiry).
        let n = delete_batch(
            &mut tx,
            Sessions::Table,
            Sessions::Id,
            Sessions::ExpiresAt,
            now,
        )
        .await?
            + delete_batch(
                &mut tx,
                RefreshTokens::Table,
                RefreshTokens::Id,
                RefreshTokens::ExpiresAt,
                now,
            )
            .await?
            + delete_batch(
                &mut tx,
                LoginFailures::Table,
                LoginFailures::Id,
                LoginFailures::CreatedAt,
                now - WINDOW_MS,
            )
            .await?
            + delete_batch(
                &mut tx,
                MfaChallenges::Table,
                MfaChallenges::Id,
                MfaChallenges::ExpiresAt,
                now,
            )
            .await?
            + delete_batch(
                &mut tx,
                TrustedBrowsers::Table,
                TrustedBrowsers::Id,
                TrustedBrowsers::ExpiresAt,
                now,
            )
            .await?
            + delete_batch(
                &mut tx,
                PasskeyCeremonies::Table,
                PasskeyCeremonies::Id,
                PasskeyCeremonies::ExpiresAt,
                now,
            )
            .await?
            // Email and phone codes a day after they were written (none
            // lives longer): their wrong-guess counts make the daily budget
            // (`email::judge`), so they must outlive their expiry.
            + delete_batch(
                &mut tx,
                OneTimeCodes::Table,
                OneTimeCodes::Id,
                OneTimeCodes::CreatedAt,
                now - 86_400_000,
            )
            .await?
            // Delivered messages (payloads long erased) after 30 days; dead
            // ones stay until an operator deals with them.
            + delete_batch(
                &mut tx,
                OutboxMessages::Table,
                OutboxMessages::Id,
                OutboxMessages::SentAt,
                now - SENT_KEPT_MS,
            )
            .await?;
        tx.commit().await?;
        total += n;
        if n == 0 {
            break;
        }
    }
    Ok(total)
}

async fn delete_batch<T, C>(
    tx: &mut identity_shared::db::Tx,
    table: T,
    id: C,
    time: C,
    before: i64,
) -> Result<u64, DbError>
where
    T: sea_query::Iden + Copy + 'static,
    C: sea_query::Iden + Copy + 'static,
{
    tx.execute(
        Query::delete().from_table(table).and_where(
            Expr::col(id).in_subquery(
                Query::select()
                    .column(id)
                    .from(table)
                    .and_where(Expr::col(time).lt(before))
                    .limit(BATCH)
                    .take(),
            ),
        ),
    )
    .await
}

/// Sweeps every shard every `every` until the process ends.
pub fn spawn(shards: Vec<Db>, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if shards.iter().all(Db::is_closed) {
                return;
            }
            for db in &shards {
                match sweep(db).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(deleted = n, "sweeper"),
                    Err(e) => tracing::warn!(error = %e, "sweeper failed"),
                }
            }
        }
    });
}
