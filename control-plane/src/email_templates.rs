//! `GET /v1/projects/{id}/email-templates/{kind}/preview`: a message kind
//! rendered as the project's users would get it (its overrides over the
//! built-in defaults) with example values, for operators editing
//! `settings.email_templates`.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use identity_shared::error::{ApiError, ApiResult};
use identity_shared::templates::{self, TemplateKind};
use serde_json::{Value, json};

use crate::ControlState;
use crate::project_store::load;

pub fn router() -> Router<ControlState> {
    Router::new().route(
        "/v1/projects/{id}/email-templates/{kind}/preview",
        get(preview),
    )
}

async fn preview(
    State(state): State<ControlState>,
    Path((id, kind)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let kind = TemplateKind::parse(&kind).ok_or_else(|| {
        let known: Vec<&str> = TemplateKind::ALL.iter().map(|k| k.as_str()).collect();
        ApiError::not_found_code(
            "unknown_template",
            format!("no message kind by that name (known: {})", known.join(", ")),
        )
    })?;
    let mut tx = state.db.control().await?;
    let project = load(&mut tx, &id).await?;
    tx.commit().await?;
    let settings = project.settings();
    let vars = templates::sample_vars(kind).with("project_name", &project.name);
    let rendered = templates::render(kind, settings.email_templates.get(&kind), &vars);
    Ok(Json(json!({
        "kind": kind.as_str(),
        "overridden": settings.email_templates.contains_key(&kind),
        "subject": rendered.subject,
        "text": rendered.text,
        "html": rendered.html,
    })))
}
