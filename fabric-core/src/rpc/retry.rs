//! Retries of idempotent calls, which fabric makes only where the user asked for them.

use std::time::Duration;

use crate::error::Error;

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

impl RetryPolicy {
    /// The wait before trying again after attempt number `attempt` (1 for the first) failed
    /// with `error`; `None` when the call must not be tried again: the error is final, or
    /// the attempts are used up. The backoff doubles after each retry.
    pub(crate) fn delay_after(&self, attempt: u32, error: &Error) -> Option<Duration> {
        if attempt >= self.attempts || !error.is_transient() {
            return None;
        }
        let doubling = 1u32
            .checked_shl(attempt.saturating_sub(1).min(20))
            .unwrap_or(u32::MAX);
        Some(self.backoff.saturating_mul(doubling))
    }
}

impl Default for RetryPolicy {
    /// Three attempts, 200 ms apart then 400 ms: enough to ride out a reconnection.
    fn default() -> RetryPolicy {
        RetryPolicy::new(3, Duration::from_millis(200))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interrupted() -> Error {
        Error::CallInterrupted {
            service: "d.t.i".into(),
            method: "m".into(),
            reason: "the connection broke".into(),
        }
    }

    #[test]
    fn retries_what_may_not_have_completed() {
        let timeout = Error::Timeout {
            service: "d.t.i".into(),
            method: "m".into(),
            timeout: Duration::from_secs(1),
        };
        let unavailable = Error::Unavailable {
            reason: "reconnecting".into(),
            waited: Duration::from_secs(1),
        };
        let missing = Error::NoSuchService {
            service: "d.t.i".into(),
        };
        for error in [interrupted(), timeout, unavailable, missing] {
            assert!(error.is_transient(), "{error:?}");
        }
    }

    #[test]
    fn never_retries_an_answer_or_a_final_error() {
        let finals = [
            Error::Remote {
                service: "d.t.i".into(),
                method: "m".into(),
                kind: "panic".into(),
                message: "boom".into(),
            },
            Error::UnknownMethod {
                service: "d.t.i".into(),
                method: "m".into(),
            },
            Error::Codec {
                context: "the result".into(),
                reason: "bad".into(),
            },
            Error::Closed,
        ];
        let policy = RetryPolicy::new(10, Duration::from_millis(10));
        for error in finals {
            assert!(!error.is_transient(), "{error:?}");
            assert_eq!(policy.delay_after(1, &error), None, "{error:?}");
        }
    }

    #[test]
    fn the_backoff_doubles_until_the_attempts_are_used_up() {
        let policy = RetryPolicy::new(4, Duration::from_millis(100));
        let delays: Vec<_> = (1..=4)
            .map(|attempt| policy.delay_after(attempt, &interrupted()))
            .collect();
        assert_eq!(
            delays,
            [
                Some(Duration::from_millis(100)),
                Some(Duration::from_millis(200)),
                Some(Duration::from_millis(400)),
                None,
            ]
        );
        assert_eq!(RetryPolicy::never().delay_after(1, &interrupted()), None);
        assert_eq!(RetryPolicy::new(0, Duration::ZERO).attempts(), 1);
    }
}
