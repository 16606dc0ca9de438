//! Domain verification against a real DNS server on loopback whose TXT
//! records are published, changed and removed during the test.

use reqwest::Method;
use serde_json::json;

use crate::on_both;
use crate::support::dns::TestDns;
use crate::support::{Store, TestApp, assert_error};

on_both!(auth_domain_verification, tenant_domain_verification);

async fn auth_domain_verification(store: Store) {
    let dns = TestDns::start().await;
    let ns = dns.addr.to_string();
    let Some(app) = TestApp::spawn_with(store, &[("IDENTITY_DNS_NAMESERVERS", &ns)]).await else {
        return;
    };
    let a = app.create_project("a").await;
    let b = app.create_project("b").await;
    let host = "auth.shared.test";
    let record = "_identity-challenge.auth.shared.test";

    // Both projects may claim the name while neither has proved it.
    let (_, ca) = app
        .admin(
            Method::POST,
            &format!("/v1/projects/{}/auth-domains", a.id),
            Some(json!({"hostname": host})),
        )
        .await;
    let (_, cb) = app
        .admin(
            Method::POST,
            &format!("/v1/projects/{}/auth-domains", b.id),
            Some(json!({"hostname": host})),
        )
        .await;
    let (da, va) = (
        ca["domain"]["id"].as_str().unwrap(),
        ca["verification"]["value"].as_str().unwrap(),
    );
    let (db, vb) = (
        cb["domain"]["id"].as_str().unwrap(),
        cb["verification"]["value"].as_str().unwrap(),
    );
    assert_ne!(va, vb);
    let verify_a = format!("/v1/projects/{}/auth-domains/{da}/verify", a.id);
    let verify_b = format!("/v1/projects/{}/auth-domains/{db}/verify", b.id);

    // No record yet.
    let got = app.admin(Method::POST, &verify_a, None).await;
    assert_error(&got, 422, "domain_verification_failed");
    // A wrong record (B's value is not A's proof).
    dns.set_txt(record, &[vb]).await;
    let got = app.admin(Method::POST, &verify_a, None).await;
    assert_error(&got, 422, "domain_verification_failed");
    // The record changes to the right value, beside unrelated ones: verified.
    dns.set_txt(record, &["v=spf1 -all", va]).await;
    let (status, body) = app.admin(Method::POST, &verify_a, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["domain"]["verified"], true);
    assert!(body["domain"]["verified_at"].is_string());
    // Verifying again is harmless.
    let (status, _) = app.admin(Method::POST, &verify_a, None).await;
    assert_eq!(status, 200);
    let (_, shown) = app
        .admin(
            Method::GET,
            &format!("/v1/projects/{}/auth-domains/{da}", a.id),
            None,
        )
        .await;
    assert!(
        shown.get("verification").is_none(),
        "a verified domain needs no challenge: {shown}"
    );

    // One project per hostname: B's proof now conflicts, and new claims are refused.
    dns.set_txt(record, &[vb]).await;
    let got = app.admin(Method::POST, &verify_b, None).await;
    assert_error(&got, 409, "domain_taken");
    let c = app.create_project("c").await;
    let got = app
        .admin(
            Method::POST,
            &format!("/v1/projects/{}/auth-domains", c.id),
            Some(json!({"hostname": "AUTH.shared.test"})),
        )
        .await;
    assert_error(&got, 409, "domain_taken");

    // The host serves A only.
    let (status, oidc) = app
        .get_with_host("/.well-known/openid-configuration", host)
        .await;
    assert_eq!(status, 200);
    assert_eq!(oidc["issuer"], format!("http://localhost:8080/{}", a.id));

    // A removes it; B can now prove it.
    app.admin(
        Method::DELETE,
        &format!("/v1/projects/{}/auth-domains/{da}", a.id),
        None,
    )
    .await;
    let (status, body) = app.admin(Method::POST, &verify_b, None).await;
    assert_eq!(status, 200, "{body}");
    let (_, oidc) = app
        .get_with_host("/.well-known/openid-configuration", host)
        .await;
    assert_eq!(oidc["issuer"], format!("http://localhost:8080/{}", b.id));

    // The record removed: a fresh claim cannot verify.
    dns.set_txt(record, &[]).await;
    let (_, cc) = app
        .admin(
            Method::POST,
            &format!("/v1/projects/{}/auth-domains", c.id),
            Some(json!({"hostname": "other.shared.test"})),
        )
        .await;
    let got = app
        .admin(
            Method::POST,
            &format!(
                "/v1/projects/{}/auth-domains/{}/verify",
                c.id,
                cc["domain"]["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_error(&got, 422, "domain_verification_failed");
    app.stop().await;
}

async fn tenant_domain_verification(store: Store) {
    let dns = TestDns::start().await;
    let ns = dns.addr.to_string();
    let Some(app) = TestApp::spawn_with(store, &[("IDENTITY_DNS_NAMESERVERS", &ns)]).await else {
        return;
    };
    let p = app.create_project("p").await;
    let (_, t1) = app
        .admin(
            Method::POST,
            &format!("/v1/projects/{}/tenants", p.id),
            Some(json!({"name": "one"})),
        )
        .await;
    let (_, t2) = app
        .admin(
            Method::POST,
            &format!("/v1/projects/{}/tenants", p.id),
            Some(json!({"name": "two"})),
        )
        .await;
    let (t1, t2) = (
        t1["tenant"]["id"].as_str().unwrap(),
        t2["tenant"]["id"].as_str().unwrap(),
    );
    let base1 = format!("/v1/projects/{}/tenants/{t1}/domains", p.id);
    let base2 = format!("/v1/projects/{}/tenants/{t2}/domains", p.id);
    let (_, d1) = app
        .admin(Method::POST, &base1, Some(json!({"domain": "acme.test"})))
        .await;
    let (_, d2) = app
        .admin(Method::POST, &base2, Some(json!({"domain": "acme.test"})))
        .await;
    let verify1 = format!("{base1}/{}/verify", d1["domain"]["id"].as_str().unwrap());
    let verify2 = format!("{base2}/{}/verify", d2["domain"]["id"].as_str().unwrap());

    let got = app.admin(Method::POST, &verify1, None).await;
    assert_error(&got, 422, "domain_verification_failed");
    dns.set_txt(
        "_identity-challenge.acme.test",
        &[d1["verification"]["value"].as_str().unwrap()],
    )
    .await;
    let (status, body) = app.admin(Method::POST, &verify1, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["domain"]["verified"], true);

    // Within a project, a verified email domain belongs to one tenant.
    dns.set_txt(
        "_identity-challenge.acme.test",
        &[d2["verification"]["value"].as_str().unwrap()],
    )
    .await;
    let got = app.admin(Method::POST, &verify2, None).await;
    assert_error(&got, 409, "domain_taken");
    app.stop().await;
}
