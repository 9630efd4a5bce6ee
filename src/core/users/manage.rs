//! What administrators (and users on themselves) do to user accounts: list with filters,
//! update email/password/roles, delete — never leaving a tenant without an administrator.

use super::{get_in, with_roles, User, COLUMNS};
use crate::core::paging::{Listed, Query};
use crate::core::roles;
use crate::crypto::password;
use crate::db::{now_ms, Db};
use crate::error::{Error, Result};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection};

/// List filters (Mender's `id`, `email`, `created_*`, `updated_*`); times in Unix seconds,
/// inclusive.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub ids: Vec<String>,
    pub emails: Vec<String>,
    pub created_after: Option<i64>,
    pub created_before: Option<i64>,
    pub updated_after: Option<i64>,
    pub updated_before: Option<i64>,
    /// Only users with one of these statuses / none of these (Pelion's `status__in|nin`).
    pub statuses: Vec<String>,
    pub not_statuses: Vec<String>,
    /// Only users signing in through one of these identity providers (`local`, `ldap`).
    pub identity_providers: Vec<String>,
    /// Only members of this role.
    pub role_id: Option<String>,
    /// Only users with one of these usernames (Cybus's `username[eq]`).
    pub usernames: Vec<String>,
    /// Leave out users a service generated.
    pub exclude_auto_generated: bool,
}

/// One page of a tenant's users in creation order, and the number matching if asked.
pub async fn list(db: &Db, tenant_id: &str, f: Filter, page: &Query) -> Result<Listed<User>> {
    let (tenant_id, page) = (tenant_id.to_string(), page.clone());
    db.read(move |conn| {
        let mut clauses = vec!["tenant_id = ?".to_string()];
        let mut args: Vec<SqlValue> = vec![tenant_id.into()];
        for (column, values, not) in [
            ("id", &f.ids, ""),
            ("email", &f.emails, ""),
            ("username", &f.usernames, ""),
            ("status", &f.statuses, ""),
            ("status", &f.not_statuses, "NOT "),
            ("identity_provider", &f.identity_providers, ""),
        ] {
            if !values.is_empty() {
                clauses.push(format!(
                    "{column} {not}IN ({})",
                    vec!["?"; values.len()].join(", ")
                ));
                args.extend(values.iter().map(|v| SqlValue::Text(v.clone())));
            }
        }
        if f.exclude_auto_generated {
            clauses.push("auto_generated = 0".into());
        }
        if let Some(role) = &f.role_id {
            clauses.push("id IN (SELECT user_id FROM user_roles WHERE role_id = ?)".into());
            args.push(SqlValue::Text(role.clone()));
        }
        for (cond, secs) in [
            ("created_ts >= ?", f.created_after),
            ("created_ts <= ?", f.created_before.map(|s| s + 1)),
            ("updated_ts >= ?", f.updated_after),
            ("updated_ts <= ?", f.updated_before.map(|s| s + 1)),
        ] {
            if let Some(s) = secs {
                clauses.push(cond.to_string());
                // `before` is inclusive of its whole second: compare against its last millisecond.
                let ms = if cond.contains("<=") {
                    s * 1000 - 1
                } else {
                    s * 1000
                };
                args.push(SqlValue::Integer(ms));
            }
        }
        let cond = clauses.join(" AND ");
        let listed = page.run(conn, "users", COLUMNS, &cond, args, super::from_row)?;
        let users = listed
            .items
            .into_iter()
            .map(|u| with_roles(conn, u))
            .collect::<Result<Vec<_>>>()?;
        Ok(Listed {
            items: users,
            ..listed
        })
    })
    .await
}

/// A change to a user. `None` keeps the current value.
#[derive(Debug, Default, Clone)]
pub struct Update {
    pub email: Option<String>,
    pub password: Option<String>,
    /// Required when users change their own password.
    pub current_password: Option<String>,
    pub roles: Option<Vec<String>>,
}

/// Who asks for an update: users changing themselves must prove their current password to
/// change it; the session they use survives a password change, their other sessions don't.
pub struct Actor<'a> {
    pub user_id: &'a str,
    pub token_id: &'a str,
}

