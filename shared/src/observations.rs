//! What a running node noticed that the operator should hear about from
//! `identity doctor` (which runs as a separate process): one row per kind,
//! the latest occurrence.

use sea_query::{Expr, ExprTrait, OnConflict, Query};

use crate::db::{Db, DbError};
use crate::schema::NodeObservations;
use crate::time::now_ms;

/// `X-Forwarded-For` arrived from a peer that is not a trusted proxy.
pub const UNTRUSTED_FORWARDED_FOR: &str = "untrusted_forwarded_for";

pub async fn record(db: &Db, name: &str, detail: &str) -> Result<(), DbError> {
    let mut tx = db.control().await?;
    tx.execute(
        Query::insert()
            .into_table(NodeObservations::Table)
            .columns([
                NodeObservations::Name,
                NodeObservations::Detail,
                NodeObservations::ObservedAt,
            ])
            .values_panic([name.into(), detail.into(), now_ms().into()])
            .on_conflict(
                OnConflict::column(NodeObservations::Name)
                    .update_columns([NodeObservations::Detail, NodeObservations::ObservedAt])
                    .to_owned(),
            ),
    )
    .await?;
    tx.commit().await
}

/// The latest occurrence of `name`: its detail and time (unix ms).
pub async fn latest(db: &Db, name: &str) -> Result<Option<(String, i64)>, DbError> {
    let mut tx = db.control_read().await?;
    let row: Option<(String, i64)> = tx
        .fetch_optional(
            Query::select()
                .columns([NodeObservations::Detail, NodeObservations::ObservedAt])
                .from(NodeObservations::Table)
                .and_where(Expr::col(NodeObservations::Name).eq(name)),
        )
        .await?;
    tx.commit().await?;
    Ok(row)
}
