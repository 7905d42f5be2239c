//! The shared implementation of [`Deployments`]: a fleet's plugin versions
//! in its PostgreSQL database (`--store postgres://…`), so a version
//! deployed through any host is every host's.
//!
//! Owns the deploy tables' queries (the tables are migration 2 of
//! [`crate::inbox`]'s PostgreSQL schema, applied when the inbox connects)
//! and the change notifications: every publish, rollback and undeploy
//! sends `NOTIFY hookhost_deploy` in its own transaction (delivered at
//! commit), and [`listen`] wakes this host's sync on each, reconnecting
//! when its connection is lost. The sync's generation poll stays the
//! backstop for a notification missed while reconnecting.
//!
//! Changes to one name are serialised across hosts by a transaction-level
//! advisory lock on the name, so two hosts publishing at once get two
//! version numbers, never the same one.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Pool, Transaction};
use tokio::runtime::Handle;
use tokio::sync::Notify;

use super::{Artifact, Deployments, Result, VersionInfo, fingerprint};
use crate::inbox::now_millis;
use crate::pg::{PgTarget, db_error, pool_error};

/// The channel every change is announced on.
pub const CHANNEL: &str = "hookhost_deploy";

/// The first key of the per-name advisory lock ("deploy" in ASCII).
const NAME_LOCK: i32 = 0x6465_706c;

/// How long [`listen`] waits before connecting again after losing its
/// connection.
const RELISTEN: Duration = Duration::from_secs(2);

/// Deployed versions in PostgreSQL.
pub struct PostgresDeployments {
    pool: Pool,
    runtime: Handle,
}

fn failed(err: tokio_postgres::Error) -> anyhow::Error {
    anyhow::anyhow!("PostgreSQL: {}", db_error(&err))
}

/// The columns [`info_from_row`] reads, from `plugin_versions v` and a
/// `live` boolean.
const INFO_COLUMNS: &str = "v.name, v.version, v.sha256, v.size, v.deployed_at, v.deployed_by, \
     EXISTS (SELECT 1 FROM plugin_live l WHERE l.name = v.name AND l.version = v.version)";

fn info_from_row(row: &tokio_postgres::Row) -> VersionInfo {
    VersionInfo {
        name: row.get(0),
        version: row.get(1),
        sha256: row.get(2),
        size: u64::try_from(row.get::<_, i64>(3)).unwrap_or_default(),
        deployed_at: row.get(4),
        deployed_by: row.get(5),
        live: row.get(6),
    }
}

impl PostgresDeployments {
    /// Deployments on the database behind `pool` (already migrated by the
    /// inbox). Called from async code; its methods then block on this
    /// runtime.
    pub fn new(pool: Pool) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        Ok(Self {
            pool,
            runtime: Handle::try_current().context("deployments need a tokio runtime")?,
        })
    }

    fn block<T>(&self, work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        self.runtime.block_on(work)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool
            .get()
            .await
            .map_err(|err| anyhow::anyhow!("PostgreSQL: {}", pool_error(&err)))
    }
}

/// Takes `name`'s lock for the transaction.
async fn lock_name(tx: &Transaction<'_>, name: &str) -> Result<()> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        &[&NAME_LOCK, &name],
    )
    .await
    .map_err(failed)?;
    Ok(())
}

/// Grows the generation and announces the change (sent at commit).
async fn changed(tx: &Transaction<'_>, name: &str) -> Result<()> {
    tx.execute("UPDATE deploy_generation SET value = value + 1", &[])
        .await
        .map_err(failed)?;
    tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &name])
        .await
        .map_err(failed)?;
    Ok(())
}

async fn version_info(
    tx: &Transaction<'_>,
    name: &str,
    version: i64,
) -> Result<Option<VersionInfo>> {
    let row = tx
        .query_opt(
            &format!(
                "SELECT {INFO_COLUMNS} FROM plugin_versions v WHERE v.name = $1 AND v.version = $2"
            ),
            &[&name, &version],
        )
        .await
        .map_err(failed)?;
    Ok(row.as_ref().map(info_from_row))
}

