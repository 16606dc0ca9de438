//! Proving a second factor: the check every route that takes a code shares
//! (lockout-counted, each code spent once), step-up for sensitive actions,
//! `POST /v1/auth/mfa/verify` and `POST /v1/auth/reauthenticate`.

use crate::DataState;
use crate::audit::event;
use crate::mfa::totp;
use crate::passkeys::second::{self as passkey, PasskeyAnswer};
use crate::request::caller::Caller;
use crate::request::client::Client;
use crate::request::limits::rate_limit;
use crate::request::resolve::ProjectInfo;
use crate::request::resolve::Resolved;
use crate::sessions::manage::load_user;
use crate::store::login_failures::{self, Attempt};
use crate::store::mfa;
use crate::store::passkeys;
use crate::store::sessions::{self, SessionRow};
use crate::store::trusted_browsers;
use crate::store::users;
use crate::store::users::UserRow;
use identity_shared::audit::{self, Event, Outcome};
use identity_shared::db::Tx;
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::secret::Secret;
use identity_shared::time::now_ms;
use serde::Deserialize;
use serde_json::Value;

/// What a TOTP secret is sealed to: its project and user, so a sealed value
/// cannot be moved to another row.
pub fn seal_context(project_id: &str, user_id: &str) -> String {
    format!("mfa_totp:{project_id}:{user_id}")
}

/// The user's TOTP secret, opened; `None` without one (or one that no
/// longer opens: fail closed).
pub fn open_secret(
    state: &DataState,
    project_id: &str,
    user_id: &str,
    row: &mfa::TotpRow,
) -> Option<Vec<u8>> {
    state
        .master_key
        .open(&row.secret_sealed, &seal_context(project_id, user_id))
        .ok()
}

/// Audits an action of the signed-in user on their own factors (a failure
/// when `kind` ends in `failed`).
pub async fn record(
    tx: &mut Tx,
    caller: &Caller,
    client: &Client,
    kind: &'static str,
    data: Value,
) -> ApiResult<()> {
    let outcome = if kind.ends_with("failed") {
        Outcome::Failure
    } else {
        Outcome::Success
    };
    let ip = client.ip_text();
    let user_id = &caller.claims.sub;
    audit::record(
        tx,
        Event {
            actor: Some(user_id),
            subject: Some(user_id),
            data,
            ..event(&caller.resolved, client, &ip, kind, outcome)
        },
    )
    .await?;
    Ok(())
}

pub fn now_seconds() -> u64 {
    u64::try_from(now_ms() / 1000).unwrap_or(0)
}

pub fn invalid_code() -> ApiError {
    ApiError::unprocessable("invalid_code", "the code is not correct")
}

/// A second factor as presented: a TOTP code, a recovery code, or a
/// passkey assertion.
#[derive(Debug, Deserialize)]
pub struct Factor {
    pub code: Option<Secret<String>>,
    pub recovery_code: Option<Secret<String>>,
    pub passkey: Option<PasskeyAnswer>,
}

impl Factor {
    /// Exactly one of the two: checked before an attempt is reserved, so a
    /// malformed request never counts against the lockout.
    pub fn check_shape(&self) -> ApiResult<()> {
        let given = [
            self.code.is_some(),
            self.recovery_code.is_some(),
            self.passkey.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err(ApiError::invalid_request(
                "send exactly one of code, recovery_code and passkey",
            ));
        }
        Ok(())
    }
}

/// Which factor was proved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proved {
    Totp,
    RecoveryCode,
    Passkey,
}

impl Proved {
    pub fn name(self) -> &'static str {
        match self {
            Proved::Totp => "totp",
            Proved::RecoveryCode => "recovery_code",
            Proved::Passkey => "passkey",
        }
    }

    /// What it adds to the session's `amr` (RFC 8176).
    pub fn amr(self) -> Option<&'static str> {
        match self {
            Proved::Totp => Some("otp"),
            Proved::Passkey => Some("hwk"),
            Proved::RecoveryCode => None,
        }
    }
}

/// The `mfa` rate limit (per project and address, sized like
/// `login_per_minute`): before any database work.
pub fn mfa_rate_limit(state: &DataState, resolved: &Resolved, client: &Client) -> ApiResult<()> {
    rate_limit(
        state,
        resolved,
        client,
        "mfa",
        resolved.project.settings.rate_limits.login_per_minute,
    )
}

/// One evaluation of a second factor, reserved twice under the lockout: on
/// the (account, address) pair passwords use, and on the account alone
/// whatever the address (5 wrong codes per user per 15 minutes, from any
/// number of addresses: a known password does not buy more guesses).
pub struct FactorAttempt {
    pair: Attempt,
    account: Attempt,
}

impl FactorAttempt {
    /// Whether a wrong code now locks the pair or the account.
    pub fn locks_on_failure(&self) -> bool {
        self.pair.locks_on_failure || self.account.locks_on_failure
    }

