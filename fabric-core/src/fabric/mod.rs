//! The connection handle every feature starts from, and the one place that wires them.
//!
//! This is the top layer: `Fabric` owns the connection and the per-connection pieces the
//! features share (the reply thread, the confirming publisher, the registry, the list of
//! servers), and the entry points that need a `Fabric` live here, one file per feature
//! (`rpc.rs`, `streams.rs`, `registry.rs`, `logging.rs`). The features below never name
//! `Fabric`: they take a [`Participant`], the narrow part they need.

mod logging;
mod registry;
mod rpc;
mod streams;

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::address::ServiceAddress;
use crate::broker::hold::Hold;
use crate::broker::link::Link;
use crate::broker::publisher::ConfirmingPublisher;
use crate::broker::state::ConnectionState;
use crate::broker::url::BrokerUrl;
use crate::config::FabricConfig;
use crate::error::Result;
use crate::participant::Participant;
use crate::registry::{Directory, Registry, ServerList};
use crate::rpc::{Caller, Workers};

/// A participant's connection to the broker: cheap to clone, shared by its clients and
/// servers. The connection closes when the last clone (and every client and server made from
/// it) is dropped, or at [`close`](Self::close).
#[derive(Clone)]
pub struct Fabric {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<FabricConfig>,
    address: Arc<ServiceAddress>,
    /// The connection, reconnected when it breaks.
    link: Arc<Link>,
    /// The reply thread, started by the first client.
    caller: Mutex<Option<Arc<Caller>>>,
    /// The confirming publisher of data and events, started by the first publish.
    publisher: Mutex<Option<Arc<ConfirmingPublisher>>>,
    /// The servers running on this connection, shared with the keep-alive thread.
    servers: ServerList,
    /// The workers of the servers made from this fabric, to stop when it closes.
    workers: Mutex<Vec<Weak<Workers>>>,
    /// The keep-alive and registry threads, as the configuration asks for them.
    registry: Mutex<Registry>,
}

impl std::fmt::Debug for Fabric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fabric")
            .field("address", &self.inner.address.fqn())
            .field("state", &self.inner.link.state())
            .finish_non_exhaustive()
    }
}

impl Fabric {
    /// Checks the configuration, then connects to the broker: to the first of its URLs that
    /// answers.
    ///
    /// A bad name, URL or TLS setting is reported before any network traffic; a broker that
    /// none of the URLs reaches as [`Error::Connect`](crate::Error::Connect), a failed TLS
    /// handshake as [`Error::Tls`](crate::Error::Tls), a refused login or virtual host as
    /// [`Error::AccessRefused`](crate::Error::AccessRefused).
    /// Once connected, the fabric reconnects by itself whenever the connection breaks (see
    /// [`connection_state`](Self::connection_state)).
    pub fn connect(config: FabricConfig) -> Result<Fabric> {
        let address =
            ServiceAddress::new(&config.domain, &config.service_type, &config.service_id)?;
        let urls = config
            .connection_order()
            .into_iter()
            .map(|url| BrokerUrl::parse(url, config.tls.as_ref(), config.auth_mechanism))
            .collect::<Result<Vec<_>>>()?;
        let link = Link::connect(
            urls,
            address.fqn(),
            config.heartbeat,
            config.connect_timeout,
            config.reconnect_backoff,
        )?;
        let fabric = Fabric {
            inner: Arc::new(Inner {
                config: Arc::new(config),
                address: Arc::new(address),
                link,
                caller: Mutex::new(None),
                publisher: Mutex::new(None),
                servers: ServerList::default(),
                workers: Mutex::new(Vec::new()),
                registry: Mutex::new(Registry::default()),
            }),
        };
        // The registry's threads are the fabric's own: they must not hold it open. On
        // failure the fabric is dropped, which closes the connection.
        let registry = Registry::start(
            &fabric.participant_with(Hold::none()),
            &fabric.inner.servers,
        )?;
        *fabric.inner.registry.lock() = registry;
        Ok(fabric)
    }

    /// The configuration this fabric was connected with.
    pub fn config(&self) -> &FabricConfig {
        &self.inner.config
    }

    /// This participant's own address: where its servers answer.
    pub fn address(&self) -> &ServiceAddress {
        &self.inner.address
    }

