//! The records waiting for the shipper: a bounded queue that drops the oldest when full, and
//! counts what it dropped so the next record shipped can say so.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::{Condvar, Mutex, MutexGuard};

use super::wire::Entry;
use crate::error::Error;
use crate::observe;

/// Records the queue holds unless told otherwise.
pub(super) const DEFAULT_CAPACITY: usize = 1024;

/// What the application's threads (which log) and the shipper thread share.
pub(super) struct RecordQueue {
    state: Mutex<State>,
    /// Wakes the shipper: a record was queued, or it must stop.
    wake: Condvar,
    /// Wakes flushers: the queue is empty and nothing is being published, or shipping ended.
    drained: Condvar,
    capacity: usize,
    dropped: AtomicU64,
    shipped: AtomicU64,
}

struct State {
    queue: VecDeque<Entry>,
    /// Records dropped that no shipped record has told of yet.
    untold: u64,
    /// The shipper has taken a record from the queue and is publishing it.
    busy: bool,
    phase: Phase,
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Shipping,
    /// The logger was closed.
    Stopped,
    /// The fabric closed under the logger (or the first declaration failed).
    Failed(Error),
}

impl RecordQueue {
    pub(super) fn new(capacity: usize) -> RecordQueue {
        RecordQueue {
            state: Mutex::new(State {
                queue: VecDeque::with_capacity(capacity.min(DEFAULT_CAPACITY)),
                untold: 0,
                busy: false,
                phase: Phase::Shipping,
            }),
            wake: Condvar::new(),
            drained: Condvar::new(),
            capacity,
            dropped: AtomicU64::new(0),
            shipped: AtomicU64::new(0),
        }
    }

    /// Queues a record, pushing out the oldest when full; counts it dropped once shipping
    /// has stopped. Never waits for the shipper.
    pub(super) fn push(&self, entry: Entry) {
        let mut state = self.state.lock();
        if state.phase != Phase::Shipping {
            self.drop_records(&mut state, 1);
            return;
        }
        let pushed_out = if state.queue.len() >= self.capacity {
            self.drop_records(&mut state, 1);
            state.queue.pop_front()
        } else {
            None
        };
        state.queue.push_back(entry);
        drop(state);
        self.wake.notify_one();
        // Freed outside the lock.
        drop(pushed_out);
    }

    /// The next record to publish and the number of drops to tell with it, waiting for one;
    /// `None` once shipping has stopped. Tells flushers when the queue has drained.
    pub(super) fn next(&self) -> Option<(Entry, u64)> {
        let mut state = self.state.lock();
        state.busy = false;
        loop {
            if state.phase != Phase::Shipping {
                return None;
            }
            if let Some(entry) = state.queue.pop_front() {
                state.busy = true;
                let untold = std::mem::take(&mut state.untold);
                return Some((entry, untold));
            }
            self.drained.notify_all();
            self.wake.wait(&mut state);
        }
    }

    /// The record taken by [`next`](Self::next) went out.
    pub(super) fn shipped(&self) {
        self.shipped.fetch_add(1, Ordering::Relaxed);
    }

    /// Puts back a record whose publish failed at the head of the queue, with the drops it
    /// was telling of. If the queue filled up meanwhile, the record is its oldest: dropped.
    pub(super) fn put_back(&self, entry: Entry, dropped: u64) {
        let mut state = self.state.lock();
        state.busy = false;
        state.untold += dropped;
        if state.queue.len() >= self.capacity {
            self.drop_records(&mut state, 1);
            drop(state);
            drop(entry);
        } else {
            state.queue.push_front(entry);
        }
    }

    /// Shipping has ended for good (the fabric closed): the queued records are dropped, and
    /// every later one will be.
    pub(super) fn give_up(&self, error: Error) {
        let mut state = self.state.lock();
        let lost = state.queue.len() as u64;
        self.drop_records(&mut state, lost);
        let queue = std::mem::take(&mut state.queue);
        state.busy = false;
        if state.phase == Phase::Shipping {
            state.phase = Phase::Failed(error);
        }
        drop(state);
        self.drained.notify_all();
        drop(queue);
    }

    /// Waits until `deadline` for the queue to drain; `true` if it did while shipping.
    pub(super) fn flush_until(&self, deadline: Instant) -> bool {
        let mut state = self.state.lock();
        self.wait_drained(&mut state, deadline)
    }

    /// Waits (until `deadline`) for the queue to drain, then stops shipping: what is left is
    /// dropped, and the shipper is woken to end.
    pub(super) fn stop(&self, deadline: Instant) {
        let left_over = {
            let mut state = self.state.lock();
            self.wait_drained(&mut state, deadline);
            if state.phase == Phase::Shipping {
                state.phase = Phase::Stopped;
            }
            let left = state.queue.len() as u64;
            self.drop_records(&mut state, left);
            std::mem::take(&mut state.queue)
        };
        drop(left_over);
        self.wake.notify_all();
        self.drained.notify_all();
    }

    /// Records dropped: pushed out of a full queue, or lost when shipping stopped.
    pub(super) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Records handed to the broker connection.
    pub(super) fn shipped_count(&self) -> u64 {
        self.shipped.load(Ordering::Relaxed)
    }

    /// Records waiting now.
    pub(super) fn len(&self) -> usize {
        self.state.lock().queue.len()
    }

    pub(super) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Why shipping stopped for good, if the fabric closed under it.
    pub(super) fn failure(&self) -> Option<Error> {
        match &self.state.lock().phase {
            Phase::Failed(e) => Some(e.clone()),
            _ => None,
        }
    }

    /// Counts `n` records as dropped; the caller holds the state.
    fn drop_records(&self, state: &mut State, n: u64) {
        state.untold += n;
        self.dropped.fetch_add(n, Ordering::Relaxed);
        observe::log_records_dropped(n);
    }

    fn wait_drained(&self, state: &mut MutexGuard<'_, State>, deadline: Instant) -> bool {
        while state.phase == Phase::Shipping && (state.busy || !state.queue.is_empty()) {
            if self.drained.wait_until(state, deadline).timed_out() {
                break;
            }
        }
        state.phase == Phase::Shipping && !state.busy && state.queue.is_empty()
    }
}
