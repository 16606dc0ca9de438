//! A real browser as the client: headless Chromium (Debian's package) loads
//! a page from one origin that signs up, checks the session, refreshes and
//! signs out against the service on another origin, in both transports.
//! The page's results come back in the DOM Chromium prints.
//!
//! Skipped when Chromium is not installed, unless
//! `IDENTITY_TEST_REQUIRE_BROWSER=1` (CI sets it).

use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::on_both;
use crate::support::dns::TestDns;
use crate::support::{Store, TestApp};

on_both!(cross_origin_app_in_a_real_browser);

const AUTH_HOST: &str = "auth.example.test";

pub fn chromium() -> Option<String> {
    if let Ok(bin) = std::env::var("CHROMIUM") {
        return Some(bin);
    }
    [
        "/usr/lib/chromium/chromium",
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
    ]
    .iter()
    .find(|p| std::path::Path::new(p).exists())
    .map(|p| p.to_string())
}

/// Serves `page` for every request on a loopback port; returns the port.
async fn serve_page(page: String) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    serve(listener, page);
    port
}

/// Serves `page` on loopback port `port`.
pub async fn serve_page_on(port: u16, page: String) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    serve(listener, page);
}

fn serve(listener: tokio::net::TcpListener, page: String) {
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let page = page.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut read = 0;
                while !buf[..read].windows(4).any(|w| w == b"\r\n\r\n") && read < buf.len() {
                    match stream.read(&mut buf[read..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => read += n,
                    }
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                    page.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
}

/// Loads `url` in headless Chromium and returns the JSON the page wrote
/// after `RESULT:` in its body. Every name under `example.test` resolves to
/// loopback; nothing else resolves.
async fn run_page(bin: &str, url: &str) -> Value {
    static RUN: AtomicU32 = AtomicU32::new(0);
    let profile = std::env::temp_dir().join(format!(
        "identity-chromium-{}-{}",
        std::process::id(),
        RUN.fetch_add(1, Ordering::Relaxed)
    ));
    let child = tokio::process::Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--no-first-run",
            "--disable-gpu",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--log-level=3",
            "--host-resolver-rules=MAP *.example.test 127.0.0.1, MAP * ~NOTFOUND",
            "--virtual-time-budget=30000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromium starts");
    // A fetch that never completes would hang the browser: bound it.
    let out = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .expect("chromium finished within 90 s")
        .unwrap();
    let _ = std::fs::remove_dir_all(&profile);
    let dom = String::from_utf8_lossy(&out.stdout);
    let json = dom
        .split("<body>RESULT:")
        .nth(1)
        .and_then(|s| s.split("</body>").next())
        .unwrap_or_else(|| panic!("the page wrote no result: {dom}"));
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

/// The app: one flow in cookie transport against the branded auth domain,
/// one in bearer transport against the shared API origin with the
/// publishable key. Each step records status, body and whether the browser
/// let the page read the response at all.
const PAGE: &str = r#"<!doctype html><meta charset=utf-8><script>
const AUTH = "http://auth.example.test:__PORT__";
const API = "http://api.example.test:__PORT__";
const PK = "__PK__";
async function step(base, path, opts) {
  try {
    const r = await fetch(base + path, {credentials: 'include', ...opts});
    const text = await r.text();
    let body = null; try { body = JSON.parse(text); } catch (e) {}
    return {status: r.status, body};
  } catch (e) { return {blocked: String(e)}; }
}
const json = (o, headers) => ({method: 'POST', headers: {'Content-Type': 'application/json', ...(headers || {})}, body: JSON.stringify(o)});
(async () => {
  const res = {origin: location.origin};
  if (location.hostname.startsWith('evil')) {
    res.login = await step(AUTH, '/v1/auth/login', json({email: 'c@example.com', password: 'correct horse battery staple'}));
    res.session = await step(AUTH, '/v1/auth/session', {});
  } else {
    // Cookie transport (the auth domain's default).
    const c = res.cookie = {};
    c.register = await step(AUTH, '/v1/auth/register', json({email: 'c@example.com', password: 'correct horse battery staple'}));
    const csrf = c.register.body && c.register.body.csrf_token;
    c.session = await step(AUTH, '/v1/auth/session', {});
    c.refresh_without_csrf = await step(AUTH, '/v1/auth/refresh', {method: 'POST'});
    c.refresh = await step(AUTH, '/v1/auth/refresh', {method: 'POST', headers: {'X-CSRF-Token': csrf}});
    c.session_after_refresh = await step(AUTH, '/v1/auth/session', {});
    c.logout = await step(AUTH, '/v1/auth/logout', {method: 'POST', headers: {'X-CSRF-Token': csrf}});
    c.session_after_logout = await step(AUTH, '/v1/auth/session', {});
    c.document_cookie = document.cookie;
    // Bearer transport (key-identified requests' default).
    const b = res.bearer = {};
    const key = {'X-Project-Key': PK};
    b.register = await step(API, '/v1/auth/register', json({email: 'b@example.com', password: 'correct horse battery staple'}, key));
    const at = b.register.body && b.register.body.access_token;
    const rt = b.register.body && b.register.body.refresh_token;
    b.session = await step(API, '/v1/auth/session', {headers: {...key, 'Authorization': 'Bearer ' + at}});
    b.refresh = await step(API, '/v1/auth/refresh', json({refresh_token: rt}, key));
    const at2 = b.refresh.body && b.refresh.body.access_token;
    b.logout = await step(API, '/v1/auth/logout', {method: 'POST', headers: {...key, 'Authorization': 'Bearer ' + at2}});
    b.session_after_logout = await step(API, '/v1/auth/session', {headers: {...key, 'Authorization': 'Bearer ' + at2}});
  }
  const out = JSON.stringify(res).replace(/[^\x20-\x7e]|[<>&]/g,
      c => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
  document.body.textContent = 'RESULT:' + out;
})();
</script><body>pending</body>"#;

async fn cross_origin_app_in_a_real_browser(store: Store) {
    let Some(bin) = chromium() else {
        assert!(
            std::env::var("IDENTITY_TEST_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "Chromium is required (IDENTITY_TEST_REQUIRE_BROWSER=1) but not installed"
        );
        eprintln!("skipped: Chromium is not installed");
        return;
    };
    let dns = TestDns::start().await;
    let ns = dns.addr.to_string();
    let Some(app) = TestApp::spawn_with(store, &[("IDENTITY_DNS_NAMESERVERS", &ns)]).await else {
        return;
    };
    let p = app.create_project("spa").await;
    app.verify_auth_domain(&dns, &p.id, AUTH_HOST).await;
    let service_port = app.public.rsplit(':').next().unwrap().to_string();
    let page = PAGE
        .replace("__PORT__", &service_port)
        .replace("__PK__", &p.pk);
    let page_port = serve_page(page).await;
    let app_origin = format!("http://app.example.test:{page_port}");
    let (s, b) = app
        .admin(
            Method::PATCH,
            &format!("/v1/projects/{}", p.id),
            Some(json!({"settings": {"allowed_origins": [app_origin]}})),
        )
        .await;
    assert_eq!(s, 200, "{b}");

    let res = run_page(&bin, &format!("{app_origin}/")).await;
    let c = &res["cookie"];
    let status = |v: &Value| {
        v["status"]
            .as_u64()
            .unwrap_or_else(|| panic!("blocked: {v}"))
    };
    assert_eq!(status(&c["register"]), 201, "{res}");
    assert!(c["register"]["body"]["csrf_token"].is_string(), "{res}");
    assert!(
        c["register"]["body"].get("refresh_token").is_none(),
        "{res}"
    );
    assert_eq!(status(&c["session"]), 200, "{res}");
    assert_eq!(c["session"]["body"]["user"]["email"], "c@example.com");
    assert_eq!(status(&c["refresh_without_csrf"]), 403, "{res}");
    assert_eq!(status(&c["refresh"]), 200, "{res}");
    assert!(c["refresh"]["body"].get("refresh_token").is_none(), "{res}");
    assert_eq!(status(&c["session_after_refresh"]), 200, "{res}");
    assert_eq!(status(&c["logout"]), 204, "{res}");
    assert_eq!(status(&c["session_after_logout"]), 401, "{res}");
    // The app's origin cannot read the auth domain's cookies at all.
    assert_eq!(c["document_cookie"], "", "{res}");

    let b = &res["bearer"];
    assert_eq!(status(&b["register"]), 201, "{res}");
    assert_eq!(status(&b["session"]), 200, "{res}");
    assert_eq!(b["session"]["body"]["user"]["email"], "b@example.com");
    assert_eq!(status(&b["refresh"]), 200, "{res}");
    assert!(b["refresh"]["body"]["refresh_token"].is_string(), "{res}");
    assert_eq!(status(&b["logout"]), 204, "{res}");
    assert_eq!(status(&b["session_after_logout"]), 401, "{res}");

    // A page on an origin the project does not allow gets nothing back.
    let evil = run_page(&bin, &format!("http://evil.example.test:{page_port}/")).await;
    assert!(evil["login"]["blocked"].is_string(), "{evil}");
    assert!(evil["session"]["blocked"].is_string(), "{evil}");
    app.stop().await;
}
