//! OAuth, continued: Microsoft's multi-tenant issuer and Sign in with Apple
//! at the provider level; linking with a link token, the app's own PKCE on
//! the one-time code, sign-ins started in two tabs, `redirect_to` with a
//! query and a fragment, cookie transport on a branded domain; enterprise
//! SSO per tenant (routing, domain rules, membership, enforcement).

use reqwest::Method;
use reqwest::header::SET_COOKIE;
use serde_json::{Value, json};

use identity_data_plane::oauth::provider::{OauthClients, ProviderConfig};
use identity_shared::apple::AppleKey;

use crate::oauth::{browse, exchange, oauth_project};
use crate::on_both;
use crate::support::dns::TestDns;
use crate::support::oidc::{APPLE_TEST_KEY, MockIdp, MockUser, query_param};
use crate::support::{Store, TestApp, age_step_up, assert_error};

on_both!(
    github_and_every_bad_id_token_through_the_flow,
    linking_pkce_tabs_and_cookie_transport,
    enterprise_sso_per_tenant
);

const APP: &str = "https://app.example.com/after-sign-in";
const PW: &str = "correct horse battery staple";
const CALLBACK: &str = "http://127.0.0.1:1/v1/auth/oauth/x/callback";
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const OTHER_TENANT: &str = "0b9d7e2a-4f1c-4d3b-9a8e-112233445566";
const CONSUMERS: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

fn user(sub: &str, email: &str, verified: bool, extra: Value) -> MockUser {
    MockUser {
        sub: sub.into(),
        email: email.into(),
        email_verified: verified,
        name: "Ada Lovelace".into(),
        extra,
    }
}

fn oidc_config(provider: &str, issuer: String) -> ProviderConfig {
    ProviderConfig {
        provider: provider.into(),
        client_id: "rp-client".into(),
        client_secret: Some("rp-secret".into()),
        apple: None,
        tenant_id: None,
        scopes: vec!["openid".into(), "email".into(), "profile".into()],
        issuer: Some(issuer),
        github: None,
    }
}

/// The provider's answer to the browser: the callback URL's parameters,
/// from a redirect or (Apple's `form_post`) from the auto-posting form.
async fn consent(url: &str) -> Vec<(String, String)> {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = browser.get(url).send().await.unwrap();
    if resp.status() == 302 {
        let location = resp.headers()["location"].to_str().unwrap().to_string();
        return reqwest::Url::parse(&location)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect();
    }
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    html.split("<input ")
        .skip(1)
        .map(|input| {
            let attr = |name: &str| {
                let start = input.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
                let end = start + input[start..].find('"').unwrap();
                input[start..end]
                    .replace("&quot;", "\"")
                    .replace("&amp;", "&")
            };
            (attr("name"), attr("value"))
        })
        .collect()
}

async fn round_trip(
    clients: &OauthClients,
    cfg: &ProviderConfig,
) -> Result<identity_data_plane::oauth::provider::ProviderUser, &'static str> {
    let started = clients
        .start(cfg, CALLBACK, "state-1", "nonce-1")
        .await
        .map_err(|e| e.code())?;
    let answer = consent(&started.url).await;
    let code = answer
        .iter()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.clone())
        .expect("a code");
    clients
        .finish(cfg, CALLBACK, &code, &started.pkce_verifier, "nonce-1")
        .await
        .map_err(|e| e.code())
}

