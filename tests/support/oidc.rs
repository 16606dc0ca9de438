//! A loopback identity provider for the OAuth sign-in tests ([`MockIdp`]):
//! an OpenID Connect provider (discovery, JWKS, authorization code flow
//! with PKCE, RS256 ID tokens, userinfo) and, on the same port, a
//! GitHub-shaped OAuth 2 API (`/login/oauth/*`, `/api/user`,
//! `/api/user/emails`).
//!
//! The "user" is whoever [`MockIdp::set_next_user`] names: every
//! authorization request is answered at once with a redirect carrying a
//! code, as if that user had signed in and consented.
//!
//! It can also play Sign in with Apple ([`MockIdp::play_apple`]: the
//! client secret must be an ES256 JWT from the team's key, sent in the
//! body; `response_mode=form_post` answers with an auto-posting form) and
//! Microsoft's multi-tenant issuer (discovery under `/{tenant}/v2.0` names
//! the issuer `{base}/{tenantid}/v2.0`; a user whose `extra` has a `tid`
//! gets tokens from `{base}/{tid}/v2.0`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::RngCore;
use reqwest::Url;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// How long a code may wait before it is exchanged.
const CODE_TTL: Duration = Duration::from_secs(60);
/// The lifetime of an ID token, in seconds.
const ID_TOKEN_TTL: u64 = 300;
/// The `expires_in` of an access token, in seconds.
const ACCESS_TOKEN_TTL: u64 = 3600;

/// The user the provider signs in. Its `extra` (a JSON object, or null)
/// adds claims to the ID token, overriding standard ones of the same name
/// (`{"email_verified": "true"}` plays a quirky provider). For the GitHub
/// API, `sub` is the numeric `id` (a stable number derived from it when it
/// is not numeric) and `extra["login"]` the `login` (the email's local part
/// without one).
#[derive(Debug, Clone, PartialEq)]
pub struct MockUser {
    pub sub: String,
    pub email: String,
    pub email_verified: bool,
    pub name: String,
    pub extra: Value,
}

impl Default for MockUser {
    /// `sub` `100001`, `mock.user@example.com` (verified), "Mock User".
    fn default() -> MockUser {
        MockUser {
            sub: "100001".into(),
            email: "mock.user@example.com".into(),
            email_verified: true,
            name: "Mock User".into(),
            extra: json!({}),
        }
    }
}

impl MockUser {
    fn github_id(&self) -> u64 {
        self.sub.parse().unwrap_or_else(|_| {
            let digest = Sha256::digest(self.sub.as_bytes());
            u64::from_be_bytes(digest[..8].try_into().unwrap()) >> 12
        })
    }

    fn github_login(&self) -> String {
        match self.extra.get("login").and_then(Value::as_str) {
            Some(login) => login.to_string(),
            None => self.email.split('@').next().unwrap_or("").to_string(),
        }
    }
}

/// A defect for the next ID token the provider issues (then it is back to
/// [`Tamper::None`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    None,
    /// A `nonce` other than the one of the authorization request.
    Nonce,
    /// `aud` is another client.
    Audience,
    /// `iss` is another issuer.
    Issuer,
    /// The signature does not verify (one of its bytes flipped).
    Signature,
    /// `exp` ten minutes past (`iat` fifteen).
    Expired,
}

/// What the provider has been asked so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requests {
    /// The query of each authorization request (`/authorize` and
    /// `/login/oauth/authorize`), refused ones included, in order.
    pub authorize: Vec<HashMap<String, String>>,
    /// Requests to either token endpoint, failed ones included.
    pub token: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Oidc,
    GitHub,
}

/// A code waiting for its exchange.
struct Grant {
    flow: Flow,
    client_id: String,
    redirect_uri: String,
    challenge: String,
    nonce: Option<String>,
    scope: String,
    user: MockUser,
    issued: Instant,
}

struct Inner {
    client_id: String,
    client_secret: String,
    next_user: MockUser,
    tamper: Tamper,
    deny_next: bool,
    github_private_email: bool,
    codes: HashMap<String, Grant>,
    tokens: HashMap<String, (Flow, MockUser)>,
    requests: Requests,
    apple: Option<AppleClient>,
}

/// Sign in with Apple's client: the team, the key id, and the key's public
/// point (base64url x and y).
#[derive(Clone)]
struct AppleClient {
    team_id: String,
    key_id: String,
    x: String,
    y: String,
}

