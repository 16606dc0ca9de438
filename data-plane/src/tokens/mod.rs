//! Access tokens: JWTs signed with the project's active key (EdDSA or
//! RS256), `kid` in the header, verified against the project's published
//! keys. Keys are parsed once and cached per project; a verified token's
//! claims are cached until it expires, so the hot path is a hash lookup.

use crate::request::resolve::ProjectInfo;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::DecodePrivateKey as _;
use ed25519_dalek::{Signer as _, Verifier as _};
use identity_shared::cache::GuardedCache;
use identity_shared::crypto::MasterKey;
use identity_shared::db::{Db, DbError};
use identity_shared::error::ApiError;
use identity_shared::ids::new_id;
use identity_shared::invalidation::{Invalidation, InvalidationSink};
use identity_shared::schema::SigningKeys;
use identity_shared::time::now_ms;
use moka::future::Cache;
use rsa::signature::SignatureEncoding as _;
use sea_query::{Cond, Expr, ExprTrait, Order, Query};
use serde::Deserialize;
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;

pub mod claims;
pub mod keys;
pub mod wellknown;

use crate::sessions::cache::ActiveTenant;

/// What some access tokens carry beyond the usual claims.
#[derive(Default)]
pub struct TokenExtras<'a> {
    /// The session's active tenant (`tid`, `tenant_role`, `permissions`).
    pub tenant: Option<&'a ActiveTenant>,
    /// A lifetime other than the project's (impersonation).
    pub ttl_seconds: Option<u32>,
    /// RFC 8693 `act`: who acts for the subject (impersonation).
    pub act: Option<serde_json::Value>,
}
use claims::LEEWAY_SECONDS;
pub use claims::{AccessClaims, TokenError};
use keys::{SigningKey, VerifyingKey, parse_public_jwk};

struct ActiveKey {
    kid: String,
    key: SigningKey,
}

pub struct Tokens {
    control_db: Db,
    master_key: Arc<MasterKey>,
    signers: GuardedCache<Option<Arc<ActiveKey>>>,
    /// The project's published keys: parsed for verification, and as the
    /// JWK documents the JWKS endpoint serves.
    published: GuardedCache<Arc<Vec<PublishedKey>>>,
    /// Token text → claims it verified to and the key that signed it
    /// (expiry, and that the key is still published, checked on every use).
    verified: Cache<String, (Arc<AccessClaims>, Arc<str>)>,
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: String,
    alg: String,
    public_jwk: String,
    private_sealed: String,
    active: bool,
    publish_until: Option<i64>,
}

/// A key in the JWKS: the active one, or a retired one until `publish_until`
/// (checked on every use, so it stops verifying exactly on time).
struct PublishedKey {
    kid: String,
    jwk: serde_json::Value,
    verifier: VerifyingKey,
    active: bool,
    publish_until: Option<i64>,
}

impl PublishedKey {
    fn live(&self, now: i64) -> bool {
        self.active || self.publish_until.is_some_and(|t| t > now)
    }
}

impl Tokens {
    pub fn new(control_db: Db, master_key: Arc<MasterKey>) -> Arc<Self> {
        let ttl = Duration::from_secs(3600);
        let tokens = Arc::new(Self {
            control_db: control_db.clone(),
            master_key,
            signers: GuardedCache::new(100_000, ttl)
                .following(control_db.invalidations().freshness()),
            published: GuardedCache::new(100_000, ttl)
                .following(control_db.invalidations().freshness()),
            verified: Cache::builder()
                .max_capacity(50_000)
                .time_to_live(Duration::from_secs(900))
                .build(),
        });
        let sink: Arc<dyn InvalidationSink> = tokens.clone();
        control_db.invalidations().register(Arc::downgrade(&sink));
        tokens
    }

    async fn rows(&self, project_id: &str, active_only: bool) -> Result<Vec<KeyRow>, DbError> {
        let mut tx = self.control_db.scope_read(project_id).await?;
        let mut q = Query::select();
        q.columns([
            SigningKeys::Id,
            SigningKeys::Alg,
            SigningKeys::PublicJwk,
            SigningKeys::PrivateSealed,
            SigningKeys::Active,
            SigningKeys::PublishUntil,
        ])
        .from(SigningKeys::Table)
        .and_where(Expr::col(SigningKeys::ProjectId).eq(project_id))
        .order_by(SigningKeys::CreatedAt, Order::Desc);
        if active_only {
            q.and_where(Expr::col(SigningKeys::Active).eq(true))
                .limit(1);
        } else {
            q.cond_where(
                Cond::any()
                    .add(Expr::col(SigningKeys::Active).eq(true))
                    .add(Expr::col(SigningKeys::PublishUntil).gt(now_ms())),
            );
        }
        let rows = tx.fetch_all(&q).await?;
        tx.commit().await?;
        Ok(rows)
    }

