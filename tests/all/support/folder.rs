//! The plugin folder a test host serves: what goes in it, and how a test
//! changes it while the host runs.

use std::path::{Path, PathBuf};

use tempfile::TempDir;

/// A plugin to put in the test host's folder.
pub struct Plugin<'a> {
    pub name: &'a str,
    pub wasm: &'a str,
    pub manifest: Option<&'a str>,
    /// Files to write beside it, by file name: what its manifest's `file:`
    /// references read (secrets, config values).
    pub files: Vec<(&'a str, Vec<u8>)>,
}

/// `name` served from `wasm` without a manifest.
pub fn plugin<'a>(name: &'a str, wasm: &'a str) -> Plugin<'a> {
    Plugin {
        name,
        wasm,
        manifest: None,
        files: Vec::new(),
    }
}

/// `name` served from `wasm` with `manifest` as its `NAME.toml`.
pub fn plugin_with<'a>(name: &'a str, wasm: &'a str, manifest: &'a str) -> Plugin<'a> {
    Plugin {
        manifest: Some(manifest),
        ..plugin(name, wasm)
    }
}

impl<'a> Plugin<'a> {
    /// The plugin with `contents` written beside it as `file` (e.g. the
    /// `github.secret` its manifest names as `file:github.secret`).
    pub fn with_file(mut self, file: &'a str, contents: impl Into<Vec<u8>>) -> Self {
        self.files.push((file, contents.into()));
        self
    }
}

/// Writes `plugins` into `dir` as the host expects them: each one's files
/// first, so its manifest's references resolve as soon as it is seen.
pub fn install(dir: &Path, plugins: &[Plugin<'_>]) {
    for plugin in plugins {
        for (file, contents) in &plugin.files {
            std::fs::write(dir.join(file), contents).unwrap();
        }
        std::fs::copy(plugin.wasm, dir.join(format!("{}.wasm", plugin.name)))
            .unwrap_or_else(|err| panic!("copy {}: {err}", plugin.wasm));
        if let Some(manifest) = plugin.manifest {
            std::fs::write(dir.join(format!("{}.toml", plugin.name)), manifest).unwrap();
        }
    }
}

/// A temporary folder with an empty `plugins/` and a `data/` path, for
/// tests that spawn the binary: (the folder, plugins, data).
pub fn folders() -> (TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    let data = dir.path().join("data");
    (dir, plugins, data)
}

/// The component at `wasm` with a custom section carrying `nonce` appended:
/// the same plugin in different bytes, so it has its own compile-cache entry
/// and a reload of it really compiles.
pub fn with_nonce(wasm: &str, nonce: u64) -> Vec<u8> {
    fn leb128(mut value: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let mut bytes = std::fs::read(wasm).unwrap_or_else(|err| panic!("read {wasm}: {err}"));
    let name = b"hookhost-test-nonce";
    let mut payload = Vec::new();
    leb128(name.len(), &mut payload);
    payload.extend_from_slice(name);
    payload.extend_from_slice(&nonce.to_le_bytes());
    bytes.push(0); // custom section
    leb128(payload.len(), &mut bytes);
    bytes.extend_from_slice(&payload);
    bytes
}

/// Deploys `bytes` as `dir/NAME.wasm` the way docs/operating.md tells operators to:
/// written beside it under a temporary dotfile name, then renamed into place.
/// Returns when the rename is done.
pub fn deploy(dir: &Path, name: &str, bytes: &[u8]) {
    let staged = dir.join(format!(".{name}.wasm.tmp"));
    std::fs::write(&staged, bytes).unwrap();
    std::fs::rename(&staged, dir.join(format!("{name}.wasm"))).unwrap();
}