/// A P-256 key for the Apple tests (PKCS#8 PEM, as Apple issues `.p8`
/// files), and its public point.
pub const APPLE_TEST_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgwncRe5nCPaSuEt9/
nfr5skEUGERiNnBWUDRnrdWPui2hRANCAAQQhO3NskctcdXEKnkFUNcire6XAGpk
WGCfcQrWltg7uuGpNmkyTzLw1cRqmQNBogPYIuzC40tY4Td9vzuRDWnw
-----END PRIVATE KEY-----";
const APPLE_TEST_X: &str = "EITtzbJHLXHVxCp5BVDXIq3ulwBqZFhgn3EK1pbYO7o";
const APPLE_TEST_Y: &str = "4ak2aTJPMvDVxGqZA0GiA9gi7MLjS1jhN32_O5ENafA";

struct Shared {
    issuer: String,
    inner: Mutex<Inner>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The provider, on `127.0.0.1` (plain HTTP). Its client starts as
/// `mock-client` / `mock-secret` and its user as [`MockUser::default`].
pub struct MockIdp {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl MockIdp {
    pub async fn start() -> MockIdp {
        // Generating the key takes a while in a debug build: once per test
        // binary, off the runtime's threads.
        tokio::task::spawn_blocking(signing_key)
            .await
            .expect("generate the mock IdP's key");
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the mock IdP");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            issuer: format!("http://{addr}"),
            inner: Mutex::new(Inner {
                client_id: "mock-client".into(),
                client_secret: "mock-secret".into(),
                next_user: MockUser::default(),
                tamper: Tamper::None,
                deny_next: false,
                github_private_email: false,
                codes: HashMap::new(),
                tokens: HashMap::new(),
                requests: Requests::default(),
                apple: None,
            }),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route(
                "/{tenant}/v2.0/.well-known/openid-configuration",
                get(microsoft_discovery),
            )
            .route("/jwks", get(jwks))
            .route("/authorize", get(oidc_authorize))
            .route("/token", post(oidc_token))
            .route("/userinfo", get(userinfo))
            .route("/login/oauth/authorize", get(github_authorize))
            .route("/login/oauth/access_token", post(github_token))
            .route("/api/user", get(github_user))
            .route("/api/user/emails", get(github_emails))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        MockIdp { shared, task }
    }

    /// `http://127.0.0.1:PORT`, no trailing slash; the OIDC endpoints and
    /// GitHub's `/login/oauth/…` are under it.
    pub fn issuer(&self) -> &str {
        &self.shared.issuer
    }

    /// The base of the GitHub-shaped REST API: `{issuer}/api` (so
    /// `/api/user`, `/api/user/emails`).
    pub fn github_api(&self) -> String {
        format!("{}/api", self.shared.issuer)
    }

    /// The client the token endpoints accept (and `client_id` the
    /// authorization endpoints).
    pub fn set_client(&self, client_id: &str, client_secret: &str) {
        let mut inner = self.shared.lock();
        inner.client_id = client_id.to_string();
        inner.client_secret = client_secret.to_string();
    }

    /// Who the following authorization requests sign in (a code carries
    /// the user of its authorization request).
    pub fn set_next_user(&self, user: MockUser) {
        self.shared.lock().next_user = user;
    }

    /// Spoils the next ID token issued.
    pub fn tamper_next(&self, tamper: Tamper) {
        self.shared.lock().tamper = tamper;
    }

    /// The next (valid) authorization request is answered as a user who
    /// declined: a redirect with `error=access_denied` (and the `state`).
    pub fn deny_next(&self) {
        self.shared.lock().deny_next = true;
    }

    /// Whether GitHub's `/api/user` hides the email (`"email": null`); the
    /// primary, verified address is then only in `/api/user/emails`.
    pub fn github_private_email(&self, private: bool) {
        self.shared.lock().github_private_email = private;
    }

    /// Plays Sign in with Apple for `client_id`, whose client secret is a
    /// JWT signed with [`APPLE_TEST_KEY`] (team `team_id`, key `key_id`).
    pub fn play_apple(&self, client_id: &str, team_id: &str, key_id: &str) {
        let mut inner = self.shared.lock();
        inner.client_id = client_id.to_string();
        inner.apple = Some(AppleClient {
            team_id: team_id.to_string(),
            key_id: key_id.to_string(),
            x: APPLE_TEST_X.into(),
            y: APPLE_TEST_Y.into(),
        });
    }

