//! Faults on demand for a local client: the next calls fail as a broker outage would make
//! them fail, so a test can exercise the code's retry and fallback paths.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::error::Error;

/// A failure a [`Faults`] handle makes a local client's call end with, in place of running it.
///
/// Each is the error a call over the broker ends with in that situation, so the code under
/// test sees exactly what it would see in production. None of them runs the method, and none
/// waits: the call fails at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// [`Error::CallInterrupted`]: the connection broke with the call in flight. Retried
    /// by idempotent methods.
    CallInterrupted,
    /// [`Error::Unavailable`]: the broker was unreachable for the whole timeout; nothing was
    /// sent. Retried by idempotent methods.
    Unavailable,
    /// [`Error::Timeout`]: no reply within the call's timeout (reported at once, with the
    /// call's timeout in the error). Retried by idempotent methods.
    Timeout,
}

/// The faults a local client injects: a queue of [`Fault`]s, each taken by one call, in order.
/// A cheap handle: clones share the queue, and every clone of the client (including those from
/// `with_timeout` and friends) takes from it.
///
/// Get it from the client with [`RpcClient::local_faults`](crate::RpcClient::local_faults):
///
/// ```
/// use fabric_core::fabric_service;
/// use fabric_core::testing::Fault;
///
/// #[fabric_service]
/// pub trait Stock {
///     #[fabric(idempotent)]
///     fn count(&self, sku: String) -> u32;
/// }
///
/// struct Shelf;
/// impl Stock for Shelf {
///     fn count(&self, _sku: String) -> u32 { 7 }
/// }
///
/// let client = StockClient::local(Shelf);
/// let faults = client.rpc().local_faults().expect("a local client");
/// faults.fail_next(2, Fault::CallInterrupted);
/// // Two interrupted attempts, then the third gets through (the default policy tries 3 times).
/// assert_eq!(client.count("A-1").unwrap(), 7);
/// assert_eq!(faults.injected(), 2);
/// ```
#[derive(Clone, Default)]
pub struct Faults {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Fault>,
    injected: usize,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.lock();
        f.debug_struct("Faults")
            .field("queued", &state.queue)
            .field("injected", &state.injected)
            .finish()
    }
}

impl Faults {
    /// Makes the next `count` calls (after any faults already queued) fail with `fault`.
    pub fn fail_next(&self, count: usize, fault: Fault) {
        let mut state = self.state.lock();
        state.queue.extend(std::iter::repeat_n(fault, count));
    }

    /// Makes the next call (after any faults already queued) fail with `fault`.
    pub fn fail_once(&self, fault: Fault) {
        self.fail_next(1, fault);
    }

    /// Drops every fault still queued: the next calls run normally.
    pub fn clear(&self) {
        self.state.lock().queue.clear();
    }

    /// How many faults are queued and not yet taken by a call.
    pub fn pending(&self) -> usize {
        self.state.lock().queue.len()
    }

    /// How many calls have failed by an injected fault so far.
    pub fn injected(&self) -> usize {
        self.state.lock().injected
    }

    /// The fault the next call takes, if one is queued.
    pub(crate) fn take(&self) -> Option<Fault> {
        let mut state = self.state.lock();
        let fault = state.queue.pop_front();
        if fault.is_some() {
            state.injected += 1;
        }
        fault
    }
}

impl Fault {
    /// The error a call of `service`'s `method` with `timeout` fails with, before it is sent:
    /// `Unavailable` only; the others are outcomes of a sent call (see `local`).
    pub(crate) fn unavailable(timeout: Duration) -> Error {
        Error::Unavailable {
            reason: "a fault injected by the test (testing::Fault::Unavailable)".to_owned(),
            waited: timeout,
        }
    }
}
