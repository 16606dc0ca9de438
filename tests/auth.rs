//! Core auth on the data plane: API.md's "Accounts and sessions" and
//! "Server-side calls" tables, on both backends.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::on_both;
use crate::support::{
    Project, Store, TestApp, access_token as token, assert_error, raw_http, send,
};

on_both!(
    register_login_session_logout,
    jwt_verifies_as_a_relying_party,
    tokens_do_not_cross_projects,
    refresh_rotation_reuse_and_grace,
    fifty_concurrent_refreshes_leave_one_chain,
    refresh_rewrites_last_seen_only_when_stale,
    session_management,
    password_change,
    lockout_policy,
    rate_limits,
    server_side_users_and_bcrypt_import,
    the_secret_key_ends_every_session,
    audit_events,
    bad_input_is_a_clear_4xx,
    session_checks_are_cached,
    sweeper_deletes_expired_rows,
);

const PW: &str = "correct horse battery staple";

async fn setup(store: Store) -> Option<(TestApp, Project)> {
    let app = TestApp::spawn(store).await?;
    let p = app.create_project("auth").await;
    Some((app, p))
}

fn refresh_token(body: &Value) -> String {
    body["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_string()
}

async fn register_login_session_logout(store: Store) {
    let Some((app, p)) = setup(store).await else {
        return;
    };
    let body = app.register(&p.pk, "  Alice@Example.COM ", PW).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert!(body["refresh_token"].as_str().unwrap().len() >= 43);
    let user = &body["user"];
    assert!(user["id"].as_str().unwrap().starts_with("usr_"));
    assert_eq!(
        user["email"], "Alice@Example.COM",
        "the stored form keeps what the user typed, trimmed"
    );
    assert_eq!(user["email_verified"], false);
    assert_eq!(user["mfa_enabled"], false);
    assert!(user["created_at"].is_string());
    assert!(body["session"]["id"].as_str().unwrap().starts_with("ses_"));

    for email in ["alice@example.com", "ALICE@EXAMPLE.COM"] {
        let got = app
            .post_with_key(
                "/v1/auth/register",
                &p.pk,
                json!({"email": email, "password": PW}),
            )
            .await;
        assert_error(&got, 409, "email_taken");
    }
    for (pw, code) in [
        ("short", "weak_password"),
        (&"x".repeat(257)[..], "weak_password"),
        ("eleven char", "weak_password"),
    ] {
        let got = app
            .post_with_key(
                "/v1/auth/register",
                &p.pk,
                json!({"email": "bob@example.com", "password": pw}),
            )
            .await;
        assert_error(&got, 422, code);
    }
    let got = app
        .post_with_key(
            "/v1/auth/register",
            &p.pk,
            json!({"email": "not-an-email", "password": PW}),
        )
        .await;
    assert_error(&got, 422, "invalid_email");
    // Exactly 12 and exactly 256 characters are fine; so is organization_name.
    let (s, _) = app
        .post_with_key("/v1/auth/register", &p.pk, json!({"email": "b1@example.com", "password": "twelve chars", "organization_name": "Acme"}))
        .await;
    assert_eq!(s, 201);
    let (s, _) = app
        .post_with_key(
            "/v1/auth/register",
            &p.pk,
            json!({"email": "b2@example.com", "password": "é".repeat(256)}),
        )
        .await;
    assert_eq!(s, 201);

    let got = app
        .login(&p.pk, "alice@example.com", "wrong password")
        .await;
    assert_error(&got, 401, "invalid_credentials");
    let got = app.login(&p.pk, "nobody@example.com", PW).await;
    assert_error(&got, 401, "invalid_credentials");
    let (s, login) = app.login(&p.pk, "ALICE@example.com", PW).await;
    assert_eq!(s, 200, "{login}");
    assert_eq!(login["user"]["id"], user["id"]);
    assert_ne!(
        login["session"]["id"], body["session"]["id"],
        "every login is a new session"
    );
    let at = token(&login);

    let (s, me) = app
        .authed(Method::GET, "/v1/auth/session", &p.pk, &at, None)
        .await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(me["user"]["email"], "Alice@Example.COM");
    assert_eq!(me["session"]["id"], login["session"]["id"]);
    let got = app.get_with_key("/v1/auth/session", &p.pk).await;
    assert_error(&got, 401, "unauthenticated");

    let (s, _) = app
        .authed(Method::POST, "/v1/auth/logout", &p.pk, &at, None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let got = app
        .authed(Method::GET, "/v1/auth/session", &p.pk, &at, None)
        .await;
    assert_error(&got, 401, "session_revoked");
    // The first session is untouched.
    let (s, _) = app
        .authed(Method::GET, "/v1/auth/session", &p.pk, &token(&body), None)
        .await;
    assert_eq!(s, 200);
    app.stop().await;
}

async fn jwt_verifies_as_a_relying_party(store: Store) {
    use jsonwebtoken::{DecodingKey, Validation, decode, decode_header, jwk::JwkSet};
    let Some((app, p)) = setup(store).await else {
        return;
    };
    for alg in ["EdDSA", "RS256"] {
        if alg == "RS256" {
            let (s, _) = app
                .admin(
                    Method::PATCH,
                    &format!("/v1/projects/{}", p.id),
                    Some(json!({"settings": {"signing_alg": "RS256"}})),
                )
                .await;
            assert_eq!(s, 200);
        }
        let email = format!("rp-{alg}@example.com");
        let body = app.register(&p.pk, &email, PW).await;
        let at = token(&body);
        // As a relying party: discovery, then the JWKS over HTTP.
        let (_, oidc) = app
            .get_with_key("/.well-known/openid-configuration", &p.pk)
            .await;
        let issuer = oidc["issuer"].as_str().unwrap();
        let (_, jwks) = send(
            app.client
                .get(format!("{}/{}/.well-known/jwks.json", app.public, p.id)),
        )
        .await;
        let jwks: JwkSet = serde_json::from_value(jwks).unwrap();
        let header = decode_header(&at).unwrap();
        assert_eq!(format!("{:?}", header.alg), alg);
        let kid = header.kid.expect("kid in the header");
        let jwk = jwks.find(&kid).expect("the kid is published");
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[&p.id]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = decode::<Value>(&at, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
            .expect("the token verifies");
        let c = data.claims;
        assert_eq!(c["sub"], body["user"]["id"]);
        assert_eq!(c["sid"], body["session"]["id"]);
        assert_eq!(c["pid"], p.id.as_str());
        assert_eq!(c["amr"], json!(["pwd"]));
        assert!(c["jti"].is_string());
        assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 900);
        // A wrong audience or issuer fails for the relying party too.
        let mut wrong = Validation::new(header.alg);
        wrong.set_audience(&["prj_other"]);
        assert!(decode::<Value>(&at, &DecodingKey::from_jwk(jwk).unwrap(), &wrong).is_err());
        // And the server accepts it.
        let (s, _) = app
            .authed(Method::GET, "/v1/auth/session", &p.pk, &at, None)
            .await;
        assert_eq!(s, 200);
    }
    // Tampering with the payload breaks the signature.
    let body = app.register(&p.pk, "tamper@example.com", PW).await;
    let at = token(&body);
    let mut parts: Vec<String> = at.split('.').map(str::to_string).collect();
    parts[1].insert(5, 'A');
    let got = app
        .authed(
            Method::GET,
            "/v1/auth/session",
            &p.pk,
            &parts.join("."),
            None,
        )
        .await;
    assert_error(&got, 401, "invalid_token");
    for junk in ["abc", "a.b.c", "", "x.y.z.w"] {
        let got = app
            .authed(Method::GET, "/v1/auth/session", &p.pk, junk, None)
            .await;
        assert!(got.0 == 401, "{junk}: {:?}", got);
    }
    app.stop().await;
}

async fn tokens_do_not_cross_projects(store: Store) {
    let Some((app, a)) = setup(store).await else {
        return;
    };
    let b = app.create_project("b").await;
    let ta = app.register(&a.pk, "same@example.com", PW).await;
    // The same email is a different account in another project.
    let tb = app.register(&b.pk, "same@example.com", PW).await;
    assert_ne!(ta["user"]["id"], tb["user"]["id"]);
    let got = app
        .authed(Method::GET, "/v1/auth/session", &b.pk, &token(&ta), None)
        .await;
    assert_error(&got, 401, "invalid_token");
    let got = app
        .post_with_key(
            "/v1/auth/refresh",
            &b.pk,
            json!({"refresh_token": refresh_token(&ta)}),
        )
        .await;
    assert_error(&got, 401, "invalid_refresh_token");
    let (s, _) = app
        .authed(Method::GET, "/v1/auth/session", &a.pk, &token(&ta), None)
        .await;
    assert_eq!(s, 200);
    app.stop().await;
}

async fn refresh_with(app: &TestApp, key: &str, rt: &str, ua: &str) -> (StatusCode, Value) {
    send(
        app.public_req(Method::POST, "/v1/auth/refresh")
            .header("x-project-key", key)
            .header("user-agent", ua)
            .json(&json!({"refresh_token": rt})),
    )
    .await
}

async fn refresh_rotation_reuse_and_grace(store: Store) {
    let Some((app, p)) = setup(store).await else {
        return;
    };
    let body = app.register(&p.pk, "r@example.com", PW).await;
    let rt0 = refresh_token(&body);
    let (s, r1) = refresh_with(&app, &p.pk, &rt0, "tab").await;
    assert_eq!(s, 200, "{r1}");
    let rt1 = refresh_token(&r1);
    assert_ne!(rt1, rt0);
    assert_eq!(r1["session"]["id"], body["session"]["id"]);
    assert_ne!(token(&r1), token(&body));
    // Another tab retrying the consumed token within the grace window gets the same successor.
    let (s, again) = refresh_with(&app, &p.pk, &rt0, "tab").await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(refresh_token(&again), rt1);
    // A different client presenting it is reuse.
    let (s, r2) = refresh_with(&app, &p.pk, &rt1, "tab").await;
    assert_eq!(s, 200);
    let rt2 = refresh_token(&r2);
    // rt0's successor is spent: presenting rt0 now is reuse, and ends the session.
    let got = refresh_with(&app, &p.pk, &rt0, "tab").await;
    assert_error(&got, 401, "refresh_token_reused");
    let got = refresh_with(&app, &p.pk, &rt2, "tab").await;
    assert_error(&got, 401, "session_revoked");
    let got = app
        .authed(Method::GET, "/v1/auth/session", &p.pk, &token(&r2), None)
        .await;
    assert_error(&got, 401, "session_revoked");

    // A different user agent within the window: reuse.
    let (_, body) = app.login(&p.pk, "r@example.com", PW).await;
    let rt0 = refresh_token(&body);
    assert_eq!(refresh_with(&app, &p.pk, &rt0, "tab").await.0, 200);
    let got = refresh_with(&app, &p.pk, &rt0, "attacker").await;
    assert_error(&got, 401, "refresh_token_reused");

    // After the window: reuse.
    app.admin(
        Method::PATCH,
        &format!("/v1/projects/{}", p.id),
        Some(json!({"settings": {"refresh_reuse_grace_seconds": 1}})),
    )
    .await;
    let (_, body) = app.login(&p.pk, "r@example.com", PW).await;
    let rt0 = refresh_token(&body);
    assert_eq!(refresh_with(&app, &p.pk, &rt0, "tab").await.0, 200);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let got = refresh_with(&app, &p.pk, &rt0, "tab").await;
    assert_error(&got, 401, "refresh_token_reused");

    for bad in [
        json!({"refresh_token": "nope"}),
        json!({"refresh_token": "x".repeat(500)}),
        json!({"refresh_token": ""}),
    ] {
        let got = app.post_with_key("/v1/auth/refresh", &p.pk, bad).await;
        assert_error(&got, 401, "invalid_refresh_token");
    }
    let got = app
        .post_with_key("/v1/auth/refresh", &p.pk, json!({}))
        .await;
    assert_error(&got, 400, "invalid_request");
    // Audit saw the reuse.
    let (_, events) = app
        .get_with_key("/v1/audit-events?type=token.reuse_detected", &p.sk)
        .await;
    assert_eq!(events["items"].as_array().unwrap().len(), 3, "{events}");
    app.stop().await;
}

async fn fifty_concurrent_refreshes_leave_one_chain(store: Store) {
    let Some((app, p)) = setup(store).await else {
        return;
    };
    let body = app.register(&p.pk, "c@example.com", PW).await;
    let rt0 = refresh_token(&body);
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let client = app.client.clone();
        let url = format!("{}/v1/auth/refresh", app.public);
        let (pk, rt) = (p.pk.clone(), rt0.clone());
        tasks.push(tokio::spawn(async move {
            send(
                client
                    .post(url)
                    .header("x-project-key", pk)
                    .header("user-agent", "tab")
                    .json(&json!({"refresh_token": rt})),
            )
            .await
        }));
    }
    let mut successors = std::collections::HashSet::new();
    for t in tasks {
        let (s, b) = t.await.unwrap();
        assert_eq!(s, 200, "{b}");
        successors.insert(refresh_token(&b));
    }
    assert_eq!(successors.len(), 1, "concurrent refreshes forked the chain");
    let rt1 = successors.into_iter().next().unwrap();
    // Exactly one live refresh token in the session, and it works.
    let live: i64 = count_live_refresh_tokens(&app, body["session"]["id"].as_str().unwrap()).await;
    assert_eq!(live, 1);
    let (s, r2) = refresh_with(&app, &p.pk, &rt1, "tab").await;
    assert_eq!(s, 200, "{r2}");
    assert_eq!(
        count_live_refresh_tokens(&app, body["session"]["id"].as_str().unwrap()).await,
        1
    );
    app.stop().await;
}

/// A refresh keeps the session's address and user agent current, but
/// rewrites `last_seen_at` at most once a minute (a busy session must not
/// become a hot row).
async fn refresh_rewrites_last_seen_only_when_stale(store: Store) {
    let Some((app, p)) = setup(store).await else {
        return;
    };
    let body = app.register(&p.pk, "seen@example.com", PW).await;
    let sid = body["session"]["id"].as_str().unwrap().to_string();
    let (s, r) = refresh_with(&app, &p.pk, &refresh_token(&body), "tab").await;
    assert_eq!(s, 200, "{r}");
    let (seen, agent) = session_facts(&app, &sid, None).await;
    assert_eq!(agent.as_deref(), Some("tab"));
    tokio::time::sleep(Duration::from_millis(20)).await;
    // The same client again, within the minute: the row is left alone.
    let (s, r) = refresh_with(&app, &p.pk, &refresh_token(&r), "tab").await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(session_facts(&app, &sid, None).await, (seen, agent.clone()));
    // A new user agent is written at once.
    let (s, r) = refresh_with(&app, &p.pk, &refresh_token(&r), "phone").await;
    assert_eq!(s, 200, "{r}");
    let (after, agent) = session_facts(&app, &sid, None).await;
    assert_eq!(agent.as_deref(), Some("phone"));
    assert!(after > seen);
    // A minute later the same client's refresh writes the time again, and
    // the session list shows it.
    let old = identity_shared::time::now_ms() - 61_000;
    session_facts(&app, &sid, Some(old)).await;
    let (s, r) = refresh_with(&app, &p.pk, &refresh_token(&r), "phone").await;
    assert_eq!(s, 200, "{r}");
    let (seen, _) = session_facts(&app, &sid, None).await;
    assert!(seen > old + 60_000, "{seen} {old}");
    let (_, list) = app
        .authed(Method::GET, "/v1/auth/sessions", &p.pk, &token(&r), None)
        .await;
    assert_eq!(list["items"][0]["user_agent"], "phone", "{list}");
    app.stop().await;
}

/// The session's stored `last_seen_at` and user agent; first sets
/// `last_seen_at` to `set` when given.
async fn session_facts(app: &TestApp, session_id: &str, set: Option<i64>) -> (i64, Option<String>) {
    use identity_shared::schema::Sessions;
    use sea_query::{Expr, ExprTrait, Query};
    let mut tx = app.db().control().await.unwrap();
    if let Some(at) = set {
        tx.execute(
            Query::update()
                .table(Sessions::Table)
                .value(Sessions::LastSeenAt, at)
                .and_where(Expr::col(Sessions::Id).eq(session_id)),
        )
        .await
        .unwrap();
    }
    let row: Option<(i64, Option<String>)> = tx
        .fetch_optional(
            Query::select()
                .columns([Sessions::LastSeenAt, Sessions::UserAgent])
                .from(Sessions::Table)
                .and_where(Expr::col(Sessions::Id).eq(session_id)),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    row.unwrap()
}

async fn count_live_refresh_tokens(app: &TestApp, session_id: &str) -> i64 {
    use identity_shared::schema::RefreshTokens;
    use sea_query::{Expr, ExprTrait, Query};
    let mut tx = app.db().control().await.unwrap();
    let rows: Vec<(String,)> = tx
        .fetch_all(
            Query::select()
                .column(RefreshTokens::Id)
                .from(RefreshTokens::Table)
                .and_where(Expr::col(RefreshTokens::SessionId).eq(session_id))
                .and_where(Expr::col(RefreshTokens::ConsumedAt).is_null()),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    rows.len() as i64
}

async fn session_management(store: Store) {
    let Some((app, p)) = setup(store).await else {
        return;
    };
    let first = app.register(&p.pk, "s@example.com", PW).await;
    let (_, second) = app.login(&p.pk, "s@example.com", PW).await;
    let (_, third) = app.login(&p.pk, "s@example.com", PW).await;
    let at = token(&third);
    let (s, list) = app
        .authed(Method::GET, "/v1/auth/sessions", &p.pk, &at, None)
        .await;
    assert_eq!(s, 200);
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items.iter().filter(|i| i["current"] == true).count(), 1);
    for i in items {
        assert!(
            i["ip"].is_string() && i["created_at"].is_string() && i["last_seen_at"].is_string()
        );
        assert!(i.get("user_agent").is_some());
    }
    let second_id = second["session"]["id"].as_str().unwrap();
    let (s, _) = app
        .authed(
            Method::DELETE,
            &format!("/v1/auth/sessions/{second_id}"),
            &p.pk,
            &at,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let got = app
        .authed(
            Method::GET,
            "/v1/auth/session",
            &p.pk,
            &token(&second),
            None,
        )
        .await;
    assert_error(&got, 401, "session_revoked");
    let got = app
        .authed(
            Method::DELETE,
            &format!("/v1/auth/sessions/{second_id}"),
            &p.pk,
            &at,
            None,
        )
        .await;
    assert_error(&got, 404, "not_found");
    // Another user's session is not ours to end.
    let other = app.register(&p.pk, "other@example.com", PW).await;
    let other_sid = other["session"]["id"].as_str().unwrap();
    let got = app
        .authed(
            Method::DELETE,
            &format!("/v1/auth/sessions/{other_sid}"),
            &p.pk,
            &at,
            None,
        )
        .await;
    assert_error(&got, 404, "not_found");
    assert_eq!(
        app.authed(Method::GET, "/v1/auth/session", &p.pk, &token(&other), None)
            .await
            .0,
        200
    );

    // Revoke all but the current one, then all.
    let (s, _) = app
        .authed(
            Method::POST,
            "/v1/auth/sessions/revoke-all",
            &p.pk,
            &at,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        app.authed(Method::GET, "/v1/auth/session", &p.pk, &token(&first), None)
            .await
            .0,
        401
    );
    assert_eq!(
        app.authed(Method::GET, "/v1/auth/session", &p.pk, &at, None)
            .await
            .0,
        200
    );
    let (s, _) = app
        .authed(
            Method::POST,
            "/v1/auth/sessions/revoke-all",
            &p.pk,
            &at,
            Some(json!({"include_current": true})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        app.authed(Method::GET, "/v1/auth/session", &p.pk, &at, None)
            .await
            .0,
        401
    );
    app.stop().await;
}

async fn password_change(store: Store) {
    let Some((app, p)) = setup(store).await else {
        return;
    };
    let first = app.register(&p.pk, "pw@example.com", PW).await;
    let (_, second) = app.login(&p.pk, "pw@example.com", PW).await;
    let at = token(&second);
    let path = "/v1/auth/password/change";
    let got = app
        .authed(
            Method::POST,
            path,
            &p.pk,
            &at,
            Some(json!({"current_password": "wrong one!", "new_password": "a brand new password"})),
        )
        .await;
    assert_error(&got, 401, "invalid_credentials");
    let got = app
        .authed(
            Method::POST,
            path,
            &p.pk,
            &at,
            Some(json!({"current_password": PW, "new_password": "short"})),
        )
        .await;
    assert_error(&got, 422, "weak_password");
    let got = app
        .authed(
            Method::POST,
            path,
            &p.pk,
            &at,
            Some(json!({"current_password": PW})),
        )
        .await;
    assert_error(&got, 400, "invalid_request");
    let (s, _) = app
        .authed(
            Method::POST,
            path,
            &p.pk,
            &at,
            Some(json!({"current_password": PW, "new_password": "a brand new password", "sign_out_other_sessions": true})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        app.authed(Method::GET, "/v1/auth/session", &p.pk, &token(&first), None)
            .await
            .0,
        401
    );
    assert_eq!(
        app.authed(Method::GET, "/v1/auth/session", &p.pk, &at, None)
            .await
            .0,
        200
    );
    assert_error(
        &app.login(&p.pk, "pw@example.com", PW).await,
        401,
        "invalid_credentials",
    );
    assert_eq!(
        app.login(&p.pk, "pw@example.com", "a brand new password")
            .await
            .0,
        200
    );
    let (_, events) = app
        .get_with_key("/v1/audit-events?type=password.changed", &p.sk)
        .await;
    assert_eq!(events["items"].as_array().unwrap().len(), 1);
    app.stop().await;
}

async fn login_from(
    app: &TestApp,
    key: &str,
    ip: &str,
    email: &str,
    password: &str,
) -> (StatusCode, Value, Option<u64>) {
    let resp = app
        .public_req(Method::POST, "/v1/auth/login")
        .header("x-project-key", key)
        .header("x-forwarded-for", ip)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (status, resp.json().await.unwrap_or(Value::Null), retry)
}

async fn lockout_policy(store: Store) {
    let Some((app, p)) = setup(store).await else {
        return;
    };
    app.register(&p.pk, "victim@example.com", PW).await;
    // The owner signs in once from home: a known IP.
    assert_eq!(
        login_from(&app, &p.pk, "198.51.100.1", "victim@example.com", PW)
            .await
            .0,
        200
    );

    // An attacker fails five times from one IP: that (account, IP) pair is locked...
    for _ in 0..5 {
        let (s, b, _) = login_from(
            &app,
            &p.pk,
            "203.0.113.7",
            "victim@example.com",
            "guess guess",
        )
        .await;
        assert_eq!(
            (s.as_u16(), b["error"]["code"].as_str()),
            (401, Some("invalid_credentials"))
        );
    }
    let (s, b, retry) = login_from(&app, &p.pk, "203.0.113.7", "victim@example.com", PW).await;
    assert_eq!(
        (s.as_u16(), b["error"]["code"].as_str()),
        (429, Some("too_many_attempts")),
        "{b}"
    );
    let retry = retry.expect("Retry-After");
    assert!((890..=900).contains(&retry), "Retry-After {retry}");
    // ...but the owner, from elsewhere, is not locked out.
    assert_eq!(
        login_from(&app, &p.pk, "198.51.100.1", "victim@example.com", PW)
            .await
            .0,
        200
    );
    assert_eq!(
        login_from(&app, &p.pk, "192.0.2.44", "victim@example.com", PW)
            .await
            .0,
        200
    );

    // Unknown emails lock the same way (no enumeration through lockout).
    for _ in 0..5 {
        assert_eq!(
            login_from(
                &app,
                &p.pk,
                "203.0.113.8",
                "ghost@example.com",
                "guess guess"
            )
            .await
            .0,
            401
        );
    }
    assert_eq!(
        login_from(
            &app,
            &p.pk,
            "203.0.113.8",
            "ghost@example.com",
            "guess guess"
        )
        .await
        .0,
        429
    );

    // A distributed attack reaching the per-account ceiling (50 failures in
    // 15 minutes) stops unknown IPs, while the owner's known IPs keep working.
    for i in 0..45u32 {
        let ip = format!("10.9.{}.{}", i / 5, i % 5 + 1);
        assert_eq!(
            login_from(&app, &p.pk, &ip, "victim@example.com", "guess guess")
                .await
                .0,
            401
        );
    }
    let (s, _, retry) = login_from(&app, &p.pk, "192.0.2.200", "victim@example.com", PW).await;
    assert_eq!(s, 429, "an unknown IP passed the per-account ceiling");
    assert!(retry.is_some());
    assert_eq!(
        login_from(&app, &p.pk, "198.51.100.1", "victim@example.com", PW)
            .await
            .0,
        200,
        "the owner's known IP was locked out"
    );
    assert_eq!(
        login_from(&app, &p.pk, "192.0.2.44", "victim@example.com", PW)
            .await
            .0,
        200
    );

    let (_, events) = app
        .get_with_key("/v1/audit-events?type=login.locked", &p.sk)
        .await;
    assert!(events["items"].as_array().unwrap().len() >= 2, "{events}");
    let (_, events) = app
        .get_with_key("/v1/audit-events?type=login.failed&limit=200", &p.sk)
        .await;
    assert_eq!(events["items"].as_array().unwrap().len(), 55);
    app.stop().await;
}

async fn rate_limits(store: Store) {
    let Some((app, p)) = setup(store).await else {
        return;
    };
    app.admin(
        Method::PATCH,
        &format!("/v1/projects/{}", p.id),
        Some(json!({"settings": {"rate_limits": {"register_per_minute": 2, "login_per_minute": 0, "refresh_per_minute": 3}}})),
    )
    .await;
    app.register(&p.pk, "r1@example.com", PW).await;
    let body = app.register(&p.pk, "r2@example.com", PW).await;
    let resp = app
        .public_req(Method::POST, "/v1/auth/register")
        .header("x-project-key", &p.pk)
        .json(&json!({"email": "r3@example.com", "password": PW}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (29..=30).contains(&retry),
        "Retry-After {retry} for 2 per minute"
    );
    let b: Value = resp.json().await.unwrap();
    assert_eq!(b["error"]["code"], "too_many_attempts");
    // Another client IP has its own budget.
    let (s, _) = send(
        app.public_req(Method::POST, "/v1/auth/register")
            .header("x-project-key", &p.pk)
            .header("x-forwarded-for", "192.0.2.9")
            .json(&json!({"email": "r3@example.com", "password": PW})),
    )
    .await;
    assert_eq!(s, 201);
    // 0 disables: many logins pass.
    for _ in 0..70 {
        assert_ne!(
            app.login(&p.pk, "r1@example.com", "wrong but fine").await.0,
            429_u16
        );
        // (the (account, IP) lockout is separate; clear it with a success)
        assert_eq!(app.login(&p.pk, "r1@example.com", PW).await.0, 200);
    }
    // Refresh: 3 per minute.
    let mut rt = refresh_token(&body);
    for _ in 0..3 {
        let (s, b) = app
            .post_with_key("/v1/auth/refresh", &p.pk, json!({"refresh_token": rt}))
            .await;
        assert_eq!(s, 200, "{b}");
        rt = refresh_token(&b);
    }
    let got = app
        .post_with_key("/v1/auth/refresh", &p.pk, json!({"refresh_token": rt}))
        .await;
    assert_error(&got, 429, "too_many_attempts");
    // The session check is never rate limited.
    let at = token(&body);
    for _ in 0..300 {
        assert_eq!(
            app.authed(Method::GET, "/v1/auth/session", &p.pk, &at, None)
                .await
                .0,
            200
        );
    }
    app.stop().await;
}

async fn server_side_users_and_bcrypt_import(store: Store) {
    // Real Argon2id parameters here: rehash decisions compare against them.
    let Some(app) = TestApp::spawn_with(
        store,
        &[
            ("IDENTITY_ARGON2_MEMORY_KIB", "19456"),
            ("IDENTITY_ARGON2_ITERATIONS", "2"),
        ],
    )
    .await
    else {
        return;
    };
    let p = app.create_project("users").await;
    let got = app
        .post_with_key("/v1/users", &p.pk, json!({"email": "x@example.com"}))
        .await;
    assert_error(&got, 403, "secret_key_required");
    let got = app
        .get_with_key("/v1/users?email=x@example.com", &p.pk)
        .await;
    assert_error(&got, 403, "secret_key_required");

    let bcrypt_hash = bcrypt::hash("imported password", 4).unwrap();
    let (s, created) = app
        .post_with_key("/v1/users", &p.sk, json!({"email": "Imported@Example.com", "password_hash": bcrypt_hash, "name": "Imp", "email_verified": true}))
        .await;
    assert_eq!(s, 201, "{created}");
    let id = created["user"]["id"].as_str().unwrap().to_string();
    assert_eq!(created["user"]["email_verified"], true);
    assert!(!created.to_string().contains("$2b$"), "the hash leaked");
    // Old Argon2 parameters are also accepted, and upgraded at login.
    let weak = {
        use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
        let a = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(4096, 1, 1, None).unwrap(),
        );
        a.hash_password(b"old params password", &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string()
    };
    let (s, _) = app
        .post_with_key(
            "/v1/users",
            &p.sk,
            json!({"email": "old@example.com", "password_hash": weak}),
        )
        .await;
    assert_eq!(s, 201);

    for (email, pw) in [
        ("imported@example.com", "imported password"),
        ("old@example.com", "old params password"),
    ] {
        assert_eq!(app.login(&p.pk, email, pw).await.0, 200);
        let stored = stored_hash(&app, &p.id, email).await;
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{email} not rehashed: {stored}"
        );
        // And the new hash still verifies.
        assert_eq!(app.login(&p.pk, email, pw).await.0, 200);
    }

    let (s, _) = app
        .post_with_key(
            "/v1/users",
            &p.sk,
            json!({"email": "plain@example.com", "password": PW}),
        )
        .await;
    assert_eq!(s, 201);
    assert_eq!(app.login(&p.pk, "plain@example.com", PW).await.0, 200);
    let (s, _) = app
        .post_with_key("/v1/users", &p.sk, json!({"email": "nopw@example.com"}))
        .await;
    assert_eq!(s, 201);
    assert_error(
        &app.login(&p.pk, "nopw@example.com", PW).await,
        401,
        "invalid_credentials",
    );

    for (body, status, code) in [
        (
            json!({"email": "imported@example.com", "password": PW}),
            409,
            "email_taken",
        ),
        (
            json!({"email": "y@example.com", "password": PW, "password_hash": bcrypt_hash}),
            400,
            "invalid_request",
        ),
        (
            json!({"email": "y@example.com", "password_hash": "$2b$04$tooshort"}),
            422,
            "invalid_password_hash",
        ),
        (
            json!({"email": "y@example.com", "password_hash": "$argon2i$v=19$m=16,t=2,p=1$c29tZXNhbHQ$aGFzaA"}),
            422,
            "invalid_password_hash",
        ),
        (
            json!({"email": "y@example.com", "password": "short"}),
            422,
            "weak_password",
        ),
        (json!({"email": "bad"}), 422, "invalid_email"),
        (
            json!({"email": "y@example.com", "admin": true}),
            400,
            "invalid_request",
        ),
    ] {
        let got = app.post_with_key("/v1/users", &p.sk, body).await;
        assert_error(&got, status, code);
    }

    let (s, one) = app.get_with_key(&format!("/v1/users/{id}"), &p.sk).await;
    assert_eq!(s, 200);
    assert_eq!(one["user"]["email"], "Imported@Example.com");
    let (_, found) = app
        .get_with_key("/v1/users?email=IMPORTED@example.COM", &p.sk)
        .await;
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    assert_eq!(found["items"][0]["id"], id.as_str());
    let (_, none) = app
        .get_with_key("/v1/users?email=nobody@example.com", &p.sk)
        .await;
    assert_eq!(none["items"].as_array().unwrap().len(), 0);
    assert_error(
        &app.get_with_key("/v1/users/usr_unknown", &p.sk).await,
        404,
        "not_found",
    );

    // Deleting a user ends their sessions at once.
    let (_, login) = app
        .login(&p.pk, "imported@example.com", "imported password")
        .await;
    let at = token(&login);
    assert_eq!(
        app.authed(Method::GET, "/v1/auth/session", &p.pk, &at, None)
            .await
            .0,
        200
    );
    let (s, _) = send(
        app.public_req(Method::DELETE, &format!("/v1/users/{id}"))
            .header("x-project-key", &p.sk),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        app.authed(Method::GET, "/v1/auth/session", &p.pk, &at, None)
            .await
            .0,
        401
    );
    assert_error(
        &app.get_with_key(&format!("/v1/users/{id}"), &p.sk).await,
        404,
        "not_found",
    );
    app.stop().await;
}

async fn stored_hash(app: &TestApp, project_id: &str, email: &str) -> String {
    use identity_shared::schema::Users;
    use sea_query::{Expr, ExprTrait, Query};
    let mut tx = app.db().scope(project_id).await.unwrap();
    let row: Option<(Option<String>,)> = tx
        .fetch_optional(
            Query::select()
                .column(Users::PasswordHash)
                .from(Users::Table)
                .and_where(Expr::col(Users::ProjectId).eq(project_id))
                .and_where(Expr::col(Users::EmailNormalized).eq(email)),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    row.and_then(|r| r.0).unwrap_or_default()
}

async fn audit_events(store: Store) {
    let Some((app, p)) = setup(store).await else {
        return;
    };
    let body = app.register(&p.pk, "a@example.com", PW).await;
    let uid = body["user"]["id"].as_str().unwrap().to_string();
    app.login(&p.pk, "a@example.com", "bad password!").await;
    let (_, login) = app.login(&p.pk, "a@example.com", PW).await;
    app.post_with_key(
        "/v1/auth/refresh",
        &p.pk,
        json!({"refresh_token": refresh_token(&login)}),
    )
    .await;
    app.authed(Method::POST, "/v1/auth/logout", &p.pk, &token(&login), None)
        .await;
    app.admin(
        Method::POST,
        &format!("/v1/projects/{}/signing-keys/rotate", p.id),
        None,
    )
    .await;
    let other = app.register(&p.pk, "b@example.com", PW).await;

    assert_error(
        &app.get_with_key("/v1/audit-events", &p.pk).await,
        403,
        "secret_key_required",
    );
    let (s, all) = app.get_with_key("/v1/audit-events", &p.sk).await;
    assert_eq!(s, 200);
    let items = all["items"].as_array().unwrap();
    let kinds: Vec<&str> = items.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "user.registered",
            "signing_key.rotated",
            "session.revoked",
            "token.refreshed",
            "login.succeeded",
            "login.failed",
            "user.registered"
        ],
        "newest first"
    );
    let e = &items[4];
    assert_eq!(e["subject"], uid.as_str());
    assert_eq!(e["actor"], uid.as_str());
    assert_eq!(e["outcome"], "success");
    assert_eq!(e["ip"], "127.0.0.1");
    assert!(e["created_at"].is_string() && e["id"].as_str().unwrap().starts_with("evt_"));
    assert_eq!(items[5]["outcome"], "failure");

    let (_, mine) = app
        .get_with_key(&format!("/v1/audit-events?user_id={uid}"), &p.sk)
        .await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 5);
    let (_, theirs) = app
        .get_with_key(
            &format!(
                "/v1/audit-events?user_id={}",
                other["user"]["id"].as_str().unwrap()
            ),
            &p.sk,
        )
        .await;
    assert_eq!(theirs["items"].as_array().unwrap().len(), 1);
    let (_, failed) = app
        .get_with_key("/v1/audit-events?type=login.failed", &p.sk)
        .await;
    assert_eq!(failed["items"].as_array().unwrap().len(), 1);
    let (_, future) = app
        .get_with_key("/v1/audit-events?since=2999-01-01T00:00:00Z", &p.sk)
        .await;
    assert_eq!(future["items"].as_array().unwrap().len(), 0);
    let (_, past) = app
        .get_with_key("/v1/audit-events?until=2000-01-01T00:00:00Z", &p.sk)
        .await;
    assert_eq!(past["items"].as_array().unwrap().len(), 0);
    let (_, window) = app
        .get_with_key(
            "/v1/audit-events?since=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00Z",
            &p.sk,
        )
        .await;
    assert_eq!(window["items"].as_array().unwrap().len(), 7);
    // Pages of two, in order, without overlap.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let path = if cursor.is_empty() {
            "/v1/audit-events?limit=2".to_string()
        } else {
            format!("/v1/audit-events?limit=2&cursor={cursor}")
        };
        let (_, page) = app.get_with_key(&path, &p.sk).await;
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    let all_ids: Vec<String> = items
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(seen, all_ids);
    assert_error(
        &app.get_with_key("/v1/audit-events?since=yesterday", &p.sk)
            .await,
        400,
        "invalid_request",
    );
    // Another project's trail is separate.
    let q = app.create_project("q").await;
    let (_, theirs) = app.get_with_key("/v1/audit-events", &q.sk).await;
    assert_eq!(theirs["items"].as_array().unwrap().len(), 0);
    app.stop().await;
}

async fn bad_input_is_a_clear_4xx(store: Store) {
    let Some((app, p)) = setup(store).await else {
        return;
    };
    let body = app.register(&p.pk, "ok@example.com", PW).await;
    let at = token(&body);
    let long = "x".repeat(10_000);
    let cases: Vec<(&str, Value)> = vec![
        (
            "/v1/auth/register",
            json!({"email": "a\u{0}b@example.com", "password": PW}),
        ),
        (
            "/v1/auth/register",
            json!({"email": "ok2@example.com", "password": "control\u{7}chars password"}),
        ),
        (
            "/v1/auth/register",
            json!({"email": "ünïcødé@exämple.com\u{202e}", "password": PW}),
        ),
        ("/v1/auth/register", json!({"email": 5, "password": PW})),
        ("/v1/auth/register", json!({"password": PW})),
        (
            "/v1/auth/register",
            json!({"email": long.clone(), "password": PW}),
        ),
        (
            "/v1/auth/login",
            json!({"email": "ok@example.com", "password": long.clone()}),
        ),
        (
            "/v1/auth/login",
            json!({"email": "ok@example.com", "password": ""}),
        ),
        ("/v1/auth/login", json!({"email": "\u{0}", "password": "x"})),
        ("/v1/auth/login", json!({"email": ["a"], "password": "x"})),
        ("/v1/auth/refresh", json!({"refresh_token": 7})),
        (
            "/v1/users",
            json!({"email": "a@b.co", "password_hash": long.clone()}),
        ),
    ];
    for (path, b) in cases {
        let (s, r) = app.post_with_key(path, &p.sk, b.clone()).await;
        assert!(s.is_client_error(), "{path} {b:.60}: {s} {r}");
        assert!(r["error"]["code"].is_string(), "{r}");
    }
    for raw in ["{", "null", "[]", "\"x\""] {
        let (s, r) = send(
            app.public_req(Method::POST, "/v1/auth/login")
                .header("x-project-key", &p.pk)
                .header("content-type", "application/json")
                .body(raw),
        )
        .await;
        assert_error(&(s, r), 400, "invalid_request");
    }
    // 10 MB bodies are refused before they are read.
    for path in [
        "/v1/auth/register",
        "/v1/auth/login",
        "/v1/auth/refresh",
        "/v1/auth/password/change",
    ] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nX-Project-Key: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            p.pk,
            10 * 1024 * 1024
        );
        let got = raw_http(&app.public, head.into_bytes()).await;
        assert_error(&got, 413, "payload_too_large");
    }
    for header in ["Bearer", "Bearer ", "Basic abc", &format!("Bearer {long}")] {
        let (s, _) = send(
            app.public_req(Method::GET, "/v1/auth/session")
                .header("x-project-key", &p.pk)
                .header("authorization", header),
        )
        .await;
        assert_eq!(s, 401, "{header:.20}");
    }
    let got = send(
        app.public_req(Method::POST, "/v1/auth/login")
            .header("x-project-key", &p.pk)
            .header("x-token-transport", "carrier-pigeon")
            .json(&json!({"email": "ok@example.com", "password": PW})),
    )
    .await;
    assert_error(&got, 400, "invalid_request");
    assert_eq!(
        app.authed(Method::GET, "/v1/auth/session", &p.pk, &at, None)
            .await
            .0,
        200
    );
    app.stop().await;
}

