//! Sessions: one row per sign-in, the refresh tokens that extend it, and
//! the revocation check every authenticated request makes.
//!
//! The check reads a cache of session states. Revoking writes the row and
//! queues `Invalidation::Sessions` on the same transaction: this node drops
//! the entries before answering, every other node on its `NOTIFY`. A miss
//! reads the database; a missing row is a revoked session (fail closed).

use std::sync::Arc;
use std::time::Duration;

use identity_shared::cache::GuardedCache;
use identity_shared::db::{Db, DbError, Tx};
use identity_shared::error::ApiError;
use identity_shared::ids::new_id;
use identity_shared::invalidation::{Freshness, Invalidation, InvalidationSink};
use identity_shared::schema::{RefreshTokens, Sessions};
use identity_shared::time::{now_ms, rfc3339};
use sea_query::{Expr, ExprTrait, Order, Query};
use serde_json::{Value, json};

use crate::client::Client;
use crate::users::{self, UserRow};

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
}

const COLUMNS: [Sessions; 10] = [
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
];

impl SessionRow {
    pub fn amr(&self) -> Vec<String> {
        self.amr
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }

    pub fn is_live(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }

    pub fn to_json(&self, current_id: Option<&str>) -> Value {
        json!({
            "id": self.id,
            "created_at": rfc3339(self.created_at),
            "last_seen_at": rfc3339(self.last_seen_at),
            "expires_at": rfc3339(self.expires_at),
            "ip": self.ip,
            "user_agent": self.user_agent,
            "amr": self.amr(),
            "current": current_id == Some(self.id.as_str()),
        })
    }
}

/// A live session and its user, as the per-request check caches them: the
/// common authenticated request (and `GET /v1/auth/session` entirely) is
/// answered from memory.
#[derive(Debug)]
pub struct SessionView {
    pub session: SessionRow,
    pub user: UserRow,
}

pub struct SessionCache {
    views: GuardedCache<Option<Arc<SessionView>>>,
}

impl SessionCache {
    /// `freshness`: when cached sessions may be served (the data-plane
    /// database's listener; see `Freshness`).
    pub fn new(freshness: Freshness) -> Arc<Self> {
        Arc::new(Self {
            views: GuardedCache::new(500_000, Duration::from_secs(300)).following(freshness),
        })
    }

    /// Follows the invalidations of `db` (one registration per database).
    pub fn follow(self: &Arc<Self>, db: &Db) {
        let sink: Arc<dyn InvalidationSink> = self.clone();
        db.invalidations().register(Arc::downgrade(&sink));
    }

    /// Session `id` of `project_id`, when it is live and belongs to `user_id`.
    pub async fn check(
        &self,
        db: &Db,
        project_id: &str,
        user_id: &str,
        id: &str,
    ) -> Result<Option<Arc<SessionView>>, ApiError> {
        let view = self
            .views
            .get_or_load(id, load_view(db, project_id, id))
            .await?;
        Ok(view.filter(|v| {
            v.session.project_id == project_id
                && v.session.user_id == user_id
                && v.session.is_live(now_ms())
        }))
    }

    pub fn database_loads(&self) -> u64 {
        self.views.loads()
    }
}

async fn load_view(
    db: &Db,
    project_id: &str,
    id: &str,
) -> Result<Option<Arc<SessionView>>, DbError> {
    let mut tx = db.scope_read(project_id).await?;
    let session = find(&mut tx, project_id, id).await?;
    let user = match &session {
        Some(s) => users::find(&mut tx, project_id, &s.user_id).await?,
        None => None,
    };
    tx.commit().await?;
    // No row, or no user: revoked (fail closed).
    Ok(session
        .zip(user)
        .map(|(session, user)| Arc::new(SessionView { session, user })))
}

impl InvalidationSink for SessionCache {
    fn apply<'a>(&'a self, message: &'a Invalidation) -> futures_util::future::BoxFuture<'a, ()> {
        Box::pin(async move {
            match message {
                Invalidation::Sessions(ids) => {
                    for id in ids {
                        self.views.invalidate(id).await;
                    }
                }
                Invalidation::All => self.views.invalidate_all(),
                _ => {}
            }
        })
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
    client: &Client,
    amr: &[&str],
    ttl_seconds: u32,
) -> Result<SessionRow, DbError> {
    let now = now_ms();
    let row = SessionRow {
        id: new_id("ses"),
        project_id: project_id.to_string(),
        user_id: user_id.to_string(),
        ip: Some(client.ip_text()),
        user_agent: client.user_agent.clone(),
        amr: amr.join(","),
        created_at: now,
        last_seen_at: now,
        expires_at: now + i64::from(ttl_seconds) * 1000,
        revoked_at: None,
    };
    tx.execute(
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
    client: &Client,
) -> Result<(), DbError> {
    tx.invalidate(Invalidation::Sessions(vec![id.to_string()]))
        .await?;
    tx.execute(
        Query::update()
            .table(Sessions::Table)
            .values([
                (Sessions::LastSeenAt, now_ms().into()),
                (Sessions::Ip, client.ip_text().into()),
                (Sessions::UserAgent, client.user_agent.clone().into()),
            ])
            .and_where(Expr::col(Sessions::ProjectId).eq(project_id))
            .and_where(Expr::col(Sessions::Id).eq(id)),
    )
    .await?;
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

const REFRESH_COLUMNS: [RefreshTokens; 7] = [
    RefreshTokens::Id,
    RefreshTokens::SessionId,
    RefreshTokens::TokenHash,
    RefreshTokens::UserAgent,
    RefreshTokens::ExpiresAt,
    RefreshTokens::ConsumedAt,
    RefreshTokens::SuccessorId,
];

pub async fn insert_refresh(
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

pub async fn find_refresh_by_hash<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    token_hash: &str,
) -> Result<Option<RefreshRow>, DbError> {
    find_refresh_where(tx, project_id, RefreshTokens::TokenHash, token_hash).await
}

pub async fn find_refresh<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    id: &str,
) -> Result<Option<RefreshRow>, DbError> {
    find_refresh_where(tx, project_id, RefreshTokens::Id, id).await
}

async fn find_refresh_where<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    column: RefreshTokens,
    value: &str,
) -> Result<Option<RefreshRow>, DbError> {
    tx.fetch_optional(
        Query::select()
            .columns(REFRESH_COLUMNS)
            .from(RefreshTokens::Table)
            .and_where(Expr::col(RefreshTokens::ProjectId).eq(project_id))
            .and_where(Expr::col(column).eq(value)),
    )
    .await
}

/// Consumes an unconsumed, unexpired refresh token (compare-and-set) and
/// names its successor. Returns false when another request got there first.
pub async fn consume_refresh(
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
