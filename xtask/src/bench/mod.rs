//! `cargo xtask bench`: hookhost against a native baseline, in one run, on
//! one machine, with one load generator.
//!
//! Strategy:
//! 1. Build what is measured: `hookhost` and `hookhost-baseline` (in the
//!    chosen profile) and the example plugins for `wasm32-wasip2`; install the
//!    Rust target and wrk if they are missing.
//! 2. Lay out a plugin folder under `TARGET/bench/`: `echo` (sync,
//!    unverified), `github` (sync, GitHub-verified), and, for (e), an echo
//!    plugin per language: Rust's is `echo`; the Python and JS ones are
//!    written into `TARGET/bench/cache/guests/src/` and built with the tools
//!    of `make tools` (run if missing). `TARGET/bench/cache/` survives runs:
//!    the built components (rebuilt only when their inputs change) and the
//!    hosts' compile cache (`--cache-dir cache/wasmtime`), so only the first run pays the
//!    6-19 s wasmtime compile of each big guest.
//! 3. Start hookhost and the baseline, each pinned with `taskset` to CPU 0 (so
//!    each runs one tokio worker), and run wrk pinned to CPU 1. The servers
//!    take turns: one warm-up per target, then the runs interleaved (baseline,
//!    (a), (b), baseline, (a), (b), ...) so that a noisy neighbour or a
//!    thermal drift hits every target alike.
//! 4. (c) runs on a second hookhost with a queue-mode route after the others:
//!    its inbox workers keep delivering the backlog after a run, which would
//!    otherwise steal CPU 0 from the next target.
//! 5. (d) renames a new version of a plugin into the folder N times and
//!    times the first answer of each; (e) times warm calls on one connection,
//!    back to back (wrk) and then paced, 10 ms apart.
//! 6. Print one table, medians with (min–max), and the ratios.
//!
//! Nothing here asserts a timing: `--smoke` only checks that every step
//! still works (CI runs it so the command never rots).

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// The demo secret the `github` route verifies with (and the baseline).
const SECRET: &str = "hookhost-bench-secret";

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

/// Opt-in instance reuse, for the `reused` rows (not the default).
const REUSE: &str = "[instance]\nmax_deliveries = 10000\n";

/// Manifest of the Python and JS echo plugins: their heap snapshots need the
/// 64 MiB the README asks for.
const BIG_GUEST_MANIFEST: &str = "[limits]\nmemory = \"64MiB\"\n";

/// `cargo xtask bench` flags.
#[derive(clap::Args)]
pub struct Args {
    /// A seconds-long run that only checks every step works (CI): 1 s runs,
    /// one run per target, 2 reload swaps. Its figures mean nothing.
    #[arg(long)]
    smoke: bool,

    /// Cargo profile of the host and baseline binaries: `release` for
    /// figures, `dev` to reuse the binaries of `make test` (CI's smoke).
    #[arg(long, default_value = "release", value_parser = ["release", "dev"])]
    profile: String,

    /// Seconds per measured run [default: 10; 1 with --smoke].
    #[arg(long, value_name = "SECONDS")]
    duration: Option<u64>,

    /// Seconds of warm-up per target before the runs [default: 3; 1 with --smoke].
    #[arg(long, value_name = "SECONDS")]
    warmup: Option<u64>,

    /// Measured runs per target [default: 3; 1 with --smoke].
    #[arg(long, value_name = "N")]
    runs: Option<usize>,

    /// Concurrent keep-alive connections wrk holds open.
    #[arg(long, default_value_t = 64, value_name = "N")]
    connections: u32,

    /// Which scenarios to run, comma-separated: a (echo), b (github,
    /// verified), c (queue mode), d (hot reload), e (per-language calls).
    #[arg(
        long,
        default_value = "a,b,c,d,e",
        value_delimiter = ',',
        value_name = "LIST"
    )]
    scenarios: Vec<char>,

    /// Hot-reload swaps timed in (d) [default: 10; 2 with --smoke].
    #[arg(long, value_name = "N")]
    swaps: Option<usize>,
}

struct Plan {
    duration: u64,
    warmup: u64,
    runs: usize,
    connections: u32,
    swaps: usize,
    /// (e)'s paced calls per language.
    paced_calls: usize,
    scenarios: Vec<char>,
    /// CPU for the servers and for wrk; `None` when there is only one.
    cpus: Option<(usize, usize)>,
}

