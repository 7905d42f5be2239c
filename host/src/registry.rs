//! The live set of plugins: which route runs which compiled component.
//!
//! Owns reading the plugin folder (`NAME.wasm` plus optional `NAME.toml`),
//! compiling and validating each plugin, deciding which plugin serves which
//! route, and publishing the result as an immutable routing table. Readers
//! (every request) take a lock-free snapshot with [`Registry::lookup`];
//! writers build a whole new table and swap it in, so a delivery keeps the
//! plugin version it started with. Noticing that files changed is not this
//! module's job: [`crate::watch`] calls [`Registry::reload`].
//!
//! Strategy:
//! - Plugins are keyed by name; routes are derived. Per name the registry
//!   keeps the running version, a newer good version that is waiting for its
//!   route, the last error, and a fingerprint (SHA-256 of the component and
//!   manifest bytes) of the files it last tried. A reload re-reads the files
//!   of the names it is given and skips those whose fingerprint is unchanged,
//!   so a burst of events costs a hash, not a compile, and a half-written
//!   file that failed is retried as soon as its content changes: the registry
//!   always converges to what is on disk.
//! - A new version is built completely before anything changes: manifest
//!   validated (secrets resolved), component compiled on a blocking thread,
//!   linked against the world, and instantiated once under the manifest's
//!   limits (what every delivery does first). A failure leaves the running version
//!   serving and records the error (file and reason) for the log, the admin
//!   API and metrics. A component whose bytes did not change is not
//!   recompiled (a manifest-only edit is instant), and an unchanged manifest
//!   is not re-parsed, so its rate-limit buckets survive a component update.
//! - Routes: the plugin already serving a route keeps it. A good version
//!   whose route is taken waits, with the clash recorded as its error, and
//!   goes live as soon as the route is free (the owner removed or moved). At
//!   start-up every plugin is new and they are placed in name order, so the
//!   first by name wins.
//! - Reloads take turns (start-up, the watcher, SIGHUP and the admin API
//!   may overlap) on one async mutex. The per-name state is behind a plain
//!   mutex held only to copy or update it, never across file I/O or a
//!   compile; every file is read through [`crate::files`] (regular files
//!   only, opened without blocking, capped, timed), so a FIFO or a hung
//!   file system costs one reload at most [`crate::files::READ_TIMEOUT`]
//!   per file, never the host. After each reload, routes and errors are
//!   published together in one `ArcSwap`, so a reader never sees half a
//!   reload.
//! - Verification is never dropped from a running route by a reload of any
//!   kind (file event, SIGHUP, `POST /plugins/reload`) unless the new
//!   manifest says `unverified = true`. A re-parsed manifest whose
//!   `[ingress]` limits did not change keeps the running version's
//!   rate-limit buckets.
//! - Manifest `env:`/`file:` references are read under [`SecretRules`]:
//!   `file:` inside the secrets folder, none of the host's own secrets.
//! - Removing `NAME.wasm` unroutes the plugin at once; deliveries already
//!   running hold their own `Arc` of it and finish on it.
//! - Two folders feed the registry, each an [`Origin`]: the plugin folder
//!   (`--plugins`, watched by [`crate::watch`]) and the deployed folder
//!   (`DATA/deployed`, kept equal to the deployment store's live set by
//!   [`crate::deploy`]). Per-name state is kept per origin, and each reload
//!   names the origin it reads. A name present in both is a clash handled
//!   like a route clash: the version already serving keeps serving, the
//!   other waits with the error "plugin NAME is both in the plugin folder
//!   and deployed; remove one", and goes live if the first is removed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use sha2::{Digest as _, Sha256};

use crate::config::Manifest;
use crate::runtime::{CallError, CallLimits, Grants, Prepared, Runtime};
use crate::secret::{SecretResolver, SecretRules};
use crate::telemetry::{LoadTotals, PluginStats, PluginTotals};

/// SHA-256 of a file's contents.
pub type Digest = [u8; 32];

