//! HTTP helpers shared by both planes: extractors whose rejections use our
//! error shape, request ids and logging, list pagination.

use std::time::Instant;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::error::ApiError;

/// `axum::Json`, but malformed bodies are answered with our error shape:
/// 400 `invalid_request`, or 413 when the body is over the limit.
pub struct Json<T>(pub T);

/// 415: a body that is not `application/json`. Browsers send cross-site
/// form posts as `text/plain` or form encodings without a preflight, so
/// refusing them keeps such posts away from every JSON endpoint.
pub fn unsupported_media_type() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "expected a body with Content-Type: application/json",
    )
}

/// A JSON body that may be absent (cookie transport sends none); one that
/// is present must be declared `application/json` (415 otherwise).
pub fn optional_json<T: serde::de::DeserializeOwned + Default>(
    headers: &axum::http::HeaderMap,
    bytes: &[u8],
) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    if !is_json_content_type(headers) {
        return Err(unsupported_media_type());
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::invalid_request(format!("invalid body: {e}")))
}

/// Whether the request declares a JSON body (`application/json`, with
/// parameters, or `application/*+json`).
pub fn is_json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|t| t.ends_with("+json"))
}

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    return Err(ApiError::payload_too_large());
                }
                use axum::extract::rejection::JsonRejection as R;
                let message = match &rejection {
                    R::MissingJsonContentType(_) => return Err(unsupported_media_type()),
                    R::JsonSyntaxError(_) => "the body is not valid JSON".to_string(),
                    R::JsonDataError(e) => format!("invalid body: {}", e.body_text()),
                    _ => "the body could not be read".to_string(),
                };
                Err(ApiError::invalid_request(message))
            }
        }
    }
}

/// `axum::extract::Query` with our error shape.
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e| {
                ApiError::invalid_request(format!("invalid query string: {}", e.body_text()))
            })
    }
}

pub const DEFAULT_LIMIT: u64 = 50;
pub const MAX_LIMIT: u64 = 200;

#[derive(Debug, Default, serde::Deserialize)]
pub struct ListParams {
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

impl ListParams {
    pub fn limit(&self) -> Result<u64, ApiError> {
        match &self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    ApiError::invalid_request(format!(
                        "limit must be an integer from 1 to {MAX_LIMIT}"
                    ))
                }),
        }
    }

    /// The cursor is the last id of the previous page.
    pub fn cursor(&self) -> Result<Option<&str>, ApiError> {
        match self.cursor.as_deref() {
            None | Some("") => Ok(None),
            Some(c)
                if c.len() <= 64 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
            {
                Ok(Some(c))
            }
            Some(_) => Err(ApiError::invalid_request("cursor is not valid")),
        }
    }
}

impl ListParams {
    /// One page of `q` (already filtered), cut by its id column `id`:
    /// ascending, or newest first. Validates `limit` and `cursor` (400) and
    /// fetches one row more than the page to know whether another follows.
    pub async fn fetch_page<R, C, M>(
        &self,
        tx: &mut crate::db::Tx<M>,
        mut q: sea_query::SelectStatement,
        id: C,
        newest_first: bool,
        row_id: impl Fn(&R) -> String,
    ) -> Result<Page<R>, ApiError>
    where
        R: crate::db::Row,
        C: sea_query::IntoColumnRef + Copy,
    {
        use sea_query::{Expr, ExprTrait, Order};
        let limit = self.limit()?;
        let order = if newest_first {
            Order::Desc
        } else {
            Order::Asc
        };
        q.order_by(id, order).limit(limit + 1);
        if let Some(cursor) = self.cursor()? {
            q.and_where(if newest_first {
                Expr::col(id).lt(cursor)
            } else {
                Expr::col(id).gt(cursor)
            });
        }
        let rows: Vec<R> = tx.fetch_all(&q).await?;
        Ok(Page::from_rows(rows, limit, row_id, |r| r))
    }
}

#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl Fn(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }

    /// Builds a page from up to `limit + 1` rows fetched in id order.
    pub fn from_rows<R>(
        mut rows: Vec<R>,
        limit: u64,
        id: impl Fn(&R) -> String,
        map: impl Fn(R) -> T,
    ) -> Self {
        let next_cursor = if rows.len() as u64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(&id)
        } else {
            None
        };
        Page {
            items: rows.into_iter().map(map).collect(),
            next_cursor,
        }
    }
}

/// The project a response was for, put there by project resolution, so the
/// request's log line can name it.
#[derive(Clone)]
pub struct ProjectTag(pub std::sync::Arc<str>);

/// Gives each request an id (kept from `X-Request-Id` when sane) and, when
/// it went wrong, one log line naming it, its method, path and project. The
/// tracing span with the same fields is at debug level: creating it for
/// every request (its fields formatted at once) cost a fifth of a session
/// check.
pub async fn request_context(req: Request, next: Next) -> Response {
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_string)
        .unwrap_or_else(|| crate::ids::random_base32(20));
    let span = tracing::debug_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        request_id = %request_id,
    );
    let method = req.method().clone();
    // A cheap clone (shared bytes): the path is only formatted if logged.
    let uri = req.uri().clone();
    let started = Instant::now();
    let mut response = next.run(req).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.in_scope(|| {
        let micros = started.elapsed().as_micros() as u64;
        let project_id = response
            .extensions()
            .get::<ProjectTag>()
            .map(|p| p.0.clone())
            .unwrap_or_else(|| std::sync::Arc::from(""));
        // A line per request that went wrong; successful ones only with
        // RUST_LOG=debug (a reverse proxy's access log has them, and the
        // audit trail has every auth event): formatting a line per request
        // cost more than the session check itself.
        if status >= 500 {
            tracing::error!(%method, path = %uri.path(), %request_id, %project_id, status, micros, "request failed");
        } else if status >= 400 {
            tracing::info!(%method, path = %uri.path(), %request_id, %project_id, status, micros, "request refused");
        } else {
            tracing::debug!(%method, path = %uri.path(), %request_id, %project_id, status, micros, "request");
        }
    });
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route",
    )
}

/// Answers `413` with our shape when a body declared larger than the limit
/// arrives, before any extractor runs.
pub async fn enforce_content_length(limit: usize, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return ApiError::payload_too_large().into_response();
    }
    next.run(req).await
}

pub async fn healthz() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({"status": "ok"}))
}

/// Ready when the database answers and every migration is applied.
pub async fn readiness(db: &crate::db::Db) -> Response {
    let database = db.ping().await.is_ok();
    let migrations = database && db.migrations_current().await.unwrap_or(false);
    let body = serde_json::json!({
        "status": if database && migrations { "ready" } else { "not_ready" },
        "checks": {"database": database, "migrations_current": migrations},
    });
    let status = if database && migrations {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}
