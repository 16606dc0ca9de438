//! Data-plane project resolution by key and by host, with every error code,
//! cache behaviour, and explicit invalidation.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::on_both;
use crate::support::dns::TestDns;
use crate::support::{Store, TestApp, assert_error, eventually};

on_both!(
    resolution_by_key,
    resolution_by_host,
    cached_resolution_touches_no_database,
    revocation_and_suspension_apply_on_this_node,
);

async fn resolution_by_key(store: Store) {
    let Some(app) = TestApp::spawn(store).await else {
        return;
    };
    let a = app.create_project("a").await;
    let b = app.create_project("b").await;
    for key in [&a.pk, &a.sk] {
        let (status, oidc) = app
            .get_with_key("/.well-known/openid-configuration", key)
            .await;
        assert_eq!(status, 200, "{oidc}");
        let issuer = format!("http://localhost:8080/{}", a.id);
        assert_eq!(oidc["issuer"], issuer.as_str());
        assert_eq!(oidc["jwks_uri"], format!("{issuer}/.well-known/jwks.json"));
    }
    let (_, ja) = app.get_with_key("/.well-known/jwks.json", &a.pk).await;
    let (_, jb) = app.get_with_key("/.well-known/jwks.json", &b.pk).await;
    assert_ne!(
        ja["keys"][0]["kid"], jb["keys"][0]["kid"],
        "projects share a signing key"
    );

    // Right prefix, wrong secret; a publishable key dressed as a secret one;
    // junk; an empty header. All 401 project_key_invalid.
    let mut forged = a.pk.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'a' { 'b' } else { 'a' });
    let as_secret = a.pk.replacen("pk_", "sk_", 1);
    let unknown = format!("pk_{}_{}", "a".repeat(16), "b".repeat(52));
    for key in [
        forged.as_str(),
        as_secret.as_str(),
        unknown.as_str(),
        "nonsense",
        "",
    ] {
        let got = app.get_with_key("/.well-known/jwks.json", key).await;
        assert_error(&got, 401, "project_key_invalid");
    }
    // The key wins over Host; a bad key never falls back to the host's project.
    let got = crate::support::send(
        app.public_req(Method::GET, "/.well-known/jwks.json")
            .header("x-project-key", "nonsense")
            .header("host", "auth.a.test"),
    )
    .await;
    assert_error(&got, 401, "project_key_invalid");

    // Issuer-path discovery for relying parties that only know the issuer.
    let (status, oidc) = crate::support::send(app.public_req(
        Method::GET,
        &format!("/{}/.well-known/openid-configuration", a.id),
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(oidc["issuer"], format!("http://localhost:8080/{}", a.id));
    let (status, jwks) = crate::support::send(
        app.public_req(Method::GET, &format!("/{}/.well-known/jwks.json", a.id)),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(jwks, ja);
    let got = crate::support::send(app.public_req(
        Method::GET,
        "/prj_00000000000000000000000000/.well-known/jwks.json",
    ))
    .await;
    assert_error(&got, 404, "project_not_found");

    // Suspended: 403 with either key; the other project is unaffected.
    let (status, _) = app
        .admin(
            Method::PATCH,
            &format!("/v1/projects/{}", a.id),
            Some(json!({"status": "suspended"})),
        )
        .await;
    assert_eq!(status, 200);
    for key in [&a.pk, &a.sk] {
        let got = app.get_with_key("/.well-known/jwks.json", key).await;
        assert_error(&got, 403, "project_suspended");
    }
    let got = crate::support::send(
        app.public_req(Method::GET, &format!("/{}/.well-known/jwks.json", a.id)),
    )
    .await;
    assert_error(&got, 403, "project_suspended");
    let (status, _) = app.get_with_key("/.well-known/jwks.json", &b.pk).await;
    assert_eq!(status, 200);

    // Deleted: its keys are unknown.
    app.admin(Method::DELETE, &format!("/v1/projects/{}", a.id), None)
        .await;
    let got = app.get_with_key("/.well-known/jwks.json", &a.pk).await;
    assert_error(&got, 401, "project_key_invalid");
    app.stop().await;
}

async fn resolution_by_host(store: Store) {
    let dns = TestDns::start().await;
    let ns = dns.addr.to_string();
    let Some(app) = TestApp::spawn_with(store, &[("IDENTITY_DNS_NAMESERVERS", &ns)]).await else {
        return;
    };
    let p = app.create_project("hosted").await;
    let (_, created) = app
        .admin(
            Method::POST,
            &format!("/v1/projects/{}/auth-domains", p.id),
            Some(json!({"hostname": "login.hosted.test"})),
        )
        .await;
    let dom = created["domain"]["id"].as_str().unwrap().to_string();
    let value = created["verification"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    dns.set_txt("_identity-challenge.login.hosted.test", &[&value])
        .await;
    let (status, body) = app
        .admin(
            Method::POST,
            &format!("/v1/projects/{}/auth-domains/{dom}/verify", p.id),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");

    for host in [
        "login.hosted.test",
        "LOGIN.Hosted.test:8443",
        "login.hosted.test.",
    ] {
        let (status, body) = app
            .get_with_host("/.well-known/openid-configuration", host)
            .await;
        assert_eq!(status, 200, "{host}: {body}");
    }
    for host in [
        "other.hosted.test",
        "hosted.test",
        "[::1]:80",
        "bad_host.test",
        "127.0.0.1",
    ] {
        let got = app.get_with_host("/.well-known/jwks.json", host).await;
        assert_error(&got, 404, "project_not_found");
    }
    // Primary domain: it becomes the issuer.
    let (status, _) = app
        .admin(
            Method::POST,
            &format!("/v1/projects/{}/auth-domains/{dom}/primary", p.id),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (_, oidc) = app
        .get_with_host("/.well-known/openid-configuration", "login.hosted.test")
        .await;
    assert_eq!(oidc["issuer"], "http://login.hosted.test");
    let (_, oidc) = app
        .get_with_key("/.well-known/openid-configuration", &p.pk)
        .await;
    assert_eq!(
        oidc["issuer"], "http://login.hosted.test",
        "the issuer does not depend on how the project was found"
    );

    // Suspended through the host too.
    app.admin(
        Method::PATCH,
        &format!("/v1/projects/{}", p.id),
        Some(json!({"status": "suspended"})),
    )
    .await;
    let got = app
        .get_with_host("/.well-known/jwks.json", "login.hosted.test")
        .await;
    assert_error(&got, 403, "project_suspended");
    app.admin(
        Method::PATCH,
        &format!("/v1/projects/{}", p.id),
        Some(json!({"status": "active"})),
    )
    .await;
    let (status, _) = app
        .get_with_host("/.well-known/jwks.json", "login.hosted.test")
        .await;
    assert_eq!(status, 200);

    // Removed: it stops resolving.
    app.admin(
        Method::DELETE,
        &format!("/v1/projects/{}/auth-domains/{dom}", p.id),
        None,
    )
    .await;
    let got = app
        .get_with_host("/.well-known/jwks.json", "login.hosted.test")
        .await;
    assert_error(&got, 404, "project_not_found");
    app.stop().await;
}

async fn cached_resolution_touches_no_database(store: Store) {
    let Some(app) = TestApp::spawn(store).await else {
        return;
    };
    let p = app.create_project("cache").await;
    let resolver = app
        .server
        .as_ref()
        .unwrap()
        .data
        .as_ref()
        .unwrap()
        .resolver
        .clone();
    app.get_with_key("/.well-known/openid-configuration", &p.pk)
        .await;
    app.get_with_key("/.well-known/openid-configuration", &p.sk)
        .await;
    let before = resolver.database_loads();
    for _ in 0..50 {
        let (status, _) = app
            .get_with_key("/.well-known/openid-configuration", &p.pk)
            .await;
        assert_eq!(status, 200);
        let (status, _) = app
            .get_with_key("/.well-known/openid-configuration", &p.sk)
            .await;
        assert_eq!(status, 200);
    }
    assert_eq!(
        resolver.database_loads(),
        before,
        "a cached key went to the database"
    );
    // Unknown keys are cached as negatives too: a flood of them costs one load each prefix.
    let unknown = format!("pk_{}_{}", "c".repeat(16), "d".repeat(52));
    for _ in 0..20 {
        let got = app
            .get_with_key("/.well-known/openid-configuration", &unknown)
            .await;
        assert_error(&got, 401, "project_key_invalid");
    }
    assert_eq!(resolver.database_loads(), before + 1);
    app.stop().await;
}

async fn revocation_and_suspension_apply_on_this_node(store: Store) {
    let Some(app) = TestApp::spawn(store).await else {
        return;
    };
    let p = app.create_project("revoke").await;
    let (_, k) = app
        .admin(
            Method::POST,
            &format!("/v1/projects/{}/keys", p.id),
            Some(json!({"kind": "publishable"})),
        )
        .await;
    let value = k["value"].as_str().unwrap().to_string();
    let key_id = k["key"]["id"].as_str().unwrap().to_string();
    let (status, _) = app.get_with_key("/.well-known/jwks.json", &value).await;
    assert_eq!(status, 200);
    app.admin(
        Method::DELETE,
        &format!("/v1/projects/{}/keys/{key_id}", p.id),
        None,
    )
    .await;
    let took = eventually(Duration::from_secs(1), || async {
        app.get_with_key("/.well-known/jwks.json", &value).await.0 == 401
    })
    .await;
    assert!(took < Duration::from_secs(1));
    app.admin(
        Method::PATCH,
        &format!("/v1/projects/{}", p.id),
        Some(json!({"status": "suspended"})),
    )
    .await;
    eventually(Duration::from_secs(1), || async {
        app.get_with_key("/.well-known/jwks.json", &p.pk).await.0 == 403
    })
    .await;
    app.stop().await;
}
