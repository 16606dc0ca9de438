//! `PATCH /v1/users/{id}` (secret key): the project's server edits a user:
//! name, address (and whether it is verified), phone, and the public and
//! private metadata (each a JSON object of at most 8 KiB, replaced whole).

use axum::Json;
use axum::extract::{Path, State};
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::http;
use identity_shared::schema::Users;
use identity_shared::time::now_ms;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::DataState;
use crate::email::phone::parse_e164;
use crate::email::verify::mark_verified;
use crate::input::{Email, metadata_text, parse_name};
use crate::request::client::Client;
use crate::request::resolve::{Resolved, require_secret};
use crate::store::one_time_codes::{self as codes, EMAIL_CHANGE, VERIFY_EMAIL};
use crate::store::{sessions, users};
use crate::tenants::joining::leave_domain_joined;
use crate::views::UserEnvelope;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    #[serde(default, deserialize_with = "crate::input::nullable")]
    name: Option<Option<String>>,
    email: Option<String>,
    email_verified: Option<bool>,
    #[serde(default, deserialize_with = "crate::input::nullable")]
    phone: Option<Option<String>>,
    public_metadata: Option<Value>,
    private_metadata: Option<Value>,
}

pub async fn update(
    State(state): State<DataState>,
    resolved: Resolved,
    client: Client,
    Path(id): Path<String>,
    http::Json(body): http::Json<UpdateBody>,
) -> ApiResult<Json<UserEnvelope>> {
    let actor = require_secret(&resolved)?;
    // Everything is checked before anything is written.
    let mut values: Vec<(Users, sea_query::Value)> = Vec::new();
    let mut changed: Vec<&str> = Vec::new();
    if let Some(name) = &body.name {
        values.push((Users::Name, parse_name(name.as_deref())?.into()));
        changed.push("name");
    }
    if let Some(phone) = &body.phone {
        let phone = match phone {
            Some(p) => Some(parse_e164(p).ok_or_else(|| {
                ApiError::unprocessable(
                    "invalid_phone",
                    "phone must be E.164: + and 8 to 15 digits",
                )
            })?),
            None => None,
        };
        // The server vouches for a number it sets.
        values.push((Users::PhoneVerified, phone.is_some().into()));
        values.push((Users::Phone, phone.into()));
        changed.push("phone");
    }
    for (field, column, value) in [
        (
            "public_metadata",
            Users::PublicMetadata,
            &body.public_metadata,
        ),
        (
            "private_metadata",
            Users::PrivateMetadata,
            &body.private_metadata,
        ),
    ] {
        if let Some(v) = value {
            values.push((column, metadata_text(field, v)?.into()));
            changed.push(field);
        }
    }
    let email = body.email.as_deref().map(Email::parse).transpose()?;
    let project_id = resolved.project.id.clone();
    let now = now_ms();
    let mut tx = state.shard(&resolved)?.scope(&project_id).await?;
    users::lock_credentials(&mut tx, &project_id, &id).await?;
    let mut user = users::find(&mut tx, &project_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    if !values.is_empty() {
        users::update(&mut tx, &project_id, &user.id, values).await?;
    }
    if let Some(email) = email.filter(|e| e.normalized != user.email_normalized) {
        users::set_email(
            &mut tx,
            &project_id,
            &user.id,
            &email.typed,
            &email.normalized,
        )
        .await?;
        // What was sent to, or brought by, the old address goes with it.
        codes::void(
            &mut tx,
            &project_id,
            VERIFY_EMAIL,
            Some(&user.id),
            None,
            now,
        )
        .await?;
        codes::void(
            &mut tx,
            &project_id,
            EMAIL_CHANGE,
            Some(&user.id),
            None,
            now,
        )
        .await?;
        leave_domain_joined(&mut tx, &resolved, &client, &user.id).await?;
        changed.push("email");
    }
    match body.email_verified {
        Some(true) => changed.push("email_verified"),
        Some(false) => {
            users::update(
                &mut tx,
                &project_id,
                &user.id,
                vec![(Users::EmailVerified, false.into())],
            )
            .await?;
            // An unproven address vouches for no domain.
            leave_domain_joined(&mut tx, &resolved, &client, &user.id).await?;
            changed.push("email_verified");
        }
        None => {}
    }
    user = users::find(&mut tx, &project_id, &user.id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    if body.email_verified == Some(true) {
        // The server vouches for the address: verified, and the tenants of
        // its domain joined.
        user = mark_verified(&state, &mut tx, &resolved, &client, user, "admin").await?;
    }
    super::audit_for_user(
        &mut tx,
        &resolved,
        &client,
        &actor,
        &user.id,
        "user.updated",
        json!({"fields": changed}),
    )
    .await?;
    // Cached views of the user's sessions carry the old row.
    sessions::reload_views(&mut tx, &project_id, &user.id).await?;
    tx.commit().await?;
    Ok(Json(UserEnvelope::for_server(&user)))
}
