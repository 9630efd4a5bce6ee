//! Users: one row per person whichever API created them.

pub mod access;
pub mod manage;
pub mod profile;
pub use manage::{delete, list, update, Filter, Update};
pub use profile::{edit, Edit, Profile, ProfileChange};

use super::roles;
use crate::crypto::password;
use crate::db::{now_ms, Db};
use crate::error::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension, Row};

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub tenant_id: String,
    pub email: Option<String>,
    pub username: Option<String>,
    /// `local` (fleetbox checks the password) or `ldap`.
    pub identity_provider: String,
    pub status: String,
    pub created_ts: i64,
    pub updated_ts: i64,
    pub login_ts: Option<i64>,
    /// The names of the user's roles, sorted.
    pub roles: Vec<String>,
    /// The ids of the same roles, sorted by id (Pelion shows groups by id).
    pub role_ids: Vec<String>,
    pub totp_enabled: bool,
    /// A TOTP secret is set (enrolling or enrolled).
    pub totp_pending: bool,
    /// Contact details and the rest of what Pelion shows of a user.
    pub profile: Profile,
}

impl User {
    /// How the user is shown and audited: the email, else the username.
    pub fn name(&self) -> &str {
        self.email
            .as_deref()
            .or(self.username.as_deref())
            .unwrap_or_default()
    }

    /// `enabled`, `unverified` (enrolment started, no good code yet) or `disabled`.
    pub fn tfa_status(&self) -> &'static str {
        match (self.totp_enabled, self.totp_pending) {
            (true, _) => "enabled",
            (false, true) => "unverified",
            _ => "disabled",
        }
    }
}

pub(crate) const COLUMNS: &str =
    "id, tenant_id, email, status, created_ts, updated_ts, login_ts, totp_enabled,
     totp_secret IS NOT NULL, username, identity_provider, full_name, phone_number, address,
     gtc_accepted, marketing_accepted, custom_fields, email_verified, password_changed_ts, etag";

pub(crate) fn from_row(r: &Row) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        tenant_id: r.get(1)?,
        email: r.get(2)?,
        status: r.get(3)?,
        created_ts: r.get(4)?,
        updated_ts: r.get(5)?,
        login_ts: r.get(6)?,
        totp_enabled: r.get(7)?,
        totp_pending: r.get(8)?,
        username: r.get(9)?,
        identity_provider: r.get(10)?,
        roles: Vec::new(),
        role_ids: Vec::new(),
        profile: Profile {
            full_name: r.get(11)?,
            phone_number: r.get(12)?,
            address: r.get(13)?,
            gtc_accepted: r.get(14)?,
            marketing_accepted: r.get(15)?,
            custom_fields: serde_json::from_str(&r.get::<_, String>(16)?).unwrap_or_default(),
            email_verified: r.get(17)?,
            password_changed_ts: r.get(18)?,
            etag: r.get(19)?,
        },
    })
}

pub(crate) fn with_roles(conn: &Connection, mut u: User) -> Result<User> {
    let mut both = roles::of_user(conn, &u.id)?;
    both.sort_by(|a, b| a.1.cmp(&b.1));
    u.roles = both.iter().map(|(_, name)| name.clone()).collect();
    both.sort();
    u.role_ids = both.into_iter().map(|(id, _)| id).collect();
    Ok(u)
}

pub const MAX_EMAIL_LEN: usize = 254;

/// A plausible email address: one `@`, something on both sides, a dot in the domain, ASCII,
/// no spaces.
pub fn check_email(field: &str, email: &str) -> Result<()> {
    if email.is_empty() {
        return Err(Error::invalid(field, format!("{field} is required")));
    }
    let ok = email.len() <= MAX_EMAIL_LEN
        && email.is_ascii()
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }
            None => false,
        };
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("{field} is not a valid email address"),
        ))
    }
}

pub const MAX_USERNAME_LEN: usize = 128;

