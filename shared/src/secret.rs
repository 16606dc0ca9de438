//! Values that must never reach a log: `Debug` shows `[redacted]`.

use serde::{Deserialize, Deserializer};

/// A secret (a password in a request body, a token, a key's text). Read it
/// with [`Secret::expose`]; its `Debug` never shows it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &T {
        &self.0
    }

    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Secret<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(Secret)
    }
}

impl From<String> for Secret<String> {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

/// A database URL with any password replaced, for logs and `Debug`.
pub fn redact_dsn(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let mut out = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:[redacted]@{host}{tail}"),
            None => format!("{scheme}://{userinfo}@{host}{tail}"),
        },
        None => url.to_string(),
    };
    // A password can also travel as a query parameter.
    if let Some((base, query)) = out.clone().split_once('?') {
        let query: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=[redacted]"),
                _ => kv.to_string(),
            })
            .collect();
        out = format!("{base}?{}", query.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2".to_string());
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(s.expose(), "hunter2");
        let parsed: Secret<String> = serde_json::from_str("\"pw\"").unwrap();
        assert_eq!(parsed.into_inner(), "pw");
        assert_eq!(
            redact_dsn("postgres://app:s3cret@db:5432/identity?sslmode=require"),
            "postgres://app:[redacted]@db:5432/identity?sslmode=require"
        );
        assert_eq!(
            redact_dsn("postgres://db/identity?user=app&password=s3cret"),
            "postgres://db/identity?user=app&password=[redacted]"
        );
        assert_eq!(
            redact_dsn("sqlite://./identity.db"),
            "sqlite://./identity.db"
        );
    }
}
