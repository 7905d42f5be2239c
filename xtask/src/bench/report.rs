//! What the bench prints: the header (profile, wrk, machine, pinning), the
//! tables of every stage, and the statistics and number formats they use.
//! The figures themselves come from the stages.

use std::fmt::Write as _;
use std::time::Duration;

use super::Plan;
use super::drain::Drain;
use super::fleet::FleetRun;
use super::languages::{Calls, PACED_GAP};
use super::process::command_output;
use super::wrk::{self, Sample, Target};

/// The lines above the tables: what was run, on what, and how it was pinned.
pub fn header(profile: &str, smoke: bool, plan: &Plan) -> anyhow::Result<String> {
    let machine = machine();
    let wrk_version = wrk::version();
    let mut out = String::new();
    writeln!(
        out,
        "hookhost bench: {} binaries, {}, {} connections, {} s × {} run(s) per target after {} s warm-up{}",
        profile,
        wrk_version.trim(),
        plan.connections,
        plan.duration,
        plan.runs,
        plan.warmup,
        if smoke {
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
    Ok(out)
}

/// Appends the tables to `out`: the wrk targets against the first one (the
/// baseline), then (d)'s swaps and (e)'s calls when they ran.
pub fn tables(
    out: &mut String,
    plan: &Plan,
    targets: &[Target],
    reload: Option<&[Duration]>,
    calls: &[Calls],
) -> anyhow::Result<()> {
    wrk_table(out, targets)?;
    if let Some(times) = reload {
        reload_table(out, times)?;
    }
    if !calls.is_empty() {
        calls_table(out, plan, calls)?;
    }
    Ok(())
}

/// The wrk targets, each against the first one (the baseline).
fn wrk_table(out: &mut String, targets: &[Target]) -> anyhow::Result<()> {
    let base = Summary::of(&targets[0].samples);
    writeln!(out)?;
    writeln!(
        out,
        "| scenario | what | req/s median (min–max) | p50 | p99 | req/s vs baseline | p99 vs baseline |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|")?;
    for target in targets {
        let runs = Summary::of(&target.samples);
        writeln!(
            out,
            "| {} | {}{} | {} | {} | {} | {:.2} | {:.2} |",
            target.name,
            target.what,
            runs.errors_note(),
            runs.rps_cell(),
            millis(runs.p50),
            millis(runs.p99),
            runs.median_rps() / base.median_rps(),
            runs.p99 / base.p99,
        )?;
    }
    Ok(())
}

/// (f): one row per burst, and the median end-to-end rate against (a)'s
/// median of the same run (the bar: at least 0.5).
pub fn drain_table(out: &mut String, targets: &[Target], drains: &[Drain]) -> anyhow::Result<()> {
    writeln!(out)?;
    writeln!(
        out,
        "| (f) queue drain, only `mode = \"queue\"` | accepted | accept/s | deliver/s (during burst) | end-to-end/s | p99 ack | bytes written/event | end-to-end vs (a) |\n|---|---|---|---|---|---|---|---|"
    )?;
    let echo = targets
        .iter()
        .find(|t| t.name == "(a) echo")
        .map(|t| Summary::of(&t.samples).median_rps());
    for drain in drains {
        let ratio = echo.map_or("n/a (run a too)".to_owned(), |echo| {
            format!("{:.2}", drain.end_to_end_rate() / echo)
        });
        writeln!(
            out,
            "| burst {:.1} s, drained {:.1} s after it{} | {} | {} | {} | {} | {} | {} | {ratio} |",
            drain.burst_s,
            drain.total_s - drain.burst_s,
            if drain.errors > 0 {
                format!(" — **{} errors/non-2xx**", drain.errors)
            } else {
                String::new()
            },
            drain.accepted,
            thousands(drain.accept_rate()),
            thousands(drain.deliver_rate()),
            thousands(drain.end_to_end_rate()),
            millis(drain.p99_ack_us),
            thousands(drain.bytes_per_event()),
        )?;
    }
    let e2e = median(drains.iter().map(Drain::end_to_end_rate).collect());
    match echo {
        Some(echo) => writeln!(
            out,
            "(f) end-to-end median {} events/s = {:.2} × (a) sync echo's {} req/s (bar: ≥ 0.50)",
            thousands(e2e),
            e2e / echo,
            thousands(echo)
        )?,
        None => writeln!(out, "(f) end-to-end median {} events/s", thousands(e2e))?,
    }
    Ok(())
}

/// (d): the swaps' times.
fn reload_table(out: &mut String, times: &[Duration]) -> anyhow::Result<()> {
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
    Ok(())
}

/// (e): one row per echo plugin, then what the figures include.
fn calls_table(out: &mut String, plan: &Plan, calls: &[Calls]) -> anyhow::Result<()> {
    writeln!(out)?;
    writeln!(
        out,
        "| (e) warm call, one connection | calls/s median (min–max) | p50 | p99 | paced p50 | paced p99 |\n|---|---|---|---|---|---|"
    )?;
    for Calls {
        language,
        reused,
        samples,
        paced,
    } in calls
    {
        let runs = Summary::of(samples);
        writeln!(
            out,
            "| {language} echo{}{} | {} | {} | {} | {} | {} |",
            if *reused { ", reused" } else { "" },
            runs.errors_note(),
            runs.rps_cell(),
            millis(runs.p50),
            millis(runs.p99),
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
    Ok(())
}

/// What a row shows of a target's wrk runs.
struct Summary {
    /// Requests per second of each run.
    rps: Vec<f64>,
    /// The median over the runs of each run's p50 and p99, in µs.
    p50: f64,
    p99: f64,
    /// Errors and non-2xx answers over all the runs.
    errors: u64,
}

impl Summary {
    fn of(samples: &[Sample]) -> Self {
        Self {
            rps: samples.iter().map(Sample::rps).collect(),
            p50: median(samples.iter().map(|s| s.p50_us).collect()),
            p99: median(samples.iter().map(|s| s.p99_us).collect()),
            errors: samples.iter().map(|s| s.errors).sum(),
        }
    }

    fn median_rps(&self) -> f64 {
        median(self.rps.clone())
    }

    /// `median (min–max)` of the runs' requests per second.
    fn rps_cell(&self) -> String {
        format!(
            "{} ({}–{})",
            thousands(self.median_rps()),
            thousands(min(&self.rps)),
            thousands(max(&self.rps))
        )
    }

    /// What a row's label gets when any run had errors: they void its figures.
    fn errors_note(&self) -> String {
        if self.errors > 0 {
            format!(" — **{} errors/non-2xx**", self.errors)
        } else {
            String::new()
        }
    }
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

/// The middle value (the upper one of an even count).
/// (g): one row per set-up (medians of its runs), and each set-up's
/// end-to-end rate against the SQLite host's.
pub fn fleet_table(out: &mut String, runs: &[FleetRun]) -> anyhow::Result<()> {
    writeln!(out)?;
    writeln!(
        out,
        "| (g) fleet, (f)'s route | hosts | accepted | accept/s | deliver/s (during burst) | end-to-end/s | vs SQLite |\n|---|---|---|---|---|---|---|"
    )?;
    let mut setups: Vec<&'static str> = Vec::new();
    for run in runs {
        if !setups.contains(&run.setup) {
            setups.push(run.setup);
        }
    }
    let of = |setup: &str, rate: fn(&FleetRun) -> f64| {
        median(runs.iter().filter(|r| r.setup == setup).map(rate).collect())
    };
    let sqlite = of("SQLite, 1 host", FleetRun::end_to_end_rate);
    for setup in setups {
        let mine: Vec<&FleetRun> = runs.iter().filter(|r| r.setup == setup).collect();
        let errors: u64 = mine.iter().map(|r| r.errors).sum();
        let e2e = of(setup, FleetRun::end_to_end_rate);
        writeln!(
            out,
            "| {setup}{} | {} | {} | {} | {} | {} | {:.2} |",
            if errors > 0 {
                format!(" — **{errors} errors/non-2xx**")
            } else {
                String::new()
            },
            mine[0].hosts,
            mine.iter().map(|r| r.accepted).sum::<u64>() / mine.len() as u64,
            thousands(of(setup, FleetRun::accept_rate)),
            thousands(of(setup, FleetRun::deliver_rate)),
            thousands(e2e),
            e2e / sqlite,
        )?;
    }
    Ok(())
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

/// The `q` quantile (0..=1) of `values`, by nearest rank.
fn percentile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// `value` rounded, with a comma every three digits: `12,345`.
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

/// A latency in µs as `850 µs` or, from 1 ms up, `1.25 ms`.
fn millis(us: f64) -> String {
    if us < 1000.0 {
        format!("{:.0} µs", us)
    } else {
        format!("{:.2} ms", us / 1000.0)
    }
}