/// A username: 3 to 128 characters, no spaces, control characters or `@` (so that a login
/// name is either an email or a username, never both).
pub fn check_username(field: &str, name: &str) -> Result<()> {
    let n = name.chars().count();
    if !(3..=MAX_USERNAME_LEN).contains(&n) {
        return Err(Error::invalid(
            field,
            format!("{field} must be 3 to {MAX_USERNAME_LEN} characters long"),
        ));
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '@')
    {
        return Err(Error::invalid(
            field,
            format!("{field} must not contain spaces, control characters or @"),
        ));
    }
    Ok(())
}

pub const IDENTITY_PROVIDERS: &[&str] = &["local", "ldap"];

/// Every user status. `reset` users sign in (and must change their password); `invited`,
/// `enrolling`, `inactive` and `suspended` ones do not.
pub const STATUSES: &[&str] = &[
    "active",
    "inactive",
    "invited",
    "suspended",
    "reset",
    "enrolling",
];

/// Whether a user with this status may sign in and use their tokens.
pub fn may_sign_in(status: &str) -> bool {
    status == "active" || status == "reset"
}

#[derive(Default)]
pub struct NewUser {
    pub tenant_id: String,
    pub email: Option<String>,
    pub username: Option<String>,
    /// Required for a `local` user; an `ldap` user has none.
    pub password: Option<String>,
    pub identity_provider: String,
    pub roles: Vec<String>,
    /// Contact details given at creation (checked like a change).
    pub profile: ProfileChange,
    /// `active` when None.
    pub status: Option<String>,
    /// Grant types, own permissions and the rest (checked by `create`).
    pub access: access::AccessChange,
    /// A password already hashed (argon2id) instead of `password`: a client registration
    /// keeps only the hash of the password it was sent.
    pub password_hash: Option<String>,
}

impl NewUser {
    /// A local user known by email (how Mender makes users).
    pub fn local(tenant_id: &str, email: &str, password: &str, roles: Vec<String>) -> NewUser {
        NewUser {
            tenant_id: tenant_id.into(),
            email: Some(email.into()),
            username: None,
            password: Some(password.into()),
            identity_provider: "local".into(),
            roles,
            ..Default::default()
        }
    }
}

/// Refuses an email or username that is already some other user's email or username: a login
/// by either must name one user, whichever dialect it came through.
pub(crate) fn ensure_names_free(
    conn: &Connection,
    email: Option<&str>,
    username: Option<&str>,
    except_id: &str,
) -> Result<()> {
    for (field, value) in [("email", email), ("username", username)] {
        let Some(value) = value else { continue };
        let taken: Option<String> = conn
            .query_row(
                "SELECT id FROM users WHERE (email = ?1 OR username = ?1) AND id != ?2",
                params![value, except_id],
                |r| r.get(0),
            )
            .optional()?;
        if taken.is_some() {
            return Err(Error::Conflict(format!(
                "user with the same {field} already exists"
            )));
        }
    }
    Ok(())
}

fn signs_in_with_password(a: &access::AccessChange) -> bool {
    a.grant_types
        .as_ref()
        .is_none_or(|g| g.iter().any(|g| g.method == "password"))
}

/// A new user checked, with its password hashed, ready to insert.
pub struct Prepared {
    new: NewUser,
    access: access::AccessChange,
    status: String,
    hash: Option<String>,
}

pub async fn create(db: &Db, new: NewUser) -> Result<User> {
    let p = prepare(new).await?;
    db.write(move |conn| insert_in(conn, &p)).await
}

/// Checks a new user and hashes its password (outside any transaction: hashing is slow).
pub async fn prepare(new: NewUser) -> Result<Prepared> {
    let (access, status) = check_new(&new)?;
    let hash = match (
        &new.password,
        &new.password_hash,
        new.identity_provider.as_str(),
    ) {
        (Some(pw), _, "local") => {
            let names = [new.email.as_deref(), new.username.as_deref()];
            password::policy().check("password", pw, &names)?;
            Some(password::hash_in_pool(pw.clone()).await?)
        }
        (None, Some(hash), "local") => Some(hash.clone()),
        // A user who signs in with a client certificate only needs no password.
        (None, None, "local") if signs_in_with_password(&access) => {
            return Err(Error::invalid("password", "password is required"))
        }
        _ => None,
    };
    Ok(Prepared {
        new,
        access,
        status,
        hash,
    })
}

