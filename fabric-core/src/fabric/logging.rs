//! The entry points of remote logging: a logger that ships as this fabric's participant, and
//! a tail of the domain's logs.

use super::Fabric;
use crate::broker::consumer::Subscription;
use crate::error::Result;
use crate::logging::{subscriber, LogFilter, LogRecord, RemoteLogger, RemoteLoggerBuilder};

impl RemoteLogger {
    /// A builder of a remote logger that ships as `fabric`'s participant (its service type
    /// and id) to the log exchange of its domain.
    pub fn builder(fabric: &Fabric) -> RemoteLoggerBuilder {
        RemoteLoggerBuilder::new(fabric.participant())
    }
}

impl Fabric {
    /// Tails the logs of this fabric's domain: `handler` runs, on a thread of the
    /// subscription's own, for each record that `filter` lets through, from Rust services
    /// ([`RemoteLogger`](crate::RemoteLogger)) and Python ones (amqp-fabric's `AmqpHandler`)
    /// alike.
    ///
    /// The records come through a queue of this subscriber's own (exclusive, deleted with
    /// the subscription or the connection), so every subscriber sees every record it wants,
    /// from the moment this returns. Dropping the [`Subscription`] ends it.
    ///
    /// ```no_run
    /// # fn main() -> fabric_core::Result<()> {
    /// use fabric_core::{Fabric, FabricConfig, LogFilter, LogLevel};
    ///
    /// let fabric = Fabric::connect(FabricConfig::new("amqp://127.0.0.1", "shop", "log_tail", "t1"))?;
    /// let _tail = fabric.subscribe_logs(&LogFilter::new().min_level(LogLevel::Info), |record| {
    ///     println!("{record}");
    /// })?;
    /// // ... records are printed until `_tail` is dropped.
    /// # Ok(())
    /// # }
    /// ```
    pub fn subscribe_logs<F>(&self, filter: &LogFilter, handler: F) -> Result<Subscription>
    where
        F: FnMut(LogRecord) + Send + 'static,
    {
        subscriber::subscribe(&self.participant(), filter, handler)
    }
}
