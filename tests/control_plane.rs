//! Every control-plane call of API.md, with its bad inputs.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::on_both;
use crate::support::{ADMIN_TOKEN, Store, TestApp, assert_error, raw_http, send};

on_both!(
    operator_token_required,
    operator_tokens_rotate_and_revoke,
    project_lifecycle,
    project_list_pagination,
    project_keys,
    signing_key_rotation,
    auth_domain_rules,
    tenants_and_tenant_domains,
    openapi_and_health,
    bad_input_never_5xx,
);

async fn operator_token_required(store: Store) {
    let Some(app) = TestApp::spawn(store).await else {
        return;
    };
    let url = format!("{}/v1/projects", app.admin);
    for req in [
        app.client.get(&url),
        app.client
            .get(&url)
            .bearer_auth("wrong-token-wrong-token-wrong"),
        app.client.get(&url).header("authorization", ADMIN_TOKEN),
        app.client.get(&url).header("authorization", "Basic abc"),
        app.client.get(&url).header("authorization", "Bearer "),
    ] {
        let got = send(req).await;
        assert_error(&got, 401, "unauthorized");
    }
    // Unauthenticated calls learn nothing about which resources exist.
    let got = send(app.client.get(format!("{}/v1/projects/prj_x", app.admin))).await;
    assert_error(&got, 401, "unauthorized");
    let (status, body) = app.admin(Method::GET, "/v1/projects", None).await;
    assert_eq!(status, 200, "{body}");
    app.stop().await;
}

