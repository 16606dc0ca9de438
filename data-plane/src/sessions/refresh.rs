//! `POST /v1/auth/refresh`: consume the presented token (compare-and-set),
//! or, for a token consumed moments ago, hand the same client the same
//! successor (grace), or treat it as reuse and end the session.

use crate::DataState;
use crate::audit::event;
use crate::request::client::Client;
use crate::request::client::ip_key;
use crate::request::csrf;
use crate::request::limits::rate_limit;
use crate::request::resolve::Resolved;
use crate::request::transport::{self, Transport};
use crate::sessions::cache::ActiveTenant;
use crate::sessions::issue::successor_of;
use crate::sessions::issue::{Extras, signed_in_trusting};
use crate::store::refresh_tokens::{self, RefreshRow};
use crate::store::sessions::{self, SessionRow};
use crate::store::users::{self, UserRow};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use identity_shared::audit::{self, Event, Outcome};
use identity_shared::crypto::{ct_eq, sha256_hex};
use identity_shared::db::Tx;
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::http::{self};
use identity_shared::ids::new_id;
use identity_shared::secret::Secret;
use identity_shared::time::now_ms;
use serde::Deserialize;
use serde_json::json;
use sqlx::Row;
use sqlx::postgres::PgRow;

#[derive(Debug, Deserialize, Default)]
pub struct RefreshBody {
    refresh_token: Option<Secret<String>>,
}

fn invalid_refresh() -> ApiError {
    ApiError::unauthorized("invalid_refresh_token", "the refresh token is not valid")
}

pub async fn refresh(
    State(state): State<DataState>,
    resolved: Resolved,
    client: Client,
    method: Method,
    headers: HeaderMap,
    bytes: Bytes,
) -> ApiResult<Response> {
    rate_limit(
        &state,
        &resolved,
        &client,
        "refresh",
        resolved.project.settings.rate_limits.refresh_per_minute,
    )?;
    let requested = transport::transport(&resolved, &headers)?;
    let body: RefreshBody = http::optional_json(&headers, &bytes)?;
    let (value, from_cookie) = match body.refresh_token {
        Some(v) => (v.into_inner(), false),
        None => {
            let v = transport::cookie(&headers, transport::REFRESH_COOKIE).ok_or_else(|| {
                ApiError::invalid_request(
                    "refresh_token is required (in the body or the identity_rt cookie)",
                )
            })?;
            (v.to_string(), true)
        }
    };
    // A session that lives in cookies stays in cookies: its successor never
    // appears in a body, whatever transport the request asks for.
    let transport = if from_cookie {
        Transport::Cookie
    } else {
        requested
    };
    // A response that sets session cookies needs a browser on an allowed
    // origin (login CSRF: another site must not plant its session here).
    if transport == Transport::Cookie {
        csrf::check_origin(&state, &resolved, &headers)?;
    }
    if value.is_empty() || value.len() > 128 {
        return Err(invalid_refresh());
    }
    let project_id = resolved.project.id.clone();
    let hash = sha256_hex(value.as_bytes());
    let db = state.shard(&resolved)?;
    let now = now_ms();

    // Taken before anything is read, so a session read below is cached
    // only if no invalidation came in between.
    let epoch = state.sessions.epoch();
    let successor = successor_of(&state, &value);
    let ip = client.ip_text();
    let rotation = refresh_tokens::Rotation {
        project_id: &project_id,
        token_hash: &hash,
        successor_id: &new_id("rtk"),
        successor_hash: &sha256_hex(successor.as_bytes()),
        ip: &ip,
        user_agent: client.user_agent.as_deref(),
        audit_id: &new_id("evt"),
        now,
        touch_every_ms: sessions::TOUCH_EVERY_MS,
    };
    let present = |session, user, tenant| Presented {
        state: &state,
        resolved: &resolved,
        client: &client,
        transport,
        successor,
        session,
        user,
        tenant,
    };
    // Postgres: the common case (a live token of a live session) in one
    // statement; anything else is judged step by step below. Without
    // cookies it runs on its own and is committed as it returns: one round
    // trip. With cookies it runs inside the transaction, so that a CSRF
    // refusal rolls it back.
    if !from_cookie
        && let Some(Some(rotated)) = refresh_tokens::rotate_pg_alone(db, &rotation).await?
    {
        let (session, user, tenant) =
            renewed(&state, &client, epoch, now, &project_id, rotated).await;
        return present(session, user, tenant).answer().await;
    }
    let mut tx = db.scope(&project_id).await?;
    if from_cookie
        && let Some(Some(rotated)) =
            refresh_tokens::rotate_pg::<Rotated>(&mut tx, &rotation).await?
    {
        // A refusal drops the transaction: nothing was consumed.
        csrf::check_csrf(&state, &resolved, &method, &headers, &rotated.session.id)?;
        tx.commit().await?;
        let (session, user, tenant) =
            renewed(&state, &client, epoch, now, &project_id, rotated).await;
        return present(session, user, tenant).answer().await;
    }
    let mut row = refresh_tokens::find_by_hash(&mut tx, &project_id, &hash)
        .await?
        .ok_or_else(invalid_refresh)?;
    let session = sessions::find(&mut tx, &project_id, &row.session_id)
        .await?
        .ok_or_else(invalid_refresh)?;
    if !session.is_live(now) {
        return Err(if session.revoked_at.is_some() {
            ApiError::unauthorized("session_revoked", "this session has ended")
        } else {
            invalid_refresh()
        });
    }
    if from_cookie {
        csrf::check_csrf(&state, &resolved, &method, &headers, &session.id)?;
    }
    let user = users::find(&mut tx, &project_id, &session.user_id)
        .await?
        .ok_or_else(invalid_refresh)?;
    let tenant = ActiveTenant::load(&mut tx, &session).await?;
    let presented = present(session, user, tenant);
    if row.consumed_at.is_none() {
        if row.expires_at <= now {
            return Err(invalid_refresh());
        }
        if consume(&mut tx, &presented, &row).await? {
            tx.commit().await?;
            return presented.answer().await;
        }
        // Another request consumed it first: judge it as a retry.
        row = refresh_tokens::find_by_hash(&mut tx, &project_id, &hash)
            .await?
            .ok_or_else(invalid_refresh)?;
    }
    if within_grace(&mut tx, &presented, &row, now).await? {
        tx.commit().await?;
        return presented.answer().await;
    }
    reuse(tx, &presented).await
}