impl Plan {
    fn has(&self, scenario: char) -> bool {
        self.scenarios.contains(&scenario)
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    for s in &args.scenarios {
        if !"abcde".contains(*s) {
            bail!("--scenarios: unknown scenario `{s}` (known: a,b,c,d,e)");
        }
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let plan = Plan {
        duration: args.duration.unwrap_or(if args.smoke { 1 } else { 10 }),
        warmup: args.warmup.unwrap_or(if args.smoke { 1 } else { 3 }),
        runs: args.runs.unwrap_or(if args.smoke { 1 } else { 3 }).max(1),
        connections: args.connections.max(1),
        swaps: args.swaps.unwrap_or(if args.smoke { 2 } else { 10 }).max(1),
        paced_calls: if args.smoke { 10 } else { 300 },
        scenarios: args.scenarios.clone(),
        cpus: (cpus >= 2).then_some((0, 1)),
    };
    let release = args.profile == "release";

    ensure_wasm_target()?;
    ensure_wrk()?;
    let bins = build(release)?;

    let work = crate::target_dir().join("bench");
    // Everything but `cache/` goes: compiled plugins (wasmtime's cache) and
    // the Python/JS components of (e) persist, as a Python or JS compile
    // takes 6-19 s.
    let cache = work.join("cache");
    clean_except(&work, &cache)?;
    std::fs::create_dir_all(&cache)
        .with_context(|| format!("cannot create {}", cache.display()))?;
    // wasmtime's cache deletes files it does not know in its folder: the
    // guests live beside it, not in it.
    let compile_cache = cache.join("wasmtime");
    let guests = if plan.has('e') {
        build_guests(&cache.join("guests"))?
    } else {
        Vec::new()
    };
    let body_file = work.join("push.json");
    std::fs::write(&body_file, push_body())?;
    let signature = baseline_sign(&bins.baseline, &body_file)?;

    let machine = machine();
    let wrk_version = command_output("wrk", &["-v"])
        .lines()
        .next()
        .unwrap_or("wrk")
        .split(" [")
        .next()
        .unwrap_or("wrk")
        .to_owned();
    let mut out = String::new();
    writeln!(
        out,
        "hookhost bench: {} binaries, {}, {} connections, {} s × {} run(s) per target after {} s warm-up{}",
        args.profile,
        wrk_version.trim(),
        plan.connections,
        plan.duration,
        plan.runs,
        plan.warmup,
        if args.smoke {
            " (SMOKE: figures mean nothing)"
        } else {
            ""
        },
    )?;
    writeln!(out, "machine: {machine}")?;
    match plan.cpus {
        Some((server, client)) => writeln!(
            out,
            "servers pinned to CPU {server} (one tokio worker each), wrk to CPU {client} (one thread); \
             hookhost logs at warn (no per-request line)"
        )?,
        None => writeln!(out, "one CPU: servers and wrk share it (no pinning)")?,
    }
    eprintln!("{out}");

    // --- (a), (b) and the baseline, interleaved ---------------------------
    let plugins = work.join("plugins");
    std::fs::create_dir_all(&plugins)?;
    install(&plugins, "echo", &bins.echo, None)?;
    install(
        &plugins,
        "github",
        &bins.github,
        Some(
            "route = \"/hooks/github\"\n[verify]\nscheme = \"github\"\nsecret = \"file:github.secret\"\n",
        ),
    )?;
    // The same plugin with opt-in instance reuse, for the `reused` rows.
    install(
        &plugins,
        "github-reused",
        &bins.github,
        Some(&format!(
            "route = \"/hooks/github-reused\"\n[verify]\nscheme = \"github\"\nsecret = \"file:github.secret\"\n{REUSE}"
        )),
    )?;
    std::fs::write(plugins.join("github.secret"), SECRET)?;
    let mut languages = Vec::new();
    if plan.has('e') {
        for language in LANGUAGES {
            for reused in [false, true] {
                let mut name = format!("lang-{}", language.to_lowercase());
                let mut manifest = BIG_GUEST_MANIFEST.to_owned();
                if reused {
                    name.push_str("-reused");
                    manifest.push_str(REUSE);
                }
                match guests.iter().find(|(l, _)| l == language) {
                    Some((_, wasm)) => install(&plugins, &name, wasm, Some(&manifest))?,
                    None => install(&plugins, &name, &bins.echo, reused.then_some(REUSE))?,
                }
                languages.push((*language, reused, name));
            }
        }
    }

    let host_started = Instant::now();
    let host = Server::start(
        "hookhost",
        &work,
        plan.cpus.map(|c| c.0),
        &bins.hookhost,
        &|port| serve_args(port, &plugins, &work.join("data"), &compile_cache),
    )?;
    let baseline = Server::start(
        "baseline",
        &work,
        plan.cpus.map(|c| c.0),
        &bins.baseline,
        &|port| {
            vec![
                "serve".into(),
                "--listen".into(),
                format!("127.0.0.1:{port}"),
                "--secret".into(),
                SECRET.into(),
            ]
        },
    )?;
    let github_headers = [
        ("Content-Type", "application/json".to_owned()),
        ("X-GitHub-Event", "push".to_owned()),
        ("X-Hub-Signature-256", signature.clone()),
    ];
    let json_headers = [("Content-Type", "application/json".to_owned())];
    // Compiling a plugin the first time can take a while (Python: ~15 s).
    let patience = Duration::from_secs(180);
    baseline.wait_status("/", &github_headers, &body_file, 200, patience)?;
    host.wait_status("/hooks/echo", &json_headers, &body_file, 200, patience)?;
    host.wait_status("/hooks/github", &github_headers, &body_file, 200, patience)?;
    // (e)'s plugins load too before anything is timed: a Python or JS
    // compile (a cold cache) would otherwise steal CPU 0 from (a) and (b).
    for (_, _, name) in &languages {
        let path = format!("/hooks/{name}");
        host.wait_status(&path, &json_headers, &body_file, 200, patience)?;
    }
    eprintln!(
        "every plugin answers, {:.1?} after the host started",
        host_started.elapsed()
    );

    let mut targets: Vec<Target> = vec![Target::new(
        "native baseline",
        "hyper, HMAC-SHA256 check + JSON parse, no Wasm",
        baseline.url("/"),
        wrk_script(&work, "baseline", &body_file, &github_headers)?,
    )];
    if plan.has('a') {
        targets.push(Target::new(
            "(a) echo",
            "sync, unverified, 1.5 KB JSON echoed by a fresh Rust instance",
            host.url("/hooks/echo"),
            wrk_script(&work, "echo", &body_file, &json_headers)?,
        ));
    }
    if plan.has('b') {
        targets.push(Target::new(
            "(b) github",
            "sync, X-Hub-Signature-256 verified natively, push parsed by a fresh Rust instance",
            host.url("/hooks/github"),
            wrk_script(&work, "github", &body_file, &github_headers)?,
        ));
        targets.push(Target::new(
            "(b) github, reused",
            "(b) with opt-in instance reuse (`[instance] max_deliveries = 10000`): not the default",
            host.url("/hooks/github-reused"),
            wrk_script(&work, "github", &body_file, &github_headers)?,
        ));
    }
    for target in &targets {
        eprintln!("warm-up: {} ({} s)", target.name, plan.warmup);
        wrk(
            &plan,
            &target.url,
            &target.script,
            plan.warmup,
            plan.connections,
        )?;
    }
    for run in 1..=plan.runs {
        for target in &mut targets {
            eprintln!("run {run}/{}: {}", plan.runs, target.name);
            let sample = wrk(
                &plan,
                &target.url,
                &target.script,
                plan.duration,
                plan.connections,
            )?;
            target.samples.push(sample);
        }
    }

    // --- (d) hot reload, on the same (now idle) host ----------------------
    let reload = if plan.has('d') {
        Some(hot_reload(&plan, &host, &plugins, &bins)?)
    } else {
        None
    };

    // --- (e) per-language warm call, one connection ------------------------
    let mut calls = Vec::new();
    if plan.has('e') {
        for (language, reused, name) in &languages {
            let path = format!("/hooks/{name}");
            let target = Target::new(
                language,
                "",
                host.url(&path),
                wrk_script(&work, name, &body_file, &json_headers)?,
            );
            wrk(&plan, &target.url, &target.script, plan.warmup, 1)?;
            let mut samples = Vec::new();
            for run in 1..=plan.runs {
                eprintln!("run {run}/{}: (e) {name} warm call", plan.runs);
                samples.push(wrk(&plan, &target.url, &target.script, plan.duration, 1)?);
            }
            eprintln!("(e) {name} paced calls");
            let body = std::fs::read(&body_file)?;
            let paced = paced_calls(host.addr, &path, &json_headers, &body, plan.paced_calls)?;
            calls.push((*language, *reused, samples, paced));
        }
    }
    drop(host);
    drop(baseline);

    // --- (c) queue mode, its own host --------------------------------------
    if plan.has('c') {
        let queue_plugins = work.join("queue-plugins");
        std::fs::create_dir_all(&queue_plugins)?;
        install(&queue_plugins, "q", &bins.echo, Some("mode = \"queue\"\n"))?;
        let queue = Server::start(
            "hookhost-queue",
            &work,
            plan.cpus.map(|c| c.0),
            &bins.hookhost,
            &|port| {
                serve_args(
                    port,
                    &queue_plugins,
                    &work.join("queue-data"),
                    &compile_cache,
                )
            },
        )?;
        queue.wait_status("/hooks/q", &json_headers, &body_file, 202, patience)?;
        let mut target = Target::new(
            "(c) queue",
            "durable acks: 202 once fsync'd in the inbox (group commit); workers deliver meanwhile",
            queue.url("/hooks/q"),
            wrk_script(&work, "queue", &body_file, &json_headers)?,
        );
        eprintln!("warm-up: {} ({} s)", target.name, plan.warmup);
        wrk(
            &plan,
            &target.url,
            &target.script,
            plan.warmup,
            plan.connections,
        )?;
        for run in 1..=plan.runs {
            eprintln!("run {run}/{}: {}", plan.runs, target.name);
            let sample = wrk(
                &plan,
                &target.url,
                &target.script,
                plan.duration,
                plan.connections,
            )?;
            target.samples.push(sample);
        }
        targets.push(target);
    }

    // --- the table -----------------------------------------------------------
    let base = targets[0].median_rps();
    let base_p99 = median(targets[0].samples.iter().map(|s| s.p99_us).collect());
    writeln!(out)?;
    writeln!(
        out,
        "| scenario | what | req/s median (min–max) | p50 | p99 | req/s vs baseline | p99 vs baseline |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|")?;
    for target in &targets {
        let rps: Vec<f64> = target.samples.iter().map(Sample::rps).collect();
        let p50 = median(target.samples.iter().map(|s| s.p50_us).collect());
        let p99 = median(target.samples.iter().map(|s| s.p99_us).collect());
        let errors: u64 = target.samples.iter().map(|s| s.errors).sum();
        writeln!(
            out,
            "| {} | {}{} | {} ({}–{}) | {} | {} | {:.2} | {:.2} |",
            target.name,
            target.what,
            if errors > 0 {
                format!(" — **{errors} errors/non-2xx**")
            } else {
                String::new()
            },
            thousands(target.median_rps()),
            thousands(min(&rps)),
            thousands(max(&rps)),
            millis(p50),
            millis(p99),
            target.median_rps() / base,
            p99 / base_p99,
        )?;
    }
    if let Some(times) = reload {
        writeln!(out)?;
        writeln!(
            out,
            "| (d) hot reload | swaps | median | min | max |\n|---|---|---|---|---|"
        )?;
        let ms: Vec<f64> = times.iter().map(|t| t.as_secs_f64() * 1e3).collect();
        writeln!(
            out,
            "| rename of a new Rust version (fresh compile) → its first answer | {} | {:.0} ms | {:.0} ms | {:.0} ms |",
            ms.len(),
            median(ms.clone()),
            min(&ms),
            max(&ms)
        )?;
    }
    if !calls.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "| (e) warm call, one connection | calls/s median (min–max) | p50 | p99 | paced p50 | paced p99 |\n|---|---|---|---|---|---|"
        )?;
        for (language, reused, samples, paced) in &calls {
            let rps: Vec<f64> = samples.iter().map(Sample::rps).collect();
            let errors: u64 = samples.iter().map(|s| s.errors).sum();
            writeln!(
                out,
                "| {language} echo{}{} | {} ({}–{}) | {} | {} | {} | {} |",
                if *reused { ", reused" } else { "" },
                if errors > 0 {
                    format!(" — **{errors} errors/non-2xx**")
                } else {
                    String::new()
                },
                thousands(median(rps.clone())),
                thousands(min(&rps)),
                thousands(max(&rps)),
                millis(median(samples.iter().map(|s| s.p50_us).collect())),
                millis(median(samples.iter().map(|s| s.p99_us).collect())),
                millis(percentile(paced, 0.50)),
                millis(percentile(paced, 0.99)),
            )?;
        }
        writeln!(
            out,
            "(e) is request to answer over HTTP on 127.0.0.1, a fresh instance per call included \
             (`reused`: opt-in instance reuse, not the default); \
             back to back (wrk), then paced: {} calls {} ms apart, as webhooks mostly arrive; \
             instantiate+call alone: `cargo bench -p hookhost --bench runtime`",
            plan.paced_calls,
            PACED_GAP.as_millis()
        )?;
    }
    print!("{out}");
    std::fs::write(work.join("table.md"), &out)?;
    eprintln!(
        "(table also written to {})",
        work.join("table.md").display()
    );
    Ok(())
}

