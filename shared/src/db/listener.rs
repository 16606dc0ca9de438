//! Invalidations between nodes: every node LISTENs on the database, hears
//! its own heartbeat to know the connection is alive, and tells its caches
//! how fresh they are.

use super::*;

impl Db {
    /// Waits until invalidations from other nodes arrive here (the first
    /// LISTEN is in place), up to `limit`; false if that did not happen. A
    /// node that serves before it listens could cache what another node
    /// changes meanwhile.
    pub async fn listening(&self, limit: Duration) -> bool {
        let mut rx = self.listening.subscribe();
        tokio::time::timeout(limit, rx.wait_for(|ready| *ready))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// On Postgres, forwards `NOTIFY identity_invalidate` from every node into
    /// this process's bus. After a lost connection it clears everything, since
    /// messages sent meanwhile are gone.
    pub fn spawn_invalidation_listener(&self) {
        let Pool::Pg(pool) = &self.pool else { return };
        let pool = pool.clone();
        let bus = self.bus.clone();
        let listening = self.listening.clone();
        // Heartbeat: a NOTIFY every 2 s that this node's own listener must
        // hear. A connection that died silently (half-open TCP, no RST)
        // delivers nothing, and the listener gives up on it after 6 s.
        {
            let pool = pool.clone();
            let node = bus.node().to_string();
            tokio::spawn(async move {
                let payload = serde_json::to_string(&crate::invalidation::Envelope {
                    node,
                    message: Invalidation::Heartbeat,
                })
                .unwrap_or_default();
                while !pool.is_closed() {
                    let _ = tokio::time::timeout(
                        Duration::from_secs(2),
                        sqlx::query("SELECT pg_notify($1, $2)")
                            .bind(CHANNEL)
                            .bind(&payload)
                            .execute(&pool),
                    )
                    .await;
                    tokio::time::sleep(HEARTBEAT).await;
                }
            });
        }
        tokio::spawn(async move {
            let freshness = bus.freshness();
            loop {
                match sqlx::postgres::PgListener::connect_with(&pool).await {
                    Ok(mut listener) => {
                        if let Err(e) = listener.listen(CHANNEL).await {
                            tracing::warn!(error = %e, "LISTEN failed");
                        } else {
                            // Messages sent while this node was not
                            // listening are gone: start from empty caches.
                            bus.publish(Invalidation::All).await;
                            freshness.restored();
                            listening.send_replace(true);
                            loop {
                                let Ok(received) =
                                    tokio::time::timeout(HEARTBEAT * 3, listener.try_recv()).await
                                else {
                                    tracing::warn!(
                                        "invalidation listener heard nothing, not even its heartbeat"
                                    );
                                    break;
                                };
                                match received {
                                    Ok(Some(n)) => {
                                        match serde_json::from_str::<crate::invalidation::Envelope>(
                                            n.payload(),
                                        ) {
                                            // Applied already, at its commit.
                                            Ok(e) if e.node == bus.node() => {}
                                            Ok(e) if e.message == Invalidation::Heartbeat => {}
                                            Ok(e) => bus.publish(e.message).await,
                                            Err(_) => bus.publish(Invalidation::All).await,
                                        }
                                    }
                                    // The connection is gone: reconnect below,
                                    // and LISTEN again before trusting caches.
                                    Ok(None) => {
                                        tracing::warn!("invalidation listener lost the database");
                                        break;
                                    }
                                    Err(e) => {
                                        tracing::warn!(error = %e, "invalidation listener failed");
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    Err(sqlx::Error::PoolClosed) => return,
                    Err(e) => tracing::warn!(error = %e, "invalidation listener cannot connect"),
                }
                if pool.is_closed() {
                    return;
                }
                // Cached answers stay usable for a bounded staleness.
                freshness.lost();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
    }
}
