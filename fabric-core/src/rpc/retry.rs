//! Retries of idempotent calls, which fabric makes only where the user asked for them.

use std::time::Duration;

/// How often an idempotent method is tried again when its call may not have completed.
///
/// fabric never repeats a call on its own: a call that may have run fails with
/// [`Error::CallInterrupted`](crate::Error::CallInterrupted). A method marked
/// `#[fabric(idempotent)]` in a `#[fabric_service]` trait (or a call made with
/// [`RpcClient::call_idempotent`](crate::RpcClient::call_idempotent)) is tried again under
/// this policy, because running it twice does no harm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub(crate) attempts: u32,
    pub(crate) backoff: Duration,
}

impl RetryPolicy {
    /// Try at most `attempts` times in all (at least 1), waiting `backoff` before the first
    /// retry and twice as long before each one after.
    pub fn new(attempts: u32, backoff: Duration) -> RetryPolicy {
        RetryPolicy {
            attempts: attempts.max(1),
            backoff,
        }
    }

    /// Never try again: every method behaves as one not marked idempotent.
    pub fn never() -> RetryPolicy {
        RetryPolicy::new(1, Duration::ZERO)
    }

    /// The number of attempts in all.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The wait before the first retry.
    pub fn backoff(&self) -> Duration {
        self.backoff
    }
}

impl Default for RetryPolicy {
    /// Three attempts, 200 ms apart then 400 ms: enough to ride out a reconnection.
    fn default() -> RetryPolicy {
        RetryPolicy::new(3, Duration::from_millis(200))
    }
}
