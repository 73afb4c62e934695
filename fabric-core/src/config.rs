//! What a [`Fabric`](crate::Fabric) connection is told before it connects.

use std::time::Duration;

use crate::backoff::Backoff;
use crate::broker::auth::AuthMechanism;
use crate::broker::tls::TlsConfig;
use crate::broker::url::mask_password;
use crate::codec::Codec;

/// How long a call waits for its reply unless configured otherwise.
pub(crate) const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The codec of calls unless configured otherwise.
pub(crate) const DEFAULT_CODEC: Codec = Codec::Bincode;

/// Settings of one fabric participant: the broker it uses and who it is.
///
/// Built with [`FabricConfig::new`] and refined with the builder methods; checked by
/// [`Fabric::connect`](crate::Fabric::connect), which reports a bad name or URL before it
/// touches the network.
///
/// ```
/// use std::time::Duration;
/// use fabric_core::{Codec, FabricConfig};
///
/// let config = FabricConfig::new("amqp://guest:guest@127.0.0.1:5672/%2f", "my_project", "client_app", "c1")
///     .version("1.2.0")
///     .call_timeout(Duration::from_secs(5))
///     .codec(Codec::Json);
/// ```
///
/// `Debug` shows the URLs with their passwords masked, and no key material.
#[derive(Clone)]
pub struct FabricConfig {
    /// The broker URLs, tried in order; the first is the one given to `new`.
    pub(crate) urls: Vec<String>,
    pub(crate) reconnect_backoff: Backoff,
    pub(crate) domain: String,
    pub(crate) service_type: String,
    pub(crate) service_id: String,
    pub(crate) version: String,
    pub(crate) heartbeat: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) call_timeout: Duration,
    pub(crate) codec: Codec,
    pub(crate) keep_alive: Option<Duration>,
    pub(crate) keep_alive_listen: bool,
    pub(crate) discovery_ttl: Duration,
    pub(crate) discovery_exchange: String,
    pub(crate) data_exchange: String,
    pub(crate) publish_window: usize,
    pub(crate) tls: Option<TlsConfig>,
    pub(crate) auth_mechanism: Option<AuthMechanism>,
    /// Whether the URLs are tried in an order drawn at connect instead of the order given.
    pub(crate) shuffle_urls: bool,
    /// Whether data messages and events are published persistent (delivery mode 2).
    pub(crate) persistent: bool,
}

impl FabricConfig {
    /// The broker URL (`amqp://user:pass@host:port/vhost`, or `amqps://` with RabbitMQ's
    /// TLS query parameters `cacertfile`, `certfile`, `keyfile`, `verify`,
    /// `server_name_indication` and `auth_mechanism`: see [`TlsConfig`]) and this
    /// participant's domain, service type and service id.
    pub fn new(url: &str, domain: &str, service_type: &str, service_id: &str) -> FabricConfig {
        FabricConfig {
            urls: vec![url.to_owned()],
            reconnect_backoff: Backoff::default(),
            domain: domain.to_owned(),
            service_type: service_type.to_owned(),
            service_id: service_id.to_owned(),
            version: "0.0.0".to_owned(),
            heartbeat: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            call_timeout: DEFAULT_CALL_TIMEOUT,
            codec: DEFAULT_CODEC,
            keep_alive: None,
            keep_alive_listen: false,
            discovery_ttl: Duration::from_secs(5),
            discovery_exchange: "msc.discovery".to_owned(),
            data_exchange: "data".to_owned(),
            publish_window: 256,
            tls: None,
            auth_mechanism: None,
            shuffle_urls: false,
            persistent: false,
        }
    }

    /// The version of this participant's API, announced to others. Default `"0.0.0"`.
    pub fn version(mut self, version: &str) -> Self {
        self.version = version.to_owned();
        self
    }

