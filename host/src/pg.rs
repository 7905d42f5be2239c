//! Where the host keeps its state (`--store`), and connecting to PostgreSQL,
//! the store a fleet of hosts shares.
//!
//! Owns the `--store` value: `sqlite` (the embedded default, `inbox.db` in
//! `--data`) or a libpq-style URL `postgres://user@host:port/db?…`; the
//! password as an `env:VAR` / `file:PATH` reference, read when the host
//! starts and never shown (logs and `--print-config` see the URL with the
//! password replaced by `***`, or the reference itself); TLS (`sslmode`,
//! rustls with the webpki roots, plus `sslrootcert=PATH`); and the
//! connection pool, with a timeout on every connect, wait and statement.
//! Does not own what is stored ([`crate::inbox`] and [`crate::deploy`] run
//! their own SQL on the pool).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::config::SslMode;

use crate::secret::{SecretRef, SecretResolver};

/// Connections a host keeps to PostgreSQL at most, unless the URL's
/// `pool_size` says otherwise: the inbox writer holds one per batch, reads
/// (admin API, the workers' due checks) and plugin key-value reads the rest.
pub const DEFAULT_POOL_SIZE: usize = 8;

/// Longest a connection attempt (TCP, TLS, authentication) may take, unless
/// the URL's `connect_timeout` says otherwise.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest one statement may run: a lock wait or a runaway query ends as an
/// error (503 for a sender, a retry for a worker) instead of a hung host.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest a caller waits for a free pooled connection.
pub const POOL_WAIT: Duration = Duration::from_secs(5);

/// Where the host keeps its inbox, plugin key-value data and deployed
/// plugins.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum StoreSpec {
    /// One SQLite file in `--data`: one host, nothing to install.
    #[default]
    Sqlite,
    /// A PostgreSQL database, shareable by many hosts.
    Postgres(Box<PgTarget>),
}

impl StoreSpec {
    /// Parses a `--store` value; the error says what is accepted.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("sqlite") {
            return Ok(StoreSpec::Sqlite);
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return PgTarget::parse(text).map(|target| StoreSpec::Postgres(Box::new(target)));
        }
        Err(format!(
            "`{}` is not a store: write `sqlite` (the default: inbox.db in --data) or \
             `postgres://USER@HOST:PORT/DATABASE` (password as `?password=env:VAR` or `file:PATH`)",
            redact_anything(text)
        ))
    }

    /// Whether many hosts may share it (leases must then be short, and no
    /// host may end another's leases when it starts).
    pub fn is_shared(&self) -> bool {
        matches!(self, StoreSpec::Postgres(_))
    }
}

/// What logs and `--print-config` show: never a password.
impl fmt::Display for StoreSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreSpec::Sqlite => f.write_str("sqlite"),
            StoreSpec::Postgres(target) => f.write_str(&target.shown),
        }
    }
}

impl fmt::Debug for StoreSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Where the password comes from.
#[derive(Clone, PartialEq, Eq)]
enum Password {
    /// None given: trust or peer authentication.
    None,
    /// `env:VAR` or `file:PATH`, read at start.
    Reference(String),
    /// Written in the URL itself (allowed, never shown).
    Literal(String),
}

/// A PostgreSQL database named by a `--store` URL.
#[derive(Clone, PartialEq, Eq)]
pub struct PgTarget {
    /// The URL with the password and the host-only parameters taken out:
    /// what `tokio_postgres` parses.
    url: String,
    /// The URL as shown: the password replaced by `***` or its reference.
    shown: String,
    password: Password,
    /// `sslrootcert`: PEM roots trusted besides the webpki ones.
    root_cert: Option<PathBuf>,
    pool_size: usize,
}

