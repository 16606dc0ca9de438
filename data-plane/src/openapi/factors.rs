//! The routes of second factors and passkeys, in the data plane's OpenAPI
//! document.

use identity_shared::openapi::Route;
use identity_shared::route;

use super::{AUTH, BAD, CSRF, DB, HASHING, LIMITED, LIMITED_OR_LOCKED, LOGIN_CSRF, MEDIA, STEP_UP};

pub const ROUTES: &[Route] = &[
    route!(
        "get",
        "/v1/auth/mfa",
        "The user's second factors",
        None,
        [
            (
                200,
                "{totp: {enabled, created_at} | null, recovery_codes_remaining, passkeys}"
            ),
            AUTH
        ]
    ),
    route!(
        "post",
        "/v1/auth/mfa/totp/enroll",
        "Start TOTP enrollment: a pending secret, replacing a pending one (step-up)",
        None,
        [
            (200, "{secret, otpauth_uri, qr_svg}"),
            AUTH,
            STEP_UP,
            (409, "totp_already_enabled")
        ]
    ),
    route!(
        "post",
        "/v1/auth/mfa/totp/confirm",
        "Confirm TOTP with a code within ten minutes; returns the ten recovery codes, once (step-up)",
        Some((&["code"], &[])),
        [
            (200, "{recovery_codes}"),
            BAD,
            AUTH,
            STEP_UP,
            (
                409,
                "totp_not_pending (nothing pending, or pending for over ten minutes)"
            ),
            MEDIA,
            (422, "invalid_code"),
            LIMITED_OR_LOCKED
        ]
    ),
    route!(
        "delete",
        "/v1/auth/mfa/totp",
        "Disable TOTP and remove the recovery codes (step-up)",
        None,
        [(204, "disabled"), AUTH, STEP_UP, (409, "totp_not_enabled")]
    ),
    route!(
        "post",
        "/v1/auth/mfa/recovery-codes",
        "Ten new recovery codes; the old ones stop working (step-up)",
        None,
        [
            (200, "{recovery_codes}"),
            AUTH,
            STEP_UP,
            (409, "totp_not_enabled")
        ]
    ),
    route!(
        "post",
        "/v1/auth/mfa/challenge",
        "Answer a login's mfa_required with a TOTP code or a recovery code",
        Some((
            &["mfa_token"],
            &["code", "recovery_code", "passkey", "remember_browser"]
        )),
        [
            (200, "TokenResponse"),
            BAD,
            (
                401,
                "invalid_code, or mfa_token_invalid (unknown, expired, used, or five wrong codes)"
            ),
            LOGIN_CSRF,
            MEDIA,
            LIMITED_OR_LOCKED,
            DB
        ]
    ),
    route!(
        "post",
        "/v1/auth/mfa/verify",
        "Step up the session with a TOTP code, a recovery code or a passkey",
        Some((&[], &["code", "recovery_code", "passkey"])),
        [
            (204, "stepped up"),
            BAD,
            (401, "invalid_code or an authentication error"),
            CSRF,
            (409, "totp_not_enabled"),
            MEDIA,
            LIMITED_OR_LOCKED
        ]
    ),
    route!(
        "post",
        "/v1/auth/reauthenticate",
        "Step up the session with the password (users without a second factor)",
        Some((&["password"], &[])),
        [
            (204, "stepped up"),
            BAD,
            (401, "invalid_credentials or an authentication error"),
            (
                403,
                "step_up_required (the user has a second factor), or csrf_failed"
            ),
            MEDIA,
            LIMITED_OR_LOCKED,
            HASHING
        ]
    ),
    route!(
        "post",
        "/v1/auth/passkeys/register/begin",
        "Start registering a passkey: PublicKeyCredentialCreationOptions (step-up)",
        Some((&[], &["name"])),
        [
            (200, "{challenge_id, options}"),
            BAD,
            AUTH,
            STEP_UP,
            (409, "passkey_limit (ten per user) or passkeys_unavailable")
        ]
    ),
    route!(
        "post",
        "/v1/auth/passkeys/register/finish",
        "Finish registering a passkey with the browser's credential",
        Some((&["challenge_id", "credential"], &["name"])),
        [
            (201, "{passkey}"),
            BAD,
            AUTH,
            CSRF,
            (409, "passkey_limit or passkey_exists"),
            MEDIA,
            (422, "invalid_credential")
        ]
    ),
    route!(
        "post",
        "/v1/auth/passkeys/login/begin",
        "Start a passkey ceremony: sign-in (email-hinted or discoverable), or a second factor (mfa_token, or the session for step-up)",
        Some((&[], &["email", "mfa_token"])),
        [
            (200, "{challenge_id, options}"),
            BAD,
            (
                401,
                "mfa_token_invalid, or an authentication error (a session that is not valid)"
            ),
            (409, "passkeys_unavailable"),
            LIMITED
        ]
    ),
    route!(
        "post",
        "/v1/auth/passkeys/login/finish",
        "Finish a passkey sign-in (amr hwk, mfa)",
        Some((&["challenge_id", "credential"], &[])),
        [
            (200, "TokenResponse"),
            BAD,
            (401, "invalid_credentials"),
            LOGIN_CSRF,
            MEDIA,
            LIMITED
        ]
    ),
    route!(
        "get",
        "/v1/auth/passkeys",
        "The user's passkeys",
        None,
        [
            (
                200,
                "{items: [{id, name, created_at, last_used_at, backed_up, transports}]}"
            ),
            AUTH
        ]
    ),
    route!(
        "patch",
        "/v1/auth/passkeys/{id}",
        "Rename a passkey",
        Some((&["name"], &[])),
        [
            (200, "{passkey}"),
            BAD,
            AUTH,
            CSRF,
            (404, "not_found"),
            MEDIA
        ]
    ),
    route!(
        "delete",
        "/v1/auth/passkeys/{id}",
        "Delete a passkey (step-up)",
        None,
        [(204, "deleted"), AUTH, STEP_UP, (404, "not_found")]
    ),
];
