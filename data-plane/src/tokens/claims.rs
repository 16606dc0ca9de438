//! What an access token says, and why one is refused.

use identity_shared::error::ApiError;
use serde::{Deserialize, Serialize};

/// Clock skew tolerated on `exp` and `iat`.
pub const LEEWAY_SECONDS: i64 = 30;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub sid: String,
    pub pid: String,
    pub amr: Vec<String>,
    /// The session's active tenant, the user's role there and what it
    /// permits (`POST /v1/auth/session/tenant`); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<String>>,
    /// Who acts for the subject: `{"sub": "operator"}` on an impersonation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token is not signed by this project")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token was issued for another project")]
    WrongProject,
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Expired => {
                ApiError::unauthorized("token_expired", "the access token has expired")
            }
            other => ApiError::unauthorized("invalid_token", other.to_string()),
        }
    }
}
