//! Configuration: defaults, then `fleetbox.toml`, then `FLEETBOX_<KEY>` environment variables,
//! then command-line flags. Unknown keys and bad values are errors that name the key.

mod ldap;

pub use ldap::LdapSettings;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the database, certificate, secrets and artifacts live.
    pub data_dir: PathBuf,
    /// HTTPS listener address, or "none".
    pub listen: String,
    /// Plain-HTTP listener address, or "none" (the default).
    pub http: String,
    /// A certificate chain and key (PEM) replacing the generated self-signed certificate.
    pub tls_cert: String,
    pub tls_key: String,
    /// Extra DNS names / IP addresses for the generated certificate.
    pub tls_names: Vec<String>,
    /// "text" or "json".
    pub log_format: String,
    /// A tracing filter such as "info" or "fleetbox=debug,info".
    pub log_level: String,
    /// Device-API requests are logged only at debug unless they fail or take at least this
    /// many milliseconds; management requests are always logged at info.
    pub log_slow_request_ms: u64,
    /// A bearer token that may read `/metrics` from another host (a caller on this machine
    /// needs none); empty: metrics only from this machine or with an operator's token.
    pub metrics_token: String,
    /// Largest accepted request body for API calls (artifact uploads have their own limit).
    pub max_body_bytes: u64,
    /// Lifetime of a user login token.
    pub user_token_ttl_secs: u64,
    /// Lifetime of a device token.
    pub device_token_ttl_secs: u64,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace_secs: u64,
    /// Largest artifact accepted by an upload.
    pub artifact_max_bytes: u64,
    /// Total artifact storage per tenant (0: no limit).
    pub storage_limit_bytes: u64,
    /// Lifetime of a pre-signed artifact download link.
    pub download_link_ttl_secs: u64,
    /// The address devices use to reach this server (e.g. https://fleet.lan:8443), for download
    /// links; empty: taken from each request's Host header.
    pub public_url: String,
    /// Largest deployment log a device may upload.
    pub max_log_bytes: u64,
    /// Audit-log entries older than this many days are deleted (0: kept forever).
    pub audit_retention_days: u64,
    /// On first start, create this administrator if there is no user yet.
    pub admin_email: String,
    pub admin_password: String,
    /// Failed logins (wrong password or 2FA code) per account within `login_lockout_secs`
    /// before the account is locked for that long (0: no limit).
    pub login_max_failures: u64,
    /// The same per client address, over all accounts (0: no limit). Also caps password-reset
    /// requests per address.
    pub login_max_failures_per_address: u64,
    pub login_lockout_secs: u64,
    /// Lifetime of a login token asked for with `no_expiry` (capped here, never unlimited).
    pub user_token_max_ttl_secs: u64,
    /// Personal access tokens one user may have.
    pub personal_tokens_max: u64,
    /// Lifetime of a password-reset link.
    pub password_reset_ttl_secs: u64,
    /// The password policy for every local password, whichever API sets it: characters in
    /// all, and at least this many lower-case letters, upper-case letters, digits and
    /// symbols/punctuation (Unicode categories; 0 turns a class rule off).
    pub password_min_length: u64,
    pub password_min_lower: u64,
    pub password_min_upper: u64,
    pub password_min_numeric: u64,
    pub password_min_symbol: u64,
    /// Mail server for password-reset links: `smtp://host[:port]` (STARTTLS when offered) or
    /// `smtps://host[:port]`; empty: no mail (links only from `fleetbox user reset-link`).
    pub smtp_url: String,
    pub smtp_from: String,
    pub smtp_username: String,
    pub smtp_password: String,
    /// Remote access: seconds between websocket pings; a peer silent for two intervals is
    /// taken as gone.
    pub connect_ping_secs: u64,
    /// Remote access: largest message a user may send through to a device (mender-connect
    /// drops its whole connection on a message over 8192 bytes).
    pub connect_max_frame_bytes: u64,
    /// Remote access: concurrent user sessions per device.
    pub connect_max_sessions_per_device: u64,
    /// Remote access: concurrent sessions one user may hold over all devices.
    pub connect_max_sessions_per_user: u64,
    /// Remote access: a session with no terminal, port-forward or file traffic for this long is
    /// closed (0: never).
    pub connect_idle_timeout_secs: u64,
    /// Remote access: terminal output kept per session for playback; output past it is counted
    /// but not kept (0: no recording).
    pub connect_recording_max_bytes: u64,
    /// Remote access: largest file `upload` accepts (`download` streams without a limit).
    pub connect_file_max_bytes: u64,
    /// A directory whose users may sign in (`[ldap]` table; off when its `url` is empty).
    pub ldap: LdapSettings,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./fleetbox-data"),
            listen: "0.0.0.0:8443".into(),
            http: "none".into(),
            tls_cert: String::new(),
            tls_key: String::new(),
            tls_names: Vec::new(),
            log_format: "text".into(),
            log_level: "info".into(),
            log_slow_request_ms: 1000,
            metrics_token: String::new(),
            max_body_bytes: 1024 * 1024,
            user_token_ttl_secs: 7 * 24 * 3600,
            device_token_ttl_secs: 7 * 24 * 3600,
            shutdown_grace_secs: 10,
            artifact_max_bytes: 10 * 1024 * 1024 * 1024,
            storage_limit_bytes: 0,
            download_link_ttl_secs: 15 * 60,
            public_url: String::new(),
            max_log_bytes: 1024 * 1024,
            audit_retention_days: 365,
            admin_email: String::new(),
            admin_password: String::new(),
            login_max_failures: 5,
            login_max_failures_per_address: 20,
            login_lockout_secs: 300,
            user_token_max_ttl_secs: 30 * 24 * 3600,
            personal_tokens_max: 10,
            password_reset_ttl_secs: 3600,
            password_min_length: crate::crypto::password::MIN_LENGTH as u64,
            password_min_lower: 0,
            password_min_upper: 0,
            password_min_numeric: 0,
            password_min_symbol: 0,
            smtp_url: String::new(),
            smtp_from: String::new(),
            smtp_username: String::new(),
            smtp_password: String::new(),
            connect_ping_secs: 30,
            connect_max_frame_bytes: 8192,
            connect_max_sessions_per_device: 16,
            connect_max_sessions_per_user: 8,
            connect_idle_timeout_secs: 1800,
            connect_recording_max_bytes: 1024 * 1024,
            connect_file_max_bytes: 4 * 1024 * 1024 * 1024,
            ldap: LdapSettings::default(),
        }
    }
}

