//! The servers a participant runs, as its keep-alives announce them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_channel::{bounded, Receiver, Sender};
use parking_lot::Mutex;

use crate::contract::Contract;

/// What a running server tells the registry: announced in keep-alives.
#[derive(Debug)]
pub(crate) struct ServerLoad {
    /// The service trait's name.
    pub service: &'static str,
    /// The methods served, `health_check` included.
    pub methods: Vec<&'static str>,
    /// The number of workers.
    pub workers: usize,
    /// The service's contract, if its dispatcher has one.
    pub contract: Option<Contract>,
    /// Calls being run right now.
    in_flight: AtomicUsize,
}

impl ServerLoad {
    pub(crate) fn new(
        service: &'static str,
        methods: Vec<&'static str>,
        workers: usize,
        contract: Option<Contract>,
    ) -> Self {
        ServerLoad {
            service,
            methods,
            workers,
            contract,
            in_flight: AtomicUsize::new(0),
        }
    }

    /// A call starts running.
    pub(crate) fn call_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// A call has finished.
    pub(crate) fn call_finished(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// Calls running right now.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
}

/// The servers of a fabric, as it shares them with its keep-alive thread.
pub(crate) type ServerList = Arc<Servers>;

/// The servers running on one connection. A change is announced at once (the keep-alive
/// thread hears of it on [`changes`](Self::changes)), so listeners learn a server's methods
/// as it starts rather than a keep-alive interval later.
#[derive(Debug)]
pub(crate) struct Servers {
    list: Mutex<Vec<Arc<ServerLoad>>>,
    changed: Sender<()>,
    changes: Receiver<()>,
}

impl Default for Servers {
    fn default() -> Servers {
        // One pending change is enough: the keep-alive reads the whole list.
        let (changed, changes) = bounded(1);
        Servers {
            list: Mutex::new(Vec::new()),
            changed,
            changes,
        }
    }
}

impl Servers {
    /// A server starts.
    pub(crate) fn add(&self, load: &Arc<ServerLoad>) {
        self.list.lock().push(Arc::clone(load));
        self.announce();
    }

    /// A server stopped.
    pub(crate) fn remove(&self, load: &Arc<ServerLoad>) {
        self.list.lock().retain(|s| !Arc::ptr_eq(s, load));
        self.announce();
    }

    /// The servers running now.
    pub(crate) fn snapshot(&self) -> Vec<Arc<ServerLoad>> {
        self.list.lock().clone()
    }

    /// Gets a token after each change (one for several if not read in between).
    pub(crate) fn changes(&self) -> &Receiver<()> {
        &self.changes
    }

    fn announce(&self) {
        // Full means a change is already waiting to be announced.
        let _ = self.changed.try_send(());
    }
}
