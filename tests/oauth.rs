//! OAuth and OpenID Connect: the per-project provider configuration of the
//! control plane, on both backends (the sign-in flows come next).

use reqwest::Method;
use serde_json::{Value, json};

use identity_data_plane::oauth::provider::{
    GithubEndpoints, OauthClients, ProviderConfig, ProviderUser,
};

use crate::on_both;
use crate::support::oidc::{MockIdp, MockUser, Tamper, query_param};
use crate::support::{Project, Store, TestApp, assert_error};

on_both!(provider_configuration, sign_in_with_an_openid_provider);

const APPLE_KEY: &str = crate::support::oidc::APPLE_TEST_KEY;

async fn provider_configuration(store: Store) {
    let Some(app) = TestApp::spawn(store).await else {
        return;
    };
    let p = app.create_project("oauth").await;
    let other = app.create_project("other").await;
    let base = format!("/v1/projects/{}/oauth-providers", p.id);
    let put = |provider: &str, body: Value| {
        let (app, path) = (&app, format!("{base}/{provider}"));
        async move { app.admin(Method::PUT, &path, Some(body)).await }
    };
    let (s, b) = put(
        "google",
        json!({"client_id": "g-client", "client_secret": "g-secret-value"}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["provider"]["provider"], "google");
    assert_eq!(b["provider"]["has_client_secret"], true);
    assert_eq!(b["provider"]["enabled"], true);
    assert_eq!(
        b["provider"]["scopes"],
        json!(["openid", "email", "profile"])
    );
    assert!(!b.to_string().contains("g-secret-value"), "{b}");
    // Updating without a secret keeps it.
    let (s, b) = put(
        "google",
        json!({"client_id": "g-client-2", "enabled": false}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["provider"]["client_id"], "g-client-2");
    assert_eq!(b["provider"]["has_client_secret"], true);
    assert_eq!(b["provider"]["enabled"], false);
    // GitHub with endpoints (a local mock in dev mode), Apple with its key,
    // any OpenID provider by issuer.
    let (s, b) = put(
        "github",
        json!({"client_id": "gh", "client_secret": "gh-secret", "endpoints": {
            "authorize": "http://127.0.0.1:9/login/oauth/authorize",
            "token": "http://127.0.0.1:9/login/oauth/access_token",
            "api": "http://127.0.0.1:9/api"}}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["provider"]["scopes"], json!(["read:user", "user:email"]));
    assert_eq!(
        b["provider"]["endpoints"]["token"],
        "http://127.0.0.1:9/login/oauth/access_token"
    );
    let (s, b) = put(
        "apple",
        json!({"client_id": "com.example.web", "apple": {"team_id": "ABCDE12345", "key_id": "KEY1234567", "private_key": APPLE_KEY}}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(
        b["provider"]["apple"],
        json!({"team_id": "ABCDE12345", "key_id": "KEY1234567"})
    );
    assert!(!b.to_string().contains("MIGTAgEA"), "{b}");
    let (s, b) = put(
        "oidc:acme-sso",
        json!({"client_id": "acme", "client_secret": "acme-secret", "issuer": "https://sso.acme.test/"}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["provider"]["issuer"], "https://sso.acme.test");

    let (s, list) = app.admin(Method::GET, &base, None).await;
    assert_eq!(s, 200);
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["provider"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["apple", "github", "google", "oidc:acme-sso"]);
    let text = list.to_string();
    for secret in ["g-secret-value", "gh-secret", "acme-secret", "MIGTAgEA"] {
        assert!(!text.contains(secret), "{secret} shown: {text}");
    }
    // Sealed at rest.
    let mut tx = app.db().control().await.unwrap();
    let stored: Vec<(Option<String>, Option<String>)> = tx
        .fetch_all(
            sea_query::Query::select()
                .columns([
                    identity_shared::schema::OauthProviders::ClientSecretSealed,
                    identity_shared::schema::OauthProviders::AppleSealed,
                ])
                .from(identity_shared::schema::OauthProviders::Table),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let stored = format!("{stored:?}");
    for secret in ["g-secret-value", "gh-secret", "acme-secret", "MIGTAgEA"] {
        assert!(!stored.contains(secret), "{secret} stored in the clear");
    }

    // Refusals.
    assert_error(
        &put("facebook", json!({"client_id": "x", "client_secret": "y"})).await,
        404,
        "unknown_provider",
    );
    assert_error(
        &put(
            "oidc:Bad_Name",
            json!({"client_id": "x", "client_secret": "y"}),
        )
        .await,
        404,
        "unknown_provider",
    );
    for (provider, body) in [
        (
            "oidc:nohost",
            json!({"client_id": "x", "client_secret": "y"}),
        ),
        (
            "oidc:plain",
            json!({"client_id": "x", "client_secret": "y", "issuer": "http://sso.example.com"}),
        ),
        (
            "oidc:address",
            json!({"client_id": "x", "client_secret": "y", "issuer": "https://10.0.0.1"}),
        ),
        (
            "oidc:query",
            json!({"client_id": "x", "client_secret": "y", "issuer": "https://sso.example.com/?a=b"}),
        ),
        (
            "oidc:scopes",
            json!({"client_id": "x", "client_secret": "y", "issuer": "https://sso.example.com", "scopes": ["email"]}),
        ),
        ("microsoft", json!({"client_id": "x"})),
        (
            "github",
            json!({"client_id": "x", "client_secret": "y", "issuer": "https://github.com"}),
        ),
        (
            "google",
            json!({"client_id": "x", "client_secret": "y", "endpoints": {"token": "https://x.test/t"}}),
        ),
        (
            "apple",
            json!({"client_id": "x", "apple": {"team_id": "short", "key_id": "KEY1234567", "private_key": APPLE_KEY}}),
        ),
        (
            "apple",
            json!({"client_id": "x", "apple": {"team_id": "ABCDE12345", "key_id": "KEY1234567", "private_key": "not a key"}}),
        ),
        (
            // The shape of a PEM, but no P-256 key inside.
            "apple",
            json!({"client_id": "x", "apple": {"team_id": "ABCDE12345", "key_id": "KEY1234567", "private_key": "-----BEGIN PRIVATE KEY-----\nMIGTAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBHkwdwIBAQQg\n-----END PRIVATE KEY-----"}}),
        ),
        ("microsoft", json!({"client_id": "", "client_secret": "y"})),
        (
            "microsoft",
            json!({"client_id": "x", "client_secret": "y", "scopes": []}),
        ),
    ] {
        let got = put(provider, body.clone()).await;
        assert_error(&got, 422, "invalid_provider");
    }
    assert_eq!(put("google", json!({"client_id": 5})).await.0, 400);
    assert_eq!(
        put("google", json!({"client_id": "x", "nope": 1})).await.0,
        400
    );
    // Another project sees none of them; delete works once.
    let (_, theirs) = app
        .admin(
            Method::GET,
            &format!("/v1/projects/{}/oauth-providers", other.id),
            None,
        )
        .await;
    assert_eq!(theirs["items"], json!([]));
    // Apple without its key (nothing stored to keep) is refused.
    assert_error(
        &app.admin(
            Method::PUT,
            &format!("/v1/projects/{}/oauth-providers/apple", other.id),
            Some(json!({"client_id": "x"})),
        )
        .await,
        422,
        "invalid_provider",
    );
    let (s, _) = app
        .admin(Method::DELETE, &format!("{base}/github"), None)
        .await;
    assert_eq!(s, 204);
    assert_error(
        &app.admin(Method::DELETE, &format!("{base}/github"), None)
            .await,
        404,
        "not_found",
    );
    assert_error(
        &app.admin(Method::GET, "/v1/projects/prj_nope/oauth-providers", None)
            .await,
        404,
        "not_found",
    );
    app.stop().await;
}

const CALLBACK: &str = "http://127.0.0.1:1/v1/auth/oauth/test/callback";

/// One authorization round trip as a browser makes it: the authorization
/// URL, the provider's redirect back (its code and state), the exchange.
async fn round_trip(
    clients: &OauthClients,
    cfg: &ProviderConfig,
    nonce: &str,
    verifier_override: Option<&str>,
) -> Result<ProviderUser, (&'static str, String)> {
    let started = clients
        .start(cfg, CALLBACK, "state-123", nonce)
        .await
        .map_err(|e| (e.code(), e.to_string()))?;
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = browser.get(&started.url).send().await.unwrap();
    assert_eq!(resp.status(), 302, "{}", started.url);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(CALLBACK), "{location}");
    assert_eq!(
        query_param(&location, "state").as_deref(),
        Some("state-123")
    );
    let code = query_param(&location, "code").expect("a code");
    let verifier = verifier_override.unwrap_or(&started.pkce_verifier);
    clients
        .finish(cfg, CALLBACK, &code, verifier, nonce)
        .await
        .map_err(|e| (e.code(), e.to_string()))
}

/// The provider side of sign-in against a real OpenID provider on
/// loopback: discovery, PKCE (S256), the code exchange and every check of
/// the ID token; GitHub's plain OAuth 2 with a private primary email.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_round_trips_and_id_token_checks() {
    let idp = MockIdp::start().await;
    idp.set_client("rp-client", "rp-secret");
    let clients = OauthClients::new(true).unwrap();
    let cfg = ProviderConfig {
        provider: "oidc:mock".into(),
        client_id: "rp-client".into(),
        client_secret: Some("rp-secret".into()),
        apple: None,
        tenant_id: None,
        scopes: vec!["openid".into(), "email".into(), "profile".into()],
        issuer: Some(idp.issuer().to_string()),
        github: None,
    };
    idp.set_next_user(MockUser {
        sub: "sub-42".into(),
        email: "Ada@Example.com".into(),
        email_verified: true,
        name: "Ada".into(),
        extra: json!({}),
    });
    let user = round_trip(&clients, &cfg, "nonce-1", None).await.unwrap();
    assert_eq!(
        user,
        ProviderUser {
            subject: "sub-42".into(),
            email: Some("Ada@Example.com".into()),
            email_verified: true,
            name: Some("Ada".into()),
            issuer: Some(idp.issuer().to_string()),
        }
    );
    let asked = idp.requests().authorize.last().cloned().unwrap();
    assert_eq!(
        asked.get("code_challenge_method").map(String::as_str),
        Some("S256")
    );
    assert_eq!(asked.get("nonce").map(String::as_str), Some("nonce-1"));
    assert!(asked.get("scope").unwrap().contains("openid"));
    // Every defect of the ID token is refused.
    for tamper in [
        Tamper::Nonce,
        Tamper::Audience,
        Tamper::Issuer,
        Tamper::Signature,
        Tamper::Expired,
    ] {
        idp.tamper_next(tamper);
        let got = round_trip(&clients, &cfg, "nonce-2", None).await;
        assert_eq!(
            got.as_ref().map_err(|e| e.0),
            Err("invalid_id_token"),
            "{tamper:?}: {got:?}"
        );
    }
    // A wrong PKCE verifier: the provider refuses the code.
    let got = round_trip(&clients, &cfg, "nonce-3", Some("x".repeat(43).as_str())).await;
    assert_eq!(got.map_err(|e| e.0), Err("code_exchange_failed"));
    // A wrong client secret likewise; an unreachable issuer is a provider failure.
    let wrong = ProviderConfig {
        client_secret: Some("nope".into()),
        ..cfg.clone()
    };
    assert_eq!(
        round_trip(&clients, &wrong, "n", None)
            .await
            .map_err(|e| e.0),
        Err("code_exchange_failed")
    );
    let gone = ProviderConfig {
        issuer: Some("http://127.0.0.1:9".into()),
        ..cfg.clone()
    };
    assert_eq!(
        clients
            .start(&gone, CALLBACK, "s", "n")
            .await
            .err()
            .map(|e| e.code()),
        Some("provider_unavailable")
    );
    // Outside dev mode, loopback providers are unreachable (SSRF).
    let strict = OauthClients::new(false).unwrap();
    let local = ProviderConfig {
        issuer: Some(format!(
            "http://localhost:{}",
            idp.issuer().rsplit(':').next().unwrap()
        )),
        ..cfg.clone()
    };
    assert_eq!(
        strict
            .start(&local, CALLBACK, "s", "n")
            .await
            .err()
            .map(|e| e.code()),
        Some("provider_unavailable")
    );
    let literal = ProviderConfig {
        issuer: Some("https://127.0.0.1:9".into()),
        ..cfg.clone()
    };
    assert_eq!(
        strict
            .start(&literal, CALLBACK, "s", "n")
            .await
            .err()
            .map(|e| e.code()),
        Some("provider_unavailable"),
        "an address instead of a name is refused outside dev mode"
    );

    // GitHub: plain OAuth 2, the primary verified address from /user/emails.
    idp.github_private_email(true);
    idp.set_next_user(MockUser {
        sub: "583231".into(),
        email: "octo@example.com".into(),
        email_verified: true,
        name: "Octo Cat".into(),
        extra: json!({"login": "octocat"}),
    });
    let gh = ProviderConfig {
        provider: "github".into(),
        client_id: "rp-client".into(),
        client_secret: Some("rp-secret".into()),
        apple: None,
        tenant_id: None,
        scopes: vec!["read:user".into(), "user:email".into()],
        issuer: None,
        github: Some(GithubEndpoints {
            authorize: format!("{}/login/oauth/authorize", idp.issuer()),
            token: format!("{}/login/oauth/access_token", idp.issuer()),
            api: idp.github_api(),
        }),
    };
    let user = round_trip(&clients, &gh, "unused", None).await.unwrap();
    assert_eq!(user.subject, "583231");
    assert_eq!(user.email.as_deref(), Some("octo@example.com"));
    assert!(user.email_verified);
    assert_eq!(user.name.as_deref(), Some("Octo Cat"));
}

const APP: &str = "https://app.example.com/after-sign-in";

/// A browser going through the flow: start (with the project's publishable
/// key), the provider (which consents at once), the callback with the
/// browser's binding cookie (or `cookie` instead); returns where the
/// callback sent the browser.
pub(crate) async fn browse(
    app: &TestApp,
    pk: &str,
    provider: &str,
    redirect_to: &str,
    cookie: Option<&str>,
) -> (String, String) {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = browser
        .get(format!("{}/v1/auth/oauth/{provider}/start", app.public))
        .query(&[("project_key", pk), ("redirect_to", redirect_to)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302, "start: {:?}", resp.text().await);
    let binding = resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert!(binding.starts_with("identity_oauth_"), "{binding}");
    let at_provider = resp.headers()["location"].to_str().unwrap().to_string();
    let resp = browser.get(&at_provider).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let back = resp.headers()["location"].to_str().unwrap().to_string();
    // The provider sends the browser to the public base URL; this test's
    // server listens elsewhere.
    let path = &back[back.find("/v1/auth/oauth/").unwrap()..];
    let resp = browser
        .get(format!("{}{path}", app.public))
        .header("cookie", cookie.unwrap_or(&binding))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302, "callback: {:?}", resp.text().await);
    (
        resp.headers()["location"].to_str().unwrap().to_string(),
        format!("{}{path}", app.public),
    )
}

/// Lets `project` send browsers back to `https://app.example.com` (without
/// the per-IP email limit the flows share), and signs in with `idp` as
/// `oidc:mock` (client `rp-client`).
pub(crate) async fn oauth_project(app: &TestApp, project: &Project, idp: Option<&MockIdp>) {
    let (s, b) = app
        .admin(
            Method::PATCH,
            &format!("/v1/projects/{}", project.id),
            Some(json!({"settings": {"allowed_origins": ["https://app.example.com"], "rate_limits": {"email_per_minute": 0}}})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    if let Some(idp) = idp {
        let (s, b) = app
            .admin(
                Method::PUT,
                &format!("/v1/projects/{}/oauth-providers/oidc:mock", project.id),
                Some(json!({"client_id": "rp-client", "client_secret": "rp-secret", "issuer": idp.issuer()})),
            )
            .await;
        assert_eq!(s, 201, "{b}");
    }
}

pub(crate) async fn exchange(
    app: &TestApp,
    pk: &str,
    location: &str,
) -> (reqwest::StatusCode, Value) {
    let code = query_param(location, "code").unwrap_or_else(|| panic!("no code in {location}"));
    app.post_with_key("/v1/auth/oauth/exchange", pk, json!({"code": code}))
        .await
}

/// The whole sign-in against a real OpenID provider on loopback, on both
/// backends: new account, the same account the next time, every way the
/// state can be wrong, a bad ID token, the linking rules, the one-time code.
async fn sign_in_with_an_openid_provider(store: Store) {
    let idp = MockIdp::start().await;
    idp.set_client("rp-client", "rp-secret");
    let Some(app) = TestApp::spawn(store).await else {
        return;
    };
    let p = app.create_project("oauth-flow").await;
    let other = app.create_project("other").await;
    oauth_project(&app, &p, Some(&idp)).await;
    oauth_project(&app, &other, None).await;
    idp.set_next_user(MockUser {
        sub: "s-1".into(),
        email: "Ada@Example.com".into(),
        email_verified: true,
        name: "Ada".into(),
        extra: json!({}),
    });

    // A new account, verified by the provider's word.
    let (location, callback) = browse(&app, &p.pk, "oidc:mock", APP, None).await;
    assert!(location.starts_with(APP), "{location}");
    assert!(!location.contains("token"), "no token in a URL: {location}");
    // The exchange sets session cookies on cookie transport: a cross-site
    // form post (or a foreign or null Origin) sets none and spends nothing.
    let code = query_param(&location, "code").unwrap();
    for (content_type, origin) in [
        ("text/plain", "https://evil.test"),
        ("application/json", "https://evil.test"),
        ("text/plain", "null"),
    ] {
        let resp = app
            .public_req(Method::POST, "/v1/auth/oauth/exchange")
            .header("x-project-key", &p.pk)
            .header("x-token-transport", "cookie")
            .header("origin", origin)
            .header("content-type", content_type)
            .body(json!({"code": code}).to_string())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        assert!(
            (400..500).contains(&status),
            "{content_type} {origin}: {status}"
        );
        assert!(resp.headers().get("set-cookie").is_none(), "cookies set");
    }
    let (s, first) = exchange(&app, &p.pk, &location).await;
    assert_eq!(s, 200, "{first}");
    assert_eq!(first["user"]["email"], "Ada@Example.com");
    assert_eq!(first["user"]["email_verified"], true);
    assert_eq!(first["session"]["amr"], json!(["oauth"]));
    // The code works once, and only in its project.
    assert_error(&exchange(&app, &p.pk, &location).await, 400, "invalid_code");
    // The same callback again (a replayed state): refused.
    let replay = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = replay.get(&callback).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"]["code"],
        "invalid_state"
    );
    // The same subject next time: the same account.
    idp.set_next_user(MockUser {
        sub: "s-1".into(),
        email: "ada.new@example.com".into(),
        email_verified: true,
        name: "Ada".into(),
        extra: json!({}),
    });
    let (location, _) = browse(&app, &p.pk, "oidc:mock", APP, None).await;
    let (s, again) = exchange(&app, &p.pk, &location).await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(again["user"]["id"], first["user"]["id"]);
    let (location, _) = browse(&app, &p.pk, "oidc:mock", APP, None).await;
    assert_error(
        &exchange(&app, &other.pk, &location).await,
        400,
        "invalid_code",
    );

    // Another browser's callback (no binding cookie): sent back with an error.
    let (location, _) = browse(
        &app,
        &p.pk,
        "oidc:mock",
        APP,
        Some("identity_oauth_0123456789abcdef=someone-else"),
    )
    .await;
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("state_mismatch"),
        "{location}"
    );
    assert!(query_param(&location, "code").is_none());
    // A bad ID token.
    idp.tamper_next(Tamper::Nonce);
    let (location, _) = browse(&app, &p.pk, "oidc:mock", APP, None).await;
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("invalid_id_token")
    );

    // Linking: an unverified account with the address is not taken over.
    app.register(&p.pk, "grace@example.com", "correct horse battery staple")
        .await;
    idp.set_next_user(MockUser {
        sub: "s-2".into(),
        email: "grace@example.com".into(),
        email_verified: true,
        name: "Grace".into(),
        extra: json!({}),
    });
    let (location, _) = browse(&app, &p.pk, "oidc:mock", APP, None).await;
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("account_exists")
    );
    // A verified account and a verified address: linked.
    let (s, made) = app
        .post_with_key("/v1/users", &p.sk, json!({"email": "linus@example.com", "password": "correct horse battery staple", "email_verified": true}))
        .await;
    assert_eq!(s, 201, "{made}");
    idp.set_next_user(MockUser {
        sub: "s-3".into(),
        email: "linus@example.com".into(),
        email_verified: true,
        name: "Linus".into(),
        extra: json!({}),
    });
    let (location, _) = browse(&app, &p.pk, "oidc:mock", APP, None).await;
    let (s, linked) = exchange(&app, &p.pk, &location).await;
    assert_eq!(s, 200, "{linked}");
    assert_eq!(linked["user"]["id"], made["user"]["id"]);
    // With a second factor, the provider is only the first: a challenge.
    let at = linked["access_token"].as_str().unwrap().to_string();
    let (s, e) = app
        .authed(Method::POST, "/v1/auth/mfa/totp/enroll", &p.pk, &at, None)
        .await;
    assert_eq!(s, 200, "{e}");
    let secret =
        identity_data_plane::mfa::totp::from_base32(e["secret"].as_str().unwrap()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (s, c) = app
        .authed(
            Method::POST,
            "/v1/auth/mfa/totp/confirm",
            &p.pk,
            &at,
            Some(json!({"code": identity_data_plane::mfa::totp::code_at(&secret, now)})),
        )
        .await;
    assert_eq!(s, 200, "{c}");
    idp.set_next_user(MockUser {
        sub: "s-3".into(),
        email: "linus@example.com".into(),
        email_verified: true,
        name: "Linus".into(),
        extra: json!({}),
    });
    let (location, _) = browse(&app, &p.pk, "oidc:mock", APP, None).await;
    let (s, challenged) = exchange(&app, &p.pk, &location).await;
    assert_eq!(s, 200, "{challenged}");
    assert_eq!(challenged["mfa_required"], true, "{challenged}");
    assert!(challenged["access_token"].is_null());
    // An address the provider does not vouch for makes no account.
    idp.set_next_user(MockUser {
        sub: "s-4".into(),
        email: "unsure@example.com".into(),
        email_verified: false,
        name: "U".into(),
        extra: json!({}),
    });
    let (location, _) = browse(&app, &p.pk, "oidc:mock", APP, None).await;
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("email_not_verified")
    );

    // Identities: listed, and unlinked with step-up unless it is the last
    // way in (no password, no passkey, no other provider, no proven
    // address for a code or link).
    let ada = first["access_token"].as_str().unwrap().to_string();
    let (s, list) = app
        .authed(Method::GET, "/v1/auth/identities", &p.pk, &ada, None)
        .await;
    assert_eq!(s, 200, "{list}");
    let items = list["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["provider"], "oidc:mock");
    assert_eq!(items[0]["provider_user_id"], "s-1");
    let identity = items[0]["id"].as_str().unwrap().to_string();
    let set_verified = |verified: bool| {
        let (app, id) = (&app, first["user"]["id"].as_str().unwrap().to_string());
        async move {
            let mut tx = app.db().control().await.unwrap();
            tx.execute(
                sea_query::Query::update()
                    .table(identity_shared::schema::Users::Table)
                    .value(identity_shared::schema::Users::EmailVerified, verified)
                    .and_where(sea_query::ExprTrait::eq(
                        sea_query::Expr::col(identity_shared::schema::Users::Id),
                        id,
                    )),
            )
            .await
            .unwrap();
            tx.commit().await.unwrap();
        }
    };
    set_verified(false).await;
    let path = format!("/v1/auth/identities/{identity}");
    assert_error(
        &app.authed(Method::DELETE, &path, &p.pk, &ada, None).await,
        409,
        "last_credential",
    );
    set_verified(true).await;
    let (s, _) = app.authed(Method::DELETE, &path, &p.pk, &ada, None).await;
    assert_eq!(s, 204);
    let (_, list) = app
        .authed(Method::GET, "/v1/auth/identities", &p.pk, &ada, None)
        .await;
    assert_eq!(list["items"], json!([]));
    assert_error(
        &app.authed(Method::DELETE, &path, &p.pk, &ada, None).await,
        404,
        "not_found",
    );

    // Refused at the start: a foreign redirect, an unknown provider, a secret key.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let start = |provider: &str, key: &str, redirect_to: &str| {
        browser
            .get(format!("{}/v1/auth/oauth/{provider}/start", app.public))
            .query(&[("project_key", key), ("redirect_to", redirect_to)])
            .send()
    };
    let resp = start("oidc:mock", &p.pk, "https://evil.example.net/")
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"]["code"],
        "invalid_redirect"
    );
    let resp = start("oidc:nope", &p.pk, APP).await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"]["code"],
        "unknown_provider"
    );
    let resp = start("oidc:mock", &p.sk, APP).await.unwrap();
    assert_eq!(resp.status(), 403);
    // Malformed callbacks: a clear 4xx, never a 5xx.
    for query in [
        "",
        "?state=",
        "?state=prj_nope.x",
        "?state=..&code=1",
        &format!("?state={}.x&code=y", p.id),
    ] {
        let resp = browser
            .get(format!(
                "{}/v1/auth/oauth/oidc:mock/callback{query}",
                app.public
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{query}");
    }
    let resp = browser
        .post(format!("{}/v1/auth/oauth/oidc:mock/callback", app.public))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("state=%zz")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    app.stop().await;
}
