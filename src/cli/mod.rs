//! The command line: `serve` (the default), `cert`, `config`, `user ...`, `api-key ...`,
//! `tenant ...`, `artifact ...`, `routes`, `backup`, `restore`, `doctor`.

mod api_keys;
mod doctor;
mod users;

use crate::config::{Config, Overrides};
use crate::core::{audit, tenants};
use crate::crypto::cert;
use crate::server;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "fleetbox",
    version = crate::VERSION,
    about = "A single-binary IoT device-management server"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Args, Clone)]
struct Global {
    /// Configuration file (default: ./fleetbox.toml if present).
    #[arg(long, global = true, env = "FLEETBOX_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (database, certificate, secrets, artifacts).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long, global = true)]
    log_format: Option<String>,
    /// Log level or filter, e.g. info or fleetbox=debug.
    #[arg(long, global = true)]
    log_level: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve(ServeArgs),
    /// Print the TLS certificate's path and SHA-256 fingerprint (creating it if needed).
    Cert,
    /// Print the effective configuration, secrets masked.
    Config,
    /// Manage users.
    #[command(subcommand)]
    User(users::UserCommand),
    /// Manage API keys (credentials of their own for scripts and SDKs).
    #[command(subcommand)]
    ApiKey(api_keys::ApiKeyCommand),
    /// Manage tenants (organisations).
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage artifacts.
    #[command(subcommand)]
    Artifact(ArtifactCommand),
    /// List every HTTP route with the guard in front of it (`guard<TAB>path`).
    Routes,
    /// Write a backup of the whole server (database, secrets, certificates, artifacts) to
    /// FILE; works while the server runs.
    Backup { file: PathBuf },
    /// Check the data dir, free disk, the TLS certificate, the clock and the listeners, and
    /// say what to fix (exit status 1 when something must be).
    Doctor,
    /// Restore a backup into the data dir. Stop the server first; the database it replaces is
    /// kept as `fleetbox.db.before-restore`.
    Restore { file: PathBuf },
}

#[derive(Subcommand)]
enum ArtifactCommand {
    /// Import .mender files (for air-gapped sites); validated like uploads. Works while the
    /// server runs.
    Import {
        /// The files to import.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, default_value = "")]
        description: String,
        /// The tenant (by name); the default tenant if omitted.
        #[arg(long)]
        tenant: Option<String>,
    },
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create a tenant; prints the tenant token its devices must present.
    Add {
        #[arg(long)]
        name: String,
        /// Most accepted devices (0: no limit).
        #[arg(long)]
        max_devices: Option<i64>,
        /// The tenant (by name) this one is a sub-tenant of; the default tenant if omitted.
        #[arg(long)]
        parent: Option<String>,
        /// The new tenant may have sub-tenants of its own (an aggregator account).
        #[arg(long)]
        aggregator: bool,
    },
    /// List tenants with their tokens.
    List,
    /// Suspend a tenant: its users' and devices' tokens end, logins and device auth requests
    /// are refused (works while the server runs).
    Suspend {
        /// The tenant's name.
        name: String,
    },
    /// Reactivate a suspended tenant: its users may log in and its devices authenticate again.
    Activate {
        /// The tenant's name.
        name: String,
    },
    /// Delete a suspended tenant with all its data and artifact files.
    Delete {
        /// The tenant's name.
        name: String,
    },
}

#[derive(Args, Default)]
struct ServeArgs {
    /// HTTPS address, or "none".
    #[arg(long)]
    listen: Option<String>,
    /// Plain-HTTP address (off by default), or "none".
    #[arg(long)]
    http: Option<String>,
}

fn load_config(g: &Global, serve: Option<&ServeArgs>) -> Result<Config, String> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let cli = Overrides {
        data_dir: g.data_dir.clone(),
        listen: serve.and_then(|s| s.listen.clone()),
        http: serve.and_then(|s| s.http.clone()),
        log_format: g.log_format.clone(),
        log_level: g.log_level.clone(),
    };
    Config::load(g.config.as_deref(), &env, &cli)
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve(ServeArgs::default()));
    let serve_args = match &command {
        Command::Serve(a) => Some(a),
        _ => None,
    };
    let config = match load_config(&cli.global, serve_args) {
        Ok(c) => {
            // One policy for every password this process sets, whichever API or command.
            crate::crypto::password::set_policy(c.password_policy());
            c
        }
        Err(e) => {
            eprintln!("fleetbox: {e}");
            return ExitCode::from(2);
        }
    };
    let quiet = !matches!(command, Command::Serve(_));
    crate::logging::init(
        &config.log_format,
        if quiet { "warn" } else { &config.log_level },
    );
    let result = match command {
        Command::Serve(_) => serve_until_stopped(&config),
        command => new_runtime().and_then(|rt| rt.block_on(run(command, config))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fleetbox: {e}");
            ExitCode::FAILURE
        }
    }
}

fn new_runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

