//! What only Postgres has: the row-level-security proof, the startup refusal
//! of a role that could bypass it, and invalidation across two nodes that
//! share one database.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use sqlx::Row;

use crate::support::dns::TestDns;
use crate::support::{ROLES, Store, TestApp, eventually};

/// Every table with a `project_id` column, from the catalog: a table added
/// later is proven too, or fails the proof.
async fn scoped_tables(pool: &sqlx::PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.table_name::text FROM information_schema.columns c
           JOIN information_schema.tables t
             ON t.table_schema = c.table_schema AND t.table_name = c.table_name
          WHERE c.table_schema = current_schema() AND c.column_name = 'project_id'
            AND t.table_type = 'BASE TABLE'
          ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Inside a scope, connected as a superuser, with no `WHERE project_id`:
/// a SELECT sees only the scoped project's rows, none without a project,
/// and writes into another project are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rls_proof() {
    let Some(app) = TestApp::spawn(Store::Postgres).await else {
        return;
    };
    let _roles = ROLES.read().await;
    let a = app.create_project("a").await;
    let b = app.create_project("b").await;
    for p in [&a, &b] {
        for name in ["t1", "t2"] {
            let (s, _) = app
                .admin(
                    Method::POST,
                    &format!("/v1/projects/{}/tenants", p.id),
                    Some(json!({"name": name})),
                )
                .await;
            assert_eq!(s, 201);
        }
    }
    // Rows in every data-plane table, for both projects.
    for p in [&a, &b] {
        app.register(&p.pk, "someone@example.com", "correct horse battery staple")
            .await;
        let (s, _) = app
            .login(&p.pk, "someone@example.com", "wrong wrong wrong")
            .await;
        assert_eq!(s, 401);
    }
    let db = app.db();
    let pool = db.pg_pool().unwrap();
    let tables = scoped_tables(pool).await;
    for expected in [
        "project_keys",
        "signing_keys",
        "auth_domains",
        "tenants",
        "tenant_domains",
        "users",
        "sessions",
        "refresh_tokens",
        "login_failures",
        "audit_events",
    ] {
        assert!(
            tables.iter().any(|t| t == expected),
            "{expected} not found in {tables:?}"
        );
    }
    // Each is under forced RLS with a policy for the data-plane role that
    // has both USING and WITH CHECK on project_id.
    for table in &tables {
        let (enabled, forced): (bool, bool) = sqlx::query_as(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class
              WHERE oid = (current_schema() || '.' || $1)::regclass",
        )
        .bind(table)
        .fetch_one(pool)
        .await
        .unwrap();
        assert!(
            enabled && forced,
            "{table}: RLS enabled {enabled}, forced {forced}"
        );
        let policies: Vec<(Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT qual, with_check FROM pg_policies
              WHERE schemaname = current_schema() AND tablename = $1
                AND 'identity_app' = ANY(roles)",
        )
        .bind(table)
        .fetch_all(pool)
        .await
        .unwrap();
        assert!(
            policies.iter().any(|(using, check)| {
                let scoped = |e: &Option<String>| {
                    e.as_deref()
                        .is_some_and(|e| e.contains("project_id") && e.contains("app.project_id"))
                };
                scoped(using) && scoped(check)
            }),
            "{table}: no identity_app policy with USING and WITH CHECK on project_id: {policies:?}"
        );
    }
    let superuser: bool =
        sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = session_user")
            .fetch_one(pool)
            .await
            .unwrap();
    assert!(superuser, "the proof must run connected as a superuser");

    // Reads: only A's rows, in every project-scoped table.
    let mut tx = db.scope(&a.id).await.unwrap();
    let conn = tx.pg_conn().unwrap();
    let (role, is_super): (String, bool) = sqlx::query_as(
        "SELECT current_user::text, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    assert_eq!((role.as_str(), is_super), ("identity_app", false));
    for table in &tables {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT project_id FROM {table}"
        )))
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        let ids: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        assert!(
            ids.iter().all(|id| id == &a.id),
            "{table} leaked rows of another project: {ids:?}"
        );
        if table == "tenants" {
            assert_eq!(ids.len(), 2);
        }
        let populated = [
            "project_keys",
            "signing_keys",
            "tenants",
            "users",
            "sessions",
            "refresh_tokens",
            "login_failures",
            "audit_events",
        ];
        if populated.contains(&table.as_str()) {
            assert!(
                !ids.is_empty(),
                "{table}: the scoped project's own rows must be visible"
            );
        }
    }
    // Control-plane tables are not the data-plane role's business.
    let denied = sqlx::query("SELECT id FROM projects")
        .fetch_all(&mut *conn)
        .await;
    assert!(denied.is_err(), "identity_app can read projects");
    drop(tx);

    // Writes into B from A's scope: UPDATE and DELETE see nothing, INSERT
    // and moving a row to B are refused.
    let mut tx = db.scope(&a.id).await.unwrap();
    let conn = tx.pg_conn().unwrap();
    let updated = sqlx::query("UPDATE tenants SET name = 'pwned' WHERE project_id = $1")
        .bind(&b.id)
        .execute(&mut *conn)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(updated, 0);
    let deleted = sqlx::query("DELETE FROM tenants WHERE project_id = $1")
        .bind(&b.id)
        .execute(&mut *conn)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(deleted, 0);
    tx.commit().await.unwrap();

    let mut tx = db.scope(&a.id).await.unwrap();
    let err = sqlx::query("INSERT INTO tenants (id, project_id, name, created_at, updated_at) VALUES ('ten_x', $1, 'x', 0, 0)")
        .bind(&b.id)
        .execute(tx.pg_conn().unwrap())
        .await
        .expect_err("insert into another project accepted");
    assert!(err.to_string().contains("row-level security"), "{err}");
    drop(tx);

    let mut tx = db.scope(&a.id).await.unwrap();
    let err = sqlx::query("UPDATE tenants SET project_id = $1")
        .bind(&b.id)
        .execute(tx.pg_conn().unwrap())
        .await
        .expect_err("moving rows to another project accepted");
    assert!(err.to_string().contains("row-level security"), "{err}");
    drop(tx);

    // No project set: nothing at all.
    let mut tx = db.scope("").await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants")
        .fetch_one(tx.pg_conn().unwrap())
        .await
        .unwrap();
    assert_eq!(n, 0);
    drop(tx);
    let mut raw = pool.begin().await.unwrap();
    sqlx::query("SELECT set_config('role', 'identity_app', true)")
        .execute(&mut *raw)
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants")
        .fetch_one(&mut *raw)
        .await
        .unwrap();
    assert_eq!(n, 0, "no app.project_id must mean no rows");
    drop(raw);

    // B's rows are intact.
    let (_, list) = app
        .admin(Method::GET, &format!("/v1/projects/{}/tenants", b.id), None)
        .await;
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(!names.contains(&"pwned"));
    drop(_roles);
    app.stop().await;
}

