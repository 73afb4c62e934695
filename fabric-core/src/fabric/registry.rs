//! The registry's entry points: listing and watching the participants this fabric hears.

use std::sync::Arc;
use std::time::Instant;

use super::Fabric;
use crate::address::ServiceAddress;
use crate::contract::Contract;
use crate::error::{Error, Result};
use crate::registry::{
    Directory, ServiceEvent, ServiceEvents, ServiceFilter, ServiceInfo, ServiceWatcher,
};

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
        self.listening()?.list(filter)
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
        ServiceEvents::start(self.participant().hold(), self.listening()?, filter.clone())
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
        ServiceWatcher::start(
            self.participant().hold(),
            self.listening()?,
            filter.clone(),
            callback,
        )
    }

    /// Checks that the service at `address` serves `contract` (usually a generated
    /// `{Trait}Client::contract()`): waits for its keep-alive, at most the discovery TTL
    /// ([`FabricConfig::discovery_ttl`](crate::FabricConfig::discovery_ttl)), and compares
    /// the contract it announces with [`Contract::difference`]. Answers what was heard of the
    /// service. The generated `{Trait}Client::connect_checked` calls it.
    ///
    /// Fails with [`Error::NoSuchService`] when no keep-alive arrived in time, and with
    /// [`Error::ContractMismatch`] naming the first difference, or saying that the service
    /// announces no contract (a Python amqp-fabric service, a hand-written dispatcher).
    /// Needs [`FabricConfig::keep_alive_listen`](crate::FabricConfig::keep_alive_listen),
    /// else fails with [`Error::NotListening`].
    pub fn check_contract(
        &self,
        address: &ServiceAddress,
        contract: &Contract,
    ) -> Result<ServiceInfo> {
        let events = self.service_events(&ServiceFilter::from(address))?;
        let deadline = Instant::now() + self.config().discovery_ttl;
        let mismatch = |difference: String| Error::ContractMismatch {
            service: address.fqn(),
            difference,
        };
        let mut problem = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let info = match events.recv_timeout(left)? {
                Some(ServiceEvent::Appeared(info) | ServiceEvent::Updated(info)) => info,
                Some(_) => continue,
                None => {
                    return Err(problem.unwrap_or_else(|| Error::NoSuchService {
                        service: address.fqn(),
                    }))
                }
            };
            let Some(there) = info.contract() else {
                let no_contract = mismatch(
                    "it announces no contract (an amqp-fabric peer, or a server without one)"
                        .to_owned(),
                );
                // A fabric participant may announce before its server starts; an update
                // follows at once. Any other peer has said all it will say.
                if info.raw.get("fabric").is_none()
                    || info.methods.as_ref().is_some_and(|m| !m.is_empty())
                {
                    return Err(no_contract);
                }
                problem = Some(no_contract);
                continue;
            };
            return match contract.difference(there) {
                None => Ok(info),
                Some(difference) => Err(mismatch(difference)),
            };
        }
    }

    /// The registry's table of participants, or why there is none.
    fn listening(&self) -> Result<Arc<Directory>> {
        self.directory().ok_or(Error::NotListening)
    }
}
