//! The choreography's HTTP entry: serves `OrderDesk` at `{domain}/orders/desk`, whose
//! `place_order` publishes `order.created`, so that an order is placed with a POST through
//! `fabric-gateway`, as the choreography article does with Restify:
//!
//! ```sh
//! cargo run -p fabric-examples --bin inventory_service &
//! cargo run -p fabric-examples --bin shipment_service &
//! cargo run -p fabric-examples --bin order_desk &
//! cargo run -p fabric-gateway -- --domain my_project &
//! curl -N 'localhost:8080/events/my_project?topic=%23' &   # the choreography, live
//! curl localhost:8080/services/my_project/orders/desk/place_order -d '{"item": "book", "quantity": 2}'
//! ```
//!
//! It speaks JSON, so its events read as JSON to HTTP and Python subscribers too. Runs until
//! Ctrl-C. Usage: `order_desk [DOMAIN]`.

use fabric_core::{Codec, Fabric, FabricConfig};
use fabric_examples::shop::{Desk, OrderDeskServer};
use fabric_examples::{broker_url, ctrl_c, domain_arg};

fn main() -> anyhow::Result<()> {
    let domain = domain_arg();
    let stop = ctrl_c()?;
    let fabric = Fabric::connect(
        FabricConfig::new(&broker_url(), &domain, "orders", "desk").codec(Codec::Json),
    )?;
    let server = OrderDeskServer::new(Desk::new(fabric.clone(), 1)).serve(&fabric)?;
    println!("order_desk: taking orders at {domain}/orders/desk (Ctrl-C to stop)");
    stop.recv()?;
    server.close()?;
    Ok(())
}
