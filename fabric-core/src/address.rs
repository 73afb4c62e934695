//! Service names and every AMQP name derived from them, as amqp-fabric forms them, with the
//! rules a name the broker gets must follow.

use std::fmt;

use crate::error::{Error, Result};

/// The longest AMQP short string: the limit for queue and exchange names, and routing keys.
pub(crate) const AMQP_NAME_MAX: usize = 255;
/// The longest dot-separated segment amqp-fabric accepts.
const SEGMENT_MAX: usize = 63;

/// Where a service lives: domain, service type and service id.
///
/// Services with the same address form a high-availability clique: they consume the same
/// queues and the broker hands each call to one of them.
///
/// Two different addresses never share an exchange or a queue: beyond amqp-fabric's rules,
/// fabric refuses a service type or id with a `.` in it and a domain with a segment `api`
/// (see [`new`](Self::new)).
///
/// ```
/// use fabric_core::ServiceAddress;
///
/// let addr = ServiceAddress::new("my_project", "server_app", "my_app")?;
/// assert_eq!(addr.fqn(), "my_project.server_app.my_app");
/// assert_eq!(addr.exchange(), "my_project.api.server_app.my_app");
/// assert_eq!(addr.method_queue("multiply"), "my_project.api.server_app.my_app::multiply");
/// assert!(ServiceAddress::new("my project", "t", "i").is_err());
/// # Ok::<(), fabric_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceAddress {
    domain: String,
    service_type: String,
    service_id: String,
}

impl ServiceAddress {
    /// Checks the three names against amqp-fabric's rules (dot-separated segments of 1 to
    /// 63 ASCII letters, digits, `-` or `_`) and fabric's rule that no two addresses share
    /// an exchange: the service type and the service id are one segment each (no `.`), and
    /// no segment of the domain is `api`.
    ///
    /// amqp-fabric allows both, and then `{domain}.api.{type}.{id}` is ambiguous: domain `p`,
    /// type `a.b`, id `c` and domain `p`, type `a`, id `b.c` share the exchange `p.api.a.b.c`
    /// and so their queues; domain `p.api.acc`, type `q`, id `r` and domain `p`, type `acc`,
    /// id `api.q.r` share `p.api.acc.api.q.r`. With one-segment types and ids the exchange
    /// (and the name `{domain}.{type}.{id}`) ends with the type and the id, so it tells them
    /// apart; without `api` in domains, no service exchange is also some domain's data,
    /// events or log exchange (`a.api.b` + `.data` is service `a`/`b`/`data`'s exchange).
    ///
    /// ```
    /// use fabric_core::ServiceAddress;
    ///
    /// assert!(ServiceAddress::new("org.team", "billing", "b1").is_ok());
    /// assert!(ServiceAddress::new("p", "acc", "api.q.r").is_err());
    /// assert!(ServiceAddress::new("p.api.acc", "q", "r").is_err());
    /// ```
    pub fn new(domain: &str, service_type: &str, service_id: &str) -> Result<ServiceAddress> {
        let address = ServiceAddress::announced(domain, service_type, service_id)?;
        check_unambiguous(&address)?;
        Ok(address)
    }

    /// An address another participant announced: checked against amqp-fabric's rules only,
    /// so that the registry lists a Python service whose name fabric would not take itself
    /// (fabric refuses to call it, in [`new`](Self::new)).
    pub(crate) fn announced(
        domain: &str,
        service_type: &str,
        service_id: &str,
    ) -> Result<ServiceAddress> {
        check_name("domain", domain)?;
        check_name("service type", service_type)?;
        check_name("service id", service_id)?;
        let address = ServiceAddress {
            domain: domain.to_owned(),
            service_type: service_type.to_owned(),
            service_id: service_id.to_owned(),
        };
        // The longest derived name is a method queue; the shortest method leaves this much room.
        let exchange = address.exchange();
        if exchange.len() + "::x".len() > AMQP_NAME_MAX {
            return Err(Error::InvalidName {
                kind: "service address",
                name: address.fqn(),
                reason: format!("its exchange name {exchange:?} leaves no room for method queues (AMQP names have at most {AMQP_NAME_MAX} bytes)"),
            });
        }
        Ok(address)
    }

    /// The domain: a group of services that talk to each other.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The service type: services of one type offer the same API.
    pub fn service_type(&self) -> &str {
        &self.service_type
    }

    /// The service id: tells apart services of one type.
    pub fn service_id(&self) -> &str {
        &self.service_id
    }

    /// The fully qualified name, `{domain}.{type}.{id}`.
    pub fn fqn(&self) -> String {
        format!("{}.{}.{}", self.domain, self.service_type, self.service_id)
    }

