//! What one plugin call owns inside its `Store`: the (empty) WASI context, the
//! wasi:http context with its outbound policy, the resource limiter, the
//! guest's stdout/stderr, and the host imports (`log`, `kv`, `config`).
//!
//! What the host holds on the guest's behalf (resource-table entries,
//! wasi:http `fields`, requests, streams) lives outside its linear memory,
//! so it is bounded three ways: at most [`MAX_TABLE_ENTRIES`] entries, at
//! most [`MAX_FIELDS_SIZE`] bytes per `fields`, and, across everything,
//! counted against the plugin's memory cap with its linear memory
//! ([`Limiter::charge_host`]): a guest whose host-side allocations plus
//! linear memory pass its cap fails like one whose `memory.grow` did.
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
/// chatty or malicious plugin cannot flood the host log. Lines wholly inside
/// it are logged; the one that crosses it becomes one marker line.
const OUTPUT_BUDGET: usize = 64 * 1024;
/// Most `log` import calls honoured per call, for the same reason; the next
/// one is replaced by a "log budget exhausted" marker, the rest dropped.
const LOG_LINES_BUDGET: u32 = 1000;
/// Longest message logged from one `log` call.
const LOG_LINE_MAX: usize = 8 * 1024;
/// Most resource-table entries (streams, pollables, wasi:http fields,
/// requests, responses) one instance may hold at once. A handler uses a few
/// dozen; each costs host memory the linear-memory cap does not see.
pub const MAX_TABLE_ENTRIES: usize = 4096;
/// Most bytes of one wasi:http `fields` (header names and values, counted
/// as wasmtime-wasi-http does). Far above real request headers (8 KiB is a
/// common proxy limit), low enough that many of them stay bounded.
pub const MAX_FIELDS_SIZE: usize = 64 * 1024;
/// What one resource-table entry is charged against the memory cap beyond
/// its contents: the entry, its box and bookkeeping (measured on the order
/// of 100-200 bytes; rounded up).
const TABLE_ENTRY_CHARGE: usize = 256;
/// What one header entry of a `fields` is charged beyond its name and
/// value bytes (the `HeaderMap` slot and index).
const HEADER_ENTRY_CHARGE: usize = 64;

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
    /// `log` lines this call may still log; `None` once the budget was
    /// crossed and its marker logged.
    log_lines_left: Option<u32>,
    /// The guest's stdout and stderr, kept to point them at the delivery's
    /// span when an instance made ahead of time is handed its delivery.
    outputs: [GuestOutput; 2],
    /// The delay the running call asked for with `queue.retry-after`, if
    /// any; taken by [`super::Runtime::call`] when the call ends.
    pub(super) retry_after: Option<std::time::Duration>,
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
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(MAX_FIELDS_SIZE);
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_TABLE_ENTRIES);
        Self {
            wasi,
            http,
            outbound,
            kv,
            config,
            table,
            limiter: Limiter::new(memory),
            log_lines_left: Some(LOG_LINES_BUDGET),
            outputs,
            retry_after: None,
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
        self.log_lines_left = Some(LOG_LINES_BUDGET);
        // A hint is one call's: the previous delivery's must not delay this one.
        self.retry_after = None;
        // A guest that survived a refused `memory.grow` (and answered) must
        // not have the next delivery's trap blamed on memory.
        self.limiter.memory_exceeded = false;
    }
}

impl State {
    /// Counts what the resource table holds against the memory cap (see
    /// [`Limiter::charge_host`]). Called before every WASI and wasi:http
    /// host call, which is where the table grows; once over the cap the
    /// table takes no new entries and every `fields` refuses to grow, and
    /// the epoch callback ends the call within a tick.
    fn charge_host_memory(&mut self) {
        let mut bytes = 0usize;
        let mut entries = 0usize;
        for entry in self.table.iter_mut() {
            entries += 1;
            if let Some(fields) = entry.downcast_ref::<wasmtime_wasi_http::FieldMap>() {
                bytes = bytes.saturating_add(fields_size(fields));
            }
        }
        bytes = bytes.saturating_add(entries.saturating_mul(TABLE_ENTRY_CHARGE));
        if !self.limiter.charge_host(bytes) {
            self.table.set_max_capacity(entries);
            for entry in self.table.iter_mut() {
                if let Some(fields) = entry.downcast_mut::<wasmtime_wasi_http::FieldMap>() {
                    fields.set_immutable();
                }
            }
        }
    }
}

