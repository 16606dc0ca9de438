//! Request rates per (project, client address), behind the [`RateLimiter`]
//! trait. The built-in limiter is in-process (GCRA, exact `Retry-After`),
//! so each node counts its own traffic; a shared backend can implement the
//! same trait. Account lockout lives with the login failures it counts
//! (`store::login_failures`).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use identity_shared::error::{ApiError, ApiResult};

use crate::DataState;
use crate::request::client::Client;
use crate::request::resolve::Resolved;

/// A refused attempt and when to retry.
#[derive(Debug)]
pub struct TooMany {
    pub retry_after: Duration,
}

impl From<TooMany> for ApiError {
    fn from(t: TooMany) -> Self {
        ApiError::too_many_attempts(t.retry_after)
    }
}

pub trait RateLimiter: Send + Sync {
    /// Counts one request under `key` against `per_minute` (0: unlimited).
    fn hit(&self, key: &str, per_minute: u32) -> Result<(), TooMany>;
}

/// GCRA per key: `per_minute` requests may arrive at once, then one every
/// `60 s / per_minute`. State is one instant per key, in sharded maps.
pub struct InProcessLimiter {
    shards: Vec<Mutex<HashMap<String, Instant>>>,
    origin: Instant,
}

impl Default for InProcessLimiter {
    fn default() -> Self {
        Self {
            shards: (0..16).map(|_| Mutex::new(HashMap::new())).collect(),
            origin: Instant::now(),
        }
    }
}

impl RateLimiter for InProcessLimiter {
    fn hit(&self, key: &str, per_minute: u32) -> Result<(), TooMany> {
        if per_minute == 0 {
            return Ok(());
        }
        let interval = Duration::from_secs(60) / per_minute;
        let burst = Duration::from_secs(60) - interval;
        let now = Instant::now();
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        let shard = &self.shards[(h.finish() % self.shards.len() as u64) as usize];
        let mut map = shard.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 50_000 {
            // Drop keys whose theoretical arrival time has passed: they are at rest.
            map.retain(|_, tat| *tat > now);
        }
        let tat = map.get(key).copied().unwrap_or(now).max(now);
        let allowed_at = tat.checked_sub(burst).unwrap_or(self.origin);
        if allowed_at > now {
            return Err(TooMany {
                retry_after: allowed_at - now,
            });
        }
        map.insert(key.to_string(), tat + interval);
        Ok(())
    }
}

/// Counts a request of `action` from the client against `per_minute`.
pub fn rate_limit(
    state: &DataState,
    resolved: &Resolved,
    client: &Client,
    action: &str,
    per_minute: u32,
) -> ApiResult<()> {
    let key = format!("{action}:{}:{}", resolved.project.id, client.ip_key());
    state.limiter.hit(&key, per_minute).map_err(ApiError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcra_allows_a_burst_then_paces() {
        let l = InProcessLimiter::default();
        for _ in 0..3 {
            l.hit("k", 3).unwrap();
        }
        let err = l.hit("k", 3).unwrap_err();
        assert!(
            err.retry_after > Duration::from_secs(19) && err.retry_after <= Duration::from_secs(20),
            "{err:?}"
        );
        // Other keys are independent; 0 disables.
        l.hit("other", 3).unwrap();
        for _ in 0..1000 {
            l.hit("free", 0).unwrap();
        }
    }
}