    /// The service's RPC exchange, `{domain}.api.{type}.{id}`.
    pub fn exchange(&self) -> String {
        format!(
            "{}.api.{}.{}",
            self.domain, self.service_type, self.service_id
        )
    }

    /// The queue of one method, `{exchange}::{method}`; also its routing key.
    pub fn method_queue(&self, method: &str) -> String {
        format!("{}::{}", self.exchange(), method)
    }

    /// The queue of `method`, after checking that it makes a valid queue name.
    pub fn checked_method_queue(&self, method: &str) -> Result<String> {
        let invalid = |reason: String| Error::InvalidName {
            kind: "method",
            name: method.to_owned(),
            reason,
        };
        if method.is_empty() {
            return Err(invalid("a method name cannot be empty".into()));
        }
        if method.contains("::") {
            return Err(invalid("a method name cannot contain `::`".into()));
        }
        let queue = self.method_queue(method);
        if queue.len() > AMQP_NAME_MAX {
            return Err(invalid(format!(
                "its queue name has {} bytes; AMQP names have at most {AMQP_NAME_MAX}",
                queue.len()
            )));
        }
        Ok(queue)
    }
}

impl ServiceAddress {
    /// The domain's data stream, `{domain}.{name}`: amqp-fabric's `DATA_EXCHANGE_NAME`, `data`
    /// unless configured otherwise.
    pub(crate) fn data_exchange(&self, name: &str) -> String {
        format!("{}.{name}", self.domain)
    }

    /// The domain's topic exchange of events, `{domain}.events` (fabric's own).
    pub(crate) fn events_exchange(&self) -> String {
        format!("{}.events", self.domain)
    }

    /// The domain's log exchange, `{domain}.log.records`, as amqp-fabric names it.
    pub(crate) fn log_exchange(&self) -> String {
        format!("{}.log.records", self.domain)
    }

    /// A log tail's queue, `{domain}.log.tail.{token}`: its own, so every tail hears every
    /// record it wants.
    pub(crate) fn log_tail_queue(&self, token: &str) -> String {
        format!("{}.log.tail.{token}", self.domain)
    }

    /// A registry listener's queue: amqp-fabric's `{fqn}.subscriber` plus a token of its own,
    /// so that instances of a clique each hear every keep-alive instead of sharing them; a
    /// shorter name when that would be too long.
    pub(crate) fn listener_queue(&self, token: &str) -> String {
        let name = format!("{}.subscriber.{token}", self.fqn());
        if name.len() <= AMQP_NAME_MAX {
            name
        } else {
            format!("fabric.subscriber.{token}")
        }
    }
}

/// The queue where a quorum subscription parks the messages that reached its delivery
/// limit, `{subscriber}.parked`.
pub(crate) fn parked_queue(subscriber: &str) -> String {
    format!("{subscriber}{PARKED_SUFFIX}")
}

/// What [`parked_queue`] adds to a subscriber's name.
pub(crate) const PARKED_SUFFIX: &str = ".parked";

/// Checks a name that becomes a queue as given (a subscriber's): not empty, at most 255
/// bytes, and not in the broker's reserved `amq.` space.
pub(crate) fn check_queue_name(kind: &'static str, name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "it is empty".to_owned()
    } else if name.len() > AMQP_NAME_MAX {
        format!("it is longer than {AMQP_NAME_MAX} bytes")
    } else if name.starts_with("amq.") {
        "names starting with `amq.` are reserved by the broker".to_owned()
    } else {
        return Ok(());
    };
    Err(Error::InvalidName {
        kind,
        name: name.to_owned(),
        reason,
    })
}

impl fmt::Display for ServiceAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}",
            self.domain, self.service_type, self.service_id
        )
    }
}

/// fabric's rule beyond amqp-fabric's, so that no two addresses share an exchange: see
/// [`ServiceAddress::new`].
fn check_unambiguous(address: &ServiceAddress) -> Result<()> {
    let why = "so that no two services share an exchange; amqp-fabric allows it, fabric \
               refuses it (see ServiceAddress::new)";
    for (kind, name) in [
        ("service type", &address.service_type),
        ("service id", &address.service_id),
    ] {
        if name.contains('.') {
            return Err(Error::InvalidName {
                kind,
                name: name.clone(),
                reason: format!(
                    "it has a `.`: the service type and the service id must be one segment \
                     each, {why}"
                ),
            });
        }
    }
    if address.domain.split('.').any(|segment| segment == "api") {
        return Err(Error::InvalidName {
            kind: "domain",
            name: address.domain.clone(),
            reason: format!(
                "it has a segment `api`, which marks where the domain ends in \
                 `{{domain}}.api.{{type}}.{{id}}`; no segment of a domain may be `api`, {why}"
            ),
        });
    }
    Ok(())
}

