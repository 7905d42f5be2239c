//! The plugin's own key-value store, kept by the host.
//!
//! Each plugin has one namespace, named after the plugin: what it stores
//! survives host restarts and hot reloads, and no other plugin can read it.
//! Every write is committed (durable) when the call returns. The manifest's
//! `[kv]` table limits the key size, the value size and the plugin's total
//! (keys plus values); a write over a limit fails with
//! [`Error::QuotaExceeded`] and changes nothing.
//!
//! ```no_run
//! # fn f() -> hookhost_sdk::Result<()> {
//! use hookhost_sdk::kv;
//!
//! // A counter: atomic, so concurrent deliveries never lose a count.
//! let pushes = kv::increment("pushes/octo/hello", 1)?;
//!
//! // Remember what was seen, as text or JSON.
//! kv::set_string("last-delivery", "8f2e8d1c")?;
//! kv::set_json("cursor", &serde_json::json!({"page": 3}))?;
//! let cursor: Option<serde_json::Value> = kv::get_json("cursor")?;
//!
//! for key in kv::list_keys("pushes/")? {
//!     hookhost_sdk::info!("{key}");
//! }
//! # let _ = (pushes, cursor); Ok(()) }
//! ```
//!
//! Every function returns `Result<_, kv::Error>`, which `?` turns into a
//! handler error: a store failure becomes [`retry`](crate::retry) (the disk
//! may come back), anything else [`reject`](crate::reject).
//!
//! Off WebAssembly (native unit tests) the store is an in-memory map per
//! thread, with no limits, so handlers that use it can be tested with a
//! plain `cargo test`.

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use crate::__bindings::hookhost::plugin::kv::Error;

impl Error {
    /// The host's explanation, whichever the kind.
    pub fn message(&self) -> &str {
        match self {
            Error::InvalidKey(message)
            | Error::QuotaExceeded(message)
            | Error::NotANumber(message)
            | Error::Store(message) => message,
        }
    }
}

/// A failed store (disk full, I/O error) may work later: `retry`. An invalid
/// key, a quota or a value that is not a number will not: `reject`.
impl From<Error> for crate::HandlerError {
    fn from(err: Error) -> Self {
        let message = format!("key-value store: {}", err.message());
        match err {
            Error::Store(_) => crate::retry(message),
            _ => crate::reject(message),
        }
    }
}

/// The value of `key`, or `None` when it is not set.
pub fn get(key: &str) -> Result<Option<Vec<u8>>, Error> {
    imp::get(key)
}

/// Sets `key` to `value`, replacing any value it had.
pub fn set(key: &str, value: &[u8]) -> Result<(), Error> {
    imp::set(key, value)
}

/// Deletes `key`; returns whether it was set.
pub fn delete(key: &str) -> Result<bool, Error> {
    imp::delete(key)
}

/// Every key starting with `prefix` (all keys for `""`), in byte order.
pub fn list_keys(prefix: &str) -> Result<Vec<String>, Error> {
    imp::list_keys(prefix)
}

/// Adds `delta` to the decimal integer stored at `key` (a missing key counts
/// as 0), stores the sum as decimal text and returns it. Atomic: concurrent
/// deliveries never lose an increment. Fails with [`Error::NotANumber`] when
/// the stored value is not a decimal `i64` or the sum overflows.
pub fn increment(key: &str, delta: i64) -> Result<i64, Error> {
    imp::increment(key, delta)
}

/// The value of `key` as text; a value that is not UTF-8 is a `reject`.
pub fn get_string(key: &str) -> crate::Result<Option<String>> {
    match get(key)? {
        None => Ok(None),
        Some(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|err| crate::reject(format!("value of `{key}` is not UTF-8: {err}"))),
    }
}

/// Sets `key` to the text `value`.
pub fn set_string(key: &str, value: &str) -> Result<(), Error> {
    set(key, value.as_bytes())
}

/// The value of `key` parsed as JSON into `T`; a value that does not parse
/// is a `reject`.
pub fn get_json<T: DeserializeOwned>(key: &str) -> crate::Result<Option<T>> {
    match get(key)? {
        None => Ok(None),
        Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
    }
}

