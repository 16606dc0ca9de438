//! Which account a provider's answer signs in to. The same subject (from
//! the same issuer) always maps to the same user. A new subject with an
//! address that has an account links to it only when the provider asserts
//! the address verified, the account's address is verified too, and the
//! account has no second factor (whose owner links after signing in with
//! it); otherwise `account_exists`. A new account needs an address the
//! provider asserts verified. A link flow (`link_token`) links to the user
//! who asked. An SSO connection vouches only for its tenant's verified
//! domains, and its users join the tenant. Never a silent takeover.

use identity_shared::audit::{self, Event, Outcome};
use identity_shared::db::Tx;
use identity_shared::templates::{TemplateKind, Vars};
use identity_shared::time::now_ms;
use serde_json::json;

use crate::DataState;
use crate::audit::event;
use crate::email::send;
use crate::email::verify::mark_verified;
use crate::input::Email;
use crate::oauth::provider::ProviderUser;
use crate::request::client::Client;
use crate::request::resolve::Resolved;
use crate::store::identities::{self, NewIdentity};
use crate::store::users::{self, NewUser};

/// An SSO connection's tenant: the domains it answers for and the role
/// its users get.
pub struct SsoTenant {
    pub tenant_id: String,
    pub domains: Vec<String>,
    pub role: String,
}

/// What the callback asks for.
pub struct Ask<'a> {
    pub provider: &'a str,
    pub who: &'a ProviderUser,
    /// Linking to this (signed-in) user.
    pub link_user: Option<&'a str>,
    pub sso: Option<&'a SsoTenant>,
}

/// The user the answer signs in as (or was linked to), created or linked
/// when the rules allow; the error is the stable code the callback
/// redirects with.
pub async fn sign_in_user(
    state: &DataState,
    tx: &mut Tx,
    resolved: &Resolved,
    client: &Client,
    ask: &Ask<'_>,
) -> Result<String, &'static str> {
    let project_id = &resolved.project.id;
    let (provider, who) = (ask.provider, ask.who);
    let now = now_ms();
    let db = |_| "server_error";
    // An SSO connection speaks only for its tenant's domains.
    let email = who.email.as_deref().and_then(|e| Email::parse(e).ok());
    // ...and where a tenant enforces its SSO, no other provider (another
    // tenant's connection included) speaks for an address at its domain,
    // nor signs in to an account there.
    let enforced = |normalized: &str| {
        let domain = normalized.rsplit_once('@').map_or("", |(_, d)| d);
        resolved.project.require_no_sso(normalized).is_err()
            && !ask
                .sso
                .is_some_and(|s| s.domains.iter().any(|d| d == domain))
    };
    if email.as_ref().is_some_and(|e| enforced(&e.normalized)) {
        return Err("sso_required");
    }
    if let Some(sso) = ask.sso {
        let domain = email
            .as_ref()
            .and_then(|e| e.normalized.rsplit_once('@').map(|(_, d)| d.to_string()));
        if !domain.is_some_and(|d| sso.domains.contains(&d)) {
            return Err("sso_domain_mismatch");
        }
    }
    if let Some(known) = identities::find(tx, project_id, provider, &who.subject)
        .await
        .map_err(db)?
    {
        // A subject is unique only within its issuer: another issuer's
        // subject of the same value is someone else.
        if known.issuer.is_some() && known.issuer != who.issuer {
            return Err("identity_conflict");
        }
        if ask.link_user.is_some_and(|u| u != known.user_id) {
            return Err("identity_conflict");
        }
        let account = users::find(tx, project_id, &known.user_id)
            .await
            .map_err(db)?;
        if account.is_some_and(|a| enforced(&a.email_normalized)) {
            return Err("sso_required");
        }
        identities::signed_in(tx, project_id, &known.id, now)
            .await
            .map_err(db)?;
        join_sso_tenant(tx, resolved, client, ask, &known.user_id).await?;
        return Ok(known.user_id);
    }
    let ip = client.ip_text();
    // A new account made here needs no notice of its own first way in.
    let mut created = false;
    let user_id = match ask.link_user {
        Some(user_id) => user_id.to_string(),
        None => {
            let email = email.ok_or("provider_identity_missing")?;
            // The tenant proved it owns the domain: its IdP's word on an
            // address there is as good as a verification.
            let vouched = who.email_verified || ask.sso.is_some();
            let existing = users::find_by_email(tx, project_id, &email.normalized)
                .await
                .map_err(db)?;
            match existing {
                Some(user)
                    if vouched
                        && user.email_verified
                        && !user.mfa_enabled
                        && same_address(&user.email, &email.typed) =>
                {
                    user.id
                }
                Some(_) => return Err("account_exists"),
                None if !vouched => return Err("email_not_verified"),
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
                    created = true;
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
                        .id
                }
            }
        }
    };
    let new = NewIdentity {
        user_id: &user_id,
        provider,
        subject: &who.subject,
        issuer: who.issuer.as_deref(),
        email: who.email.as_deref(),
    };
    if !identities::link(tx, project_id, &new, now)
        .await
        .map_err(db)?
    {
        return Err("identity_conflict");
    }
    audit::record(
        tx,
        Event {
            actor: Some(&user_id),
            subject: Some(&user_id),
            data: json!({"provider": provider, "provider_user_id": who.subject, "requested": ask.link_user.is_some()}),
            ..event(resolved, client, &ip, "identity.linked", Outcome::Success)
        },
    )
    .await
    .map_err(db)?;
    if !created {
        notify_linked(state, tx, resolved, &user_id, provider).await?;
    }
    join_sso_tenant(tx, resolved, client, ask, &user_id).await?;
    Ok(user_id)
}

