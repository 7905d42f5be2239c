//! [`Binary`]: the real `hookhost` process, for what only a process shows
//! (signals, exit codes, the log).

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::shared_cache;

/// `hookhost ARGS`: the binary under test, with colours off, not run yet.
pub fn hookhost_command<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hookhost"));
    command.args(args).env("NO_COLOR", "1");
    command
}

/// Runs `hookhost ARGS` to its end.
pub fn hookhost(args: &[&str]) -> Output {
    hookhost_command(args).output().unwrap()
}

/// `hookhost serve` on 127.0.0.1:0 for the `plugins` and `data` folders,
/// with nothing else set (for a run expected to fail, or one that sets its
/// own flags); [`Binary::command`] adds the test defaults.
pub fn serve_command(plugins: &Path, data: &Path) -> Command {
    let mut command = hookhost_command(["serve", "--listen", "127.0.0.1:0", "--plugins"]);
    command.arg(plugins).arg("--data").arg(data);
    command
}

/// The real `hookhost` binary, spawned with its stderr captured.
pub struct Binary {
    pub child: Child,
    pub addr: SocketAddr,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

/// The `ADDR` at the start of `text`: up to the end of the line, or of the
/// JSON string it is in (`--log-format json`).
fn address(text: &str) -> &str {
    text.split(|c: char| !(c.is_ascii_hexdigit() || ".:[]".contains(c)))
        .next()
        .unwrap_or_default()
}

impl Binary {
    /// Spawns `hookhost serve` on 127.0.0.1:0 with `plugins_dir`, the shared
    /// compile cache and extra `args`, and waits for its
    /// `listening on http://ADDR` line.
    pub fn spawn(plugins_dir: &Path, data_dir: &Path, args: &[&str]) -> Self {
        Self::start(Self::command(plugins_dir, data_dir, args))
    }

    /// The command [`Binary::spawn`] starts, for a test to add to (an
    /// environment variable) before [`Binary::start`].
    pub fn command(plugins_dir: &Path, data_dir: &Path, args: &[&str]) -> Command {
        let mut command = serve_command(plugins_dir, data_dir);
        command
            .args(["--max-concurrency", "16", "--cache-dir"])
            .arg(shared_cache())
            .args(args);
        command
    }

    /// Spawns `command`, a `hookhost serve` that must listen on a port it
    /// logs, with its stderr captured, and waits for its listening line.
    pub fn start(mut command: Command) -> Self {
        let mut child = command
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening on http://").nth(1)
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(address(rest).to_owned());
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => addr.parse().unwrap(),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "hookhost did not print its listening line; log:\n{}",
                    log.lock().unwrap()
                );
            }
        };
        Self { child, addr, log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Everything the binary logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The admin API's address, from its `admin API at http://ADDR` line
    /// (logged before the listening line, so already captured).
    pub fn admin_addr(&self) -> SocketAddr {
        let log = self.log();
        log.lines()
            .find_map(|line| line.split("admin API at http://").nth(1))
            .map(address)
            .unwrap_or_else(|| panic!("no admin API line in the log:\n{log}"))
            .parse()
            .unwrap()
    }

    /// Sends `signal` (e.g. "TERM") to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader thread drain the last lines.
                std::thread::sleep(Duration::from_millis(50));
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "hookhost did not exit within {timeout:?}; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Minimal blocking HTTP client for tests that run outside an async runtime.
pub mod blocking {
    pub fn post(url: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> (u16, Vec<u8>) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut request = reqwest::Client::new().post(url).body(body);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.bytes().await.unwrap().to_vec())
        })
    }
}
