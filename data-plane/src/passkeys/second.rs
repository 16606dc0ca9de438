//! A passkey as the second step of a sign-in, or for step-up: the ceremony
//! begun with an `mfa_token` or a session names only that user's passkeys,
//! and its answer is checked here for `mfa::stepup::prove`.

use crate::DataState;
use crate::passkeys::rp::{open_bound, parse_credential, relying_party, to_state};
use crate::request::resolve::ProjectInfo;
use crate::store::passkeys;
use crate::store::users;
use identity_shared::audit::{self, Event, Outcome};
use identity_shared::db::Tx;
use identity_shared::error::ApiResult;
use serde::Deserialize;
use serde_json::Value;
use webauthn_rs::prelude::{Passkey, PasskeyAuthentication, PublicKeyCredential, WebauthnError};

/// The ceremony kind of a passkey used as a second factor.
pub const KIND: &str = "second";

/// A passkey answer: the ceremony and the browser's assertion.
#[derive(Debug, Deserialize)]
pub struct PasskeyAnswer {
    pub challenge_id: String,
    pub credential: Value,
}

/// Checks `answer` against a second-factor ceremony of `user_id`, begun by
/// `bound_to` (the same session, or the same waiting login), and spends it;
/// stores the credential's new counter. False for anything wrong (a
/// malformed credential included: it counts as a wrong answer); a counter
/// that went backwards is also audited as a suspected clone.
pub async fn prove(
    state: &DataState,
    tx: &mut Tx,
    project: &ProjectInfo,
    user_id: &str,
    bound_to: &str,
    answer: &PasskeyAnswer,
) -> ApiResult<bool> {
    let Ok(credential) = parse_credential::<PublicKeyCredential>(answer.credential.clone()) else {
        return Ok(false);
    };
    let Some(ceremony) = passkeys::finish_ceremony(tx, &project.id, &answer.challenge_id)
        .await?
        .filter(|c| c.kind == KIND && c.user_id.as_deref() == Some(user_id))
    else {
        return Ok(false);
    };
    let Some(auth) = open_bound::<PasskeyAuthentication>(&ceremony.state, bound_to)? else {
        return Ok(false);
    };
    let rp = relying_party(state, project)?;
    // Uses of one user's passkeys are serialised: counters only move forward.
    users::lock_credentials(tx, &project.id, user_id).await?;
    let result = match rp.finish_passkey_authentication(&credential, &auth) {
        Ok(r) => r,
        Err(WebauthnError::CredentialPossibleCompromise) => {
            audit::record(
                tx,
                Event {
                    subject: Some(user_id),
                    data: serde_json::json!({"credential_id": credential.id}),
                    ..Event::new(&project.id, "passkey.clone_suspected", Outcome::Failure)
                },
            )
            .await?;
            return Ok(false);
        }
        Err(_) => return Ok(false),
    };
    if !result.user_verified() {
        return Ok(false);
    }
    for row in passkeys::of_user(tx, &project.id, user_id).await? {
        let Ok(mut key) = serde_json::from_str::<Passkey>(&row.credential) else {
            continue;
        };
        if key.cred_id() == result.cred_id() {
            key.update_credential(&result);
            passkeys::used(
                tx,
                &project.id,
                &row.id,
                &to_state(&key)?,
                result.backup_state(),
            )
            .await?;
            return Ok(true);
        }
    }
    Ok(false)
}
