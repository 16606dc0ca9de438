//! The transactional outbox: one table for every outgoing message (email
//! and SMS now, webhooks later), written in the same transaction as the
//! token or change it carries and delivered by `workers::outbox`.
//!
//! A message is `queued` until delivered (`sent`, its sealed payload
//! erased) or out of attempts (`dead`, kept for operators). Claiming a
//! message pushes its `next_attempt_at` out by the delivery lease and
//! counts the attempt, so a node that dies mid-delivery leaves it due again
//! once the lease ends (at-least-once, nothing lost).

use identity_shared::db::{DbError, Tx};
use identity_shared::schema::OutboxMessages;
use sea_query::{Expr, ExprTrait, LockBehavior, LockType, Order, Query, SelectStatement};

pub const QUEUED: &str = "queued";
pub const SENT: &str = "sent";
pub const DEAD: &str = "dead";

/// A message to write: `payload` is already sealed.
pub struct NewMessage<'a> {
    pub id: &'a str,
    pub project_id: &'a str,
    pub channel: &'a str,
    pub kind: &'a str,
    pub recipient_hint: &'a str,
    pub recipient_hash: &'a str,
    pub payload: &'a str,
    pub now: i64,
}

pub async fn enqueue(tx: &mut Tx, m: &NewMessage<'_>) -> Result<(), DbError> {
    tx.defer(
        Query::insert()
            .into_table(OutboxMessages::Table)
            .columns([
                OutboxMessages::Id,
                OutboxMessages::ProjectId,
                OutboxMessages::Channel,
                OutboxMessages::Kind,
                OutboxMessages::RecipientHint,
                OutboxMessages::RecipientHash,
                OutboxMessages::Payload,
                OutboxMessages::Status,
                OutboxMessages::Attempts,
                OutboxMessages::NextAttemptAt,
                OutboxMessages::CreatedAt,
            ])
            .values_panic([
                m.id.into(),
                m.project_id.into(),
                m.channel.into(),
                m.kind.into(),
                m.recipient_hint.into(),
                m.recipient_hash.into(),
                m.payload.into(),
                QUEUED.into(),
                0i32.into(),
                m.now.into(),
                m.now.into(),
            ]),
    )
    .await
}

/// A message claimed for delivery.
#[derive(Debug, sqlx::FromRow)]
pub struct Claimed {
    pub id: String,
    pub project_id: String,
    pub channel: String,
    pub kind: String,
    pub payload: Option<String>,
    pub attempts: i32,
    pub created_at: i64,
}

/// Claims up to `limit` due messages of any project (a control
/// transaction): each gets its attempt counted and `next_attempt_at`
/// pushed to `now + lease_ms`. On Postgres, rows another node is claiming
/// are skipped (`FOR UPDATE SKIP LOCKED`); on SQLite the one writer claims.
pub async fn claim(
    tx: &mut Tx,
    now: i64,
    lease_ms: i64,
    limit: u64,
) -> Result<Vec<Claimed>, DbError> {
    let due = Query::select()
        .column(OutboxMessages::Id)
        .from(OutboxMessages::Table)
        .and_where(Expr::col(OutboxMessages::Status).eq(QUEUED))
        .and_where(Expr::col(OutboxMessages::NextAttemptAt).lte(now))
        .order_by(OutboxMessages::NextAttemptAt, Order::Asc)
        .limit(limit)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .take();
    tx.returning(
        Query::update()
            .table(OutboxMessages::Table)
            .value(
                OutboxMessages::Attempts,
                Expr::col(OutboxMessages::Attempts).add(1),
            )
            .value(OutboxMessages::NextAttemptAt, now + lease_ms)
            .and_where(Expr::col(OutboxMessages::Id).in_subquery(due))
            .and_where(Expr::col(OutboxMessages::Status).eq(QUEUED))
            .returning(Query::returning().columns([
                OutboxMessages::Id,
                OutboxMessages::ProjectId,
                OutboxMessages::Channel,
                OutboxMessages::Kind,
                OutboxMessages::Payload,
                OutboxMessages::Attempts,
                OutboxMessages::CreatedAt,
            ])),
    )
    .await
}

/// Delivered: `sent`, and the payload erased.
pub async fn delivered(tx: &mut Tx, id: &str, now: i64) -> Result<(), DbError> {
    tx.execute(
        Query::update()
            .table(OutboxMessages::Table)
            .values([
                (OutboxMessages::Status, SENT.into()),
                (OutboxMessages::Payload, Option::<String>::None.into()),
                (OutboxMessages::SentAt, now.into()),
                (OutboxMessages::LastError, Option::<String>::None.into()),
            ])
            .and_where(Expr::col(OutboxMessages::Id).eq(id)),
    )
    .await
    .map(drop)
}

