//! Audit events: written in the same transaction as the change they
//! describe, never updated (the data-plane role may only insert and read).

use sea_query::Query;
use serde_json::Value;

use crate::db::{DbError, Tx};
use crate::ids::new_id;
use crate::schema::AuditEvents;
use crate::time::now_ms;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

/// One event. `actor` did it (a user id, `api_key:<key id>`, `operator`,
/// or none for an anonymous caller); `subject` is the user it concerns.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub project_id: &'a str,
    pub kind: &'static str,
    pub actor: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub outcome: Outcome,
    pub data: Value,
}

impl<'a> Event<'a> {
    pub fn new(project_id: &'a str, kind: &'static str, outcome: Outcome) -> Self {
        Self {
            project_id,
            kind,
            actor: None,
            subject: None,
            ip: None,
            user_agent: None,
            outcome,
            data: Value::Object(Default::default()),
        }
    }
}

/// Sent with the transaction's next statement or its commit on SQLite
/// ([`Tx::defer`]).
pub async fn record(tx: &mut Tx, event: Event<'_>) -> Result<(), DbError> {
    tx.defer(
        Query::insert()
            .into_table(AuditEvents::Table)
            .columns([
                AuditEvents::Id,
                AuditEvents::ProjectId,
                AuditEvents::Type,
                AuditEvents::Actor,
                AuditEvents::Subject,
                AuditEvents::Ip,
                AuditEvents::UserAgent,
                AuditEvents::Outcome,
                AuditEvents::CreatedAt,
                AuditEvents::Data,
            ])
            .values_panic([
                new_id("evt").into(),
                event.project_id.into(),
                event.kind.into(),
                event.actor.map(str::to_string).into(),
                event.subject.map(str::to_string).into(),
                event.ip.map(str::to_string).into(),
                event.user_agent.map(str::to_string).into(),
                event.outcome.as_str().into(),
                now_ms().into(),
                event.data.to_string().into(),
            ]),
    )
    .await?;
    Ok(())
}
