//! Joining a tenant, from any source (creation, invitation, auto-join by
//! a verified domain, SSO, the secret key), and leaving one for a reason
//! outside it (the account is deleted, the address left the domain),
//! audited in one place. It uses only the store, so flows elsewhere
//! (email, OAuth, admin) can call it.

use identity_shared::audit::{self, Event, Outcome};
use identity_shared::db::Tx;
use identity_shared::error::ApiResult;
use identity_shared::time::now_ms;
use serde_json::json;

use crate::audit::event;
use crate::request::client::Client;
use crate::request::resolve::Resolved;
use crate::store::{groups, tenant_members};

/// Who joins a tenant, how, and who made it happen.
pub struct Joining<'a> {
    pub tenant_id: &'a str,
    pub user_id: &'a str,
    pub role: &'a str,
    /// `created`, `domain`, `sso`, `admin`, `invitation`.
    pub source: &'static str,
    pub actor: Option<&'a str>,
}

/// A membership of the user changed (joined, left, another role): the
/// cached views of their sessions reload at commit, so a token naming the
/// tenant with the old role is refused at once on every node.
pub async fn membership_changed(tx: &mut Tx, project_id: &str, user_id: &str) -> ApiResult<()> {
    crate::store::sessions::reload_views(tx, project_id, user_id).await?;
    Ok(())
}

/// Why a user leaves a tenant from outside it.
#[derive(Clone, Copy)]
pub enum Leaving {
    /// The account is being deleted.
    AccountDeleted,
    /// The address that brought them (source `domain`) moved elsewhere.
    AddressMoved,
}

/// Ends the user's membership of the tenant, under the tenant's lock, with
/// their groups, audited as `membership.deleted`. The last owner does not
/// leave: false, and nothing changes.
pub async fn leave(
    tx: &mut Tx,
    resolved: &Resolved,
    client: &Client,
    tenant_id: &str,
    user_id: &str,
    why: Leaving,
) -> ApiResult<bool> {
    let project_id = &resolved.project.id;
    tx.lock_key(&format!("tenant:{project_id}:{tenant_id}"))
        .await?;
    let Some(member) = tenant_members::find(tx, project_id, tenant_id, user_id).await? else {
        return Ok(true);
    };
    if member.role == identity_shared::rbac::OWNER
        && tenant_members::owners(tx, project_id, tenant_id).await? <= 1
    {
        return Ok(false);
    }
    tenant_members::remove(tx, project_id, tenant_id, user_id).await?;
    groups::remove_member(tx, project_id, tenant_id, None, user_id).await?;
    membership_changed(tx, project_id, user_id).await?;
    let reason = match why {
        Leaving::AccountDeleted => "user_deleted",
        Leaving::AddressMoved => "email_changed",
    };
    let ip = client.ip_text();
    audit::record(
        tx,
        Event {
            actor: None,
            subject: Some(user_id),
            data: json!({"tenant_id": tenant_id, "role": member.role, "reason": reason}),
            ..event(
                resolved,
                client,
                &ip,
                "membership.deleted",
                Outcome::Success,
            )
        },
    )
    .await?;
    Ok(true)
}

/// The user's address moved: the memberships its domain brought end,
/// except where the user has become the tenant's last owner. Returns the
/// tenants left.
pub async fn leave_domain_joined(
    tx: &mut Tx,
    resolved: &Resolved,
    client: &Client,
    user_id: &str,
) -> ApiResult<Vec<String>> {
    let project_id = &resolved.project.id;
    let mut left = Vec::new();
    for tenant_id in tenant_members::domain_joined(tx, project_id, user_id).await? {
        if leave(
            tx,
            resolved,
            client,
            &tenant_id,
            user_id,
            Leaving::AddressMoved,
        )
        .await?
        {
            left.push(tenant_id);
        }
    }
    Ok(left)
}

/// Adds the membership unless the user is a member already, and audits
/// `membership.created`; true when added.
pub async fn join(
    tx: &mut Tx,
    resolved: &Resolved,
    client: &Client,
    j: &Joining<'_>,
) -> ApiResult<bool> {
    let project_id = &resolved.project.id;
    let joined = tenant_members::join(
        tx,
        project_id,
        j.tenant_id,
        j.user_id,
        j.role,
        j.source,
        now_ms(),
    )
    .await?;
    if joined {
        membership_changed(tx, project_id, j.user_id).await?;
        let ip = client.ip_text();
        audit::record(
            tx,
            Event {
                actor: j.actor,
                subject: Some(j.user_id),
                data: json!({"tenant_id": j.tenant_id, "role": j.role, "source": j.source}),
                ..event(
                    resolved,
                    client,
                    &ip,
                    "membership.created",
                    Outcome::Success,
                )
            },
        )
        .await?;
    }
    Ok(joined)
}