    /// The AMQP heartbeat interval; a broker silent for two intervals counts as gone.
    /// Default 60 s, as RabbitMQ's. A `heartbeat` query parameter in the URL wins.
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.heartbeat = interval;
        self
    }

    /// How long to wait for the TCP connection and the AMQP handshake. Default 10 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The timeout of every call made by clients of this fabric, unless a client sets its own
    /// with `with_timeout`. Default 30 s.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// The codec clients use for calls. Default [`Codec::Bincode`]; use [`Codec::Json`] to
    /// call a Python amqp-fabric service. Servers answer in whatever codec a call uses.
    pub fn codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// Announce this participant every `interval` on the discovery exchange, from a thread
    /// of its own, so others can list it. Off by default, as in amqp-fabric.
    pub fn keep_alive(mut self, interval: Duration) -> Self {
        self.keep_alive = Some(interval);
        self
    }

    /// Listen to other participants' keep-alives, so that
    /// [`Fabric::list_services`](crate::Fabric::list_services) can answer. Off by default.
    pub fn keep_alive_listen(mut self, listen: bool) -> Self {
        self.keep_alive_listen = listen;
        self
    }

    /// How long a participant stays listed after its last keep-alive. Default 5 s, as
    /// amqp-fabric's `DISCOVERY_CACHE_TTL`.
    pub fn discovery_ttl(mut self, ttl: Duration) -> Self {
        self.discovery_ttl = ttl;
        self
    }

    /// The exchange keep-alives go to. Default `msc.discovery`, as amqp-fabric's.
    pub fn discovery_exchange(mut self, exchange: &str) -> Self {
        self.discovery_exchange = exchange.to_owned();
        self
    }

    /// The last part of the data exchange's name, `{domain}.{name}`. Default `data`, as
    /// amqp-fabric's `DATA_EXCHANGE_NAME`.
    pub fn data_exchange(mut self, name: &str) -> Self {
        self.data_exchange = name.to_owned();
        self
    }

    /// How many published data messages and events may await the broker's confirm at once
    /// (at least 1). Default 256: enough to keep a loopback broker busy.
    pub fn publish_window(mut self, window: usize) -> Self {
        self.publish_window = window.max(1);
        self
    }

    /// Another broker to use when the ones before it do not answer: typically another node
    /// of the same RabbitMQ cluster. URLs are tried in the order given (or in a random order
    /// drawn once, with [`shuffle_urls`](Self::shuffle_urls)), at the first connect and at
    /// every reconnection.
    ///
    /// ```
    /// use fabric_core::FabricConfig;
    ///
    /// let config = FabricConfig::new("amqp://rabbit-1:5672", "shop", "orders", "o1")
    ///     .fallback_url("amqp://rabbit-2:5672")
    ///     .fallback_url("amqp://rabbit-3:5672");
    /// assert_eq!(config.urls().len(), 3);
    /// ```
    pub fn fallback_url(mut self, url: &str) -> Self {
        self.urls.push(url.to_owned());
        self
    }

    /// Publish data messages and events persistent (AMQP delivery mode 2), so that a durable
    /// classic queue keeps them across a broker restart. Default off: transient, as
    /// amqp-fabric publishes. A quorum subscription ([`Subscriber::quorum`]) keeps every
    /// message it has confirmed on a majority of nodes whatever the mode; wait on the
    /// [`Receipt`](crate::Receipt) to know the broker has it.
    ///
    /// [`Subscriber::quorum`]: crate::Subscriber::quorum
    pub fn persistent_messages(mut self) -> Self {
        self.persistent = true;
        self
    }

    /// Spread participants over the nodes of a cluster: the URLs ([`new`](Self::new)'s and
    /// every [`fallback_url`](Self::fallback_url)) are put in a random order when the fabric
    /// connects, and that order is kept for its life, at the first connect and at every
    /// reconnection. Processes given the same list so connect to different nodes, and when
    /// a node is lost, the participants that were on it move to different nodes too.
    ///
    /// Without it (the default), the URLs are tried in the order given: every participant
    /// prefers the first node.
    ///
    /// ```
    /// use fabric_core::FabricConfig;
    ///
    /// let config = FabricConfig::new("amqp://rabbit-1:5672", "shop", "orders", "o1")
    ///     .fallback_url("amqp://rabbit-2:5672")
    ///     .fallback_url("amqp://rabbit-3:5672")
    ///     .shuffle_urls();
    /// ```
    pub fn shuffle_urls(mut self) -> Self {
        self.shuffle_urls = true;
        self
    }

    /// The URLs in the order this fabric tries them: as given, or shuffled
    /// ([`shuffle_urls`](Self::shuffle_urls)).
    pub(crate) fn connection_order(&self) -> Vec<&str> {
        let mut urls: Vec<&str> = self.urls.iter().map(String::as_str).collect();
        if self.shuffle_urls {
            // Fisher-Yates, with the crate's OS-seeded randomness.
            for i in (1..urls.len()).rev() {
                let j = (crate::token::random() % (i as u64 + 1)) as usize;
                urls.swap(i, j);
            }
        }
        urls
    }

    /// How long to wait between rounds of reconnection attempts: `initial` after the first
    /// failed round, doubling up to `max`, each with a little random jitter. Default 100 ms
    /// up to 5 s.
    pub fn reconnect_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.reconnect_backoff = Backoff {
            initial,
            max: max.max(initial),
        };
        self
    }

    /// TLS settings for every `amqps://` URL, for certificates kept in memory: see
    /// [`TlsConfig`]. The query parameters of a URL (`cacertfile`, `certfile`, `keyfile`,
    /// `verify`, `server_name_indication`) win over these. Refused with an `amqp://` URL,
    /// which is not encrypted.
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// How to log in, for every URL that has no `auth_mechanism` query parameter. Default
    /// [`AuthMechanism::Plain`] (the URL's user name and password).
    pub fn auth_mechanism(mut self, mechanism: AuthMechanism) -> Self {
        self.auth_mechanism = Some(mechanism);
        self
    }

    /// The first broker URL, as given to [`new`](Self::new).
    pub fn url(&self) -> &str {
        &self.urls[0]
    }

    /// Every broker URL, in the order they are tried.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }
}

