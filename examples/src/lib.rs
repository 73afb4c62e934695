//! The API shared by the example processes, as a real system would keep it in a crate that
//! both the server and its clients depend on.

use fabric_core::fabric_service;
use serde::{Deserialize, Serialize};

/// Why a division failed: a service's own error type, which travels to the caller intact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DivError {
    /// The divisor was zero.
    DivisionByZero,
    /// The quotient does not fit in an `i64` (`i64::MIN / -1`).
    Overflow,
}

impl std::fmt::Display for DivError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DivError::DivisionByZero => f.write_str("division by zero"),
            DivError::Overflow => f.write_str("the quotient overflows i64"),
        }
    }
}

impl std::error::Error for DivError {}

/// A calculator service, the "hello world" of amqp-fabric.
#[fabric_service]
pub trait Multiplier {
    /// Multiplies two numbers, wrapping on overflow. Harmless to run twice, so the client
    /// retries a call that a broken connection interrupted.
    #[fabric(idempotent)]
    fn multiply(&self, x: i64, y: i64) -> i64;

    /// Divides `x` by `y`, refusing zero.
    fn divide(&self, x: i64, y: i64) -> Result<i64, DivError>;
}

/// What one hop of a call chain saw of the call it ran: the `trace_hop` example's answer,
/// for following one request across services.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HopReport {
    /// The hop's service id (`a`, `b`, ...).
    pub hop: String,
    /// [`CallContext::trace_id`](fabric_core::CallContext::trace_id) in the handler.
    pub trace_id: String,
    /// [`CallContext::span_id`](fabric_core::CallContext::span_id): the handler's span.
    pub span_id: String,
    /// [`CallContext::parent_span_id`](fabric_core::CallContext::parent_span_id): the caller's.
    pub parent_span_id: Option<String>,
    /// [`CallContext::remaining`](fabric_core::CallContext::remaining) when the handler
    /// started, in milliseconds.
    pub remaining_ms: Option<u64>,
}

/// One hop of a call chain (the `trace_hop` example): each hop works a while, then calls the
/// next, so a request crosses several services and processes.
#[fabric_service]
pub trait Hop {
    /// Works `work_ms[0]` milliseconds, then relays the rest of `work_ms` to the next hop,
    /// if there is one. Answers what each hop saw, this one first.
    fn relay(&self, work_ms: Vec<u64>) -> Vec<HopReport>;

    /// How many relays this hop has started.
    fn runs(&self) -> u64;
}

/// The broker URL of the examples: `FABRIC_URL`, or the local RabbitMQ.
pub fn broker_url() -> String {
    std::env::var("FABRIC_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A temperature reading, as the `sensor` example publishes it on the data stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// Where the sensor is.
    pub room: String,
    /// Degrees Celsius.
    pub celsius: f64,
}

/// The events of the order → inventory → shipment choreography (topic `{domain}.events`),
/// and its HTTP entry: the [`OrderDesk`](shop::OrderDesk) service, which `fabric-gateway`
/// puts behind `POST /services/{domain}/orders/desk/place_order`.
pub mod shop {
    use std::sync::atomic::{AtomicU32, Ordering};

    use fabric_core::{fabric_service, Fabric};
    use serde::{Deserialize, Serialize};

    /// Where orders come in from outside: a client (through the HTTP gateway, or in Rust)
    /// places an order, and the desk starts the choreography with `order.created`.
    #[fabric_service]
    pub trait OrderDesk {
        /// Places an order of `quantity` of `item`: publishes `order.created` (confirmed by
        /// the broker) and answers the order's id. The inventory and shipment services take
        /// it from there.
        fn place_order(&self, item: String, quantity: u32) -> Result<u32, String>;
    }

    /// The desk: numbers orders from `first` and publishes them on its fabric.
    #[derive(Debug)]
    pub struct Desk {
        fabric: Fabric,
        next: AtomicU32,
    }

    impl Desk {
        /// A desk publishing on `fabric`, numbering orders from `first`.
        pub fn new(fabric: Fabric, first: u32) -> Desk {
            Desk {
                fabric,
                next: AtomicU32::new(first),
            }
        }
    }

    impl OrderDesk for Desk {
        fn place_order(&self, item: String, quantity: u32) -> Result<u32, String> {
            if quantity == 0 {
                return Err("an order needs a quantity of at least 1".to_owned());
            }
            let order_id = self.next.fetch_add(1, Ordering::Relaxed);
            let order = OrderCreated {
                order_id,
                item,
                quantity,
            };
            self.fabric
                .publish_event("order.created", &order)
                .and_then(|receipt| receipt.wait())
                .map_err(|e| format!("order {order_id} not placed: {e}"))?;
            Ok(order_id)
        }
    }

    /// `order.created`: a customer ordered `quantity` of `item`.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct OrderCreated {
        /// The order.
        pub order_id: u32,
        /// What was ordered.
        pub item: String,
        /// How many.
        pub quantity: u32,
    }

    /// `stock.reserved`, `stock.rejected` and `stock.released` (the compensation): what the
    /// inventory did for an order.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct StockChange {
        /// The order.
        pub order_id: u32,
        /// The item.
        pub item: String,
        /// How many.
        pub quantity: u32,
        /// Why, for rejections and releases.
        pub reason: Option<String>,
    }

    /// `shipment.shipped` and `shipment.failed`: what the shipment service did.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct Shipment {
        /// The order.
        pub order_id: u32,
        /// The item, so a failure can be compensated.
        pub item: String,
        /// How many.
        pub quantity: u32,
        /// The tracking number when shipped, the reason when not.
        pub detail: String,
    }
}

/// The domain to use: the first command-line argument, or `my_project`.
pub fn domain_arg() -> String {
    std::env::args()
        .nth(1)
        .unwrap_or_else(|| "my_project".to_owned())
}

/// A receiver that gets a message when the process is asked to stop (Ctrl-C or SIGTERM), so
/// an example can stop gracefully: `ctrl_c()?.recv()?`, or `recv_timeout` between rounds.
pub fn ctrl_c() -> Result<std::sync::mpsc::Receiver<()>, ctrlc::Error> {
    let (stop_tx, stop_rx) = std::sync::mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop_tx.send(());
    })?;
    Ok(stop_rx)
}
