//! Users: the repository every flow uses, email validation, and the
//! server-side user calls (secret key only).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use identity_shared::audit::{self, Event, Outcome};
use identity_shared::db::{DbError, Tx};
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::http::{self, ListParams, Page};
use identity_shared::ids::new_id;
use identity_shared::schema::Users;
use identity_shared::secret::Secret;
use identity_shared::time::{now_ms, rfc3339};
use sea_query::{Expr, ExprTrait, Query};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::client::Client;
use crate::passwords;
use crate::resolve::{Resolved, Via};
use crate::{DataState, sessions};

/// `Debug` leaves the password hash out.
#[derive(Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: String,
    pub project_id: String,
    pub email: String,
    pub email_normalized: String,
    pub email_verified: bool,
    pub name: Option<String>,
    pub password_hash: Option<String>,
    pub mfa_enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: [Users; 10] = [
    Users::Id,
    Users::ProjectId,
    Users::Email,
    Users::EmailNormalized,
    Users::EmailVerified,
    Users::Name,
    Users::PasswordHash,
    Users::MfaEnabled,
    Users::CreatedAt,
    Users::UpdatedAt,
];

impl std::fmt::Debug for UserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRow")
            .field("id", &self.id)
            .field("project_id", &self.project_id)
            .field("email", &self.email)
            .field("email_verified", &self.email_verified)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

impl UserRow {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "email": self.email,
            "email_verified": self.email_verified,
            "name": self.name,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
            "mfa_enabled": self.mfa_enabled,
        })
    }
}

/// A validated email: `typed` is stored as given (trimmed), `normalized`
/// (the canonical form, see `identity_shared::email`) is what uniqueness
/// and lookups use.
#[derive(Debug, Clone)]
pub struct Email {
    pub typed: String,
    pub normalized: String,
}

impl Email {
    pub fn parse(input: &str) -> ApiResult<Email> {
        let e = identity_shared::email::Email::parse(input).map_err(|why| {
            ApiError::unprocessable(
                "invalid_email",
                format!("the email address is not valid: {why}"),
            )
        })?;
        Ok(Email {
            typed: e.typed,
            normalized: e.canonical,
        })
    }
}

/// A display name: trimmed, at most 200 characters, no control characters.
pub fn parse_name(name: Option<&str>) -> ApiResult<Option<String>> {
    let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(ApiError::unprocessable(
            "invalid_name",
            "name must be at most 200 characters without control characters",
        ));
    }
    Ok(Some(name.to_string()))
}

pub async fn find_by_email<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    normalized: &str,
) -> Result<Option<UserRow>, DbError> {
    tx.fetch_optional(
        Query::select()
            .columns(COLUMNS)
            .from(Users::Table)
            .and_where(Expr::col(Users::ProjectId).eq(project_id))
            .and_where(Expr::col(Users::EmailNormalized).eq(normalized)),
    )
    .await
}

pub async fn find<M>(
    tx: &mut Tx<M>,
    project_id: &str,
    id: &str,
) -> Result<Option<UserRow>, DbError> {
    tx.fetch_optional(
        Query::select()
            .columns(COLUMNS)
            .from(Users::Table)
            .and_where(Expr::col(Users::ProjectId).eq(project_id))
            .and_where(Expr::col(Users::Id).eq(id)),
    )
    .await
}

pub struct NewUser {
    pub email: Email,
    pub name: Option<String>,
    pub password_hash: Option<String>,
    pub email_verified: bool,
}

/// Inserts a user; `409 email_taken` when the email is in use in the project.
pub async fn insert(tx: &mut Tx, project_id: &str, new: NewUser) -> ApiResult<UserRow> {
    let now = now_ms();
    let row = UserRow {
        id: new_id("usr"),
        project_id: project_id.to_string(),
        email: new.email.typed,
        email_normalized: new.email.normalized,
        email_verified: new.email_verified,
        name: new.name,
        password_hash: new.password_hash,
        mfa_enabled: false,
        created_at: now,
        updated_at: now,
    };
    tx.execute(
        Query::insert()
            .into_table(Users::Table)
            .columns(COLUMNS)
            .values_panic([
                row.id.clone().into(),
                row.project_id.clone().into(),
                row.email.clone().into(),
                row.email_normalized.clone().into(),
                row.email_verified.into(),
                row.name.clone().into(),
                row.password_hash.clone().into(),
                row.mfa_enabled.into(),
                row.created_at.into(),
                row.updated_at.into(),
            ]),
    )
    .await
    .map_err(|e| match e {
        DbError::UniqueViolation(_) => email_taken(),
        other => other.into(),
    })?;
    Ok(row)
}

pub fn email_taken() -> ApiError {
    ApiError::conflict("email_taken", "an account with this email already exists")
}

pub async fn set_password_hash(
    tx: &mut Tx,
    project_id: &str,
    id: &str,
    hash: &str,
) -> Result<(), DbError> {
    tx.execute(
        Query::update()
            .table(Users::Table)
            .values([
                (Users::PasswordHash, hash.into()),
                (Users::UpdatedAt, now_ms().into()),
            ])
            .and_where(Expr::col(Users::ProjectId).eq(project_id))
            .and_where(Expr::col(Users::Id).eq(id)),
    )
    .await?;
    Ok(())
}

