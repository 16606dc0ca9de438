//! Storage: one code path for Postgres and SQLite.
//!
//! SQL is built with sea-query, bound with sea-query-sqlx and decoded with
//! `derive(FromRow)` into portable types. All work runs in a transaction
//! opened by [`Db::scope`] (one project, data-plane role, RLS applies) or
//! [`Db::control`] (control-plane role, every project).

use std::str::FromStr;
use std::time::Duration;

use sea_query::{PostgresQueryBuilder, SelectStatement, SqliteQueryBuilder};
use sea_query_sqlx::{SqlxBinder, SqlxValues};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, FromRow, Postgres, Sqlite, Transaction};

use crate::invalidation::{CHANNEL, Invalidation, InvalidationBus};

mod listener;
mod migrate;

/// The Postgres role data-plane transactions switch to; it must not bypass RLS.
pub const APP_ROLE: &str = "identity_app";
/// The Postgres role control-plane transactions switch to; its policies see every project.
pub const CONTROL_ROLE: &str = "identity_control";

static PG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");
static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

/// How often a node's invalidation listener must hear its own heartbeat.
const HEARTBEAT: Duration = Duration::from_secs(2);

/// How long a request waits for a Postgres connection before answering 503.
pub const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_millis(1500);

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("unique constraint violated: {0}")]
    UniqueViolation(String),
    #[error("the database refused a value: {0}")]
    BadInput(String),
    #[error("database error: {0}")]
    Sqlx(sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Setup(String),
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                DbError::UniqueViolation(d.constraint().unwrap_or_default().to_string())
            }
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                DbError::Unavailable(e.to_string())
            }
            // Connection exceptions (08), operator intervention (57P:
            // shutdown, crash recovery), a read-only standby after failover
            // (25006), serialization failures (40001): retry later.
            sqlx::Error::Database(d)
                if d.code().is_some_and(|c| {
                    c.starts_with("08") || c.starts_with("57P") || c == "25006" || c == "40001"
                }) =>
            {
                DbError::Unavailable(e.to_string())
            }
            // Data exceptions (22: a NUL byte in text, a value out of range)
            // come from input: a 400, not a 500.
            sqlx::Error::Database(d) if d.code().is_some_and(|c| c.starts_with("22")) => {
                DbError::BadInput(d.message().to_string())
            }
            _ => DbError::Sqlx(e),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

#[derive(Clone)]
enum Pool {
    Pg(PgPool),
    Lite(LitePools),
}

/// SQLite's connections: any number of readers, one writer.
#[derive(Clone)]
struct LitePools {
    read: SqlitePool,
    write: SqlitePool,
}

/// A handle on one database (one shard). Cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    bus: InvalidationBus,
    /// True once this node's LISTEN is in place (always true on SQLite).
    listening: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
}

#[derive(Debug, Clone)]
pub struct MigrationStatus {
    pub version: i64,
    pub description: String,
    pub applied: bool,
}

