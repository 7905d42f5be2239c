//! Who may use the admin API. Without `--admin-token` it is served only on
//! loopback ([`check_bind`] refuses anything else at start) and asks for no
//! credential, but only to requests that are really for a loopback address
//! and not sent by a web page of another site ([`same_machine`]); with a
//! token every request must carry it as a bearer token, compared in
//! constant time by [`Token::admits`].
//!
//! Why the checks without a token: a browser on the operator's machine
//! reaches loopback too. A page of another site could send it POSTs
//! (reload, replay), and through DNS rebinding (its own name re-pointed at
//! 127.0.0.1) even read events. A rebound request still names the other
//! site in `Host`; a cross-site one says so in `Origin` or `Sec-Fetch-Site`.
//! With a token neither can succeed: a page cannot add the `Authorization`
//! header to a cross-site request without a CORS preflight, which the API
//! never grants.

use std::net::SocketAddr;

use http::{HeaderMap, Uri, header};

use super::Refusal;
use crate::secret::Token;

/// Admits a request carrying `token` (when one is required) in its
/// `Authorization` header; without a token, one for a loopback `Host` that
/// is not cross-site.
pub(super) fn authorize(
    token: Option<&Token>,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<(), Refusal> {
    let Some(token) = token else {
        return same_machine(headers, uri);
    };
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|value| value.as_bytes());
    if token.admits(authorization) {
        Ok(())
    } else {
        Err(Refusal::Unauthorized)
    }
}

/// Without a token: the request's `Host` (or HTTP/2 `:authority`) must be
/// `localhost` or a loopback address, with any port; an `Origin` must be
/// that same host over `http`; `Sec-Fetch-Site` must not be `cross-site` or
/// `same-site` (a page on another loopback port).
fn same_machine(headers: &HeaderMap, uri: &Uri) -> Result<(), Refusal> {
    // Both when both are given (an absolute-form HTTP/1 target, or HTTP/2
    // with a `Host` header too): neither may name another site.
    let from_header = headers
        .get(header::HOST)
        .map(|value| value.to_str().unwrap_or("(not text)"));
    let from_uri = uri.authority().map(|authority| authority.as_str());
    let refuse = |host: Option<&str>| {
        Refusal::Forbidden(format!(
            "the admin API without --admin-token answers only requests for localhost or \
             a loopback address such as 127.0.0.1 or [::1] (Host was {}); use one of those, or set --admin-token",
            host.map_or("missing".to_owned(), |host| format!(
                "\"{}\"",
                host.escape_debug()
            ))
        ))
    };
    let Some(host) = from_header.or(from_uri) else {
        return Err(refuse(None));
    };
    if let Some(other) = [from_header, from_uri]
        .into_iter()
        .flatten()
        .find(|host| !is_loopback_host(host))
    {
        return Err(refuse(Some(other)));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let same = origin
            .to_str()
            .ok()
            .and_then(|origin| origin.strip_prefix("http://"))
            .is_some_and(|origin| origin.eq_ignore_ascii_case(host));
        if !same {
            return Err(Refusal::Forbidden(format!(
                "cross-site request refused: Origin {:?} is not http://{host}; \
                 the admin API does not serve web pages of other sites",
                String::from_utf8_lossy(origin.as_bytes())
            )));
        }
    }
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.as_bytes();
        if site.eq_ignore_ascii_case(b"cross-site") || site.eq_ignore_ascii_case(b"same-site") {
            return Err(Refusal::Forbidden(format!(
                "cross-site request refused (Sec-Fetch-Site: {}); \
                 the admin API does not serve web pages of other sites",
                String::from_utf8_lossy(site)
            )));
        }
    }
    Ok(())
}

/// `localhost` or a loopback address (`127.0.0.1`, any of 127.0.0.0/8 the
/// API may be bound to, `[::1]`), each with an optional port. An address
/// cannot be a rebound name, so any loopback one is as safe as 127.0.0.1.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        // `[::1]` alone has colons inside the brackets: split only after `]`.
        Some((name, port)) if !port.contains(']') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    };
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let address = match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().map(std::net::IpAddr::V6),
        None => name.parse::<std::net::Ipv4Addr>().map(std::net::IpAddr::V4),
    };
    address.is_ok_and(|address| address.is_loopback())
}

/// Refuses to serve the API unauthenticated anywhere but on loopback.
pub fn check_bind(addr: SocketAddr, token: Option<&Token>) -> anyhow::Result<()> {
    if token.is_none() && !addr.ip().is_loopback() {
        anyhow::bail!(
            "refusing to serve the admin API on {addr} without a token: anyone who can reach it \
             could read and replay events. Bind it to 127.0.0.1 or set --admin-token env:VAR"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    http::HeaderName::from_static(name),
                    http::HeaderValue::from_static(value),
                )
            })
            .collect()
    }

    #[test]
    fn loopback_hosts_with_any_port() {
        for host in [
            "localhost",
            "LocalHost:9090",
            "127.0.0.1",
            "127.0.0.1:9090",
            "[::1]",
            "[::1]:9090",
            "127.0.0.2:9090",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:9090",
            "127.0.0.1.evil.example",
            "localhost.evil.example:80",
            "[::1]x",
            "::1",
            "10.0.0.1",
            "[::2]",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn without_a_token_only_same_machine_requests() {
        let uri = Uri::from_static("/events");
        let ok = |pairs| authorize(None, &headers(pairs), &uri).is_ok();
        assert!(ok(&[("host", "127.0.0.1:9090")]));
        assert!(ok(&[
            ("host", "127.0.0.1:9090"),
            ("origin", "http://127.0.0.1:9090"),
            ("sec-fetch-site", "same-origin"),
        ]));
        assert!(!ok(&[("host", "rebound.example:9090")]));
        assert!(!ok(&[]), "no Host at all");
        assert!(!ok(&[
            ("host", "127.0.0.1:9090"),
            ("origin", "https://evil.example")
        ]));
        assert!(!ok(&[("host", "127.0.0.1:9090"), ("origin", "null")]));
        assert!(!ok(&[
            ("host", "127.0.0.1:9090"),
            ("origin", "http://localhost:3000")
        ]));
        assert!(!ok(&[
            ("host", "127.0.0.1:9090"),
            ("sec-fetch-site", "cross-site")
        ]));
        // HTTP/2 carries the host in `:authority`, which hyper puts in the URI.
        let h2 = Uri::from_static("http://[::1]:9090/events");
        assert!(authorize(None, &HeaderMap::new(), &h2).is_ok());
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        let token = Token::new("t0k3n");
        let with = |value: &'static str| {
            authorize(
                Some(&token),
                &headers(&[("authorization", value)]),
                &Uri::from_static("/"),
            )
            .is_ok()
        };
        assert!(with("Bearer t0k3n"));
        assert!(with("bearer t0k3n"));
        assert!(with("BEARER t0k3n"));
        assert!(!with("Bearer T0K3N"), "the token itself is exact");
        assert!(!with("Basic t0k3n"));
        assert!(!with("Bearert0k3n"));
    }

    #[test]
    fn only_loopback_without_a_token() {
        let token = Token::new("t");
        assert!(check_bind("127.0.0.1:9000".parse().unwrap(), None).is_ok());
        assert!(check_bind("[::1]:9000".parse().unwrap(), None).is_ok());
        let err = check_bind("0.0.0.0:9000".parse().unwrap(), None).unwrap_err();
        assert!(err.to_string().contains("--admin-token"), "{err}");
        assert!(check_bind("0.0.0.0:9000".parse().unwrap(), Some(&token)).is_ok());
    }
}
