//! `hookhost check PLUGIN.wasm [--manifest NAME.toml]`: validates a plugin
//! offline, the way the host would load it, without serving anything.
//!
//! Owns the order of the checks and the report; every check itself is the
//! host's own (manifest parsing, [`Runtime::prepare`], [`Runtime::check_start`]),
//! so a plugin that passes here loads in a host built from the same version.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};

use crate::config::{Manifest, Mode};
use crate::registry::{FileKind, plugin_file};
use crate::runtime::{CallLimits, Runtime, RuntimeConfig};

/// What an import is allowed to do under `manifest`, for imports whose
/// answer depends on it.
fn grant_note(import: &str, manifest: &Manifest) -> String {
    let interface = import.split('@').next().unwrap_or(import);
    match interface {
        "wasi:http/outgoing-handler" => {
            let grants = manifest.grants("check");
            let hosts: Vec<String> = grants
                .outbound
                .allow
                .iter()
                .map(ToString::to_string)
                .collect();
            let hosts = hosts.join(", ");
            if hosts.is_empty() {
                "  (outbound HTTP: nothing granted; add hosts to `[allow] http`)".to_owned()
            } else {
                format!("  (outbound HTTP to: {hosts})")
            }
        }
        "wasi:filesystem/preopens" => "  (linked, no folder granted)".to_owned(),
        "wasi:sockets/tcp" | "wasi:sockets/udp" | "wasi:sockets/ip-name-lookup" => {
            "  (linked, every socket refused)".to_owned()
        }
        "wasi:cli/environment" => "  (linked, empty environment)".to_owned(),
        _ => String::new(),
    }
}

/// What `hookhost check` found out about a plugin that passes.
#[derive(Debug)]
pub struct Report {
    /// The plugin's name (the file's stem).
    pub name: String,
    /// The manifest used, if any.
    pub manifest: Option<PathBuf>,
    /// Human-readable lines, one fact each.
    pub text: String,
}

/// Checks the component at `wasm` against the host's world and its manifest
/// (`manifest`, else `NAME.toml` beside it when there is one). The error says
/// what failed and how to fix it.
pub async fn check(wasm: &Path, manifest: Option<&Path>) -> anyhow::Result<Report> {
    let Some((name, FileKind::Component)) = plugin_file(wasm) else {
        anyhow::bail!(
            "{}: a plugin is a file named NAME.wasm (NAME becomes its default route /hooks/NAME)",
            wasm.display()
        );
    };
    let mut text = String::new();

    let beside = wasm.with_extension("toml");
    let manifest_path = match manifest {
        Some(path) => Some(path.to_owned()),
        None => beside.exists().then_some(beside),
    };
    let manifest = match &manifest_path {
        Some(path) => Manifest::load(&name, path)?,
        None => {
            let _ = writeln!(
                text,
                "warning: no manifest ({name}.toml): served at /hooks/{name}, sync, UNVERIFIED, default limits"
            );
            Manifest::default_for(&name)
        }
    };

    let bytes = std::fs::read(wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
    // No store: a `kv` call would fail, but checking only instantiates.
    let runtime = Runtime::new(&RuntimeConfig {
        max_concurrency: 1,
        spare_instances: 0,
        cache_dir: None,
        outbound: crate::telemetry::OutboundCounter::default(),
        kv: None,
    })?;
    let started = Instant::now();
    let prepared = {
        let path = wasm.to_owned();
        // Compiling is CPU-heavy and blocking.
        let runtime = &runtime;
        tokio::task::block_in_place(|| runtime.prepare(&path, &bytes))?
    };
    let compiled_in = started.elapsed();
    let limits = CallLimits {
        timeout: manifest.timeout,
        memory: manifest.memory,
    };
    let started = Instant::now();
    runtime
        .check_start(&prepared, &manifest.grants(&name), limits)
        .await
        .with_context(|| {
            format!(
                "{} cannot start within its limits (timeout {}, memory {} bytes)",
                wasm.display(),
                humantime::format_duration(limits.timeout),
                limits.memory
            )
        })?;
    let started_in = started.elapsed();

    let _ = writeln!(
        text,
        "component: {} ({} bytes, sha256 {}), implements hookhost:plugin handler",
        wasm.display(),
        bytes.len(),
        hex::encode(Sha256::digest(&bytes))
    );
    let _ = writeln!(
        text,
        "compiled in {:.0?}, instantiated in {:.1?} within its limits",
        compiled_in, started_in
    );
    if let Some(path) = &manifest_path {
        let _ = writeln!(text, "manifest: {}", path.display());
    }
    let _ = writeln!(
        text,
        "route: {} ({}), {}",
        manifest.route,
        match manifest.mode {
            Mode::Sync => "sync",
            Mode::Queue => "queue",
        },
        match &manifest.verify {
            Some(scheme) => format!("verified by {}", scheme.name()),
            None => "unverified".to_owned(),
        }
    );
    let _ = writeln!(
        text,
        "limits: timeout {}, memory {} bytes",
        humantime::format_duration(manifest.timeout),
        manifest.memory
    );
    if manifest.max_deliveries > 1 {
        let _ = writeln!(
            text,
            "instance: reused for up to {} deliveries (state carries over between them)",
            manifest.max_deliveries
        );
    }
    let _ = writeln!(text, "imports:");
    for import in prepared.imports() {
        let _ = writeln!(text, "  {}{}", import, grant_note(&import, &manifest));
    }
    Ok(Report {
        name,
        manifest: manifest_path,
        text,
    })
}
