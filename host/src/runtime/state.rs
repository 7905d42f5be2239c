//! What one plugin call owns inside its `Store`: the (empty) WASI context, the
//! wasi:http context with its outbound policy, the resource limiter, the
//! guest's stdout/stderr, and the host imports (`log`, `kv`, `config`).
//!
//! A `State` lives exactly as long as one delivery attempt. Its WASI context
//! grants the guest nothing: no preopened directories, no environment, no
//! arguments, no sockets (WASI clocks and random are always present). Outbound
//! HTTP goes only where the plugin's manifest allows ([`super::outbound`]).
//! Its stdout and stderr go to the host log, line by line, inside the
//! delivery's span.

use std::collections::BTreeMap;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::bindings::hookhost::plugin::kv::Error as KvError;
use super::bindings::{Level, hookhost};
use super::kv::Kv;
use super::outbound::Outbound;

/// Most bytes of stdout/stderr (each) logged per call; the rest is dropped so a
/// chatty or malicious plugin cannot flood the host log.
const OUTPUT_BUDGET: usize = 64 * 1024;
/// Most `log` import calls honoured per call, for the same reason.
const LOG_LINES_BUDGET: u32 = 1000;
/// Longest message logged from one `log` call.
const LOG_LINE_MAX: usize = 8 * 1024;

/// A plugin's `[config]` values, resolved. `Debug` shows the keys, never the
/// values: any of them may be a secret.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PluginConfig(BTreeMap<String, String>);

impl PluginConfig {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Every key and value, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl fmt::Debug for PluginConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|key| (key, "<redacted>")))
            .finish()
    }
}

impl From<BTreeMap<String, String>> for PluginConfig {
    fn from(values: BTreeMap<String, String>) -> Self {
        Self(values)
    }
}

/// Per-call store data.
pub struct State {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    /// Decides and sends the guest's outbound requests.
    outbound: Outbound,
    /// The plugin's key-value namespace.
    kv: Kv,
    /// The plugin's `[config]` values.
    config: Arc<PluginConfig>,
    table: ResourceTable,
    pub(super) limiter: Limiter,
    log_lines_left: u32,
    /// The guest's stdout and stderr, kept to point them at the delivery's
    /// span when an instance made ahead of time is handed its delivery.
    outputs: [GuestOutput; 2],
}

impl State {
    /// A state granting nothing beyond outbound HTTP as `outbound` decides,
    /// the plugin's `kv` namespace and its `config`, with `memory` bytes of
    /// linear memory at most.
    pub(super) fn new(
        memory: usize,
        outbound: Outbound,
        kv: Kv,
        config: Arc<PluginConfig>,
    ) -> Self {
        let span = tracing::Span::current();
        let outputs = [
            GuestOutput::new("stdout", span.clone()),
            GuestOutput::new("stderr", span),
        ];
        let wasi = WasiCtx::builder()
            .stdout(outputs[0].clone())
            .stderr(outputs[1].clone())
            .build();
        Self {
            wasi,
            http: WasiHttpCtx::new(),
            outbound,
            kv,
            config,
            table: ResourceTable::new(),
            limiter: Limiter::new(memory),
            log_lines_left: LOG_LINES_BUDGET,
            outputs,
        }
    }

