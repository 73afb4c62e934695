//! The connection handle every feature starts from.

use std::sync::Arc;

use amiquip::Channel;
use parking_lot::Mutex;

use crate::broker::link::{ConnectionState, Link};
use crate::broker::publisher::ConfirmingPublisher;
use crate::broker::url::BrokerUrl;
use crate::registry::{Directory, Registry, ServerList};
use crate::rpc::{Caller, ServerLoad};
use crate::{Error, FabricConfig, Result, ServiceAddress};

/// A participant's connection to the broker: cheap to clone, shared by its clients and
/// servers. The connection closes when the last clone (and every client and server made from
/// it) is dropped, or at [`close`](Self::close).
#[derive(Clone)]
pub struct Fabric {
    inner: Arc<Inner>,
}

struct Inner {
    config: FabricConfig,
    address: ServiceAddress,
    /// The connection, reconnected when it breaks.
    link: Arc<Link>,
    /// The reply thread, started by the first client.
    caller: Mutex<Option<Arc<Caller>>>,
    /// The confirming publisher of data and events, started by the first publish.
    publisher: Mutex<Option<Arc<ConfirmingPublisher>>>,
    /// The servers running on this connection, shared with the keep-alive thread.
    servers: ServerList,
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
    /// none of the URLs reaches as [`Error::Connect`], a failed TLS handshake as
    /// [`Error::Tls`], a refused login or virtual host as [`Error::AccessRefused`].
    /// Once connected, the fabric reconnects by itself whenever the connection breaks (see
    /// [`connection_state`](Self::connection_state)).
    pub fn connect(config: FabricConfig) -> Result<Fabric> {
        let address =
            ServiceAddress::new(&config.domain, &config.service_type, &config.service_id)?;
        let urls = config
            .urls
            .iter()
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
                config,
                address,
                link,
                caller: Mutex::new(None),
                publisher: Mutex::new(None),
                servers: ServerList::default(),
                registry: Mutex::new(Registry::default()),
            }),
        };
        // On failure the fabric is dropped, which closes the connection.
        let registry = Registry::start(&fabric)?;
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

    /// Closes the connection now. Calls in flight fail, servers made from this fabric stop,
    /// and later operations on any clone fail with [`Error::Closed`].
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
    /// is; fails with [`Error::Unavailable`] if it is still reconnecting when the time is up,
    /// or [`Error::Closed`].
    pub fn wait_connected(&self, timeout: std::time::Duration) -> Result<()> {
        let deadline = std::time::Instant::now() + timeout;
        self.inner
            .link
            .wait_newer(0, None, Some(deadline))
            .map(drop)
            .map_err(|why| unavailable(why, timeout))
    }

    /// The connection the fabric's threads share, for those that restart with it.
    pub(crate) fn link(&self) -> &Arc<Link> {
        &self.inner.link
    }

    /// Opens a new channel on the connection.
    pub(crate) fn open_channel(&self) -> Result<Channel> {
        self.inner.link.open_channel().map(|(channel, _)| channel)
    }

    /// The reply thread of this connection, started on first use.
    pub(crate) fn caller(&self) -> Result<Arc<Caller>> {
        started_once(&self.inner.caller, || {
            Caller::start(Arc::clone(&self.inner.link))
        })
    }

    /// The confirming publisher of this connection, started on first use. Across a
    /// reconnection, a publish waits for the connection up to the call timeout.
    pub(crate) fn publisher(&self) -> Result<Arc<ConfirmingPublisher>> {
        started_once(&self.inner.publisher, || {
            let config = &self.inner.config;
            Ok(ConfirmingPublisher::start(
                Arc::clone(&self.inner.link),
                config.publish_window,
                config.call_timeout,
            ))
        })
    }

    /// Records a server that runs on this connection.
    pub(crate) fn register_server(&self, load: &Arc<ServerLoad>) {
        self.inner.servers.lock().push(Arc::clone(load));
    }

    /// Forgets a server that stopped.
    pub(crate) fn unregister_server(&self, load: &Arc<ServerLoad>) {
        self.inner.servers.lock().retain(|s| !Arc::ptr_eq(s, load));
    }

    /// The servers running on this connection, as a list the keep-alive thread reads.
    pub(crate) fn servers(&self) -> ServerList {
        Arc::clone(&self.inner.servers)
    }

    /// The registry's table of participants, when this fabric listens to keep-alives.
    pub(crate) fn registry_directory(&self) -> Option<Arc<Directory>> {
        self.inner.registry.lock().directory()
    }

    /// Whether a queue exists, asked on a throwaway channel: a failed passive declare closes
    /// the channel it was made on.
    pub(crate) fn queue_exists(&self, queue: &str) -> Result<bool> {
        let channel = self.open_channel()?;
        match channel.queue_declare_passive(queue) {
            Ok(_) => {
                let _ = channel.close();
                Ok(true)
            }
            Err(amiquip::Error::ServerClosedChannel { code: 404, .. }) => Ok(false),
            Err(e) => Err(Error::broker(format!("look up queue {queue}"), e)),
        }
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
        // The threads first, so their consumers are cancelled and their confirms in before
        // the connection goes. The registry before all: its goodbye needs the connection.
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

/// The error of a wait for the connection that did not end connected.
pub(crate) fn unavailable(
    why: crate::broker::link::Unavailable,
    waited: std::time::Duration,
) -> Error {
    use crate::broker::link::Unavailable;
    match why {
        Unavailable::Closed | Unavailable::Stopped => Error::Closed,
        Unavailable::TimedOut(reason) => Error::Unavailable { reason, waited },
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.close();
    }
}
