//! Who may act in a tenant: one extractor, [`InTenant<P>`], for every
//! tenant route. It reads the tenant id from the path (`{id}`), finds the
//! caller's membership (read fresh, so a removed member or a changed role
//! counts at once), and answers `404 not_found` to non-members (a tenant
//! one does not belong to does not exist for them) and `403
//! permission_denied` when the role lacks the route's permission `P`. A
//! secret key acts for the project on every tenant. No handler checks a
//! role by hand.

use std::collections::HashMap;
use std::marker::PhantomData;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use identity_shared::audit::{self, Event, Outcome};
use identity_shared::db::Tx;
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::rbac;
use serde_json::{Value, json};

use crate::DataState;
use crate::audit::event;
use crate::request::caller::Caller;
use crate::request::client::Client;
use crate::request::resolve::Resolved;
use crate::store::tenant_members;
use crate::store::tenants::{self, TenantRow};

/// A permission a route needs, as a type.
pub trait Permission: Send + Sync + 'static {
    const NAME: &'static str;
}

macro_rules! permissions {
    ($($ty:ident => $name:path),* $(,)?) => {$(
        pub struct $ty;
        impl Permission for $ty {
            const NAME: &'static str = $name;
        }
    )*};
}

permissions!(
    TenantRead => rbac::TENANT_READ,
    TenantUpdate => rbac::TENANT_UPDATE,
    TenantDelete => rbac::TENANT_DELETE,
    MembersRead => rbac::MEMBERS_READ,
    MembersInvite => rbac::MEMBERS_INVITE,
    MembersManage => rbac::MEMBERS_MANAGE,
    GroupsManage => rbac::GROUPS_MANAGE,
);

/// Membership alone (leaving, transferring ownership, which checks more).
pub struct AnyMember;
impl Permission for AnyMember {
    const NAME: &'static str = "";
}

/// Who acts.
pub enum Actor {
    /// A member, with their role.
    User { user_id: String, role: String },
    /// The project's server, with its secret key.
    Server,
}

/// The tenant of the path, and a caller allowed `P` in it.
pub struct InTenant<P> {
    pub resolved: Resolved,
    pub tenant: TenantRow,
    pub actor: Actor,
    _permission: PhantomData<P>,
}

impl<P> InTenant<P> {
    pub fn project_id(&self) -> &str {
        &self.resolved.project.id
    }

    /// The acting user, if a user acts.
    pub fn user_id(&self) -> Option<&str> {
        match &self.actor {
            Actor::User { user_id, .. } => Some(user_id),
            Actor::Server => None,
        }
    }

    /// Whether the actor also has `permission` (the server has every one).
    pub fn allows(&self, permission: &str) -> bool {
        match &self.actor {
            Actor::User { role, .. } => {
                self.resolved.project.settings.rbac.allows(role, permission)
            }
            Actor::Server => true,
        }
    }

    /// `403 permission_denied` unless the actor has `permission` too.
    pub fn require(&self, permission: &str) -> ApiResult<()> {
        if self.allows(permission) {
            Ok(())
        } else {
            Err(denied(permission))
        }
    }

    /// Audits `kind` in this tenant, by the actor, about `subject`.
    pub async fn audit(
        &self,
        tx: &mut Tx,
        client: &Client,
        kind: &'static str,
        subject: Option<&str>,
        mut data: Value,
    ) -> ApiResult<()> {
        data["tenant_id"] = json!(self.tenant.id);
        let ip = client.ip_text();
        audit::record(
            tx,
            Event {
                actor: self.user_id(),
                subject,
                data,
                ..event(&self.resolved, client, &ip, kind, Outcome::Success)
            },
        )
        .await?;
        Ok(())
    }

    /// Whether the actor may give `role`, or act on a member who has it
    /// (see [`rbac::Rbac::may_grant`]; the server may).
    pub fn may_grant(&self, role: &str) -> bool {
        match &self.actor {
            Actor::User { role: mine, .. } => {
                self.resolved.project.settings.rbac.may_grant(mine, role)
            }
            Actor::Server => true,
        }
    }

    /// Takes the tenant's membership lock in `tx` and reads the acting
    /// member again under it, so a role taken away a moment ago counts:
    /// `404` if they left, `403` if their role no longer allows `P`.
    pub async fn lock(&mut self, tx: &mut Tx) -> ApiResult<()>
    where
        P: Permission,
    {
        let project_id = self.resolved.project.id.clone();
        tx.lock_key(&format!("tenant:{project_id}:{}", self.tenant.id))
            .await?;
        if let Actor::User { user_id, role } = &mut self.actor {
            let member = tenant_members::find(tx, &project_id, &self.tenant.id, user_id)
                .await?
                .ok_or_else(tenant_not_found)?;
            *role = member.role;
        }
        if !P::NAME.is_empty() {
            self.require(P::NAME)?;
        }
        Ok(())
    }

    /// Whether the actor is an owner (or the server).
    pub fn is_owner(&self) -> bool {
        match &self.actor {
            Actor::User { role, .. } => role == rbac::OWNER,
            Actor::Server => true,
        }
    }
}

pub fn denied(permission: &str) -> ApiError {
    ApiError::forbidden(
        "permission_denied",
        format!("your role in this tenant lacks {permission}"),
    )
}

pub fn tenant_not_found() -> ApiError {
    ApiError::not_found("tenant")
}

impl<P: Permission> FromRequestParts<DataState> for InTenant<P> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &DataState,
    ) -> Result<Self, Self::Rejection> {
        let resolved = Resolved::from_request_parts(parts, state).await?;
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|_| tenant_not_found())?;
        let tenant_id = params.get("id").cloned().ok_or_else(tenant_not_found)?;
        if !identity_shared::ids::is_id("ten", &tenant_id) {
            return Err(tenant_not_found());
        }
        let project_id = resolved.project.id.clone();
        let actor = if resolved.is_secret_key() {
            Actor::Server
        } else {
            let caller = Caller::from_request_parts(parts, state).await?;
            let mut tx = state.shard(&resolved)?.scope_read(&project_id).await?;
            let member =
                tenant_members::find(&mut tx, &project_id, &tenant_id, &caller.claims.sub).await?;
            tx.commit().await?;
            let member = member.ok_or_else(tenant_not_found)?;
            Actor::User {
                user_id: member.user_id,
                role: member.role,
            }
        };
        let mut tx = state.control_db.scope_read(&project_id).await?;
        let tenant = tenants::find(&mut tx, &project_id, &tenant_id).await?;
        tx.commit().await?;
        let access = InTenant {
            resolved,
            tenant: tenant.ok_or_else(tenant_not_found)?,
            actor,
            _permission: PhantomData,
        };
        if !P::NAME.is_empty() {
            access.require(P::NAME)?;
        }
        Ok(access)
    }
}
