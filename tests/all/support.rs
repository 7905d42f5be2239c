//! Test harness: a real host on 127.0.0.1:0 with a temporary plugin folder,
//! real compiled plugins, and a real HTTP client.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hookhost::config::HostConfig;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A plugin to put in the test host's folder.
pub struct Plugin<'a> {
    pub name: &'a str,
    pub wasm: &'a str,
    pub manifest: Option<&'a str>,
}

/// `name` served from `wasm` without a manifest.
pub fn plugin<'a>(name: &'a str, wasm: &'a str) -> Plugin<'a> {
    Plugin {
        name,
        wasm,
        manifest: None,
    }
}

/// `name` served from `wasm` with `manifest` as its `NAME.toml`.
pub fn plugin_with<'a>(name: &'a str, wasm: &'a str, manifest: &'a str) -> Plugin<'a> {
    Plugin {
        name,
        wasm,
        manifest: Some(manifest),
    }
}

/// Writes `plugins` into `dir` as the host expects them.
pub fn install(dir: &Path, plugins: &[Plugin<'_>]) {
    for plugin in plugins {
        std::fs::copy(plugin.wasm, dir.join(format!("{}.wasm", plugin.name)))
            .unwrap_or_else(|err| panic!("copy {}: {err}", plugin.wasm));
        if let Some(manifest) = plugin.manifest {
            std::fs::write(dir.join(format!("{}.toml", plugin.name)), manifest).unwrap();
        }
    }
}

/// A temporary folder with an empty `plugins/` and a `data/` path, for
/// tests that spawn the binary: (the folder, plugins, data).
pub fn folders() -> (TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    let data = dir.path().join("data");
    (dir, plugins, data)
}

/// Compiled code shared by every test host of this test run, so each plugin is
/// compiled by Cranelift once, not once per test.
pub fn shared_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hookhost-test-cache")
}

