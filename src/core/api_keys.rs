//! API keys: principals of their own. A key belongs to a tenant, is usually owned by a user,
//! and holds the permissions of its own roles (Pelion's policy groups), not its owner's.
//!
//! The credential is `ak_1` + the tenant id (32 hex, base64) + the key id (32 hex) + a
//! 32-character secret: 111 characters. The first 79 are the key's public part, which lists
//! show; the secret is shown once, when the key is made or its secret reset, and only its keyed
//! hash (HMAC-SHA256 under a server key) is stored, so checking a key costs one hash and one
//! indexed read instead of an argon2 run per request.

use super::paging::{Listed, Query};
use super::principal::{Kind, Principal};
use super::roles;
use crate::crypto::vault::Vault;
use crate::db::{now_ms, Db};
use crate::error::{Error, Result};
use base64::Engine;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::sync::Arc;

const PREFIX: &str = "ak_1";
const PUBLIC_LEN: usize = 79;
const SECRET_LEN: usize = 32;
pub const MAX_NAME_LEN: usize = 100;

#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: String,
    pub tenant_id: String,
    pub owner_id: Option<String>,
    pub name: String,
    /// The key without its secret.
    pub public_key: String,
    pub active: bool,
    pub etag: i64,
    pub created_ts: i64,
    pub updated_ts: i64,
    pub last_used_ts: Option<i64>,
    /// Ids of the roles the key is a member of.
    pub role_ids: Vec<String>,
}

/// A key as made or reset: `key` is the whole credential, shown this once.
pub struct Created {
    pub key: String,
    pub info: ApiKey,
}

pub struct NewKey {
    pub tenant_id: String,
    pub owner_id: Option<String>,
    pub name: String,
    pub role_ids: Vec<String>,
    pub active: bool,
}

const COLUMNS: &str = "id, tenant_id, owner_id, name, public_key, status, etag, created_ts, \
                       updated_ts, last_used_ts";

fn from_row(r: &Row) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        id: r.get(0)?,
        tenant_id: r.get(1)?,
        owner_id: r.get(2)?,
        name: r.get(3)?,
        public_key: r.get(4)?,
        active: r.get::<_, String>(5)? == "active",
        etag: r.get(6)?,
        created_ts: r.get(7)?,
        updated_ts: r.get(8)?,
        last_used_ts: r.get(9)?,
        role_ids: Vec::new(),
    })
}

pub fn check_name(name: &str) -> Result<String> {
    super::personal_tokens::check_label("name", name, MAX_NAME_LEN)
}

fn simple(id: &str) -> String {
    id.replace('-', "")
}

fn public_part(tenant_id: &str, key_id: &str) -> String {
    let tenant = base64::engine::general_purpose::STANDARD_NO_PAD.encode(simple(tenant_id));
    format!("{PREFIX}{tenant}{}", simple(key_id))
}

fn new_secret() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rngs::OsRng;
    (0..SECRET_LEN)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The public part and the secret of something shaped like an API key.
pub fn split(credential: &str) -> Option<(&str, &str)> {
    if !credential.starts_with(PREFIX)
        || credential.len() != PUBLIC_LEN + SECRET_LEN
        || !credential.is_ascii()
    {
        return None;
    }
    Some(credential.split_at(PUBLIC_LEN))
}

/// Does this look like an API key (rather than a JWT)?
pub fn is_api_key(credential: &str) -> bool {
    credential.starts_with("ak_")
}

fn hash_secret(hasher: &Vault, key_id: &str, secret: &str) -> String {
    // Bound to the key id, so a row's hash cannot be moved to another key.
    hasher.keyed_hash(&format!("api-key:{key_id}:{secret}"))
}

