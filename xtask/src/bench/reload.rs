//! (d) hot reload: how long from renaming a new version of a plugin into the
//! watched folder to the first answer of that version, on the first hookhost
//! once the sync runs are over (so it is idle).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::bail;

use super::Plan;
use super::binaries::Binaries;
use super::http::post;
use super::server::Server;

/// (d): renames a new version of a plugin into the folder `plan.swaps` times
/// (alternately echo and github, each with a fresh custom section so it is
/// really compiled, never found in the cache) and times each rename to the
/// first request the new version answers.
pub fn measure(
    plan: &Plan,
    host: &Server,
    plugins: &Path,
    bins: &Binaries,
) -> anyhow::Result<Vec<Duration>> {
    // echo answers `ping` with `ping`; github without X-GitHub-Event rejects
    // (4xx): each version is recognisable from one request.
    let versions = [(&bins.echo, true), (&bins.github, false)];
    let is_version = |echo: bool, answer: &(u16, Vec<u8>)| {
        if echo {
            answer.0 == 200 && answer.1 == b"ping"
        } else {
            (400..500).contains(&answer.0) && answer.0 != 404
        }
    };
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut times = Vec::new();
    // Round 0 only puts the first version in place; it is not timed.
    for round in 0..=plan.swaps {
        let (wasm, echo) = versions[round % 2];
        let bytes = with_nonce(&std::fs::read(wasm)?, seed.wrapping_add(round as u64));
        let staged = plugins.join(".live.wasm.tmp");
        std::fs::write(&staged, &bytes)?;
        let renamed = Instant::now();
        std::fs::rename(&staged, plugins.join("live.wasm"))?;
        loop {
            if let Ok(answer) = post(host.addr, "/hooks/live", &[], b"ping")
                && is_version(echo, &answer)
            {
                break;
            }
            if renamed.elapsed() > Duration::from_secs(60) {
                bail!(
                    "version {round} of /hooks/live never answered (log: {})",
                    host.log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        if round > 0 {
            times.push(renamed.elapsed());
            eprintln!("(d) swap {round}/{}: {:?}", plan.swaps, renamed.elapsed());
        }
        // Let the watcher's debounce window close before the next rename.
        std::thread::sleep(Duration::from_millis(300));
    }
    Ok(times)
}

/// `wasm` with a custom section appended: the same code, different bytes
/// (so a different compile-cache key and a real compile).
fn with_nonce(wasm: &[u8], nonce: u64) -> Vec<u8> {
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
    let name = b"hookhost-bench-nonce";
    let mut payload = Vec::new();
    leb128(name.len(), &mut payload);
    payload.extend_from_slice(name);
    payload.extend_from_slice(&nonce.to_le_bytes());
    let mut bytes = wasm.to_vec();
    bytes.push(0); // custom section id
    leb128(payload.len(), &mut bytes);
    bytes.extend_from_slice(&payload);
    bytes
}