    pub fn requests(&self) -> Requests {
        self.shared.lock().requests.clone()
    }
}

impl Drop for MockIdp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The value of the query parameter `name` of `url` (absolute, or relative
/// like `/callback?code=…`), percent-decoded; the first one when repeated.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let parsed = Url::parse(url)
        .or_else(|_| Url::parse("http://relative.invalid/").and_then(|base| base.join(url)))
        .ok()?;
    parsed
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

// ------------------------------------------------------------------ key --

struct SigningKey {
    encoding: EncodingKey,
    kid: String,
    /// base64url modulus and exponent.
    n: String,
    e: String,
}

fn signing_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048)
            .expect("generate an RSA 2048 key");
        let der = key.to_pkcs1_der().expect("encode the RSA key");
        let n = key.n().to_bytes_be();
        SigningKey {
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            kid: format!("mock-{}", URL_SAFE_NO_PAD.encode(&Sha256::digest(&n)[..9])),
            n: URL_SAFE_NO_PAD.encode(&n),
            e: URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
        }
    })
}

// ------------------------------------------------------------ discovery --

async fn discovery(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let iss = &shared.issuer;
    let apple = shared.lock().apple.is_some();
    let mut document = discovery_document(iss, iss);
    if apple {
        document["token_endpoint_auth_methods_supported"] = json!(["client_secret_post"]);
    }
    Json(document)
}

/// Microsoft's multi-tenant document: the issuer is a template.
async fn microsoft_discovery(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let iss = &shared.issuer;
    Json(discovery_document(&format!("{iss}/{{tenantid}}/v2.0"), iss))
}

fn discovery_document(issuer: &str, iss: &str) -> Value {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{iss}/authorize"),
        "token_endpoint": format!("{iss}/token"),
        "userinfo_endpoint": format!("{iss}/userinfo"),
        "jwks_uri": format!("{iss}/jwks"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "email", "profile"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "nonce", "email", "email_verified", "name"
        ],
    })
}

async fn jwks() -> Json<Value> {
    let key = signing_key();
    Json(json!({"keys": [{
        "kty": "RSA",
        "kid": key.kid,
        "use": "sig",
        "alg": "RS256",
        "n": key.n,
        "e": key.e,
    }]}))
}

// -------------------------------------------------------- authorization --

async fn oidc_authorize(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    authorize(Flow::Oidc, &shared, query)
}

async fn github_authorize(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    authorize(Flow::GitHub, &shared, query)
}

/// Refusals never redirect (the redirect URI may not be trusted yet).
fn authorize(flow: Flow, shared: &Shared, query: HashMap<String, String>) -> Response {
    let mut inner = shared.lock();
    inner.requests.authorize.push(query.clone());
    let param = |name: &str| {
        query
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let refuse = |error: &str, description: &str| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": error, "error_description": description})),
        )
            .into_response()
    };
    if param("client_id") != Some(inner.client_id.as_str()) {
        return refuse("invalid_client", "unknown or missing client_id");
    }
    let Some(redirect_uri) = param("redirect_uri") else {
        return refuse("invalid_request", "missing redirect_uri");
    };
    let Ok(mut location) = Url::parse(redirect_uri) else {
        return refuse("invalid_request", "redirect_uri is not an absolute URL");
    };
    if flow == Flow::Oidc {
        if param("response_type") != Some("code") {
            return refuse("unsupported_response_type", "response_type must be code");
        }
        if !param("scope").is_some_and(|s| s.split(' ').any(|s| s == "openid")) {
            return refuse("invalid_scope", "scope must include openid");
        }
    }
    let Some(challenge) = param("code_challenge") else {
        return refuse(
            "invalid_request",
            "PKCE is required: missing code_challenge",
        );
    };
    if param("code_challenge_method") != Some("S256") {
        return refuse("invalid_request", "code_challenge_method must be S256");
    }
    if challenge.len() != 43 || URL_SAFE_NO_PAD.decode(challenge).is_err() {
        return refuse(
            "invalid_request",
            "code_challenge is not a base64url SHA-256",
        );
    }
    if std::mem::take(&mut inner.deny_next) {
        location
            .query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair("error_description", "The user denied the request");
    } else {
        let code = random_token();
        let grant = Grant {
            flow,
            client_id: inner.client_id.clone(),
            redirect_uri: redirect_uri.to_string(),
            challenge: challenge.to_string(),
            nonce: param("nonce").map(str::to_string),
            scope: param("scope").unwrap_or("").to_string(),
            user: inner.next_user.clone(),
            issued: Instant::now(),
        };
        inner.codes.insert(code.clone(), grant);
        location.query_pairs_mut().append_pair("code", &code);
    }
    if let Some(state) = param("state") {
        location.query_pairs_mut().append_pair("state", state);
    }
    if param("response_mode") == Some("form_post") {
        // The answer's fields, posted to the redirect URI by the browser
        // (Apple adds the user's name, on the first sign-in only).
        let mut fields: Vec<(String, String)> = location.query_pairs().into_owned().collect();
        let user = &inner.next_user;
        let (first, last) = user.name.split_once(' ').unwrap_or((&user.name, ""));
        fields.push((
            "user".into(),
            json!({"name": {"firstName": first, "lastName": last}, "email": user.email})
                .to_string(),
        ));
        location.set_query(None);
        let inputs: String = fields
            .iter()
            .map(|(k, v)| {
                format!(
                    r#"<input type="hidden" name="{k}" value="{}">"#,
                    v.replace('&', "&amp;").replace('"', "&quot;")
                )
            })
            .collect();
        return (
            [(header::CONTENT_TYPE, "text/html")],
            format!(r#"<form method="post" action="{location}">{inputs}</form>"#),
        )
            .into_response();
    }
    (
        StatusCode::FOUND,
        [(header::LOCATION, location.to_string())],
    )
        .into_response()
}

