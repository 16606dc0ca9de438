//! Server-side user administration (secret key): search, update with
//! metadata, bans (sessions gone at once on every node, every sign-in
//! refused) and impersonation (an access token only, `act` and `amr:
//! ["imp"]`, audited, never stepped up).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::on_both;
use crate::support::{Project, Store, TestApp, access_token, assert_error, verified_claims};

on_both!(
    search_and_update_with_metadata,
    a_ban_ends_every_way_in,
    impersonation_is_short_marked_and_audited,
    a_user_edits_their_own_profile
);

const PW: &str = "correct horse battery staple";

async fn as_server(
    app: &TestApp,
    p: &Project,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    app.send_with_key(method, path, &p.sk, body).await
}

async fn search_and_update_with_metadata(store: Store) {
    let Some(app) = TestApp::spawn(store).await else {
        return;
    };
    let p = app.create_project("admin-users").await;
    let ada = app.register(&p.pk, "ada@example.com", PW).await;
    let ada_id = ada["user"]["id"].as_str().unwrap().to_string();
    app.register(&p.pk, "grace@example.org", PW).await;
    app.register(&p.pk, "x_y@example.net", PW).await;
    let path = format!("/v1/users/{ada_id}");
    // Update: name, phone, both metadata objects.
    let (s, b) = as_server(
        &app,
        &p,
        Method::PATCH,
        &path,
        Some(json!({
            "name": "Ada Lovelace",
            "phone": "+44 7700 900123",
            "public_metadata": {"plan": "pro"},
            "private_metadata": {"stripe": "cus_1"}
        })),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["user"]["name"], "Ada Lovelace");
    assert_eq!(b["user"]["phone"], "+447700900123");
    assert_eq!(b["user"]["public_metadata"], json!({"plan": "pro"}));
    assert_eq!(b["user"]["private_metadata"], json!({"stripe": "cus_1"}));
    assert_eq!(b["user"]["banned"], false);
    // The user sees the public metadata, never the private.
    let (s, me) = app
        .authed(
            Method::GET,
            "/v1/auth/session",
            &p.pk,
            &access_token(&ada),
            None,
        )
        .await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(me["user"]["public_metadata"], json!({"plan": "pro"}));
    assert_eq!(
        me["user"]["name"], "Ada Lovelace",
        "the session cache reloaded"
    );
    assert!(me["user"].get("private_metadata").is_none(), "{me}");
    // Search on address and name, any case; LIKE's wildcards are literal.
    for (query, expected) in [
        ("LOVELACE", vec!["ada@example.com"]),
        ("example.org", vec!["grace@example.org"]),
        ("x_y", vec!["x_y@example.net"]),
        ("%", vec![]),
        ("_", vec!["x_y@example.net"]),
    ] {
        let (s, b) = as_server(
            &app,
            &p,
            Method::GET,
            &format!("/v1/users?query={}", urlencode(query)),
            None,
        )
        .await;
        assert_eq!(s, 200, "{b}");
        let emails: Vec<&str> = b["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["email"].as_str().unwrap())
            .collect();
        assert_eq!(emails, expected, "{query}");
    }
    // Refusals: clear 4xx codes.
    for (body, status, code) in [
        (json!({"public_metadata": [1, 2]}), 422, "invalid_metadata"),
        (
            json!({"private_metadata": {"big": "x".repeat(9000)}}),
            422,
            "invalid_metadata",
        ),
        (json!({"phone": "12"}), 422, "invalid_phone"),
        (json!({"email": "grace@example.org"}), 409, "email_taken"),
        (json!({"email": "not an address"}), 422, "invalid_email"),
        (json!({"role": "admin"}), 400, "invalid_request"),
    ] {
        assert_error(
            &as_server(&app, &p, Method::PATCH, &path, Some(body)).await,
            status,
            code,
        );
    }
    assert_error(
        &as_server(
            &app,
            &p,
            Method::PATCH,
            "/v1/users/usr_nobody",
            Some(json!({})),
        )
        .await,
        404,
        "not_found",
    );
    assert_error(
        &app.send_with_key(Method::PATCH, &path, &p.pk, Some(json!({"name": "x"})))
            .await,
        403,
        "secret_key_required",
    );
    // A new address, vouched for; null clears the name and phone; {} the
    // metadata.
    let (s, b) = as_server(
        &app,
        &p,
        Method::PATCH,
        &path,
        Some(json!({"email": "ada@lovelace.test", "email_verified": true, "name": null, "phone": null, "public_metadata": {}})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["user"]["email"], "ada@lovelace.test");
    assert_eq!(b["user"]["email_verified"], true);
    assert_eq!(b["user"]["name"], Value::Null);
    assert_eq!(b["user"]["phone"], Value::Null);
    assert_eq!(b["user"]["public_metadata"], json!({}));
    assert_eq!(b["user"]["private_metadata"], json!({"stripe": "cus_1"}));
    assert_eq!(app.login(&p.pk, "ada@lovelace.test", PW).await.0, 200);
    let (_, events) = app
        .get_with_key(
            &format!("/v1/audit-events?type=user.updated&user_id={ada_id}"),
            &p.sk,
        )
        .await;
    assert_eq!(events["items"].as_array().unwrap().len(), 2, "{events}");
    app.stop().await;
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn a_ban_ends_every_way_in(store: Store) {
    let Some(app) = TestApp::spawn(store).await else {
        return;
    };
    let p = app.create_project("bans").await;
    let signed = app.register(&p.pk, "mallory@example.com", PW).await;
    let id = signed["user"]["id"].as_str().unwrap().to_string();
    let at = access_token(&signed);
    let refresh = signed["refresh_token"].as_str().unwrap().to_string();
    // A second node has the session cached too (Postgres: shared database).
    let peer = if store == Store::Postgres {
        Some(app.spawn_peer().await)
    } else {
        None
    };
    let nodes: Vec<&TestApp> = std::iter::once(&app).chain(peer.as_ref()).collect();
    for node in &nodes {
        let (s, _) = node
            .authed(Method::GET, "/v1/auth/session", &p.pk, &at, None)
            .await;
        assert_eq!(s, 200);
    }
    for (body, code) in [
        (json!({"until": "yesterday"}), "invalid_ban"),
        (json!({"until": "2001-01-01T00:00:00Z"}), "invalid_ban"),
        (json!({"reason": "x".repeat(501)}), "invalid_ban"),
    ] {
        assert_error(
            &as_server(
                &app,
                &p,
                Method::POST,
                &format!("/v1/users/{id}/ban"),
                Some(body),
            )
            .await,
            422,
            code,
        );
    }
    let (s, b) = as_server(
        &app,
        &p,
        Method::POST,
        &format!("/v1/users/{id}/ban"),
        Some(json!({"reason": "fraud", "until": "2999-01-01T00:00:00Z"})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["user"]["banned"], true);
    let banned_at = std::time::Instant::now();
    // Every node refuses the session within a second.
    for node in &nodes {
        loop {
            let (s, _) = node
                .authed(Method::GET, "/v1/auth/session", &p.pk, &at, None)
                .await;
            if s == 401 {
                break;
            }
            assert!(
                banned_at.elapsed().as_millis() < 1000,
                "still {s} after 1 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    // No way back in: password, refresh.
    assert_error(
        &app.login(&p.pk, "mallory@example.com", PW).await,
        403,
        "user_banned",
    );
    let (s, _) = app
        .post_with_key("/v1/auth/refresh", &p.pk, json!({"refresh_token": refresh}))
        .await;
    assert_eq!(s, 401);
    let (_, events) = app
        .get_with_key(
            &format!("/v1/audit-events?type=user.banned&user_id={id}"),
            &p.sk,
        )
        .await;
    assert_eq!(events["items"][0]["data"]["reason"], "fraud", "{events}");
    // Lifted: in again.
    let (s, b) = as_server(
        &app,
        &p,
        Method::POST,
        &format!("/v1/users/{id}/unban"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["user"]["banned"], false);
    assert_eq!(app.login(&p.pk, "mallory@example.com", PW).await.0, 200);
    assert_error(
        &as_server(
            &app,
            &p,
            Method::POST,
            "/v1/users/usr_nobody/ban",
            Some(json!({})),
        )
        .await,
        404,
        "not_found",
    );
    if let Some(peer) = peer {
        peer.stop().await;
    }
    app.stop().await;
}

async fn impersonation_is_short_marked_and_audited(store: Store) {
    let Some(app) = TestApp::spawn(store).await else {
        return;
    };
    let p = app.create_project("imp").await;
    let signed = app.register(&p.pk, "user@example.com", PW).await;
    let id = signed["user"]["id"].as_str().unwrap().to_string();
    let path = format!("/v1/users/{id}/impersonate");
    for (body, code) in [
        (json!({}), "invalid_request"),
        (json!({"reason": "  "}), "invalid_reason"),
        (
            json!({"reason": "ticket 42", "ttl_seconds": 3601}),
            "invalid_ttl",
        ),
        (
            json!({"reason": "ticket 42", "ttl_seconds": 0}),
            "invalid_ttl",
        ),
    ] {
        let got = as_server(&app, &p, Method::POST, &path, Some(body)).await;
        assert!(got.0.is_client_error(), "{got:?}");
        assert_eq!(got.1["error"]["code"], code, "{got:?}");
    }
    let (s, b) = as_server(
        &app,
        &p,
        Method::POST,
        &path,
        Some(json!({"reason": "ticket 42", "ttl_seconds": 600})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert!(b.get("refresh_token").is_none(), "{b}");
    assert_eq!(b["expires_in"], 600);
    let at = b["access_token"].as_str().unwrap().to_string();
    let c = verified_claims(&app, &p, &at).await;
    assert_eq!(c["sub"], id.as_str());
    assert_eq!(c["act"], json!({"sub": "operator"}));
    assert_eq!(c["amr"], json!(["imp"]));
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 600);
    let (s, me) = app
        .authed(Method::GET, "/v1/auth/session", &p.pk, &at, None)
        .await;
    assert_eq!(s, 200, "{me}");
    // It reads; it changes nothing in the user's name (not even a tenant
    // switch, which would mint tokens), but it may sign itself out.
    for (method, path, body) in [
        (
            Method::POST,
            "/v1/auth/email/change",
            json!({"new_email": "op@example.com"}),
        ),
        (Method::PATCH, "/v1/users/me", json!({"name": "Operator"})),
        (
            Method::POST,
            "/v1/auth/session/tenant",
            json!({"tenant_id": null}),
        ),
        (Method::POST, "/v1/auth/sessions/revoke-all", json!({})),
    ] {
        assert_error(
            &app.authed(method, path, &p.pk, &at, Some(body)).await,
            403,
            "impersonation_read_only",
        );
    }
    let (s, _) = app
        .authed(Method::GET, "/v1/users/me", &p.pk, &at, None)
        .await;
    assert_eq!(s, 200);
    // The user sees the session, and the audit trail names the reason.
    let (_, list) = app
        .authed(
            Method::GET,
            "/v1/auth/sessions",
            &p.pk,
            &access_token(&signed),
            None,
        )
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2, "{list}");
    let (_, events) = app
        .get_with_key(
            &format!("/v1/audit-events?type=user.impersonated&user_id={id}"),
            &p.sk,
        )
        .await;
    assert_eq!(
        events["items"][0]["data"]["reason"], "ticket 42",
        "{events}"
    );
    let (s, _) = app
        .authed(Method::POST, "/v1/auth/logout", &p.pk, &at, None)
        .await;
    assert!(s.is_success(), "{s}");
    assert_error(
        &app.authed(Method::GET, "/v1/users/me", &p.pk, &at, None)
            .await,
        401,
        "session_revoked",
    );
    // Not with a publishable key; not a banned user.
    assert_error(
        &app.send_with_key(Method::POST, &path, &p.pk, Some(json!({"reason": "x"})))
            .await,
        403,
        "secret_key_required",
    );
    as_server(
        &app,
        &p,
        Method::POST,
        &format!("/v1/users/{id}/ban"),
        Some(json!({})),
    )
    .await;
    assert_error(
        &as_server(&app, &p, Method::POST, &path, Some(json!({"reason": "x"}))).await,
        403,
        "user_banned",
    );
    app.stop().await;
}

/// `GET/PATCH /v1/users/me`: the user's name and `unsafe_metadata`, nothing
/// else; the server's metadata is theirs to read (public) or not at all
/// (private).
async fn a_user_edits_their_own_profile(store: Store) {
    let Some(app) = TestApp::spawn(store).await else {
        return;
    };
    let p = app.create_project("profile").await;
    let signed = app.register(&p.pk, "pat@example.com", PW).await;
    let id = signed["user"]["id"].as_str().unwrap().to_string();
    let at = access_token(&signed);
    as_server(
        &app,
        &p,
        Method::PATCH,
        &format!("/v1/users/{id}"),
        Some(json!({"public_metadata": {"plan": "pro"}, "private_metadata": {"risk": 3}})),
    )
    .await;
    let me = |method: Method, body: Option<Value>| {
        let (app, pk, at) = (&app, p.pk.clone(), at.clone());
        async move { app.authed(method, "/v1/users/me", &pk, &at, body).await }
    };
    let (s, b) = me(Method::GET, None).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["user"]["email"], "pat@example.com");
    assert_eq!(b["user"]["public_metadata"], json!({"plan": "pro"}));
    assert!(b["user"].get("private_metadata").is_none(), "{b}");
    let (s, b) = me(
        Method::PATCH,
        Some(json!({"name": "Pat", "unsafe_metadata": {"theme": "dark"}})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["user"]["name"], "Pat");
    assert_eq!(b["user"]["unsafe_metadata"], json!({"theme": "dark"}));
    let (_, b) = me(Method::GET, None).await;
    assert_eq!(b["user"]["name"], "Pat", "the session cache reloaded");
    // Only name and unsafe_metadata are the user's to write.
    for (body, status, code) in [
        (
            json!({"public_metadata": {"plan": "free"}}),
            400,
            "invalid_request",
        ),
        (
            json!({"email": "other@example.com"}),
            400,
            "invalid_request",
        ),
        (json!({"unsafe_metadata": "dark"}), 422, "invalid_metadata"),
        (json!({"name": "x".repeat(201)}), 422, "invalid_name"),
    ] {
        assert_error(&me(Method::PATCH, Some(body)).await, status, code);
    }
    let (_, b) = me(Method::PATCH, Some(json!({"name": null}))).await;
    assert_eq!(b["user"]["name"], Value::Null);
    assert_eq!(b["user"]["public_metadata"], json!({"plan": "pro"}));
    assert_error(
        &app.send_with_key(Method::GET, "/v1/users/me", &p.pk, None)
            .await,
        401,
        "unauthenticated",
    );
    app.stop().await;
}
