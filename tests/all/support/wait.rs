//! Waiting for what happens in the background (reloads, workers).

use std::time::{Duration, Instant};

/// Calls `check` until it returns `Some`, every 10 ms for up to `timeout`;
/// panics naming `what` if it never does.
pub async fn eventually<T, F>(timeout: Duration, what: &str, mut check: impl FnMut() -> F) -> T
where
    F: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
