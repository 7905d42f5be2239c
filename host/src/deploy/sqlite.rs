//! The embedded deployment store: `DATA/deployments.db`, one SQLite file
//! beside the inbox, for a host that runs alone.
//!
//! Same settings as the inbox: write-ahead log, `synchronous = FULL` (a
//! deploy answered 201 survives power loss), owner-only file mode (a
//! manifest may hold config values an operator considers private), schema
//! versioned with `PRAGMA user_version`. One connection behind a mutex:
//! deploys are rare and every call is short, except reading a component,
//! which is one row.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context as _;
use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};

use super::{Artifact, Deployments, Result, VersionInfo, fingerprint};
use crate::inbox::now_millis;

/// The schema this build writes.
const SCHEMA_VERSION: i64 = 1;

/// Every version ever published, the live one per name, and the counter
/// that tells pollers something changed.
const SCHEMA_V1: &str = "
CREATE TABLE plugin_versions (
    name        TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    sha256      TEXT    NOT NULL,
    size        INTEGER NOT NULL,
    wasm        BLOB    NOT NULL,
    manifest    TEXT,
    deployed_at INTEGER NOT NULL,
    deployed_by TEXT    NOT NULL,
    PRIMARY KEY (name, version)
) WITHOUT ROWID;
CREATE TABLE plugin_live (
    name    TEXT    PRIMARY KEY,
    version INTEGER NOT NULL,
    FOREIGN KEY (name, version) REFERENCES plugin_versions (name, version)
) WITHOUT ROWID;
CREATE TABLE deploy_generation (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT INTO deploy_generation (id, value) VALUES (1, 0);
";

/// [`Deployments`] in `DATA/deployments.db`.
pub struct SqliteDeployments {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl SqliteDeployments {
    /// Opens (creating if needed) `dir/deployments.db` and migrates it.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create data folder {}", dir.display()))?;
        let path = dir.join("deployments.db");
        let mut conn = crate::inbox::open_durable(&path, "deployment store")?;
        conn.pragma_update(None, "foreign_keys", true)
            .with_context(|| format!("cannot set up deployment store {}", path.display()))?;
        migrate(&mut conn).with_context(|| format!("deployment store {}", path.display()))?;
        Ok(Self {
            path,
            conn: Mutex::new(conn),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version > SCHEMA_VERSION {
        anyhow::bail!(
            "was written by a newer hookhost (schema {version}, this one knows {SCHEMA_VERSION})"
        );
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
    if version < 1 {
        tx.execute_batch(SCHEMA_V1)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

const INFO_COLUMNS: &str = "v.name, v.version, v.sha256, v.size, v.deployed_at, v.deployed_by,
     (l.version IS NOT NULL) AS live";

fn info(row: &rusqlite::Row<'_>) -> rusqlite::Result<VersionInfo> {
    Ok(VersionInfo {
        name: row.get(0)?,
        version: row.get(1)?,
        sha256: row.get(2)?,
        size: row.get::<_, i64>(3)? as u64,
        deployed_at: row.get(4)?,
        deployed_by: row.get(5)?,
        live: row.get(6)?,
    })
}

fn version_info(
    conn: &Connection,
    name: &str,
    version: i64,
) -> rusqlite::Result<Option<VersionInfo>> {
    conn.query_row(
        &format!(
            "SELECT {INFO_COLUMNS} FROM plugin_versions v
             LEFT JOIN plugin_live l ON l.name = v.name AND l.version = v.version
             WHERE v.name = ?1 AND v.version = ?2"
        ),
        params![name, version],
        info,
    )
    .optional()
}

fn bump(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE deploy_generation SET value = value + 1 WHERE id = 1",
        [],
    )
    .map(drop)
}

impl Deployments for SqliteDeployments {
    fn publish(
        &self,
        name: &str,
        wasm: &[u8],
        manifest: Option<&str>,
        by: &str,
    ) -> Result<VersionInfo> {
        let sha256 = fingerprint(wasm, manifest);
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let live: Option<(i64, String)> = tx
            .query_row(
                "SELECT v.version, v.sha256 FROM plugin_live l
                 JOIN plugin_versions v ON v.name = l.name AND v.version = l.version
                 WHERE l.name = ?1",
                params![name],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        // The same bytes as the live version: that version, no new one.
        if let Some((version, live_sha)) = live
            && live_sha == sha256
        {
            let info = version_info(&tx, name, version)?.context("live version vanished")?;
            return Ok(info);
        }
        let version: i64 = tx.query_row(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM plugin_versions WHERE name = ?1",
            params![name],
            |row| row.get(0),
        )?;
        tx.execute(
            "INSERT INTO plugin_versions
                 (name, version, sha256, size, wasm, manifest, deployed_at, deployed_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                name,
                version,
                sha256,
                wasm.len() as i64,
                wasm,
                manifest,
                now_millis(),
                by
            ],
        )?;
        tx.execute(
            "INSERT INTO plugin_live (name, version) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET version = excluded.version",
            params![name, version],
        )?;
        bump(&tx)?;
        let info = version_info(&tx, name, version)?.context("version just written vanished")?;
        tx.commit()?;
        Ok(info)
    }

    fn versions(&self, name: &str) -> Result<Vec<VersionInfo>> {
        let conn = self.conn();
        let mut statement = conn.prepare_cached(&format!(
            "SELECT {INFO_COLUMNS} FROM plugin_versions v
             LEFT JOIN plugin_live l ON l.name = v.name AND l.version = v.version
             WHERE v.name = ?1 ORDER BY v.version DESC"
        ))?;
        let rows = statement.query_map(params![name], info)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn set_live(&self, name: &str, version: i64) -> Result<Option<VersionInfo>> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM plugin_versions WHERE name = ?1 AND version = ?2)",
            params![name, version],
            |row| row.get(0),
        )?;
        if !exists {
            return Ok(None);
        }
        tx.execute(
            "INSERT INTO plugin_live (name, version) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET version = excluded.version",
            params![name, version],
        )?;
        bump(&tx)?;
        let info = version_info(&tx, name, version)?;
        tx.commit()?;
        Ok(info)
    }

    fn undeploy(&self, name: &str) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let removed = tx.execute("DELETE FROM plugin_live WHERE name = ?1", params![name])?;
        if removed > 0 {
            bump(&tx)?;
        }
        tx.commit()?;
        Ok(removed > 0)
    }

    fn live(&self) -> Result<Vec<(String, i64)>> {
        let conn = self.conn();
        let mut statement =
            conn.prepare_cached("SELECT name, version FROM plugin_live ORDER BY name")?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn artifact(&self, name: &str, version: i64) -> Result<Option<Artifact>> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                "SELECT wasm, manifest FROM plugin_versions WHERE name = ?1 AND version = ?2",
                params![name, version],
                |row| {
                    Ok(Artifact {
                        name: name.to_owned(),
                        version,
                        wasm: row.get(0)?,
                        manifest: row.get(1)?,
                    })
                },
            )
            .optional()?)
    }

    fn generation(&self) -> Result<i64> {
        let conn = self.conn();
        Ok(conn.query_row(
            "SELECT value FROM deploy_generation WHERE id = 1",
            [],
            |row| row.get(0),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> (tempfile::TempDir, SqliteDeployments) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteDeployments::open(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn versions_start_at_one_grow_and_the_newest_is_live() {
        let (_dir, store) = open();
        assert_eq!(store.generation().unwrap(), 0);
        assert!(store.versions("a").unwrap().is_empty());
        let one = store.publish("a", b"wasm-1", None, "host-1").unwrap();
        assert_eq!((one.version, one.live, one.size), (1, true, 6));
        assert_eq!(one.sha256, fingerprint(b"wasm-1", None));
        assert_eq!(one.deployed_by, "host-1");
        let two = store
            .publish("a", b"wasm-2", Some("route = \"/x\"\n"), "host-2")
            .unwrap();
        assert_eq!(two.version, 2);
        // Another name has its own numbers.
        assert_eq!(store.publish("b", b"wasm-1", None, "h").unwrap().version, 1);

        let versions = store.versions("a").unwrap();
        let numbers: Vec<_> = versions.iter().map(|v| (v.version, v.live)).collect();
        assert_eq!(numbers, [(2, true), (1, false)], "newest first");
        assert_eq!(
            store.live().unwrap(),
            [("a".to_owned(), 2), ("b".to_owned(), 1)]
        );
        let artifact = store.artifact("a", 2).unwrap().unwrap();
        assert_eq!(artifact.wasm, b"wasm-2");
        assert_eq!(artifact.manifest.as_deref(), Some("route = \"/x\"\n"));
        assert!(store.artifact("a", 3).unwrap().is_none());
        assert_eq!(store.generation().unwrap(), 3);
    }

    #[test]
    fn the_same_bytes_as_the_live_version_make_no_new_version() {
        let (_dir, store) = open();
        store.publish("a", b"w", Some("m"), "h").unwrap();
        let generation = store.generation().unwrap();
        let again = store.publish("a", b"w", Some("m"), "h").unwrap();
        assert_eq!(again.version, 1);
        assert_eq!(store.generation().unwrap(), generation);
        // A different manifest is a different version.
        assert_eq!(store.publish("a", b"w", None, "h").unwrap().version, 2);
        // Bytes equal to an older (not live) version are a new version.
        assert_eq!(store.publish("a", b"w", Some("m"), "h").unwrap().version, 3);
    }

    #[test]
    fn rollback_moves_live_without_a_new_number_and_undeploy_keeps_versions() {
        let (_dir, store) = open();
        store.publish("a", b"1", None, "h").unwrap();
        store.publish("a", b"2", None, "h").unwrap();
        let generation = store.generation().unwrap();
        let back = store.set_live("a", 1).unwrap().unwrap();
        assert_eq!((back.version, back.live), (1, true));
        assert!(store.generation().unwrap() > generation);
        assert_eq!(store.live().unwrap(), [("a".to_owned(), 1)]);
        assert!(store.set_live("a", 7).unwrap().is_none());
        assert!(store.set_live("nope", 1).unwrap().is_none());
        // The next publish still gets a new number.
        assert_eq!(store.publish("a", b"3", None, "h").unwrap().version, 3);

        let generation = store.generation().unwrap();
        assert!(store.undeploy("a").unwrap());
        assert!(store.generation().unwrap() > generation);
        assert!(!store.undeploy("a").unwrap(), "nothing live any more");
        assert!(store.live().unwrap().is_empty());
        assert_eq!(store.versions("a").unwrap().len(), 3);
        assert!(store.versions("a").unwrap().iter().all(|v| !v.live));
        // A rollback after an undeploy makes a version live again.
        assert!(store.set_live("a", 2).unwrap().unwrap().live);
    }

    #[test]
    fn the_store_survives_reopening_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SqliteDeployments::open(dir.path()).unwrap();
            store.publish("a", b"1", Some("x"), "h").unwrap();
        }
        let store = SqliteDeployments::open(dir.path()).unwrap();
        assert_eq!(store.live().unwrap(), [("a".to_owned(), 1)]);
        assert_eq!(store.generation().unwrap(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(store.path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(SqliteDeployments::open(dir.path()).unwrap());
        let conn = Connection::open(dir.path().join("deployments.db")).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(conn);
        let err = SqliteDeployments::open(dir.path()).err().unwrap();
        assert!(format!("{err:#}").contains("newer hookhost"), "{err:#}");
    }
}
