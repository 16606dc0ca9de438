//! Roles and permissions inside a tenant. Five roles come built in (owner,
//! admin, billing, member, viewer) with the default matrix; a project adds
//! permissions of its own and roles, and grants its permissions to any
//! role, in `settings.rbac`:
//!
//! ```json
//! {"permissions": ["reports:export"],
//!  "roles": {"analyst": ["tenant:read", "members:read", "reports:export"],
//!            "admin": ["reports:export"]}}
//! ```
//!
//! A built-in role listed there gains the listed permissions on top of its
//! defaults (it never loses one); a new role has exactly what it lists.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const TENANT_READ: &str = "tenant:read";
pub const TENANT_UPDATE: &str = "tenant:update";
pub const TENANT_DELETE: &str = "tenant:delete";
pub const MEMBERS_READ: &str = "members:read";
pub const MEMBERS_INVITE: &str = "members:invite";
pub const MEMBERS_MANAGE: &str = "members:manage";
pub const GROUPS_MANAGE: &str = "groups:manage";
pub const BILLING_MANAGE: &str = "billing:manage";

/// Every built-in permission.
pub const BUILT_IN_PERMISSIONS: [&str; 8] = [
    TENANT_READ,
    TENANT_UPDATE,
    TENANT_DELETE,
    MEMBERS_READ,
    MEMBERS_INVITE,
    MEMBERS_MANAGE,
    GROUPS_MANAGE,
    BILLING_MANAGE,
];

pub const OWNER: &str = "owner";
pub const ADMIN: &str = "admin";
pub const MEMBER: &str = "member";

/// The built-in roles and their default permissions.
pub fn built_in(role: &str) -> Option<&'static [&'static str]> {
    const READ: [&str; 2] = [TENANT_READ, MEMBERS_READ];
    Some(match role {
        OWNER => &BUILT_IN_PERMISSIONS,
        ADMIN => &[
            TENANT_READ,
            MEMBERS_READ,
            TENANT_UPDATE,
            MEMBERS_INVITE,
            MEMBERS_MANAGE,
            GROUPS_MANAGE,
        ],
        "billing" => &[TENANT_READ, MEMBERS_READ, BILLING_MANAGE],
        MEMBER | "viewer" => &READ,
        _ => return None,
    })
}

pub const BUILT_IN_ROLES: [&str; 5] = [OWNER, ADMIN, "billing", MEMBER, "viewer"];

/// A project's additions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rbac {
    /// Permissions of the project's own, `resource:action`.
    pub permissions: Vec<String>,
    /// Role → the permissions it has (new roles) or gains (built-in ones).
    pub roles: BTreeMap<String, Vec<String>>,
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 40
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn is_permission(s: &str) -> bool {
    s.split_once(':')
        .is_some_and(|(resource, action)| is_name(resource) && is_name(action))
}

impl Rbac {
    /// Parses and checks `settings.rbac`: names, at most 50 permissions and
    /// 20 roles, and every role granting only known permissions.
    pub fn parse(value: &Value) -> Result<Rbac, String> {
        if !value.is_object() {
            return Err("settings.rbac must be an object".into());
        }
        let rbac: Rbac = serde_json::from_value(value.clone()).map_err(|e| {
            format!("settings.rbac must be {{permissions: [...], roles: {{role: [...]}}}}: {e}")
        })?;
        if rbac.permissions.len() > 50 || rbac.roles.len() > 20 {
            return Err("settings.rbac allows at most 50 permissions and 20 roles".into());
        }
        for p in &rbac.permissions {
            if !is_permission(p) {
                return Err(format!(
                    "settings.rbac.permissions: {p:?} is not resource:action (lowercase letters, digits, _ and -)"
                ));
            }
            if BUILT_IN_PERMISSIONS.contains(&p.as_str()) {
                return Err(format!("settings.rbac.permissions: {p:?} is built in"));
            }
        }
        for (role, granted) in &rbac.roles {
            if !is_name(role) {
                return Err(format!(
                    "settings.rbac.roles: {role:?} is not a role name (lowercase letters, digits, _ and -)"
                ));
            }
            if granted.len() > 100 {
                return Err(format!(
                    "settings.rbac.roles.{role} lists too many permissions"
                ));
            }
            for p in granted {
                if !BUILT_IN_PERMISSIONS.contains(&p.as_str()) && !rbac.permissions.contains(p) {
                    return Err(format!(
                        "settings.rbac.roles.{role}: {p:?} is neither built in nor in settings.rbac.permissions"
                    ));
                }
            }
        }
        Ok(rbac)
    }

    /// Whether `role` exists in this project.
    pub fn has_role(&self, role: &str) -> bool {
        built_in(role).is_some() || self.roles.contains_key(role)
    }

