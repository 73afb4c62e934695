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
//!               "workers": 8, "in_flight": 1}]}
//! ```
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
mod watch;
mod wire;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

pub use info::{ServiceEvent, ServiceFilter, ServiceInfo};

use crate::token::unique_token;
pub use watch::{ServiceEvents, ServiceWatcher};

pub(crate) use announcer::ServerList;
pub(crate) use directory::Directory;

use crate::broker::consumer::{self, ConsumerSpec, Disposition, Subscription};
use crate::{Error, Fabric, Result};
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
    /// `keep_alive`), so a fabric that does both hears its own first keep-alive. Returns once
    /// everything is declared on the broker; holds no clone of `fabric`.
    pub(crate) fn start(fabric: &Fabric) -> Result<Registry> {
        let config = fabric.config();
        let address = fabric.address();
        // Dropped on an early return, which stops whatever had started.
        let mut registry = Registry::default();
        if config.keep_alive_listen {
            let (directory, woken) = Directory::new(config.discovery_ttl);
            registry.reaper = Some(Reaper::start(Arc::clone(&directory), woken)?);
            let queue = wire::listener_queue(address, &unique_token());
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
            registry.listener = Some(consumer::spawn_on(
                Arc::clone(fabric.link()),
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
                Arc::clone(fabric.link()),
                &config.discovery_exchange,
                interval,
                identity,
                fabric.servers(),
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

/// The directory of `fabric`, or why there is none.
fn directory_of(fabric: &Fabric) -> Result<Arc<Directory>> {
    fabric.registry_directory().ok_or(Error::NotListening)
}

impl Fabric {
    /// The participants heard within the TTL whose address passes `filter`, sorted by name:
    /// one entry per instance (see [`ServiceInfo`]), this one included if it announces itself.
    ///
    /// Needs [`FabricConfig::keep_alive_listen`](crate::FabricConfig::keep_alive_listen),
    /// else fails with [`Error::NotListening`]. Right after connecting the list is empty
    /// until the participants' next keep-alives arrive: wait for them with
    /// [`service_events`](Self::service_events) rather than sleeping.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use fabric_core::{Fabric, FabricConfig, ServiceFilter};
    ///
    /// let url = "amqp://guest:guest@127.0.0.1:5672/%2f";
    /// let fabric = Fabric::connect(
    ///     FabricConfig::new(url, "my_project", "console", "c1").keep_alive_listen(true),
    /// )?;
    /// # std::thread::sleep(Duration::from_secs(2));
    /// for service in fabric.list_services(&ServiceFilter::any().domain("my_project"))? {
    ///     println!(
    ///         "{} version {:?}, {:?} calls in flight, heard {:?} ago",
    ///         service.address,
    ///         service.version,
    ///         service.in_flight,
    ///         service.age()
    ///     );
    /// }
    /// # Ok::<(), fabric_core::Error>(())
    /// ```
    pub fn list_services(&self, filter: &ServiceFilter) -> Result<Vec<ServiceInfo>> {
        directory_of(self)?.list(filter)
    }

    /// Watches the participants that pass `filter`: the returned [`ServiceEvents`] first
    /// holds [`ServiceEvent::Appeared`] for each one listed now, then every change as it
    /// happens. Dropping it ends the watch.
    ///
    /// Needs [`FabricConfig::keep_alive_listen`](crate::FabricConfig::keep_alive_listen),
    /// else fails with [`Error::NotListening`].
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use fabric_core::{Fabric, FabricConfig, ServiceEvent, ServiceFilter};
    ///
    /// let url = "amqp://guest:guest@127.0.0.1:5672/%2f";
    /// let fabric = Fabric::connect(
    ///     FabricConfig::new(url, "my_project", "console", "c1").keep_alive_listen(true),
    /// )?;
    /// let events = fabric.service_events(&ServiceFilter::any().service_type("server_app"))?;
    /// while let Some(event) = events.recv_timeout(Duration::from_secs(10))? {
    ///     match event {
    ///         ServiceEvent::Appeared(s) => println!("{} is up", s.address),
    ///         ServiceEvent::Left(s) | ServiceEvent::Silent(s) => println!("{} is gone", s.address),
    ///         _ => {}
    ///     }
    /// }
    /// # Ok::<(), fabric_core::Error>(())
    /// ```
    pub fn service_events(&self, filter: &ServiceFilter) -> Result<ServiceEvents> {
        ServiceEvents::start(self, directory_of(self)?, filter.clone())
    }

    /// Calls `callback` with each change among the participants that pass `filter`, on a
    /// thread of its own, starting with [`ServiceEvent::Appeared`] for each one listed now.
    /// The watch lasts until the returned [`ServiceWatcher`] is dropped.
    ///
    /// Needs [`FabricConfig::keep_alive_listen`](crate::FabricConfig::keep_alive_listen),
    /// else fails with [`Error::NotListening`].
    ///
    /// ```no_run
    /// use fabric_core::{Fabric, FabricConfig, ServiceFilter};
    ///
    /// let url = "amqp://guest:guest@127.0.0.1:5672/%2f";
    /// let fabric = Fabric::connect(
    ///     FabricConfig::new(url, "my_project", "console", "c1").keep_alive_listen(true),
    /// )?;
    /// let _watcher = fabric.watch_services(&ServiceFilter::any(), |event| println!("{event:?}"))?;
    /// // ... events are printed until `_watcher` goes out of scope.
    /// # Ok::<(), fabric_core::Error>(())
    /// ```
    pub fn watch_services<F>(&self, filter: &ServiceFilter, callback: F) -> Result<ServiceWatcher>
    where
        F: FnMut(ServiceEvent) + Send + 'static,
    {
        ServiceWatcher::start(self, directory_of(self)?, filter.clone(), callback)
    }
}

/// This machine's name, as the kernel or the environment tells it (std has no call for it).
fn host_name() -> Option<String> {
    let from_kernel = std::fs::read_to_string("/proc/sys/kernel/hostname").ok();
    from_kernel
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
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
