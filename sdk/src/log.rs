//! Logging through the host's `log` import, and the `info!`-style macros.

use crate::Level;

/// Writes one line to the host's log at `level`; the host tags it with the
/// plugin and the delivery id. Usually called through [`info!`](crate::info)
/// and friends.
///
/// Off WebAssembly (native unit tests) the line goes to stderr instead.
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::__bindings::hookhost::plugin::log::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

/// Logs a `format!`-style message at [`Level::Trace`].
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => { $crate::log($crate::Level::Trace, &::std::format!($($arg)+)) };
}

/// Logs a `format!`-style message at [`Level::Debug`].
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::log($crate::Level::Debug, &::std::format!($($arg)+)) };
}

/// Logs a `format!`-style message at [`Level::Info`].
///
/// ```
/// let commits = 3;
/// hookhost_sdk::info!("push with {commits} commits");
/// ```
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => { $crate::log($crate::Level::Info, &::std::format!($($arg)+)) };
}

/// Logs a `format!`-style message at [`Level::Warn`].
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::log($crate::Level::Warn, &::std::format!($($arg)+)) };
}

/// Logs a `format!`-style message at [`Level::Error`].
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::log($crate::Level::Error, &::std::format!($($arg)+)) };
}

#[cfg(test)]
mod tests {
    #[test]
    fn macros_format_and_log_natively() {
        let id = "d-1";
        crate::trace!("trace {id}");
        crate::debug!("debug {}", id);
        crate::info!("info");
        crate::warn!("warn {id:?}");
        crate::error!("error {}", 42);
    }
}