async fn session_checks_are_cached(store: Store) {
    let Some((app, p)) = setup(store).await else {
        return;
    };
    let body = app.register(&p.pk, "cache@example.com", PW).await;
    let at = token(&body);
    let sessions = app
        .server
        .as_ref()
        .unwrap()
        .data
        .as_ref()
        .unwrap()
        .sessions
        .clone();
    assert_eq!(
        app.authed(Method::GET, "/v1/auth/session", &p.pk, &at, None)
            .await
            .0,
        200
    );
    let loads = sessions.database_loads();
    for _ in 0..50 {
        assert_eq!(
            app.authed(Method::GET, "/v1/auth/sessions", &p.pk, &at, None)
                .await
                .0,
            200
        );
    }
    assert_eq!(
        sessions.database_loads(),
        loads,
        "a cached session check went to the database"
    );
    // Revocation drops the entry: the next check reads the database and says no.
    app.authed(Method::POST, "/v1/auth/logout", &p.pk, &at, None)
        .await;
    assert_eq!(
        app.authed(Method::GET, "/v1/auth/session", &p.pk, &at, None)
            .await
            .0,
        401
    );
    assert_eq!(sessions.database_loads(), loads + 1);
    app.stop().await;
}

async fn sweeper_deletes_expired_rows(store: Store) {
    use identity_shared::schema::{RefreshTokens, Sessions};
    use sea_query::{Expr, ExprTrait, Query};
    let Some((app, p)) = setup(store).await else {
        return;
    };
    let old = app.register(&p.pk, "old@example.com", PW).await;
    let fresh = app.register(&p.pk, "fresh@example.com", PW).await;
    let old_sid = old["session"]["id"].as_str().unwrap();
    let mut tx = app.db().control().await.unwrap();
    tx.execute(
        Query::update()
            .table(Sessions::Table)
            .value(Sessions::ExpiresAt, 1_i64)
            .and_where(Expr::col(Sessions::Id).eq(old_sid)),
    )
    .await
    .unwrap();
    tx.execute(
        Query::update()
            .table(RefreshTokens::Table)
            .value(RefreshTokens::ExpiresAt, 1_i64)
            .and_where(Expr::col(RefreshTokens::SessionId).eq(old_sid)),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let deleted = identity_data_plane::workers::sweeper::sweep(app.db())
        .await
        .unwrap();
    assert_eq!(deleted, 2, "one session and its refresh token");
    assert_eq!(
        identity_data_plane::workers::sweeper::sweep(app.db())
            .await
            .unwrap(),
        0
    );
    let got = app
        .post_with_key(
            "/v1/auth/refresh",
            &p.pk,
            json!({"refresh_token": refresh_token(&old)}),
        )
        .await;
    assert_error(&got, 401, "invalid_refresh_token");
    assert_eq!(
        app.authed(Method::GET, "/v1/auth/session", &p.pk, &token(&fresh), None)
            .await
            .0,
        200
    );
    app.stop().await;
}

/// `POST /v1/users/{id}/sessions/revoke-all`: every session of the user
/// ends at once (their tokens stop, their refresh tokens too); only the
/// secret key of the user's own project may ask.
async fn the_secret_key_ends_every_session(store: Store) {
    let Some((app, p)) = setup(store).await else {
        return;
    };
    let other = app.create_project("other").await;
    let first = app.register(&p.pk, "ada@example.com", PW).await;
    let (s, second) = app.login(&p.pk, "ada@example.com", PW).await;
    assert_eq!(s, 200, "{second}");
    let id = first["user"]["id"].as_str().unwrap().to_string();
    let path = format!("/v1/users/{id}/sessions/revoke-all");
    assert_error(
        &app.send_with_key(Method::POST, &path, &p.pk, None).await,
        403,
        "secret_key_required",
    );
    assert_error(
        &app.send_with_key(Method::POST, &path, &other.sk, None)
            .await,
        404,
        "not_found",
    );
    assert_error(
        &app.send_with_key(
            Method::POST,
            "/v1/users/usr_nope/sessions/revoke-all",
            &p.sk,
            None,
        )
        .await,
        404,
        "not_found",
    );
    for body in [&first, &second] {
        let (s, _) = app
            .authed(
                Method::GET,
                "/v1/auth/session",
                &p.pk,
                &crate::support::access_token(body),
                None,
            )
            .await;
        assert_eq!(s, 200);
    }
    let (s, _) = app.send_with_key(Method::POST, &path, &p.sk, None).await;
    assert_eq!(s, 204);
    for body in [&first, &second] {
        assert_error(
            &app.authed(
                Method::GET,
                "/v1/auth/session",
                &p.pk,
                &crate::support::access_token(body),
                None,
            )
            .await,
            401,
            "session_revoked",
        );
        let (s, _) = app
            .post_with_key(
                "/v1/auth/refresh",
                &p.pk,
                json!({"refresh_token": refresh_token(body)}),
            )
            .await;
        assert_eq!(s, 401);
    }
    let (_, events) = app
        .get_with_key(
            &format!("/v1/audit-events?type=session.revoked&user_id={id}"),
            &p.sk,
        )
        .await;
    assert_eq!(
        events["items"][0]["data"]["reason"], "revoked_by_admin",
        "{events}"
    );
    app.stop().await;
}
