//! Which workers of a server consume, and on which connection: what `Server::is_serving`
//! and `Server::wait_serving` read.

use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use crate::broker::link::Link;
use crate::broker::state::ConnectionState;

/// One connection generation per worker, 0 when it does not consume.
#[derive(Debug)]
pub(super) struct Readiness {
    consuming: Mutex<Vec<u64>>,
    /// Notified on every change of `consuming`.
    changed: Condvar,
}

impl Readiness {
    pub(super) fn new(workers: usize) -> Readiness {
        Readiness {
            consuming: Mutex::new(vec![0; workers]),
            changed: Condvar::new(),
        }
    }

    /// Marks `worker` as consuming on `generation` until the returned guard drops.
    pub(super) fn consuming(&self, worker: usize, generation: u64) -> Consuming<'_> {
        self.set(worker, generation);
        Consuming {
            readiness: self,
            worker,
        }
    }

    /// Whether every worker consumes on the link's current connection, and it is up.
    pub(super) fn is_serving(&self, link: &Link) -> bool {
        let generation = link.generation();
        self.consuming.lock().iter().all(|g| *g == generation) && is_connected(link)
    }

    /// Waits until [`is_serving`](Self::is_serving), at most until `deadline`; returns
    /// whether it is.
    pub(super) fn wait_serving(&self, link: &Link, deadline: Instant) -> bool {
        // Checked under the lock, so a worker's change is never missed.
        let mut consuming = self.consuming.lock();
        loop {
            let generation = link.generation();
            if consuming.iter().all(|g| *g == generation) && is_connected(link) {
                return true;
            }
            if link.state() == ConnectionState::Closed
                || self
                    .changed
                    .wait_until(&mut consuming, deadline)
                    .timed_out()
            {
                let generation = link.generation();
                return consuming.iter().all(|g| *g == generation) && is_connected(link);
            }
        }
    }

    fn set(&self, worker: usize, generation: u64) {
        self.consuming.lock()[worker] = generation;
        self.changed.notify_all();
    }
}

fn is_connected(link: &Link) -> bool {
    matches!(
        link.state(),
        ConnectionState::Connected { .. } | ConnectionState::Blocked { .. }
    )
}

/// Marks a worker as consuming while it lives.
pub(super) struct Consuming<'a> {
    readiness: &'a Readiness,
    worker: usize,
}

impl Drop for Consuming<'_> {
    fn drop(&mut self) {
        self.readiness.set(self.worker, 0);
    }
}