impl fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl PgTarget {
    fn parse(text: &str) -> Result<Self, String> {
        let (scheme, rest) = text.split_once("://").expect("checked by the caller");
        let (base, query) = match rest.split_once('?') {
            Some((base, query)) => (base, Some(query)),
            None => (rest, None),
        };
        // The authority ends at the first `/`; its user info at its last `@`.
        let (authority, path) = match base.find('/') {
            Some(at) => base.split_at(at),
            None => (base, ""),
        };
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((userinfo, hosts)) => (Some(userinfo), hosts),
            None => (None, authority),
        };
        let mut password = Password::None;
        let (user, shown_user) = match userinfo {
            None => (String::new(), String::new()),
            Some(info) => match info.split_once(':') {
                None => (format!("{info}@"), format!("{info}@")),
                Some((user, secret)) => {
                    let secret = percent_decode(secret)?;
                    password = if SecretRef::new(secret.as_str()).is_literal() {
                        Password::Literal(secret)
                    } else {
                        Password::Reference(secret)
                    };
                    (format!("{user}@"), format!("{user}:{}@", password.shown()))
                }
            },
        };
        let mut kept = Vec::new();
        let mut shown_params = Vec::new();
        let mut root_cert = None;
        let mut pool_size = DEFAULT_POOL_SIZE;
        let mut has_connect_timeout = false;
        let mut has_sslmode = false;
        for param in query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (key, value) = param.split_once('=').unwrap_or((param, ""));
            match key {
                "password" => {
                    let secret = percent_decode(value)?;
                    password = if SecretRef::new(secret.as_str()).is_literal() {
                        Password::Literal(secret)
                    } else {
                        Password::Reference(secret)
                    };
                    shown_params.push(format!("password={}", password.shown()));
                }
                "sslrootcert" => {
                    root_cert = Some(PathBuf::from(percent_decode(value)?));
                    shown_params.push(param.to_owned());
                }
                "pool_size" => {
                    pool_size = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=1000).contains(n))
                        .ok_or_else(|| {
                            format!(
                                "pool_size={value} is not a number of connections from 1 to 1000"
                            )
                        })?;
                    shown_params.push(param.to_owned());
                }
                "sslmode" => {
                    has_sslmode = true;
                    // libpq's stricter modes verify the certificate, which
                    // the rustls connector always does: they mean `require`.
                    let mode = match value {
                        "verify-ca" | "verify-full" => "require",
                        other => other,
                    };
                    kept.push(format!("sslmode={mode}"));
                    shown_params.push(param.to_owned());
                }
                _ => {
                    if key == "connect_timeout" {
                        has_connect_timeout = true;
                    }
                    kept.push(param.to_owned());
                    shown_params.push(param.to_owned());
                }
            }
        }
        if !has_connect_timeout {
            kept.push(format!("connect_timeout={}", CONNECT_TIMEOUT.as_secs()));
        }
        if !has_sslmode {
            // Not libpq's `prefer` (TLS if offered, unverified): on this
            // machine plain TCP, anywhere else verified TLS, so that no
            // credentials or events cross a network in the clear by default.
            let local = hosts.split(',').all(|host| {
                let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
                matches!(name, "" | "localhost" | "127.0.0.1" | "[::1]") || name.starts_with('%')
            });
            kept.push(format!(
                "sslmode={}",
                if local { "disable" } else { "require" }
            ));
        }
        let url = format!("{scheme}://{user}{hosts}{path}?{}", kept.join("&"));
        let shown = if shown_params.is_empty() {
            format!("{scheme}://{shown_user}{hosts}{path}")
        } else {
            format!(
                "{scheme}://{shown_user}{hosts}{path}?{}",
                shown_params.join("&")
            )
        };
        // Parsed now so that a bad URL is an error at start, naming itself.
        url.parse::<tokio_postgres::Config>()
            .map_err(|err| format!("{shown}: {err}"))?;
        Ok(Self {
            url,
            shown,
            password,
            root_cert,
            pool_size,
        })
    }

    /// The client configuration, with the password read from its reference.
    fn config(&self) -> anyhow::Result<tokio_postgres::Config> {
        let mut config: tokio_postgres::Config = self
            .url
            .parse()
            .with_context(|| format!("--store {}", self.shown))?;
        match &self.password {
            Password::None => {}
            Password::Literal(secret) => {
                config.password(secret.as_bytes());
            }
            Password::Reference(reference) => {
                let bytes = SecretResolver::new(Path::new("."))
                    .read(&SecretRef::new(reference.as_str()))
                    .map_err(|why| anyhow::anyhow!("--store {}: password: {why}", self.shown))?;
                config.password(bytes);
            }
        }
        if config.get_application_name().is_none() {
            config.application_name("hookhost");
        }
        if config.get_options().is_none() {
            config.options(format!(
                "-c statement_timeout={}",
                STATEMENT_TIMEOUT.as_millis()
            ));
        }
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(30));
        Ok(config)
    }

    /// A pool of connections (made when first needed, re-made after a lost
    /// connection), and one connection made now, so that an unreachable or
    /// refusing server is an error at start.
    pub async fn connect(&self) -> anyhow::Result<Pool> {
        let config = self.config()?;
        let manager_config = ManagerConfig {
            // Checks the connection is open (not a query): a broken one is
            // dropped and replaced at the next use.
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match config.get_ssl_mode() {
            SslMode::Disable => Manager::from_config(config, tokio_postgres::NoTls, manager_config),
            _ => Manager::from_config(config, self.tls()?, manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(self.pool_size)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT * 2))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .runtime(Runtime::Tokio1)
            .build()
            .context("cannot set up the PostgreSQL connection pool")?;
        // Returned to the pool at once, kept open for the first write.
        drop(pool.get().await.map_err(|err| {
            anyhow::anyhow!("cannot connect to {}: {}", self.shown, pool_error(&err))
        })?);
        Ok(pool)
    }

    /// One connection of its own, outside the pool, listening on
    /// `channel`: each notification's payload arrives on the receiver, which
    /// closes when the connection is lost (the caller reconnects). The
    /// client must be kept: dropping it closes the connection.
    pub async fn listen(
        &self,
        channel: &str,
    ) -> anyhow::Result<(
        tokio_postgres::Client,
        tokio::sync::mpsc::UnboundedReceiver<String>,
    )> {
        let config = self.config()?;
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        let client = match config.get_ssl_mode() {
            SslMode::Disable => {
                let (client, connection) = config
                    .connect(tokio_postgres::NoTls)
                    .await
                    .with_context(|| format!("cannot connect to {}", self.shown))?;
                tokio::spawn(forward_notifications(connection, sender));
                client
            }
            _ => {
                let (client, connection) = config
                    .connect(self.tls()?)
                    .await
                    .with_context(|| format!("cannot connect to {}", self.shown))?;
                tokio::spawn(forward_notifications(connection, sender));
                client
            }
        };
        client
            .batch_execute(&format!("LISTEN {channel}"))
            .await
            .map_err(|err| anyhow::anyhow!("LISTEN {channel}: {}", db_error(&err)))?;
        Ok((client, receiver))
    }

    fn tls(&self) -> anyhow::Result<tokio_postgres_rustls::MakeRustlsConnect> {
        let config = crate::fetch::client_config(self.root_cert.as_deref(), "sslrootcert")?;
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
    }
}

