//! A read-through moka cache that explicit invalidation can trust: a value
//! loaded while an invalidation of the same cache arrived is not kept, so a
//! stale read cannot outlive the change it missed.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moka::future::Cache;

use crate::db::DbError;
use crate::invalidation::Freshness;

pub struct GuardedCache<V> {
    cache: Cache<String, V>,
    /// When set, cached values are served only while it says so.
    freshness: Option<Freshness>,
    /// Bumped by every invalidation of this cache.
    epoch: AtomicU64,
    /// Loads so far: a hit adds none.
    loads: AtomicU64,
}

impl<V: Clone + Send + Sync + 'static> GuardedCache<V> {
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        Self {
            freshness: None,
            cache: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
            epoch: AtomicU64::new(0),
            loads: AtomicU64::new(0),
        }
    }

    /// Serves cached values only while `freshness` allows (see
    /// [`Freshness`]): past it, every lookup goes to the database.
    pub fn following(mut self, freshness: Freshness) -> Self {
        self.freshness = Some(freshness);
        self
    }

    /// The cached value of `key`, or what `load()` returns (kept unless an
    /// invalidation raced it). `load` is only called on a miss: a hit builds
    /// no load future at all (they are large; building one per hit showed
    /// up as memcpy in profiles). The miss paths are boxed for the same
    /// reason: a future is as large as its largest await, and every caller
    /// up to the request's own future moves it by value, so an inline load
    /// would make every hit copy kilobytes it never uses.
    pub async fn get_or_load<F>(&self, key: &str, load: impl FnOnce() -> F) -> Result<V, DbError>
    where
        F: Future<Output = Result<V, DbError>>,
    {
        if self.freshness.as_ref().is_some_and(|f| !f.usable()) {
            // Nothing cached is trusted now, and nothing loaded is kept.
            self.loads.fetch_add(1, Ordering::Relaxed);
            return Box::pin(load()).await;
        }
        if let Some(v) = self.cache.get(key).await {
            return Ok(v);
        }
        Box::pin(self.load_into(key, load())).await
    }

    async fn load_into<F>(&self, key: &str, load: F) -> Result<V, DbError>
    where
        F: Future<Output = Result<V, DbError>>,
    {
        let epoch = self.epoch.load(Ordering::SeqCst);
        self.loads.fetch_add(1, Ordering::Relaxed);
        let value = self
            .cache
            .try_get_with(key.to_string(), load)
            .await
            .map_err(|e| {
                // Requests that waited on the same failed load share its
                // error: an outage stays an outage (503) for all of them.
                Arc::try_unwrap(e).unwrap_or_else(|e| match &*e {
                    DbError::Unavailable(cause) => DbError::Unavailable(cause.clone()),
                    other => DbError::Setup(other.to_string()),
                })
            })?;
        if self.epoch.load(Ordering::SeqCst) != epoch {
            self.cache.invalidate(key).await;
        }
        Ok(value)
    }

    /// The cached value of `key`, if one is cached and may be served; never
    /// loads (for callers inside a transaction, which must not wait for a
    /// second connection).
    pub async fn get_cached(&self, key: &str) -> Option<V> {
        if self.freshness.as_ref().is_some_and(|f| !f.usable()) {
            return None;
        }
        self.cache.get(key).await
    }

    /// The invalidation epoch: read it before reading a value elsewhere,
    /// and pass it to [`Self::insert_read`].
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Keeps `value`, read by the caller after it took `epoch`, unless an
    /// invalidation came since (the same rule as a load: inserted first,
    /// then removed again if the epoch moved, so no order of the two
    /// leaves a stale value behind).
    pub async fn insert_read(&self, key: &str, value: V, epoch: u64) {
        if self.freshness.as_ref().is_some_and(|f| !f.usable()) {
            return;
        }
        self.cache.insert(key.to_string(), value).await;
        if self.epoch.load(Ordering::SeqCst) != epoch {
            self.cache.invalidate(key).await;
        }
    }

    pub async fn invalidate(&self, key: &str) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.cache.invalidate(key).await;
    }

    pub fn invalidate_all(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.cache.invalidate_all();
    }

    pub fn loads(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> GuardedCache<u32> {
        GuardedCache::new(100, Duration::from_secs(60))
    }

    #[tokio::test]
    async fn a_value_read_elsewhere_is_kept_only_without_an_invalidation_since() {
        let c = cache();
        let epoch = c.epoch();
        c.insert_read("a", 1, epoch).await;
        assert_eq!(c.get_cached("a").await, Some(1));
        // An invalidation (of any key) between the read and the insert:
        // the value is not kept, as a racing load would not be.
        let epoch = c.epoch();
        c.invalidate("other").await;
        c.insert_read("b", 2, epoch).await;
        assert_eq!(c.get_cached("b").await, None);
    }

    #[tokio::test]
    async fn a_hit_does_not_load() {
        let c = cache();
        // A hit does not load.
        let loads = c.loads();
        c.insert_read("a", 7, c.epoch()).await;
        assert_eq!(c.get_or_load("a", || async { Ok(0) }).await.unwrap(), 7);
        assert_eq!(c.loads(), loads);
    }
}
