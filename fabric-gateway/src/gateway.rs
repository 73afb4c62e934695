//! The gateway's shared state (its routes are in `router.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use fabric_core::{Codec, Fabric, FabricConfig};
use tokio::sync::Semaphore;

use crate::config::GatewayConfig;

/// An HTTP gateway over one [`Fabric`]: cheap to clone, shared by every request.
///
/// The fabric should listen to keep-alives
/// ([`FabricConfig::keep_alive_listen`]`(true)`) and speak JSON ([`Codec::Json`]): the
/// gateway finds services, their contracts and the parameter order of by-position JSON-RPC
/// calls in the registry. It calls every service in JSON whatever the fabric's codec.
#[derive(Clone, Debug)]
pub struct Gateway {
    pub(crate) inner: Arc<Inner>,
}

/// What every request shares.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) fabric: Fabric,
    pub(crate) config: GatewayConfig,
    /// One permit per call in flight.
    pub(crate) calls: Arc<Semaphore>,
    /// A participant per other domain, for its events (a fabric publishes and subscribes in
    /// its own domain), connected when first needed.
    domains: Mutex<HashMap<String, Fabric>>,
}

impl Gateway {
    /// A gateway calling services over `fabric`, with `config`.
    pub fn new(fabric: Fabric, config: GatewayConfig) -> Gateway {
        Gateway {
            inner: Arc::new(Inner {
                calls: Arc::new(Semaphore::new(config.max_concurrent_calls)),
                fabric,
                config,
                domains: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The settings it runs with.
    pub fn config(&self) -> &GatewayConfig {
        &self.inner.config
    }

    /// The fabric it calls over.
    pub fn fabric(&self) -> &Fabric {
        &self.inner.fabric
    }
}

impl Inner {
    /// The participant for `domain`'s events: the gateway's own fabric in its domain, else
    /// one connected for that domain, kept for the next time. Blocking: call it off the
    /// async threads.
    pub(crate) fn domain_fabric(&self, domain: &str) -> fabric_core::Result<Fabric> {
        if self.fabric.address().domain() == domain {
            return Ok(self.fabric.clone());
        }
        let mut domains = self.domains.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(fabric) = domains.get(domain) {
            return Ok(fabric.clone());
        }
        let own = self.fabric.config();
        let mut config = FabricConfig::new(
            own.url(),
            domain,
            "fabric_gateway",
            self.fabric.address().service_id(),
        )
        .codec(Codec::Json);
        for url in own.urls().iter().skip(1) {
            config = config.fallback_url(url);
        }
        let fabric = Fabric::connect(config)?;
        domains.insert(domain.to_owned(), fabric.clone());
        Ok(fabric)
    }
}
