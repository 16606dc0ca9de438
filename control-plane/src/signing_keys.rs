//! Per-project signing keys. The private half is sealed under the master key;
//! rotation retires the active key but keeps it in the JWKS until every
//! token it signed has expired.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use identity_shared::audit::{self, Event, Outcome};
use identity_shared::crypto::MasterKey;
use identity_shared::db::{DbError, Tx};
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::invalidation::Invalidation;
use identity_shared::jwks::{self, GeneratedKey};
use identity_shared::schema::SigningKeys;
use identity_shared::settings::{MAX_ACCESS_TOKEN_TTL_SECONDS, SigningAlg};
use identity_shared::time::{now_ms, rfc3339};
use sea_query::{Expr, ExprTrait, Order, Query};
use serde_json::{Value, json};

use crate::{ControlState, project_store};

/// Allowance for clock skew between nodes and relying parties.
const CLOCK_SKEW_MS: i64 = 60_000;

pub fn router() -> Router<ControlState> {
    Router::new()
        .route("/v1/projects/{id}/signing-keys", get(list))
        .route("/v1/projects/{id}/signing-keys/rotate", post(rotate))
}

/// Key generation (RSA especially) is CPU work: off the async runtime.
pub async fn generate(alg: SigningAlg) -> ApiResult<GeneratedKey> {
    tokio::task::spawn_blocking(move || jwks::generate(alg))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

pub async fn insert(
    tx: &mut Tx,
    master_key: &MasterKey,
    project_id: &str,
    key: &GeneratedKey,
    active: bool,
    publish_until: Option<i64>,
) -> Result<(), DbError> {
    let sealed = master_key.seal(&key.private_pkcs8, &key.kid);
    tx.execute(
        Query::insert()
            .into_table(SigningKeys::Table)
            .columns([
                SigningKeys::Id,
                SigningKeys::ProjectId,
                SigningKeys::Alg,
                SigningKeys::PublicJwk,
                SigningKeys::PrivateSealed,
                SigningKeys::Active,
                SigningKeys::CreatedAt,
                SigningKeys::PublishUntil,
            ])
            .values_panic([
                key.kid.clone().into(),
                project_id.into(),
                key.alg.as_str().into(),
                key.public_jwk.to_string().into(),
                sealed.into(),
                active.into(),
                now_ms().into(),
                publish_until.into(),
            ]),
    )
    .await?;
    Ok(())
}

/// Retires the project's active keys and installs `key` as the active one.
pub async fn rotate_in(
    tx: &mut Tx,
    master_key: &MasterKey,
    project_id: &str,
    key: &GeneratedKey,
) -> Result<(), DbError> {
    let now = now_ms();
    // Published until every token the key could have signed has expired:
    // the longest TTL a project may set, not today's setting (which may
    // have been longer when the token was issued), plus clock skew.
    let publish_until = now + i64::from(MAX_ACCESS_TOKEN_TTL_SECONDS) * 1000 + CLOCK_SKEW_MS;
    tx.execute(
        Query::update()
            .table(SigningKeys::Table)
            .values([
                (SigningKeys::Active, false.into()),
                (SigningKeys::RetiredAt, now.into()),
                (SigningKeys::PublishUntil, publish_until.into()),
            ])
            .and_where(Expr::col(SigningKeys::ProjectId).eq(project_id))
            .and_where(Expr::col(SigningKeys::Active).eq(true)),
    )
    .await?;
    insert(tx, master_key, project_id, key, true, None).await?;
    tx.invalidate(Invalidation::Project(project_id.to_string()))
        .await?;
    audit::record(
        tx,
        Event {
            actor: Some("operator"),
            data: serde_json::json!({"kid": key.kid, "alg": key.alg.as_str()}),
            ..Event::new(project_id, "signing_key.rotated", Outcome::Success)
        },
    )
    .await?;
    Ok(())
}

/// Rotates a project's signing key; returns the new key id.
pub async fn rotate_project(state: &ControlState, project_id: &str) -> ApiResult<String> {
    // The key is generated (slow for RSA) before the transaction that installs it.
    let mut tx = state.db.control().await?;
    let settings = project_store::load(&mut tx, project_id).await?.settings();
    drop(tx);
    let key = generate(settings.signing_alg).await?;
    let mut tx = state.db.control().await?;
    let project = project_store::load(&mut tx, project_id).await?;
    rotate_in(&mut tx, &state.master_key, &project.id, &key).await?;
    tx.commit().await?;
    Ok(key.kid)
}

async fn rotate(
    State(state): State<ControlState>,
    Path(project_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let kid = rotate_project(&state, &project_id).await?;
    Ok(Json(json!({"kid": kid})))
}

#[derive(sqlx::FromRow)]
struct KeySummary {
    id: String,
    alg: String,
    active: bool,
    created_at: i64,
    retired_at: Option<i64>,
    publish_until: Option<i64>,
}

async fn list(
    State(state): State<ControlState>,
    Path(project_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let mut tx = state.db.control().await?;
    let project = project_store::load(&mut tx, &project_id).await?;
    let rows: Vec<KeySummary> = tx
        .fetch_all(
            Query::select()
                .columns([
                    SigningKeys::Id,
                    SigningKeys::Alg,
                    SigningKeys::Active,
                    SigningKeys::CreatedAt,
                    SigningKeys::RetiredAt,
                    SigningKeys::PublishUntil,
                ])
                .from(SigningKeys::Table)
                .and_where(Expr::col(SigningKeys::ProjectId).eq(&project.id))
                .order_by(SigningKeys::CreatedAt, Order::Desc),
        )
        .await?;
    tx.commit().await?;
    let now = now_ms();
    let items: Vec<Value> = rows
        .into_iter()
        .map(|k| {
            json!({
                "kid": k.id,
                "alg": k.alg,
                "active": k.active,
                "published": k.active || k.publish_until.is_some_and(|t| t > now),
                "created_at": rfc3339(k.created_at),
                "retired_at": k.retired_at.map(rfc3339),
                "publish_until": k.publish_until.map(rfc3339),
            })
        })
        .collect();
    Ok(Json(json!({"items": items, "next_cursor": null})))
}
