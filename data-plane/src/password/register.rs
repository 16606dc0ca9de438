//! `POST /v1/auth/register`.

use crate::DataState;
use crate::audit::event;
use crate::input::{Email, parse_name};
use crate::password::check::signing_in_from;
use crate::password::policy;
use crate::request::client::Client;
use crate::request::limits::rate_limit;
use crate::request::resolve::Resolved;
use crate::sessions::issue::{signed_in, start_session};
use crate::store::users::{self, NewUser};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use identity_shared::audit::{self, Event, Outcome};
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::http::{self};
use identity_shared::secret::Secret;
use serde::Deserialize;
use serde_json::json;

// ---- register ----

#[derive(Debug, Deserialize)]
pub struct RegisterBody {
    email: String,
    password: Secret<String>,
    name: Option<String>,
    /// Accepted now; creates an organisation once organisations exist.
    #[allow(dead_code)]
    organization_name: Option<String>,
}

pub async fn register(
    State(state): State<DataState>,
    resolved: Resolved,
    client: Client,
    headers: HeaderMap,
    http::Json(body): http::Json<RegisterBody>,
) -> ApiResult<Response> {
    rate_limit(
        &state,
        &resolved,
        &client,
        "register",
        resolved.project.settings.rate_limits.register_per_minute,
    )?;
    let transport = signing_in_from(&state, &resolved, &headers)?;
    let email = Email::parse(&body.email)?;
    resolved.project.require_no_sso(&email.normalized)?;
    policy::validate_new(body.password.expose())?;
    let name = parse_name(body.name.as_deref())?;
    // An organisation to own from the start: a tenant with this user as
    // its owner.
    let organization = body
        .organization_name
        .as_deref()
        .map(crate::tenants::tenant_name)
        .transpose()?;
    if organization.is_some() && !resolved.project.settings.users_can_create_tenants {
        return Err(ApiError::forbidden(
            "tenant_creation_disabled",
            "this project does not let users create tenants",
        ));
    }
    let project_id = resolved.project.id.clone();
    // Fail fast on a taken email before paying for a hash.
    let db = state.shard(&resolved)?;
    {
        let mut tx = db.scope_read(&project_id).await?;
        let taken = users::find_by_email(&mut tx, &project_id, &email.normalized)
            .await?
            .is_some();
        tx.commit().await?;
        if taken {
            return Err(users::email_taken());
        }
    }
    let hash = state
        .hasher
        .hash(&project_id, body.password.into_inner())
        .await?;
    let mut tx = db.scope(&project_id).await?;
    let user = users::insert(
        &mut tx,
        &project_id,
        NewUser {
            email: email.typed,
            email_normalized: email.normalized,
            name,
            password_hash: Some(hash),
            email_verified: false,
        },
    )
    .await?;
    if let Some(name) = &organization {
        crate::tenants::create_with_owner(
            &state,
            &mut tx,
            &resolved,
            &client,
            Some(&user.id),
            name,
        )
        .await?;
    }
    let (session, refresh_value) =
        start_session(&mut tx, &resolved, &user, &client, &["pwd"]).await?;
    let ip = client.ip_text();
    audit::record(
        &mut tx,
        Event {
            actor: Some(&user.id),
            subject: Some(&user.id),
            data: json!({"session_id": session.id}),
            ..event(&resolved, &client, &ip, "user.registered", Outcome::Success)
        },
    )
    .await?;
    tx.commit().await?;
    signed_in(
        &state,
        &resolved,
        transport,
        StatusCode::CREATED,
        &user,
        &session,
        &refresh_value,
    )
    .await
}
