//! A local OTLP sink for the traced (b) row: accepts every
//! `POST /v1/traces` (HTTP/protobuf) on 127.0.0.1 and answers 200 without
//! decoding, so what the row measures is the host's cost of making and
//! exporting spans, not a collector's.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The sink's address and what it received.
pub struct Sink {
    pub addr: SocketAddr,
    requests: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
}

impl Sink {
    /// Listens on a free port, a thread per connection (the exporter holds
    /// one or two).
    pub fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(AtomicU64::new(0));
        let bytes = Arc::new(AtomicU64::new(0));
        let (count, size) = (requests.clone(), bytes.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (count, size) = (count.clone(), size.clone());
                std::thread::spawn(move || {
                    let mut writer = match stream.try_clone() {
                        Ok(writer) => writer,
                        Err(_) => return,
                    };
                    let mut reader = BufReader::new(stream);
                    // Keep-alive: one request after another until EOF.
                    loop {
                        let mut length = 0usize;
                        let mut line = String::new();
                        let mut lines = 0;
                        loop {
                            line.clear();
                            match reader.read_line(&mut line) {
                                Ok(0) | Err(_) => return,
                                Ok(_) => {}
                            }
                            lines += 1;
                            if line == "\r\n" {
                                break;
                            }
                            let lower = line.to_ascii_lowercase();
                            if let Some(value) = lower.strip_prefix("content-length:") {
                                length = value.trim().parse().unwrap_or(0);
                            }
                        }
                        if lines <= 1 {
                            return;
                        }
                        let mut body = vec![0; length];
                        if reader.read_exact(&mut body).is_err() {
                            return;
                        }
                        count.fetch_add(1, Ordering::Relaxed);
                        size.fetch_add(length as u64, Ordering::Relaxed);
                        let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
                        if writer.write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Ok(Self {
            addr,
            requests,
            bytes,
        })
    }

    /// The base URL for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Export requests and body bytes received so far.
    pub fn received(&self) -> (u64, u64) {
        (
            self.requests.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }
}