pub async fn create(db: &Db, hasher: &Vault, new: NewKey) -> Result<Created> {
    let name = check_name(&new.name)?;
    let id = super::new_id();
    let public = public_part(&new.tenant_id, &id);
    let secret = new_secret();
    let hash = hash_secret(hasher, &id, &secret);
    let key = format!("{public}{secret}");
    let info = db
        .write(move |conn| {
            if let Some(owner) = &new.owner_id {
                ensure_owner_in(conn, &new.tenant_id, owner)?;
            }
            let now = now_ms();
            conn.execute(
                "INSERT INTO api_keys (id, tenant_id, owner_id, name, public_key, secret_hash,
                                       status, created_ts, updated_ts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
                params![
                    id,
                    new.tenant_id,
                    new.owner_id,
                    name,
                    public,
                    hash,
                    if new.active { "active" } else { "inactive" },
                    now
                ],
            )?;
            set_roles_in(conn, &new.tenant_id, &id, &new.role_ids)?;
            get_in(conn, &new.tenant_id, &id)
        })
        .await?;
    Ok(Created { key, info })
}

/// Replaces a key's secret: the old one stops working at once; id and public part stay.
pub async fn reset_secret(db: &Db, hasher: &Vault, tenant_id: &str, id: &str) -> Result<Created> {
    let secret = new_secret();
    let hash = hash_secret(hasher, id, &secret);
    let (tenant_id, id) = (tenant_id.to_string(), id.to_string());
    let info = db
        .write(move |conn| {
            let n = conn.execute(
                "UPDATE api_keys SET secret_hash = ?1, etag = etag + 1, updated_ts = ?2
                 WHERE id = ?3 AND tenant_id = ?4",
                params![hash, now_ms(), id, tenant_id],
            )?;
            if n == 0 {
                return Err(not_found());
            }
            get_in(conn, &tenant_id, &id)
        })
        .await?;
    Ok(Created {
        key: format!("{}{secret}", info.public_key),
        info,
    })
}

fn not_found() -> Error {
    Error::NotFound("API key not found".into())
}

pub(crate) fn get_in(conn: &Connection, tenant_id: &str, id: &str) -> Result<ApiKey> {
    let mut k = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM api_keys WHERE id = ?1 AND tenant_id = ?2"),
            params![id, tenant_id],
            from_row,
        )
        .optional()?
        .ok_or_else(not_found)?;
    k.role_ids = role_ids_in(conn, &k.id)?;
    Ok(k)
}

fn role_ids_in(conn: &Connection, key_id: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT role_id FROM api_key_roles WHERE api_key_id = ?1 ORDER BY role_id",
    )?;
    let ids = stmt
        .query_map([key_id], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(ids)
}

pub async fn get(db: &Db, tenant_id: &str, id: &str) -> Result<ApiKey> {
    let (tenant_id, id) = (tenant_id.to_string(), id.to_string());
    db.read(move |conn| get_in(conn, &tenant_id, &id)).await
}

/// A page of a tenant's keys in creation order (optionally only one owner's).
pub async fn list(
    db: &Db,
    tenant_id: &str,
    owner: Option<&str>,
    page: &Query,
) -> Result<Listed<ApiKey>> {
    let filter = KeyFilter {
        owner: owner.map(str::to_string),
        ..Default::default()
    };
    list_filtered(db, tenant_id, filter, page).await
}

/// Which keys a list shows: all of a tenant's unless narrowed.
#[derive(Debug, Clone, Default)]
pub struct KeyFilter {
    pub owner: Option<String>,
    /// The key's public part (never its secret).
    pub public_key: Option<String>,
    /// Only members of this role.
    pub role_id: Option<String>,
}

