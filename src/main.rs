//! `identity`: the command line. `serve` runs the planes; the other commands
//! manage the database and projects without a running server.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use identity::config::Config;
use identity::{Plane, Server, local_url};

#[derive(Parser)]
#[command(
    name = "identity",
    version,
    about = "Multi-tenant authentication and user management"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the data plane (public listener) and/or the control plane (admin listener).
    Serve {
        #[arg(long, value_enum, default_value_t = PlaneArg::All)]
        plane: PlaneArg,
    },
    /// Apply, revert or list the embedded database migrations.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Manage projects without the admin API.
    Project {
        #[command(subcommand)]
        action: ProjectAction,
    },
    /// Signing keys.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Operator tokens of the admin API.
    OperatorToken {
        #[command(subcommand)]
        action: OperatorTokenAction,
    },
    /// Check this deployment against the production checklist.
    Doctor,
}

#[derive(Subcommand)]
enum OperatorTokenAction {
    /// Create a token; prints its value once.
    Create {
        #[arg(long)]
        name: String,
    },
    /// List tokens (never their values).
    List,
    /// Revoke a token at once.
    Revoke { id: String },
}

#[derive(Clone, Copy, ValueEnum)]
enum PlaneArg {
    All,
    Data,
    Control,
}

#[derive(Subcommand)]
enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// Revert the newest applied migration.
    Down,
    /// List migrations and whether each is applied.
    Status,
}

#[derive(Subcommand)]
enum ProjectAction {
    /// Create a project; prints its keys (the secret key only this once).
    Create {
        #[arg(long)]
        name: String,
    },
    /// List projects.
    List,
}

#[derive(Subcommand)]
enum KeysAction {
    /// Rotate a project's signing key; the old key stays published until its tokens expire.
    Rotate {
        #[arg(long)]
        project: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("identity: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let logs = identity::logging::init(config.log_format);
    let result = match cli.command {
        Command::Serve { plane } => serve(config, plane).await,
        Command::Migrate { action } => migrate(config, action).await,
        Command::Project { action } => project(config, action).await,
        Command::Keys { action } => keys(config, action).await,
        Command::OperatorToken { action } => operator_token(config, action).await,
        Command::Doctor => commands::doctor(config).await,
    };
    logs.flush(std::time::Duration::from_secs(2));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("identity: {e}");
            ExitCode::FAILURE
        }
    }
}

type CmdResult = Result<ExitCode, Box<dyn std::error::Error>>;