    /// Hands a state made ahead of time (a spare instance, or one kept for
    /// reuse) to the delivery now running: outbound requests end at its
    /// `deadline`, the guest's output is logged in the current (the
    /// delivery's) span, and the per-delivery budgets start over.
    pub(super) fn arm(&mut self, deadline: std::time::Instant) {
        self.outbound.set_deadline(deadline);
        for output in &self.outputs {
            output.start_delivery(tracing::Span::current());
        }
        self.log_lines_left = LOG_LINES_BUDGET;
        // A guest that survived a refused `memory.grow` (and answered) must
        // not have the next delivery's trap blamed on memory.
        self.limiter.memory_exceeded = false;
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

impl hookhost::plugin::types::Host for State {}

impl hookhost::plugin::kv::Host for State {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, KvError> {
        self.kv.get(key).await
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), KvError> {
        self.kv.set(key, value).await
    }

    async fn delete(&mut self, key: String) -> Result<bool, KvError> {
        self.kv.delete(key).await
    }

    async fn list_keys(&mut self, prefix: String) -> Result<Vec<String>, KvError> {
        self.kv.list_keys(prefix).await
    }

    async fn increment(&mut self, key: String, delta: i64) -> Result<i64, KvError> {
        self.kv.increment(key, delta).await
    }
}

impl hookhost::plugin::config::Host for State {
    async fn get(&mut self, key: String) -> Option<String> {
        self.config.get(&key).map(str::to_owned)
    }

    async fn get_all(&mut self) -> Vec<(String, String)> {
        self.config
            .iter()
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect()
    }
}

impl hookhost::plugin::log::Host for State {
    async fn log(&mut self, level: Level, message: String) {
        if self.log_lines_left == 0 {
            return;
        }
        self.log_lines_left -= 1;
        if self.log_lines_left == 0 {
            tracing::warn!(
                target: "hookhost::plugin",
                "plugin logged {LOG_LINES_BUDGET} lines; further lines from this call are dropped"
            );
            return;
        }
        // One call, one line: a plugin logging sender data must not be able
        // to forge host log lines.
        let message = truncate(&message, LOG_LINE_MAX)
            .replace('\n', "\\n")
            .replace('\r', "\\r");
        // The delivery span (plugin, delivery id) is current here, so every line
        // is tagged without repeating the fields.
        match level {
            Level::Trace => tracing::trace!(target: "hookhost::plugin", "{message}"),
            Level::Debug => tracing::debug!(target: "hookhost::plugin", "{message}"),
            Level::Info => tracing::info!(target: "hookhost::plugin", "{message}"),
            Level::Warn => tracing::warn!(target: "hookhost::plugin", "{message}"),
            Level::Error => tracing::error!(target: "hookhost::plugin", "{message}"),
        }
    }
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Caps linear memory and remembers whether the cap was what stopped a
/// `memory.grow`, because the resulting trap does not say so: a Rust guest whose
/// allocation fails aborts with `unreachable`, indistinguishable from a panic.
///
/// The cap is on the instance, not on each memory: a component with several
/// linear memories shares one budget across all of them.
pub(super) struct Limiter {
    limits: StoreLimits,
    memory: usize,
    /// Bytes of linear memory granted so far, across every memory.
    used: usize,
    pub(super) memory_exceeded: bool,
}

impl Limiter {
    fn new(memory: usize) -> Self {
        Self {
            limits: StoreLimitsBuilder::new()
                .memory_size(memory)
                // A handler component is a handful of core instances; these
                // bounds only stop a pathological component early.
                .instances(64)
                .tables(64)
                .memories(16)
                .build(),
            memory,
            used: 0,
            memory_exceeded: false,
        }
    }
}

impl Limiter {
    /// Whether the instance holds more than half its memory cap: linear
    /// memory never shrinks, so an instance kept for reuse that got there
    /// is retired before a slow leak ends a delivery at the cap.
    pub(super) fn past_half(&self) -> bool {
        self.used > self.memory / 2
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.used.saturating_add(desired.saturating_sub(current));
        if total > self.memory {
            self.memory_exceeded = true;
            return Ok(false);
        }
        let granted = self.limits.memory_growing(current, desired, maximum)?;
        if granted {
            self.used = total;
        }
        Ok(granted)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

/// A guest's stdout or stderr: complete lines go to the host log inside the
/// span of the delivery that wrote them.
///
/// Why not `MemoryOutputPipe`: writes past its capacity fail, and a Rust guest
/// whose `println!` fails panics, so a chatty plugin would trap. Here the
/// excess is dropped silently instead.
#[derive(Clone)]
struct GuestOutput {
    inner: Arc<Mutex<LineBuffer>>,
}

struct LineBuffer {
    stream: &'static str,
    span: tracing::Span,
    pending: Vec<u8>,
    budget: usize,
}

impl GuestOutput {
    fn new(stream: &'static str, span: tracing::Span) -> Self {
        Self {
            inner: Arc::new(Mutex::new(LineBuffer {
                stream,
                span,
                pending: Vec::new(),
                budget: OUTPUT_BUDGET,
            })),
        }
    }

    /// Output from now on belongs to the delivery of `span`: a line the
    /// previous delivery left unfinished is logged in its own span first.
    fn start_delivery(&self, span: tracing::Span) {
        let mut buffer = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if !buffer.pending.is_empty() {
            let rest = std::mem::take(&mut buffer.pending);
            buffer.emit(&rest);
        }
        buffer.span = span;
        buffer.budget = OUTPUT_BUDGET;
    }

    fn write_bytes(&self, bytes: &[u8]) {
        let mut buffer = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        buffer.write(bytes);
    }
}

impl LineBuffer {
    fn write(&mut self, bytes: &[u8]) {
        if self.budget == 0 {
            return;
        }
        let take = bytes.len().min(self.budget);
        self.budget -= take;
        self.pending.extend_from_slice(&bytes[..take]);
        while let Some(newline) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=newline).collect();
            self.emit(&line[..line.len() - 1]);
        }
        if self.budget == 0 {
            let rest = std::mem::take(&mut self.pending);
            self.emit(&rest);
            let _entered = self.span.enter();
            tracing::warn!(
                target: "hookhost::plugin",
                stream = self.stream,
                "plugin wrote more than {OUTPUT_BUDGET} bytes; the rest is dropped"
            );
        }
    }

    fn emit(&self, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        let line = line.trim_end_matches('\r');
        let _entered = self.span.enter();
        tracing::info!(target: "hookhost::plugin", stream = self.stream, "{line}");
    }
}

impl Drop for LineBuffer {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.emit(&rest);
        }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_bytes(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Always ready: writes never block, excess is dropped.
        Ok(1 << 20)
    }
}

impl Pollable for GuestOutput {
    fn ready<'a, 'b>(&'a mut self) -> Pin<Box<dyn Future<Output = ()> + Send + 'b>>
    where
        'a: 'b,
    {
        Box::pin(async {})
    }
}

impl tokio::io::AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.write_bytes(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}