impl std::fmt::Debug for FabricConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let urls: Vec<String> = self.urls.iter().map(|url| mask_password(url)).collect();
        f.debug_struct("FabricConfig")
            .field("urls", &urls)
            .field("domain", &self.domain)
            .field("service_type", &self.service_type)
            .field("service_id", &self.service_id)
            .field("version", &self.version)
            .field("tls", &self.tls)
            .field("auth_mechanism", &self.auth_mechanism)
            .field("heartbeat", &self.heartbeat)
            .field("connect_timeout", &self.connect_timeout)
            .field("call_timeout", &self.call_timeout)
            .field("codec", &self.codec)
            .field("keep_alive", &self.keep_alive)
            .field("keep_alive_listen", &self.keep_alive_listen)
            .field("discovery_ttl", &self.discovery_ttl)
            .field("discovery_exchange", &self.discovery_exchange)
            .field("data_exchange", &self.data_exchange)
            .field("publish_window", &self.publish_window)
            .field("reconnect_backoff", &self.reconnect_backoff)
            .field("shuffle_urls", &self.shuffle_urls)
            .field("persistent", &self.persistent)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffled_urls_are_all_tried_in_an_order_of_their_own() {
        let config = FabricConfig::new("amqp://a", "d", "t", "i")
            .fallback_url("amqp://b")
            .fallback_url("amqp://c");
        assert_eq!(
            config.connection_order(),
            ["amqp://a", "amqp://b", "amqp://c"]
        );
        let config = config.shuffle_urls();
        let mut firsts = std::collections::HashSet::new();
        for _ in 0..200 {
            let mut order = config.connection_order();
            firsts.insert(order[0]);
            order.sort_unstable();
            assert_eq!(order, ["amqp://a", "amqp://b", "amqp://c"]);
        }
        assert_eq!(firsts.len(), 3, "every node comes first sometimes");
    }

    #[test]
    fn debug_masks_every_password() {
        let config = FabricConfig::new("amqp://u:first-secret@h/%2f", "d", "t", "i")
            .fallback_url("amqps://u:second%20secret@h2/%2f?cacertfile=/ca.pem");
        let shown = format!("{config:?}");
        for secret in ["first-secret", "second%20secret", "second secret"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("h2"), "{shown}");
    }
}
