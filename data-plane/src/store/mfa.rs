//! Second factors: a user's TOTP secret (sealed) with the last accepted
//! time step, their recovery codes (hashed) and the login challenges that
//! wait for a second factor (the `mfa_token`, hashed). Every single-use
//! thing is spent with a compare-and-set.

use identity_shared::db::{DbError, Tx};
use identity_shared::ids::new_id;
use identity_shared::schema::{MfaChallenges, MfaRecoveryCodes, MfaTotp};
use identity_shared::time::now_ms;
use sea_query::{Expr, ExprTrait, Query};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TotpRow {
    pub secret_sealed: String,
    pub confirmed_at: Option<i64>,
    pub last_step: Option<i64>,
    pub created_at: i64,
}

/// The user's TOTP factor, confirmed or pending.
pub async fn totp<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    user_id: &str,
) -> Result<Option<TotpRow>, DbError> {
    tx.fetch_optional(
        Query::select()
            .columns([
                MfaTotp::SecretSealed,
                MfaTotp::ConfirmedAt,
                MfaTotp::LastStep,
                MfaTotp::CreatedAt,
            ])
            .from(MfaTotp::Table)
            .and_where(Expr::col(MfaTotp::ProjectId).eq(project_id))
            .and_where(Expr::col(MfaTotp::UserId).eq(user_id)),
    )
    .await
}

/// Stores a pending (unconfirmed) secret, replacing a pending one; false
/// when the user already has a confirmed factor. The caller holds the
/// user's credentials lock (the one confirmation takes), so an enrollment
/// cannot undo a confirmation racing it.
pub async fn put_pending_totp(
    tx: &mut Tx,
    project_id: &str,
    user_id: &str,
    secret_sealed: &str,
) -> Result<bool, DbError> {
    if totp(tx, project_id, user_id)
        .await?
        .is_some_and(|t| t.confirmed_at.is_some())
    {
        return Ok(false);
    }
    delete_totp(tx, project_id, user_id).await?;
    tx.execute(
        Query::insert()
            .into_table(MfaTotp::Table)
            .columns([
                MfaTotp::ProjectId,
                MfaTotp::UserId,
                MfaTotp::SecretSealed,
                MfaTotp::CreatedAt,
            ])
            .values_panic([
                project_id.into(),
                user_id.into(),
                secret_sealed.into(),
                now_ms().into(),
            ]),
    )
    .await?;
    Ok(true)
}

/// What a code is checked against: the confirmed secret, or the pending one
/// that was read (so an enrollment replacing it meanwhile is not confirmed
/// by a code of the old secret).
pub enum StepOf<'a> {
    Confirmed,
    Pending { secret_sealed: &'a str },
}

/// Spends time step `step` of the user's secret: true only when no code of
/// that step or a later one was accepted before (a code works once). A
/// pending secret is confirmed by it.
pub async fn use_totp_step(
    tx: &mut Tx,
    project_id: &str,
    user_id: &str,
    step: i64,
    of: StepOf<'_>,
) -> Result<bool, DbError> {
    let mut q = Query::update();
    q.table(MfaTotp::Table)
        .value(MfaTotp::LastStep, step)
        .and_where(Expr::col(MfaTotp::ProjectId).eq(project_id))
        .and_where(Expr::col(MfaTotp::UserId).eq(user_id))
        .and_where(
            Expr::col(MfaTotp::LastStep)
                .is_null()
                .or(Expr::col(MfaTotp::LastStep).lt(step)),
        );
    match of {
        StepOf::Pending { secret_sealed } => {
            q.value(MfaTotp::ConfirmedAt, now_ms())
                .and_where(Expr::col(MfaTotp::ConfirmedAt).is_null())
                .and_where(Expr::col(MfaTotp::SecretSealed).eq(secret_sealed));
        }
        StepOf::Confirmed => {
            q.and_where(Expr::col(MfaTotp::ConfirmedAt).is_not_null());
        }
    }
    Ok(tx.execute(&q).await? == 1)
}