pub async fn update(
    db: &Db,
    tenant_id: &str,
    id: &str,
    change: Update,
    actor: Actor<'_>,
) -> Result<User> {
    let own = actor.user_id == id;
    let target = super::get(db, tenant_id, id).await?;
    if let Some(email) = &change.email {
        super::check_email("email", email)?;
    }
    let new_hash = match &change.password {
        None => None,
        Some(_) if target.identity_provider != "local" => {
            return Err(Error::Unprocessable(
                "the password of a directory (LDAP) user is changed in the directory".into(),
            ))
        }
        Some(pw) => {
            let email = change.email.as_deref().or(target.email.as_deref());
            password::policy()
                .check("password", pw, &[email, target.username.as_deref()])
                .map_err(|e| Error::Unprocessable(e.to_string()))?;
            if own {
                let current = change.current_password.clone().ok_or_else(|| {
                    Error::Unprocessable(
                        "current_password is required to change your own password".into(),
                    )
                })?;
                let stored = stored_hash(db, id).await?;
                let ok = password::verify_in_pool(current, stored).await?;
                if !ok {
                    return Err(Error::Unprocessable(
                        "current_password does not match".into(),
                    ));
                }
            }
            Some(password::hash_in_pool(pw.clone()).await?)
        }
    };
    let (tenant_id, id, keep_jti) = (
        tenant_id.to_string(),
        id.to_string(),
        actor.token_id.to_string(),
    );
    db.write(move |conn| {
        let now = now_ms();
        if let Some(email) = &change.email {
            super::ensure_names_free(conn, Some(email), None, &id)?;
            // A new address a user typed for themselves is theirs to prove; one an
            // administrator sets is vouched for, like the address a user is created with.
            conn.execute(
                "UPDATE users SET email = ?1, updated_ts = ?2, etag = etag + 1,
                        email_verified = CASE WHEN ?4 AND email != ?1 THEN 0 ELSE email_verified END
                 WHERE id = ?3",
                params![email, now, id, own],
            )?;
        }
        if let Some(hash) = &new_hash {
            conn.execute(
                "UPDATE users SET password_hash = ?1, updated_ts = ?2, password_changed_ts = ?2,
                                  etag = etag + 1 WHERE id = ?3",
                params![hash, now, id],
            )?;
            // A new password ends every other login of this user.
            conn.execute(
                "UPDATE user_tokens SET revoked_ts = ?1
                 WHERE user_id = ?2 AND kind = 'session' AND jti != ?3 AND revoked_ts IS NULL",
                params![now, id, keep_jti],
            )?;
        }
        if let Some(names) = &change.roles {
            set_roles(conn, &tenant_id, &id, names)?;
            conn.execute(
                "UPDATE users SET updated_ts = ?1, etag = etag + 1 WHERE id = ?2",
                params![now, id],
            )?;
            ensure_an_admin_remains(conn, &tenant_id)?;
        }
        get_in(conn, &id)
    })
    .await
}

async fn stored_hash(db: &Db, id: &str) -> Result<String> {
    let id = id.to_string();
    db.read(move |conn| {
        let h: Option<String> = conn.query_row(
            "SELECT password_hash FROM users WHERE id = ?1",
            [&id],
            |r| r.get(0),
        )?;
        Ok(h.unwrap_or_else(|| password::dummy_hash().to_string()))
    })
    .await
}

/// Replaces a user's roles (names, or the CLI aliases), refusing unknown ones.
pub(crate) fn set_roles(
    conn: &Connection,
    tenant_id: &str,
    user_id: &str,
    names: &[String],
) -> Result<()> {
    let ids = names
        .iter()
        .map(|n| roles::id_by_name(conn, tenant_id, roles::resolve_alias(n)))
        .collect::<Result<Vec<_>>>()?;
    conn.execute("DELETE FROM user_roles WHERE user_id = ?1", [user_id])?;
    for rid in ids {
        conn.execute(
            "INSERT OR IGNORE INTO user_roles (user_id, role_id) VALUES (?1, ?2)",
            params![user_id, rid],
        )?;
    }
    Ok(())
}

/// A tenant must keep at least one active user with the built-in admin role, or nobody could
/// manage it any more.
pub(crate) fn ensure_an_admin_remains(conn: &Connection, tenant_id: &str) -> Result<()> {
    let admins: i64 = conn.query_row(
        "SELECT COUNT(*) FROM users u
         JOIN user_roles ur ON ur.user_id = u.id
         JOIN roles r ON r.id = ur.role_id
         WHERE u.tenant_id = ?1 AND u.status = 'active' AND r.name = ?2",
        params![tenant_id, roles::ADMIN],
        |r| r.get(0),
    )?;
    if admins == 0 {
        return Err(Error::Conflict(
            "the last administrator of the organisation cannot be removed or lose the admin role"
                .into(),
        ));
    }
    Ok(())
}

/// Deletes a user (their tokens, role memberships and codes go with them).
pub async fn delete(db: &Db, tenant_id: &str, id: &str) -> Result<User> {
    let (tenant_id, id) = (tenant_id.to_string(), id.to_string());
    db.write(move |conn| {
        let user = get_in(conn, &id)?;
        if user.tenant_id != tenant_id {
            return Err(Error::NotFound("user not found".into()));
        }
        conn.execute("DELETE FROM users WHERE id = ?1", [&id])?;
        ensure_an_admin_remains(conn, &tenant_id)?;
        Ok(user)
    })
    .await
}
