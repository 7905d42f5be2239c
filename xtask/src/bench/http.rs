//! The bench's own HTTP/1.1 client, just enough to probe a route, time a
//! call and read `/metrics`: a POST (or GET) written whole, one answer read to its Content-Length. The
//! load itself comes from [`super::wrk`].

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context as _, bail};

/// One HTTP/1.1 POST on a fresh connection: (status, body).
pub fn post(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> anyhow::Result<(u16, Vec<u8>)> {
    let mut stream = connect(addr)?;
    stream.write_all(&post_request(addr, path, headers, body, false))?;
    let mut answer = Vec::new();
    let (status, body_start) = read_answer(&mut stream, &mut answer)?;
    Ok((status, answer.split_off(body_start)))
}

/// One HTTP/1.1 GET on a fresh connection: (status, body).
pub fn get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, Vec<u8>)> {
    let mut stream = connect(addr)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    let (status, body_start) = read_answer(&mut stream, &mut answer)?;
    Ok((status, answer.split_off(body_start)))
}

/// A connection to `addr`, with timeouts so that a stuck server fails the run.
pub fn connect(addr: SocketAddr) -> anyhow::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    Ok(stream)
}

/// A POST of `body` to `path`, whole; `keep_alive` leaves the connection
/// open for the next one.
pub fn post_request(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
    keep_alive: bool,
) -> Vec<u8> {
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: {connection}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        let _ = write!(request, "{name}: {value}\r\n");
    }
    request.push_str("\r\n");
    let mut request = request.into_bytes();
    request.extend_from_slice(body);
    request
}

/// Reads one HTTP/1.1 answer into `buffer`: its status and where its body
/// starts. The body is read to its Content-Length (so a keep-alive
/// connection can carry on), or to the end of the connection without one.
/// Bodies here are small and never chunked.
pub fn read_answer(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> anyhow::Result<(u16, usize)> {
    buffer.clear();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            bail!("connection closed before the answer's head");
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status")?;
    let length: Option<usize> = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())?
    });
    let body_start = head_end + 4;
    loop {
        if length.is_some_and(|length| buffer.len() >= body_start + length) {
            break;
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            if length.is_some() {
                bail!("connection closed inside the answer's body");
            }
            break;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    Ok((status, body_start))
}
