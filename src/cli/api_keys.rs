//! `fleetbox api-key ...`: the first API key of an installation (later ones can be made
//! through the API), listing, deactivating, resetting and deleting keys.

use super::users::CLI;
use crate::config::Config;
use crate::core::audit::{self, Entry};
use crate::core::{api_keys, roles, users};
use crate::server;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum ApiKeyCommand {
    /// Make an API key owned by a user; prints the key, which is shown only this once.
    Add {
        /// The owner's email or username; the key belongs to the owner's tenant.
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// A role the key is a member of (repeat for more); default: the owner's roles.
        #[arg(long)]
        role: Vec<String>,
    },
    /// List the API keys of a user's tenant (public parts only).
    List {
        /// A user of the tenant (email or username).
        #[arg(long)]
        email: String,
    },
    /// Turn a key off: it is refused at once.
    Deactivate {
        id: String,
        #[arg(long)]
        email: String,
    },
    /// Turn a key back on.
    Activate {
        id: String,
        #[arg(long)]
        email: String,
    },
    /// Give a key a new secret; the old one stops working at once. Prints the new key.
    Reset {
        id: String,
        #[arg(long)]
        email: String,
    },
    /// Delete a key.
    Delete {
        id: String,
        #[arg(long)]
        email: String,
    },
}

pub async fn run(cmd: ApiKeyCommand, config: Config) -> Result<(), String> {
    let (db, _) = server::open_store(&config)
        .await
        .map_err(|e| e.to_string())?;
    let _settle = super::SettleIdentity(db.clone());
    let hasher = server::api_key_hash(&config).map_err(|e| e.to_string())?;
    let user_of = |login: String| {
        let db = db.clone();
        async move {
            users::find_by_login(&db, &login)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no user with email or username {login}"))
        }
    };
    let result = async {
        let (action, key, owner) = match cmd {
            ApiKeyCommand::Add { email, name, role } => {
                let owner = user_of(email).await?;
                let role_ids = if role.is_empty() {
                    roles::ids_of_user(&db, &owner.id).await
                } else {
                    roles::ids_by_names(&db, &owner.tenant_id, &role).await
                }
                .map_err(|e| e.to_string())?;
                let new = api_keys::NewKey {
                    tenant_id: owner.tenant_id.clone(),
                    owner_id: Some(owner.id.clone()),
                    name,
                    role_ids,
                    active: true,
                };
                let made = api_keys::create(&db, &hasher, new)
                    .await
                    .map_err(|e| e.to_string())?;
                println!("{}", made.key);
                eprintln!(
                    "API key {} ({}) for {}: shown only now; keep it safe",
                    made.info.id,
                    made.info.name,
                    owner.name()
                );
                ("create", made.info, owner)
            }
            ApiKeyCommand::List { email } => {
                let u = user_of(email).await?;
                let mut keys = Vec::new();
                let mut after = None;
                loop {
                    let q = crate::core::paging::Query {
                        page: crate::core::paging::Page::After {
                            after,
                            limit: 500,
                            descending: false,
                        },
                        with_total: false,
                    };
                    let page = api_keys::list(&db, &u.tenant_id, None, &q)
                        .await
                        .map_err(|e| e.to_string())?;
                    after = page.items.last().map(|k| k.id.clone());
                    keys.extend(page.items);
                    if !page.has_more {
                        break;
                    }
                }
                println!("{:<36}  {:<8}  {:<24}  PUBLIC PART", "ID", "STATUS", "NAME");
                for k in keys {
                    let status = if k.active { "active" } else { "inactive" };
                    println!(
                        "{:<36}  {:<8}  {:<24}  {}",
                        k.id, status, k.name, k.public_key
                    );
                }
                return Ok(());
            }
            ApiKeyCommand::Deactivate { id, email } => {
                let u = user_of(email).await?;
                let k = api_keys::set_active(&db, &u.tenant_id, &id, false)
                    .await
                    .map_err(|e| e.to_string())?;
                println!("API key {} deactivated", k.id);
                ("deactivate", k, u)
            }
            ApiKeyCommand::Activate { id, email } => {
                let u = user_of(email).await?;
                let k = api_keys::set_active(&db, &u.tenant_id, &id, true)
                    .await
                    .map_err(|e| e.to_string())?;
                println!("API key {} activated", k.id);
                ("activate", k, u)
            }
            ApiKeyCommand::Reset { id, email } => {
                let u = user_of(email).await?;
                let made = api_keys::reset_secret(&db, &hasher, &u.tenant_id, &id)
                    .await
                    .map_err(|e| e.to_string())?;
                println!("{}", made.key);
                ("reset_secret", made.info, u)
            }
            ApiKeyCommand::Delete { id, email } => {
                let u = user_of(email).await?;
                let k = api_keys::delete(&db, &u.tenant_id, &id)
                    .await
                    .map_err(|e| e.to_string())?;
                println!("API key {} deleted", k.id);
                ("delete", k, u)
            }
        };
        let entry = Entry::system_via(
            &key.tenant_id,
            action,
            "api_key",
            &key.id,
            owner.name(),
            CLI,
        );
        audit::record(&db, entry).await.map_err(|e| e.to_string())
    }
    .await;
    db.close();
    result
}
