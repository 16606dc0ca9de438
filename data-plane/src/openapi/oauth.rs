//! The routes of OAuth and OpenID Connect sign-in, in the data plane's
//! OpenAPI document.

use identity_shared::openapi::Route;
use identity_shared::route;

use super::{AUTH, CSRF, LIMITED, LOGIN_CSRF, MEDIA, STEP_UP};

pub const ROUTES: &[Route] = &[
    route!(
        "get",
        "/v1/auth/identities",
        "The signed-in user's linked provider identities",
        None,
        [
            (
                200,
                "{items: [{id, provider, provider_user_id, email, created_at}]}"
            ),
            AUTH
        ]
    ),
    route!(
        "delete",
        "/v1/auth/identities/{id}",
        "Unlink an identity (step-up)",
        None,
        [
            (204, "unlinked"),
            AUTH,
            STEP_UP,
            CSRF,
            (404, "not_found"),
            (
                409,
                "last_credential (nothing else would let the user sign in)"
            )
        ]
    ),
    route!(
        "get",
        "/v1/auth/oauth/{provider}/start",
        "A browser navigation: 302 to the provider with state, nonce and PKCE (S256); ?redirect_to= (an allowed origin), ?project_key=pk_... (or a branded auth domain), optionally ?link=true&link_token= and the app's ?code_challenge= (S256)",
        None,
        [
            (
                302,
                "to the provider; sets the HttpOnly binding cookie identity_oauth_<state hash>"
            ),
            (
                400,
                "invalid_redirect, invalid_link_token or invalid_request"
            ),
            (401, "project_key_invalid"),
            (403, "publishable_key_required"),
            (404, "unknown_provider"),
            LIMITED,
            (503, "provider_unavailable")
        ]
    ),
    route!(
        "get",
        "/v1/auth/oauth/{provider}/callback",
        "The provider's redirect back: 302 to redirect_to with ?code= (one-time, 60 s), session cookies (cookie transport), ?link_code= (a link, to confirm) or ?error=<code>",
        None,
        [
            (
                302,
                "to redirect_to with ?code=, cookies, ?link_code= or ?error="
            ),
            (400, "invalid_state (unknown, used or expired)"),
            LIMITED
        ]
    ),
    route!(
        "post",
        "/v1/auth/oauth/{provider}/callback",
        "The same, for providers that post their answer (response_mode=form_post)",
        None,
        [
            (
                302,
                "to redirect_to with ?code=, cookies, ?link_code= or ?error="
            ),
            (400, "invalid_state or invalid_request"),
            LIMITED
        ]
    ),
    route!(
        "post",
        "/v1/auth/oauth/exchange",
        "The callback's one-time code for tokens, in the project it was issued for",
        Some((&["code"], &["code_verifier"])),
        [
            (200, "TokenResponse, or {mfa_required, mfa_token, methods}"),
            (
                400,
                "invalid_code, invalid_code_verifier or invalid_request"
            ),
            LOGIN_CSRF,
            MEDIA,
            LIMITED
        ]
    ),
    route!(
        "post",
        "/v1/auth/oauth/link-token",
        "A token (60 s, single-use) for linking another provider to the signed-in user: start with ?link=true&link_token= (step-up)",
        None,
        [(200, "{link_token, expires_in}"), AUTH, STEP_UP, CSRF]
    ),
    route!(
        "post",
        "/v1/auth/oauth/link/confirm",
        "Links the provider account behind the callback's ?link_code= to the signed-in user, who must be the one who asked for the link token",
        Some((&["link_code"], &[])),
        [
            (200, "{identity: {provider, provider_user_id, email}}"),
            (400, "invalid_code"),
            (403, "link_user_mismatch or sso_domain_mismatch"),
            (409, "identity_conflict"),
            AUTH,
            CSRF,
            MEDIA,
            LIMITED
        ]
    ),
    route!(
        "post",
        "/v1/auth/sso/start",
        "Enterprise SSO by the address's domain: the URL of the sign-in through that tenant's connection",
        Some((&["email"], &["redirect_to"])),
        [
            (200, "{redirect_url}"),
            (400, "invalid_email or invalid_redirect"),
            (403, "publishable_key_required"),
            (404, "sso_not_configured"),
            MEDIA,
            LIMITED
        ]
    ),
];
