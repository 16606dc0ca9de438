//! The routes of the email flows and the outbox, in the data plane's
//! OpenAPI document.

use identity_shared::openapi::Route;
use identity_shared::route;

use super::{AUTH, BAD, CSRF, DB, HASHING, LIMITED, LOGIN_CSRF, MEDIA, SECRET, STEP_UP};

const NO_EMAIL: (u16, &str) = (
    503,
    "email_not_configured (no IDENTITY_SMTP_URL outside dev mode)",
);

pub const ROUTES: &[Route] = &[
    route!(
        "post",
        "/v1/auth/email/verify/request",
        "Send the signed-in user a link and a code (24 hours) to verify their email",
        None,
        [
            (204, "sent (or already verified)"),
            AUTH,
            CSRF,
            (
                429,
                "too_many_messages (per-address cap) or too_many_attempts"
            ),
            NO_EMAIL
        ]
    ),
    route!(
        "post",
        "/v1/auth/email/verify/confirm",
        "Verify the signed-in user's email with the link's token or the code",
        Some((&[], &["token", "code"])),
        [
            (200, "{user} with email_verified: true"),
            (400, "invalid_token, invalid_code or invalid_request"),
            AUTH,
            CSRF,
            MEDIA,
            LIMITED
        ]
    ),
    route!(
        "post",
        "/v1/auth/password/forgot",
        "Email a password-reset link (1 hour) if the address has an account; always 204",
        Some((&["email"], &[])),
        [
            (204, "accepted (whether or not the address has an account)"),
            BAD,
            MEDIA,
            (422, "invalid_email"),
            LIMITED,
            NO_EMAIL
        ]
    ),
    route!(
        "post",
        "/v1/auth/password/reset",
        "Set a new password with a reset link's token (single-use); every session ends",
        Some((&["token", "new_password"], &[])),
        [
            (204, "password set, sessions ended"),
            (400, "invalid_token or invalid_request"),
            MEDIA,
            (422, "weak_password"),
            LIMITED,
            HASHING,
            DB
        ]
    ),
    route!(
        "post",
        "/v1/auth/email-otp/request",
        "Email a 6-digit sign-in code (10 minutes); always 204",
        Some((&["email"], &["create_user"])),
        [
            (204, "accepted (whether or not the address has an account)"),
            BAD,
            MEDIA,
            (422, "invalid_email"),
            LIMITED,
            NO_EMAIL
        ]
    ),
    route!(
        "post",
        "/v1/auth/email-otp/verify",
        "Sign in with the emailed code; five wrong codes kill it",
        Some((&["email", "code"], &[])),
        [
            (200, "TokenResponse, or {mfa_required, mfa_token, methods}"),
            BAD,
            (401, "invalid_code"),
            LOGIN_CSRF,
            MEDIA,
            LIMITED
        ]
    ),
    route!(
        "post",
        "/v1/auth/magic-link/request",
        "Email a sign-in link (15 minutes, single-use); always 204",
        Some((&["email"], &["redirect_to", "create_user"])),
        [
            (204, "accepted (whether or not the address has an account)"),
            (400, "invalid_redirect or invalid_request"),
            MEDIA,
            (422, "invalid_email"),
            LIMITED,
            NO_EMAIL
        ]
    ),
    route!(
        "post",
        "/v1/auth/magic-link/verify",
        "Sign in with a magic link's token",
        Some((&["token"], &[])),
        [
            (200, "TokenResponse, or {mfa_required, mfa_token, methods}"),
            (400, "invalid_token or invalid_request"),
            LOGIN_CSRF,
            MEDIA,
            LIMITED
        ]
    ),
    route!(
        "post",
        "/v1/auth/email/change",
        "Send a link to a new address (24 hours) and a notice to the old one (step-up)",
        Some((&["new_email"], &[])),
        [
            (204, "sent"),
            BAD,
            AUTH,
            STEP_UP,
            CSRF,
            MEDIA,
            (422, "invalid_email or same_email"),
            (
                429,
                "too_many_messages (per-address cap) or too_many_attempts"
            ),
            NO_EMAIL
        ]
    ),
    route!(
        "post",
        "/v1/auth/email/change/confirm",
        "Move the account to the new address (verified) with the link's token; no session needed",
        Some((&["token"], &[])),
        [
            (200, "{user}"),
            (400, "invalid_token or invalid_request"),
            (409, "email_taken"),
            MEDIA,
            LIMITED
        ]
    ),
    route!(
        "post",
        "/v1/auth/phone",
        "Send a 6-digit code (10 minutes) by SMS to an E.164 number",
        Some((&["phone"], &[])),
        [
            (204, "sent"),
            BAD,
            AUTH,
            CSRF,
            MEDIA,
            (422, "invalid_phone"),
            (
                429,
                "too_many_messages (per-number or per-project daily cap) or too_many_attempts"
            ),
            (
                503,
                "sms_not_configured (no IDENTITY_SMS_WEBHOOK_URL outside dev mode)"
            )
        ]
    ),
    route!(
        "post",
        "/v1/auth/phone/verify",
        "Verify the phone number with the SMS code",
        Some((&["code"], &[])),
        [
            (200, "{user} with phone and phone_verified: true"),
            (400, "invalid_code or invalid_request"),
            AUTH,
            CSRF,
            MEDIA,
            LIMITED
        ]
    ),
    route!(
        "get",
        "/v1/messages",
        "The project's outbox, newest first (?status=queued|sent|dead, ?limit, ?cursor); secret key",
        None,
        [
            (
                200,
                "{items: [{id, channel, kind, to, status, attempts, next_attempt_at, last_error, created_at, sent_at, payload_stored}], next_cursor}"
            ),
            (400, "invalid_request (unknown status)"),
            SECRET
        ]
    ),
];
