//! [`TestDb`]: a PostgreSQL database of a test's own, created on the server
//! the suite is given and dropped afterwards.
//!
//! The server is `HOOKHOST_TEST_POSTGRES` (a libpq URL of a role allowed to
//! create databases), by default the one these machines run:
//! `postgres://postgres@127.0.0.1:5432/test`. A test that cannot reach it
//! fails, naming the URL: it is never counted as passed. `make test` checks
//! the server first and, when it is unreachable outside CI, runs the suite
//! with every `postgres` test skipped and says so (see the Makefile).

use std::sync::atomic::{AtomicU32, Ordering};

/// The server tests create their databases on.
pub fn server_url() -> String {
    std::env::var("HOOKHOST_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A database of its own, dropped (with its connections) when this is.
pub struct TestDb {
    pub name: String,
    /// Its `--store` URL.
    pub url: String,
}

async fn admin_client() -> tokio_postgres::Client {
    let url = server_url();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|err| {
            panic!(
                "PostgreSQL is unreachable at {url} ({err}): these tests need it \
                 (set HOOKHOST_TEST_POSTGRES, or run `make test`, which skips them loudly without one)"
            )
        });
    tokio::spawn(connection);
    client
}

impl TestDb {
    /// Creates `hh_test_<pid>_<n>` on the test server.
    pub async fn create() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "hh_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let client = admin_client().await;
        // One statement per call: DROP DATABASE refuses a transaction.
        for sql in [
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ] {
            client
                .batch_execute(&sql)
                .await
                .unwrap_or_else(|err| panic!("cannot create database {name}: {err}"));
        }
        let server = server_url();
        let base = server
            .rsplit_once('/')
            .map_or(server.as_str(), |(base, _)| base);
        Self {
            url: format!("{base}/{name}"),
            name,
        }
    }

    /// A client on this database, for a test to look at what the hosts
    /// stored.
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|err| panic!("cannot connect to {}: {err}", self.url));
        tokio::spawn(connection);
        client
    }

    /// Cuts every host off: no new connections, and the open ones ended.
    pub async fn cut_off(&self) {
        let client = admin_client().await;
        client
            .batch_execute(&format!(
                "ALTER DATABASE {} ALLOW_CONNECTIONS false",
                self.name
            ))
            .await
            .unwrap();
        client
            .batch_execute(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
                self.name
            ))
            .await
            .unwrap();
    }

    /// Lets hosts connect again after [`TestDb::cut_off`].
    pub async fn restore(&self) {
        admin_client()
            .await
            .batch_execute(&format!(
                "ALTER DATABASE {} ALLOW_CONNECTIONS true",
                self.name
            ))
            .await
            .unwrap();
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop may run inside a runtime: its own thread and runtime.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok((client, connection)) =
                    tokio_postgres::connect(&server_url(), tokio_postgres::NoTls).await
                {
                    tokio::spawn(connection);
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}
