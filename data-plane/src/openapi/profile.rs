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
];