    /// The code was right: both counters are cleared.
    pub async fn succeeded(&self, tx: &mut Tx) -> ApiResult<()> {
        login_failures::succeeded(tx, &self.pair).await?;
        login_failures::succeeded(tx, &self.account).await?;
        Ok(())
    }
}

pub async fn reserve_attempt(
    state: &DataState,
    resolved: &Resolved,
    client: &Client,
    user: &UserRow,
) -> ApiResult<FactorAttempt> {
    let project_id = &resolved.project.id;
    let db = state.shard(resolved)?;
    let key = login_failures::account_key(project_id, &user.email_normalized);
    let pair = login_failures::reserve(
        db,
        project_id,
        &key,
        &client.ip_key(),
        &client.ip_text(),
        Some(&user.id),
    )
    .await??;
    let account =
        match login_failures::reserve(db, project_id, &format!("{key}:mfa"), "mfa", "mfa", None)
            .await?
        {
            Ok(a) => a,
            Err(locked) => {
                if let Err(e) = login_failures::release(db, &pair).await {
                    tracing::warn!(error = %e, "could not release a lockout reservation");
                }
                return Err(locked.into());
            }
        };
    Ok(FactorAttempt { pair, account })
}

/// Checks `factor` for `user_id` and spends it in `tx` (the TOTP time step,
/// or the recovery code): `Some` when it was right and unspent.
/// `bound_to`: what a passkey ceremony for this answer must have been begun
/// by (`session:{id}` for step-up, `mfa:{challenge id}` for a login).
pub async fn prove(
    state: &DataState,
    tx: &mut Tx,
    project: &ProjectInfo,
    user_id: &str,
    bound_to: &str,
    factor: &Factor,
) -> ApiResult<Option<Proved>> {
    let project_id = project.id.as_str();
    if let Some(answer) = &factor.passkey {
        return Ok(
            passkey::prove(state, tx, project, user_id, bound_to, answer)
                .await?
                .then_some(Proved::Passkey),
        );
    }
    match (&factor.code, &factor.recovery_code) {
        (Some(code), None) => {
            let Some(row) = mfa::totp(tx, project_id, user_id)
                .await?
                .filter(|t| t.confirmed_at.is_some())
            else {
                return Ok(None);
            };
            let step = open_secret(state, project_id, user_id, &row)
                .and_then(|secret| totp::check(&secret, code.expose(), now_seconds()));
            Ok(match step {
                Some(step)
                    if mfa::use_totp_step(
                        tx,
                        project_id,
                        user_id,
                        step,
                        mfa::StepOf::Confirmed,
                    )
                    .await? =>
                {
                    Some(Proved::Totp)
                }
                _ => None,
            })
        }
        (None, Some(code)) => {
            let hash = totp::recovery_code_hash(&state.recovery_key, user_id, code.expose());
            Ok(mfa::use_recovery_code(tx, project_id, user_id, &hash)
                .await?
                .then_some(Proved::RecoveryCode))
        }
        _ => Err(ApiError::invalid_request(
            "send exactly one of code, recovery_code and passkey",
        )),
    }
}

/// The caller's user and session, read fresh, when the session proved a
/// factor (or, for a user without one, the password) within the project's
/// `step_up_ttl_seconds`; `403 step_up_required` otherwise.
pub async fn require_step_up(
    state: &DataState,
    caller: &Caller,
) -> ApiResult<(UserRow, SessionRow)> {
    let (user, session) = load_user(state, caller).await?;
    let ttl = caller.resolved.project.settings.step_up_ttl_seconds;
    if !session.stepped_up(now_ms(), ttl) {
        return Err(step_up_required());
    }
    Ok((user, session))
}

pub fn step_up_required() -> ApiError {
    ApiError::forbidden(
        "step_up_required",
        "prove a factor again first: POST /v1/auth/mfa/verify, or /v1/auth/reauthenticate without a second factor",
    )
}

/// A wrong code where a factor is required to proceed.
pub fn invalid_code_401() -> ApiError {
    ApiError::unauthorized("invalid_code", "the code is not correct")
}

/// Sets `user.mfa_enabled` from the factors the user has now (a confirmed
/// TOTP secret or a passkey). When none is left, the recovery codes,
/// outstanding challenges and trusted browsers go too. Cached views of the
/// user's sessions reload.
pub async fn sync_mfa_enabled(tx: &mut Tx, project_id: &str, user_id: &str) -> ApiResult<bool> {
    let totp = mfa::totp(tx, project_id, user_id)
        .await?
        .is_some_and(|t| t.confirmed_at.is_some());
    let enabled = totp || !passkeys::of_user(tx, project_id, user_id).await?.is_empty();
    if !enabled {
        mfa::delete_all(tx, project_id, user_id).await?;
        trusted_browsers::forget_all(tx, project_id, user_id).await?;
    }
    users::set_mfa_enabled(tx, project_id, user_id, enabled).await?;
    sessions::reload_views(tx, project_id, user_id).await?;
    Ok(enabled)
}
