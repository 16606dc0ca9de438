//! Passkeys: API.md's "Passkeys (WebAuthn)" table on both backends, driven
//! by a software authenticator (webauthn-authenticator-rs's `SoftPasskey`,
//! as Kanidm's tests do) that makes real attestations and assertions over
//! the options the server sends, as a browser's `navigator.credentials`
//! would.
//!
//! `SoftPasskey` cannot store resident keys, so for the discoverable flow
//! the test does what a platform authenticator does by itself: it picks the
//! credential and returns the user handle with the assertion (the handle is
//! not covered by the signature).

use reqwest::Method;
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{
    CreationChallengeResponse, PublicKeyCredential, RequestChallengeResponse, Url,
};

use crate::on_both;
use crate::support::{Project, Store, TestApp, access_token as token, age_step_up, assert_error};

on_both!(
    register_sign_in_and_manage,
    a_passkey_as_the_second_factor,
    discoverable_sign_in,
    refusals_wrong_origin_replay_clone_and_other_projects,
    a_domain_that_enforces_sso_has_no_passkey_way_in,
);

const PW: &str = "correct horse battery staple";
const ORIGIN: &str = "http://localhost:3000";

async fn setup(store: Store, name: &str) -> Option<(TestApp, Project)> {
    let app = TestApp::spawn(store).await?;
    let p = passkey_project(&app, name).await;
    Some((app, p))
}

