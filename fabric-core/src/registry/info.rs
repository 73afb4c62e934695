//! What the registry tells its users: who was heard, how to ask, and what changed.

use std::time::{Duration, Instant, SystemTime};

use crate::address::ServiceAddress;
use crate::contract::{Contract, ContractHash};

/// One participant as its keep-alives describe it, from [`Fabric::list_services`] or a
/// [`ServiceEvent`].
///
/// A fabric (Rust) participant announces everything below. An amqp-fabric (Python) one sends
/// an empty body, so only its address and [`last_heard`](Self::last_heard) are known and the
/// other fields are `None`.
///
/// Instances of one high-availability clique share an address; fabric participants tell
/// themselves apart by [`instance`](Self::instance), so each is listed on its own. Python
/// peers carry no instance, so a Python clique is one entry, as in amqp-fabric.
///
/// [`Fabric::list_services`]: crate::Fabric::list_services
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ServiceInfo {
    /// Where the participant answers: domain, service type and service id.
    pub address: ServiceAddress,
    /// A token unique to one connection of one process; `None` for amqp-fabric peers.
    pub instance: Option<String>,
    /// The version of its API, as its [`FabricConfig::version`](crate::FabricConfig::version).
    pub version: Option<String>,
    /// The host name of the machine it runs on.
    pub host: Option<String>,
    /// Its process id on that host.
    pub pid: Option<u32>,
    /// When it connected to the broker, by its own clock.
    pub started_at: Option<SystemTime>,
    /// The methods its servers answer, `health_check` included; empty for a participant that
    /// serves nothing (a client).
    pub methods: Option<Vec<String>>,
    /// Calls its servers were running when it sent the keep-alive.
    pub in_flight: Option<usize>,
    /// Worker threads of its servers: how many calls it can run at once.
    pub workers: Option<usize>,
    /// The methods of its servers as their traits wrote them: see [`contract`](Self::contract).
    pub(crate) contract: Option<Contract>,
    /// When this fabric received its latest keep-alive (or goodbye), by this process's
    /// monotonic clock: the time the TTL counts from.
    pub last_heard: Instant,
    /// The keep-alive's body as received: a JSON object from a fabric peer (with fields this
    /// version may not know), `Null` for an empty or unreadable body.
    pub raw: serde_json::Value,
}

impl ServiceInfo {
    /// How long ago the latest keep-alive arrived.
    pub fn age(&self) -> Duration {
        self.last_heard.elapsed()
    }

    /// The contract its servers announce: every method with its parameters, return type and
    /// doc. `None` for an amqp-fabric (Python) peer, a participant that serves nothing, and a
    /// server of a hand-written [`Dispatch`](crate::Dispatch).
    pub fn contract(&self) -> Option<&Contract> {
        self.contract.as_ref()
    }

    /// The stable hash of [`contract`](Self::contract): equal hashes, equal methods.
    pub fn contract_hash(&self) -> Option<ContractHash> {
        self.contract.as_ref().map(Contract::hash)
    }

    /// How long the participant has run, from the `started_at` it announced; `None` when it
    /// announced none (or a start in the future).
    pub fn uptime(&self) -> Option<Duration> {
        self.started_at
            .and_then(|started| SystemTime::now().duration_since(started).ok())
    }

    /// Everything the registry knows of the participant, as JSON: its address (`service` as
    /// `DOMAIN/TYPE/ID`, and `domain`, `type`, `id`), `instance`, `version`, `host`, `pid`,
    /// `started_at` (Unix seconds) and `uptime_seconds`, `in_flight`, `workers`, `methods`,
    /// `contract` and `contract_hash`, and `heard_seconds_ago`; `null` for what it did not
    /// announce. The shape the `fabric` command and the HTTP gateway print.
    pub fn to_json(&self) -> serde_json::Value {
        let address = &self.address;
        let unix_seconds = |time: SystemTime| {
            time.duration_since(SystemTime::UNIX_EPOCH)
                .ok()
                .map(|since| since.as_secs_f64())
        };
        serde_json::json!({
            "service": format!(
                "{}/{}/{}",
                address.domain(),
                address.service_type(),
                address.service_id()
            ),
            "domain": address.domain(),
            "type": address.service_type(),
            "id": address.service_id(),
            "instance": self.instance,
            "version": self.version,
            "host": self.host,
            "pid": self.pid,
            "started_at": self.started_at.and_then(unix_seconds),
            "uptime_seconds": self.uptime().map(|d| d.as_secs_f64()),
            "in_flight": self.in_flight,
            "workers": self.workers,
            "methods": self.methods,
            "contract_hash": self.contract_hash().map(|h| h.to_string()),
            "contract": self.contract(),
            "heard_seconds_ago": self.age().as_secs_f64(),
        })
    }

    /// Whether the two describe the participant alike, ignoring when they were heard and
    /// the raw body: what makes an [`ServiceEvent::Updated`].
    pub(crate) fn same_content(&self, other: &ServiceInfo) -> bool {
        self.address == other.address
            && self.instance == other.instance
            && self.version == other.version
            && self.host == other.host
            && self.pid == other.pid
            && self.started_at == other.started_at
            && self.methods == other.methods
            && self.in_flight == other.in_flight
            && self.workers == other.workers
            && self.contract == other.contract
    }
}