/// Drives `connection` until it closes, sending the payload of every
/// notification it receives.
async fn forward_notifications<S, T>(
    mut connection: tokio_postgres::Connection<S, T>,
    sender: tokio::sync::mpsc::UnboundedSender<String>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
        match message {
            Ok(tokio_postgres::AsyncMessage::Notification(note)) => {
                if sender.send(note.payload().to_owned()).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(error = %db_error(&err), "PostgreSQL listening connection lost");
                return;
            }
        }
    }
}

/// As shown: a reference as written, a literal never.
impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown())
    }
}

impl Password {
    fn shown(&self) -> String {
        match self {
            Password::None => String::new(),
            Password::Reference(reference) => reference.clone(),
            Password::Literal(_) => "***".to_owned(),
        }
    }
}

/// A pool error as one line, with the server's own message when it sent one.
pub fn pool_error(err: &deadpool_postgres::PoolError) -> String {
    match err {
        deadpool_postgres::PoolError::Backend(err) => db_error(err),
        other => other.to_string(),
    }
}

/// A client error as one line, with the server's message, detail and code.
pub fn db_error(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => match std::error::Error::source(err) {
            Some(source) => format!("{err}: {source}"),
            None => err.to_string(),
        },
    }
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("a `%` in the URL is not followed by two hex digits")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the URL decodes to bytes that are not UTF-8".to_owned())
}

