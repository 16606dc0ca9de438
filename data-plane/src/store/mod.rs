//! Repositories: SQL for one table each, in a project-scoped transaction.
//! No HTTP here, and no store module imports another.

pub mod groups;
pub mod identities;
pub mod invitations;
pub mod login_failures;
pub mod mfa;
pub mod oauth_providers;
pub mod one_time_codes;
pub mod outbox;
pub mod passkeys;
pub mod refresh_tokens;
pub mod sessions;
pub mod tenant_members;
pub mod tenants;
pub mod trusted_browsers;
pub mod users;
