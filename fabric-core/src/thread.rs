//! The one way fabric runs a thread of its own: named, told to stop by a channel that
//! disconnects, and joined, except by itself.

use std::thread::{JoinHandle, ThreadId};

use crossbeam_channel::{bounded, Receiver, Sender};
use parking_lot::Mutex;

use crate::{Error, Result};

/// A named thread that runs until told to stop. Its body gets a receiver that disconnects
/// when it should stop, to `select!` on beside its work. Dropping the handle stops it too.
#[derive(Debug)]
pub(crate) struct StoppableThread<T: Send + 'static = ()> {
    /// Dropped to tell the thread to stop.
    stop: Mutex<Option<Sender<()>>>,
    handle: Mutex<Option<JoinHandle<T>>>,
    id: ThreadId,
}

impl<T: Send + 'static> StoppableThread<T> {
    /// Runs `body` on a new thread called `name`.
    pub(crate) fn spawn<F>(name: &str, body: F) -> Result<StoppableThread<T>>
    where
        F: FnOnce(Receiver<()>) -> T + Send + 'static,
    {
        let (stop, stopped) = bounded::<()>(0);
        let handle = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || body(stopped))
            .map_err(|e| Error::Broker {
                operation: format!("start the {name} thread"),
                reason: e.to_string(),
            })?;
        Ok(StoppableThread {
            stop: Mutex::new(Some(stop)),
            id: handle.thread().id(),
            handle: Mutex::new(Some(handle)),
        })
    }

    /// Tells the thread to stop, without waiting for it.
    pub(crate) fn signal(&self) {
        self.stop.lock().take();
    }

    /// Tells the thread to stop and waits for it, returning what its body returned. `None`
    /// if it was stopped before, if it panicked, or if this is that thread itself (which
    /// must not wait for itself: it ends when its body returns).
    pub(crate) fn stop(&self) -> Option<T> {
        self.signal();
        if std::thread::current().id() == self.id {
            return None;
        }
        let handle = self.handle.lock().take()?;
        handle.join().ok()
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
}
