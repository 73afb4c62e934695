//! Remote logging: a service's `log` records go to the domain's log exchange, where anyone
//! can tail them, in amqp-fabric's format.
//!
//! Why through the broker: a domain's services run as many processes on many machines, and
//! the broker is the one place they all reach. amqp-fabric's Python services already log
//! there (`AmqpHandler`), so a Rust service that does the same shows up in the same tail.
//!
//! - [`RemoteLogger`] (in `shipper.rs`) is the sending side: a [`log::Log`] whose `log()`
//!   only queues in memory, and a thread of its own that publishes. Logging must never slow
//!   or break the application, so a slow or absent broker costs records (the oldest), never
//!   time, and the loss is reported in the next record that gets through.
//! - [`Fabric::subscribe_logs`](crate::Fabric::subscribe_logs) (in `subscriber.rs`) is the
//!   receiving side: a consumer whose queue's header bindings select by service and level.
//! - `wire.rs` holds the format both sides share; `record.rs` the types a subscriber sees.

mod record;
mod shipper;
mod subscriber;
mod wire;

pub use record::{LogLevel, LogRecord};
pub use shipper::{RemoteLogger, RemoteLoggerBuilder};
pub use subscriber::LogFilter;
