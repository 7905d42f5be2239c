//! Builds every example plugin (`plugins/*`) and test guest (`tests/guests/*`)
//! into a component and writes `OUT_DIR/artifacts.rs`: one path constant per
//! component, the `PLUGINS` and `GUESTS` lists, the `foreach_guest!` macro
//! (which makes a guest without tests a compile error in `tests/all`), and
//! where the Python and JavaScript tools are.
//!
//! Strategy: one nested `cargo build --release --target wasm32-wasip2 -p … -p …`
//! for all Rust crates, so shared dependencies (wit-bindgen, serde) compile once.
//! It gets its own target directory under `OUT_DIR`: the outer cargo holds the
//! lock on its target directory for as long as this script runs, so building
//! there would deadlock. Alongside it, each Python plugin (a folder with
//! `app.py`) is built with componentize-py from the project-local `.venv`, and
//! each JavaScript plugin (a folder with `plugin.js`) with componentize-js from
//! the project-local `node_modules`. Missing tools are an error naming the
//! `make` target that installs them: the examples are part of the suite, never
//! skipped. Plugins are discovered by listing the folders, so a new guest or
//! example needs no edit here.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const TARGET: &str = "wasm32-wasip2";
/// componentize-py, installed by `make py-tools` (relative to the repository).
const PY_TOOL: &str = ".venv/bin/componentize-py";
/// componentize-js, installed by `make js-tools` (relative to the repository).
const JS_TOOL: &str = "node_modules/.bin/componentize-js";

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
        "package-lock.json",
        PY_TOOL,
        JS_TOOL,
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
    let others = discover_other_languages(&root, "plugins");
    let tools = match check_tools(&root, &others) {
        Ok(tools) => tools,
        Err(message) => {
            println!("cargo::error={message}");
            return;
        }
    };

    // One nested target folder (and components folder) per checkout: the
    // component paths below are compiled into the tests, so another
    // checkout's build must not replace the files while this checkout's
    // tests load them.
    let checkout = checkout_key(&root);
    let components = out_dir.join(format!("components-{checkout}"));
    fs::create_dir_all(&components).unwrap();
    // The interpreters' builds run while cargo compiles the Rust ones: they
    // are mostly single-threaded (wizer, weval) and wait on each other's I/O.
    let running: Vec<_> = others
        .iter()
        .map(|plugin| (plugin, spawn_other(&root, &tools, plugin, &components)))
        .collect();
    let target_dir = out_dir.join(format!("target-{checkout}"));
    build(&root, &target_dir, plugins.iter().chain(&guests));
    for (plugin, child) in running {
        finish_other(plugin, child);
    }

    let wasm_dir = target_dir.join(TARGET).join("release");
    let rust_output = |krate| rust_output(&wasm_dir, krate);
    let mut example_outputs: Vec<(&Crate, PathBuf)> = plugins.iter().map(rust_output).collect();
    example_outputs.extend(
        others
            .iter()
            .map(|plugin| (&plugin.krate, plugin.output(&components))),
    );
    example_outputs.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    let guest_outputs: Vec<(&Crate, PathBuf)> = guests.iter().map(rust_output).collect();

    let mut code = String::new();
    let mut list = |outputs: &[(&Crate, PathBuf)], list_name: &str, what: &str| {
        let mut entries = String::new();
        for (krate, wasm) in outputs {
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
    list(
        &example_outputs,
        "PLUGINS",
        "example plugin under `plugins/`",
    );
    list(&guest_outputs, "GUESTS", "test guest under `tests/guests/`");
    foreach_guest(&mut code, &guests);
    for (constant, path, what) in [
        (
            "COMPONENTIZE_PY",
            &tools.python,
            "componentize-py (`make py-tools`)",
        ),
        (
            "COMPONENTIZE_JS",
            &tools.js,
            "componentize-js (`make js-tools`)",
        ),
    ] {
        writeln!(code, "/// The project-local {what}.").unwrap();
        writeln!(
            code,
            "pub const {constant}: &str = {:?};",
            path.display().to_string()
        )
        .unwrap();
    }

    fs::write(out_dir.join("artifacts.rs"), code).unwrap();
}

/// Writes `foreach_guest!`, which calls a macro once per guest with the
/// guest's name as an identifier (`memory-hog` as `memory_hog`): the way
/// `tests/all` checks at compile time that every guest has tests (see
/// `tests/guests/README.md`), as wasmtime's test-programs do with
/// `foreach_preview1!` and friends.
fn foreach_guest(code: &mut String, guests: &[Crate]) {
    let mut calls = String::new();
    for guest in guests {
        let ident = guest.name.replace('-', "_");
        let mut chars = ident.chars();
        assert!(
            chars.next().is_some_and(|c| c.is_ascii_lowercase())
                && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{}: a guest's folder name must be lower-case letters, digits and `-`, \
             starting with a letter (`foreach_guest!` passes it as an identifier)",
            guest.dir
        );
        writeln!(calls, "        $mac!({ident});").unwrap();
    }
    writeln!(
        code,
        "/// Calls `$mac!(NAME)` once for each test guest under `tests/guests/`, NAME\n\
         /// being its folder name with `-` written `_` (`memory-hog` is `memory_hog`).\n\
         #[macro_export]\n\
         macro_rules! foreach_guest {{\n    ($mac:ident) => {{\n{calls}    }};\n}}"
    )
    .unwrap();
}

/// The component cargo built for `krate`.
fn rust_output<'a>(wasm_dir: &Path, krate: &'a Crate) -> (&'a Crate, PathBuf) {
    let wasm = wasm_dir.join(format!("{}.wasm", krate.package.replace('-', "_")));
    assert!(
        wasm.is_file(),
        "`{}` built but produced no {}: is it a `cdylib`?",
        krate.package,
        wasm.display()
    );
    (krate, wasm)
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

/// A plugin written in an interpreted language, built by its own tool.
struct Other {
    krate: Crate,
    language: Language,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Language {
    /// A folder with `app.py`: componentize-py, with `sdk/python` on the path.
    Python,
    /// A folder with `plugin.js`: componentize-js (which follows relative imports).
    JavaScript,
}

impl Other {
    fn output(&self, components: &Path) -> PathBuf {
        components.join(format!("{}.wasm", self.krate.name))
    }
}

/// The folders under `root/parent` that hold a Python (`app.py`) or
/// JavaScript (`plugin.js`) plugin, sorted. Their constants are named after the
/// folder (`plugins/stripe` is `STRIPE`).
fn discover_other_languages(root: &Path, parent: &str) -> Vec<Other> {
    let mut found = Vec::new();
    for entry in fs::read_dir(root.join(parent)).unwrap() {
        let path = entry.unwrap().path();
        let language = if path.join("app.py").is_file() {
            Language::Python
        } else if path.join("plugin.js").is_file() {
            Language::JavaScript
        } else {
            continue;
        };
        assert!(
            !path.join("Cargo.toml").is_file(),
            "{} has both a Cargo.toml and a Python/JavaScript entry point",
            path.display()
        );
        let folder = path.file_name().unwrap().to_str().unwrap().to_owned();
        found.push(Other {
            krate: Crate {
                name: folder.clone(),
                package: folder.clone(),
                dir: format!("{parent}/{folder}"),
            },
            language,
        });
    }
    found.sort_by(|a, b| a.krate.name.cmp(&b.krate.name));
    found
}

/// Where the project-local tools are.
struct Tools {
    python: PathBuf,
    js: PathBuf,
}

/// Both tools must be installed (the test suite runs the examples through
/// the host); the error says which `make` target installs what is missing.
fn check_tools(root: &Path, others: &[Other]) -> Result<Tools, String> {
    let tools = Tools {
        python: root.join(PY_TOOL),
        js: root.join(JS_TOOL),
    };
    let mut missing = Vec::new();
    let needs = |language| others.iter().any(|other| other.language == language);
    if needs(Language::Python) && !tools.python.is_file() {
        missing.push(format!(
            "componentize-py is not installed at {PY_TOOL}: run `make py-tools`"
        ));
    }
    if needs(Language::JavaScript) && !tools.js.is_file() {
        missing.push(format!(
            "componentize-js is not installed at {JS_TOOL}: run `make js-tools`"
        ));
    }
    if missing.is_empty() {
        Ok(tools)
    } else {
        Err(format!(
            "the Python and JavaScript example plugins need their project-local tools \
             ({}); `make test` installs both",
            missing.join("; ")
        ))
    }
}

fn spawn_other(
    root: &Path,
    tools: &Tools,
    other: &Other,
    components: &Path,
) -> std::process::Child {
    let folder = root.join(&other.krate.dir);
    let output = other.output(components);
    let mut cmd = match other.language {
        Language::Python => {
            let mut cmd = Command::new(&tools.python);
            cmd.arg("-d")
                .arg(root.join("wit"))
                .args(["-w", "handler", "componentize", "-p"])
                .arg(&folder)
                .arg("-p")
                .arg(root.join("sdk/python"))
                .arg("app")
                .arg("-o")
                .arg(&output)
                // No __pycache__ folders in the source tree.
                .env("PYTHONDONTWRITEBYTECODE", "1");
            cmd
        }
        Language::JavaScript => {
            let mut cmd = Command::new(&tools.js);
            cmd.arg(folder.join("plugin.js"))
                .arg("--wit")
                .arg(root.join("wit"))
                .args(["--world-name", "handler", "-o"])
                .arg(&output);
            cmd
        }
    };
    cmd.current_dir(root).stdout(Stdio::from(io::stderr()));
    eprintln!("running: {cmd:?}");
    cmd.spawn()
        .unwrap_or_else(|err| panic!("cannot run {:?}: {err}", cmd.get_program()))
}

fn finish_other(other: &Other, mut child: std::process::Child) {
    let status = child.wait().expect("failed to wait for a plugin build");
    if !status.success() {
        println!(
            "cargo::error=building {} failed ({status}): the tool's errors are under `--- stderr`",
            other.krate.dir
        );
        std::process::exit(1);
    }
}