    async fn load_signer(&self, project_id: &str) -> Result<Option<Arc<ActiveKey>>, DbError> {
        let Some(row) = self.rows(project_id, true).await?.into_iter().next() else {
            return Ok(None);
        };
        if !row.active {
            return Ok(None);
        }
        let der = self
            .master_key
            .open(&row.private_sealed, &row.id)
            .map_err(|e| DbError::Setup(format!("signing key {}: {e}", row.id)))?;
        let key = match row.alg.as_str() {
            "EdDSA" => ed25519_dalek::SigningKey::from_pkcs8_der(&der)
                .map(|k| SigningKey::Ed(Box::new(k)))
                .ok(),
            "RS256" => rsa::RsaPrivateKey::from_pkcs8_der(&der)
                .map(|k| SigningKey::Rsa(Box::new(rsa::pkcs1v15::SigningKey::<Sha256>::new(k))))
                .ok(),
            _ => None,
        }
        .ok_or_else(|| DbError::Setup(format!("signing key {} cannot be read", row.id)))?;
        Ok(Some(Arc::new(ActiveKey { kid: row.id, key })))
    }

    /// Active first, then retired keys newest first.
    async fn load_published(&self, project_id: &str) -> Result<Arc<Vec<PublishedKey>>, DbError> {
        let keys = self
            .rows(project_id, false)
            .await?
            .into_iter()
            .filter_map(|row| {
                Some(PublishedKey {
                    jwk: serde_json::from_str(&row.public_jwk).ok()?,
                    verifier: parse_public_jwk(&row.public_jwk)?,
                    kid: row.id,
                    active: row.active,
                    publish_until: row.publish_until,
                })
            })
            .collect();
        Ok(Arc::new(keys))
    }

    async fn published(&self, project_id: &str) -> Result<Arc<Vec<PublishedKey>>, DbError> {
        self.published
            .get_or_load(project_id, || self.load_published(project_id))
            .await
    }

    /// The JWKS of a project: public keys that verify its live tokens, from
    /// memory in the common case.
    pub async fn jwks(&self, project_id: &str) -> Result<Vec<serde_json::Value>, ApiError> {
        let now = now_ms();
        Ok(self
            .published(project_id)
            .await?
            .iter()
            .filter(|k| k.live(now))
            .map(|k| k.jwk.clone())
            .collect())
    }

