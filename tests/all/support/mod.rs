//! Test harness: a real host on 127.0.0.1:0 with a temporary plugin folder,
//! real compiled plugins, and a real HTTP client. What more than one test
//! file uses lives here; a helper only one file needs stays in that file.
//!
//! # Layout
//!
//! - [`folder`]: the plugin folder a host serves ([`Plugin`] with its files,
//!   [`install`], [`deploy`], [`with_nonce`], [`folders`]).
//! - [`cache`]: the compile cache the whole run shares ([`shared_cache`],
//!   [`precompile`], [`test_runtime`]).
//! - [`host`]: [`TestHost`], the host running in-process, its requests
//!   (plain, with a delivery id, signed, to the admin API) and
//!   [`error_body`].
//! - [`binary`]: [`Binary`], the real `hookhost` process; the commands
//!   ([`hookhost`], [`serve_command`]) and a [`blocking`] client.
//! - [`signing`]: signing as senders do ([`unix_now`], [`with_headers`]).
//! - [`events`]: events on the admin API ([`event`], [`wait_for`],
//!   [`json_header`]).
//! - [`outbound`]: [`LocalServer`], for plugins to call out to, and
//!   [`KeyServer`], HTTPS for the keys and confirmations the host fetches.
//! - [`otlp`]: [`OtlpReceiver`], a collector decoding exported traces
//!   (HTTP/protobuf and gRPC), and [`attribute`].
//! - [`pg`]: [`TestDb`], a PostgreSQL database of the test's own.
//! - [`wait`]: [`eventually`], for what happens in the background.

mod binary;
mod cache;
mod events;
mod folder;
mod host;
mod otlp;
mod outbound;
mod pg;
mod signing;
mod wait;

pub use binary::{Binary, blocking, hookhost, hookhost_command, serve_command};
pub use cache::{precompile, shared_cache, test_runtime};
pub use events::{event, json_header, wait_for};
pub use folder::{Plugin, deploy, folders, install, plugin, plugin_with, with_nonce};
pub use host::{TestHost, error_body};
pub use otlp::{OtlpReceiver, attribute};
pub use outbound::{KeyServer, LocalServer};
pub use pg::TestDb;
pub use signing::{unix_now, with_headers};
pub use wait::eventually;