impl Deployments for PostgresDeployments {
    fn publish(
        &self,
        name: &str,
        wasm: &[u8],
        manifest: Option<&str>,
        by: &str,
    ) -> Result<VersionInfo> {
        let sha256 = fingerprint(wasm, manifest);
        self.block(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(failed)?;
            lock_name(&tx, name).await?;
            let live = tx
                .query_opt(
                    "SELECT v.version, v.sha256 FROM plugin_live l
                     JOIN plugin_versions v ON v.name = l.name AND v.version = l.version
                     WHERE l.name = $1",
                    &[&name],
                )
                .await
                .map_err(failed)?;
            // The same bytes as the live version: that version, no new one.
            if let Some(row) = live
                && row.get::<_, &str>(1) == sha256
            {
                let info = version_info(&tx, name, row.get(0)).await?;
                return info.ok_or_else(|| anyhow::anyhow!("live version vanished"));
            }
            let version: i64 = tx
                .query_one(
                    "SELECT COALESCE(MAX(version), 0) + 1 FROM plugin_versions WHERE name = $1",
                    &[&name],
                )
                .await
                .map_err(failed)?
                .get(0);
            tx.execute(
                "INSERT INTO plugin_versions
                     (name, version, sha256, size, wasm, manifest, deployed_at, deployed_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &name,
                    &version,
                    &sha256,
                    &(wasm.len() as i64),
                    &wasm,
                    &manifest,
                    &now_millis(),
                    &by,
                ],
            )
            .await
            .map_err(failed)?;
            tx.execute(
                "INSERT INTO plugin_live (name, version) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET version = excluded.version",
                &[&name, &version],
            )
            .await
            .map_err(failed)?;
            changed(&tx, name).await?;
            let info = version_info(&tx, name, version)
                .await?
                .ok_or_else(|| anyhow::anyhow!("version just written vanished"))?;
            tx.commit().await.map_err(failed)?;
            Ok(info)
        })
    }

    fn versions(&self, name: &str) -> Result<Vec<VersionInfo>> {
        self.block(async {
            let client = self.client().await?;
            let rows = client
                .query(
                    &format!(
                        "SELECT {INFO_COLUMNS} FROM plugin_versions v WHERE v.name = $1
                         ORDER BY v.version DESC"
                    ),
                    &[&name],
                )
                .await
                .map_err(failed)?;
            Ok(rows.iter().map(info_from_row).collect())
        })
    }

    fn set_live(&self, name: &str, version: i64) -> Result<Option<VersionInfo>> {
        self.block(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(failed)?;
            lock_name(&tx, name).await?;
            if version_info(&tx, name, version).await?.is_none() {
                return Ok(None);
            }
            tx.execute(
                "INSERT INTO plugin_live (name, version) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET version = excluded.version",
                &[&name, &version],
            )
            .await
            .map_err(failed)?;
            changed(&tx, name).await?;
            let info = version_info(&tx, name, version).await?;
            tx.commit().await.map_err(failed)?;
            Ok(info)
        })
    }

    fn undeploy(&self, name: &str) -> Result<bool> {
        self.block(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(failed)?;
            lock_name(&tx, name).await?;
            let removed = tx
                .execute("DELETE FROM plugin_live WHERE name = $1", &[&name])
                .await
                .map_err(failed)?
                > 0;
            if removed {
                changed(&tx, name).await?;
            }
            tx.commit().await.map_err(failed)?;
            Ok(removed)
        })
    }

    fn live(&self) -> Result<Vec<(String, i64)>> {
        self.block(async {
            let client = self.client().await?;
            let rows = client
                .query("SELECT name, version FROM plugin_live ORDER BY name", &[])
                .await
                .map_err(failed)?;
            Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
        })
    }

    fn artifact(&self, name: &str, version: i64) -> Result<Option<Artifact>> {
        self.block(async {
            let client = self.client().await?;
            let row = client
                .query_opt(
                    "SELECT wasm, manifest FROM plugin_versions WHERE name = $1 AND version = $2",
                    &[&name, &version],
                )
                .await
                .map_err(failed)?;
            Ok(row.map(|row| Artifact {
                name: name.to_owned(),
                version,
                wasm: row.get(0),
                manifest: row.get(1),
            }))
        })
    }

    fn generation(&self) -> Result<i64> {
        self.block(async {
            let client = self.client().await?;
            let row = client
                .query_one("SELECT value FROM deploy_generation", &[])
                .await
                .map_err(failed)?;
            Ok(row.get(0))
        })
    }
}

/// Signals `notify` on every change any host of the fleet announces, and
/// once after every (re)connection (a change may have been missed while
/// the connection was down). Runs until the host stops.
pub async fn listen(target: PgTarget, notify: Arc<Notify>) {
    loop {
        match target.listen(CHANNEL).await {
            Ok((_client, mut notes)) => {
                notify.notify_one();
                while notes.recv().await.is_some() {
                    notify.notify_one();
                }
                tracing::warn!("lost the deploy notifications' connection; connecting again");
            }
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "cannot listen for deploys; the periodic check still runs");
            }
        }
        tokio::time::sleep(RELISTEN).await;
    }
}
