//! Boots the real server in-process on `127.0.0.1:0`, on SQLite (a temp
//! file) or on a fresh Postgres database, and talks to it over HTTP.

pub mod dns;
pub mod mail;
pub mod oidc;
pub mod postgres;
pub mod proxy;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use identity::config::Config;
use identity::{Plane, Server};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Sqlite,
    Postgres,
}

/// Runs an `async fn(Store)` once per backend, as two tests.
#[macro_export]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::support::Store::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::support::Store::Postgres).await
            }
        }
    )*};
}

/// Tests that change cluster-wide roles take this for writing; everything
/// that boots a Postgres server or relies on RLS holds it for reading.
pub static ROLES: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

pub const ADMIN_TOKEN: &str = "test-operator-token-0123456789abcdef";

pub struct TestApp {
    pub store: Store,
    pub server: Option<Server>,
    pub public: String,
    pub admin: String,
    pub client: reqwest::Client,
    /// The variables the server was configured from (a peer reuses them).
    pub env: HashMap<String, String>,
    _sqlite_dir: Option<TempDir>,
}

pub struct Project {
    pub id: String,
    pub pk: String,
    pub sk: String,
}

/// A directory removed when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl TestApp {
    /// A server on `store`, or `None` when that backend is unavailable here
    /// (Postgres missing and not required).
    pub async fn spawn(store: Store) -> Option<TestApp> {
        Self::spawn_with(store, &[]).await
    }

    /// As [`TestApp::spawn`], with extra `IDENTITY_*` variables.
    pub async fn spawn_with(store: Store, extra: &[(&str, &str)]) -> Option<TestApp> {
        let mut env: HashMap<String, String> = HashMap::new();
        let sqlite_dir;
        match store {
            Store::Sqlite => {
                let dir = std::env::temp_dir().join(format!("identity-test-{}", random_name()));
                std::fs::create_dir_all(&dir).unwrap();
                env.insert(
                    "IDENTITY_DATABASE_URL".into(),
                    format!("sqlite://{}", dir.join("identity.db").display()),
                );
                sqlite_dir = Some(TempDir(dir));
            }
            Store::Postgres => {
                let url = postgres::fresh_database().await?;
                env.insert("IDENTITY_DATABASE_URL".into(), url);
                env.insert("IDENTITY_AUTO_MIGRATE".into(), "true".into());
                // Avatars in a directory of the test's own (SQLite keeps
                // them beside its database).
                let dir = std::env::temp_dir().join(format!("identity-test-{}", random_name()));
                std::fs::create_dir_all(&dir).unwrap();
                env.insert(
                    "IDENTITY_OBJECT_STORE_URL".into(),
                    format!("file://{}", dir.join("objects").display()),
                );
                sqlite_dir = Some(TempDir(dir));
            }
        }
        env.insert("IDENTITY_MASTER_KEY".into(), "11".repeat(32));
        env.insert("IDENTITY_ADMIN_TOKEN".into(), ADMIN_TOKEN.into());
        env.insert("IDENTITY_PUBLIC_ADDR".into(), "127.0.0.1:0".into());
        env.insert("IDENTITY_ADMIN_ADDR".into(), "127.0.0.1:0".into());
        env.insert("IDENTITY_DEV_MODE".into(), "true".into());
        env.insert("IDENTITY_DB_MAX_CONNECTIONS".into(), "8".into());
        // Cheap hashes keep the suite fast; password tests that need the
        // real parameters set them back.
        env.insert("IDENTITY_ARGON2_MEMORY_KIB".into(), "1024".into());
        env.insert("IDENTITY_ARGON2_ITERATIONS".into(), "1".into());
        // Loopback is a trusted proxy: tests play clients from many IPs
        // with X-Forwarded-For.
        env.insert("IDENTITY_TRUSTED_PROXIES".into(), "127.0.0.1/32".into());
        for (k, v) in extra {
            env.insert(k.to_string(), v.to_string());
        }
        let mut app = Self::boot(store, env).await;
        app._sqlite_dir = sqlite_dir;
        Some(app)
    }

    async fn boot(store: Store, env: HashMap<String, String>) -> TestApp {
        // IDENTITY_TEST_LOG=debug (an env filter) shows the servers' logs.
        static LOGS: std::sync::Once = std::sync::Once::new();
        LOGS.call_once(|| {
            if let Ok(filter) = std::env::var("IDENTITY_TEST_LOG") {
                let _ = tracing_subscriber::fmt()
                    .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                    .with_test_writer()
                    .try_init();
            }
        });
        let config = Config::from_sources(&env).expect("test configuration");
        let server = {
            let _roles = ROLES.read().await;
            Server::start(config, Plane::All)
                .await
                .expect("server starts")
        };
        let public_addr = server.public_addr.unwrap();
        TestApp {
            store,
            public: format!("http://{public_addr}"),
            admin: format!("http://{}", server.admin_addr.unwrap()),
            server: Some(server),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            env,
            _sqlite_dir: None,
        }
    }

    /// A second node on the same database (its own caches and listeners).
    pub async fn spawn_peer(&self) -> TestApp {
        Self::boot(self.store, self.env.clone()).await
    }

    /// As [`TestApp::spawn_peer`], with some variables changed.
    pub async fn spawn_peer_with(&self, changed: &[(&str, &str)]) -> TestApp {
        let mut env = self.env.clone();
        for (k, v) in changed {
            env.insert(k.to_string(), v.to_string());
        }
        Self::boot(self.store, env).await
    }

    pub fn admin_req(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.admin))
            .bearer_auth(ADMIN_TOKEN)
    }

    pub fn public_req(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.public))
    }

    /// An admin call with a JSON body (or none); returns status and JSON.
    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.admin_req(method, path);
        if let Some(b) = body {
            req = req.json(&b);
        }
        send(req).await
    }

    pub async fn create_project(&self, name: &str) -> Project {
        let (status, body) = self
            .admin(
                Method::POST,
                "/v1/projects",
                Some(serde_json::json!({"name": name})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        Project {
            id: body["project"]["id"].as_str().unwrap().to_string(),
            pk: body["keys"]["publishable"].as_str().unwrap().to_string(),
            sk: body["keys"]["secret"].as_str().unwrap().to_string(),
        }
    }

    /// A data-plane GET identified by a project key.
    /// A data-plane call identified by a project key (pk_ or sk_).
    pub async fn send_with_key(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.public_req(method, path).header("x-project-key", key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        send(req).await
    }

    pub async fn get_with_key(&self, path: &str, key: &str) -> (StatusCode, Value) {
        send(
            self.public_req(Method::GET, path)
                .header("x-project-key", key),
        )
        .await
    }

    /// A data-plane GET identified by `Host`.
    pub async fn get_with_host(&self, path: &str, host: &str) -> (StatusCode, Value) {
        send(self.public_req(Method::GET, path).header("host", host)).await
    }

    /// A data-plane POST with a JSON body, identified by `key`.
    pub async fn post_with_key(&self, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
        send(
            self.public_req(Method::POST, path)
                .header("x-project-key", key)
                .json(&body),
        )
        .await
    }

    /// Registers a user with a publishable key; returns the TokenResponse.
    pub async fn register(&self, key: &str, email: &str, password: &str) -> Value {
        let (status, body) = self
            .post_with_key(
                "/v1/auth/register",
                key,
                serde_json::json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    pub async fn login(&self, key: &str, email: &str, password: &str) -> (StatusCode, Value) {
        self.post_with_key(
            "/v1/auth/login",
            key,
            serde_json::json!({"email": email, "password": password}),
        )
        .await
    }

    /// A data-plane call authenticated with a bearer access token.
    pub async fn authed(
        &self,
        method: Method,
        path: &str,
        key: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .public_req(method, path)
            .header("x-project-key", key)
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        send(req).await
    }

    /// Adds `host` as an auth domain of `project_id` and verifies it through
    /// the test DNS server (which the app must use).
    pub async fn verify_auth_domain(&self, dns: &dns::TestDns, project_id: &str, host: &str) {
        let (_, d) = self
            .admin(
                Method::POST,
                &format!("/v1/projects/{project_id}/auth-domains"),
                Some(serde_json::json!({"hostname": host})),
            )
            .await;
        dns.set_txt(
            &format!("_identity-challenge.{host}"),
            &[d["verification"]["value"].as_str().unwrap()],
        )
        .await;
        let (s, b) = self
            .admin(
                Method::POST,
                &format!(
                    "/v1/projects/{project_id}/auth-domains/{}/verify",
                    d["domain"]["id"].as_str().unwrap()
                ),
                None,
            )
            .await;
        assert_eq!(s, 200, "{b}");
    }

    /// Adds `domain` to the tenant, and (with `verify`) proves it through
    /// the test DNS server.
    pub async fn tenant_domain(
        &self,
        dns: &dns::TestDns,
        project_id: &str,
        tenant_id: &str,
        domain: &str,
        verify: bool,
    ) {
        let base = format!("/v1/projects/{project_id}/tenants/{tenant_id}/domains");
        let (s, d) = self
            .admin(
                Method::POST,
                &base,
                Some(serde_json::json!({"domain": domain})),
            )
            .await;
        assert_eq!(s, 201, "{d}");
        if !verify {
            return;
        }
        dns.set_txt(
            d["verification"]["name"].as_str().unwrap(),
            &[d["verification"]["value"].as_str().unwrap()],
        )
        .await;
        let path = format!("{base}/{}/verify", d["domain"]["id"].as_str().unwrap());
        let (s, v) = self.admin(Method::POST, &path, None).await;
        assert_eq!(s, 200, "{v}");
    }

    pub fn db(&self) -> &identity_shared::db::Db {
        &self.server.as_ref().unwrap().db
    }

    /// Stops this node and starts it again on the same database and
    /// configuration (new listener ports).
    pub async fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        let dir = self._sqlite_dir.take();
        let mut fresh = Self::boot(self.store, self.env.clone()).await;
        fresh._sqlite_dir = dir;
        *self = fresh;
    }

    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}

pub async fn send(req: RequestBuilder) -> (StatusCode, Value) {
    let resp = req.send().await.expect("request sent");
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

/// Sends raw HTTP/1.1 bytes to `base` (`http://ip:port`) and reads one
/// response. The write runs beside the read and its errors are ignored: a
/// server may answer (413) and close before taking the whole body.
pub async fn raw_http(base: &str, request: Vec<u8>) -> (StatusCode, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://").to_string();
    let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        let _ = write.write_all(&request).await;
        let _ = write.flush().await;
        write
    });
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), read.read(&mut chunk))
            .await
            .expect("response within 10 s")
            .expect("read response");
        assert!(n > 0, "connection closed before a response");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = read.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    writer.abort();
    let body = serde_json::from_slice(&buf[head_end..]).unwrap_or(Value::Null);
    (StatusCode::from_u16(status).unwrap(), body)
}

