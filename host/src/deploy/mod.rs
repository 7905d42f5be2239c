//! Deploying plugins through the admin API: versions kept in a store, the
//! live set mirrored into a folder the registry serves.
//!
//! Owns the deployment contract ([`Deployments`]: publish a new version,
//! list versions, move `live` for a rollback, undeploy, read a version's
//! bytes, and a generation counter for cheap polling), its embedded
//! implementation ([`sqlite`], `DATA/deployments.db`), and the sync task
//! that keeps `DATA/deployed/` equal to the live set ([`Deploy`]). Does not
//! own loading plugins: that is [`Registry::reload_from`] with
//! [`Origin::Deployed`], the same path a change in the plugin folder takes,
//! and the same build step validates a deploy before it is stored
//! ([`Registry::check`]). Does not own HTTP either: [`crate::admin`] maps
//! [`DeployError`] to statuses.
//!
//! Strategy:
//! - The store is the truth, the folder a cache of it. A sync reads the
//!   live set (`(name, version)` pairs), writes the files of every name
//!   whose version changed (temp file + rename, so the registry never reads
//!   half a file), deletes the files of names no longer live, then asks the
//!   registry to reload exactly those names. At start the folder is
//!   rewritten from the store, so a file left by a previous run never
//!   serves a version the store no longer has live.
//! - A sync runs at start (before the host serves), right after every
//!   change made through this host's admin API (the answer is sent once the
//!   new version is loaded here), whenever [`Deploy::notifier`] is signalled
//!   (the PostgreSQL store's LISTEN/NOTIFY), and when the store's
//!   [`Deployments::generation`], polled every `--deploy-poll`, moved: the
//!   backstop that makes every host converge whatever notification is lost.
//!   Syncs take turns on one async mutex.
//! - The store is blocking (rusqlite, or a blocking PostgreSQL client);
//!   every call goes through `spawn_blocking`.
//! - Versions per name start at 1 and only grow; a rollback moves `live`
//!   and makes no new number. Publishing the bytes of the live version
//!   (component and manifest, [`fingerprint`]) is a no-op that answers the
//!   existing version.

pub mod postgres;
pub mod sqlite;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::inbox::Millis;
use crate::registry::{Changes, LoadError, LoadReport, Origin, Registry, check_name, plugin_file};
use crate::runtime::Runtime;

pub use postgres::PostgresDeployments;
pub use sqlite::SqliteDeployments;

/// What a store call fails with.
pub type Result<T> = anyhow::Result<T>;

/// One stored version of a plugin, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VersionInfo {
    /// The plugin's name.
    pub name: String,
    /// 1 for the first version of the name, then one more per publish.
    pub version: i64,
    /// [`fingerprint`] of the component and manifest, in hex.
    pub sha256: String,
    /// Size of the component in bytes.
    pub size: u64,
    /// When it was published, in ms since the Unix epoch.
    pub deployed_at: Millis,
    /// The id of the host that published it (`--host-id`).
    pub deployed_by: String,
    /// Whether it is the version the fleet serves now.
    pub live: bool,
}

/// One stored version's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// The plugin's name.
    pub name: String,
    /// Its version number.
    pub version: i64,
    /// The component (`NAME.wasm`).
    pub wasm: Vec<u8>,
    /// The manifest (`NAME.toml`), if it has one.
    pub manifest: Option<String>,
}

