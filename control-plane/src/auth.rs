//! Operator authentication and operator tokens.
//!
//! Every admin call carries `Authorization: Bearer <operator token>`,
//! looked up by its SHA-256 hash. Tokens have a name, a source (`env`: from
//! `IDENTITY_ADMIN_TOKEN`; `bootstrap`: generated at first start; `api`/`cli`:
//! created later) and a last-used time. The environment's token replaces
//! the previous environment-sourced one at start, so rotating the variable
//! retires the old value; any token can be revoked.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{delete, get};
use axum::{Json, Router};
use identity_shared::crypto::sha256_hex;
use identity_shared::db::{Db, DbError, Tx};
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::http;
use identity_shared::ids::{new_id, random_base32};
use identity_shared::schema::OperatorTokens;
use identity_shared::time::{now_ms, rfc3339};
use sea_query::{Expr, ExprTrait, Order, Query};
use serde::{Deserialize, Serialize};

use crate::ControlState;

/// `last_used_at` is written at most this often per token.
const LAST_USED_GRANULARITY_MS: i64 = 60_000;

pub fn router() -> Router<ControlState> {
    Router::new()
        .route("/v1/operator-tokens", get(list).post(create))
        .route("/v1/operator-tokens/{id}", delete(revoke))
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct TokenRow {
    id: String,
    name: String,
    source: String,
    created_at: i64,
    last_used_at: Option<i64>,
}

/// An operator token as the API and the CLI show it (never its value).
#[derive(Debug, Serialize)]
pub struct OperatorToken {
    pub id: String,
    pub name: String,
    pub source: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

impl From<TokenRow> for OperatorToken {
    fn from(r: TokenRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            source: r.source,
            created_at: rfc3339(r.created_at),
            last_used_at: r.last_used_at.map(rfc3339),
        }
    }
}

const COLUMNS: [OperatorTokens; 5] = [
    OperatorTokens::Id,
    OperatorTokens::Name,
    OperatorTokens::Source,
    OperatorTokens::CreatedAt,
    OperatorTokens::LastUsedAt,
];

fn unauthorized(message: &str) -> ApiError {
    ApiError::unauthorized("unauthorized", message.to_string())
}

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
        .ok_or_else(|| unauthorized("an operator token is required"))?;
    let hash = sha256_hex(token.as_bytes());
    // Looked up by its hash: the comparison never touches the token itself.
    let row: Option<(String, Option<i64>)> = {
        let mut tx = state.db.control_read().await?;
        let row = tx
            .fetch_optional(
                Query::select()
                    .columns([OperatorTokens::Id, OperatorTokens::LastUsedAt])
                    .from(OperatorTokens::Table)
                    .and_where(Expr::col(OperatorTokens::TokenHash).eq(hash))
                    .and_where(Expr::col(OperatorTokens::RevokedAt).is_null()),
            )
            .await?;
        tx.commit().await?;
        row
    };
    let Some((id, last_used)) = row else {
        return Err(unauthorized("the operator token is not valid"));
    };
    let now = now_ms();
    if last_used.is_none_or(|t| now - t >= LAST_USED_GRANULARITY_MS) {
        // Off the request's path: a failed note never fails the call.
        let db = state.db.clone();
        tokio::spawn(async move {
            if let Err(e) = touch(&db, &id, now).await {
                tracing::warn!(error = %e, "could not record an operator token's use");
            }
        });
    }
    Ok(next.run(req).await)
}

async fn touch(db: &Db, id: &str, now: i64) -> Result<(), DbError> {
    let mut tx = db.control().await?;
    tx.execute(
        Query::update()
            .table(OperatorTokens::Table)
            .value(OperatorTokens::LastUsedAt, now)
            .and_where(Expr::col(OperatorTokens::Id).eq(id)),
    )
    .await?;
    tx.commit().await
}

async fn insert(tx: &mut Tx, token: &str, name: &str, source: &str) -> Result<TokenRow, DbError> {
    let row = TokenRow {
        id: new_id("opt"),
        name: name.to_string(),
        source: source.to_string(),
        created_at: now_ms(),
        last_used_at: None,
    };
    tx.execute(
        Query::insert()
            .into_table(OperatorTokens::Table)
            .columns([
                OperatorTokens::Id,
                OperatorTokens::TokenHash,
                OperatorTokens::Name,
                OperatorTokens::Source,
                OperatorTokens::CreatedAt,
            ])
            .values_panic([
                row.id.clone().into(),
                sha256_hex(token.as_bytes()).into(),
                row.name.clone().into(),
                row.source.clone().into(),
                row.created_at.into(),
            ]),
    )
    .await?;
    Ok(row)
}

fn new_value() -> String {
    format!("idop_{}", random_base32(52))
}