impl Prepared {
    /// A user whose password lives elsewhere (a directory): nothing to hash, so it can be
    /// prepared inside the transaction that inserts it.
    pub fn without_password(new: NewUser) -> Result<Prepared> {
        if new.identity_provider == "local" {
            return Err(Error::Internal(
                "a local user needs its password prepared".into(),
            ));
        }
        let (access, status) = check_new(&new)?;
        Ok(Prepared {
            new,
            access,
            status,
            hash: None,
        })
    }
}

/// Everything about a new user that needs no hashing: names, provider, profile, access.
fn check_new(new: &NewUser) -> Result<(access::AccessChange, String)> {
    if new.email.is_none() && new.username.is_none() {
        return Err(Error::invalid("email", "email or username is required"));
    }
    if let Some(email) = &new.email {
        check_email("email", email)?;
    }
    if let Some(name) = &new.username {
        check_username("username", name)?;
    }
    if !IDENTITY_PROVIDERS.contains(&new.identity_provider.as_str()) {
        return Err(Error::invalid(
            "identity_provider",
            format!(
                "identity provider must be one of {}",
                IDENTITY_PROVIDERS.join(", ")
            ),
        ));
    }
    new.profile.check()?;
    let access = new.access.clone().checked()?;
    let status = new.status.clone().unwrap_or_else(|| "active".into());
    if !STATUSES.contains(&status.as_str()) {
        return Err(Error::invalid("status", "unknown user status"));
    }
    Ok((access, status))
}

/// Inserts a prepared user (inside a write transaction).
pub fn insert_in(conn: &Connection, p: &Prepared) -> Result<User> {
    let new = &p.new;
    let role_ids = new
        .roles
        .iter()
        .map(|r| roles::id_by_name(conn, &new.tenant_id, roles::resolve_alias(r)))
        .collect::<Result<Vec<_>>>()?;
    ensure_names_free(conn, new.email.as_deref(), new.username.as_deref(), "")?;
    let id = super::new_id();
    let now = now_ms();
    conn.execute(
        "INSERT INTO users (id, tenant_id, email, username, password_hash, identity_provider,
                            status, created_ts, updated_ts, password_changed_ts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?8)",
        params![
            id,
            new.tenant_id,
            new.email,
            new.username,
            p.hash,
            new.identity_provider,
            p.status,
            now
        ],
    )?;
    profile::apply_in(conn, &id, &new.profile)?;
    access::apply_in(conn, &id, &p.access)?;
    for rid in role_ids {
        conn.execute(
            "INSERT INTO user_roles (user_id, role_id) VALUES (?1, ?2)",
            params![id, rid],
        )?;
    }
    get_in(conn, &id)
}

pub(crate) fn get_in(conn: &Connection, id: &str) -> Result<User> {
    let u = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM users WHERE id = ?1"),
            [id],
            from_row,
        )
        .optional()?
        .ok_or_else(|| Error::NotFound("user not found".into()))?;
    with_roles(conn, u)
}

pub async fn get(db: &Db, tenant_id: &str, id: &str) -> Result<User> {
    let (tenant_id, id) = (tenant_id.to_string(), id.to_string());
    db.read(move |conn| {
        let u = get_in(conn, &id)?;
        if u.tenant_id != tenant_id {
            return Err(Error::NotFound("user not found".into()));
        }
        Ok(u)
    })
    .await
}

