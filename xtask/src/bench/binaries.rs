//! Building what is measured: `hookhost` and `hookhost-baseline` in the
//! chosen profile, the example plugins (`echo`, `github`) for
//! `wasm32-wasip2`, and the Rust target they need. Not the Python and JS
//! guests of (e): [`super::languages`] builds those.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use super::process::command_output;

/// Where the built binaries and components are.
pub struct Binaries {
    pub hookhost: PathBuf,
    pub baseline: PathBuf,
    pub echo: PathBuf,
    pub github: PathBuf,
}

/// Builds the host, the baseline and the example plugins (or finds the plugins
/// of the test build, in the dev profile).
pub fn build(release: bool) -> anyhow::Result<Binaries> {
    if release {
        cargo(
            &[
                "build",
                "--release",
                "-p",
                "hookhost",
                "-p",
                "hookhost-baseline",
            ],
            "the host and the baseline",
        )?;
    } else {
        // Exactly what `make test` builds (the default members with their
        // tests, which also produces both binaries), so after it (CI) this
        // is a no-op: a `cargo build -p …` would unify features differently
        // and recompile shared crates.
        cargo(&["test", "--no-run"], "the test build (host and baseline)")?;
    }
    let target = crate::target_dir();
    let bin = target.join(if release { "release" } else { "debug" });
    // Plugins are always built optimised: they are what is measured. A dev
    // run (CI's smoke, after `cargo test`) takes the ones the test build
    // already compiled, so it builds no wasm crate (nor their proc-macros in
    // a second profile).
    let wasm = match (!release).then(|| test_artifacts(&target)).flatten() {
        Some(dir) => {
            eprintln!(
                "using the example plugins of the test build in {}",
                dir.display()
            );
            dir
        }
        None => {
            cargo(
                &[
                    "build",
                    "--release",
                    "--target",
                    "wasm32-wasip2",
                    "-p",
                    "echo",
                    "-p",
                    "github",
                ],
                "the example plugins",
            )?;
            target.join("wasm32-wasip2/release")
        }
    };
    Ok(Binaries {
        hookhost: bin.join("hookhost"),
        baseline: bin.join("hookhost-baseline"),
        echo: wasm.join("echo.wasm"),
        github: wasm.join("github.wasm"),
    })
}

/// Where `tests/artifacts/build.rs` put the components of the newest dev
/// test build, if it holds both example plugins.
fn test_artifacts(target: &Path) -> Option<PathBuf> {
    let build = std::fs::read_dir(target.join("debug/build")).ok()?;
    build
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("hookhost-test-artifacts-")
        })
        // tests/artifacts builds into `out/target-CHECKOUT/`, one per checkout
        // sharing the target directory.
        .flat_map(|e| {
            std::fs::read_dir(e.path().join("out"))
                .into_iter()
                .flatten()
        })
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("target"))
        .map(|e| e.path().join("wasm32-wasip2/release"))
        .filter(|dir| dir.join("echo.wasm").is_file() && dir.join("github.wasm").is_file())
        .max_by_key(|dir| {
            std::fs::metadata(dir.join("echo.wasm"))
                .and_then(|m| m.modified())
                .ok()
        })
}

/// Runs `cargo ARGS` in the workspace root, saying it builds `what`.
fn cargo(args: &[&str], what: &str) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("building {what}: cargo {}", args.join(" "));
    let mut command = Command::new(cargo);
    command.args(args).current_dir(crate::root());
    // `cargo xtask` is `cargo run`, which sets the package variables of xtask
    // for this process. Build scripts that track them (ring's does) would see
    // them changed and rebuild, so the nested cargo gets the environment the
    // user's own `cargo build`/`make test` had.
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|key| {
            key.starts_with("CARGO_PKG_")
                || key.starts_with("CARGO_MANIFEST_")
                || matches!(
                    key,
                    "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE"
                )
        }) {
            command.env_remove(key);
        }
    }
    let status = command.status().context("cannot run cargo")?;
    if !status.success() {
        bail!("building {what} failed");
    }
    Ok(())
}

/// Installs the `wasm32-wasip2` Rust target with rustup if it is missing.
pub fn ensure_wasm_target() -> anyhow::Result<()> {
    let installed = command_output("rustup", &["target", "list", "--installed"]);
    if installed.lines().any(|l| l.trim() == "wasm32-wasip2") {
        return Ok(());
    }
    eprintln!("installing the wasm32-wasip2 Rust target");
    let status = Command::new("rustup")
        .args(["target", "add", "wasm32-wasip2"])
        .status()
        .context("cannot run rustup (install the target with `rustup target add wasm32-wasip2`)")?;
    if !status.success() {
        bail!("`rustup target add wasm32-wasip2` failed");
    }
    Ok(())
}
