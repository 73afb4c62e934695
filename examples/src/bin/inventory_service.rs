//! The inventory of the shop choreography: reserves stock for `order.created`, says
//! `stock.reserved` or `stock.rejected`, and releases the stock of an order whose shipment
//! failed (`shipment.failed` → `stock.released`, the compensation). Runs until Ctrl-C.
//!
//! Usage: `inventory_service [DOMAIN]`; start it, then `shipment_service`, then `order_service`.

use std::collections::HashMap;

use fabric_core::{Codec, Fabric, FabricConfig, Message};
use fabric_examples::shop::{OrderCreated, Shipment, StockChange};
use fabric_examples::{broker_url, ctrl_c, domain_arg};

fn main() -> anyhow::Result<()> {
    let domain = domain_arg();
    // JSON events: readable by the order desk's HTTP clients (through fabric-gateway) and by
    // Python subscribers; fabric subscribers decode by content type either way.
    let fabric = Fabric::connect(
        FabricConfig::new(&broker_url(), &domain, "inventory", "i1").codec(Codec::Json),
    )?;
    let mut stock: HashMap<String, u32> = [("book", 10), ("lamp", 2), ("piano", 1)]
        .into_iter()
        .map(|(item, count)| (item.to_owned(), count))
        .collect();
    let publisher = fabric.clone();
    // One queue for the inventory service: several instances would share its events. Add
    // `.durable()` to keep the events that come while no instance runs.
    let _subscription = fabric
        .event_subscriber("inventory")
        .topic("order.created")
        .topic("shipment.failed")
        .handle(move |event: Message| {
            let outcome = match event.routing_key() {
                "order.created" => event.decode::<OrderCreated>().map(|order| {
                    let available = stock.entry(order.item.clone()).or_default();
                    let enough = *available >= order.quantity;
                    if enough {
                        *available -= order.quantity;
                    }
                    let change = StockChange {
                        order_id: order.order_id,
                        item: order.item,
                        quantity: order.quantity,
                        reason: (!enough).then(|| format!("only {available} left")),
                    };
                    (
                        if enough {
                            "stock.reserved"
                        } else {
                            "stock.rejected"
                        },
                        change,
                    )
                }),
                _ => event.decode::<Shipment>().map(|failed| {
                    *stock.entry(failed.item.clone()).or_default() += failed.quantity;
                    let change = StockChange {
                        order_id: failed.order_id,
                        item: failed.item,
                        quantity: failed.quantity,
                        reason: Some(format!("shipment failed: {}", failed.detail)),
                    };
                    ("stock.released", change)
                }),
            };
            match outcome {
                Ok((topic, change)) => {
                    println!("inventory: {topic} {change:?}");
                    if let Err(e) = publisher
                        .publish_event(topic, &change)
                        .and_then(|r| r.wait())
                    {
                        eprintln!("inventory: could not publish {topic}: {e}");
                    }
                }
                Err(e) => eprintln!("inventory: unreadable event: {e}"),
            }
        })?;
    println!("inventory_service: ready (Ctrl-C to stop)");
    ctrl_c()?.recv()?;
    Ok(())
}
