//! (e) per-language warm calls: an echo plugin per language (Rust's is the
//! `echo` example; the Python and JS ones are built here), each timed on
//! one connection, back to back with wrk and then paced, one call at a time.
//! The (b)-style `reused` variant of each rides along.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::binaries::Binaries;
use super::folders::install;
use super::http::{connect, post_request, read_answer};
use super::payload::Payload;
use super::server::Server;
use super::wrk::{self, Sample, Target};
use super::{Plan, REUSE};

/// Languages timed in (e), each with an echo plugin: Rust is the `echo`
/// example; Python and JS are built here from the sources below, with the
/// project-local toolchains of `make tools` (`.venv/`, `node_modules/`).
const LANGUAGES: &[&str] = &["Rust", "Python", "JS"];

/// (e)'s Python echo (componentize-py, `sdk/python/hookhost.py`).
const PYTHON_ECHO: &str = r#"import hookhost


class WitWorld(hookhost.Handler):
    def handle(self, delivery: hookhost.Delivery) -> hookhost.Response:
        kind = hookhost.header(delivery, "content-type") or "application/octet-stream"
        return hookhost.ok(delivery.body, [("content-type", kind)])
"#;

/// (e)'s JavaScript echo (componentize-js, `sdk/js/hookhost.js` beside it).
const JS_ECHO: &str = r#"import * as hookhost from './hookhost.js';

export function handle(delivery) {
  const kind = hookhost.header(delivery, 'content-type') ?? 'application/octet-stream';
  return hookhost.ok(delivery.body, [['content-type', kind]]);
}
"#;

/// Manifest of the Python and JS echo plugins: their heap snapshots need the
/// 64 MiB docs/performance.md asks for.
const BIG_GUEST_MANIFEST: &str = "[limits]\nmemory = \"64MiB\"\n";

/// Builds (e)'s Python and JS echo plugins into `cache`, with the
/// toolchains `make tools` installs (run first if either is missing). A
/// component whose inputs (source, SDK file, tool) are unchanged since the
/// last run is reused as is: componentize-py/-js do not promise identical
/// bytes, and identical bytes are what lets the host load its compile cache
/// instead of compiling again (6-19 s each).
pub fn build_guests(cache: &Path) -> anyhow::Result<Vec<(&'static str, PathBuf)>> {
    let root = crate::root();
    let py_tool = root.join(".venv/bin/componentize-py");
    let js_tool = root.join("node_modules/.bin/componentize-js");
    if !py_tool.is_file() || !js_tool.is_file() {
        eprintln!("building the Python/JS toolchains: make tools");
        let status = Command::new("make")
            .arg("tools")
            .current_dir(&root)
            .status()
            .context("cannot run make (needed for `make tools`)")?;
        if !status.success() || !py_tool.is_file() || !js_tool.is_file() {
            bail!("`make tools` failed: (e) needs componentize-py and componentize-js");
        }
    }
    std::fs::create_dir_all(cache)?;
    let src = cache.join("src");
    let mut built = Vec::new();
    for (language, tool) in [("Python", &py_tool), ("JS", &js_tool)] {
        let (source, sdk, file) = match language {
            "Python" => (PYTHON_ECHO, "sdk/python/hookhost.py", "app.py"),
            _ => (JS_ECHO, "sdk/js/hookhost.js", "plugin.js"),
        };
        let dir = src.join(language.to_lowercase());
        let wasm = cache.join(format!("echo-{}.wasm", language.to_lowercase()));
        let stamp_file = wasm.with_extension("stamp");
        let sdk_text = std::fs::read_to_string(root.join(sdk))
            .with_context(|| format!("cannot read {sdk}"))?;
        let tool_meta = std::fs::metadata(std::fs::canonicalize(tool)?)?;
        let stamp = {
            use std::hash::{Hash as _, Hasher as _};
            let mut h = std::hash::DefaultHasher::new();
            (source, &sdk_text, tool_meta.len()).hash(&mut h);
            tool_meta.modified().ok().hash(&mut h);
            std::fs::read(root.join("wit/world.wit"))
                .unwrap_or_default()
                .hash(&mut h);
            format!("{:016x}", h.finish())
        };
        if wasm.is_file() && std::fs::read_to_string(&stamp_file).ok().as_deref() == Some(&stamp) {
            eprintln!("(e) {language} echo: unchanged, reusing {}", wasm.display());
            built.push((language, wasm));
            continue;
        }
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(file), source)?;
        let staged = cache.join(format!(".echo-{}.wasm.tmp", language.to_lowercase()));
        let mut command = Command::new(tool);
        command.current_dir(&root);
        if language == "Python" {
            command
                .env("PYTHONDONTWRITEBYTECODE", "1")
                .args(["-d", "wit", "-w", "handler", "componentize", "-p"])
                .arg(&dir)
                .args(["-p", "sdk/python", "app", "-o"])
                .arg(&staged);
        } else {
            std::fs::write(dir.join("hookhost.js"), &sdk_text)?;
            command
                .arg(dir.join(file))
                .args(["--wit", "wit", "--world-name", "handler", "-o"])
                .arg(&staged);
        }
        let started = Instant::now();
        eprintln!("(e) building the {language} echo: {command:?}");
        let status = command
            .status()
            .with_context(|| format!("cannot run {}", tool.display()))?;
        if !status.success() {
            bail!("building the {language} echo plugin failed");
        }
        std::fs::rename(&staged, &wasm)?;
        std::fs::write(&stamp_file, &stamp)?;
        eprintln!("(e) {language} echo built in {:.1?}", started.elapsed());
        built.push((language, wasm));
    }
    Ok(built)
}

