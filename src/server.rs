//! `fleetbox serve`: opens the store, makes sure the default tenant, first admin, token secret
//! and certificate exist, starts the HTTPS (and optional HTTP) listeners and shuts down
//! gracefully on SIGTERM/SIGINT.

use crate::api::{self, AppState};
use crate::config::Config;
use crate::core::artifacts::Store;
use crate::core::devices::token_cache::TokenCache;
use crate::core::{audit, devices, roles, tenants, users};
use crate::crypto::link::LinkSigner;
use crate::crypto::{cert, token::TokenKeys};
use crate::db::Db;
use crate::error::{Error, Result};
use axum_server::tls_rustls::RustlsConfig;
use axum_server::Handle;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Creates the data dir (owner-only) if needed.
pub fn prepare_data_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::internal(format!("cannot create data dir {}: {e}", dir.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750));
    }
    Ok(())
}

/// Opens the database of a data dir and makes sure the default tenant exists.
/// The key API-key secrets are hashed with (made on first use, like the other secrets).
pub fn api_key_hash(config: &Config) -> Result<Arc<crate::crypto::vault::Vault>> {
    Ok(Arc::new(crate::crypto::vault::Vault::load_or_create(
        &config.data_dir.join("secrets").join("api-key.key"),
    )?))
}

pub async fn open_store(config: &Config) -> Result<(Db, String)> {
    prepare_data_dir(&config.data_dir)?;
    let db = Db::open(&config.database_path())?;
    let tenant = tenants::ensure_default(&db).await?;
    Ok((db, tenant))
}

/// `FLEETBOX_ADMIN_EMAIL`/`FLEETBOX_ADMIN_PASSWORD`: the first administrator, when there is no
/// user yet.
async fn bootstrap_admin(db: &Db, tenant: &str, config: &Config) -> Result<()> {
    if config.admin_email.is_empty() {
        return Ok(());
    }
    if users::count(db).await? > 0 {
        return Ok(());
    }
    if config.admin_password.is_empty() {
        return Err(Error::invalid(
            "admin_password",
            "FLEETBOX_ADMIN_EMAIL is set but FLEETBOX_ADMIN_PASSWORD is missing",
        ));
    }
    let user = users::create(
        db,
        users::NewUser::local(
            tenant,
            &config.admin_email,
            &config.admin_password,
            vec![roles::ADMIN.to_string()],
        ),
    )
    .await
    .map_err(|e| Error::internal(format!("creating the first administrator: {e}")))?;
    audit::record(
        db,
        audit::Entry::system_via(
            tenant,
            "create",
            "user",
            &user.id,
            user.name(),
            "first start",
        ),
    )
    .await?;
    tracing::info!(email = %user.name(), "created the first administrator");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Periodic clean-ups (the first run is at start-up): expired device and login tokens, audit
/// entries past their retention.
fn spawn_housekeeping(db: Db, audit_retention_days: u64) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tick.tick().await;
            match devices::auth::purge_expired(&db).await {
                Ok(n) if n > 0 => tracing::info!(tokens = n, "purged expired device tokens"),
                Ok(_) => {}
                Err(e) => tracing::warn!("purging expired device tokens: {e}"),
            }
            match crate::core::tokens::purge_expired(&db).await {
                Ok(n) if n > 0 => tracing::info!(tokens = n, "purged expired login tokens"),
                Ok(_) => {}
                Err(e) => tracing::warn!("purging expired login tokens: {e}"),
            }
            match audit::purge_older_than(&db, audit_retention_days).await {
                Ok(n) if n > 0 => tracing::info!(entries = n, "purged old audit-log entries"),
                Ok(_) => {}
                Err(e) => tracing::warn!("purging old audit-log entries: {e}"),
            }
            match crate::core::remote_sessions::purge_older_than(&db, audit_retention_days).await {
                Ok(n) if n > 0 => tracing::info!(sessions = n, "purged old remote-session records"),
                Ok(_) => {}
                Err(e) => tracing::warn!("purging old remote-session records: {e}"),
            }
        }
    });
}

/// Files spooled for device uploads (`deviceconnect .../upload`) are removed when their request
/// ends; after a crash they would stay, so they are swept at start.
fn remove_stale_uploads(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("upload-") && name.ends_with(".part") {
            if let Err(err) = std::fs::remove_file(e.path()) {
                tracing::warn!("removing stale upload {}: {err}", e.path().display());
            }
        }
    }
}

type ServerTask = tokio::task::JoinHandle<std::io::Result<()>>;