async fn serve(config: Config, plane: PlaneArg) -> CmdResult {
    let plane = match plane {
        PlaneArg::All => Plane::All,
        PlaneArg::Data => Plane::Data,
        PlaneArg::Control => Plane::Control,
    };
    let server = Server::start(config, plane).await?;
    print_first_start(&server);
    shutdown_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

fn print_first_start(server: &Server) {
    let fs = &server.first_start;
    if fs.operator_token.is_none() && fs.default_project.is_none() {
        return;
    }
    println!("\n=== identity: first start (shown once, store these now) ===");
    if let Some(token) = &fs.operator_token {
        println!("Operator token: {token}");
        if let Some(addr) = server.admin_addr {
            println!(
                "  curl -s {}/v1/projects -H 'Authorization: Bearer {token}'",
                local_url(addr)
            );
        }
    }
    if let Some(p) = &fs.default_project {
        println!("Default project: {}", p.id);
        println!("  publishable key: {}", p.publishable_key);
        println!("  secret key:      {}", p.secret_key);
        if let Some(addr) = server.public_addr {
            println!(
                "  curl -s {}/.well-known/openid-configuration -H 'X-Project-Key: {}'",
                local_url(addr),
                p.publishable_key
            );
        }
    }
    println!("=============================================================\n");
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM");
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

async fn migrate(config: Config, action: MigrateAction) -> CmdResult {
    let db = identity_shared::db::Db::connect(&config.database_url, 2).await?;
    match action {
        MigrateAction::Up => {
            db.migrate_up().await?;
            db.check_roles().await?;
            println!("migrations applied");
        }
        MigrateAction::Down => match db.migrate_down().await? {
            Some(v) => println!("reverted migration {v}"),
            None => println!("no migration to revert"),
        },
        MigrateAction::Status => {
            for m in db.migration_status().await? {
                println!(
                    "{:>4}  {:<8}  {}",
                    m.version,
                    if m.applied { "applied" } else { "pending" },
                    m.description
                );
            }
        }
    }
    db.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn project(config: Config, action: ProjectAction) -> CmdResult {
    let state = commands::control_state(config).await?;
    match action {
        ProjectAction::Create { name } => {
            let created = identity_control_plane::projects::create_project(&state, &name).await?;
            println!("project:         {}", created.project.id);
            println!("publishable key: {}", created.publishable_key);
            println!("secret key:      {}", created.secret_key);
        }
        ProjectAction::List => {
            for p in identity_control_plane::projects::list_all(&state.db).await? {
                println!("{}  {:<9}  {}", p.id, p.status, p.name);
            }
        }
    }
    state.db.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn operator_token(config: Config, action: OperatorTokenAction) -> CmdResult {
    use identity_control_plane::auth;
    let db = identity::open_database(&config).await?;
    match action {
        OperatorTokenAction::Create { name } => {
            let (token, value) = auth::create_token(&db, &name, "cli").await?;
            println!("operator token: {}", token.id);
            println!("value:          {value}");
        }
        OperatorTokenAction::List => {
            for t in auth::list_tokens(&db).await? {
                println!(
                    "{}  {:<9}  created {}  last used {}  {}",
                    t.id,
                    t.source,
                    t.created_at,
                    t.last_used_at.as_deref().unwrap_or("never"),
                    t.name
                );
            }
        }
        OperatorTokenAction::Revoke { id } => {
            auth::revoke_token(&db, &id).await?;
            println!("revoked {id}");
        }
    }
    db.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn keys(config: Config, action: KeysAction) -> CmdResult {
    let state = commands::control_state(config).await?;
    match action {
        KeysAction::Rotate { project } => {
            let kid =
                identity_control_plane::signing_keys::rotate_project(&state, &project).await?;
            println!("new signing key: {kid}");
        }
    }
    state.db.close().await;
    Ok(ExitCode::SUCCESS)
}

mod commands {
    use std::process::ExitCode;
    use std::sync::Arc;

    use identity::config::Config;
    use identity_control_plane::ControlState;
    use identity_control_plane::dns::DnsVerifier;

    use super::CmdResult;

    pub async fn control_state(config: Config) -> Result<ControlState, Box<dyn std::error::Error>> {
        let db = identity::open_database(&config).await?;
        let master_key = Arc::new(identity::load_master_key(&config)?);
        Ok(ControlState {
            db,
            master_key,
            dns: Arc::new(DnsVerifier::new(&config.dns_nameservers)?),
            config: Arc::new(config),
        })
    }

    /// Dead messages, and when the oldest undelivered one was written.
    async fn outbox_health(
        db: &identity_shared::db::Db,
    ) -> Result<(i64, Option<i64>), identity_shared::db::DbError> {
        use identity_data_plane::store::outbox;
        let mut tx = db.control_read().await?;
        let dead = outbox::totals(&mut tx)
            .await?
            .into_iter()
            .filter(|(_, _, status, _)| status == outbox::DEAD)
            .map(|(_, _, _, n)| n)
            .sum();
        let oldest = outbox::oldest_queued(&mut tx).await?;
        tx.commit().await?;
        Ok((dead, oldest))
    }

    /// Each check prints `ok`, `warn` or `FAIL`; any FAIL makes the exit code 1.
    pub async fn doctor(config: Config) -> CmdResult {
        let mut failed = false;
        let mut report = |ok: Option<bool>, what: &str| {
            let tag = match ok {
                Some(true) => "ok  ",
                Some(false) => {
                    failed = true;
                    "FAIL"
                }
                None => "warn",
            };
            println!("[{tag}] {what}");
        };
        let sqlite = config.is_sqlite();
        report(
            if sqlite { None } else { Some(true) },
            if sqlite {
                "database: SQLite serves one node; use Postgres for several replicas"
            } else {
                "database: Postgres"
            },
        );
        if !sqlite {
            let tls = [
                "sslmode=require",
                "sslmode=verify-ca",
                "sslmode=verify-full",
            ]
            .iter()
            .any(|m| config.database_url.contains(m));
            report(
                Some(tls),
                "database DSN requires TLS (sslmode=require, verify-ca or verify-full)",
            );
        }
        report(
            Some(config.master_key.is_some()),
            "IDENTITY_MASTER_KEY is set (not a key file beside the database)",
        );
        report(
            Some(
                config
                    .admin_token
                    .as_ref()
                    .is_some_and(|t| t.expose().len() >= 32),
            ),
            "IDENTITY_ADMIN_TOKEN is set and at least 32 characters",
        );
        report(
            Some(!config.dev_mode),
            "IDENTITY_DEV_MODE is off (cookies are Secure)",
        );
        report(
            Some(config.public_base_url.starts_with("https://")),
            "IDENTITY_PUBLIC_BASE_URL is https://",
        );
        report(
            Some(config.admin_addr.ip().is_loopback()),
            "the admin listener is bound to loopback (or put it behind a private network)",
        );
        match &config.smtp {
            Some(smtp) => {
                let reachable = identity_data_plane::workers::outbox::smtp_reachable(smtp).await;
                if let Err(e) = &reachable {
                    println!("       {e}");
                }
                report(
                    Some(reachable.is_ok()),
                    "the SMTP server of IDENTITY_SMTP_URL accepts a connection",
                );
            }
            None => report(
                None,
                "IDENTITY_SMTP_URL is not set: email flows answer 503 email_not_configured \
                 (dev mode logs emails instead)",
            ),
        }
        if config.sms.is_none() {
            report(
                None,
                "IDENTITY_SMS_WEBHOOK_URL is not set: phone flows answer 503 sms_not_configured",
            );
        }
        match identity_shared::db::Db::connect(&config.database_url, 1).await {
            Ok(db) => {
                match outbox_health(&db).await {
                    Ok((dead, oldest)) => {
                        report(
                            (dead == 0).then_some(true),
                            &format!(
                                "outbox: {dead} dead message(s) (GET /v1/messages?status=dead lists a project's)"
                            ),
                        );
                        let stuck = oldest.is_some_and(|at| {
                            identity_shared::time::now_ms() - at > 15 * 60 * 1000
                        });
                        report(
                            (!stuck).then_some(true),
                            "outbox: no message has waited more than 15 minutes for delivery",
                        );
                    }
                    Err(e) => println!("       outbox: {e}"),
                }
                report(Some(db.ping().await.is_ok()), "database reachable");
                report(
                    Some(db.migrations_current().await.unwrap_or(false)),
                    "migrations current",
                );
                use identity_shared::observations;
                let week_ms = 7 * 24 * 3600 * 1000;
                match observations::latest(&db, observations::UNTRUSTED_FORWARDED_FOR).await {
                    Ok(Some((peer, at))) if identity_shared::time::now_ms() - at < week_ms => {
                        println!(
                            "       last from {peer} at {}",
                            identity_shared::time::rfc3339(at)
                        );
                        report(
                            None,
                            "X-Forwarded-For arrived from a peer not in IDENTITY_TRUSTED_PROXIES: \
                             if it is your proxy, add it, or every client looks like the proxy to \
                             rate limits and lockouts",
                        );
                    }
                    _ => report(
                        Some(true),
                        "no forwarded headers from untrusted peers in the last 7 days",
                    ),
                }
                if let Ok(Some(r)) = identity_shared::data_migrations::email_report(&db).await {
                    if r["collisions"].as_array().is_some_and(|c| !c.is_empty()) {
                        println!("       {}", r["collisions"]);
                        report(
                            None,
                            "accounts whose emails are one mailbox were found and left unmerged; \
                             decide which account stays",
                        );
                    }
                    if r["unparseable"].as_array().is_some_and(|c| !c.is_empty()) {
                        println!("       {}", r["unparseable"]);
                        report(
                            None,
                            "accounts whose stored email is no longer a valid address \
                             (listed above); correct them by hand",
                        );
                    }
                }
                if !sqlite {
                    let roles = db.check_roles().await;
                    if let Err(e) = &roles {
                        println!("       {e}");
                    }
                    report(
                        Some(roles.is_ok()),
                        "data-plane role cannot bypass row-level security",
                    );
                }
                db.close().await;
            }
            Err(e) => {
                println!("       {e}");
                report(Some(false), "database reachable");
            }
        }
        Ok(if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    }
}