pub async fn list_filtered(
    db: &Db,
    tenant_id: &str,
    f: KeyFilter,
    page: &Query,
) -> Result<Listed<ApiKey>> {
    let (tenant_id, page) = (tenant_id.to_string(), page.clone());
    db.read(move |conn| {
        let cond = "tenant_id = ? AND (? IS NULL OR owner_id = ?) AND (? IS NULL OR public_key = ?)
                    AND (? IS NULL OR id IN (SELECT api_key_id FROM api_key_roles WHERE role_id = ?))";
        let args: Vec<SqlValue> = vec![
            tenant_id.into(),
            f.owner.clone().into(),
            f.owner.into(),
            f.public_key.clone().into(),
            f.public_key.into(),
            f.role_id.clone().into(),
            f.role_id.into(),
        ];
        let listed = page.run(conn, "api_keys", COLUMNS, cond, args, from_row)?;
        let keys = listed
            .items
            .into_iter()
            .map(|mut k| {
                k.role_ids = role_ids_in(conn, &k.id)?;
                Ok(k)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Listed {
            items: keys,
            ..listed
        })
    })
    .await
}

/// Turns a key on or off; an inactive key is refused at once.
pub async fn set_active(db: &Db, tenant_id: &str, id: &str, active: bool) -> Result<ApiKey> {
    let (tenant_id, id) = (tenant_id.to_string(), id.to_string());
    db.write(move |conn| {
        let n = conn.execute(
            "UPDATE api_keys SET status = ?1, etag = etag + 1, updated_ts = ?2
             WHERE id = ?3 AND tenant_id = ?4",
            params![
                if active { "active" } else { "inactive" },
                now_ms(),
                id,
                tenant_id
            ],
        )?;
        if n == 0 {
            return Err(not_found());
        }
        get_in(conn, &tenant_id, &id)
    })
    .await
}

/// A change to a key: `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct KeyChange {
    pub name: Option<String>,
    pub active: Option<bool>,
    pub owner_id: Option<String>,
}

/// Renames a key, turns it on or off or gives it another owner (of the same tenant).
pub async fn update(db: &Db, tenant_id: &str, id: &str, c: KeyChange) -> Result<ApiKey> {
    let name = c.name.as_deref().map(check_name).transpose()?;
    let (tenant_id, id) = (tenant_id.to_string(), id.to_string());
    db.write(move |conn| {
        let before = get_in(conn, &tenant_id, &id)?;
        if let Some(owner) = &c.owner_id {
            ensure_owner_in(conn, &tenant_id, owner)?;
        }
        let changed = name.as_ref().is_some_and(|n| *n != before.name)
            || c.active.is_some_and(|a| a != before.active)
            || c.owner_id
                .as_ref()
                .is_some_and(|o| Some(o) != before.owner_id.as_ref());
        if changed {
            conn.execute(
                "UPDATE api_keys SET name = COALESCE(?1, name), status = COALESCE(?2, status),
                        owner_id = COALESCE(?3, owner_id), etag = etag + 1, updated_ts = ?4
                 WHERE id = ?5",
                params![
                    name,
                    c.active.map(|a| if a { "active" } else { "inactive" }),
                    c.owner_id,
                    now_ms(),
                    id
                ],
            )?;
        }
        get_in(conn, &tenant_id, &id)
    })
    .await
}

fn ensure_owner_in(conn: &Connection, tenant_id: &str, owner: &str) -> Result<()> {
    let owner_tenant: Option<String> = conn
        .query_row("SELECT tenant_id FROM users WHERE id = ?1", [owner], |r| {
            r.get(0)
        })
        .optional()?;
    if owner_tenant.as_deref() != Some(tenant_id) {
        return Err(Error::invalid(
            "owner",
            "owner must be a user of the same account",
        ));
    }
    Ok(())
}

pub async fn delete(db: &Db, tenant_id: &str, id: &str) -> Result<ApiKey> {
    let (tenant_id, id) = (tenant_id.to_string(), id.to_string());
    db.write(move |conn| {
        let k = get_in(conn, &tenant_id, &id)?;
        conn.execute("DELETE FROM api_keys WHERE id = ?1", [&id])?;
        Ok(k)
    })
    .await
}