/// The session a rotation renewed and its user, as they stood before the
/// rotation (so with the old last-seen facts), and whether it wrote the
/// session's last-seen facts (only when the address or user agent changed
/// or they were `touch_every_ms` old: the same rule as
/// `SessionRow::needs_touch`).
#[derive(Debug)]
pub struct Rotated {
    pub session: SessionRow,
    pub user: UserRow,
    /// The user's current role in the session's active tenant.
    pub tenant_role: Option<String>,
    pub touched: bool,
}

impl<'r> sqlx::FromRow<'r, PgRow> for Rotated {
    /// The columns of migration 0013's `identity_rotate_refresh_v3` (the
    /// project ids are filled in by [`renewed`]).
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let session = SessionRow {
            id: row.try_get("s_id")?,
            project_id: String::new(),
            user_id: row.try_get("s_user_id")?,
            ip: row.try_get("s_ip")?,
            user_agent: row.try_get("s_user_agent")?,
            amr: row.try_get("s_amr")?,
            created_at: row.try_get("s_created_at")?,
            last_seen_at: row.try_get("s_last_seen_at")?,
            expires_at: row.try_get("s_expires_at")?,
            revoked_at: row.try_get("s_revoked_at")?,
            verified_at: row.try_get("s_verified_at")?,
            tenant_id: row.try_get("s_tenant_id")?,
        };
        let user_json: String = row.try_get("u_row")?;
        // The error names no value (the row holds a password hash).
        let user: UserRow =
            serde_json::from_str(&user_json).map_err(|e| sqlx::Error::ColumnDecode {
                index: "u_row".into(),
                source: format!(
                    "not a user row ({:?} at column {})",
                    e.classify(),
                    e.column()
                )
                .into(),
            })?;
        Ok(Rotated {
            session,
            user,
            tenant_role: row.try_get("m_role")?,
            touched: row.try_get("touched")?,
        })
    }
}

/// After a committed rotation: the session as it now stands (with the
/// last-seen facts the rotation wrote, if it wrote them), remembered by the
/// session cache (the rotation read it after `epoch` was taken: an
/// invalidation since then keeps it out).
async fn renewed(
    state: &DataState,
    client: &Client,
    epoch: u64,
    now: i64,
    project_id: &str,
    rotated: Rotated,
) -> (SessionRow, UserRow, Option<ActiveTenant>) {
    let Rotated {
        mut session,
        mut user,
        tenant_role,
        touched,
    } = rotated;
    session.project_id = project_id.to_string();
    user.project_id = project_id.to_string();
    let session = if touched {
        SessionRow {
            last_seen_at: now,
            ip: Some(client.ip_text()),
            user_agent: client.user_agent.clone(),
            ..session
        }
    } else {
        session
    };
    let tenant = ActiveTenant::of(&session, tenant_role);
    state
        .sessions
        .remember(session.clone(), user.clone(), tenant.clone(), epoch)
        .await;
    (session, user, tenant)
}