/// Where deployed versions are kept. Blocking: call it through
/// `spawn_blocking`. Implementations: [`SqliteDeployments`] (one host);
/// PostgreSQL (a fleet) must behave the same way, which the unit tests of
/// [`sqlite`] describe.
pub trait Deployments: Send + Sync {
    /// Stores a new version of `name` (the next number) and makes it live,
    /// in one transaction that also grows the generation. If the live
    /// version has the same [`fingerprint`], answers it and stores nothing.
    fn publish(
        &self,
        name: &str,
        wasm: &[u8],
        manifest: Option<&str>,
        by: &str,
    ) -> Result<VersionInfo>;
    /// Every version of `name`, newest first; empty when there is none.
    fn versions(&self, name: &str) -> Result<Vec<VersionInfo>>;
    /// Makes `version` of `name` live (a rollback, or a redeploy after an
    /// undeploy); `None` when there is no such version.
    fn set_live(&self, name: &str, version: i64) -> Result<Option<VersionInfo>>;
    /// Makes nothing live for `name` (its versions stay); `false` when
    /// nothing was.
    fn undeploy(&self, name: &str) -> Result<bool>;
    /// Every live `(name, version)`, by name. Cheap: no bytes.
    fn live(&self) -> Result<Vec<(String, i64)>>;
    /// The files of `version` of `name`.
    fn artifact(&self, name: &str, version: i64) -> Result<Option<Artifact>>;
    /// A number that grows on every publish, set_live and undeploy: a
    /// cheap "did anything change" poll.
    fn generation(&self) -> Result<i64>;
}

/// The `sha256` of a version: SHA-256 over the component's length (8
/// bytes, big-endian), the component, a byte saying whether a manifest
/// follows (0 or 1), and the manifest, in hex. Every store computes it
/// with this function, so equal bytes have equal fingerprints fleet-wide.
pub fn fingerprint(wasm: &[u8], manifest: Option<&str>) -> String {
    let mut hash = Sha256::new();
    hash.update((wasm.len() as u64).to_be_bytes());
    hash.update(wasm);
    match manifest {
        Some(manifest) => {
            hash.update([1]);
            hash.update(manifest.as_bytes());
        }
        None => hash.update([0]),
    }
    hex::encode(hash.finalize())
}

/// Why a deploy operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The name breaks the plugin file name rules.
    #[error("{0}")]
    BadName(String),
    /// The name is served from the plugin folder.
    #[error("{0}")]
    FolderPlugin(String),
    /// The plugin would not load; nothing was stored.
    #[error("{0}")]
    Broken(LoadError),
    /// No such plugin or version.
    #[error("{0}")]
    NotFound(String),
    /// A rollback with nothing to roll back to.
    #[error("{0}")]
    NothingOlder(String),
    /// The store failed.
    #[error("deployment store: {0:#}")]
    Store(anyhow::Error),
}

/// What a publish did.
#[derive(Debug, Clone)]
pub struct Deployed {
    /// The live version now.
    pub info: VersionInfo,
    /// `false` when the bytes were the live version's: nothing was stored.
    pub new: bool,
    /// Whether this host serves it now (`false`: see `GET /plugins` for
    /// why, e.g. its route is taken).
    pub serving: bool,
}

/// What the sync wrote, between syncs.
#[derive(Default)]
struct SyncState {
    /// The version whose files are in the folder, by name.
    written: BTreeMap<String, i64>,
    /// The store's generation at the last good sync.
    generation: Option<i64>,
}

/// Deploying on this host: the store, the deployed folder, the sync.
pub struct Deploy {
    store: Arc<dyn Deployments>,
    registry: Arc<Registry>,
    runtime: Arc<Runtime>,
    dir: PathBuf,
    host_id: String,
    wake: Arc<Notify>,
    state: std::sync::Mutex<SyncState>,
    /// Held for a whole sync: syncs take turns.
    turn: tokio::sync::Mutex<()>,
}

impl Deploy {
    /// Deploying with the embedded store `data_dir/deployments.db` and the
    /// folder `data_dir/deployed`.
    pub fn open(
        data_dir: &Path,
        registry: Arc<Registry>,
        runtime: Arc<Runtime>,
    ) -> anyhow::Result<Self> {
        let store = Arc::new(SqliteDeployments::open(data_dir)?);
        Self::new(store, &data_dir.join("deployed"), registry, runtime)
    }

    /// Deploying with `store`, mirrored into `dir` (created if needed).
    pub fn new(
        store: Arc<dyn Deployments>,
        dir: &Path,
        registry: Arc<Registry>,
        runtime: Arc<Runtime>,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create deployed folder {}", dir.display()))?;
        Ok(Self {
            store,
            registry,
            runtime,
            dir: dir.to_owned(),
            host_id: crate::inbox::default_host_id(),
            wake: Arc::new(Notify::new()),
            state: std::sync::Mutex::default(),
            turn: tokio::sync::Mutex::new(()),
        })
    }