/// One of the three names: dot-separated segments of `[A-Za-z0-9_-]{1,63}`, so that the FQN
/// matches amqp-fabric's pattern `^(?:[A-Za-z0-9-_]{1,63}\.){1,255}[A-Za-z0-9-_]{1,63}$`.
fn check_name(kind: &'static str, name: &str) -> Result<()> {
    let invalid = |reason: String| Error::InvalidName {
        kind,
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("it is empty".into()));
    }
    for segment in name.split('.') {
        if segment.is_empty() {
            return Err(invalid(
                "it has an empty segment (a leading, trailing or doubled `.`)".into(),
            ));
        }
        if segment.len() > SEGMENT_MAX {
            return Err(invalid(format!(
                "segment {segment:?} has {} characters; at most {SEGMENT_MAX} are allowed",
                segment.len()
            )));
        }
        if let Some(bad) = segment
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(invalid(format!(
                "{bad:?} is not allowed; use ASCII letters, digits, `-`, `_` and `.` between segments"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_amqp_fabric_names() {
        for (d, t, i) in [
            ("my_project", "server_app", "my_app"),
            ("a-b", "C_9", "x"),
            ("org.team", "svc", "1"),
        ] {
            ServiceAddress::new(d, t, i).unwrap();
        }
    }

    #[test]
    fn rejects_bad_names_with_the_reason() {
        let cases = [
            ("", "t", "i", "empty"),
            ("my project", "t", "i", "' '"),
            ("d", "t.", "i", "empty segment"),
            ("d", "t", "ü", "'ü'"),
            ("d", "t", "a:b", "':'"),
        ];
        for (d, t, i, expected) in cases {
            let err = ServiceAddress::new(d, t, i).unwrap_err();
            assert!(err.to_string().contains(expected), "{err}");
        }
        let long = "x".repeat(64);
        assert!(ServiceAddress::new(&long, "t", "i").is_err());
        let near = [
            "x".repeat(63),
            "x".repeat(63),
            "x".repeat(63),
            "x".repeat(63),
        ]
        .join(".");
        let err = ServiceAddress::new(&near, &near, "i").unwrap_err();
        assert!(err.to_string().contains("no room"), "{err}");
    }

    #[test]
    fn no_two_addresses_share_an_exchange() {
        // The issue's pair, and a pair that differs only where type ends and id begins.
        for (d, t, i, kind) in [
            ("p.api.acc", "q", "r", "domain"),
            ("p", "acc", "api.q.r", "service id"),
            ("p", "a.b", "c", "service type"),
            ("p", "a", "b.c", "service id"),
        ] {
            match ServiceAddress::new(d, t, i) {
                Err(Error::InvalidName {
                    kind: refused,
                    reason,
                    ..
                }) => {
                    assert_eq!(refused, kind, "{d}/{t}/{i}");
                    assert!(reason.contains("share an exchange"), "{reason}");
                }
                other => panic!("{d}/{t}/{i}: {other:?}"),
            }
        }
        // Dotted domains, and `api` as a type or id, stay allowed.
        ServiceAddress::new("org.team.apis", "api", "api").unwrap();
        // What others announce is listed even so.
        ServiceAddress::announced("p", "a.b", "c").unwrap();
    }

    #[test]
    fn method_names_are_checked() {
        let addr = ServiceAddress::new("d", "t", "i").unwrap();
        addr.checked_method_queue("multiply").unwrap();
        assert!(addr.checked_method_queue("").is_err());
        assert!(addr.checked_method_queue("a::b").is_err());
        assert!(addr.checked_method_queue(&"m".repeat(300)).is_err());
    }

    #[test]
    fn listener_queues_are_unique_and_fit_amqp_names() {
        let address = ServiceAddress::new("shop", "calc", "c1").unwrap();
        assert_eq!(address.listener_queue("t0k"), "shop.calc.c1.subscriber.t0k");
        let long = [
            "x".repeat(60),
            "x".repeat(60),
            "x".repeat(60),
            "x".repeat(60),
        ]
        .join(".");
        let address = ServiceAddress::new(&long, "t", "i").unwrap();
        let token = "0123456789abcdef";
        assert_eq!(
            address.listener_queue(token),
            format!("fabric.subscriber.{token}")
        );
    }

    #[test]
    fn derived_names_are_amqp_fabric_s() {
        let address = ServiceAddress::new("shop", "calc", "c1").unwrap();
        assert_eq!(address.data_exchange("data"), "shop.data");
        assert_eq!(address.events_exchange(), "shop.events");
        assert_eq!(address.log_exchange(), "shop.log.records");
        check_queue_name("subscriber name", "accountant").unwrap();
        for bad in ["", "amq.mine", &"q".repeat(256)] {
            assert!(check_queue_name("subscriber name", bad).is_err(), "{bad}");
        }
    }
}
