//! Sessions: one row per sign-in. Revoking queues
//! `Invalidation::Sessions` on the same transaction, so every node's
//! session cache drops the entries when it commits.

use identity_shared::db::{DbError, Tx};
use identity_shared::ids::new_id;
use identity_shared::invalidation::Invalidation;
use identity_shared::schema::Sessions;
use identity_shared::time::now_ms;
use sea_query::{Expr, ExprTrait, Order, Query};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub id: String,
    pub project_id: String,
    pub user_id: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub amr: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// When the session last proved a factor (its sign-in, `mfa/verify` or
    /// `reauthenticate`): step-up is judged from it.
    pub verified_at: Option<i64>,
    /// The active tenant its tokens speak for (`POST /v1/auth/session/tenant`).
    pub tenant_id: Option<String>,
}

/// How stale a session's `last_seen_at` may get before a refresh rewrites
/// it (its address and user agent are always kept current).
pub const TOUCH_EVERY_MS: i64 = 60_000;

const COLUMNS: [Sessions; 12] = [
    Sessions::Id,
    Sessions::ProjectId,
    Sessions::UserId,
    Sessions::Ip,
    Sessions::UserAgent,
    Sessions::Amr,
    Sessions::CreatedAt,
    Sessions::LastSeenAt,
    Sessions::ExpiresAt,
    Sessions::RevokedAt,
    Sessions::VerifiedAt,
    Sessions::TenantId,
];

impl SessionRow {
    pub fn amr(&self) -> Vec<String> {
        self.amr
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// Whether a refresh from this client at `now` should write the
    /// last-seen facts: the address or user agent changed, or the recorded
    /// time is more than [`TOUCH_EVERY_MS`] old. Rewriting the row on every
    /// refresh turns a busy session into a hot row for nothing.
    pub fn needs_touch(&self, now: i64, ip: &str, user_agent: Option<&str>) -> bool {
        self.ip.as_deref() != Some(ip)
            || self.user_agent.as_deref() != user_agent
            || now - self.last_seen_at >= TOUCH_EVERY_MS
    }

    pub fn is_live(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }

    /// Whether the session proved a factor within the last `ttl_seconds`.
    pub fn stepped_up(&self, now: i64, ttl_seconds: u32) -> bool {
        self.verified_at
            .is_some_and(|t| now - t <= i64::from(ttl_seconds) * 1000)
    }
}

pub async fn find<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    id: &str,
) -> Result<Option<SessionRow>, DbError> {
    tx.fetch_optional(
        Query::select()
            .columns(COLUMNS)
            .from(Sessions::Table)
            .and_where(Expr::col(Sessions::ProjectId).eq(project_id))
            .and_where(Expr::col(Sessions::Id).eq(id)),
    )
    .await
}

/// Starts a session; its absolute lifetime is the refresh-token TTL.
pub async fn create(
    tx: &mut Tx,
    project_id: &str,
    user_id: &str,
    ip: &str,
    user_agent: Option<&str>,
    amr: &[&str],
    ttl_seconds: u32,
) -> Result<SessionRow, DbError> {
    create_with(
        tx,
        project_id,
        user_id,
        ip,
        user_agent,
        amr,
        ttl_seconds,
        true,
    )
    .await
}

