//! Second factors: API.md's "MFA" table (TOTP, recovery codes, the login
//! challenge, step-up) on both backends. Codes are computed from the
//! enrolled secret the way an authenticator app would.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use identity_data_plane::mfa::totp;

use crate::on_both;
use crate::support::{Project, Store, TestApp, access_token as token, age_step_up, assert_error};

on_both!(
    totp_enrollment_and_the_login_challenge,
    challenge_attempts_expiry_and_lockout,
    a_challenge_is_answered_once_under_concurrency,
    step_up_disable_and_reauthenticate,
    account_recovery_by_the_secret_key,
    guesses_are_bounded_per_user_from_any_address,
    enrollment_needs_a_fresh_session_and_ends_other_step_ups,
    trusted_browsers_skip_the_challenge_until_revoked,
    a_project_can_require_a_second_factor,
    cross_site_posts_to_cookie_setting_routes_set_nothing,
);

const PW: &str = "correct horse battery staple";

async fn setup(store: Store) -> Option<(TestApp, Project)> {
    let app = TestApp::spawn(store).await?;
    let p = app.create_project("mfa").await;
    Some((app, p))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An enrolled and confirmed user: (access token, secret, recovery codes).
/// The confirming code is the current step's, so the next usable code is
/// the following step's (`code_next`).
async fn enrolled(app: &TestApp, p: &Project, email: &str) -> (String, Vec<u8>, Vec<String>) {
    let at = token(&app.register(&p.pk, email, PW).await);
    let (s, e) = app
        .authed(Method::POST, "/v1/auth/mfa/totp/enroll", &p.pk, &at, None)
        .await;
    assert_eq!(s, 200, "{e}");
    let secret = totp::from_base32(e["secret"].as_str().unwrap()).unwrap();
    let (s, c) = app
        .authed(
            Method::POST,
            "/v1/auth/mfa/totp/confirm",
            &p.pk,
            &at,
            Some(json!({"code": totp::code_at(&secret, now())})),
        )
        .await;
    assert_eq!(s, 200, "{c}");
    let codes = recovery_codes(&c);
    (at, secret, codes)
}

fn recovery_codes(body: &Value) -> Vec<String> {
    body["recovery_codes"]
        .as_array()
        .expect("recovery_codes")
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

/// Each of `kinds` was written to the project's audit trail.
async fn assert_audited(app: &TestApp, p: &Project, kinds: &[&str]) {
    let (_, events) = app.get_with_key("/v1/audit-events?limit=100", &p.sk).await;
    let seen: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    for kind in kinds {
        assert!(seen.contains(kind), "{kind} in {seen:?}");
    }
}

fn code_next(secret: &[u8]) -> String {
    totp::code_at(secret, now() + 30)
}

async fn challenge(app: &TestApp, key: &str, body: Value) -> (StatusCode, Value) {
    app.post_with_key("/v1/auth/mfa/challenge", key, body).await
}

async fn mfa_token(app: &TestApp, p: &Project, email: &str) -> String {
    let (s, body) = app.login(&p.pk, email, PW).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["mfa_required"], true, "{body}");
    assert!(
        body.get("access_token").is_none(),
        "no tokens before the second factor"
    );
    body["mfa_token"].as_str().unwrap().to_string()
}

async fn totp_enrollment_and_the_login_challenge(store: Store) {
    let Some((app, p)) = setup(store).await else {
        return;
    };
    let at = token(&app.register(&p.pk, "ada@example.com", PW).await);
    let (s, status) = app
        .authed(Method::GET, "/v1/auth/mfa", &p.pk, &at, None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        status,
        json!({"totp": null, "recovery_codes_remaining": 0, "passkeys": []})
    );

    // Enroll: a pending secret, its URI (the project's name as issuer) and QR.
    let (s, first) = app
        .authed(Method::POST, "/v1/auth/mfa/totp/enroll", &p.pk, &at, None)
        .await;
    assert_eq!(s, 200, "{first}");
    let uri = first["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/mfa:ada%40example.com?secret="),
        "{uri}"
    );
    assert!(
        uri.contains("&issuer=mfa&algorithm=SHA1&digits=6&period=30"),
        "{uri}"
    );
    assert!(first["qr_svg"].as_str().unwrap().starts_with("<svg"));
    // A new enroll replaces the pending one.
    let (_, e) = app
        .authed(Method::POST, "/v1/auth/mfa/totp/enroll", &p.pk, &at, None)
        .await;
    assert_ne!(e["secret"], first["secret"]);
    let secret = totp::from_base32(e["secret"].as_str().unwrap()).unwrap();
    let old = totp::from_base32(first["secret"].as_str().unwrap()).unwrap();
    let (_, status) = app
        .authed(Method::GET, "/v1/auth/mfa", &p.pk, &at, None)
        .await;
    assert_eq!(status["totp"]["enabled"], false);
    // Still optional: a login before confirmation signs in.
    let (s, body) = app.login(&p.pk, "ada@example.com", PW).await;
    assert_eq!(s, 200);
    assert!(body["access_token"].is_string());

    // Confirm: the replaced secret's code and wrong codes are refused.
    let right: u32 = totp::code_at(&secret, now()).parse().unwrap();
    for code in [
        totp::code_at(&old, now()),
        format!("{:06}", (right + 500_000) % 1_000_000),
        "12345".into(),
        "abcdef".into(),
    ] {
        let got = app
            .authed(
                Method::POST,
                "/v1/auth/mfa/totp/confirm",
                &p.pk,
                &at,
                Some(json!({"code": code})),
            )
            .await;
        assert_error(&got, 422, "invalid_code");
    }
    let confirming = totp::code_at(&secret, now());
    let (s, c) = app
        .authed(
            Method::POST,
            "/v1/auth/mfa/totp/confirm",
            &p.pk,
            &at,
            Some(json!({"code": confirming})),
        )
        .await;
    assert_eq!(s, 200, "{c}");
    let codes: Vec<String> = recovery_codes(&c);
    assert_eq!(codes.len(), 10);
    let got = app
        .authed(Method::POST, "/v1/auth/mfa/totp/enroll", &p.pk, &at, None)
        .await;
    assert_error(&got, 409, "totp_already_enabled");
    let got = app
        .authed(
            Method::POST,
            "/v1/auth/mfa/totp/confirm",
            &p.pk,
            &at,
            Some(json!({"code": confirming})),
        )
        .await;
    assert_error(&got, 409, "totp_not_pending");
    let (_, status) = app
        .authed(Method::GET, "/v1/auth/mfa", &p.pk, &at, None)
        .await;
    assert_eq!(status["totp"]["enabled"], true);
    assert_eq!(status["recovery_codes_remaining"], 10);
    // The session check shows the change at once (cached views reload).
    let (_, check) = app
        .authed(Method::GET, "/v1/auth/session", &p.pk, &at, None)
        .await;
    assert_eq!(check["user"]["mfa_enabled"], true, "{check}");

    // Login now ends in a challenge, and the mfa_token is no access token.
    let t = mfa_token(&app, &p, "ada@example.com").await;
    let got = app
        .authed(Method::GET, "/v1/auth/session", &p.pk, &t, None)
        .await;
    assert_eq!(got.0, 401);
    // Another project knows nothing of it.
    let other = app.create_project("other").await;
    let got = challenge(
        &app,
        &other.pk,
        json!({"mfa_token": t, "code": code_next(&secret)}),
    )
    .await;
    assert_error(&got, 401, "mfa_token_invalid");
    // The code that confirmed was spent: replaying it is refused.
    let got = challenge(&app, &p.pk, json!({"mfa_token": t, "code": confirming})).await;
    assert_error(&got, 401, "invalid_code");
    let next = code_next(&secret);
    let (s, signed) = challenge(&app, &p.pk, json!({"mfa_token": t, "code": next})).await;
    assert_eq!(s, 200, "{signed}");
    assert_eq!(signed["session"]["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(signed["user"]["mfa_enabled"], true);
    let (s, _) = app
        .authed(
            Method::GET,
            "/v1/auth/session",
            &p.pk,
            &token(&signed),
            None,
        )
        .await;
    assert_eq!(s, 200);
    // The token is spent; the code too (on a new challenge).
    let got = challenge(&app, &p.pk, json!({"mfa_token": t, "code": next})).await;
    assert_error(&got, 401, "mfa_token_invalid");
    let t2 = mfa_token(&app, &p, "ada@example.com").await;
    let got = challenge(&app, &p.pk, json!({"mfa_token": t2, "code": next})).await;
    assert_error(&got, 401, "invalid_code");

    // A recovery code works once, in any case and spacing.
    let shouted = codes[0].to_uppercase().replace('-', " ");
    let (s, signed) = challenge(
        &app,
        &p.pk,
        json!({"mfa_token": t2, "recovery_code": shouted}),
    )
    .await;
    assert_eq!(s, 200, "{signed}");
    assert_eq!(signed["session"]["amr"], json!(["pwd", "mfa"]));
    let t3 = mfa_token(&app, &p, "ada@example.com").await;
    let got = challenge(
        &app,
        &p.pk,
        json!({"mfa_token": t3, "recovery_code": codes[0]}),
    )
    .await;
    assert_error(&got, 401, "invalid_code");
    let (_, status) = app
        .authed(Method::GET, "/v1/auth/mfa", &p.pk, &at, None)
        .await;
    assert_eq!(status["recovery_codes_remaining"], 9);

    // Bad input is a clear 4xx.
    for bad in [
        json!({"mfa_token": t3}),
        json!({"mfa_token": t3, "code": "123456", "recovery_code": codes[1]}),
        json!({"code": "123456"}),
        json!({"mfa_token": 5, "code": "123456"}),
    ] {
        let (s, b) = challenge(&app, &p.pk, bad.clone()).await;
        assert_eq!(s, 400, "{bad} -> {b}");
    }
    let got = app
        .post_with_key("/v1/auth/mfa/totp/enroll", &p.pk, json!({}))
        .await;
    assert_eq!(got.0, 401);

    // Every step is audited.
    assert_audited(
        &app,
        &p,
        &[
            "mfa.totp.enrolled",
            "mfa.totp.confirmed",
            "mfa.challenge.issued",
            "mfa.challenge.failed",
            "mfa.challenge.succeeded",
            "mfa.recovery_code.used",
        ],
    )
    .await;
    app.stop().await;
}

async fn challenge_attempts_expiry_and_lockout(store: Store) {
    let Some((app, p)) = setup(store).await else {
        return;
    };
    let (_, secret, _) = enrolled(&app, &p, "bob@example.com").await;
    // Expired: the same token, five minutes later, is dead.
    let t = mfa_token(&app, &p, "bob@example.com").await;
    expire_challenges(&app).await;
    let got = challenge(
        &app,
        &p.pk,
        json!({"mfa_token": t, "code": code_next(&secret)}),
    )
    .await;
    assert_error(&got, 401, "mfa_token_invalid");
    // The sweeper deletes expired challenges.
    assert!(
        identity_data_plane::workers::sweeper::sweep(app.db())
            .await
            .unwrap()
            >= 1
    );
    assert_eq!(count_challenges(&app).await, 0);
    // Five wrong codes kill the token; they count for the lockout too.
    let t = mfa_token(&app, &p, "bob@example.com").await;
    let right = code_next(&secret);
    for _ in 0..5 {
        let wrong = if right == "111111" {
            "222222"
        } else {
            "111111"
        };
        let got = challenge(&app, &p.pk, json!({"mfa_token": t, "code": wrong})).await;
        assert_error(&got, 401, "invalid_code");
    }
    let got = challenge(&app, &p.pk, json!({"mfa_token": t, "code": right})).await;
    assert_error(&got, 401, "mfa_token_invalid");
    // The account is now locked from this address, password or not.
    let (s, body) = app.login(&p.pk, "bob@example.com", PW).await;
    assert_eq!(s, 429, "{body}");
    app.stop().await;
}

async fn count_challenges(app: &TestApp) -> usize {
    use identity_shared::schema::MfaChallenges;
    let mut tx = app.db().control().await.unwrap();
    let rows: Vec<(String,)> = tx
        .fetch_all(
            sea_query::Query::select()
                .column(MfaChallenges::Id)
                .from(MfaChallenges::Table),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    rows.len()
}

async fn expire_challenges(app: &TestApp) {
    use identity_shared::schema::MfaChallenges;
    use sea_query::Query;
    let mut tx = app.db().control().await.unwrap();
    tx.execute(
        Query::update()
            .table(MfaChallenges::Table)
            .value(MfaChallenges::ExpiresAt, 0),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

async fn a_challenge_is_answered_once_under_concurrency(store: Store) {
    let Some((app, p)) = setup(store).await else {
        return;
    };
    let (_, secret, _) = enrolled(&app, &p, "cy@example.com").await;
    let t = mfa_token(&app, &p, "cy@example.com").await;
    let code = code_next(&secret);
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let client = app.client.clone();
        let url = format!("{}/v1/auth/mfa/challenge", app.public);
        let (pk, t, code) = (p.pk.clone(), t.clone(), code.clone());
        tasks.push(tokio::spawn(async move {
            crate::support::send(
                client
                    .post(url)
                    .header("x-project-key", pk)
                    .json(&json!({"mfa_token": t, "code": code})),
            )
            .await
        }));
    }
    let mut ok = 0;
    for task in tasks {
        let (s, b) = task.await.unwrap();
        match s.as_u16() {
            200 => ok += 1,
            401 | 429 => {}
            other => panic!("{other}: {b}"),
        }
    }
    assert_eq!(ok, 1, "one code, one challenge: one sign-in");
    app.stop().await;
}

async fn step_up_disable_and_reauthenticate(store: Store) {
    let Some((app, p)) = setup(store).await else {
        return;
    };
    let (at, _secret, codes) = enrolled(&app, &p, "dee@example.com").await;
    // Confirming stepped the session up: new recovery codes are allowed.
    let (s, fresh) = app
        .authed(
            Method::POST,
            "/v1/auth/mfa/recovery-codes",
            &p.pk,
            &at,
            None,
        )
        .await;
    assert_eq!(s, 200, "{fresh}");
    let fresh: Vec<String> = recovery_codes(&fresh);
    // Past the step-up window, sensitive actions are refused.
    age_step_up(&app).await;
    let got = app
        .authed(
            Method::POST,
            "/v1/auth/mfa/recovery-codes",
            &p.pk,
            &at,
            None,
        )
        .await;
    assert_error(&got, 403, "step_up_required");
    let got = app
        .authed(Method::DELETE, "/v1/auth/mfa/totp", &p.pk, &at, None)
        .await;
    assert_error(&got, 403, "step_up_required");
    // The old set stopped working; a wrong code does not step up.
    let got = app
        .authed(
            Method::POST,
            "/v1/auth/mfa/verify",
            &p.pk,
            &at,
            Some(json!({"recovery_code": codes[1]})),
        )
        .await;
    assert_error(&got, 401, "invalid_code");
    // Users with a second factor step up with it, not the password.
    let got = app
        .authed(
            Method::POST,
            "/v1/auth/reauthenticate",
            &p.pk,
            &at,
            Some(json!({"password": PW})),
        )
        .await;
    assert_error(&got, 403, "step_up_required");
    let (s, b) = app
        .authed(
            Method::POST,
            "/v1/auth/mfa/verify",
            &p.pk,
            &at,
            Some(json!({"recovery_code": fresh[0]})),
        )
        .await;
    assert_eq!(s, 204, "{b}");
    let (s, b) = app
        .authed(Method::DELETE, "/v1/auth/mfa/totp", &p.pk, &at, None)
        .await;
    assert_eq!(s, 204, "{b}");
    let (_, status) = app
        .authed(Method::GET, "/v1/auth/mfa", &p.pk, &at, None)
        .await;
    assert_eq!(
        status,
        json!({"totp": null, "recovery_codes_remaining": 0, "passkeys": []})
    );
    let got = app
        .authed(Method::DELETE, "/v1/auth/mfa/totp", &p.pk, &at, None)
        .await;
    assert_error(&got, 409, "totp_not_enabled");
    // Without a second factor, login signs in directly again...
    let (s, body) = app.login(&p.pk, "dee@example.com", PW).await;
    assert_eq!(s, 200);
    assert_eq!(body["session"]["amr"], json!(["pwd"]));
    // ...and the password steps up (a wrong one does not).
    age_step_up(&app).await;
    let got = app
        .authed(
            Method::POST,
            "/v1/auth/mfa/verify",
            &p.pk,
            &at,
            Some(json!({"code": "123456"})),
        )
        .await;
    assert_error(&got, 409, "totp_not_enabled");
    let got = app
        .authed(
            Method::POST,
            "/v1/auth/reauthenticate",
            &p.pk,
            &at,
            Some(json!({"password": "wrong password here"})),
        )
        .await;
    assert_error(&got, 401, "invalid_credentials");
    let (s, _) = app
        .authed(
            Method::POST,
            "/v1/auth/reauthenticate",
            &p.pk,
            &at,
            Some(json!({"password": PW})),
        )
        .await;
    assert_eq!(s, 204);
    assert_audited(
        &app,
        &p,
        &[
            "mfa.recovery_codes.regenerated",
            "mfa.recovery_code.used",
            "mfa.step_up",
            "mfa.step_up.failed",
            "mfa.totp.disabled",
            "session.reauthenticated",
        ],
    )
    .await;
    let (_, failed) = app
        .get_with_key("/v1/audit-events?type=mfa.step_up.failed", &p.sk)
        .await;
    assert_eq!(failed["items"][0]["outcome"], "failure", "{failed}");
    app.stop().await;
}

async fn account_recovery_by_the_secret_key(store: Store) {
    let Some((app, p)) = setup(store).await else {
        return;
    };
    let (at, secret, _) = enrolled(&app, &p, "eve@example.com").await;
    let t = mfa_token(&app, &p, "eve@example.com").await;
    let (_, check) = app
        .authed(Method::GET, "/v1/auth/session", &p.pk, &at, None)
        .await;
    let user_id = check["user"]["id"].as_str().unwrap().to_string();
    let path = format!("/v1/users/{user_id}/mfa");
    // Publishable keys and other projects cannot.
    let got = app.send_with_key(Method::DELETE, &path, &p.pk, None).await;
    assert_error(&got, 403, "secret_key_required");
    let other = app.create_project("other").await;
    let got = app
        .send_with_key(Method::DELETE, &path, &other.sk, None)
        .await;
    assert_error(&got, 404, "not_found");
    let (s, b) = app.send_with_key(Method::DELETE, &path, &p.sk, None).await;
    assert_eq!(s, 204, "{b}");
    // The pending challenge is void, the next login needs only the password,
    // and the session check shows the change at once.
    let got = challenge(
        &app,
        &p.pk,
        json!({"mfa_token": t, "code": code_next(&secret)}),
    )
    .await;
    assert_error(&got, 401, "mfa_token_invalid");
    let (s, body) = app.login(&p.pk, "eve@example.com", PW).await;
    assert_eq!(s, 200);
    assert!(body["access_token"].is_string(), "{body}");
    let (_, check) = app
        .authed(Method::GET, "/v1/auth/session", &p.pk, &at, None)
        .await;
    assert_eq!(check["user"]["mfa_enabled"], false);
    let (_, events) = app
        .get_with_key(
            &format!("/v1/audit-events?type=mfa.reset&user_id={user_id}"),
            &p.sk,
        )
        .await;
    assert_eq!(events["items"].as_array().unwrap().len(), 1, "{events}");
    // Deleting a user takes their factors with them.
    let (at2, _, _) = enrolled(&app, &p, "fay@example.com").await;
    let (_, check) = app
        .authed(Method::GET, "/v1/auth/session", &p.pk, &at2, None)
        .await;
    let fay = check["user"]["id"].as_str().unwrap().to_string();
    let (s, _) = app
        .send_with_key(Method::DELETE, &format!("/v1/users/{fay}"), &p.sk, None)
        .await;
    assert_eq!(s, 204);
    let mut tx = app.db().control().await.unwrap();
    let left: Vec<(String,)> = tx
        .fetch_all(
            sea_query::Query::select()
                .column(identity_shared::schema::MfaRecoveryCodes::Id)
                .from(identity_shared::schema::MfaRecoveryCodes::Table)
                .and_where(sea_query::ExprTrait::eq(
                    sea_query::Expr::col(identity_shared::schema::MfaRecoveryCodes::UserId),
                    fay.as_str(),
                )),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(left.is_empty());
    app.stop().await;
}

async fn guesses_are_bounded_per_user_from_any_address(store: Store) {
    let Some((app, p)) = setup(store).await else {
        return;
    };
    let (_, secret, _) = enrolled(&app, &p, "gus@example.com").await;
    let right = code_next(&secret);
    let wrong = if right == "111111" {
        "222222"
    } else {
        "111111"
    };
    // Each guess from a new address, each after a fresh (correct) password.
    for i in 0..5 {
        let ip = format!("198.51.100.{}", 10 + i);
        let t = mfa_token_from(&app, &p, "gus@example.com", &ip).await;
        let got = challenge_from(&app, &p, &ip, json!({"mfa_token": t, "code": wrong})).await;
        assert_error(&got, 401, "invalid_code");
    }
    // A sixth address with the right code: the user's budget is spent.
    let ip = "198.51.100.99";
    let t = mfa_token_from(&app, &p, "gus@example.com", ip).await;
    let (s, b) = challenge_from(&app, &p, ip, json!({"mfa_token": t, "code": right})).await;
    assert_eq!(s, 429, "{b}");
    app.stop().await;
}

async fn mfa_token_from(app: &TestApp, p: &Project, email: &str, ip: &str) -> String {
    let (s, body) = crate::support::send(
        app.public_req(Method::POST, "/v1/auth/login")
            .header("x-project-key", &p.pk)
            .header("x-forwarded-for", ip)
            .json(&json!({"email": email, "password": PW})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    body["mfa_token"].as_str().expect("mfa_token").to_string()
}

async fn challenge_from(app: &TestApp, p: &Project, ip: &str, body: Value) -> (StatusCode, Value) {
    crate::support::send(
        app.public_req(Method::POST, "/v1/auth/mfa/challenge")
            .header("x-project-key", &p.pk)
            .header("x-forwarded-for", ip)
            .json(&body),
    )
    .await
}

async fn enrollment_needs_a_fresh_session_and_ends_other_step_ups(store: Store) {
    let Some((app, p)) = setup(store).await else {
        return;
    };
    let a = token(&app.register(&p.pk, "hal@example.com", PW).await);
    let (_, other) = app.login(&p.pk, "hal@example.com", PW).await;
    let b = token(&other);
    // A stale session (a stolen token, say) cannot put a factor on the account.
    age_step_up(&app).await;
    let got = app
        .authed(Method::POST, "/v1/auth/mfa/totp/enroll", &p.pk, &a, None)
        .await;
    assert_error(&got, 403, "step_up_required");
    let (s, _) = app
        .authed(
            Method::POST,
            "/v1/auth/reauthenticate",
            &p.pk,
            &a,
            Some(json!({"password": PW})),
        )
        .await;
    assert_eq!(s, 204);
    let (s, e) = app
        .authed(Method::POST, "/v1/auth/mfa/totp/enroll", &p.pk, &a, None)
        .await;
    assert_eq!(s, 200, "{e}");
    let secret = totp::from_base32(e["secret"].as_str().unwrap()).unwrap();
    // A pending secret older than ten minutes cannot be confirmed.
    age_pending(&app).await;
    let got = app
        .authed(
            Method::POST,
            "/v1/auth/mfa/totp/confirm",
            &p.pk,
            &a,
            Some(json!({"code": totp::code_at(&secret, now())})),
        )
        .await;
    assert_error(&got, 409, "totp_not_pending");
    let (_, e) = app
        .authed(Method::POST, "/v1/auth/mfa/totp/enroll", &p.pk, &a, None)
        .await;
    let secret = totp::from_base32(e["secret"].as_str().unwrap()).unwrap();
    // Session b proved only the password, minutes ago; once the factor is on,
    // that no longer lets it remove the factor.
    let (s, _) = app
        .authed(
            Method::POST,
            "/v1/auth/reauthenticate",
            &p.pk,
            &b,
            Some(json!({"password": PW})),
        )
        .await;
    assert_eq!(s, 204);
    let (s, c) = app
        .authed(
            Method::POST,
            "/v1/auth/mfa/totp/confirm",
            &p.pk,
            &a,
            Some(json!({"code": totp::code_at(&secret, now())})),
        )
        .await;
    assert_eq!(s, 200, "{c}");
    let got = app
        .authed(Method::DELETE, "/v1/auth/mfa/totp", &p.pk, &b, None)
        .await;
    assert_error(&got, 403, "step_up_required");
    let (s, _) = app
        .authed(Method::DELETE, "/v1/auth/mfa/totp", &p.pk, &a, None)
        .await;
    assert_eq!(s, 204, "the confirming session is stepped up");
    app.stop().await;
}

/// Moves every pending TOTP enrollment eleven minutes back.
async fn age_pending(app: &TestApp) {
    use identity_shared::schema::MfaTotp;
    use sea_query::Query;
    let then = identity_shared::time::now_ms() - 11 * 60_000;
    let mut tx = app.db().control().await.unwrap();
    tx.execute(
        Query::update()
            .table(MfaTotp::Table)
            .value(MfaTotp::CreatedAt, then),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// A login from `ua`, with a trusted-browser token in the body or a cookie.
async fn login_as(
    app: &TestApp,
    p: &Project,
    email: &str,
    ua: &str,
    trusted: Option<&str>,
    cookie: Option<&str>,
) -> Value {
    let mut body = json!({"email": email, "password": PW});
    if let Some(t) = trusted {
        body["trusted_browser_token"] = json!(t);
    }
    let mut req = app
        .public_req(Method::POST, "/v1/auth/login")
        .header("x-project-key", &p.pk)
        .header("user-agent", ua);
    if let Some(c) = cookie {
        req = req.header("cookie", format!("identity_tb={c}"));
    }
    let (s, b) = crate::support::send(req.json(&body)).await;
    assert_eq!(s, 200, "{b}");
    b
}

async fn trusted_browsers_skip_the_challenge_until_revoked(store: Store) {
    let Some((app, p)) = setup(store).await else {
        return;
    };
    let (at, secret, codes) = enrolled(&app, &p, "ivy@example.com").await;
    let ua = "Firefox/140";
    let first = login_as(&app, &p, "ivy@example.com", ua, None, None).await;
    let t = first["mfa_token"].as_str().unwrap();
    let (s, signed) = crate::support::send(
        app.public_req(Method::POST, "/v1/auth/mfa/challenge")
            .header("x-project-key", &p.pk)
            .header("user-agent", ua)
            .json(&json!({"mfa_token": t, "code": code_next(&secret), "remember_browser": true})),
    )
    .await;
    assert_eq!(s, 200, "{signed}");
    let tb = signed["trusted_browser_token"]
        .as_str()
        .unwrap()
        .to_string();
    // The same browser skips the challenge; another user agent, or no token, does not.
    let again = login_as(&app, &p, "ivy@example.com", ua, Some(&tb), None).await;
    assert!(again["access_token"].is_string(), "{again}");
    assert_eq!(again["session"]["amr"], json!(["pwd"]));
    let other = login_as(&app, &p, "ivy@example.com", "Chrome/150", Some(&tb), None).await;
    assert_eq!(other["mfa_required"], true);
    let none = login_as(&app, &p, "ivy@example.com", ua, None, None).await;
    assert_eq!(none["mfa_required"], true);
    let forged = login_as(&app, &p, "ivy@example.com", ua, Some("forged"), None).await;
    assert_eq!(forged["mfa_required"], true);

    // Cookie transport: the token is an HttpOnly cookie for the auth routes.
    let t = login_as(&app, &p, "ivy@example.com", ua, None, None).await["mfa_token"]
        .as_str()
        .unwrap()
        .to_string();
    let resp = app
        .public_req(Method::POST, "/v1/auth/mfa/challenge")
        .header("x-project-key", &p.pk)
        .header("x-token-transport", "cookie")
        .header("user-agent", ua)
        .json(&json!({"mfa_token": t, "recovery_code": codes[0], "remember_browser": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let set: Vec<String> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let tb_cookie = set
        .iter()
        .find(|c| c.starts_with("identity_tb="))
        .expect("identity_tb");
    assert!(
        tb_cookie.contains("HttpOnly") && tb_cookie.contains("Path=/v1/auth"),
        "{tb_cookie}"
    );
    let body: Value = resp.json().await.unwrap();
    assert!(
        body.get("trusted_browser_token").is_none(),
        "cookie transport keeps it out of the body"
    );
    let value = tb_cookie["identity_tb=".len()..]
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let via_cookie = login_as(&app, &p, "ivy@example.com", ua, None, Some(&value)).await;
    assert!(via_cookie["access_token"].is_string(), "{via_cookie}");

    // Revoke-all forgets every trusted browser, and voids waiting logins.
    let pending = login_as(&app, &p, "ivy@example.com", "Other/1", None, None).await;
    let (s, _) = app
        .authed(
            Method::POST,
            "/v1/auth/sessions/revoke-all",
            &p.pk,
            &at,
            Some(json!({})),
        )
        .await;
    assert_eq!(s, 204);
    for (token, cookie) in [(Some(tb.as_str()), None), (None, Some(value.as_str()))] {
        let after = login_as(&app, &p, "ivy@example.com", ua, token, cookie).await;
        assert_eq!(after["mfa_required"], true, "{after}");
    }
    assert_eq!(count_trusted(&app).await, 0);
    let got = challenge(
        &app,
        &p.pk,
        json!({"mfa_token": pending["mfa_token"], "code": code_next(&secret)}),
    )
    .await;
    assert_error(&got, 401, "mfa_token_invalid");

    // A password change forgets them too...
    let trust = |password: &'static str, code: String| {
        let app = &app;
        let p = &p;
        async move {
            let (s, first) = app
                .post_with_key(
                    "/v1/auth/login",
                    &p.pk,
                    json!({"email": "ivy@example.com", "password": password}),
                )
                .await;
            assert_eq!(s, 200, "{first}");
            let (s, b) = challenge(
                app,
                &p.pk,
                json!({"mfa_token": first["mfa_token"], "recovery_code": code, "remember_browser": true}),
            )
            .await;
            assert_eq!(s, 200, "{b}");
        }
    };
    trust(PW, codes[1].clone()).await;
    assert_eq!(count_trusted(&app).await, 1);
    let (s, b) = app
        .authed(
            Method::POST,
            "/v1/auth/password/change",
            &p.pk,
            &at,
            Some(json!({"current_password": PW, "new_password": "another fine passphrase"})),
        )
        .await;
    assert_eq!(s, 204, "{b}");
    assert_eq!(count_trusted(&app).await, 0);
    // ...and so does removing the factor.
    trust("another fine passphrase", codes[2].clone()).await;
    assert_eq!(count_trusted(&app).await, 1);
    let (s, b) = app
        .authed(Method::DELETE, "/v1/auth/mfa/totp", &p.pk, &at, None)
        .await;
    assert_eq!(s, 204, "{b}");
    assert_eq!(count_trusted(&app).await, 0);
    app.stop().await;
}

pub async fn count_trusted(app: &TestApp) -> usize {
    use identity_shared::schema::TrustedBrowsers;
    let mut tx = app.db().control().await.unwrap();
    let rows: Vec<(String,)> = tx
        .fetch_all(
            sea_query::Query::select()
                .column(TrustedBrowsers::Id)
                .from(TrustedBrowsers::Table),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    rows.len()
}

async fn a_project_can_require_a_second_factor(store: Store) {
    let Some((app, p)) = setup(store).await else {
        return;
    };
    let (s, b) = app
        .admin(
            Method::PATCH,
            &format!("/v1/projects/{}", p.id),
            Some(json!({"settings": {"mfa": "required"}})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let got = app
        .admin(
            Method::PATCH,
            &format!("/v1/projects/{}", p.id),
            Some(json!({"settings": {"mfa": "always"}})),
        )
        .await;
    assert_error(&got, 422, "invalid_settings");
    let body = app.register(&p.pk, "jo@example.com", PW).await;
    assert_eq!(body["mfa_enrollment_required"], true);
    let at = token(&body);
    // Until they enroll, only the MFA and session routes answer.
    let got = app
        .authed(
            Method::POST,
            "/v1/auth/password/change",
            &p.pk,
            &at,
            Some(json!({"current_password": PW, "new_password": "another fine passphrase"})),
        )
        .await;
    assert_error(&got, 403, "mfa_enrollment_required");
    let (s, _) = app
        .authed(Method::GET, "/v1/auth/session", &p.pk, &at, None)
        .await;
    assert_eq!(s, 200);
    let (s, _) = app
        .authed(Method::GET, "/v1/auth/mfa", &p.pk, &at, None)
        .await;
    assert_eq!(s, 200);
    let (s, e) = app
        .authed(Method::POST, "/v1/auth/mfa/totp/enroll", &p.pk, &at, None)
        .await;
    assert_eq!(s, 200, "{e}");
    let secret = totp::from_base32(e["secret"].as_str().unwrap()).unwrap();
    let (s, _) = app
        .authed(
            Method::POST,
            "/v1/auth/mfa/totp/confirm",
            &p.pk,
            &at,
            Some(json!({"code": totp::code_at(&secret, now())})),
        )
        .await;
    assert_eq!(s, 200);
    // Enrolled: everything answers, and sign-ins no longer carry the flag.
    let (s, b) = app
        .authed(
            Method::POST,
            "/v1/auth/password/change",
            &p.pk,
            &at,
            Some(json!({"current_password": PW, "new_password": "another fine passphrase"})),
        )
        .await;
    assert_eq!(s, 204, "{b}");
    let t = {
        let (s, body) = app
            .login(&p.pk, "jo@example.com", "another fine passphrase")
            .await;
        assert_eq!(s, 200);
        body["mfa_token"].as_str().unwrap().to_string()
    };
    let (s, signed) = challenge(
        &app,
        &p.pk,
        json!({"mfa_token": t, "code": code_next(&secret)}),
    )
    .await;
    assert_eq!(s, 200, "{signed}");
    assert!(signed.get("mfa_enrollment_required").is_none(), "{signed}");
    app.stop().await;
}

/// A cross-site form post (text/plain, a foreign Origin) to the routes that
/// end in session cookies is refused before anything is read.
async fn cross_site_posts_to_cookie_setting_routes_set_nothing(store: Store) {
    let Some((app, p)) = setup(store).await else {
        return;
    };
    let (_, secret, _) = enrolled(&app, &p, "zed@example.com").await;
    let t = mfa_token(&app, &p, "zed@example.com").await;
    for (path, body) in [
        (
            "/v1/auth/mfa/challenge",
            json!({"mfa_token": t, "code": code_next(&secret)}).to_string(),
        ),
        (
            "/v1/auth/passkeys/login/finish",
            json!({"challenge_id": "pkc_x", "credential": {}}).to_string(),
        ),
    ] {
        for (content_type, origin) in [
            ("text/plain", "https://evil.test"),
            ("application/json", "https://evil.test"),
            ("text/plain", "null"),
        ] {
            let resp = app
                .public_req(Method::POST, path)
                .header("x-project-key", &p.pk)
                .header("x-token-transport", "cookie")
                .header("origin", origin)
                .header("content-type", content_type)
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            assert!(
                (400..500).contains(&status),
                "{path} {content_type} {origin}: {status}"
            );
            assert!(
                resp.headers().get("set-cookie").is_none(),
                "{path}: cookies set"
            );
        }
    }
    // The challenge is still answerable: nothing above was evaluated.
    let (s, b) = challenge(
        &app,
        &p.pk,
        json!({"mfa_token": t, "code": code_next(&secret)}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    app.stop().await;
}
