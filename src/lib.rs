//! The `identity` binary's composition root: connects storage, prepares it
//! (migrations, roles, master key, first-start bootstrap) and serves the two
//! planes. `main.rs` is the CLI around it; the integration tests and the
//! benchmarks boot the same [`Server`] in-process.
#![forbid(unsafe_code)]

pub mod logging;

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use identity_control_plane::ControlState;
use identity_control_plane::dns::DnsVerifier;
use identity_data_plane::DataState;
use identity_shared::config::Config;
use identity_shared::crypto::MasterKey;
use identity_shared::db::{Backend, Db, DbError};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use identity_shared::config;

/// Which listeners a process serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plane {
    All,
    Data,
    Control,
}

impl Plane {
    fn data(self) -> bool {
        matches!(self, Plane::All | Plane::Data)
    }
    fn control(self) -> bool {
        matches!(self, Plane::All | Plane::Control)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("database: {0}")]
    Db(#[from] DbError),
    #[error("IDENTITY_MASTER_KEY: {0}")]
    MasterKey(String),
    #[error("IDENTITY_DNS_NAMESERVERS: {0}")]
    Dns(String),
    #[error("cannot listen on {addr}: {error}")]
    Listen {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("{0}")]
    Setup(String),
}

/// What a first start created and must show the operator once (printed by
/// the CLI; `Debug` shows no secret).
#[derive(Default)]
pub struct FirstStart {
    pub operator_token: Option<String>,
    pub default_project: Option<DefaultProject>,
}

impl std::fmt::Debug for FirstStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirstStart")
            .field(
                "operator_token",
                &self.operator_token.as_ref().map(|_| "[redacted]"),
            )
            .field("default_project", &self.default_project)
            .finish()
    }
}

pub struct DefaultProject {
    pub id: String,
    pub publishable_key: String,
    pub secret_key: String,
}

impl std::fmt::Debug for DefaultProject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DefaultProject")
            .field("id", &self.id)
            .field("publishable_key", &self.publishable_key)
            .field("secret_key", &"[redacted]")
            .finish()
    }
}

/// A running server. Dropping it does not stop it: call [`Server::shutdown`].
pub struct Server {
    pub public_addr: Option<SocketAddr>,
    pub admin_addr: Option<SocketAddr>,
    pub db: Db,
    pub first_start: FirstStart,
    pub config: Arc<Config>,
    pub data: Option<DataState>,
    pub control: Option<ControlState>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<std::io::Result<()>>>,
}

/// Connects to the configured database and brings its schema up to date
/// when the configuration allows it (always on SQLite, with
/// `IDENTITY_AUTO_MIGRATE` on Postgres). Refuses a schema that is behind.
pub async fn open_database(config: &Config) -> Result<Db, BootError> {
    let db = Db::connect(&config.database_url, config.db_max_connections).await?;
    if db.backend() == Backend::Sqlite || config.auto_migrate {
        db.migrate_up().await?;
    } else if !db.migrations_current().await? {
        return Err(BootError::Setup(
            "the database schema is not current: run `identity migrate up` or set IDENTITY_AUTO_MIGRATE=true".into(),
        ));
    }
    db.check_roles().await?;
    Ok(db)
}

/// The master key: configured, or (SQLite only) read from or generated into
/// a file beside the database, readable by its owner only. An in-memory
/// database gets a key that lives as long as the process.
pub fn load_master_key(config: &Config) -> Result<MasterKey, BootError> {
    if let Some(text) = config.master_key.as_ref().map(|k| k.expose()) {
        return MasterKey::parse(text).map_err(BootError::MasterKey);
    }
    let Some(path) = config.sqlite_master_key_path() else {
        if config.is_sqlite() {
            return MasterKey::parse(&MasterKey::generate_hex()).map_err(BootError::MasterKey);
        }
        return Err(BootError::MasterKey("is required with Postgres".into()));
    };
    read_or_create_key_file(&path)
}

