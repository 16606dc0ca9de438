//! The one integration-test binary: boots the real server in-process and
//! drives it over HTTP, on SQLite and on Postgres.

mod support;

mod admin_users;
mod auth;
mod avatars;
mod browser;
mod browser_passkeys;
mod cli;
mod control_plane;
mod cookies;
mod dns_verification;
mod docs;
mod email;
mod hardening;
mod layout;
mod mail_peers;
mod mfa;
mod oauth;
mod oauth_flows;
mod oidc_peer;
mod passkeys;
mod postgres_only;
mod resolution;
mod tenant_limits;
mod tenants;
