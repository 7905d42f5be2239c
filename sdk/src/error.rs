//! Making and reading [`HandlerError`]s, and the conversions that let `?` work
//! on the errors a handler commonly meets.

use crate::HandlerError;

/// A transient failure: the host may deliver the same event again later
/// (answered 503 in sync mode; retried with backoff in queue mode).
///
/// ```
/// # fn send(_: &[u8]) -> Result<(), String> { Err("connection refused".into()) }
/// # fn f(body: &[u8]) -> hookhost_sdk::Result<()> {
/// send(body).map_err(|err| hookhost_sdk::retry(format!("billing is down: {err}")))?;
/// # Ok(()) }
/// ```
pub fn retry(message: impl Into<String>) -> HandlerError {
    HandlerError::Retry(message.into())
}

/// A transient failure that knows when to try again: like [`retry`], and
/// the host makes the next attempt `after` from now instead of after its own
/// backoff (capped at the manifest's `[retry] max`; in sync mode the 503
/// carries `Retry-After`). For a downstream that said when it is back, as an
/// HTTP `Retry-After` or a rate limit's reset.
///
/// The hint is sent to the host when this is called (the `queue.retry-after`
/// import): return the error it makes from this delivery's `handle`. Off
/// WebAssembly (native unit tests) there is no host and the hint is dropped.
///
/// ```
/// # use std::time::Duration;
/// # fn f() -> hookhost_sdk::Result<()> {
/// return Err(hookhost_sdk::retry_after("rate limited by the CRM", Duration::from_secs(30)));
/// # }
/// ```
pub fn retry_after(message: impl Into<String>, after: std::time::Duration) -> HandlerError {
    let millis = u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
    #[cfg(target_arch = "wasm32")]
    crate::__bindings::hookhost::plugin::queue::retry_after(millis);
    #[cfg(not(target_arch = "wasm32"))]
    let _ = millis;
    retry(message)
}

/// A permanent failure: trying the same delivery again will not help
/// (answered 422 in sync mode; dead-lettered in queue mode).
///
/// ```
/// # fn f(delivery: hookhost_sdk::Delivery) -> hookhost_sdk::Result<()> {
/// let event = delivery
///     .header("x-github-event")
///     .ok_or_else(|| hookhost_sdk::reject("missing X-GitHub-Event header"))?;
/// # Ok(()) }
/// ```
pub fn reject(message: impl Into<String>) -> HandlerError {
    HandlerError::Reject(message.into())
}

impl HandlerError {
    /// The message, whichever the kind.
    pub fn message(&self) -> &str {
        match self {
            HandlerError::Retry(message) | HandlerError::Reject(message) => message,
        }
    }

    /// Whether the host should try this delivery again later.
    pub fn is_retry(&self) -> bool {
        matches!(self, HandlerError::Retry(_))
    }

    /// Whether this delivery failed for good.
    pub fn is_reject(&self) -> bool {
        matches!(self, HandlerError::Reject(_))
    }
}

/// JSON that does not parse or does not fit the expected type will not get
/// better on a retry: a `reject`.
impl From<serde_json::Error> for HandlerError {
    fn from(err: serde_json::Error) -> Self {
        reject(format!("invalid JSON: {err}"))
    }
}

/// Bytes that are not UTF-8 will not get better on a retry: a `reject`.
impl From<core::str::Utf8Error> for HandlerError {
    fn from(err: core::str::Utf8Error) -> Self {
        reject(format!("invalid UTF-8: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_set_kind_and_message() {
        let err = retry("downstream unavailable");
        assert!(err.is_retry() && !err.is_reject());
        assert_eq!(err.message(), "downstream unavailable");
        assert_eq!(err, HandlerError::Retry("downstream unavailable".into()));

        let err = reject(String::from("unsupported event"));
        assert!(err.is_reject() && !err.is_retry());
        assert_eq!(err.message(), "unsupported event");
    }

    #[test]
    fn bad_json_converts_to_reject() {
        let err: HandlerError = serde_json::from_str::<u32>("{").unwrap_err().into();
        assert!(err.is_reject());
        assert!(err.message().starts_with("invalid JSON: "), "{err}");
    }

    #[test]
    fn question_mark_converts_utf8_errors() {
        fn parse(bytes: &[u8]) -> crate::Result<&str> {
            Ok(core::str::from_utf8(bytes)?)
        }
        assert!(parse(b"\xff").unwrap_err().is_reject());
        assert_eq!(parse(b"ok"), Ok("ok"));
    }
}