/// Which folder a plugin's files come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Origin {
    /// The plugin folder (`--plugins`), written by the operator.
    #[default]
    Folder,
    /// The deployed folder (`DATA/deployed`), written by [`crate::deploy`]
    /// from the versions deployed through the admin API.
    Deployed,
}

impl Origin {
    /// `folder` or `deployed`, as the admin API shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Folder => "folder",
            Origin::Deployed => "deployed",
        }
    }
}

/// One loaded plugin version.
pub struct Plugin {
    /// The plugin's name: its file name without `.wasm`.
    pub name: String,
    /// Which folder it was loaded from.
    pub origin: Origin,
    /// The validated manifest (defaults when there is no `NAME.toml`).
    pub manifest: Manifest,
    /// The component file it was loaded from.
    pub path: PathBuf,
    /// When this version was loaded.
    pub loaded_at: SystemTime,
    /// The compiled, pre-linked component.
    pub prepared: Prepared,
    /// What its manifest grants every call (outbound hosts, config, kv).
    pub grants: Grants,
    /// SHA-256 of the component bytes this version was compiled from.
    pub digest: Digest,
    /// SHA-256 of the manifest bytes, `None` when there was no manifest.
    pub manifest_digest: Option<Digest>,
    /// How deliveries ended; shared with the plugin's earlier versions.
    pub stats: Arc<PluginStats>,
}

impl Plugin {
    /// Limits for one call of this plugin.
    pub fn limits(&self) -> CallLimits {
        CallLimits {
            timeout: self.manifest.timeout,
            memory: self.manifest.memory,
        }
    }

    /// The file that decides this version's route: its manifest if it has one.
    fn route_file(&self) -> PathBuf {
        if self.manifest_digest.is_some() {
            self.path.with_extension("toml")
        } else {
            self.path.clone()
        }
    }
}

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("manifest", &self.manifest)
            .field("path", &self.path)
            .field("digest", &hex::encode(&self.digest[..6]))
            .finish_non_exhaustive()
    }
}

/// Why a plugin's newest files are not what is serving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// The file at fault: `NAME.wasm` or `NAME.toml`.
    pub file: PathBuf,
    /// What is wrong, in terms the plugin's author can act on.
    pub reason: String,
    /// When the error was found.
    pub at: SystemTime,
}

impl LoadError {
    fn new(file: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            reason: reason.into(),
            at: SystemTime::now(),
        }
    }

    fn same_as(&self, other: Option<&LoadError>) -> bool {
        other.is_some_and(|o| o.file == self.file && o.reason == self.reason)
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.reason)
    }
}

/// Which of a plugin's two files a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `NAME.wasm`, the component.
    Component,
    /// `NAME.toml`, the manifest.
    Manifest,
}

/// The plugin that a file in the plugin folder belongs to, or `None` for a
/// file the host ignores: anything but `NAME.wasm` and `NAME.toml`, and
/// dotfiles, which is what deploy tools and editors write before renaming
/// into place (`.NAME.wasm.tmp`, `NAME.wasm~` and `NAME.wasm.part` already
/// fail the extension test).
pub fn plugin_file(path: &Path) -> Option<(String, FileKind)> {
    let file = path.file_name()?.to_str()?;
    if file.starts_with('.') {
        return None;
    }
    let (stem, extension) = file.rsplit_once('.')?;
    let kind = match extension {
        "wasm" => FileKind::Component,
        "toml" => FileKind::Manifest,
        _ => return None,
    };
    (!stem.is_empty()).then(|| (stem.to_owned(), kind))
}

/// What a reload should look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changes {
    /// Files of these plugin names changed (from file events).
    Names(BTreeSet<String>),
    /// Anything in the folder may have changed (start-up, lost events): every
    /// name is checked, unchanged files are skipped.
    Folder,
    /// Like [`Changes::Folder`], but every manifest is re-validated even if
    /// its bytes did not change, because the secrets it references (`env:`,
    /// `file:`) may have (SIGHUP). Unchanged components are not recompiled.
    Refresh,
}