/// Microsoft's template issuer, judged against each token's tenant, and its
/// addresses trusted only when proven; Apple's signed client secret and
/// form post.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn microsoft_tenants_and_apple_secrets() {
    let idp = MockIdp::start().await;
    idp.set_client("rp-client", "rp-secret");
    let clients = OauthClients::new(true).unwrap();
    let common = oidc_config("microsoft", format!("{}/common/v2.0", idp.issuer()));
    idp.set_next_user(user(
        "ms-1",
        "ada@contoso.test",
        true,
        json!({"tid": TENANT}),
    ));
    let got = round_trip(&clients, &common).await.unwrap();
    assert_eq!(
        got.issuer.as_deref(),
        Some(format!("{}/{TENANT}/v2.0", idp.issuer()).as_str())
    );
    assert!(
        !got.email_verified,
        "a work account's address is not proven by Microsoft's word alone"
    );
    idp.set_next_user(user(
        "ms-1",
        "ada@contoso.test",
        true,
        json!({"tid": TENANT, "xms_edov": true}),
    ));
    assert!(round_trip(&clients, &common).await.unwrap().email_verified);
    idp.set_next_user(user(
        "ms-2",
        "ada@outlook.test",
        true,
        json!({"tid": CONSUMERS}),
    ));
    assert!(round_trip(&clients, &common).await.unwrap().email_verified);
    // The issuer of one tenant on a token of another: refused.
    let forged = format!("{}/{OTHER_TENANT}/v2.0", idp.issuer());
    idp.set_next_user(user(
        "ms-3",
        "eve@contoso.test",
        true,
        json!({"tid": TENANT, "iss": forged}),
    ));
    assert_eq!(
        round_trip(&clients, &common).await.err(),
        Some("invalid_id_token")
    );
    // The configured issuer limits the tenants: organizations only.
    let orgs = oidc_config("microsoft", format!("{}/organizations/v2.0", idp.issuer()));
    idp.set_next_user(user(
        "ms-2",
        "ada@outlook.test",
        true,
        json!({"tid": CONSUMERS}),
    ));
    assert_eq!(
        round_trip(&clients, &orgs).await.err(),
        Some("invalid_id_token")
    );
    let single = oidc_config("microsoft", format!("{}/{TENANT}/v2.0", idp.issuer()));
    idp.set_next_user(user(
        "ms-4",
        "bob@contoso.test",
        true,
        json!({"tid": OTHER_TENANT}),
    ));
    assert_eq!(
        round_trip(&clients, &single).await.err(),
        Some("invalid_id_token")
    );
    // Only `microsoft` reads the template: another provider with the same
    // document cannot match its tokens.
    let other = oidc_config("oidc:ms", format!("{}/common/v2.0", idp.issuer()));
    idp.set_next_user(user(
        "ms-1",
        "ada@contoso.test",
        true,
        json!({"tid": TENANT}),
    ));
    assert_eq!(
        round_trip(&clients, &other).await.err(),
        Some("invalid_id_token")
    );

    // A provider whose answer is too large is read no further than 1 MB.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let big = format!("http://{}", listener.local_addr().unwrap());
    let padding = "x".repeat(2 * 1024 * 1024);
    let huge = axum::Router::new().route(
        "/.well-known/openid-configuration",
        axum::routing::get(move || {
            let padding = padding.clone();
            async move { format!("{{\"issuer\": \"{padding}\"}}") }
        }),
    );
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, huge).await;
    });
    let err = clients
        .start(&oidc_config("oidc:big", big), CALLBACK, "s", "n")
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), "provider_unavailable");
    assert!(err.to_string().contains("larger than"), "{err}");
    server.abort();

    // Apple: the secret is an ES256 JWT from the team's key, posted in the
    // body; the answer comes back as a form post.
    let apple_idp = MockIdp::start().await;
    apple_idp.play_apple("com.example.web", "ABCDE12345", "KEY1234567");
    let key = AppleKey {
        team_id: "ABCDE12345".into(),
        key_id: "KEY1234567".into(),
        private_key: APPLE_TEST_KEY.into(),
    };
    let apple = ProviderConfig {
        provider: "apple".into(),
        client_id: "com.example.web".into(),
        client_secret: None,
        apple: Some(key.clone()),
        tenant_id: None,
        scopes: vec!["name".into(), "email".into()],
        issuer: Some(apple_idp.issuer().to_string()),
        github: None,
    };
    apple_idp.set_next_user(user(
        "001234.apple",
        "x7@privaterelay.appleid.test",
        true,
        json!({"email_verified": "true", "is_private_email": "true"}),
    ));
    let got = round_trip(&clients, &apple).await.unwrap();
    assert_eq!(got.subject, "001234.apple");
    assert!(got.email_verified, "Apple's string boolean is read");
    let asked = apple_idp.requests().authorize.last().cloned().unwrap();
    assert_eq!(
        asked.get("response_mode").map(String::as_str),
        Some("form_post")
    );
    // A key of another team: the provider refuses the secret.
    let wrong_team = ProviderConfig {
        apple: Some(AppleKey {
            team_id: "ZZZZZ99999".into(),
            ..key
        }),
        ..apple.clone()
    };
    assert_eq!(
        round_trip(&clients, &wrong_team).await.err(),
        Some("code_exchange_failed")
    );
}

