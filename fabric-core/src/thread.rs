//! The one way fabric runs a thread of its own: named, told to stop by a channel that
//! disconnects, and joined, except by itself.

use std::thread::{JoinHandle, ThreadId};
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;

use crate::error::{Error, Result};

/// A named thread that runs until told to stop. Its body gets a receiver that disconnects
/// when it should stop, to `select!` on beside its work. Dropping the handle stops it too.
#[derive(Debug)]
pub(crate) struct StoppableThread<T: Send + 'static = ()> {
    /// Dropped to tell the thread to stop.
    stop: Mutex<Option<Sender<()>>>,
    /// Disconnects when the body has returned.
    ended: Receiver<()>,
    handle: Mutex<Option<JoinHandle<T>>>,
    id: ThreadId,
}

impl<T: Send + 'static> StoppableThread<T> {
    /// Runs `body` on a new thread called `name`; fails with [`Error::Spawn`] if the system
    /// will not start one.
    pub(crate) fn spawn<F>(name: &str, body: F) -> Result<StoppableThread<T>>
    where
        F: FnOnce(Receiver<()>) -> T + Send + 'static,
    {
        let (stop, stopped) = bounded::<()>(0);
        let (end, ended) = bounded::<()>(0);
        let handle = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let _end = end;
                body(stopped)
            })
            .map_err(|e| Error::Spawn {
                thread: name.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(StoppableThread {
            stop: Mutex::new(Some(stop)),
            ended,
            id: handle.thread().id(),
            handle: Mutex::new(Some(handle)),
        })
    }

    /// Tells the thread to stop, without waiting for it.
    pub(crate) fn signal(&self) {
        self.stop.lock().take();
    }

    /// Waits for the thread to end by itself, without telling it to stop, and returns what
    /// its body returned. `None` if it was joined before, if it panicked, or if this is that
    /// thread itself.
    pub(crate) fn join(&self) -> Option<T> {
        if std::thread::current().id() == self.id {
            return None;
        }
        let handle = self.handle.lock().take()?;
        handle.join().ok()
    }

    /// Tells the thread to stop and waits for it, returning what its body returned. `None`
    /// if it was stopped before, if it panicked, or if this is that thread itself (which
    /// must not wait for itself: it ends when its body returns).
    pub(crate) fn stop(&self) -> Option<T> {
        self.signal();
        self.join()
    }

    /// As [`stop`](Self::stop), but waits at most `grace` for the thread to end: a thread
    /// stuck in a call that does not return (a publish to a broker that does not answer) is
    /// left to end on its own. `None` then too.
    pub(crate) fn stop_within(&self, grace: Duration) -> Option<T> {
        self.signal();
        if std::thread::current().id() == self.id {
            return None;
        }
        match self.ended.recv_timeout(grace) {
            Err(RecvTimeoutError::Timeout) => {
                log::warn!(
                    "fabric: a thread did not end within {grace:?} of being told to stop; left running"
                );
                // Detached: dropping the handle must not wait for it either.
                self.handle.lock().take();
                None
            }
            _ => self.join(),
        }
    }
}

impl<T: Send + 'static> Drop for StoppableThread<T> {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_wakes_the_body_and_returns_its_result() {
        let thread = StoppableThread::spawn("test-stop", |stopped| {
            let _ = stopped.recv();
            42
        })
        .unwrap();
        assert_eq!(thread.stop(), Some(42));
        assert_eq!(thread.stop(), None);
    }

    #[test]
    fn join_waits_for_a_body_that_ends_by_itself() {
        let thread = StoppableThread::spawn("test-join", |_stopped| 7).unwrap();
        assert_eq!(thread.join(), Some(7));
    }

    #[test]
    fn stop_within_leaves_a_stuck_thread() {
        let (release, held) = bounded::<()>(0);
        let thread = StoppableThread::spawn("test-stuck", move |_stopped| {
            let _ = held.recv();
        })
        .unwrap();
        assert_eq!(thread.stop_within(Duration::from_millis(50)), None);
        // Detached: neither a join nor the drop waits for it.
        assert_eq!(thread.join(), None);
        drop(thread);
        drop(release);
    }
}