/// [`create`], saying whether the session starts stepped up (a sign-in
/// proved a factor just now; an impersonation proved none).
#[allow(clippy::too_many_arguments)]
pub async fn create_with(
    tx: &mut Tx,
    project_id: &str,
    user_id: &str,
    ip: &str,
    user_agent: Option<&str>,
    amr: &[&str],
    ttl_seconds: u32,
    stepped_up: bool,
) -> Result<SessionRow, DbError> {
    let now = now_ms();
    let row = SessionRow {
        id: new_id("ses"),
        project_id: project_id.to_string(),
        user_id: user_id.to_string(),
        ip: Some(ip.to_string()),
        user_agent: user_agent.map(str::to_string),
        amr: amr.join(","),
        created_at: now,
        last_seen_at: now,
        expires_at: now + i64::from(ttl_seconds) * 1000,
        revoked_at: None,
        verified_at: stepped_up.then_some(now),
        tenant_id: None,
    };
    tx.defer(
        Query::insert()
            .into_table(Sessions::Table)
            .columns(COLUMNS)
            .values_panic([
                row.id.clone().into(),
                row.project_id.clone().into(),
                row.user_id.clone().into(),
                row.ip.clone().into(),
                row.user_agent.clone().into(),
                row.amr.clone().into(),
                row.created_at.into(),
                row.last_seen_at.into(),
                row.expires_at.into(),
                row.revoked_at.into(),
                row.verified_at.into(),
                row.tenant_id.clone().into(),
            ]),
    )
    .await?;
    Ok(row)
}

/// The most live sessions a user holds; signing in past it ends the oldest.
pub const MAX_LIVE_SESSIONS: u64 = 100;

/// Ends the user's oldest live sessions beyond the newest `keep`; returns
/// their ids. Serialised per user, so concurrent sign-ins cannot overshoot.
pub async fn evict_oldest(
    tx: &mut Tx,
    project_id: &str,
    user_id: &str,
    keep: u64,
) -> Result<Vec<String>, DbError> {
    tx.lock_key(&format!("sessions:{project_id}:{user_id}"))
        .await?;
    let beyond: Vec<(String,)> = tx
        .fetch_all(
            Query::select()
                .column(Sessions::Id)
                .from(Sessions::Table)
                .and_where(Expr::col(Sessions::ProjectId).eq(project_id))
                .and_where(Expr::col(Sessions::UserId).eq(user_id))
                .and_where(Expr::col(Sessions::RevokedAt).is_null())
                .and_where(Expr::col(Sessions::ExpiresAt).gt(now_ms()))
                .order_by(Sessions::Id, Order::Desc)
                .limit(1000)
                .offset(keep),
        )
        .await?;
    if beyond.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = beyond.into_iter().map(|r| r.0).collect();
    revoke(tx, project_id, user_id, Some(&ids), None, "session_limit").await
}

/// Records activity on a session (on refresh); cached views reload.
pub async fn touch(
    tx: &mut Tx,
    project_id: &str,
    id: &str,
    ip: &str,
    user_agent: Option<&str>,
) -> Result<(), DbError> {
    tx.invalidate(Invalidation::Sessions(vec![id.to_string()]))
        .await?;
    tx.execute(
        Query::update()
            .table(Sessions::Table)
            .values([
                (Sessions::LastSeenAt, now_ms().into()),
                (Sessions::Ip, ip.into()),
                (Sessions::UserAgent, user_agent.map(str::to_string).into()),
            ])
            .and_where(Expr::col(Sessions::ProjectId).eq(project_id))
            .and_where(Expr::col(Sessions::Id).eq(id)),
    )
    .await?;
    Ok(())
}

/// The session proved a factor now (step-up); cached views reload.
pub async fn mark_verified(tx: &mut Tx, project_id: &str, id: &str) -> Result<(), DbError> {
    tx.invalidate(Invalidation::Sessions(vec![id.to_string()]))
        .await?;
    tx.execute(
        Query::update()
            .table(Sessions::Table)
            .value(Sessions::VerifiedAt, now_ms())
            .and_where(Expr::col(Sessions::ProjectId).eq(project_id))
            .and_where(Expr::col(Sessions::Id).eq(id)),
    )
    .await?;
    Ok(())
}

/// The user's other sessions no longer count as stepped up (a second
/// factor was just turned on: a session that proved only the password must
/// prove the new factor before it can remove it).
pub async fn clear_verified_except(
    tx: &mut Tx,
    project_id: &str,
    user_id: &str,
    keep: &str,
) -> Result<(), DbError> {
    tx.execute(
        Query::update()
            .table(Sessions::Table)
            .value(Sessions::VerifiedAt, Option::<i64>::None)
            .and_where(Expr::col(Sessions::ProjectId).eq(project_id))
            .and_where(Expr::col(Sessions::UserId).eq(user_id))
            .and_where(Expr::col(Sessions::Id).ne(keep)),
    )
    .await?;
    Ok(())
}