/// The user whose email or username this is (at most one: `ensure_names_free`).
pub async fn find_by_login(db: &Db, login: &str) -> Result<Option<User>> {
    let login = login.to_string();
    db.read(move |conn| {
        let u = conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM users WHERE email = ?1 OR username = ?1"),
                [&login],
                from_row,
            )
            .optional()?;
        u.map(|u| with_roles(conn, u)).transpose()
    })
    .await
}

/// All users of every tenant, oldest first (for the command line).
pub async fn list_all(db: &Db) -> Result<Vec<User>> {
    db.read(|conn| {
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM users ORDER BY created_ts, id"
        ))?;
        let users = stmt
            .query_map([], from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        users.into_iter().map(|u| with_roles(conn, u)).collect()
    })
    .await
}

pub async fn count(db: &Db) -> Result<i64> {
    db.read(|conn| Ok(conn.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?))
        .await
}

/// Sets the password of the user with this email or username (the command line).
pub async fn set_password(db: &Db, login: &str, new_password: &str) -> Result<User> {
    let user = find_by_login(db, login)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no user with email or username {login}")))?;
    if user.identity_provider != "local" {
        return Err(Error::Unprocessable(
            "the password of a directory (LDAP) user is changed in the directory".into(),
        ));
    }
    let names = [user.email.as_deref(), user.username.as_deref()];
    password::policy().check("password", new_password, &names)?;
    let hash = password::hash_in_pool(new_password.to_string()).await?;
    let id = user.id;
    db.write(move |conn| {
        conn.execute(
            "UPDATE users SET password_hash = ?1, updated_ts = ?2, password_changed_ts = ?2,
                              etag = etag + 1 WHERE id = ?3",
            params![hash, now_ms(), id],
        )?;
        // A password set by an operator ends every session of the account.
        conn.execute(
            "UPDATE user_tokens SET revoked_ts = ?1
             WHERE user_id = ?2 AND kind = 'session' AND revoked_ts IS NULL",
            params![now_ms(), id],
        )?;
        get_in(conn, &id)
    })
    .await
}

/// Checks a login (email or username) and password. Takes the same time whether or not the
/// user exists. Only `local` users have a password here.
pub async fn authenticate(db: &Db, login: &str, password_given: &str) -> Result<User> {
    let login_owned = login.to_string();
    let found = db
        .read(move |conn| {
            let row: Option<(String, Option<String>, String)> = conn
                .query_row(
                    "SELECT id, password_hash, status FROM users
                     WHERE (email = ?1 OR username = ?1) AND identity_provider = 'local'",
                    [&login_owned],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            Ok(row)
        })
        .await?;
    let given = password_given.to_string();
    let (id, hash, status) = match found {
        Some((id, Some(h), status)) => (Some(id), h, status),
        _ => (None, password::dummy_hash().to_string(), String::new()),
    };
    let ok = password::verify_in_pool(given, hash).await?;
    match id {
        Some(id) if ok && may_sign_in(&status) => db.read(move |conn| get_in(conn, &id)).await,
        _ => Err(Error::Unauthorized("username/password do not match".into())),
    }
}

/// A successful sign-in: the user's last login time and their login history.
pub async fn record_login(
    db: &Db,
    user_id: &str,
    origin: super::login_history::Origin<'_>,
) -> Result<()> {
    let (id, a, ua) = (
        user_id.to_string(),
        origin.address.to_string(),
        origin.user_agent.to_string(),
    );
    db.write(move |conn| {
        conn.execute(
            "UPDATE users SET login_ts = ?1 WHERE id = ?2",
            params![now_ms(), id],
        )?;
        let origin = super::login_history::Origin {
            address: &a,
            user_agent: &ua,
        };
        super::login_history::record_in(conn, &id, true, origin)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::check_email;

    #[test]
    fn emails() {
        assert!(check_email("email", "a@b.co").is_ok());
        for bad in [
            "", "a", "a@", "@b.c", "a@b", "a b@c.d", "a@b@c.d", "ä@b.de", "a@.b",
        ] {
            assert!(check_email("email", bad).is_err(), "{bad}");
        }
    }
}
