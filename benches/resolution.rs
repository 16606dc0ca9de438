//! Project resolution from cache: what it adds to a request.
//!
//! `cargo bench --bench resolution` boots the server on a temporary SQLite
//! database, warms the caches, then measures in one run:
//! - the resolver alone, per key kind and by host;
//! - a whole data-plane request in-process (router, middleware, resolution,
//!   the discovery handler) against a bare axum route that returns the same
//!   JSON without resolution. The difference is what resolution adds.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request};
use identity::config::Config;
use identity::{Plane, Server};
use tower::ServiceExt;

const ITERATIONS: u32 = 200_000;

fn per_op(elapsed: Duration, n: u32) -> f64 {
    elapsed.as_nanos() as f64 / f64::from(n)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let dir = std::env::temp_dir().join(format!("identity-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let env: HashMap<String, String> = [
        (
            "IDENTITY_DATABASE_URL",
            format!("sqlite://{}", dir.join("bench.db").display()),
        ),
        ("IDENTITY_PUBLIC_ADDR", "127.0.0.1:0".into()),
        ("IDENTITY_ADMIN_ADDR", "127.0.0.1:0".into()),
        (
            "IDENTITY_ADMIN_TOKEN",
            "bench-operator-token-0123456789".into(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let server = Server::start(Config::from_sources(&env).unwrap(), Plane::All)
        .await
        .unwrap();
    let project = server
        .first_start
        .default_project
        .as_ref()
        .expect("a fresh database has a default project");
    let state = server.data.clone().unwrap();
    let resolver = state.resolver.clone();

    let headers = |name: &str, value: &str| {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
        h
    };
    let pk = headers("x-project-key", &project.publishable_key);
    let sk = headers("x-project-key", &project.secret_key);

    println!("resolution from cache ({ITERATIONS} iterations each, one run)");
    for (label, h) in [("publishable key", &pk), ("secret key", &sk)] {
        resolver.resolve(h).await.unwrap();
        let loads = resolver.database_loads();
        let started = Instant::now();
        for _ in 0..ITERATIONS {
            std::hint::black_box(resolver.resolve(std::hint::black_box(h)).await.unwrap());
        }
        let ns = per_op(started.elapsed(), ITERATIONS);
        assert_eq!(
            resolver.database_loads(),
            loads,
            "a cached resolution reached the database"
        );
        println!("  resolver, {label:<16} {:>8.2} µs/op", ns / 1000.0);
    }

    // Whole requests, in-process: identical JSON with and without resolution.
    let router = identity_data_plane::router(state.clone());
    let resolved = resolver.resolve(&pk).await.unwrap();
    let body = {
        let resp = router
            .clone()
            .oneshot(
                Request::get("/.well-known/openid-configuration")
                    .header("x-project-key", &project.publishable_key)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap()
    };
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let bare = axum::Router::new().route(
        "/.well-known/openid-configuration",
        axum::routing::get(move || {
            let json = json.clone();
            async move { axum::Json(json) }
        }),
    );
    let run = |router: axum::Router, key: Option<String>| async move {
        let n = ITERATIONS / 4;
        let started = Instant::now();
        for _ in 0..n {
            let mut req = Request::get("/.well-known/openid-configuration");
            if let Some(k) = &key {
                req = req.header("x-project-key", k);
            }
            let resp = router
                .clone()
                .oneshot(req.body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            std::hint::black_box(
                axum::body::to_bytes(resp.into_body(), 1 << 20)
                    .await
                    .unwrap(),
            );
        }
        per_op(started.elapsed(), n)
    };
    // Alternate twice to even out warm-up effects; keep the best of each.
    let mut full = f64::MAX;
    let mut base = f64::MAX;
    for _ in 0..2 {
        base = base.min(run(bare.clone(), Some(project.publishable_key.clone())).await);
        full = full.min(run(router.clone(), Some(project.publishable_key.clone())).await);
    }
    println!(
        "  bare axum route, same JSON     {:>8.2} µs/request",
        base / 1000.0
    );
    println!(
        "  data plane, resolved by key    {:>8.2} µs/request",
        full / 1000.0
    );
    println!(
        "  added by the data plane stack  {:>8.2} µs/request (bar: < 20 µs); ratio {:.2}x",
        (full - base) / 1000.0,
        full / base
    );

    // An authenticated request in-process: resolution, token, session.
    let register = router
        .clone()
        .oneshot(
            Request::post("/v1/auth/register")
                .header("x-project-key", &project.publishable_key)
                .header("content-type", "application/json")
                .body(Body::from(
                    r#"{"email":"bench@example.com","password":"correct horse battery staple"}"#,
                ))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(register.status(), 201);
    let body: serde_json::Value = serde_json::from_slice(
        &axum::body::to_bytes(register.into_body(), 1 << 20)
            .await
            .unwrap(),
    )
    .unwrap();
    let bearer = format!("Bearer {}", body["access_token"].as_str().unwrap());
    {
        let token = body["access_token"].as_str().unwrap();
        let issuer = state.issuer(&resolved.project);
        let db = state.shard(&resolved).unwrap();
        let sid = body["session"]["id"].as_str().unwrap();
        let uid = body["user"]["id"].as_str().unwrap();
        for (label, which) in [("token verify (cached)", 0), ("session check (cached)", 1)] {
            let loads = state.sessions.database_loads();
            let started = Instant::now();
            for _ in 0..10_000 {
                if which == 0 {
                    std::hint::black_box(
                        state
                            .tokens
                            .verify(&resolved.project, &issuer, token)
                            .await
                            .unwrap(),
                    );
                } else {
                    std::hint::black_box(
                        state
                            .sessions
                            .check(db, &resolved.project.id, uid, sid)
                            .await
                            .unwrap(),
                    );
                }
            }
            println!(
                "  {label:<30} {:>8.2} µs/op (session loads {})",
                per_op(started.elapsed(), 10_000) / 1000.0,
                state.sessions.database_loads() - loads
            );
        }
    }
    let n = ITERATIONS / 4;
    for round in 0..2 {
        let started = Instant::now();
        for _ in 0..n {
            let resp = router
                .clone()
                .oneshot(
                    Request::get("/v1/auth/session")
                        .header("x-project-key", &project.publishable_key)
                        .header("authorization", &bearer)
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            std::hint::black_box(
                axum::body::to_bytes(resp.into_body(), 1 << 20)
                    .await
                    .unwrap(),
            );
        }
        if round == 1 {
            println!(
                "  GET /v1/auth/session in-process  {:>8.2} µs/request",
                per_op(started.elapsed(), n) / 1000.0
            );
        }
    }
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
