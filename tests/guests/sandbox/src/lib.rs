//! Tries what a plugin must not be able to do without being granted it, and
//! answers `200` with one outcome per attempt, each `"allowed…"` or
//! `"denied: <error>"`:
//!
//! ```json
//! {"dns_lookup":"denied: …","env_home":"denied: …","env_vars":"denied: …",
//!  "fs_read":"denied: …","fs_read_dir":"denied: …","http_request":"denied: …",
//!  "tcp_connect":"denied: …"}
//! ```
//!
//! The body names a listener (`127.0.0.1:PORT`) that both the socket and the
//! outbound HTTP request (`http://127.0.0.1:PORT/`, through wasi:http) aim
//! at. A host that grants nothing shows `denied` everywhere.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use hookhost_sdk::{Delivery, Response, Result};

fn outcome<T, E: Display>(
    result: std::result::Result<T, E>,
    describe: impl FnOnce(T) -> String,
) -> String {
    match result {
        Ok(value) => format!("allowed: {}", describe(value)),
        Err(err) => format!("denied: {err}"),
    }
}

struct Sandbox;

impl hookhost_sdk::Handler for Sandbox {
    fn handle(delivery: Delivery) -> Result<Response> {
        // The test passes the address of a real listener on the host, so a
        // connection that got through would be seen on the other side.
        let target: std::net::SocketAddr = delivery
            .body_str()
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or_else(|| ([127, 0, 0, 1], 1).into());
        let mut outcomes = BTreeMap::new();
        outcomes.insert(
            "fs_read",
            outcome(std::fs::read("/etc/passwd"), |bytes| {
                format!("read {} bytes of /etc/passwd", bytes.len())
            }),
        );
        outcomes.insert(
            "fs_read_dir",
            outcome(std::fs::read_dir("."), |entries| {
                format!("listed {} entries of .", entries.count())
            }),
        );
        let vars: Vec<String> = std::env::vars().map(|(name, _)| name).collect();
        outcomes.insert(
            "env_vars",
            if vars.is_empty() {
                "denied: no environment variables visible".to_owned()
            } else {
                format!("allowed: {}", vars.join(","))
            },
        );
        outcomes.insert(
            "env_home",
            outcome(std::env::var("HOME"), |home| format!("HOME={home}")),
        );
        // A refused connection still means the socket was allowed.
        outcomes.insert(
            "tcp_connect",
            match TcpStream::connect_timeout(&target, Duration::from_secs(1)) {
                Ok(_) => format!("allowed: connected to {target}"),
                Err(err) if err.kind() == std::io::ErrorKind::ConnectionRefused => {
                    format!("allowed: reached {target} ({err})")
                }
                Err(err) => format!("denied: {err}"),
            },
        );
        // Outbound HTTP is linked for every plugin; without `[allow] http`
        // the host must refuse it before anything is sent.
        outcomes.insert(
            "http_request",
            match hookhost_sdk::http::get(&format!("http://{target}/")).send() {
                Ok(response) => format!("allowed: answered {}", response.status),
                Err(err) if err.is_denied() => format!("denied: {err}"),
                Err(err) => format!("allowed: sent, then failed ({err})"),
            },
        );
        outcomes.insert(
            "dns_lookup",
            // `localhost`: even if lookups were allowed, no query leaves the machine.
            outcome("localhost:443".to_socket_addrs(), |addrs| {
                format!("{} addresses", addrs.count())
            }),
        );
        Response::json(&outcomes)
    }
}

hookhost_sdk::export!(Sandbox);
