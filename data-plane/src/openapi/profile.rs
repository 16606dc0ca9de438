//! The signed-in user's own profile, in the data plane's OpenAPI document.

use identity_shared::openapi::Route;
use identity_shared::route;

use super::{AUTH, CSRF, MEDIA};

pub const ROUTES: &[Route] = &[
    route!(
        "get",
        "/v1/users/me",
        "The signed-in user (public_metadata and unsafe_metadata included, never private_metadata)",
        None,
        [(200, "{user}"), AUTH]
    ),
    route!(
        "patch",
        "/v1/users/me",
        "The user edits their name and unsafe_metadata (a JSON object of at most 8 KiB)",
        Some((&[], &["name", "unsafe_metadata"])),
        [
            (200, "{user}"),
            (400, "invalid_request (another field)"),
            AUTH,
            CSRF,
            MEDIA,
            (422, "invalid_name or invalid_metadata")
        ]
    ),
    route!(
        "put",
        "/v1/users/me/avatar",
        "Upload the avatar: the image as the body or multipart field file, at most 5 MiB; JPEG, PNG, GIF or WebP by content; re-encoded without metadata, at most 512 pixels a side",
        None,
        [
            (200, "{avatar_url}"),
            (400, "invalid_request (a malformed multipart body)"),
            AUTH,
            CSRF,
            (413, "payload_too_large"),
            (415, "unsupported_media_type"),
            (422, "image_too_large or invalid_image"),
            (503, "object_store_unavailable")
        ]
    ),
    route!(
        "delete",
        "/v1/users/me/avatar",
        "Remove the avatar (its object is deleted)",
        None,
        [(204, "removed"), AUTH, CSRF]
    ),
    route!(
        "get",
        "/v1/avatars/{key}",
        "An avatar, by its unguessable key, with no key or cookie: image/jpeg or image/png, nosniff",
        None,
        [
            (200, "the image"),
            (404, "not_found"),
            (503, "object_store_unavailable")
        ]
    ),
];