/// Keys whose values `fleetbox config` masks.
const SECRET_KEYS: &[&str] = &[
    "admin_password",
    "smtp_password",
    "ldap.bind_password",
    "metrics_token",
];

const ENV_PREFIX: &str = "FLEETBOX_";
const MIN_METRICS_TOKEN: usize = 16;

/// A century; longer is a typo (use 0 to keep audit entries forever).
const MAX_AUDIT_RETENTION_DAYS: u64 = 36_500;

/// Values given on the command line; they win over everything else.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
    pub http: Option<String>,
    pub log_format: Option<String>,
    pub log_level: Option<String>,
}

impl Config {
    /// Loads the effective configuration. `file` is the `--config` path; when absent,
    /// `fleetbox.toml` in the working directory is used if it exists.
    pub fn load(
        file: Option<&Path>,
        env: &[(String, String)],
        cli: &Overrides,
    ) -> Result<Config, String> {
        let mut table = match file {
            Some(p) => read_table(p)?,
            None if Path::new("fleetbox.toml").exists() => read_table(Path::new("fleetbox.toml"))?,
            None => toml::Table::new(),
        };
        let policy_json = env
            .iter()
            .find(|(k, _)| k == &format!("{ENV_PREFIX}PASSWORD_POLICY"))
            .map(|(_, v)| v.clone());
        flatten_password_policy(&mut table, policy_json.as_deref())?;
        let defaults = toml::Table::try_from(Config::default()).map_err(|e| e.to_string())?;
        for (key, value) in &table {
            let Some(default) = defaults.get(key) else {
                return Err(format!(
                    "unknown configuration key `{key}` (known keys: {})",
                    defaults.keys().cloned().collect::<Vec<_>>().join(", ")
                ));
            };
            if value.type_str() != default.type_str() {
                return Err(format!(
                    "configuration key `{key}`: expected {}, found {}",
                    default.type_str(),
                    value.type_str()
                ));
            }
        }
        for (key, default) in &defaults {
            let var = format!("{ENV_PREFIX}{}", key.to_uppercase());
            if let Some((_, raw)) = env.iter().find(|(k, _)| *k == var) {
                table.insert(key.clone(), env_value(&var, raw, default)?);
            }
        }
        let mut set = |key: &str, v: &Option<String>| {
            if let Some(v) = v {
                table.insert(key.to_string(), toml::Value::String(v.clone()));
            }
        };
        set(
            "data_dir",
            &cli.data_dir.as_ref().map(|p| p.display().to_string()),
        );
        set("listen", &cli.listen);
        set("http", &cli.http);
        set("log_format", &cli.log_format);
        set("log_level", &cli.log_level);
        let config: Config = table
            .try_into()
            .map_err(|e: toml::de::Error| format!("configuration: {}", e.message()))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        for (key, value) in [("listen", &self.listen), ("http", &self.http)] {
            if value != "none" && value.parse::<std::net::SocketAddr>().is_err() {
                return Err(format!(
                    "configuration key `{key}`: `{value}` is not an address like 0.0.0.0:8443 or \"none\""
                ));
            }
        }
        if self.listen == "none" && self.http == "none" {
            return Err(
                "configuration: both `listen` and `http` are \"none\"; nothing would listen".into(),
            );
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return Err(format!(
                "configuration key `log_format`: `{}` must be \"text\" or \"json\"",
                self.log_format
            ));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log_level).is_err() {
            return Err(format!(
                "configuration key `log_level`: `{}` is not a valid level or filter",
                self.log_level
            ));
        }
        if self.tls_cert.is_empty() != self.tls_key.is_empty() {
            return Err(
                "configuration keys `tls_cert` and `tls_key` must be given together".into(),
            );
        }
        if self.max_body_bytes < 1024 {
            return Err("configuration key `max_body_bytes`: must be at least 1024".into());
        }
        for (key, v) in [
            ("user_token_ttl_secs", self.user_token_ttl_secs),
            ("device_token_ttl_secs", self.device_token_ttl_secs),
        ] {
            if v < 60 {
                return Err(format!(
                    "configuration key `{key}`: must be at least 60 seconds"
                ));
            }
        }
        let url_ok = self.public_url.is_empty()
            || self.public_url.starts_with("http://")
            || self.public_url.starts_with("https://");
        if !url_ok {
            return Err(format!(
                "configuration key `public_url`: `{}` must start with http:// or https://",
                self.public_url
            ));
        }
        if self.download_link_ttl_secs < 10 {
            return Err(
                "configuration key `download_link_ttl_secs`: must be at least 10 seconds".into(),
            );
        }
        if self.audit_retention_days > MAX_AUDIT_RETENTION_DAYS {
            return Err(format!(
                "configuration key `audit_retention_days`: must be at most {MAX_AUDIT_RETENTION_DAYS} (0 keeps entries forever)"
            ));
        }
        self.validate_credentials()?;
        self.ldap.validate()?;
        for (key, v, min) in [
            ("connect_ping_secs", self.connect_ping_secs, 1),
            (
                "connect_max_frame_bytes",
                self.connect_max_frame_bytes,
                1024,
            ),
            (
                "connect_max_sessions_per_device",
                self.connect_max_sessions_per_device,
                1,
            ),
            (
                "connect_max_sessions_per_user",
                self.connect_max_sessions_per_user,
                1,
            ),
            ("connect_file_max_bytes", self.connect_file_max_bytes, 1),
        ] {
            if v < min {
                return Err(format!("configuration key `{key}`: must be at least {min}"));
            }
        }
        Ok(())
    }