/// A value that is not a store URL, shown with the password of its user
/// info (anything after a `:` before the `@`) replaced by `***`.
fn redact_anything(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, _)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{}", &rest[userinfo.len() + 1..])
        }
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(text: &str) -> PgTarget {
        match StoreSpec::parse(text).unwrap() {
            StoreSpec::Postgres(target) => *target,
            StoreSpec::Sqlite => panic!("{text} parsed as sqlite"),
        }
    }

    #[test]
    fn sqlite_is_the_default_and_other_schemes_are_refused() {
        assert_eq!(StoreSpec::default(), StoreSpec::Sqlite);
        assert_eq!(StoreSpec::parse("sqlite").unwrap(), StoreSpec::Sqlite);
        let err = StoreSpec::parse("mysql://root:hunter2@db/x").unwrap_err();
        assert!(err.contains("postgres://"), "{err}");
        assert!(err.contains("`mysql://root:***@db/x`"), "{err}");
    }

    #[test]
    fn a_literal_password_is_never_shown_and_a_reference_is() {
        let literal = target("postgres://app:hunter2@db.internal:5433/hooks?sslmode=require");
        assert_eq!(
            literal.shown,
            "postgres://app:***@db.internal:5433/hooks?sslmode=require"
        );
        assert!(!format!("{literal:?}").contains("hunter2"));
        assert!(!literal.url.contains("hunter2"));
        let param = target("postgresql://app@db/hooks?password=env:PGPASS&application_name=x");
        assert_eq!(
            param.shown,
            "postgresql://app@db/hooks?password=env:PGPASS&application_name=x"
        );
        assert_eq!(param.password, Password::Reference("env:PGPASS".into()));
        let info = target("postgres://app:file:%2Frun%2Fpg.pass@db/hooks");
        assert_eq!(
            info.password,
            Password::Reference("file:/run/pg.pass".into())
        );
    }

    #[test]
    fn host_only_parameters_are_taken_out_and_a_connect_timeout_is_added() {
        let t = target("postgres://root@127.0.0.1:5432/test?pool_size=3&sslrootcert=ca.pem");
        assert_eq!(t.pool_size, 3);
        assert_eq!(t.root_cert.as_deref(), Some(Path::new("ca.pem")));
        assert!(
            !t.url.contains("pool_size") && !t.url.contains("sslrootcert"),
            "{}",
            t.url
        );
        let config: tokio_postgres::Config = t.url.parse().unwrap();
        assert_eq!(config.get_connect_timeout(), Some(&CONNECT_TIMEOUT));
        assert_eq!(
            config.get_ssl_mode(),
            SslMode::Disable,
            "loopback: plain TCP"
        );
        let remote: tokio_postgres::Config = target("postgres://app@db.internal/hooks")
            .url
            .parse()
            .unwrap();
        assert_eq!(
            remote.get_ssl_mode(),
            SslMode::Require,
            "elsewhere: verified TLS"
        );
        let err = StoreSpec::parse("postgres://root@h/db?pool_size=0").unwrap_err();
        assert!(err.contains("pool_size"), "{err}");
        let err = StoreSpec::parse("postgres://root@h/db?sslmode=sometimes").unwrap_err();
        assert!(err.contains("sslmode"), "{err}");
    }

    #[test]
    fn a_password_reference_is_read_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pass");
        std::fs::write(&file, "s3cret\n").unwrap();
        let t = target(&format!(
            "postgres://app@db/hooks?password=file:{}",
            file.display()
        ));
        let config = t.config().unwrap();
        assert_eq!(config.get_password(), Some(&b"s3cret"[..]));
        let missing = target("postgres://app@db/hooks?password=env:HOOKHOST_TEST_NO_SUCH_VAR");
        let err = missing.config().unwrap_err().to_string();
        assert!(err.contains("password"), "{err}");
    }
}