impl Db {
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, DbError> {
        let pool = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            let in_memory = url.contains(":memory:");
            let pool_options = |max_connections: u32| {
                SqlitePoolOptions::new()
                    // An in-memory database lives as long as its one connection.
                    .max_connections(if in_memory { 1 } else { max_connections })
                    .min_connections(if in_memory { 1 } else { 0 })
                    .idle_timeout(if in_memory {
                        None
                    } else {
                        Some(Duration::from_secs(600))
                    })
                    .max_lifetime(if in_memory {
                        None
                    } else {
                        Some(Duration::from_secs(1800))
                    })
                    .acquire_timeout(Duration::from_secs(10))
            };
            let read = pool_options(max_connections)
                .connect_with(options.clone())
                .await?;
            // SQLite runs one writer at a time: writers queue for one
            // connection here instead of polling the database's lock. That
            // connection's page cache also stays warm, where a pool of
            // writers would each find theirs discarded after every write
            // of another.
            let write = if in_memory {
                read.clone()
            } else {
                pool_options(1).connect_with(options).await?
            };
            Pool::Lite(LitePools { read, write })
        } else {
            let options = PgConnectOptions::from_str(url)?.application_name("identity");
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                // Fail fast when the database is down: requests answer 503
                // within this bound instead of waiting out the outage.
                .acquire_timeout(PG_ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await?;
            Pool::Pg(pool)
        };
        let listening = tokio::sync::watch::Sender::new(matches!(pool, Pool::Lite(_)));
        Ok(Self {
            pool,
            bus: InvalidationBus::new(),
            listening: std::sync::Arc::new(listening),
        })
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Pg(_) => Backend::Postgres,
            Pool::Lite(_) => Backend::Sqlite,
        }
    }

    /// The Postgres pool, for the few callers that need Postgres itself
    /// (LISTEN, tests that prove RLS).
    pub fn pg_pool(&self) -> Option<&PgPool> {
        match &self.pool {
            Pool::Pg(p) => Some(p),
            Pool::Lite(_) => None,
        }
    }

    pub fn invalidations(&self) -> &InvalidationBus {
        &self.bus
    }

    /// A transaction scoped to one project: on Postgres it runs as the
    /// data-plane role with `app.project_id` set, so RLS applies whatever
    /// role the server connected as.
    pub async fn scope(&self, project_id: &str) -> Result<Tx<Write>, DbError> {
        self.open(APP_ROLE, project_id, true).await
    }

    /// As [`Db::scope`], for work that only reads: on SQLite it does not
    /// take the write lock, so readers run beside writers (WAL). Its type
    /// has no write methods, so a write inside it does not compile.
    pub async fn scope_read(&self, project_id: &str) -> Result<Tx<Read>, DbError> {
        self.open(APP_ROLE, project_id, false).await
    }

    /// A control-plane transaction: sees every project.
    pub async fn control(&self) -> Result<Tx<Write>, DbError> {
        self.open(CONTROL_ROLE, "", true).await
    }

    /// A read-only control-plane transaction (see [`Db::scope_read`]).
    pub async fn control_read(&self) -> Result<Tx<Read>, DbError> {
        self.open(CONTROL_ROLE, "", false).await
    }

    async fn open<M>(
        &self,
        role: &'static str,
        project_id: &str,
        writes: bool,
    ) -> Result<Tx<M>, DbError> {
        let inner = match &self.pool {
            Pool::Pg(pool) => {
                let begin = if writes { "BEGIN" } else { "BEGIN READ ONLY" };
                // Ids are [A-Za-z0-9_]: then the role switch and the project
                // travel in the BEGIN itself, one round trip instead of two
                // for every transaction. Anything else goes bound.
                let plain = project_id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_');
                let begun = if plain {
                    // Safe: `role` is one of two constants, `project_id` was
                    // just checked to hold no quote or other syntax.
                    pool.begin_with(AssertSqlSafe(format!(
                        "{begin}; SELECT set_config('role', '{role}', true), \
                         set_config('app.project_id', '{project_id}', true)"
                    )))
                    .await
                } else {
                    pool.begin_with(begin).await
                };
                // Not getting a connection is an outage, whatever the
                // driver's reason (refused, reset, a broken handshake).
                let mut tx = begun.map_err(|e| match DbError::from(e) {
                    DbError::Sqlx(e) => DbError::Unavailable(e.to_string()),
                    other => other,
                })?;
                if !plain {
                    // One statement: the role switch and the project travel together.
                    sqlx::query(
                        "SELECT set_config('role', $1, true), set_config('app.project_id', $2, true)",
                    )
                    .bind(role)
                    .bind(project_id)
                    .execute(&mut *tx)
                    .await?;
                }
                TxInner::Pg(tx)
            }
            // Writers take the lock up front so two of them queue instead of
            // failing when a read lock would have to be upgraded.
            Pool::Lite(pools) if writes => {
                TxInner::Lite(pools.write.begin_with("BEGIN IMMEDIATE").await?)
            }
            Pool::Lite(pools) => TxInner::Lite(pools.read.begin().await?),
        };
        Ok(Tx {
            inner,
            bus: self.bus.clone(),
            pending: Vec::new(),
            deferred: None,
            mode: std::marker::PhantomData,
        })
    }

    pub async fn ping(&self) -> Result<(), DbError> {
        match &self.pool {
            Pool::Pg(p) => sqlx::query("SELECT 1").execute(p).await?,
            Pool::Lite(p) => {
                sqlx::query("SELECT 1").execute(&p.read).await?;
                return Ok(());
            }
        };
        Ok(())
    }

    pub fn is_closed(&self) -> bool {
        match &self.pool {
            Pool::Pg(p) => p.is_closed(),
            Pool::Lite(p) => p.read.is_closed() || p.write.is_closed(),
        }
    }

    pub async fn close(&self) {
        match &self.pool {
            Pool::Pg(p) => p.close().await,
            Pool::Lite(p) => {
                p.write.close().await;
                p.read.close().await;
            }
        }
    }
}