    /// Closes the connection now: the servers made from this fabric stop (finishing the calls
    /// in hand), then it says goodbye to the registry, calls in flight fail, and later
    /// operations on any clone fail with [`Error::Closed`](crate::Error::Closed).
    pub fn close(&self) -> Result<()> {
        self.inner.close()
    }

    /// Where the connection to the broker stands now.
    pub fn connection_state(&self) -> ConnectionState {
        self.inner.link.state()
    }

    /// Calls `listener` on every change of the connection state, from the thread that saw
    /// it: keep it short. Changes are logged too, at `warn` for a loss and `info` for a
    /// reconnection.
    ///
    /// ```no_run
    /// # fn main() -> fabric_core::Result<()> {
    /// use fabric_core::{ConnectionState, Fabric, FabricConfig};
    ///
    /// let fabric = Fabric::connect(FabricConfig::new("amqp://127.0.0.1", "shop", "orders", "o1"))?;
    /// fabric.on_connection_change(|state| {
    ///     if let ConnectionState::Reconnecting { reason, .. } = state {
    ///         eprintln!("broker lost: {reason}");
    ///     }
    /// });
    /// # Ok(())
    /// # }
    /// ```
    pub fn on_connection_change(
        &self,
        listener: impl Fn(&ConnectionState) + Send + Sync + 'static,
    ) {
        self.inner.link.on_change(Arc::new(listener));
    }

    /// Blocks until the fabric is connected, for at most `timeout`. Returns at once when it
    /// is; fails with [`Error::Unavailable`](crate::Error::Unavailable) if it is still
    /// reconnecting when the time is up, or [`Error::Closed`](crate::Error::Closed).
    pub fn wait_connected(&self, timeout: Duration) -> Result<()> {
        self.inner
            .link
            .wait_newer(0, None, Some(Instant::now() + timeout))
            .map(drop)
            .map_err(|why| why.into_error(timeout))
    }

    /// What the features need of this fabric; the hold keeps it open while they run.
    fn participant(&self) -> Participant {
        self.participant_with(Hold::new(Arc::clone(&self.inner) as Arc<dyn Send + Sync>))
    }

    fn participant_with(&self, hold: Hold) -> Participant {
        let inner = &self.inner;
        Participant::new(
            Arc::clone(&inner.link),
            Arc::clone(&inner.address),
            Arc::clone(&inner.config),
            hold,
        )
    }

    /// The reply thread of this connection, started on first use.
    fn caller(&self) -> Result<Arc<Caller>> {
        started_once(&self.inner.caller, || {
            Caller::start(Arc::clone(&self.inner.link))
        })
    }

    /// The confirming publisher of this connection, started on first use. Across a
    /// reconnection, a publish waits for the connection up to the call timeout.
    fn publisher(&self) -> Result<Arc<ConfirmingPublisher>> {
        started_once(&self.inner.publisher, || {
            let config = &self.inner.config;
            Ok(ConfirmingPublisher::start(
                Arc::clone(&self.inner.link),
                config.publish_window,
                config.call_timeout,
            ))
        })
    }

    /// The registry's table of participants, when this fabric listens to keep-alives.
    fn directory(&self) -> Option<Arc<Directory>> {
        self.inner.registry.lock().directory()
    }
}

/// The thread in `slot`, started by `start` if it is not running yet.
fn started_once<T>(
    slot: &Mutex<Option<Arc<T>>>,
    start: impl FnOnce() -> Result<T>,
) -> Result<Arc<T>> {
    let mut slot = slot.lock();
    if let Some(running) = &*slot {
        return Ok(Arc::clone(running));
    }
    let started = Arc::new(start()?);
    *slot = Some(Arc::clone(&started));
    Ok(started)
}

impl Inner {
    fn close(&self) -> Result<()> {
        // The servers first, so the calls in hand are answered while the connection is up;
        // then the threads, so their consumers are cancelled and their confirms in before
        // the connection goes. The registry before the rest: its goodbye needs the
        // connection.
        let workers = std::mem::take(&mut *self.workers.lock());
        for workers in workers.iter().filter_map(Weak::upgrade) {
            if let Err(e) = workers.stop() {
                log::debug!("fabric: a server stopped with: {e}");
            }
        }
        self.registry.lock().stop();
        if let Some(caller) = self.caller.lock().take() {
            caller.stop();
        }
        if let Some(publisher) = self.publisher.lock().take() {
            publisher.stop();
        }
        self.link.close()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.close();
    }
}
