//! Token transport through a branded auth domain: cookies, their flags,
//! the CSRF matrix, and the production smoke test run verbatim with curl.

use reqwest::header::SET_COOKIE;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

use crate::on_both;
use crate::support::dns::TestDns;
use crate::support::{Project, Store, TestApp, assert_error, send};

on_both!(
    cookie_transport_and_csrf_matrix,
    smoke_test_with_curl,
    no_cross_site_request_sets_session_cookies,
    cors_preflight_and_actual_responses,
);

const HOST: &str = "login.acme.test";
const PW: &str = "correct horse battery staple";

/// A server with a project reachable on `HOST` (verified through DNS).
async fn branded(store: Store, dns: &TestDns) -> Option<(TestApp, Project)> {
    let ns = dns.addr.to_string();
    let app = TestApp::spawn_with(store, &[("IDENTITY_DNS_NAMESERVERS", &ns)]).await?;
    let p = app.create_project("acme").await;
    app.verify_auth_domain(dns, &p.id, HOST).await;
    app.admin(
        Method::PATCH,
        &format!("/v1/projects/{}", p.id),
        Some(json!({"settings": {"allowed_origins": ["https://app.acme.test"]}})),
    )
    .await;
    Some((app, p))
}

struct Cookies {
    at: String,
    rt: String,
    csrf: String,
    raw: Vec<String>,
}

impl Cookies {
    fn header(&self) -> String {
        format!(
            "identity_at={}; identity_rt={}; identity_csrf={}",
            self.at, self.rt, self.csrf
        )
    }
}

async fn send_raw(req: RequestBuilder) -> (StatusCode, Vec<String>, Value) {
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let cookies = resp
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let text = resp.text().await.unwrap();
    (
        status,
        cookies,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

fn parse_cookies(set: &[String]) -> Cookies {
    let value = |name: &str| {
        set.iter()
            .find_map(|c| {
                c.strip_prefix(&format!("{name}="))
                    .map(|rest| rest.split(';').next().unwrap().to_string())
            })
            .unwrap_or_else(|| panic!("no {name} cookie in {set:?}"))
    };
    Cookies {
        at: value("identity_at"),
        rt: value("identity_rt"),
        csrf: value("identity_csrf"),
        raw: set.to_vec(),
    }
}

fn attrs<'a>(set: &'a [String], name: &str) -> &'a str {
    set.iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(String::as_str)
        .unwrap()
}

