//! Watches of the registry: a receiver of events, or a callback on a thread of its own.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use parking_lot::Mutex;

use super::directory::Directory;
use super::info::{ServiceEvent, ServiceFilter};
use crate::broker::hold::Hold;
use crate::error::{Error, Result};
use crate::thread::StoppableThread;

/// A watch's place in the directory; leaving it ends the watch.
struct Registration {
    directory: Arc<Directory>,
    id: u64,
    /// Keeps the connection, and so the listener, alive while someone watches.
    _hold: Hold,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.directory.unwatch(self.id);
    }
}

/// The events of a watch, to take when it suits you: from
/// [`Fabric::service_events`](crate::Fabric::service_events).
///
/// Events wait in an unbounded queue until taken. The watch ends when this is dropped; when
/// the fabric closes, the receiving methods return [`Error::Closed`] (and iteration ends)
/// once the events already queued are taken.
#[must_use = "dropping ServiceEvents ends the watch at once"]
pub struct ServiceEvents {
    events: Receiver<ServiceEvent>,
    registration: Mutex<Option<Registration>>,
}

impl std::fmt::Debug for ServiceEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceEvents")
            .field("queued", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl ServiceEvents {
    pub(crate) fn start(
        hold: Hold,
        directory: Arc<Directory>,
        filter: ServiceFilter,
    ) -> Result<ServiceEvents> {
        let (id, events) = directory.watch(filter)?;
        Ok(ServiceEvents {
            events,
            registration: Mutex::new(Some(Registration {
                directory,
                id,
                _hold: hold,
            })),
        })
    }

    /// Ends the watch: the events already queued can still be taken, then the receiving
    /// methods return [`Error::Closed`]. Dropping it does the same.
    pub fn close(&self) -> Result<()> {
        self.registration.lock().take();
        Ok(())
    }

    /// Waits for the next event.
    pub fn recv(&self) -> Result<ServiceEvent> {
        self.events.recv().map_err(|_| Error::Closed)
    }

    /// Waits at most `timeout` for the next event: `Ok(None)` when none came in time.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<ServiceEvent>> {
        match self.events.recv_timeout(timeout) {
            Ok(event) => Ok(Some(event)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(Error::Closed),
        }
    }

    /// The next event if one is queued, without waiting.
    pub fn try_recv(&self) -> Result<Option<ServiceEvent>> {
        match self.events.try_recv() {
            Ok(event) => Ok(Some(event)),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => Err(Error::Closed),
        }
    }

    /// The events as they come, blocking between them; ends when the fabric closes.
    pub fn iter(&self) -> impl Iterator<Item = ServiceEvent> + '_ {
        self.events.iter()
    }
}

/// A callback watching the registry from a thread of its own (`fabric-watch`): from
/// [`Fabric::watch_services`](crate::Fabric::watch_services).
///
/// Dropping it (or [`close`](Self::close)) ends the watch: the callback finishes the event in
/// hand, gets no other, and the thread is waited for. The fabric closing ends it too. A
/// callback may drop its own watcher; the thread then ends when the callback returns. A
/// callback that panics is logged and gets the next event all the same.
#[must_use = "dropping a ServiceWatcher ends the watch at once"]
pub struct ServiceWatcher {
    registration: Mutex<Option<Registration>>,
    thread: StoppableThread,
}

impl std::fmt::Debug for ServiceWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceWatcher")
            .field("running", &self.registration.lock().is_some())
            .finish_non_exhaustive()
    }
}

impl ServiceWatcher {
    pub(crate) fn start<F>(
        hold: Hold,
        directory: Arc<Directory>,
        filter: ServiceFilter,
        mut callback: F,
    ) -> Result<ServiceWatcher>
    where
        F: FnMut(ServiceEvent) + Send + 'static,
    {
        let (id, events) = directory.watch(filter)?;
        let registration = Registration {
            directory,
            id,
            _hold: hold,
        };
        let thread = StoppableThread::spawn("fabric-watch", move |stopped| {
            for event in events.iter() {
                // Stopped while events were queued: they are nobody's business any more.
                if let Err(TryRecvError::Disconnected) = stopped.try_recv() {
                    break;
                }
                if catch_unwind(AssertUnwindSafe(|| callback(event))).is_err() {
                    log::error!("fabric: a service watch callback panicked");
                }
            }
        })?;
        Ok(ServiceWatcher {
            registration: Mutex::new(Some(registration)),
            thread,
        })
    }

    /// Ends the watch and waits for the callback to return (unless called from the
    /// callback itself). Later calls return `Ok`. Dropping it does the same.
    pub fn close(&self) -> Result<()> {
        self.thread.signal();
        // Unwatching drops the events' sender, which wakes a thread waiting for one.
        let registration = self.registration.lock().take();
        if let Some(registration) = &registration {
            registration.directory.unwatch(registration.id);
        }
        self.thread.stop();
        // The hold goes last: it may be the fabric's last, and closing it stops threads.
        drop(registration);
        Ok(())
    }

    /// The old name of [`close`](Self::close).
    #[deprecated(
        since = "0.2.0",
        note = "renamed `close`, as every handle that stops something"
    )]
    pub fn stop(self) {
        let _ = self.close();
    }
}

impl Drop for ServiceWatcher {
    fn drop(&mut self) {
        let _ = self.close();
    }
}
