//! The decentralized registry: who is out there, learned from keep-alives.
//!
//! There is no registry server to run, to keep highly available, or to lose. Each participant
//! with [`FabricConfig::keep_alive`](crate::FabricConfig::keep_alive) announces itself on the
//! discovery exchange (`msc.discovery`) every interval, and each participant with
//! [`FabricConfig::keep_alive_listen`](crate::FabricConfig::keep_alive_listen) hears every
//! announcement and keeps its own table of who was heard within the TTL. This is
//! amqp-fabric's protocol, so Rust and Python participants list each other.
//!
//! # Threads
//!
//! - `fabric-keepalive` announces, on a channel of its own. It is never a worker of a server,
//!   so a server whose workers are all busy keeps announcing: busy is not dead. It waits for
//!   the next beat on a crossbeam channel that also tells it to stop, so a closing fabric
//!   says goodbye at once. After a reconnection it declares the discovery exchange again
//!   and announces at once.
//! - `fabric-registry` is a consumer thread of its own queue, which fills the table; after a
//!   reconnection it declares the same queue again and goes on. The table is kept across the
//!   break: participants not heard meanwhile go silent by their TTL, as they would anyway.
//! - `fabric-registry-ttl` reports participants silent when their TTL runs out, sleeping
//!   until the next deadline.
//!
//! # On the wire
//!
//! A keep-alive is published to the discovery exchange (headers, durable) with routing key
//! `""` and amqp-fabric's headers `msg_type=keep_alive`, `service_domain`, `service_type`,
//! `service_id`. amqp-fabric sends an empty body; fabric sends a JSON object, which Python
//! listeners read with `json.loads` and keep:
//!
//! ```json
//! {"fabric": "0.1.0", "instance": "5f0c2a9e1b7d4c36", "version": "1.2.0", "host": "box",
//!  "pid": 4242, "started_at": 1732245600.25, "keep_alive": 1.0,
//!  "methods": ["multiply", "divide", "health_check"], "in_flight": 1, "workers": 8,
//!  "servers": [{"service": "Multiplier", "methods": ["multiply", "divide", "health_check"],
//!               "workers": 8, "in_flight": 1, "contract_hash": "3f1c9a0e5b7d2c44"}],
//!  "contract": {"service": "Multiplier", "methods": [
//!     {"name": "multiply", "params": [{"name": "x", "type": "i64"}, {"name": "y", "type": "i64"}],
//!      "returns": "i64", "doc": "Multiplies two numbers.", "idempotent": true, "fallible": false},
//!     {"name": "divide", "params": [{"name": "x", "type": "i64"}, {"name": "y", "type": "i64"}],
//!      "returns": "Result<i64, DivError>", "doc": "", "idempotent": false, "fallible": true}]},
//!  "contract_hash": "3f1c9a0e5b7d2c44"}
//! ```
//!
//! `contract` is the servers' [`Contract`](crate::Contract) (absent for a server of a
//! hand-written dispatcher), read back by [`ServiceInfo::contract`].
//!
//! A fabric that closes gracefully sends the same message with `msg_type=goodbye`, so its
//! watchers learn at once instead of a TTL later; when its servers start or stop, it sends it
//! at once with `msg_type=update`. Python listeners bind `msg_type=keep_alive` only and never
//! see either: an update that a server's stop sends just before the goodbye would otherwise
//! keep the leaving participant listed in Python for a whole TTL.
//!
//! # Where fabric differs from amqp-fabric
//!
//! - amqp-fabric's listeners of one clique share the queue `{domain}.{type}.{id}.subscriber`,
//!   so each of them hears only part of the keep-alives. Each fabric listener has its own
//!   exclusive queue, `{domain}.{type}.{id}.subscriber.{token}`, gone with its connection.
//! - Instances of a clique share an address; fabric lists each instance on its own (by the
//!   `instance` of its keep-alives). Python peers carry no instance: one entry per address.
//! - Filters match whole names, and filtering by service id works.

mod announcer;
mod directory;
mod info;
mod servers;
mod watch;
mod wire;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

pub use info::{ServiceEvent, ServiceFilter, ServiceInfo};
pub use watch::{ServiceEvents, ServiceWatcher};

pub(crate) use directory::Directory;
pub(crate) use servers::{ServerList, ServerLoad};

