//! Remote logging: a service's `log` records go to the domain's log exchange, where anyone
//! can tail them, in amqp-fabric's format.
//!
//! Why through the broker: a domain's services run as many processes on many machines, and
//! the broker is the one place they all reach. amqp-fabric's Python services already log
//! there (`AmqpHandler`), so a Rust service that does the same shows up in the same tail.
//!
//! - [`RemoteLogger`] (`logger.rs`) is the sending side: a [`log::Log`] whose `log()` only
//!   queues in memory (`queue.rs`), and a thread of its own that publishes (`shipper.rs`).
//!   Logging must never slow or break the application, so a slow or absent broker costs
//!   records (the oldest), never time, and the loss is reported in the next record that
//!   gets through. `loops.rs` keeps shipping from causing more records; `global.rs`
//!   installs the logger as the `log` crate's.
//! - [`Fabric::subscribe_logs`](crate::Fabric::subscribe_logs) (`subscriber.rs`) is the
//!   receiving side: a consumer whose queue's header bindings select by service and level.
//! - `layer.rs` (feature `tracing`) sends `tracing` events through a [`RemoteLogger`].
//! - `wire.rs` holds the format both sides share; `record.rs` the types a subscriber sees.

mod global;
#[cfg(feature = "tracing")]
mod layer;
mod logger;
mod loops;
mod queue;
mod record;
mod shipper;
pub(crate) mod subscriber;
mod wire;

#[cfg(feature = "tracing")]
pub use layer::RemoteLogLayer;
pub use logger::{RemoteLogger, RemoteLoggerBuilder};
pub use record::{LogLevel, LogRecord};
pub use subscriber::LogFilter;
