//! The routes of tenants (organisations) and their members, in the data
//! plane's OpenAPI document.

use identity_shared::openapi::Route;
use identity_shared::route;

use super::{AUTH, CSRF, MEDIA};

const DENIED: (u16, &str) = (
    403,
    "permission_denied (the caller's role lacks the route's permission), or csrf_failed",
);
const NOT_MEMBER: (u16, &str) = (
    404,
    "not_found (no such tenant, or the caller is not a member)",
);

pub const ROUTES: &[Route] = &[
    route!(
        "post",
        "/v1/auth/session/tenant",
        "Sets (or, with null, clears) the session's active tenant: a TokenResponse whose access token carries tid, tenant_role and permissions; the choice sticks through refreshes",
        Some((&["tenant_id"], &[])),
        [
            (200, "TokenResponse"),
            AUTH,
            (403, "csrf_failed"),
            (404, "not_found (not a member of that tenant)"),
            MEDIA
        ]
    ),
    route!(
        "post",
        "/v1/tenants",
        "Create a tenant: the signed-in caller is its owner (users_can_create_tenants); with the secret key, a tenant without members",
        Some((&["name"], &[])),
        [
            (201, "{tenant: {id, name, role?, created_at, updated_at}}"),
            AUTH,
            (403, "tenant_creation_disabled or csrf_failed"),
            MEDIA,
            (422, "invalid_name")
        ]
    ),
    route!(
        "get",
        "/v1/tenants",
        "The caller's tenants with their role; with the secret key and ?all=true, every tenant of the project (?limit=, ?cursor=)",
        None,
        [
            (200, "{items: [tenant], next_cursor?}"),
            (400, "invalid_request"),
            AUTH
        ]
    ),
    route!(
        "get",
        "/v1/tenants/{id}",
        "A tenant the caller belongs to (tenant:read)",
        None,
        [(200, "{tenant}"), AUTH, DENIED, NOT_MEMBER]
    ),
    route!(
        "patch",
        "/v1/tenants/{id}",
        "Rename the tenant (tenant:update)",
        Some((&["name"], &[])),
        [
            (200, "{tenant}"),
            AUTH,
            CSRF,
            DENIED,
            NOT_MEMBER,
            MEDIA,
            (422, "invalid_name")
        ]
    ),
    route!(
        "delete",
        "/v1/tenants/{id}",
        "Delete the tenant, its domains, SSO connection and memberships (tenant:delete)",
        None,
        [(204, "deleted"), AUTH, DENIED, NOT_MEMBER]
    ),
    route!(
        "get",
        "/v1/tenants/{id}/members",
        "The tenant's members (members:read)",
        None,
        [
            (200, "{items: [{user: {id, email, name}, role, joined_at}]}"),
            AUTH,
            DENIED,
            NOT_MEMBER
        ]
    ),
    route!(
        "post",
        "/v1/tenants/{id}/members",
        "Add a user of the project to the tenant (secret key)",
        Some((&["user_id", "role"], &[])),
        [
            (201, "{member}"),
            (403, "secret_key_required"),
            (404, "not_found (tenant or user)"),
            (409, "already_member"),
            (422, "invalid_role")
        ]
    ),
    route!(
        "patch",
        "/v1/tenants/{id}/members/{user_id}",
        "Change a member's role (members:manage; only an owner grants or takes away owner)",
        Some((&["role"], &[])),
        [
            (200, "{member}"),
            AUTH,
            DENIED,
            (404, "not_found (tenant or member)"),
            (409, "last_owner"),
            (422, "invalid_role")
        ]
    ),
    route!(
        "delete",
        "/v1/tenants/{id}/members/{user_id}",
        "Remove a member (members:manage), or leave (yourself)",
        None,
        [
            (204, "removed"),
            AUTH,
            DENIED,
            (404, "not_found (tenant or member)"),
            (409, "last_owner")
        ]
    ),
    route!(
        "post",
        "/v1/tenants/{id}/transfer-ownership",
        "An owner makes a member owner and becomes admin",
        Some((&["user_id"], &[])),
        [
            (204, "transferred"),
            (400, "invalid_request (yourself)"),
            AUTH,
            DENIED,
            (404, "not_found (tenant or member)")
        ]
    ),
    route!(
        "post",
        "/v1/tenants/{id}/invitations",
        "Invite an address with a role (members:invite; owner only for owner): emailed, 7 days, one pending per address",
        Some((&["email", "role"], &[])),
        [
            (
                201,
                "{invitation: {id, tenant_id, email, role, inviter, status, created_at, expires_at}}"
            ),
            (400, "invalid_email"),
            AUTH,
            DENIED,
            NOT_MEMBER,
            (409, "invitation_pending or already_member"),
            (422, "invalid_role"),
            (429, "too_many_attempts"),
            (503, "email_not_configured")
        ]
    ),
    route!(
        "get",
        "/v1/tenants/{id}/invitations",
        "The tenant's pending invitations (members:invite)",
        None,
        [(200, "{items: [invitation]}"), AUTH, DENIED, NOT_MEMBER]
    ),
    route!(
        "delete",
        "/v1/tenants/{id}/invitations/{inv_id}",
        "Revoke a pending invitation (members:invite)",
        None,
        [
            (204, "revoked"),
            AUTH,
            DENIED,
            (404, "not_found (tenant or invitation)")
        ]
    ),
    route!(
        "post",
        "/v1/tenants/{id}/invitations/{inv_id}/resend",
        "Email a new link (the old one stops working) valid 7 more days (members:invite)",
        None,
        [
            (200, "{invitation}"),
            AUTH,
            DENIED,
            (404, "not_found (tenant or invitation)"),
            (503, "email_not_configured")
        ]
    ),
    route!(
        "get",
        "/v1/invitations/{token}",
        "Public preview of an invitation",
        None,
        [
            (
                200,
                "{tenant: {id, name}, email, role, inviter, expires_at}"
            ),
            (400, "invalid_token (unknown, used, revoked or expired)"),
            (429, "too_many_attempts")
        ]
    ),
    route!(
        "post",
        "/v1/invitations/accept",
        "Accept: signed in with the invited address, join; no account yet, create it (the address verified) and sign in",
        Some((&["token"], &["password", "name"])),
        [
            (200, "{tenant: {id, name}, role}"),
            (201, "TokenResponse (a new account)"),
            (400, "invalid_token"),
            (401, "sign_in_required (the address has an account)"),
            (
                403,
                "invitation_email_mismatch, sso_required or csrf_failed"
            ),
            (422, "weak_password or password_required"),
            (429, "too_many_attempts")
        ]
    ),
    route!(
        "post",
        "/v1/tenants/{id}/groups",
        "Create a group in the tenant (groups:manage)",
        Some((&["name"], &[])),
        [
            (201, "{group: {id, name, created_at, updated_at}}"),
            AUTH,
            DENIED,
            NOT_MEMBER,
            (409, "group_name_taken"),
            (422, "invalid_name")
        ]
    ),
    route!(
        "get",
        "/v1/tenants/{id}/groups",
        "The tenant's groups (tenant:read)",
        None,
        [(200, "{items: [group]}"), AUTH, DENIED, NOT_MEMBER]
    ),
    route!(
        "get",
        "/v1/tenants/{id}/groups/{group_id}",
        "A group with its members (tenant:read)",
        None,
        [
            (
                200,
                "{group: {id, name, members: [{id, email, name}], created_at, updated_at}}"
            ),
            AUTH,
            DENIED,
            (404, "not_found (tenant or group)")
        ]
    ),
    route!(
        "patch",
        "/v1/tenants/{id}/groups/{group_id}",
        "Rename a group (groups:manage)",
        Some((&["name"], &[])),
        [
            (200, "{group}"),
            AUTH,
            DENIED,
            (404, "not_found (tenant or group)"),
            (409, "group_name_taken"),
            (422, "invalid_name")
        ]
    ),
    route!(
        "delete",
        "/v1/tenants/{id}/groups/{group_id}",
        "Delete a group (groups:manage)",
        None,
        [
            (204, "deleted"),
            AUTH,
            DENIED,
            (404, "not_found (tenant or group)")
        ]
    ),
    route!(
        "put",
        "/v1/tenants/{id}/groups/{group_id}/members/{user_id}",
        "Add a member of the tenant to the group (groups:manage)",
        None,
        [
            (204, "added (or already there)"),
            AUTH,
            DENIED,
            (404, "not_found (tenant or group)"),
            (422, "not_a_member (of the tenant)")
        ]
    ),
    route!(
        "delete",
        "/v1/tenants/{id}/groups/{group_id}/members/{user_id}",
        "Remove a user from the group (groups:manage)",
        None,
        [
            (204, "removed"),
            AUTH,
            DENIED,
            (404, "not_found (tenant, group or member)")
        ]
    ),
];
