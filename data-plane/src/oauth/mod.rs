//! OAuth 2 and OpenID Connect sign-in. The provider side (discovery,
//! authorization URL with PKCE, code exchange, ID-token verification) is in
//! `provider`; the routes come next.

pub mod provider;