/// Serves until asked to stop. A restart (to apply an uploaded backup) runs the server again
/// in a fresh runtime: dropping the old one ends every task that still held the old database
/// and caches.
fn serve_until_stopped(config: &Config) -> Result<(), String> {
    loop {
        let runtime = new_runtime()?;
        let stopped = runtime
            .block_on(server::serve(config.clone()))
            .map_err(|e| e.to_string())?;
        runtime.shutdown_timeout(std::time::Duration::from_secs(5));
        if stopped != server::Stopped::Restart {
            return Ok(());
        }
    }
}

async fn run(command: Command, config: Config) -> Result<(), String> {
    match command {
        // `main` runs the server itself, each start in a runtime of its own.
        Command::Serve(_) => Err("serve is not run inside another command's runtime".into()),
        Command::Config => {
            print!("{}", config.to_masked_toml());
            Ok(())
        }
        Command::Doctor => doctor::run(&config),
        Command::Cert => {
            server::prepare_data_dir(&config.data_dir).map_err(|e| e.to_string())?;
            let paths = cert::ensure(
                &config.data_dir,
                &config.tls_cert,
                &config.tls_key,
                &config.tls_names,
            )
            .map_err(|e| e.to_string())?;
            let fp = cert::fingerprint(&paths.cert).map_err(|e| e.to_string())?;
            println!("certificate: {}", paths.cert.display());
            println!("sha256 fingerprint: {fp}");
            Ok(())
        }
        Command::User(cmd) => users::run(cmd, config).await,
        Command::ApiKey(cmd) => api_keys::run(cmd, config).await,
        Command::Tenant(cmd) => tenant_command(cmd, config).await,
        Command::Artifact(cmd) => artifact_command(cmd, config).await,
        Command::Backup { file } => {
            let db = config.database_path();
            if !db.exists() {
                return Err(format!("no database at {}", db.display()));
            }
            let m = crate::backup::create(&db, &config.data_dir, &file, crate::db::now_ms())
                .map_err(|e| e.to_string())?;
            println!(
                "backup written to {} (schema {}, fleetbox {})",
                file.display(),
                m.schema_version,
                m.fleetbox_version
            );
            Ok(())
        }
        Command::Restore { file } => {
            let m = crate::backup::restore(&file, &config.data_dir).map_err(|e| e.to_string())?;
            println!(
                "restored the backup of {} (fleetbox {}) into {}",
                crate::core::rfc3339(m.created_ms),
                m.fleetbox_version,
                config.data_dir.display()
            );
            Ok(())
        }
        Command::Routes => {
            let groups = crate::api::RouteGroups::new(config.artifact_max_bytes);
            // guard, method, path, context, resource, operation: one route a line.
            for r in groups.table().rows() {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    r.guard.as_str(),
                    r.entry.method,
                    r.entry.path,
                    r.guard.context(),
                    r.entry.resource,
                    r.entry.op.as_str()
                );
            }
            Ok(())
        }
    }
}

async fn artifact_command(cmd: ArtifactCommand, config: Config) -> Result<(), String> {
    use crate::core::artifacts::{self, Store, Uploader};
    use sha2::{Digest, Sha256};
    let ArtifactCommand::Import {
        files,
        description,
        tenant,
    } = cmd;
    let (db, default_tenant) = server::open_store(&config)
        .await
        .map_err(|e| e.to_string())?;
    let tenant_id = match tenant {
        Some(n) => tenants::id_by_name(&db, &n)
            .await
            .map_err(|e| e.to_string())?,
        None => default_tenant,
    };
    // A store object without start-up clean-up: the server may be uploading right now.
    let store = Store {
        dir: config.data_dir.join("artifacts"),
        max_bytes: config.artifact_max_bytes,
        storage_limit: config.storage_limit_bytes,
    };
    std::fs::create_dir_all(store.dir.join("incoming")).map_err(|e| e.to_string())?;
    let mut failed = 0;
    for file in files {
        let result: Result<String, String> = async {
            let temp = store.incoming();
            // Copy into the store's directory (same filesystem, so the final rename is atomic),
            // hashing on the way.
            let (size, sum) = {
                let mut input =
                    std::fs::File::open(&file).map_err(|e| format!("{}: {e}", file.display()))?;
                let mut output = std::fs::File::create(&temp).map_err(|e| e.to_string())?;
                let mut hasher = Sha256::new();
                let mut buf = vec![0u8; 256 * 1024];
                let mut size = 0u64;
                loop {
                    let n = std::io::Read::read(&mut input, &mut buf).map_err(|e| e.to_string())?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                    std::io::Write::write_all(&mut output, &buf[..n]).map_err(|e| e.to_string())?;
                    size += n as u64;
                }
                (size, hex::encode(hasher.finalize()))
            };
            let a = artifacts::ingest(
                &db,
                &store,
                Uploader::CommandLine {
                    tenant_id: tenant_id.clone(),
                },
                temp,
                size,
                sum,
                description.clone(),
            )
            .await
            .map_err(|e| format!("{}: {e}", file.display()))?;
            Ok(format!(
                "imported {} as {} ({}, {} bytes)",
                file.display(),
                a.id,
                a.name,
                a.size
            ))
        }
        .await;
        match result {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("fleetbox: {e}");
                failed += 1;
            }
        }
    }
    db.close();
    if failed > 0 {
        Err(format!("{failed} file(s) not imported"))
    } else {
        Ok(())
    }
}