/// What one reload did.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Plugins whose new version went live (new or replaced), by name.
    pub loaded: Vec<String>,
    /// Plugins that were unrouted because their `NAME.wasm` is gone.
    pub removed: Vec<String>,
    /// Plugins whose newest files could not go live, and why. A plugin listed
    /// here may still be serving an older version.
    pub failed: BTreeMap<String, LoadError>,
}

/// Per-name state, writer side only. Cheap to clone (a build works on a
/// copy, so the state is never locked across I/O).
#[derive(Default, Clone)]
struct Entry {
    /// The version serving requests.
    live: Option<Arc<Plugin>>,
    /// A good version that cannot go live yet because its route is taken.
    waiting: Option<Arc<Plugin>>,
    /// Why the newest files are not serving; `None` when they are.
    error: Option<LoadError>,
    /// The files last tried, whatever came of it.
    tried: Option<Fingerprint>,
}

impl Entry {
    /// The newest good build, to reuse its compiled code or parsed manifest.
    fn newest(&self) -> Option<&Arc<Plugin>> {
        self.waiting.as_ref().or(self.live.as_ref())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    component: Digest,
    manifest: Option<Digest>,
}

/// What readers see: swapped whole after each reload.
#[derive(Default)]
struct Published {
    routes: HashMap<String, Arc<Plugin>>,
    errors: BTreeMap<String, LoadError>,
}

/// The registry of loaded plugins.
#[derive(Default)]
pub struct Registry {
    published: ArcSwap<Published>,
    /// Held for a whole reload: reloads take turns.
    turn: tokio::sync::Mutex<()>,
    /// Locked only to copy or update entries, never across an `.await`.
    /// Keyed by name, then origin: a name may have files in both folders.
    entries: std::sync::Mutex<BTreeMap<Key, Entry>>,
    /// What manifest references may read; `None`: `file:` inside the
    /// plugin folder, no `HOOKHOST_*` variable.
    secret_rules: Option<SecretRules>,
    loaded: AtomicU64,
    failed: AtomicU64,
}

impl Registry {
    /// An empty registry: every route is 404 until a load. Manifests may
    /// read `file:` secrets inside the plugin folder only.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty registry whose manifests' references are read under
    /// `rules` (the host's `--secrets-dir` and its own secrets).
    pub fn with_secret_rules(rules: SecretRules) -> Self {
        Self {
            secret_rules: Some(rules),
            ..Self::default()
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The plugin serving `path`, if any. Lock-free.
    pub fn lookup(&self, path: &str) -> Option<Arc<Plugin>> {
        self.published.load().routes.get(path).cloned()
    }

    /// Every plugin currently serving, by name.
    pub fn plugins(&self) -> Vec<Arc<Plugin>> {
        let mut plugins: Vec<_> = self.published.load().routes.values().cloned().collect();
        plugins.sort_by(|a, b| a.name.cmp(&b.name));
        plugins
    }

    /// Whether `name` has files in the folder of `origin` that the
    /// registry knows of (serving, waiting or failed).
    pub fn has(&self, name: &str, origin: Origin) -> bool {
        self.entries().contains_key(&(name.to_owned(), origin))
    }

    /// For each plugin whose newest files are not serving, why. The plugin
    /// may still be serving an older version (see [`Registry::plugins`]).
    pub fn errors(&self) -> BTreeMap<String, LoadError> {
        self.published.load().errors.clone()
    }

    /// Versions loaded and load failures (each distinct failure once)
    /// since start, and the plugins failing now.
    pub fn counts(&self) -> LoadTotals {
        LoadTotals {
            loaded: self.loaded.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            failing: self.published.load().errors.len() as u64,
        }
    }

    /// Loads every plugin in `dir` (start-up). Same as a
    /// [`Changes::Folder`] reload.
    pub async fn load_dir(&self, runtime: &Arc<Runtime>, dir: &Path) -> anyhow::Result<LoadReport> {
        self.reload(runtime, dir, Changes::Folder).await
    }

    /// Brings the plugins named by `changes` in line with the files in `dir`
    /// (the plugin folder) and publishes the result. Fails only if the folder
    /// cannot be listed (for [`Changes::Folder`] and [`Changes::Refresh`]); a
    /// plugin that fails is reported and the rest go ahead.
    pub async fn reload(
        &self,
        runtime: &Arc<Runtime>,
        dir: &Path,
        changes: Changes,
    ) -> anyhow::Result<LoadReport> {
        self.reload_from(runtime, Origin::Folder, dir, changes)
            .await
    }

    /// [`Registry::reload`] for the plugins of `origin`, whose folder is
    /// `dir`. Plugins of the other origin are untouched (but a name clash
    /// with them is decided here).
    pub async fn reload_from(
        &self,
        runtime: &Arc<Runtime>,
        origin: Origin,
        dir: &Path,
        changes: Changes,
    ) -> anyhow::Result<LoadReport> {
        let _turn = self.turn.lock().await;
        let force = changes == Changes::Refresh;
        let names = match changes {
            Changes::Names(names) => names,
            Changes::Folder | Changes::Refresh => {
                let listed = {
                    let dir = dir.to_owned();
                    tokio::task::spawn_blocking(move || scan(&dir))
                        .await
                        .context("listing the plugin folder panicked")??
                };
                let mut names = listed;
                names.extend(
                    self.entries()
                        .keys()
                        .filter(|(_, o)| *o == origin)
                        .map(|(name, _)| name.clone()),
                );
                names
            }
        };
        let rules = match &self.secret_rules {
            Some(rules) => rules.clone(),
            None => SecretRules::new(dir).map_err(|why| anyhow::anyhow!("plugin folder: {why}"))?,
        };

        let mut report = LoadReport::default();
        for name in names {
            let key = (name.clone(), origin);
            let snapshot = self.entries().get(&key).cloned().unwrap_or_default();
            let step = build(runtime, origin, dir, &rules, &name, &snapshot, force).await;
            let mut entries = self.entries();
            let entry = entries.entry(key.clone()).or_default();
            match step {
                Step::Unchanged => {}
                Step::Removed => {
                    if let Some(entry) = entries.remove(&key)
                        && let Some(live) = entry.live
                    {
                        tracing::info!(plugin = %name, route = %live.manifest.route, "plugin removed: its route now answers 404");
                        report.removed.push(name);
                    }
                }
                Step::Built(plugin, tried) => {
                    entry.tried = Some(tried);
                    entry.waiting = Some(plugin);
                }
                Step::Failed(error, tried) => {
                    entry.tried = tried;
                    // The newest files are broken: an older good version that
                    // was waiting for its route must not go live in their place.
                    entry.waiting = None;
                    if !error.same_as(entry.error.as_ref()) || force {
                        self.failed.fetch_add(1, Ordering::Relaxed);
                        log_failure(&name, &error, entry.live.as_ref());
                    }
                    report.failed.insert(name.clone(), error.clone());
                    entry.error = Some(error);
                }
            }
        }

        let mut entries = self.entries();
        for placement in place(&mut entries) {
            match placement {
                Placement::Live { plugin, replaced } => {
                    self.loaded.fetch_add(1, Ordering::Relaxed);
                    log_live(&plugin, replaced.as_deref());
                    report.failed.remove(&plugin.name);
                    report.loaded.push(plugin.name.clone());
                }
                Placement::Blocked { key, error } => {
                    self.failed.fetch_add(1, Ordering::Relaxed);
                    let live = entries.get(&key).and_then(|e| e.live.as_ref());
                    log_failure(&key.0, &error, live);
                    report.failed.insert(key.0, error);
                }
            }
        }

        let routes = entries
            .values()
            .filter_map(|entry| entry.live.clone())
            .map(|plugin| (plugin.manifest.route.clone(), plugin))
            .collect();
        // One error per name: the plugin folder's first when both origins
        // have one (a clash is recorded on the one that is not serving).
        let mut errors = BTreeMap::new();
        for ((name, _), entry) in entries.iter() {
            if let Some(error) = &entry.error {
                errors.entry(name.clone()).or_insert_with(|| error.clone());
            }
        }
        self.published.store(Arc::new(Published { routes, errors }));
        Ok(report)
    }

    /// Builds plugin `name` from `wasm` and `manifest` exactly as a reload
    /// of `origin` (folder `dir`) would: name checked, manifest validated
    /// (secrets resolved), component compiled, linked and instantiated once
    /// under the manifest's limits, and the running version's verification
    /// kept. Nothing is published or recorded. The error's file is
    /// `NAME.wasm` or `NAME.toml`, without a folder.
    pub async fn check(
        &self,
        runtime: &Arc<Runtime>,
        origin: Origin,
        dir: &Path,
        name: &str,
        wasm: Vec<u8>,
        manifest: Option<Vec<u8>>,
    ) -> Result<(), LoadError> {
        let wasm_path = PathBuf::from(format!("{name}.wasm"));
        let manifest_path = PathBuf::from(format!("{name}.toml"));
        let rules = match &self.secret_rules {
            Some(rules) => rules.clone(),
            None => SecretRules::new(dir)
                .map_err(|why| LoadError::new(&manifest_path, format!("plugin folder: {why}")))?,
        };
        let mut snapshot = self
            .entries()
            .get(&(name.to_owned(), origin))
            .cloned()
            .unwrap_or_default();
        // Always a real check, even of the bytes last tried.
        snapshot.tried = None;
        let files = Files {
            component_digest: sha256(&wasm),
            wasm: Some(wasm),
            manifest: manifest.map(|bytes| {
                let digest = sha256(&bytes);
                (bytes, digest)
            }),
        };
        let paths = Paths {
            wasm: wasm_path,
            manifest: manifest_path,
        };
        match build_files(
            runtime, origin, &paths, &rules, name, &snapshot, false, files,
        )
        .await
        {
            Step::Built(..) | Step::Unchanged => Ok(()),
            Step::Failed(error, _) => Err(error),
            Step::Removed => Err(LoadError::new(&paths.wasm, "no component given")),
        }
    }
}

/// An entry's key: the plugin's name, then the folder it is in.
type Key = (String, Origin);

/// Where one plugin's two files are.
struct Paths {
    wasm: PathBuf,
    manifest: PathBuf,
}

/// What reading one plugin's files came to.
enum Step {
    /// The files are the ones last tried.
    Unchanged,
    /// `NAME.wasm` is gone.
    Removed,
    /// A good new version, ready to go live once its route is free.
    Built(Arc<Plugin>, Fingerprint),
    /// The newest files are unusable (fingerprint `None` if unreadable).
    Failed(LoadError, Option<Fingerprint>),
}

/// The metrics read the registry's totals at scrape time.
impl PluginTotals for Registry {
    fn loads(&self) -> LoadTotals {
        self.counts()
    }

    fn deliveries(&self) -> Vec<(String, Arc<PluginStats>)> {
        self.plugins()
            .into_iter()
            .map(|plugin| (plugin.name.clone(), plugin.stats.clone()))
            .collect()
    }
}

/// Reads, checks and compiles plugin `name`'s files, unless they are the
/// ones `entry` last tried (and `force` is off).
async fn build(
    runtime: &Arc<Runtime>,
    origin: Origin,
    dir: &Path,
    rules: &SecretRules,
    name: &str,
    entry: &Entry,
    force: bool,
) -> Step {
    let wasm_path = dir.join(format!("{name}.wasm"));
    let manifest_path = dir.join(format!("{name}.toml"));
    let files = {
        let (wasm_path, manifest_path) = (wasm_path.clone(), manifest_path.clone());
        // Components can be tens of MB: read and hash off the async threads.
        tokio::task::spawn_blocking(move || read_files(&wasm_path, &manifest_path)).await
    };
    let files = match files {
        Ok(Ok(files)) => files,
        Ok(Err(error)) => return Step::Failed(error, None),
        Err(panic) => {
            return Step::Failed(
                LoadError::new(&wasm_path, format!("reading the files panicked: {panic}")),
                None,
            );
        }
    };
    let paths = Paths {
        wasm: wasm_path,
        manifest: manifest_path,
    };
    build_files(runtime, origin, &paths, rules, name, entry, force, files).await
}

/// [`build`] once the files are read: `paths` name them in errors.
#[allow(clippy::too_many_arguments)]
async fn build_files(
    runtime: &Arc<Runtime>,
    origin: Origin,
    paths: &Paths,
    rules: &SecretRules,
    name: &str,
    entry: &Entry,
    force: bool,
    files: Files,
) -> Step {
    let (wasm_path, manifest_path) = (&paths.wasm, &paths.manifest);
    let Some(wasm) = files.wasm else {
        if files.manifest.is_some() {
            tracing::warn!(manifest = %manifest_path.display(), "manifest has no {name}.wasm beside it; ignored");
        }
        return Step::Removed;
    };
    let tried = Fingerprint {
        component: files.component_digest,
        manifest: files.manifest.as_ref().map(|m| m.1),
    };
    if !force && entry.tried == Some(tried) {
        return Step::Unchanged;
    }
    let failed =
        |file: &Path, reason: String| Step::Failed(LoadError::new(file, reason), Some(tried));

    if let Err(reason) = check_name(name) {
        return failed(wasm_path, reason);
    }

    let previous = entry.newest();
    let mut manifest = match (&files.manifest, previous) {
        (Some((_, digest)), Some(previous))
            if !force && previous.manifest_digest == Some(*digest) =>
        {
            previous.manifest.clone()
        }
        (None, Some(previous)) if previous.manifest_digest.is_none() => previous.manifest.clone(),
        (None, _) => Manifest::default_for(name),
        (Some((bytes, _)), _) => {
            let Ok(text) = String::from_utf8(bytes.clone()) else {
                return failed(manifest_path, "is not UTF-8 text".into());
            };
            let (rules, owned) = (rules.clone(), name.to_owned());
            // `file:` secrets are read (bounded, but still I/O): off the
            // async threads.
            let parsed = tokio::task::spawn_blocking(move || {
                Manifest::parse(&owned, &text, &SecretResolver::for_manifest(&rules))
            })
            .await;
            match parsed {
                Ok(Ok(manifest)) => manifest,
                Ok(Err(reason)) => return failed(manifest_path, reason),
                Err(panic) => {
                    return failed(manifest_path, format!("validation panicked: {panic}"));
                }
            }
        }
    };
    // The rate-limit buckets of the running version carry over when its
    // limits did not change: a reload is not a way to reset them.
    if let Some(running) = entry.live.as_ref().or(previous)
        && !Arc::ptr_eq(&running.manifest.ingress, &manifest.ingress)
        && running.manifest.ingress.same_limits(&manifest.ingress)
    {
        manifest.ingress = running.manifest.ingress.clone();
    }

    // Losing verification is never a side effect of a reload (a manifest
    // deleted, or renamed away mid-deploy, then SIGHUP): the verified
    // version stays until the manifest itself says `unverified = true`.
    if !manifest.unverified
        && manifest.verify.is_none()
        && let Some(live) = entry.live.as_ref()
        && let Some(scheme) = live.manifest.verify.as_ref()
    {
        let file = if files.manifest.is_some() {
            manifest_path
        } else {
            wasm_path
        };
        return failed(
            file,
            format!(
                "would serve {} unverified (its {name}.toml is gone or has no [verify] table, the running version verifies `{}`); restore the manifest's [verify] table, or write `unverified = true` in {name}.toml to serve the route unverified on purpose",
                live.manifest.route,
                scheme.name()
            ),
        );
    }

    let prepared = match previous {
        Some(previous) if previous.digest == tried.component => previous.prepared.clone(),
        _ => {
            let runtime = runtime.clone();
            let path = wasm_path.clone();
            // Compilation is CPU-heavy (Cranelift, parallel): keep it off the
            // async worker threads that serve requests.
            let compiled = tokio::task::spawn_blocking(move || runtime.prepare(&path, &wasm)).await;
            match compiled {
                Ok(Ok(prepared)) => prepared,
                Ok(Err(err)) => return failed(wasm_path, format!("{err:#}")),
                Err(panic) => return failed(wasm_path, format!("compilation panicked: {panic}")),
            }
        }
    };

    // What every delivery does first, done once now: a version that cannot
    // start within its manifest's limits would fail every call.
    if !previous.is_some_and(|p| p.digest == tried.component && same_limits(&p.manifest, &manifest))
    {
        let limits = CallLimits {
            timeout: manifest.timeout,
            memory: manifest.memory,
        };
        if let Err(err) = runtime
            .check_start(&prepared, &manifest.grants(name), limits)
            .await
        {
            let file = match (&err, &files.manifest) {
                (CallError::MemoryExceeded(_) | CallError::Timeout(_), Some(_)) => manifest_path,
                _ => wasm_path,
            };
            let fix = match err {
                CallError::MemoryExceeded(_) => " (raise `limits.memory` in its manifest)",
                CallError::Timeout(_) => " (raise `limits.timeout` in its manifest)",
                _ => "",
            };
            return failed(file, format!("cannot start: {err}{fix}"));
        }
    }

    Step::Built(
        Arc::new(Plugin {
            grants: manifest.grants(name),
            name: name.to_owned(),
            origin,
            manifest,
            path: wasm_path.clone(),
            loaded_at: SystemTime::now(),
            prepared,
            digest: tried.component,
            manifest_digest: tried.manifest,
            stats: previous.map(|p| p.stats.clone()).unwrap_or_default(),
        }),
        tried,
    )
}

fn same_limits(a: &Manifest, b: &Manifest) -> bool {
    a.timeout == b.timeout && a.memory == b.memory
}

/// A plugin's files as read from disk.
struct Files {
    wasm: Option<Vec<u8>>,
    component_digest: Digest,
    manifest: Option<(Vec<u8>, Digest)>,
}

fn read_files(wasm: &Path, manifest: &Path) -> Result<Files, LoadError> {
    let read = |path: &Path, limit| match crate::files::read(path, limit) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(crate::files::ReadError::NotFound) => Ok(None),
        Err(err) => Err(LoadError::new(path, err.to_string())),
    };
    let wasm = read(wasm, crate::files::MAX_COMPONENT)?;
    let manifest = read(manifest, crate::files::MAX_MANIFEST)?;
    Ok(Files {
        component_digest: wasm.as_deref().map(sha256).unwrap_or_default(),
        wasm,
        manifest: manifest.map(|bytes| {
            let digest = sha256(&bytes);
            (bytes, digest)
        }),
    })
}

fn sha256(bytes: &[u8]) -> Digest {
    Sha256::digest(bytes).into()
}

/// A change of who serves what, decided by [`place`].
enum Placement {
    /// `plugin` went live, replacing `replaced` (if any).
    Live {
        plugin: Arc<Plugin>,
        replaced: Option<Arc<Plugin>>,
    },
    /// A waiting version found its route taken (newly, or by someone
    /// else), or its name served from the other folder.
    Blocked { key: Key, error: LoadError },
}

/// Moves waiting versions live where their route is free or their own, in
/// name order (the plugin folder's before the deployed one's), repeating
/// while a move frees a route or name someone else waits for. Records a
/// clash as the waiting plugin's error; the running version (if any) keeps
/// serving on its route. A name serves from one folder at a time: a version
/// whose name is live from the other folder waits like one whose route is
/// taken.
fn place(entries: &mut BTreeMap<Key, Entry>) -> Vec<Placement> {
    let mut owners: HashMap<String, Key> = entries
        .iter()
        .filter_map(|(key, entry)| Some((entry.live.as_ref()?.manifest.route.clone(), key.clone())))
        .collect();
    let mut names: HashMap<String, Origin> = entries
        .iter()
        .filter(|(_, entry)| entry.live.is_some())
        .map(|((name, origin), _)| (name.clone(), *origin))
        .collect();
    let mut placements = Vec::new();
    let mut blocked: HashMap<Key, LoadError> = HashMap::new();
    loop {
        let mut moved = false;
        for (key, entry) in entries.iter_mut() {
            let Some(next) = entry.waiting.clone() else {
                continue;
            };
            let (name, origin) = key;
            if names.get(name).is_some_and(|live| live != origin) {
                let file = match origin {
                    Origin::Folder => next.path.clone(),
                    Origin::Deployed => next.route_file(),
                };
                let error = LoadError::new(
                    file,
                    format!("plugin {name} is both in the plugin folder and deployed; remove one"),
                );
                blocked.insert(key.clone(), error);
                continue;
            }
            let route = &next.manifest.route;
            if let Some(owner) = owners.get(route).filter(|owner| *owner != key) {
                let error = LoadError::new(
                    next.route_file(),
                    format!(
                        "route {route} is already served by plugin `{}`; this version goes live \
                         when the route is free (or give one of them another `route` in its manifest)",
                        owner.0
                    ),
                );
                blocked.insert(key.clone(), error);
                continue;
            }
            if let Some(live) = &entry.live {
                owners.remove(&live.manifest.route);
            }
            owners.insert(route.clone(), key.clone());
            names.insert(name.clone(), *origin);
            entry.waiting = None;
            entry.error = None;
            blocked.remove(key);
            let replaced = entry.live.replace(next.clone());
            placements.push(Placement::Live {
                plugin: next,
                replaced,
            });
            moved = true;
        }
        if !moved {
            break;
        }
    }
    let mut blocked: Vec<_> = blocked.into_iter().collect();
    blocked.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, error) in blocked {
        let entry = entries.get_mut(&key).expect("blocked names are entries");
        if error.same_as(entry.error.as_ref()) {
            continue;
        }
        entry.error = Some(error.clone());
        placements.push(Placement::Blocked { key, error });
    }
    placements
}

fn log_live(plugin: &Plugin, replaced: Option<&Plugin>) {
    let scheme = plugin.manifest.verify.as_ref().map(|s| s.name());
    let version = hex::encode(&plugin.digest[..6]);
    match replaced {
        None => tracing::info!(
            plugin = %plugin.name,
            route = %plugin.manifest.route,
            verify = %scheme.unwrap_or("none"),
            timeout = ?plugin.manifest.timeout,
            memory = plugin.manifest.memory,
            version = %version,
            "plugin loaded"
        ),
        Some(old) => tracing::info!(
            plugin = %plugin.name,
            route = %plugin.manifest.route,
            previous_route = %old.manifest.route,
            verify = %scheme.unwrap_or("none"),
            timeout = ?plugin.manifest.timeout,
            memory = plugin.manifest.memory,
            version = %version,
            previous_version = %hex::encode(&old.digest[..6]),
            "plugin reloaded"
        ),
    }
    if scheme.is_none() {
        tracing::warn!(
            plugin = %plugin.name,
            "plugin is unverified: anyone who can reach {} can call it (add a [verify] table to its manifest)",
            plugin.manifest.route
        );
    }
}

fn log_failure(name: &str, error: &LoadError, live: Option<&Arc<Plugin>>) {
    match live {
        None => tracing::error!(
            plugin = %name,
            file = %error.file.display(),
            error = %error.reason,
            "plugin not loaded"
        ),
        Some(live) => tracing::error!(
            plugin = %name,
            file = %error.file.display(),
            error = %error.reason,
            serving = %hex::encode(&live.digest[..6]),
            "new plugin version not loaded; the running version keeps serving"
        ),
    }
}

/// Names of the plugins in `dir`: every `NAME.wasm`, plus every `NAME.toml`
/// (so that a manifest without its component is reported).
fn scan(dir: &Path) -> anyhow::Result<BTreeSet<String>> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read plugin folder {}", dir.display()))?;
    let mut names = BTreeSet::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot read plugin folder {}", dir.display()))?
            .path();
        if let Some((name, _)) = plugin_file(&path) {
            names.insert(name);
        }
    }
    Ok(names)
}

/// Checks a plugin name (the `NAME` of `NAME.wasm`): plugin names end up in
/// routes, logs and metrics labels, so they stay plain.
pub fn check_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(format!(
            "plugin name `{name}` is not allowed: use up to 64 letters, digits, `-` or `_`"
        ));
    }
    Ok(())
}
