//! CORS for browser apps on a project's `allowed_origins`.
//!
//! A preflight carries no project header, so it is judged by where it is
//! sent: on a branded auth domain, by that project's origins; on the shared
//! API origin, by whether any project of the deployment allows the origin.
//! The actual response then grants only the resolved project's origins.
//! `http://` origins count only in dev mode. Origins that are not allowed
//! get no CORS headers at all.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_METHOD, HOST,
    ORIGIN, VARY,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use identity_shared::cache::GuardedCache;
use identity_shared::db::{Db, DbError};
use identity_shared::hostname::normalize_host_header;
use identity_shared::invalidation::{Invalidation, InvalidationSink};
use identity_shared::schema::Projects;
use identity_shared::settings::{ProjectSettings, parse_origin};
use sea_query::{Expr, ExprTrait, LikeExpr, Query};

use crate::DataState;
use crate::request::resolve::{ProjectInfo, Resolved, Via};

/// The request headers the API reads.
const ALLOW_HEADERS: &str =
    "Content-Type, Authorization, X-Project-Key, X-CSRF-Token, X-Token-Transport";
const ALLOW_METHODS: &str = "GET, POST, PUT, PATCH, DELETE";

/// Whether any project allows an origin (for preflights to the shared API
/// origin), cached per origin and dropped whenever a project changes.
pub struct OriginIndex {
    db: Db,
    known: GuardedCache<bool>,
}

impl OriginIndex {
    pub fn start(db: Db, ttl: Duration) -> Arc<Self> {
        let index = Arc::new(Self {
            db: db.clone(),
            known: GuardedCache::new(10_000, ttl).following(db.invalidations().freshness()),
        });
        let sink: Arc<dyn InvalidationSink> = index.clone();
        db.invalidations().register(Arc::downgrade(&sink));
        index
    }

    async fn allowed_anywhere(&self, origin: &str) -> Result<bool, DbError> {
        self.known.get_or_load(origin, || self.load(origin)).await
    }

    async fn load(&self, origin: &str) -> Result<bool, DbError> {
        // Narrow by text, then decide on the parsed settings.
        let escaped: String = origin
            .chars()
            .flat_map(|c| match c {
                '%' | '_' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        let mut tx = self.db.control_read().await?;
        let rows: Vec<(String,)> = tx
            .fetch_all(
                Query::select()
                    .column(Projects::Settings)
                    .from(Projects::Table)
                    .and_where(Expr::col(Projects::Status).eq("active"))
                    .and_where(
                        Expr::col(Projects::Settings)
                            .like(LikeExpr::new(format!("%\"{escaped}\"%")).escape('\\')),
                    )
                    .limit(1000),
            )
            .await?;
        tx.commit().await?;
        Ok(rows.iter().any(|(text,)| {
            ProjectSettings::from_stored(text)
                .allowed_origins
                .iter()
                .any(|o| o == origin)
        }))
    }
}

impl InvalidationSink for OriginIndex {
    fn apply<'a>(&'a self, message: &'a Invalidation) -> futures_util::future::BoxFuture<'a, ()> {
        Box::pin(async move {
            if matches!(message, Invalidation::Project(_) | Invalidation::All) {
                self.known.invalidate_all();
            }
        })
    }
}

/// Whether `origin` may call `project` from a browser.
pub fn project_allows(state: &DataState, project: &ProjectInfo, origin: &str) -> bool {
    scheme_ok(state, origin) && project.settings.allowed_origins.iter().any(|o| o == origin)
}

fn scheme_ok(state: &DataState, origin: &str) -> bool {
    origin.starts_with("https://") || state.config.dev_mode
}

/// The layer: answers preflights, and adds the grant to actual responses
/// of the resolved project's allowed origins.
pub async fn cors(State(state): State<DataState>, req: Request, next: Next) -> Response {
    let origin = req
        .headers()
        .get(ORIGIN)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_origin);
    let Some(origin) = origin else {
        // Responses differ by origin: caches must keep them apart even when
        // this request had none.
        let mut response = next.run(req).await;
        response
            .headers_mut()
            .append(VARY, HeaderValue::from_static("Origin"));
        return no_store_by_default(response);
    };
    if req.method() == Method::OPTIONS && req.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD)
    {
        // Boxed: a preflight's lookups would otherwise make every request's
        // future as large as theirs.
        let granted = Box::pin(preflight_allowed(&state, req.headers(), &origin)).await;
        let mut response = StatusCode::NO_CONTENT.into_response();
        let h = response.headers_mut();
        h.insert(VARY, HeaderValue::from_static("Origin"));
        if granted {
            grant(h, &origin);
            h.insert(
                ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(ALLOW_METHODS),
            );
            h.insert(
                ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOW_HEADERS),
            );
            h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        }
        return response;
    }
    let mut response = next.run(req).await;
    let granted = response
        .extensions()
        .get::<Resolved>()
        .is_some_and(|r| project_allows(&state, &r.project, &origin));
    let h = response.headers_mut();
    h.append(VARY, HeaderValue::from_static("Origin"));
    if granted {
        grant(h, &origin);
    }
    no_store_by_default(response)
}

/// Answers carry tokens, sessions and CSRF tokens: nothing is stored by a
/// browser or proxy cache unless a route says otherwise (the JWKS does).
fn no_store_by_default(mut response: Response) -> Response {
    response
        .headers_mut()
        .entry(axum::http::header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

fn grant(h: &mut HeaderMap, origin: &str) {
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, v);
        h.insert(
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
}

/// A preflight on a branded host asks that project; on the shared API
/// origin, any project. A database failure grants nothing (fail closed).
async fn preflight_allowed(state: &DataState, headers: &HeaderMap, origin: &str) -> bool {
    if !scheme_ok(state, origin) {
        return false;
    }
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .and_then(normalize_host_header);
    if let Some(host) = host
        && let Ok(resolved) = state.resolver.resolve_host(&host).await
        && matches!(resolved.via, Via::Host(_))
    {
        return project_allows(state, &resolved.project, origin);
    }
    state
        .origins
        .allowed_anywhere(origin)
        .await
        .unwrap_or(false)
}