/// A data-plane role that could bypass RLS makes the server refuse to start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_a_role_that_bypasses_rls() {
    let Some(app) = TestApp::spawn(Store::Postgres).await else {
        return;
    };
    let pool = app.db().pg_pool().unwrap().clone();
    let config = identity::config::Config::from_sources(&app.env).unwrap();
    let refused = {
        let _write = ROLES.write().await;
        sqlx::query("ALTER ROLE identity_app BYPASSRLS")
            .execute(&pool)
            .await
            .unwrap();
        let checked = app.db().check_roles().await;
        let started = identity::Server::start(config, identity::Plane::All).await;
        sqlx::query("ALTER ROLE identity_app NOBYPASSRLS")
            .execute(&pool)
            .await
            .unwrap();
        (
            checked.map_err(|e| e.to_string()),
            started.err().map(|e| e.to_string()),
        )
    };
    let (checked, started) = refused;
    let msg = checked.expect_err("check_roles accepted a BYPASSRLS role");
    assert!(msg.contains("BYPASSRLS"), "{msg}");
    assert!(
        started.is_some_and(|e| e.contains("BYPASSRLS")),
        "server started with a BYPASSRLS role"
    );
    app.db().check_roles().await.expect("restored");

    // Nor may the data-plane role be a member of the control role, whose
    // policies see every project.
    let refused = {
        let _write = ROLES.write().await;
        sqlx::query("GRANT identity_control TO identity_app")
            .execute(&pool)
            .await
            .unwrap();
        let checked = app.db().check_roles().await;
        sqlx::query("REVOKE identity_control FROM identity_app")
            .execute(&pool)
            .await
            .unwrap();
        checked.map_err(|e| e.to_string())
    };
    let msg = refused.expect_err("check_roles accepted identity_app in identity_control");
    assert!(msg.contains("member of identity_control"), "{msg}");
    app.db().check_roles().await.expect("restored");
    app.stop().await;
}

