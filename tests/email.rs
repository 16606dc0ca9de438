//! Email flows (API.md "Email and phone") on both backends, against a real
//! SMTP server on loopback (`support::mail::TestSmtp`): verification,
//! password reset, sign-in by code and by link, and the outbox's promises:
//! nothing lost across an SMTP outage or a restart, dead messages visible,
//! payloads sealed at rest.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::on_both;
use crate::support::mail::{Captured, TestSmsWebhook, TestSmtp};
use crate::support::{
    Project, Store, TestApp, access_token, age_step_up, assert_error, eventually,
};

on_both!(
    password_reset_by_email,
    email_verification_by_link_and_code,
    sign_in_by_email_code,
    sign_in_by_magic_link,
    the_outbox_survives_an_smtp_outage_and_a_restart,
    dead_messages_are_visible_and_payloads_sealed,
    email_change_by_link_to_the_new_address,
    phone_numbers_verified_by_sms,
    without_delivery_the_flows_refuse,
    the_per_ip_limit_holds_under_concurrency,
    the_mailbox_owner_reclaims_an_account_set_up_by_someone_else,
    code_guesses_are_budgeted_across_codes,
    template_overrides_previews_and_metrics,
    a_verified_address_joins_the_tenants_of_its_domain,
    a_node_that_dies_after_claiming_loses_nothing,
    expired_links_and_codes_are_refused,
    cross_site_posts_to_email_sign_in_set_nothing,
    dev_mode_logs_instead_of_sending,
    caps_hold_when_forty_requests_arrive_at_once,
    an_email_change_dies_with_the_session_that_asked,
);

const PW: &str = "correct horse battery staple";
const WAIT: Duration = Duration::from_secs(10);

