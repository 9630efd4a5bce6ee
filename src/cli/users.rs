//! `fleetbox user ...`: make users, list them, set a password, print a reset link.

use crate::config::Config;
use crate::core::audit::{self, Entry};
use crate::core::{roles, tenants, users};
use crate::server;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user (known by email, username or both).
    Add {
        #[arg(long, required_unless_present = "username")]
        email: Option<String>,
        #[arg(long)]
        username: Option<String>,
        #[arg(long, env = "FLEETBOX_USER_PASSWORD", hide_env_values = true)]
        password: String,
        /// Role: admin, readonly, or a role name.
        #[arg(long, default_value = "admin")]
        role: String,
        /// The tenant (by name) the user belongs to; the default tenant if omitted.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// List users.
    List,
    /// Set a user's password.
    Passwd {
        /// The user's email or username.
        #[arg(long)]
        email: String,
        #[arg(long, env = "FLEETBOX_USER_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// Print a single-use password-reset link for a user (valid for password_reset_ttl_secs;
    /// works while the server runs).
    ResetLink {
        /// The user's email.
        email: String,
    },
    /// Print a new link for a user's open invitation (the earlier link stops working); for a
    /// server without a mail server, whose invitations are not mailed.
    InviteLink {
        /// The invited user's email.
        email: String,
    },
    /// Print a single-use link that confirms a user's email address (for a server without a
    /// mail server; valid for a day).
    VerifyLink {
        /// The user's email.
        email: String,
    },
}

pub async fn run(cmd: UserCommand, config: Config) -> Result<(), String> {
    let (db, tenant) = server::open_store(&config)
        .await
        .map_err(|e| e.to_string())?;
    let _settle = super::SettleIdentity(db.clone());
    let result = match cmd {
        UserCommand::Add {
            email,
            username,
            password,
            role,
            tenant: tenant_name,
        } => {
            let tenant = match tenant_name {
                Some(n) => tenants::id_by_name(&db, &n)
                    .await
                    .map_err(|e| e.to_string())?,
                None => tenant,
            };
            let role = roles::resolve_alias(&role).to_string();
            let u = users::create(
                &db,
                users::NewUser {
                    tenant_id: tenant.clone(),
                    email,
                    username,
                    password: Some(password),
                    identity_provider: "local".into(),
                    roles: vec![role],
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| e.to_string())?;
            let entry = Entry::system_via(&tenant, "create", "user", &u.id, u.name(), CLI);
            audit::record(&db, entry).await.map_err(|e| e.to_string())?;
            println!(
                "created user {} ({}) with roles {}",
                u.name(),
                u.id,
                u.roles.join(", ")
            );
            Ok(())
        }
        UserCommand::List => {
            let all = users::list_all(&db).await.map_err(|e| e.to_string())?;
            println!(
                "{:<36}  {:<32}  {:<16}  {:<8}  ROLES",
                "ID", "EMAIL", "USERNAME", "STATUS"
            );
            for u in all {
                println!(
                    "{:<36}  {:<32}  {:<16}  {:<8}  {}",
                    u.id,
                    u.email.as_deref().unwrap_or("-"),
                    u.username.as_deref().unwrap_or("-"),
                    u.status,
                    u.roles.join(",")
                );
            }
            Ok(())
        }
        UserCommand::Passwd { email, password } => {
            let u = users::set_password(&db, &email, &password)
                .await
                .map_err(|e| e.to_string())?;
            let entry = Entry::system_via(&u.tenant_id, "update", "user", &u.id, u.name(), CLI);
            audit::record(&db, entry).await.map_err(|e| e.to_string())?;
            println!("password changed for {}", u.name());
            Ok(())
        }
        UserCommand::ResetLink { email } => reset_link(&db, &config, &email).await,
        UserCommand::InviteLink { email } => invite_link(&db, &config, &email).await,
        UserCommand::VerifyLink { email } => verify_link(&db, &config, &email).await,
    };
    db.close();
    result
}

/// How changes made here are named in the audit trail.
pub(super) const CLI: &str = "command line";

/// Links made here point at `public_url`, else this machine's HTTPS (or HTTP) listener.
fn link_base(config: &Config) -> String {
    if !config.public_url.is_empty() {
        config.public_url.clone()
    } else if let Some(a) = config.listen_addr() {
        format!("https://localhost:{}", a.port())
    } else if let Some(a) = config.http_addr() {
        format!("http://localhost:{}", a.port())
    } else {
        "https://localhost:8443".into()
    }
}

/// The audit entry of a link made on the command line for a user.
async fn audit_link(
    db: &crate::db::Db,
    action: &str,
    (tenant, user, email): (&str, &str, &str),
) -> Result<(), String> {
    let entry = crate::core::audit::Entry::system_via(tenant, action, "user", user, email, CLI);
    audit::record(db, entry).await.map_err(|e| e.to_string())
}

/// `user invite-link`: a fresh secret for the user's open invitation.
async fn invite_link(db: &crate::db::Db, config: &Config, email: &str) -> Result<(), String> {
    let issued = crate::core::invitations::relink(db, email)
        .await
        .map_err(|e| e.to_string())?;
    let inv = &issued.invitation;
    let who = (
        inv.tenant_id.as_str(),
        inv.user_id.as_str(),
        inv.email.as_str(),
    );
    audit_link(db, "invitation_link", who).await?;
    let link = crate::core::password_reset::link(&link_base(config), &issued.secret);
    println!("{link}");
    eprintln!(
        "accept by choosing a password, until {}",
        crate::core::rfc3339(inv.expires_ts)
    );
    Ok(())
}

/// `user reset-link`: a reset secret made like the API's, with a link based on `public_url`,
/// else this machine's HTTPS (or HTTP) listener on localhost.
async fn reset_link(db: &crate::db::Db, config: &Config, email: &str) -> Result<(), String> {
    use crate::core::password_reset;
    let issued = password_reset::start(db, email, config.password_reset_ttl_secs)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no active user with email {email}"))?;
    let base = link_base(config);
    let a = &issued.account;
    let who = (a.tenant_id.as_str(), a.user_id.as_str(), a.email.as_str());
    audit_link(db, "password_reset_request", who).await?;
    println!("{}", password_reset::link(&base, &issued.secret));
    eprintln!(
        "single use, valid until {}",
        crate::core::rfc3339(issued.expires_ts)
    );
    Ok(())
}

/// `user verify-link`: an address-verification link for a user whose address is unverified.
async fn verify_link(db: &crate::db::Db, config: &Config, email: &str) -> Result<(), String> {
    use crate::core::email_verification;
    let ttl = crate::core::email_verification::TTL_SECS;
    let issued = email_verification::start_by_email(db, email, ttl)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no user with the unverified email {email}"))?;
    let a = &issued.account;
    let who = (a.tenant_id.as_str(), a.user_id.as_str(), a.email.as_str());
    audit_link(db, "email_verification_request", who).await?;
    println!(
        "{}",
        email_verification::link(&link_base(config), &issued.secret)
    );
    eprintln!("single use, valid for a day");
    Ok(())
}