/// Two nodes on one database: a key revoked, a project suspended, a domain
/// removed through node A stop working on node B within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidation_reaches_every_node_within_a_second() {
    let dns = TestDns::start().await;
    let ns = dns.addr.to_string();
    let Some(a) = TestApp::spawn_with(Store::Postgres, &[("IDENTITY_DNS_NAMESERVERS", &ns)]).await
    else {
        return;
    };
    let b = a.spawn_peer().await;
    let p = a.create_project("shared").await;
    let limit = Duration::from_secs(1);

    // Key revocation.
    let (_, k) = a
        .admin(
            Method::POST,
            &format!("/v1/projects/{}/keys", p.id),
            Some(json!({"kind": "secret"})),
        )
        .await;
    let value = k["value"].as_str().unwrap().to_string();
    assert_eq!(
        b.get_with_key("/.well-known/jwks.json", &value).await.0,
        200
    );
    assert_eq!(
        b.get_with_key("/.well-known/jwks.json", &value).await.0,
        200
    );
    a.admin(
        Method::DELETE,
        &format!(
            "/v1/projects/{}/keys/{}",
            p.id,
            k["key"]["id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    let took = eventually(limit, || async {
        b.get_with_key("/.well-known/jwks.json", &value).await.0 == 401
    })
    .await;
    eprintln!("key revocation reached node B in {took:?}");

    // Suspension and reactivation.
    assert_eq!(b.get_with_key("/.well-known/jwks.json", &p.pk).await.0, 200);
    a.admin(
        Method::PATCH,
        &format!("/v1/projects/{}", p.id),
        Some(json!({"status": "suspended"})),
    )
    .await;
    let took = eventually(limit, || async {
        b.get_with_key("/.well-known/jwks.json", &p.pk).await.0 == 403
    })
    .await;
    eprintln!("suspension reached node B in {took:?}");
    a.admin(
        Method::PATCH,
        &format!("/v1/projects/{}", p.id),
        Some(json!({"status": "active"})),
    )
    .await;
    eventually(limit, || async {
        b.get_with_key("/.well-known/jwks.json", &p.pk).await.0 == 200
    })
    .await;

    // Domain removal.
    let (_, d) = a
        .admin(
            Method::POST,
            &format!("/v1/projects/{}/auth-domains", p.id),
            Some(json!({"hostname": "id.shared.test"})),
        )
        .await;
    dns.set_txt(
        "_identity-challenge.id.shared.test",
        &[d["verification"]["value"].as_str().unwrap()],
    )
    .await;
    let dom = d["domain"]["id"].as_str().unwrap();
    let (s, body) = a
        .admin(
            Method::POST,
            &format!("/v1/projects/{}/auth-domains/{dom}/verify", p.id),
            None,
        )
        .await;
    assert_eq!(s, 200, "{body}");
    eventually(limit, || async {
        b.get_with_host("/.well-known/jwks.json", "id.shared.test")
            .await
            .0
            == 200
    })
    .await;
    a.admin(
        Method::DELETE,
        &format!("/v1/projects/{}/auth-domains/{dom}", p.id),
        None,
    )
    .await;
    let took = eventually(limit, || async {
        b.get_with_host("/.well-known/jwks.json", "id.shared.test")
            .await
            .0
            == 404
    })
    .await;
    eprintln!("domain removal reached node B in {took:?}");

    // Signing-key rotation reaches B's discovery too.
    let (_, r) = a
        .admin(
            Method::POST,
            &format!("/v1/projects/{}/signing-keys/rotate", p.id),
            None,
        )
        .await;
    let kid = r["kid"].as_str().unwrap().to_string();
    eventually(limit, || async {
        b.get_with_key("/.well-known/jwks.json", &p.pk).await.1["keys"][0]["kid"] == kid.as_str()
    })
    .await;
    b.stop().await;
    a.stop().await;
}

