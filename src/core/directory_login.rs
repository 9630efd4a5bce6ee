//! A directory user signing in: the directory checks the password, fleetbox keeps a local
//! user for them (made at the first sign-in, identity provider `ldap`, no password) and
//! re-syncs that user's roles from the directory's groups at every sign-in. A local user of
//! the same name always wins: the directory is only asked about names fleetbox does not know.

use super::audit::{self, Entry};
use super::users::{self, NewUser, User};
use crate::db::Db;
use crate::directory::{Directory, DirectoryUser, Refusal};
use crate::error::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::json;

pub async fn authenticate(
    db: &Db,
    dir: &Directory,
    tenant_id: &str,
    login: &str,
    password: &str,
) -> Result<User> {
    let found = match dir.authenticate(login, password).await? {
        Ok(found) => found,
        Err(Refusal::BadCredentials) => {
            return Err(Error::Unauthorized("username/password do not match".into()))
        }
        Err(Refusal::Disabled) => {
            return Err(Error::Unauthorized(
                "this account is disabled in the directory".into(),
            ))
        }
    };
    let known = {
        let name = found.username.clone();
        db.read(move |conn| ldap_user_id(conn, &name)).await?
    };
    match known {
        Some(id) => resync(db, &id, &found).await,
        None => first_sign_in(db, tenant_id, &found).await,
    }
}

/// The local user kept for a directory user (usernames are unique across tenants).
fn ldap_user_id(conn: &Connection, username: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT id FROM users WHERE username = ?1 AND identity_provider = 'ldap'",
            [username],
            |r| r.get(0),
        )
        .optional()?)
}

/// The `(id, name)` of each named role that exists in the tenant, sorted by id; a directory
/// group mapped to a role that was since deleted is skipped (and logged), not a reason to
/// refuse the sign-in.
fn existing_roles(
    conn: &Connection,
    tenant_id: &str,
    names: &[String],
) -> Result<Vec<(String, String)>> {
    let mut found = Vec::new();
    for name in names {
        let name = super::roles::resolve_alias(name);
        let id: Option<String> = conn
            .query_row(
                "SELECT id FROM roles WHERE tenant_id = ?1 AND name = ?2",
                params![tenant_id, name],
                |r| r.get(0),
            )
            .optional()?;
        match id {
            Some(id) => found.push((id, name.to_string())),
            None => tracing::warn!(role = name, "directory group maps to an unknown role"),
        }
    }
    found.sort();
    found.dedup();
    Ok(found)
}

async fn first_sign_in(db: &Db, tenant_id: &str, found: &DirectoryUser) -> Result<User> {
    let (tenant, f) = (tenant_id.to_string(), found.clone());
    let user = db
        .write(move |conn| {
            let roles = existing_roles(conn, &tenant, &f.roles)?;
            // The directory's email is kept only when no other user has it already.
            let email = f.email.clone().filter(|e| {
                users::check_email("email", e).is_ok()
                    && users::ensure_names_free(conn, Some(e), None, "").is_ok()
            });
            users::ensure_names_free(conn, None, Some(&f.username), "").map_err(|_| {
                Error::Unauthorized(
                    "a local user of that name exists; the directory account cannot sign in".into(),
                )
            })?;
            let new = NewUser {
                tenant_id: tenant.clone(),
                email,
                username: Some(f.username.clone()),
                identity_provider: "ldap".into(),
                roles: roles.into_iter().map(|(_, name)| name).collect(),
                ..Default::default()
            };
            let prepared = users::Prepared::without_password(new)?;
            users::insert_in(conn, &prepared)
        })
        .await?;
    let entry = Entry::system(&user.tenant_id, "create", "user", &user.id).detail(json!({
        "username": user.username, "identityProvider": "ldap", "dn": found.dn, "roles": user.roles,
    }));
    audit::record(db, entry).await?;
    Ok(user)
}

async fn resync(db: &Db, user_id: &str, found: &DirectoryUser) -> Result<User> {
    let (id, f) = (user_id.to_string(), found.clone());
    let (user, changed) = db
        .write(move |conn| {
            let before = users::get_in(conn, &id)?;
            if !users::may_sign_in(&before.status) {
                return Err(Error::Unauthorized("this account is disabled".into()));
            }
            let want: Vec<String> = existing_roles(conn, &before.tenant_id, &f.roles)?
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            let changed = want != before.role_ids;
            if changed {
                conn.execute("DELETE FROM user_roles WHERE user_id = ?1", [&id])?;
                for rid in &want {
                    conn.execute(
                        "INSERT INTO user_roles (user_id, role_id) VALUES (?1, ?2)",
                        params![id, rid],
                    )?;
                }
                conn.execute(
                    "UPDATE users SET updated_ts = ?1 WHERE id = ?2",
                    params![crate::db::now_ms(), id],
                )?;
            }
            Ok((users::get_in(conn, &id)?, changed))
        })
        .await?;
    if changed {
        let entry = Entry::system(&user.tenant_id, "update", "user", &user.id)
            .detail(json!({"roles": user.roles, "source": "ldap", "dn": found.dn}));
        audit::record(db, entry).await?;
    }
    Ok(user)
}
