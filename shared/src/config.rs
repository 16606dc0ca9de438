//! One typed configuration, read from `IDENTITY_*` variables and an optional
//! TOML file (`IDENTITY_CONFIG`). Variables win over the file. A bad value
//! fails at boot with the variable's name.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

use crate::messaging::{OutboxSettings, SmsSettings, SmtpSettings, WebhookSecret};
use crate::secret::{Secret, redact_dsn};

#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: String,
    pub message: String,
}

impl ConfigError {
    fn new(variable: &str, message: impl Into<String>) -> Self {
        Self {
            variable: variable.to_string(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// `Debug` shows no secret: the admin token and master key are
/// [`Secret`]s and the database URL's password is redacted.
#[derive(Clone)]
pub struct Config {
    pub database_url: String,
    pub public_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub public_base_url: String,
    pub admin_token: Option<Secret<String>>,
    /// Hex or base64 text of the 32-byte master key, if configured.
    pub master_key: Option<Secret<String>>,
    pub dev_mode: bool,
    pub auto_migrate: bool,
    pub dns_nameservers: Vec<SocketAddr>,
    pub trusted_proxies: Vec<IpNet>,
    pub log_format: LogFormat,
    /// Largest accepted request body.
    pub body_limit_bytes: usize,
    /// Safety-net TTL of the project-resolution cache; invalidation is explicit.
    pub resolution_cache_ttl: Duration,
    /// Connections per database pool.
    pub db_max_connections: u32,
    /// Argon2id parameters for new password hashes.
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// Password hashes computed at once (default: the cores).
    pub hash_concurrency: usize,
    /// Password checks that may wait for a hashing worker; past that, 503.
    pub hash_queue: usize,
    /// How long cached sessions and project answers stay usable after the
    /// invalidation listener lost the database; then checks fail closed.
    pub cache_staleness: Duration,
    /// Where email goes (`IDENTITY_SMTP_URL`); none: logged in dev mode,
    /// else email flows answer `503 email_not_configured`.
    pub smtp: Option<SmtpSettings>,
    /// The sender address of every email (`IDENTITY_EMAIL_FROM`).
    pub email_from: String,
    /// Where SMS goes (`IDENTITY_SMS_WEBHOOK_URL` and `_SECRET`).
    pub sms: Option<SmsSettings>,
    pub outbox: OutboxSettings,
    /// Where avatars are stored: `file:///dir` or `s3://bucket/prefix`
    /// (`IDENTITY_OBJECT_STORE_URL`); none: see [`Config::object_store`].
    pub object_store_url: Option<String>,
    /// The `AWS_*` variables (credentials, region, `AWS_ENDPOINT_URL`) for
    /// an `s3://` object store. Never shown by `Debug`.
    pub object_store_env: Vec<(String, Secret<String>)>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: "sqlite://./identity.db".into(),
            public_addr: ([0, 0, 0, 0], 8080).into(),
            admin_addr: ([127, 0, 0, 1], 8081).into(),
            public_base_url: "http://localhost:8080".into(),
            admin_token: None,
            master_key: None,
            dev_mode: false,
            auto_migrate: false,
            dns_nameservers: Vec::new(),
            trusted_proxies: Vec::new(),
            log_format: LogFormat::Pretty,
            body_limit_bytes: 1024 * 1024,
            resolution_cache_ttl: Duration::from_secs(60),
            db_max_connections: 16,
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            hash_concurrency: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            hash_queue: 128,
            cache_staleness: Duration::from_secs(10),
            smtp: None,
            email_from: "identity@localhost".into(),
            sms: None,
            outbox: OutboxSettings::default(),
            object_store_url: None,
            object_store_env: Vec::new(),
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &redact_dsn(&self.database_url))
            .field("public_addr", &self.public_addr)
            .field("admin_addr", &self.admin_addr)
            .field("public_base_url", &self.public_base_url)
            .field("admin_token", &self.admin_token)
            .field("master_key", &self.master_key)
            .field("dev_mode", &self.dev_mode)
            .field("auto_migrate", &self.auto_migrate)
            .field("dns_nameservers", &self.dns_nameservers)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("log_format", &self.log_format)
            .field("body_limit_bytes", &self.body_limit_bytes)
            .field("resolution_cache_ttl", &self.resolution_cache_ttl)
            .field("db_max_connections", &self.db_max_connections)
            .field("argon2_memory_kib", &self.argon2_memory_kib)
            .field("argon2_iterations", &self.argon2_iterations)
            .field("argon2_parallelism", &self.argon2_parallelism)
            .field("hash_concurrency", &self.hash_concurrency)
            .field("hash_queue", &self.hash_queue)
            .field("cache_staleness", &self.cache_staleness)
            .field("smtp", &self.smtp)
            .field("email_from", &self.email_from)
            .field("sms", &self.sms)
            .field("outbox", &self.outbox)
            .field("object_store_url", &self.object_store_url)
            .finish()
    }
}

impl Config {
    pub fn is_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }

    /// Reads the process environment (and the TOML file it names).
    pub fn from_env() -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("IDENTITY_") || k.starts_with("AWS_"))
            .collect();
        Self::from_sources(&env)
    }

    /// Builds the configuration from a map of `IDENTITY_*` variables; a TOML
    /// file named by `IDENTITY_CONFIG` supplies keys the map lacks (keys are
    /// the variable names without the prefix, lowercased: `database_url`).
    pub fn from_sources(env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let mut vars = env.clone();
        if let Some(path) = env.get("IDENTITY_CONFIG") {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::new("IDENTITY_CONFIG", format!("cannot read {path}: {e}"))
            })?;
            // The parser's message quotes the offending line, which may
            // hold a secret: say only where it is.
            let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
                let at = e
                    .span()
                    .map(|s| format!(" (line {})", text[..s.start].lines().count().max(1)))
                    .unwrap_or_default();
                ConfigError::new("IDENTITY_CONFIG", format!("invalid TOML in {path}{at}"))
            })?;
            for (key, value) in table {
                let name = format!("IDENTITY_{}", key.to_ascii_uppercase());
                let text = match value {
                    toml::Value::String(s) => s,
                    toml::Value::Array(items) => items
                        .iter()
                        .map(|v| {
                            v.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| v.to_string())
                        })
                        .collect::<Vec<_>>()
                        .join(","),
                    other => other.to_string(),
                };
                vars.entry(name).or_insert(text);
            }
        }

        let d = Config::default();
        let get = |name: &str| {
            vars.get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };

        let database_url = get("IDENTITY_DATABASE_URL").unwrap_or(d.database_url);
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(ConfigError::new(
                "IDENTITY_DATABASE_URL",
                "must start with sqlite:, postgres:// or postgresql://",
            ));
        }
        let public_base_url = get("IDENTITY_PUBLIC_BASE_URL")
            .unwrap_or(d.public_base_url)
            .trim_end_matches('/')
            .to_string();
        if !(public_base_url.starts_with("http://") || public_base_url.starts_with("https://")) {
            return Err(ConfigError::new(
                "IDENTITY_PUBLIC_BASE_URL",
                "must be an http:// or https:// URL",
            ));
        }
        let admin_token = get("IDENTITY_ADMIN_TOKEN");
        if let Some(t) = &admin_token
            && !(24..=512).contains(&t.len())
        {
            return Err(ConfigError::new(
                "IDENTITY_ADMIN_TOKEN",
                "must be 24 to 512 characters",
            ));
        }
        let master_key = get("IDENTITY_MASTER_KEY");
        if let Some(k) = &master_key {
            crate::crypto::MasterKey::parse(k)
                .map_err(|e| ConfigError::new("IDENTITY_MASTER_KEY", e))?;
        }
        let smtp = get("IDENTITY_SMTP_URL")
            .map(|u| SmtpSettings::parse(&u).map_err(|e| ConfigError::new("IDENTITY_SMTP_URL", e)))
            .transpose()?;
        let email_from = match get("IDENTITY_EMAIL_FROM") {
            Some(from) => {
                crate::email::Email::parse(&from).map_err(|e| {
                    ConfigError::new(
                        "IDENTITY_EMAIL_FROM",
                        format!("is not an email address: {e}"),
                    )
                })?;
                from
            }
            None => d.email_from,
        };
        if smtp.is_some() && get("IDENTITY_EMAIL_FROM").is_none() {
            return Err(ConfigError::new(
                "IDENTITY_EMAIL_FROM",
                "is required with IDENTITY_SMTP_URL",
            ));
        }
        let sms = match (
            get("IDENTITY_SMS_WEBHOOK_URL"),
            get("IDENTITY_SMS_WEBHOOK_SECRET"),
        ) {
            (None, None) => None,
            (Some(url), Some(secret)) => {
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(ConfigError::new(
                        "IDENTITY_SMS_WEBHOOK_URL",
                        "must be an http:// or https:// URL",
                    ));
                }
                let secret = WebhookSecret::parse(&secret)
                    .map_err(|e| ConfigError::new("IDENTITY_SMS_WEBHOOK_SECRET", e))?;
                Some(SmsSettings { url, secret })
            }
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "IDENTITY_SMS_WEBHOOK_SECRET",
                    "is required with IDENTITY_SMS_WEBHOOK_URL",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "IDENTITY_SMS_WEBHOOK_URL",
                    "is required with IDENTITY_SMS_WEBHOOK_SECRET",
                ));
            }
        };
        let outbox = OutboxSettings {
            max_attempts: parse_opt(&get, "IDENTITY_OUTBOX_MAX_ATTEMPTS")?
                .unwrap_or(d.outbox.max_attempts),
            backoff_ms: parse_opt(&get, "IDENTITY_OUTBOX_BACKOFF_MS")?
                .unwrap_or(d.outbox.backoff_ms),
            poll_ms: parse_opt(&get, "IDENTITY_OUTBOX_POLL_MS")?.unwrap_or(d.outbox.poll_ms),
        };
        if !(1..=50).contains(&outbox.max_attempts) {
            return Err(ConfigError::new(
                "IDENTITY_OUTBOX_MAX_ATTEMPTS",
                "must be from 1 to 50",
            ));
        }
        if !(10..=3_600_000).contains(&outbox.backoff_ms) {
            return Err(ConfigError::new(
                "IDENTITY_OUTBOX_BACKOFF_MS",
                "must be from 10 to 3600000",
            ));
        }
        if !(10..=600_000).contains(&outbox.poll_ms) {
            return Err(ConfigError::new(
                "IDENTITY_OUTBOX_POLL_MS",
                "must be from 10 to 600000",
            ));
        }
        let config = Config {
            smtp,
            email_from,
            sms,
            outbox,
            object_store_url: get("IDENTITY_OBJECT_STORE_URL"),
            object_store_env: {
                let mut aws: Vec<(String, Secret<String>)> = env
                    .iter()
                    .filter(|(k, _)| k.starts_with("AWS_"))
                    .map(|(k, v)| (k.clone(), Secret::new(v.clone())))
                    .collect();
                aws.sort_by(|a, b| a.0.cmp(&b.0));
                aws
            },
            public_addr: parse_opt(&get, "IDENTITY_PUBLIC_ADDR")?.unwrap_or(d.public_addr),
            admin_addr: parse_opt(&get, "IDENTITY_ADMIN_ADDR")?.unwrap_or(d.admin_addr),
            dev_mode: parse_bool(&get, "IDENTITY_DEV_MODE")?.unwrap_or(d.dev_mode),
            auto_migrate: parse_bool(&get, "IDENTITY_AUTO_MIGRATE")?.unwrap_or(d.auto_migrate),
            dns_nameservers: parse_list(&get, "IDENTITY_DNS_NAMESERVERS")?,
            trusted_proxies: parse_list(&get, "IDENTITY_TRUSTED_PROXIES")?,
            log_format: match get("IDENTITY_LOG_FORMAT").as_deref() {
                None | Some("pretty") => LogFormat::Pretty,
                Some("json") => LogFormat::Json,
                Some(_) => {
                    return Err(ConfigError::new(
                        "IDENTITY_LOG_FORMAT",
                        "must be json or pretty",
                    ));
                }
            },
            body_limit_bytes: parse_opt(&get, "IDENTITY_BODY_LIMIT_BYTES")?
                .unwrap_or(d.body_limit_bytes),
            resolution_cache_ttl: parse_opt::<u64>(&get, "IDENTITY_RESOLUTION_CACHE_TTL_SECONDS")?
                .map(Duration::from_secs)
                .unwrap_or(d.resolution_cache_ttl),
            db_max_connections: parse_opt(&get, "IDENTITY_DB_MAX_CONNECTIONS")?
                .unwrap_or(d.db_max_connections),
            argon2_memory_kib: parse_opt(&get, "IDENTITY_ARGON2_MEMORY_KIB")?
                .unwrap_or(d.argon2_memory_kib),
            argon2_iterations: parse_opt(&get, "IDENTITY_ARGON2_ITERATIONS")?
                .unwrap_or(d.argon2_iterations),
            argon2_parallelism: parse_opt(&get, "IDENTITY_ARGON2_PARALLELISM")?
                .unwrap_or(d.argon2_parallelism),
            hash_concurrency: parse_opt(&get, "IDENTITY_HASH_CONCURRENCY")?
                .unwrap_or(d.hash_concurrency),
            hash_queue: parse_opt(&get, "IDENTITY_HASH_QUEUE")?.unwrap_or(d.hash_queue),
            cache_staleness: parse_opt::<u64>(&get, "IDENTITY_CACHE_STALENESS_SECONDS")?
                .map(Duration::from_secs)
                .unwrap_or(d.cache_staleness),
            database_url,
            public_base_url,
            admin_token: admin_token.map(Secret::new),
            master_key: master_key.map(Secret::new),
        };
        if let Some(url) = &config.object_store_url
            && !(url.starts_with("file://") || url.starts_with("s3://"))
        {
            return Err(ConfigError::new(
                "IDENTITY_OBJECT_STORE_URL",
                "must be file:///a/directory or s3://bucket/prefix",
            ));
        }
        if !(8..=4_194_304).contains(&config.argon2_memory_kib) {
            return Err(ConfigError::new(
                "IDENTITY_ARGON2_MEMORY_KIB",
                "must be from 8 to 4194304",
            ));
        }
        if !(1..=100).contains(&config.argon2_iterations) {
            return Err(ConfigError::new(
                "IDENTITY_ARGON2_ITERATIONS",
                "must be from 1 to 100",
            ));
        }
        if !(1..=64).contains(&config.argon2_parallelism) {
            return Err(ConfigError::new(
                "IDENTITY_ARGON2_PARALLELISM",
                "must be from 1 to 64",
            ));
        }
        if config.hash_concurrency == 0 {
            return Err(ConfigError::new(
                "IDENTITY_HASH_CONCURRENCY",
                "must be at least 1",
            ));
        }
        if !(1..=100_000).contains(&config.hash_queue) {
            return Err(ConfigError::new(
                "IDENTITY_HASH_QUEUE",
                "must be from 1 to 100000",
            ));
        }
        if config.cache_staleness > Duration::from_secs(300) {
            return Err(ConfigError::new(
                "IDENTITY_CACHE_STALENESS_SECONDS",
                "must be at most 300",
            ));
        }
        if config.db_max_connections == 0 {
            return Err(ConfigError::new(
                "IDENTITY_DB_MAX_CONNECTIONS",
                "must be at least 1",
            ));
        }
        if !config.is_sqlite() && config.master_key.is_none() {
            return Err(ConfigError::new(
                "IDENTITY_MASTER_KEY",
                "is required with Postgres (32 bytes, hex or base64)",
            ));
        }
        Ok(config)
    }

    /// Where avatars are stored: the configured URL, else a directory
    /// `objects` beside the SQLite database file, else `./identity-objects`.
    pub fn object_store(&self) -> String {
        if let Some(url) = &self.object_store_url {
            return url.clone();
        }
        let beside = self
            .sqlite_master_key_path()
            .and_then(|p| p.parent().map(|d| d.join("objects").display().to_string()));
        format!(
            "file://{}",
            beside.unwrap_or_else(|| "./identity-objects".into())
        )
    }

    /// Where the generated master key of an SQLite deployment lives: beside
    /// the database file. `None` for an in-memory database.
    pub fn sqlite_master_key_path(&self) -> Option<PathBuf> {
        let path = self
            .database_url
            .strip_prefix("sqlite://")
            .or_else(|| self.database_url.strip_prefix("sqlite:"))?;
        let path = path.split('?').next().unwrap_or(path);
        if path.is_empty() || path.contains(":memory:") {
            return None;
        }
        Some(PathBuf::from(format!("{path}.master-key")))
    }
}

