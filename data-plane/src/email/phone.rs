//! Phone numbers: `POST /v1/auth/phone` sends the signed-in user a 6-digit
//! code by SMS (10 minutes) for an E.164 number; `POST /v1/auth/phone/verify`
//! takes the code and stores the number as verified. The number is stored
//! on the account only once proven. SMS pumping is capped per number and per
//! project per day.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use identity_shared::audit::{self, Event, Outcome};
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::http;
use identity_shared::secret::Secret;
use identity_shared::templates::{TemplateKind, Vars};
use identity_shared::time::now_ms;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::DataState;
use crate::audit::event;
use crate::email::judge::{Subject, judge};
use crate::email::send;
use crate::email::verify::{invalid_code, too_many_messages};
use crate::request::caller::Caller;
use crate::request::client::Client;
use crate::sessions::manage::load_user;
use crate::store::one_time_codes::{self as codes, PHONE};
use crate::store::{outbox, sessions, users};
use crate::views::UserView;
use crate::workers::outbox::SMS;

const TTL_MS: i64 = 10 * 60 * 1000;
const DAY_MS: i64 = 86_400_000;

/// An E.164 number: `+`, a country code not starting with 0, 8 to 15
/// digits in all. Spaces, dashes, dots and parentheses are dropped.
pub fn parse_e164(input: &str) -> Option<String> {
    let trimmed = input.trim();
    let rest = trimmed.strip_prefix('+')?;
    if rest.len() > 40 {
        return None;
    }
    let digits: String = rest
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    (digits.bytes().all(|b| b.is_ascii_digit())
        && (8..=15).contains(&digits.len())
        && !digits.starts_with('0'))
    .then(|| format!("+{digits}"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhoneBody {
    phone: String,
}

pub async fn request(
    State(state): State<DataState>,
    caller: Caller,
    client: Client,
    http::Json(body): http::Json<PhoneBody>,
) -> ApiResult<StatusCode> {
    let resolved = &caller.resolved;
    let project = &resolved.project;
    send::limit(&state, resolved, &client)?;
    let phone = parse_e164(&body.phone).ok_or_else(|| {
        ApiError::unprocessable(
            "invalid_phone",
            "phone must be an E.164 number like +447700900123",
        )
    })?;
    send::require_sms(&state)?;
    let (user, _) = load_user(&state, &caller).await?;
    let mut tx = state.shard(resolved)?.scope(&project.id).await?;
    // One project's SMS are counted one request at a time (the caps hold
    // under concurrency).
    tx.lock_key(&format!("sms:{}", project.id)).await?;
    let limits = project.settings.messaging;
    let now = now_ms();
    let per_project = i64::from(limits.sms_per_project_per_day);
    if per_project > 0
        && outbox::count_since(&mut tx, &project.id, SMS, None, None, now - DAY_MS).await?
            >= per_project
    {
        return Err(too_many_messages());
    }
    let per_user = i64::from(limits.sms_per_user_per_day);
    if per_user > 0
        && codes::issued_since(&mut tx, &project.id, PHONE, &user.id, now - DAY_MS).await?
            >= per_user
    {
        return Err(too_many_messages());
    }
    if !send::under_cap(
        &state,
        &mut tx,
        &project.id,
        TemplateKind::PhoneCode,
        &phone,
        limits.sms_per_number_per_day,
        DAY_MS,
    )
    .await?
    {
        return Err(too_many_messages());
    }
    let issued = send::issue(
        &state,
        &mut tx,
        &project.id,
        &send::Issue {
            purpose: PHONE,
            user_id: Some(&user.id),
            email: None,
            target: Some(&phone),
            data: None,
            ttl_ms: TTL_MS,
            link: false,
            code: true,
        },
    )
    .await?;
    let code = issued.code.unwrap_or_default();
    send::queue_sms(
        &state,
        &mut tx,
        project,
        TemplateKind::PhoneCode,
        &phone,
        Vars::new()
            .with("phone", &phone)
            .with("code", &code)
            .with("expires_in", "10 minutes"),
    )
    .await?;
    let ip = client.ip_text();
    audit::record(
        &mut tx,
        Event {
            actor: Some(&user.id),
            subject: Some(&user.id),
            data: json!({"phone": send::mask(&phone)}),
            ..event(
                resolved,
                &client,
                &ip,
                "phone.verification_requested",
                Outcome::Success,
            )
        },
    )
    .await?;
    tx.commit().await?;
    state.outbox.wake();
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    code: Secret<String>,
}

pub async fn verify(
    State(state): State<DataState>,
    caller: Caller,
    client: Client,
    http::Json(body): http::Json<VerifyBody>,
) -> ApiResult<Json<Value>> {
    let resolved = &caller.resolved;
    let project_id = &resolved.project.id;
    send::limit(&state, resolved, &client)?;
    let (user, _) = load_user(&state, &caller).await?;
    let now = now_ms();
    let mut tx = state.shard(resolved)?.scope(project_id).await?;
    users::lock_credentials(&mut tx, project_id, &user.id).await?;
    let who = Subject {
        user_id: Some(&user.id),
        email: None,
    };
    let judged = judge(
        &state,
        &mut tx,
        project_id,
        PHONE,
        &who,
        body.code.expose(),
        now,
    )
    .await?;
    let ip = client.ip_text();
    let Some(row) = judged else {
        audit::record(
            &mut tx,
            Event {
                actor: Some(&user.id),
                subject: Some(&user.id),
                data: json!({"reason": "invalid_code"}),
                ..event(
                    resolved,
                    &client,
                    &ip,
                    "phone.verification_failed",
                    Outcome::Failure,
                )
            },
        )
        .await?;
        tx.commit().await?;
        return Err(invalid_code());
    };
    let phone = row.target.clone().ok_or_else(invalid_code)?;
    if !codes::consume(&mut tx, project_id, &row.id, now).await? {
        return Err(invalid_code());
    }
    users::set_phone(&mut tx, project_id, &user.id, &phone).await?;
    audit::record(
        &mut tx,
        Event {
            actor: Some(&user.id),
            subject: Some(&user.id),
            data: json!({"phone": send::mask(&phone)}),
            ..event(resolved, &client, &ip, "phone.verified", Outcome::Success)
        },
    )
    .await?;
    sessions::reload_views(&mut tx, project_id, &user.id).await?;
    tx.commit().await?;
    let user = users::UserRow {
        phone: Some(phone),
        phone_verified: true,
        ..user
    };
    Ok(Json(json!({"user": UserView::from(&user)})))
}

#[cfg(test)]
mod tests {
    use super::parse_e164;

    #[test]
    fn e164_numbers() {
        assert_eq!(
            parse_e164("+44 7700 900123").as_deref(),
            Some("+447700900123")
        );
        assert_eq!(
            parse_e164("+1 (415) 555-0100").as_deref(),
            Some("+14155550100")
        );
        for bad in [
            "447700900123",
            "+0447700900",
            "+12",
            "+1234567890123456",
            "+44abc",
            "",
            "+",
            "++4477009001",
        ] {
            assert_eq!(parse_e164(bad), None, "{bad}");
        }
    }
}
