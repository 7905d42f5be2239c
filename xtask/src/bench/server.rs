//! The servers under load: their command lines (`hookhost serve`,
//! `hookhost-baseline serve`), starting one on a free port pinned to a CPU,
//! waiting until a route answers, and killing it when dropped. What is sent
//! to them is the stages' business.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::http::post;
use super::payload::SECRET;
use super::process::pinned;

/// A server process pinned to a CPU, killed when dropped.
pub struct Server {
    name: &'static str,
    child: Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
}

/// `hookhost serve` on 127.0.0.1:`port` with its plugin, data and compile
/// cache folders: the same command line for every hookhost the bench starts.
pub fn serve_args(port: u16, plugins: &Path, data: &Path, cache: &Path) -> Vec<String> {
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
        // The bench is one client: all of wrk's `--connections` come from
        // 127.0.0.1, and more than the default per-client cap (256) would be
        // closed. Lift it to `--max-connections`' default.
        "--max-connections-per-client".into(),
        "10000".into(),
    ]
}

/// `hookhost-baseline serve` on 127.0.0.1:`port`, checking signatures made
/// with the demo secret.
pub fn baseline_args(port: u16) -> Vec<String> {
    vec![
        "serve".into(),
        "--listen".into(),
        format!("127.0.0.1:{port}"),
        "--secret".into(),
        SECRET.into(),
    ]
}

impl Server {
    /// Starts `binary` with `args(port)` on a free port, its output going to
    /// `WORK/NAME.log`, and waits (60 s at most) until it listens.
    pub fn start(
        name: &'static str,
        work: &Path,
        cpu: Option<usize>,
        binary: &Path,
        args: &dyn Fn(u16) -> Vec<String>,
    ) -> anyhow::Result<Self> {
        Self::start_with_env(name, work, cpu, binary, args, &[])
    }

    /// [`Server::start`] with extra environment variables.
    pub fn start_with_env(
        name: &'static str,
        work: &Path,
        cpu: Option<usize>,
        binary: &Path,
        args: &dyn Fn(u16) -> Vec<String>,
        env: &[(&str, String)],
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
            .envs(env.iter().map(|(name, value)| (*name, value)))
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

    /// The server's process id (`taskset` execs it, so this is the server's).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://ADDR/PATH` on this server, for wrk.
    pub fn url(&self, path: &str) -> String {
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
    pub fn wait_status(
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

/// A port nothing listens on now (the server binds it right after).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