/// A project whose relying party is `localhost`, used from `ORIGIN`.
async fn passkey_project(app: &TestApp, name: &str) -> Project {
    let p = app.create_project(name).await;
    let (s, b) = app
        .admin(
            Method::PATCH,
            &format!("/v1/projects/{}", p.id),
            Some(json!({"settings": {"webauthn_rp_id": "localhost", "allowed_origins": [ORIGIN]}})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    p
}

fn origin() -> Url {
    Url::parse(ORIGIN).unwrap()
}

/// Registers a new passkey of `device` for the signed-in `at`.
async fn register(
    app: &TestApp,
    p: &Project,
    at: &str,
    device: &mut SoftPasskey,
    name: &str,
) -> Value {
    let (s, begin) = app
        .authed(
            Method::POST,
            "/v1/auth/passkeys/register/begin",
            &p.pk,
            at,
            Some(json!({"name": name})),
        )
        .await;
    assert_eq!(s, 200, "{begin}");
    let options: CreationChallengeResponse =
        serde_json::from_value(begin["options"].clone()).unwrap();
    assert_eq!(begin["options"]["publicKey"]["rp"]["id"], "localhost");
    assert_eq!(
        begin["options"]["publicKey"]["authenticatorSelection"]["userVerification"],
        "required"
    );
    let credential = device.do_registration(origin(), options).unwrap();
    let (s, done) = app
        .authed(
            Method::POST,
            "/v1/auth/passkeys/register/finish",
            &p.pk,
            at,
            Some(json!({"challenge_id": begin["challenge_id"], "credential": credential, "name": name})),
        )
        .await;
    assert_eq!(s, 201, "{done}");
    done["passkey"].clone()
}

async fn login_begin(app: &TestApp, p: &Project, body: Value) -> Value {
    let (s, begin) = app
        .post_with_key("/v1/auth/passkeys/login/begin", &p.pk, body)
        .await;
    assert_eq!(s, 200, "{begin}");
    begin
}

async fn login_finish(
    app: &TestApp,
    p: &Project,
    challenge_id: &Value,
    credential: &Value,
) -> (u16, Value) {
    let (s, b) = app
        .post_with_key(
            "/v1/auth/passkeys/login/finish",
            &p.pk,
            json!({"challenge_id": challenge_id, "credential": credential}),
        )
        .await;
    (s.as_u16(), b)
}

fn assertion(device: &mut SoftPasskey, begin: &Value, from: &str) -> Value {
    let options: RequestChallengeResponse =
        serde_json::from_value(begin["options"].clone()).unwrap();
    let cred: PublicKeyCredential = device
        .do_authentication(Url::parse(from).unwrap(), options)
        .unwrap();
    serde_json::to_value(cred).unwrap()
}

async fn register_sign_in_and_manage(store: Store) {
    let Some((app, p)) = setup(store, "keys").await else {
        return;
    };
    let at = token(&app.register(&p.pk, "kim@example.com", PW).await);
    let mut device = SoftPasskey::new(true);
    let passkey = register(&app, &p, &at, &mut device, "Laptop").await;
    assert_eq!(passkey["name"], "Laptop");
    assert!(passkey["id"].as_str().unwrap().starts_with("pky_"));
    assert!(passkey["last_used_at"].is_null());

    // Email-hinted sign-in: two factors in one.
    let begin = login_begin(&app, &p, json!({"email": "kim@example.com"})).await;
    assert_eq!(
        begin["options"]["publicKey"]["allowCredentials"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let cred = assertion(&mut device, &begin, ORIGIN);
    let (s, signed) = login_finish(&app, &p, &begin["challenge_id"], &cred).await;
    assert_eq!(s, 200, "{signed}");
    assert_eq!(signed["session"]["amr"], json!(["hwk", "mfa"]));
    let (s, _) = app
        .authed(
            Method::GET,
            "/v1/auth/session",
            &p.pk,
            &token(&signed),
            None,
        )
        .await;
    assert_eq!(s, 200);

    // An unknown email gets options of the same shape, which never finish.
    let decoy = login_begin(&app, &p, json!({"email": "nobody@example.com"})).await;
    assert_eq!(
        decoy["options"]["publicKey"]["allowCredentials"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        decoy["options"]["publicKey"]["userVerification"],
        begin["options"]["publicKey"]["userVerification"]
    );
    assert!(decoy["options"].get("mediation").is_none());
    // The same keys, nothing that tells them apart but the ids.
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&decoy["options"]["publicKey"]),
        keys(&begin["options"]["publicKey"])
    );
    assert_eq!(
        keys(&decoy["options"]["publicKey"]["allowCredentials"][0]),
        keys(&begin["options"]["publicKey"]["allowCredentials"][0])
    );
    // A stale access token on this anonymous route is no session.
    let (s, stale) = crate::support::send(
        app.public_req(Method::POST, "/v1/auth/passkeys/login/begin")
            .header("x-project-key", &p.pk)
            .bearer_auth("stale.token.here")
            .json(&json!({"email": "kim@example.com"})),
    )
    .await;
    assert_eq!(s, 200, "{stale}");
    // webauthn_rp_id must be a host name under which origins can live.
    for bad in [json!("com"), json!("https://x.test"), json!(5)] {
        let got = app
            .admin(
                Method::PATCH,
                &format!("/v1/projects/{}", p.id),
                Some(json!({"settings": {"webauthn_rp_id": bad}})),
            )
            .await;
        assert_error(&got, 422, "invalid_settings");
    }
    let again = login_begin(&app, &p, json!({"email": "nobody@example.com"})).await;
    assert_eq!(
        again["options"]["publicKey"]["allowCredentials"],
        decoy["options"]["publicKey"]["allowCredentials"],
        "stable, like a real user's"
    );
    let (s, b) = login_finish(&app, &p, &decoy["challenge_id"], &cred).await;
    assert_eq!(s, 401, "{b}");

    // List, rename, and the factors view.
    let (_, list) = app
        .authed(Method::GET, "/v1/auth/passkeys", &p.pk, &at, None)
        .await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert!(items[0]["last_used_at"].is_string(), "{list}");
    let id = items[0]["id"].as_str().unwrap().to_string();
    let (s, renamed) = app
        .authed(
            Method::PATCH,
            &format!("/v1/auth/passkeys/{id}"),
            &p.pk,
            &at,
            Some(json!({"name": "Work laptop"})),
        )
        .await;
    assert_eq!(s, 200, "{renamed}");
    assert_eq!(renamed["passkey"]["name"], "Work laptop");
    for bad in [
        json!({"name": ""}),
        json!({"name": "x".repeat(65)}),
        json!({"name": "a\u{0}b"}),
    ] {
        let got = app
            .authed(
                Method::PATCH,
                &format!("/v1/auth/passkeys/{id}"),
                &p.pk,
                &at,
                Some(bad),
            )
            .await;
        assert_error(&got, 400, "invalid_request");
    }
    let got = app
        .authed(
            Method::PATCH,
            "/v1/auth/passkeys/pky_nope",
            &p.pk,
            &at,
            Some(json!({"name": "x"})),
        )
        .await;
    assert_error(&got, 404, "not_found");
    let (_, mfa) = app
        .authed(Method::GET, "/v1/auth/mfa", &p.pk, &at, None)
        .await;
    assert_eq!(mfa["passkeys"][0]["name"], "Work laptop");

    // At most ten per user.
    for i in 2..=10 {
        register(&app, &p, &at, &mut device, &format!("key {i}")).await;
    }
    let got = app
        .authed(
            Method::POST,
            "/v1/auth/passkeys/register/begin",
            &p.pk,
            &at,
            Some(json!({})),
        )
        .await;
    assert_error(&got, 409, "passkey_limit");

    // Deleting needs step-up.
    age_step_up(&app).await;
    let got = app
        .authed(
            Method::DELETE,
            &format!("/v1/auth/passkeys/{id}"),
            &p.pk,
            &at,
            None,
        )
        .await;
    assert_error(&got, 403, "step_up_required");
    let got = app
        .authed(
            Method::POST,
            "/v1/auth/passkeys/register/begin",
            &p.pk,
            &at,
            Some(json!({})),
        )
        .await;
    assert_error(&got, 403, "step_up_required");
    // With passkeys, the password alone no longer steps up; a passkey does.
    let got = app
        .authed(
            Method::POST,
            "/v1/auth/reauthenticate",
            &p.pk,
            &at,
            Some(json!({"password": PW})),
        )
        .await;
    assert_error(&got, 403, "step_up_required");
    step_up_with_passkey(&app, &p, &at, &mut device).await;
    let (s, _) = app
        .authed(
            Method::DELETE,
            &format!("/v1/auth/passkeys/{id}"),
            &p.pk,
            &at,
            None,
        )
        .await;
    assert_eq!(s, 204);
    let got = app
        .authed(
            Method::DELETE,
            &format!("/v1/auth/passkeys/{id}"),
            &p.pk,
            &at,
            None,
        )
        .await;
    assert_error(&got, 404, "not_found");
    let (_, events) = app.get_with_key("/v1/audit-events?limit=100", &p.sk).await;
    let kinds: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    for kind in [
        "passkey.registered",
        "passkey.used",
        "passkey.renamed",
        "passkey.deleted",
    ] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    // Account recovery by the secret key removes passkeys too.
    let (_, check) = app
        .authed(Method::GET, "/v1/auth/session", &p.pk, &at, None)
        .await;
    let user_id = check["user"]["id"].as_str().unwrap();
    let (s, _) = app
        .send_with_key(
            Method::DELETE,
            &format!("/v1/users/{user_id}/mfa"),
            &p.sk,
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (_, list) = app
        .authed(Method::GET, "/v1/auth/passkeys", &p.pk, &at, None)
        .await;
    assert_eq!(list["items"], json!([]));
    app.stop().await;
}

/// What a platform authenticator does for a discoverable credential: it
/// picks one of its own and returns the user handle.
fn discoverable_assertion(
    device: &mut SoftPasskey,
    begin: &Value,
    credential_id: &str,
    handle: &str,
) -> Value {
    let mut options = begin["options"].clone();
    assert_eq!(options["publicKey"]["allowCredentials"], json!([]));
    options["publicKey"]["allowCredentials"] = json!([{"type": "public-key", "id": credential_id}]);
    let mut cred = assertion(device, &json!({"options": options}), ORIGIN);
    cred["response"]["userHandle"] = json!(handle);
    cred
}

fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// The credential id the server stored for the user's only passkey, and
/// the user handle it gave them.
async fn stored(app: &TestApp, user_id: &str) -> (String, String) {
    use identity_shared::schema::Passkeys;
    use sea_query::{Expr, ExprTrait, Query};
    let mut tx = app.db().control().await.unwrap();
    let row: Option<(String, String)> = tx
        .fetch_optional(
            Query::select()
                .columns([Passkeys::CredentialId, Passkeys::UserHandle])
                .from(Passkeys::Table)
                .and_where(Expr::col(Passkeys::UserId).eq(user_id)),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    row.unwrap()
}

async fn discoverable_sign_in(store: Store) {
    let Some((app, p)) = setup(store, "discover").await else {
        return;
    };
    let body = app.register(&p.pk, "lee@example.com", PW).await;
    let user_id = body["user"]["id"].as_str().unwrap().to_string();
    let mut device = SoftPasskey::new(true);
    register(&app, &p, &token(&body), &mut device, "Phone").await;
    let (credential_id, handle) = stored(&app, &user_id).await;
    let handle_bytes: Vec<u8> = webauthn_rs::prelude::Uuid::parse_str(&handle)
        .unwrap()
        .as_bytes()
        .to_vec();
    // No email: options for conditional UI, answered by the user's passkey.
    let begin = login_begin(&app, &p, json!({})).await;
    let cred = discoverable_assertion(&mut device, &begin, &credential_id, &b64url(&handle_bytes));
    let (s, signed) = login_finish(&app, &p, &begin["challenge_id"], &cred).await;
    assert_eq!(s, 200, "{signed}");
    assert_eq!(signed["user"]["id"], user_id.as_str());
    // A handle nobody has in this project signs nobody in.
    let begin = login_begin(&app, &p, json!({})).await;
    let cred = discoverable_assertion(&mut device, &begin, &credential_id, &b64url(&[7u8; 16]));
    let (s, _) = login_finish(&app, &p, &begin["challenge_id"], &cred).await;
    assert_eq!(s, 401);
    app.stop().await;
}

/// A passkey made before the user's organisation enforced SSO stops
/// signing them in once it does.
async fn a_domain_that_enforces_sso_has_no_passkey_way_in(store: Store) {
    let idp = crate::support::oidc::MockIdp::start().await;
    let dns = crate::support::dns::TestDns::start().await;
    let ns = dns.addr.to_string();
    let Some(app) = TestApp::spawn_with(store, &[("IDENTITY_DNS_NAMESERVERS", &ns)]).await else {
        return;
    };
    let p = passkey_project(&app, "sso-keys").await;
    let body = app.register(&p.pk, "kim@acme.test", PW).await;
    let mut device = SoftPasskey::new(true);
    register(&app, &p, &token(&body), &mut device, "Laptop").await;
    let email = json!({"email": "kim@acme.test"});
    let begin = login_begin(&app, &p, email.clone()).await;
    let cred = assertion(&mut device, &begin, ORIGIN);
    assert_eq!(
        login_finish(&app, &p, &begin["challenge_id"], &cred)
            .await
            .0,
        200
    );
    let tenants = format!("/v1/projects/{}/tenants", p.id);
    let (_, t) = app
        .admin(Method::POST, &tenants, Some(json!({"name": "Acme"})))
        .await;
    let tid = t["tenant"]["id"].as_str().unwrap().to_string();
    app.tenant_domain(&dns, &p.id, &tid, "acme.test", true)
        .await;
    let (s, b) = app
        .admin(
            Method::PUT,
            &format!("{tenants}/{tid}/sso"),
            Some(json!({"issuer": idp.issuer(), "client_id": "c", "client_secret": "s", "enforce": true})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let begin = login_begin(&app, &p, email).await;
    let cred = assertion(&mut device, &begin, ORIGIN);
    let (s, b) = login_finish(&app, &p, &begin["challenge_id"], &cred).await;
    assert_eq!(
        (s, &b["error"]["code"]),
        (403, &json!("sso_required")),
        "{b}"
    );
    app.stop().await;
}

async fn refusals_wrong_origin_replay_clone_and_other_projects(store: Store) {
    let Some((app, p)) = setup(store, "refuse").await else {
        return;
    };
    let body = app.register(&p.pk, "max@example.com", PW).await;
    let user_id = body["user"]["id"].as_str().unwrap().to_string();
    let mut device = SoftPasskey::new(true);
    register(&app, &p, &token(&body), &mut device, "Key").await;

    // An assertion made for another origin.
    let begin = login_begin(&app, &p, json!({"email": "max@example.com"})).await;
    let cred = assertion(&mut device, &begin, "http://localhost:4000");
    let (s, _) = login_finish(&app, &p, &begin["challenge_id"], &cred).await;
    assert_eq!(s, 401);
    // A challenge works once.
    let begin = login_begin(&app, &p, json!({"email": "max@example.com"})).await;
    let cred = assertion(&mut device, &begin, ORIGIN);
    let (s, _) = login_finish(&app, &p, &begin["challenge_id"], &cred).await;
    assert_eq!(s, 200);
    let (s, b) = login_finish(&app, &p, &begin["challenge_id"], &cred).await;
    assert_eq!(s, 401, "{b}");
    assert_eq!(b["error"]["code"], "invalid_credentials");
    // Forty answers to one ceremony at once: one sign-in.
    let begin = login_begin(&app, &p, json!({"email": "max@example.com"})).await;
    let cred = assertion(&mut device, &begin, ORIGIN);
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let client = app.client.clone();
        let url = format!("{}/v1/auth/passkeys/login/finish", app.public);
        let (pk, body) = (
            p.pk.clone(),
            json!({"challenge_id": begin["challenge_id"], "credential": cred}),
        );
        tasks.push(tokio::spawn(async move {
            crate::support::send(client.post(url).header("x-project-key", pk).json(&body))
                .await
                .0
                .as_u16()
        }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            200 => ok += 1,
            401 => {}
            other => panic!("{other}"),
        }
    }
    assert_eq!(ok, 1);

    // Malformed and oversized credentials: a clear 4xx.
    let begin = login_begin(&app, &p, json!({"email": "max@example.com"})).await;
    for bad in [
        json!("nope"),
        json!({"id": 5}),
        json!({"x": "y".repeat(70_000)}),
    ] {
        let (s, b) = login_finish(&app, &p, &begin["challenge_id"], &bad).await;
        assert!((400..500).contains(&s), "{s} {b}");
    }

    // Another project knows nothing of this passkey.
    let other = passkey_project(&app, "other").await;
    let (credential_id, handle) = stored(&app, &user_id).await;
    let handle_bytes: Vec<u8> = webauthn_rs::prelude::Uuid::parse_str(&handle)
        .unwrap()
        .as_bytes()
        .to_vec();
    let begin = login_begin(&app, &other, json!({})).await;
    let cred = discoverable_assertion(&mut device, &begin, &credential_id, &b64url(&handle_bytes));
    let (s, _) = login_finish(&app, &other, &begin["challenge_id"], &cred).await;
    assert_eq!(s, 401);

    // A signature counter behind the stored one: refused, and audited as a
    // suspected clone.
    push_stored_counter(&app, &user_id, 1_000_000).await;
    let begin = login_begin(&app, &p, json!({"email": "max@example.com"})).await;
    let cred = assertion(&mut device, &begin, ORIGIN);
    let (s, _) = login_finish(&app, &p, &begin["challenge_id"], &cred).await;
    assert_eq!(s, 401);
    let (_, events) = app
        .get_with_key("/v1/audit-events?type=passkey.clone_suspected", &p.sk)
        .await;
    assert_eq!(events["items"][0]["subject"], user_id.as_str(), "{events}");
    app.stop().await;
}

/// Sets the stored signature counter of the user's passkeys.
async fn push_stored_counter(app: &TestApp, user_id: &str, counter: u64) {
    use identity_shared::schema::Passkeys;
    use sea_query::{Expr, ExprTrait, Query};
    let mut tx = app.db().control().await.unwrap();
    let rows: Vec<(String, String)> = tx
        .fetch_all(
            Query::select()
                .columns([Passkeys::Id, Passkeys::Credential])
                .from(Passkeys::Table)
                .and_where(Expr::col(Passkeys::UserId).eq(user_id)),
        )
        .await
        .unwrap();
    for (id, credential) in rows {
        let mut v: Value = serde_json::from_str(&credential).unwrap();
        v["cred"]["counter"] = json!(counter);
        tx.execute(
            Query::update()
                .table(Passkeys::Table)
                .value(Passkeys::Credential, v.to_string())
                .and_where(Expr::col(Passkeys::Id).eq(id)),
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

/// Steps the session up with a passkey (`POST /v1/auth/mfa/verify`).
async fn step_up_with_passkey(app: &TestApp, p: &Project, at: &str, device: &mut SoftPasskey) {
    let (s, begin) = app
        .authed(
            Method::POST,
            "/v1/auth/passkeys/login/begin",
            &p.pk,
            at,
            Some(json!({})),
        )
        .await;
    assert_eq!(s, 200, "{begin}");
    assert!(
        !begin["options"]["publicKey"]["allowCredentials"]
            .as_array()
            .unwrap()
            .is_empty(),
        "the session's own passkeys only"
    );
    let cred = assertion(device, &begin, ORIGIN);
    let (s, b) = app
        .authed(
            Method::POST,
            "/v1/auth/mfa/verify",
            &p.pk,
            at,
            Some(json!({"passkey": {"challenge_id": begin["challenge_id"], "credential": cred}})),
        )
        .await;
    assert_eq!(s, 204, "{b}");
}

async fn a_passkey_as_the_second_factor(store: Store) {
    let Some((app, p)) = setup(store, "second").await else {
        return;
    };
    let at = token(&app.register(&p.pk, "ned@example.com", PW).await);
    let mut device = SoftPasskey::new(true);
    let passkey = register(&app, &p, &at, &mut device, "Key").await;
    let (_, check) = app
        .authed(Method::GET, "/v1/auth/session", &p.pk, &at, None)
        .await;
    assert_eq!(check["user"]["mfa_enabled"], true);

    // A password sign-in now asks for the passkey.
    let (s, first) = app.login(&p.pk, "ned@example.com", PW).await;
    assert_eq!(s, 200);
    assert_eq!(first["methods"], json!(["passkey"]), "{first}");
    let t = first["mfa_token"].as_str().unwrap();
    let got = app
        .post_with_key(
            "/v1/auth/passkeys/login/begin",
            &p.pk,
            json!({"mfa_token": "nope"}),
        )
        .await;
    assert_error(&got, 401, "mfa_token_invalid");
    let begin = login_begin(&app, &p, json!({"mfa_token": t})).await;
    let cred = assertion(&mut device, &begin, ORIGIN);
    // The assertion is no first factor on its own: login/finish refuses a
    // second-factor ceremony.
    let (s, _) = login_finish(&app, &p, &begin["challenge_id"], &cred).await;
    assert_eq!(s, 401);
    // A ceremony begun for this login cannot step up a session instead.
    let begin = login_begin(&app, &p, json!({"mfa_token": t})).await;
    let cred = assertion(&mut device, &begin, ORIGIN);
    let got = app
        .authed(
            Method::POST,
            "/v1/auth/mfa/verify",
            &p.pk,
            &at,
            Some(json!({"passkey": {"challenge_id": begin["challenge_id"], "credential": cred}})),
        )
        .await;
    assert_error(&got, 401, "invalid_code");
    let begin = login_begin(&app, &p, json!({"mfa_token": t})).await;
    let cred = assertion(&mut device, &begin, ORIGIN);
    let answer = json!({"mfa_token": t, "passkey": {"challenge_id": begin["challenge_id"], "credential": cred}, "remember_browser": true});
    let (s, signed) = app
        .post_with_key("/v1/auth/mfa/challenge", &p.pk, answer.clone())
        .await;
    assert_eq!(s, 200, "{signed}");
    assert_eq!(signed["session"]["amr"], json!(["pwd", "hwk", "mfa"]));
    let got = app
        .post_with_key("/v1/auth/mfa/challenge", &p.pk, answer)
        .await;
    assert_error(&got, 401, "mfa_token_invalid");

    assert_eq!(crate::mfa::count_trusted(&app).await, 1);
    // Deleting the only factor turns MFA off again, and forgets the browser.
    let id = passkey["id"].as_str().unwrap();
    let (s, _) = app
        .authed(
            Method::DELETE,
            &format!("/v1/auth/passkeys/{id}"),
            &p.pk,
            &at,
            None,
        )
        .await;
    assert_eq!(s, 204);
    assert_eq!(crate::mfa::count_trusted(&app).await, 0);
    let (s, body) = app.login(&p.pk, "ned@example.com", PW).await;
    assert_eq!(s, 200);
    assert!(body["access_token"].is_string(), "{body}");
    app.stop().await;
}
