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

/// The published signature vectors (the verify module's test data: each
/// sender's docs or official library tests), compiled in so `check
/// --vectors` needs nothing else.
const VECTORS: &str = include_str!("verify/testdata/vectors.json");

/// What `hookhost check --vectors` found.
#[derive(Debug)]
pub struct VectorReport {
    /// One line per vector: `ok`/`FAILED`, and where it comes from.
    pub text: String,
    /// How many vectors ran, and how many failed.
    pub ran: usize,
    pub failed: usize,
}

/// Runs the published vectors of the manifest's scheme through the host's
/// verification, offline: the manifest's `[verify]` table as written (its
/// `header`, `prefix`, `url`, ...) with each vector's secret in place of
/// the manifest's, at the vector's own time. A vector fails when the
/// scheme refuses it. No vector for the scheme is an error (nothing would
/// be checked).
pub fn vectors(manifest_path: &Path) -> anyhow::Result<VectorReport> {
    let text = std::fs::read_to_string(manifest_path)
        .with_context(|| format!("cannot read {}", manifest_path.display()))?;
    let table: toml::Table = toml::from_str(&text)
        .with_context(|| format!("{} is not valid TOML", manifest_path.display()))?;
    let raw: crate::verify::RawVerify = table
        .get("verify")
        .cloned()
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{}: no [verify] table, so there is no scheme to run vectors for",
                manifest_path.display()
            )
        })?
        .try_into()
        .with_context(|| format!("{}: the [verify] table", manifest_path.display()))?;
    let all: serde_json::Value =
        serde_json::from_str(VECTORS).context("the built-in vectors are not JSON")?;
    let vectors: Vec<&serde_json::Value> = all["vectors"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter(|v| v["scheme"] == raw.scheme.as_str())
                .collect()
        })
        .unwrap_or_default();
    if vectors.is_empty() {
        anyhow::bail!(
            "no published vectors for scheme `{}` (vectors exist for: {})",
            raw.scheme,
            vector_schemes(&all).join(", ")
        );
    }
    let resolver = crate::secret::SecretResolver::new(
        manifest_path.parent().unwrap_or_else(|| Path::new(".")),
    );
    let mut report = VectorReport {
        text: String::new(),
        ran: 0,
        failed: 0,
    };
    for vector in vectors {
        let source = vector["source"].as_str().unwrap_or("unnamed vector");
        report.ran += 1;
        match run_vector(&raw, vector, &resolver) {
            Ok(()) => {
                let _ = writeln!(report.text, "ok      {} vector: {source}", raw.scheme);
            }
            Err(why) => {
                report.failed += 1;
                let _ = writeln!(
                    report.text,
                    "FAILED  {} vector: {source}: {why}",
                    raw.scheme
                );
            }
        }
    }
    Ok(report)
}

fn vector_schemes(all: &serde_json::Value) -> Vec<String> {
    let mut names: Vec<String> = all["vectors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["scheme"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// One vector through the scheme the manifest describes.
fn run_vector(
    raw: &crate::verify::RawVerify,
    vector: &serde_json::Value,
    resolver: &crate::secret::SecretResolver<'_>,
) -> Result<(), String> {
    use crate::verify::{Input, build};
    let mut raw = raw.clone();
    if let Some(secret) = vector["secret"].as_str() {
        raw.secret = Some(crate::secret::SecretRef::new(secret.to_owned()));
        raw.secrets = None;
    }
    // Key-pair schemes (SendGrid) publish a public key, not a secret.
    if let Some(public_key) = vector["public_key"].as_str() {
        raw.public_key = Some(public_key.to_owned());
        raw.public_keys = None;
        raw.secret = None;
        raw.secrets = None;
    }
    let mut headers = http::HeaderMap::new();
    for (name, value) in vector["headers"].as_object().into_iter().flatten() {
        let name = http::HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?;
        let value = http::HeaderValue::from_str(value.as_str().unwrap_or_default())
            .map_err(|e| e.to_string())?;
        headers.append(name, value);
    }
    // A form vector (Twilio) is a form body; its URL is where it was sent.
    let body = match vector["form"].as_object() {
        Some(form) => {
            headers.insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
            form.iter()
                .map(|(k, v)| {
                    format!(
                        "{}={}",
                        form_encode(k),
                        form_encode(v.as_str().unwrap_or_default())
                    )
                })
                .collect::<Vec<_>>()
                .join("&")
                .into_bytes()
        }
        None => vector["body"]
            .as_str()
            .unwrap_or_default()
            .as_bytes()
            .to_vec(),
    };
    let url: http::Uri = vector["url"]
        .as_str()
        .unwrap_or("/")
        .parse()
        .map_err(|_| "the vector's url is not a URL".to_owned())?;
    if let Some(authority) = url.authority() {
        headers.insert(
            http::header::HOST,
            http::HeaderValue::from_str(authority.as_str()).map_err(|e| e.to_string())?,
        );
    }
    let target: http::Uri = url
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .parse()
        .map_err(|_| "the vector's url has no path".to_owned())?;
    let scheme = build(&raw, resolver).map_err(|e| e.to_string())?;
    let now = vector["now"].as_i64().unwrap_or(0);
    scheme
        .verify(&Input::post(&headers, &body, &target, now))
        .map(|_| ())
        .map_err(|refusal| format!("refused: {refusal}"))
}

/// `application/x-www-form-urlencoded` for one name or value.
fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hook.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn the_published_vectors_pass_for_every_scheme_that_has_them() {
        let all: serde_json::Value = serde_json::from_str(VECTORS).unwrap();
        for scheme in vector_schemes(&all) {
            let (_dir, path) = manifest(&format!(
                "[verify]\nscheme = \"{scheme}\"\nsecret = \"x\"\n"
            ));
            let report = vectors(&path).unwrap();
            assert!(report.ran > 0, "{scheme}");
            assert_eq!(report.failed, 0, "{scheme}: {}", report.text);
        }
    }

    #[test]
    fn a_manifest_that_changes_what_is_signed_fails_the_vector() {
        // Twilio's vector was signed for https://mycompany.com/myapp.php: a
        // manifest pinning another public URL cannot verify it.
        let (_dir, path) = manifest(
            "[verify]\nscheme = \"twilio\"\nsecret = \"x\"\nurl = \"https://other.example.com/sms\"\n",
        );
        let report = vectors(&path).unwrap();
        assert_eq!(report.failed, report.ran, "{}", report.text);
        assert!(report.text.contains("FAILED"), "{}", report.text);
    }

    #[test]
    fn a_scheme_without_vectors_is_an_error_naming_those_with_some() {
        let (_dir, path) =
            manifest("[verify]\nscheme = \"hmac\"\nsecret = \"x\"\nheader = \"X-Other\"\n");
        let err = vectors(&path).unwrap_err().to_string();
        assert!(err.contains("`hmac`") && err.contains("github"), "{err}");
    }
}