// ---------------------------------------------------------------- token --

/// A failed exchange: the status (for the OIDC endpoint), `error`, and
/// `error_description`.
type Refusal = (StatusCode, &'static str, &'static str);

/// The form `POST /token` (`client_secret_post` or `client_secret_basic`).
/// Failures: 400 `invalid_request`, `unsupported_grant_type` or
/// `invalid_grant`, 401 `invalid_client`.
async fn oidc_token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match exchange(Flow::Oidc, &shared, &headers, &body) {
        Ok((access_token, id_token, scope)) => Json(json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_TTL,
            "id_token": id_token,
            "scope": scope,
        }))
        .into_response(),
        Err((status, error, description)) => (
            status,
            Json(json!({"error": error, "error_description": description})),
        )
            .into_response(),
    }
}

/// GitHub's `POST /login/oauth/access_token`: JSON with
/// `Accept: application/json`, else a form body; failures are 200s with an
/// `error` (`bad_verification_code`, `incorrect_client_credentials`,
/// `redirect_uri_mismatch`, …), as GitHub answers them.
async fn github_token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = match exchange(Flow::GitHub, &shared, &headers, &body) {
        Ok((access_token, _, scope)) => vec![
            ("access_token", access_token),
            ("token_type", "bearer".to_string()),
            ("scope", scope.replace(' ', ",")),
        ],
        Err((_, error, description)) => vec![
            ("error", error.to_string()),
            ("error_description", description.to_string()),
        ],
    };
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    if wants_json {
        let map: serde_json::Map<String, Value> = fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), Value::String(v)))
            .collect();
        Json(Value::Object(map)).into_response()
    } else {
        let mut form = Url::parse("http://form.invalid/").unwrap();
        form.query_pairs_mut().extend_pairs(fields);
        (
            [(header::CONTENT_TYPE, "application/x-www-form-urlencoded")],
            form.query().unwrap_or("").to_string(),
        )
            .into_response()
    }
}

