//! The core under attack: concurrent guessing, every password check
//! limited, the bounded hashing queue, client addresses as proxies write
//! them. On both backends.

use std::collections::HashMap;

use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::on_both;
use crate::support::{Project, Store, TestApp, assert_error, send};

on_both!(
    concurrent_guesses_hold_the_lockout,
    password_change_is_limited_and_counted,
    full_hash_queue_answers_503_and_leaves_room_for_others,
    forwarded_for_lines_and_ipv6_prefixes,
    one_mailbox_one_account,
    key_and_session_edges,
    untrusted_forwarding_is_reported_by_doctor,
    nul_bytes_are_a_4xx,
    deferred_writes_keep_order_and_fail_the_transaction,
);

const PW: &str = "correct horse battery staple";

async fn setup(store: Store, extra: &[(&str, &str)]) -> Option<(TestApp, Project)> {
    let app = TestApp::spawn_with(store, extra).await?;
    let p = app.create_project("hardening").await;
    // Only the lockout may stop the guesses below.
    let (s, b) = app
        .admin(
            Method::PATCH,
            &format!("/v1/projects/{}", p.id),
            Some(json!({"settings": {"rate_limits": {"login_per_minute": 0}}})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    Some((app, p))
}

async fn login_from(app: &TestApp, key: &str, ip: &str, email: &str, pw: &str) -> (u16, Value) {
    let (s, b) = send(
        app.public_req(Method::POST, "/v1/auth/login")
            .header("x-project-key", key)
            .header("x-forwarded-for", ip)
            .json(&json!({"email": email, "password": pw})),
    )
    .await;
    (s.as_u16(), b)
}

fn tally(results: &[(u16, Value)]) -> HashMap<u16, usize> {
    let mut counts = HashMap::new();
    for (s, _) in results {
        *counts.entry(*s).or_default() += 1;
    }
    counts
}

async fn concurrent_guesses_hold_the_lockout(store: Store) {
    let Some((app, p)) = setup(store, &[("IDENTITY_HASH_QUEUE", "1000")]).await else {
        return;
    };
    app.register(&p.pk, "victim@example.com", PW).await;

    // 40 wrong passwords at the same moment from one address: exactly five
    // are evaluated, the rest refused before any hashing.
    let guesses = (0..40).map(|_| {
        login_from(
            &app,
            &p.pk,
            "203.0.113.7",
            "victim@example.com",
            "guess guess",
        )
    });
    let results = join_all(guesses).await;
    let counts = tally(&results);
    assert_eq!(counts.get(&401), Some(&5), "{counts:?}");
    assert_eq!(counts.get(&429), Some(&35), "{counts:?}");
    for (s, b) in &results {
        let code = if *s == 401 {
            "invalid_credentials"
        } else {
            "too_many_attempts"
        };
        assert_eq!(b["error"]["code"], code);
    }

    // 120 guesses at once from 120 addresses against another account: at
    // most the account-wide ceiling (50) is evaluated.
    app.register(&p.pk, "target@example.com", PW).await;
    let (app_ref, pk) = (&app, &p.pk);
    let guesses = (0..120u32).map(|i| {
        let ip = format!("198.18.{}.{}", i / 200, i % 200 + 1);
        async move { login_from(app_ref, pk, &ip, "target@example.com", "guess guess").await }
    });
    let counts = tally(&join_all(guesses).await);
    assert_eq!(counts.get(&401), Some(&50), "{counts:?}");
    assert_eq!(counts.get(&429), Some(&70), "{counts:?}");

    // The same holds across two nodes sharing one database.
    if store == Store::Postgres {
        let peer = app.spawn_peer().await;
        app.register(&p.pk, "shared@example.com", PW).await;
        let guesses = (0..40).map(|i| {
            let node = if i % 2 == 0 { &app } else { &peer };
            login_from(
                node,
                &p.pk,
                "203.0.113.9",
                "shared@example.com",
                "guess guess",
            )
        });
        let counts = tally(&join_all(guesses).await);
        assert_eq!(counts.get(&401), Some(&5), "two nodes: {counts:?}");
        peer.stop().await;
    }
    app.stop().await;
}

async fn password_change_is_limited_and_counted(store: Store) {
    let Some((app, p)) = setup(store, &[]).await else {
        return;
    };
    let body = app.register(&p.pk, "changer@example.com", PW).await;
    let at = body["access_token"].as_str().unwrap().to_string();
    let change = |current: &'static str| {
        send(
            app.public_req(Method::POST, "/v1/auth/password/change")
                .header("x-project-key", &p.pk)
                .bearer_auth(&at)
                .json(
                    &json!({"current_password": current, "new_password": "another long password"}),
                ),
        )
    };
    // Wrong current passwords count toward the lockout like failed logins.
    let mut statuses = Vec::new();
    for _ in 0..25 {
        statuses.push(change("not my password").await.0.as_u16());
    }
    assert_eq!(&statuses[..5], &[401; 5], "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    // Concurrent tries cannot get past it either, nor can the right password
    // from the locked address.
    let results = join_all((0..40).map(|_| change("not my password"))).await;
    assert!(results.iter().all(|(s, _)| *s == 429));
    assert_error(&change(PW).await, 429, "too_many_attempts");
    // The lock is the (account, address) pair: login from that address is
    // locked too, another address is not.
    assert_eq!(
        login_from(&app, &p.pk, "127.0.0.1", "changer@example.com", PW)
            .await
            .0,
        429
    );
    assert_eq!(
        login_from(&app, &p.pk, "192.0.2.1", "changer@example.com", PW)
            .await
            .0,
        200
    );

    // The password endpoints share the login rate limit.
    app.admin(
        Method::PATCH,
        &format!("/v1/projects/{}", p.id),
        Some(json!({"settings": {"rate_limits": {"login_per_minute": 2}}})),
    )
    .await;
    let fresh = app.register(&p.pk, "limited@example.com", PW).await;
    let at = fresh["access_token"].as_str().unwrap().to_string();
    let mut last = None;
    for _ in 0..3 {
        last = Some(
            send(
                app.public_req(Method::POST, "/v1/auth/password/change")
                    .header("x-project-key", &p.pk)
                    .header("x-forwarded-for", "192.0.2.77")
                    .bearer_auth(&at)
                    .json(&json!({"current_password": "wrong wrong", "new_password": "another long password"})),
            )
            .await,
        );
    }
    assert_error(&last.unwrap(), 429, "too_many_attempts");
    app.stop().await;
}

async fn full_hash_queue_answers_503_and_leaves_room_for_others(store: Store) {
    // One worker, real Argon2id cost, four places (one project may hold three).
    let Some((app, a)) = setup(
        store,
        &[
            ("IDENTITY_HASH_CONCURRENCY", "1"),
            ("IDENTITY_HASH_QUEUE", "4"),
            ("IDENTITY_ARGON2_MEMORY_KIB", "19456"),
            ("IDENTITY_ARGON2_ITERATIONS", "2"),
        ],
    )
    .await
    else {
        return;
    };
    let b = app.create_project("other").await;
    app.admin(
        Method::PATCH,
        &format!("/v1/projects/{}", b.id),
        Some(json!({"settings": {"rate_limits": {"login_per_minute": 0}}})),
    )
    .await;
    app.register(&b.pk, "calm@example.com", PW).await;
    // Project A floods from 40 addresses; project B signs in meanwhile.
    let (app_ref, apk) = (&app, &a.pk);
    let flood = join_all((0..40u32).map(|i| {
        let ip = format!("198.18.1.{}", i + 1);
        async move {
            let resp = app_ref
                .public_req(Method::POST, "/v1/auth/login")
                .header("x-project-key", apk)
                .header("x-forwarded-for", ip)
                .json(&json!({"email": "nobody@example.com", "password": "guess guess"}))
                .send()
                .await
                .unwrap();
            let retry = resp.headers().get("retry-after").is_some();
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap();
            (status, retry, body)
        }
    }));
    let calm = async {
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        login_from(&app, &b.pk, "192.0.2.5", "calm@example.com", PW).await
    };
    let (flood, calm) = tokio::join!(flood, calm);
    assert_eq!(calm.0, 200, "the other project was starved: {}", calm.1);
    let busy: Vec<_> = flood.iter().filter(|(s, _, _)| *s == 503).collect();
    let evaluated = flood.iter().filter(|(s, _, _)| *s == 401).count();
    assert!(!busy.is_empty(), "the queue never filled");
    assert_eq!(busy.len() + evaluated, 40, "only 401 or 503");
    for (_, retry, body) in &busy {
        assert!(retry, "503 without Retry-After");
        assert_eq!(body["error"]["code"], "server_busy");
    }
    // Refused attempts were given back: only evaluated ones count as failures.
    let (_, events) = app
        .get_with_key("/v1/audit-events?type=login.failed&limit=200", &a.sk)
        .await;
    assert_eq!(events["items"].as_array().unwrap().len(), evaluated);
    app.stop().await;
}

async fn forwarded_for_lines_and_ipv6_prefixes(store: Store) {
    let Some((app, p)) = setup(store, &[]).await else {
        return;
    };
    // A proxy that appends its own X-Forwarded-For line: the client's claim
    // in the first line does not win.
    let (s, body) = send(
        app.public_req(Method::POST, "/v1/auth/register")
            .header("x-project-key", &p.pk)
            .header("x-forwarded-for", "6.6.6.6")
            .header("x-forwarded-for", "192.0.2.10")
            .json(&json!({"email": "lines@example.com", "password": PW})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(body["session"]["ip"], "192.0.2.10");
    // Ports, brackets and IPv4-mapped IPv6 are read as the address.
    for (header, want) in [
        ("192.0.2.11:5555", "192.0.2.11"),
        ("[2001:db8::7]:443", "2001:db8::7"),
        ("::ffff:192.0.2.12", "192.0.2.12"),
    ] {
        let (s, b) = login_from(&app, &p.pk, header, "lines@example.com", PW).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["session"]["ip"], want, "{header}");
    }
    // IPv6 clients are counted by their /64: five failures from five
    // addresses of one /64 lock the whole /64, not another one.
    for i in 1..=5 {
        let ip = format!("2001:db8:1:2::{i}");
        assert_eq!(
            login_from(&app, &p.pk, &ip, "lines@example.com", "wrong wrong")
                .await
                .0,
            401
        );
    }
    let locked = login_from(
        &app,
        &p.pk,
        "2001:db8:1:2:ffff::99",
        "lines@example.com",
        PW,
    )
    .await;
    assert_eq!(locked.0, 429, "{}", locked.1);
    assert_eq!(
        login_from(&app, &p.pk, "2001:db8:1:3::1", "lines@example.com", PW)
            .await
            .0,
        200
    );
    app.stop().await;
}

async fn one_mailbox_one_account(store: Store) {
    let Some((app, p)) = setup(store, &[]).await else {
        return;
    };
    let first = app.register(&p.pk, "alice@example.com", PW).await;
    for spelling in [
        "alice@example.com.",
        "alice@ｅｘａｍｐｌｅ.com",
        "ALICE@Example.COM",
    ] {
        let got = app
            .post_with_key(
                "/v1/auth/register",
                &p.pk,
                json!({"email": spelling, "password": PW}),
            )
            .await;
        assert_error(&got, 409, "email_taken");
        let (s, b) = login_from(&app, &p.pk, "192.0.2.30", spelling, PW).await;
        assert_eq!(s, 200, "{spelling}: {b}");
        assert_eq!(b["user"]["id"], first["user"]["id"]);
    }
    // What the user typed is kept for display.
    let typed = app.register(&p.pk, "Bob@Example.COM", PW).await;
    assert_eq!(typed["user"]["email"], "Bob@Example.COM");
    let (_, found) = app
        .get_with_key("/v1/users?email=bob@example.com.", &p.sk)
        .await;
    assert_eq!(found["items"][0]["id"], typed["user"]["id"]);

    // Rows written under the old rule (lowercase only) are re-checked by the
    // data migration: fixed where unambiguous, reported where two accounts
    // turn out to be one mailbox, never merged.
    use identity_shared::schema::{DataMigrations, Users};
    use sea_query::{Expr, ExprTrait, Query};
    let mut tx = app.db().control().await.unwrap();
    for (id, email, normalized) in [
        (
            "usr_old000000000000000001",
            "Carol@Example.com.",
            "carol@example.com.",
        ),
        (
            "usr_old000000000000000002",
            "dave@ｅｘａｍｐｌｅ.com",
            "dave@ｅｘａｍｐｌｅ.com",
        ),
        (
            "usr_old000000000000000003",
            "Dave@example.com",
            "dave@example.com",
        ),
    ] {
        tx.execute(
            Query::insert()
                .into_table(Users::Table)
                .columns([
                    Users::Id,
                    Users::ProjectId,
                    Users::Email,
                    Users::EmailNormalized,
                    Users::EmailVerified,
                    Users::MfaEnabled,
                    Users::CreatedAt,
                    Users::UpdatedAt,
                ])
                .values_panic([
                    id.into(),
                    p.id.clone().into(),
                    email.into(),
                    normalized.into(),
                    false.into(),
                    false.into(),
                    1i64.into(),
                    1i64.into(),
                ]),
        )
        .await
        .unwrap();
    }
    tx.execute(
        Query::delete()
            .from_table(DataMigrations::Table)
            .and_where(Expr::col(DataMigrations::Name).eq("email_canonical_v1")),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    identity_shared::data_migrations::run(app.db())
        .await
        .unwrap();
    let report = identity_shared::data_migrations::email_report(app.db())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report["updated"], 1, "{report}");
    let collisions = report["collisions"].as_array().unwrap();
    assert_eq!(collisions.len(), 1, "{report}");
    assert_eq!(collisions[0]["project_id"], p.id.as_str());
    let (_, carol) = app
        .get_with_key("/v1/users?email=carol@example.com", &p.sk)
        .await;
    assert_eq!(carol["items"][0]["id"], "usr_old000000000000000001");
    // Both colliding rows are still there, untouched.
    let (_, d1) = app
        .get_with_key("/v1/users/usr_old000000000000000002", &p.sk)
        .await;
    let (_, d2) = app
        .get_with_key("/v1/users/usr_old000000000000000003", &p.sk)
        .await;
    assert_eq!(d1["user"]["email"], "dave@ｅｘａｍｐｌｅ.com");
    assert_eq!(d2["user"]["email"], "Dave@example.com");
    app.stop().await;
}

async fn key_and_session_edges(store: Store) {
    let Some((app, p)) = setup(store, &[]).await else {
        return;
    };
    // A key retired after the TTL was shortened stays published for the
    // longest TTL a project may set, not the current one.
    let project_path = format!("/v1/projects/{}", p.id);
    app.admin(
        Method::PATCH,
        &project_path,
        Some(json!({"settings": {"access_token_ttl_seconds": 86400}})),
    )
    .await;
    let body = app.register(&p.pk, "keys@example.com", PW).await;
    let long_lived = body["access_token"].as_str().unwrap().to_string();
    app.admin(
        Method::PATCH,
        &project_path,
        Some(json!({"settings": {"access_token_ttl_seconds": 60}})),
    )
    .await;
    let (s, _) = app
        .admin(
            Method::POST,
            &format!("{project_path}/signing-keys/rotate"),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let (_, keys) = app
        .admin(Method::GET, &format!("{project_path}/signing-keys"), None)
        .await;
    let retired = keys["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["active"] == false)
        .expect("a retired key");
    let until = retired["publish_until"].as_str().unwrap();
    let until =
        time::OffsetDateTime::parse(until, &time::format_description::well_known::Rfc3339).unwrap();
    let left = until - time::OffsetDateTime::now_utc();
    assert!(left.whole_seconds() >= 86_400, "published for only {left}");
    // The token it signed still verifies (cached or not).
    let (s, b) = app
        .authed(Method::GET, "/v1/auth/session", &p.pk, &long_lived, None)
        .await;
    assert_eq!(s, 200, "{b}");
    // A cached verified token re-checks its key: once the key is gone from
    // the published set, the token stops at once.
    {
        use identity_shared::schema::SigningKeys;
        use sea_query::{Expr, ExprTrait, Query};
        let mut tx = app.db().control().await.unwrap();
        tx.execute(
            Query::update()
                .table(SigningKeys::Table)
                .value(SigningKeys::PublishUntil, 1i64)
                .and_where(Expr::col(SigningKeys::ProjectId).eq(p.id.as_str()))
                .and_where(Expr::col(SigningKeys::Active).eq(false)),
        )
        .await
        .unwrap();
        tx.invalidate(identity_shared::invalidation::Invalidation::Project(
            p.id.clone(),
        ))
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    let got = app
        .authed(Method::GET, "/v1/auth/session", &p.pk, &long_lived, None)
        .await;
    assert_error(&got, 401, "invalid_token");

    // Revoke-all over a user with thousands of sessions: one statement.
    let user_id = body["user"]["id"].as_str().unwrap().to_string();
    {
        use identity_shared::schema::Sessions;
        use sea_query::Query;
        let mut tx = app.db().scope(&p.id).await.unwrap();
        for chunk in 0..10 {
            let mut insert = Query::insert();
            insert.into_table(Sessions::Table).columns([
                Sessions::Id,
                Sessions::ProjectId,
                Sessions::UserId,
                Sessions::Amr,
                Sessions::CreatedAt,
                Sessions::LastSeenAt,
                Sessions::ExpiresAt,
            ]);
            for i in 0..300 {
                insert.values_panic([
                    format!("ses_bulk{chunk:04}{i:012}").into(),
                    p.id.clone().into(),
                    user_id.clone().into(),
                    "pwd".into(),
                    1i64.into(),
                    1i64.into(),
                    i64::MAX.into(),
                ]);
            }
            tx.execute(&insert).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
    let (s, fresh) = login_from(&app, &p.pk, "192.0.2.40", "keys@example.com", PW).await;
    assert_eq!(s, 200, "{fresh}");
    let at = fresh["access_token"].as_str().unwrap().to_string();
    let (s, b) = send(
        app.public_req(Method::POST, "/v1/auth/sessions/revoke-all")
            .header("x-project-key", &p.pk)
            .bearer_auth(&at)
            .json(&json!({"include_current": true})),
    )
    .await;
    assert_eq!(s, 204, "{b}");
    let got = app
        .authed(Method::GET, "/v1/auth/session", &p.pk, &at, None)
        .await;
    assert_error(&got, 401, "session_revoked");
    let (_, events) = app
        .get_with_key(
            &format!("/v1/audit-events?type=session.revoked&user_id={user_id}"),
            &p.sk,
        )
        .await;
    // The sign-in above evicted what was past the session limit (at most
    // 1000 at a time); revoke-all ended every other one in one statement.
    let revoked = events["items"][0]["data"]["session_ids"]
        .as_array()
        .unwrap()
        .len();
    assert!(revoked > 2000, "revoked {revoked}");
    let (_, live) = app
        .authed(Method::GET, "/v1/auth/sessions", &p.pk, &at, None)
        .await;
    assert_eq!(live["error"]["code"], "session_revoked");

    // A user holds at most 100 live sessions: the oldest is evicted, audited.
    let mut first = None;
    for i in 0..101 {
        let (s, b) = login_from(&app, &p.pk, "192.0.2.41", "keys@example.com", PW).await;
        assert_eq!(s, 200, "{b}");
        if i == 0 {
            first = Some(b["access_token"].as_str().unwrap().to_string());
        }
    }
    let got = app
        .authed(
            Method::GET,
            "/v1/auth/session",
            &p.pk,
            first.as_ref().unwrap(),
            None,
        )
        .await;
    assert_error(&got, 401, "session_revoked");
    let (_, events) = app
        .get_with_key("/v1/audit-events?type=session.evicted", &p.sk)
        .await;
    let newest = &events["items"][0]["data"];
    assert_eq!(newest["reason"], "session_limit", "{events}");
    assert_eq!(
        newest["session_ids"].as_array().unwrap().len(),
        1,
        "{events}"
    );

    // The refresh grace window binds to the address too: a consumed token
    // replayed from elsewhere within the window is reuse, not a retry.
    let (_, b) = login_from(&app, &p.pk, "192.0.2.42", "keys@example.com", PW).await;
    let rt = b["refresh_token"].as_str().unwrap().to_string();
    let refresh_from = |ip: &'static str, rt: String| {
        send(
            app.public_req(Method::POST, "/v1/auth/refresh")
                .header("x-project-key", &p.pk)
                .header("x-forwarded-for", ip)
                .json(&json!({"refresh_token": rt})),
        )
    };
    let (s, first_refresh) = refresh_from("192.0.2.42", rt.clone()).await;
    assert_eq!(s, 200, "{first_refresh}");
    let (s, retry) = refresh_from("192.0.2.42", rt.clone()).await;
    assert_eq!(s, 200, "a retry from the same client is in grace: {retry}");
    assert_eq!(retry["refresh_token"], first_refresh["refresh_token"]);
    let got = refresh_from("198.51.100.99", rt).await;
    assert_error(&got, 401, "refresh_token_reused");
    app.stop().await;
}

async fn untrusted_forwarding_is_reported_by_doctor(store: Store) {
    // Loopback is not a trusted proxy here: its X-Forwarded-For is ignored...
    let Some(app) = TestApp::spawn_with(store, &[("IDENTITY_TRUSTED_PROXIES", "10.0.0.0/8")]).await
    else {
        return;
    };
    let p = app.create_project("proxy").await;
    let (s, b) = send(
        app.public_req(Method::POST, "/v1/auth/register")
            .header("x-project-key", &p.pk)
            .header("x-forwarded-for", "203.0.113.50")
            .json(&json!({"email": "direct@example.com", "password": PW})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["session"]["ip"], "127.0.0.1");
    // ...and noted for the operator.
    crate::support::eventually(std::time::Duration::from_secs(5), || async {
        identity_shared::observations::latest(
            app.db(),
            identity_shared::observations::UNTRUSTED_FORWARDED_FOR,
        )
        .await
        .unwrap()
        .is_some_and(|(peer, _)| peer == "127.0.0.1")
    })
    .await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_identity"))
        .arg("doctor")
        .env_clear()
        .env("IDENTITY_DATABASE_URL", &app.env["IDENTITY_DATABASE_URL"])
        .env("IDENTITY_MASTER_KEY", &app.env["IDENTITY_MASTER_KEY"])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("[warn] X-Forwarded-For arrived from a peer not in IDENTITY_TRUSTED_PROXIES")
            && text.contains("last from 127.0.0.1"),
        "{text}"
    );
    app.stop().await;
}

async fn nul_bytes_are_a_4xx(store: Store) {
    let Some((app, p)) = setup(store, &[]).await else {
        return;
    };
    let body = app.register(&p.pk, "nul@example.com", PW).await;
    let at = body["access_token"].as_str().unwrap().to_string();
    let (s, b) = app
        .authed(
            Method::DELETE,
            "/v1/auth/sessions/ses_%00x",
            &p.pk,
            &at,
            None,
        )
        .await;
    assert!(s.is_client_error(), "{s} {b}");
    for path in [
        "/v1/users/usr_%00x",
        "/v1/audit-events?type=%00",
        "/v1/users?email=a%00@b.co",
    ] {
        let (s, b) = app.get_with_key(path, &p.sk).await;
        assert!(s.is_client_error() || s == 200, "{path}: {s} {b}");
    }
    app.stop().await;
}

/// `Tx::defer`: queued writes reach the database in order before the
/// transaction's next statement (values with `?` and `;` in them bind to
/// the right placeholders), and a queued write that fails fails that next
/// call, so the transaction commits nothing.
async fn deferred_writes_keep_order_and_fail_the_transaction(store: Store) {
    use identity_shared::schema::AuditEvents;
    use sea_query::{Expr, ExprTrait, Order, Query};
    let Some((app, p)) = setup(store, &[]).await else {
        return;
    };
    let insert = |id: &str, data: &str| {
        Query::insert()
            .into_table(AuditEvents::Table)
            .columns([
                AuditEvents::Id,
                AuditEvents::ProjectId,
                AuditEvents::Type,
                AuditEvents::Outcome,
                AuditEvents::CreatedAt,
                AuditEvents::Data,
            ])
            .values_panic([
                id.into(),
                p.id.clone().into(),
                "test.deferred".into(),
                "success".into(),
                1i64.into(),
                data.into(),
            ])
            .to_owned()
    };
    let read = Query::select()
        .columns([AuditEvents::Id, AuditEvents::Data])
        .from(AuditEvents::Table)
        .and_where(Expr::col(AuditEvents::Type).eq("test.deferred"))
        .order_by(AuditEvents::Id, Order::Asc)
        .to_owned();
    let mut tx = app.db().scope(&p.id).await.unwrap();
    tx.defer(&insert("evt_d1", "a ? b")).await.unwrap();
    tx.defer(&insert("evt_d2", "'; DROP TABLE users; --"))
        .await
        .unwrap();
    tx.defer(&insert("evt_d3", "?")).await.unwrap();
    let rows: Vec<(String, String)> = tx.fetch_all(&read).await.unwrap();
    assert_eq!(
        rows,
        vec![
            ("evt_d1".into(), "a ? b".into()),
            ("evt_d2".into(), "'; DROP TABLE users; --".into()),
            ("evt_d3".into(), "?".into()),
        ]
    );
    tx.commit().await.unwrap();

    // A duplicate id queued behind a good write: the commit fails, and
    // neither row is there.
    let mut tx = app.db().scope(&p.id).await.unwrap();
    tx.defer(&insert("evt_d4", "fine")).await.unwrap();
    match tx.defer(&insert("evt_d1", "again")).await {
        // Postgres runs it at once.
        Err(e) => {
            assert!(
                matches!(e, identity_shared::db::DbError::UniqueViolation(_)),
                "{e}"
            );
            drop(tx);
        }
        Ok(()) => {
            let e = tx.commit().await.unwrap_err();
            assert!(
                matches!(e, identity_shared::db::DbError::UniqueViolation(_)),
                "{e}"
            );
        }
    }
    let mut tx = app.db().scope(&p.id).await.unwrap();
    let rows: Vec<(String, String)> = tx.fetch_all(&read).await.unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    tx.commit().await.unwrap();
    app.stop().await;
}