/// One thing wrk drives, and its runs.
struct Target {
    name: &'static str,
    what: &'static str,
    url: String,
    script: PathBuf,
    samples: Vec<Sample>,
}

impl Target {
    fn new(name: &'static str, what: &'static str, url: String, script: PathBuf) -> Self {
        Self {
            name,
            what,
            url,
            script,
            samples: Vec::new(),
        }
    }

    fn median_rps(&self) -> f64 {
        median(self.samples.iter().map(Sample::rps).collect())
    }
}

/// What one wrk run reports (through the `done` hook of its script).
#[derive(Debug, Clone, Copy)]
struct Sample {
    requests: u64,
    duration_us: u64,
    p50_us: f64,
    p99_us: f64,
    /// Non-2xx/3xx answers plus socket errors and timeouts.
    errors: u64,
}

impl Sample {
    fn rps(&self) -> f64 {
        self.requests as f64 / (self.duration_us as f64 / 1e6)
    }
}

fn wrk(
    plan: &Plan,
    url: &str,
    script: &Path,
    seconds: u64,
    connections: u32,
) -> anyhow::Result<Sample> {
    let mut command = pinned(plan.cpus.map(|c| c.1), Path::new("wrk"));
    command
        .args(["-t1", "-c", &connections.to_string(), "-d"])
        .arg(format!("{seconds}s"))
        .arg("-s")
        .arg(script)
        .arg(url)
        .stdin(Stdio::null());
    let output = command.output().context("cannot run wrk")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "wrk failed ({}): {stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("XTASK "))
        .with_context(|| format!("wrk printed no summary: {stdout}"))?;
    let fields: Vec<f64> = line
        .split_whitespace()
        .map(|f| f.parse::<f64>())
        .collect::<Result<_, _>>()
        .with_context(|| format!("unreadable wrk summary: {line}"))?;
    let [requests, duration_us, p50_us, p99_us, errors] = fields[..] else {
        bail!("unreadable wrk summary: {line}");
    };
    Ok(Sample {
        requests: requests as u64,
        duration_us: duration_us as u64,
        p50_us,
        p99_us,
        errors: errors as u64,
    })
}

