//! How long to wait before trying again: reconnections and the threads that start over.

use std::time::Duration;

use crate::token::jitter;

/// How long to wait between reconnection attempts: `initial`, doubling up to `max`, each with
/// up to a quarter of random jitter so a clique that lost its broker does not return in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    /// The wait after the first failure.
    pub(crate) initial: Duration,
    /// The longest wait.
    pub(crate) max: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    /// The wait before attempt `failures + 1`.
    pub(crate) fn delay(&self, failures: u32) -> Duration {
        let doubled = self
            .initial
            .saturating_mul(1u32.checked_shl(failures.min(20)).unwrap_or(u32::MAX));
        let base = doubled.min(self.max);
        base + jitter(base / 4)
    }
}
