//! Validated input shared by several flows.

use identity_shared::error::{ApiError, ApiResult};

/// A validated email: `typed` is stored as given (trimmed), `normalized`
/// (the canonical form, see `identity_shared::email`) is what uniqueness
/// and lookups use.
#[derive(Debug, Clone)]
pub struct Email {
    pub typed: String,
    pub normalized: String,
}

impl Email {
    pub fn parse(input: &str) -> ApiResult<Email> {
        let e = identity_shared::email::Email::parse(input).map_err(|why| {
            ApiError::unprocessable(
                "invalid_email",
                format!("the email address is not valid: {why}"),
            )
        })?;
        Ok(Email {
            typed: e.typed,
            normalized: e.canonical,
        })
    }
}

/// A display name: trimmed, at most 200 characters, no control characters.
pub fn parse_name(name: Option<&str>) -> ApiResult<Option<String>> {
    let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(ApiError::unprocessable(
            "invalid_name",
            "name must be at most 200 characters without control characters",
        ));
    }
    Ok(Some(name.to_string()))
}

#[cfg(test)]
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        let e = Email::parse("  Alice.Smith@Example.COM. ").unwrap();
        assert_eq!(e.typed, "Alice.Smith@Example.COM.");
        assert_eq!(e.normalized, "alice.smith@example.com");
        assert_eq!(
            Email::parse("a b@x.com").unwrap_err().code(),
            "invalid_email"
        );
    }
}