/// A wrk script that POSTs `body` with `headers` and prints one summary line.
fn wrk_script(
    work: &Path,
    name: &str,
    body: &Path,
    headers: &[(&str, String)],
) -> anyhow::Result<PathBuf> {
    let mut lua = String::new();
    writeln!(
        lua,
        "local f = assert(io.open({:?}, \"rb\"))\nwrk.body = f:read(\"*a\")\nf:close()\nwrk.method = \"POST\"",
        body.display().to_string()
    )?;
    for (name, value) in headers {
        writeln!(lua, "wrk.headers[{name:?}] = {value:?}")?;
    }
    lua.push_str(
        "done = function(summary, latency, requests)\n\
         \x20 local e = summary.errors\n\
         \x20 io.write(string.format(\"XTASK %d %d %.1f %.1f %d\\n\", summary.requests, summary.duration,\n\
         \x20   latency:percentile(50), latency:percentile(99), e.status + e.connect + e.read + e.write + e.timeout))\n\
         end\n",
    );
    let path = work.join(format!("{name}.lua"));
    std::fs::write(&path, lua)?;
    Ok(path)
}

/// A server process pinned to a CPU, killed when dropped.
struct Server {
    name: &'static str,
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

/// `hookhost serve` on 127.0.0.1:`port` with its plugin, data and compile
/// cache folders: the same command line for every hookhost the bench starts.
fn serve_args(port: u16, plugins: &Path, data: &Path, cache: &Path) -> Vec<String> {
    vec![
        "serve".into(),
        "--listen".into(),
        format!("127.0.0.1:{port}"),
        "--plugins".into(),
        plugins.display().to_string(),
        "--data".into(),
        data.display().to_string(),
        "--cache-dir".into(),
        cache.display().to_string(),
    ]
}

impl Server {
    fn start(
        name: &'static str,
        work: &Path,
        cpu: Option<usize>,
        binary: &Path,
        args: &dyn Fn(u16) -> Vec<String>,
    ) -> anyhow::Result<Self> {
        let port = free_port()?;
        let log = work.join(format!("{name}.log"));
        let file = std::fs::File::create(&log)?;
        let mut command = pinned(cpu, binary);
        command
            .args(args(port))
            // Per-request log lines off: the baseline logs nothing either.
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let server = Self {
            name,
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log,
        };
        let started = Instant::now();
        while TcpStream::connect(server.addr).is_err() {
            server.check_alive()?;
            if started.elapsed() > Duration::from_secs(60) {
                bail!("{name} did not listen on {} within 60 s", server.addr);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn check_alive(&self) -> anyhow::Result<()> {
        // `try_wait` needs `&mut`; a zero-signal probe does not.
        let alive = Command::new("kill")
            .args(["-0", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !alive {
            bail!(
                "{} exited; its log ({}):\n{}",
                self.name,
                self.log.display(),
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
        Ok(())
    }

    /// Waits until `path` answers `status` (plugins load after the listener
    /// opens; a first compile takes a while).
    fn wait_status(
        &self,
        path: &str,
        headers: &[(&str, String)],
        body: &Path,
        status: u16,
        patience: Duration,
    ) -> anyhow::Result<()> {
        let body = std::fs::read(body)?;
        let started = Instant::now();
        loop {
            let answer = post(self.addr, path, headers, &body);
            if let Ok((got, _)) = &answer
                && *got == status
            {
                return Ok(());
            }
            self.check_alive()?;
            if started.elapsed() > patience {
                bail!(
                    "{}{path} did not answer {status} within {patience:?} (last: {answer:?}); log: {}",
                    self.name,
                    self.log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// (d): renames a new version of a plugin into the folder `plan.swaps` times
/// (alternately echo and github, each with a fresh custom section so it is
/// really compiled, never found in the cache) and times each rename to the
/// first request the new version answers.
fn hot_reload(
    plan: &Plan,
    host: &Server,
    plugins: &Path,
    bins: &Binaries,
) -> anyhow::Result<Vec<Duration>> {
    // echo answers `ping` with `ping`; github without X-GitHub-Event rejects
    // (4xx): each version is recognisable from one request.
    let versions = [(&bins.echo, true), (&bins.github, false)];
    let is_version = |echo: bool, answer: &(u16, Vec<u8>)| {
        if echo {
            answer.0 == 200 && answer.1 == b"ping"
        } else {
            (400..500).contains(&answer.0) && answer.0 != 404
        }
    };
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut times = Vec::new();
    // Round 0 only puts the first version in place; it is not timed.
    for round in 0..=plan.swaps {
        let (wasm, echo) = versions[round % 2];
        let bytes = with_nonce(&std::fs::read(wasm)?, seed.wrapping_add(round as u64));
        let staged = plugins.join(".live.wasm.tmp");
        std::fs::write(&staged, &bytes)?;
        let renamed = Instant::now();
        std::fs::rename(&staged, plugins.join("live.wasm"))?;
        loop {
            if let Ok(answer) = post(host.addr, "/hooks/live", &[], b"ping")
                && is_version(echo, &answer)
            {
                break;
            }
            if renamed.elapsed() > Duration::from_secs(60) {
                bail!(
                    "version {round} of /hooks/live never answered (log: {})",
                    host.log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        if round > 0 {
            times.push(renamed.elapsed());
            eprintln!("(d) swap {round}/{}: {:?}", plan.swaps, renamed.elapsed());
        }
        // Let the watcher's debounce window close before the next rename.
        std::thread::sleep(Duration::from_millis(300));
    }
    Ok(times)
}

/// `wasm` with a custom section appended: the same code, different bytes
/// (so a different compile-cache key and a real compile).
fn with_nonce(wasm: &[u8], nonce: u64) -> Vec<u8> {
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
    let name = b"hookhost-bench-nonce";
    let mut payload = Vec::new();
    leb128(name.len(), &mut payload);
    payload.extend_from_slice(name);
    payload.extend_from_slice(&nonce.to_le_bytes());
    let mut bytes = wasm.to_vec();
    bytes.push(0); // custom section id
    leb128(payload.len(), &mut bytes);
    bytes.extend_from_slice(&payload);
    bytes
}

/// Pause between (e)'s paced calls: long enough that each finds the host
/// idle, as most webhook traffic does.
const PACED_GAP: Duration = Duration::from_millis(10);

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

/// Reads one HTTP/1.1 answer into `buffer`: its status and where its body
/// starts. The body is read to its Content-Length (so a keep-alive
/// connection can carry on), or to the end of the connection without one.
/// Bodies here are small and never chunked.
fn read_answer(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> anyhow::Result<(u16, usize)> {
    buffer.clear();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            bail!("connection closed before the answer's head");
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status")?;
    let length: Option<usize> = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())?
    });
    let body_start = head_end + 4;
    loop {
        if length.is_some_and(|length| buffer.len() >= body_start + length) {
            break;
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            if length.is_some() {
                bail!("connection closed inside the answer's body");
            }
            break;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    Ok((status, body_start))
}

/// The `q` quantile (0..=1) of `values`, by nearest rank.
fn percentile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// One HTTP/1.1 POST on a fresh connection: (status, body).
fn post(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> anyhow::Result<(u16, Vec<u8>)> {
    let mut stream = connect(addr)?;
    stream.write_all(&post_request(addr, path, headers, body, false))?;
    let mut answer = Vec::new();
    let (status, body_start) = read_answer(&mut stream, &mut answer)?;
    Ok((status, answer.split_off(body_start)))
}

fn connect(addr: SocketAddr) -> anyhow::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    Ok(stream)
}

/// A POST of `body` to `path`, whole; `keep_alive` leaves the connection
/// open for the next one.
fn post_request(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
    keep_alive: bool,
) -> Vec<u8> {
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: {connection}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        let _ = write!(request, "{name}: {value}\r\n");
    }
    request.push_str("\r\n");
    let mut request = request.into_bytes();
    request.extend_from_slice(body);
    request
}

struct Binaries {
    hookhost: PathBuf,
    baseline: PathBuf,
    echo: PathBuf,
    github: PathBuf,
}

fn build(release: bool) -> anyhow::Result<Binaries> {
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
        .map(|e| e.path().join("out/target/wasm32-wasip2/release"))
        .filter(|dir| dir.join("echo.wasm").is_file() && dir.join("github.wasm").is_file())
        .max_by_key(|dir| {
            std::fs::metadata(dir.join("echo.wasm"))
                .and_then(|m| m.modified())
                .ok()
        })
}

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

fn ensure_wasm_target() -> anyhow::Result<()> {
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

/// wrk from the distribution: installed with apt-get when we may, else a
/// clear message.
fn ensure_wrk() -> anyhow::Result<()> {
    if Command::new("wrk").arg("-v").output().is_ok() {
        return Ok(());
    }
    let root = command_output("id", &["-u"]).trim() == "0";
    let sudo = !root
        && Command::new("sudo")
            .args(["-n", "true"])
            .status()
            .is_ok_and(|s| s.success());
    let mut apt = if root {
        Command::new("apt-get")
    } else if sudo {
        let mut c = Command::new("sudo");
        c.args(["-n", "apt-get"]);
        c
    } else {
        bail!(
            "wrk is not installed; install it with `sudo apt-get install -y wrk` (Debian/Ubuntu)"
        );
    };
    eprintln!("installing wrk with apt-get");
    let installed = apt
        .args(["install", "-y", "wrk"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        bail!(
            "`apt-get install -y wrk` failed; run `apt-get update` first, or install wrk yourself"
        );
    }
    Ok(())
}

/// `taskset -c CPU binary` when pinning, else just `binary`.
fn pinned(cpu: Option<usize>, binary: &Path) -> Command {
    match cpu {
        Some(cpu) => {
            let mut command = Command::new("taskset");
            command.arg("-c").arg(cpu.to_string()).arg(binary);
            command
        }
        None => Command::new(binary),
    }
}

fn baseline_sign(baseline: &Path, body: &Path) -> anyhow::Result<String> {
    let output = Command::new(baseline)
        .args(["sign", "--secret", SECRET, "--file"])
        .arg(body)
        .output()
        .context("cannot run hookhost-baseline sign")?;
    if !output.status.success() {
        bail!("hookhost-baseline sign failed");
    }
    Ok(String::from_utf8(output.stdout)?.trim().to_owned())
}

/// Removes everything in `work` but `keep` (a direct child).
fn clean_except(work: &Path, keep: &Path) -> anyhow::Result<()> {
    let Ok(entries) = std::fs::read_dir(work) else {
        return Ok(());
    };
    for entry in entries {
        let path = entry?.path();
        if path == keep {
            continue;
        }
        if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        }
        .with_context(|| format!("cannot remove {}", path.display()))?;
    }
    Ok(())
}

/// Builds (e)'s Python and JS echo plugins into `cache`, with the
/// toolchains `make tools` installs (run first if either is missing). A
/// component whose inputs (source, SDK file, tool) are unchanged since the
/// last run is reused as is: componentize-py/-js do not promise identical
/// bytes, and identical bytes are what lets the host load its compile cache
/// instead of compiling again (6-19 s each).
fn build_guests(cache: &Path) -> anyhow::Result<Vec<(&'static str, PathBuf)>> {
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

/// Copies a component (and its manifest) into a plugin folder the way the
/// README says: manifest first, each renamed into place.
fn install(dir: &Path, name: &str, wasm: &Path, manifest: Option<&str>) -> anyhow::Result<()> {
    if let Some(manifest) = manifest {
        let staged = dir.join(format!(".{name}.toml.tmp"));
        std::fs::write(&staged, manifest)?;
        std::fs::rename(&staged, dir.join(format!("{name}.toml")))?;
    }
    let staged = dir.join(format!(".{name}.wasm.tmp"));
    std::fs::copy(wasm, &staged).with_context(|| format!("cannot copy {}", wasm.display()))?;
    std::fs::rename(&staged, dir.join(format!("{name}.wasm")))?;
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
        })
        .unwrap_or_default()
}

/// CPU model, CPU count, kernel, memory and the load average now (a busy
/// machine makes every figure an upper bound on latency).
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = command_output("uname", &["-sr"]).trim().to_owned();
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").parse::<u64>().ok())
        })
        .map_or(String::new(), |kb| format!(", {} GiB", kb / (1 << 20)));
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    format!("{model}, {cpus} CPUs{memory}, {kernel}; load average before the run: {load}")
}

/// A GitHub `push` payload of about 1.5 KB (trimmed from a real one).
fn push_body() -> String {
    let commit = |id: &str, message: &str| {
        format!(
            r#"{{"id":"{id}","tree_id":"{id}","distinct":true,"message":"{message}","timestamp":"2026-11-20T10:00:00Z","url":"https://github.com/octo/hello/commit/{id}","author":{{"name":"Octo Cat","email":"octo@example.com","username":"octocat"}},"added":[],"removed":[],"modified":["README.md"]}}"#
        )
    };
    let body = format!(
        r#"{{"ref":"refs/heads/main","before":"6113728f27ae82c7b1a177c8d03f9e96e0adf246","after":"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c","created":false,"deleted":false,"forced":false,"compare":"https://github.com/octo/hello/compare/6113728f27ae...0d1a26e67d8f","commits":[{},{}],"repository":{{"id":186853002,"name":"hello","full_name":"octo/hello","private":false,"owner":{{"login":"octo","id":21031067,"type":"User"}},"html_url":"https://github.com/octo/hello","default_branch":"main"}},"pusher":{{"name":"octocat","email":"octo@example.com"}},"sender":{{"login":"octocat","id":21031067,"type":"User","site_admin":false}}}}"#,
        commit(
            "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
            "Update README.md with the new build instructions"
        ),
        commit("b2c1e6f0a3d4c5b6a7980f1e2d3c4b5a69788776", "Fix typo"),
    );
    body
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn min(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn millis(us: f64) -> String {
    if us < 1000.0 {
        format!("{:.0} µs", us)
    } else {
        format!("{:.2} ms", us / 1000.0)
    }
}
