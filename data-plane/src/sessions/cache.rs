//! The revocation check every authenticated request makes, answered from
//! memory: live sessions and their users, cached; revocations drop entries
//! on every node (see `store::sessions::revoke`). A miss reads the
//! database; a missing row is a revoked session (fail closed).

use crate::store::sessions::{self, SessionRow};
use crate::store::tenant_members;
use crate::store::users::{self, UserRow};
use identity_shared::cache::GuardedCache;
use identity_shared::db::{Db, DbError};
use identity_shared::error::ApiError;
use identity_shared::invalidation::{Freshness, Invalidation, InvalidationSink};
use identity_shared::time::now_ms;
use std::sync::Arc;
use std::time::Duration;

/// A live session and its user, as the per-request check caches them: the
/// common authenticated request (and `GET /v1/auth/session` entirely) is
/// answered from memory.
#[derive(Debug)]
pub struct LiveSession {
    pub session: SessionRow,
    pub user: UserRow,
    /// The session's active tenant, while the user is still a member.
    pub tenant: Option<ActiveTenant>,
}

/// A session's active tenant and the user's current role in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveTenant {
    pub id: String,
    pub role: String,
}

impl ActiveTenant {
    /// The session's tenant with the role the user now has there; none when
    /// the session has none or the user left it.
    pub fn of(session: &SessionRow, role: Option<String>) -> Option<ActiveTenant> {
        Some(ActiveTenant {
            id: session.tenant_id.clone()?,
            role: role?,
        })
    }

    /// Reads the user's role in the session's tenant.
    pub async fn load<M>(
        tx: &mut identity_shared::db::Tx<M>,
        session: &SessionRow,
    ) -> Result<Option<ActiveTenant>, DbError> {
        let Some(tenant_id) = &session.tenant_id else {
            return Ok(None);
        };
        let member =
            tenant_members::find(tx, &session.project_id, tenant_id, &session.user_id).await?;
        Ok(ActiveTenant::of(session, member.map(|m| m.role)))
    }
}

pub struct SessionCache {
    views: GuardedCache<Option<Arc<LiveSession>>>,
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
    ) -> Result<Option<Arc<LiveSession>>, ApiError> {
        let view = self
            .views
            .get_or_load(id, || load_view(db, project_id, id))
            .await?;
        Ok(view.filter(|v| {
            v.session.project_id == project_id
                && v.session.user_id == user_id
                && v.session.is_live(now_ms())
        }))
    }

    /// The invalidation epoch, taken before reading a session elsewhere (see
    /// [`Self::remember`]).
    pub fn epoch(&self) -> u64 {
        self.views.epoch()
    }

    /// Caches a live session and its user read inside a transaction that
    /// began after `epoch` was taken (kept only if no invalidation came
    /// since, like a load).
    pub async fn remember(
        &self,
        session: SessionRow,
        user: UserRow,
        tenant: Option<ActiveTenant>,
        epoch: u64,
    ) {
        let id = session.id.clone();
        let view = LiveSession {
            session,
            user,
            tenant,
        };
        self.views
            .insert_read(&id, Some(Arc::new(view)), epoch)
            .await;
    }

    pub fn database_loads(&self) -> u64 {
        self.views.loads()
    }
}

async fn load_view(
    db: &Db,
    project_id: &str,
    id: &str,
) -> Result<Option<Arc<LiveSession>>, DbError> {
    let mut tx = db.scope_read(project_id).await?;
    let session = sessions::find(&mut tx, project_id, id).await?;
    let (user, tenant) = match &session {
        Some(s) => (
            users::find(&mut tx, project_id, &s.user_id).await?,
            ActiveTenant::load(&mut tx, s).await?,
        ),
        None => (None, None),
    };
    tx.commit().await?;
    // No row, or no user: revoked (fail closed).
    Ok(session.zip(user).map(|(session, user)| {
        Arc::new(LiveSession {
            session,
            user,
            tenant,
        })
    }))
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
