//! Auth domains (branded hostnames a project is reached on) and tenant
//! domains (email domains a tenant proves it owns). Both are proved with a
//! DNS TXT record at `_identity-challenge.<name>`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use identity_shared::db::{DbError, Tx};
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::hostname::{challenge_name, is_public_email_domain, parse_hostname};
use identity_shared::http::{self, ListParams, Page};
use identity_shared::ids::{new_id, random_base32};
use identity_shared::invalidation::Invalidation;
use identity_shared::schema::{AuthDomains, TenantDomains};
use identity_shared::time::{now_ms, rfc3339};
use sea_query::{Expr, ExprTrait, Query};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::dns::DnsVerifier;
use crate::{ControlState, project_store, tenants};

pub fn router() -> Router<ControlState> {
    Router::new()
        .route(
            "/v1/projects/{id}/auth-domains",
            get(list_auth).post(create_auth),
        )
        .route(
            "/v1/projects/{id}/auth-domains/{domain_id}",
            get(show_auth).delete(remove_auth),
        )
        .route(
            "/v1/projects/{id}/auth-domains/{domain_id}/verify",
            post(verify_auth),
        )
        .route(
            "/v1/projects/{id}/auth-domains/{domain_id}/primary",
            post(make_primary),
        )
        .route(
            "/v1/projects/{id}/tenants/{tenant_id}/domains",
            get(list_tenant).post(create_tenant),
        )
        .route(
            "/v1/projects/{id}/tenants/{tenant_id}/domains/{domain_id}",
            get(show_tenant).delete(remove_tenant),
        )
        .route(
            "/v1/projects/{id}/tenants/{tenant_id}/domains/{domain_id}/verify",
            post(verify_tenant),
        )
}

fn new_challenge_value() -> String {
    format!("identity-verification={}", random_base32(32))
}

fn verification_json(name: &str, value: &str) -> Value {
    json!({"type": "TXT", "name": challenge_name(name), "value": value})
}

fn invalid_hostname(e: impl std::fmt::Display) -> ApiError {
    ApiError::unprocessable("invalid_hostname", e.to_string())
}

fn domain_taken() -> ApiError {
    ApiError::conflict("domain_taken", "this domain is already taken")
}

fn taken_on_unique(e: DbError) -> ApiError {
    match e {
        DbError::UniqueViolation(_) => domain_taken(),
        other => other.into(),
    }
}

/// Checks the TXT record; answers 422 `domain_verification_failed` (retryable)
/// when it is missing, wrong or DNS does not answer.
async fn check_challenge(dns: &DnsVerifier, name: &str, expected: &str) -> ApiResult<()> {
    let record = challenge_name(name);
    match dns.txt_records(&record).await {
        Ok(values) if values.iter().any(|v| v.trim() == expected) => Ok(()),
        Ok(values) if values.is_empty() => Err(ApiError::unprocessable(
            "domain_verification_failed",
            format!("no TXT record found at {record}; publish it and retry"),
        )),
        Ok(_) => Err(ApiError::unprocessable(
            "domain_verification_failed",
            format!(
                "the TXT record at {record} does not hold the expected value; update it and retry"
            ),
        )),
        Err(e) => Err(ApiError::unprocessable(
            "domain_verification_failed",
            format!("DNS lookup of {record} failed ({e}); retry later"),
        )),
    }
}

// ---- auth domains ----

#[derive(Debug, Clone, sqlx::FromRow)]
struct AuthDomainRow {
    id: String,
    project_id: String,
    hostname: String,
    verified: bool,
    is_primary: bool,
    verification_value: String,
    verified_at: Option<i64>,
    created_at: i64,
}

impl AuthDomainRow {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "hostname": self.hostname,
            "verified": self.verified,
            "primary": self.is_primary,
            "verified_at": self.verified_at.map(rfc3339),
            "created_at": rfc3339(self.created_at),
        })
    }

    fn with_verification(&self) -> Value {
        let mut body = json!({"domain": self.to_json()});
        if !self.verified {
            body["verification"] = verification_json(&self.hostname, &self.verification_value);
        }
        body
    }
}

const AUTH_COLUMNS: [AuthDomains; 8] = [
    AuthDomains::Id,
    AuthDomains::ProjectId,
    AuthDomains::Hostname,
    AuthDomains::Verified,
    AuthDomains::IsPrimary,
    AuthDomains::VerificationValue,
    AuthDomains::VerifiedAt,
    AuthDomains::CreatedAt,
];

