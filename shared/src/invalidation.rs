//! Cache invalidation between the control plane and every data-plane node.
//!
//! A change that must stop a cached decision (a key revoked, a project
//! suspended, a domain removed) queues an [`Invalidation`] on its transaction.
//! On Postgres it travels as `NOTIFY identity_invalidate` and is delivered when
//! the transaction commits, to every node listening on the database; on SQLite
//! (one process) it goes out on an in-process channel after the commit.

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

pub const CHANNEL: &str = "identity_invalidate";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Invalidation {
    /// A project key, by its public prefix.
    Key(String),
    /// A project: status, settings, issuer, signing keys.
    Project(String),
    /// An auth-domain hostname.
    Host(String),
    /// Everything: sent when a node may have missed messages.
    All,
}

#[derive(Clone)]
pub struct InvalidationBus {
    tx: broadcast::Sender<Invalidation>,
}

impl Default for InvalidationBus {
    fn default() -> Self {
        Self::new()
    }
}

impl InvalidationBus {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(1024);
        Self { tx }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Invalidation> {
        self.tx.subscribe()
    }

    pub fn publish(&self, message: Invalidation) {
        // No subscribers simply means no caches to clear.
        let _ = self.tx.send(message);
    }
}
