//! Avatars: `PUT /v1/users/me/avatar` (the image as the body, or a
//! `multipart/form-data` field `file`; at most 5 MiB), `DELETE` to remove
//! it, and `GET /v1/avatars/{key}`, which serves it to anyone holding the
//! unguessable URL, with no key or cookie (an `<img>` sends none), as the
//! image it was decoded as and nothing else.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use identity_shared::crypto::random_token;
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::schema::Users;
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use serde_json::{Value, json};

use super::image::{self as picture, MAX_BYTES, Refusal};
use crate::DataState;
use crate::request::caller::Caller;
use crate::request::client::Client;

/// The largest request body on the upload route: the image and some
/// multipart framing.
pub const BODY_LIMIT: usize = MAX_BYTES + 64 * 1024;

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "an avatar is at most 5 MiB",
    )
}

/// `503`: the store did not answer (its error is logged, not shown: it
/// can name paths and hosts).
fn store_down(e: object_store::Error) -> ApiError {
    tracing::warn!(error = %e, "the avatar store failed");
    ApiError::unavailable(
        "object_store_unavailable",
        "the avatar store cannot be reached",
    )
}

fn refused(r: Refusal) -> ApiError {
    match r {
        Refusal::Unsupported => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "an avatar is a JPEG, PNG, GIF or WebP image (judged by its content)",
        ),
        Refusal::TooLarge => ApiError::unprocessable(
            "image_too_large",
            "the image is more than 8192 pixels a side, or too large to decode",
        ),
        Refusal::Invalid => ApiError::unprocessable("invalid_image", "the image does not decode"),
    }
}

/// The uploaded bytes: the body itself, or the multipart field `file`.
async fn upload_bytes(state: &DataState, request: Request) -> ApiResult<Bytes> {
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    let bad = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            ApiError::invalid_request(format!("malformed multipart body: {}", e.body_text()))
        }
    };
    let bytes = if multipart {
        let mut form = Multipart::from_request(request, state)
            .await
            .map_err(|e| ApiError::invalid_request(e.body_text()))?;
        let mut file = None;
        while let Some(field) = form.next_field().await.map_err(bad)? {
            if field.name() == Some("file") {
                file = Some(field.bytes().await.map_err(bad)?);
                break;
            }
        }
        file.ok_or_else(|| ApiError::invalid_request("the multipart body has no field `file`"))?
    } else {
        Bytes::from_request(request, state)
            .await
            .map_err(|e| match e.status() {
                StatusCode::PAYLOAD_TOO_LARGE => too_large(),
                _ => ApiError::invalid_request(e.body_text()),
            })?
    };
    if bytes.len() > MAX_BYTES {
        return Err(too_large());
    }
    if bytes.is_empty() {
        return Err(refused(Refusal::Unsupported));
    }
    Ok(bytes)
}

/// Where an avatar's key lives in the store: `avatars/{project}/{name}`.
/// A key is `{project_id}.{32 hex}.{jpg|png}`; anything else is no key.
fn object_path(key: &str) -> Option<(ObjectPath, &'static str)> {
    let mut parts = key.split('.');
    let (project, name, ext) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || !identity_shared::ids::is_id("prj", project)
        || name.len() != 32
        || !name
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return None;
    }
    let content_type = picture::content_type_of(ext)?;
    let path = ObjectPath::parse(format!("avatars/{project}/{name}.{ext}")).ok()?;
    Some((path, content_type))
}

/// Removes a stored avatar; a failure is logged (the object is orphaned,
/// never served under a URL anyone still has).
pub async fn forget(state: &DataState, key: &str) {
    if let Some((path, _)) = object_path(key)
        && let Err(e) = state.objects.delete(&path).await
    {
        tracing::warn!(error = %e, "could not delete an old avatar");
    }
}

/// Records the avatar (or none) on the caller's user, audited as `kind`.
async fn record(
    state: &DataState,
    caller: &Caller,
    client: &Client,
    kind: &'static str,
    key: Option<&str>,
    url: Option<&str>,
) -> ApiResult<()> {
    let values = vec![
        (Users::AvatarKey, key.map(str::to_string).into()),
        (Users::AvatarUrl, url.map(str::to_string).into()),
    ];
    let data = json!({"avatar_url": url});
    let (before, _) = super::write_own(state, caller, client, values, kind, data).await?;
    // What it replaced, read under the user's lock: two uploads at once
    // each delete what they replaced, and no object is orphaned.
    if let Some(old) = before.avatar_key.filter(|old| Some(old.as_str()) != key) {
        forget(state, &old).await;
    }
    Ok(())
}

/// `PUT /v1/users/me/avatar`.
pub async fn put(
    State(state): State<DataState>,
    client: Client,
    caller: Caller,
    request: Request,
) -> ApiResult<Json<Value>> {
    let data = upload_bytes(&state, request).await?;
    // As many decodes at once as there are cores: each may take up to the
    // decode's memory cap, so forty uploads at once queue here instead of
    // taking forty times that.
    let _decoding = decoders().acquire().await.map_err(ApiError::internal)?;
    let avatar = tokio::task::spawn_blocking(move || picture::process(&data))
        .await
        .map_err(ApiError::internal)?
        .map_err(refused)?;
    let project_id = &caller.resolved.project.id;
    let key = format!("{project_id}.{}.{}", hex_name(), avatar.extension);
    let (path, _) = object_path(&key).ok_or_else(|| ApiError::internal("avatar key"))?;
    state
        .objects
        .put(&path, avatar.bytes.into())
        .await
        .map_err(store_down)?;
    let url = format!(
        "{}/v1/avatars/{key}",
        state.public_origin(&caller.resolved.project)
    );
    record(
        &state,
        &caller,
        &client,
        "user.avatar_updated",
        Some(&key),
        Some(&url),
    )
    .await?;
    Ok(Json(json!({"avatar_url": url})))
}

fn decoders() -> &'static tokio::sync::Semaphore {
    static DECODERS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    DECODERS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(cores)
    })
}

/// 32 lowercase hex digits, from 128 random bits.
fn hex_name() -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(random_token().as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// `DELETE /v1/users/me/avatar`.
pub async fn delete(
    State(state): State<DataState>,
    client: Client,
    caller: Caller,
) -> ApiResult<StatusCode> {
    record(&state, &caller, &client, "user.avatar_deleted", None, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/avatars/{key}`: public, by its unguessable key.
pub async fn serve(State(state): State<DataState>, Path(key): Path<String>) -> ApiResult<Response> {
    let not_found = || ApiError::not_found("avatar");
    let (path, content_type) = object_path(&key).ok_or_else(not_found)?;
    let bytes = match state.objects.get(&path).await {
        Ok(found) => found.bytes().await.map_err(store_down)?,
        Err(object_store::Error::NotFound { .. }) => return Err(not_found()),
        Err(e) => return Err(store_down(e)),
    };
    let mut response = Body::from(bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Never a document: no script, no frame, even if opened directly.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    // A new picture gets a new key: the old URL can be cached for good.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    headers.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("cross-origin"),
    );
    Ok(response)
}
