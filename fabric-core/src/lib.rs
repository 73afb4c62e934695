//! # fabric
//!
//! Microservices that talk through a RabbitMQ broker: typed RPC generated from a trait, with
//! the wire protocol of the Python project amqp-fabric so Rust and Python services can call
//! each other.
//!
//! ```no_run
//! use fabric_core::{fabric_service, Fabric, FabricConfig};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Serialize, Deserialize)]
//! pub struct DivError(String);
//!
//! #[fabric_service]
//! pub trait Multiplier {
//!     /// Multiplies two numbers.
//!     fn multiply(&self, x: i64, y: i64) -> i64;
//!     /// Divides, refusing zero.
//!     fn divide(&self, x: i64, y: i64) -> Result<i64, DivError>;
//! }
//!
//! struct Calc;
//! impl Multiplier for Calc {
//!     fn multiply(&self, x: i64, y: i64) -> i64 {
//!         x * y
//!     }
//!     fn divide(&self, x: i64, y: i64) -> Result<i64, DivError> {
//!         x.checked_div(y).ok_or_else(|| DivError("division by zero".into()))
//!     }
//! }
//!
//! # fn main() -> fabric_core::Result<()> {
//! let url = "amqp://guest:guest@127.0.0.1:5672/%2f";
//!
//! // The server: eight workers take calls in the background.
//! let server_fabric = Fabric::connect(FabricConfig::new(url, "my_project", "server_app", "my_app"))?;
//! let server = MultiplierServer::new(Calc).workers(8).serve(&server_fabric)?;
//!
//! // A client, usually in another process.
//! let fabric = Fabric::connect(FabricConfig::new(url, "my_project", "client_app", "c1"))?;
//! let client = MultiplierClient::connect(&fabric, "my_project", "server_app", "my_app")?;
//! assert_eq!(client.multiply(5, 7)?, 35);
//! assert!(client.divide(1, 0)?.is_err()); // the service's own error arrives intact
//!
//! server.close()?;
//! # Ok(())
//! # }
//! ```
//!
//! ## What the macro generates
//!
//! For a trait `Multiplier`, [`fabric_service`] keeps the trait as written and adds:
//! - `MultiplierClient`: a cheap `Clone + Send + Sync` handle with one method per trait
//!   method, returning [`Result`]`<T>` of the method's return type and taking each argument
//!   as declared or lent (an [`Arg`]: `&str` for a `String`, `&[u8]` for [`Bytes`], ...,
//!   encoded as the declared type; primitive scalars as declared), plus `connect`,
//!   `local` (calls run on an implementation in process, for tests), `with_timeout`,
//!   `with_codec`, `health_check` and `rpc`;
//! - `MultiplierServer<T>`: `MultiplierServer::new(imp)` gives a [`ServerBuilder`] that
//!   serves any `T: Multiplier + Send + Sync + 'static`;
//! - `Multiplier{Method}Args`: one struct per method whose fields are the parameters, the
//!   body of a call (a JSON call body is amqp-fabric's keyword arguments).
//!
//! ## A service's own errors
//!
//! A method that returns `Result<T, E>` answers `Ok(v)` with the plain value and `Err(e)` with
//! an error reply, as a Python amqp-fabric server returns and raises: a Python caller gets
//! `v`, or an exception named after `e`'s type (see [`Reply::error`]). A Rust caller gets
//! `Ok(Ok(v))` or `Ok(Err(e))` with `e` intact; the outer [`Result`] is for everything else
//! that can go wrong with a call ([`Error`]). Arguments a method cannot take are refused
//! before it runs, as [`Error::BadArguments`] (a Python caller raises `TypeError`).
//!
//! ## Testing
//!
//! An implementation is a plain Rust type to unit-test. Code that calls a service takes the
//! generated client, and in tests gets one made with `MultiplierClient::local(imp)`: calls
//! run in process through the real codec and dispatcher, with no broker, and fail on demand
//! with [`testing::Faults`]. Code that publishes takes a [`Publish`], which a [`Fabric`] is
//! and a [`testing::Recorder`] is too. With the `testing` feature, `testing::TestBroker` is a
//! throwaway RabbitMQ node to test against, and to kill. See [`testing`] for a complete
//! example of each.
//!
//! ## How a call travels
//!
//! The client publishes the encoded arguments to the method's queue
//! `{domain}.api.{type}.{id}::{method}` with a correlation id and its reply queue. One worker of
//! the server takes it, runs the method on its own thread, publishes the result to the reply
//! queue and acks. The client's reply thread matches the correlation id and wakes the caller.
//! See `docs/ARCHITECTURE.md` in the repository for the threads and channels.
//!
//! ## When the broker goes away
//!
//! A [`Fabric`] reconnects by itself, with backoff, over every URL of its configuration
//! ([`FabricConfig::fallback_url`]); servers, the reply queue, subscriptions, keep-alives and
//! the log shipper resume on the new connection, and every handle stays valid. A call in
//! flight when the connection breaks fails with [`Error::CallInterrupted`] (it may or may not
//! have run); a call made while the broker is unreachable waits up to its timeout, then fails
//! with [`Error::Unavailable`] (nothing was sent). Methods marked `#[fabric(idempotent)]` are
//! retried under a [`RetryPolicy`]; nothing else is sent twice. [`ConnectionState`] tells
//! where the connection stands.
//!
//! ## Metrics
//!
//! With the `metrics` feature (off by default), fabric records what it does through the
//! [`metrics`](https://docs.rs/metrics) facade: install any recorder or exporter (for example
//! `metrics-exporter-prometheus`) before connecting, and these appear, with help texts and units
//! (they are described once, the first time fabric records anything):
//!
//! | metric | kind | labels | what it counts |
//! | --- | --- | --- | --- |
//! | `fabric_client_calls_started_total` | counter | `service`, `method` | calls a client started (one that fails before it is sent, say its deadline had already passed, counts too and finishes with its error) |
//! | `fabric_client_calls_finished_total` | counter | `service`, `method`, `outcome` | calls a client finished |
//! | `fabric_client_call_duration_seconds` | histogram | `service`, `method`, `outcome` | from just before the call is sent until its answer is read, or it is dropped |
//! | `fabric_client_calls_in_flight` | gauge | `service`, `method` | calls started and not finished |
//! | `fabric_server_calls_started_total` | counter | `service`, `method` | calls delivered to a server's workers |
//! | `fabric_server_calls_finished_total` | counter | `service`, `method`, `outcome` | calls a server answered |
//! | `fabric_server_call_duration_seconds` | histogram | `service`, `method`, `outcome` | from the delivery until the reply is ready to publish: the handler's run and decoding |
//! | `fabric_server_calls_in_flight` | gauge | `service`, `method` | calls delivered and not answered |
//! | `fabric_messages_published_total` | counter | `kind` (`data`, `event`) | data messages and events handed to the broker |
//! | `fabric_publish_confirms_total` | counter | `outcome` (`ack`, `nack`) | the broker's confirms of those; `nack` also counts a confirm lost with its connection |
//! | `fabric_reconnections_total` | counter | | new connections made after losing one |
//! | `fabric_log_records_dropped_total` | counter | | records a `RemoteLogger` dropped because its queue was full |
//!
//! `service` is the fully qualified name of the service (`{domain}.{type}.{id}`, as
//! [`ServiceAddress::fqn`] gives it): the one called on the client, the one served on the server.
//! `method` is the method's name: on a server one of the methods it serves (`health_check`
//! included); on a client the name the caller passed, so a program that builds method names from
//! outside input (through [`RpcClient::call`]) should bound them itself, or every name becomes a
//! series. `outcome` is one of a fixed set: `ok`; `error` (the method returned its own `Err`);
//! `abandoned` (the caller dropped the call without waiting, or a server worker unwound past it);
//! on a client [`Error::kind`] of what failed (`timeout`, `unknown_method`, `no_such_service`,
//! `remote` for a server's panic, `bad_arguments`, `call_interrupted`, ...); on a server its own
//! failure (`panic`, `bad_arguments`, `unknown_method`, `deadline_exceeded`, `bad_request`,
//! `internal`).
//!
//! Without a recorder the facade drops every record; with the feature off none of this is
//! compiled. The example `metrics_exporter` serves them to Prometheus.
//! ## Tracing
//!
//! With the `tracing` feature, every client and server call is a `tracing` span named after
//! OpenTelemetry's conventions for RPC and messaging (`rpc.system`, `rpc.service`,
//! `rpc.method`, `messaging.system`, `messaging.destination.name`, the outcome), and
//! `RemoteLogger::tracing_layer` sends `tracing` events to the remote log. With the
//! `opentelemetry` feature and a `tracing-opentelemetry` layer installed, the W3C headers
//! fabric sends and receives carry the OpenTelemetry spans' ids, so an exporter sees one trace
//! across processes. Without a subscriber a call pays one check per span. See the README's
//! "Tracing" section and the `traced` example.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod address;
mod backoff;
mod broker;
mod bytes;
mod codec;
mod config;
mod contract;
mod duration;
mod error;
mod fabric;
mod logging;
mod observe;
mod participant;
mod registry;
mod rpc;
mod stream;
pub mod testing;
mod thread;
mod token;
mod trace;

