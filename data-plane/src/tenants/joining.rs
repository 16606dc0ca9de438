//! Joining a tenant, from any source (creation, invitation, auto-join by
//! a verified domain, SSO, the secret key), audited in one place. It uses
//! only the store, so flows elsewhere (email, OAuth) can call it.

use identity_shared::audit::{self, Event, Outcome};
use identity_shared::db::Tx;
use identity_shared::error::ApiResult;
use identity_shared::time::now_ms;
use serde_json::json;

use crate::audit::event;
use crate::request::client::Client;
use crate::request::resolve::Resolved;
use crate::store::tenant_members;

/// Who joins a tenant, how, and who made it happen.
pub struct Joining<'a> {
    pub tenant_id: &'a str,
    pub user_id: &'a str,
    pub role: &'a str,
    /// `created`, `domain`, `sso`, `admin`, `invitation`.
    pub source: &'static str,
    pub actor: Option<&'a str>,
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
