//! Running totals about plugin calls, kept lock-free for the request path
//! and read by the admin API.
//!
//! Owns [`PluginStats`]: how each delivery to a plugin ended. Does not own
//! where calls happen (the server and the queue workers record into it) or
//! how totals are shown (the admin API).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::runtime::CallError;

/// How one delivery to a plugin ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The plugin answered (sync) or handled the event (queue).
    Ok,
    /// The plugin asked to be retried.
    Retry,
    /// The plugin rejected the delivery.
    Reject,
    /// The call trapped (a bug in the plugin) or returned a response the
    /// host cannot send.
    Trap,
    /// The call ran past its timeout.
    Timeout,
    /// The call ran past its memory limit.
    Memory,
    /// No instance slot freed up in time.
    Capacity,
    /// Refused before any call: verification failed.
    Refused,
}

impl Outcome {
    /// Every outcome, in the order they are shown.
    pub const ALL: [Outcome; 8] = [
        Outcome::Ok,
        Outcome::Retry,
        Outcome::Reject,
        Outcome::Trap,
        Outcome::Timeout,
        Outcome::Memory,
        Outcome::Capacity,
        Outcome::Refused,
    ];

    /// The outcome's name in the admin API and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Retry => "retry",
            Outcome::Reject => "reject",
            Outcome::Trap => "trap",
            Outcome::Timeout => "timeout",
            Outcome::Memory => "memory",
            Outcome::Capacity => "capacity",
            Outcome::Refused => "refused",
        }
    }

    /// How a call that returned `result` ended.
    pub fn of<T>(result: &Result<T, CallError>) -> Self {
        match result {
            Ok(_) => Outcome::Ok,
            Err(CallError::Retry(_)) => Outcome::Retry,
            Err(CallError::Reject(_)) => Outcome::Reject,
            Err(CallError::Trap(_) | CallError::InvalidResponse(_)) => Outcome::Trap,
            Err(CallError::Timeout(_)) => Outcome::Timeout,
            Err(CallError::MemoryExceeded(_)) => Outcome::Memory,
            Err(CallError::Capacity) => Outcome::Capacity,
        }
    }
}

/// Per-plugin totals since the plugin's name was first loaded. Shared by
/// every version of the plugin (a reload carries them over), so a hot
/// reload does not reset what an operator is watching.
#[derive(Debug, Default)]
pub struct PluginStats {
    outcomes: [AtomicU64; Outcome::ALL.len()],
}

impl PluginStats {
    /// Counts one delivery that ended with `outcome`.
    pub fn record(&self, outcome: Outcome) {
        self.outcomes[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Deliveries that ended with `outcome` so far.
    pub fn count(&self, outcome: Outcome) -> u64 {
        self.outcomes[outcome as usize].load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_counted_apart() {
        let stats = PluginStats::default();
        stats.record(Outcome::Ok);
        stats.record(Outcome::Ok);
        stats.record(Outcome::of::<()>(&Err(CallError::Capacity)));
        assert_eq!(stats.count(Outcome::Ok), 2);
        assert_eq!(stats.count(Outcome::Capacity), 1);
        assert_eq!(stats.count(Outcome::Refused), 0);
        for (index, outcome) in Outcome::ALL.iter().enumerate() {
            assert_eq!(*outcome as usize, index, "{outcome:?}");
        }
    }
}
