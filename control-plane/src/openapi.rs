//! The admin API's OpenAPI document.

use axum::Json;
use identity_shared::openapi::{Route, document};
use identity_shared::route;
use serde_json::Value;

const AUTH: (u16, &str) = (401, "missing or invalid operator token");
const NOT_FOUND: (u16, &str) = (404, "no such project or resource");
const BAD: (u16, &str) = (400, "malformed request (invalid_request)");

pub const ROUTES: &[Route] = &[
    route!(
        "post",
        "/v1/operator-tokens",
        "Create an operator token; its value is shown only here",
        Some((&["name"], &[])),
        [
            (
                201,
                "{token: {id, name, source, created_at, last_used_at}, value}"
            ),
            BAD,
            AUTH,
            (422, "invalid_name")
        ]
    ),
    route!(
        "get",
        "/v1/operator-tokens",
        "List operator tokens (never their values)",
        None,
        [(200, "{items, next_cursor}"), AUTH]
    ),
    route!(
        "delete",
        "/v1/operator-tokens/{id}",
        "Revoke an operator token at once",
        None,
        [
            (204, "revoked"),
            AUTH,
            (404, "no such token"),
            (409, "last_operator_token")
        ]
    ),
    route!(
        "post",
        "/v1/projects",
        "Create a project with a key pair; the secret key is shown only here",
        Some((&["name"], &[])),
        [
            (201, "{project, keys: {publishable, secret}}"),
            BAD,
            AUTH,
            (422, "invalid_name")
        ]
    ),
    route!(
        "get",
        "/v1/projects",
        "List projects (?limit, ?cursor)",
        None,
        [(200, "{items, next_cursor}"), BAD, AUTH]
    ),
    route!(
        "get",
        "/v1/projects/{id}",
        "Get a project",
        None,
        [(200, "{project}"), AUTH, NOT_FOUND]
    ),
    route!(
        "patch",
        "/v1/projects/{id}",
        "Rename, suspend or reactivate a project, or change its settings",
        Some((&[], &["name", "status", "settings"])),
        [
            (200, "{project}"),
            BAD,
            AUTH,
            NOT_FOUND,
            (422, "invalid_name or invalid_settings")
        ]
    ),
    route!(
        "delete",
        "/v1/projects/{id}",
        "Delete a project and all its data",
        None,
        [(204, "deleted"), AUTH, NOT_FOUND]
    ),
    route!(
        "post",
        "/v1/projects/{id}/keys",
        "Issue a publishable or secret key; the value is shown only here",
        Some((&["kind"], &[])),
        [
            (201, "{key: {id, kind, prefix, created_at}, value}"),
            BAD,
            AUTH,
            NOT_FOUND
        ]
    ),
    route!(
        "get",
        "/v1/projects/{id}/keys",
        "List keys (never their values)",
        None,
        [(200, "{items, next_cursor}"), AUTH, NOT_FOUND]
    ),
    route!(
        "get",
        "/v1/projects/{id}/keys/{key_id}",
        "Get a key",
        None,
        [(200, "{key}"), AUTH, NOT_FOUND]
    ),
    route!(
        "delete",
        "/v1/projects/{id}/keys/{key_id}",
        "Revoke a key on every node within a second",
        None,
        [(204, "revoked"), AUTH, NOT_FOUND]
    ),
    route!(
        "get",
        "/v1/projects/{id}/signing-keys",
        "List signing keys and whether each is still published",
        None,
        [(200, "{items}"), AUTH, NOT_FOUND]
    ),
    route!(
        "post",
        "/v1/projects/{id}/signing-keys/rotate",
        "Rotate the signing key; old keys stay published until their tokens expire",
        None,
        [(200, "{kid}"), AUTH, NOT_FOUND]
    ),
    route!(
        "post",
        "/v1/projects/{id}/auth-domains",
        "Add a branded auth domain; returns the TXT record that proves it",
        Some((&["hostname"], &[])),
        [
            (201, "{domain, verification}"),
            BAD,
            AUTH,
            NOT_FOUND,
            (409, "domain_taken"),
            (422, "invalid_hostname")
        ]
    ),
    route!(
        "get",
        "/v1/projects/{id}/auth-domains",
        "List auth domains",
        None,
        [(200, "{items, next_cursor}"), AUTH, NOT_FOUND]
    ),
    route!(
        "get",
        "/v1/projects/{id}/auth-domains/{domain_id}",
        "Get an auth domain (with its TXT record while unverified)",
        None,
        [(200, "{domain, verification?}"), AUTH, NOT_FOUND]
    ),
    route!(
        "delete",
        "/v1/projects/{id}/auth-domains/{domain_id}",
        "Remove an auth domain; it stops resolving within a second",
        None,
        [(204, "removed"), AUTH, NOT_FOUND]
    ),
    route!(
        "post",
        "/v1/projects/{id}/auth-domains/{domain_id}/verify",
        "Check the TXT record and mark the domain verified",
        None,
        [
            (200, "{domain}"),
            AUTH,
            NOT_FOUND,
            (409, "domain_taken"),
            (422, "domain_verification_failed (retryable)")
        ]
    ),
    route!(
        "post",
        "/v1/projects/{id}/auth-domains/{domain_id}/primary",
        "Make a verified domain the project's primary (its issuer)",
        None,
        [
            (200, "{domain}"),
            AUTH,
            NOT_FOUND,
            (422, "domain_not_verified")
        ]
    ),
    route!(
        "post",
        "/v1/projects/{id}/tenants",
        "Create a tenant",
        Some((&["name"], &[])),
        [
            (201, "{tenant}"),
            BAD,
            AUTH,
            NOT_FOUND,
            (422, "invalid_name")
        ]
    ),
    route!(
        "get",
        "/v1/projects/{id}/tenants",
        "List tenants",
        None,
        [(200, "{items, next_cursor}"), AUTH, NOT_FOUND]
    ),
    route!(
        "get",
        "/v1/projects/{id}/tenants/{tenant_id}",
        "Get a tenant",
        None,
        [(200, "{tenant}"), AUTH, NOT_FOUND]
    ),
    route!(
        "patch",
        "/v1/projects/{id}/tenants/{tenant_id}",
        "Rename a tenant",
        Some((&["name"], &[])),
        [
            (200, "{tenant}"),
            BAD,
            AUTH,
            NOT_FOUND,
            (422, "invalid_name")
        ]
    ),
    route!(
        "get",
        "/v1/projects/{id}/oauth-providers",
        "The project's OAuth and OpenID providers (secrets never shown)",
        None,
        [(200, "{items: [provider]}"), AUTH, NOT_FOUND]
    ),
    route!(
        "put",
        "/v1/projects/{id}/oauth-providers/{provider}",
        "Configure a provider: google, microsoft, apple, github or oidc:<name>; the client secret and Apple's key are sealed and never returned",
        Some((
            &["client_id"],
            &[
                "client_secret",
                "scopes",
                "enabled",
                "issuer",
                "endpoints",
                "apple"
            ]
        )),
        [
            (200, "{provider} (updated)"),
            (201, "{provider} (created)"),
            BAD,
            AUTH,
            (404, "not_found (project) or unknown_provider"),
            (422, "invalid_provider")
        ]
    ),
    route!(
        "delete",
        "/v1/projects/{id}/oauth-providers/{provider}",
        "Remove a provider",
        None,
        [(204, "removed"), AUTH, NOT_FOUND]
    ),
    route!(
        "put",
        "/v1/projects/{id}/tenants/{tenant_id}/sso",
        "Configure the tenant's enterprise SSO connection (OpenID): it answers for the tenant's verified domains; enforce refuses password and email sign-in there",
        Some((
            &["issuer", "client_id"],
            &["client_secret", "enforce", "enabled", "scopes", "protocol"]
        )),
        [
            (200, "{sso} (updated)"),
            (201, "{sso} (created)"),
            BAD,
            AUTH,
            NOT_FOUND,
            (422, "invalid_provider")
        ]
    ),
    route!(
        "get",
        "/v1/projects/{id}/tenants/{tenant_id}/sso",
        "The tenant's SSO connection (its secret never shown)",
        None,
        [(200, "{sso}"), AUTH, NOT_FOUND]
    ),
    route!(
        "delete",
        "/v1/projects/{id}/tenants/{tenant_id}/sso",
        "Remove the tenant's SSO connection",
        None,
        [(204, "removed"), AUTH, NOT_FOUND]
    ),
    route!(
        "get",
        "/v1/projects/{id}/email-templates/{kind}/preview",
        "A message kind rendered with the project's template overrides and example values",
        None,
        [
            (200, "{kind, overridden, subject, text, html}"),
            AUTH,
            (404, "not_found (project) or unknown_template")
        ]
    ),
    route!(
        "delete",
        "/v1/projects/{id}/tenants/{tenant_id}",
        "Delete a tenant and its domains",
        None,
        [(204, "deleted"), AUTH, NOT_FOUND]
    ),
    route!(
        "post",
        "/v1/projects/{id}/tenants/{tenant_id}/domains",
        "Claim an email domain for a tenant",
        Some((&["domain"], &[])),
        [
            (201, "{domain, verification}"),
            BAD,
            AUTH,
            NOT_FOUND,
            (409, "domain_taken"),
            (422, "invalid_hostname or public_email_domain")
        ]
    ),
    route!(
        "get",
        "/v1/projects/{id}/tenants/{tenant_id}/domains",
        "List a tenant's domains",
        None,
        [(200, "{items, next_cursor}"), AUTH, NOT_FOUND]
    ),
    route!(
        "get",
        "/v1/projects/{id}/tenants/{tenant_id}/domains/{domain_id}",
        "Get a tenant domain",
        None,
        [(200, "{domain, verification?}"), AUTH, NOT_FOUND]
    ),
    route!(
        "delete",
        "/v1/projects/{id}/tenants/{tenant_id}/domains/{domain_id}",
        "Remove a tenant domain",
        None,
        [(204, "removed"), AUTH, NOT_FOUND]
    ),
    route!(
        "post",
        "/v1/projects/{id}/tenants/{tenant_id}/domains/{domain_id}/verify",
        "Check the TXT record and mark the tenant domain verified",
        None,
        [
            (200, "{domain}"),
            AUTH,
            NOT_FOUND,
            (409, "domain_taken"),
            (422, "domain_verification_failed (retryable)")
        ]
    ),
    route!("get", "/healthz", "Liveness", None, [(200, "ok")]),
    route!(
        "get",
        "/metrics",
        "Prometheus metrics of the outbox (served when this process also runs the data plane; no credentials)",
        None,
        [
            (200, "Prometheus text format 0.0.4"),
            (404, "not_found (a control-plane-only process)")
        ]
    ),
    route!(
        "get",
        "/readyz",
        "Readiness: database reachable and migrations current",
        None,
        [(200, "ready"), (503, "not ready")]
    ),
    route!(
        "get",
        "/openapi.json",
        "This document",
        None,
        [(200, "OpenAPI 3.1")]
    ),
];

pub async fn spec() -> Json<Value> {
    Json(document(
        "identity control plane",
        "Admin API. Every /v1 call needs Authorization: Bearer <operator token>.",
        Some("bearer"),
        ROUTES,
    ))
}