/// GitHub (a GitHub-shaped API on loopback) with a private primary address,
/// and every defect of an ID token, through the whole flow.
async fn github_and_every_bad_id_token_through_the_flow(store: Store) {
    use crate::support::oidc::Tamper;
    let idp = MockIdp::start().await;
    idp.set_client("rp-client", "rp-secret");
    let Some(app) = TestApp::spawn(store).await else {
        return;
    };
    let p = app.create_project("github").await;
    oauth_project(&app, &p, Some(&idp)).await;
    let (s, b) = app
        .admin(
            Method::PUT,
            &format!("/v1/projects/{}/oauth-providers/github", p.id),
            Some(
                json!({"client_id": "rp-client", "client_secret": "rp-secret", "endpoints": {
                "authorize": format!("{}/login/oauth/authorize", idp.issuer()),
                "token": format!("{}/login/oauth/access_token", idp.issuer()),
                "api": idp.github_api()}}),
            ),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    idp.github_private_email(true);
    idp.set_next_user(user(
        "583231",
        "octo@example.com",
        true,
        json!({"login": "octocat"}),
    ));
    let (location, _) = browse(&app, &p.pk, "github", APP, None).await;
    let (s, octo) = exchange(&app, &p.pk, &location).await;
    assert_eq!(s, 200, "{octo}");
    assert_eq!(octo["user"]["email"], "octo@example.com");
    assert_eq!(octo["user"]["email_verified"], true);
    let at = octo["access_token"].as_str().unwrap();
    let (_, list) = app
        .authed(Method::GET, "/v1/auth/identities", &p.pk, at, None)
        .await;
    assert_eq!(list["items"][0]["provider"], "github");
    assert_eq!(list["items"][0]["provider_user_id"], "583231");
    // No verified primary address at GitHub: no account.
    idp.set_next_user(user("583232", "ghost@example.com", false, json!({})));
    let (location, _) = browse(&app, &p.pk, "github", APP, None).await;
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("provider_identity_missing")
    );
    for tamper in [
        Tamper::Nonce,
        Tamper::Audience,
        Tamper::Issuer,
        Tamper::Signature,
        Tamper::Expired,
    ] {
        idp.set_next_user(user("s-9", "tam@example.com", true, json!({})));
        idp.tamper_next(tamper);
        let (location, _) = browse(&app, &p.pk, "oidc:mock", APP, None).await;
        assert_eq!(
            query_param(&location, "error").as_deref(),
            Some("invalid_id_token"),
            "{tamper:?}"
        );
        assert!(query_param(&location, "code").is_none());
    }
    // The user declined at the provider.
    idp.deny_next();
    let (location, _) = browse(&app, &p.pk, "oidc:mock", APP, None).await;
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("access_denied")
    );
    let (_, events) = app
        .get_with_key("/v1/audit-events?type=oauth.failed", &p.sk)
        .await;
    let reasons: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["data"]["reason"].as_str())
        .collect();
    assert!(reasons.contains(&"invalid_id_token"), "{events}");
    assert!(reasons.contains(&"access_denied"), "{events}");
    app.stop().await;
}

