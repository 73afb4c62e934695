//! The order service of the shop choreography: places a few orders (`order.created`) and
//! follows each to its end (`shipment.shipped`, `stock.rejected`, or `stock.released` after a
//! failed shipment), then exits. No service calls another: each reacts to events.
//!
//! Usage: `order_service [DOMAIN]`, with `inventory_service` and `shipment_service` running.

use std::time::Duration;

use fabric_core::{Fabric, FabricConfig};
use fabric_examples::shop::{OrderCreated, Shipment, StockChange};
use fabric_examples::{broker_url, domain_arg};

fn main() -> anyhow::Result<()> {
    let domain = domain_arg();
    let fabric = Fabric::connect(FabricConfig::new(&broker_url(), &domain, "orders", "o1"))?;
    let outcomes = fabric
        .event_subscriber("orders")
        .topic("shipment.shipped")
        .topic("stock.rejected")
        .topic("stock.released")
        .inbox()?;

    let orders = [("book", 2), ("lamp", 3), ("book", 5), ("piano", 1)];
    for (order_id, (item, quantity)) in (1u32..).zip(orders) {
        let order = OrderCreated {
            order_id,
            item: item.to_owned(),
            quantity,
        };
        println!("orders: order.created {order:?}");
        fabric.publish_event("order.created", &order)?.wait()?;
    }
    for _ in orders {
        let Some(event) = outcomes.recv_timeout(Duration::from_secs(30))? else {
            anyhow::bail!(
                "no outcome within 30 s: are inventory_service and shipment_service running?"
            );
        };
        match event.routing_key() {
            "shipment.shipped" => {
                let shipped: Shipment = event.decode()?;
                println!(
                    "orders: order {} complete, tracking {}",
                    shipped.order_id, shipped.detail
                );
            }
            topic => {
                let change: StockChange = event.decode()?;
                let reason = change.reason.unwrap_or_default();
                println!(
                    "orders: order {} cancelled after {topic}: {reason}",
                    change.order_id
                );
            }
        }
    }
    Ok(())
}