async fn project_lifecycle(store: Store) {
    let Some(app) = TestApp::spawn(store).await else {
        return;
    };
    let (status, body) = app
        .admin(
            Method::POST,
            "/v1/projects",
            Some(json!({"name": "  Acme  "})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["project"]["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("prj_"));
    assert_eq!(body["project"]["name"], "Acme");
    assert_eq!(body["project"]["status"], "active");
    assert_eq!(body["project"]["shard_id"], "default");
    assert_eq!(body["project"]["settings"]["signing_alg"], "EdDSA");
    assert_eq!(body["project"]["settings"]["access_token_ttl_seconds"], 900);
    assert!(
        body["keys"]["publishable"]
            .as_str()
            .unwrap()
            .starts_with("pk_")
    );
    assert!(body["keys"]["secret"].as_str().unwrap().starts_with("sk_"));

    let (status, got) = app
        .admin(Method::GET, &format!("/v1/projects/{id}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(got["project"], body["project"]);

    let (status, patched) = app
        .admin(
            Method::PATCH,
            &format!("/v1/projects/{id}"),
            Some(json!({"name": "Acme Inc", "settings": {"allowed_origins": ["https://app.acme.com"], "refresh_token_ttl_seconds": 3600}})),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["project"]["name"], "Acme Inc");
    assert_eq!(
        patched["project"]["settings"]["allowed_origins"],
        json!(["https://app.acme.com"])
    );
    assert_eq!(
        patched["project"]["settings"]["refresh_token_ttl_seconds"],
        3600
    );
    // Untouched settings keep their values.
    assert_eq!(
        patched["project"]["settings"]["access_token_ttl_seconds"],
        900
    );

    for (bad, code) in [
        (
            json!({"settings": {"signing_alg": "HS256"}}),
            "invalid_settings",
        ),
        (json!({"settings": {"unknown": 1}}), "invalid_settings"),
        (
            json!({"settings": {"access_token_ttl_seconds": 1}}),
            "invalid_settings",
        ),
        (json!({"name": ""}), "invalid_name"),
        (json!({"name": "x".repeat(101)}), "invalid_name"),
        (json!({"name": "tab\there"}), "invalid_name"),
    ] {
        let got = app
            .admin(Method::PATCH, &format!("/v1/projects/{id}"), Some(bad))
            .await;
        assert_error(&got, 422, code);
    }
    let got = app
        .admin(
            Method::PATCH,
            &format!("/v1/projects/{id}"),
            Some(json!({"status": "deleted"})),
        )
        .await;
    assert_error(&got, 400, "invalid_request");

    let (status, body) = app
        .admin(
            Method::PATCH,
            &format!("/v1/projects/{id}"),
            Some(json!({"status": "suspended"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["project"]["status"], "suspended");

    let (status, _) = app
        .admin(Method::DELETE, &format!("/v1/projects/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let got = app
        .admin(Method::GET, &format!("/v1/projects/{id}"), None)
        .await;
    assert_error(&got, 404, "not_found");
    let got = app
        .admin(Method::DELETE, &format!("/v1/projects/{id}"), None)
        .await;
    assert_error(&got, 404, "not_found");
    // Its keys went with it.
    let got = app
        .admin(Method::GET, &format!("/v1/projects/{id}/keys"), None)
        .await;
    assert_error(&got, 404, "not_found");
    app.stop().await;
}

async fn project_list_pagination(store: Store) {
    let Some(app) = TestApp::spawn(store).await else {
        return;
    };
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(app.create_project(&format!("p{i}")).await.id);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/projects?limit=2&cursor={c}"),
            None => "/v1/projects?limit=2".to_string(),
        };
        let (status, page) = app.admin(Method::GET, &path, None).await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|p| p["id"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    // The SQLite server created a default project at first start.
    for id in &created {
        assert!(seen.contains(id), "{id} missing from {seen:?}");
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "pages overlap or are out of order");
    let (_, default_page) = app.admin(Method::GET, "/v1/projects", None).await;
    assert!(default_page["next_cursor"].is_null());
    for bad in [
        "limit=0",
        "limit=201",
        "limit=abc",
        "cursor=../../x",
        "limit=-1",
    ] {
        let got = app
            .admin(Method::GET, &format!("/v1/projects?{bad}"), None)
            .await;
        assert_error(&got, 400, "invalid_request");
    }
    app.stop().await;
}

async fn project_keys(store: Store) {
    let Some(app) = TestApp::spawn(store).await else {
        return;
    };
    let p = app.create_project("keys").await;
    let base = format!("/v1/projects/{}/keys", p.id);

    let (status, created) = app
        .admin(Method::POST, &base, Some(json!({"kind": "secret"})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let value = created["value"].as_str().unwrap().to_string();
    assert!(value.starts_with("sk_"));
    assert_eq!(created["key"]["kind"], "secret");
    let prefix = created["key"]["prefix"].as_str().unwrap();
    assert!(value.starts_with(prefix) && value.len() > prefix.len() + 20);
    let key_id = created["key"]["id"].as_str().unwrap().to_string();
    assert!(key_id.starts_with("key_"));

    let (status, list) = app.admin(Method::GET, &base, None).await;
    assert_eq!(status, 200);
    assert_eq!(list["items"].as_array().unwrap().len(), 3);
    let text = list.to_string();
    assert!(
        !text.contains(&value) && !text.contains(&p.sk) && !text.contains(&p.pk),
        "a key value leaked: {text}"
    );
    assert!(!text.contains("hash"), "{text}");

    let (status, one) = app
        .admin(Method::GET, &format!("{base}/{key_id}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(one["key"]["id"], key_id.as_str());
    assert!(one.get("value").is_none());

    // The new key works on the data plane; deleted, it stops.
    let (status, _) = app.get_with_key("/.well-known/jwks.json", &value).await;
    assert_eq!(status, 200);
    let (status, _) = app
        .admin(Method::DELETE, &format!("{base}/{key_id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let got = app.get_with_key("/.well-known/jwks.json", &value).await;
    assert_error(&got, 401, "project_key_invalid");
    let got = app
        .admin(Method::DELETE, &format!("{base}/{key_id}"), None)
        .await;
    assert_error(&got, 404, "not_found");

    // A key of another project is not reachable through this one.
    let other = app.create_project("other").await;
    let (_, other_keys) = app
        .admin(
            Method::GET,
            &format!("/v1/projects/{}/keys", other.id),
            None,
        )
        .await;
    let other_key_id = other_keys["items"][0]["id"].as_str().unwrap();
    let got = app
        .admin(Method::GET, &format!("{base}/{other_key_id}"), None)
        .await;
    assert_error(&got, 404, "not_found");
    let got = app
        .admin(Method::DELETE, &format!("{base}/{other_key_id}"), None)
        .await;
    assert_error(&got, 404, "not_found");

    for bad in [
        json!({"kind": "admin"}),
        json!({}),
        json!({"kind": 1}),
        json!({"kind": "secret", "x": 1}),
    ] {
        let got = app.admin(Method::POST, &base, Some(bad)).await;
        assert_error(&got, 400, "invalid_request");
    }
    let got = app
        .admin(
            Method::POST,
            "/v1/projects/prj_nope/keys",
            Some(json!({"kind": "secret"})),
        )
        .await;
    assert_error(&got, 404, "not_found");
    app.stop().await;
}

async fn signing_key_rotation(store: Store) {
    let Some(app) = TestApp::spawn(store).await else {
        return;
    };
    let p = app.create_project("sig").await;
    let kids = |jwks: &Value| -> Vec<String> {
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .collect()
    };
    let (status, jwks) = app.get_with_key("/.well-known/jwks.json", &p.pk).await;
    assert_eq!(status, 200);
    let first = kids(&jwks);
    assert_eq!(first.len(), 1);
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    assert_eq!(jwks["keys"][0]["crv"], "Ed25519");
    assert!(
        jwks["keys"][0].get("d").is_none(),
        "private key material published"
    );

    let (status, rotated) = app
        .admin(
            Method::POST,
            &format!("/v1/projects/{}/signing-keys/rotate", p.id),
            None,
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new_kid = rotated["kid"].as_str().unwrap().to_string();
    assert_ne!(new_kid, first[0]);
    let (_, jwks) = app.get_with_key("/.well-known/jwks.json", &p.pk).await;
    let now = kids(&jwks);
    assert_eq!(now[0], new_kid, "the active key comes first");
    assert!(
        now.contains(&first[0]),
        "the retired key must stay published while its tokens live"
    );

    let (_, list) = app
        .admin(
            Method::GET,
            &format!("/v1/projects/{}/signing-keys", p.id),
            None,
        )
        .await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items.iter().filter(|k| k["active"] == true).count(), 1);
    assert!(items.iter().all(|k| k["published"] == true));
    assert!(!list.to_string().contains("sealed"));

    // Switching the algorithm rotates to a key of the new kind.
    let (status, _) = app
        .admin(
            Method::PATCH,
            &format!("/v1/projects/{}", p.id),
            Some(json!({"settings": {"signing_alg": "RS256"}})),
        )
        .await;
    assert_eq!(status, 200);
    let (_, jwks) = app.get_with_key("/.well-known/jwks.json", &p.pk).await;
    assert_eq!(jwks["keys"][0]["kty"], "RSA");
    assert_eq!(jwks["keys"][0]["alg"], "RS256");
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 3);
    let (_, oidc) = app
        .get_with_key("/.well-known/openid-configuration", &p.pk)
        .await;
    assert_eq!(
        oidc["id_token_signing_alg_values_supported"],
        json!(["RS256"])
    );

    let got = app
        .admin(
            Method::POST,
            "/v1/projects/prj_nope/signing-keys/rotate",
            None,
        )
        .await;
    assert_error(&got, 404, "not_found");
    app.stop().await;
}

async fn auth_domain_rules(store: Store) {
    let Some(app) = TestApp::spawn(store).await else {
        return;
    };
    let p = app.create_project("domains").await;
    let base = format!("/v1/projects/{}/auth-domains", p.id);
    for bad in [
        "https://auth.acme.test",
        "auth.acme.test:443",
        "*.acme.test",
        "auth.acme.test/login",
        "localhost",
        "127.0.0.1",
        "auth..acme.test",
        "-auth.acme.test",
        "auth acme.test",
        "",
        "a\u{0}b.test",
    ] {
        let got = app
            .admin(Method::POST, &base, Some(json!({"hostname": bad})))
            .await;
        assert_error(&got, 422, "invalid_hostname");
    }
    let (status, created) = app
        .admin(
            Method::POST,
            &base,
            Some(json!({"hostname": "Auth.Acme.TEST."})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["domain"]["hostname"], "auth.acme.test");
    assert_eq!(created["domain"]["verified"], false);
    assert_eq!(created["domain"]["primary"], false);
    assert_eq!(created["verification"]["type"], "TXT");
    assert_eq!(
        created["verification"]["name"],
        "_identity-challenge.auth.acme.test"
    );
    assert!(created["verification"]["value"].as_str().unwrap().len() >= 32);
    let dom = created["domain"]["id"].as_str().unwrap().to_string();
    assert!(dom.starts_with("dom_"));

    // IDNA: a Unicode name is stored in its ASCII form.
    let (status, idn) = app
        .admin(
            Method::POST,
            &base,
            Some(json!({"hostname": "bücher.acme.test"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(idn["domain"]["hostname"], "xn--bcher-kva.acme.test");

    let got = app
        .admin(
            Method::POST,
            &base,
            Some(json!({"hostname": "auth.acme.test"})),
        )
        .await;
    assert_error(&got, 409, "domain_taken");
    let got = app
        .admin(Method::POST, &format!("{base}/{dom}/primary"), None)
        .await;
    assert_error(&got, 422, "domain_not_verified");

    let (status, shown) = app.admin(Method::GET, &format!("{base}/{dom}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(shown["verification"], created["verification"]);
    let (_, list) = app.admin(Method::GET, &base, None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);

    // An unverified domain does not resolve.
    let got = app
        .get_with_host("/.well-known/jwks.json", "auth.acme.test")
        .await;
    assert_error(&got, 404, "project_not_found");

    let (status, _) = app
        .admin(Method::DELETE, &format!("{base}/{dom}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let got = app.admin(Method::GET, &format!("{base}/{dom}"), None).await;
    assert_error(&got, 404, "not_found");
    let got = app
        .admin(Method::POST, &format!("{base}/dom_unknown/verify"), None)
        .await;
    assert_error(&got, 404, "not_found");
    app.stop().await;
}

async fn tenants_and_tenant_domains(store: Store) {
    let Some(app) = TestApp::spawn(store).await else {
        return;
    };
    let p = app.create_project("tenants").await;
    let base = format!("/v1/projects/{}/tenants", p.id);
    let (status, created) = app
        .admin(Method::POST, &base, Some(json!({"name": "Globex"})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let tid = created["tenant"]["id"].as_str().unwrap().to_string();
    assert!(tid.starts_with("ten_"));
    let (status, patched) = app
        .admin(
            Method::PATCH,
            &format!("{base}/{tid}"),
            Some(json!({"name": "Globex Corp"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(patched["tenant"]["name"], "Globex Corp");
    let (_, shown) = app.admin(Method::GET, &format!("{base}/{tid}"), None).await;
    assert_eq!(shown["tenant"]["name"], "Globex Corp");
    let (_, list) = app.admin(Method::GET, &base, None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let got = app
        .admin(Method::POST, &base, Some(json!({"name": " "})))
        .await;
    assert_error(&got, 422, "invalid_name");

    let domains = format!("{base}/{tid}/domains");
    for public in ["gmail.com", "Outlook.com", "yahoo.com"] {
        let got = app
            .admin(Method::POST, &domains, Some(json!({"domain": public})))
            .await;
        assert_error(&got, 422, "public_email_domain");
    }
    let got = app
        .admin(
            Method::POST,
            &domains,
            Some(json!({"domain": "not a domain"})),
        )
        .await;
    assert_error(&got, 422, "invalid_hostname");
    let (status, d) = app
        .admin(
            Method::POST,
            &domains,
            Some(json!({"domain": "globex.test"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{d}");
    assert_eq!(d["verification"]["name"], "_identity-challenge.globex.test");
    assert_eq!(d["domain"]["verified"], false);
    let did = d["domain"]["id"].as_str().unwrap().to_string();
    let got = app
        .admin(
            Method::POST,
            &domains,
            Some(json!({"domain": "globex.test"})),
        )
        .await;
    assert_error(&got, 409, "domain_taken");
    let (status, _) = app
        .admin(Method::GET, &format!("{domains}/{did}"), None)
        .await;
    assert_eq!(status, 200);
    let (_, dl) = app.admin(Method::GET, &domains, None).await;
    assert_eq!(dl["items"].as_array().unwrap().len(), 1);

    // Another project's tenant is invisible from here.
    let other = app.create_project("other").await;
    let got = app
        .admin(
            Method::GET,
            &format!("/v1/projects/{}/tenants/{tid}", other.id),
            None,
        )
        .await;
    assert_error(&got, 404, "not_found");

    let (status, _) = app
        .admin(Method::DELETE, &format!("{base}/{tid}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let got = app
        .admin(Method::GET, &format!("{domains}/{did}"), None)
        .await;
    assert_error(&got, 404, "not_found");
    let got = app
        .admin(
            Method::POST,
            &domains,
            Some(json!({"domain": "globex.test"})),
        )
        .await;
    assert_error(&got, 404, "not_found");
    app.stop().await;
}

async fn openapi_and_health(store: Store) {
    let Some(app) = TestApp::spawn(store).await else {
        return;
    };
    let (status, admin_doc) = send(app.client.get(format!("{}/openapi.json", app.admin))).await;
    assert_eq!(status, 200);
    assert_eq!(admin_doc["openapi"], "3.1.0");
    for path in [
        "/v1/projects",
        "/v1/projects/{id}",
        "/v1/projects/{id}/keys/{key_id}",
        "/v1/projects/{id}/auth-domains/{domain_id}/verify",
        "/v1/projects/{id}/auth-domains/{domain_id}/primary",
        "/v1/projects/{id}/tenants/{tenant_id}/domains/{domain_id}/verify",
        "/v1/projects/{id}/signing-keys/rotate",
    ] {
        assert!(
            admin_doc["paths"].get(path).is_some(),
            "{path} missing from the admin OpenAPI"
        );
    }
    let (status, public_doc) = send(app.client.get(format!("{}/openapi.json", app.public))).await;
    assert_eq!(status, 200);
    for path in [
        "/.well-known/jwks.json",
        "/v1/auth/register",
        "/v1/auth/login",
        "/v1/auth/refresh",
        "/v1/auth/logout",
        "/v1/auth/session",
        "/v1/auth/sessions",
        "/v1/auth/sessions/{id}",
        "/v1/auth/sessions/revoke-all",
        "/v1/auth/password/change",
        "/v1/users",
        "/v1/users/{id}",
        "/v1/audit-events",
    ] {
        assert!(
            public_doc["paths"].get(path).is_some(),
            "{path} missing from the public OpenAPI"
        );
    }
    for base in [&app.admin, &app.public] {
        let (status, body) = send(app.client.get(format!("{base}/healthz"))).await;
        assert_eq!(
            (status.as_u16(), body["status"].as_str()),
            (200, Some("ok"))
        );
        let (status, body) = send(app.client.get(format!("{base}/readyz"))).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["checks"]["migrations_current"], true);
        let got = send(app.client.get(format!("{base}/no/such/route"))).await;
        assert_error(&got, 404, "not_found");
    }
    let got = send(app.client.delete(format!("{}/healthz", app.admin))).await;
    assert_error(&got, 405, "method_not_allowed");
    app.stop().await;
}

/// Malformed, oversized and hostile input on every route: a clear 4xx with
/// our error shape, never a 5xx.
async fn bad_input_never_5xx(store: Store) {
    let Some(app) = TestApp::spawn(store).await else {
        return;
    };
    let p = app.create_project("bad").await;
    let (_, t) = app
        .admin(
            Method::POST,
            &format!("/v1/projects/{}/tenants", p.id),
            Some(json!({"name": "t"})),
        )
        .await;
    let tid = t["tenant"]["id"].as_str().unwrap();
    let routes: Vec<(Method, String)> = vec![
        (Method::POST, "/v1/projects".into()),
        (Method::PATCH, format!("/v1/projects/{}", p.id)),
        (Method::POST, format!("/v1/projects/{}/keys", p.id)),
        (Method::POST, format!("/v1/projects/{}/auth-domains", p.id)),
        (Method::POST, format!("/v1/projects/{}/tenants", p.id)),
        (
            Method::PATCH,
            format!("/v1/projects/{}/tenants/{tid}", p.id),
        ),
        (
            Method::POST,
            format!("/v1/projects/{}/tenants/{tid}/domains", p.id),
        ),
    ];
    let bodies: Vec<(&str, String)> = vec![
        ("application/json", "{".into()),
        ("application/json", "".into()),
        ("application/json", "null".into()),
        ("application/json", "[]".into()),
        (
            "application/json",
            "{\"name\": 5, \"hostname\": [], \"kind\": {}, \"domain\": null}".into(),
        ),
        ("application/json", "{\"name\": \"\\ud800\"}".into()),
        ("application/json", "\u{0}\u{1}\u{2}".into()),
        ("text/plain", "{\"name\": \"x\"}".into()),
    ];
    for (method, path) in &routes {
        for (ctype, body) in &bodies {
            let resp = app
                .admin_req(method.clone(), path)
                .header("content-type", *ctype)
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let status = resp.status();
            let json: Value = resp.json().await.unwrap_or(Value::Null);
            assert!(
                status.is_client_error(),
                "{method} {path} with {:.40}: {status} {json}",
                body
            );
            assert!(json["error"]["code"].is_string(), "{method} {path}: {json}");
        }
        // Oversized: declared (answered before the body is read) and
        // chunked (no length; counted while reading).
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: application/json\r\n"
        );
        let declared = format!("{head}Content-Length: {}\r\n\r\n", 10 * 1024 * 1024).into_bytes();
        let got = raw_http(&app.admin, declared).await;
        assert_error(&got, 413, "payload_too_large");
        let mut chunked = format!("{head}Transfer-Encoding: chunked\r\n\r\n").into_bytes();
        let piece = vec![b'a'; 64 * 1024];
        for _ in 0..17 {
            chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            chunked.extend_from_slice(&piece);
            chunked.extend_from_slice(b"\r\n");
        }
        chunked.extend_from_slice(b"0\r\n\r\n");
        let got = raw_http(&app.admin, chunked).await;
        assert_error(&got, 413, "payload_too_large");
    }
    // Hostile path segments.
    for path in [
        "/v1/projects/..%2F..%2Fetc",
        "/v1/projects/prj_%00",
        "/v1/projects/%F0%9F%92%A9",
        &format!("/v1/projects/{}/keys/'%20OR%201=1--", p.id),
        &format!("/v1/projects/{}", "x".repeat(5000)),
    ] {
        let (status, body) = app.admin(Method::GET, path, None).await;
        assert!(status.is_client_error(), "{path}: {status} {body}");
    }
    // Data-plane header junk.
    for key in ["", "pk_", "sk_x", &"a".repeat(10_000), "pk_\u{7f}"] {
        let resp = app
            .public_req(Method::GET, "/.well-known/jwks.json")
            .header("x-project-key", key)
            .send()
            .await;
        if let Ok(resp) = resp {
            assert!(
                resp.status().is_client_error(),
                "{key:.20}: {}",
                resp.status()
            );
        }
    }
    app.stop().await;
}

async fn operator_tokens_rotate_and_revoke(store: Store) {
    let Some(app) = TestApp::spawn(store).await else {
        return;
    };
    let with = |token: &str, method: Method, path: &str| {
        app.client
            .request(method, format!("{}{path}", app.admin))
            .bearer_auth(token.to_string())
    };
    // A named token, shown once, listed without its value.
    let (s, created) = app
        .admin(
            Method::POST,
            "/v1/operator-tokens",
            Some(json!({"name": "deploy bot"})),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    let value = created["value"].as_str().unwrap().to_string();
    let id = created["token"]["id"].as_str().unwrap().to_string();
    assert_eq!(created["token"]["source"], "api");
    assert!(created["token"]["last_used_at"].is_null());
    let (s, _) = send(with(&value, Method::GET, "/v1/projects")).await;
    assert_eq!(s, 200);
    let (_, list) = app.admin(Method::GET, "/v1/operator-tokens", None).await;
    let items = list["items"].as_array().unwrap();
    assert!(!list.to_string().contains(&value), "a value was listed");
    let mine = items.iter().find(|t| t["id"] == id.as_str()).unwrap();
    assert_eq!(mine["name"], "deploy bot");
    assert!(items.iter().any(|t| t["source"] == "env"), "{list}");
    // Its use is recorded (off the request path, so shortly after).
    crate::support::eventually(std::time::Duration::from_secs(5), || async {
        let (_, list) = app.admin(Method::GET, "/v1/operator-tokens", None).await;
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["source"] == "env" && t["last_used_at"].is_string())
    })
    .await;
    let got = app
        .admin(
            Method::POST,
            "/v1/operator-tokens",
            Some(json!({"name": ""})),
        )
        .await;
    assert_error(&got, 422, "invalid_name");
    // Revoked: refused at once.
    let (s, _) = app
        .admin(Method::DELETE, &format!("/v1/operator-tokens/{id}"), None)
        .await;
    assert_eq!(s, 204);
    let (s, _) = send(with(&value, Method::GET, "/v1/projects")).await;
    assert_eq!(s, 401);
    let got = app
        .admin(Method::DELETE, &format!("/v1/operator-tokens/{id}"), None)
        .await;
    assert_error(&got, 404, "not_found");

    // Changing IDENTITY_ADMIN_TOKEN replaces the old environment token.
    let new_token = "rotated-operator-token-0123456789abcdef";
    let peer = app
        .spawn_peer_with(&[("IDENTITY_ADMIN_TOKEN", new_token)])
        .await;
    let (s, _) = send(with(new_token, Method::GET, "/v1/projects")).await;
    assert_eq!(s, 200);
    let (s, _) = send(with(
        crate::support::ADMIN_TOKEN,
        Method::GET,
        "/v1/projects",
    ))
    .await;
    assert_eq!(s, 401, "the old environment token still works");
    let (_, list) = send(with(new_token, Method::GET, "/v1/operator-tokens")).await;
    let envs: Vec<_> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["source"] == "env")
        .collect();
    assert_eq!(envs.len(), 1, "{list}");
    // The last token cannot be revoked.
    let only = envs[0]["id"].as_str().unwrap().to_string();
    let got = send(with(
        new_token,
        Method::DELETE,
        &format!("/v1/operator-tokens/{only}"),
    ))
    .await;
    assert_error(&got, 409, "last_operator_token");
    // A node still configured with the retired value refuses to start
    // rather than bring it back.
    let stale = identity::config::Config::from_sources(&app.env).unwrap();
    let refused = identity::Server::start(stale, identity::Plane::All).await;
    let msg = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        msg.contains("revoked"),
        "a revoked environment token came back: {msg}"
    );
    peer.stop().await;
    app.stop().await;
}