/// Checks an authorization code exchange; the access token, ID token (for
/// OIDC) and scope.
fn exchange(
    flow: Flow,
    shared: &Shared,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(String, Option<String>, String), Refusal> {
    let github = flow == Flow::GitHub;
    let bad_code = if github {
        "bad_verification_code"
    } else {
        "invalid_grant"
    };
    let mut inner = shared.lock();
    inner.requests.token += 1;
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err((
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let form = form_pairs(body);
    let field = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());

    // The client: HTTP Basic (form-encoded id and secret) or the body, not both.
    let basic = basic_credentials(headers);
    let (client_id, client_secret) = match (basic, field("client_secret")) {
        (Some(Err(())), _) => {
            return Err((
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "malformed Basic credentials",
            ));
        }
        (Some(Ok(_)), Some(_)) => {
            return Err((
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "client credentials both in Authorization and in the body",
            ));
        }
        (Some(Ok((id, secret))), None) => {
            if field("client_id").is_some_and(|body_id| body_id != id) {
                return Err((
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "client_id differs from the Basic credentials",
                ));
            }
            (id, secret)
        }
        (None, secret) => (
            field("client_id").unwrap_or("").to_string(),
            secret.unwrap_or("").to_string(),
        ),
    };
    let authenticated = match &inner.apple {
        // Apple: client_secret_post only, the secret a JWT from the team's key.
        Some(apple) => {
            basic_credentials(headers).is_none()
                && client_id == inner.client_id
                && apple_secret_ok(apple, &client_id, &shared.issuer, &client_secret)
        }
        None => client_id == inner.client_id && client_secret == inner.client_secret,
    };
    if !authenticated {
        let error = if github {
            "incorrect_client_credentials"
        } else {
            "invalid_client"
        };
        return Err((
            StatusCode::UNAUTHORIZED,
            error,
            "unknown client or wrong secret",
        ));
    }
    let grant_type = field("grant_type");
    if grant_type != Some("authorization_code") && !(github && grant_type.is_none()) {
        return Err((
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be authorization_code",
        ));
    }

    // The code is spent by any attempt that names it.
    let Some(grant) = field("code").and_then(|code| inner.codes.remove(code)) else {
        return Err((
            StatusCode::BAD_REQUEST,
            bad_code,
            "unknown, used or missing code",
        ));
    };
    if grant.flow != flow || grant.client_id != client_id {
        return Err((
            StatusCode::BAD_REQUEST,
            bad_code,
            "the code was issued elsewhere",
        ));
    }
    if grant.issued.elapsed() > CODE_TTL {
        return Err((StatusCode::BAD_REQUEST, bad_code, "the code has expired"));
    }
    // GitHub lets the client leave redirect_uri out here.
    let redirect_uri = field("redirect_uri");
    if redirect_uri != Some(grant.redirect_uri.as_str()) && !(github && redirect_uri.is_none()) {
        let error = if github {
            "redirect_uri_mismatch"
        } else {
            "invalid_grant"
        };
        return Err((
            StatusCode::BAD_REQUEST,
            error,
            "redirect_uri differs from the authorization request's",
        ));
    }
    let verifier = field("code_verifier").unwrap_or("");
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !well_formed || pkce_challenge(verifier) != grant.challenge {
        return Err((
            StatusCode::BAD_REQUEST,
            bad_code,
            "code_verifier does not match the code_challenge",
        ));
    }

    let access_token = random_token();
    inner
        .tokens
        .insert(access_token.clone(), (flow, grant.user.clone()));
    let id_token = (flow == Flow::Oidc).then(|| {
        let tamper = std::mem::replace(&mut inner.tamper, Tamper::None);
        id_token(&shared.issuer, &grant, tamper)
    });
    Ok((access_token, id_token, grant.scope))
}

fn id_token(issuer: &str, grant: &Grant, tamper: Tamper) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let user = &grant.user;
    let mut claims = json!({
        "iss": issuer,
        "sub": user.sub,
        "aud": grant.client_id,
        "exp": now + ID_TOKEN_TTL,
        "iat": now,
        "auth_time": now,
        "email": user.email,
        "email_verified": user.email_verified,
        "name": user.name,
    });
    if let Some(nonce) = &grant.nonce {
        claims["nonce"] = json!(nonce);
    }
    // Microsoft: the issuer is the user's tenant's.
    if let Some(tid) = user.extra.get("tid").and_then(Value::as_str) {
        claims["iss"] = json!(format!("{issuer}/{tid}/v2.0"));
    }
    if let Value::Object(extra) = &user.extra {
        for (k, v) in extra {
            claims[k] = v.clone();
        }
    }
    match tamper {
        Tamper::None | Tamper::Signature => {}
        Tamper::Nonce => {
            let nonce = grant.nonce.as_deref().unwrap_or("");
            claims["nonce"] = json!(format!("tampered-{nonce}"));
        }
        Tamper::Audience => claims["aud"] = json!("another-client"),
        Tamper::Issuer => claims["iss"] = json!("https://evil.example"),
        Tamper::Expired => {
            claims["exp"] = json!(now - 600);
            claims["iat"] = json!(now - 900);
            claims["auth_time"] = json!(now - 900);
        }
    }
    let key = signing_key();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid.clone());
    let token = jsonwebtoken::encode(&header, &claims, &key.encoding).expect("sign the ID token");
    if tamper != Tamper::Signature {
        return token;
    }
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let mut signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    *signature.last_mut().unwrap() ^= 0x01;
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
}

// ------------------------------------------------------------ resources --

