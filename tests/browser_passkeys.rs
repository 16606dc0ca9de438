//! A browser's passkey ceremony end to end: headless Chromium (Debian's
//! package) with a virtual authenticator (added over the DevTools protocol,
//! the way WebDriver's WebAuthn extension does) loads an app page that
//! registers a passkey and signs in with it, email-hinted and discoverable,
//! using only the standard `navigator.credentials` API and the JSON forms
//! of its options and credentials (`parse*OptionsFromJSON`, `toJSON`).
//!
//! The DevTools protocol runs over `--remote-debugging-pipe` (file
//! descriptors 3 and 4, wired to the child's stdin and stdout by `sh`).
//! Skipped when Chromium is not installed, unless
//! `IDENTITY_TEST_REQUIRE_BROWSER=1`.

use std::process::Stdio;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{ChildStdin, ChildStdout};

use crate::support::{Store, TestApp};

/// One DevTools connection over the pipe.
struct Cdp {
    stdin: ChildStdin,
    stdout: ChildStdout,
    buf: Vec<u8>,
    next: u64,
}

impl Cdp {
    /// Sends a command and waits for its answer (events are skipped).
    async fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = msg.to_string().into_bytes();
        bytes.push(0);
        self.stdin.write_all(&bytes).await.unwrap();
        loop {
            while let Some(end) = self.buf.iter().position(|b| *b == 0) {
                let frame: Vec<u8> = self.buf.drain(..=end).collect();
                let v: Value = serde_json::from_slice(&frame[..frame.len() - 1]).unwrap();
                if v["id"] == id {
                    assert!(v.get("error").is_none(), "{method}: {v}");
                    return v["result"].clone();
                }
            }
            let mut chunk = [0u8; 65536];
            let n = tokio::time::timeout(Duration::from_secs(30), self.stdout.read(&mut chunk))
                .await
                .expect("DevTools answers")
                .unwrap();
            assert!(n > 0, "Chromium closed the DevTools pipe");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn app_page(api: &str, pk: &str) -> String {
    format!(
        r#"<!doctype html><html><body>running<script>
const API = "{api}", PK = "{pk}";
async function call(path, body, token) {{
  const h = {{"Content-Type": "application/json", "X-Project-Key": PK}};
  if (token) h["Authorization"] = "Bearer " + token;
  const r = await fetch(API + path, {{method: "POST", headers: h, body: JSON.stringify(body || {{}})}});
  const j = await r.json().catch(() => ({{}}));
  if (!r.ok) throw new Error(path + " " + r.status + " " + JSON.stringify(j));
  return j;
}}
(async () => {{
  const out = {{}};
  try {{
    const reg = await call("/v1/auth/register", {{email: "web@example.com", password: "correct horse battery staple"}});
    const begin = await call("/v1/auth/passkeys/register/begin", {{name: "Browser"}}, reg.access_token);
    const created = await navigator.credentials.create({{publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(begin.options.publicKey)}});
    const done = await call("/v1/auth/passkeys/register/finish", {{challenge_id: begin.challenge_id, credential: created.toJSON(), name: "Browser"}}, reg.access_token);
    out.registered = done.passkey.name;
    const hinted = await call("/v1/auth/passkeys/login/begin", {{email: "web@example.com"}});
    const a1 = await navigator.credentials.get({{publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(hinted.options.publicKey)}});
    const s1 = await call("/v1/auth/passkeys/login/finish", {{challenge_id: hinted.challenge_id, credential: a1.toJSON()}});
    out.hinted_amr = s1.session.amr;
    const disc = await call("/v1/auth/passkeys/login/begin", {{}});
    const a2 = await navigator.credentials.get({{publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(disc.options.publicKey)}});
    const s2 = await call("/v1/auth/passkeys/login/finish", {{challenge_id: disc.challenge_id, credential: a2.toJSON()}});
    out.discoverable_email = s2.user.email;
  }} catch (e) {{ out.error = String(e); }}
  document.body.textContent = "RESULT:" + JSON.stringify(out);
}})();
</script></body></html>"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkey_ceremonies_in_a_real_browser() {
    let Some(bin) = crate::browser::chromium() else {
        assert!(
            std::env::var("IDENTITY_TEST_REQUIRE_BROWSER").is_err(),
            "Chromium is required (IDENTITY_TEST_REQUIRE_BROWSER) but was not found"
        );
        return;
    };
    let app = TestApp::spawn(Store::Sqlite).await.unwrap();
    let p = app.create_project("browser passkeys").await;
    // The page is served from http://localhost:<port>, a secure context.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let page_port = listener.local_addr().unwrap().port();
    drop(listener);
    let page_origin = format!("http://localhost:{page_port}");
    let (s, b) = app
        .admin(
            Method::PATCH,
            &format!("/v1/projects/{}", p.id),
            Some(json!({"settings": {"webauthn_rp_id": "localhost", "allowed_origins": [page_origin]}})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    crate::browser::serve_page_on(page_port, app_page(&app.public, &p.pk)).await;

    let profile = std::env::temp_dir().join(format!("identity-chromium-pk-{}", std::process::id()));
    let script = format!(
        "exec '{bin}' --headless --no-sandbox --no-first-run --disable-gpu --user-data-dir='{}' --remote-debugging-pipe 3<&0 4>&1 1>/dev/null 2>/dev/null 0</dev/null",
        profile.display()
    );
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut cdp = Cdp {
        stdin: child.stdin.take().unwrap(),
        stdout: child.stdout.take().unwrap(),
        buf: Vec::new(),
        next: 0,
    };
    let target = cdp
        .call(None, "Target.createTarget", json!({"url": "about:blank"}))
        .await;
    let session = cdp
        .call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        )
        .await["sessionId"]
        .as_str()
        .unwrap()
        .to_string();
    let s = Some(session.as_str());
    cdp.call(s, "WebAuthn.enable", json!({"enableUI": false}))
        .await;
    cdp.call(
        s,
        "WebAuthn.addVirtualAuthenticator",
        json!({"options": {
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserVerified": true,
            "automaticPresenceSimulation": true
        }}),
    )
    .await;
    cdp.call(
        s,
        "Page.navigate",
        json!({"url": format!("{page_origin}/")}),
    )
    .await;
    let mut result = Value::Null;
    for _ in 0..300 {
        let text = cdp
            .call(
                s,
                "Runtime.evaluate",
                json!({"expression": "document.body ? document.body.textContent : ''", "returnByValue": true}),
            )
            .await;
        if let Some(found) = text["result"]["value"]
            .as_str()
            .and_then(|t| t.strip_prefix("RESULT:"))
        {
            result = serde_json::from_str(found).unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill().await;
    let _ = std::fs::remove_dir_all(&profile);
    assert_eq!(result["registered"], "Browser", "{result}");
    assert_eq!(result["hinted_amr"], json!(["hwk", "mfa"]), "{result}");
    assert_eq!(result["discoverable_email"], "web@example.com", "{result}");
    app.stop().await;
}