/// A host running in-process.
pub struct TestHost {
    pub addr: SocketAddr,
    /// The admin API, when started with [`TestHost::start_with_admin`].
    pub admin: Option<SocketAddr>,
    pub client: reqwest::Client,
    /// The plugin folder the host serves (and watches).
    pub plugins: PathBuf,
    // Removed (with the plugins and data in it) when the host is dropped.
    _dir: TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestHost {
    /// Starts a host serving `plugins` with default limits.
    pub async fn start(plugins: &[Plugin<'_>]) -> Self {
        Self::start_with(plugins, |_| {}).await
    }

    /// Starts a host serving `plugins`, after `adjust` has edited its config.
    pub async fn start_with(plugins: &[Plugin<'_>], adjust: impl FnOnce(&mut HostConfig)) -> Self {
        Self::start_inner(plugins, adjust, false).await
    }

    /// Like [`TestHost::start_with`], with the admin API on another
    /// 127.0.0.1 port.
    pub async fn start_with_admin(
        plugins: &[Plugin<'_>],
        adjust: impl FnOnce(&mut HostConfig),
    ) -> Self {
        Self::start_inner(plugins, adjust, true).await
    }

    async fn start_inner(
        plugins: &[Plugin<'_>],
        adjust: impl FnOnce(&mut HostConfig),
        admin: bool,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let plugins_dir = dir.path().join("plugins");
        std::fs::create_dir(&plugins_dir).unwrap();
        install(&plugins_dir, plugins);
        let mut config = HostConfig::new(&plugins_dir, dir.path().join("data"));
        config.cache_dir = Some(shared_cache());
        // A small pool: tests run many hosts in one process and each reserves
        // address space per slot.
        config.max_concurrency = 16;
        config.shutdown_grace = Duration::from_secs(5);
        adjust(&mut config);
        let plugins = config.plugins_dir.clone();

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let admin_listener = match admin {
            true => Some(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()),
            false => None,
        };
        let admin = admin_listener.as_ref().map(|l| l.local_addr().unwrap());
        let listeners = hookhost::Listeners {
            hooks: listener,
            admin: admin_listener,
        };
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(hookhost::run(listeners, config, async {
            let _ = rx.await;
        }));
        let host = Self {
            addr,
            admin,
            client: reqwest::Client::new(),
            plugins,
            _dir: dir,
            shutdown: Some(tx),
            task: Some(task),
        };
        host.wait_ready().await;
        host
    }

    /// `run` loads plugins before it accepts connections, so the first
    /// connection that gets any reaction (an HTTP answer, or a TLS listener
    /// hanging up on plaintext) means the host is ready. Until then the
    /// connection only sits in the listen backlog.
    async fn wait_ready(&self) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
            let _ = stream
                .write_all(b"GET /ready HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
                .await;
            let mut byte = [0u8; 1];
            if tokio::time::timeout(Duration::from_millis(200), stream.read(&mut byte))
                .await
                .is_ok()
            {
                return;
            }
            assert!(Instant::now() < deadline, "host did not start within 60 s");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A URL on the admin API.
    pub fn admin_url(&self, path: &str) -> String {
        format!(
            "http://{}{}",
            self.admin.expect("started without admin"),
            path
        )
    }

    /// POSTs `body` to `path`.
    pub async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// Stops the host and waits for it to drain.
    pub async fn stop(mut self) {
        let _ = self.shutdown.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap().unwrap();
    }
}

/// Reads a JSON error body and checks its shape: `error`, `route`, `delivery`.
pub async fn error_body(response: reqwest::Response) -> serde_json::Value {
    let delivery_header = response
        .headers()
        .get("x-hookhost-delivery")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");
    assert!(body["route"].is_string(), "{body}");
    assert_eq!(
        body["delivery"].as_str(),
        delivery_header.as_deref(),
        "body and header name the same delivery: {body}"
    );
    body
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
    /// compile cache and extra
    /// `args`, and waits for its `listening on http://ADDR` line.
    pub fn spawn(plugins_dir: &Path, data_dir: &Path, args: &[&str]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hookhost"));
        command
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--plugins")
            .arg(plugins_dir)
            .arg("--data")
            .arg(data_dir)
            .arg("--max-concurrency")
            .arg("16")
            .arg("--cache-dir")
            .arg(shared_cache())
            .args(args);
        Self::start(command)
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

/// The component at `wasm` with a custom section carrying `nonce` appended:
/// the same plugin in different bytes, so it has its own compile-cache entry
/// and a reload of it really compiles.
pub fn with_nonce(wasm: &str, nonce: u64) -> Vec<u8> {
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
    let mut bytes = std::fs::read(wasm).unwrap_or_else(|err| panic!("read {wasm}: {err}"));
    let name = b"hookhost-test-nonce";
    let mut payload = Vec::new();
    leb128(name.len(), &mut payload);
    payload.extend_from_slice(name);
    payload.extend_from_slice(&nonce.to_le_bytes());
    bytes.push(0); // custom section
    leb128(payload.len(), &mut bytes);
    bytes.extend_from_slice(&payload);
    bytes
}

/// Deploys `bytes` as `dir/NAME.wasm` the way the README tells operators to:
/// written beside it under a temporary dotfile name, then renamed into place.
/// Returns when the rename is done.
pub fn deploy(dir: &Path, name: &str, bytes: &[u8]) {
    let staged = dir.join(format!(".{name}.wasm.tmp"));
    std::fs::write(&staged, bytes).unwrap();
    std::fs::rename(&staged, dir.join(format!("{name}.wasm"))).unwrap();
}

/// Calls `check` until it returns `Some`, every 10 ms for up to `timeout`;
/// panics naming `what` if it never does.
pub async fn eventually<T, F>(timeout: Duration, what: &str, mut check: impl FnMut() -> F) -> T
where
    F: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// An HTTP/1.1 server on 127.0.0.1, for plugins to call out to: records
/// every request (head and body, as text) and answers each with `status` and
/// `body` after `delay`, then closes the connection.
pub struct LocalServer {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
    connections: Arc<Mutex<u32>>,
}

impl LocalServer {
    pub async fn start(status: u16, body: Vec<u8>, delay: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let (record, count) = (seen.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                *count.lock().unwrap() += 1;
                let (record, body) = (record.clone(), body.clone());
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    // Head, then as much body as content-length says.
                    let head_end = loop {
                        let n = stream.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        request.extend_from_slice(&buf[..n]);
                        if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                            break end + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&request[..head_end]).to_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|line| line.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while request.len() < head_end + length {
                        let n = stream.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        request.extend_from_slice(&buf[..n]);
                    }
                    record
                        .lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&request).into_owned());
                    tokio::time::sleep(delay).await;
                    let head = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(&body).await;
                });
            }
        });
        Self {
            addr,
            seen,
            connections,
        }
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    /// Connections accepted so far (a request that never arrived whole still
    /// counts).
    pub fn connections(&self) -> u32 {
        *self.connections.lock().unwrap()
    }
}

/// Compiles the component at `wasm` into [`shared_cache`] once per test run,
/// before a host loads it: the first caller compiles, concurrent callers for
/// the same file wait for it. Python and JavaScript components take 15-20 s
/// to compile; without this, tests starting at once would each compile them
/// (and a host's start-up could outlast [`TestHost`]'s patience).
pub async fn precompile(wasm: &str) {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    static COMPILED: Mutex<Option<HashMap<String, Arc<OnceLock<()>>>>> = Mutex::new(None);
    let once = COMPILED
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .entry(wasm.to_owned())
        .or_default()
        .clone();
    let wasm = wasm.to_owned();
    tokio::task::spawn_blocking(move || {
        once.get_or_init(|| {
            // The same engine settings as every test host (the pool size
            // included), so the cache entry is the one they look up.
            let runtime = hookhost::runtime::Runtime::new(&hookhost::runtime::RuntimeConfig {
                max_concurrency: 16,
                spare_instances: hookhost::config::DEFAULT_SPARE_INSTANCES,
                cache_dir: Some(shared_cache()),
                outbound: Default::default(),
                kv: None,
            })
            .unwrap();
            let bytes = std::fs::read(&wasm).unwrap_or_else(|err| panic!("read {wasm}: {err}"));
            if let Err(err) = runtime.prepare(Path::new(&wasm), &bytes) {
                panic!("{wasm} does not load: {err:#}");
            }
        });
    })
    .await
    .unwrap();
}