async fn cookie_transport_and_csrf_matrix(store: Store) {
    let dns = TestDns::start().await;
    let Some((app, p)) = branded(store, &dns).await else {
        return;
    };
    let on_host = |method: Method, path: &str| app.public_req(method, path).header("host", HOST);

    // Register through the auth domain: cookies, no refresh token in the body.
    let (s, set, body) = send_raw(
        on_host(Method::POST, "/v1/auth/register")
            .json(&json!({"email": "c@example.com", "password": PW})),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    assert!(
        body.get("refresh_token").is_none(),
        "cookie transport must not put the refresh token in the body"
    );
    assert!(body["access_token"].is_string());
    let c = parse_cookies(&set);
    let at_attrs = attrs(&c.raw, "identity_at");
    assert!(
        at_attrs.contains("HttpOnly")
            && at_attrs.contains("Path=/;")
            && at_attrs.contains("SameSite=Lax"),
        "{at_attrs}"
    );
    let rt_attrs = attrs(&c.raw, "identity_rt");
    assert!(
        rt_attrs.contains("HttpOnly") && rt_attrs.contains("Path=/v1/auth"),
        "{rt_attrs}"
    );
    let csrf_attrs = attrs(&c.raw, "identity_csrf");
    assert!(
        !csrf_attrs.contains("HttpOnly"),
        "the CSRF cookie must be readable by scripts: {csrf_attrs}"
    );
    assert!(
        !at_attrs.contains("Secure"),
        "dev mode sends cookies without Secure"
    );

    let with_cookies =
        |method: Method, path: &str| on_host(method, path).header("cookie", c.header());
    let (s, me) =
        send(with_cookies(Method::GET, "/v1/auth/session").header("origin", "https://evil.test"))
            .await;
    assert_eq!(s, 200, "reads are not subject to CSRF: {me}");

    let revoke = "/v1/auth/sessions/revoke-all";
    // The matrix: cookie-authenticated mutating requests from a browser.
    for (label, req) in [
        (
            "foreign Origin",
            with_cookies(Method::POST, revoke)
                .header("origin", "https://evil.test")
                .header("x-csrf-token", &c.csrf),
        ),
        (
            "allowed Origin, no header",
            with_cookies(Method::POST, revoke).header("origin", "https://app.acme.test"),
        ),
        (
            "allowed Origin, wrong header",
            with_cookies(Method::POST, revoke)
                .header("origin", "https://app.acme.test")
                .header("x-csrf-token", "nope"),
        ),
        (
            "foreign Referer",
            with_cookies(Method::POST, revoke)
                .header("referer", "https://evil.test/page")
                .header("x-csrf-token", &c.csrf),
        ),
        (
            "cross-site fetch",
            with_cookies(Method::POST, revoke)
                .header("sec-fetch-site", "cross-site")
                .header("x-csrf-token", &c.csrf),
        ),
        (
            "opaque Origin",
            with_cookies(Method::POST, revoke)
                .header("origin", "null")
                .header("x-csrf-token", &c.csrf),
        ),
    ] {
        let got = send(req).await;
        assert_eq!(got.0, 403, "{label}: {}", got.1);
        assert_eq!(got.1["error"]["code"], "csrf_failed", "{label}");
    }
    for (label, req) in [
        (
            "allowed Origin with the token",
            with_cookies(Method::POST, revoke)
                .header("origin", "https://app.acme.test")
                .header("x-csrf-token", &c.csrf),
        ),
        (
            "the auth domain itself",
            with_cookies(Method::POST, revoke)
                .header("origin", format!("http://{HOST}"))
                .header("x-csrf-token", &c.csrf),
        ),
        (
            "allowed Referer",
            with_cookies(Method::POST, revoke)
                .header("referer", "https://app.acme.test/settings?x=1")
                .header("x-csrf-token", &c.csrf),
        ),
        (
            "same-origin fetch",
            with_cookies(Method::POST, revoke)
                .header("sec-fetch-site", "same-origin")
                .header("x-csrf-token", &c.csrf),
        ),
        (
            "curl-style, no browser headers",
            with_cookies(Method::POST, revoke),
        ),
        (
            "bearer with a foreign Origin",
            on_host(Method::POST, revoke)
                .header("origin", "https://evil.test")
                .bearer_auth(&c.at),
        ),
    ] {
        let (s, b) = send(req).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{label}: {b}");
    }

    // Login CSRF: a foreign page cannot sign a visitor in through cookies.
    let login = json!({"email": "c@example.com", "password": PW});
    for origin in ["https://evil.test", "null"] {
        let got = send(
            on_host(Method::POST, "/v1/auth/login")
                .header("origin", origin)
                .json(&login),
        )
        .await;
        assert_error(&got, 403, "csrf_failed");
    }
    let got = send(
        on_host(Method::POST, "/v1/auth/register")
            .header("origin", "https://evil.test")
            .json(&json!({"email": "e@example.com", "password": PW})),
    )
    .await;
    assert_error(&got, 403, "csrf_failed");
    let (s, _) = send(
        on_host(Method::POST, "/v1/auth/login")
            .header("origin", "https://app.acme.test")
            .json(&login),
    )
    .await;
    assert_eq!(s, 200);
    // With bearer transport nothing lands in the browser's jar: no origin rule.
    let (s, _) = send(
        on_host(Method::POST, "/v1/auth/login")
            .header("origin", "https://evil.test")
            .header("x-token-transport", "bearer")
            .json(&login),
    )
    .await;
    assert_eq!(s, 200);

    // Refresh through the cookie: CSRF applies, the refresh cookie rotates,
    // the CSRF cookie stays.
    let got = send(
        on_host(Method::POST, "/v1/auth/refresh")
            .header("cookie", c.header())
            .header("origin", "https://evil.test"),
    )
    .await;
    assert_error(&got, 403, "csrf_failed");
    let (s, set, body) = send_raw(
        on_host(Method::POST, "/v1/auth/refresh")
            .header("cookie", c.header())
            .header("origin", "https://app.acme.test")
            .header("x-csrf-token", &c.csrf),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(body.get("refresh_token").is_none());
    let c2 = parse_cookies(&set);
    assert_ne!(c2.rt, c.rt);
    assert_eq!(c2.csrf, c.csrf);

    // Overrides: bearer on the branded host, cookies with a key.
    let (s, set, body) = send_raw(
        on_host(Method::POST, "/v1/auth/login")
            .header("x-token-transport", "bearer")
            .json(&json!({"email": "c@example.com", "password": PW})),
    )
    .await;
    assert_eq!(s, 200);
    assert!(body["refresh_token"].is_string() && set.is_empty());
    let (s, set, body) = send_raw(
        app.public_req(Method::POST, "/v1/auth/login")
            .header("x-project-key", &p.pk)
            .header("x-token-transport", "cookie")
            .json(&json!({"email": "c@example.com", "password": PW})),
    )
    .await;
    assert_eq!(s, 200);
    assert!(body.get("refresh_token").is_none());
    parse_cookies(&set);
    let (s, set, body) = send_raw(
        app.public_req(Method::POST, "/v1/auth/login")
            .header("x-project-key", &p.pk)
            .json(&json!({"email": "c@example.com", "password": PW})),
    )
    .await;
    assert_eq!(s, 200);
    assert!(
        body["refresh_token"].is_string() && set.is_empty(),
        "keys default to bearer"
    );

    // Logout clears the cookies and revokes the session server-side.
    let (s, set, _) =
        send_raw(on_host(Method::POST, "/v1/auth/logout").header("cookie", c2.header())).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(
        set.iter()
            .any(|c| c.starts_with("identity_at=;") && c.contains("Max-Age=0")),
        "{set:?}"
    );
    let got = send(on_host(Method::GET, "/v1/auth/session").header("cookie", c2.header())).await;
    assert_error(&got, 401, "session_revoked");
    app.stop().await;

    // Outside dev mode the cookies are Secure.
    let Some(prod) = TestApp::spawn_with(store, &[("IDENTITY_DEV_MODE", "false")]).await else {
        return;
    };
    let q = prod.create_project("prod").await;
    let (s, set, _) = send_raw(
        prod.public_req(Method::POST, "/v1/auth/register")
            .header("x-project-key", &q.pk)
            .header("x-token-transport", "cookie")
            .json(&json!({"email": "s@example.com", "password": PW})),
    )
    .await;
    assert_eq!(s, 201);
    for name in ["identity_at", "identity_rt", "identity_csrf"] {
        assert!(
            attrs(&set, name).contains("Secure"),
            "{name} lacks Secure: {set:?}"
        );
    }
    prod.stop().await;
}

/// `ops/smoke-test.sh`, unchanged, with curl against the auth domain.
async fn smoke_test_with_curl(store: Store) {
    let dns = TestDns::start().await;
    let Some((app, _)) = branded(store, &dns).await else {
        return;
    };
    let port = app.public.rsplit(':').next().unwrap().to_string();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/ops/smoke-test.sh");
    let out = tokio::process::Command::new("sh")
        .arg(script)
        .arg(format!("http://{HOST}:{port}"))
        .arg("--resolve")
        .arg(format!("{HOST}:{port}:127.0.0.1"))
        .output()
        .await
        .expect("sh and curl are installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("smoke test passed"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    app.stop().await;
}

/// Login CSRF through refresh, cookie sessions leaking into bodies, and
/// client-chosen CSRF tokens: none of them get through.
async fn no_cross_site_request_sets_session_cookies(store: Store) {
    let dns = TestDns::start().await;
    let Some((app, p)) = branded(store, &dns).await else {
        return;
    };
    // The attacker signs in to an account of their own (bearer, by key)
    // and holds its refresh token.
    let attacker = app.register(&p.pk, "mallory@example.com", PW).await;
    let attacker_rt = attacker["refresh_token"].as_str().unwrap().to_string();

    // A cross-site form post (text/plain, no CSRF header) to the branded
    // host's refresh: refused, and no cookie is set.
    let form = app
        .public_req(Method::POST, "/v1/auth/refresh")
        .header("host", HOST)
        .header("origin", "https://evil.example")
        .header("sec-fetch-site", "cross-site")
        .header("content-type", "text/plain")
        .body(format!("{{\"refresh_token\": \"{attacker_rt}\"}}"));
    let (s, set, b) = send_raw(form).await;
    assert!(set.is_empty(), "cookies set on a cross-site post: {set:?}");
    assert!(s == 403 || s == 415, "{s} {b}");
    // Even as JSON, a foreign origin cannot get session cookies set.
    let (s, set, b) = send_raw(
        app.public_req(Method::POST, "/v1/auth/refresh")
            .header("host", HOST)
            .header("origin", "https://evil.example")
            .json(&json!({"refresh_token": attacker_rt})),
    )
    .await;
    assert_eq!(
        (s.as_u16(), b["error"]["code"].as_str()),
        (403, Some("csrf_failed")),
        "{b}"
    );
    assert!(set.is_empty(), "{set:?}");
    // A non-JSON body is 415 on its own, origin or not.
    let (s, _, b) = send_raw(
        app.public_req(Method::POST, "/v1/auth/refresh")
            .header("host", HOST)
            .header("content-type", "text/plain")
            .body("{}"),
    )
    .await;
    assert_eq!(
        (s.as_u16(), b["error"]["code"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    let (s, _, b) = send_raw(
        app.public_req(Method::POST, "/v1/auth/login")
            .header("host", HOST)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("email=a%40b.c&password=x"),
    )
    .await;
    assert_eq!(
        (s.as_u16(), b["error"]["code"].as_str()),
        (415, Some("unsupported_media_type"))
    );

    // A victim signs in on the branded host, with a CSRF cookie planted
    // beforehand by a sibling subdomain: the server mints its own.
    let (s, set, body) = send_raw(
        app.public_req(Method::POST, "/v1/auth/register")
            .header("host", HOST)
            .header("origin", "https://app.acme.test")
            .header(
                "cookie",
                "identity_csrf=planted-by-attacker-000000000000000000000000",
            )
            .json(&json!({"email": "victim@example.com", "password": PW})),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let c = parse_cookies(&set);
    assert_ne!(c.csrf, "planted-by-attacker-000000000000000000000000");
    assert_eq!(
        body["csrf_token"],
        c.csrf.as_str(),
        "csrf_token in the JSON"
    );
    assert!(body.get("refresh_token").is_none() || body["refresh_token"].is_null());
    // The planted value does not pass the CSRF rule either.
    let (s, _, b) = send_raw(
        app.public_req(Method::POST, "/v1/auth/sessions/revoke-all")
            .header("host", HOST)
            .header("origin", "https://app.acme.test")
            .header(
                "cookie",
                format!(
                    "identity_at={}; identity_csrf=planted-by-attacker-000000000000000000000000",
                    c.at
                ),
            )
            .header(
                "x-csrf-token",
                "planted-by-attacker-000000000000000000000000",
            ),
    )
    .await;
    assert_eq!(
        (s.as_u16(), b["error"]["code"].as_str()),
        (403, Some("csrf_failed"))
    );
    // The session check hands a cookie caller its CSRF token.
    let (s, _, b) = send_raw(
        app.public_req(Method::GET, "/v1/auth/session")
            .header("host", HOST)
            .header("cookie", c.header()),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(b["csrf_token"], c.csrf.as_str());

    // A refresh that read its token from the cookie answers by cookie only,
    // even when asked for bearer.
    let (s, set, b) = send_raw(
        app.public_req(Method::POST, "/v1/auth/refresh")
            .header("host", HOST)
            .header("origin", "https://app.acme.test")
            .header("x-token-transport", "bearer")
            .header("cookie", c.header())
            .header("x-csrf-token", &c.csrf),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert!(
        b.get("refresh_token").is_none(),
        "refresh token in a body: {b}"
    );
    let c2 = parse_cookies(&set);
    assert_ne!(c2.rt, c.rt);
    assert_eq!(c2.csrf, c.csrf, "the CSRF token is stable across refreshes");
    assert_eq!(b["csrf_token"], c.csrf.as_str());
    app.stop().await;
}

/// Whether any `Vary` line of the response names `what`.
fn varies(resp: &reqwest::Response, what: &str) -> bool {
    resp.headers()
        .get_all("vary")
        .iter()
        .any(|v| v.to_str().unwrap_or("").contains(what))
}

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn preflight(app: &TestApp, host: Option<&str>, origin: &str) -> reqwest::Response {
    let mut req = app
        .public_req(Method::OPTIONS, "/v1/auth/login")
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type, x-project-key",
        );
    if let Some(h) = host {
        req = req.header("host", h);
    }
    req.send().await.unwrap()
}

async fn cors_preflight_and_actual_responses(store: Store) {
    let dns = TestDns::start().await;
    let Some((app, p)) = branded(store, &dns).await else {
        return;
    };
    let app_origin = "https://app.acme.test";
    let other = app.create_project("other").await;
    app.admin(
        Method::PATCH,
        &format!("/v1/projects/{}", other.id),
        Some(json!({"settings": {"allowed_origins": ["https://shop.other.test"]}})),
    )
    .await;

    // A preflight to the shared API origin needs no project header.
    let resp = preflight(&app, None, app_origin).await;
    assert_eq!(resp.status(), 204);
    assert_eq!(
        header(&resp, "access-control-allow-origin"),
        Some(app_origin)
    );
    assert_eq!(
        header(&resp, "access-control-allow-credentials"),
        Some("true")
    );
    let allowed_headers = header(&resp, "access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    for h in [
        "content-type",
        "authorization",
        "x-project-key",
        "x-csrf-token",
        "x-token-transport",
    ] {
        assert!(
            allowed_headers.contains(h),
            "{h} missing from {allowed_headers}"
        );
    }
    assert!(
        header(&resp, "access-control-allow-methods")
            .unwrap()
            .contains("POST")
    );
    assert!(header(&resp, "vary").unwrap().contains("Origin"));
    // A foreign origin gets nothing.
    let resp = preflight(&app, None, "https://evil.example").await;
    assert!(header(&resp, "access-control-allow-origin").is_none());
    assert!(header(&resp, "access-control-allow-credentials").is_none());
    // On the branded host, the preflight asks that project only.
    let resp = preflight(&app, Some(HOST), app_origin).await;
    assert_eq!(
        header(&resp, "access-control-allow-origin"),
        Some(app_origin)
    );
    let resp = preflight(&app, Some(HOST), "https://shop.other.test").await;
    assert!(header(&resp, "access-control-allow-origin").is_none());
    let resp = preflight(&app, None, "https://shop.other.test").await;
    assert_eq!(
        header(&resp, "access-control-allow-origin"),
        Some("https://shop.other.test")
    );

    // Actual responses grant only the resolved project's origins.
    let actual = |key: String, origin: &'static str| {
        app.public_req(Method::GET, "/.well-known/jwks.json")
            .header("x-project-key", key)
            .header("origin", origin)
            .send()
    };
    let resp = actual(p.pk.clone(), app_origin).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(&resp, "access-control-allow-origin"),
        Some(app_origin)
    );
    assert_eq!(
        header(&resp, "access-control-allow-credentials"),
        Some("true")
    );
    assert!(varies(&resp, "Origin"));
    let resp = actual(other.pk.clone(), app_origin).await.unwrap();
    assert!(
        header(&resp, "access-control-allow-origin").is_none(),
        "another project's origin"
    );
    let resp = actual(p.pk.clone(), "https://evil.example").await.unwrap();
    assert!(header(&resp, "access-control-allow-origin").is_none());
    // The JWKS is cacheable, one copy per project and origin; everything
    // else is not stored, and varies by origin even when none was sent.
    assert!(varies(&resp, "X-Project-Key") && varies(&resp, "Origin"));
    assert_eq!(header(&resp, "cache-control"), Some("public, max-age=60"));
    let resp = app
        .public_req(Method::POST, "/v1/auth/register")
        .header("x-project-key", &p.pk)
        .json(&json!({"email": "nostore@example.com", "password": "correct horse battery staple"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(header(&resp, "cache-control"), Some("no-store"));
    assert!(varies(&resp, "Origin"));
    // Errors of the resolved project are readable by its app too.
    let resp = app
        .public_req(Method::POST, "/v1/auth/login")
        .header("x-project-key", &p.pk)
        .header("origin", app_origin)
        .json(&json!({"email": "nobody@example.com", "password": "wrong wrong"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        header(&resp, "access-control-allow-origin"),
        Some(app_origin)
    );
    // A change of allowed_origins takes effect at once.
    app.admin(
        Method::PATCH,
        &format!("/v1/projects/{}", other.id),
        Some(json!({"settings": {"allowed_origins": []}})),
    )
    .await;
    let resp = preflight(&app, None, "https://shop.other.test").await;
    assert!(header(&resp, "access-control-allow-origin").is_none());
    app.stop().await;

    // Outside dev mode, http:// origins are never granted.
    let Some(prod) = TestApp::spawn_with(store, &[("IDENTITY_DEV_MODE", "false")]).await else {
        return;
    };
    let q = prod.create_project("plain").await;
    prod.admin(
        Method::PATCH,
        &format!("/v1/projects/{}", q.id),
        Some(json!({"settings": {"allowed_origins": ["http://insecure.test", "https://secure.test"]}})),
    )
    .await;
    let resp = preflight(&prod, None, "http://insecure.test").await;
    assert!(header(&resp, "access-control-allow-origin").is_none());
    let resp = preflight(&prod, None, "https://secure.test").await;
    assert_eq!(
        header(&resp, "access-control-allow-origin"),
        Some("https://secure.test")
    );
    prod.stop().await;
}
