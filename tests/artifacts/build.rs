//! Builds every example plugin (`plugins/*`) and test guest (`tests/guests/*`)
//! for `wasm32-wasip2` and writes `OUT_DIR/artifacts.rs`: one path constant
//! per component, plus the `PLUGINS` and `GUESTS` lists.
//!
//! Strategy: one nested `cargo build --release --target wasm32-wasip2 -p … -p …`
//! for all of them, so shared dependencies (wit-bindgen, serde) compile once.
//! It gets its own target directory under `OUT_DIR`: the outer cargo holds the
//! lock on its target directory for as long as this script runs, so building
//! there would deadlock. Crates are discovered by listing the two folders, so a
//! new guest needs no edit here.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const TARGET: &str = "wasm32-wasip2";

/// One crate to build: where it lives and what the generated code calls it.
struct Crate {
    /// Folder name: `echo`, `memory-hog`. Also a good plugin name when a test
    /// installs the component (`memory-hog.wasm` is served at `/hooks/memory-hog`).
    name: String,
    /// Cargo package name: `echo`, `guest-memory-hog`.
    package: String,
    /// Workspace-relative folder, for messages and docs.
    dir: String,
}

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.join("../..").canonicalize().unwrap();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap());

    // Cargo gives this crate the same build folder (and OUT_DIR) in every
    // checkout of the repository that shares a target directory (worktrees
    // with one CARGO_TARGET_DIR), and judges freshness by the paths the last
    // run printed, which may be another checkout's. A different working
    // directory therefore means: run again, for this checkout.
    println!("cargo::rerun-if-env-changed=PWD");
    for path in [
        "wit",
        "sdk",
        "plugins",
        "tests/guests",
        "Cargo.lock",
        "Cargo.toml",
    ] {
        println!("cargo::rerun-if-changed={}", root.join(path).display());
    }

    if let Err(message) = check_target_installed() {
        // `cargo::error` (not a panic) so the operator sees one clear line.
        println!("cargo::error={message}");
        return;
    }

    let plugins = discover(&root, "plugins", |folder| folder.to_owned());
    let guests = discover(&root, "tests/guests", |folder| format!("guest-{folder}"));

    // One nested target folder per checkout: the component paths below are
    // compiled into the tests, so another checkout's build must not replace
    // the files while this checkout's tests load them.
    let target_dir = out_dir.join(format!("target-{}", checkout_key(&root)));
    build(&root, &target_dir, plugins.iter().chain(&guests));

    let wasm_dir = target_dir.join(TARGET).join("release");
    let mut code = String::new();
    let mut list = |crates: &[Crate], list_name: &str, what: &str| {
        let mut entries = String::new();
        for krate in crates {
            let wasm = wasm_dir.join(format!("{}.wasm", krate.package.replace('-', "_")));
            assert!(
                wasm.is_file(),
                "`{}` built but produced no {}: is it a `cdylib`?",
                krate.package,
                wasm.display()
            );
            let constant = krate.package.to_uppercase().replace('-', "_");
            let path = wasm.canonicalize().unwrap();
            writeln!(
                code,
                "/// The `{}` component ({}).",
                krate.package, krate.dir
            )
            .unwrap();
            writeln!(
                code,
                "pub const {constant}: &str = {:?};",
                path.display().to_string()
            )
            .unwrap();
            writeln!(entries, "    ({:?}, {constant}),", krate.name).unwrap();
        }
        writeln!(code, "/// Every {what}: (folder name, component path).").unwrap();
        writeln!(
            code,
            "pub const {list_name}: &[(&str, &str)] = &[\n{entries}];"
        )
        .unwrap();
    };
    list(&plugins, "PLUGINS", "example plugin under `plugins/`");
    list(&guests, "GUESTS", "test guest under `tests/guests/`");

    fs::write(out_dir.join("artifacts.rs"), code).unwrap();
}