pub async fn delete_totp(tx: &mut Tx, project_id: &str, user_id: &str) -> Result<u64, DbError> {
    tx.execute(
        Query::delete()
            .from_table(MfaTotp::Table)
            .and_where(Expr::col(MfaTotp::ProjectId).eq(project_id))
            .and_where(Expr::col(MfaTotp::UserId).eq(user_id)),
    )
    .await
}

/// Replaces the user's recovery codes by these (hashes of the new codes).
pub async fn replace_recovery_codes(
    tx: &mut Tx,
    project_id: &str,
    user_id: &str,
    hashes: &[String],
) -> Result<(), DbError> {
    delete_recovery_codes(tx, project_id, user_id).await?;
    let now = now_ms();
    let mut insert = Query::insert();
    insert.into_table(MfaRecoveryCodes::Table).columns([
        MfaRecoveryCodes::Id,
        MfaRecoveryCodes::ProjectId,
        MfaRecoveryCodes::UserId,
        MfaRecoveryCodes::CodeHash,
        MfaRecoveryCodes::CreatedAt,
    ]);
    for hash in hashes {
        insert.values_panic([
            new_id("rec").into(),
            project_id.into(),
            user_id.into(),
            hash.as_str().into(),
            now.into(),
        ]);
    }
    tx.execute(&insert).await?;
    Ok(())
}

/// Spends the unused recovery code with this hash: false when there is none.
pub async fn use_recovery_code(
    tx: &mut Tx,
    project_id: &str,
    user_id: &str,
    hash: &str,
) -> Result<bool, DbError> {
    let n = tx
        .execute(
            Query::update()
                .table(MfaRecoveryCodes::Table)
                .value(MfaRecoveryCodes::UsedAt, now_ms())
                .and_where(Expr::col(MfaRecoveryCodes::ProjectId).eq(project_id))
                .and_where(Expr::col(MfaRecoveryCodes::UserId).eq(user_id))
                .and_where(Expr::col(MfaRecoveryCodes::CodeHash).eq(hash))
                .and_where(Expr::col(MfaRecoveryCodes::UsedAt).is_null()),
        )
        .await?;
    Ok(n == 1)
}

pub async fn recovery_codes_remaining<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    user_id: &str,
) -> Result<i64, DbError> {
    let rows: Vec<(String,)> = tx
        .fetch_all(
            Query::select()
                .column(MfaRecoveryCodes::Id)
                .from(MfaRecoveryCodes::Table)
                .and_where(Expr::col(MfaRecoveryCodes::ProjectId).eq(project_id))
                .and_where(Expr::col(MfaRecoveryCodes::UserId).eq(user_id))
                .and_where(Expr::col(MfaRecoveryCodes::UsedAt).is_null()),
        )
        .await?;
    Ok(rows.len() as i64)
}

pub async fn delete_recovery_codes(
    tx: &mut Tx,
    project_id: &str,
    user_id: &str,
) -> Result<u64, DbError> {
    tx.execute(
        Query::delete()
            .from_table(MfaRecoveryCodes::Table)
            .and_where(Expr::col(MfaRecoveryCodes::ProjectId).eq(project_id))
            .and_where(Expr::col(MfaRecoveryCodes::UserId).eq(user_id)),
    )
    .await
}

/// A first factor waiting for a second.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChallengeRow {
    pub id: String,
    pub user_id: String,
    pub first_factor: String,
    pub attempts: i32,
    pub expires_at: i64,
    pub consumed_at: Option<i64>,
}

/// Wrong answers a challenge survives.
pub const MAX_CHALLENGE_ATTEMPTS: i32 = 5;

pub async fn create_challenge(
    tx: &mut Tx,
    project_id: &str,
    token_hash: &str,
    user_id: &str,
    first_factor: &str,
    ttl_ms: i64,
) -> Result<(), DbError> {
    let now = now_ms();
    tx.execute(
        Query::insert()
            .into_table(MfaChallenges::Table)
            .columns([
                MfaChallenges::Id,
                MfaChallenges::ProjectId,
                MfaChallenges::TokenHash,
                MfaChallenges::UserId,
                MfaChallenges::FirstFactor,
                MfaChallenges::Attempts,
                MfaChallenges::ExpiresAt,
                MfaChallenges::CreatedAt,
            ])
            .values_panic([
                new_id("mfc").into(),
                project_id.into(),
                token_hash.into(),
                user_id.into(),
                first_factor.into(),
                0i32.into(),
                (now + ttl_ms).into(),
                now.into(),
            ]),
    )
    .await?;
    Ok(())
}

