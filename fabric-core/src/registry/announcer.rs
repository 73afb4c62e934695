//! The keep-alive thread, `fabric-keepalive`: announces its participant every interval and
//! says goodbye when stopped.
//!
//! It is a thread of its own, with a channel of its own, so that a server whose workers are
//! all busy still announces itself: a busy server is not a dead one. It runs under
//! `run_sessions`, so after a reconnection it declares the discovery exchange on a new
//! channel and announces again at once.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use amiquip::{Channel, Publish};
use crossbeam_channel::{at, bounded, never, select, Receiver};

use super::servers::ServerList;
use super::wire::{self, Announcement, Kind, ServerAnnouncement};
use crate::address::ServiceAddress;
use crate::broker::link::Link;
use crate::broker::sessions::{run_sessions, Session, Start};
use crate::broker::topology;
use crate::contract::Contract;
use crate::error::{Error, Result};
use crate::thread::StoppableThread;

/// Who is announcing: what stays the same in every keep-alive.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub address: ServiceAddress,
    pub instance: String,
    pub version: String,
    pub host: Option<String>,
    pub pid: u32,
    pub started_at: SystemTime,
}

/// The handle of a running keep-alive thread. Dropping it (or [`stop`](Self::stop)) makes
/// the thread say goodbye and end.
#[derive(Debug)]
pub(crate) struct Announcer {
    thread: StoppableThread<Result<()>>,
}

struct Run {
    exchange: String,
    interval: Duration,
    identity: Identity,
    servers: ServerList,
}

impl Announcer {
    /// Starts the `fabric-keepalive` thread on `link`. On each connection it declares the
    /// discovery exchange on a channel of its own, then announces at once, every `interval`
    /// and whenever a server starts or stops. Returns once the first connection's
    /// declaration is done (or with the error it failed with).
    pub(crate) fn start(
        link: Arc<Link>,
        exchange: &str,
        interval: Duration,
        identity: Identity,
        servers: ServerList,
    ) -> Result<Announcer> {
        let run = Run {
            exchange: exchange.to_owned(),
            // A zero interval would announce in a busy loop.
            interval: interval.max(Duration::from_millis(10)),
            identity,
            servers,
        };
        let (ready_tx, ready_rx) = bounded(1);
        let thread = StoppableThread::spawn("fabric-keepalive", move |stopped| {
            let what = format!("the keep-alive of {}", run.identity.address);
            run_sessions(&link, &what, Start::Strict, &stopped, ready_tx, |session| {
                run.announce(session, &stopped)
            })
        })?;
        ready_rx.recv().unwrap_or(Err(Error::Closed))?;
        Ok(Announcer { thread })
    }

    /// Says goodbye, closes the thread's channel and waits for it: when this returns, the
    /// goodbye is with the broker (or the connection was gone already).
    pub(crate) fn stop(&mut self) {
        if let Some(Err(e)) = self.thread.stop() {
            log::debug!("fabric: the keep-alive thread ended with: {e}");
        }
    }
}

impl Run {
    /// One session: declares the discovery exchange (again, after a reconnection: a
    /// restarted broker may have lost it), then announces until told to stop (`Ok`, after
    /// the goodbye) or the channel fails (`Err`: `run_sessions` starts over on the next
    /// connection, announcing at once).
    fn announce(&self, session: &mut Session<'_>, stopped: &Receiver<()>) -> Result<()> {
        let channel = session.channel;
        topology::declare(channel, &[wire::discovery_exchange(&self.exchange)])?;
        session.ready();
        if session.restart {
            log::info!(
                "fabric: {} announces itself again on the new connection",
                self.identity.address
            );
        }
        let changes = self.servers.changes().clone();
        let mut next = Some(Instant::now());
        loop {
            // A change of servers goes out at once, to fabric listeners only: a Python
            // listener would take it for a keep-alive, and one sent as a server stops, just
            // before the goodbye Python never hears, would keep a leaving participant listed
            // there for a whole TTL.
            let kind = select! {
                recv(stopped) -> _ => break,
                recv(changes) -> _ => Kind::Update,
                recv(next.map_or_else(never, at)) -> _ => Kind::KeepAlive,
            };
            if let Err(e) = self.publish(channel, kind) {
                log::warn!(
                    "fabric: {} cannot announce itself ({e}); again on the next connection",
                    self.identity.address
                );
                return Err(e);
            }
            // Counted from the last keep-alive, which is what every listener's TTL counts
            // from. (An interval too long to count means "once".)
            if kind == Kind::KeepAlive {
                next = Instant::now().checked_add(self.interval);
            }
        }
        if let Err(e) = self.publish(channel, Kind::Goodbye) {
            log::debug!(
                "fabric: {} left without a goodbye: {e}",
                self.identity.address
            );
        }
        // `run_sessions` closes the channel, a round trip after the publish: the broker has
        // the goodbye when the thread ends.
        Ok(())
    }

    fn publish(&self, channel: &Channel, kind: Kind) -> Result<()> {
        let now = SystemTime::now();
        let body = serde_json::to_vec(&self.announcement()).map_err(|e| Error::Codec {
            context: "encode a keep-alive".to_owned(),
            reason: e.to_string(),
        })?;
        let properties =
            wire::properties(kind, &self.identity.address, &self.identity.version, now);
        channel
            .basic_publish(
                self.exchange.as_str(),
                Publish::with_properties(&body, "", properties),
            )
            .map_err(|e| Error::broker("publish a keep-alive", e))
    }

    /// The body of a keep-alive: who this is, and the load of its servers right now.
    fn announcement(&self) -> Announcement<'_> {
        let servers: Vec<ServerAnnouncement> = self
            .servers
            .snapshot()
            .iter()
            .map(|load| ServerAnnouncement {
                service: load.service,
                methods: load.methods.clone(),
                workers: load.workers,
                in_flight: load.in_flight(),
                contract_hash: load.contract.as_ref().map(|c| c.hash().to_string()),
            })
            .collect();
        let contract =
            Contract::merged(self.servers.snapshot().iter().map(|s| s.contract.as_ref()));
        let mut methods: Vec<&'static str> = Vec::new();
        for method in servers.iter().flat_map(|s| &s.methods) {
            if !methods.contains(method) {
                methods.push(method);
            }
        }
        let identity = &self.identity;
        Announcement {
            fabric: env!("CARGO_PKG_VERSION"),
            instance: &identity.instance,
            version: &identity.version,
            host: identity.host.as_deref(),
            pid: identity.pid,
            started_at: wire::unix_seconds(identity.started_at),
            keep_alive: self.interval.as_secs_f64(),
            methods,
            in_flight: servers.iter().map(|s| s.in_flight).sum(),
            workers: servers.iter().map(|s| s.workers).sum(),
            servers,
            contract_hash: contract.as_ref().map(|c| c.hash().to_string()),
            contract,
        }
    }
}
