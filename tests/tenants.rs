//! Tenants as organisations on the data plane: creation, the caller's
//! tenants, the permission matrix (each role × each guarded route), the
//! last owner, ownership transfer, the secret key's reach, a project's own
//! roles, and isolation between projects.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::on_both;
use crate::support::mail::{Captured, TestSmtp};
use crate::support::{Project, Store, TestApp, access_token, assert_error};

on_both!(
    groups_inside_a_tenant,
    invitations_from_email_to_membership,
    tenants_memberships_and_owners,
    the_permission_matrix,
    a_projects_own_roles_and_isolation
);

pub(crate) const PW: &str = "correct horse battery staple";

/// A registered user's id and access token.
pub(crate) async fn user(app: &TestApp, p: &Project, email: &str) -> (String, String) {
    let b = app.register(&p.pk, email, PW).await;
    (
        b["user"]["id"].as_str().unwrap().to_string(),
        access_token(&b),
    )
}

pub(crate) async fn as_user(
    app: &TestApp,
    p: &Project,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    app.authed(method, path, &p.pk, token, body).await
}

/// Makes `user_id` a member with `role` (secret key).
pub(crate) async fn add_member(
    app: &TestApp,
    p: &Project,
    tenant: &str,
    user_id: &str,
    role: &str,
) {
    let (s, b) = app
        .send_with_key(
            Method::POST,
            &format!("/v1/tenants/{tenant}/members"),
            &p.sk,
            Some(json!({"user_id": user_id, "role": role})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
}

pub(crate) async fn new_tenant(app: &TestApp, p: &Project, token: &str, name: &str) -> String {
    let (s, b) = as_user(
        app,
        p,
        token,
        Method::POST,
        "/v1/tenants",
        Some(json!({"name": name})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    b["tenant"]["id"].as_str().unwrap().to_string()
}

async fn tenants_memberships_and_owners(store: Store) {
    let Some(app) = TestApp::spawn(store).await else {
        return;
    };
    let p = app.create_project("orgs").await;
    let (ada_id, ada) = user(&app, &p, "ada@example.com").await;
    let (bob_id, bob) = user(&app, &p, "bob@example.com").await;
    let (_, eve) = user(&app, &p, "eve@example.com").await;

    let (s, b) = as_user(
        &app,
        &p,
        &ada,
        Method::POST,
        "/v1/tenants",
        Some(json!({"name": "  Acme  "})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["tenant"]["name"], "Acme");
    assert_eq!(b["tenant"]["role"], "owner");
    let acme = b["tenant"]["id"].as_str().unwrap().to_string();
    for bad in [
        json!({"name": ""}),
        json!({"name": "x".repeat(201)}),
        json!({"name": "a\u{7}"}),
    ] {
        assert_error(
            &as_user(&app, &p, &ada, Method::POST, "/v1/tenants", Some(bad)).await,
            422,
            "invalid_name",
        );
    }
    let (s, list) = as_user(&app, &p, &ada, Method::GET, "/v1/tenants", None).await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["items"][0]["role"], "owner");
    // Not a member: the tenant does not exist for Eve.
    let path = format!("/v1/tenants/{acme}");
    assert_error(
        &as_user(&app, &p, &eve, Method::GET, &path, None).await,
        404,
        "not_found",
    );
    assert_error(
        &as_user(
            &app,
            &p,
            &eve,
            Method::PATCH,
            &path,
            Some(json!({"name": "Mine"})),
        )
        .await,
        404,
        "not_found",
    );
    let (_, list) = as_user(&app, &p, &eve, Method::GET, "/v1/tenants", None).await;
    assert_eq!(list["items"], json!([]));
    // Anonymous: sign in first.
    assert_error(
        &app.post_with_key("/v1/tenants", &p.pk, json!({"name": "X"}))
            .await,
        401,
        "unauthenticated",
    );

    // Bob joins as a member (secret key); members are listed.
    add_member(&app, &p, &acme, &bob_id, "member").await;
    let members = format!("/v1/tenants/{acme}/members");
    let (s, m) = as_user(&app, &p, &bob, Method::GET, &members, None).await;
    assert_eq!(s, 200, "{m}");
    let items = m["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{m}");
    assert_eq!(items[0]["user"]["email"], "ada@example.com");
    assert_eq!(items[0]["role"], "owner");
    assert!(items[0]["joined_at"].is_string());
    assert_error(
        &app.send_with_key(
            Method::POST,
            &members,
            &p.sk,
            Some(json!({"user_id": bob_id, "role": "member"})),
        )
        .await,
        409,
        "already_member",
    );
    // Users cannot add members directly.
    assert_error(
        &as_user(
            &app,
            &p,
            &ada,
            Method::POST,
            &members,
            Some(json!({"user_id": bob_id, "role": "admin"})),
        )
        .await,
        403,
        "secret_key_required",
    );

    // The last owner can be neither demoted nor removed, nor leave.
    let ada_member = format!("{members}/{ada_id}");
    assert_error(
        &as_user(
            &app,
            &p,
            &ada,
            Method::PATCH,
            &ada_member,
            Some(json!({"role": "admin"})),
        )
        .await,
        409,
        "last_owner",
    );
    assert_error(
        &as_user(&app, &p, &ada, Method::DELETE, &ada_member, None).await,
        409,
        "last_owner",
    );
    assert_error(
        &as_user(
            &app,
            &p,
            &ada,
            Method::PATCH,
            &ada_member,
            Some(json!({"role": "wizard"})),
        )
        .await,
        422,
        "invalid_role",
    );
    // An admin cannot make owners.
    let bob_member = format!("{members}/{bob_id}");
    let (s, b) = as_user(
        &app,
        &p,
        &ada,
        Method::PATCH,
        &bob_member,
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["member"]["role"], "admin");
    assert_error(
        &as_user(
            &app,
            &p,
            &bob,
            Method::PATCH,
            &bob_member,
            Some(json!({"role": "owner"})),
        )
        .await,
        403,
        "permission_denied",
    );
    assert_error(
        &as_user(&app, &p, &bob, Method::DELETE, &ada_member, None).await,
        403,
        "permission_denied",
    );
    // Ownership moves: Bob owner, Ada admin.
    let transfer = format!("/v1/tenants/{acme}/transfer-ownership");
    assert_error(
        &as_user(
            &app,
            &p,
            &bob,
            Method::POST,
            &transfer,
            Some(json!({"user_id": bob_id})),
        )
        .await,
        403,
        "permission_denied",
    );
    let (s, b) = as_user(
        &app,
        &p,
        &ada,
        Method::POST,
        &transfer,
        Some(json!({"user_id": bob_id})),
    )
    .await;
    assert_eq!(s, 204, "{b}");
    let (_, m) = as_user(&app, &p, &ada, Method::GET, &members, None).await;
    let role = |id: &str| {
        m["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["user"]["id"] == id)
            .map(|i| i["role"].as_str().unwrap().to_string())
    };
    assert_eq!(role(&bob_id).as_deref(), Some("owner"));
    assert_eq!(role(&ada_id).as_deref(), Some("admin"));

    // Two owners demoting each other at once: one stays owner.
    let (s, _) = as_user(
        &app,
        &p,
        &bob,
        Method::PATCH,
        &ada_member,
        Some(json!({"role": "owner"})),
    )
    .await;
    assert_eq!(s, 200);
    let (a, b) = tokio::join!(
        as_user(
            &app,
            &p,
            &ada,
            Method::PATCH,
            &bob_member,
            Some(json!({"role": "member"}))
        ),
        as_user(
            &app,
            &p,
            &bob,
            Method::PATCH,
            &ada_member,
            Some(json!({"role": "member"}))
        ),
    );
    let mut statuses = [a.0.as_u16(), b.0.as_u16()];
    statuses.sort();
    // The loser was either still an owner under the lock (409 last_owner)
    // or already demoted when its request was read (403).
    assert!(
        statuses == [200, 409] || statuses == [200, 403],
        "{a:?} {b:?}"
    );
    let (_, m) = app.send_with_key(Method::GET, &members, &p.sk, None).await;
    let owners = m["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["role"] == "owner")
        .count();
    assert_eq!(owners, 1, "{m}");

    // Leaving: a member removes themselves.
    let (_, carol) = user(&app, &p, "carol@example.com").await;
    let (s, me) = as_user(&app, &p, &carol, Method::GET, "/v1/auth/session", None).await;
    assert_eq!(s, 200, "{me}");
    let carol_id = me["user"]["id"].as_str().unwrap().to_string();
    add_member(&app, &p, &acme, &carol_id, "viewer").await;
    let (s, _) = as_user(
        &app,
        &p,
        &carol,
        Method::DELETE,
        &format!("{members}/{carol_id}"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    assert_error(
        &as_user(&app, &p, &carol, Method::GET, &path, None).await,
        404,
        "not_found",
    );

    // Register with an organisation: its owner from the start.
    let (s, b) = app
        .post_with_key(
            "/v1/auth/register",
            &p.pk,
            json!({"email": "dora@example.com", "password": PW, "organization_name": "Dora's"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (_, list) = as_user(
        &app,
        &p,
        &access_token(&b),
        Method::GET,
        "/v1/tenants",
        None,
    )
    .await;
    assert_eq!(list["items"][0]["name"], "Dora's", "{list}");
    assert_eq!(list["items"][0]["role"], "owner");

    // The secret key sees every tenant; users may be kept from creating.
    let (s, all) = app
        .send_with_key(Method::GET, "/v1/tenants?all=true", &p.sk, None)
        .await;
    assert_eq!(s, 200, "{all}");
    assert_eq!(all["items"].as_array().unwrap().len(), 2, "{all}");
    let (s, b) = app
        .admin(
            Method::PATCH,
            &format!("/v1/projects/{}", p.id),
            Some(json!({"settings": {"users_can_create_tenants": false}})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_error(
        &as_user(
            &app,
            &p,
            &eve,
            Method::POST,
            "/v1/tenants",
            Some(json!({"name": "E"})),
        )
        .await,
        403,
        "tenant_creation_disabled",
    );
    assert_error(
        &app.post_with_key(
            "/v1/auth/register",
            &p.pk,
            json!({"email": "fay@example.com", "password": PW, "organization_name": "F"}),
        )
        .await,
        403,
        "tenant_creation_disabled",
    );
    let (s, b) = app
        .send_with_key(
            Method::POST,
            "/v1/tenants",
            &p.sk,
            Some(json!({"name": "Server-made"})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert!(b["tenant"]["role"].is_null());
    // Deleting needs tenant:delete (an owner); then it is gone.
    let (gus_id, gus) = user(&app, &p, "gus@example.com").await;
    add_member(&app, &p, &acme, &gus_id, "admin").await;
    assert_error(
        &as_user(&app, &p, &gus, Method::DELETE, &path, None).await,
        403,
        "permission_denied",
    );
    let (s, _) = app.send_with_key(Method::DELETE, &path, &p.sk, None).await;
    assert_eq!(s, 204);
    assert_error(
        &app.send_with_key(Method::GET, &path, &p.sk, None).await,
        404,
        "not_found",
    );
    app.stop().await;
}

/// Each built-in role against each guarded route: allowed is 2xx, anything
/// else `403 permission_denied`.
async fn the_permission_matrix(store: Store) {
    let Some(app) = TestApp::spawn(store).await else {
        return;
    };
    let p = app.create_project("matrix").await;
    let (_, owner) = user(&app, &p, "owner@example.com").await;
    let (dummy_id, _) = user(&app, &p, "dummy@example.com").await;
    let roles = ["owner", "admin", "billing", "member", "viewer"];
    let mut actors = Vec::new();
    for role in roles {
        actors.push((
            role,
            user(&app, &p, &format!("{role}.actor@example.com")).await,
        ));
    }
    // (route, permission's row of the matrix: owner, admin, billing, member, viewer)
    type Case = (&'static str, Method, &'static str, Option<Value>, [bool; 5]);
    let cases: Vec<Case> = vec![
        ("tenant:read", Method::GET, "", None, [true; 5]),
        ("members:read", Method::GET, "/members", None, [true; 5]),
        (
            "tenant:update",
            Method::PATCH,
            "",
            Some(json!({"name": "Renamed"})),
            [true, true, false, false, false],
        ),
        (
            "members:manage",
            Method::PATCH,
            "/members/{dummy}",
            Some(json!({"role": "viewer"})),
            [true, true, false, false, false],
        ),
        (
            "members:manage",
            Method::DELETE,
            "/members/{dummy}",
            None,
            [true, true, false, false, false],
        ),
        (
            "members:invite",
            Method::POST,
            "/invitations",
            Some(json!({"email": "invitee@example.com", "role": "member"})),
            [true, true, false, false, false],
        ),
        (
            "members:invite",
            Method::GET,
            "/invitations",
            None,
            [true, true, false, false, false],
        ),
        ("tenant:read", Method::GET, "/groups", None, [true; 5]),
        (
            "groups:manage",
            Method::POST,
            "/groups",
            Some(json!({"name": "Engineering"})),
            [true, true, false, false, false],
        ),
        (
            "groups:manage",
            Method::PUT,
            "/groups/{group}/members/{dummy}",
            None,
            [true, true, false, false, false],
        ),
        (
            "tenant:delete",
            Method::DELETE,
            "",
            None,
            [true, false, false, false, false],
        ),
    ];
    for (permission, method, suffix, body, row) in cases {
        for (i, (role, (actor_id, token))) in actors.iter().enumerate() {
            // A fresh tenant each time: the owner, the actor in its role,
            // and the dummy member routes act on.
            let tenant = new_tenant(&app, &p, &owner, "Matrix").await;
            add_member(&app, &p, &tenant, actor_id, role).await;
            add_member(&app, &p, &tenant, &dummy_id, "member").await;
            let (s, g) = as_user(
                &app,
                &p,
                &owner,
                Method::POST,
                &format!("/v1/tenants/{tenant}/groups"),
                Some(json!({"name": "Existing"})),
            )
            .await;
            assert_eq!(s, 201, "{g}");
            let path = format!(
                "/v1/tenants/{tenant}{}",
                suffix
                    .replace("{dummy}", &dummy_id)
                    .replace("{group}", g["group"]["id"].as_str().unwrap())
            );
            let got = as_user(&app, &p, token, method.clone(), &path, body.clone()).await;
            if row[i] {
                assert!(
                    got.0.is_success(),
                    "{role} {permission} {method} {path}: {got:?}"
                );
            } else {
                assert_error(&got, 403, "permission_denied");
            }
        }
    }
    app.stop().await;
}

/// A project's own role with its own permission; a tenant of one project
/// is not found from another, whatever the key.
async fn a_projects_own_roles_and_isolation(store: Store) {
    let Some(app) = TestApp::spawn(store).await else {
        return;
    };
    let p = app.create_project("roles").await;
    let other = app.create_project("other").await;
    let (s, b) = app
        .admin(
            Method::PATCH,
            &format!("/v1/projects/{}", p.id),
            Some(json!({"settings": {"rbac": {
                "permissions": ["reports:export"],
                "roles": {"analyst": ["tenant:read", "reports:export"], "admin": ["reports:export"], "auditor": ["reports:export"]}
            }}})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_error(
        &app.admin(
            Method::PATCH,
            &format!("/v1/projects/{}", p.id),
            Some(json!({"settings": {"rbac": {"roles": {"analyst": ["nuke:all"]}}}})),
        )
        .await,
        422,
        "invalid_settings",
    );
    let (_, owner) = user(&app, &p, "owner@example.com").await;
    let (ana_id, ana) = user(&app, &p, "ana@example.com").await;
    let tenant = new_tenant(&app, &p, &owner, "Acme").await;
    add_member(&app, &p, &tenant, &ana_id, "analyst").await;
    let path = format!("/v1/tenants/{tenant}");
    let (s, b) = as_user(&app, &p, &ana, Method::GET, &path, None).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["tenant"]["role"], "analyst");
    assert_error(
        &as_user(
            &app,
            &p,
            &ana,
            Method::GET,
            &format!("{path}/members"),
            None,
        )
        .await,
        403,
        "permission_denied",
    );
    // A role without tenant:read sees nothing, but may still leave.
    let (aud_id, aud) = user(&app, &p, "aud@example.com").await;
    add_member(&app, &p, &tenant, &aud_id, "auditor").await;
    assert_error(
        &as_user(&app, &p, &aud, Method::GET, &path, None).await,
        403,
        "permission_denied",
    );
    let (s, _) = as_user(
        &app,
        &p,
        &aud,
        Method::DELETE,
        &format!("{path}/members/{aud_id}"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    assert_error(
        &as_user(&app, &p, &aud, Method::GET, &path, None).await,
        404,
        "not_found",
    );
    // The same email in another project: another person, no access.
    let (_, stranger) = user(&app, &other, "ana@example.com").await;
    assert_error(
        &as_user(&app, &other, &stranger, Method::GET, &path, None).await,
        404,
        "not_found",
    );
    assert_error(
        &app.send_with_key(Method::GET, &path, &other.sk, None).await,
        404,
        "not_found",
    );
    assert_error(
        &app.send_with_key(Method::GET, "/v1/tenants/not-an-id", &p.sk, None)
            .await,
        404,
        "not_found",
    );
    app.stop().await;
}

/// The `token` of the invitation link in a captured message.
pub(crate) fn invitation_token(m: &Captured) -> String {
    let link = m
        .find("http://localhost:8080/accept-invitation?token=")
        .expect("an invitation link");
    link.split_once("token=").unwrap().1.to_string()
}

/// An app that delivers email to a real SMTP server, and a project in it
/// with no per-IP email limit.
pub(crate) async fn mailing_project(
    store: Store,
    name: &str,
) -> Option<(TestSmtp, TestApp, Project)> {
    let smtp = TestSmtp::start().await;
    let url = smtp.url();
    let env = [
        ("IDENTITY_SMTP_URL", url.as_str()),
        ("IDENTITY_EMAIL_FROM", "auth@identity.test"),
        ("IDENTITY_OUTBOX_POLL_MS", "50"),
    ];
    let app = TestApp::spawn_with(store, &env).await?;
    let p = app.create_project(name).await;
    app.admin(
        Method::PATCH,
        &format!("/v1/projects/{}", p.id),
        Some(json!({"settings": {"rate_limits": {"email_per_minute": 0}}})),
    )
    .await;
    Some((smtp, app, p))
}

/// The whole life of invitations, with a real SMTP server: invite, the
/// email, the preview, accept as a new user (an account, signed in) and as
/// a signed-in user, the rules around them, resend and revoke.
async fn invitations_from_email_to_membership(store: Store) {
    let Some((smtp, app, p)) = mailing_project(store, "invites").await else {
        return;
    };
    let wait = std::time::Duration::from_secs(10);
    let (_, owner) = user(&app, &p, "owner@example.com").await;
    let tenant = new_tenant(&app, &p, &owner, "Acme").await;
    let invites = format!("/v1/tenants/{tenant}/invitations");

    // Invite a new address as admin: emailed, 7 days.
    let (s, b) = as_user(
        &app,
        &p,
        &owner,
        Method::POST,
        &invites,
        Some(json!({"email": "New.Person@Example.com", "role": "admin"})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["invitation"]["role"], "admin");
    assert_eq!(b["invitation"]["inviter"], "owner@example.com");
    let mail = smtp.wait_for(1, wait).await;
    assert_eq!(mail[0].to, ["New.Person@Example.com"]);
    assert!(
        mail[0].text_body().contains("Acme"),
        "{}",
        mail[0].text_body()
    );
    let token = invitation_token(&mail[0]);
    // One pending invitation per address; an unknown role; not for owners
    // unless an owner asks.
    assert_error(
        &as_user(
            &app,
            &p,
            &owner,
            Method::POST,
            &invites,
            Some(json!({"email": "new.person@example.com", "role": "member"})),
        )
        .await,
        409,
        "invitation_pending",
    );
    assert_error(
        &as_user(
            &app,
            &p,
            &owner,
            Method::POST,
            &invites,
            Some(json!({"email": "x@example.com", "role": "wizard"})),
        )
        .await,
        422,
        "invalid_role",
    );

    // The public preview.
    let (s, preview) = app
        .get_with_key(&format!("/v1/invitations/{token}"), &p.pk)
        .await;
    assert_eq!(s, 200, "{preview}");
    assert_eq!(preview["tenant"]["name"], "Acme");
    assert_eq!(preview["email"], "New.Person@Example.com");
    assert_eq!(preview["inviter"], "owner@example.com");
    assert_error(
        &app.get_with_key("/v1/invitations/not-a-token", &p.pk).await,
        400,
        "invalid_token",
    );
    let other = app.create_project("other").await;
    assert_error(
        &app.get_with_key(&format!("/v1/invitations/{token}"), &other.pk)
            .await,
        400,
        "invalid_token",
    );

    // Accepted by someone new: an account with a verified address, signed
    // in, an admin of Acme. Forty at once: one account.
    let accepts = (0..40).map(|_| {
        app.post_with_key(
            "/v1/invitations/accept",
            &p.pk,
            json!({"token": token, "password": PW, "name": "New Person"}),
        )
    });
    let results = futures_util::future::join_all(accepts).await;
    let created: Vec<&(StatusCode, Value)> = results
        .iter()
        .filter(|r| r.0 == StatusCode::CREATED)
        .collect();
    assert_eq!(created.len(), 1, "{results:?}");
    for r in results.iter().filter(|r| r.0 != StatusCode::CREATED) {
        assert_error(r, 400, "invalid_token");
    }
    let newbie = created[0].1.clone();
    assert_eq!(newbie["user"]["email_verified"], true);
    let (_, list) = as_user(
        &app,
        &p,
        &access_token(&newbie),
        Method::GET,
        "/v1/tenants",
        None,
    )
    .await;
    assert_eq!(list["items"][0]["role"], "admin", "{list}");

    // An address with an account: sign in first, with that address.
    let (_, carol) = user(&app, &p, "carol@example.com").await;
    let (_, mallory) = user(&app, &p, "mallory@example.com").await;
    let (s, _) = as_user(
        &app,
        &p,
        &owner,
        Method::POST,
        &invites,
        Some(json!({"email": "carol@example.com", "role": "member"})),
    )
    .await;
    assert_eq!(s, 201);
    let token = invitation_token(&smtp.wait_for(2, wait).await[1]);
    assert_error(
        &app.post_with_key(
            "/v1/invitations/accept",
            &p.pk,
            json!({"token": token, "password": PW}),
        )
        .await,
        401,
        "sign_in_required",
    );
    assert_error(
        &as_user(
            &app,
            &p,
            &mallory,
            Method::POST,
            "/v1/invitations/accept",
            Some(json!({"token": token})),
        )
        .await,
        403,
        "invitation_email_mismatch",
    );
    let (s, b) = as_user(
        &app,
        &p,
        &carol,
        Method::POST,
        "/v1/invitations/accept",
        Some(json!({"token": token})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["tenant"]["name"], "Acme");
    assert_eq!(b["role"], "member");
    assert_error(
        &as_user(
            &app,
            &p,
            &carol,
            Method::POST,
            &invites,
            Some(json!({"email": "dan@example.com", "role": "member"})),
        )
        .await,
        403,
        "permission_denied",
    );
    // A member cannot be invited again.
    assert_error(
        &as_user(
            &app,
            &p,
            &owner,
            Method::POST,
            &invites,
            Some(json!({"email": "carol@example.com", "role": "member"})),
        )
        .await,
        409,
        "already_member",
    );

    // Resend: a new link, the old one dead. Revoke: gone.
    let (s, b) = as_user(
        &app,
        &p,
        &owner,
        Method::POST,
        &invites,
        Some(json!({"email": "dan@example.com", "role": "viewer"})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let inv = b["invitation"]["id"].as_str().unwrap().to_string();
    let first = invitation_token(&smtp.wait_for(3, wait).await[2]);
    let (s, b) = as_user(
        &app,
        &p,
        &owner,
        Method::POST,
        &format!("{invites}/{inv}/resend"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let second = invitation_token(&smtp.wait_for(4, wait).await[3]);
    assert_ne!(first, second);
    assert_error(
        &app.get_with_key(&format!("/v1/invitations/{first}"), &p.pk)
            .await,
        400,
        "invalid_token",
    );
    let (s, list) = as_user(&app, &p, &owner, Method::GET, &invites, None).await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    let (s, _) = as_user(
        &app,
        &p,
        &owner,
        Method::DELETE,
        &format!("{invites}/{inv}"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    assert_error(
        &app.post_with_key(
            "/v1/invitations/accept",
            &p.pk,
            json!({"token": second, "password": PW}),
        )
        .await,
        400,
        "invalid_token",
    );
    assert_error(
        &as_user(
            &app,
            &p,
            &owner,
            Method::DELETE,
            &format!("{invites}/{inv}"),
            None,
        )
        .await,
        404,
        "not_found",
    );
    let (_, events) = app
        .get_with_key("/v1/audit-events?type=invitation.accepted", &p.sk)
        .await;
    assert_eq!(events["items"].as_array().unwrap().len(), 2, "{events}");
    app.stop().await;
}

/// Groups: made, renamed, listed with their members (who must belong to
/// the tenant), left with the tenant, deleted.
async fn groups_inside_a_tenant(store: Store) {
    let Some(app) = TestApp::spawn(store).await else {
        return;
    };
    let p = app.create_project("groups").await;
    let (_, owner) = user(&app, &p, "owner@example.com").await;
    let (bob_id, bob) = user(&app, &p, "bob@example.com").await;
    let (eve_id, _) = user(&app, &p, "eve@example.com").await;
    let tenant = new_tenant(&app, &p, &owner, "Acme").await;
    add_member(&app, &p, &tenant, &bob_id, "member").await;
    let base = format!("/v1/tenants/{tenant}/groups");
    let (s, g) = as_user(
        &app,
        &p,
        &owner,
        Method::POST,
        &base,
        Some(json!({"name": "Eng"})),
    )
    .await;
    assert_eq!(s, 201, "{g}");
    let group = g["group"]["id"].as_str().unwrap().to_string();
    assert_error(
        &as_user(
            &app,
            &p,
            &owner,
            Method::POST,
            &base,
            Some(json!({"name": "Eng"})),
        )
        .await,
        409,
        "group_name_taken",
    );
    assert_error(
        &as_user(
            &app,
            &p,
            &owner,
            Method::POST,
            &base,
            Some(json!({"name": " "})),
        )
        .await,
        422,
        "invalid_name",
    );
    let (s, _) = as_user(
        &app,
        &p,
        &owner,
        Method::POST,
        &base,
        Some(json!({"name": "Ops"})),
    )
    .await;
    assert_eq!(s, 201);
    assert_error(
        &as_user(
            &app,
            &p,
            &owner,
            Method::PATCH,
            &format!("{base}/{group}"),
            Some(json!({"name": "Ops"})),
        )
        .await,
        409,
        "group_name_taken",
    );
    let (s, g) = as_user(
        &app,
        &p,
        &owner,
        Method::PATCH,
        &format!("{base}/{group}"),
        Some(json!({"name": "Engineering"})),
    )
    .await;
    assert_eq!(s, 200, "{g}");
    assert_eq!(g["group"]["name"], "Engineering");
    // Members of the tenant only.
    let member = |user: &str| format!("{base}/{group}/members/{user}");
    let (s, _) = as_user(&app, &p, &owner, Method::PUT, &member(&bob_id), None).await;
    assert_eq!(s, 204);
    assert_error(
        &as_user(&app, &p, &owner, Method::PUT, &member(&eve_id), None).await,
        422,
        "not_a_member",
    );
    let (s, g) = as_user(
        &app,
        &p,
        &bob,
        Method::GET,
        &format!("{base}/{group}"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{g}");
    assert_eq!(g["group"]["members"][0]["email"], "bob@example.com", "{g}");
    let (_, list) = as_user(&app, &p, &bob, Method::GET, &base, None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2, "{list}");
    // A member who leaves the tenant leaves its groups.
    let (s, _) = as_user(
        &app,
        &p,
        &bob,
        Method::DELETE,
        &format!("/v1/tenants/{tenant}/members/{bob_id}"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (_, g) = as_user(
        &app,
        &p,
        &owner,
        Method::GET,
        &format!("{base}/{group}"),
        None,
    )
    .await;
    assert_eq!(g["group"]["members"], json!([]), "{g}");
    assert_error(
        &as_user(&app, &p, &owner, Method::DELETE, &member(&bob_id), None).await,
        404,
        "not_found",
    );
    let (s, _) = as_user(
        &app,
        &p,
        &owner,
        Method::DELETE,
        &format!("{base}/{group}"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    assert_error(
        &as_user(
            &app,
            &p,
            &owner,
            Method::GET,
            &format!("{base}/{group}"),
            None,
        )
        .await,
        404,
        "not_found",
    );
    app.stop().await;
}
