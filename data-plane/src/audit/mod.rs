//! `GET /v1/audit-events` (secret key): the project's audit trail, newest
//! first, filtered by user, type and time range, paginated by cursor.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::http::{self, ListParams, Page};
use identity_shared::schema::AuditEvents;
use identity_shared::time::{parse_rfc3339, rfc3339};
use sea_query::{Cond, Expr, ExprTrait, Query};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::DataState;
use crate::request::client::Client;
use crate::request::resolve::Resolved;
use crate::request::resolve::require_secret;
use identity_shared::audit::{Event, Outcome};

pub fn router() -> Router<DataState> {
    Router::new().route("/v1/audit-events", get(list))
}

#[derive(sqlx::FromRow)]
struct EventRow {
    id: String,
    #[sqlx(rename = "type")]
    kind: String,
    actor: Option<String>,
    subject: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    outcome: String,
    created_at: i64,
    data: String,
}

impl EventRow {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "type": self.kind,
            "actor": self.actor,
            "subject": self.subject,
            "ip": self.ip,
            "user_agent": self.user_agent,
            "outcome": self.outcome,
            "created_at": rfc3339(self.created_at),
            "data": serde_json::from_str::<Value>(&self.data).unwrap_or(Value::Null),
        })
    }
}

#[derive(Deserialize)]
struct Filters {
    user_id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

async fn list(
    State(state): State<DataState>,
    resolved: Resolved,
    http::Query(f): http::Query<Filters>,
) -> ApiResult<Json<Page<Value>>> {
    require_secret(&resolved)?;
    let params = ListParams {
        limit: f.limit,
        cursor: f.cursor,
    };
    let time = |name: &str, v: &Option<String>| -> ApiResult<Option<i64>> {
        v.as_deref()
            .map(|s| {
                parse_rfc3339(s).ok_or_else(|| {
                    ApiError::invalid_request(format!("{name} must be an RFC 3339 timestamp"))
                })
            })
            .transpose()
    };
    let since = time("since", &f.since)?;
    let until = time("until", &f.until)?;
    let project_id = &resolved.project.id;
    let mut q = Query::select();
    q.columns([
        AuditEvents::Id,
        AuditEvents::Type,
        AuditEvents::Actor,
        AuditEvents::Subject,
        AuditEvents::Ip,
        AuditEvents::UserAgent,
        AuditEvents::Outcome,
        AuditEvents::CreatedAt,
        AuditEvents::Data,
    ])
    .from(AuditEvents::Table)
    .and_where(Expr::col(AuditEvents::ProjectId).eq(project_id));
    if let Some(user) = &f.user_id {
        q.cond_where(
            Cond::any()
                .add(Expr::col(AuditEvents::Subject).eq(user))
                .add(Expr::col(AuditEvents::Actor).eq(user)),
        );
    }
    if let Some(kind) = &f.kind {
        q.and_where(Expr::col(AuditEvents::Type).eq(kind));
    }
    if let Some(t) = since {
        q.and_where(Expr::col(AuditEvents::CreatedAt).gte(t));
    }
    if let Some(t) = until {
        q.and_where(Expr::col(AuditEvents::CreatedAt).lt(t));
    }
    let mut tx = state.shard(&resolved)?.scope_read(project_id).await?;
    let page = params
        .fetch_page(&mut tx, q, AuditEvents::Id, true, |r: &EventRow| {
            r.id.clone()
        })
        .await?;
    tx.commit().await?;
    Ok(Json(page.map(|r| r.to_json())))
}

/// An audit event of a request: its project, client address and agent.
pub fn event<'a>(
    resolved: &'a Resolved,
    client: &'a Client,
    ip: &'a str,
    kind: &'static str,
    outcome: Outcome,
) -> Event<'a> {
    Event {
        ip: Some(ip),
        user_agent: client.user_agent.as_deref(),
        ..Event::new(&resolved.project.id, kind, outcome)
    }
}