/// Linking with a link token (and what it refuses), a user with a second
/// factor never linked by address, the app's PKCE on the one-time code,
/// two tabs, `redirect_to` with its own query, and cookie transport on a
/// branded domain.
async fn linking_pkce_tabs_and_cookie_transport(store: Store) {
    let idp = MockIdp::start().await;
    idp.set_client("rp-client", "rp-secret");
    let dns = TestDns::start().await;
    let ns = dns.addr.to_string();
    let Some(app) = TestApp::spawn_with(store, &[("IDENTITY_DNS_NAMESERVERS", &ns)]).await else {
        return;
    };
    let p = app.create_project("oauth-links").await;
    oauth_project(&app, &p, Some(&idp)).await;
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let start = |query: Vec<(&'static str, String)>| {
        let mut q = vec![("project_key", p.pk.clone()), ("redirect_to", APP.into())];
        q.extend(query);
        browser
            .get(format!("{}/v1/auth/oauth/oidc:mock/start", app.public))
            .query(&q)
            .send()
    };

    // A signed-in user links a provider whose address is not theirs.
    let signed = app.register(&p.pk, "grace@example.com", PW).await;
    let grace = signed["access_token"].as_str().unwrap().to_string();
    let (s, t) = app
        .authed(
            Method::POST,
            "/v1/auth/oauth/link-token",
            &p.pk,
            &grace,
            None,
        )
        .await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["expires_in"], 60);
    let link_token = t["link_token"].as_str().unwrap().to_string();
    idp.set_next_user(user("g-1", "grace.h@elsewhere.test", false, json!({})));
    let resp = start(vec![
        ("link", "true".into()),
        ("link_token", link_token.clone()),
    ])
    .await
    .unwrap();
    assert_eq!(resp.status(), 302);
    let location = follow(&browser, &app, resp).await;
    assert!(query_param(&location, "code").is_none());
    let link_code = query_param(&location, "link_code").expect(&location);
    // Nothing is linked until the user who asked confirms, signed in.
    let (_, list) = app
        .authed(Method::GET, "/v1/auth/identities", &p.pk, &grace, None)
        .await;
    assert_eq!(list["items"], json!([]), "{list}");
    let confirm = |token: &str, code: &str| {
        let (app, pk, token) = (&app, p.pk.clone(), token.to_string());
        let body = json!({"link_code": code});
        async move {
            app.authed(
                Method::POST,
                "/v1/auth/oauth/link/confirm",
                &pk,
                &token,
                Some(body),
            )
            .await
        }
    };
    let (s, b) = confirm(&grace, &link_code).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["identity"]["provider"], "oidc:mock");
    assert_eq!(b["identity"]["provider_user_id"], "g-1");
    assert_error(&confirm(&grace, &link_code).await, 400, "invalid_code");
    let (_, list) = app
        .authed(Method::GET, "/v1/auth/identities", &p.pk, &grace, None)
        .await;
    assert_eq!(list["items"][0]["provider_user_id"], "g-1", "{list}");
    // The account's address is told (a link its owner did not make is how
    // a takeover would persist).
    let (_, messages) = app.get_with_key("/v1/messages", &p.sk).await;
    let notices: Vec<&Value> = messages["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "identity_linked")
        .collect();
    assert_eq!(notices.len(), 1, "{messages}");
    assert_eq!(notices[0]["to"], "g•••@example.com", "{messages}");
    // The token works once; link=true needs one.
    assert_error(
        &send_status(start(vec![("link", "true".into()), ("link_token", link_token)]).await).await,
        400,
        "invalid_link_token",
    );
    assert_error(
        &send_status(start(vec![("link", "true".into())]).await).await,
        400,
        "invalid_request",
    );
    // Without step-up, no link token.
    age_step_up(&app).await;
    assert_error(
        &app.authed(
            Method::POST,
            "/v1/auth/oauth/link-token",
            &p.pk,
            &grace,
            None,
        )
        .await,
        403,
        "step_up_required",
    );
    // Another user cannot take over a linked subject.
    let signed = app.register(&p.pk, "mallory@example.com", PW).await;
    let mallory = signed["access_token"].as_str().unwrap().to_string();
    // A link flow started with `token`'s link token, through a browser
    // signed in at the provider as `subject`: the callback's link code.
    let link_code = |token: String, subject: &'static str, email: &'static str| {
        let (app, pk, idp, browser, start) = (&app, p.pk.clone(), &idp, &browser, &start);
        async move {
            let (_, t) = app
                .authed(Method::POST, "/v1/auth/oauth/link-token", &pk, &token, None)
                .await;
            idp.set_next_user(user(subject, email, true, json!({})));
            let resp = start(vec![
                ("link", "true".into()),
                ("link_token", t["link_token"].as_str().unwrap().into()),
            ])
            .await
            .unwrap();
            let location = follow(browser, app, resp).await;
            query_param(&location, "link_code").expect(&location)
        }
    };
    let code = link_code(mallory.clone(), "g-1", "grace.h@elsewhere.test").await;
    assert_error(&confirm(&mallory, &code).await, 409, "identity_conflict");
    // Link CSRF: Mallory's link token, sent through a victim's browser
    // that is signed in at the provider as Victor. Victor's app gets the
    // code; confirming it as Victor is refused and links nothing, and
    // Mallory never sees the code.
    let signed = app.register(&p.pk, "victor@example.com", PW).await;
    let victor = signed["access_token"].as_str().unwrap().to_string();
    let code = link_code(mallory.clone(), "v-1", "victor@example.com").await;
    assert_error(&confirm(&victor, &code).await, 403, "link_user_mismatch");
    assert_error(&confirm(&mallory, &code).await, 400, "invalid_code");
    for token in [&mallory, &victor] {
        let (_, list) = app
            .authed(Method::GET, "/v1/auth/identities", &p.pk, token, None)
            .await;
        assert_eq!(list["items"], json!([]), "{list}");
    }

    // A verified account with a second factor is not linked by address:
    // its owner signs in with the factor and links.
    let (s, made) = app
        .post_with_key(
            "/v1/users",
            &p.sk,
            json!({"email": "tess@example.com", "password": PW, "email_verified": true}),
        )
        .await;
    assert_eq!(s, 201, "{made}");
    let (_, login) = app.login(&p.pk, "tess@example.com", PW).await;
    let tess = login["access_token"].as_str().unwrap().to_string();
    let (_, e) = app
        .authed(Method::POST, "/v1/auth/mfa/totp/enroll", &p.pk, &tess, None)
        .await;
    let secret =
        identity_data_plane::mfa::totp::from_base32(e["secret"].as_str().unwrap()).unwrap();
    let now = identity_shared::time::now_ms() as u64 / 1000;
    let (s, c) = app
        .authed(
            Method::POST,
            "/v1/auth/mfa/totp/confirm",
            &p.pk,
            &tess,
            Some(json!({"code": identity_data_plane::mfa::totp::code_at(&secret, now)})),
        )
        .await;
    assert_eq!(s, 200, "{c}");
    idp.set_next_user(user("t-1", "tess@example.com", true, json!({})));
    let (location, _) = browse(&app, &p.pk, "oidc:mock", APP, None).await;
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("account_exists")
    );
    // Linked on the address as written: a full-width letter finds the
    // account (one canonical mailbox) but may be another mailbox at the
    // provider's mail server.
    let (s, made) = app
        .post_with_key(
            "/v1/users",
            &p.sk,
            json!({"email": "zoe@example.com", "password": PW, "email_verified": true}),
        )
        .await;
    assert_eq!(s, 201, "{made}");
    idp.set_next_user(user("z-1", "\u{ff5a}oe@example.com", true, json!({})));
    let (location, _) = browse(&app, &p.pk, "oidc:mock", APP, None).await;
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("account_exists")
    );
    idp.set_next_user(user("z-2", "ZOE@Example.com", true, json!({})));
    let (location, _) = browse(&app, &p.pk, "oidc:mock", APP, None).await;
    let (s, zoe) = exchange(&app, &p.pk, &location).await;
    assert_eq!(s, 200, "{zoe}");
    assert_eq!(zoe["user"]["id"], made["user"]["id"]);

    // The app's PKCE: the code is exchanged only with the verifier.
    let verifier = "app-verifier-0123456789-0123456789-0123456789";
    let challenge = {
        use base64::Engine;
        use sha2::Digest;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()))
    };
    idp.set_next_user(user("n-1", "nia@example.com", true, json!({})));
    let resp = start(vec![("code_challenge", challenge.clone())])
        .await
        .unwrap();
    let location = follow(&browser, &app, resp).await;
    let code = query_param(&location, "code").unwrap();
    assert_error(
        &app.post_with_key("/v1/auth/oauth/exchange", &p.pk, json!({"code": code}))
            .await,
        400,
        "invalid_code_verifier",
    );
    // Spent by the failed attempt.
    assert_error(
        &app.post_with_key(
            "/v1/auth/oauth/exchange",
            &p.pk,
            json!({"code": code, "code_verifier": verifier}),
        )
        .await,
        400,
        "invalid_code",
    );
    idp.set_next_user(user("n-1", "nia@example.com", true, json!({})));
    let resp = start(vec![
        ("code_challenge", challenge.clone()),
        ("code_challenge_method", "S256".into()),
    ])
    .await
    .unwrap();
    let location = follow(&browser, &app, resp).await;
    let (s, b) = app
        .post_with_key(
            "/v1/auth/oauth/exchange",
            &p.pk,
            json!({"code": query_param(&location, "code").unwrap(), "code_verifier": verifier}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["user"]["email"], "nia@example.com");
    for bad in [
        vec![("code_challenge", "short".to_string())],
        vec![
            ("code_challenge", challenge.clone()),
            ("code_challenge_method", "plain".into()),
        ],
    ] {
        assert_error(&send_status(start(bad).await).await, 400, "invalid_request");
    }

    // Two sign-ins started in two tabs: each has its own binding cookie.
    let first = start(vec![]).await.unwrap();
    let second = start(vec![]).await.unwrap();
    let cookie_of = |resp: &reqwest::Response| {
        resp.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string()
    };
    let both = format!("{}; {}", cookie_of(&first), cookie_of(&second));
    assert_ne!(cookie_of(&first), cookie_of(&second));
    for resp in [first, second] {
        let at_provider = resp.headers()["location"].to_str().unwrap().to_string();
        let back = browser.get(&at_provider).send().await.unwrap();
        let back = back.headers()["location"].to_str().unwrap().to_string();
        let path = &back[back.find("/v1/auth/oauth/").unwrap()..];
        let resp = browser
            .get(format!("{}{path}", app.public))
            .header("cookie", &both)
            .send()
            .await
            .unwrap();
        let location = resp.headers()["location"].to_str().unwrap();
        assert!(query_param(location, "code").is_some(), "{location}");
    }

    // redirect_to with a query of its own and a fragment: the code joins
    // the query (replacing one of the same name), before the fragment.
    idp.set_next_user(user("n-1", "nia@example.com", true, json!({})));
    let (location, _) = browse(
        &app,
        &p.pk,
        "oidc:mock",
        "https://app.example.com/cb?code=planted&x=1#section",
        None,
    )
    .await;
    assert!(location.ends_with("#section"), "{location}");
    assert!(location.contains("x=1"), "{location}");
    let code = query_param(&location, "code").unwrap();
    assert_ne!(code, "planted");
    assert_eq!(location.matches("code=").count(), 1, "{location}");
    assert_eq!(exchange(&app, &p.pk, &location).await.0, 200);

    // Cookie transport on a branded domain: the callback signs in with
    // cookies, and no code travels.
    let host = "login.links.test";
    app.verify_auth_domain(&dns, &p.id, host).await;
    idp.set_next_user(user("n-1", "nia@example.com", true, json!({})));
    let resp = browser
        .get(format!("{}/v1/auth/oauth/oidc:mock/start", app.public))
        .header("host", host)
        .query(&[("redirect_to", APP)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let binding = cookie_of(&resp);
    let at_provider = resp.headers()["location"].to_str().unwrap().to_string();
    let back = browser.get(&at_provider).send().await.unwrap();
    let back = back.headers()["location"].to_str().unwrap().to_string();
    assert!(
        back.starts_with(&format!("http://{host}/v1/auth/oauth/oidc:mock/callback")),
        "the callback is on the branded origin: {back}"
    );
    let path = &back[back.find("/v1/auth/oauth/").unwrap()..];
    let resp = browser
        .get(format!("{}{path}", app.public))
        .header("host", host)
        .header("cookie", &binding)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(resp.headers()["location"], APP);
    let set: Vec<String> = resp
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let value = |name: &str| {
        set.iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(|c| c.split(';').next().unwrap().to_string())
            .unwrap_or_else(|| panic!("no {name} in {set:?}"))
    };
    let session = app
        .public_req(Method::GET, "/v1/auth/session")
        .header("host", host)
        .header("cookie", value("identity_at"))
        .send()
        .await
        .unwrap();
    assert_eq!(session.status(), 200);
    let session: Value = session.json().await.unwrap();
    assert_eq!(session["user"]["email"], "nia@example.com", "{session}");
    app.stop().await;
}

/// Enterprise SSO: a tenant's OpenID connection, routed by the verified
/// domain, vouching only for that domain, making its users members, and
/// enforced over password and email sign-in.
async fn enterprise_sso_per_tenant(store: Store) {
    let idp = MockIdp::start().await;
    idp.set_client("acme-client", "acme-secret");
    let dns = TestDns::start().await;
    let ns = dns.addr.to_string();
    let Some(app) = TestApp::spawn_with(store, &[("IDENTITY_DNS_NAMESERVERS", &ns)]).await else {
        return;
    };
    let p = app.create_project("sso").await;
    oauth_project(&app, &p, None).await;
    let tenants = format!("/v1/projects/{}/tenants", p.id);
    let (_, t) = app
        .admin(Method::POST, &tenants, Some(json!({"name": "Acme"})))
        .await;
    let tid = t["tenant"]["id"].as_str().unwrap().to_string();
    app.tenant_domain(&dns, &p.id, &tid, "acme.test", true)
        .await;
    // A password account at the domain, made before SSO.
    app.register(&p.pk, "carol@acme.test", PW).await;

    let sso = format!("{tenants}/{tid}/sso");
    assert_error(
        &app.admin(Method::PUT, &sso, Some(json!({"issuer": idp.issuer(), "client_id": "acme-client", "client_secret": "acme-secret", "protocol": "saml"}))).await,
        422,
        "invalid_provider",
    );
    assert_error(
        &app.admin(
            Method::PUT,
            &format!("{tenants}/ten_missing/sso"),
            Some(json!({"issuer": idp.issuer(), "client_id": "c", "client_secret": "s"})),
        )
        .await,
        404,
        "not_found",
    );
    let (s, b) = app
        .admin(Method::PUT, &sso, Some(json!({"issuer": idp.issuer(), "client_id": "acme-client", "client_secret": "acme-secret"})))
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["sso"]["has_client_secret"], true);
    assert_eq!(b["sso"]["enforce"], false);
    assert_eq!(b["sso"]["protocol"], "oidc");
    assert!(!b.to_string().contains("acme-secret"));
    let (s, b) = app.admin(Method::GET, &sso, None).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["sso"]["tenant_id"], tid.as_str());
    // Not one of the project's own providers.
    let (_, list) = app
        .admin(
            Method::GET,
            &format!("/v1/projects/{}/oauth-providers", p.id),
            None,
        )
        .await;
    assert_eq!(list["items"], json!([]), "{list}");

    // Routing by the address's domain.
    let (s, r) = app
        .post_with_key(
            "/v1/auth/sso/start",
            &p.pk,
            json!({"email": "Bob@ACME.test", "redirect_to": APP}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let url = r["redirect_url"].as_str().unwrap();
    assert!(
        url.contains(&format!("/v1/auth/oauth/sso:{tid}/start")),
        "{url}"
    );
    assert_eq!(
        query_param(url, "project_key").as_deref(),
        Some(p.pk.as_str())
    );
    assert_eq!(query_param(url, "redirect_to").as_deref(), Some(APP));
    assert_error(
        &app.post_with_key(
            "/v1/auth/sso/start",
            &p.pk,
            json!({"email": "bob@elsewhere.test"}),
        )
        .await,
        404,
        "sso_not_configured",
    );
    assert_error(
        &app.post_with_key(
            "/v1/auth/sso/start",
            &p.sk,
            json!({"email": "bob@acme.test"}),
        )
        .await,
        403,
        "publishable_key_required",
    );
    assert_error(
        &app.post_with_key(
            "/v1/auth/sso/start",
            &p.pk,
            json!({"email": "bob@acme.test", "redirect_to": "https://evil.test/"}),
        )
        .await,
        400,
        "invalid_redirect",
    );

    // The tenant's IdP signs Bob in (it need not assert the address
    // verified: the tenant proved the domain), and Bob joins Acme.
    let provider = format!("sso:{tid}");
    idp.set_next_user(user("acme-bob", "bob@acme.test", false, json!({})));
    let (location, _) = browse(&app, &p.pk, &provider, APP, None).await;
    let (s, bob) = exchange(&app, &p.pk, &location).await;
    assert_eq!(s, 200, "{bob}");
    assert_eq!(bob["user"]["email_verified"], true);
    let bob_id = bob["user"]["id"].as_str().unwrap().to_string();
    let (_, events) = app
        .get_with_key(
            &format!("/v1/audit-events?type=membership.created&user_id={bob_id}"),
            &p.sk,
        )
        .await;
    let items = events["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{events}");
    assert_eq!(items[0]["data"]["tenant_id"], tid.as_str());
    // The IdP cannot vouch for an address outside the tenant's domains.
    idp.set_next_user(user("acme-eve", "victim@example.com", true, json!({})));
    let (location, _) = browse(&app, &p.pk, &provider, APP, None).await;
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("sso_domain_mismatch")
    );
    // Bob also signs in with the project's own provider (the same IdP
    // here): his address, verified, links it to his account.
    let (s, b) = app
        .admin(
            Method::PUT,
            &format!("/v1/projects/{}/oauth-providers/oidc:mock", p.id),
            Some(json!({"client_id": "acme-client", "client_secret": "acme-secret", "issuer": idp.issuer()})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    idp.set_next_user(user("mock-bob", "bob@acme.test", true, json!({})));
    let (location, _) = browse(&app, &p.pk, "oidc:mock", APP, None).await;
    let (s, b) = exchange(&app, &p.pk, &location).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["user"]["id"], bob_id.as_str());
    // An unproven account at the domain is not taken over.
    idp.set_next_user(user("acme-carol", "carol@acme.test", true, json!({})));
    let (location, _) = browse(&app, &p.pk, &provider, APP, None).await;
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("account_exists")
    );

    // Enforced: password and email sign-in for the domain are refused.
    let (s, b) = app
        .admin(
            Method::PUT,
            &sso,
            Some(json!({"issuer": idp.issuer(), "client_id": "acme-client", "enforce": true})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["sso"]["enforce"], true);
    assert_error(
        &app.login(&p.pk, "carol@acme.test", PW).await,
        403,
        "sso_required",
    );
    assert_error(
        &app.post_with_key(
            "/v1/auth/register",
            &p.pk,
            json!({"email": "dave@acme.test", "password": PW}),
        )
        .await,
        403,
        "sso_required",
    );
    assert_error(
        &app.post_with_key(
            "/v1/auth/email-otp/request",
            &p.pk,
            json!({"email": "carol@acme.test"}),
        )
        .await,
        403,
        "sso_required",
    );
    // Nor does another provider speak for the domain: not for a new
    // subject with an address there, not for a subject already linked to
    // an account there (whatever address it now asserts).
    for (subject, email) in [
        ("mock-dave", "dave@acme.test"),
        ("mock-bob", "bob@personal.test"),
    ] {
        idp.set_next_user(user(subject, email, true, json!({})));
        let (location, _) = browse(&app, &p.pk, "oidc:mock", APP, None).await;
        assert_eq!(
            query_param(&location, "error").as_deref(),
            Some("sso_required"),
            "{subject}"
        );
    }
    // Other domains are untouched; SSO itself still signs in.
    app.register(&p.pk, "erin@example.com", PW).await;
    assert_eq!(app.login(&p.pk, "erin@example.com", PW).await.0, 200);
    idp.set_next_user(user("acme-bob", "bob@acme.test", false, json!({})));
    let (location, _) = browse(&app, &p.pk, &provider, APP, None).await;
    assert_eq!(exchange(&app, &p.pk, &location).await.0, 200);
    // Removed: passwords work again.
    let (s, _) = app.admin(Method::DELETE, &sso, None).await;
    assert_eq!(s, 204);
    assert_eq!(app.login(&p.pk, "carol@acme.test", PW).await.0, 200);
    assert_error(&app.admin(Method::GET, &sso, None).await, 404, "not_found");
    app.stop().await;
}

/// Follows a `start` response through the provider to the callback (with
/// the binding cookie `start` set); where the callback sends the browser.
async fn follow(browser: &reqwest::Client, app: &TestApp, start: reqwest::Response) -> String {
    assert_eq!(start.status(), 302, "start");
    let binding = start.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let at_provider = start.headers()["location"].to_str().unwrap().to_string();
    let back = browser.get(&at_provider).send().await.unwrap();
    let back = back.headers()["location"].to_str().unwrap().to_string();
    let path = &back[back.find("/v1/auth/oauth/").unwrap()..];
    let resp = browser
        .get(format!("{}{path}", app.public))
        .header("cookie", binding)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    resp.headers()["location"].to_str().unwrap().to_string()
}

async fn send_status(
    resp: Result<reqwest::Response, reqwest::Error>,
) -> (reqwest::StatusCode, Value) {
    let resp = resp.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}