/// `GET /userinfo` with an OIDC access token.
async fn userinfo(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    match bearer_user(&shared, &headers, Flow::Oidc) {
        Some(user) => Json(json!({
            "sub": user.sub,
            "email": user.email,
            "email_verified": user.email_verified,
            "name": user.name,
        }))
        .into_response(),
        None => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, r#"Bearer error="invalid_token""#)],
            Json(json!({"error": "invalid_token"})),
        )
            .into_response(),
    }
}

/// GitHub's `GET /user`.
async fn github_user(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let user = match github_caller(&shared, &headers) {
        Ok(user) => user,
        Err(refusal) => return refusal.into_response(),
    };
    let private = shared.lock().github_private_email;
    let id = user.github_id();
    let login = user.github_login();
    Json(json!({
        "id": id,
        "login": login,
        "node_id": format!("U_mock{id}"),
        "type": "User",
        "html_url": format!("https://github.com/{login}"),
        "name": user.name,
        "email": if private { Value::Null } else { json!(user.email) },
    }))
    .into_response()
}

/// GitHub's `GET /user/emails`: the user's email as the primary one, and
/// the `noreply` address beside it while the email is private.
async fn github_emails(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let user = match github_caller(&shared, &headers) {
        Ok(user) => user,
        Err(refusal) => return refusal.into_response(),
    };
    let private = shared.lock().github_private_email;
    let mut emails = vec![json!({
        "email": user.email,
        "primary": true,
        "verified": user.email_verified,
        "visibility": if private { "private" } else { "public" },
    })];
    if private {
        emails.push(json!({
            "email": format!("{}+{}@users.noreply.github.com", user.github_id(), user.github_login()),
            "primary": false,
            "verified": true,
            "visibility": Value::Null,
        }));
    }
    Json(Value::Array(emails)).into_response()
}

/// The user of a GitHub API call: like GitHub, 403 without a `User-Agent`,
/// 401 without a valid bearer token.
fn github_caller(
    shared: &Shared,
    headers: &HeaderMap,
) -> Result<MockUser, (StatusCode, Json<Value>)> {
    if headers.get(header::USER_AGENT).is_none_or(|v| v.is_empty()) {
        return Err((
            StatusCode::FORBIDDEN,
            Json(json!({
                "message": "Request forbidden by administrative rules. \
                            Please make sure your request has a User-Agent header.",
            })),
        ));
    }
    bearer_user(shared, headers, Flow::GitHub).ok_or_else(|| {
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "Bad credentials", "status": "401"})),
        )
    })
}

fn bearer_user(shared: &Shared, headers: &HeaderMap, flow: Flow) -> Option<MockUser> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    match shared.lock().tokens.get(token.trim()) {
        Some((f, user)) if *f == flow => Some(user.clone()),
        _ => None,
    }
}

// -------------------------------------------------------------- helpers --

/// Whether `secret` is a client secret Apple would accept: ES256 under the
/// team's key, `kid` the key id, `iss` the team, `sub` the client, `aud`
/// the provider, not expired.
fn apple_secret_ok(apple: &AppleClient, client_id: &str, audience: &str, secret: &str) -> bool {
    let Ok(key) = jsonwebtoken::DecodingKey::from_ec_components(&apple.x, &apple.y) else {
        return false;
    };
    let Ok(header) = jsonwebtoken::decode_header(secret) else {
        return false;
    };
    let mut validation = jsonwebtoken::Validation::new(Algorithm::ES256);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[&apple.team_id]);
    validation.sub = Some(client_id.to_string());
    header.kid.as_deref() == Some(apple.key_id.as_str())
        && jsonwebtoken::decode::<Value>(secret, &key, &validation).is_ok()
}

/// base64url(SHA-256(verifier)), RFC 7636's S256.
fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An `application/x-www-form-urlencoded` body as a map (last one wins).
fn form_pairs(body: &[u8]) -> HashMap<String, String> {
    let mut url = Url::parse("http://form.invalid/").unwrap();
    url.set_query(Some(&String::from_utf8_lossy(body)));
    url.query_pairs().into_owned().collect()
}

/// RFC 6749 §2.3.1 Basic credentials (each half form-encoded): `None`
/// without a Basic header, `Err` when it is malformed.
fn basic_credentials(headers: &HeaderMap) -> Option<Result<(String, String), ()>> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decode = |s: &str| -> String {
        let mut url = Url::parse("http://form.invalid/").unwrap();
        url.set_query(Some(&format!("v={s}")));
        url.query_pairs()
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some(
        STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|text| {
                let (id, secret) = text.split_once(':')?;
                Some((decode(id), decode(secret)))
            })
            .ok_or(()),
    )
}