fn parse_opt<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
) -> Result<Option<T>, ConfigError>
where
    T::Err: std::fmt::Display,
{
    get(name)
        .map(|v| {
            v.parse::<T>()
                .map_err(|e| ConfigError::new(name, format!("invalid value {v:?}: {e}")))
        })
        .transpose()
}

fn parse_bool(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
) -> Result<Option<bool>, ConfigError> {
    get(name)
        .map(|v| match v.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(ConfigError::new(
                name,
                format!("expected true or false, got {v:?}"),
            )),
        })
        .transpose()
}

fn parse_list<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
) -> Result<Vec<T>, ConfigError>
where
    T::Err: std::fmt::Display,
{
    let Some(v) = get(name) else {
        return Ok(Vec::new());
    };
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<T>()
                .map_err(|e| ConfigError::new(name, format!("invalid entry {s:?}: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_sqlite() {
        let c = Config::from_sources(&env(&[])).unwrap();
        assert!(c.is_sqlite());
        assert_eq!(c.public_addr.port(), 8080);
        assert_eq!(c.admin_addr.to_string(), "127.0.0.1:8081");
        assert_eq!(
            c.sqlite_master_key_path().unwrap().to_str(),
            Some("./identity.db.master-key")
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (k, v) in [
            ("IDENTITY_PUBLIC_ADDR", "nope"),
            ("IDENTITY_DEV_MODE", "maybe"),
            ("IDENTITY_DNS_NAMESERVERS", "1.2.3.4"),
            ("IDENTITY_TRUSTED_PROXIES", "10.0.0.0/99"),
            ("IDENTITY_LOG_FORMAT", "xml"),
            ("IDENTITY_DATABASE_URL", "mysql://x"),
            ("IDENTITY_MASTER_KEY", "short"),
        ] {
            let err = Config::from_sources(&env(&[(k, v)])).unwrap_err();
            assert_eq!(err.variable, k, "{err}");
        }
    }

    #[test]
    fn postgres_requires_master_key() {
        let err =
            Config::from_sources(&env(&[("IDENTITY_DATABASE_URL", "postgres://x/y")])).unwrap_err();
        assert_eq!(err.variable, "IDENTITY_MASTER_KEY");
    }

    #[test]
    fn toml_file_fills_gaps_and_env_wins() {
        let dir = std::env::temp_dir().join(format!("identity-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("identity.toml");
        std::fs::write(
            &path,
            "public_addr = \"127.0.0.1:9999\"\ndev_mode = true\ndns_nameservers = [\"127.0.0.1:53\"]\n",
        )
        .unwrap();
        let c = Config::from_sources(&env(&[
            ("IDENTITY_CONFIG", path.to_str().unwrap()),
            ("IDENTITY_DEV_MODE", "false"),
        ]))
        .unwrap();
        assert_eq!(c.public_addr.port(), 9999);
        assert!(!c.dev_mode);
        assert_eq!(c.dns_nameservers.len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn debug_shows_no_secret() {
        let env: HashMap<String, String> = [
            (
                "IDENTITY_DATABASE_URL",
                "postgres://app:pg-s3cret@db/identity",
            ),
            ("IDENTITY_ADMIN_TOKEN", "operator-s3cret-0123456789abcdef"),
            ("IDENTITY_MASTER_KEY", &"ab".repeat(32)),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let c = Config::from_sources(&env).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(!shown.contains(&"ab".repeat(32)), "{shown}");
        assert!(
            shown.contains("postgres://app:[redacted]@db/identity"),
            "{shown}"
        );
    }
}
