//! [`TestHost`]: the host running in-process through `hookhost::run`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hookhost::config::HostConfig;
use hookhost::verify::Scheme;
use reqwest::StatusCode;
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{Plugin, install, shared_cache, unix_now, with_headers};

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

    /// POSTs `body` to `path` with `Idempotency-Key: id`, the sender's id
    /// for the delivery.
    pub async fn post_with_id(
        &self,
        path: &str,
        id: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("idempotency-key", id)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// A POST of `body` to `path` with the headers `signer`'s sender adds to
    /// it now; not sent yet, so a test can add headers of its own.
    pub fn signed_post(
        &self,
        path: &str,
        signer: &dyn Scheme,
        body: &str,
    ) -> reqwest::RequestBuilder {
        let url = self.url(path);
        let signature = signer
            .sign(body.as_bytes(), &url.parse().unwrap(), unix_now())
            .unwrap();
        with_headers(self.client.post(url).body(body.to_owned()), &signature)
    }

    /// GETs `path` on the admin API: the status and the JSON body.
    pub async fn admin_get(&self, path: &str) -> (StatusCode, Value) {
        let response = self.client.get(self.admin_url(path)).send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    /// POSTs to `path` on the admin API: the status and the JSON body.
    pub async fn admin_post(&self, path: &str) -> (StatusCode, Value) {
        let response = self.client.post(self.admin_url(path)).send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    /// Stops the host and waits for it to drain.
    pub async fn stop(mut self) {
        let _ = self.shutdown.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap().unwrap();
    }
}

/// Reads a JSON error body and checks its shape: `error`, `route`, `delivery`.
pub async fn error_body(response: reqwest::Response) -> Value {
    let delivery_header = response
        .headers()
        .get("x-hookhost-delivery")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");
    assert!(body["route"].is_string(), "{body}");
    assert_eq!(
        body["delivery"].as_str(),
        delivery_header.as_deref(),
        "body and header name the same delivery: {body}"
    );
    body
}