/// A short name for the checkout at `root`, stable across runs.
fn checkout_key(root: &Path) -> String {
    // FNV-1a: std's DefaultHasher is not guaranteed stable across releases.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in root.as_os_str().as_encoded_bytes() {
        hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The folders under `root/parent` that hold a crate, sorted, each checked to
/// be named as `expected_package` says (the constant names depend on it).
fn discover(root: &Path, parent: &str, expected_package: impl Fn(&str) -> String) -> Vec<Crate> {
    let mut crates = Vec::new();
    for entry in fs::read_dir(root.join(parent)).unwrap() {
        let path = entry.unwrap().path();
        let manifest = path.join("Cargo.toml");
        if !manifest.is_file() {
            continue;
        }
        let folder = path.file_name().unwrap().to_str().unwrap().to_owned();
        let dir = format!("{parent}/{folder}");
        let package = package_name(&manifest)
            .unwrap_or_else(|| panic!("{dir}/Cargo.toml has no `name` under [package]"));
        let expected = expected_package(&folder);
        assert_eq!(
            package, expected,
            "{dir} must be the package `{expected}` (the artifact constants are derived from it)"
        );
        crates.push(Crate {
            name: folder,
            package,
            dir,
        });
    }
    crates.sort_by(|a, b| a.name.cmp(&b.name));
    crates
}

/// `name` from the `[package]` table. A line scan is enough for the manifests
/// in this repository and keeps this script free of build dependencies.
fn package_name(manifest: &Path) -> Option<String> {
    let text = fs::read_to_string(manifest).unwrap();
    let mut in_package = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package && let Some(value) = line.strip_prefix("name") {
            let value = value.trim_start().strip_prefix('=')?.trim();
            return Some(value.trim_matches('"').to_owned());
        }
    }
    None
}

fn check_target_installed() -> Result<(), String> {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .map_err(|err| format!("cannot run {}: {err}", Path::new(&rustc).display()))?;
    let libdir = String::from_utf8_lossy(&output.stdout);
    if output.status.success() && Path::new(libdir.trim()).is_dir() {
        Ok(())
    } else {
        Err(format!(
            "the {TARGET} Rust target is not installed, and the plugins and test guests \
             need it: run `rustup target add {TARGET}` (or `make test`)"
        ))
    }
}

fn build<'a>(root: &Path, target_dir: &Path, crates: impl Iterator<Item = &'a Crate>) {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args(["build", "--release", "--locked", "--target", TARGET])
        // Pinned whatever the workspace profile says: debug info in a guest is
        // mostly the standard library's line tables and makes each component
        // ~2.8 MB instead of ~65 KB. The name section stays, so traps still
        // show function names.
        .args(["--config", "profile.release.debug=false"])
        .args(["--config", "profile.release.strip=\"debuginfo\""]);
    for krate in crates {
        cmd.args(["-p", &krate.package]);
    }

    // The outer cargo's settings that must not reach the nested build:
    // - its own target directory (locked by it) and target triple;
    cmd.env("CARGO_TARGET_DIR", target_dir)
        .env_remove("CARGO_BUILD_TARGET")
        // - flags meant for native code (`-C target-cpu=native`, coverage
        //   instrumentation from `cargo llvm-cov`) that break or bloat wasm;
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        // - `cargo clippy`/`cargo fix` run rustc through a wrapper: the guests
        //   would be linted or "fixed" instead of just built.
        .env_remove("RUSTC_WORKSPACE_WRAPPER");
    // - profile overrides aimed at the outer build (`CARGO_PROFILE_RELEASE_LTO`
    //   for a release host): the guests always build with the workspace profile.
    for (key, _) in env::vars_os() {
        if key
            .to_str()
            .is_some_and(|key| key.starts_with("CARGO_PROFILE_"))
        {
            cmd.env_remove(key);
        }
    }
    // CARGO_MAKEFLAGS stays: the nested cargo joins the outer jobserver, so on
    // a small machine both together still run only `-j` jobs. RUSTC stays: the
    // guests are built by the same compiler as everything else.

    // cargo reads this script's stdout for `cargo::` directives; the nested
    // build's output goes to stderr, which cargo shows when the build fails.
    cmd.stdout(Stdio::from(io::stderr()));
    eprintln!("running: {cmd:?}");
    let status = cmd.status().expect("failed to run the nested cargo");
    if !status.success() {
        println!(
            "cargo::error=building the plugins and test guests for {TARGET} failed ({status}): \
             the compiler errors are under `--- stderr`"
        );
        std::process::exit(1);
    }
}