/// Which participants a listing or a watch is about: by domain, service type and service id,
/// each optional.
///
/// Each part given must match exactly. (amqp-fabric matches the domain as a prefix, so its
/// filter for domain `shop` also lists `shop-test`; and its filter by id fails.)
///
/// ```
/// use fabric_core::{ServiceAddress, ServiceFilter};
///
/// let calc = ServiceAddress::new("shop", "calc", "c1")?;
/// assert!(ServiceFilter::any().matches(&calc));
/// assert!(ServiceFilter::any().domain("shop").service_type("calc").matches(&calc));
/// assert!(ServiceFilter::any().service_id("c1").matches(&calc));
/// assert!(!ServiceFilter::any().domain("sho").matches(&calc));
/// assert!(!ServiceFilter::any().domain("shop").service_id("c2").matches(&calc));
/// # Ok::<(), fabric_core::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ServiceFilter {
    domain: Option<String>,
    service_type: Option<String>,
    service_id: Option<String>,
}

impl ServiceFilter {
    /// A filter that matches every participant; narrow it with the other methods.
    pub fn any() -> ServiceFilter {
        ServiceFilter::default()
    }

    /// Only participants of this domain.
    pub fn domain(mut self, domain: &str) -> Self {
        self.domain = Some(domain.to_owned());
        self
    }

    /// Only participants of this service type.
    pub fn service_type(mut self, service_type: &str) -> Self {
        self.service_type = Some(service_type.to_owned());
        self
    }

    /// Only participants with this service id.
    pub fn service_id(mut self, service_id: &str) -> Self {
        self.service_id = Some(service_id.to_owned());
        self
    }

    /// Whether `address` passes the filter.
    pub fn matches(&self, address: &ServiceAddress) -> bool {
        fn part(wanted: &Option<String>, actual: &str) -> bool {
            wanted.as_deref().is_none_or(|wanted| wanted == actual)
        }
        part(&self.domain, address.domain())
            && part(&self.service_type, address.service_type())
            && part(&self.service_id, address.service_id())
    }
}

impl std::fmt::Display for ServiceFilter {
    /// As an FQN with `*` for each part that matches anything: `shop.*.c1`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let part = |name: &Option<String>| name.clone().unwrap_or_else(|| "*".to_owned());
        write!(
            f,
            "{}.{}.{}",
            part(&self.domain),
            part(&self.service_type),
            part(&self.service_id)
        )
    }
}

impl From<&ServiceAddress> for ServiceFilter {
    /// The filter for exactly one address (every instance of its clique).
    fn from(address: &ServiceAddress) -> ServiceFilter {
        ServiceFilter::any()
            .domain(address.domain())
            .service_type(address.service_type())
            .service_id(address.service_id())
    }
}

/// A change in the set of participants a watch follows.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ServiceEvent {
    /// A participant not listed before sent a keep-alive. A new watch also starts with one
    /// of these for each participant already listed.
    Appeared(ServiceInfo),
    /// A listed participant's keep-alive says something new: other methods, version, or
    /// load (calls in flight). Keep-alives that repeat the last one make no event.
    Updated(ServiceInfo),
    /// The participant said goodbye: it closed gracefully.
    Left(ServiceInfo),
    /// No keep-alive from the participant within the TTL
    /// ([`FabricConfig::discovery_ttl`](crate::FabricConfig::discovery_ttl)): it crashed,
    /// lost its connection, or is a Python peer that stopped (they send no goodbye).
    Silent(ServiceInfo),
}

impl ServiceEvent {
    /// The participant the event is about, as last heard.
    pub fn info(&self) -> &ServiceInfo {
        match self {
            ServiceEvent::Appeared(info)
            | ServiceEvent::Updated(info)
            | ServiceEvent::Left(info)
            | ServiceEvent::Silent(info) => info,
        }
    }

    /// The participant the event is about, taken out of the event.
    pub fn into_info(self) -> ServiceInfo {
        match self {
            ServiceEvent::Appeared(info)
            | ServiceEvent::Updated(info)
            | ServiceEvent::Left(info)
            | ServiceEvent::Silent(info) => info,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_whole_names_only() {
        let address = ServiceAddress::new("shop", "calc", "c1").unwrap();
        let exact = ServiceFilter::from(&address);
        assert!(exact.matches(&address));
        for other in [
            ("shop", "calc", "c2"),
            ("shop", "calcs", "c1"),
            ("shop-test", "calc", "c1"),
        ] {
            let other = ServiceAddress::new(other.0, other.1, other.2).unwrap();
            assert!(!exact.matches(&other), "{other}");
        }
        assert!(!ServiceFilter::any().service_type("cal").matches(&address));
        assert!(ServiceFilter::any().service_id("c1").matches(&address));
        assert_eq!(ServiceFilter::any().service_id("c1").to_string(), "*.*.c1");
        assert_eq!(exact.to_string(), "shop.calc.c1");
    }
}