    /// Signs an access token for `user_id` in session `session_id`.
    /// (What `extra` adds: see [`TokenExtras`].)
    pub async fn issue(
        &self,
        project: &ProjectInfo,
        issuer: &str,
        user_id: &str,
        session_id: &str,
        amr: &[String],
        extra: &TokenExtras<'_>,
    ) -> Result<(String, u32), ApiError> {
        let tenant = extra.tenant;
        let signer = self
            .signers
            .get_or_load(&project.id, || self.load_signer(&project.id))
            .await?
            .ok_or_else(|| {
                ApiError::internal(format!("project {} has no active signing key", project.id))
            })?;
        let now = now_ms() / 1000;
        let ttl = extra
            .ttl_seconds
            .unwrap_or(project.settings.access_token_ttl_seconds);
        let claims = AccessClaims {
            iss: issuer.to_string(),
            sub: user_id.to_string(),
            aud: project.id.clone(),
            exp: now + i64::from(ttl),
            iat: now,
            jti: new_id("jti"),
            sid: session_id.to_string(),
            pid: project.id.clone(),
            amr: amr.to_vec(),
            tid: tenant.map(|t| t.id.clone()),
            tenant_role: tenant.map(|t| t.role.clone()),
            permissions: tenant.map(|t| project.settings.rbac.permissions_of(&t.role)),
            act: extra.act.clone(),
        };
        let alg = match signer.key {
            SigningKey::Ed(_) => "EdDSA",
            SigningKey::Rsa(_) => "RS256",
        };
        let header = serde_json::json!({"alg": alg, "typ": "JWT", "kid": signer.kid});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).map_err(ApiError::internal)?)
        );
        let signature = match &signer.key {
            SigningKey::Ed(k) => k.sign(signing_input.as_bytes()).to_bytes().to_vec(),
            SigningKey::Rsa(k) => {
                let k = k.clone();
                let input = signing_input.clone();
                // RSA signing takes about a millisecond: off the async runtime.
                tokio::task::spawn_blocking(move || k.sign(input.as_bytes()).to_vec())
                    .await
                    .map_err(ApiError::internal)?
            }
        };
        Ok((
            format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)),
            ttl,
        ))
    }

    /// Verifies a token for `project` (signature by one of its published
    /// keys, `iss`, `aud`, `pid`, `exp`). Cached per token text.
    pub async fn verify(
        &self,
        project: &ProjectInfo,
        issuer: &str,
        token: &str,
    ) -> Result<Arc<AccessClaims>, ApiError> {
        let now = now_ms() / 1000;
        let claims = match self.verified.get(token).await {
            Some((claims, kid)) => {
                // A key retired (or removed) since stops its tokens at once.
                let keys = self.published(&project.id).await?;
                let now_ms = now_ms();
                if !keys.iter().any(|k| *k.kid == *kid && k.live(now_ms)) {
                    self.verified.invalidate(token).await;
                    return Err(TokenError::BadSignature.into());
                }
                claims
            }
            None => {
                let (claims, kid) = self.verify_signature(project, token).await?;
                let claims = Arc::new(claims);
                // Only well-formed, correctly signed tokens are remembered.
                self.verified
                    .insert(token.to_string(), (claims.clone(), Arc::from(kid)))
                    .await;
                claims
            }
        };
        if claims.pid != project.id || claims.aud != project.id || claims.iss != issuer {
            return Err(TokenError::WrongProject.into());
        }
        if claims.exp + LEEWAY_SECONDS <= now {
            return Err(TokenError::Expired.into());
        }
        if claims.iat > now + LEEWAY_SECONDS {
            return Err(TokenError::Malformed.into());
        }
        Ok(claims)
    }

    async fn verify_signature(
        &self,
        project: &ProjectInfo,
        token: &str,
    ) -> Result<(AccessClaims, String), ApiError> {
        if token.len() > 8192 {
            return Err(TokenError::Malformed.into());
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed.into());
        };
        let decode = |part: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| TokenError::Malformed)
        };
        #[derive(Deserialize)]
        struct Header {
            alg: String,
            kid: String,
        }
        let header: Header =
            serde_json::from_slice(&decode(h)?).map_err(|_| TokenError::Malformed)?;
        let signature = decode(s)?;
        let keys = self.published(&project.id).await?;
        let now = now_ms();
        let key = &keys
            .iter()
            .find(|k| k.kid == header.kid && k.live(now))
            .ok_or(TokenError::BadSignature)?
            .verifier;
        let input = &token.as_bytes()[..h.len() + 1 + p.len()];
        // The algorithm is the key's, never the header's choice.
        let ok = match (key, header.alg.as_str()) {
            (VerifyingKey::Ed(k), "EdDSA") => ed25519_dalek::Signature::from_slice(&signature)
                .map(|sig| k.verify(input, &sig).is_ok())
                .unwrap_or(false),
            (VerifyingKey::Rsa(k), "RS256") => {
                rsa::pkcs1v15::Signature::try_from(signature.as_slice())
                    .map(|sig| k.verify(input, &sig).is_ok())
                    .unwrap_or(false)
            }
            _ => false,
        };
        if !ok {
            return Err(TokenError::BadSignature.into());
        }
        let claims = serde_json::from_slice(&decode(p)?).map_err(|_| TokenError::Malformed)?;
        Ok((claims, header.kid))
    }
}

impl InvalidationSink for Tokens {
    fn apply<'a>(&'a self, message: &'a Invalidation) -> futures_util::future::BoxFuture<'a, ()> {
        Box::pin(async move {
            match message {
                Invalidation::Project(id) => {
                    self.signers.invalidate(id).await;
                    self.published.invalidate(id).await;
                }
                Invalidation::All => {
                    self.signers.invalidate_all();
                    self.published.invalidate_all();
                }
                _ => {}
            }
        })
    }
}
