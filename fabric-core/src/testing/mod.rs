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
//! - With the `testing` feature, a `TestBroker` is a throwaway RabbitMQ node of the test's
//!   own, on free ports, to stop, kill and restart; a `TestCluster` is three of them joined
//!   into one RabbitMQ cluster, to kill one node under load.
//!
//! Each example below is a complete test, for this service:
//!
//! ```
//! use fabric_core::fabric_service;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! pub struct DivError(String);
//!
//! #[fabric_service]
//! pub trait Multiplier {
//!     fn multiply(&self, x: i64, y: i64) -> i64;
//!     fn divide(&self, x: i64, y: i64) -> Result<i64, DivError>;
//! }
//!
//! pub struct Calc;
//!
//! impl Multiplier for Calc {
//!     fn multiply(&self, x: i64, y: i64) -> i64 {
//!         x * y
//!     }
//!     fn divide(&self, x: i64, y: i64) -> Result<i64, DivError> {
//!         x.checked_div(y).ok_or_else(|| DivError("division by zero".into()))
//!     }
//! }
//!
//! // 1. A unit test of the implementation: it is a plain Rust type.
//! assert_eq!(Calc.multiply(6, 7), 42);
//! assert!(Calc.divide(1, 0).is_err());
//! ```
//!
//! # Code that calls a service, with a local client
//!
//! Code under test takes the generated client, whichever kind it is: in production one made
//! with `connect`, in tests one made with `local`. The call goes through the codec and the
//! dispatcher as over the broker, so the service's own errors, panics, arguments that do not
//! fit and timeouts come back as they would in production.
//!
//! ```
//! # use fabric_core::fabric_service;
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! # pub struct DivError(String);
//! # #[fabric_service]
//! # pub trait Multiplier {
//! #     fn multiply(&self, x: i64, y: i64) -> i64;
//! #     fn divide(&self, x: i64, y: i64) -> Result<i64, DivError>;
//! # }
//! # pub struct Calc;
//! # impl Multiplier for Calc {
//! #     fn multiply(&self, x: i64, y: i64) -> i64 { x * y }
//! #     fn divide(&self, x: i64, y: i64) -> Result<i64, DivError> {
//! #         x.checked_div(y).ok_or_else(|| DivError("division by zero".into()))
//! #     }
//! # }
//! use fabric_core::testing::Fault;
//! use fabric_core::Error;
//!
//! /// The code under test: it takes "a client" and cannot tell which kind.
//! fn price(calc: &MultiplierClient, quantity: i64) -> Result<i64, String> {
//!     match calc.multiply(quantity, 250) {
//!         Ok(cents) => Ok(cents),
//!         Err(Error::CallInterrupted { .. } | Error::Unavailable { .. }) => Err("try later".into()),
//!         Err(other) => Err(other.to_string()),
//!     }
//! }
//!
//! let calc = MultiplierClient::local(Calc);
//! assert_eq!(price(&calc, 4), Ok(1000));
//! assert_eq!(calc.divide(1, 0).unwrap(), Err(DivError("division by zero".into())));
//!
//! // Its fallback path, on demand.
//! calc.rpc().local_faults().unwrap().fail_once(Fault::Unavailable);
//! assert_eq!(price(&calc, 4), Err("try later".into()));
//! ```
//!
//! # Code that publishes, with a recorder
//!
//! ```
//! use fabric_core::testing::Recorder;
//! use fabric_core::{Headers, Publish};
//!
//! /// The code under test publishes through whatever it is given: a `Fabric` in production.
//! fn close_till(publisher: &impl Publish, total: u32) -> fabric_core::Result<()> {
//!     publisher.publish_data_value(&total, &Headers::new().with("msg_type", "TILL_CLOSED"))?;
//!     publisher.publish_event("till.closed", &total)?.wait()
//! }
//!
//! let recorder = Recorder::for_service("shop", "till", "t1").unwrap();
//! close_till(&recorder, 990).unwrap();
//! let data = recorder.data();
//! assert_eq!(data[0].headers().get_str("msg_type"), Some("TILL_CLOSED"));
//! assert_eq!(data[0].publisher_id(), Some("t1"));
//! assert_eq!(data[0].decode::<u32>().unwrap(), 990);
//! assert_eq!(recorder.events()[0].routing_key(), "till.closed");
//! ```
//!
//! # Against a real broker, with `TestBroker`
//!
//! With the `testing` feature (`fabric-core = { version = "…", features = ["testing"] }` in
//! `[dev-dependencies]`) and RabbitMQ installed, a test gets a RabbitMQ node of its own on free
//! ports, and can break it:
//!
//! ```no_run
//! # use fabric_core::fabric_service;
//! # #[fabric_service]
//! # pub trait Multiplier {
//! #     fn multiply(&self, x: i64, y: i64) -> i64;
//! # }
//! # pub struct Calc;
//! # impl Multiplier for Calc {
//! #     fn multiply(&self, x: i64, y: i64) -> i64 { x * y }
//! # }
//! # #[cfg(feature = "testing")]
//! # fn main() {
//! use std::time::Duration;
//!
//! use fabric_core::testing::TestBroker;
//! use fabric_core::Error;
//!
//! let mut broker = TestBroker::start(); // fails the test, saying how, without RabbitMQ
//! let server_fabric = broker.connect("shop", "calc", "c1");
//! let _server = MultiplierServer::new(Calc).serve(&server_fabric).unwrap();
//!
//! let fabric = broker.connect("shop", "client", "t1");
//! let calc = MultiplierClient::connect(&fabric, "shop", "calc", "c1")
//!     .unwrap()
//!     .with_timeout(Duration::from_secs(2));
//! assert_eq!(calc.multiply(6, 7).unwrap(), 42);
//!
//! broker.kill(); // the broker dies: a call in flight is interrupted, a new one unavailable
//! assert!(matches!(
//!     calc.multiply(6, 7),
//!     Err(Error::CallInterrupted { .. } | Error::Unavailable { .. })
//! ));
//! broker.start_again(); // same ports and data: both fabrics reconnect by themselves
//! # }
//! # #[cfg(not(feature = "testing"))]
//! # fn main() {}
//! ```
//!
//! When the broker is dropped, the node stops and its files are removed.
//!
//! On a cluster, `TestCluster` (same feature) joins three such nodes; a test kills the
//! node a participant is on and sees it move to another:
//!
//! ```no_run
//! # #[cfg(feature = "testing")]
//! # fn main() {
//! use fabric_core::testing::TestCluster;
//!
//! let mut cluster = TestCluster::start(); // three nodes, one cluster
//! let _fabric = cluster.connect(1, "shop", "client", "t1"); // node 1, then 2 and 0
//! cluster.kill(1); // the fabric moves to node 2 by itself
//! cluster.start_again(1); // node 1 rejoins the cluster
//! # }
//! # #[cfg(not(feature = "testing"))]
//! # fn main() {}
//! ```

pub use crate::rpc::{Fault, Faults};

mod recorder;

pub use recorder::Recorder;

#[cfg(feature = "testing")]
mod broker;

#[cfg(feature = "testing")]
pub use broker::{scratch_dir, TestBroker, TestCluster, TlsListener};
