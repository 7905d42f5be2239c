//! (g) fleet: (f)'s burst-and-drain on the store a fleet shares. The same
//! queue route, the same burst, on three set-ups in one run: one host on
//! its embedded SQLite inbox, one host on PostgreSQL, and three hosts
//! sharing one PostgreSQL database, each of the three taking a third of the
//! connections (three wrk processes at once). Reports accepted and
//! delivered events per second, so PostgreSQL's cost and what more hosts
//! buy are read off one table.
//!
//! The database is `--postgres URL` (a role that may create databases;
//! default the local server at 127.0.0.1:5432), where each set-up gets a
//! fresh database `hh_bench_fleet` (dropped and created with `psql`). The
//! queue depth is read from the first host's `/metrics`: with PostgreSQL it
//! is the shared backlog.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::binaries::Binaries;
use super::drain::queue_gauges;
use super::folders::install;
use super::payload::Payload;
use super::server::{self, Server};
use super::wrk::{self, Target};
use super::{PATIENCE, Plan};

/// The database each PostgreSQL set-up starts from, empty.
const DATABASE: &str = "hh_bench_fleet";

/// Server names, for their log files.
const NAMES: [&str; 3] = ["hookhost-fleet-0", "hookhost-fleet-1", "hookhost-fleet-2"];

/// One set-up's burst and drain.
#[derive(Debug, Clone)]
pub struct FleetRun {
    pub setup: &'static str,
    pub hosts: usize,
    pub accepted: u64,
    pub errors: u64,
    pub burst_s: f64,
    pub backlog_at_end: u64,
    pub total_s: f64,
}

impl FleetRun {
    pub fn accept_rate(&self) -> f64 {
        self.accepted as f64 / self.burst_s
    }

    pub fn deliver_rate(&self) -> f64 {
        self.accepted.saturating_sub(self.backlog_at_end) as f64 / self.burst_s
    }

    pub fn end_to_end_rate(&self) -> f64 {
        self.accepted as f64 / self.total_s
    }
}

/// Runs the three set-ups, `plan.runs` bursts each.
pub fn measure(
    plan: &Plan,
    work: &Path,
    bins: &Binaries,
    compile_cache: &Path,
    payload: &Payload,
    postgres: &str,
) -> anyhow::Result<Vec<FleetRun>> {
    let plugins = work.join("fleet-plugins");
    std::fs::create_dir_all(&plugins)?;
    install(&plugins, "d", &bins.echo, Some("mode = \"queue\"\n"))?;
    let database = database_url(postgres)?;
    let mut runs = Vec::new();
    for (setup, store, hosts) in [
        ("SQLite, 1 host", None, 1),
        ("PostgreSQL, 1 host", Some(database.as_str()), 1),
        ("PostgreSQL, 3 hosts", Some(database.as_str()), 3),
    ] {
        if store.is_some() {
            recreate(postgres)?;
        }
        let mut servers = Vec::new();
        let mut admins = Vec::new();
        for (n, name) in NAMES.iter().enumerate().take(hosts) {
            let admin = SocketAddr::from(([127, 0, 0, 1], server::free_port()?));
            let data = work.join(format!("fleet-data-{n}-{}", runs.len()));
            let server = Server::start(name, work, plan.server_cpu(), &bins.hookhost, &|port| {
                let mut args = server::serve_args(port, &plugins, &data, compile_cache);
                args.extend(["--admin".into(), admin.to_string()]);
                args.extend(["--host-id".into(), format!("fleet-{n}")]);
                if let Some(url) = store {
                    args.extend(["--store".into(), url.to_owned()]);
                }
                args
            })?;
            server.wait_status(
                "/hooks/d",
                &payload.json_headers,
                &payload.file,
                202,
                PATIENCE,
            )?;
            servers.push(server);
            admins.push(admin);
        }
        super::drain::wait_empty(admins[0], PATIENCE)?;
        let targets: Vec<Target> = servers
            .iter()
            .map(|server| {
                Ok(Target::new(
                    "(g) fleet",
                    "burst at every host, then wait until every accepted event is done",
                    server.url("/hooks/d"),
                    wrk::script(work, "fleet", &payload.file, &payload.json_headers)?,
                ))
            })
            .collect::<anyhow::Result<_>>()?;
        let connections = (plan.connections / hosts as u32).max(1);
        for round in 1..=plan.runs {
            eprintln!("run {round}/{}: (g) fleet, {setup}", plan.runs);
            let started = Instant::now();
            let samples = std::thread::scope(|scope| {
                let handles: Vec<_> = targets
                    .iter()
                    .map(|target| scope.spawn(|| target.wrk(plan, plan.duration, connections)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("wrk thread panicked"))
                    .collect::<anyhow::Result<Vec<_>>>()
            })?;
            let backlog_at_end = queue_gauges(admins[0])?.0;
            super::drain::wait_empty(admins[0], Duration::from_secs(600))?;
            let total_s = started.elapsed().as_secs_f64();
            let dead = queue_gauges(admins[0])?.1;
            if dead > 0 {
                bail!(
                    "(g) {setup}: {dead} events are dead; see the logs in {}",
                    work.display()
                );
            }
            runs.push(FleetRun {
                setup,
                hosts,
                accepted: samples.iter().map(|s| s.requests - s.errors).sum(),
                errors: samples.iter().map(|s| s.errors).sum(),
                burst_s: samples
                    .iter()
                    .map(|s| s.duration_us as f64 / 1e6)
                    .fold(0.0, f64::max),
                backlog_at_end,
                total_s,
            });
        }
        drop(servers);
    }
    Ok(runs)
}

/// `postgres` with its database replaced by [`DATABASE`].
fn database_url(postgres: &str) -> anyhow::Result<String> {
    let (base, _) = postgres
        .rsplit_once('/')
        .filter(|(base, _)| base.contains("://"))
        .with_context(|| format!("--postgres {postgres}: expected postgres://USER@HOST:PORT/DB"))?;
    Ok(format!("{base}/{DATABASE}"))
}

/// Drops and creates [`DATABASE`] on the server, with `psql`.
fn recreate(postgres: &str) -> anyhow::Result<()> {
    for sql in [
        format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"),
        format!("CREATE DATABASE {DATABASE}"),
    ] {
        let output = Command::new("psql")
            .arg(postgres)
            .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", &sql])
            .output()
            .context("(g) needs `psql` (Debian: postgresql-client) to create its database")?;
        if !output.status.success() {
            bail!(
                "(g): `{sql}` on {postgres} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
    }
    Ok(())
}
