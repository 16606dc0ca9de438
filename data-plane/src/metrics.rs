//! `GET /metrics` (Prometheus text, served on the admin listener by the
//! binary when this node runs the data plane): the outbox by channel, kind
//! and status (from the databases), and this node's delivery outcomes.

use std::fmt::Write as _;

use crate::DataState;
use crate::store::outbox;

pub async fn render(state: &DataState) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP identity_outbox_messages Messages in the outbox, by channel, kind and status (queued, sent, dead).\n# TYPE identity_outbox_messages gauge"
    );
    let mut totals = std::collections::BTreeMap::<(String, String, String), i64>::new();
    let mut reachable = 1;
    for db in state.shards.values() {
        // A slow database costs a scrape two seconds, not the scraper's
        // patience.
        let counted = tokio::time::timeout(std::time::Duration::from_secs(2), async {
            let mut tx = db.control_read().await?;
            let rows = outbox::totals(&mut tx).await?;
            tx.commit().await?;
            Ok::<_, identity_shared::db::DbError>(rows)
        })
        .await;
        match counted {
            Ok(Ok(rows)) => {
                for (channel, kind, status, n) in rows {
                    *totals.entry((channel, kind, status)).or_default() += n;
                }
            }
            _ => reachable = 0,
        }
    }
    for ((channel, kind, status), n) in totals {
        let _ = writeln!(
            out,
            "identity_outbox_messages{{channel=\"{channel}\",kind=\"{kind}\",status=\"{status}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP identity_outbox_deliveries_total Delivery outcomes on this node since it started (sent, retried, dead).\n# TYPE identity_outbox_deliveries_total counter"
    );
    for ((channel, kind, outcome), n) in state.outbox.counters() {
        let _ = writeln!(
            out,
            "identity_outbox_deliveries_total{{channel=\"{channel}\",kind=\"{kind}\",outcome=\"{outcome}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP identity_metrics_databases_reachable Whether every data-plane database answered this scrape.\n# TYPE identity_metrics_databases_reachable gauge\nidentity_metrics_databases_reachable {reachable}"
    );
    out
}