    /// The password policy these settings describe.
    pub fn password_policy(&self) -> crate::crypto::password::Policy {
        let n = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        crate::crypto::password::Policy {
            min: n(self.password_min_length),
            lower: n(self.password_min_lower),
            upper: n(self.password_min_upper),
            numeric: n(self.password_min_numeric),
            symbol: n(self.password_min_symbol),
        }
    }

    /// Login protection, token lifetimes, password reset and mail.
    fn validate_credentials(&self) -> Result<(), String> {
        for (key, v, min) in [
            ("login_lockout_secs", self.login_lockout_secs, 1),
            ("user_token_max_ttl_secs", self.user_token_max_ttl_secs, 60),
            ("password_reset_ttl_secs", self.password_reset_ttl_secs, 1),
        ] {
            if v < min {
                return Err(format!(
                    "configuration key `{key}`: must be at least {min} seconds"
                ));
            }
        }
        let max = crate::crypto::password::MAX_LENGTH as u64;
        for (key, v) in [
            ("password_min_length", self.password_min_length),
            ("password_min_lower", self.password_min_lower),
            ("password_min_upper", self.password_min_upper),
            ("password_min_numeric", self.password_min_numeric),
            ("password_min_symbol", self.password_min_symbol),
        ] {
            if v > max {
                return Err(format!("configuration key `{key}`: must be at most {max}"));
            }
        }
        if self.password_min_length == 0 {
            return Err("configuration key `password_min_length`: must be at least 1".into());
        }
        if self.login_lockout_secs > 24 * 3600 {
            return Err("configuration key `login_lockout_secs`: must be at most 86400".into());
        }
        // It opens /metrics to the whole network: not something a person would guess.
        let token = self.metrics_token.chars().count();
        if token > 0 && token < MIN_METRICS_TOKEN {
            return Err(format!(
                "configuration key `metrics_token`: {token} characters, at least {MIN_METRICS_TOKEN} are needed (or leave it empty)"
            ));
        }
        if self.smtp_url.is_empty() {
            return Ok(());
        }
        crate::smtp_url::parse_url(&self.smtp_url)
            .map_err(|e| format!("configuration key `smtp_url`: {e}"))?;
        if self.smtp_from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(format!(
                "configuration key `smtp_from`: `{}` must be a mail address (required with smtp_url)",
                self.smtp_from
            ));
        }
        if self.smtp_username.is_empty() != self.smtp_password.is_empty() {
            return Err(
                "configuration keys `smtp_username` and `smtp_password` must be given together"
                    .into(),
            );
        }
        Ok(())
    }

    pub fn listen_addr(&self) -> Option<std::net::SocketAddr> {
        self.listen.parse().ok()
    }

    pub fn http_addr(&self) -> Option<std::net::SocketAddr> {
        self.http.parse().ok()
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("fleetbox.db")
    }

    /// The effective configuration as TOML, secrets masked.
    pub fn to_masked_toml(&self) -> String {
        let mut table = toml::Table::try_from(self.clone()).expect("config serialises");
        for key in SECRET_KEYS {
            let (table, key) = match key.split_once('.') {
                Some((t, k)) => match table.get_mut(t) {
                    Some(toml::Value::Table(t)) => (t, k),
                    _ => continue,
                },
                None => (&mut table, *key),
            };
            if let Some(toml::Value::String(s)) = table.get_mut(key) {
                if !s.is_empty() {
                    *s = "********".into();
                }
            }
        }
        toml::to_string(&table).expect("config serialises")
    }
}