async fn load_auth(tx: &mut Tx, project_id: &str, domain_id: &str) -> ApiResult<AuthDomainRow> {
    tx.fetch_optional(
        Query::select()
            .columns(AUTH_COLUMNS)
            .from(AuthDomains::Table)
            .and_where(Expr::col(AuthDomains::ProjectId).eq(project_id))
            .and_where(Expr::col(AuthDomains::Id).eq(domain_id)),
    )
    .await?
    .ok_or_else(|| ApiError::not_found("domain"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateAuthBody {
    hostname: String,
}

async fn create_auth(
    State(state): State<ControlState>,
    Path(project_id): Path<String>,
    http::Json(body): http::Json<CreateAuthBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let hostname = parse_hostname(&body.hostname).map_err(invalid_hostname)?;
    let mut tx = state.db.control().await?;
    let project = project_store::load(&mut tx, &project_id).await?;
    let taken: Option<(String,)> = tx
        .fetch_optional(
            Query::select()
                .column(AuthDomains::Id)
                .from(AuthDomains::Table)
                .and_where(Expr::col(AuthDomains::Hostname).eq(&hostname))
                .and_where(Expr::col(AuthDomains::Verified).eq(true)),
        )
        .await?;
    if taken.is_some() {
        return Err(domain_taken());
    }
    let row = AuthDomainRow {
        id: new_id("dom"),
        project_id: project.id.clone(),
        hostname,
        verified: false,
        is_primary: false,
        verification_value: new_challenge_value(),
        verified_at: None,
        created_at: now_ms(),
    };
    tx.execute(
        Query::insert()
            .into_table(AuthDomains::Table)
            .columns(AUTH_COLUMNS)
            .values_panic([
                row.id.clone().into(),
                row.project_id.clone().into(),
                row.hostname.clone().into(),
                row.verified.into(),
                row.is_primary.into(),
                row.verification_value.clone().into(),
                row.verified_at.into(),
                row.created_at.into(),
            ]),
    )
    .await
    .map_err(taken_on_unique)?;
    tx.commit().await.map_err(taken_on_unique)?;
    Ok((StatusCode::CREATED, Json(row.with_verification())))
}

async fn list_auth(
    State(state): State<ControlState>,
    Path(project_id): Path<String>,
    http::Query(params): http::Query<ListParams>,
) -> ApiResult<Json<Page<Value>>> {
    let mut tx = state.db.control().await?;
    let project = project_store::load(&mut tx, &project_id).await?;
    let mut q = Query::select();
    q.columns(AUTH_COLUMNS)
        .from(AuthDomains::Table)
        .and_where(Expr::col(AuthDomains::ProjectId).eq(&project.id));
    let page = params
        .fetch_page(&mut tx, q, AuthDomains::Id, false, |r: &AuthDomainRow| {
            r.id.clone()
        })
        .await?;
    tx.commit().await?;
    Ok(Json(page.map(|r| r.to_json())))
}

async fn show_auth(
    State(state): State<ControlState>,
    Path((project_id, domain_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let mut tx = state.db.control().await?;
    let project = project_store::load(&mut tx, &project_id).await?;
    let row = load_auth(&mut tx, &project.id, &domain_id).await?;
    tx.commit().await?;
    Ok(Json(row.with_verification()))
}

async fn verify_auth(
    State(state): State<ControlState>,
    Path((project_id, domain_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let mut tx = state.db.control().await?;
    let project = project_store::load(&mut tx, &project_id).await?;
    let row = load_auth(&mut tx, &project.id, &domain_id).await?;
    drop(tx);
    if row.verified {
        return Ok(Json(json!({"domain": row.to_json()})));
    }
    // DNS is slow and remote: no transaction is held open across it.
    check_challenge(&state.dns, &row.hostname, &row.verification_value).await?;
    let mut tx = state.db.control().await?;
    let now = now_ms();
    let updated = tx
        .execute(
            Query::update()
                .table(AuthDomains::Table)
                .values([
                    (AuthDomains::Verified, true.into()),
                    (AuthDomains::VerifiedAt, now.into()),
                ])
                .and_where(Expr::col(AuthDomains::ProjectId).eq(&project.id))
                .and_where(Expr::col(AuthDomains::Id).eq(&row.id)),
        )
        .await
        .map_err(taken_on_unique)?;
    if updated == 0 {
        return Err(ApiError::not_found("domain"));
    }
    tx.invalidate(Invalidation::Host(row.hostname.clone()))
        .await?;
    let row = load_auth(&mut tx, &project.id, &row.id).await?;
    tx.commit().await.map_err(taken_on_unique)?;
    Ok(Json(json!({"domain": row.to_json()})))
}

async fn make_primary(
    State(state): State<ControlState>,
    Path((project_id, domain_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let mut tx = state.db.control().await?;
    let project = project_store::load(&mut tx, &project_id).await?;
    let row = load_auth(&mut tx, &project.id, &domain_id).await?;
    if !row.verified {
        return Err(ApiError::unprocessable(
            "domain_not_verified",
            "only a verified domain can be primary",
        ));
    }
    tx.execute(
        Query::update()
            .table(AuthDomains::Table)
            .value(AuthDomains::IsPrimary, false)
            .and_where(Expr::col(AuthDomains::ProjectId).eq(&project.id))
            .and_where(Expr::col(AuthDomains::IsPrimary).eq(true)),
    )
    .await?;
    tx.execute(
        Query::update()
            .table(AuthDomains::Table)
            .value(AuthDomains::IsPrimary, true)
            .and_where(Expr::col(AuthDomains::ProjectId).eq(&project.id))
            .and_where(Expr::col(AuthDomains::Id).eq(&row.id)),
    )
    .await?;
    // The primary domain is the project's issuer.
    tx.invalidate(Invalidation::Project(project.id.clone()))
        .await?;
    let row = load_auth(&mut tx, &project.id, &row.id).await?;
    tx.commit().await?;
    Ok(Json(json!({"domain": row.to_json()})))
}

async fn remove_auth(
    State(state): State<ControlState>,
    Path((project_id, domain_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let mut tx = state.db.control().await?;
    let project = project_store::load(&mut tx, &project_id).await?;
    let row = load_auth(&mut tx, &project.id, &domain_id).await?;
    tx.execute(
        Query::delete()
            .from_table(AuthDomains::Table)
            .and_where(Expr::col(AuthDomains::ProjectId).eq(&project.id))
            .and_where(Expr::col(AuthDomains::Id).eq(&row.id)),
    )
    .await?;
    tx.invalidate(Invalidation::Host(row.hostname.clone()))
        .await?;
    tx.invalidate(Invalidation::Project(project.id.clone()))
        .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- tenant domains ----

#[derive(Debug, Clone, sqlx::FromRow)]
struct TenantDomainRow {
    id: String,
    project_id: String,
    tenant_id: String,
    domain: String,
    verified: bool,
    verification_value: String,
    verified_at: Option<i64>,
    created_at: i64,
}

impl TenantDomainRow {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "tenant_id": self.tenant_id,
            "domain": self.domain,
            "verified": self.verified,
            "verified_at": self.verified_at.map(rfc3339),
            "created_at": rfc3339(self.created_at),
        })
    }

    fn with_verification(&self) -> Value {
        let mut body = json!({"domain": self.to_json()});
        if !self.verified {
            body["verification"] = verification_json(&self.domain, &self.verification_value);
        }
        body
    }
}

const TENANT_COLUMNS: [TenantDomains; 8] = [
    TenantDomains::Id,
    TenantDomains::ProjectId,
    TenantDomains::TenantId,
    TenantDomains::Domain,
    TenantDomains::Verified,
    TenantDomains::VerificationValue,
    TenantDomains::VerifiedAt,
    TenantDomains::CreatedAt,
];

async fn load_tenant_domain(
    tx: &mut Tx,
    project_id: &str,
    tenant_id: &str,
    domain_id: &str,
) -> ApiResult<TenantDomainRow> {
    tx.fetch_optional(
        Query::select()
            .columns(TENANT_COLUMNS)
            .from(TenantDomains::Table)
            .and_where(Expr::col(TenantDomains::ProjectId).eq(project_id))
            .and_where(Expr::col(TenantDomains::TenantId).eq(tenant_id))
            .and_where(Expr::col(TenantDomains::Id).eq(domain_id)),
    )
    .await?
    .ok_or_else(|| ApiError::not_found("domain"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateTenantDomainBody {
    domain: String,
}

async fn create_tenant(
    State(state): State<ControlState>,
    Path((project_id, tenant_id)): Path<(String, String)>,
    http::Json(body): http::Json<CreateTenantDomainBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let domain = parse_hostname(&body.domain).map_err(invalid_hostname)?;
    if is_public_email_domain(&domain) {
        return Err(ApiError::unprocessable(
            "public_email_domain",
            "a public email provider's domain cannot belong to a tenant",
        ));
    }
    let mut tx = state.db.control().await?;
    let project = project_store::load(&mut tx, &project_id).await?;
    let tenant = tenants::load(&mut tx, &project.id, &tenant_id).await?;
    let taken: Option<(String,)> = tx
        .fetch_optional(
            Query::select()
                .column(TenantDomains::Id)
                .from(TenantDomains::Table)
                .and_where(Expr::col(TenantDomains::ProjectId).eq(&project.id))
                .and_where(Expr::col(TenantDomains::Domain).eq(&domain))
                .and_where(Expr::col(TenantDomains::Verified).eq(true)),
        )
        .await?;
    if taken.is_some() {
        return Err(domain_taken());
    }
    let row = TenantDomainRow {
        id: new_id("tdm"),
        project_id: project.id.clone(),
        tenant_id: tenant.id.clone(),
        domain,
        verified: false,
        verification_value: new_challenge_value(),
        verified_at: None,
        created_at: now_ms(),
    };
    tx.execute(
        Query::insert()
            .into_table(TenantDomains::Table)
            .columns(TENANT_COLUMNS)
            .values_panic([
                row.id.clone().into(),
                row.project_id.clone().into(),
                row.tenant_id.clone().into(),
                row.domain.clone().into(),
                row.verified.into(),
                row.verification_value.clone().into(),
                row.verified_at.into(),
                row.created_at.into(),
            ]),
    )
    .await
    .map_err(taken_on_unique)?;
    tx.commit().await.map_err(taken_on_unique)?;
    Ok((StatusCode::CREATED, Json(row.with_verification())))
}

async fn list_tenant(
    State(state): State<ControlState>,
    Path((project_id, tenant_id)): Path<(String, String)>,
    http::Query(params): http::Query<ListParams>,
) -> ApiResult<Json<Page<Value>>> {
    let mut tx = state.db.control().await?;
    let project = project_store::load(&mut tx, &project_id).await?;
    let tenant = tenants::load(&mut tx, &project.id, &tenant_id).await?;
    let mut q = Query::select();
    q.columns(TENANT_COLUMNS)
        .from(TenantDomains::Table)
        .and_where(Expr::col(TenantDomains::ProjectId).eq(&project.id))
        .and_where(Expr::col(TenantDomains::TenantId).eq(&tenant.id));
    let page = params
        .fetch_page(
            &mut tx,
            q,
            TenantDomains::Id,
            false,
            |r: &TenantDomainRow| r.id.clone(),
        )
        .await?;
    tx.commit().await?;
    Ok(Json(page.map(|r| r.to_json())))
}

async fn show_tenant(
    State(state): State<ControlState>,
    Path((project_id, tenant_id, domain_id)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let mut tx = state.db.control().await?;
    let project = project_store::load(&mut tx, &project_id).await?;
    let row = load_tenant_domain(&mut tx, &project.id, &tenant_id, &domain_id).await?;
    tx.commit().await?;
    Ok(Json(row.with_verification()))
}

async fn verify_tenant(
    State(state): State<ControlState>,
    Path((project_id, tenant_id, domain_id)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let mut tx = state.db.control().await?;
    let project = project_store::load(&mut tx, &project_id).await?;
    let row = load_tenant_domain(&mut tx, &project.id, &tenant_id, &domain_id).await?;
    drop(tx);
    if row.verified {
        return Ok(Json(json!({"domain": row.to_json()})));
    }
    check_challenge(&state.dns, &row.domain, &row.verification_value).await?;
    let mut tx = state.db.control().await?;
    let updated = tx
        .execute(
            Query::update()
                .table(TenantDomains::Table)
                .values([
                    (TenantDomains::Verified, true.into()),
                    (TenantDomains::VerifiedAt, now_ms().into()),
                ])
                .and_where(Expr::col(TenantDomains::ProjectId).eq(&project.id))
                .and_where(Expr::col(TenantDomains::Id).eq(&row.id)),
        )
        .await
        .map_err(taken_on_unique)?;
    if updated == 0 {
        return Err(ApiError::not_found("domain"));
    }
    let row = load_tenant_domain(&mut tx, &project.id, &tenant_id, &row.id).await?;
    // A tenant's verified domains decide where SSO is enforced.
    tx.invalidate(Invalidation::Project(project.id.clone()))
        .await?;
    tx.commit().await.map_err(taken_on_unique)?;
    Ok(Json(json!({"domain": row.to_json()})))
}

async fn remove_tenant(
    State(state): State<ControlState>,
    Path((project_id, tenant_id, domain_id)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let mut tx = state.db.control().await?;
    let project = project_store::load(&mut tx, &project_id).await?;
    let row = load_tenant_domain(&mut tx, &project.id, &tenant_id, &domain_id).await?;
    tx.execute(
        Query::delete()
            .from_table(TenantDomains::Table)
            .and_where(Expr::col(TenantDomains::ProjectId).eq(&project.id))
            .and_where(Expr::col(TenantDomains::Id).eq(&row.id)),
    )
    .await?;
    tx.invalidate(Invalidation::Project(project.id.clone()))
        .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
