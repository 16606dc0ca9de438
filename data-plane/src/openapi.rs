//! The public (data-plane) API's OpenAPI document.

use axum::Json;
use identity_shared::openapi::{Route, document};
use serde_json::Value;

const RESOLUTION: [(u16, &str); 3] = [
    (401, "project_key_invalid"),
    (403, "project_suspended"),
    (404, "project_not_found (unknown host)"),
];

pub const ROUTES: &[Route] = &[
    Route {
        method: "get",
        path: "/.well-known/jwks.json",
        summary: "The project's public signing keys (project from X-Project-Key or Host)",
        body: None,
        responses: &[(200, "{keys}"), RESOLUTION[0], RESOLUTION[1], RESOLUTION[2]],
    },
    Route {
        method: "get",
        path: "/.well-known/openid-configuration",
        summary: "OpenID discovery: issuer and jwks_uri (project from X-Project-Key or Host)",
        body: None,
        responses: &[
            (200, "{issuer, jwks_uri, ...}"),
            RESOLUTION[0],
            RESOLUTION[1],
            RESOLUTION[2],
        ],
    },
    Route {
        method: "get",
        path: "/{project_id}/.well-known/jwks.json",
        summary: "The project's public signing keys, under its issuer path",
        body: None,
        responses: &[
            (200, "{keys}"),
            (403, "project_suspended"),
            (404, "project_not_found"),
        ],
    },
    Route {
        method: "get",
        path: "/{project_id}/.well-known/openid-configuration",
        summary: "OpenID discovery under the issuer path",
        body: None,
        responses: &[
            (200, "{issuer, jwks_uri, ...}"),
            (403, "project_suspended"),
            (404, "project_not_found"),
        ],
    },
    Route {
        method: "get",
        path: "/healthz",
        summary: "Liveness",
        body: None,
        responses: &[(200, "ok")],
    },
    Route {
        method: "get",
        path: "/readyz",
        summary: "Readiness: database reachable and migrations current",
        body: None,
        responses: &[(200, "ready"), (503, "not ready")],
    },
    Route {
        method: "get",
        path: "/openapi.json",
        summary: "This document",
        body: None,
        responses: &[(200, "OpenAPI 3.1")],
    },
];

pub async fn spec() -> Json<Value> {
    Json(document(
        "identity data plane",
        "End-user API. Identify the project with X-Project-Key (pk_/sk_) or a verified auth domain in Host.",
        Some("project_key"),
        ROUTES,
    ))
}