/// The challenge with this token hash, while it can still be answered
/// (unspent, unexpired, fewer than five wrong answers).
pub async fn open_challenge(
    tx: &mut Tx,
    project_id: &str,
    token_hash: &str,
) -> Result<Option<ChallengeRow>, DbError> {
    tx.fetch_optional(
        Query::select()
            .columns([
                MfaChallenges::Id,
                MfaChallenges::UserId,
                MfaChallenges::FirstFactor,
                MfaChallenges::Attempts,
                MfaChallenges::ExpiresAt,
                MfaChallenges::ConsumedAt,
            ])
            .from(MfaChallenges::Table)
            .and_where(Expr::col(MfaChallenges::ProjectId).eq(project_id))
            .and_where(Expr::col(MfaChallenges::TokenHash).eq(token_hash))
            .and_where(Expr::col(MfaChallenges::ConsumedAt).is_null())
            .and_where(Expr::col(MfaChallenges::ExpiresAt).gt(now_ms()))
            .and_where(Expr::col(MfaChallenges::Attempts).lt(MAX_CHALLENGE_ATTEMPTS)),
    )
    .await
}

/// Counts a wrong answer. Not a compare-and-set: answers racing on one
/// token all count, and each was also reserved under the lockout, whose
/// per-user bound caps how many run at once.
pub async fn fail_challenge(tx: &mut Tx, project_id: &str, id: &str) -> Result<(), DbError> {
    tx.execute(
        Query::update()
            .table(MfaChallenges::Table)
            .value(
                MfaChallenges::Attempts,
                Expr::col(MfaChallenges::Attempts).add(1),
            )
            .and_where(Expr::col(MfaChallenges::ProjectId).eq(project_id))
            .and_where(Expr::col(MfaChallenges::Id).eq(id)),
    )
    .await?;
    Ok(())
}

/// Spends the challenge: true for exactly one caller, while it is open.
pub async fn consume_challenge(tx: &mut Tx, project_id: &str, id: &str) -> Result<bool, DbError> {
    let now = now_ms();
    let n = tx
        .execute(
            Query::update()
                .table(MfaChallenges::Table)
                .value(MfaChallenges::ConsumedAt, now)
                .and_where(Expr::col(MfaChallenges::ProjectId).eq(project_id))
                .and_where(Expr::col(MfaChallenges::Id).eq(id))
                .and_where(Expr::col(MfaChallenges::ConsumedAt).is_null())
                .and_where(Expr::col(MfaChallenges::ExpiresAt).gt(now))
                .and_where(Expr::col(MfaChallenges::Attempts).lt(MAX_CHALLENGE_ATTEMPTS)),
        )
        .await?;
    Ok(n == 1)
}

/// Voids the user's outstanding challenges (a factor or the password
/// changed: a token issued before must not be answered after).
pub async fn delete_challenges(
    tx: &mut Tx,
    project_id: &str,
    user_id: &str,
) -> Result<(), DbError> {
    tx.execute(
        Query::delete()
            .from_table(MfaChallenges::Table)
            .and_where(Expr::col(MfaChallenges::ProjectId).eq(project_id))
            .and_where(Expr::col(MfaChallenges::UserId).eq(user_id)),
    )
    .await?;
    Ok(())
}

/// Removes everything second-factor of a user (disable, account recovery,
/// deletion).
pub async fn delete_all(tx: &mut Tx, project_id: &str, user_id: &str) -> Result<(), DbError> {
    delete_totp(tx, project_id, user_id).await?;
    delete_recovery_codes(tx, project_id, user_id).await?;
    delete_challenges(tx, project_id, user_id).await
}