enum TxInner {
    Pg(Transaction<'static, Postgres>),
    Lite(Transaction<'static, Sqlite>),
}

/// The mode of a transaction that may write.
pub enum Write {}
/// The mode of a read-only transaction: it has no write methods.
pub enum Read {}

/// An open transaction (project-scoped or control), read-only or writing
/// by its type. Dropping it rolls back.
pub struct Tx<M = Write> {
    inner: TxInner,
    bus: InvalidationBus,
    pending: Vec<Invalidation>,
    /// SQLite: writes queued by [`Tx::defer`], sent as one batch before the
    /// transaction's next statement or its commit.
    deferred: Option<(String, sea_query::Values)>,
    mode: std::marker::PhantomData<M>,
}

/// Rows decodable from both backends.
pub trait Row: for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow> + Send + Unpin {}
impl<T> Row for T where T: for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow> + Send + Unpin
{}

macro_rules! run {
    ($self:ident, $stmt:ident, |$sql:ident, $values:ident, $conn:ident| $body:expr) => {
        match &mut $self.inner {
            TxInner::Pg(tx) => {
                let ($sql, $values) = $stmt.build_sqlx(PostgresQueryBuilder);
                let $conn = &mut **tx;
                $body
            }
            TxInner::Lite(tx) => {
                let ($sql, $values) = $stmt.build_sqlx(SqliteQueryBuilder);
                let $conn = &mut **tx;
                $body
            }
        }
    };
}

impl<M> Tx<M> {
    /// Sends the writes [`Tx::defer`] queued: SQLite runs the statements of
    /// one string in order, taking the bound values in turn (sea-query
    /// writes SQLite placeholders as a bare `?`), so the batch is one call
    /// to the connection's thread instead of one per statement.
    async fn flush(&mut self) -> Result<(), DbError> {
        let (Some((sql, values)), TxInner::Lite(tx)) = (self.deferred.take(), &mut self.inner)
        else {
            return Ok(());
        };
        sqlx::query_with(AssertSqlSafe(sql), SqlxValues(values))
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        match self.inner {
            TxInner::Pg(_) => Backend::Postgres,
            TxInner::Lite(_) => Backend::Sqlite,
        }
    }

    /// Rows of a `SELECT` (only selects: a read-only transaction cannot
    /// be handed a write).
    pub async fn fetch_all<T: Row>(&mut self, stmt: &SelectStatement) -> Result<Vec<T>, DbError> {
        self.flush().await?;
        Ok(run!(self, stmt, |sql, values, conn| sqlx::query_as_with(
            AssertSqlSafe(sql),
            values
        )
        .fetch_all(conn)
        .await?))
    }

    pub async fn fetch_optional<T: Row>(
        &mut self,
        stmt: &SelectStatement,
    ) -> Result<Option<T>, DbError> {
        self.flush().await?;
        Ok(run!(self, stmt, |sql, values, conn| sqlx::query_as_with(
            AssertSqlSafe(sql),
            values
        )
        .fetch_optional(conn)
        .await?))
    }

    /// The raw Postgres connection of this transaction (tests prove RLS with it).
    pub fn pg_conn(&mut self) -> Option<&mut sqlx::PgConnection> {
        match &mut self.inner {
            TxInner::Pg(tx) => Some(&mut **tx),
            TxInner::Lite(_) => None,
        }
    }

    /// Ends a read-only transaction.
    pub async fn commit(mut self) -> Result<(), DbError> {
        self.flush().await?;
        let Tx {
            inner,
            bus,
            pending,
            ..
        } = self;
        let has_pending = !pending.is_empty();
        let finish = async move {
            let committed = match inner {
                TxInner::Pg(tx) => tx.commit().await,
                TxInner::Lite(tx) => tx.commit().await,
            };
            // Postgres delivers its NOTIFYs to every node; this node skips
            // its own echo, so it applies its messages here, whether or not
            // the commit's answer arrived (a lost answer may hide a commit).
            for message in pending {
                bus.publish(message).await;
            }
            committed.map_err(DbError::from)
        };
        if !has_pending {
            return finish.await;
        }
        // With invalidations to apply, commit and publish in a task of their
        // own: a request dropped mid-commit cannot split the two.
        tokio::spawn(finish)
            .await
            .unwrap_or_else(|e| Err(DbError::Setup(format!("commit task: {e}"))))
    }
}

impl Tx<Write> {
    /// Serialises this transaction with every other one that locks the same
    /// `key` until it ends (Postgres: a transaction-level advisory lock;
    /// SQLite: writers already run one at a time).
    pub async fn lock_key(&mut self, key: &str) -> Result<(), DbError> {
        if let TxInner::Pg(tx) = &mut self.inner {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                .bind(key)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Runs a write with a `RETURNING` clause; returns the rows it returned.
    pub async fn returning<T: Row>(&mut self, stmt: &impl SqlxBinder) -> Result<Vec<T>, DbError> {
        self.flush().await?;
        Ok(run!(self, stmt, |sql, values, conn| sqlx::query_as_with(
            AssertSqlSafe(sql),
            values
        )
        .fetch_all(conn)
        .await?))
    }

    /// Runs a statement; returns the number of rows it touched.
    pub async fn execute(&mut self, stmt: &impl SqlxBinder) -> Result<u64, DbError> {
        self.flush().await?;
        Ok(run!(self, stmt, |sql, values, conn| sqlx::query_with(
            AssertSqlSafe(sql),
            values
        )
        .execute(conn)
        .await?
        .rows_affected()))
    }

    /// Runs a write whose result nobody reads and whose failure can only
    /// fail the transaction (no constraint the caller handles). On SQLite it
    /// is queued and sent with the other queued writes, in order, before
    /// the transaction's next statement or its commit: one call to the
    /// connection's thread for all of them (each call wakes that thread and
    /// then this task). Its error, if any, comes from that next call. On
    /// Postgres it runs at once.
    pub async fn defer(&mut self, stmt: &impl SqlxBinder) -> Result<(), DbError> {
        if let TxInner::Pg(_) = self.inner {
            return self.execute(stmt).await.map(drop);
        }
        let (sql, values) = stmt.build_sqlx(SqliteQueryBuilder);
        match &mut self.deferred {
            Some((queued, queued_values)) => {
                queued.push_str(";\n");
                queued.push_str(&sql);
                queued_values.0.extend(values.0.0);
            }
            None => self.deferred = Some((sql, values.0)),
        }
        Ok(())
    }

    /// Queues a cache invalidation for this node only, at commit (for
    /// changes other nodes may see late: last-seen facts, not revocations).
    pub fn invalidate_local(&mut self, message: Invalidation) {
        self.pending.push(message);
    }

    /// Queues a cache invalidation that takes effect when this transaction commits.
    pub async fn invalidate(&mut self, message: Invalidation) -> Result<(), DbError> {
        if let TxInner::Pg(tx) = &mut self.inner {
            // NOTIFY payloads are capped at 8000 bytes: long session lists travel in parts.
            let parts = match &message {
                Invalidation::Sessions(ids) if ids.len() > 100 => ids
                    .chunks(100)
                    .map(|c| Invalidation::Sessions(c.to_vec()))
                    .collect(),
                other => vec![other.clone()],
            };
            for part in parts {
                let envelope = crate::invalidation::Envelope {
                    node: self.bus.node().to_string(),
                    message: part,
                };
                let payload = serde_json::to_string(&envelope).unwrap_or_default();
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(CHANNEL)
                    .bind(payload)
                    .execute(&mut **tx)
                    .await?;
            }
        }
        self.pending.push(message);
        Ok(())
    }
}
