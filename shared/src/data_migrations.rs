//! Data migrations that SQL cannot express, run after the schema
//! migrations (`identity migrate up`, and at start where the schema is
//! migrated automatically). Each runs once and records a report.

use sea_query::{Expr, ExprTrait, OnConflict, Order, Query};
use serde_json::json;

use crate::db::{Db, DbError, Tx};
use crate::schema::{DataMigrations, Users};
use crate::time::now_ms;

const EMAIL_CANONICAL: &str = "email_canonical_v1";

/// Runs every data migration not yet applied.
pub async fn run(db: &Db) -> Result<(), DbError> {
    if applied(&mut db.control_read().await?, EMAIL_CANONICAL).await? {
        return Ok(());
    }
    // One transaction, locked: nodes migrating at once do it once.
    let mut tx = db.control().await?;
    tx.lock_key("data-migration").await?;
    if applied(&mut tx, EMAIL_CANONICAL).await? {
        return Ok(());
    }
    match recanonicalise_emails(&mut tx).await {
        Ok(report) => {
            record(&mut tx, EMAIL_CANONICAL, &report).await?;
            tx.commit().await
        }
        // A sign-up raced the migration to the same address: try again at
        // the next start rather than refuse to start.
        Err(DbError::UniqueViolation(c)) => {
            tracing::warn!(constraint = %c, "email re-check met a concurrent sign-up; it runs again at the next start");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

async fn applied<M>(tx: &mut Tx<M>, name: &str) -> Result<bool, DbError> {
    let row: Option<(String,)> = tx
        .fetch_optional(
            Query::select()
                .column(DataMigrations::Name)
                .from(DataMigrations::Table)
                .and_where(Expr::col(DataMigrations::Name).eq(name)),
        )
        .await?;
    Ok(row.is_some())
}

async fn record(tx: &mut Tx, name: &str, report: &serde_json::Value) -> Result<(), DbError> {
    tx.execute(
        Query::insert()
            .into_table(DataMigrations::Table)
            .columns([
                DataMigrations::Name,
                DataMigrations::AppliedAt,
                DataMigrations::Report,
            ])
            .values_panic([name.into(), now_ms().into(), report.to_string().into()])
            .on_conflict(
                OnConflict::column(DataMigrations::Name)
                    .do_nothing()
                    .to_owned(),
            ),
    )
    .await?;
    Ok(())
}

/// The report of a data migration, if it ran.
pub async fn report(db: &Db, name: &str) -> Result<Option<serde_json::Value>, DbError> {
    let mut tx = db.control_read().await?;
    let row: Option<(String,)> = tx
        .fetch_optional(
            Query::select()
                .column(DataMigrations::Report)
                .from(DataMigrations::Table)
                .and_where(Expr::col(DataMigrations::Name).eq(name)),
        )
        .await?;
    tx.commit().await?;
    Ok(row.and_then(|r| serde_json::from_str(&r.0).ok()))
}

/// The report of the email re-check, for `identity doctor`.
pub async fn email_report(db: &Db) -> Result<Option<serde_json::Value>, DbError> {
    report(db, EMAIL_CANONICAL).await
}

#[derive(sqlx::FromRow)]
struct UserEmail {
    id: String,
    project_id: String,
    email: String,
    email_normalized: String,
}

/// Brings every user's `email_normalized` to the canonical form. Two
/// accounts that turn out to be one mailbox are reported and left as they
/// are, never merged: an operator decides which one stays.
async fn recanonicalise_emails(tx: &mut Tx) -> Result<serde_json::Value, DbError> {
    let mut updated = 0u64;
    let mut collisions = Vec::new();
    let mut unparseable = Vec::new();
    let mut after = String::new();
    loop {
        let batch: Vec<UserEmail> = tx
            .fetch_all(
                Query::select()
                    .columns([
                        Users::Id,
                        Users::ProjectId,
                        Users::Email,
                        Users::EmailNormalized,
                    ])
                    .from(Users::Table)
                    .and_where(Expr::col(Users::Id).gt(after.as_str()))
                    .order_by(Users::Id, Order::Asc)
                    .limit(500),
            )
            .await?;
        let Some(last) = batch.last() else {
            break;
        };
        after = last.id.clone();
        for user in &batch {
            let Some(canonical) = crate::email::canonical(&user.email) else {
                // Left as stored (the old form still finds it), and reported.
                unparseable.push(json!({"project_id": user.project_id, "user_id": user.id}));
                continue;
            };
            if canonical == user.email_normalized {
                continue;
            }
            let other: Option<(String,)> = tx
                .fetch_optional(
                    Query::select()
                        .column(Users::Id)
                        .from(Users::Table)
                        .and_where(Expr::col(Users::ProjectId).eq(user.project_id.as_str()))
                        .and_where(Expr::col(Users::EmailNormalized).eq(canonical.as_str())),
                )
                .await?;
            if let Some((other,)) = other {
                tracing::warn!(
                    project_id = %user.project_id,
                    user_id = %user.id,
                    other_user_id = %other,
                    "two accounts are one mailbox; left unmerged"
                );
                collisions.push(json!({
                    "project_id": user.project_id,
                    "user_ids": [user.id, other],
                }));
                continue;
            }
            tx.execute(
                Query::update()
                    .table(Users::Table)
                    .value(Users::EmailNormalized, canonical.as_str())
                    .and_where(Expr::col(Users::Id).eq(user.id.as_str())),
            )
            .await?;
            updated += 1;
        }
    }
    Ok(json!({"updated": updated, "collisions": collisions, "unparseable": unparseable}))
}
