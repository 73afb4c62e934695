//! The RPC entry points that need a fabric: a client of a service, and serving one.

use std::sync::Arc;

use super::Fabric;
use crate::address::ServiceAddress;
use crate::error::Result;
use crate::rpc::{Dispatch, RpcClient, Server, ServerBuilder};

impl RpcClient {
    /// A client of the service at `domain.service_type.service_id`, calling over `fabric`'s
    /// connection, with its call timeout and codec.
    ///
    /// Checks the names and starts the fabric's reply thread if it is not running yet; it does
    /// not check that the service runs (it may start later): a call to a service with no
    /// running instance fails at once with [`Error::NoSuchService`](crate::Error::NoSuchService).
    pub fn new(
        fabric: &Fabric,
        domain: &str,
        service_type: &str,
        service_id: &str,
    ) -> Result<RpcClient> {
        let address = ServiceAddress::new(domain, service_type, service_id)?;
        Ok(RpcClient::with_parts(
            fabric.participant(),
            fabric.caller()?,
            address,
        ))
    }

    /// The old name of [`new`](Self::new), which connects to nothing: a client only names a
    /// service, and its calls go over the fabric's connection.
    #[deprecated(
        since = "0.2.0",
        note = "renamed `RpcClient::new`: it connects to nothing"
    )]
    pub fn connect(
        fabric: &Fabric,
        domain: &str,
        service_type: &str,
        service_id: &str,
    ) -> Result<RpcClient> {
        RpcClient::new(fabric, domain, service_type, service_id)
    }
}

impl<D: Dispatch> ServerBuilder<D> {
    /// Declares the service's exchange and method queues at the fabric's own address and
    /// starts the workers. Returns once every worker consumes; fails if any of that fails
    /// (a refused declaration, the connection down), and then no worker is left running.
    ///
    /// From then on the server outlives connection losses: its workers consume again, after
    /// declaring the queues again, each time the fabric reconnects. It stops at
    /// [`Server::close`], when dropped, or when the fabric closes.
    pub fn serve(self, fabric: &Fabric) -> Result<Server> {
        let server = self.start(&fabric.participant(), &fabric.inner.servers)?;
        let mut running = fabric.inner.workers.lock();
        running.retain(|workers| workers.strong_count() > 0);
        running.push(Arc::downgrade(server.workers()));
        Ok(server)
    }
}