async fn setup(
    store: Store,
    smtp: &TestSmtp,
    extra: &[(&str, &str)],
) -> Option<(TestApp, Project)> {
    let url = smtp.url();
    let mut env = vec![
        ("IDENTITY_SMTP_URL", url.as_str()),
        ("IDENTITY_EMAIL_FROM", "auth@identity.test"),
        ("IDENTITY_OUTBOX_POLL_MS", "50"),
        ("IDENTITY_OUTBOX_BACKOFF_MS", "50"),
    ];
    env.extend_from_slice(extra);
    let app = TestApp::spawn_with(store, &env).await?;
    let p = app.create_project("mail").await;
    // Many requests from one test client: the per-IP limit is tested apart.
    let (s, b) = app
        .admin(
            Method::PATCH,
            &format!("/v1/projects/{}", p.id),
            Some(json!({"settings": {"rate_limits": {"email_per_minute": 0}, "allowed_origins": ["https://app.example.com"]}})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    Some((app, p))
}

/// The `token` query parameter of the first link in the message.
fn token_of(m: &Captured) -> String {
    let link = m.find("http").expect("a link in the message");
    let query = link.split_once('?').expect("a query").1;
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .expect("a token")
        .to_string()
}

async fn post(app: &TestApp, p: &Project, path: &str, body: Value) -> (StatusCode, Value) {
    app.post_with_key(path, &p.pk, body).await
}

async fn messages(app: &TestApp, p: &Project, status: &str) -> Vec<Value> {
    let (s, b) = app
        .get_with_key(&format!("/v1/messages?status={status}"), &p.sk)
        .await;
    assert_eq!(s, 200, "{b}");
    b["items"].as_array().unwrap().clone()
}

async fn password_reset_by_email(store: Store) {
    let smtp = TestSmtp::start().await;
    let Some((app, p)) = setup(store, &smtp, &[]).await else {
        return;
    };
    let first = app.register(&p.pk, "reset@example.com", PW).await;
    let (s, second) = app.login(&p.pk, "reset@example.com", PW).await;
    assert_eq!(s, 200);

    // Unknown and known addresses: the same answer, in about the same time.
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for i in 0..12 {
        let t = Instant::now();
        let (s, _) = post(
            &app,
            &p,
            "/v1/auth/password/forgot",
            json!({"email": format!("nobody{i}@example.com")}),
        )
        .await;
        assert_eq!(s, 204);
        unknown.push(t.elapsed());
        let t = Instant::now();
        let (s, _) = post(
            &app,
            &p,
            "/v1/auth/password/forgot",
            json!({"email": "Reset@Example.com"}),
        )
        .await;
        assert_eq!(s, 204);
        known.push(t.elapsed());
    }
    known.sort();
    unknown.sort();
    let (k, u) = (known[6], unknown[6]);
    assert!(
        k.abs_diff(u) < Duration::from_millis(15),
        "median answer: known {k:?}, unknown {u:?}"
    );
    // The per-address cap (5 an hour) held: 12 requests, 5 emails, and
    // nothing went to the unknown addresses.
    let sent = smtp.wait_for(5, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(smtp.messages().len(), 5, "{:?}", smtp.messages());
    assert!(
        sent.iter()
            .all(|m| m.to == vec!["reset@example.com".to_string()])
    );
    for m in &sent {
        assert!(
            m.subject()
                .unwrap_or_default()
                .to_lowercase()
                .contains("password")
        );
        assert!(
            m.find("http://localhost:8080/reset-password?token=")
                .is_some(),
            "{}",
            m.text_body()
        );
    }
    // A weak password is refused before any token is judged or spent.
    let tokens: Vec<String> = sent.iter().map(token_of).collect();
    for t in &tokens {
        let (s, _) = post(
            &app,
            &p,
            "/v1/auth/password/reset",
            json!({"token": t, "new_password": "short"}),
        )
        .await;
        assert_eq!(s, 422);
    }
    // Only the newest link works: each request voided the one before.
    let mut working = Vec::new();
    for t in &tokens {
        let (s, b) = post(
            &app,
            &p,
            "/v1/auth/password/reset",
            json!({"token": t, "new_password": "a brand new passphrase"}),
        )
        .await;
        match s.as_u16() {
            204 => working.push(t.clone()),
            _ => assert_error(&(s, b), 400, "invalid_token"),
        }
    }
    assert_eq!(working.len(), 1, "exactly one live link");
    let token = working.remove(0);
    // Single-use.
    assert_error(
        &post(
            &app,
            &p,
            "/v1/auth/password/reset",
            json!({"token": token, "new_password": "another new passphrase"}),
        )
        .await,
        400,
        "invalid_token",
    );
    // Every session ended.
    for signed in [&first, &second] {
        let (s, _) = post(
            &app,
            &p,
            "/v1/auth/refresh",
            json!({"refresh_token": signed["refresh_token"]}),
        )
        .await;
        assert_eq!(s, 401);
        let (s, _) = app
            .authed(
                Method::GET,
                "/v1/auth/session",
                &p.pk,
                &access_token(signed),
                None,
            )
            .await;
        assert_eq!(s, 401);
    }
    assert_eq!(app.login(&p.pk, "reset@example.com", PW).await.0, 401);
    let (s, b) = app
        .login(&p.pk, "reset@example.com", "a brand new passphrase")
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b["user"]["email_verified"], true,
        "the link proved the mailbox"
    );
    // Garbage tokens and malformed bodies: clear 4xx.
    assert_error(
        &post(
            &app,
            &p,
            "/v1/auth/password/reset",
            json!({"token": "x".repeat(5000), "new_password": "a brand new passphrase"}),
        )
        .await,
        400,
        "invalid_token",
    );
    assert_eq!(
        post(&app, &p, "/v1/auth/password/reset", json!({"token": 5}))
            .await
            .0,
        400
    );
    assert_eq!(
        post(
            &app,
            &p,
            "/v1/auth/password/forgot",
            json!({"email": "not an email"})
        )
        .await
        .0,
        422
    );
    assert_eq!(
        post(&app, &p, "/v1/auth/password/forgot", json!({}))
            .await
            .0,
        400
    );
    app.stop().await;
}

async fn email_verification_by_link_and_code(store: Store) {
    let smtp = TestSmtp::start().await;
    let Some((app, p)) = setup(store, &smtp, &[]).await else {
        return;
    };
    let signed = app.register(&p.pk, "verify@example.com", PW).await;
    let at = access_token(&signed);
    assert_eq!(signed["user"]["email_verified"], false);
    let (s, _) = app
        .authed(
            Method::POST,
            "/v1/auth/email/verify/request",
            &p.pk,
            &at,
            None,
        )
        .await;
    assert_eq!(s, 204);
    let m = smtp.wait_for(1, WAIT).await[0].clone();
    assert_eq!(m.to, vec!["verify@example.com".to_string()]);
    assert_eq!(m.auth_user, None);
    let code = m.code().expect("a code");
    assert!(
        m.find("http://localhost:8080/verify-email?token=")
            .is_some()
    );
    assert!(m.html_body().contains(&code));
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let confirm = |body: Value| {
        let app = &app;
        let at = at.clone();
        let pk = p.pk.clone();
        async move {
            app.authed(
                Method::POST,
                "/v1/auth/email/verify/confirm",
                &pk,
                &at,
                Some(body),
            )
            .await
        }
    };
    assert_error(&confirm(json!({"code": wrong})).await, 400, "invalid_code");
    assert_error(&confirm(json!({"code": "12"})).await, 400, "invalid_code");
    assert_eq!(confirm(json!({})).await.0, 400);
    let (s, b) = confirm(json!({"code": code})).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["user"]["email_verified"], true);
    let (_, me) = app
        .authed(Method::GET, "/v1/auth/session", &p.pk, &at, None)
        .await;
    assert_eq!(me["user"]["email_verified"], true, "{me}");
    // The link of the same message is spent with its code.
    assert_error(
        &confirm(json!({"token": token_of(&m)})).await,
        400,
        "invalid_token",
    );
    // Verified: nothing more is sent.
    let (s, _) = app
        .authed(
            Method::POST,
            "/v1/auth/email/verify/request",
            &p.pk,
            &at,
            None,
        )
        .await;
    assert_eq!(s, 204);

    // A second user verifies by link; another user's link is refused.
    let other = app.register(&p.pk, "other@example.com", PW).await;
    let other_at = access_token(&other);
    app.authed(
        Method::POST,
        "/v1/auth/email/verify/request",
        &p.pk,
        &other_at,
        None,
    )
    .await;
    let m = smtp.wait_for(2, WAIT).await[1].clone();
    assert_eq!(m.to, vec!["other@example.com".to_string()]);
    assert_error(
        &confirm(json!({"token": token_of(&m)})).await,
        400,
        "invalid_token",
    );
    let (s, b) = app
        .authed(
            Method::POST,
            "/v1/auth/email/verify/confirm",
            &p.pk,
            &other_at,
            Some(json!({"token": token_of(&m)})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["user"]["email_verified"], true);
    // Without a session: 401.
    let (s, _) = post(&app, &p, "/v1/auth/email/verify/request", json!({})).await;
    assert_eq!(s, 401);
    // A project that requires a second factor still lets a user without one
    // verify their address first.
    let (s, b) = app
        .admin(
            Method::PATCH,
            &format!("/v1/projects/{}", p.id),
            Some(json!({"settings": {"mfa": "required"}})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let third = access_token(&app.register(&p.pk, "third@example.com", PW).await);
    let (s, b) = app
        .authed(
            Method::POST,
            "/v1/auth/email/verify/request",
            &p.pk,
            &third,
            None,
        )
        .await;
    assert_eq!(s, 204, "{b}");
    let (s, _) = app
        .authed(
            Method::POST,
            "/v1/auth/phone",
            &p.pk,
            &third,
            Some(json!({"phone": "+447700900123"})),
        )
        .await;
    assert_eq!(s, 403, "other routes wait for the second factor");
    app.stop().await;
}

async fn sign_in_by_email_code(store: Store) {
    let smtp = TestSmtp::start().await;
    let Some((app, p)) = setup(store, &smtp, &[]).await else {
        return;
    };
    // Unknown address without create_user: 204, and nothing sent.
    let (s, _) = post(
        &app,
        &p,
        "/v1/auth/email-otp/request",
        json!({"email": "new@example.com"}),
    )
    .await;
    assert_eq!(s, 204);
    // With create_user: a code.
    let (s, _) = post(
        &app,
        &p,
        "/v1/auth/email-otp/request",
        json!({"email": "New@Example.com", "create_user": true}),
    )
    .await;
    assert_eq!(s, 204);
    let m = smtp.wait_for(1, WAIT).await[0].clone();
    assert_eq!(smtp.messages().len(), 1);
    let code = m.code().expect("a code");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    // Five wrong codes kill it; the right one is refused afterwards.
    for _ in 0..5 {
        assert_error(
            &post(
                &app,
                &p,
                "/v1/auth/email-otp/verify",
                json!({"email": "new@example.com", "code": wrong}),
            )
            .await,
            401,
            "invalid_code",
        );
    }
    assert_error(
        &post(
            &app,
            &p,
            "/v1/auth/email-otp/verify",
            json!({"email": "new@example.com", "code": code}),
        )
        .await,
        401,
        "invalid_code",
    );
    // A new code works once.
    post(
        &app,
        &p,
        "/v1/auth/email-otp/request",
        json!({"email": "new@example.com", "create_user": true}),
    )
    .await;
    let m = smtp.wait_for(2, WAIT).await[1].clone();
    let code = m.code().unwrap();
    let (s, b) = post(
        &app,
        &p,
        "/v1/auth/email-otp/verify",
        json!({"email": "new@example.com", "code": code}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    // Stored as typed in the request that created it.
    assert_eq!(b["user"]["email"], "new@example.com");
    assert_eq!(b["user"]["email_verified"], true);
    assert!(b["refresh_token"].is_string());
    assert_error(
        &post(
            &app,
            &p,
            "/v1/auth/email-otp/verify",
            json!({"email": "new@example.com", "code": code}),
        )
        .await,
        401,
        "invalid_code",
    );
    // An existing user signs in the same way.
    app.register(&p.pk, "known@example.com", PW).await;
    post(
        &app,
        &p,
        "/v1/auth/email-otp/request",
        json!({"email": "known@example.com"}),
    )
    .await;
    let m = smtp.wait_for(3, WAIT).await[2].clone();
    let (s, b) = post(
        &app,
        &p,
        "/v1/auth/email-otp/verify",
        json!({"email": "known@example.com", "code": m.code().unwrap()}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["user"]["email_verified"], true);
    // Malformed input.
    assert_error(
        &post(
            &app,
            &p,
            "/v1/auth/email-otp/verify",
            json!({"email": "known@example.com", "code": "abc"}),
        )
        .await,
        401,
        "invalid_code",
    );
    assert_eq!(
        post(
            &app,
            &p,
            "/v1/auth/email-otp/verify",
            json!({"email": "known@example.com"})
        )
        .await
        .0,
        400
    );
    assert_eq!(
        post(
            &app,
            &p,
            "/v1/auth/email-otp/request",
            json!({"email": "@@"})
        )
        .await
        .0,
        422
    );
    app.stop().await;
}

async fn sign_in_by_magic_link(store: Store) {
    let smtp = TestSmtp::start().await;
    let Some((app, p)) = setup(store, &smtp, &[]).await else {
        return;
    };
    app.register(&p.pk, "link@example.com", PW).await;
    for bad in [
        "https://evil.example.net/x",
        "javascript:alert(1)",
        "https://app.example.com.evil.net/",
        "//app.example.com",
    ] {
        assert_error(
            &post(
                &app,
                &p,
                "/v1/auth/magic-link/request",
                json!({"email": "link@example.com", "redirect_to": bad}),
            )
            .await,
            400,
            "invalid_redirect",
        );
    }
    let (s, _) = post(
        &app,
        &p,
        "/v1/auth/magic-link/request",
        json!({"email": "link@example.com", "redirect_to": "https://app.example.com/welcome?x=1"}),
    )
    .await;
    assert_eq!(s, 204);
    let m = smtp.wait_for(1, WAIT).await[0].clone();
    let link = m
        .find("http://localhost:8080/magic-link?token=")
        .expect("a link");
    // The checked redirect comes back from the verification, never from
    // the link (which an attacker could rewrite).
    assert!(!link.contains("redirect_to"), "{link}");
    let token = token_of(&m);
    let (s, b) = post(
        &app,
        &p,
        "/v1/auth/magic-link/verify",
        json!({"token": token}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["redirect_to"], "https://app.example.com/welcome?x=1");
    assert_eq!(b["user"]["email"], "link@example.com");
    assert_eq!(b["user"]["email_verified"], true);
    assert_error(
        &post(
            &app,
            &p,
            "/v1/auth/magic-link/verify",
            json!({"token": token}),
        )
        .await,
        400,
        "invalid_token",
    );
    // Forty clicks on one link at once: one sign-in.
    post(
        &app,
        &p,
        "/v1/auth/magic-link/request",
        json!({"email": "link@example.com"}),
    )
    .await;
    let token = token_of(&smtp.wait_for(2, WAIT).await[1]);
    let results = futures_util::future::join_all((0..40).map(|_| {
        post(
            &app,
            &p,
            "/v1/auth/magic-link/verify",
            json!({"token": token}),
        )
    }))
    .await;
    let ok = results.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(ok, 1, "{results:?}");
    assert!(
        results.iter().all(|(s, _)| *s == 200 || *s == 400),
        "{results:?}"
    );
    app.stop().await;
}

async fn the_outbox_survives_an_smtp_outage_and_a_restart(store: Store) {
    let smtp = TestSmtp::start().await;
    let Some((mut app, p)) = setup(store, &smtp, &[("IDENTITY_OUTBOX_MAX_ATTEMPTS", "50")]).await
    else {
        return;
    };
    app.register(&p.pk, "outage@example.com", PW).await;
    smtp.stop().await;
    let (s, _) = post(
        &app,
        &p,
        "/v1/auth/password/forgot",
        json!({"email": "outage@example.com"}),
    )
    .await;
    assert_eq!(s, 204);
    // Failing, retried, still queued.
    eventually(WAIT, || async {
        messages(&app, &p, "queued").await.first().is_some_and(|m| {
            m["attempts"].as_i64().unwrap_or(0) >= 2 && m["last_error"].is_string()
        })
    })
    .await;
    // The service restarts while the mail server is down; then it is back.
    app.restart().await;
    smtp.restart().await;
    let m = smtp.wait_for(1, Duration::from_secs(30)).await[0].clone();
    assert_eq!(m.to, vec!["outage@example.com".to_string()]);
    // Recorded once the server's answer is in.
    eventually(WAIT, || async {
        messages(&app, &p, "sent").await.len() == 1
    })
    .await;
    let sent = messages(&app, &p, "sent").await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["payload_stored"], false, "erased after delivery");
    assert_eq!(sent[0]["kind"], "password_reset");
    assert_eq!(sent[0]["to"], "o•••@example.com");
    assert!(messages(&app, &p, "queued").await.is_empty());
    // The link still works.
    let (s, _) = post(
        &app,
        &p,
        "/v1/auth/password/reset",
        json!({"token": token_of(&m), "new_password": "a brand new passphrase"}),
    )
    .await;
    assert_eq!(s, 204);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(smtp.messages().len(), 1, "delivered once");
    assert_eq!(
        app.get_with_key("/v1/messages?status=bogus", &p.sk).await.0,
        400
    );
    assert_eq!(app.get_with_key("/v1/messages", &p.pk).await.0, 403);
    app.stop().await;
}

async fn dead_messages_are_visible_and_payloads_sealed(store: Store) {
    let smtp = TestSmtp::start().await;
    let Some((app, p)) = setup(store, &smtp, &[("IDENTITY_OUTBOX_MAX_ATTEMPTS", "3")]).await else {
        return;
    };
    let signed = app.register(&p.pk, "dead@example.com", PW).await;
    // Sealed at rest: while undelivered, the row holds no readable secret.
    smtp.stop().await;
    app.authed(
        Method::POST,
        "/v1/auth/email/verify/request",
        &p.pk,
        &access_token(&signed),
        None,
    )
    .await;
    let mut tx = app.db().control().await.unwrap();
    let rows: Vec<(Option<String>, String)> = tx
        .fetch_all(
            sea_query::Query::select()
                .columns([
                    identity_shared::schema::OutboxMessages::Payload,
                    identity_shared::schema::OutboxMessages::RecipientHint,
                ])
                .from(identity_shared::schema::OutboxMessages::Table),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(rows.len(), 1);
    let (payload, hint) = &rows[0];
    let payload = payload.as_deref().expect("a sealed payload while queued");
    for leak in ["dead@example.com", "verify-email", "token=", "Verify"] {
        assert!(!payload.contains(leak), "payload shows {leak}: {payload}");
    }
    assert_eq!(hint, "d•••@example.com");
    // Three failed attempts: dead, visible, payload erased, never dropped.
    eventually(WAIT, || async {
        messages(&app, &p, "dead").await.len() == 1
    })
    .await;
    let dead = messages(&app, &p, "dead").await;
    assert_eq!(dead[0]["attempts"], 3);
    assert_eq!(dead[0]["payload_stored"], false);
    assert!(
        dead[0]["last_error"].as_str().unwrap().contains("SMTP"),
        "{dead:?}"
    );
    smtp.restart().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(smtp.messages().is_empty());
    app.stop().await;
}

async fn email_change_by_link_to_the_new_address(store: Store) {
    let smtp = TestSmtp::start().await;
    let Some((app, p)) = setup(store, &smtp, &[]).await else {
        return;
    };
    let signed = app.register(&p.pk, "old@example.com", PW).await;
    app.register(&p.pk, "taken@example.com", PW).await;
    let at = access_token(&signed);
    let change = |body: Value| {
        let (app, at, pk) = (&app, at.clone(), p.pk.clone());
        async move {
            app.authed(Method::POST, "/v1/auth/email/change", &pk, &at, Some(body))
                .await
        }
    };
    assert_error(
        &change(json!({"new_email": "OLD@example.com"})).await,
        422,
        "same_email",
    );
    assert_error(
        &change(json!({"new_email": "nope"})).await,
        422,
        "invalid_email",
    );
    let (s, b) = change(json!({"new_email": "New@Example.com"})).await;
    assert_eq!(s, 204, "{b}");
    let sent = smtp.wait_for(2, WAIT).await;
    let to_new = sent
        .iter()
        .find(|m| m.to == vec!["New@Example.com".to_string()])
        .expect("a link to the new address")
        .clone();
    let to_old = sent
        .iter()
        .find(|m| m.to == vec!["old@example.com".to_string()])
        .expect("a notice to the old address");
    assert!(
        to_old.find("http").is_none(),
        "the notice carries no link: {}",
        to_old.text_body()
    );
    assert!(to_old.text_body().contains("New@Example.com"));
    assert!(
        to_new
            .find("http://localhost:8080/confirm-email-change?token=")
            .is_some()
    );
    let token = token_of(&to_new);
    // No session needed to confirm.
    let (s, b) = post(
        &app,
        &p,
        "/v1/auth/email/change/confirm",
        json!({"token": token}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["user"]["email"], "New@Example.com");
    assert_eq!(b["user"]["email_verified"], true);
    assert_error(
        &post(
            &app,
            &p,
            "/v1/auth/email/change/confirm",
            json!({"token": token}),
        )
        .await,
        400,
        "invalid_token",
    );
    assert_eq!(app.login(&p.pk, "old@example.com", PW).await.0, 401);
    assert_eq!(app.login(&p.pk, "new@example.com", PW).await.0, 200);
    let (_, me) = app
        .authed(Method::GET, "/v1/auth/session", &p.pk, &at, None)
        .await;
    assert_eq!(me["user"]["email"], "New@Example.com", "{me}");
    // A taken address: nothing told at the request, 409 at confirmation.
    let (s, _) = change(json!({"new_email": "taken@example.com"})).await;
    assert_eq!(s, 204);
    let sent = smtp.wait_for(4, WAIT).await;
    let to_taken = sent
        .iter()
        .find(|m| m.to == vec!["taken@example.com".to_string()])
        .unwrap();
    assert_error(
        &post(
            &app,
            &p,
            "/v1/auth/email/change/confirm",
            json!({"token": token_of(to_taken)}),
        )
        .await,
        409,
        "email_taken",
    );
    // Step-up is needed.
    age_step_up(&app).await;
    assert_error(
        &change(json!({"new_email": "later@example.com"})).await,
        403,
        "step_up_required",
    );
    assert_eq!(
        post(&app, &p, "/v1/auth/email/change/confirm", json!({}))
            .await
            .0,
        400
    );
    app.stop().await;
}

async fn phone_numbers_verified_by_sms(store: Store) {
    let smtp = TestSmtp::start().await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let sms = TestSmsWebhook::start(secret).await;
    let url = sms.url();
    let Some((app, p)) = setup(
        store,
        &smtp,
        &[
            ("IDENTITY_SMS_WEBHOOK_URL", &url),
            ("IDENTITY_SMS_WEBHOOK_SECRET", secret),
        ],
    )
    .await
    else {
        return;
    };
    let (s, b) = app
        .admin(
            Method::PATCH,
            &format!("/v1/projects/{}", p.id),
            Some(json!({"settings": {"messaging": {"sms_per_number_per_day": 3}}})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let at = access_token(&app.register(&p.pk, "phone@example.com", PW).await);
    let call = |path: &'static str, body: Value| {
        let (app, at, pk) = (&app, at.clone(), p.pk.clone());
        async move { app.authed(Method::POST, path, &pk, &at, Some(body)).await }
    };
    for bad in ["447700900123", "+0447700900123", "+44 abc", "+1"] {
        assert_error(
            &call("/v1/auth/phone", json!({"phone": bad})).await,
            422,
            "invalid_phone",
        );
    }
    let (s, b) = call("/v1/auth/phone", json!({"phone": "+44 7700 900123"})).await;
    assert_eq!(s, 204, "{b}");
    let m = sms.wait_for(1, WAIT).await[0].clone();
    assert_eq!(m.to, "+447700900123");
    assert!(m.signature_valid, "Standard Webhooks signature");
    let code = m.code().expect("a code in the SMS");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    assert_error(
        &call("/v1/auth/phone/verify", json!({"code": wrong})).await,
        400,
        "invalid_code",
    );
    let (s, b) = call("/v1/auth/phone/verify", json!({"code": code})).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["user"]["phone"], "+447700900123");
    assert_eq!(b["user"]["phone_verified"], true);
    assert_error(
        &call("/v1/auth/phone/verify", json!({"code": code})).await,
        400,
        "invalid_code",
    );
    let (_, me) = app
        .authed(Method::GET, "/v1/auth/session", &p.pk, &at, None)
        .await;
    assert_eq!(me["user"]["phone_verified"], true, "{me}");
    // The per-number cap (3 a day): the fourth is refused.
    assert_eq!(
        call("/v1/auth/phone", json!({"phone": "+447700900123"}))
            .await
            .0,
        204
    );
    assert_eq!(
        call("/v1/auth/phone", json!({"phone": "+447700900123"}))
            .await
            .0,
        204
    );
    assert_error(
        &call("/v1/auth/phone", json!({"phone": "+447700900123"})).await,
        429,
        "too_many_messages",
    );
    // A webhook that fails is retried.
    sms.fail_next(2);
    assert_eq!(
        call("/v1/auth/phone", json!({"phone": "+14155550100"}))
            .await
            .0,
        204
    );
    let all = sms.wait_for(4, WAIT).await;
    assert!(
        all.iter()
            .any(|m| m.to == "+14155550100" && m.signature_valid)
    );
    // The per-user cap: four codes asked for today, a cap of four.
    let (s, b) = app
        .admin(
            Method::PATCH,
            &format!("/v1/projects/{}", p.id),
            Some(json!({"settings": {"messaging": {"sms_per_user_per_day": 4}}})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_error(
        &call("/v1/auth/phone", json!({"phone": "+14155550199"})).await,
        429,
        "too_many_messages",
    );
    app.stop().await;
}

async fn without_delivery_the_flows_refuse(store: Store) {
    let Some(app) = TestApp::spawn_with(store, &[("IDENTITY_DEV_MODE", "false")]).await else {
        return;
    };
    let p = app.create_project("nomail").await;
    let at = access_token(&app.register(&p.pk, "nomail@example.com", PW).await);
    for path in [
        "/v1/auth/password/forgot",
        "/v1/auth/email-otp/request",
        "/v1/auth/magic-link/request",
    ] {
        assert_error(
            &app.post_with_key(path, &p.pk, json!({"email": "nomail@example.com"}))
                .await,
            503,
            "email_not_configured",
        );
    }
    assert_error(
        &app.authed(
            Method::POST,
            "/v1/auth/email/verify/request",
            &p.pk,
            &at,
            None,
        )
        .await,
        503,
        "email_not_configured",
    );
    assert_error(
        &app.authed(
            Method::POST,
            "/v1/auth/phone",
            &p.pk,
            &at,
            Some(json!({"phone": "+447700900123"})),
        )
        .await,
        503,
        "sms_not_configured",
    );
    app.stop().await;
}

async fn the_per_ip_limit_holds_under_concurrency(store: Store) {
    let smtp = TestSmtp::start().await;
    let Some(app) = TestApp::spawn_with(
        store,
        &[
            ("IDENTITY_SMTP_URL", &smtp.url()),
            ("IDENTITY_EMAIL_FROM", "auth@identity.test"),
        ],
    )
    .await
    else {
        return;
    };
    let p = app.create_project("limits").await;
    // Forty requests at once from one address: the default 10 a minute pass.
    let results = futures_util::future::join_all((0..40).map(|i| {
        app.post_with_key(
            "/v1/auth/password/forgot",
            &p.pk,
            json!({"email": format!("x{i}@example.com")}),
        )
    }))
    .await;
    let ok = results.iter().filter(|(s, _)| *s == 204).count();
    let limited = results
        .iter()
        .filter(|(s, b)| *s == 429 && b["error"]["code"] == "too_many_attempts")
        .count();
    assert_eq!((ok, limited), (10, 30), "{results:?}");
    app.stop().await;
}

/// Someone registers the victim's address with their own password and
/// second factor before the victim ever signs up. When the victim proves
/// the mailbox (a magic link), the squatter's sessions, password and
/// factor are gone, and no challenge stands in the owner's way.
async fn the_mailbox_owner_reclaims_an_account_set_up_by_someone_else(store: Store) {
    let smtp = TestSmtp::start().await;
    let Some((app, p)) = setup(store, &smtp, &[]).await else {
        return;
    };
    let squatter = app.register(&p.pk, "victim@example.com", PW).await;
    let at = access_token(&squatter);
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
    // The owner signs in by link: straight in, no challenge.
    post(
        &app,
        &p,
        "/v1/auth/magic-link/request",
        json!({"email": "victim@example.com"}),
    )
    .await;
    let m = smtp.wait_for(1, WAIT).await[0].clone();
    let (s, b) = post(
        &app,
        &p,
        "/v1/auth/magic-link/verify",
        json!({"token": token_of(&m)}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert!(b["access_token"].is_string(), "{b}");
    assert_eq!(b["user"]["mfa_enabled"], false);
    assert_eq!(b["user"]["email_verified"], true);
    // The squatter is out: session, refresh token and password.
    let (s, _) = app
        .authed(Method::GET, "/v1/auth/session", &p.pk, &at, None)
        .await;
    assert_eq!(s, 401);
    let (s, _) = post(
        &app,
        &p,
        "/v1/auth/refresh",
        json!({"refresh_token": squatter["refresh_token"]}),
    )
    .await;
    assert_eq!(s, 401);
    assert_eq!(app.login(&p.pk, "victim@example.com", PW).await.0, 401);
    let (_, events) = app
        .get_with_key("/v1/audit-events?type=account.reclaimed", &p.sk)
        .await;
    assert_eq!(events["items"].as_array().unwrap().len(), 1, "{events}");
    app.stop().await;
}

/// Five wrong codes kill a code, and ten in a day end guessing for that
/// address, however many new codes are asked for.
async fn code_guesses_are_budgeted_across_codes(store: Store) {
    let smtp = TestSmtp::start().await;
    let Some((app, p)) = setup(store, &smtp, &[]).await else {
        return;
    };
    app.register(&p.pk, "budget@example.com", PW).await;
    let mut sent = 0;
    let mut code = String::new();
    for round in 0..3 {
        post(
            &app,
            &p,
            "/v1/auth/email-otp/request",
            json!({"email": "budget@example.com"}),
        )
        .await;
        sent += 1;
        code = smtp.wait_for(sent, WAIT).await[sent - 1].code().unwrap();
        if round == 2 {
            break;
        }
        let wrong = if code == "000000" { "111111" } else { "000000" };
        for _ in 0..5 {
            assert_error(
                &post(
                    &app,
                    &p,
                    "/v1/auth/email-otp/verify",
                    json!({"email": "budget@example.com", "code": wrong}),
                )
                .await,
                401,
                "invalid_code",
            );
        }
        // The spent code expires and the sweeper runs: its count stays.
        let mut tx = app.db().control().await.unwrap();
        tx.execute(
            sea_query::Query::update()
                .table(identity_shared::schema::OneTimeCodes::Table)
                .value(identity_shared::schema::OneTimeCodes::ExpiresAt, 1i64),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        identity_data_plane::workers::sweeper::sweep(app.db())
            .await
            .unwrap();
    }
    // Ten wrong codes today: even the right one is refused.
    assert_error(
        &post(
            &app,
            &p,
            "/v1/auth/email-otp/verify",
            json!({"email": "budget@example.com", "code": code}),
        )
        .await,
        401,
        "invalid_code",
    );
    // Sign-in links are a different kind: their cap and budget are their own.
    post(
        &app,
        &p,
        "/v1/auth/magic-link/request",
        json!({"email": "budget@example.com"}),
    )
    .await;
    let m = smtp.wait_for(sent + 1, WAIT).await[sent].clone();
    let (s, b) = post(
        &app,
        &p,
        "/v1/auth/magic-link/verify",
        json!({"token": token_of(&m)}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    app.stop().await;
}

/// A project's template override reaches its users and the operators'
/// preview; a bad override is refused when saved; the admin listener's
/// metrics count the outbox.
async fn template_overrides_previews_and_metrics(store: Store) {
    let smtp = TestSmtp::start().await;
    let Some((app, p)) = setup(store, &smtp, &[]).await else {
        return;
    };
    let settings = |v: Value| {
        let app = &app;
        let path = format!("/v1/projects/{}", p.id);
        async move {
            app.admin(Method::PATCH, &path, Some(json!({"settings": v})))
                .await
        }
    };
    for bad in [
        json!({"email_templates": {"magic_link": {"subject": "Hi {{nope}}"}}}),
        json!({"email_templates": {"magic_link": {"subject": "two\nlines"}}}),
        json!({"email_templates": {"phone_code": {"html": "<b>{{code}}</b>"}}}),
        json!({"email_templates": {"unknown_kind": {"text": "x"}}}),
        json!({"links_base_url": "not a url"}),
        json!({"email_from": "Evil <x@y>"}),
        json!({"messaging": {"sms_per_number_per_day": -1}}),
    ] {
        let (s, b) = settings(bad.clone()).await;
        assert_eq!(s, 422, "{bad} -> {b}");
        assert_eq!(b["error"]["code"], "invalid_settings");
    }
    let (s, b) = settings(json!({
        "email_templates": {"magic_link": {
            "subject": "Your {{project_name}} sign-in link",
            "html": "<p>Hello {{email}}: <a href=\"{{link}}\">sign in</a></p>"
        }},
        "links_base_url": "https://login.example.com",
        "email_from": "Acme Login"
    }))
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, preview) = app
        .admin(
            Method::GET,
            &format!("/v1/projects/{}/email-templates/magic_link/preview", p.id),
            None,
        )
        .await;
    assert_eq!(s, 200, "{preview}");
    assert_eq!(preview["overridden"], true);
    assert_eq!(preview["subject"], "Your mail sign-in link");
    assert!(
        preview["text"].as_str().unwrap().contains("http"),
        "default text kept: {preview}"
    );
    let (s, _) = app
        .admin(
            Method::GET,
            &format!(
                "/v1/projects/{}/email-templates/password_reset/preview",
                p.id
            ),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let (s, b) = app
        .admin(
            Method::GET,
            &format!("/v1/projects/{}/email-templates/nope/preview", p.id),
            None,
        )
        .await;
    assert_eq!(s, 404, "{b}");
    assert_eq!(b["error"]["code"], "unknown_template");

    // Values are escaped in the HTML part, not in the text.
    let (s, _) = post(
        &app,
        &p,
        "/v1/auth/magic-link/request",
        json!({"email": "tom&jerry@example.com", "create_user": true}),
    )
    .await;
    assert_eq!(s, 204);
    let m = smtp.wait_for(1, WAIT).await[0].clone();
    assert_eq!(m.subject().as_deref(), Some("Your mail sign-in link"));
    assert!(
        m.header("from").unwrap_or_default().contains("Acme Login"),
        "{:?}",
        m.header("from")
    );
    assert!(
        m.find("https://login.example.com/magic-link?token=")
            .is_some(),
        "{}",
        m.text_body()
    );
    assert!(
        m.html_body().contains("Hello tom&amp;jerry@example.com"),
        "{}",
        m.html_body()
    );
    assert!(!m.html_body().contains("tom&jerry"), "{}", m.html_body());

    // Metrics: one magic link sent.
    eventually(WAIT, || async {
        let text = app
            .client
            .get(format!("{}/metrics", app.admin))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.contains("identity_outbox_messages{channel=\"email\",kind=\"magic_link\",status=\"sent\"} 1")
            && text.contains("identity_outbox_deliveries_total{channel=\"email\",kind=\"magic_link\",outcome=\"sent\"} 1")
            && text.contains("identity_metrics_databases_reachable 1")
    })
    .await;
    app.stop().await;
}

/// When an address becomes verified, the user joins every tenant of the
/// project whose verified domain is the address's (role `member`); an
/// unverified tenant domain, another domain or another project's tenant
/// does not count.
async fn a_verified_address_joins_the_tenants_of_its_domain(store: Store) {
    let smtp = TestSmtp::start().await;
    let dns = crate::support::dns::TestDns::start().await;
    let ns = dns.addr.to_string();
    let Some((app, p)) = setup(store, &smtp, &[("IDENTITY_DNS_NAMESERVERS", &ns)]).await else {
        return;
    };
    let other = app.create_project("other").await;
    // Globex has globex.test, verified; Initech has initech.test,
    // unverified; another project's tenant has globex.test, verified.
    let mut tenants = Vec::new();
    for (project, name, domain, verify) in [
        (&p, "Globex", "globex.test", true),
        (&p, "Initech", "initech.test", false),
        (&other, "Globex elsewhere", "globex.test", true),
    ] {
        let base = format!("/v1/projects/{}/tenants", project.id);
        let (s, t) = app
            .admin(Method::POST, &base, Some(json!({"name": name})))
            .await;
        assert_eq!(s, 201, "{t}");
        let tid = t["tenant"]["id"].as_str().unwrap().to_string();
        app.tenant_domain(&dns, &project.id, &tid, domain, verify)
            .await;
        tenants.push(tid);
    }
    let memberships = |user_id: String| {
        let app = &app;
        async move {
            let mut tx = app.db().control().await.unwrap();
            let rows: Vec<(String, String, String)> = tx
                .fetch_all(
                    sea_query::Query::select()
                        .columns([
                            identity_shared::schema::TenantMembers::TenantId,
                            identity_shared::schema::TenantMembers::Role,
                            identity_shared::schema::TenantMembers::Source,
                        ])
                        .from(identity_shared::schema::TenantMembers::Table)
                        .and_where(sea_query::ExprTrait::eq(
                            sea_query::Expr::col(identity_shared::schema::TenantMembers::UserId),
                            user_id,
                        )),
                )
                .await
                .unwrap();
            tx.commit().await.unwrap();
            rows
        }
    };
    let signed = app.register(&p.pk, "Ada@Globex.test", PW).await;
    let user_id = signed["user"]["id"].as_str().unwrap().to_string();
    assert!(
        memberships(user_id.clone()).await.is_empty(),
        "not before verification"
    );
    let at = access_token(&signed);
    app.authed(
        Method::POST,
        "/v1/auth/email/verify/request",
        &p.pk,
        &at,
        None,
    )
    .await;
    let code = smtp.wait_for(1, WAIT).await[0].code().unwrap();
    let (s, b) = app
        .authed(
            Method::POST,
            "/v1/auth/email/verify/confirm",
            &p.pk,
            &at,
            Some(json!({"code": code})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        memberships(user_id.clone()).await,
        vec![(
            tenants[0].clone(),
            "member".to_string(),
            "domain".to_string()
        )]
    );
    let (_, events) = app
        .get_with_key(
            &format!("/v1/audit-events?type=membership.created&user_id={user_id}"),
            &p.sk,
        )
        .await;
    assert_eq!(events["items"].as_array().unwrap().len(), 1, "{events}");
    // Sign-up by emailed code at an unverified tenant domain: no membership.
    post(
        &app,
        &p,
        "/v1/auth/email-otp/request",
        json!({"email": "bob@initech.test", "create_user": true}),
    )
    .await;
    let code = smtp.wait_for(2, WAIT).await[1].code().unwrap();
    let (s, b) = post(
        &app,
        &p,
        "/v1/auth/email-otp/verify",
        json!({"email": "bob@initech.test", "code": code}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert!(
        memberships(b["user"]["id"].as_str().unwrap().to_string())
            .await
            .is_empty()
    );
    // ... and at the verified one: a membership, for a brand-new account too.
    post(
        &app,
        &p,
        "/v1/auth/email-otp/request",
        json!({"email": "cy@globex.test", "create_user": true}),
    )
    .await;
    let code = smtp.wait_for(3, WAIT).await[2].code().unwrap();
    let (s, b) = post(
        &app,
        &p,
        "/v1/auth/email-otp/verify",
        json!({"email": "cy@globex.test", "code": code}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let cy = b["user"]["id"].as_str().unwrap().to_string();
    let cy_at = access_token(&b);
    assert_eq!(memberships(cy.clone()).await.len(), 1);
    // Cy becomes Globex's only owner. Both move to another domain: Ada's
    // membership ends with her address; Cy's stays (a tenant keeps an
    // owner).
    let (s, b) = app
        .send_with_key(
            Method::PATCH,
            &format!("/v1/tenants/{}/members/{cy}", tenants[0]),
            &p.sk,
            Some(json!({"role": "owner"})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    for (at, new, sent) in [
        (&at, "ada@elsewhere.test", 5),
        (&cy_at, "cy@elsewhere.test", 7),
    ] {
        let (s, b) = app
            .authed(
                Method::POST,
                "/v1/auth/email/change",
                &p.pk,
                at,
                Some(json!({"new_email": new})),
            )
            .await;
        assert_eq!(s, 204, "{b}");
        let sent = smtp.wait_for(sent, WAIT).await;
        let link = sent.iter().rev().find(|m| m.to == [new]).expect("a link");
        let (s, b) = post(
            &app,
            &p,
            "/v1/auth/email/change/confirm",
            json!({"token": token_of(link)}),
        )
        .await;
        assert_eq!(s, 200, "{b}");
    }
    assert!(memberships(user_id).await.is_empty());
    assert_eq!(
        memberships(cy).await,
        vec![(
            tenants[0].clone(),
            "owner".to_string(),
            "domain".to_string()
        )]
    );
    app.stop().await;
}

/// A node claims a message and dies before delivering it (the test plays
/// that node: it claims with a short lease and never reports): once the
/// lease ends, a live node delivers it.
async fn a_node_that_dies_after_claiming_loses_nothing(store: Store) {
    let smtp = TestSmtp::start().await;
    let Some((app, p)) = setup(store, &smtp, &[("IDENTITY_OUTBOX_BACKOFF_MS", "600000")]).await
    else {
        return;
    };
    app.register(&p.pk, "crash@example.com", PW).await;
    smtp.stop().await;
    post(
        &app,
        &p,
        "/v1/auth/password/forgot",
        json!({"email": "crash@example.com"}),
    )
    .await;
    // The first attempt fails; the next is ten minutes away.
    eventually(WAIT, || async {
        messages(&app, &p, "queued")
            .await
            .first()
            .is_some_and(|m| m["attempts"] == 1)
    })
    .await;
    // The mail server is back, but the message is not due for ten minutes.
    smtp.restart().await;
    // The doomed node: makes it due and claims it in one transaction.
    let mut tx = app.db().control().await.unwrap();
    tx.execute(
        sea_query::Query::update()
            .table(identity_shared::schema::OutboxMessages::Table)
            .value(identity_shared::schema::OutboxMessages::NextAttemptAt, 0i64),
    )
    .await
    .unwrap();
    let now = identity_shared::time::now_ms();
    let claimed = identity_data_plane::store::outbox::claim(&mut tx, now, 500, 16)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(claimed.len(), 1);
    let m = smtp.wait_for(1, WAIT).await[0].clone();
    assert_eq!(m.to, vec!["crash@example.com".to_string()]);
    eventually(WAIT, || async {
        messages(&app, &p, "sent").await.len() == 1
    })
    .await;
    let sent = messages(&app, &p, "sent").await;
    assert_eq!(
        sent[0]["attempts"], 3,
        "failed, claimed by the dead node, delivered: {sent:?}"
    );
    app.stop().await;
}

/// A link or code past its lifetime is refused like a wrong one.
async fn expired_links_and_codes_are_refused(store: Store) {
    let smtp = TestSmtp::start().await;
    let Some((app, p)) = setup(store, &smtp, &[]).await else {
        return;
    };
    app.register(&p.pk, "late@example.com", PW).await;
    post(
        &app,
        &p,
        "/v1/auth/password/forgot",
        json!({"email": "late@example.com"}),
    )
    .await;
    post(
        &app,
        &p,
        "/v1/auth/email-otp/request",
        json!({"email": "late@example.com"}),
    )
    .await;
    post(
        &app,
        &p,
        "/v1/auth/magic-link/request",
        json!({"email": "late@example.com"}),
    )
    .await;
    let sent = smtp.wait_for(3, WAIT).await;
    let with_link = |path: &str| {
        sent.iter()
            .find(|m| m.find("http").is_some_and(|l| l.contains(path)))
            .unwrap_or_else(|| panic!("no {path} link in {sent:?}"))
            .clone()
    };
    let reset = token_of(&with_link("/reset-password"));
    let link = token_of(&with_link("/magic-link"));
    let code = sent
        .iter()
        .find(|m| m.find("http").is_none())
        .and_then(|m| m.code())
        .expect("the code message");
    // Time passes (each secret's expiry moved into the past).
    let mut tx = app.db().control().await.unwrap();
    tx.execute(
        sea_query::Query::update()
            .table(identity_shared::schema::OneTimeCodes::Table)
            .value(identity_shared::schema::OneTimeCodes::ExpiresAt, 1i64),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_error(
        &post(
            &app,
            &p,
            "/v1/auth/password/reset",
            json!({"token": reset, "new_password": "a brand new passphrase"}),
        )
        .await,
        400,
        "invalid_token",
    );
    assert_error(
        &post(
            &app,
            &p,
            "/v1/auth/email-otp/verify",
            json!({"email": "late@example.com", "code": code}),
        )
        .await,
        401,
        "invalid_code",
    );
    assert_error(
        &post(
            &app,
            &p,
            "/v1/auth/magic-link/verify",
            json!({"token": link}),
        )
        .await,
        400,
        "invalid_token",
    );
    assert_eq!(
        app.login(&p.pk, "late@example.com", PW).await.0,
        200,
        "the password stands"
    );
    app.stop().await;
}

/// The email sign-in routes set session cookies on cookie transport: a
/// cross-site form post (or a foreign or null Origin) sets none and
/// spends nothing.
async fn cross_site_posts_to_email_sign_in_set_nothing(store: Store) {
    let smtp = TestSmtp::start().await;
    let Some((app, p)) = setup(store, &smtp, &[]).await else {
        return;
    };
    // A verified account (an unverified one would be reclaimed by the
    // first sign-in, voiding the other pending link).
    let (s, b) = app
        .post_with_key(
            "/v1/users",
            &p.sk,
            json!({"email": "form@example.com", "password": PW, "email_verified": true}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    post(
        &app,
        &p,
        "/v1/auth/email-otp/request",
        json!({"email": "form@example.com"}),
    )
    .await;
    post(
        &app,
        &p,
        "/v1/auth/magic-link/request",
        json!({"email": "form@example.com"}),
    )
    .await;
    let sent = smtp.wait_for(2, WAIT).await;
    let code = sent.iter().find_map(|m| m.code()).unwrap();
    let link = token_of(
        sent.iter()
            .find(|m| m.find("http").is_some_and(|l| l.contains("/magic-link")))
            .unwrap(),
    );
    for (path, body) in [
        (
            "/v1/auth/email-otp/verify",
            json!({"email": "form@example.com", "code": code}),
        ),
        ("/v1/auth/magic-link/verify", json!({"token": link})),
    ] {
        for (content_type, origin) in [
            ("text/plain", "https://evil.test"),
            ("application/json", "https://evil.test"),
            ("text/plain", "null"),
        ] {
            let resp = app
                .public_req(Method::POST, path)
                .header("x-project-key", &p.pk)
                .header("x-token-transport", "cookie")
                .header("origin", origin)
                .header("content-type", content_type)
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            assert!(
                (400..500).contains(&status),
                "{path} {content_type} {origin}: {status}"
            );
            assert!(
                resp.headers().get("set-cookie").is_none(),
                "{path}: cookies set"
            );
        }
        // Nothing was spent: the real app signs in with it.
        let (s, b) = post(&app, &p, path, body).await;
        assert_eq!(s, 200, "{path}: {b}");
    }
    app.stop().await;
}

/// In dev mode without SMTP, emails are written to the log and counted as
/// delivered.
async fn dev_mode_logs_instead_of_sending(store: Store) {
    let Some(app) = TestApp::spawn_with(store, &[("IDENTITY_OUTBOX_POLL_MS", "50")]).await else {
        return;
    };
    let p = app.create_project("devmail").await;
    app.register(&p.pk, "dev@example.com", PW).await;
    let (s, _) = app
        .post_with_key(
            "/v1/auth/password/forgot",
            &p.pk,
            json!({"email": "dev@example.com"}),
        )
        .await;
    assert_eq!(s, 204);
    eventually(WAIT, || async {
        messages(&app, &p, "sent").await.len() == 1
    })
    .await;
    app.stop().await;
}

/// Forty requests at once for one address or number: the caps hold
/// exactly (five reset emails; three SMS to one number, then the project's
/// daily SMS cap).
async fn caps_hold_when_forty_requests_arrive_at_once(store: Store) {
    let smtp = TestSmtp::start().await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let sms = TestSmsWebhook::start(secret).await;
    let url = sms.url();
    let Some((app, p)) = setup(
        store,
        &smtp,
        &[
            ("IDENTITY_SMS_WEBHOOK_URL", &url),
            ("IDENTITY_SMS_WEBHOOK_SECRET", secret),
        ],
    )
    .await
    else {
        return;
    };
    let (s, b) = app
        .admin(
            Method::PATCH,
            &format!("/v1/projects/{}", p.id),
            Some(json!({"settings": {"messaging": {"sms_per_number_per_day": 3, "sms_per_project_per_day": 5}}})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let at = access_token(&app.register(&p.pk, "many@example.com", PW).await);
    let results = futures_util::future::join_all((0..40).map(|_| {
        post(
            &app,
            &p,
            "/v1/auth/password/forgot",
            json!({"email": "many@example.com"}),
        )
    }))
    .await;
    assert!(results.iter().all(|(s, _)| *s == 204));
    smtp.wait_for(5, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        smtp.messages().len(),
        5,
        "the per-address cap under concurrency"
    );

    let phone = |number: &'static str| {
        let (app, at, pk) = (&app, at.clone(), p.pk.clone());
        async move {
            app.authed(
                Method::POST,
                "/v1/auth/phone",
                &pk,
                &at,
                Some(json!({"phone": number})),
            )
            .await
        }
    };
    let results = futures_util::future::join_all((0..40).map(|_| phone("+447700900123"))).await;
    let ok = results.iter().filter(|(s, _)| *s == 204).count();
    assert_eq!(ok, 3, "{results:?}");
    assert!(
        results
            .iter()
            .all(|(s, b)| *s == 204 || b["error"]["code"] == "too_many_messages")
    );
    // Two more numbers reach the project's cap of five; the next is refused.
    assert_eq!(phone("+447700900124").await.0, 204);
    assert_eq!(phone("+447700900125").await.0, 204);
    assert_error(&phone("+447700900126").await, 429, "too_many_messages");
    assert_eq!(sms.wait_for(5, WAIT).await.len(), 5);
    app.stop().await;
}

/// A pending email change is bound to the session that asked: signing out,
/// or a password reset (which ends every session), kills its link.
async fn an_email_change_dies_with_the_session_that_asked(store: Store) {
    let smtp = TestSmtp::start().await;
    let Some((app, p)) = setup(store, &smtp, &[]).await else {
        return;
    };
    let signed = app.register(&p.pk, "bound@example.com", PW).await;
    let at = access_token(&signed);
    let (s, _) = app
        .authed(
            Method::POST,
            "/v1/auth/email/change",
            &p.pk,
            &at,
            Some(json!({"new_email": "thief@example.com"})),
        )
        .await;
    assert_eq!(s, 204);
    let sent = smtp.wait_for(2, WAIT).await;
    let link = token_of(
        sent.iter()
            .find(|m| m.to == vec!["thief@example.com".to_string()])
            .unwrap(),
    );
    let (s, _) = app
        .authed(Method::POST, "/v1/auth/logout", &p.pk, &at, None)
        .await;
    assert!(s.is_success(), "{s}");
    assert_error(
        &post(
            &app,
            &p,
            "/v1/auth/email/change/confirm",
            json!({"token": link}),
        )
        .await,
        400,
        "invalid_token",
    );
    // From a new session, then a password reset: the link is dead too.
    let (_, again) = app.login(&p.pk, "bound@example.com", PW).await;
    let at = access_token(&again);
    app.authed(
        Method::POST,
        "/v1/auth/email/change",
        &p.pk,
        &at,
        Some(json!({"new_email": "thief2@example.com"})),
    )
    .await;
    let sent = smtp.wait_for(4, WAIT).await;
    let link = token_of(
        sent.iter()
            .find(|m| m.to == vec!["thief2@example.com".to_string()])
            .unwrap(),
    );
    post(
        &app,
        &p,
        "/v1/auth/password/forgot",
        json!({"email": "bound@example.com"}),
    )
    .await;
    let sent = smtp.wait_for(5, WAIT).await;
    let reset = sent
        .iter()
        .find_map(|m| {
            m.find("http")
                .filter(|l| l.contains("/reset-password"))
                .map(|_| token_of(m))
        })
        .unwrap();
    let (s, _) = post(
        &app,
        &p,
        "/v1/auth/password/reset",
        json!({"token": reset, "new_password": "a brand new passphrase"}),
    )
    .await;
    assert_eq!(s, 204);
    assert_error(
        &post(
            &app,
            &p,
            "/v1/auth/email/change/confirm",
            json!({"token": link}),
        )
        .await,
        400,
        "invalid_token",
    );
    assert_eq!(
        app.login(&p.pk, "bound@example.com", "a brand new passphrase")
            .await
            .0,
        200
    );
    app.stop().await;
}