/// The password policy's keys under the names its `{min, lower, upper, numeric, symbol}`
/// form uses.
const POLICY_KEYS: [(&str, &str); 5] = [
    ("min", "password_min_length"),
    ("lower", "password_min_lower"),
    ("upper", "password_min_upper"),
    ("numeric", "password_min_numeric"),
    ("symbol", "password_min_symbol"),
];

/// The policy may be written as a `[password_policy]` table (or `FLEETBOX_PASSWORD_POLICY`,
/// a JSON object) with the short names; both become the flat `password_min_*` keys. Setting a
/// rule both ways, an unknown rule or a value that is no count stops the start.
fn flatten_password_policy(table: &mut toml::Table, env_json: Option<&str>) -> Result<(), String> {
    let mut rules: Vec<(String, toml::Value, &str)> = Vec::new();
    if let Some(v) = table.remove("password_policy") {
        let toml::Value::Table(t) = v else {
            return Err("configuration key `password_policy`: expected a table".into());
        };
        rules.extend(t.into_iter().map(|(k, v)| (k, v, "password_policy")));
    }
    if let Some(raw) = env_json {
        let v: serde_json::Value = serde_json::from_str(raw)
            .map_err(|e| format!("{ENV_PREFIX}PASSWORD_POLICY: not JSON ({e})"))?;
        let serde_json::Value::Object(o) = v else {
            return Err(format!(
                "{ENV_PREFIX}PASSWORD_POLICY: expected a JSON object"
            ));
        };
        for (k, v) in o {
            let n = v
                .as_i64()
                .ok_or_else(|| format!("{ENV_PREFIX}PASSWORD_POLICY: `{k}` must be a number"))?;
            rules.push((k, toml::Value::Integer(n), "FLEETBOX_PASSWORD_POLICY"));
        }
    }
    for (k, v, source) in rules {
        let Some((_, flat)) = POLICY_KEYS.iter().find(|(short, _)| *short == k) else {
            return Err(format!(
                "{source}: unknown rule `{k}` (rules: min, lower, upper, numeric, symbol)"
            ));
        };
        match v {
            toml::Value::Integer(n) if n >= 0 => {}
            _ => return Err(format!("{source}: `{k}` must be a count (0 or more)")),
        }
        if source == "password_policy" && table.contains_key(*flat) {
            return Err(format!(
                "configuration: `password_policy.{k}` and `{flat}` set the same rule; keep one"
            ));
        }
        table.insert(flat.to_string(), v);
    }
    Ok(())
}

