//! Test harness: a real host on 127.0.0.1:0 with a temporary plugin folder,
//! real compiled plugins, and a real HTTP client. What more than one test
//! file uses lives here; a helper only one file needs stays in that file.
//!
//! # Layout
//!
//! - [`folder`]: the plugin folder a host serves ([`Plugin`], [`install`],
//!   [`deploy`], [`with_nonce`], [`folders`]).
//! - [`cache`]: the compile cache the whole run shares ([`shared_cache`],
//!   [`precompile`]).
//! - [`host`]: [`TestHost`], the host running in-process, and
//!   [`error_body`].
//! - [`binary`]: [`Binary`], the real `hookhost` process.
//! - [`outbound`]: [`LocalServer`], for plugins to call out to.
//! - [`wait`]: [`eventually`].

mod binary;
mod cache;
mod folder;
mod host;
mod outbound;
mod wait;

pub use binary::Binary;
pub use cache::{precompile, shared_cache};
pub use folder::{Plugin, deploy, folders, install, plugin, plugin_with, with_nonce};
pub use host::{TestHost, error_body};
pub use outbound::LocalServer;
pub use wait::eventually;