/// Not delivered: due again at `retry_at`, or `dead` (payload erased:
/// nothing will send it) when `retry_at` is `None`.
pub async fn failed(
    tx: &mut Tx,
    id: &str,
    error: &str,
    retry_at: Option<i64>,
) -> Result<(), DbError> {
    let error: String = error.chars().take(500).collect();
    let mut update = Query::update();
    update
        .table(OutboxMessages::Table)
        .value(OutboxMessages::LastError, error)
        .and_where(Expr::col(OutboxMessages::Id).eq(id))
        .and_where(Expr::col(OutboxMessages::Status).eq(QUEUED));
    match retry_at {
        Some(at) => update.value(OutboxMessages::NextAttemptAt, at),
        None => update.values([
            (OutboxMessages::Status, DEAD.into()),
            (OutboxMessages::Payload, Option::<String>::None.into()),
        ]),
    };
    tx.execute(&update).await.map(drop)
}

/// A message as operators see it (no payload).
#[derive(Debug, sqlx::FromRow)]
pub struct MessageRow {
    pub id: String,
    pub channel: String,
    pub kind: String,
    pub recipient_hint: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    pub payload_present: bool,
}

/// The query of a project's messages, optionally of one status (paged by
/// the caller, newest first by id).
pub fn list_query(project_id: &str, status: Option<&str>) -> SelectStatement {
    let mut q = Query::select();
    q.columns([
        OutboxMessages::Id,
        OutboxMessages::Channel,
        OutboxMessages::Kind,
        OutboxMessages::RecipientHint,
        OutboxMessages::Status,
        OutboxMessages::Attempts,
        OutboxMessages::NextAttemptAt,
        OutboxMessages::LastError,
        OutboxMessages::CreatedAt,
        OutboxMessages::SentAt,
    ])
    .expr_as(
        Expr::col(OutboxMessages::Payload).is_not_null(),
        "payload_present",
    )
    .from(OutboxMessages::Table)
    .and_where(Expr::col(OutboxMessages::ProjectId).eq(project_id));
    if let Some(status) = status {
        q.and_where(Expr::col(OutboxMessages::Status).eq(status));
    }
    q
}

/// Messages of `channel` (and `kind`, if given) for this project since
/// `since` (unix ms), optionally to one recipient (by its keyed hash): the
/// caps.
pub async fn count_since<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    channel: &str,
    kind: Option<&str>,
    recipient_hash: Option<&str>,
    since: i64,
) -> Result<i64, DbError> {
    let mut q = Query::select();
    q.expr(Expr::col(OutboxMessages::Id).count())
        .from(OutboxMessages::Table)
        .and_where(Expr::col(OutboxMessages::ProjectId).eq(project_id))
        .and_where(Expr::col(OutboxMessages::Channel).eq(channel))
        .and_where(Expr::col(OutboxMessages::CreatedAt).gte(since));
    if let Some(h) = recipient_hash {
        q.and_where(Expr::col(OutboxMessages::RecipientHash).eq(h));
    }
    if let Some(k) = kind {
        q.and_where(Expr::col(OutboxMessages::Kind).eq(k));
    }
    let (n,): (i64,) = tx.fetch_optional(&q).await?.unwrap_or((0,));
    Ok(n)
}

/// When the oldest message still waiting for delivery was written, across
/// every project (a control transaction).
pub async fn oldest_queued<M>(tx: &mut Tx<M>) -> Result<Option<i64>, DbError> {
    let (at,): (Option<i64>,) = tx
        .fetch_optional(
            Query::select()
                .expr(Expr::col(OutboxMessages::CreatedAt).min())
                .from(OutboxMessages::Table)
                .and_where(Expr::col(OutboxMessages::Status).eq(QUEUED)),
        )
        .await?
        .unwrap_or((None,));
    Ok(at)
}

/// Messages by channel, kind and status across every project (a control
/// transaction): `identity doctor` and the metrics.
pub async fn totals<M>(tx: &mut Tx<M>) -> Result<Vec<(String, String, String, i64)>, DbError> {
    tx.fetch_all(
        Query::select()
            .columns([
                OutboxMessages::Channel,
                OutboxMessages::Kind,
                OutboxMessages::Status,
            ])
            .expr(Expr::col(OutboxMessages::Id).count())
            .from(OutboxMessages::Table)
            .group_by_columns([
                OutboxMessages::Channel,
                OutboxMessages::Kind,
                OutboxMessages::Status,
            ]),
    )
    .await
}
