//! OAuth and OpenID Connect: the per-project provider configuration of the
//! control plane, on both backends (the sign-in flows come next).

use reqwest::Method;
use serde_json::{Value, json};

use crate::on_both;
use crate::support::{Store, TestApp, assert_error};

on_both!(provider_configuration);

const APPLE_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIGTAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBHkwdwIBAQQg\n-----END PRIVATE KEY-----";

async fn provider_configuration(store: Store) {
    let Some(app) = TestApp::spawn(store).await else {
        return;
    };
    let p = app.create_project("oauth").await;
    let other = app.create_project("other").await;
    let base = format!("/v1/projects/{}/oauth-providers", p.id);
    let put = |provider: &str, body: Value| {
        let (app, path) = (&app, format!("{base}/{provider}"));
        async move { app.admin(Method::PUT, &path, Some(body)).await }
    };
    let (s, b) = put(
        "google",
        json!({"client_id": "g-client", "client_secret": "g-secret-value"}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["provider"]["provider"], "google");
    assert_eq!(b["provider"]["has_client_secret"], true);
    assert_eq!(b["provider"]["enabled"], true);
    assert_eq!(
        b["provider"]["scopes"],
        json!(["openid", "email", "profile"])
    );
    assert!(!b.to_string().contains("g-secret-value"), "{b}");
    // Updating without a secret keeps it.
    let (s, b) = put(
        "google",
        json!({"client_id": "g-client-2", "enabled": false}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["provider"]["client_id"], "g-client-2");
    assert_eq!(b["provider"]["has_client_secret"], true);
    assert_eq!(b["provider"]["enabled"], false);
    // GitHub with endpoints (a local mock in dev mode), Apple with its key,
    // any OpenID provider by issuer.
    let (s, b) = put(
        "github",
        json!({"client_id": "gh", "client_secret": "gh-secret", "endpoints": {
            "authorize": "http://127.0.0.1:9/login/oauth/authorize",
            "token": "http://127.0.0.1:9/login/oauth/access_token",
            "api": "http://127.0.0.1:9/api"}}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["provider"]["scopes"], json!(["read:user", "user:email"]));
    assert_eq!(
        b["provider"]["endpoints"]["token"],
        "http://127.0.0.1:9/login/oauth/access_token"
    );
    let (s, b) = put(
        "apple",
        json!({"client_id": "com.example.web", "apple": {"team_id": "ABCDE12345", "key_id": "KEY1234567", "private_key": APPLE_KEY}}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(
        b["provider"]["apple"],
        json!({"team_id": "ABCDE12345", "key_id": "KEY1234567"})
    );
    assert!(!b.to_string().contains("MIGTAgEA"), "{b}");
    let (s, b) = put(
        "oidc:acme-sso",
        json!({"client_id": "acme", "client_secret": "acme-secret", "issuer": "https://sso.acme.test/"}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["provider"]["issuer"], "https://sso.acme.test");

    let (s, list) = app.admin(Method::GET, &base, None).await;
    assert_eq!(s, 200);
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["provider"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["apple", "github", "google", "oidc:acme-sso"]);
    let text = list.to_string();
    for secret in ["g-secret-value", "gh-secret", "acme-secret", "MIGTAgEA"] {
        assert!(!text.contains(secret), "{secret} shown: {text}");
    }
    // Sealed at rest.
    let mut tx = app.db().control().await.unwrap();
    let stored: Vec<(Option<String>, Option<String>)> = tx
        .fetch_all(
            sea_query::Query::select()
                .columns([
                    identity_shared::schema::OauthProviders::ClientSecretSealed,
                    identity_shared::schema::OauthProviders::AppleSealed,
                ])
                .from(identity_shared::schema::OauthProviders::Table),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let stored = format!("{stored:?}");
    for secret in ["g-secret-value", "gh-secret", "acme-secret", "MIGTAgEA"] {
        assert!(!stored.contains(secret), "{secret} stored in the clear");
    }

    // Refusals.
    assert_error(
        &put("facebook", json!({"client_id": "x", "client_secret": "y"})).await,
        404,
        "unknown_provider",
    );
    assert_error(
        &put(
            "oidc:Bad_Name",
            json!({"client_id": "x", "client_secret": "y"}),
        )
        .await,
        404,
        "unknown_provider",
    );
    for (provider, body) in [
        (
            "oidc:nohost",
            json!({"client_id": "x", "client_secret": "y"}),
        ),
        (
            "oidc:plain",
            json!({"client_id": "x", "client_secret": "y", "issuer": "http://sso.example.com"}),
        ),
        (
            "oidc:query",
            json!({"client_id": "x", "client_secret": "y", "issuer": "https://sso.example.com/?a=b"}),
        ),
        (
            "oidc:scopes",
            json!({"client_id": "x", "client_secret": "y", "issuer": "https://sso.example.com", "scopes": ["email"]}),
        ),
        ("microsoft", json!({"client_id": "x"})),
        (
            "github",
            json!({"client_id": "x", "client_secret": "y", "issuer": "https://github.com"}),
        ),
        (
            "google",
            json!({"client_id": "x", "client_secret": "y", "endpoints": {"token": "https://x.test/t"}}),
        ),
        (
            "apple",
            json!({"client_id": "x", "apple": {"team_id": "short", "key_id": "KEY1234567", "private_key": APPLE_KEY}}),
        ),
        (
            "apple",
            json!({"client_id": "x", "apple": {"team_id": "ABCDE12345", "key_id": "KEY1234567", "private_key": "not a key"}}),
        ),
        ("microsoft", json!({"client_id": "", "client_secret": "y"})),
        (
            "microsoft",
            json!({"client_id": "x", "client_secret": "y", "scopes": []}),
        ),
    ] {
        let got = put(provider, body.clone()).await;
        assert_error(&got, 422, "invalid_provider");
    }
    assert_eq!(put("google", json!({"client_id": 5})).await.0, 400);
    assert_eq!(
        put("google", json!({"client_id": "x", "nope": 1})).await.0,
        400
    );
    // Another project sees none of them; delete works once.
    let (_, theirs) = app
        .admin(
            Method::GET,
            &format!("/v1/projects/{}/oauth-providers", other.id),
            None,
        )
        .await;
    assert_eq!(theirs["items"], json!([]));
    // Apple without its key (nothing stored to keep) is refused.
    assert_error(
        &app.admin(
            Method::PUT,
            &format!("/v1/projects/{}/oauth-providers/apple", other.id),
            Some(json!({"client_id": "x"})),
        )
        .await,
        422,
        "invalid_provider",
    );
    let (s, _) = app
        .admin(Method::DELETE, &format!("{base}/github"), None)
        .await;
    assert_eq!(s, 204);
    assert_error(
        &app.admin(Method::DELETE, &format!("{base}/github"), None)
            .await,
        404,
        "not_found",
    );
    assert_error(
        &app.admin(Method::GET, "/v1/projects/prj_nope/oauth-providers", None)
            .await,
        404,
        "not_found",
    );
    app.stop().await;
}