// ---- server-side calls (secret key) ----

pub fn router() -> Router<DataState> {
    Router::new()
        .route("/v1/users", get(list).post(create))
        .route("/v1/users/{id}", get(show).delete(remove))
}

/// Requires a secret key: `403 secret_key_required` otherwise.
pub fn require_secret(resolved: &Resolved) -> ApiResult<String> {
    match &resolved.via {
        Via::Key { key_id, .. } if resolved.is_secret_key() => Ok(format!("api_key:{key_id}")),
        _ => Err(ApiError::forbidden(
            "secret_key_required",
            "this call needs a secret key (sk_...)",
        )),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    email: String,
    password: Option<Secret<String>>,
    password_hash: Option<Secret<String>>,
    name: Option<String>,
    email_verified: Option<bool>,
}

async fn create(
    State(state): State<DataState>,
    resolved: Resolved,
    client: Client,
    http::Json(body): http::Json<CreateBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let actor = require_secret(&resolved)?;
    let email = Email::parse(&body.email)?;
    let name = parse_name(body.name.as_deref())?;
    let password_hash = match (body.password, body.password_hash) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_request(
                "give password or password_hash, not both",
            ));
        }
        (Some(p), None) => {
            passwords::validate_new(p.expose())?;
            Some(
                state
                    .hasher
                    .hash(&resolved.project.id, p.into_inner())
                    .await?,
            )
        }
        (None, Some(h)) => {
            let h = h.into_inner();
            passwords::validate_import(&h)?;
            Some(h)
        }
        (None, None) => None,
    };
    let project_id = &resolved.project.id;
    let mut tx = state.shard(&resolved)?.scope(project_id).await?;
    let user = insert(
        &mut tx,
        project_id,
        NewUser {
            email,
            name,
            password_hash,
            email_verified: body.email_verified.unwrap_or(false),
        },
    )
    .await?;
    let ip = client.ip_text();
    audit::record(
        &mut tx,
        Event {
            actor: Some(&actor),
            subject: Some(&user.id),
            ip: Some(&ip),
            user_agent: client.user_agent.as_deref(),
            ..Event::new(project_id, "user.created", Outcome::Success)
        },
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(json!({"user": user.to_json()}))))
}

fn not_found() -> ApiError {
    ApiError::not_found("user")
}

async fn show(
    State(state): State<DataState>,
    resolved: Resolved,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    require_secret(&resolved)?;
    let mut tx = state
        .shard(&resolved)?
        .scope_read(&resolved.project.id)
        .await?;
    let user = find(&mut tx, &resolved.project.id, &id)
        .await?
        .ok_or_else(not_found)?;
    tx.commit().await?;
    Ok(Json(json!({"user": user.to_json()})))
}

#[derive(Deserialize)]
struct ListQuery {
    email: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

async fn list(
    State(state): State<DataState>,
    resolved: Resolved,
    http::Query(q): http::Query<ListQuery>,
) -> ApiResult<Json<Page<Value>>> {
    require_secret(&resolved)?;
    let params = ListParams {
        limit: q.limit,
        cursor: q.cursor,
    };
    let project_id = &resolved.project.id;
    let mut select = Query::select();
    select
        .columns(COLUMNS)
        .from(Users::Table)
        .and_where(Expr::col(Users::ProjectId).eq(project_id));
    if let Some(email) = &q.email {
        // The same canonical form as sign-in; a malformed address matches nobody.
        let canonical = identity_shared::email::canonical(email).unwrap_or_default();
        select.and_where(Expr::col(Users::EmailNormalized).eq(canonical));
    }
    let mut tx = state.shard(&resolved)?.scope_read(project_id).await?;
    let page = params
        .fetch_page(&mut tx, select, Users::Id, false, |r: &UserRow| {
            r.id.clone()
        })
        .await?;
    tx.commit().await?;
    Ok(Json(page.map(|r| r.to_json())))
}

async fn remove(
    State(state): State<DataState>,
    resolved: Resolved,
    client: Client,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let actor = require_secret(&resolved)?;
    let project_id = &resolved.project.id;
    let mut tx = state.shard(&resolved)?.scope(project_id).await?;
    let user = find(&mut tx, project_id, &id)
        .await?
        .ok_or_else(not_found)?;
    let revoked =
        sessions::revoke(&mut tx, project_id, &user.id, None, None, "user_deleted").await?;
    tx.execute(
        Query::delete()
            .from_table(Users::Table)
            .and_where(Expr::col(Users::ProjectId).eq(project_id))
            .and_where(Expr::col(Users::Id).eq(&user.id)),
    )
    .await?;
    let ip = client.ip_text();
    audit::record(
        &mut tx,
        Event {
            actor: Some(&actor),
            subject: Some(&user.id),
            ip: Some(&ip),
            user_agent: client.user_agent.as_deref(),
            data: json!({"sessions_revoked": revoked.len()}),
            ..Event::new(project_id, "user.deleted", Outcome::Success)
        },
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        let e = Email::parse("  Alice.Smith@Example.COM. ").unwrap();
        assert_eq!(e.typed, "Alice.Smith@Example.COM.");
        assert_eq!(e.normalized, "alice.smith@example.com");
        assert_eq!(
            Email::parse("a b@x.com").unwrap_err().code(),
            "invalid_email"
        );
    }
}
