//! The compile cache every test host of this run shares.

use std::path::{Path, PathBuf};

use hookhost::runtime::{Runtime, RuntimeConfig};

/// Compiled code shared by every test host of this test run, so each plugin is
/// compiled by Cranelift once, not once per test.
pub fn shared_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hookhost-test-cache")
}

/// A runtime (engine, pool, compile cache) configured as a test host's,
/// with `max_concurrency` instance slots (test hosts have 16), for tests that
/// load components without a host.
pub fn test_runtime(max_concurrency: u32, cache_dir: Option<PathBuf>) -> Runtime {
    Runtime::new(&RuntimeConfig {
        max_concurrency,
        spare_instances: hookhost::config::DEFAULT_SPARE_INSTANCES,
        cache_dir,
        outbound: Default::default(),
        kv: None,
    })
    .unwrap()
}

/// Compiles the component at `wasm` into [`shared_cache`] once per test run,
/// before a host loads it: the first caller compiles, concurrent callers for
/// the same file wait for it. Python and JavaScript components take 15-20 s
/// to compile; without this, tests starting at once would each compile them
/// (and a host's start-up could outlast [`TestHost`]'s patience).
pub async fn precompile(wasm: &str) {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    static COMPILED: Mutex<Option<HashMap<String, Arc<OnceLock<()>>>>> = Mutex::new(None);
    let once = COMPILED
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .entry(wasm.to_owned())
        .or_default()
        .clone();
    let wasm = wasm.to_owned();
    tokio::task::spawn_blocking(move || {
        once.get_or_init(|| {
            // The same engine settings as every test host (the pool size
            // included), so the cache entry is the one they look up.
            let runtime = test_runtime(16, Some(shared_cache()));
            let bytes = std::fs::read(&wasm).unwrap_or_else(|err| panic!("read {wasm}: {err}"));
            if let Err(err) = runtime.prepare(Path::new(&wasm), &bytes) {
                panic!("{wasm} does not load: {err:#}");
            }
        });
    })
    .await
    .unwrap();
}
