//! wrk, the load generator: installing it, the Lua script that makes it POST
//! a body and print one summary line, one run and what it reports, and the
//! interleaved warm-up and runs over a set of targets. Not the statistics
//! over runs: [`super::report`] makes those.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

use super::Plan;
use super::process::{command_output, pinned};

/// wrk from the distribution: installed with apt-get when we may, else a
/// clear message.
pub fn ensure_installed() -> anyhow::Result<()> {
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

/// wrk's version line, e.g. `wrk 4.1.0`, for the table's header.
pub fn version() -> String {
    command_output("wrk", &["-v"])
        .lines()
        .next()
        .unwrap_or("wrk")
        .split(" [")
        .next()
        .unwrap_or("wrk")
        .to_owned()
}

/// One thing wrk drives, and its runs.
pub struct Target {
    pub name: &'static str,
    pub what: &'static str,
    url: String,
    script: PathBuf,
    pub samples: Vec<Sample>,
}

impl Target {
    pub fn new(name: &'static str, what: &'static str, url: String, script: PathBuf) -> Self {
        Self {
            name,
            what,
            url,
            script,
            samples: Vec::new(),
        }
    }

    /// One wrk run of `seconds` with `connections` connections against this
    /// target, pinned to the client CPU. Not kept in `samples`: a warm-up is
    /// a run too.
    pub fn wrk(&self, plan: &Plan, seconds: u64, connections: u32) -> anyhow::Result<Sample> {
        let mut command = pinned(plan.cpus.map(|c| c.1), Path::new("wrk"));
        command
            .args(["-t1", "-c", &connections.to_string(), "-d"])
            .arg(format!("{seconds}s"))
            .arg("-s")
            .arg(&self.script)
            .arg(&self.url)
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
}

/// What one wrk run reports (through the `done` hook of its script).
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub requests: u64,
    pub duration_us: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// Non-2xx/3xx answers plus socket errors and timeouts.
    pub errors: u64,
}

impl Sample {
    pub fn rps(&self) -> f64 {
        self.requests as f64 / (self.duration_us as f64 / 1e6)
    }
}

/// One warm-up per target, then `plan.runs` rounds through all of them (so
/// that a drift during the rounds hits every target alike), each with
/// `plan.connections` connections.
pub fn measure(plan: &Plan, targets: &mut [Target]) -> anyhow::Result<()> {
    for target in targets.iter() {
        eprintln!("warm-up: {} ({} s)", target.name, plan.warmup);
        target.wrk(plan, plan.warmup, plan.connections)?;
    }
    for round in 1..=plan.runs {
        for target in targets.iter_mut() {
            eprintln!("run {round}/{}: {}", plan.runs, target.name);
            let sample = target.wrk(plan, plan.duration, plan.connections)?;
            target.samples.push(sample);
        }
    }
    Ok(())
}

/// A wrk script that POSTs `body` with `headers` and prints one summary line.
pub fn script(
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
