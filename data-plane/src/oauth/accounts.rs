//! Which account a provider's answer signs in to. The same subject always
//! maps to the same user. A new subject with an address that has an
//! account links to it only when the provider asserts the address verified
//! and the account's address is verified too; otherwise `account_exists`
//! (the user signs in another way and links). A new account needs an
//! address the provider asserts verified. Never a silent takeover.

use identity_shared::audit::{self, Event, Outcome};
use identity_shared::db::Tx;
use identity_shared::time::now_ms;
use serde_json::json;

use crate::DataState;
use crate::audit::event;
use crate::email::verify::mark_verified;
use crate::input::Email;
use crate::oauth::provider::ProviderUser;
use crate::request::client::Client;
use crate::request::resolve::Resolved;
use crate::store::identities;
use crate::store::users::{self, NewUser};

/// The user `who` signs in as, created or linked when the rules allow; the
/// error is the stable code the callback redirects with.
pub async fn sign_in_user(
    state: &DataState,
    tx: &mut Tx,
    resolved: &Resolved,
    client: &Client,
    provider: &str,
    who: &ProviderUser,
) -> Result<String, &'static str> {
    let project_id = &resolved.project.id;
    let now = now_ms();
    let db = |_| "server_error";
    if let Some(known) = identities::find(tx, project_id, provider, &who.subject)
        .await
        .map_err(db)?
    {
        identities::signed_in(tx, project_id, &known.id, now)
            .await
            .map_err(db)?;
        return Ok(known.user_id);
    }
    let email = who
        .email
        .as_deref()
        .and_then(|e| Email::parse(e).ok())
        .ok_or("provider_identity_missing")?;
    let ip = client.ip_text();
    let existing = users::find_by_email(tx, project_id, &email.normalized)
        .await
        .map_err(db)?;
    let user = match existing {
        Some(user) if who.email_verified && user.email_verified => user,
        Some(_) => return Err("account_exists"),
        None if !who.email_verified => return Err("email_not_verified"),
        None => {
            let user = users::insert(
                tx,
                project_id,
                NewUser {
                    email: email.typed.clone(),
                    email_normalized: email.normalized.clone(),
                    // The provider's name, if it is a sensible one.
                    name: crate::input::parse_name(who.name.as_deref()).unwrap_or(None),
                    password_hash: None,
                    email_verified: false,
                },
            )
            .await
            .map_err(|_| "account_exists")?;
            audit::record(
                tx,
                Event {
                    actor: Some(&user.id),
                    subject: Some(&user.id),
                    data: json!({"method": "oauth", "provider": provider}),
                    ..event(resolved, client, &ip, "user.created", Outcome::Success)
                },
            )
            .await
            .map_err(db)?;
            // The provider vouched for the address: verified, and the
            // tenants of its domain joined.
            mark_verified(state, tx, resolved, client, user, provider)
                .await
                .map_err(|_| "server_error")?
        }
    };
    if !identities::link(
        tx,
        project_id,
        &user.id,
        provider,
        &who.subject,
        who.email.as_deref(),
        now,
    )
    .await
    .map_err(db)?
    {
        return Err("identity_conflict");
    }
    audit::record(
        tx,
        Event {
            actor: Some(&user.id),
            subject: Some(&user.id),
            data: json!({"provider": provider, "provider_user_id": who.subject}),
            ..event(resolved, client, &ip, "identity.linked", Outcome::Success)
        },
    )
    .await
    .map_err(db)?;
    Ok(user.id)
}
