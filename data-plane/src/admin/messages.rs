//! `GET /v1/messages?status=` (secret key): the project's outbox, newest
//! first: what was sent, what is waiting for a retry and what is dead.
//! Payloads are never shown (sealed, and erased once delivered).

use axum::Json;
use axum::extract::State;
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::http::{self, ListParams, Page};
use identity_shared::schema::OutboxMessages;
use identity_shared::time::rfc3339;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::DataState;
use crate::request::resolve::{Resolved, require_secret};
use crate::store::outbox::{self, DEAD, MessageRow, QUEUED, SENT};

#[derive(Deserialize)]
pub struct Filters {
    status: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

pub async fn list(
    State(state): State<DataState>,
    resolved: Resolved,
    http::Query(f): http::Query<Filters>,
) -> ApiResult<Json<Page<Value>>> {
    require_secret(&resolved)?;
    let status = match f.status.as_deref() {
        None => None,
        Some(s @ (QUEUED | SENT | DEAD)) => Some(s),
        Some(_) => {
            return Err(ApiError::invalid_request(
                "status must be queued, sent or dead",
            ));
        }
    };
    let params = ListParams {
        limit: f.limit,
        cursor: f.cursor,
    };
    let project_id = &resolved.project.id;
    let mut tx = state.shard(&resolved)?.scope_read(project_id).await?;
    let page = params
        .fetch_page(
            &mut tx,
            outbox::list_query(project_id, status),
            OutboxMessages::Id,
            true,
            |r: &MessageRow| r.id.clone(),
        )
        .await?;
    tx.commit().await?;
    Ok(Json(page.map(|m| {
        json!({
            "id": m.id,
            "channel": m.channel,
            "kind": m.kind,
            "to": m.recipient_hint,
            "status": m.status,
            "attempts": m.attempts,
            "next_attempt_at": (m.status == QUEUED).then(|| rfc3339(m.next_attempt_at)),
            "last_error": m.last_error,
            "created_at": rfc3339(m.created_at),
            "sent_at": m.sent_at.map(rfc3339),
            "payload_stored": m.payload_present,
        })
    })))
}
