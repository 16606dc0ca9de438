//! The mock identity provider itself, driven as a relying party would:
//! discovery, the code flow with PKCE, ID tokens checked against the JWKS
//! (and each way of spoiling them), userinfo, and the GitHub-shaped API.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use reqwest::{Client, RequestBuilder, Response, StatusCode, header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::oidc::{MockIdp, MockUser, Tamper, query_param};

const CLIENT_ID: &str = "app-client";
/// Characters that RFC 6749 Basic credentials must form-encode.
const CLIENT_SECRET: &str = "s3cret+/:& value";
/// With a query of its own, which the code and state are added to.
const REDIRECT: &str = "http://127.0.0.1:9/oauth/callback?tenant=acme";

fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("identity-tests")
        .build()
        .unwrap()
}

/// A code verifier and its S256 challenge.
fn pkce(seed: &str) -> (String, String) {
    let verifier = format!("verifier-{seed}-{}", "x".repeat(40));
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// RFC 6749 §2.3.1: each half form-encoded, then base64.
fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| {
        let mut url = reqwest::Url::parse("http://x.invalid/").unwrap();
        url.query_pairs_mut().append_pair("v", s);
        url.query().unwrap()[2..].to_string()
    };
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

fn form(req: RequestBuilder, fields: &[(&str, &str)]) -> RequestBuilder {
    let mut url = reqwest::Url::parse("http://x.invalid/").unwrap();
    url.query_pairs_mut().extend_pairs(fields);
    req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(url.query().unwrap_or("").to_string())
}

struct Rp {
    idp: MockIdp,
    http: Client,
    jwks: JwkSet,
}

impl Rp {
    async fn new() -> Rp {
        let idp = MockIdp::start().await;
        idp.set_client(CLIENT_ID, CLIENT_SECRET);
        let http = client();
        let jwks: JwkSet = http
            .get(format!("{}/jwks", idp.issuer()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Rp { idp, http, jwks }
    }

    async fn authorize(&self, path: &str, params: &[(&str, &str)]) -> Response {
        self.http
            .get(format!("{}{path}", self.idp.issuer()))
            .query(params)
            .send()
            .await
            .unwrap()
    }

    /// A consented OIDC authorization; the code.
    async fn code(&self, nonce: &str, challenge: &str) -> String {
        let resp = self
            .authorize(
                "/authorize",
                &[
                    ("response_type", "code"),
                    ("client_id", CLIENT_ID),
                    ("redirect_uri", REDIRECT),
                    ("scope", "openid email profile"),
                    ("state", "st"),
                    ("nonce", nonce),
                    ("code_challenge", challenge),
                    ("code_challenge_method", "S256"),
                ],
            )
            .await;
        assert_eq!(resp.status(), StatusCode::FOUND);
        query_param(location(&resp), "code").expect("a code")
    }

    /// `POST /token` with the client in the body.
    async fn token(&self, code: &str, verifier: &str) -> (StatusCode, Value) {
        self.post_token(
            self.http.post(format!("{}/token", self.idp.issuer())),
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
            ],
        )
        .await
    }

    async fn post_token(
        &self,
        req: RequestBuilder,
        fields: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let resp = form(req, fields).send().await.unwrap();
        (resp.status(), resp.json().await.unwrap())
    }

    /// An ID token checked as a relying party: signature by a JWKS key,
    /// `iss`, `aud`, `exp`; the claims or why it failed.
    fn verify(&self, id_token: &str) -> Result<Value, ErrorKind> {
        let kid = decode_header(id_token).unwrap().kid.expect("a kid");
        let jwk = self.jwks.find(&kid).expect("the kid is in the JWKS");
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[self.idp.issuer()]);
        validation.set_audience(&[CLIENT_ID]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        decode::<Value>(id_token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
            .map(|data| data.claims)
            .map_err(|e| e.into_kind())
    }
}

fn location(resp: &Response) -> &str {
    resp.headers()
        .get(header::LOCATION)
        .expect("a Location")
        .to_str()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_code_flow() {
    let rp = Rp::new().await;
    let iss = rp.idp.issuer().to_string();
    assert!(iss.starts_with("http://127.0.0.1:") && !iss.ends_with('/'));

    // Discovery and JWKS.
    let conf: Value = rp
        .http
        .get(format!("{iss}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(conf["issuer"], iss.as_str());
    for (field, path) in [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("userinfo_endpoint", "/userinfo"),
        ("jwks_uri", "/jwks"),
    ] {
        assert_eq!(conf[field], format!("{iss}{path}"), "{field}");
    }
    assert_eq!(conf["response_types_supported"], json!(["code"]));
    assert_eq!(conf["subject_types_supported"], json!(["public"]));
    assert_eq!(
        conf["id_token_signing_alg_values_supported"],
        json!(["RS256"])
    );
    assert_eq!(conf["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        conf["token_endpoint_auth_methods_supported"],
        json!(["client_secret_post", "client_secret_basic"])
    );
    assert!(
        conf["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("openid"))
    );
    assert!(
        conf["claims_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("email_verified"))
    );
    let jwk: Value = serde_json::to_value(&rp.jwks.keys[0]).unwrap();
    assert_eq!(
        (&jwk["kty"], &jwk["use"], &jwk["alg"]),
        (&json!("RSA"), &json!("sig"), &json!("RS256"))
    );
    assert_eq!(jwk["e"], "AQAB");
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(jwk["n"].as_str().unwrap())
            .unwrap()
            .len(),
        256
    );

    // Authorize: a redirect with the code and the state, as a user who
    // consented; the request is recorded.
    rp.idp.set_next_user(MockUser {
        sub: "alice-1".into(),
        email: "alice@example.com".into(),
        name: "Alice Liddell".into(),
        extra: json!({"groups": ["admins"], "email_verified": "true"}),
        ..MockUser::default()
    });
    let (verifier, challenge) = pkce("one");
    let state = "s t&a=t/é";
    let params = [
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("redirect_uri", REDIRECT),
        ("scope", "openid email"),
        ("state", state),
        ("nonce", "n-0S6"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let resp = rp.authorize("/authorize", &params).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    let to = location(&resp);
    assert!(to.starts_with("http://127.0.0.1:9/oauth/callback?"), "{to}");
    assert_eq!(query_param(to, "tenant").as_deref(), Some("acme"));
    assert_eq!(query_param(to, "state").as_deref(), Some(state));
    assert_eq!(query_param(to, "error"), None);
    let code = query_param(to, "code").expect("a code");
    let recorded = rp.idp.requests();
    assert_eq!(recorded.authorize.len(), 1);
    let sent: HashMap<String, String> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(recorded.authorize[0], sent);
    assert_eq!(recorded.token, 0);
    // Later users do not change a code already issued.
    rp.idp.set_next_user(MockUser::default());

    // A wrong secret is refused without spending the code.
    let token_url = format!("{iss}/token");
    let (s, b) = rp
        .post_token(
            rp.http.post(&token_url),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
                ("client_id", CLIENT_ID),
                ("client_secret", "wrong"),
            ],
        )
        .await;
    assert_eq!(
        (s, &b["error"]),
        (StatusCode::UNAUTHORIZED, &json!("invalid_client"))
    );

    // The exchange, and an ID token that verifies against the JWKS.
    let (s, b) = rp.token(&code, &verifier).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["token_type"], "Bearer");
    assert_eq!(b["scope"], "openid email");
    assert!(b["expires_in"].as_u64().unwrap() > 0);
    let claims = rp
        .verify(b["id_token"].as_str().unwrap())
        .expect("the ID token verifies");
    assert_eq!(claims["iss"], iss.as_str());
    assert_eq!(claims["aud"], CLIENT_ID);
    assert_eq!(claims["sub"], "alice-1");
    assert_eq!(claims["nonce"], "n-0S6");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["email_verified"], "true");
    assert_eq!(claims["name"], "Alice Liddell");
    assert_eq!(claims["groups"], json!(["admins"]));
    let (exp, iat) = (
        claims["exp"].as_u64().unwrap(),
        claims["iat"].as_u64().unwrap(),
    );
    assert_eq!(exp - iat, 300);

    // Userinfo with the access token only.
    let access = b["access_token"].as_str().unwrap();
    let userinfo = format!("{iss}/userinfo");
    let resp = rp
        .http
        .get(&userinfo)
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let info: Value = resp.json().await.unwrap();
    assert_eq!(
        info,
        json!({"sub": "alice-1", "email": "alice@example.com", "email_verified": true, "name": "Alice Liddell"})
    );
    let resp = rp
        .http
        .get(&userinfo)
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().contains_key(header::WWW_AUTHENTICATE));

    // A code is single-use.
    let (s, b) = rp.token(&code, &verifier).await;
    assert_eq!(
        (s, &b["error"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_grant"))
    );

    // A wrong verifier fails and spends the code.
    let code = rp.code("n-2", &challenge).await;
    let (other_verifier, _) = pkce("two");
    let (s, b) = rp.token(&code, &other_verifier).await;
    assert_eq!(
        (s, &b["error"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_grant"))
    );
    let (s, _) = rp.token(&code, &verifier).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Another redirect_uri than the authorization request's.
    let code = rp.code("n-3", &challenge).await;
    let (s, b) = rp
        .post_token(
            rp.http.post(&token_url),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "http://127.0.0.1:9/oauth/callback"),
                ("code_verifier", &verifier),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
            ],
        )
        .await;
    assert_eq!(
        (s, &b["error"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_grant"))
    );

    // client_secret_basic; the user is the one named since.
    let code = rp.code("n-4", &challenge).await;
    let fields = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier.as_str()),
    ];
    let basic_req = || {
        rp.http
            .post(&token_url)
            .header(header::AUTHORIZATION, basic(CLIENT_ID, CLIENT_SECRET))
    };
    // Both methods at once are refused (and the code is not spent).
    let mut both = fields.to_vec();
    both.push(("client_secret", CLIENT_SECRET));
    let (s, b) = rp.post_token(basic_req(), &both).await;
    assert_eq!(
        (s, &b["error"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_request"))
    );
    let (s, b) = rp.post_token(basic_req(), &fields).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let claims = rp.verify(b["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(claims["sub"], MockUser::default().sub);
    assert_eq!(claims["nonce"], "n-4");
    assert_eq!(claims["email_verified"], true);
    // A JSON body is not a token request.
    let resp = rp
        .http
        .post(&token_url)
        .json(&json!({"grant_type": "authorization_code"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    // Refused authorizations answer 400 and never redirect.
    let mut without_pkce = params.to_vec();
    without_pkce.retain(|(k, _)| !k.starts_with("code_challenge"));
    let mut plain = params.to_vec();
    plain.retain(|(k, _)| *k != "code_challenge_method");
    plain.push(("code_challenge_method", "plain"));
    let mut other_client = params.to_vec();
    other_client.retain(|(k, _)| *k != "client_id");
    other_client.push(("client_id", "someone-else"));
    for bad in [without_pkce, plain, other_client] {
        let resp = rp.authorize("/authorize", &bad).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad:?}");
        assert!(!resp.headers().contains_key(header::LOCATION));
    }

    // A user who declines: back with an error and the state, no code.
    rp.idp.deny_next();
    let resp = rp.authorize("/authorize", &params).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    let to = location(&resp);
    assert_eq!(query_param(to, "error").as_deref(), Some("access_denied"));
    assert_eq!(query_param(to, "state").as_deref(), Some(state));
    assert_eq!(query_param(to, "code"), None);
    // Only once.
    let to = rp.authorize("/authorize", &params).await;
    assert!(query_param(location(&to), "code").is_some());

    let recorded = rp.idp.requests();
    assert_eq!(recorded.authorize.len(), 9);
    assert_eq!(recorded.token, 9);
    assert_eq!(
        query_param("/cb?code=a%2Bb+c&x", "code").as_deref(),
        Some("a+b c")
    );
    assert_eq!(query_param("not a url", "code"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_tampered_id_tokens() {
    let rp = Rp::new().await;
    let (verifier, challenge) = pkce("tamper");
    for tamper in [
        Tamper::Nonce,
        Tamper::Audience,
        Tamper::Issuer,
        Tamper::Signature,
        Tamper::Expired,
        Tamper::None,
    ] {
        rp.idp.tamper_next(tamper);
        let code = rp.code("the-nonce", &challenge).await;
        let (s, b) = rp.token(&code, &verifier).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let got = rp.verify(b["id_token"].as_str().unwrap());
        match (tamper, &got) {
            (Tamper::Nonce, Ok(claims)) => assert_ne!(claims["nonce"], "the-nonce"),
            (Tamper::Audience, Err(ErrorKind::InvalidAudience))
            | (Tamper::Issuer, Err(ErrorKind::InvalidIssuer))
            | (Tamper::Signature, Err(ErrorKind::InvalidSignature))
            | (Tamper::Expired, Err(ErrorKind::ExpiredSignature)) => {}
            (Tamper::None, Ok(claims)) => assert_eq!(claims["nonce"], "the-nonce"),
            _ => panic!("{tamper:?}: {got:?}"),
        }
        // Only the next token is spoiled.
        let code = rp.code("the-nonce", &challenge).await;
        let (_, b) = rp.token(&code, &verifier).await;
        let claims = rp.verify(b["id_token"].as_str().unwrap()).unwrap();
        assert_eq!(claims["nonce"], "the-nonce");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_api() {
    let rp = Rp::new().await;
    let iss = rp.idp.issuer().to_string();
    let api = rp.idp.github_api();
    assert_eq!(api, format!("{iss}/api"));
    rp.idp.set_next_user(MockUser {
        sub: "4242".into(),
        email: "octo@example.com".into(),
        name: "Octo Cat".into(),
        extra: json!({"login": "octocat"}),
        ..MockUser::default()
    });
    rp.idp.github_private_email(true);
    let (verifier, challenge) = pkce("gh");
    // No response_type, openid or nonce needed.
    let params = [
        ("client_id", CLIENT_ID),
        ("redirect_uri", REDIRECT),
        ("scope", "read:user user:email"),
        ("state", "gh-state"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let github_code = || async {
        let resp = rp.authorize("/login/oauth/authorize", &params).await;
        assert_eq!(resp.status(), StatusCode::FOUND);
        assert_eq!(
            query_param(location(&resp), "state").as_deref(),
            Some("gh-state")
        );
        query_param(location(&resp), "code").unwrap()
    };
    let token_url = format!("{iss}/login/oauth/access_token");
    let exchange = |code: String, accept_json: bool| {
        let mut req = rp.http.post(&token_url);
        if accept_json {
            req = req.header(header::ACCEPT, "application/json");
        }
        let req = form(
            req,
            &[
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
            ],
        );
        async move {
            let resp = req.send().await.unwrap();
            (resp.status(), resp.text().await.unwrap())
        }
    };

    let (s, text) = exchange(github_code().await, true).await;
    assert_eq!(s, StatusCode::OK);
    let b: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(b["token_type"], "bearer");
    assert_eq!(b["scope"], "read:user,user:email");
    assert!(b.get("id_token").is_none());
    let access = b["access_token"].as_str().unwrap().to_string();
    // GitHub answers a bad code with a 200 and an error.
    let (s, text) = exchange("bogus".into(), true).await;
    assert_eq!(s, StatusCode::OK);
    let b: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(b["error"], "bad_verification_code");
    // A form without Accept: application/json.
    let (s, text) = exchange(github_code().await, false).await;
    assert_eq!(s, StatusCode::OK);
    let form_token = query_param(&format!("http://x.invalid/?{text}"), "access_token");
    assert!(form_token.is_some_and(|t| t != access), "{text}");
    assert_eq!(
        query_param(&format!("http://x.invalid/?{text}"), "token_type").as_deref(),
        Some("bearer")
    );

    // The API: the email private, then public.
    let get = |path: &str, token: Option<&str>, agent: bool| {
        let mut req = client_without_agent().get(format!("{api}{path}"));
        if agent {
            req = req.header(header::USER_AGENT, "identity-tests");
        }
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        async move {
            let resp = req.send().await.unwrap();
            (resp.status(), resp.json::<Value>().await.unwrap())
        }
    };
    let (s, user) = get("/user", Some(&access), true).await;
    assert_eq!(s, StatusCode::OK, "{user}");
    assert_eq!(user["id"], 4242);
    assert_eq!(user["login"], "octocat");
    assert_eq!(user["name"], "Octo Cat");
    assert_eq!(user["email"], Value::Null);
    let (s, emails) = get("/user/emails", Some(&access), true).await;
    assert_eq!(s, StatusCode::OK);
    let primary: Vec<&Value> = emails
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["primary"] == true)
        .collect();
    assert_eq!(primary.len(), 1);
    assert_eq!(primary[0]["email"], "octo@example.com");
    assert_eq!(primary[0]["verified"], true);
    assert_eq!(primary[0]["visibility"], "private");
    rp.idp.github_private_email(false);
    let (_, user) = get("/user", Some(&access), true).await;
    assert_eq!(user["email"], "octo@example.com");

    // GitHub refuses a call without a User-Agent, or without a token.
    assert_eq!(
        get("/user", Some(&access), false).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(get("/user", None, true).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        get("/user/emails", Some("nope"), true).await.0,
        StatusCode::UNAUTHORIZED
    );
    // GitHub's token is not an OIDC one, nor the other way round.
    let resp = rp
        .http
        .get(format!("{iss}/userinfo"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let recorded = rp.idp.requests();
    assert_eq!((recorded.authorize.len(), recorded.token), (2, 3));
    assert!(recorded.authorize.iter().all(|q| !q.contains_key("nonce")));
}

fn client_without_agent() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}