/// Sets `key` to `value` serialised as JSON.
pub fn set_json<T: Serialize + ?Sized>(key: &str, value: &T) -> crate::Result<()> {
    let bytes = serde_json::to_vec(value)
        .map_err(|err| crate::reject(format!("cannot serialise `{key}` as JSON: {err}")))?;
    Ok(set(key, &bytes)?)
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::Error;
    use crate::__bindings::hookhost::plugin::kv;

    pub fn get(key: &str) -> Result<Option<Vec<u8>>, Error> {
        kv::get(key)
    }

    pub fn set(key: &str, value: &[u8]) -> Result<(), Error> {
        kv::set(key, value)
    }

    pub fn delete(key: &str) -> Result<bool, Error> {
        kv::delete(key)
    }

    pub fn list_keys(prefix: &str) -> Result<Vec<String>, Error> {
        kv::list_keys(prefix)
    }

    pub fn increment(key: &str, delta: i64) -> Result<i64, Error> {
        kv::increment(key, delta)
    }
}

/// Natively: one in-memory map per thread (each `#[test]` runs on its own
/// thread, so tests do not see each other's keys).
#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    use super::Error;

    thread_local! {
        static STORE: RefCell<BTreeMap<String, Vec<u8>>> = const { RefCell::new(BTreeMap::new()) };
    }

    fn check(key: &str) -> Result<(), Error> {
        if key.is_empty() {
            return Err(Error::InvalidKey("key is empty".into()));
        }
        Ok(())
    }

    pub fn get(key: &str) -> Result<Option<Vec<u8>>, Error> {
        check(key)?;
        Ok(STORE.with_borrow(|store| store.get(key).cloned()))
    }

    pub fn set(key: &str, value: &[u8]) -> Result<(), Error> {
        check(key)?;
        STORE.with_borrow_mut(|store| store.insert(key.to_owned(), value.to_vec()));
        Ok(())
    }

    pub fn delete(key: &str) -> Result<bool, Error> {
        check(key)?;
        Ok(STORE.with_borrow_mut(|store| store.remove(key).is_some()))
    }

    pub fn list_keys(prefix: &str) -> Result<Vec<String>, Error> {
        Ok(STORE.with_borrow(|store| {
            store
                .keys()
                .filter(|key| key.starts_with(prefix))
                .cloned()
                .collect()
        }))
    }

    pub fn increment(key: &str, delta: i64) -> Result<i64, Error> {
        check(key)?;
        STORE.with_borrow_mut(|store| {
            let current = match store.get(key) {
                None => 0,
                Some(bytes) => std::str::from_utf8(bytes)
                    .ok()
                    .and_then(|text| text.parse::<i64>().ok())
                    .ok_or_else(|| {
                        Error::NotANumber(format!("value of `{key}` is not a decimal integer"))
                    })?,
            };
            let sum = current
                .checked_add(delta)
                .ok_or_else(|| Error::NotANumber(format!("`{key}` + {delta} overflows")))?;
            store.insert(key.to_owned(), sum.to_string().into_bytes());
            Ok(sum)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_store_behaves_like_the_host() {
        assert_eq!(get("a").unwrap(), None);
        set("a", b"1").unwrap();
        set_string("b/1", "x").unwrap();
        set_json("b/2", &[1, 2]).unwrap();
        assert_eq!(get("a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(list_keys("b/").unwrap(), ["b/1", "b/2"]);
        assert_eq!(get_json::<Vec<u8>>("b/2").unwrap(), Some(vec![1, 2]));
        assert_eq!(increment("a", 41).unwrap(), 42);
        assert_eq!(get_string("a").unwrap().as_deref(), Some("42"));
        assert!(delete("a").unwrap());
        assert!(!delete("a").unwrap());
        assert!(matches!(increment("b/1", 1), Err(Error::NotANumber(_))));
        let err: crate::HandlerError = increment("b/1", 1).unwrap_err().into();
        assert!(err.is_reject(), "{err:?}");
        let err: crate::HandlerError = Error::Store("disk full".into()).into();
        assert!(
            err.is_retry() && err.message().contains("disk full"),
            "{err:?}"
        );
    }
}