pub use address::ServiceAddress;
pub use broker::auth::AuthMechanism;
pub use broker::consumer::Subscription;
pub use broker::publisher::Receipt;
pub use broker::state::ConnectionState;
pub use broker::tls::TlsConfig;
pub use bytes::Bytes;
pub use codec::{Codec, BINCODE_CONTENT_TYPE, JSON_CONTENT_TYPE};
pub use config::FabricConfig;
pub use contract::{Contract, ContractHash, MethodContract, Param};
pub use duration::parse_duration;
pub use error::{Error, Refusal, Result, TlsFailure};
pub use fabric::Fabric;
#[cfg(feature = "tracing")]
pub use logging::RemoteLogLayer;
pub use logging::{LogFilter, LogLevel, LogRecord, RemoteLogger, RemoteLoggerBuilder};
pub use registry::{ServiceEvent, ServiceEvents, ServiceFilter, ServiceInfo, ServiceWatcher};
pub use rpc::CallContext;
pub use rpc::{
    decode_args, Arg, Dispatch, DispatchError, PendingCall, Reply, RetryPolicy, RpcClient, Server,
    ServerBuilder, Wire,
};
pub use stream::{
    DataStream, Events, HeaderValue, Headers, Inbox, Message, Publish, Subscriber, SubscriberKind,
};

/// Turns a trait into a fabric service: a typed client, a server and the wire types.
///
/// See the [crate documentation](crate) for what is generated and an example.
pub use fabric_macros::fabric_service;

/// What generated code needs, under paths that do not depend on the user's imports.
/// Not public API: it changes without notice.
#[doc(hidden)]
#[path = "generated.rs"]
pub mod __private;
