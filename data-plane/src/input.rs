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

/// For a field that may be absent (`None`) or an explicit `null`
/// (`Some(None)`): `#[serde(default, deserialize_with = "nullable")]`.
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

/// The most a metadata object may take, as JSON.
pub const METADATA_MAX_BYTES: usize = 8 * 1024;

/// A metadata object to store: a JSON object of at most 8 KiB, nested at
/// most 10 deep (`422 invalid_metadata`); `{}` is stored as nothing.
pub fn metadata_text(field: &str, value: &serde_json::Value) -> ApiResult<Option<String>> {
    fn depth(v: &serde_json::Value) -> usize {
        match v {
            serde_json::Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
            serde_json::Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
            _ => 0,
        }
    }
    let invalid = |why: &str| ApiError::unprocessable("invalid_metadata", format!("{field} {why}"));
    let Some(object) = value.as_object() else {
        return Err(invalid("must be a JSON object"));
    };
    let text = value.to_string();
    if text.len() > METADATA_MAX_BYTES {
        return Err(invalid("must take at most 8 KiB as JSON"));
    }
    if depth(value) > 10 {
        return Err(invalid("must be nested at most 10 deep"));
    }
    Ok((!object.is_empty()).then_some(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_objects() {
        use serde_json::json;
        assert_eq!(metadata_text("m", &json!({})).unwrap(), None);
        assert_eq!(
            metadata_text("m", &json!({"plan": "pro"}))
                .unwrap()
                .as_deref(),
            Some(r#"{"plan":"pro"}"#)
        );
        for bad in [
            json!([1]),
            json!("x"),
            json!(null),
            json!({"a": "x".repeat(9000)}),
        ] {
            assert!(metadata_text("m", &bad).is_err(), "{bad}");
        }
        let mut deep = json!(1);
        for _ in 0..11 {
            deep = json!({"d": deep});
        }
        assert!(metadata_text("m", &deep).is_err());
    }

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