/// Asserts an error response: status, and `{"error": {"code", "message"}}`.
#[track_caller]
pub fn assert_error(got: &(StatusCode, Value), status: u16, code: &str) {
    assert_eq!(got.0.as_u16(), status, "body: {}", got.1);
    assert_eq!(got.1["error"]["code"], code, "body: {}", got.1);
    assert!(
        got.1["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "body: {}",
        got.1
    );
}

/// Polls `check` until it returns true; returns how long that took, or
/// panics after `limit`.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        if started.elapsed() > limit {
            panic!("condition not reached within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn random_name() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..12)
        .map(|_| (b'a' + rng.gen_range(0..26)) as char)
        .collect()
}

/// The access token of a `TokenResponse`.
pub fn access_token(body: &Value) -> String {
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

/// Moves every session's last proof of a factor an hour back (past any
/// step-up window). Step-up reads sessions fresh, so cached views do not
/// matter.
pub async fn age_step_up(app: &TestApp) {
    use identity_shared::schema::Sessions;
    use sea_query::Query;
    let hour_ago = identity_shared::time::now_ms() - 3_600_000;
    let mut tx = app.db().control().await.unwrap();
    tx.execute(
        Query::update()
            .table(Sessions::Table)
            .value(Sessions::VerifiedAt, hour_ago),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// The claims of `token`, verified as a relying party would: discovery,
/// then the project's JWKS over HTTP, signature, issuer and audience.
pub async fn verified_claims(app: &TestApp, p: &Project, token: &str) -> Value {
    use jsonwebtoken::jwk::JwkSet;
    use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
    let (_, oidc) = app
        .get_with_key("/.well-known/openid-configuration", &p.pk)
        .await;
    let (_, jwks) = app.get_with_key("/.well-known/jwks.json", &p.pk).await;
    let jwks: JwkSet = serde_json::from_value(jwks).unwrap();
    let header = decode_header(token).unwrap();
    let jwk = jwks
        .find(&header.kid.expect("a kid"))
        .expect("a published key");
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[oidc["issuer"].as_str().unwrap()]);
    validation.set_audience(&[&p.id]);
    decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .expect("the token verifies")
        .claims
}
