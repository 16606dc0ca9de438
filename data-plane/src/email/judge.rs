//! Judging a presented six-digit code (email verification, sign-in by
//! email code, phone verification): the newest live code of its purpose
//! for the user or address, compared in constant time. A wrong code counts
//! against that code (five kill it) and against a daily budget per user or
//! address that new codes do not reset: without it, requesting a fresh code
//! every few minutes would allow guessing at leisure.

use identity_shared::crypto::ct_eq;
use identity_shared::db::Tx;
use identity_shared::error::ApiResult;

use crate::DataState;
use crate::email::send::{code_hash, normalize_code};
use crate::store::one_time_codes::{self as codes, CodeRow};

/// Wrong codes before a code dies.
pub const MAX_ATTEMPTS: i32 = 5;
/// Wrong codes per user or address and purpose in a day, across codes.
pub const DAILY_FAILURES: i64 = 10;
const DAY_MS: i64 = 86_400_000;

/// Whose code: a user's, or (without one) an address's.
pub struct Subject<'a> {
    pub user_id: Option<&'a str>,
    pub email: Option<&'a str>,
}

/// The code's row when `presented` is right; `None` when it is wrong,
/// malformed, expired, used up, or the budget is spent (the same answer
/// and the same work for each, whether or not a code exists). Commit the
/// transaction either way: a wrong code's count is written in it.
pub async fn judge(
    state: &DataState,
    tx: &mut Tx,
    project_id: &str,
    purpose: &str,
    who: &Subject<'_>,
    presented: &str,
    now: i64,
) -> ApiResult<Option<CodeRow>> {
    let failures = codes::failures_since(
        tx,
        project_id,
        purpose,
        who.user_id,
        who.email,
        now - DAY_MS,
    )
    .await?;
    let row = codes::latest_code(tx, project_id, purpose, who.user_id, who.email, now).await?;
    let Some(row) = row else {
        return Ok(None);
    };
    if failures >= DAILY_FAILURES {
        return Ok(None);
    }
    let right = normalize_code(presented).is_some_and(|code| {
        row.code_hash
            .as_deref()
            .is_some_and(|h| ct_eq(h.as_bytes(), code_hash(state, &row.id, &code).as_bytes()))
    });
    if right {
        return Ok(Some(row));
    }
    codes::wrong_attempt(tx, project_id, &row, MAX_ATTEMPTS, now).await?;
    Ok(None)
}