    /// The same, recording `id` as the host in `deployed_by`.
    pub fn with_host_id(mut self, id: impl Into<String>) -> Self {
        self.host_id = id.into();
        self
    }

    /// Signal it (`notify_one`) to make the sync task sync now: what a
    /// store's change notification (PostgreSQL LISTEN) does.
    pub fn notifier(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// The folder the deployed versions are written to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The live version whose files this host loaded, by name.
    pub fn loaded_versions(&self) -> BTreeMap<String, i64> {
        self.state().written.clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SyncState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Deployments) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&*store))
            .await
            .context("a deployment store call panicked")?
    }

    /// Validates `wasm` (and `manifest`) as plugin `name` the way the
    /// registry loads it, stores it as a new live version, and loads it on
    /// this host before answering. Nothing is stored if it would not load.
    pub async fn publish(
        &self,
        name: &str,
        wasm: Vec<u8>,
        manifest: Option<String>,
    ) -> std::result::Result<Deployed, DeployError> {
        check_name(name).map_err(DeployError::BadName)?;
        if self.registry.has(name, Origin::Folder) {
            return Err(DeployError::FolderPlugin(format!(
                "plugin {name} is in the plugin folder; remove {name}.wasm from it before deploying {name} through the admin API"
            )));
        }
        let sha256 = fingerprint(&wasm, manifest.as_deref());
        let owned = name.to_owned();
        let versions = self
            .call(move |store| store.versions(&owned))
            .await
            .map_err(DeployError::Store)?;
        let live = versions.into_iter().find(|v| v.live);
        if let Some(live) = &live
            && live.sha256 == sha256
        {
            return Ok(Deployed {
                serving: self.serving(name),
                info: live.clone(),
                new: false,
            });
        }
        self.registry
            .check(
                &self.runtime,
                Origin::Deployed,
                &self.dir,
                name,
                wasm.clone(),
                manifest.clone().map(String::into_bytes),
            )
            .await
            .map_err(DeployError::Broken)?;
        let (owned, by) = (name.to_owned(), self.host_id.clone());
        let info = self
            .call(move |store| store.publish(&owned, &wasm, manifest.as_deref(), &by))
            .await
            .map_err(DeployError::Store)?;
        let new = live.is_none_or(|live| live.version != info.version);
        tracing::info!(plugin = %name, version = info.version, sha256 = %info.sha256, "plugin deployed through the admin API");
        self.sync_logged().await;
        Ok(Deployed {
            serving: self.serving(name),
            info,
            new,
        })
    }

    /// Every stored version of `name`, newest first.
    pub async fn versions(&self, name: &str) -> std::result::Result<Vec<VersionInfo>, DeployError> {
        let owned = name.to_owned();
        self.call(move |store| store.versions(&owned))
            .await
            .map_err(DeployError::Store)
    }

    /// Makes version `to` of `name` live, by default the newest one older
    /// than the live one, and loads it here before answering.
    pub async fn rollback(
        &self,
        name: &str,
        to: Option<i64>,
    ) -> std::result::Result<VersionInfo, DeployError> {
        let versions = self.versions(name).await?;
        if versions.is_empty() {
            return Err(DeployError::NotFound(format!(
                "plugin {name} has no deployed versions"
            )));
        }
        let target = match to {
            Some(to) => versions.iter().find(|v| v.version == to).ok_or_else(|| {
                DeployError::NotFound(format!("plugin {name} has no version {to}"))
            })?,
            None => {
                let Some(live) = versions.iter().find(|v| v.live) else {
                    return Err(DeployError::NothingOlder(format!(
                        "plugin {name} is not deployed now; say which version to make live with ?to=VERSION"
                    )));
                };
                versions
                    .iter()
                    .find(|v| v.version < live.version)
                    .ok_or_else(|| {
                        DeployError::NothingOlder(format!(
                            "version {} is the oldest of plugin {name}: nothing older to roll back to",
                            live.version
                        ))
                    })?
            }
        };
        let (owned, version) = (name.to_owned(), target.version);
        let info = self
            .call(move |store| store.set_live(&owned, version))
            .await
            .map_err(DeployError::Store)?
            .ok_or_else(|| {
                DeployError::NotFound(format!("plugin {name} has no version {version}"))
            })?;
        tracing::info!(plugin = %name, version = info.version, "plugin rolled back through the admin API");
        self.sync_logged().await;
        Ok(info)
    }

    /// Makes nothing live for `name` and unloads it here; its versions stay.
    pub async fn undeploy(&self, name: &str) -> std::result::Result<(), DeployError> {
        let owned = name.to_owned();
        let removed = self
            .call(move |store| store.undeploy(&owned))
            .await
            .map_err(DeployError::Store)?;
        if !removed {
            return Err(DeployError::NotFound(format!(
                "plugin {name} is not deployed"
            )));
        }
        tracing::info!(plugin = %name, "plugin undeployed through the admin API");
        self.sync_logged().await;
        Ok(())
    }

    /// Whether `name` serves from the deployed folder here.
    fn serving(&self, name: &str) -> bool {
        self.registry
            .plugins()
            .iter()
            .any(|p| p.name == name && p.origin == Origin::Deployed)
    }

    async fn sync_logged(&self) {
        if let Err(err) = self.sync().await {
            tracing::error!(error = %format!("{err:#}"), "deployed plugins not synced; retrying at the next poll");
        }
    }

    /// Re-validates every deployed plugin's manifest (secrets re-read), as
    /// `POST /plugins/reload` does for the plugin folder; unchanged
    /// components are not recompiled.
    pub async fn refresh(&self) -> anyhow::Result<LoadReport> {
        let _turn = self.turn.lock().await;
        self.registry
            .reload_from(&self.runtime, Origin::Deployed, &self.dir, Changes::Refresh)
            .await
    }

    /// Brings the deployed folder, and through it the registry, in line
    /// with the store's live set.
    pub async fn sync(&self) -> anyhow::Result<()> {
        let _turn = self.turn.lock().await;
        // Read before the live set: a change made meanwhile grows it again,
        // and the next poll syncs once more.
        let generation = self.call(|store| store.generation()).await?;
        let live: BTreeMap<String, i64> =
            self.call(|store| store.live()).await?.into_iter().collect();
        let mut written = self.state().written.clone();
        let mut changed = BTreeSet::new();
        for (name, version) in &live {
            if written.get(name) == Some(version) {
                continue;
            }
            if let Err(why) = check_name(name) {
                tracing::warn!(plugin = %name, error = %why, "deployed plugin ignored");
                continue;
            }
            let (owned, v) = (name.clone(), *version);
            let Some(artifact) = self.call(move |store| store.artifact(&owned, v)).await? else {
                tracing::warn!(plugin = %name, version, "the live version is not in the store; ignored");
                continue;
            };
            let dir = self.dir.clone();
            tokio::task::spawn_blocking(move || write_artifact(&dir, &artifact))
                .await
                .context("writing a deployed plugin panicked")??;
            written.insert(name.clone(), *version);
            changed.insert(name.clone());
        }
        let dir = self.dir.clone();
        let present = tokio::task::spawn_blocking(move || names_in(&dir))
            .await
            .context("listing the deployed folder panicked")??;
        let gone: Vec<String> = present
            .into_iter()
            .chain(written.keys().cloned())
            .filter(|name| !live.contains_key(name))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        for name in gone {
            let dir = self.dir.clone();
            let owned = name.clone();
            tokio::task::spawn_blocking(move || remove_files(&dir, &owned))
                .await
                .context("removing a deployed plugin panicked")??;
            written.remove(&name);
            changed.insert(name);
        }
        if !changed.is_empty() {
            tracing::debug!(?changed, "loading deployed plugins");
            self.registry
                .reload_from(
                    &self.runtime,
                    Origin::Deployed,
                    &self.dir,
                    Changes::Names(changed),
                )
                .await?;
        }
        let mut state = self.state();
        state.written = written;
        state.generation = Some(generation);
        Ok(())
    }

    /// Starts the sync task: every `poll` it compares the store's
    /// generation with the last sync's, and syncs when it moved or when the
    /// notifier is signalled.
    pub fn spawn(self: &Arc<Self>, poll: Duration) -> SyncTask {
        let this = self.clone();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + poll, poll);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = this.wake.notified() => {}
                    _ = ticks.tick() => {
                        let seen = this.state().generation;
                        match this.call(|store| store.generation()).await {
                            Ok(now) if Some(now) == seen => continue,
                            Ok(_) => {}
                            Err(err) => {
                                tracing::warn!(error = %format!("{err:#}"), "cannot poll the deployment store");
                                continue;
                            }
                        }
                    }
                }
                this.sync_logged().await;
            }
        });
        SyncTask { task }
    }
}