/// Ensures an operator token exists. With `configured` (the environment's
/// token), that token is registered as the one environment-sourced token:
/// a previous environment token is deleted, so changing the variable
/// retires the old value. With none and no tokens yet, a new one is
/// generated and returned so the caller can print it once.
pub async fn bootstrap_operator_token(
    db: &Db,
    configured: Option<&str>,
) -> Result<Option<String>, DbError> {
    let mut tx = db.control().await?;
    let Some(token) = configured else {
        tx.lock_key("operator-tokens").await?;
        let any: Option<(String,)> = tx
            .fetch_optional(
                Query::select()
                    .column(OperatorTokens::Id)
                    .from(OperatorTokens::Table)
                    .and_where(Expr::col(OperatorTokens::RevokedAt).is_null())
                    .limit(1),
            )
            .await?;
        if any.is_some() {
            return Ok(None);
        }
        let value = new_value();
        insert(&mut tx, &value, "bootstrap", "bootstrap").await?;
        tx.commit().await?;
        return Ok(Some(value));
    };
    // Nodes starting together register the token once.
    tx.lock_key("operator-tokens").await?;
    let hash = sha256_hex(token.as_bytes());
    let known: Option<(String, Option<i64>)> = tx
        .fetch_optional(
            Query::select()
                .columns([OperatorTokens::Id, OperatorTokens::RevokedAt])
                .from(OperatorTokens::Table)
                .and_where(Expr::col(OperatorTokens::TokenHash).eq(hash.as_str())),
        )
        .await?;
    if let Some((_, Some(_))) = known {
        return Err(DbError::Setup(
            "IDENTITY_ADMIN_TOKEN holds a token that was revoked; set a new value".into(),
        ));
    }
    let replaced = tx
        .execute(
            Query::update()
                .table(OperatorTokens::Table)
                .value(OperatorTokens::RevokedAt, now_ms())
                .and_where(Expr::col(OperatorTokens::Source).eq("env"))
                .and_where(Expr::col(OperatorTokens::RevokedAt).is_null())
                .and_where(Expr::col(OperatorTokens::TokenHash).ne(hash.as_str())),
        )
        .await?;
    if replaced > 0 {
        tracing::info!("IDENTITY_ADMIN_TOKEN changed: the previous environment token is revoked");
    }
    if known.is_none() {
        insert(&mut tx, token, "IDENTITY_ADMIN_TOKEN", "env").await?;
    }
    tx.commit().await?;
    Ok(None)
}

/// Creates a token; returns it and its value (shown once).
pub async fn create_token(db: &Db, name: &str, source: &str) -> ApiResult<(OperatorToken, String)> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::unprocessable(
            "invalid_name",
            "name must be 1 to 100 characters without control characters",
        ));
    }
    let value = new_value();
    let mut tx = db.control().await?;
    let row = insert(&mut tx, &value, name, source).await?;
    tx.commit().await?;
    Ok((row.into(), value))
}

pub async fn list_tokens(db: &Db) -> Result<Vec<OperatorToken>, DbError> {
    let mut tx = db.control_read().await?;
    let rows: Vec<TokenRow> = tx
        .fetch_all(
            Query::select()
                .columns(COLUMNS)
                .from(OperatorTokens::Table)
                .and_where(Expr::col(OperatorTokens::RevokedAt).is_null())
                .order_by(OperatorTokens::Id, Order::Asc),
        )
        .await?;
    tx.commit().await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Revokes a token at once. The last token cannot go: nobody could
/// administer the deployment afterwards (`409 last_operator_token`).
pub async fn revoke_token(db: &Db, id: &str) -> ApiResult<()> {
    let mut tx = db.control().await?;
    // Serialise revocations so two of them cannot remove the last two.
    tx.lock_key("operator-tokens").await?;
    let all: Vec<(String,)> = tx
        .fetch_all(
            Query::select()
                .column(OperatorTokens::Id)
                .from(OperatorTokens::Table)
                .and_where(Expr::col(OperatorTokens::RevokedAt).is_null()),
        )
        .await?;
    if !all.iter().any(|(t,)| t == id) {
        return Err(ApiError::not_found("operator token"));
    }
    if all.len() == 1 {
        return Err(ApiError::conflict(
            "last_operator_token",
            "the last operator token cannot be revoked; create another first",
        ));
    }
    // Kept, revoked: its hash can never be registered again.
    tx.execute(
        Query::update()
            .table(OperatorTokens::Table)
            .value(OperatorTokens::RevokedAt, now_ms())
            .and_where(Expr::col(OperatorTokens::Id).eq(id)),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
}

#[derive(Serialize)]
struct Created {
    token: OperatorToken,
    value: String,
}

async fn create(
    State(state): State<ControlState>,
    http::Json(body): http::Json<CreateBody>,
) -> ApiResult<(StatusCode, Json<Created>)> {
    let (token, value) = create_token(&state.db, &body.name, "api").await?;
    Ok((StatusCode::CREATED, Json(Created { token, value })))
}

#[derive(Serialize)]
struct TokenList {
    items: Vec<OperatorToken>,
    next_cursor: Option<String>,
}

async fn list(State(state): State<ControlState>) -> ApiResult<Json<TokenList>> {
    Ok(Json(TokenList {
        items: list_tokens(&state.db).await?,
        next_cursor: None,
    }))
}

async fn revoke(
    State(state): State<ControlState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    revoke_token(&state.db, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
