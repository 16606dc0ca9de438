//! Cache invalidation between the control plane and every data-plane node.
//!
//! A change that must stop a cached decision (a key revoked, a project
//! suspended, a domain removed) queues an [`Invalidation`] on its transaction.
//! After the commit, the node that made the change applies it to its own
//! caches before answering, so it reads its own writes. On Postgres the same
//! message also travels as `NOTIFY identity_invalidate`, delivered at commit
//! to every node listening on the database.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

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
    /// Sessions revoked (by id).
    Sessions(Vec<String>),
    /// Everything: sent when a node may have missed messages.
    All,
    /// Nothing to drop: a node's proof that its listener still hears.
    Heartbeat,
}

/// Something holding cached decisions (the project resolver).
pub trait InvalidationSink: Send + Sync {
    fn apply<'a>(&'a self, message: &'a Invalidation) -> BoxFuture<'a, ()>;
}

/// What travels in a `NOTIFY`: the message and the node that sent it. A
/// node has already applied its own messages when their transaction
/// committed; applying the echo again later would only evict what was
/// loaded, correctly, after the commit.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope {
    pub node: String,
    pub message: Invalidation,
}

/// The sinks of one process. Cheap to clone; sinks are held weakly so a
/// dropped cache unregisters itself.
#[derive(Clone)]
pub struct InvalidationBus {
    sinks: Arc<Mutex<Vec<Weak<dyn InvalidationSink>>>>,
    node: Arc<str>,
    freshness: Freshness,
}

impl Default for InvalidationBus {
    fn default() -> Self {
        Self {
            sinks: Arc::default(),
            node: Arc::from(crate::ids::new_id("node")),
            freshness: Freshness::default(),
        }
    }
}

/// Whether cached answers may still be served. While this node hears every
/// invalidation they may; once its listener has lost the database, only
/// for a bounded staleness (a change made on another node meanwhile takes
/// effect within it), after which caches are bypassed and requests go to
/// the database: they fail closed with 503 if it is down, never 401.
#[derive(Clone)]
pub struct Freshness {
    /// When the listener lost the database (monotonic ms); 0 while connected.
    lost_at: Arc<AtomicI64>,
    staleness_ms: Arc<AtomicI64>,
}

impl Default for Freshness {
    fn default() -> Self {
        Self {
            lost_at: Arc::new(AtomicI64::new(0)),
            staleness_ms: Arc::new(AtomicI64::new(10_000)),
        }
    }
}

/// Milliseconds on a clock that never jumps (from the first call, plus
/// one, so it is never 0).
fn monotonic_ms() -> i64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as i64
        + 1
}

impl Freshness {
    pub fn usable(&self) -> bool {
        let lost = self.lost_at.load(Ordering::Acquire);
        lost == 0 || monotonic_ms() - lost <= self.staleness_ms.load(Ordering::Relaxed)
    }

    pub fn set_staleness(&self, limit: Duration) {
        self.staleness_ms
            .store(limit.as_millis() as i64, Ordering::Relaxed);
    }

    /// The listener lost the database (the first loss counts).
    pub fn lost(&self) {
        let _ =
            self.lost_at
                .compare_exchange(0, monotonic_ms(), Ordering::AcqRel, Ordering::Acquire);
    }

    /// The listener is back (after caches were cleared).
    pub fn restored(&self) {
        self.lost_at.store(0, Ordering::Release);
    }
}

impl InvalidationBus {
    pub fn new() -> Self {
        Self::default()
    }

    /// This node's id in the envelopes it sends.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Whether caches following this bus may serve what they hold.
    pub fn freshness(&self) -> Freshness {
        self.freshness.clone()
    }

    /// Whether two handles are the same bus (one database, two clones).
    pub fn same_as(&self, other: &InvalidationBus) -> bool {
        Arc::ptr_eq(&self.sinks, &other.sinks)
    }

    pub fn register(&self, sink: Weak<dyn InvalidationSink>) {
        if let Ok(mut sinks) = self.sinks.lock() {
            sinks.push(sink);
        }
    }

    /// Applies `message` to every live sink; returns when all have applied it.
    pub async fn publish(&self, message: Invalidation) {
        let live: Vec<Arc<dyn InvalidationSink>> = match self.sinks.lock() {
            Ok(mut sinks) => {
                sinks.retain(|s| s.strong_count() > 0);
                sinks.iter().filter_map(Weak::upgrade).collect()
            }
            Err(_) => Vec::new(),
        };
        for sink in live {
            sink.apply(&message).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip_and_fit_a_notify() {
        let ids: Vec<String> = (0..100).map(|_| crate::ids::new_id("ses")).collect();
        let e = Envelope {
            node: InvalidationBus::new().node().to_string(),
            message: Invalidation::Sessions(ids),
        };
        let text = serde_json::to_string(&e).unwrap();
        assert!(text.len() < 8000, "{} bytes", text.len());
        let back: Envelope = serde_json::from_str(&text).unwrap();
        assert_eq!(back.message, e.message);
        assert_eq!(back.node, e.node);
        assert_ne!(InvalidationBus::new().node(), InvalidationBus::new().node());
    }
}