use crate::broker::consumer::{self, ConsumerSpec, Disposition, Subscription};
use crate::broker::hold::Hold;
use crate::error::Result;
use crate::participant::Participant;
use crate::token::unique_token;
use announcer::{Announcer, Identity};
use directory::Reaper;

/// Deliveries the listener may hold before it acks: keep-alives are small and quick to file.
const LISTENER_PREFETCH: u16 = 64;

/// The registry threads of one fabric, as its configuration asks for them. Stopping it says
/// goodbye first.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    announcer: Option<Announcer>,
    listener: Option<Subscription>,
    reaper: Option<Reaper>,
    /// Kept after a stop, closed, so that listing then fails with [`Error::Closed`].
    directory: Option<Arc<Directory>>,
}

impl Registry {
    /// Starts the listener (if `keep_alive_listen`) and then the keep-alive thread (if
    /// `keep_alive`, announcing `servers`), so a participant that does both hears its own
    /// first keep-alive. Returns once everything is declared on the broker. The threads are
    /// the fabric's own: they hold nothing that would keep it open.
    pub(crate) fn start(participant: &Participant, servers: &ServerList) -> Result<Registry> {
        let config = participant.config();
        let address = participant.address();
        // Dropped on an early return, which stops whatever had started.
        let mut registry = Registry::default();
        if config.keep_alive_listen {
            let (directory, woken) = Directory::new(config.discovery_ttl);
            registry.reaper = Some(Reaper::start(Arc::clone(&directory), woken)?);
            let queue = address.listener_queue(&unique_token());
            let spec = ConsumerSpec {
                thread_name: "fabric-registry".to_owned(),
                declarations: wire::listener_topology(&config.discovery_exchange, &queue),
                queue,
                prefetch: LISTENER_PREFETCH,
            };
            let table = Arc::clone(&directory);
            let handler = move |incoming| {
                match wire::parse(&incoming, Instant::now()) {
                    Ok(heard) => table.heard(heard),
                    Err(reason) => log::debug!("fabric: ignored a discovery message: {reason}"),
                }
                // Filed or unreadable, a keep-alive is never worth a second look.
                Disposition::Ack
            };
            registry.listener = Some(consumer::spawn(
                Arc::clone(participant.link()),
                Hold::none(),
                spec,
                handler,
            )?);
            registry.directory = Some(directory);
        }
        if let Some(interval) = config.keep_alive {
            if config.keep_alive_listen && config.discovery_ttl <= interval {
                log::warn!(
                    "fabric: the discovery TTL ({:?}) is not longer than the keep-alive interval ({interval:?}): listeners like this one will see {address} come and go",
                    config.discovery_ttl
                );
            }
            let identity = Identity {
                address: address.clone(),
                instance: unique_token(),
                version: config.version.clone(),
                host: host_name(),
                pid: std::process::id(),
                started_at: SystemTime::now(),
            };
            registry.announcer = Some(Announcer::start(
                Arc::clone(participant.link()),
                &config.discovery_exchange,
                interval,
                identity,
                Arc::clone(servers),
            )?);
        }
        Ok(registry)
    }

    /// The table of participants, when listening.
    pub(crate) fn directory(&self) -> Option<Arc<Directory>> {
        self.directory.clone()
    }

    /// Says goodbye and stops the threads; the connection must still be open for the goodbye
    /// to go out. Idempotent.
    pub(crate) fn stop(&mut self) {
        if let Some(mut announcer) = self.announcer.take() {
            announcer.stop();
        }
        if let Some(listener) = self.listener.take() {
            if let Err(e) = listener.close() {
                log::debug!("fabric: the registry listener ended with: {e}");
            }
        }
        if let Some(mut reaper) = self.reaper.take() {
            reaper.stop();
        }
        if let Some(directory) = &self.directory {
            directory.close();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// This machine's name, as the operating system tells it; `None` if it will not, or the name
/// is not text.
fn host_name() -> Option<String> {
    hostname::get()
        .ok()
        .and_then(|name| name.into_string().ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watches_can_move_to_other_threads() {
        fn send_and_sync<T: Send + Sync>() {}
        send_and_sync::<ServiceEvents>();
        send_and_sync::<ServiceWatcher>();
        send_and_sync::<ServiceEvent>();
    }
}