/// Held by a command that may change keys, users, roles or tenants: when it ends having changed
/// something a running server's credential cache depends on, it waits until that server must
/// have noticed (`api_key_cache::OTHER_PROCESS_RECHECK_MS`), so that when the command returns
/// the change is in effect.
pub struct SettleIdentity(pub crate::db::Db);

impl Drop for SettleIdentity {
    fn drop(&mut self) {
        if self.0.identity_generation() > 0 {
            let ms = crate::core::api_key_cache::OTHER_PROCESS_RECHECK_MS as u64 + 100;
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
    }
}

async fn tenant_command(cmd: TenantCommand, config: Config) -> Result<(), String> {
    let (db, default_tenant) = server::open_store(&config)
        .await
        .map_err(|e| e.to_string())?;
    let _settle = SettleIdentity(db.clone());
    let result = match cmd {
        TenantCommand::Add {
            name,
            max_devices,
            parent,
            aggregator,
        } => {
            let parent = match parent {
                Some(p) => tenants::id_by_name(&db, &p)
                    .await
                    .map_err(|e| e.to_string())?,
                None => default_tenant.clone(),
            };
            let new = tenants::NewTenant {
                name: &name,
                max_devices,
                parent_id: &parent,
                aggregator,
            };
            let t = tenants::create(&db, new).await.map_err(|e| e.to_string())?;
            audit::record(
                &db,
                crate::core::audit::Entry::system_via(
                    &default_tenant,
                    "create",
                    "tenant",
                    &t.id,
                    "",
                    "command line",
                ),
            )
            .await
            .map_err(|e| e.to_string())?;
            println!("created tenant {} ({})", t.name, t.id);
            println!("tenant token: {}", t.tenant_token.unwrap_or_default());
            Ok(())
        }
        TenantCommand::Suspend { name } => {
            set_tenant_status(&db, &default_tenant, &name, tenants::Status::Suspended).await
        }
        TenantCommand::Activate { name } => {
            set_tenant_status(&db, &default_tenant, &name, tenants::Status::Active).await
        }
        TenantCommand::Delete { name } => delete_tenant(&db, &default_tenant, &config, &name).await,
        TenantCommand::List => {
            let all = tenants::list(&db).await.map_err(|e| e.to_string())?;
            println!(
                "{:<36}  {:<20}  {:<9}  {:<11}  TENANT TOKEN",
                "ID", "NAME", "STATUS", "MAX DEVICES"
            );
            for t in all {
                let token = t.tenant_token.unwrap_or_else(|| "(none needed)".into());
                let max = t
                    .max_devices
                    .map(|m| m.to_string())
                    .unwrap_or_else(|| "-".into());
                println!(
                    "{:<36}  {:<20}  {:<9}  {:<11}  {token}",
                    t.id, t.name, t.status, max
                );
            }
            Ok(())
        }
    };
    db.close();
    result
}

/// A running server notices within a second: user tokens are checked against the database on
/// every request, and its device-token cache looks at the tenants table (see `TokenCache`);
/// this process's own cache is a throwaway.
async fn set_tenant_status(
    db: &crate::db::Db,
    default_tenant: &str,
    name: &str,
    status: tenants::Status,
) -> Result<(), String> {
    let id = tenants::id_by_name(db, name)
        .await
        .map_err(|e| e.to_string())?;
    let action = match status {
        tenants::Status::Active => "activate",
        tenants::Status::Suspended => "suspend",
    };
    let entry = crate::core::audit::Entry::system_via(
        default_tenant,
        action,
        "tenant",
        &id,
        "",
        "command line",
    );
    let cache = crate::core::devices::token_cache::TokenCache::new();
    let t = tenants::set_status(db, &cache, &id, status, entry)
        .await
        .map_err(|e| e.to_string())?;
    println!("tenant {} ({}) is {}", t.name, t.id, t.status);
    Ok(())
}

async fn delete_tenant(
    db: &crate::db::Db,
    default_tenant: &str,
    config: &Config,
    name: &str,
) -> Result<(), String> {
    let id = tenants::id_by_name(db, name)
        .await
        .map_err(|e| e.to_string())?;
    // A store object without start-up clean-up: the server may be uploading right now.
    let store = crate::core::artifacts::Store {
        dir: config.data_dir.join("artifacts"),
        max_bytes: config.artifact_max_bytes,
        storage_limit: config.storage_limit_bytes,
    };
    let entry = crate::core::audit::Entry::system_via(
        default_tenant,
        "delete",
        "tenant",
        &id,
        "",
        "command line",
    );
    let cache = crate::core::devices::token_cache::TokenCache::new();
    match tenants::delete(db, &cache, &store, &id, entry).await {
        Ok(t) => {
            println!("deleted tenant {} ({})", t.name, t.id);
            Ok(())
        }
        Err(crate::error::Error::Locked(_)) => Err(format!(
            "tenant {name} is active: suspend it first (fleetbox tenant suspend {name})"
        )),
        Err(e) => Err(e.to_string()),
    }
}