/// Sets (or clears) the session's active tenant; its cached view reloads
/// at commit.
pub async fn set_tenant(
    tx: &mut Tx,
    project_id: &str,
    id: &str,
    tenant_id: Option<&str>,
) -> Result<(), DbError> {
    tx.execute(
        Query::update()
            .table(Sessions::Table)
            .value(Sessions::TenantId, tenant_id.map(str::to_string))
            .and_where(Expr::col(Sessions::ProjectId).eq(project_id))
            .and_where(Expr::col(Sessions::Id).eq(id)),
    )
    .await?;
    tx.invalidate(Invalidation::Sessions(vec![id.to_string()]))
        .await?;
    Ok(())
}

/// Every cached view of the user's live sessions reloads at commit (the
/// user they carry changed).
pub async fn reload_views(tx: &mut Tx, project_id: &str, user_id: &str) -> Result<(), DbError> {
    let ids: Vec<(String,)> = tx
        .fetch_all(
            Query::select()
                .column(Sessions::Id)
                .from(Sessions::Table)
                .and_where(Expr::col(Sessions::ProjectId).eq(project_id))
                .and_where(Expr::col(Sessions::UserId).eq(user_id))
                .and_where(Expr::col(Sessions::RevokedAt).is_null()),
        )
        .await?;
    if !ids.is_empty() {
        tx.invalidate(Invalidation::Sessions(
            ids.into_iter().map(|(id,)| id).collect(),
        ))
        .await?;
    }
    Ok(())
}

/// Live sessions of a user, newest first.
pub async fn list_live<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    user_id: &str,
    limit: u64,
) -> Result<Vec<SessionRow>, DbError> {
    tx.fetch_all(
        Query::select()
            .columns(COLUMNS)
            .from(Sessions::Table)
            .and_where(Expr::col(Sessions::ProjectId).eq(project_id))
            .and_where(Expr::col(Sessions::UserId).eq(user_id))
            .and_where(Expr::col(Sessions::RevokedAt).is_null())
            .and_where(Expr::col(Sessions::ExpiresAt).gt(now_ms()))
            .order_by(Sessions::Id, Order::Desc)
            .limit(limit),
    )
    .await
}

/// Revokes the given live sessions of a project (all of `user_id`'s when
/// `ids` is `None`, except `keep`). Returns the ids revoked; the caches of
/// every node drop them when the transaction commits.
pub async fn revoke(
    tx: &mut Tx,
    project_id: &str,
    user_id: &str,
    ids: Option<&[String]>,
    keep: Option<&str>,
    reason: &str,
) -> Result<Vec<String>, DbError> {
    // One statement, however many sessions the user has: no id list that
    // could pass the bind-parameter limit.
    let mut update = Query::update();
    update
        .table(Sessions::Table)
        .values([
            (Sessions::RevokedAt, now_ms().into()),
            (Sessions::RevokedReason, reason.into()),
        ])
        .and_where(Expr::col(Sessions::ProjectId).eq(project_id))
        .and_where(Expr::col(Sessions::UserId).eq(user_id))
        .and_where(Expr::col(Sessions::RevokedAt).is_null())
        .returning_col(Sessions::Id);
    if let Some(ids) = ids {
        update.and_where(Expr::col(Sessions::Id).is_in(ids.iter().cloned()));
    }
    if let Some(keep) = keep {
        update.and_where(Expr::col(Sessions::Id).ne(keep));
    }
    let found: Vec<(String,)> = tx.returning(&update).await?;
    let found: Vec<String> = found.into_iter().map(|r| r.0).collect();
    if !found.is_empty() {
        tx.invalidate(Invalidation::Sessions(found.clone())).await?;
    }
    Ok(found)
}