/// A located refresh token's context: what each outcome needs.
struct Presented<'a> {
    state: &'a DataState,
    resolved: &'a Resolved,
    client: &'a Client,
    transport: Transport,
    session: SessionRow,
    user: UserRow,
    /// The session's active tenant, if the user is still a member.
    tenant: Option<ActiveTenant>,
    /// The successor of the presented token (derived, so a retry gets the same).
    successor: String,
}

impl Presented<'_> {
    async fn answer(&self) -> ApiResult<Response> {
        // A ban revokes the sessions; one made while the ban was being
        // written is refused here.
        if self.user.is_banned(now_ms()) {
            return Err(crate::admin::ban::user_banned());
        }
        signed_in_trusting(
            self.state,
            self.resolved,
            self.transport,
            StatusCode::OK,
            &self.user,
            &self.session,
            &self.successor,
            Extras {
                tenant: self.tenant.as_ref(),
                ..Extras::default()
            },
        )
        .await
    }
}

/// Consume, step by step (SQLite; on Postgres only when the one-statement
/// rotation lost a race): the token is exchanged for its successor
/// (compare-and-set); false when another request consumed it first.
async fn consume(tx: &mut Tx, p: &Presented<'_>, row: &RefreshRow) -> ApiResult<bool> {
    let project_id = &p.resolved.project.id;
    let successor_id = new_id("rtk");
    if !refresh_tokens::consume(tx, project_id, &row.id, &successor_id).await? {
        return Ok(false);
    }
    refresh_tokens::insert(
        tx,
        project_id,
        &successor_id,
        &p.session.id,
        &sha256_hex(p.successor.as_bytes()),
        p.client.user_agent.as_deref(),
        p.session.expires_at,
    )
    .await?;
    let ip = p.client.ip_text();
    let user_agent = p.client.user_agent.as_deref();
    if p.session.needs_touch(now_ms(), &ip, user_agent) {
        sessions::touch(tx, project_id, &p.session.id, &ip, user_agent).await?;
    }
    audit::record(
        tx,
        Event {
            actor: Some(&p.user.id),
            subject: Some(&p.user.id),
            data: json!({"session_id": p.session.id}),
            ..event(
                p.resolved,
                p.client,
                &ip,
                "token.refreshed",
                Outcome::Success,
            )
        },
    )
    .await?;
    Ok(true)
}

/// Grace: a token consumed within the window, presented again by the same
/// client (same user agent and address, IPv6 by its /64, as the request its
/// successor went to), gets that same successor while it is unused.
async fn within_grace(
    tx: &mut Tx,
    p: &Presented<'_>,
    row: &RefreshRow,
    now: i64,
) -> ApiResult<bool> {
    let grace_ms = i64::from(p.resolved.project.settings.refresh_reuse_grace_seconds) * 1000;
    if row.consumed_at.is_none_or(|t| now - t > grace_ms) {
        return Ok(false);
    }
    let Some(successor_id) = &row.successor_id else {
        return Ok(false);
    };
    let same_address = p
        .session
        .ip
        .as_deref()
        .and_then(|ip| ip.parse().ok())
        .is_some_and(|ip| ip_key(ip) == p.client.ip_key());
    let next = refresh_tokens::find(tx, &p.resolved.project.id, successor_id).await?;
    Ok(next.is_some_and(|next| {
        next.consumed_at.is_none()
            && next.user_agent == p.client.user_agent
            && same_address
            && ct_eq(
                next.token_hash.as_bytes(),
                sha256_hex(p.successor.as_bytes()).as_bytes(),
            )
    }))
}

/// Reuse: somebody holds a token that was already exchanged. The session
/// ends, and the attempt is audited.
async fn reuse(mut tx: Tx, p: &Presented<'_>) -> ApiResult<Response> {
    let revoked = sessions::revoke(
        &mut tx,
        &p.resolved.project.id,
        &p.user.id,
        Some(std::slice::from_ref(&p.session.id)),
        None,
        "refresh_token_reused",
    )
    .await?;
    let ip = p.client.ip_text();
    audit::record(
        &mut tx,
        Event {
            subject: Some(&p.user.id),
            data: json!({"session_id": p.session.id, "revoked": !revoked.is_empty()}),
            ..event(
                p.resolved,
                p.client,
                &ip,
                "token.reuse_detected",
                Outcome::Failure,
            )
        },
    )
    .await?;
    tx.commit().await?;
    Err(ApiError::unauthorized(
        "refresh_token_reused",
        "this refresh token was already used; the session has been ended",
    ))
}