/// Tells the account's address that a provider can now sign in to it (a
/// link the owner did not make is how a takeover would persist).
async fn notify_linked(
    state: &DataState,
    tx: &mut Tx,
    resolved: &Resolved,
    user_id: &str,
    provider: &str,
) -> Result<(), &'static str> {
    if send::require_email(state).is_err() {
        return Ok(());
    }
    let server = |_| "server_error";
    let project = &resolved.project;
    let Some(user) = users::find(tx, &project.id, user_id)
        .await
        .map_err(server)?
    else {
        return Ok(());
    };
    let time = identity_shared::time::rfc3339(now_ms());
    send::queue_email(
        state,
        tx,
        project,
        TemplateKind::IdentityLinked,
        &user.email,
        &user.email_normalized,
        Vars::new()
            .with("email", &user.email)
            .with("provider", provider)
            .with("time", &time),
    )
    .await
    .map_err(|_| "server_error")
}

/// The provider's address is the account's as written, case aside. The
/// canonical form that finds the account folds compatibility characters
/// (a full-width `ａ` is `a` there), which a mail server may treat as
/// another mailbox: an account is linked only on the address itself.
fn same_address(account: &str, provider: &str) -> bool {
    // ASCII case only: Unicode lowercasing makes `K` (Kelvin sign) `k`.
    let split = |e: &str| {
        e.trim()
            .rsplit_once('@')
            .map(|(l, d)| (l.to_string(), d.trim_end_matches('.').to_string()))
    };
    match (split(account), split(provider)) {
        (Some((al, ad)), Some((pl, pd))) => {
            al.eq_ignore_ascii_case(&pl) && ad.eq_ignore_ascii_case(&pd)
        }
        _ => false,
    }
}

/// An SSO sign-in makes the user a member of the connection's tenant.
async fn join_sso_tenant(
    tx: &mut Tx,
    resolved: &Resolved,
    client: &Client,
    ask: &Ask<'_>,
    user_id: &str,
) -> Result<(), &'static str> {
    let Some(sso) = ask.sso else {
        return Ok(());
    };
    let joining = crate::tenants::joining::Joining {
        tenant_id: &sso.tenant_id,
        user_id,
        role: &sso.role,
        source: "sso",
        actor: None,
    };
    crate::tenants::joining::join(tx, resolved, client, &joining)
        .await
        .map_err(|_| "server_error")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::same_address;

    #[test]
    fn an_address_is_the_same_only_as_written() {
        assert!(same_address("Kim@Example.com", "kim@example.COM."));
        // The Kelvin sign lowercases to `k`: another mailbox for all we know.
        assert!(!same_address("kim@example.com", "\u{212A}im@example.com"));
        assert!(!same_address("kim@example.com", "kim@exampl\u{212A}.com"));
        // Full-width letters fold to ASCII in the canonical form, not here.
        assert!(!same_address("kim@example.com", "\u{FF4B}im@example.com"));
        assert!(!same_address("kim@example.com", "kim"));
    }
}
