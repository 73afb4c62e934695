//! Testing services and the code that calls them: in process without a broker, and against
//! a throwaway broker.
//!
//! - A generated client in local mode, `{Trait}Client::local(imp)` (or
//!   [`RpcClient::local`](crate::RpcClient::local)), runs every call on the implementation in
//!   this process, through the real codec and dispatcher: no broker, no network.
//! - [`Faults`] make a local client's next calls fail with a [`Fault`] (an interrupted call,
//!   an unavailable broker, a timeout), to test retry and fallback paths.
//! - A [`Recorder`] is a [`Publish`](crate::Publish) that keeps the data messages and events
//!   the code under test publishes, with their headers and routing keys.
//! - With the `testing` feature, a [`TestBroker`] is a throwaway RabbitMQ node of the test's
//!   own, on free ports, to stop, kill and restart.

pub use crate::rpc::{Fault, Faults};

mod recorder;

pub use recorder::Recorder;

#[cfg(feature = "testing")]
mod broker;

#[cfg(feature = "testing")]
pub use broker::{scratch_dir, TestBroker, TlsListener};