/// Replaces a key's roles (ids of roles of the key's tenant).
pub(crate) fn set_roles_in(
    conn: &Connection,
    tenant_id: &str,
    key_id: &str,
    role_ids: &[String],
) -> Result<()> {
    for rid in role_ids {
        let found: Option<String> = conn
            .query_row(
                "SELECT id FROM roles WHERE id = ?1 AND tenant_id = ?2",
                params![rid, tenant_id],
                |r| r.get(0),
            )
            .optional()?;
        if found.is_none() {
            return Err(Error::invalid("groups", format!("no such group: {rid}")));
        }
    }
    conn.execute("DELETE FROM api_key_roles WHERE api_key_id = ?1", [key_id])?;
    for rid in role_ids {
        conn.execute(
            "INSERT OR IGNORE INTO api_key_roles (api_key_id, role_id) VALUES (?1, ?2)",
            params![key_id, rid],
        )?;
    }
    Ok(())
}

/// Records a key's last use (coarsely: see `sessions::note_use_in`).
pub(crate) const NOTE_USE: &str = "UPDATE api_keys SET last_used_ts = ?1 WHERE id = ?2";

/// The principal an API key stands for: the key must exist with this secret, be active, and
/// its tenant (and owner, if it has one) be active. One indexed read.
pub async fn resolve(db: &Db, hasher: &Arc<Vault>, credential: &str) -> Result<Principal> {
    let refused = || Error::Unauthorized("invalid API key".into());
    let (public, secret) = split(credential).ok_or_else(refused)?;
    let (public, secret) = (public.to_string(), secret.to_string());
    let hasher_key = hasher.clone();
    let db2 = db.clone();
    db.read(move |conn| {
        type Row = (
            String,
            String,
            Option<String>,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<i64>,
        );
        let row: Option<Row> = conn
            .prepare_cached(
                "SELECT k.id, k.tenant_id, k.owner_id, k.secret_hash, k.status, n.status,
                        COALESCE(u.email, u.username), u.status, k.last_used_ts
                 FROM api_keys k
                 JOIN tenants n ON n.id = k.tenant_id
                 LEFT JOIN users u ON u.id = k.owner_id
                 WHERE k.public_key = ?1",
            )?
            .query_row([&public], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                ))
            })
            .optional()?;
        let Some((id, tenant, owner, hash, status, tenant_status, name, owner_status, last)) = row
        else {
            return Err(refused());
        };
        let given = hash_secret(&hasher_key, &id, &secret);
        if !crate::crypto::constant_time_eq(given.as_bytes(), hash.as_bytes()) {
            return Err(refused());
        }
        if status != "active" {
            return Err(Error::Unauthorized("API key is not active".into()));
        }
        if tenant_status != "active" {
            return Err(Error::Unauthorized("tenant account suspended".into()));
        }
        if owner.is_some()
            && !owner_status
                .as_deref()
                .is_some_and(super::users::may_sign_in)
        {
            return Err(Error::Unauthorized("the key's owner is not active".into()));
        }
        super::sessions::note_use_in(&db2, NOTE_USE, &id, last);
        Ok(Principal {
            permissions: roles::permissions_of_api_key(conn, &id)?,
            tenant_id: tenant,
            user_id: owner.unwrap_or_default(),
            email: name.unwrap_or_default(),
            kind: Kind::ApiKey,
            token_id: id,
            address: String::new(),
            request_id: String::new(),
            tfa_setup_required: false,
            device_scope: Default::default(),
            release_scope: Default::default(),
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anatomy() {
        let tenant = crate::core::new_id();
        let id = crate::core::new_id();
        let public = public_part(&tenant, &id);
        assert_eq!(public.len(), PUBLIC_LEN);
        assert!(public.ends_with(&simple(&id)));
        let key = format!("{public}{}", new_secret());
        assert_eq!(key.len(), 111);
        let (p, s) = split(&key).unwrap();
        assert_eq!((p, s.len()), (public.as_str(), SECRET_LEN));
        assert!(split(&key[..110]).is_none());
        assert!(split("eyJhbGciOi").is_none());
    }
}