/// A session revoked on node A stops working on node B within a second,
/// although B had it cached as live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_revocation_reaches_every_node_within_a_second() {
    let Some(a) = TestApp::spawn(Store::Postgres).await else {
        return;
    };
    let b = a.spawn_peer().await;
    let p = a.create_project("sessions").await;
    let body = a
        .register(&p.pk, "n@example.com", "correct horse battery staple")
        .await;
    let at = body["access_token"].as_str().unwrap().to_string();
    for _ in 0..3 {
        assert_eq!(
            b.authed(Method::GET, "/v1/auth/session", &p.pk, &at, None)
                .await
                .0,
            200
        );
    }
    let (s, _) = a
        .authed(Method::POST, "/v1/auth/logout", &p.pk, &at, None)
        .await;
    assert_eq!(s, 204);
    let took = eventually(Duration::from_secs(1), || async {
        b.authed(Method::GET, "/v1/auth/session", &p.pk, &at, None)
            .await
            .0
            == 401
    })
    .await;
    eprintln!("session revocation reached node B in {took:?}");
    b.stop().await;
    a.stop().await;
}

/// Postgres cut off under a running node: requests that need it answer
/// `503 database_unavailable` within 2 s; cached session checks keep
/// answering for the configured staleness, then fail closed with 503 (never
/// 401); after the database returns, caches start over, so a revocation
/// made on another node meanwhile applies; nothing acknowledged is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_fails_fast_and_closed() {
    use std::time::Instant;

    use crate::support::assert_error;
    use crate::support::proxy::Proxy;

    let Some(direct) = crate::support::postgres::fresh_database().await else {
        return;
    };
    let target: std::net::SocketAddr = direct
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .parse()
        .unwrap();
    let proxy = Proxy::start(target).await;
    let proxied = direct.replace(&target.to_string(), &proxy.addr.to_string());
    let Some(a) = TestApp::spawn_with(
        Store::Postgres,
        &[
            ("IDENTITY_DATABASE_URL", &proxied),
            ("IDENTITY_CACHE_STALENESS_SECONDS", "3"),
        ],
    )
    .await
    else {
        return;
    };
    // Node B reaches the database directly: it stays on the other side.
    let b = a
        .spawn_peer_with(&[("IDENTITY_DATABASE_URL", &direct)])
        .await;
    let p = a.create_project("outage").await;
    let pw = "correct horse battery staple";
    let body = a.register(&p.pk, "kept@example.com", pw).await;
    let at = body["access_token"].as_str().unwrap().to_string();
    let check = || a.authed(Method::GET, "/v1/auth/session", &p.pk, &at, None);
    assert_eq!(check().await.0, 200);

    proxy.down();
    let lost = Instant::now();
    // Cached answers keep working.
    let started = Instant::now();
    let (s, got) = check().await;
    assert_eq!(s, 200, "{got}");
    assert!(started.elapsed() < Duration::from_millis(500));
    // Anything that needs the database fails fast, with Retry-After.
    for (path, email) in [
        ("/v1/auth/register", "new@example.com"),
        ("/v1/auth/login", "kept@example.com"),
    ] {
        let started = Instant::now();
        let resp = a
            .public_req(Method::POST, path)
            .header("x-project-key", &p.pk)
            .json(&json!({"email": email, "password": pw}))
            .send()
            .await
            .unwrap();
        let took = started.elapsed();
        assert_eq!(resp.status(), 503, "{path}");
        assert!(
            resp.headers().get("retry-after").is_some(),
            "{path}: no Retry-After"
        );
        let err: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(err["error"]["code"], "database_unavailable");
        assert!(took < Duration::from_secs(2), "{path} took {took:?}");
    }
    // Meanwhile the session is revoked on node B.
    let (s, _) = b
        .authed(Method::POST, "/v1/auth/logout", &p.pk, &at, None)
        .await;
    assert_eq!(s, 204);
    // Past the staleness bound, node A fails closed: 503, never 401.
    tokio::time::sleep(
        Duration::from_secs(3).saturating_sub(lost.elapsed()) + Duration::from_millis(300),
    )
    .await;
    let started = Instant::now();
    let got = check().await;
    assert_error(&got, 503, "database_unavailable");
    assert!(started.elapsed() < Duration::from_secs(2));

    proxy.up();
    // Back: caches start over, so B's revocation applies on A.
    eventually(Duration::from_secs(10), || async { check().await.0 == 401 }).await;
    assert_error(&check().await, 401, "session_revoked");
    // Nothing acknowledged was lost.
    let (s, b2) = a.login(&p.pk, "kept@example.com", pw).await;
    assert_eq!(s, 200, "{b2}");
    b.stop().await;
    a.stop().await;
}