fn read_table(path: &Path) -> Result<toml::Table, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read configuration file {}: {e}", path.display()))?;
    text.parse::<toml::Table>()
        .map_err(|e| format!("configuration file {}: {e}", path.display()))
}

/// Parses an environment value with the type of the key's default value.
fn env_value(var: &str, raw: &str, default: &toml::Value) -> Result<toml::Value, String> {
    Ok(match default {
        toml::Value::Integer(_) => toml::Value::Integer(
            raw.trim()
                .parse()
                .map_err(|_| format!("{var}: `{raw}` is not a whole number"))?,
        ),
        toml::Value::Boolean(_) => toml::Value::Boolean(
            raw.trim()
                .parse()
                .map_err(|_| format!("{var}: `{raw}` is not true or false"))?,
        ),
        // A table (`[ldap]`) comes as one JSON object: FLEETBOX_LDAP='{"url": "ldap://…"}'.
        toml::Value::Table(_) => {
            let json: serde_json::Value =
                serde_json::from_str(raw).map_err(|e| format!("{var}: not a JSON object: {e}"))?;
            if !json.is_object() {
                return Err(format!("{var}: not a JSON object"));
            }
            toml::Value::try_from(json).map_err(|e| format!("{var}: {e}"))?
        }
        toml::Value::Array(_) => toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_string()))
                .collect(),
        ),
        _ => toml::Value::String(raw.to_string()),
    })
}

#[cfg(test)]
mod tests;
