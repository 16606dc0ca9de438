//! The signed-in user's own profile: `GET /v1/users/me`, and `PATCH` for
//! their name and `unsafe_metadata` (a JSON object of at most 8 KiB that
//! the user writes and anyone reading the user object sees; never trust
//! it for authorisation). Avatars are in `avatar`: `image` turns an upload
//! into one, `objects` keeps them.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use identity_shared::audit::{self, Event, Outcome};
use identity_shared::error::ApiResult;
use identity_shared::http;
use identity_shared::schema::Users;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::DataState;
use crate::audit::event;
use crate::input::{metadata_text, parse_name};
use crate::request::caller::Caller;
use crate::request::client::Client;
use crate::store::{sessions, users};
use crate::views::UserEnvelope;

pub mod avatar;
pub mod image;
pub mod objects;

/// The avatar upload's path, which takes a larger body than the rest.
pub const AVATAR_PATH: &str = "/v1/users/me/avatar";

pub fn router() -> Router<DataState> {
    Router::new()
        .route("/v1/users/me", get(me).patch(update))
        .route(
            AVATAR_PATH,
            axum::routing::put(avatar::put)
                .delete(avatar::delete)
                .layer(axum::extract::DefaultBodyLimit::max(avatar::BODY_LIMIT)),
        )
}

/// Routes without a project: avatars load in an `<img>`, which sends no
/// key or cookie.
pub fn public_router() -> Router<DataState> {
    Router::new().route("/v1/avatars/{key}", get(avatar::serve))
}

pub async fn me(caller: Caller) -> Json<UserEnvelope> {
    Json(UserEnvelope::from(&caller.view.user))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileBody {
    #[serde(default, deserialize_with = "crate::input::nullable")]
    name: Option<Option<String>>,
    unsafe_metadata: Option<Value>,
}

pub async fn update(
    State(state): State<DataState>,
    client: Client,
    caller: Caller,
    http::Json(body): http::Json<ProfileBody>,
) -> ApiResult<Json<UserEnvelope>> {
    let mut values: Vec<(Users, sea_query::Value)> = Vec::new();
    let mut changed: Vec<&str> = Vec::new();
    if let Some(name) = &body.name {
        values.push((Users::Name, parse_name(name.as_deref())?.into()));
        changed.push("name");
    }
    if let Some(v) = &body.unsafe_metadata {
        values.push((
            Users::UnsafeMetadata,
            metadata_text("unsafe_metadata", v)?.into(),
        ));
        changed.push("unsafe_metadata");
    }
    let user = if values.is_empty() {
        caller.view.user.clone()
    } else {
        let data = json!({"fields": changed});
        write_own(
            &state,
            &caller,
            &client,
            values,
            "user.profile_updated",
            data,
        )
        .await?
        .1
    };
    Ok(Json(UserEnvelope::from(&user)))
}

/// Writes `values` to the caller's own user (under the user's lock, so
/// concurrent writes queue), audits `kind` with `data`, reloads the cached
/// views of their sessions, and returns the user as it stood before and
/// as it stands now.
pub(crate) async fn write_own(
    state: &DataState,
    caller: &Caller,
    client: &Client,
    values: Vec<(Users, sea_query::Value)>,
    kind: &'static str,
    data: Value,
) -> ApiResult<(users::UserRow, users::UserRow)> {
    let resolved = &caller.resolved;
    let project_id = &resolved.project.id;
    let user_id = &caller.claims.sub;
    let gone = || identity_shared::error::ApiError::not_found("user");
    let mut tx = state.shard(resolved)?.scope(project_id).await?;
    users::lock_credentials(&mut tx, project_id, user_id).await?;
    let before = users::find(&mut tx, project_id, user_id)
        .await?
        .ok_or_else(gone)?;
    users::update(&mut tx, project_id, user_id, values).await?;
    let ip = client.ip_text();
    audit::record(
        &mut tx,
        Event {
            actor: Some(user_id),
            subject: Some(user_id),
            data,
            ..event(resolved, client, &ip, kind, Outcome::Success)
        },
    )
    .await?;
    // Cached views of the user's sessions carry the old row.
    sessions::reload_views(&mut tx, project_id, user_id).await?;
    let after = users::find(&mut tx, project_id, user_id)
        .await?
        .ok_or_else(gone)?;
    tx.commit().await?;
    Ok((before, after))
}