/// The running sync task; stopped when dropped.
pub struct SyncTask {
    task: JoinHandle<()>,
}

impl SyncTask {
    /// Stops syncing; a sync in progress is abandoned.
    pub async fn stop(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for SyncTask {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Writes `artifact` as `NAME.wasm` (and `NAME.toml`, or removes a stale
/// one) in `dir`, each through a dotfile renamed into place.
fn write_artifact(dir: &Path, artifact: &Artifact) -> anyhow::Result<()> {
    let name = &artifact.name;
    match &artifact.manifest {
        Some(manifest) => write_atomic(dir, &format!("{name}.toml"), manifest.as_bytes())?,
        None => remove(&dir.join(format!("{name}.toml")))?,
    }
    write_atomic(dir, &format!("{name}.wasm"), &artifact.wasm)
}

fn write_atomic(dir: &Path, file: &str, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let staged = dir.join(format!(".{file}.tmp"));
    let target = dir.join(file);
    let mut out = std::fs::File::create(&staged)
        .with_context(|| format!("cannot write {}", staged.display()))?;
    out.write_all(bytes)
        .and_then(|()| out.sync_all())
        .with_context(|| format!("cannot write {}", staged.display()))?;
    std::fs::rename(&staged, &target)
        .with_context(|| format!("cannot rename {} to {}", staged.display(), target.display()))
}

fn remove(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err).with_context(|| format!("cannot remove {}", path.display())),
    }
}

fn remove_files(dir: &Path, name: &str) -> anyhow::Result<()> {
    remove(&dir.join(format!("{name}.wasm")))?;
    remove(&dir.join(format!("{name}.toml")))
}

/// Plugin names with a file in `dir`.
fn names_in(dir: &Path) -> anyhow::Result<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read deployed folder {}", dir.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot read deployed folder {}", dir.display()))?
            .path();
        if let Some((name, _)) = plugin_file(&path) {
            names.insert(name);
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_tell_component_from_manifest() {
        assert_ne!(fingerprint(b"ab", Some("c")), fingerprint(b"a", Some("bc")));
        assert_ne!(fingerprint(b"a", None), fingerprint(b"a", Some("")));
        assert_eq!(fingerprint(b"a", Some("m")), fingerprint(b"a", Some("m")));
        assert_eq!(fingerprint(b"", None).len(), 64);
    }

    #[test]
    fn artifacts_are_written_whole_and_a_stale_manifest_goes() {
        let dir = tempfile::tempdir().unwrap();
        let artifact = |manifest: Option<&str>| Artifact {
            name: "p".into(),
            version: 1,
            wasm: b"component".to_vec(),
            manifest: manifest.map(str::to_owned),
        };
        write_artifact(dir.path(), &artifact(Some("route = \"/x\""))).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("p.wasm")).unwrap(),
            b"component"
        );
        assert!(dir.path().join("p.toml").exists());
        write_artifact(dir.path(), &artifact(None)).unwrap();
        assert!(!dir.path().join("p.toml").exists());
        assert_eq!(names_in(dir.path()).unwrap(), ["p".to_owned()].into());
        remove_files(dir.path(), "p").unwrap();
        assert!(names_in(dir.path()).unwrap().is_empty());
        // No temp file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