/// The one-statement refresh (migration 0008's `identity_rotate_refresh_v2`)
/// answers with the renewed session and its user, so a node that never saw
/// the session reads nothing after the rotation commits (a read there that
/// failed would lose the successor). Called inside a transaction scoped to
/// another project it refuses instead of rescoping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_rotation_answers_the_session_and_keeps_its_scope() {
    let Some(a) = TestApp::spawn(Store::Postgres).await else {
        return;
    };
    let b = a.spawn_peer().await;
    let p = a.create_project("rotation").await;
    let other = a.create_project("other").await;
    let signed = a
        .register(&p.pk, "rotor@example.com", "correct horse battery staple")
        .await;
    let refresh = signed["refresh_token"].as_str().unwrap();
    // Node B has no cached view of this session: its answer comes from the
    // function's row alone.
    let (s, renewed) = b
        .post_with_key("/v1/auth/refresh", &p.pk, json!({"refresh_token": refresh}))
        .await;
    assert_eq!(s, 200, "{renewed}");
    assert_eq!(renewed["user"]["id"], signed["user"]["id"]);
    assert_eq!(renewed["user"]["email"], "rotor@example.com");
    assert_eq!(renewed["session"]["id"], signed["session"]["id"]);
    let (s, me) = b
        .authed(
            Method::GET,
            "/v1/auth/session",
            &p.pk,
            renewed["access_token"].as_str().unwrap(),
            None,
        )
        .await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(me["user"]["id"], signed["user"]["id"]);

    // Inside a transaction scoped to `other`, a rotation for `p` is refused.
    let next = renewed["refresh_token"].as_str().unwrap();
    let hash = identity_shared::crypto::sha256_hex(next.as_bytes());
    let db = a.db();
    let mut tx = db.scope(&other.id).await.unwrap();
    let conn = tx.pg_conn().unwrap();
    let refused = sqlx::query(
        "SELECT * FROM identity_rotate_refresh_v2(0, 'rtk_x', $1, $2, 'h', '127.0.0.1', NULL, 'evt_x', 60000)",
    )
    .bind(&p.id)
    .bind(&hash)
    .fetch_optional(&mut *conn)
    .await
    .expect_err("another project's scope must be refused");
    assert!(
        refused.to_string().contains("scoped to another project"),
        "{refused}"
    );
    drop(tx);
    // The token was not consumed: it still refreshes, once.
    let (s, body) = a
        .post_with_key("/v1/auth/refresh", &p.pk, json!({"refresh_token": next}))
        .await;
    assert_eq!(s, 200, "{body}");
    b.stop().await;
    a.stop().await;
}

/// Deleting a project deletes every row it owns: the control plane's list
/// of project tables covers every table with a `project_id` column in the
/// catalog, and after the delete none holds a row of the project.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_project_leaves_no_rows() {
    let Some(app) = TestApp::spawn(Store::Postgres).await else {
        return;
    };
    let db = app.db();
    let pool = db.pg_pool().unwrap();
    let listed = identity_control_plane::projects::PROJECT_TABLES;
    for table in scoped_tables(pool).await {
        assert!(
            listed.contains(&table.as_str()),
            "{table} has a project_id but a project delete leaves its rows"
        );
    }
    let p = app.create_project("doomed").await;
    let keep = app.create_project("kept").await;
    for project in [&p, &keep] {
        let signed = app
            .register(
                &project.pk,
                "owner@example.com",
                "correct horse battery staple",
            )
            .await;
        let at = signed["access_token"].as_str().unwrap().to_string();
        let (s, t) = app
            .authed(
                Method::POST,
                "/v1/tenants",
                &project.pk,
                &at,
                Some(json!({"name": "Acme"})),
            )
            .await;
        assert_eq!(s, 201, "{t}");
        let tenant = t["tenant"]["id"].as_str().unwrap();
        let (s, _) = app
            .authed(
                Method::POST,
                &format!("/v1/tenants/{tenant}/groups"),
                &project.pk,
                &at,
                Some(json!({"name": "Ops"})),
            )
            .await;
        assert_eq!(s, 201);
        app.login(&project.pk, "owner@example.com", "wrong wrong wrong")
            .await;
    }
    let (s, _) = app
        .admin(Method::DELETE, &format!("/v1/projects/{}", p.id), None)
        .await;
    assert_eq!(s, 204);
    for table in listed {
        let left: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE project_id = $1"
        )))
        .bind(&p.id)
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(left, 0, "{table} kept rows of the deleted project");
    }
    // The other project is untouched.
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM tenant_members WHERE project_id = $1")
        .bind(&keep.id)
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(kept, 1);
    app.stop().await;
}