fn read_or_create_key_file(path: &Path) -> Result<MasterKey, BootError> {
    match std::fs::read_to_string(path) {
        Ok(text) => MasterKey::parse(&text)
            .map_err(|e| BootError::MasterKey(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let hex = MasterKey::generate_hex();
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(path).map_err(|e| {
                BootError::MasterKey(format!("cannot create {}: {e}", path.display()))
            })?;
            file.write_all(hex.as_bytes())
                .and_then(|_| file.sync_all())
                .map_err(|e| {
                    BootError::MasterKey(format!("cannot write {}: {e}", path.display()))
                })?;
            tracing::warn!(path = %path.display(), "generated a master key beside the database; back it up with the database");
            MasterKey::parse(&hex).map_err(BootError::MasterKey)
        }
        Err(e) => Err(BootError::MasterKey(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

impl Server {
    /// Prepares storage and binds the listeners of `plane`.
    pub async fn start(config: Config, plane: Plane) -> Result<Server, BootError> {
        let config = Arc::new(config);
        let db = open_database(&config).await?;
        let master_key = Arc::new(load_master_key(&config)?);

        let mut first_start = FirstStart::default();
        let control = if plane.control() {
            let dns = DnsVerifier::new(&config.dns_nameservers)
                .map_err(|e| BootError::Dns(e.to_string()))?;
            let state = ControlState {
                db: db.clone(),
                master_key: master_key.clone(),
                dns: Arc::new(dns),
                config: config.clone(),
            };
            first_start.operator_token = identity_control_plane::auth::bootstrap_operator_token(
                &db,
                config.admin_token.as_ref().map(|t| t.expose().as_str()),
            )
            .await?;
            if plane == Plane::All && db.backend() == Backend::Sqlite {
                first_start.default_project = create_default_project(&state).await?;
            }
            Some(state)
        } else {
            None
        };
        let data = if plane.data() {
            // One database today: it is the control plane and shard `default`.
            let shards = HashMap::from([("default".to_string(), db.clone())]);
            let state = DataState::new(
                db.clone(),
                shards.clone(),
                config.clone(),
                master_key.clone(),
            )
            .map_err(BootError::Setup)?;
            // Serve only once other nodes' invalidations reach this one.
            for shard in shards.values() {
                if !shard.listening(std::time::Duration::from_secs(10)).await {
                    tracing::warn!(
                        "invalidation listener not ready after 10 s; caches clear when it connects"
                    );
                }
            }
            state.outbox.spawn(shards.values().cloned().collect());
            identity_data_plane::workers::sweeper::spawn(
                shards.into_values().collect(),
                std::time::Duration::from_secs(60),
            );
            Some(state)
        } else {
            None
        };

        let (stop, _) = watch::channel(false);
        let mut tasks = Vec::new();
        let bind = |addr: SocketAddr, router: axum::Router| {
            let stop = stop.subscribe();
            async move {
                let listener = TcpListener::bind(addr)
                    .await
                    .map_err(|error| BootError::Listen { addr, error })?;
                let bound = listener
                    .local_addr()
                    .map_err(|error| BootError::Listen { addr, error })?;
                let task = tokio::spawn(serve(listener, router, stop));
                Ok::<_, BootError>((bound, task))
            }
        };
        let public_addr = match &data {
            Some(state) => {
                let (addr, task) = bind(
                    config.public_addr,
                    identity_data_plane::router(state.clone()),
                )
                .await?;
                tasks.push(task);
                Some(addr)
            }
            None => None,
        };
        let admin_addr = match &control {
            Some(state) => {
                let mut router = identity_control_plane::router(state.clone());
                // The data plane's metrics, on the private listener.
                if let Some(data) = &data {
                    let data = data.clone();
                    router = router.route(
                        "/metrics",
                        axum::routing::get(move || {
                            let data = data.clone();
                            async move {
                                (
                                    [(
                                        axum::http::header::CONTENT_TYPE,
                                        "text/plain; version=0.0.4",
                                    )],
                                    identity_data_plane::metrics::render(&data).await,
                                )
                            }
                        }),
                    );
                }
                let (addr, task) = bind(config.admin_addr, router).await?;
                tasks.push(task);
                Some(addr)
            }
            None => None,
        };
        tracing::info!(?public_addr, ?admin_addr, backend = ?db.backend(), "identity serving");
        Ok(Server {
            public_addr,
            admin_addr,
            db,
            first_start,
            config,
            data,
            control,
            stop,
            tasks,
        })
    }

    /// Stops accepting, lets requests in flight finish, closes the pools.
    pub async fn shutdown(self) {
        if let Some(data) = &self.data {
            data.outbox.drain().await;
        }
        let _ = self.stop.send(true);
        for task in self.tasks {
            match task.await {
                Ok(Err(e)) => tracing::error!(error = %e, "listener failed"),
                Err(e) => tracing::error!(error = %e, "listener task failed"),
                Ok(Ok(())) => {}
            }
        }
        self.db.close().await;
    }
}

async fn serve(
    listener: TcpListener,
    router: axum::Router,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    })
    .await
}

/// On a fresh embedded database, a project to start with.
async fn create_default_project(state: &ControlState) -> Result<Option<DefaultProject>, BootError> {
    use identity_shared::schema::Projects;
    use sea_query::Query;
    let mut tx = state.db.control().await?;
    let any: Option<(String,)> = tx
        .fetch_optional(
            Query::select()
                .column(Projects::Id)
                .from(Projects::Table)
                .limit(1),
        )
        .await?;
    tx.commit().await?;
    if any.is_some() {
        return Ok(None);
    }
    let created = identity_control_plane::projects::create_project(state, "Default project")
        .await
        .map_err(|e| BootError::Setup(format!("cannot create the default project: {e}")))?;
    Ok(Some(DefaultProject {
        id: created.project.id,
        publishable_key: created.publishable_key,
        secret_key: created.secret_key,
    }))
}

/// A URL a person on this machine can use to reach `addr`.
pub fn local_url(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("http://localhost:{}", addr.port())
    } else {
        format!("http://{addr}")
    }
}
