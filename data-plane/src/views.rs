//! What the data plane answers with: typed response bodies, serialised
//! once, never assembled by hand.

use identity_shared::time::rfc3339;
use serde::Serialize;

use crate::store::sessions::SessionRow;
use crate::store::users::UserRow;

#[derive(Debug, Serialize)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub email_verified: bool,
    pub name: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub mfa_enabled: bool,
    pub phone: Option<String>,
    pub phone_verified: bool,
    pub banned: bool,
    pub avatar_url: Option<String>,
    pub public_metadata: serde_json::Value,
    pub unsafe_metadata: serde_json::Value,
    /// Only in answers to the project's server (secret key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_metadata: Option<serde_json::Value>,
}

/// A stored metadata object; none (or anything unreadable) is `{}`.
pub fn metadata(text: Option<&str>) -> serde_json::Value {
    text.and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
        .filter(serde_json::Value::is_object)
        .unwrap_or_else(|| serde_json::json!({}))
}

impl UserView {
    /// The view the project's server gets: with `private_metadata`.
    pub fn for_server(u: &UserRow) -> Self {
        Self {
            private_metadata: Some(metadata(u.private_metadata.as_deref())),
            ..Self::from(u)
        }
    }
}

impl From<&UserRow> for UserView {
    fn from(u: &UserRow) -> Self {
        Self {
            banned: u.is_banned(identity_shared::time::now_ms()),
            avatar_url: u.avatar_url.clone(),
            public_metadata: metadata(u.public_metadata.as_deref()),
            unsafe_metadata: metadata(u.unsafe_metadata.as_deref()),
            private_metadata: None,
            id: u.id.clone(),
            email: u.email.clone(),
            email_verified: u.email_verified,
            name: u.name.clone(),
            created_at: rfc3339(u.created_at),
            updated_at: rfc3339(u.updated_at),
            mfa_enabled: u.mfa_enabled,
            phone: u.phone.clone(),
            phone_verified: u.phone_verified,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct SessionView {
    pub id: String,
    pub created_at: String,
    pub last_seen_at: String,
    pub expires_at: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub amr: Vec<String>,
    /// Whether this is the session the request came with.
    pub current: bool,
}

impl SessionView {
    pub fn of(s: &SessionRow, current_id: &str) -> Self {
        Self {
            id: s.id.clone(),
            created_at: rfc3339(s.created_at),
            last_seen_at: rfc3339(s.last_seen_at),
            expires_at: rfc3339(s.expires_at),
            ip: s.ip.clone(),
            user_agent: s.user_agent.clone(),
            amr: s.amr(),
            current: s.id == current_id,
        }
    }
}

/// A signed-in answer (register, login, refresh). Its `Debug` shows no token.
#[derive(Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u32,
    /// Bearer transport only: cookie sessions keep it in a cookie.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Cookie transport only: to send back as `X-CSRF-Token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
    /// Bearer transport, after a challenge with `remember_browser`: to send
    /// as `trusted_browser_token` at the next login.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted_browser_token: Option<String>,
    /// `true` when the project requires a second factor and the user has
    /// none yet: only the MFA and session routes answer until they enroll.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mfa_enrollment_required: Option<bool>,
    pub user: UserView,
    pub session: SessionView,
    /// After a magic link that named one: where the app should go next (on
    /// one of the project's allowed origins, checked when it was asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_to: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .field("user", &self.user)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

/// `GET /v1/auth/session`.
#[derive(Debug, Serialize)]
pub struct SessionCheck {
    pub user: UserView,
    pub session: SessionView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
}

/// A list page.
#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// `{"user": ...}`.
#[derive(Debug, Serialize)]
pub struct UserEnvelope {
    pub user: UserView,
}

impl From<&UserRow> for UserEnvelope {
    fn from(u: &UserRow) -> Self {
        Self { user: u.into() }
    }
}

impl UserEnvelope {
    /// `{user}` for the project's server (with `private_metadata`).
    pub fn for_server(u: &UserRow) -> Self {
        Self {
            user: UserView::for_server(u),
        }
    }
}