/// One (e) echo plugin: its language, whether it opts into instance reuse,
/// and its name in the plugin folder (its route is `/hooks/NAME`).
pub struct Echo {
    pub language: &'static str,
    pub reused: bool,
    pub plugin: String,
}

/// `lang-LANGUAGE` and `lang-LANGUAGE-reused` for each language, from the
/// built `guests` (the Rust echo where there is none).
pub fn install_plugins(
    plugins: &Path,
    guests: &[(&'static str, PathBuf)],
    bins: &Binaries,
) -> anyhow::Result<Vec<Echo>> {
    let mut echoes = Vec::new();
    for language in LANGUAGES {
        for reused in [false, true] {
            let mut name = format!("lang-{}", language.to_lowercase());
            let mut manifest = BIG_GUEST_MANIFEST.to_owned();
            if reused {
                name.push_str("-reused");
                manifest.push_str(REUSE);
            }
            match guests.iter().find(|(l, _)| l == language) {
                Some((_, wasm)) => install(plugins, &name, wasm, Some(&manifest))?,
                None => install(plugins, &name, &bins.echo, reused.then_some(REUSE))?,
            }
            echoes.push(Echo {
                language,
                reused,
                plugin: name,
            });
        }
    }
    Ok(echoes)
}

/// (e)'s figures for one [`Echo`]: wrk's runs and the paced calls' times
/// in µs.
pub struct Calls {
    pub language: &'static str,
    pub reused: bool,
    pub samples: Vec<Sample>,
    pub paced: Vec<f64>,
}

/// For each plugin: a warm-up, `plan.runs` wrk runs on one connection, then
/// the paced calls.
pub fn measure(
    plan: &Plan,
    host: &Server,
    work: &Path,
    payload: &Payload,
    echoes: &[Echo],
) -> anyhow::Result<Vec<Calls>> {
    let json = &payload.json_headers;
    let mut calls = Vec::new();
    for Echo {
        language,
        reused,
        plugin: name,
    } in echoes
    {
        let path = format!("/hooks/{name}");
        let target = Target::new(
            language,
            "",
            host.url(&path),
            wrk::script(work, name, &payload.file, json)?,
        );
        target.wrk(plan, plan.warmup, 1)?;
        let mut samples = Vec::new();
        for run in 1..=plan.runs {
            eprintln!("run {run}/{}: (e) {name} warm call", plan.runs);
            samples.push(target.wrk(plan, plan.duration, 1)?);
        }
        eprintln!("(e) {name} paced calls");
        let body = std::fs::read(&payload.file)?;
        let paced = paced_calls(host.addr, &path, json, &body, plan.paced_calls)?;
        calls.push(Calls {
            language,
            reused: *reused,
            samples,
            paced,
        });
    }
    Ok(calls)
}

/// Pause between (e)'s paced calls: long enough that each finds the host
/// idle, as most webhook traffic does.
pub const PACED_GAP: Duration = Duration::from_millis(10);

/// (e) paced: `calls` POSTs to `path` one at a time on one keep-alive
/// connection, [`PACED_GAP`] apart, after 20 untimed ones; each call's
/// request-to-answer time in µs. Fails on any answer but 200.
fn paced_calls(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
    calls: usize,
) -> anyhow::Result<Vec<f64>> {
    let mut stream = connect(addr)?;
    stream.set_nodelay(true)?;
    let request = post_request(addr, path, headers, body, true);
    let mut times = Vec::with_capacity(calls);
    let mut buffer = Vec::new();
    for call in 0..calls + 20 {
        std::thread::sleep(PACED_GAP);
        let sent = Instant::now();
        stream.write_all(&request)?;
        let (status, _) = read_answer(&mut stream, &mut buffer)?;
        let took = sent.elapsed();
        if status != 200 {
            bail!("{path} answered {status} to a paced call");
        }
        if call >= 20 {
            times.push(took.as_secs_f64() * 1e6);
        }
    }
    Ok(times)
}
