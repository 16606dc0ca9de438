//! The edges of tenant authority: no one grants, changes or removes a role
//! carrying more than their own; an invitation is only as good as its
//! inviter; groups show their members only to those who may see members;
//! a deleted account leaves its tenants but never the last owner's seat.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::on_both;
use crate::support::{Project, Store, TestApp, access_token, assert_error, verified_claims};
use crate::tenants::{add_member, as_user, invitation_token, mailing_project, new_tenant, user};

on_both!(
    no_one_acts_beyond_their_role,
    an_invitation_is_only_as_good_as_its_inviter,
    a_deleted_account_leaves_its_tenants,
    the_active_tenant_rides_in_the_token
);

async fn set_rbac(app: &TestApp, p: &Project, rbac: Value) {
    let (s, b) = app
        .admin(
            Method::PATCH,
            &format!("/v1/projects/{}", p.id),
            Some(json!({"settings": {"rbac": rbac}})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
}

async fn change_role(
    app: &TestApp,
    p: &Project,
    token: &str,
    tenant: &str,
    user_id: &str,
    role: &str,
) -> (StatusCode, Value) {
    as_user(
        app,
        p,
        token,
        Method::PATCH,
        &format!("/v1/tenants/{tenant}/members/{user_id}"),
        Some(json!({"role": role})),
    )
    .await
}

/// A manager (a project role with members:manage) and an admin try to
/// hand out, or act on, roles stronger than their own.
async fn no_one_acts_beyond_their_role(store: Store) {
    let Some(app) = TestApp::spawn(store).await else {
        return;
    };
    let p = app.create_project("escalation").await;
    set_rbac(
        &app,
        &p,
        json!({"roles": {
            "manager": ["tenant:read", "members:read", "members:manage"],
            "outsider": ["tenant:read"]
        }}),
    )
    .await;
    let (owner_id, owner) = user(&app, &p, "owner@example.com").await;
    let (admin_id, admin) = user(&app, &p, "admin@example.com").await;
    let (mgr_id, mgr) = user(&app, &p, "mgr@example.com").await;
    let (bill_id, _) = user(&app, &p, "bill@example.com").await;
    let (mem_id, _) = user(&app, &p, "mem@example.com").await;
    let (out_id, out) = user(&app, &p, "out@example.com").await;
    let tenant = new_tenant(&app, &p, &owner, "Acme").await;
    for (id, role) in [
        (&admin_id, "admin"),
        (&mgr_id, "manager"),
        (&bill_id, "billing"),
        (&mem_id, "member"),
        (&out_id, "outsider"),
    ] {
        add_member(&app, &p, &tenant, id, role).await;
    }
    // The manager may not raise themself or anyone to a stronger role...
    for (target, role) in [(&mgr_id, "admin"), (&mem_id, "admin"), (&mem_id, "owner")] {
        assert_error(
            &change_role(&app, &p, &mgr, &tenant, target, role).await,
            403,
            "permission_denied",
        );
    }
    // ...nor demote or remove someone stronger...
    assert_error(
        &change_role(&app, &p, &mgr, &tenant, &admin_id, "viewer").await,
        403,
        "permission_denied",
    );
    assert_error(
        &as_user(
            &app,
            &p,
            &mgr,
            Method::DELETE,
            &format!("/v1/tenants/{tenant}/members/{admin_id}"),
            None,
        )
        .await,
        403,
        "permission_denied",
    );
    // ...but manages roles within their own.
    let (s, b) = change_role(&app, &p, &mgr, &tenant, &mem_id, "viewer").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["member"]["role"], "viewer");
    // An admin holds no billing:manage: they neither give the billing
    // role nor touch its holder; the owner does both.
    assert_error(
        &change_role(&app, &p, &admin, &tenant, &mem_id, "billing").await,
        403,
        "permission_denied",
    );
    assert_error(
        &change_role(&app, &p, &admin, &tenant, &bill_id, "member").await,
        403,
        "permission_denied",
    );
    assert_error(
        &as_user(
            &app,
            &p,
            &admin,
            Method::POST,
            &format!("/v1/tenants/{tenant}/invitations"),
            Some(json!({"email": "x@example.com", "role": "billing"})),
        )
        .await,
        403,
        "permission_denied",
    );
    let (s, b) = change_role(&app, &p, &owner, &tenant, &mem_id, "billing").await;
    assert_eq!(s, 200, "{b}");
    // An admin demoted a moment ago acts as what they are now.
    let (s, _) = change_role(&app, &p, &owner, &tenant, &admin_id, "member").await;
    assert_eq!(s, 200);
    assert_error(
        &change_role(&app, &p, &admin, &tenant, &mgr_id, "viewer").await,
        403,
        "permission_denied",
    );
    // Groups: who is in them is for those who may read members.
    let (s, g) = as_user(
        &app,
        &p,
        &owner,
        Method::POST,
        &format!("/v1/tenants/{tenant}/groups"),
        Some(json!({"name": "Ops"})),
    )
    .await;
    assert_eq!(s, 201, "{g}");
    let group = g["group"]["id"].as_str().unwrap();
    let path = format!("/v1/tenants/{tenant}/groups/{group}");
    let (s, _) = as_user(
        &app,
        &p,
        &owner,
        Method::PUT,
        &format!("{path}/members/{owner_id}"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, b) = as_user(&app, &p, &out, Method::GET, &path, None).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["group"]["name"], "Ops");
    assert!(b["group"].get("members").is_none(), "{b}");
    let (_, b) = as_user(&app, &p, &mgr, Method::GET, &path, None).await;
    assert_eq!(b["group"]["members"][0]["id"], owner_id.as_str(), "{b}");
    app.stop().await;
}

/// An admin invites as admin and is then demoted: the invitation no
/// longer opens the tenant. Resending an invitation is inviting again.
async fn an_invitation_is_only_as_good_as_its_inviter(store: Store) {
    let Some((smtp, app, p)) = mailing_project(store, "inviter").await else {
        return;
    };
    let wait = std::time::Duration::from_secs(10);
    let (_, owner) = user(&app, &p, "owner@example.com").await;
    let (admin_id, admin) = user(&app, &p, "admin@example.com").await;
    let tenant = new_tenant(&app, &p, &owner, "Acme").await;
    add_member(&app, &p, &tenant, &admin_id, "admin").await;
    let invites = format!("/v1/tenants/{tenant}/invitations");
    let (s, b) = as_user(
        &app,
        &p,
        &admin,
        Method::POST,
        &invites,
        Some(json!({"email": "friend@example.com", "role": "admin"})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let token = invitation_token(&smtp.wait_for(1, wait).await[0]);
    // The owner's invitation to be an owner: the admin may not resend it.
    let (s, b) = as_user(
        &app,
        &p,
        &owner,
        Method::POST,
        &invites,
        Some(json!({"email": "heir@example.com", "role": "owner"})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let heir = b["invitation"]["id"].as_str().unwrap().to_string();
    assert_error(
        &as_user(
            &app,
            &p,
            &admin,
            Method::POST,
            &format!("{invites}/{heir}/resend"),
            None,
        )
        .await,
        403,
        "permission_denied",
    );
    // Nor revoke it.
    assert_error(
        &as_user(
            &app,
            &p,
            &admin,
            Method::DELETE,
            &format!("{invites}/{heir}"),
            None,
        )
        .await,
        403,
        "permission_denied",
    );
    // The inviter is demoted: the admin invitation is void.
    let (s, _) = as_user(
        &app,
        &p,
        &owner,
        Method::PATCH,
        &format!("/v1/tenants/{tenant}/members/{admin_id}"),
        Some(json!({"role": "member"})),
    )
    .await;
    assert_eq!(s, 200);
    assert_error(
        &app.post_with_key(
            "/v1/invitations/accept",
            &p.pk,
            json!({"token": token, "password": crate::tenants::PW}),
        )
        .await,
        400,
        "invalid_token",
    );
    // Someone who became a member meanwhile keeps their role, and the
    // answer says which.
    let (s, b) = as_user(
        &app,
        &p,
        &owner,
        Method::POST,
        &invites,
        Some(json!({"email": "late@example.com", "role": "admin"})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let mail = smtp.wait_for(3, wait).await;
    let late_mail = mail.iter().find(|m| m.to == ["late@example.com"]);
    let late_token = invitation_token(late_mail.expect("the invitation to late@"));
    let (late_id, late) = user(&app, &p, "late@example.com").await;
    add_member(&app, &p, &tenant, &late_id, "viewer").await;
    let (s, b) = as_user(
        &app,
        &p,
        &late,
        Method::POST,
        "/v1/invitations/accept",
        Some(json!({"token": late_token})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["role"], "viewer", "{b}");
    app.stop().await;
}

/// Deleting an account ends its memberships and group places; the last
/// owner of a tenant cannot be deleted until ownership moves.
async fn a_deleted_account_leaves_its_tenants(store: Store) {
    let Some(app) = TestApp::spawn(store).await else {
        return;
    };
    let p = app.create_project("deletion").await;
    let (owner_id, owner) = user(&app, &p, "owner@example.com").await;
    let (heir_id, _) = user(&app, &p, "heir@example.com").await;
    let tenant = new_tenant(&app, &p, &owner, "Acme").await;
    add_member(&app, &p, &tenant, &heir_id, "admin").await;
    assert_error(
        &app.send_with_key(
            Method::DELETE,
            &format!("/v1/users/{owner_id}"),
            &p.sk,
            None,
        )
        .await,
        409,
        "last_owner",
    );
    // Still there, still the owner.
    let (s, b) = as_user(
        &app,
        &p,
        &owner,
        Method::GET,
        &format!("/v1/tenants/{tenant}"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["tenant"]["role"], "owner");
    let (s, _) = app
        .send_with_key(
            Method::POST,
            &format!("/v1/tenants/{tenant}/transfer-ownership"),
            &p.sk,
            Some(json!({"user_id": heir_id})),
        )
        .await;
    assert_eq!(s, 204);
    let (s, _) = app
        .send_with_key(
            Method::DELETE,
            &format!("/v1/users/{owner_id}"),
            &p.sk,
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (s, b) = app
        .send_with_key(
            Method::GET,
            &format!("/v1/tenants/{tenant}/members"),
            &p.sk,
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let items = b["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{b}");
    assert_eq!(items[0]["user"]["id"], heir_id.as_str());
    assert_eq!(items[0]["role"], "owner");
    app.stop().await;
}

/// The session's active tenant: its tokens carry `tid`, `tenant_role` and
/// `permissions` (verified through the JWKS), through refreshes; a role
/// change or a removal refuses the token at once and shows at the next
/// refresh.
async fn the_active_tenant_rides_in_the_token(store: Store) {
    let Some(app) = TestApp::spawn(store).await else {
        return;
    };
    let p = app.create_project("active").await;
    let other = app.create_project("active-other").await;
    let (_, owner) = user(&app, &p, "owner@example.com").await;
    let signed = app
        .register(&p.pk, "bob@example.com", crate::tenants::PW)
        .await;
    let bob_id = signed["user"]["id"].as_str().unwrap().to_string();
    let first_refresh = signed["refresh_token"].as_str().unwrap().to_string();
    let bob = access_token(&signed);
    let tenant = new_tenant(&app, &p, &owner, "Acme").await;
    add_member(&app, &p, &tenant, &bob_id, "member").await;
    let switch = |token: String, tenant_id: Value| {
        let (app, pk) = (&app, p.pk.clone());
        async move {
            app.authed(
                Method::POST,
                "/v1/auth/session/tenant",
                &pk,
                &token,
                Some(json!({"tenant_id": tenant_id})),
            )
            .await
        }
    };
    let refresh = |value: String| {
        let (app, pk) = (&app, p.pk.clone());
        async move {
            app.post_with_key("/v1/auth/refresh", &pk, json!({"refresh_token": value}))
                .await
        }
    };
    let session = |token: String| {
        let (app, pk) = (&app, p.pk.clone());
        async move {
            app.authed(Method::GET, "/v1/auth/session", &pk, &token, None)
                .await
        }
    };
    let (s, b) = switch(bob.clone(), json!(tenant)).await;
    assert_eq!(s, 200, "{b}");
    let at = access_token(&b);
    let c = verified_claims(&app, &p, &at).await;
    assert_eq!(c["tid"], tenant.as_str());
    assert_eq!(c["tenant_role"], "member");
    assert_eq!(c["permissions"], json!(["members:read", "tenant:read"]));
    assert_eq!(c["sid"], signed["session"]["id"]);
    assert_eq!(session(at.clone()).await.0, 200);
    // An access token alone buys no refresh token: the session's own
    // stays, and carries the choice on (sticky).
    assert!(b.get("refresh_token").is_none(), "{b}");
    let (s, b) = refresh(first_refresh).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        verified_claims(&app, &p, &access_token(&b)).await["tid"],
        tenant.as_str()
    );
    let at = access_token(&b);
    let mut rt = b["refresh_token"].as_str().unwrap().to_string();
    // Promoted: the token naming the old role is refused at once...
    let (s, _) = as_user(
        &app,
        &p,
        &owner,
        Method::PATCH,
        &format!("/v1/tenants/{tenant}/members/{bob_id}"),
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(s, 200);
    assert_error(&session(at).await, 401, "tenant_access_changed");
    // ...and the next refresh carries the new one.
    let (s, b) = refresh(rt).await;
    assert_eq!(s, 200, "{b}");
    let c = verified_claims(&app, &p, &access_token(&b)).await;
    assert_eq!(c["tenant_role"], "admin");
    assert!(
        c["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("members:manage")),
        "{c}"
    );
    let at = access_token(&b);
    rt = b["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(session(at.clone()).await.0, 200);
    // A second node (Postgres: one shared database) has the session cached.
    let peer = if store == Store::Postgres {
        Some(app.spawn_peer().await)
    } else {
        None
    };
    if let Some(peer) = &peer {
        let (s, _) = peer
            .authed(Method::GET, "/v1/auth/session", &p.pk, &at, None)
            .await;
        assert_eq!(s, 200);
    }
    // Removed: refused at once; the next token names no tenant.
    let (s, _) = as_user(
        &app,
        &p,
        &owner,
        Method::DELETE,
        &format!("/v1/tenants/{tenant}/members/{bob_id}"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let removed_at = std::time::Instant::now();
    if let Some(peer) = peer {
        // ...on every node within a second.
        loop {
            let got = peer
                .authed(Method::GET, "/v1/auth/session", &p.pk, &at, None)
                .await;
            if got.0 == 401 {
                assert_eq!(got.1["error"]["code"], "tenant_access_changed");
                break;
            }
            assert!(
                removed_at.elapsed().as_millis() < 1000,
                "still {} after 1 s",
                got.0
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        peer.stop().await;
    }
    assert_error(&session(at).await, 401, "tenant_access_changed");
    let (s, b) = refresh(rt).await;
    assert_eq!(s, 200, "{b}");
    let at = access_token(&b);
    let c = verified_claims(&app, &p, &at).await;
    assert!(
        c.get("tid").is_none() && c.get("permissions").is_none(),
        "{c}"
    );
    assert_eq!(session(at.clone()).await.0, 200);
    // Only one's own tenants; none at all with null.
    assert_error(&switch(at.clone(), json!(tenant)).await, 404, "not_found");
    assert_error(
        &switch(at.clone(), json!("ten_nope")).await,
        404,
        "not_found",
    );
    let (_, stranger) = user(&app, &other, "bob@example.com").await;
    let elsewhere = new_tenant(&app, &other, &stranger, "Elsewhere").await;
    assert_error(
        &switch(at.clone(), json!(elsewhere)).await,
        404,
        "not_found",
    );
    let (s, b) = switch(at, Value::Null).await;
    assert_eq!(s, 200, "{b}");
    assert!(
        verified_claims(&app, &p, &access_token(&b))
            .await
            .get("tid")
            .is_none()
    );
    // The control plane deletes a tenant a session acts in: its members
    // and their tenant tokens go at once.
    let (s, b) = switch(owner.clone(), json!(tenant)).await;
    assert_eq!(s, 200, "{b}");
    let owner_at = access_token(&b);
    let (s, _) = app
        .admin(
            Method::DELETE,
            &format!("/v1/projects/{}/tenants/{tenant}", p.id),
            None,
        )
        .await;
    assert_eq!(s, 204);
    assert_error(&session(owner_at).await, 401, "tenant_access_changed");
    let (_, list) = app
        .send_with_key(Method::GET, "/v1/tenants?all=true", &p.sk, None)
        .await;
    assert_eq!(list["items"], json!([]), "{list}");
    app.stop().await;
}
