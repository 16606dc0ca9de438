//! Projects: create (with a key pair and a signing key), list, get, patch
//! (name, status, settings), delete (with everything it owns).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use identity_shared::db::{DbError, Tx};
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::http::{self, ListParams, Page};
use identity_shared::ids::new_id;
use identity_shared::invalidation::Invalidation;
use identity_shared::keys::{self, KeyKind};
use identity_shared::schema::{ProjectId, Projects};
use identity_shared::settings::ProjectSettings;
use identity_shared::time::now_ms;
use sea_query::{Expr, ExprTrait, Query};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{ControlState, project_keys, signing_keys};

pub fn router() -> Router<ControlState> {
    Router::new()
        .route("/v1/projects", get(list).post(create))
        .route("/v1/projects/{id}", get(show).patch(update).delete(remove))
}

pub use crate::project_store::{COLUMNS, ProjectRow, list_all, load, validate_name};

pub struct CreatedProject {
    pub project: ProjectRow,
    pub publishable_key: String,
    pub secret_key: String,
}

/// Creates a project with one publishable key, one secret key and an active
/// signing key, in one transaction.
pub async fn create_project(state: &ControlState, name: &str) -> ApiResult<CreatedProject> {
    let name = validate_name(name)?;
    let settings = ProjectSettings::default();
    let signing = signing_keys::generate(settings.signing_alg).await?;
    let now = now_ms();
    let project = ProjectRow {
        id: new_id("prj"),
        name,
        status: "active".into(),
        shard_id: "default".into(),
        settings: settings.to_stored(),
        created_at: now,
        updated_at: now,
    };
    let pk = keys::generate(KeyKind::Publishable);
    let sk = keys::generate(KeyKind::Secret);
    let mut tx = state.db.control().await?;
    tx.execute(
        Query::insert()
            .into_table(Projects::Table)
            .columns(COLUMNS)
            .values_panic([
                project.id.clone().into(),
                project.name.clone().into(),
                project.status.clone().into(),
                project.shard_id.clone().into(),
                project.settings.clone().into(),
                now.into(),
                now.into(),
            ]),
    )
    .await?;
    project_keys::insert(&mut tx, &project.id, &pk).await?;
    project_keys::insert(&mut tx, &project.id, &sk).await?;
    signing_keys::insert(
        &mut tx,
        &state.master_key,
        &project.id,
        &signing,
        true,
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(CreatedProject {
        project,
        publishable_key: pk.value,
        secret_key: sk.value,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
}

async fn create(
    State(state): State<ControlState>,
    http::Json(body): http::Json<CreateBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let created = create_project(&state, &body.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "project": created.project.to_json(),
            "keys": {"publishable": created.publishable_key, "secret": created.secret_key},
        })),
    ))
}

async fn list(
    State(state): State<ControlState>,
    http::Query(params): http::Query<ListParams>,
) -> ApiResult<Json<Page<Value>>> {
    let mut q = Query::select();
    q.columns(COLUMNS).from(Projects::Table);
    let mut tx = state.db.control().await?;
    let page = params
        .fetch_page(&mut tx, q, Projects::Id, false, |r: &ProjectRow| {
            r.id.clone()
        })
        .await?;
    tx.commit().await?;
    Ok(Json(page.map(|r| r.to_json())))
}

async fn show(State(state): State<ControlState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let mut tx = state.db.control().await?;
    let project = load(&mut tx, &id).await?;
    tx.commit().await?;
    Ok(Json(json!({"project": project.to_json()})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    name: Option<String>,
    status: Option<Status>,
    settings: Option<Value>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Status {
    Active,
    Suspended,
}

async fn update(
    State(state): State<ControlState>,
    Path(id): Path<String>,
    http::Json(body): http::Json<PatchBody>,
) -> ApiResult<Json<Value>> {
    let name = body.name.as_deref().map(validate_name).transpose()?;
    let mut tx = state.db.control().await?;
    let mut project = load(&mut tx, &id).await?;
    let mut settings = project.settings();
    let old_alg = settings.signing_alg;
    if let Some(patch) = &body.settings {
        settings
            .apply_patch(patch)
            .map_err(|m| ApiError::unprocessable("invalid_settings", m))?;
    }
    if let Some(name) = name {
        project.name = name;
    }
    if let Some(status) = body.status {
        project.status = match status {
            Status::Active => "active",
            Status::Suspended => "suspended",
        }
        .into();
    }
    project.settings = settings.to_stored();
    project.updated_at = now_ms();
    tx.execute(
        Query::update()
            .table(Projects::Table)
            .values([
                (Projects::Name, project.name.clone().into()),
                (Projects::Status, project.status.clone().into()),
                (Projects::Settings, project.settings.clone().into()),
                (Projects::UpdatedAt, project.updated_at.into()),
            ])
            .and_where(Expr::col(Projects::Id).eq(&project.id)),
    )
    .await?;
    if settings.signing_alg != old_alg {
        // Tokens are signed with the project's algorithm: switching it rotates
        // to a key of the new kind, keeping the old one published.
        let key = signing_keys::generate(settings.signing_alg).await?;
        signing_keys::rotate_in(&mut tx, &state.master_key, &project.id, &key).await?;
    }
    tx.invalidate(Invalidation::Project(project.id.clone()))
        .await?;
    tx.commit().await?;
    Ok(Json(json!({"project": project.to_json()})))
}

async fn remove(
    State(state): State<ControlState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let mut tx = state.db.control().await?;
    let project = load(&mut tx, &id).await?;
    delete_project_rows(&mut tx, &project.id).await?;
    tx.invalidate(Invalidation::Project(project.id.clone()))
        .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every table that holds a project's rows (a `project_id` column),
/// dependents first. A Postgres test compares it with the catalog, so a
/// table added later without being listed here fails it.
pub const PROJECT_TABLES: &[&str] = &[
    "group_members",
    "tenant_groups",
    "invitations",
    "tenant_members",
    "identities",
    "outbox_messages",
    "one_time_codes",
    "mfa_challenges",
    "trusted_browsers",
    "passkey_ceremonies",
    "passkeys",
    "mfa_recovery_codes",
    "mfa_totp",
    "oauth_providers",
    "refresh_tokens",
    "sessions",
    "login_failures",
    "audit_events",
    "users",
    "tenant_domains",
    "tenants",
    "auth_domains",
    "signing_keys",
    "project_keys",
];

/// Deletes the project and every row it owns. With one database the
/// data-plane rows live here too; with several shards, this becomes one
/// delete per shard (ADR 0001).
async fn delete_project_rows(tx: &mut Tx, project_id: &str) -> Result<(), DbError> {
    for table in PROJECT_TABLES {
        tx.execute(
            Query::delete()
                .from_table(sea_query::Alias::new(*table))
                .and_where(Expr::col(ProjectId).eq(project_id)),
        )
        .await?;
    }
    tx.execute(
        Query::delete()
            .from_table(Projects::Table)
            .and_where(Expr::col(Projects::Id).eq(project_id)),
    )
    .await?;
    Ok(())
}