    /// The permissions of `role`, sorted; none for an unknown role.
    pub fn permissions_of(&self, role: &str) -> Vec<String> {
        let mut all: Vec<String> = built_in(role)
            .unwrap_or(&[])
            .iter()
            .map(|p| p.to_string())
            .collect();
        if let Some(extra) = self.roles.get(role) {
            all.extend(extra.iter().cloned());
        }
        all.sort();
        all.dedup();
        all
    }

    /// Whether `role` has `permission`.
    pub fn allows(&self, role: &str, permission: &str) -> bool {
        built_in(role).is_some_and(|p| p.contains(&permission))
            || self
                .roles
                .get(role)
                .is_some_and(|p| p.iter().any(|g| g == permission))
    }

    /// Whether a member with role `granter` may give `role` to someone, or
    /// change or remove a member who has it: an owner may do so with any
    /// role; anyone else only with a role none of whose permissions they
    /// lack (never `owner`). No one hands out more than they hold.
    pub fn may_grant(&self, granter: &str, role: &str) -> bool {
        granter == OWNER
            || (role != OWNER
                && self
                    .permissions_of(role)
                    .iter()
                    .all(|p| self.allows(granter, p)))
    }

    /// Every role of the project: the built-in ones, then the project's.
    pub fn roles(&self) -> Vec<String> {
        let mut all: Vec<String> = BUILT_IN_ROLES.iter().map(|r| r.to_string()).collect();
        all.extend(
            self.roles
                .keys()
                .filter(|r| !all.contains(r))
                .cloned()
                .collect::<Vec<_>>(),
        );
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn no_one_grants_more_than_they_hold() {
        let rbac = Rbac::parse(&json!({
            "permissions": ["reports:export"],
            "roles": {"analyst": ["tenant:read", "reports:export"], "helper": ["tenant:read"]}
        }))
        .unwrap();
        for role in ["owner", "admin", "billing", "member", "viewer", "analyst"] {
            assert!(rbac.may_grant(OWNER, role), "owner grants {role}");
        }
        assert!(rbac.may_grant(ADMIN, ADMIN));
        assert!(rbac.may_grant(ADMIN, MEMBER));
        assert!(rbac.may_grant(ADMIN, "helper"));
        assert!(!rbac.may_grant(ADMIN, OWNER));
        // billing:manage and reports:export are not the admin's to give.
        assert!(!rbac.may_grant(ADMIN, "billing"));
        assert!(!rbac.may_grant(ADMIN, "analyst"));
        assert!(!rbac.may_grant(MEMBER, ADMIN));
        assert!(rbac.may_grant(MEMBER, "viewer"));
        assert!(!rbac.may_grant("nobody", MEMBER));
    }

    #[test]
    fn the_default_matrix() {
        let rbac = Rbac::default();
        let table = [
            (TENANT_READ, [true, true, true, true, true]),
            (MEMBERS_READ, [true, true, true, true, true]),
            (TENANT_UPDATE, [true, true, false, false, false]),
            (MEMBERS_INVITE, [true, true, false, false, false]),
            (MEMBERS_MANAGE, [true, true, false, false, false]),
            (GROUPS_MANAGE, [true, true, false, false, false]),
            (BILLING_MANAGE, [true, false, true, false, false]),
            (TENANT_DELETE, [true, false, false, false, false]),
        ];
        for (permission, row) in table {
            for (role, expected) in BUILT_IN_ROLES.iter().zip(row) {
                assert_eq!(
                    rbac.allows(role, permission),
                    expected,
                    "{role} {permission}"
                );
            }
        }
        assert!(!rbac.allows("nobody", TENANT_READ));
        assert!(rbac.permissions_of("nobody").is_empty());
    }

    #[test]
    fn a_project_adds_roles_and_permissions() {
        let rbac = Rbac::parse(&json!({
            "permissions": ["reports:export"],
            "roles": {"analyst": ["tenant:read", "reports:export"], "member": ["reports:export"]}
        }))
        .unwrap();
        assert!(rbac.allows("analyst", "reports:export"));
        assert!(!rbac.allows("analyst", MEMBERS_READ));
        assert!(rbac.allows("member", "reports:export"));
        assert!(
            rbac.allows("member", TENANT_READ),
            "built-in roles keep theirs"
        );
        assert_eq!(
            rbac.permissions_of("analyst"),
            ["reports:export", "tenant:read"]
        );
        assert!(rbac.has_role("analyst") && !rbac.has_role("ghost"));
        assert_eq!(rbac.roles().len(), 6);
        for bad in [
            json!({"permissions": ["Reports:Export"]}),
            json!({"permissions": ["tenant:read"]}),
            json!({"roles": {"analyst": ["reports:export"]}}),
            json!({"roles": {"Bad Role": []}}),
            json!({"other": 1}),
            json!([]),
        ] {
            assert!(Rbac::parse(&bad).is_err(), "{bad}");
        }
    }
}
