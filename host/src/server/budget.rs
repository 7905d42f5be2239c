//! The host-wide budget of buffered request-body bytes (`--max-buffered`).
//!
//! Every body is read whole before verification, so what the host holds in
//! memory is the sum of the bodies being read or handled. Each request takes
//! its share of the budget *before* it reads: its whole `Content-Length`
//! at once, or, for a body of unknown length, chunk by chunk as it arrives.
//! A request that cannot get its share is answered 503 with `Retry-After`
//! and its body is not read. The share goes back when the request is done
//! (its plugin answered, or its event is stored).
//!
//! Does not own the per-request limit (`--max-body`, the route's
//! `max_body`), which the body reader checks first.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::telemetry::BodyMeters;

/// Buffered body bytes across all requests, against a maximum.
pub(super) struct BodyBudget {
    max: u64,
    used: AtomicU64,
    meters: BodyMeters,
}

/// The budget is spent: try again shortly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetFull {
    /// The host-wide maximum, bytes.
    pub max: u64,
}

/// One request's share of the budget; given back when dropped.
pub(super) struct Share {
    budget: Arc<BodyBudget>,
    bytes: u64,
}

impl BodyBudget {
    pub(super) fn new(max: u64, meters: BodyMeters) -> Arc<Self> {
        Arc::new(Self {
            max,
            used: AtomicU64::new(0),
            meters,
        })
    }

    /// A share of `bytes` (0 for a body of unknown length, which grows it).
    pub(super) fn take(self: &Arc<Self>, bytes: u64) -> Result<Share, BudgetFull> {
        let mut share = Share {
            budget: self.clone(),
            bytes: 0,
        };
        share.grow(bytes)?;
        Ok(share)
    }

    fn reserve(&self, bytes: u64) -> Result<(), BudgetFull> {
        if bytes == 0 {
            return Ok(());
        }
        let taken = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.max)
            });
        match taken {
            Ok(_) => {
                self.meters.buffered(bytes as i64);
                Ok(())
            }
            Err(_) => {
                self.meters.refused();
                Err(BudgetFull { max: self.max })
            }
        }
    }
}

impl Share {
    /// Grows the share by `bytes`; on refusal it keeps what it had (the
    /// caller answers 503 and drops it).
    pub(super) fn grow(&mut self, bytes: u64) -> Result<(), BudgetFull> {
        self.budget.reserve(bytes)?;
        self.bytes += bytes;
        Ok(())
    }

    /// Bytes held.
    pub(super) fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
            self.budget.meters.buffered(-(self.bytes as i64));
        }
    }
}
