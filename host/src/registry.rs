//! The live set of plugins: which route runs which compiled component.
//!
//! Owns reading the plugin folder (`NAME.wasm` plus optional `NAME.toml`),
//! compiling and validating each plugin, and publishing the result as an
//! immutable routing table. Readers (every request) take a lock-free snapshot
//! with [`Registry::lookup`]; writers build a whole new table and swap it in,
//! so a delivery keeps the plugin version it started with.
//!
//! A plugin that fails to load (bad manifest, not a component, missing export,
//! route already taken) is skipped and its error kept in
//! [`Registry::errors`]; it never takes another plugin down with it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::Context as _;
use arc_swap::ArcSwap;

use crate::config::Manifest;
use crate::runtime::{CallLimits, Prepared, Runtime};

/// One loaded plugin.
pub struct Plugin {
    /// The plugin's name: its file name without `.wasm`.
    pub name: String,
    /// The validated manifest (defaults when there is no `NAME.toml`).
    pub manifest: Manifest,
    /// The component file it was loaded from.
    pub path: PathBuf,
    /// When this version was loaded.
    pub loaded_at: SystemTime,
    /// The compiled, pre-linked component.
    pub prepared: Prepared,
}

impl Plugin {
    /// Limits for one call of this plugin.
    pub fn limits(&self) -> CallLimits {
        CallLimits {
            timeout: self.manifest.timeout,
            memory: self.manifest.memory,
        }
    }
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("manifest", &self.manifest)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Route → plugin, swapped whole.
type Routes = HashMap<String, Arc<Plugin>>;

/// The registry of loaded plugins.
#[derive(Default)]
pub struct Registry {
    routes: ArcSwap<Routes>,
    /// Last load error per plugin name, for operators (logs now, admin API later).
    errors: Mutex<BTreeMap<String, String>>,
}

/// What one scan of the plugin folder did.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Names of plugins now serving.
    pub loaded: Vec<String>,
    /// Plugin name → why it was not loaded.
    pub failed: BTreeMap<String, String>,
}

impl Registry {
    /// An empty registry: every route is 404 until a load.
    pub fn new() -> Self {
        Self::default()
    }

    /// The plugin serving `path`, if any. Lock-free.
    pub fn lookup(&self, path: &str) -> Option<Arc<Plugin>> {
        self.routes.load().get(path).cloned()
    }

    /// Every plugin currently serving, by name.
    pub fn plugins(&self) -> Vec<Arc<Plugin>> {
        let mut plugins: Vec<_> = self.routes.load().values().cloned().collect();
        plugins.sort_by(|a, b| a.name.cmp(&b.name));
        plugins
    }

    /// The last load error of each plugin that failed to load.
    pub fn errors(&self) -> BTreeMap<String, String> {
        self.errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Loads every plugin in `dir` and makes exactly that set live. Plugins
    /// that fail are reported and skipped; an unreadable folder is an error.
    pub async fn load_dir(&self, runtime: &Arc<Runtime>, dir: &Path) -> anyhow::Result<LoadReport> {
        let candidates = scan(dir)?;
        let mut report = LoadReport::default();
        let mut routes = Routes::new();
        for candidate in candidates {
            let name = candidate.name.clone();
            match load_one(runtime, candidate).await {
                Ok(plugin) => {
                    if let Some(owner) = routes.get(&plugin.manifest.route) {
                        let message = format!(
                            "route {} is already served by plugin `{}`; give one of them another `route` in its manifest",
                            plugin.manifest.route, owner.name
                        );
                        report.failed.insert(name, message);
                        continue;
                    }
                    routes.insert(plugin.manifest.route.clone(), Arc::new(plugin));
                    report.loaded.push(name);
                }
                Err(err) => {
                    report.failed.insert(name, format!("{err:#}"));
                }
            }
        }
        for plugin in routes.values() {
            let scheme = plugin.manifest.verify.as_ref().map(|s| s.name());
            tracing::info!(
                plugin = %plugin.name,
                route = %plugin.manifest.route,
                verify = scheme.unwrap_or("none"),
                timeout = ?plugin.manifest.timeout,
                memory = plugin.manifest.memory,
                "plugin loaded"
            );
            if scheme.is_none() {
                tracing::warn!(
                    plugin = %plugin.name,
                    "plugin is unverified: anyone who can reach {} can call it (add a [verify] table to its manifest)",
                    plugin.manifest.route
                );
            }
        }
        for (name, error) in &report.failed {
            tracing::error!(plugin = %name, error = %error, "plugin not loaded");
        }
        *self.errors.lock().unwrap_or_else(|e| e.into_inner()) = report.failed.clone();
        self.routes.store(Arc::new(routes));
        Ok(report)
    }
}

/// A plugin file found in the folder, not yet loaded.
struct Candidate {
    name: String,
    wasm: PathBuf,
    manifest: Option<PathBuf>,
}

/// Lists `NAME.wasm` files (sorted, so route clashes resolve the same way on
/// every start) with their manifests, and warns about manifests without a
/// component.
fn scan(dir: &Path) -> anyhow::Result<Vec<Candidate>> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read plugin folder {}", dir.display()))?;
    let mut wasm = BTreeMap::new();
    let mut manifests = BTreeMap::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot read plugin folder {}", dir.display()))?
            .path();
        if !path.is_file() {
            continue;
        }
        let (Some(stem), Some(ext)) = (
            path.file_stem().and_then(|s| s.to_str()),
            path.extension().and_then(|s| s.to_str()),
        ) else {
            continue;
        };
        match ext {
            "wasm" => {
                wasm.insert(stem.to_owned(), path.clone());
            }
            "toml" => {
                manifests.insert(stem.to_owned(), path.clone());
            }
            _ => {}
        }
    }
    for (name, path) in &manifests {
        if !wasm.contains_key(name) {
            tracing::warn!(manifest = %path.display(), "manifest has no {name}.wasm beside it; ignored");
        }
    }
    Ok(wasm
        .into_iter()
        .map(|(name, wasm)| Candidate {
            manifest: manifests.remove(&name),
            name,
            wasm,
        })
        .collect())
}

async fn load_one(runtime: &Arc<Runtime>, candidate: Candidate) -> anyhow::Result<Plugin> {
    let Candidate {
        name,
        wasm,
        manifest,
    } = candidate;
    check_name(&name).with_context(|| format!("{}", wasm.display()))?;
    let manifest = match &manifest {
        Some(path) => Manifest::load(&name, path)?,
        None => Manifest::default_for(&name),
    };
    let runtime = runtime.clone();
    let path = wasm.clone();
    // Compilation is CPU-heavy (Cranelift, parallel): keep it off the async
    // worker threads that serve requests.
    let prepared = tokio::task::spawn_blocking(move || {
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        runtime.prepare(&path, &bytes)
    })
    .await
    .context("plugin compilation panicked")??;
    Ok(Plugin {
        name,
        manifest,
        path: wasm,
        loaded_at: SystemTime::now(),
        prepared,
    })
}

/// Plugin names end up in routes, logs and metrics labels: keep them plain.
fn check_name(name: &str) -> anyhow::Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        anyhow::bail!(
            "plugin name `{name}` is not allowed: use up to 64 letters, digits, `-` or `_`"
        );
    }
    Ok(())
}