/// Why `serve` returned.
#[derive(Debug, PartialEq, Eq)]
pub enum Stopped {
    /// Asked to stop (SIGTERM, SIGINT).
    Exit,
    /// Asked to start again in this process (to apply a staged restore).
    Restart,
}

/// Applies a restore staged by the running server before it restarted, and records how it went.
fn apply_staged_restore(data_dir: &Path) -> Option<(crate::backup::Manifest, serde_json::Value)> {
    use crate::backup::jobs::{write_restore_status, Outcome};
    let now = crate::db::now_ms();
    match crate::backup::apply_pending(data_dir) {
        Ok(None) => None,
        Ok(Some((m, by))) => {
            tracing::warn!(
                created = %crate::core::rfc3339(m.created_ms),
                "restored the uploaded backup; the database it replaced is fleetbox.db.before-restore"
            );
            let outcome = Outcome {
                id: crate::backup::jobs::new_id(m.created_ms),
                succeeded: true,
                finished_ms: now,
                size: None,
                error: None,
            };
            write_restore_status(data_dir, &outcome);
            Some((m, by))
        }
        Err(e) => {
            tracing::error!("applying the uploaded backup: {e}");
            let outcome = Outcome {
                id: String::new(),
                succeeded: false,
                finished_ms: now,
                size: None,
                error: Some(e.public_message()),
            };
            write_restore_status(data_dir, &outcome);
            None
        }
    }
}

/// The audit entry of a restore, written into the restored database (one written before would
/// have been replaced with the rest).
async fn record_restore(
    db: &Db,
    tenant: &str,
    manifest: &crate::backup::Manifest,
    by: serde_json::Value,
) -> Result<()> {
    let id = crate::backup::jobs::new_id(manifest.created_ms);
    let mut entry = audit::Entry::system(tenant, "restore", "backup", &id).detail(
        serde_json::json!({"created": crate::core::rfc3339(manifest.created_ms), "requested_by": by}),
    );
    if let Some(email) = by.get("email").and_then(|e| e.as_str()) {
        entry.actor_type = "user";
        entry.actor_email = Some(email.to_string());
        entry.actor_id = by.get("id").and_then(|i| i.as_str()).map(str::to_string);
    }
    audit::record(db, entry).await
}

