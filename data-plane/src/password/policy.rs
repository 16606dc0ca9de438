//! Password policy and what an imported hash may be.

use argon2::Params;
use argon2::password_hash::PasswordHash;
use identity_shared::error::ApiError;

/// New passwords: at least this many characters.
pub const MIN_LENGTH: usize = 12;

/// Any password: at most this many characters (checked before hashing).
pub const MAX_LENGTH: usize = 256;

pub fn is_bcrypt(s: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"].iter().any(|p| s.starts_with(p))
}

/// Validates an imported hash: an Argon2id PHC string or a bcrypt hash.
pub fn validate_import(hash: &str) -> Result<(), ApiError> {
    let bad = || {
        ApiError::unprocessable(
            "invalid_password_hash",
            "password_hash must be an Argon2id PHC string or a bcrypt hash ($2a$, $2b$, $2y$)",
        )
    };
    if is_bcrypt(hash) {
        // $2b$NN$ + 53 characters of salt and digest. Costs past 16 would
        // make every login of that account a denial of service.
        let cost_ok = hash
            .get(4..6)
            .and_then(|c| c.parse::<u32>().ok())
            .is_some_and(|c| (4..=16).contains(&c));
        if hash.len() == 60 && cost_ok && hash.as_bytes()[6] == b'$' {
            return Ok(());
        }
        return Err(bad());
    }
    let parsed = PasswordHash::new(hash).map_err(|_| bad())?;
    let params = Params::try_from(&parsed).map_err(|_| bad())?;
    if parsed.algorithm.as_str() != "argon2id" || parsed.hash.is_none() {
        return Err(bad());
    }
    // Bounded so one login cannot take the machine's memory or minutes of CPU.
    if params.m_cost() > 262_144 || params.t_cost() > 16 || params.p_cost() > 16 {
        return Err(ApiError::unprocessable(
            "invalid_password_hash",
            "password_hash parameters are too large (at most m=262144, t=16, p=16)",
        ));
    }
    Ok(())
}

/// Policy for a new password. Counted in characters, not bytes.
pub fn validate_new(password: &str) -> Result<(), ApiError> {
    let n = password.chars().count();
    if !(MIN_LENGTH..=MAX_LENGTH).contains(&n) {
        return Err(ApiError::unprocessable(
            "weak_password",
            format!("the password must be {MIN_LENGTH} to {MAX_LENGTH} characters"),
        ));
    }
    if password.chars().any(char::is_control) {
        return Err(ApiError::unprocessable(
            "invalid_password",
            "the password must not contain control characters",
        ));
    }
    Ok(())
}

/// What a login accepts before any hashing: non-empty, at most the maximum.
pub fn validate_presented(password: &str) -> Result<(), ApiError> {
    if password.is_empty() {
        return Err(ApiError::invalid_request("password is required"));
    }
    if password.chars().count() > MAX_LENGTH {
        return Err(ApiError::invalid_request(format!(
            "password must be at most {MAX_LENGTH} characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_and_policy_validation() {
        assert!(
            validate_import("$argon2i$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo").is_err()
        );
        assert!(validate_import("$2b$99$abc").is_err());
        let costly = bcrypt::hash("x", 4).unwrap().replacen("$04$", "$20$", 1);
        assert!(validate_import(&costly).is_err());
        assert!(
            validate_import(
                "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2g"
            )
            .is_err()
        );
        assert!(validate_import("plain").is_err());
        assert!(validate_new("short").is_err());
        assert!(validate_new(&"a".repeat(257)).is_err());
        assert!(validate_new("twelve chars!").is_ok());
        assert!(validate_new("ünïcødé pässwörd").is_ok());
        assert!(validate_new("null\u{0}byte-password").is_err());
        assert!(validate_presented("").is_err());
        assert!(validate_presented(&"a".repeat(257)).is_err());
        assert!(validate_presented("x").is_ok());
    }
}