/// Host bytes one `fields` holds: names, values and per-entry overhead.
fn fields_size(fields: &wasmtime_wasi_http::FieldMap) -> usize {
    fields
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + HEADER_ENTRY_CHARGE)
        .sum()
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.charge_host_memory();
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        self.charge_host_memory();
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

impl hookhost::plugin::queue::Host for State {
    async fn retry_after(&mut self, delay_ms: u64) {
        self.retry_after = Some(std::time::Duration::from_millis(delay_ms));
    }
}

impl hookhost::plugin::log::Host for State {
    async fn log(&mut self, level: Level, message: String) {
        match &mut self.log_lines_left {
            // Over budget, the marker already said so.
            None => return,
            // The line past the budget: one marker instead of it, saying
            // truthfully how many lines were logged.
            Some(0) => {
                self.log_lines_left = None;
                tracing::warn!(
                    target: "hookhost::plugin",
                    "log budget exhausted: plugin logged {LOG_LINES_BUDGET} lines; \
                     further lines from this call are dropped"
                );
                return;
            }
            Some(left) => *left -= 1,
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
    /// Bytes the host holds for the guest (resource table, fields), as
    /// last counted: they share the cap with linear memory.
    host: usize,
    pub(super) memory_exceeded: bool,
    /// The host-side count passed the cap: the call must end (the epoch
    /// callback traps). Unlike a refused `memory.grow`, which a guest may
    /// survive, nothing the guest does next can bring this back under.
    pub(super) host_exceeded: bool,
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
            host: 0,
            memory_exceeded: false,
            host_exceeded: false,
        }
    }
}

impl Limiter {
    /// Whether the instance holds more than half its memory cap: linear
    /// memory never shrinks, so an instance kept for reuse that got there
    /// is retired before a slow leak ends a delivery at the cap.
    pub(super) fn past_half(&self) -> bool {
        self.used.saturating_add(self.host) > self.memory / 2
    }

    /// Records that the host now holds `bytes` for the guest; says whether
    /// that and its linear memory still fit the cap. When they do not, the
    /// call is over: `memory_exceeded` is set, which the epoch callback
    /// turns into a trap and the call's classification into "memory limit".
    pub(super) fn charge_host(&mut self, bytes: usize) -> bool {
        self.host = bytes;
        if self.used.saturating_add(bytes) > self.memory {
            self.memory_exceeded = true;
            self.host_exceeded = true;
            return false;
        }
        true
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
        if total.saturating_add(self.host) > self.memory {
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
    /// The budget was crossed and the marker logged: the rest is dropped.
    exhausted: bool,
}

impl GuestOutput {
    fn new(stream: &'static str, span: tracing::Span) -> Self {
        Self {
            inner: Arc::new(Mutex::new(LineBuffer {
                stream,
                span,
                pending: Vec::new(),
                budget: OUTPUT_BUDGET,
                exhausted: false,
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
        buffer.exhausted = false;
    }

    fn write_bytes(&self, bytes: &[u8]) {
        let mut buffer = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        buffer.write(bytes);
    }
}

impl LineBuffer {
    /// Logs every complete line that fits the budget. The write that
    /// crosses it is replaced, with the unfinished line before it, by one
    /// "output budget exhausted" marker: a line cut short would read as if
    /// the plugin had written it that way.
    fn write(&mut self, bytes: &[u8]) {
        if self.exhausted {
            return;
        }
        let take = bytes.len().min(self.budget);
        self.budget -= take;
        self.pending.extend_from_slice(&bytes[..take]);
        while let Some(newline) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=newline).collect();
            self.emit(&line[..line.len() - 1]);
        }
        if take < bytes.len() {
            self.pending.clear();
            self.exhausted = true;
            let _entered = self.span.enter();
            tracing::warn!(
                target: "hookhost::plugin",
                stream = self.stream,
                "output budget exhausted: plugin wrote more than {OUTPUT_BUDGET} bytes; \
                 the line that crossed it and the rest are dropped"
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