pub async fn serve(config: Config) -> Result<Stopped> {
    prepare_data_dir(&config.data_dir)?;
    // Held while serving: one server per data dir, and no restore beneath it.
    let _lock = crate::backup::DataDirLock::take(&config.data_dir)?;
    let restored = apply_staged_restore(&config.data_dir);
    let (db, tenant) = open_store(&config).await?;
    if let Some((m, by)) = restored {
        record_restore(&db, &tenant, &m, by).await?;
    }
    bootstrap_admin(&db, &tenant, &config).await?;
    // Roles an older binary compiled follow this binary's routes and permission sets.
    let routes = Arc::new(api::RouteGroups::new(config.artifact_max_bytes).table());
    let role_rules = api::mender::role_rules(routes);
    crate::core::roles::refresh_custom(&db, &role_rules).await?;
    let keys = TokenKeys::load_or_create(&config.data_dir.join("secrets").join("token.key"))?;
    remove_stale_uploads(&config.data_dir.join("tmp"));
    // A device whose tokens end loses its deviceconnect socket.
    let connect = Arc::new(crate::connect::Broker::new());
    let device_tokens = Arc::new(TokenCache::new());
    device_tokens.on_tokens_ended(connect.clone());
    let credentials = crate::core::credentials::Verifier {
        keys: keys.clone(),
        api_key_hash: api_key_hash(&config)?,
        api_key_cache: Arc::new(crate::core::api_key_cache::ApiKeyCache::new()),
    };
    // Webhook secrets are sealed under a key of their own, not one that also hashes API keys.
    let webhook_secrets = Arc::new(crate::crypto::vault::Vault::load_or_create(
        &config.data_dir.join("secrets").join("webhook.key"),
    )?);
    crate::webhooks::spawn(db.clone(), webhook_secrets.clone());
    crate::api::context::set_slow_request_ms(config.log_slow_request_ms);
    let check_ins = Arc::new(crate::core::devices::check_ins::CheckIns::new());
    check_ins.spawn_flusher(db.clone());
    let maintenance = Arc::new(crate::backup::jobs::Maintenance::default());
    let state = AppState {
        check_ins: check_ins.clone(),
        config: Arc::new(config.clone()),
        db: db.clone(),
        keys,
        credentials,
        default_tenant: Arc::new(tenant),
        device_tokens,
        artifacts: Arc::new(Store::new(
            &config.data_dir,
            config.artifact_max_bytes,
            config.storage_limit_bytes,
        )?),
        links: LinkSigner::load_or_create(&config.data_dir.join("secrets").join("link.key"))?,
        tfa: Arc::new(crate::core::tfa::Tfa::new(Arc::new(
            crate::crypto::vault::Vault::load_or_create(
                &config.data_dir.join("secrets").join("2fa.key"),
            )?,
        ))),
        throttle: Arc::new(crate::core::login_throttle::Throttle::new(
            crate::core::login_throttle::Limits {
                per_account: u32::try_from(config.login_max_failures).unwrap_or(u32::MAX),
                per_address: u32::try_from(config.login_max_failures_per_address)
                    .unwrap_or(u32::MAX),
                lockout: Duration::from_secs(config.login_lockout_secs),
            },
        )),
        connect: connect.clone(),
        webhook_secrets,
        routes: Default::default(),
        path_grants: Default::default(),
        role_rules,
        cybus_challenges: Default::default(),
        registry: Default::default(),
        ca_keys: Arc::new(crate::crypto::vault::Vault::load_or_create(
            &config.data_dir.join("secrets").join("ca.key"),
        )?),
        maintenance: maintenance.clone(),
        directory: crate::directory::Directory::from_settings(&config.ldap)
            .map_err(crate::error::Error::Internal)?
            .map(Arc::new),
    };
    let shutdown_connect = connect;
    spawn_housekeeping(db.clone(), config.audit_retention_days);
    let max_body = state.config.max_body_bytes;
    let router = api::router(state);
    let with_scheme = |scheme: &'static str| api::app(router.clone(), max_body, scheme);

    let mut tasks: Vec<(&'static str, Handle, ServerTask)> = Vec::new();
    if let Some(addr) = config.listen_addr() {
        let paths = cert::ensure(
            &config.data_dir,
            &config.tls_cert,
            &config.tls_key,
            &config.tls_names,
        )?;
        let tls = RustlsConfig::from_config(Arc::new(cert::server_config(&paths)?));
        let handle = Handle::new();
        let acceptor = api::peer_cert::PeerCertAcceptor::new(
            axum_server::tls_rustls::RustlsAcceptor::new(tls),
        );
        let server = axum_server::bind(addr)
            .acceptor(acceptor)
            .handle(handle.clone())
            .serve(with_scheme("https"));
        tasks.push(("https", handle, tokio::spawn(server)));
    }
    if let Some(addr) = config.http_addr() {
        let handle = Handle::new();
        let server = axum_server::bind(addr)
            .handle(handle.clone())
            .serve(with_scheme("http"));
        tasks.push(("http", handle, tokio::spawn(server)));
    }
    for (proto, handle, _) in &tasks {
        match handle.listening().await {
            Some(addr) => tracing::info!(proto = *proto, addr = %addr, "listening"),
            None => {
                // The server task ended before binding; its error is reported below.
                tracing::error!(proto = *proto, "listener failed to start");
            }
        }
    }
    let failed = tasks.iter().any(|(_, _, t)| t.is_finished());
    let mut stopped = Stopped::Exit;
    if !failed {
        tokio::select! {
            _ = shutdown_signal() => tracing::info!("shutting down: finishing in-flight requests"),
            _ = maintenance.restart_requested() => {
                tracing::warn!("restarting to apply an uploaded backup");
                stopped = Stopped::Restart;
            }
            _ = async {
                loop {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    if tasks.iter().any(|(_, _, t)| t.is_finished()) { break; }
                }
            } => {}
        }
    }
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    for (_, handle, _) in &tasks {
        handle.graceful_shutdown(Some(grace));
    }
    // Websockets live as long as their peers want; end them so they do not hold the exit.
    let closed = shutdown_connect.shutdown();
    if closed > 0 {
        tracing::info!(devices = closed, "closed remote-access sockets");
    }
    // Their loops store the sessions' records as they end; the database must still be open.
    if !shutdown_connect.sessions_finished(grace).await {
        tracing::warn!("remote sessions still open after the grace period");
    }
    let mut error = None;
    for (proto, _, task) in tasks {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => error = Some(format!("{proto} listener: {e}")),
            Err(e) => error = Some(format!("{proto} listener: {e}")),
        }
    }
    // The last check-ins noted since the latest flush.
    if let Err(e) = check_ins.flush(&db).await {
        tracing::warn!("recording device check-ins: {e}");
    }
    db.close();
    match error {
        Some(e) => Err(Error::internal(e)),
        None => {
            tracing::info!("stopped");
            Ok(stopped)
        }
    }
}
