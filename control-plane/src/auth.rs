//! Operator authentication: `Authorization: Bearer <operator token>`, checked
//! against stored SHA-256 hashes.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use identity_shared::crypto::sha256_hex;
use identity_shared::db::{Db, DbError};
use identity_shared::error::ApiError;
use identity_shared::ids::{new_id, random_base32};
use identity_shared::schema::OperatorTokens;
use identity_shared::time::now_ms;
use sea_query::{Expr, ExprTrait, Query};

use crate::ControlState;

pub async fn require_operator(
    State(state): State<ControlState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let token = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 512)
        .ok_or_else(|| ApiError::unauthorized("unauthorized", "an operator token is required"))?;
    if !token_exists(&state.db, token).await? {
        return Err(ApiError::unauthorized(
            "unauthorized",
            "the operator token is not valid",
        ));
    }
    Ok(next.run(req).await)
}

async fn token_exists(db: &Db, token: &str) -> Result<bool, DbError> {
    // Looked up by its hash: the comparison never touches the token itself.
    let mut tx = db.control_read().await?;
    let row: Option<(String,)> = tx
        .fetch_optional(
            Query::select()
                .column(OperatorTokens::Id)
                .from(OperatorTokens::Table)
                .and_where(Expr::col(OperatorTokens::TokenHash).eq(sha256_hex(token.as_bytes()))),
        )
        .await?;
    tx.commit().await?;
    Ok(row.is_some())
}

/// Ensures an operator token exists. With `configured`, that token is
/// registered (idempotently); with none and no tokens yet, a new one is
/// generated and returned so the caller can print it once.
pub async fn bootstrap_operator_token(
    db: &Db,
    configured: Option<&str>,
) -> Result<Option<String>, DbError> {
    let mut tx = db.control().await?;
    let (token, name) = match configured {
        Some(t) => {
            let known: Option<(String,)> = tx
                .fetch_optional(
                    Query::select()
                        .column(OperatorTokens::Id)
                        .from(OperatorTokens::Table)
                        .and_where(
                            Expr::col(OperatorTokens::TokenHash).eq(sha256_hex(t.as_bytes())),
                        ),
                )
                .await?;
            if known.is_some() {
                return Ok(None);
            }
            (t.to_string(), "IDENTITY_ADMIN_TOKEN")
        }
        None => {
            let any: Option<(String,)> = tx
                .fetch_optional(
                    Query::select()
                        .column(OperatorTokens::Id)
                        .from(OperatorTokens::Table)
                        .limit(1),
                )
                .await?;
            if any.is_some() {
                return Ok(None);
            }
            (format!("idop_{}", random_base32(52)), "bootstrap")
        }
    };
    tx.execute(
        Query::insert()
            .into_table(OperatorTokens::Table)
            .columns([
                OperatorTokens::Id,
                OperatorTokens::TokenHash,
                OperatorTokens::Name,
                OperatorTokens::CreatedAt,
            ])
            .values_panic([
                new_id("opt").into(),
                sha256_hex(token.as_bytes()).into(),
                name.into(),
                now_ms().into(),
            ]),
    )
    .await?;
    tx.commit().await?;
    Ok(if configured.is_some() {
        None
    } else {
        Some(token)
    })
}
