//! Core-auth benchmarks, all ratios taken in one run on this machine:
//!
//! 1. login throughput against the bare Argon2id rate at the same parameters;
//! 2. `GET /v1/auth/session` p99 while logins saturate the CPU;
//! 3. `GET /v1/auth/session` throughput against a bare axum endpoint that
//!    returns the same JSON, same load tool;
//! 4. refresh throughput on Postgres next to pgbench's single-row-update rate
//!    on the same server.
//!
//! `cargo bench --bench auth`. The server runs on its own runtime; the load
//! generator (reqwest over loopback) on another. Both share the machine's
//! cores, as any load test on one machine does.

#[path = "../tests/support/postgres.rs"]
#[allow(dead_code)]
mod postgres;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
use identity::config::Config;
use identity::{Plane, Server};
use serde_json::{Value, json};

const PW: &str = "correct horse battery staple";

fn config(url: &str, extra: &[(&str, &str)]) -> Config {
    let mut env: HashMap<String, String> = [
        ("IDENTITY_DATABASE_URL", url),
        ("IDENTITY_PUBLIC_ADDR", "127.0.0.1:0"),
        ("IDENTITY_ADMIN_ADDR", "127.0.0.1:0"),
        ("IDENTITY_ADMIN_TOKEN", "bench-operator-token-0123456789"),
        ("IDENTITY_MASTER_KEY", &"22".repeat(32)),
        ("IDENTITY_AUTO_MIGRATE", "true"),
        ("IDENTITY_DB_MAX_CONNECTIONS", "16"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    Config::from_sources(&env).unwrap()
}

struct Target {
    base: String,
    key: String,
    client: reqwest::Client,
}

impl Target {
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .header("x-project-key", &self.key)
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }
}

/// Runs `concurrency` loops of `op` for `secs`; returns (ops/s, sorted latencies).
async fn load<F, Fut>(concurrency: usize, secs: f64, op: F) -> (f64, Vec<Duration>)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (op, stop) = (op.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                assert!(op(worker).await, "operation failed under load");
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    (all.len() as f64 / elapsed, all)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn bare_argon2_rate(cores: usize) -> (Duration, f64, f64) {
    let argon = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(19_456, 2, 1, None).unwrap(),
    );
    let hash_once = || {
        let salt = SaltString::generate(&mut OsRng);
        std::hint::black_box(argon.hash_password(PW.as_bytes(), &salt).unwrap());
    };
    hash_once();
    let n = 20;
    let t = Instant::now();
    for _ in 0..n {
        hash_once();
    }
    let single = t.elapsed() / n;
    // Measured parallel rate: one thread per core, 3 s.
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let t = Instant::now();
    let threads: Vec<_> = (0..cores)
        .map(|_| {
            let (stop, count) = (stop.clone(), count.clone());
            std::thread::spawn(move || {
                let argon = argon2::Argon2::new(
                    argon2::Algorithm::Argon2id,
                    argon2::Version::V0x13,
                    argon2::Params::new(19_456, 2, 1, None).unwrap(),
                );
                while !stop.load(Ordering::Relaxed) {
                    let salt = SaltString::generate(&mut OsRng);
                    std::hint::black_box(argon.hash_password(PW.as_bytes(), &salt).unwrap());
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    for th in threads {
        th.join().unwrap();
    }
    let measured = count.load(Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64();
    (single, cores as f64 / single.as_secs_f64(), measured)
}

fn main() {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    println!("identity core-auth benchmark ({cores} cores, one run)\n");

    // 1a. The bare hash rate, before any server exists.
    let (single, theoretical, measured) = bare_argon2_rate(cores);
    println!("Argon2id m=19456 KiB t=2 p=1");
    println!(
        "  single hash                        {:>9.1} ms",
        single.as_secs_f64() * 1000.0
    );
    println!("  bare rate, cores / single hash     {theoretical:>9.1} hashes/s");
    println!("  bare rate, measured on {cores} threads     {measured:>9.1} hashes/s");

    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()
        .unwrap();
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("identity-bench-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sqlite_url = format!("sqlite://{}", dir.join("bench.db").display());

    let server = server_rt
        .block_on(Server::start(config(&sqlite_url, &[]), Plane::All))
        .unwrap();
    let base = format!("http://{}", server.public_addr.unwrap());
    let project = server.first_start.default_project.as_ref().unwrap();
    let key = project.publishable_key.clone();
    let bare_addr = server_rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        (l, addr)
    });

    client_rt.block_on(async {
        let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
        let t = Arc::new(Target { base: base.clone(), key: key.clone(), client: client.clone() });
        // Project rate limits off: this is a throughput test from one IP.
        let admin = format!("http://{}", server.admin_addr.unwrap());
        let r = client
            .patch(format!("{admin}/v1/projects/{}", project.id))
            .bearer_auth("bench-operator-token-0123456789")
            .json(&json!({"settings": {"rate_limits": {"register_per_minute": 0, "login_per_minute": 0, "refresh_per_minute": 0}}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let (s, reg) = t.post("/v1/auth/register", json!({"email": "bench@example.com", "password": PW})).await;
        assert_eq!(s, 201);
        let access = reg["access_token"].as_str().unwrap().to_string();

        // 1b. Login throughput.
        let tl = t.clone();
        let (logins, lat) = load(cores * 4, 8.0, move |_| {
            let t = tl.clone();
            async move { t.post("/v1/auth/login", json!({"email": "bench@example.com", "password": PW})).await.0 == 200 }
        })
        .await;
        println!("\nlogin over HTTP (SQLite, {} clients)", cores * 4);
        println!("  logins                             {logins:>9.1} /s   (p50 {:?})", pct(&lat, 0.5));
        println!("  vs bare rate (cores / single)      {:>9.1} %   (bar: >= 90 %)", logins / theoretical * 100.0);
        println!("  vs measured parallel hash rate     {:>9.1} %", logins / measured * 100.0);

        // 2. Session checks while logins saturate the CPU.
        let session_get = {
            let (client, base, key, access) = (client.clone(), base.clone(), key.clone(), access.clone());
            move |_| {
                let req = client.get(format!("{base}/v1/auth/session")).header("x-project-key", &key).bearer_auth(&access);
                async move { req.send().await.map(|r| r.status() == 200).unwrap_or(false) }
            }
        };
        let tl = t.clone();
        let saturate = tokio::spawn(load(cores * 4, 6.0, move |_| {
            let t = tl.clone();
            async move { t.post("/v1/auth/login", json!({"email": "bench@example.com", "password": PW})).await.0 == 200 }
        }));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (_, lat) = load(1, 5.0, session_get.clone()).await;
        let (busy_logins, _) = saturate.await.unwrap();
        println!("\nGET /v1/auth/session while logins saturate the CPU ({busy_logins:.1} logins/s meanwhile)");
        println!(
            "  p50 {:?}  p99 {:?}  max {:?}  ({} checks)   (bar: p99 < 10 ms)",
            pct(&lat, 0.5),
            pct(&lat, 0.99),
            lat.last().copied().unwrap_or_default(),
            lat.len()
        );

        // 3. Session check throughput against a bare endpoint with the same JSON.
        let (_, body) = {
            let r = client.get(format!("{base}/v1/auth/session")).header("x-project-key", &key).bearer_auth(&access).send().await.unwrap();
            (r.status(), r.bytes().await.unwrap())
        };
        let (listener, addr) = bare_addr;
        let json: Value = serde_json::from_slice(&body).unwrap();
        server_rt.spawn(async move {
            let app = axum::Router::new().route(
                "/v1/auth/session",
                axum::routing::get(move || {
                    let json = json.clone();
                    async move { axum::Json(json) }
                }),
            );
            axum::serve(listener, app).await.unwrap();
        });
        let bare_get = {
            let client = client.clone();
            move |_| {
                let req = client.get(format!("http://{addr}/v1/auth/session")).header("x-project-key", "x").bearer_auth("x");
                async move { req.send().await.map(|r| r.status() == 200).unwrap_or(false) }
            }
        };
        let conc = 32;
        let (_, _) = load(conc, 1.0, bare_get.clone()).await;
        let (bare_rate, _) = load(conc, 5.0, bare_get).await;
        let (_, _) = load(conc, 1.0, session_get.clone()).await;
        let (session_rate, slat) = load(conc, 5.0, session_get).await;
        println!("\nthroughput, {conc} concurrent clients, same load tool");
        println!("  bare axum endpoint, same JSON      {bare_rate:>9.0} req/s");
        println!("  GET /v1/auth/session               {session_rate:>9.0} req/s   (p99 {:?})", pct(&slat, 0.99));
        println!("  ratio                              {:>9.1} %   (bar: >= 40 %)", session_rate / bare_rate * 100.0);
    });
    server_rt.block_on(server.shutdown());
    let _ = std::fs::remove_dir_all(&dir);

    // 4. Refresh on Postgres, next to pgbench on the same server.
    let Some(pg_url) = server_rt.block_on(postgres::fresh_database()) else {
        println!("\nrefresh on Postgres: skipped (no Postgres)");
        return;
    };
    let server = server_rt
        .block_on(Server::start(config(&pg_url, &[]), Plane::All))
        .unwrap();
    let base = format!("http://{}", server.public_addr.unwrap());
    let admin = format!("http://{}", server.admin_addr.unwrap());
    let clients = 16;
    let refresh_rate = client_rt.block_on(async {
        let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
        let created: Value = client
            .post(format!("{admin}/v1/projects"))
            .bearer_auth("bench-operator-token-0123456789")
            .json(&json!({"name": "bench"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = created["project"]["id"].as_str().unwrap();
        client
            .patch(format!("{admin}/v1/projects/{id}"))
            .bearer_auth("bench-operator-token-0123456789")
            .json(&json!({"settings": {"rate_limits": {"register_per_minute": 0, "login_per_minute": 0, "refresh_per_minute": 0}}}))
            .send()
            .await
            .unwrap();
        let t = Arc::new(Target { base, key: created["keys"]["publishable"].as_str().unwrap().to_string(), client });
        // One refresh chain per client.
        let mut chains = Vec::new();
        for i in 0..clients {
            let (s, b) = t.post("/v1/auth/register", json!({"email": format!("r{i}@example.com"), "password": PW})).await;
            assert_eq!(s, 201);
            chains.push(tokio::sync::Mutex::new(b["refresh_token"].as_str().unwrap().to_string()));
        }
        let chains = Arc::new(chains);
        let (rate, lat) = load(clients, 8.0, move |worker| {
            let (t, chains) = (t.clone(), chains.clone());
            async move {
                let mut rt = chains[worker].lock().await;
                let (s, b) = t.post("/v1/auth/refresh", json!({"refresh_token": *rt})).await;
                if s != 200 {
                    return false;
                }
                *rt = b["refresh_token"].as_str().unwrap().to_string();
                true
            }
        })
        .await;
        println!("\nrefresh over HTTP on Postgres ({clients} clients, one chain each)");
        println!("  refreshes                          {rate:>9.0} /s   (p50 {:?}, p99 {:?})", pct(&lat, 0.5), pct(&lat, 0.99));
        rate
    });
    server_rt.block_on(server.shutdown());
    match pgbench_single_row_updates(&pg_url, clients) {
        Ok(tps) => {
            println!("  pgbench single-row UPDATE, {clients} clients {tps:>9.0} tps");
            println!(
                "  refresh / pgbench                  {:>9.1} %",
                refresh_rate / tps * 100.0
            );
        }
        Err(e) => println!("  pgbench: {e}"),
    }
}

/// pgbench on the same server: one-row UPDATEs by primary key, `clients`
/// connections, 8 s.
fn pgbench_single_row_updates(url: &str, clients: usize) -> Result<f64, String> {
    let bin = [
        "/usr/lib/postgresql/15/bin/pgbench",
        "/usr/lib/postgresql/16/bin/pgbench",
        "/usr/lib/postgresql/17/bin/pgbench",
        "pgbench",
    ]
    .into_iter()
    .find(|p| !p.starts_with('/') || std::path::Path::new(p).exists())
    .unwrap();
    let psql = |sql: &str| {
        std::process::Command::new("psql")
            .arg(url)
            .args(["-q", "-c", sql])
            .output()
            .map_err(|e| e.to_string())
    };
    psql("CREATE TABLE IF NOT EXISTS bench_rows (id int PRIMARY KEY, v bigint NOT NULL)")?;
    psql(
        "INSERT INTO bench_rows SELECT g, 0 FROM generate_series(1, 100000) g ON CONFLICT DO NOTHING",
    )?;
    let script = std::env::temp_dir().join(format!("identity-pgbench-{}.sql", std::process::id()));
    std::fs::write(
        &script,
        "\\set id random(1, 100000)\nUPDATE bench_rows SET v = v + 1 WHERE id = :id;\n",
    )
    .map_err(|e| e.to_string())?;
    let out = std::process::Command::new(bin)
        .args(["-n", "-c", &clients.to_string(), "-j", "2", "-T", "8", "-f"])
        .arg(&script)
        .arg(url)
        .output()
        .map_err(|e| format!("{bin}: {e}"))?;
    let _ = std::fs::remove_file(&script);
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| {
            l.strip_prefix("tps = ")
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        })
        .ok_or_else(|| {
            format!(
                "no tps in pgbench output: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}
